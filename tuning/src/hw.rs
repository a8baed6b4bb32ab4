//! Reading the live host's [`HostTopology`]: CPUs from hwlocality (hwloc 2.8+ API), NICs and
//! the host name from sysfs through [`SysSource`].

use crate::cpuset::parse_list;
use crate::sys::SysSource;
use crate::topology::{Cpu, HostTopology, Nic};
use hwlocality::object::types::ObjectType;
use hwlocality::Topology;

/// CPUs of the live host from hwloc: every PU with its core, package and NUMA node.
pub fn cpus_from_hwloc() -> Result<Vec<Cpu>, String> {
    let topology = Topology::new().map_err(|e| format!("hwloc topology: {e}"))?;
    let mut cpus = Vec::new();
    for pu in topology.objects_with_type(ObjectType::PU) {
        let Some(os) = pu.os_index() else { continue };
        let core = pu
            .first_ancestor_with_type(ObjectType::Core)
            .map_or(pu.logical_index(), |c| c.logical_index());
        let package = pu
            .first_ancestor_with_type(ObjectType::Package)
            .map_or(0, |p| p.os_index().unwrap_or(p.logical_index()));
        let numa = pu
            .nodeset()
            .and_then(|n| n.first_set())
            .map_or(0, usize::from);
        cpus.push(Cpu {
            os: os as u32,
            core: core as u32,
            package: package as u32,
            numa: numa as u32,
        });
    }
    if cpus.is_empty() {
        return Err("hwloc found no PU".to_string());
    }
    cpus.sort_by_key(|c| c.os);
    Ok(cpus)
}

/// CPUs from sysfs (`/sys/devices/system/cpu/cpuN/topology`, `/sys/devices/system/node`): the
/// fallback when hwloc cannot load, and what tests use.
pub fn cpus_from_sysfs(sys: &dyn SysSource) -> Result<Vec<Cpu>, String> {
    let online = sys
        .read("/sys/devices/system/cpu/online")
        .ok_or("cannot read /sys/devices/system/cpu/online")?;
    let online = parse_list(&online)?;
    let mut node_of = std::collections::BTreeMap::new();
    for name in sys.list("/sys/devices/system/node").unwrap_or_default() {
        let Some(n) = name
            .strip_prefix("node")
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(list) = sys.read(&format!("/sys/devices/system/node/{name}/cpulist")) {
            for cpu in parse_list(&list)? {
                node_of.insert(cpu, n);
            }
        }
    }
    let mut cpus = Vec::new();
    for os in online {
        let dir = format!("/sys/devices/system/cpu/cpu{os}/topology");
        let num = |f: &str| {
            sys.read_trim(&format!("{dir}/{f}"))
                .and_then(|v| v.parse::<i64>().ok())
        };
        let package = num("physical_package_id").unwrap_or(0).max(0) as u32;
        let core_id = num("core_id").unwrap_or(i64::from(os)).max(0) as u32;
        // core_id is unique within a package only; make it unique across the host.
        cpus.push(Cpu {
            os,
            core: package * 65_536 + core_id,
            package,
            numa: node_of.get(&os).copied().unwrap_or(0),
        });
    }
    Ok(cpus)
}

/// The interface of the default route (`/proc/net/route`), if any.
pub fn default_route_iface(sys: &dyn SysSource) -> Option<String> {
    let route = sys.read("/proc/net/route")?;
    route.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 2 && f[1] == "00000000").then(|| f[0].to_string())
    })
}

/// Physical network interfaces (those with a `device` link), the default-route one first.
pub fn nics_from_sysfs(sys: &dyn SysSource) -> Vec<Nic> {
    let mut nics = Vec::new();
    for name in sys.list("/sys/class/net").unwrap_or_default() {
        let base = format!("/sys/class/net/{name}/device");
        let driver = sys
            .link(&format!("{base}/driver"))
            .map(|t| t.rsplit('/').next().unwrap_or(&t).to_string());
        if driver.is_none() && sys.read(&format!("{base}/uevent")).is_none() {
            continue; // virtual interface (lo, ifb, bridges)
        }
        let numa = sys
            .read_trim(&format!("{base}/numa_node"))
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|n| u32::try_from(n).ok());
        nics.push(Nic { name, driver, numa });
    }
    if let Some(def) = default_route_iface(sys) {
        if let Some(pos) = nics.iter().position(|n| n.name == def) {
            let nic = nics.remove(pos);
            nics.insert(0, nic);
        }
    }
    nics
}

/// The live host: CPUs from hwloc (sysfs if hwloc fails), restricted to the CPUs this thread
/// may run on (`core_affinity::get_core_ids`, called before anything is pinned), NICs from
/// sysfs. Returns the topology and a note when something fell back.
pub fn read_host_topology(sys: &dyn SysSource) -> Result<(HostTopology, Vec<String>), String> {
    let mut notes = Vec::new();
    let cpus = match cpus_from_hwloc() {
        Ok(c) => c,
        Err(e) => {
            notes.push(format!("hwloc failed ({e}); topology read from sysfs"));
            cpus_from_sysfs(sys)?
        }
    };
    let hostname = sys
        .read_trim("/proc/sys/kernel/hostname")
        .unwrap_or_default();
    let topo = HostTopology {
        hostname,
        cpus,
        nics: nics_from_sysfs(sys),
    };
    let allowed: Vec<u32> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id as u32)
        .collect();
    if allowed.is_empty() {
        return Ok((topo, notes));
    }
    let restricted = topo.restricted_to(&allowed);
    if restricted.cpus.len() < topo.cpus.len() {
        notes.push(format!(
            "planning on the {} CPUs this process may use ({} online)",
            restricted.cpus.len(),
            topo.cpus.len()
        ));
    }
    Ok((restricted, notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Fixture;

    #[test]
    fn sysfs_topology_and_nics() {
        let f = Fixture::new()
            .file("/sys/devices/system/cpu/online", "0-3\n")
            .file("/sys/devices/system/node/node0/cpulist", "0,2\n")
            .file("/sys/devices/system/node/node1/cpulist", "1,3\n")
            .file("/sys/devices/system/cpu/cpu0/topology/core_id", "0")
            .file("/sys/devices/system/cpu/cpu1/topology/core_id", "0")
            .file(
                "/sys/devices/system/cpu/cpu1/topology/physical_package_id",
                "1",
            )
            .file("/sys/devices/system/cpu/cpu2/topology/core_id", "0")
            .file("/sys/devices/system/cpu/cpu3/topology/core_id", "0")
            .file(
                "/sys/devices/system/cpu/cpu3/topology/physical_package_id",
                "1",
            )
            .link(
                "/sys/class/net/ens5/device/driver",
                "../../../bus/pci/drivers/ena",
            )
            .file("/sys/class/net/ens5/device/numa_node", "1\n")
            .link(
                "/sys/class/net/ens6/device/driver",
                "../../../bus/pci/drivers/ena",
            )
            .file("/sys/class/net/ens6/device/numa_node", "-1\n")
            .file("/sys/class/net/lo/mtu", "65536")
            .file(
                "/proc/net/route",
                "Iface\tDestination\tGateway\nens6\t00000000\t0101A8C0\n",
            );
        let cpus = cpus_from_sysfs(&f).unwrap();
        assert_eq!(cpus.len(), 4);
        assert_eq!(cpus[0].core, cpus[2].core); // siblings
        assert_ne!(cpus[0].core, cpus[1].core);
        assert_eq!(cpus[1].numa, 1);
        let nics = nics_from_sysfs(&f);
        assert_eq!(nics.len(), 2);
        assert_eq!(nics[0].name, "ens6");
        assert_eq!(nics[0].numa, None);
        assert_eq!(nics[1].numa, Some(1));
        assert_eq!(nics[1].driver.as_deref(), Some("ena"));
    }
}

//! The host description the planner works from: online CPUs with their core, package and NUMA
//! node, and the network interfaces with their NUMA node. Read from the live host by
//! [`crate::hw::read_host_topology`] (hwlocality + sysfs), or built synthetically for tests and
//! offline planning (`tpx-tune plan --topology FILE.json`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One logical CPU (hwloc "PU").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    /// The OS index (`/sys/devices/system/cpu/cpuN`, what `taskset` and `CPUAffinity=` take).
    pub os: u32,
    /// The physical core, unique across the host: CPUs with the same `core` are SMT siblings.
    pub core: u32,
    /// The socket.
    pub package: u32,
    /// The NUMA node whose memory is local.
    pub numa: u32,
}

/// A network interface and where it is attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nic {
    /// Interface name (`ens5`).
    pub name: String,
    /// Kernel driver (`ena`, `virtio_net`), when known.
    #[serde(default)]
    pub driver: Option<String>,
    /// NUMA node of the PCI device, when the platform says (`numa_node` is -1 otherwise).
    #[serde(default)]
    pub numa: Option<u32>,
}

/// What the planner needs to know about a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostTopology {
    /// Host name, copied into the plan.
    #[serde(default)]
    pub hostname: String,
    /// Online CPUs.
    pub cpus: Vec<Cpu>,
    /// Network interfaces (loopback and virtual interfaces left out).
    #[serde(default)]
    pub nics: Vec<Nic>,
}

/// A physical core: its SMT sibling CPUs, lowest OS index first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysicalCore {
    /// The core id ([`Cpu::core`]).
    pub core: u32,
    /// The socket.
    pub package: u32,
    /// The NUMA node.
    pub numa: u32,
    /// The sibling CPUs (OS indices), ascending.
    pub cpus: Vec<u32>,
}

impl HostTopology {
    /// A synthetic host numbered the way Linux numbers EC2 Intel hosts: first thread of every
    /// core on every socket, then the second threads. `c6i.metal` is `synthetic(2, 32, 2)`
    /// (CPUs 0-31 socket 0, 32-63 socket 1, 64-127 their siblings); `c6i.4xlarge` is
    /// `synthetic(1, 8, 2)`; a 2-vCPU VM without SMT is `synthetic(1, 2, 1)`. Each socket is its
    /// own NUMA node.
    pub fn synthetic(sockets: u32, cores_per_socket: u32, threads_per_core: u32) -> Self {
        let cores = sockets * cores_per_socket;
        let mut cpus = Vec::new();
        for thread in 0..threads_per_core {
            for socket in 0..sockets {
                for c in 0..cores_per_socket {
                    let core = socket * cores_per_socket + c;
                    cpus.push(Cpu {
                        os: thread * cores + core,
                        core,
                        package: socket,
                        numa: socket,
                    });
                }
            }
        }
        cpus.sort_by_key(|c| c.os);
        HostTopology {
            hostname: "synthetic".to_string(),
            cpus,
            nics: Vec::new(),
        }
    }

    /// Adds a NIC (builder style, for tests).
    pub fn with_nic(mut self, name: &str, driver: &str, numa: Option<u32>) -> Self {
        self.nics.push(Nic {
            name: name.to_string(),
            driver: Some(driver.to_string()),
            numa,
        });
        self
    }

    /// The physical cores, in the order of their lowest CPU.
    pub fn physical_cores(&self) -> Vec<PhysicalCore> {
        let mut by_core: BTreeMap<(u32, u32), PhysicalCore> = BTreeMap::new();
        for cpu in &self.cpus {
            by_core
                .entry((cpu.package, cpu.core))
                .or_insert_with(|| PhysicalCore {
                    core: cpu.core,
                    package: cpu.package,
                    numa: cpu.numa,
                    cpus: Vec::new(),
                })
                .cpus
                .push(cpu.os);
        }
        let mut cores: Vec<PhysicalCore> = by_core.into_values().collect();
        for core in &mut cores {
            core.cpus.sort_unstable();
            core.cpus.dedup();
        }
        cores.sort_by_key(|c| c.cpus[0]);
        cores
    }

    /// The SMT siblings of `cpu` (itself excluded).
    pub fn siblings_of(&self, cpu: u32) -> Vec<u32> {
        let Some(me) = self.cpus.iter().find(|c| c.os == cpu) else {
            return Vec::new();
        };
        self.cpus
            .iter()
            .filter(|c| c.os != cpu && c.core == me.core && c.package == me.package)
            .map(|c| c.os)
            .collect()
    }

    /// Keeps only the CPUs in `allowed` (the current thread's affinity).
    pub fn restricted_to(&self, allowed: &[u32]) -> Self {
        let mut out = self.clone();
        out.cpus.retain(|c| allowed.contains(&c.os));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c6i_metal_numbering() {
        let t = HostTopology::synthetic(2, 32, 2);
        assert_eq!(t.cpus.len(), 128);
        assert_eq!(t.siblings_of(0), vec![64]);
        assert_eq!(t.siblings_of(32), vec![96]);
        assert_eq!(t.cpus[32].numa, 1);
        assert_eq!(t.cpus[64].numa, 0);
        let cores = t.physical_cores();
        assert_eq!(cores.len(), 64);
        assert_eq!(cores[1].cpus, vec![1, 65]);
    }

    #[test]
    fn two_vcpu_vm() {
        let t = HostTopology::synthetic(1, 2, 1);
        assert_eq!(t.physical_cores().len(), 2);
        assert!(t.siblings_of(1).is_empty());
        assert_eq!(t.restricted_to(&[1]).cpus.len(), 1);
    }
}

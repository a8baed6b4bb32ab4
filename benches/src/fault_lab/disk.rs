//! A disk per node that the lab can slow down: the node's log directory lives on its own ext4
//! filesystem on a loop device (backed by a file in `/dev/shm`, so the disk undisturbed is
//! fast), and the node's process sits in a cgroup-v1 `blkio` group whose write throttle on that
//! loop device (`blkio.throttle.write_iops_device`, `write_bps_device`) is the slow-disk fault.
//! The node's O_DIRECT writes go to the loop device as bios, which the throttle delays.
//!
//! Needs root, `losetup`, `mkfs.ext4` and the v1 `blkio` controller mounted at
//! `/sys/fs/cgroup/blkio` (cgroup v2's `io.max` is the same control where the v2 `io`
//! controller is enabled). Where any is missing, [`NodeDisks::create`] says why and the lab
//! runs on the plain folder without the slow-disk fault. Everything is removed on drop; the
//! logs are first copied to `<dir>/node-<k>` (where a kept run's folder has them).

use std::path::{Path, PathBuf};

use super::topology::sh;

const BLKIO: &str = "/sys/fs/cgroup/blkio";
/// Each node's filesystem: room for the lab's logs (1 MiB segments, snapshots off).
const DISK_BYTES: u64 = 512 << 20;

#[derive(Debug)]
struct Disk {
    image: PathBuf,
    loop_dev: String,
    /// `major:minor` of the loop device.
    dev: String,
    mount: PathBuf,
    cgroup: PathBuf,
    /// Where the log is copied on drop.
    keep_as: PathBuf,
}

/// The two nodes' disks.
#[derive(Debug)]
pub struct NodeDisks {
    disks: Vec<Disk>,
}

/// Runs a command and returns its stdout.
fn out(args: &[&str]) -> Result<String, String> {
    let o = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if !o.status.success() {
        return Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

impl NodeDisks {
    /// Two disks for the lab of process `tag`, mounted under `dir`.
    pub fn create(dir: &Path, tag: &str) -> Result<NodeDisks, String> {
        if !Path::new(BLKIO)
            .join("blkio.throttle.write_iops_device")
            .exists()
        {
            return Err(format!("no cgroup-v1 blkio throttle at {BLKIO}"));
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root".into());
        }
        let mut d = NodeDisks { disks: Vec::new() };
        for k in 0..2 {
            let image = PathBuf::from(format!("/dev/shm/{tag}-disk{}.img", k + 1));
            let f =
                std::fs::File::create(&image).map_err(|e| format!("{}: {e}", image.display()))?;
            f.set_len(DISK_BYTES)
                .map_err(|e| format!("{}: {e}", image.display()))?;
            drop(f);
            let image_s = image.display().to_string();
            let loop_dev = match out(&["losetup", "--find", "--show", &image_s]) {
                Ok(l) => l,
                Err(e) => {
                    let _ = std::fs::remove_file(&image);
                    return Err(e);
                }
            };
            let dev = out(&["lsblk", "-dno", "MAJ:MIN", &loop_dev])?
                .trim()
                .to_string();
            let mount = dir.join(format!("disk-{}", k + 1));
            let cgroup = Path::new(BLKIO).join(format!("{tag}-node{}", k + 1));
            d.disks.push(Disk {
                image,
                loop_dev: loop_dev.clone(),
                dev,
                mount: mount.clone(),
                cgroup: cgroup.clone(),
                keep_as: dir.join(format!("node-{}", k + 1)),
            });
            sh(&["mkfs.ext4", "-q", "-F", &loop_dev], None)?;
            std::fs::create_dir_all(&mount).map_err(|e| format!("{}: {e}", mount.display()))?;
            sh(&["mount", &loop_dev, &mount.display().to_string()], None)?;
            std::fs::create_dir_all(&cgroup).map_err(|e| format!("{}: {e}", cgroup.display()))?;
        }
        Ok(d)
    }

    /// Node `k`'s log directory (on its disk).
    pub fn log_dir(&self, k: usize) -> PathBuf {
        self.disks[k].mount.join(format!("node-{}", k + 1))
    }

    /// Puts process `pid` (node `k`) into its disk's cgroup.
    pub fn join(&self, k: usize, pid: u32) -> Result<(), String> {
        write(&self.disks[k].cgroup.join("cgroup.procs"), &pid.to_string())
    }

    /// Throttles node `k`'s writes to `iops` operations and `bytes_per_s` a second; `None`:
    /// no limit.
    pub fn throttle(&self, k: usize, limit: Option<(u32, u64)>) -> Result<(), String> {
        let d = &self.disks[k];
        let (iops, bps) = limit.unwrap_or((0, 0));
        // A 0 removes the rule.
        write(
            &d.cgroup.join("blkio.throttle.write_iops_device"),
            &format!("{} {iops}", d.dev),
        )?;
        write(
            &d.cgroup.join("blkio.throttle.write_bps_device"),
            &format!("{} {bps}", d.dev),
        )
    }
}

impl Drop for NodeDisks {
    fn drop(&mut self) {
        for d in self.disks.drain(..) {
            let _ = std::fs::write(
                d.cgroup.join("blkio.throttle.write_iops_device"),
                format!("{} 0", d.dev),
            );
            let _ = std::fs::write(
                d.cgroup.join("blkio.throttle.write_bps_device"),
                format!("{} 0", d.dev),
            );
            let log = d.mount.join(d.keep_as.file_name().unwrap_or_default());
            if log.exists() {
                let _ = sh(
                    &[
                        "cp",
                        "-a",
                        &log.display().to_string(),
                        &d.keep_as.display().to_string(),
                    ],
                    None,
                );
            }
            let _ = sh(&["umount", &d.mount.display().to_string()], None);
            let _ = sh(&["losetup", "-d", &d.loop_dev], None);
            let _ = std::fs::remove_file(&d.image);
            let _ = std::fs::remove_dir(&d.mount);
            // A cgroup with no process left in it can be removed.
            let _ = std::fs::remove_dir(&d.cgroup);
        }
    }
}

/// Removes disks left by labs whose process is gone (named `tpxl<pid>...` like the
/// namespaces): their mounts, loop devices, images and cgroups.
pub fn remove_stale() {
    let dead = |name: &str| -> bool {
        let Some(rest) = name.strip_prefix("tpxl") else {
            return false;
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits
            .parse::<u32>()
            .map(|pid| !Path::new(&format!("/proc/{pid}")).exists())
            .unwrap_or(false)
    };
    if let Ok(rd) = std::fs::read_dir("/dev/shm") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !name.ends_with(".img") || !dead(&name) {
                continue;
            }
            let image = e.path().display().to_string();
            // `losetup -j FILE`: "/dev/loopN: ..." for each device on it.
            if let Ok(list) = out(&["losetup", "-j", &image]) {
                for line in list.lines() {
                    if let Some(dev) = line.split(':').next() {
                        if let Ok(mounts) = std::fs::read_to_string("/proc/mounts") {
                            for m in mounts.lines().filter(|m| m.starts_with(&format!("{dev} "))) {
                                if let Some(at) = m.split(' ').nth(1) {
                                    let _ = sh(&["umount", at], None);
                                }
                            }
                        }
                        let _ = sh(&["losetup", "-d", dev], None);
                    }
                }
            }
            let _ = std::fs::remove_file(e.path());
        }
    }
    if let Ok(rd) = std::fs::read_dir(BLKIO) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if e.path().is_dir() && dead(&name) {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
}

//! Locking the process's memory in RAM (`[node] lock_memory`): `mlockall(MCL_CURRENT |
//! MCL_FUTURE)` once the tables are allocated, and what the kernel says is locked.

/// Locks every current and future page of the process. `Err` names the errno (`ENOMEM`: the
/// `RLIMIT_MEMLOCK` is below the process's size; `EPERM`: no CAP_IPC_LOCK and a zero limit).
pub fn lock_all() -> Result<(), String> {
    // SAFETY: mlockall takes flags only and touches no memory of ours.
    let rc = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!("mlockall: {}", std::io::Error::last_os_error()))
    }
}

/// `VmLck` of `/proc/self/status`, in KiB (None where the file or the line is missing).
pub fn locked_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_lck_kib(&status)
}

/// The `VmLck:` line of a `/proc/<pid>/status` text, in KiB.
pub fn vm_lck_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_lck() {
        let s = "Name:\ttpx\nVmLck:\t  123456 kB\nVmPin:\t0 kB\n";
        assert_eq!(vm_lck_kib(s), Some(123_456));
        assert_eq!(vm_lck_kib("Name:\ttpx\n"), None);
    }
}

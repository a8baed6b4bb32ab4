//! Where the threads beside the cores run: the CPUs of the process that the core plan leaves
//! free. A thread starts with its creator's affinity, so one a pinned core spawns (the log
//! writer, the replay's reader) would otherwise share that core's CPU, and one the main
//! thread spawns may run on any core's.

/// The CPUs this process may run on (as `sched_getaffinity(2)` of `pid` reads them; 0: the
/// calling thread).
fn affinity(pid: libc::pid_t) -> Option<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is the empty set, filled by the kernel for `pid`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    if unsafe { libc::sched_getaffinity(pid, size, &mut set) } != 0 {
        return None;
    }
    // SAFETY: CPU_ISSET reads the set within CPU_SETSIZE.
    Some(
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .collect(),
    )
}

/// The CPUs this process may run on (its main thread's affinity) that no core of the plan
/// (`core_cpus`) is pinned to: where the start's helper threads go (the snapshot loader, the
/// engines' thread, the replay's reader). Empty when the plan takes them all (two vCPUs, a
/// core on each: a helper then stays where the scheduler, or its creator, puts it) or the
/// mask cannot be read.
pub fn cpus_free_of_the_cores(core_cpus: &[usize]) -> Vec<usize> {
    // SAFETY: getpid has no preconditions.
    let Some(process) = affinity(unsafe { libc::getpid() }) else {
        return Vec::new();
    };
    process
        .into_iter()
        .filter(|c| !core_cpus.contains(c))
        .collect()
}

/// Where the log writer goes (its IO workers and the spare's preparer too): the CPUs free of
/// the cores, so that it preempts none of them (a real-time writer would take a spinning shard
/// core's CPU as readily as an idle one); where the plan takes them all (two vCPUs), the ones
/// other than this thread's (the sequencing core's, which waits on the writer); empty when
/// the masks cannot be read (nothing moves).
pub fn cpus_for_the_writer(core_cpus: &[usize]) -> Vec<usize> {
    let free = cpus_free_of_the_cores(core_cpus);
    if !free.is_empty() {
        return free;
    }
    // SAFETY: getpid has no preconditions.
    let (Some(process), Some(this)) = (affinity(unsafe { libc::getpid() }), affinity(0)) else {
        return Vec::new();
    };
    process.into_iter().filter(|c| !this.contains(c)).collect()
}

/// Lets the calling thread run on `cpus` only (`sched_setaffinity(2)` numbering); an empty
/// `cpus` changes nothing.
pub fn allow_current_thread_on(cpus: &[usize]) -> std::io::Result<()> {
    if cpus.is_empty() {
        return Ok(());
    }
    let set = tpx_sequencer::process::cpu_set(cpus)?;
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 is the calling thread.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log writer goes to the process's CPUs that no core of the plan uses; where the
    /// plan uses them all, to those other than the (pinned) sequencing core's.
    #[test]
    fn the_writer_goes_beside_the_plan_s_cores() {
        let cpus: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(cpus_for_the_writer(&[]), cpus, "no plan: anywhere");
        let Some(&first) = cpus.first() else {
            return;
        };
        let all = cpus.clone();
        let (free, beside) = std::thread::spawn(move || {
            core_affinity::set_for_current(core_affinity::CoreId { id: first });
            (cpus_for_the_writer(&[first]), cpus_for_the_writer(&all))
        })
        .join()
        .unwrap();
        assert_eq!(free, cpus[1..].to_vec(), "the CPUs the plan leaves free");
        assert_eq!(
            beside,
            cpus[1..].to_vec(),
            "every CPU in the plan: beside this core"
        );
        if cpus.len() > 2 {
            let last = *cpus.last().unwrap();
            let plan = vec![first, last];
            let free = std::thread::spawn(move || {
                core_affinity::set_for_current(core_affinity::CoreId { id: first });
                cpus_for_the_writer(&plan)
            })
            .join()
            .unwrap();
            assert_eq!(
                free,
                cpus[1..cpus.len() - 1].to_vec(),
                "not on another core's CPU"
            );
        }
    }

    /// The start's helpers go to the CPUs no core uses, and stay put where the plan takes
    /// every CPU: on two vCPUs with a core on each, the replay's reader moved off the
    /// sequencing core would land on the shard core, the busiest of the replay.
    #[test]
    fn helpers_go_only_to_cpus_no_core_uses() {
        let cpus: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        let Some(&first) = cpus.first() else {
            return;
        };
        assert_eq!(cpus_free_of_the_cores(&[]), cpus);
        assert_eq!(cpus_free_of_the_cores(&[first]), cpus[1..].to_vec());
        assert!(cpus_free_of_the_cores(&cpus).is_empty(), "nothing moves");
    }

    /// A thread moved beside the cores runs only there.
    #[test]
    fn a_thread_allowed_on_some_cpus_runs_only_there() {
        let cpus: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        let Some(&last) = cpus.last() else {
            return;
        };
        let got = std::thread::spawn(move || {
            allow_current_thread_on(&[last]).unwrap();
            // SAFETY: sched_getcpu has no preconditions.
            unsafe { libc::sched_getcpu() }
        })
        .join()
        .unwrap();
        assert_eq!(got, last as i32);
    }
}

//! Reading the host: every file, directory, link and command output the checks and the
//! topology reader look at goes through [`SysSource`], so checks are pure functions of what
//! was read and tests feed them a [`Fixture`]. Writing (for `apply`) goes through [`SysSink`].

use std::collections::BTreeMap;
use std::process::Command;

/// Read-only access to /proc, /sys and a few commands.
pub trait SysSource {
    /// The contents of a file; `None` when it does not exist or cannot be read.
    fn read(&self, path: &str) -> Option<String>;
    /// The entry names of a directory, sorted; `None` when it does not exist.
    fn list(&self, dir: &str) -> Option<Vec<String>>;
    /// The target of a symbolic link.
    fn link(&self, path: &str) -> Option<String>;
    /// The standard output of `program args...` when it exists and exits 0.
    fn command(&self, program: &str, args: &[&str]) -> Option<String>;

    /// A file's contents, trimmed.
    fn read_trim(&self, path: &str) -> Option<String> {
        self.read(path).map(|s| s.trim().to_string())
    }
}

/// The live host.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealSys;

impl SysSource for RealSys {
    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    fn list(&self, dir: &str) -> Option<Vec<String>> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        names.sort();
        Some(names)
    }

    fn link(&self, path: &str) -> Option<String> {
        std::fs::read_link(path)
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    }

    fn command(&self, program: &str, args: &[&str]) -> Option<String> {
        let out = Command::new(program).args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// A fake host for tests: files, links and command outputs from maps. Directories are implied
/// by the paths of the files and links under them.
#[derive(Debug, Default, Clone)]
pub struct Fixture {
    files: BTreeMap<String, String>,
    links: BTreeMap<String, String>,
    commands: BTreeMap<String, String>,
}

impl Fixture {
    /// An empty host: nothing exists.
    pub fn new() -> Self {
        Fixture::default()
    }

    /// Adds a file.
    pub fn file(mut self, path: &str, contents: &str) -> Self {
        self.files.insert(path.to_string(), contents.to_string());
        self
    }

    /// Adds or replaces a file in place.
    pub fn set(&mut self, path: &str, contents: &str) {
        self.files.insert(path.to_string(), contents.to_string());
    }

    /// Removes a file.
    pub fn remove(&mut self, path: &str) {
        self.files.remove(path);
    }

    /// Adds a symbolic link.
    pub fn link(mut self, path: &str, target: &str) -> Self {
        self.links.insert(path.to_string(), target.to_string());
        self
    }

    /// Adds the output of a command line (`"ethtool -c eth0"`).
    pub fn command(mut self, line: &str, stdout: &str) -> Self {
        self.commands.insert(line.to_string(), stdout.to_string());
        self
    }
}

impl SysSource for Fixture {
    fn read(&self, path: &str) -> Option<String> {
        self.files.get(path).cloned()
    }

    fn list(&self, dir: &str) -> Option<Vec<String>> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        let mut names: Vec<String> = self
            .files
            .keys()
            .chain(self.links.keys())
            .filter_map(|p| p.strip_prefix(&prefix))
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
            .collect();
        if names.is_empty() {
            return None;
        }
        names.sort();
        names.dedup();
        Some(names)
    }

    fn link(&self, path: &str) -> Option<String> {
        self.links.get(path).cloned()
    }

    fn command(&self, program: &str, args: &[&str]) -> Option<String> {
        let mut line = program.to_string();
        for a in args {
            line.push(' ');
            line.push_str(a);
        }
        self.commands.get(&line).cloned()
    }
}

/// Where `apply` writes.
pub trait SysSink {
    /// Writes `value` to a /proc or /sys file.
    fn write(&mut self, path: &str, value: &str) -> Result<(), String>;
    /// Runs a command.
    fn run(&mut self, program: &str, args: &[String]) -> Result<(), String>;
}

/// Writes to the live host.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealSink;

impl SysSink for RealSink {
    fn write(&mut self, path: &str, value: &str) -> Result<(), String> {
        std::fs::write(path, value).map_err(|e| format!("{path}: {e}"))
    }

    fn run(&mut self, program: &str, args: &[String]) -> Result<(), String> {
        let status = Command::new(program)
            .args(args)
            .status()
            .map_err(|e| format!("{program}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{program} {}: {status}", args.join(" ")))
        }
    }
}

/// Records what would be done; writes nothing. Used by `apply --dry-run` and tests.
#[derive(Debug, Default, Clone)]
pub struct RecordingSink {
    /// Every write and command, in order, as a line.
    pub log: Vec<String>,
}

impl SysSink for RecordingSink {
    fn write(&mut self, path: &str, value: &str) -> Result<(), String> {
        self.log.push(format!("write {value} > {path}"));
        Ok(())
    }

    fn run(&mut self, program: &str, args: &[String]) -> Result<(), String> {
        self.log.push(format!("run {program} {}", args.join(" ")));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_lists_children() {
        let f = Fixture::new()
            .file("/proc/irq/1/smp_affinity_list", "0")
            .file("/proc/irq/24/smp_affinity_list", "1")
            .file("/proc/irq/default_smp_affinity", "3")
            .link("/sys/class/net/eth0/device/driver", "../virtio_net");
        assert_eq!(
            f.list("/proc/irq").unwrap(),
            vec!["1", "24", "default_smp_affinity"]
        );
        assert_eq!(f.list("/sys/class/net").unwrap(), vec!["eth0"]);
        assert!(f.list("/nope").is_none());
    }
}

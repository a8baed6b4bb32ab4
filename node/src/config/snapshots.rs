//! `[snapshots]`: images of the node's state taken while it runs, restart from the newest, and
//! log retention. See `appliance/snapshots.rs` and ARCHITECTURE.md, "Snapshots in the node".

use std::path::{Path, PathBuf};

/// `[snapshots]` of the node config; absent: no snapshots, every restart replays the log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotsConfig {
    /// Take snapshots, and start from the newest valid one (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where images go; default `<log_dir>/snapshots`. Relative: to the config file's folder.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// An image at most every this many records (at the next replica checkpoint when
    /// `[replication] checkpoint_every` is on); 0: not by records.
    #[serde(default = "default_every_records")]
    pub every_records: u64,
    /// An image once the log's time (the records' sequencer stamps) has moved this far since
    /// the last one; 0: not by time.
    #[serde(default)]
    pub every_ms: u64,
    /// Images kept (the newest `keep`, at least 1).
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// Delete log segments wholly before the oldest image kept (and before what the peer holds).
    #[serde(default = "yes")]
    pub delete_segments: bool,
}

fn yes() -> bool {
    true
}
fn default_every_records() -> u64 {
    1_000_000
}
fn default_keep() -> usize {
    3
}

impl Default for SnapshotsConfig {
    fn default() -> Self {
        SnapshotsConfig {
            enabled: true,
            dir: None,
            every_records: default_every_records(),
            every_ms: 0,
            keep: default_keep(),
            delete_segments: true,
        }
    }
}

impl SnapshotsConfig {
    /// The image folder for a log in `log_dir`.
    pub fn dir_for(&self, log_dir: &Path) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| log_dir.join("snapshots"))
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.enabled && self.every_records == 0 && self.every_ms == 0 {
            return Err("[snapshots]: every_records or every_ms must be set".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_checks() {
        let c: SnapshotsConfig = toml::from_str("").unwrap();
        assert_eq!(c, SnapshotsConfig::default());
        assert!(c.validate().is_ok());
        assert_eq!(
            c.dir_for(Path::new("/var/lib/tpx/log")),
            PathBuf::from("/var/lib/tpx/log/snapshots")
        );
        let off: SnapshotsConfig = toml::from_str("every_records = 0").unwrap();
        assert!(off.validate().is_err(), "nothing would ever be taken");
        assert!(toml::from_str::<SnapshotsConfig>("every = 5").is_err());
    }
}

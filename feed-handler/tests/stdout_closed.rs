//! `tpx-feed --json | head -1`: a feed handler whose stdout reader goes away stops cleanly
//! (status 0, a line on stderr) at its next output, instead of panicking in `println!` (exit
//! status 101, "failed printing to stdout: Broken pipe"), as it did before.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tpx_md::{DriverConfig, EmbeddedDriver};

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_feed_handler_whose_stdout_reader_went_away_stops_with_status_0() {
    let driver = EmbeddedDriver::launch(&DriverConfig::for_tests()).unwrap();
    let dir = driver.dir().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tpx-feed"))
        .args(["--aeron-dir", &dir, "--a", "aeron:ipc"])
        .args(["--json", "--interval-ms", "50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut child = KillOnDrop(child);
    let mut first = String::new();
    BufReader::new(out).read_line(&mut first).unwrap();
    assert!(first.contains("\"type\""), "a JSON line first: {first:?}");
    // The reader goes away (the read end closed with the BufReader): its next lines fail.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "tpx-feed still runs 10 s after its stdout was closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{status}");
    drop(driver);
}

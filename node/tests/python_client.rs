//! The Python client (`python/`) against a real `tpx node`: runs its unittest suite with
//! `TPX_BIN` set to this crate's `tpx` binary (login, order and fill between two accounts,
//! replay after a reconnect, an open-orders query, a typed login reject, and the
//! `FailoverClient` across a SIGKILL of `tpx up`'s primary). Skips when python3 is missing,
//! unless `TPX_REQUIRE_PYTHON=1`.

use std::path::Path;
use std::process::Command;

#[test]
fn python_client_suite_passes_against_a_real_node() {
    if Command::new("python3").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("TPX_REQUIRE_PYTHON").is_none(),
            "python3 is required"
        );
        eprintln!("python3 not installed: skipping");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("python3")
        .args(["-m", "unittest", "discover", "-v", "-s"])
        .arg(root.join("python/tests"))
        .env("TPX_BIN", env!("CARGO_BIN_EXE_tpx"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("running python3");
    let log = String::from_utf8_lossy(&out.stderr);
    eprintln!("{log}");
    assert!(out.status.success(), "python client tests failed:\n{log}");
    assert!(
        log.contains("Ran 7 tests") && !log.contains("skipped"),
        "the suite did not run every test:\n{log}"
    );
}

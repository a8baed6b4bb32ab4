//! Keeps `python/tpx_client/wire.py` (the Python client's codec) equal to the generator's
//! output, and checks it against the Rust codec: Python decodes every catalog example to the
//! values in its bytes and encodes them back to the same bytes (when python3 is installed).

use std::path::{Path, PathBuf};
use std::process::Command;

use tpx_wire::catalog::examples;
use tpx_wire::python::python;

fn module_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../python/tpx_client/wire.py")
}

#[test]
fn committed_module_is_the_generated_one() {
    let want = python();
    let path = module_path();
    if std::env::var_os("TPX_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    assert!(
        !want.contains(", \"\", \"unknown\")"),
        "a wire type the Python generator does not know"
    );
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is not the generated codec: run `TPX_BLESS=1 cargo test -p tpx-wire --test python_codec`",
        path.display()
    );
}

/// Every order-entry and market-data example: Python's `decode` then `encode` gives the same
/// bytes (so every field is read and written at the Rust codec's offset and width).
#[test]
fn python_round_trips_every_example() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("python3 not installed: skipping");
        return;
    }
    let mut hex = String::new();
    for (name, bytes) in examples() {
        let schema = u16::from_le_bytes([bytes[4], bytes[5]]);
        if schema == 2 || name.starts_with("md_") {
            continue; // the input log; packets are a header plus messages, not one layout
        }
        hex.push_str(name);
        hex.push(' ');
        for b in &bytes {
            hex.push_str(&format!("{b:02x}"));
        }
        hex.push('\n');
    }
    let script = r#"
import sys
sys.path.insert(0, sys.argv[1])
from tpx_client import wire
n = 0
for line in sys.stdin:
    name, h = line.split()
    b = bytes.fromhex(h)
    msg, fields = wire.decode(b)
    again = wire.encode(msg, **fields)
    assert again == b, (name, msg, fields, again.hex(), h)
    n += 1
print(n)
"#;
    let pkg = module_path()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let mut child = Command::new("python3")
        .args(["-c", script])
        .arg(&pkg)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(hex.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(n >= 20, "only {n} examples checked");
}

//! The node's status lines (`tpx node: ROLE ...`, `READY`, `TOPS`, ...): one line to stdout,
//! whole, flushed. A write that fails is dropped, never a panic: `println!` panics when stdout
//! is a pipe whose reader went away (the process reading the lines was killed), and a node
//! that printed its next line that way exited with status 101 (`tests/stdout_closed.rs`).

use std::io::Write;

/// Writes `line` and a newline to stdout and flushes; a failed write is ignored.
pub fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(line);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// [`say`] to stderr (warnings printed before the node runs).
pub fn warn(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stderr().lock();
    let _ = out.write_fmt(line);
    let _ = out.write_all(b"\n");
}

//! The node's status lines (`tpx node: ROLE ...`, `READY`, `TOPS`, ...): one line, whole,
//! flushed, through `tpx_sequencer::process::say` (the witness's and `tpx-seq`'s lines). A write
//! that fails is dropped, never a panic: `println!` panics when stdout is a pipe whose reader
//! went away (the process reading the lines was killed), and a node that printed its next line
//! that way exited with status 101 (`tests/stdout_closed.rs`).

use tpx_sequencer::process::say as say_to;

/// Writes `line` and a newline to stdout and flushes; a failed write is ignored.
pub fn say(line: std::fmt::Arguments<'_>) {
    say_to(&mut std::io::stdout().lock(), line);
}

/// [`say`] to stderr (warnings printed before the node runs).
pub fn warn(line: std::fmt::Arguments<'_>) {
    say_to(&mut std::io::stderr().lock(), line);
}

//! `tpx-seq`: a sequencer node (primary or standby) or the witness, as a process.
//!
//! ```sh
//! tpx-seq witness --listen 127.0.0.1:7100
//! tpx-seq node --id 1 --peer 2 --listen 127.0.0.1:7101 --peer-addr 127.0.0.1:7102 \
//!     --witness-addr 127.0.0.1:7100 --dir /var/lib/tpx/n1 --primary --load 10000
//! tpx-seq node --id 2 --peer 1 --listen 127.0.0.1:7102 --peer-addr 127.0.0.1:7101 \
//!     --witness-addr 127.0.0.1:7100 --dir /var/lib/tpx/n2
//! tpx-seq replay --dir /var/lib/tpx/n2     # replays a log: last seq and state hash
//! ```

mod cli;
mod harness;

fn main() {
    std::process::exit(cli::main_with(std::env::args_os()));
}

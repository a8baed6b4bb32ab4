//! `tpx`: the appliance command line.
fn main() {
    println!("tpx: node not built yet");
}

//! Writes the canonical examples as seed corpora for the fuzz targets when `TPX_WRITE_CORPUS`
//! names a directory (`wire/fuzz-smoke.sh` does); otherwise does nothing.

use tpx_wire::catalog::examples;

#[test]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("TPX_WRITE_CORPUS") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let d = dir.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), bytes).unwrap();
    };
    let all = examples();
    let mut stream = vec![255u8];
    let mut log = Vec::new();
    for (name, bytes) in &all {
        let target = if name.starts_with("log_record")
            || matches!(
                *name,
                "halt"
                    | "resume"
                    | "withdraw"
                    | "set_mark_price"
                    | "apply_funding"
                    | "liquidate"
                    | "set_fee_tier"
            ) {
            log.extend_from_slice(bytes);
            "log_record"
        } else if name.starts_with("md_")
            || name.starts_with("retransmit")
            || name.starts_with("snapshot")
            || matches!(
                *name,
                "order_reduce"
                    | "order_delete"
                    | "order_replace"
                    | "instrument_directory"
                    | "trading_status"
                    | "reference_price"
            )
        {
            "md_packet"
        } else {
            stream.extend_from_slice(bytes);
            "order_entry_frame"
        };
        write(target, name, bytes);
    }
    write("log_record", "log_segment", &log);
    // Input bodies back to back (the target also feeds them to an engine): a resting order,
    // an order-type order, a tick.
    let body = |n: &str| {
        all.iter()
            .find(|(name, _)| *name == n)
            .map(|(_, b)| b.clone())
    };
    let mut bodies = Vec::new();
    for n in ["enter_order", "enter_order_ext", "halt", "resume"] {
        bodies.extend(body(n).unwrap_or_default());
    }
    write("log_record", "input_bodies", &bodies);
    write("framing", "stream", &stream);
}

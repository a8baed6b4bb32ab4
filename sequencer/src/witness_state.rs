//! The witness's durable `(term, holder)`, written on the takeover path.
//!
//! A grant is answered only after it is durable, so this write sits between a standby's
//! `Promote` and its `Granted`. Writing a new file, renaming it over the old one and syncing
//! the directory costs several metadata operations (on ext4, journal commits: milliseconds).
//! Instead the file is kept open and holds two 32-byte slots, written alternately in place with
//! `pwrite` + `fdatasync`: one small write and one data flush per grant. A torn or lost write can
//! damage only the slot being written; the other still holds the previous grant, which is safe
//! to fall back to because the new grant was never answered. Each slot carries a CRC32C and a
//! counter; loading takes the valid slot with the highest counter.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

const MAGIC: u32 = 0x5754_5058; // "XPTW" little-endian: tpx witness
const SLOT_BYTES: usize = 32;

/// An open witness state file.
#[derive(Debug)]
pub struct WitnessStateFile {
    file: File,
    counter: u64,
}

fn encode_slot(term: u64, holder: u32, counter: u64) -> [u8; SLOT_BYTES] {
    let mut b = [0u8; SLOT_BYTES];
    b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    b[4..8].copy_from_slice(&holder.to_le_bytes());
    b[8..16].copy_from_slice(&term.to_le_bytes());
    b[16..24].copy_from_slice(&counter.to_le_bytes());
    let crc = crc32c::crc32c(&b[..24]);
    b[24..28].copy_from_slice(&crc.to_le_bytes());
    b
}

/// `(term, holder, counter)` of a valid slot.
fn decode_slot(b: &[u8]) -> Option<(u64, u32, u64)> {
    if b.len() < SLOT_BYTES {
        return None;
    }
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or([0; 4]));
    let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
    if u32_at(0) != MAGIC || u32_at(24) != crc32c::crc32c(&b[..24]) {
        return None;
    }
    Some((u64_at(8), u32_at(4), u64_at(16)))
}

/// Parses the file's bytes: the newest valid slot, or the older text form `"term holder"`.
fn parse(bytes: &[u8]) -> Option<(u64, u32, u64)> {
    if bytes.first().is_some_and(u8::is_ascii_digit) {
        let s = std::str::from_utf8(bytes).ok()?;
        let mut it = s.split_whitespace();
        let term = it.next()?.parse().ok()?;
        let holder = it.next()?.parse().ok()?;
        return Some((term, holder, 0));
    }
    bytes
        .chunks(SLOT_BYTES)
        .take(2)
        .filter_map(decode_slot)
        .max_by_key(|&(_, _, counter)| counter)
}

/// Reads a persisted `(term, holder)` (either form).
pub fn load(path: &Path) -> Option<(u64, u32)> {
    let bytes = std::fs::read(path).ok()?;
    parse(&bytes).map(|(t, h, _)| (t, h))
}

impl WitnessStateFile {
    /// Opens (creating if needed) the state file; returns it and what it holds.
    pub fn open(path: &Path) -> std::io::Result<(WitnessStateFile, Option<(u64, u32)>)> {
        let bytes = std::fs::read(path).unwrap_or_default();
        let found = parse(&bytes);
        let text_form = bytes.first().is_some_and(u8::is_ascii_digit);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut f = WitnessStateFile {
            file,
            counter: found.map_or(0, |(_, _, c)| c),
        };
        if text_form {
            // Rewrite an older text file in the slot form (both slots: the text is gone).
            let (t, h, _) = found.unwrap_or((0, 0, 0));
            f.file.set_len(0)?;
            f.store(t, h)?;
            f.store(t, h)?;
        }
        if bytes.is_empty() {
            // A new file: make its existence durable once (the directory entry).
            f.file.sync_all()?;
            if let Some(d) = path.parent() {
                File::open(d)?.sync_all()?;
            }
        }
        Ok((f, found.map(|(t, h, _)| (t, h))))
    }

    /// Makes `(term, holder)` durable before the grant is answered.
    pub fn store(&mut self, term: u64, holder: u32) -> std::io::Result<()> {
        let counter = self.counter + 1;
        let slot = (counter % 2) * SLOT_BYTES as u64;
        self.file
            .write_all_at(&encode_slot(term, holder, counter), slot)?;
        self.file.sync_data()?;
        self.counter = counter;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("tpx-wstate-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&d);
        d
    }

    #[test]
    fn the_newest_grant_survives_reopen_and_a_torn_slot_falls_back() {
        let p = tmp("torn");
        let (mut f, found) = WitnessStateFile::open(&p).unwrap();
        assert_eq!(found, None);
        f.store(3, 1).unwrap();
        f.store(4, 2).unwrap();
        drop(f);
        assert_eq!(load(&p), Some((4, 2)));
        let (mut f, found) = WitnessStateFile::open(&p).unwrap();
        assert_eq!(found, Some((4, 2)));
        f.store(5, 1).unwrap();
        drop(f);
        assert_eq!(load(&p), Some((5, 1)));
        // Tear the slot holding term 5: the previous grant (never answered after) remains.
        let mut bytes = std::fs::read(&p).unwrap();
        let newest = (0..2)
            .find(|&i| decode_slot(&bytes[i * SLOT_BYTES..]).is_some_and(|s| s.0 == 5))
            .unwrap();
        bytes[newest * SLOT_BYTES + 9] ^= 0xff;
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(load(&p), Some((4, 2)));
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn an_older_text_file_is_read_and_rewritten_in_slots() {
        let p = tmp("text");
        std::fs::write(&p, "7 2\n").unwrap();
        assert_eq!(load(&p), Some((7, 2)));
        let (mut f, found) = WitnessStateFile::open(&p).unwrap();
        assert_eq!(found, Some((7, 2)));
        f.store(8, 1).unwrap();
        drop(f);
        assert_eq!(load(&p), Some((8, 1)));
        assert_eq!(std::fs::read(&p).unwrap().len(), 2 * SLOT_BYTES);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn garbage_is_no_state() {
        assert_eq!(parse(&[0u8; 64]), None);
        assert_eq!(parse(b""), None);
    }
}

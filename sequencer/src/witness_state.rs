//! The witness's durable grant `(term, holder, holder's incarnation)`, written on the takeover
//! path.
//!
//! A grant is answered only after it is durable, so this write sits between a standby's
//! `Promote` and its `Granted`. Writing a new file, renaming it over the old one and syncing
//! the directory costs several metadata operations (on ext4, journal commits: milliseconds).
//! Instead the file is kept open and holds two slots, written alternately in place with
//! `pwrite` + `fdatasync`: one small write and one data flush per grant. The slots live in
//! **different 4 KiB blocks** (offsets 0 and 4096; the file is 8 KiB), so a torn or lost write
//! of one block (a device writes whole sectors, a filesystem whole blocks) can damage only the
//! slot being written; the other still holds the previous grant, which is safe to fall back to
//! because the new grant was never answered. Each slot carries a CRC32C and a counter; loading
//! takes the valid slot with the highest counter.
//!
//! A witness that forgets grants could grant a term twice or skip a live lease, so the file is
//! strict:
//! - **Never created** (no file at the path): a first start, no state ([`WitnessStateFile::open`]
//!   creates it, fully initialised, through a temporary file and a rename, so the path either
//!   does not exist or holds a valid file).
//! - **Damaged** (wrong size, no valid slot, unreadable): [`WitnessStateError::Damaged`]; the
//!   witness refuses to start (an operator restores it or, knowing both nodes are stopped,
//!   removes it).
//! - **Older forms** (two 32-byte slots back to back in one block, or the text `"term
//!   holder"`): read, then rewritten in the current form through a temporary file and a rename
//!   (never truncated in place: a crash during the migration leaves the old file or the new
//!   one, never neither).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Current slot form ("XPW2" little-endian).
const MAGIC: u32 = 0x3257_5058;
/// The first binary form (two 32-byte slots at 0 and 32, no incarnation).
const MAGIC_V1: u32 = 0x5754_5058;
const V1_SLOT: usize = 32;
const SLOT_BYTES: usize = 40;
/// Each slot starts its own 4 KiB block.
pub const BLOCK: u64 = 4096;
/// The file's size: two blocks.
pub const FILE_BYTES: u64 = 2 * BLOCK;

/// A persisted grant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Grant {
    pub term: u64,
    pub holder: u32,
    /// The holder process's incarnation (0: unknown, from an older file form).
    pub incarnation: u64,
}

/// Why a state file cannot be used.
#[derive(Debug)]
pub enum WitnessStateError {
    /// Reading, creating or writing failed.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file exists but holds no valid grant (or has the wrong size).
    Damaged { path: PathBuf, reason: String },
}

impl std::fmt::Display for WitnessStateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WitnessStateError::Io { path, source } => {
                write!(f, "witness state file {}: {source}", path.display())
            }
            WitnessStateError::Damaged { path, reason } => write!(
                f,
                "witness state file {} is damaged ({reason}); refusing to start: restore it, \
                 or remove it only if both nodes are stopped (a witness without its state may \
                 grant a term twice)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for WitnessStateError {}

/// An open witness state file.
#[derive(Debug)]
pub struct WitnessStateFile {
    file: File,
    counter: u64,
}

fn encode_slot(g: Grant, counter: u64) -> [u8; SLOT_BYTES] {
    let mut b = [0u8; SLOT_BYTES];
    b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    b[4..8].copy_from_slice(&g.holder.to_le_bytes());
    b[8..16].copy_from_slice(&g.term.to_le_bytes());
    b[16..24].copy_from_slice(&counter.to_le_bytes());
    b[24..32].copy_from_slice(&g.incarnation.to_le_bytes());
    let crc = crc32c::crc32c(&b[..32]);
    b[32..36].copy_from_slice(&crc.to_le_bytes());
    b
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or([0; 4]))
}
fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]))
}

/// `(grant, counter)` of a valid current-form slot.
fn decode_slot(b: &[u8]) -> Option<(Grant, u64)> {
    if b.len() < SLOT_BYTES || u32_at(b, 0) != MAGIC || u32_at(b, 32) != crc32c::crc32c(&b[..32]) {
        return None;
    }
    let g = Grant {
        term: u64_at(b, 8),
        holder: u32_at(b, 4),
        incarnation: u64_at(b, 24),
    };
    Some((g, u64_at(b, 16)))
}

fn decode_v1_slot(b: &[u8]) -> Option<(Grant, u64)> {
    if b.len() < V1_SLOT || u32_at(b, 0) != MAGIC_V1 || u32_at(b, 24) != crc32c::crc32c(&b[..24]) {
        return None;
    }
    let g = Grant {
        term: u64_at(b, 8),
        holder: u32_at(b, 4),
        incarnation: 0,
    };
    Some((g, u64_at(b, 16)))
}

/// What a file's bytes hold.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// The current form: the newest valid slot and its counter.
    Current(Grant, u64),
    /// An older form (to be rewritten).
    Legacy(Grant),
}

fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    if bytes.len() as u64 == FILE_BYTES {
        let a = decode_slot(&bytes[..SLOT_BYTES]);
        let b = decode_slot(&bytes[BLOCK as usize..BLOCK as usize + SLOT_BYTES]);
        return match [a, b].into_iter().flatten().max_by_key(|&(_, c)| c) {
            Some((g, c)) => Ok(Parsed::Current(g, c)),
            None => Err("neither slot is valid".into()),
        };
    }
    if bytes.first().is_some_and(u8::is_ascii_digit) {
        let s = std::str::from_utf8(bytes).map_err(|_| "text form: not UTF-8".to_string())?;
        let mut it = s.split_whitespace();
        let term = it.next().and_then(|t| t.parse().ok());
        let holder = it.next().and_then(|h| h.parse().ok());
        return match (term, holder, it.next()) {
            (Some(term), Some(holder), None) => Ok(Parsed::Legacy(Grant {
                term,
                holder,
                incarnation: 0,
            })),
            _ => Err("text form: not \"term holder\"".into()),
        };
    }
    if bytes.len() == 2 * V1_SLOT {
        return bytes
            .chunks(V1_SLOT)
            .filter_map(decode_v1_slot)
            .max_by_key(|&(_, c)| c)
            .map(|(g, _)| Parsed::Legacy(g))
            .ok_or_else(|| "older form: neither slot is valid".into());
    }
    Err(format!(
        "{} bytes (a state file has {FILE_BYTES})",
        bytes.len()
    ))
}

/// Reads a persisted grant: `Ok(None)` when no file exists (never created), an error when one
/// exists but cannot be read or holds no valid grant.
pub fn load(path: &Path) -> Result<Option<Grant>, WitnessStateError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(WitnessStateError::Io {
                path: path.into(),
                source,
            })
        }
    };
    match parse(&bytes) {
        Ok(Parsed::Current(g, _)) | Ok(Parsed::Legacy(g)) => Ok(Some(g)),
        Err(reason) => Err(WitnessStateError::Damaged {
            path: path.into(),
            reason,
        }),
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> WitnessStateError + '_ {
    move |source| WitnessStateError::Io {
        path: path.into(),
        source,
    }
}

/// Writes a whole current-form file holding `g` in both slots next to `path`, syncs it and
/// renames it over `path`, then syncs the directory.
fn replace_whole(path: &Path, g: Grant) -> Result<(), WitnessStateError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut bytes = vec![0u8; FILE_BYTES as usize];
    bytes[..SLOT_BYTES].copy_from_slice(&encode_slot(g, 1));
    bytes[BLOCK as usize..BLOCK as usize + SLOT_BYTES].copy_from_slice(&encode_slot(g, 2));
    {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all_at(&bytes, 0).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

impl WitnessStateFile {
    /// Opens the state file, creating it (initialised, durably) when none exists; returns it
    /// and the grant it holds (`None`: never created before). A damaged file is an error.
    pub fn open(path: &Path) -> Result<(WitnessStateFile, Option<Grant>), WitnessStateError> {
        let found = load(path)?;
        let bytes_form_current = match std::fs::read(path) {
            Ok(b) => matches!(parse(&b), Ok(Parsed::Current(..))),
            Err(_) => false,
        };
        if !bytes_form_current {
            // Never created, or an older form: write the current form beside it and rename it
            // over (the old file stays whole until the rename).
            replace_whole(path, found.unwrap_or_default())?;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io(path))?;
        let mut bytes = vec![0u8; FILE_BYTES as usize];
        file.read_exact_at(&mut bytes, 0).map_err(io(path))?;
        let counter = match parse(&bytes) {
            Ok(Parsed::Current(_, c)) => c,
            Ok(Parsed::Legacy(_)) | Err(_) => {
                return Err(WitnessStateError::Damaged {
                    path: path.into(),
                    reason: "changed while opening".into(),
                })
            }
        };
        // A never-created file reads back as the empty grant: report it as no state.
        let found = found.filter(|g| *g != Grant::default());
        Ok((WitnessStateFile { file, counter }, found))
    }

    /// Makes the grant durable before it is answered.
    pub fn store(&mut self, term: u64, holder: u32, incarnation: u64) -> std::io::Result<()> {
        let counter = self.counter + 1;
        let at = (counter % 2) * BLOCK;
        let g = Grant {
            term,
            holder,
            incarnation,
        };
        self.file.write_all_at(&encode_slot(g, counter), at)?;
        self.file.sync_data()?;
        self.counter = counter;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tpx-wstate-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&d);
        d
    }

    fn g(term: u64, holder: u32, incarnation: u64) -> Grant {
        Grant {
            term,
            holder,
            incarnation,
        }
    }

    #[test]
    fn the_newest_grant_survives_reopen_and_a_torn_slot_falls_back() {
        let p = tmp("torn");
        let (mut f, found) = WitnessStateFile::open(&p).unwrap();
        assert_eq!(found, None);
        f.store(3, 1, 11).unwrap();
        f.store(4, 2, 22).unwrap();
        drop(f);
        assert_eq!(load(&p).unwrap(), Some(g(4, 2, 22)));
        let (mut f, found) = WitnessStateFile::open(&p).unwrap();
        assert_eq!(found, Some(g(4, 2, 22)));
        f.store(5, 1, 33).unwrap();
        drop(f);
        assert_eq!(load(&p).unwrap(), Some(g(5, 1, 33)));
        // Tear the slot holding term 5: the previous grant (never answered after) remains.
        let mut bytes = std::fs::read(&p).unwrap();
        let newest = (0..2)
            .find(|&i| decode_slot(&bytes[i * BLOCK as usize..]).is_some_and(|s| s.0.term == 5))
            .unwrap();
        bytes[newest * BLOCK as usize + 9] ^= 0xff;
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(load(&p).unwrap(), Some(g(4, 2, 22)));
        let _ = std::fs::remove_file(&p);
    }

    /// Item 5: the two slots are in different 4 KiB blocks, so losing one whole block (a torn
    /// block write zeroes or scrambles all of it) keeps the other grant.
    #[test]
    fn the_two_slots_live_in_different_4k_blocks() {
        let p = tmp("blocks");
        let (mut f, _) = WitnessStateFile::open(&p).unwrap();
        f.store(7, 1, 5).unwrap();
        f.store(8, 2, 6).unwrap();
        drop(f);
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.len() as u64, FILE_BYTES);
        for lost in 0..2usize {
            let mut b = bytes.clone();
            let at = lost * BLOCK as usize;
            b[at..at + BLOCK as usize].fill(0);
            std::fs::write(&p, &b).unwrap();
            let got = load(&p).unwrap().expect("the other block's grant");
            assert!(got == g(7, 1, 5) || got == g(8, 2, 6), "{got:?}");
        }
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn an_older_text_file_is_read_and_rewritten_in_slots() {
        let p = tmp("text");
        std::fs::write(&p, "7 2\n").unwrap();
        assert_eq!(load(&p).unwrap(), Some(g(7, 2, 0)));
        let (mut f, found) = WitnessStateFile::open(&p).unwrap();
        assert_eq!(found, Some(g(7, 2, 0)));
        f.store(8, 1, 9).unwrap();
        drop(f);
        assert_eq!(load(&p).unwrap(), Some(g(8, 1, 9)));
        assert_eq!(std::fs::read(&p).unwrap().len() as u64, FILE_BYTES);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn an_older_binary_file_is_migrated_through_a_rename() {
        let p = tmp("v1");
        let mut v1 = vec![0u8; 2 * V1_SLOT];
        let mut slot = [0u8; V1_SLOT];
        slot[0..4].copy_from_slice(&MAGIC_V1.to_le_bytes());
        slot[4..8].copy_from_slice(&2u32.to_le_bytes());
        slot[8..16].copy_from_slice(&9u64.to_le_bytes());
        slot[16..24].copy_from_slice(&3u64.to_le_bytes());
        let crc = crc32c::crc32c(&slot[..24]);
        slot[24..28].copy_from_slice(&crc.to_le_bytes());
        v1[V1_SLOT..].copy_from_slice(&slot);
        std::fs::write(&p, &v1).unwrap();
        let ino_before = std::fs::metadata(&p).unwrap();
        let (_, found) = WitnessStateFile::open(&p).unwrap();
        assert_eq!(found, Some(g(9, 2, 0)));
        use std::os::unix::fs::MetadataExt;
        assert_ne!(
            std::fs::metadata(&p).unwrap().ino(),
            ino_before.ino(),
            "migrated by writing a new file and renaming it, not by truncating in place"
        );
        let _ = std::fs::remove_file(&p);
    }

    /// Item 5: a damaged file is an error, never "no state"; a missing one is a first start.
    #[test]
    fn a_damaged_file_is_refused_and_a_missing_one_is_a_first_start() {
        let p = tmp("damaged");
        assert_eq!(load(&p).unwrap(), None, "never created: no state");
        for bad in [
            vec![0u8; 64],
            vec![],
            vec![0xAB; FILE_BYTES as usize],
            b"12 x\n".to_vec(),
            vec![1, 2, 3],
        ] {
            std::fs::write(&p, &bad).unwrap();
            let e = load(&p).unwrap_err();
            assert!(
                matches!(e, WitnessStateError::Damaged { .. }),
                "{bad:?}: {e}"
            );
            assert!(e.to_string().contains("refusing to start"), "{e}");
            let e = WitnessStateFile::open(&p).unwrap_err();
            assert!(matches!(e, WitnessStateError::Damaged { .. }), "{e}");
            assert_eq!(
                std::fs::read(&p).unwrap(),
                bad,
                "a damaged file is left as it was"
            );
        }
        let _ = std::fs::remove_file(&p);
    }
}

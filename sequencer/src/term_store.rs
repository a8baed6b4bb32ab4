//! The term a node was granted or told of, stored beside its log (Raft's `currentTerm`): a
//! node must never act in a term it could forget, or a restart could have it granted the same
//! term again and write different records at one `(term, seq)`.
//!
//! One file, [`TERM_FILE`]: one [`BLOCK`] holding a magic, the term and a CRC32C. It is
//! replaced whole: written to [`TERM_TMP`], made durable, then renamed over the old one (the
//! rename is durable when [`Storage::rename`] returns). A crash leaves the old or the new file,
//! never a mix. A file that is there but does not check is an error (the node refuses to
//! start), never "no term".

use std::io;

use crate::log::LogError;
use crate::storage::{AlignedBuf, Storage, BLOCK};

/// The term file's name in the log's folder.
pub const TERM_FILE: &str = "term";
/// Where a new term is written before the rename.
pub const TERM_TMP: &str = "term.tmp";
const MAGIC: &[u8; 8] = b"TPXTERM1";

fn corrupt(reason: &str) -> LogError {
    LogError::Corrupt {
        segment: TERM_FILE.to_string(),
        offset: 0,
        seq: 0,
        reason: reason.to_string(),
    }
}

/// The stored term (0 when no term file exists).
pub fn read_term<S: Storage>(st: &mut S) -> Result<u64, LogError> {
    let f = match st.open(TERM_FILE, false) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(LogError::Io(e)),
    };
    let mut buf = [0u8; 20];
    let r = st.read_at(f, 0, &mut buf);
    st.close(f);
    let n = r.map_err(LogError::Io)?;
    if n < buf.len() {
        return Err(corrupt("term file too short"));
    }
    if &buf[..8] != MAGIC {
        return Err(corrupt("term file: bad magic"));
    }
    let crc = u32::from_le_bytes(buf[16..20].try_into().expect("4 bytes"));
    if crc32c::crc32c(&buf[..16]) != crc {
        return Err(corrupt("term file: bad checksum"));
    }
    Ok(u64::from_le_bytes(buf[8..16].try_into().expect("8 bytes")))
}

/// Stores `term` durably. The first time: a temporary file, flushed, renamed over (the
/// rename and the folder are synced). After that the block is overwritten in place and
/// flushed: one data write (O_DIRECT | O_DSYNC, or a write and `fdatasync`), no metadata.
/// The 20 bytes that matter lie in the block's first 512-byte sector, and a sector write is
/// atomic (PostgreSQL keeps `pg_control` under one sector on the same assumption), so a crash
/// leaves the old term or the new one. The temporary file and rename took 2.8 ms at p50
/// (13 ms p99) on the shared VM, on every promotion and step-down; the overwrite about 0.4 ms.
pub fn write_term<S: Storage>(st: &mut S, term: u64) -> Result<(), LogError> {
    let mut block = AlignedBuf::new(BLOCK);
    block[..8].copy_from_slice(MAGIC);
    block[8..16].copy_from_slice(&term.to_le_bytes());
    let crc = crc32c::crc32c(&block[..16]);
    block[16..20].copy_from_slice(&crc.to_le_bytes());
    match st.open(TERM_FILE, false) {
        Ok(f) => {
            let whole = st.size(f).is_ok_and(|n| n >= BLOCK as u64);
            let r = if whole {
                st.write_at(f, 0, &block).and_then(|()| st.flush(f))
            } else {
                Err(io::Error::other("term file shorter than a block"))
            };
            st.close(f);
            if whole {
                return r.map_err(LogError::Io);
            }
            // A short file (never from this code): replaced whole, below.
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(LogError::Io(e)),
    }
    let f = st.open(TERM_TMP, true).map_err(LogError::Io)?;
    let r = st.write_at(f, 0, &block).and_then(|()| st.flush(f));
    st.close(f);
    r.map_err(LogError::Io)?;
    st.rename(TERM_TMP, TERM_FILE).map_err(LogError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;

    #[test]
    fn a_stored_term_survives_a_crash_and_a_damaged_file_is_an_error() {
        let mut st = MemStorage::new();
        assert_eq!(read_term(&mut st).unwrap(), 0);
        write_term(&mut st, 7).unwrap();
        write_term(&mut st, 9).unwrap();
        st.crash();
        assert_eq!(read_term(&mut st).unwrap(), 9);
        let mut bytes = st.contents(TERM_FILE).unwrap();
        bytes[9] ^= 1;
        st.set_contents(TERM_FILE, bytes);
        assert!(matches!(read_term(&mut st), Err(LogError::Corrupt { .. })));
        st.set_contents(TERM_FILE, vec![1, 2, 3]);
        assert!(read_term(&mut st).is_err());
    }

    /// After the first store, a new term overwrites the block in place (the same file: no
    /// temporary file, rename or folder sync on a promotion or step-down).
    #[test]
    fn a_later_term_overwrites_the_file_in_place() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let mut st =
            crate::storage::FileStorage::new(dir.path(), crate::storage::WriteMode::Buffered)
                .unwrap();
        write_term(&mut st, 3).unwrap();
        let ino = std::fs::metadata(dir.path().join(TERM_FILE)).unwrap().ino();
        write_term(&mut st, 4).unwrap();
        write_term(&mut st, 9).unwrap();
        let meta = std::fs::metadata(dir.path().join(TERM_FILE)).unwrap();
        assert_eq!(meta.ino(), ino, "overwritten in place, not replaced");
        assert_eq!(meta.len(), BLOCK as u64);
        assert!(!dir.path().join(TERM_TMP).exists());
        assert_eq!(read_term(&mut st).unwrap(), 9);
    }
}

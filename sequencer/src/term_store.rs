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

/// Stores `term` durably (temporary file, flush, rename over the old one).
pub fn write_term<S: Storage>(st: &mut S, term: u64) -> Result<(), LogError> {
    let mut block = AlignedBuf::new(BLOCK);
    block[..8].copy_from_slice(MAGIC);
    block[8..16].copy_from_slice(&term.to_le_bytes());
    let crc = crc32c::crc32c(&block[..16]);
    block[16..20].copy_from_slice(&crc.to_le_bytes());
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
}

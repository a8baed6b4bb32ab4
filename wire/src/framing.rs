//! TCP framing: a frame is one message, and its first two bytes (the header's `length`, u16
//! little-endian, header included) say how long it is.
//!
//! [`FrameBuffer`] accumulates bytes read from a stream and yields complete frames, without
//! allocating (it works in storage the caller gives it). A length below the header size or
//! above the maximum is garbage: the stream cannot be resynchronised, so the buffer reports
//! the error from then on and the connection should be closed (after a `Logout(MalformedFrame)`).

use crate::codec::chunk;
use crate::header::HEADER_LEN;

/// A length prefix that cannot start a valid frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameError {
    /// Shorter than a header.
    TooShort { declared: usize },
    /// Longer than the maximum frame length.
    TooLong { declared: usize, max: usize },
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::TooShort { declared } => {
                write!(f, "frame length {declared} < {HEADER_LEN}")
            }
            FrameError::TooLong { declared, max } => write!(f, "frame length {declared} > {max}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// The length of the frame at the front of `buf`: `Ok(None)` if fewer than 2 bytes are there,
/// `Ok(Some(len))` (which may be more than `buf` holds), or the error for a garbage length.
#[inline]
pub fn frame_len(buf: &[u8], max_frame_len: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.first_chunk::<2>() else {
        return Ok(None);
    };
    let declared = usize::from(u16::from_le_bytes(*prefix));
    if declared < HEADER_LEN {
        Err(FrameError::TooShort { declared })
    } else if declared > max_frame_len {
        Err(FrameError::TooLong {
            declared,
            max: max_frame_len,
        })
    } else {
        Ok(Some(declared))
    }
}

/// A complete frame and the bytes after it.
pub type FrameSplit<'a> = (&'a [u8], &'a [u8]);

/// Splits the first complete frame off `buf`: `Ok(Some((frame, rest)))`, `Ok(None)` if it is
/// not all there yet, or the error for a garbage length.
#[inline]
pub fn split_frame(buf: &[u8], max_frame_len: usize) -> Result<Option<FrameSplit<'_>>, FrameError> {
    Ok(match frame_len(buf, max_frame_len)? {
        Some(len) => buf.split_at_checked(len),
        None => None,
    })
}

/// An accumulating frame reader over caller-provided storage (`[u8; N]`, `Box<[u8]>`,
/// `&mut [u8]`, ...).
///
/// ```
/// use tpx_wire::framing::FrameBuffer;
/// let mut fb = FrameBuffer::new([0u8; 1024], 256);
/// fb.extend(&[8, 0, 4, 0, 1, 0, 1, 0, 8]); // one heartbeat frame and a byte of the next
/// assert_eq!(fb.next_frame().unwrap(), Some(&[8, 0, 4, 0, 1, 0, 1, 0][..]));
/// assert_eq!(fb.next_frame().unwrap(), None);
/// ```
#[derive(Debug)]
pub struct FrameBuffer<B> {
    storage: B,
    start: usize,
    end: usize,
    max_frame_len: usize,
    error: Option<FrameError>,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> FrameBuffer<B> {
    /// A reader that accepts frames of at most `max_frame_len` bytes (capped at the storage's
    /// length, so that every accepted frame fits).
    pub fn new(storage: B, max_frame_len: usize) -> FrameBuffer<B> {
        let cap = storage.as_ref().len();
        FrameBuffer {
            storage,
            start: 0,
            end: 0,
            max_frame_len: max_frame_len.min(cap),
            error: None,
        }
    }

    /// The largest frame accepted.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Bytes buffered and not yet yielded.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The error the stream hit, if any (it sticks: close the connection).
    pub fn error(&self) -> Option<FrameError> {
        self.error
    }

    /// Moves the unread bytes to the front of the storage.
    fn compact(&mut self) {
        if self.start > 0 {
            let (start, end) = (self.start, self.end);
            self.storage.as_mut().copy_within(start..end, 0);
            self.end = end - start;
            self.start = 0;
        }
    }

    /// Free space to read into (for `read(2)` or an io_uring buffer): compacts first, so it is
    /// at least `max_frame_len - buffered()` long. Call [`commit`](Self::commit) with the count.
    pub fn spare_mut(&mut self) -> &mut [u8] {
        self.compact();
        let end = self.end;
        self.storage.as_mut().get_mut(end..).unwrap_or(&mut [])
    }

    /// Marks `n` bytes of [`spare_mut`](Self::spare_mut) as filled (clamped to its length).
    pub fn commit(&mut self, n: usize) {
        let cap = self.storage.as_ref().len();
        self.end = self.end.saturating_add(n).min(cap);
    }

    /// Copies as much of `data` as fits; returns how many bytes were taken.
    pub fn extend(&mut self, data: &[u8]) -> usize {
        let spare = self.spare_mut();
        let n = spare.len().min(data.len());
        if let (Some(dst), Some(src)) = (spare.get_mut(..n), data.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.commit(n);
        n
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or the stream's error.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let unread = self
            .storage
            .as_ref()
            .get(self.start..self.end)
            .unwrap_or(&[]);
        match frame_len(unread, self.max_frame_len) {
            Err(e) => {
                self.error = Some(e);
                Err(e)
            }
            Ok(Some(len)) if len <= unread.len() => {
                let at = self.start;
                self.start += len;
                if self.start == self.end {
                    self.start = 0;
                    self.end = 0;
                }
                Ok(self.storage.as_ref().get(at..at + len))
            }
            Ok(_) => Ok(None),
        }
    }

    /// Drops everything buffered and any error (for a new connection).
    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
        self.error = None;
    }

    /// The frame's first 8 bytes, if buffered: lets a server see a template id early.
    pub fn peek_header(&self) -> Option<[u8; HEADER_LEN]> {
        let unread = self.storage.as_ref().get(self.start..self.end)?;
        (unread.len() >= HEADER_LEN).then(|| chunk::<HEADER_LEN>(unread, 0))
    }
}

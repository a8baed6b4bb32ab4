//! The storage seam: a directory of files addressed by name, opened into handles.
//!
//! [`FileStorage`] is the production implementation (O_DIRECT | O_DSYNC writes of 4 KiB
//! blocks into preallocated files, `fallocate`, buffered reads); [`MemStorage`] is an
//! in-memory implementation with a durable/volatile split (`crash()` drops what was not
//! flushed), a space limit (ENOSPC) and injectable write faults (ENOSPC, EIO, and torn writes:
//! [`Fault::Torn`]), for tests and the simulator.
//!
//! Offsets and lengths given to [`Storage::write_at`] by the log are multiples of [`BLOCK`] and
//! the buffers are [`BLOCK`]-aligned ([`AlignedBuf`]), which is what O_DIRECT requires.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The block size of log writes (and the alignment of their buffers).
pub const BLOCK: usize = 4096;

/// A handle returned by [`Storage::open`].
pub type FileId = u32;

/// A directory of files. Writes are durable once [`Storage::flush`] returns.
pub trait Storage {
    /// Names of the files in the directory, sorted.
    fn list(&mut self) -> io::Result<Vec<String>>;
    /// Opens (and with `create`, creates) a file for reading and writing.
    fn open(&mut self, name: &str, create: bool) -> io::Result<FileId>;
    /// Preallocates the file to at least `len` bytes (reads of the new space return zeros).
    /// Fails with `ENOSPC` (`io::ErrorKind::StorageFull`) when the space is not there.
    fn allocate(&mut self, f: FileId, len: u64) -> io::Result<()>;
    /// Writes all of `data` at `offset`.
    fn write_at(&mut self, f: FileId, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Appends `data` at the end of the file (not for O_DIRECT-aligned log files).
    fn append(&mut self, f: FileId, data: &[u8]) -> io::Result<u64> {
        let at = self.size(f)?;
        self.write_at(f, at, data)?;
        Ok(at)
    }
    /// A hint: `f` is about to be read front to back (the kernel reads ahead). No-op by default.
    fn advise_sequential(&mut self, _f: FileId) {}
    /// Makes every write to `f` so far durable.
    fn flush(&mut self, f: FileId) -> io::Result<()>;
    /// Writes all of `data` at `offset` with no promise of durability until [`Storage::sync`]
    /// (for a file that is not part of the log yet: the spare segment's zeros). The default is
    /// [`Storage::write_at`].
    fn write_unsynced(&mut self, f: FileId, offset: u64, data: &[u8]) -> io::Result<()> {
        self.write_at(f, offset, data)
    }
    /// Makes every write to `f` so far durable, [`Storage::write_unsynced`]'s included. The
    /// default is [`Storage::flush`].
    fn sync(&mut self, f: FileId) -> io::Result<()> {
        self.flush(f)
    }
    /// A descriptor of `f` on which a write of whole aligned blocks is durable when it
    /// completes (O_DIRECT | O_DSYNC), for a writer that submits its own IO (io_uring:
    /// [`crate::uring::UringLog`]). `None` (the default): write through the storage.
    fn direct_fd(&self, _f: FileId) -> Option<std::os::unix::io::RawFd> {
        None
    }
    /// Reads up to `buf.len()` bytes at `offset`; returns the bytes read (0 at the end).
    fn read_at(&mut self, f: FileId, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Sets the file's length (the cut is durable when this returns).
    fn truncate(&mut self, f: FileId, len: u64) -> io::Result<()>;
    /// The file's length in bytes.
    fn size(&mut self, f: FileId) -> io::Result<u64>;
    /// Forgets a handle.
    fn close(&mut self, f: FileId);
    /// Removes a file by name (the removal is durable when this returns).
    fn remove(&mut self, name: &str) -> io::Result<()>;
    /// Renames a file (durably), replacing `to`.
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()>;
}

/// Reads the whole of a file.
pub fn read_all<S: Storage + ?Sized>(st: &mut S, f: FileId) -> io::Result<Vec<u8>> {
    let len = st.size(f)? as usize;
    let mut buf = vec![0u8; len];
    let mut at = 0;
    while at < len {
        let n = st.read_at(f, at as u64, &mut buf[at..])?;
        if n == 0 {
            buf.truncate(at);
            break;
        }
        at += n;
    }
    Ok(buf)
}

/// A zeroed, [`BLOCK`]-aligned byte buffer of fixed capacity (for O_DIRECT writes).
pub struct AlignedBuf {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: AlignedBuf owns its allocation exclusively, like a Vec<u8>.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared references only read the bytes.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes, rounded up to a whole number of blocks.
    pub fn new(len: usize) -> AlignedBuf {
        let len = len.max(BLOCK).div_ceil(BLOCK) * BLOCK;
        let layout = std::alloc::Layout::from_size_align(len, BLOCK).expect("buffer layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(ptr) = std::ptr::NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        AlignedBuf { ptr, len }
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr points to len initialised bytes owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: ptr points to len initialised bytes owned exclusively by self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let layout = std::alloc::Layout::from_size_align(self.len, BLOCK).expect("buffer layout");
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}

/// How [`FileStorage`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// O_DIRECT | O_DSYNC: a write is durable when it returns; `flush` is a no-op.
    DirectSync,
    /// Buffered writes, `fdatasync` on flush (for filesystems without O_DIRECT).
    Buffered,
}

/// Real files in one directory.
#[derive(Debug)]
pub struct FileStorage {
    dir: PathBuf,
    mode: WriteMode,
    files: Vec<Option<OpenFile>>,
}

#[derive(Debug)]
struct OpenFile {
    /// The write descriptor (O_DIRECT | O_DSYNC in `DirectSync` mode).
    file: File,
    /// A plain descriptor for reads and zero-filling (O_DIRECT needs aligned buffers).
    plain: File,
    mode: WriteMode,
    /// O_DIRECT without O_DSYNC (`DirectSync` mode), opened by the first
    /// [`Storage::write_unsynced`].
    unsynced: Option<File>,
}

fn errno() -> io::Error {
    io::Error::last_os_error()
}

impl FileStorage {
    /// Opens (creating) the directory. With `WriteMode::DirectSync`, files on a filesystem that
    /// refuses O_DIRECT fall back to `Buffered` (see [`FileStorage::mode_of`]).
    pub fn new(dir: impl AsRef<Path>, mode: WriteMode) -> io::Result<FileStorage> {
        std::fs::create_dir_all(dir.as_ref())?;
        Ok(FileStorage {
            dir: dir.as_ref().to_path_buf(),
            mode,
            files: Vec::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The write mode a handle actually got.
    pub fn mode_of(&self, f: FileId) -> Option<WriteMode> {
        self.files.get(f as usize)?.as_ref().map(|o| o.mode)
    }

    fn file(&self, f: FileId) -> io::Result<&OpenFile> {
        self.files
            .get(f as usize)
            .and_then(|x| x.as_ref())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad file handle"))
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

/// A clone is a new handle table onto the same directory (for readers beside the writer).
impl Clone for FileStorage {
    fn clone(&self) -> Self {
        FileStorage {
            dir: self.dir.clone(),
            mode: self.mode,
            files: Vec::new(),
        }
    }
}

impl Storage for FileStorage {
    fn list(&mut self) -> io::Result<Vec<String>> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            if e.file_type()?.is_file() {
                if let Some(n) = e.file_name().to_str() {
                    v.push(n.to_string());
                }
            }
        }
        v.sort();
        Ok(v)
    }

    fn open(&mut self, name: &str, create: bool) -> io::Result<FileId> {
        let path = self.dir.join(name);
        let open = |flags: i32| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(create)
                .custom_flags(flags)
                .open(&path)
        };
        let (file, mode) = match self.mode {
            WriteMode::DirectSync => match open(libc::O_DIRECT | libc::O_DSYNC) {
                Ok(f) => (f, WriteMode::DirectSync),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (open(0)?, WriteMode::Buffered),
                Err(e) => return Err(e),
            },
            WriteMode::Buffered => (open(0)?, WriteMode::Buffered),
        };
        let plain = OpenOptions::new().read(true).write(true).open(&path)?;
        if create {
            self.sync_dir()?;
        }
        self.files.push(Some(OpenFile {
            file,
            plain,
            mode,
            unsynced: None,
        }));
        Ok((self.files.len() - 1) as FileId)
    }

    fn allocate(&mut self, f: FileId, len: u64) -> io::Result<()> {
        let o = self.file(f)?;
        // SAFETY: plain syscall on an open descriptor.
        let r = unsafe { libc::fallocate(o.file.as_raw_fd(), 0, 0, len as libc::off_t) };
        if r != 0 {
            let e = errno();
            if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
                return Err(e);
            }
            // No fallocate on this filesystem: write zeros.
            let zeros = vec![0u8; 1 << 20];
            let mut at = o.plain.metadata()?.len();
            while at < len {
                let n = ((len - at) as usize).min(zeros.len());
                o.plain.write_all_at(&zeros[..n], at)?;
                at += n as u64;
            }
        }
        o.plain.sync_all()
    }

    fn write_at(&mut self, f: FileId, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file(f)?.file.write_all_at(data, offset)
    }

    fn direct_fd(&self, f: FileId) -> Option<std::os::unix::io::RawFd> {
        let o = self.file(f).ok()?;
        (o.mode == WriteMode::DirectSync).then(|| o.file.as_raw_fd())
    }

    fn flush(&mut self, f: FileId) -> io::Result<()> {
        let o = self.file(f)?;
        match o.mode {
            WriteMode::DirectSync => Ok(()),
            WriteMode::Buffered => o.file.sync_data(),
        }
    }

    /// In `DirectSync` mode an O_DIRECT write without O_DSYNC: no cache flush (and on ext4 no
    /// journal commit for the extents it converts) per write; [`Storage::sync`] does one
    /// `fdatasync` for all of them. Buffered mode writes as `write_at` does.
    fn write_unsynced(&mut self, f: FileId, offset: u64, data: &[u8]) -> io::Result<()> {
        let o = self
            .files
            .get_mut(f as usize)
            .and_then(|x| x.as_mut())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad file handle"))?;
        if o.mode != WriteMode::DirectSync {
            return o.file.write_all_at(data, offset);
        }
        if o.unsynced.is_none() {
            // The same file whatever its name is now (it may have been renamed). Without
            // /proc (or if the open fails) the writes go through the O_DSYNC descriptor: slower,
            // as durable.
            let path = format!("/proc/self/fd/{}", o.plain.as_raw_fd());
            o.unsynced = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(path)
                .ok();
        }
        match &o.unsynced {
            Some(u) => u.write_all_at(data, offset),
            None => o.file.write_all_at(data, offset),
        }
    }

    fn sync(&mut self, f: FileId) -> io::Result<()> {
        self.file(f)?.plain.sync_data()
    }

    fn read_at(&mut self, f: FileId, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.file(f)?.plain.read_at(buf, offset)
    }

    fn advise_sequential(&mut self, f: FileId) {
        if let Ok(o) = self.file(f) {
            let fd = o.plain.as_raw_fd();
            // SAFETY: hints on an open descriptor; they change no data and may fail harmlessly.
            unsafe {
                libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_SEQUENTIAL);
                libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_WILLNEED);
            }
        }
    }

    fn truncate(&mut self, f: FileId, len: u64) -> io::Result<()> {
        let o = self.file(f)?;
        o.plain.set_len(len)?;
        o.plain.sync_all()
    }

    fn size(&mut self, f: FileId) -> io::Result<u64> {
        Ok(self.file(f)?.plain.metadata()?.len())
    }

    fn close(&mut self, f: FileId) {
        if let Some(slot) = self.files.get_mut(f as usize) {
            *slot = None;
        }
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.dir.join(name))?;
        self.sync_dir()
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.dir.join(from), self.dir.join(to))?;
        self.sync_dir()
    }
}

/// A fault [`MemStorage`] injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The next writes fail with ENOSPC.
    NoSpace,
    /// The next writes fail with EIO.
    Io,
    /// The power goes during the next writes, tearing each: of its 512-byte sectors, those
    /// before `sector` reach the disk, sector `sector` gets garbage (neither old nor new bytes),
    /// the later ones keep their old bytes. What is on the "disk" then (live and durable) is
    /// that; the write fails with EIO. A `sector` past the write's end lets it all through (and
    /// it still fails: the power went before the completion). Call `crash` after.
    Torn { sector: u32 },
}

/// The sector size [`Fault::Torn`] tears at.
pub const SECTOR: usize = 512;

#[derive(Clone, Debug, Default)]
struct MemFile {
    /// What a crash keeps.
    durable: Vec<u8>,
    /// What reads see.
    live: Vec<u8>,
}

/// One write as [`MemStorage`] saw it (for tests of write ordering).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteRecord {
    pub name: String,
    pub offset: u64,
    pub len: usize,
}

#[derive(Debug, Default)]
struct MemFs {
    files: BTreeMap<String, MemFile>,
    /// Total bytes the files may take (sum of lengths); `None`: unlimited.
    space_limit: Option<u64>,
    fault: Option<(Fault, u32)>,
    writes: Vec<WriteRecord>,
    record_writes: bool,
    write_delay: Option<std::time::Duration>,
}

impl MemFs {
    fn used(&self) -> u64 {
        self.files.values().map(|f| f.live.len() as u64).sum()
    }
}

/// In-memory files shared by every clone (a clone is another handle onto the same "disk").
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    fs: Arc<Mutex<MemFs>>,
    handles: Vec<Option<String>>,
}

impl MemStorage {
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    fn fs(&self) -> MutexGuard<'_, MemFs> {
        self.fs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn name(&self, f: FileId) -> io::Result<String> {
        self.handles
            .get(f as usize)
            .and_then(|x| x.clone())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad file handle"))
    }

    /// Limits the bytes all files may take together.
    pub fn set_space_limit(&self, limit: Option<u64>) {
        self.fs().space_limit = limit;
    }

    /// The next `count` writes (and allocations) fail with `fault`.
    pub fn inject(&self, fault: Fault, count: u32) {
        self.fs().fault = Some((fault, count));
    }

    /// Records every write from now on (see [`MemStorage::take_writes`]).
    pub fn record_writes(&self, on: bool) {
        self.fs().record_writes = on;
    }

    /// Makes every write sleep this long (to hold a write "in flight" in tests).
    pub fn set_write_delay(&self, d: Option<std::time::Duration>) {
        self.fs().write_delay = d;
    }

    pub fn take_writes(&self) -> Vec<WriteRecord> {
        std::mem::take(&mut self.fs().writes)
    }

    /// A crash: every file goes back to what was flushed.
    pub fn crash(&self) {
        for f in self.fs().files.values_mut() {
            f.live = f.durable.clone();
        }
    }

    /// The live bytes of a file.
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        self.fs().files.get(name).map(|f| f.live.clone())
    }

    /// Replaces a file's bytes (live and durable): for torn-tail and corruption tests.
    pub fn set_contents(&self, name: &str, bytes: Vec<u8>) {
        let mut fs = self.fs();
        let f = fs.files.entry(name.to_string()).or_default();
        f.live = bytes.clone();
        f.durable = bytes;
    }

    fn check_fault(fs: &mut MemFs) -> io::Result<()> {
        if let Some((Fault::Torn { .. }, _)) = fs.fault {
            // Torn writes are for `write_at`; other calls go through.
            return Ok(());
        }
        if let Some((fault, n)) = fs.fault {
            fs.fault = if n > 1 { Some((fault, n - 1)) } else { None };
            return Err(match fault {
                Fault::NoSpace => io::Error::from_raw_os_error(libc::ENOSPC),
                Fault::Io | Fault::Torn { .. } => io::Error::from_raw_os_error(libc::EIO),
            });
        }
        Ok(())
    }

    fn grow(fs: &mut MemFs, name: &str, len: u64) -> io::Result<()> {
        let cur = fs.files.get(name).map_or(0, |f| f.live.len() as u64);
        if len <= cur {
            return Ok(());
        }
        if let Some(limit) = fs.space_limit {
            if fs.used() + (len - cur) > limit {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
        }
        if let Some(f) = fs.files.get_mut(name) {
            f.live.resize(len as usize, 0);
        }
        Ok(())
    }
}

impl Storage for MemStorage {
    fn list(&mut self) -> io::Result<Vec<String>> {
        Ok(self.fs().files.keys().cloned().collect())
    }

    fn open(&mut self, name: &str, create: bool) -> io::Result<FileId> {
        {
            let mut fs = self.fs();
            if !fs.files.contains_key(name) {
                if !create {
                    return Err(io::Error::from(io::ErrorKind::NotFound));
                }
                fs.files.insert(name.to_string(), MemFile::default());
            }
        }
        self.handles.push(Some(name.to_string()));
        Ok((self.handles.len() - 1) as FileId)
    }

    fn allocate(&mut self, f: FileId, len: u64) -> io::Result<()> {
        let name = self.name(f)?;
        let mut fs = self.fs();
        Self::check_fault(&mut fs)?;
        Self::grow(&mut fs, &name, len)?;
        if let Some(file) = fs.files.get_mut(&name) {
            if file.durable.len() < file.live.len() {
                file.durable.resize(file.live.len(), 0);
            }
        }
        Ok(())
    }

    fn write_at(&mut self, f: FileId, offset: u64, data: &[u8]) -> io::Result<()> {
        let name = self.name(f)?;
        let delay = self.fs().write_delay;
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        let mut fs = self.fs();
        let torn = match fs.fault {
            Some((Fault::Torn { sector }, n)) => {
                fs.fault = (n > 1).then_some((Fault::Torn { sector }, n - 1));
                Some(sector as usize)
            }
            _ => None,
        };
        Self::check_fault(&mut fs)?;
        Self::grow(&mut fs, &name, offset + data.len() as u64)?;
        if let Some(sector) = torn {
            if let Some(file) = fs.files.get_mut(&name) {
                let o = offset as usize;
                let new_end = (sector * SECTOR).min(data.len());
                file.live[o..o + new_end].copy_from_slice(&data[..new_end]);
                let garbage_end = ((sector + 1) * SECTOR).min(data.len());
                for (i, b) in file.live[o + new_end..o + garbage_end]
                    .iter_mut()
                    .enumerate()
                {
                    *b = (i as u8).wrapping_mul(151).wrapping_add(0x5A) | 1;
                }
                file.durable = file.live.clone();
            }
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        if fs.record_writes {
            fs.writes.push(WriteRecord {
                name: name.clone(),
                offset,
                len: data.len(),
            });
        }
        if let Some(file) = fs.files.get_mut(&name) {
            let o = offset as usize;
            file.live[o..o + data.len()].copy_from_slice(data);
        }
        Ok(())
    }

    fn flush(&mut self, f: FileId) -> io::Result<()> {
        let name = self.name(f)?;
        let mut fs = self.fs();
        if let Some(file) = fs.files.get_mut(&name) {
            file.durable = file.live.clone();
        }
        Ok(())
    }

    fn read_at(&mut self, f: FileId, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let name = self.name(f)?;
        let fs = self.fs();
        let Some(file) = fs.files.get(&name) else {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        };
        let o = (offset as usize).min(file.live.len());
        let n = buf.len().min(file.live.len() - o);
        buf[..n].copy_from_slice(&file.live[o..o + n]);
        Ok(n)
    }

    fn truncate(&mut self, f: FileId, len: u64) -> io::Result<()> {
        let name = self.name(f)?;
        let mut fs = self.fs();
        if (fs.files.get(&name).map_or(0, |x| x.live.len()) as u64) < len {
            Self::grow(&mut fs, &name, len)?;
        }
        if let Some(file) = fs.files.get_mut(&name) {
            file.live.resize(len as usize, 0);
            file.durable.resize(len as usize, 0);
        }
        Ok(())
    }

    fn size(&mut self, f: FileId) -> io::Result<u64> {
        let name = self.name(f)?;
        Ok(self
            .fs()
            .files
            .get(&name)
            .map_or(0, |x| x.live.len() as u64))
    }

    fn close(&mut self, f: FileId) {
        if let Some(slot) = self.handles.get_mut(f as usize) {
            *slot = None;
        }
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.fs()
            .files
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        let mut fs = self.fs();
        let f = fs
            .files
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        fs.files.insert(to.to_string(), f);
        Ok(())
    }
}

/// Whether an IO error means "the disk is full".
pub fn is_no_space(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT)
}

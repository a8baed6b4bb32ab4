//! The engine's large tables (order slab, order-type table, client-id index, price ladders,
//! risk holds) in memory it maps itself: on 2 MiB pages where the host has them, every page
//! faulted in when the engine is built (or, for an engine built under [`deferring_prefault`],
//! beside its first use and before it serves), never at the first order that lands on it.
//!
//! A [`Table`] of at least [`HUGE_PAGE`] bytes is mapped, in this order of preference:
//!
//! 1. `mmap(MAP_HUGETLB | MAP_POPULATE)`: explicit 2 MiB pages from the host's reserved pool
//!    (`vm.nr_hugepages`); refused at once where the pool is too small.
//! 2. An anonymous mapping aligned to 2 MiB with `madvise(MADV_HUGEPAGE)`: transparent huge
//!    pages, which the kernel gives at the first touch where THP is `always` or `madvise`.
//! 3. Ordinary 4 KiB pages (THP `never`, or any `madvise` refusal).
//!
//! Smaller tables, and every table on a target without `mmap`, live on the heap. How the pages
//! are faulted in depends on the initial content:
//!
//! - A table built full of a value ([`Table::new`], [`Table::from_fn`]: the ladders' empty
//!   levels) writes every element, which faults the pages in.
//! - A table whose initial content is the kernel's zeros ([`Table::zeroed`], of `u64`: bitmaps, risk
//!   holds, the client-id index's buckets not in use yet), or that starts empty and grows into
//!   its memory ([`Table::with_capacity`] and [`Table::push`]: the order slab and the
//!   order-type table, which fill slots from a high-water mark), is faulted in by one zero byte
//!   written per 4 KiB page and not written otherwise: one pass over the memory (the kernel
//!   zeroing it) instead of two. With `max_orders = 2^20` that is ~160 MiB not written at an
//!   engine's build.
//!
//! Why huge pages: on the `heavy` workload (1 M resting orders, 10 ladders of 400,000 ticks:
//! ~450 MiB of tables) each command reaches an order, an index bucket and two levels at random
//! places; with 4 KiB pages every one of them is also a TLB miss (see "Deep books" in
//! `docs/ARCHITECTURE.md` for the numbers). Which page size a table got, and how it was faulted
//! in, never reaches events or the state hash: the engine stays a pure function of its input.
//!
//! All of the engine's `unsafe` is here: the mapping, the slice views of it, and the prefetch
//! hint.

use std::cell::RefCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The huge page size the tables are aligned to and mapped in.
pub(crate) const HUGE_PAGE: usize = 2 << 20;

/// The bytes one [`Prefault`] call faults in. Each call holds the process's memory-map lock,
/// so a thread that maps or unmaps memory meanwhile (a core growing a buffer, a thread
/// starting: its stack) waits for the call to end: on this project's VM a 2 MiB call of 4
/// KiB pages took ~5 ms, and `strace` of a start from a snapshot showed the sequencing core's
/// and the replay reader's `mmap`/`munmap` calls waiting 4-5 ms each (30 ms in all). 128 KiB
/// bounds the wait to ~0.3 ms, for 16 times the calls (~1,400 for 176 MiB of tables).
pub(crate) const PREFAULT_CHUNK: usize = 128 << 10;

/// How a table's memory was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// The heap (small tables; targets without `mmap`; a refused mapping).
    Heap,
    /// Explicit huge pages (`MAP_HUGETLB`).
    HugeTlb,
    /// A 2 MiB-aligned mapping advised `MADV_HUGEPAGE` (the kernel decides, at the first
    /// touch, whether it gets transparent huge pages).
    Transparent,
    /// A 2 MiB-aligned mapping whose `madvise` was refused: 4 KiB pages.
    Plain,
}

/// Bytes of the tables built so far in this process, by backing (for `memory_report`).
static BYTES_HUGETLB: AtomicU64 = AtomicU64::new(0);
static BYTES_THP: AtomicU64 = AtomicU64::new(0);
static BYTES_PLAIN: AtomicU64 = AtomicU64::new(0);
static BYTES_HEAP: AtomicU64 = AtomicU64::new(0);

/// Bytes of engine tables built in this process so far (not net of the ones dropped), by how
/// they were backed: `[hugetlb, transparent (advised), plain mapping, heap]`.
pub fn table_bytes_by_backing() -> [u64; 4] {
    [
        BYTES_HUGETLB.load(Ordering::Relaxed),
        BYTES_THP.load(Ordering::Relaxed),
        BYTES_PLAIN.load(Ordering::Relaxed),
        BYTES_HEAP.load(Ordering::Relaxed),
    ]
}

fn count(backing: Backing, bytes: usize) {
    let counter = match backing {
        Backing::HugeTlb => &BYTES_HUGETLB,
        Backing::Transparent => &BYTES_THP,
        Backing::Plain => &BYTES_PLAIN,
        Backing::Heap => &BYTES_HEAP,
    };
    counter.fetch_add(bytes as u64, Ordering::Relaxed);
}

/// A table of `T` in memory obtained once, on huge pages where possible, and faulted in when
/// built. It holds up to [`Table::capacity`] elements, of which the first [`Table::len`] are
/// initialised and the table derefs to; it never reallocates. Built full ([`Table::new`],
/// [`Table::from_fn`], [`Table::zeroed`]) or empty and filled by [`Table::push`]
/// ([`Table::with_capacity`]): either way every page of the capacity is faulted in at
/// construction.
pub(crate) struct Table<T: Copy> {
    ptr: NonNull<T>,
    /// Elements initialised (`[0, len)`, what the table derefs to).
    len: usize,
    /// Elements the memory holds.
    cap: usize,
    /// The mapping at `ptr` (`None`: a heap allocation of `cap` elements, see
    /// [`heap_layout`]). Shared only with a [`Prefault`] still faulting it in, which keeps it
    /// mapped until it is done.
    mapping: Option<Arc<Mapping>>,
    backing: Backing,
}

/// An anonymous mapping made by [`map`], unmapped when its last holder (its table, or a
/// [`Prefault`] still working on it) lets it go.
#[derive(Debug)]
struct Mapping {
    addr: usize,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        unmap(self.addr as *mut u8, self.len);
    }
}

// SAFETY: a `Table` owns its memory exclusively, like a `Box<[T]>`: nothing else reads or
// writes through the pointer (a `Prefault` holding the mapping only asks the kernel to fault
// its pages in, which changes no byte), so moving it to another thread or sharing `&Table` is
// as safe as for `Box<[T]>`.
unsafe impl<T: Copy + Send> Send for Table<T> {}
// SAFETY: as above; `&Table` only gives out `&[T]`.
unsafe impl<T: Copy + Sync> Sync for Table<T> {}

/// The layout of a heap table of `cap` elements (`None`: it takes no memory).
fn heap_layout<T>(cap: usize) -> Option<std::alloc::Layout> {
    let layout = std::alloc::Layout::array::<T>(cap).ok()?;
    (layout.size() > 0).then_some(layout)
}

impl<T: Copy> Table<T> {
    /// A table of `len` copies of `fill`.
    pub(crate) fn new(len: usize, fill: T) -> Table<T> {
        Table::from_fn(len, |_| fill)
    }

    /// A table whose element `i` is `f(i)`. Writing every element faults its pages in.
    pub(crate) fn from_fn(len: usize, mut f: impl FnMut(usize) -> T) -> Table<T> {
        let mut t: Table<T> = Table::raw(len);
        for i in 0..len {
            // SAFETY: `ptr` is fresh, writable memory for `cap = len` elements, suitably
            // aligned; element `i < len` is in it.
            unsafe { t.ptr.as_ptr().add(i).write(f(i)) };
        }
        t.len = len;
        t
    }

    /// An empty table with room for `cap` elements, every page of which is faulted in now
    /// (by the kernel where it can: no pass over the memory here).
    pub(crate) fn with_capacity(cap: usize) -> Table<T> {
        let t = Table::raw(cap);
        t.prefault();
        t
    }

    /// Appends `v` after the initialised elements; `false` (nothing written) when full.
    #[inline]
    pub(crate) fn push(&mut self, v: T) -> bool {
        if self.len == self.cap {
            return false;
        }
        // SAFETY: `len < cap`: element `len` is inside the memory, not initialised yet.
        unsafe { self.ptr.as_ptr().add(self.len).write(v) };
        self.len += 1;
        true
    }

    /// Elements the table can hold.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// How the table's memory was obtained.
    #[cfg(test)]
    pub(crate) fn backing(&self) -> Backing {
        self.backing
    }

    /// Memory for `cap` elements, none initialised, its pages not faulted in yet: mapped (2
    /// MiB-aligned) from [`HUGE_PAGE`] bytes up, else on the heap.
    fn raw(cap: usize) -> Table<T> {
        let bytes = cap.saturating_mul(std::mem::size_of::<T>());
        if bytes >= HUGE_PAGE {
            if let Some((ptr, mapped, backing)) = map::<T>(bytes) {
                count(backing, mapped);
                return Table {
                    ptr,
                    len: 0,
                    cap,
                    mapping: Some(Arc::new(Mapping {
                        addr: ptr.as_ptr() as usize,
                        len: mapped,
                    })),
                    backing,
                };
            }
        }
        count(Backing::Heap, bytes);
        let ptr = match heap_layout::<T>(cap) {
            Some(layout) => {
                // SAFETY: `layout` has a non-zero size.
                let raw = unsafe { std::alloc::alloc(layout) } as *mut T;
                NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
            }
            None => NonNull::dangling(),
        };
        Table {
            ptr,
            len: 0,
            cap,
            mapping: None,
            backing: Backing::Heap,
        }
    }

    /// Bytes mapped at `ptr` (0: on the heap).
    #[cfg(test)]
    fn mapped(&self) -> usize {
        self.mapping.as_ref().map_or(0, |m| m.len)
    }

    /// Faults every page of the memory in: a zero byte written to each 4 KiB page of a mapping
    /// (its bytes are the kernel's zeros already; on huge pages the first write to each 2 MiB
    /// faults it in, the others hit it), zeros written over a heap allocation (whose pages may
    /// hold anything, or be untouched). A `MAP_HUGETLB` mapping was populated when mapped.
    ///
    /// Not `madvise(MADV_POPULATE_WRITE)` here: the kernel holds the process's memory-map lock
    /// through the call, and on this project's shared VM the snapshot loader (which maps and
    /// unmaps memory while the engines are built beside it) and the build itself ran slower
    /// with it than with these faults, one page at a time (see ARCHITECTURE.md, "`tpx node`
    /// restart from a snapshot"). Inside [`deferring_prefault`] a mapped table is left to its
    /// [`Prefault`] instead, which does use it, on another thread, in calls of [`PREFAULT_CHUNK`].
    fn prefault(&self) {
        let base = self.ptr.as_ptr() as *mut u8;
        let Some(mapping) = &self.mapping else {
            if let Some(layout) = heap_layout::<T>(self.cap) {
                // SAFETY: the heap allocation is `layout.size()` writable bytes at `base`; no
                // element of it is initialised yet (`prefault` runs before any `push`), so no
                // value is overwritten.
                unsafe { std::ptr::write_bytes(base, 0, layout.size()) };
            }
            return;
        };
        if self.backing == Backing::HugeTlb {
            return;
        }
        if DEFERRED.with(|d| match d.borrow_mut().as_mut() {
            Some(list) => {
                list.push(mapping.clone());
                true
            }
            None => false,
        }) {
            return;
        }
        for off in (0..mapping.len).step_by(4096) {
            // SAFETY: `off < len`: inside the fresh anonymous mapping, whose bytes are
            // zero; writing a zero byte (volatile, so that it is not elided) faults its page
            // in and changes nothing.
            unsafe { base.add(off).write_volatile(0) };
        }
    }
}

thread_local! {
    /// While [`deferring_prefault`] runs on this thread: the mappings whose faulting in is left
    /// to the [`Prefault`] it returns.
    static DEFERRED: RefCell<Option<Vec<Arc<Mapping>>>> = const { RefCell::new(None) };
}

/// The pages of tables built by [`deferring_prefault`], still to be faulted in: share it with
/// other threads and [`Prefault::run`] it there while the tables are in use.
///
/// Only the mapped tables whose content is the kernel's zeros (filled by `push`, or
/// [`Table::zeroed`]) are deferred; tables written at their build (the ladders), heap tables and
/// `MAP_HUGETLB` ones are ready as usual. A deferred table is usable at once: a page not
/// faulted in yet is faulted in by its first touch, as in any process; what the deferral
/// gives up until [`Prefault::is_done`] is the promise that no access to the table faults.
#[derive(Debug, Default)]
pub struct Prefault {
    /// Kept mapped until this is dropped, whether or not their tables still are.
    mappings: Vec<Arc<Mapping>>,
    /// `(address, bytes)`, at most [`PREFAULT_CHUNK`] each.
    chunks: Vec<(usize, usize)>,
    /// The next chunk to take, and how many are done.
    next: std::sync::atomic::AtomicUsize,
    done: std::sync::atomic::AtomicUsize,
}

impl Prefault {
    fn of(mappings: Vec<Arc<Mapping>>) -> Prefault {
        let chunks = mappings
            .iter()
            .flat_map(|m| {
                (0..m.len)
                    .step_by(PREFAULT_CHUNK)
                    .map(move |off| (m.addr + off, PREFAULT_CHUNK.min(m.len - off)))
            })
            .collect();
        Prefault {
            mappings,
            chunks,
            ..Prefault::default()
        }
    }

    /// Bytes deferred.
    pub fn bytes(&self) -> u64 {
        self.mappings.iter().map(|m| m.len as u64).sum()
    }

    /// Faults pages of the deferred tables in, one chunk at a time, until no chunk is
    /// left to take; several threads may run it at once, each taking chunks the others have
    /// not. Each chunk is `madvise(MADV_POPULATE_WRITE)`: the kernel faults its pages in as if
    /// written and changes no byte, so it is safe beside the thread that owns the tables and
    /// writes them meanwhile (a user-space write of a zero byte here could overwrite that
    /// thread's value). One call per [`PREFAULT_CHUNK`], not per table: each call holds the
    /// process's memory-map lock (see [`Table::with_capacity`]), and a thread that maps memory
    /// meanwhile waits at most one chunk. A chunk the kernel refuses is left to fault in at its first
    /// touch.
    pub fn run(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(&(addr, len)) = self.chunks.get(i) else {
                return;
            };
            populate_write(addr, len);
            self.done.fetch_add(1, Ordering::Release);
        }
    }

    /// Whether every chunk has been faulted in (by whichever thread took it).
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire) >= self.chunks.len()
    }
}

/// Runs `build` (an engine's construction) with the faulting in of its large zero-content
/// tables left to the returned [`Prefault`], where the kernel can do that beside their use
/// (`MADV_POPULATE_WRITE`, Linux 5.14); elsewhere `build` runs as usual and the `Prefault` is
/// empty. A node restoring an image builds its engines this way (the restore and the replay
/// write only the tables' first pages; the rest is faulted in on another thread while they
/// run, and the node serves nothing before that is done).
pub fn deferring_prefault<R>(build: impl FnOnce() -> R) -> (R, Prefault) {
    if !populate_write_supported() {
        return (build(), Prefault::default());
    }
    let outer = DEFERRED.with(|d| d.borrow_mut().replace(Vec::new()));
    let r = build();
    let mappings = DEFERRED
        .with(|d| std::mem::replace(&mut *d.borrow_mut(), outer))
        .unwrap_or_default();
    (r, Prefault::of(mappings))
}

#[cfg(target_os = "linux")]
const MADV_POPULATE_WRITE: libc::c_int = 23;

/// Whether this kernel has `MADV_POPULATE_WRITE` (asked once, on a page of its own).
#[cfg(target_os = "linux")]
fn populate_write_supported() -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        let len = 4096;
        // SAFETY: a fresh anonymous private mapping of one page, used by nothing else, unmapped
        // below; madvise on it changes only whether it is resident.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return false;
            }
            let ok = libc::madvise(p, len, MADV_POPULATE_WRITE) == 0;
            libc::munmap(p, len);
            ok
        }
    })
}

#[cfg(not(target_os = "linux"))]
fn populate_write_supported() -> bool {
    false
}

/// `madvise(MADV_POPULATE_WRITE)` over `[addr, addr + len)` (a refusal leaves the pages to
/// fault in at their first touch).
#[cfg(target_os = "linux")]
fn populate_write(addr: usize, len: usize) {
    // SAFETY: the range is inside a mapping this process made and holds (an `Arc<Mapping>`
    // keeps it mapped); POPULATE_WRITE faults its pages in writable and changes no byte.
    unsafe { libc::madvise(addr as *mut libc::c_void, len, MADV_POPULATE_WRITE) };
}

#[cfg(not(target_os = "linux"))]
fn populate_write(_addr: usize, _len: usize) {}

impl Table<u64> {
    /// A table of `len` zeros, every page faulted in now: from a mapping, the kernel's zeroed
    /// pages as they are (no pass over the memory here).
    pub(crate) fn zeroed(len: usize) -> Table<u64> {
        let mut t = Table::with_capacity(len);
        // The memory is all zeros (a fresh anonymous mapping, or written by `prefault`), and
        // zero bytes are a valid `u64`: `len` initialised elements.
        t.len = len;
        t
    }
}

impl<T: Copy> Deref for Table<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points to `len` initialised elements (written in `from_fn` or `push`,
        // or the zeros of a `zeroed` table) that this table owns for its whole life; the borrow
        // of `self` keeps them alive and unaliased by any `&mut`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> DerefMut for Table<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for Table<T> {
    fn drop(&mut self) {
        // A mapping is unmapped when its `Arc` goes (here, or after a `Prefault` using it).
        if self.mapping.is_none() {
            if let Some(layout) = heap_layout::<T>(self.cap) {
                // SAFETY: a heap table's pointer was allocated in `raw` with this layout and
                // not freed since (`T: Copy` has no drop glue to run).
                unsafe { std::alloc::dealloc(self.ptr.as_ptr() as *mut u8, layout) };
            }
        }
    }
}

impl<T: Copy> Clone for Table<T> {
    /// The same capacity, faulted in, and a copy of the initialised elements.
    fn clone(&self) -> Table<T> {
        let mut t = Table::with_capacity(self.cap);
        // SAFETY: both tables hold `cap >= len` elements; the first `len` of `self` are
        // initialised; the two allocations are distinct.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), t.ptr.as_ptr(), self.len) };
        t.len = self.len;
        t
    }
}

impl<T: Copy> fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Table({} of {} x {} B, {:?})",
            self.len,
            self.cap,
            std::mem::size_of::<T>(),
            self.backing
        )
    }
}

/// Maps at least `bytes` for a table of `T`, 2 MiB-aligned: `(pointer, bytes mapped, backing)`,
/// or `None` if the system refuses (the caller falls back to the heap).
#[cfg(target_os = "linux")]
fn map<T>(bytes: usize) -> Option<(NonNull<T>, usize, Backing)> {
    if std::mem::align_of::<T>() > HUGE_PAGE {
        return None;
    }
    let len = bytes.checked_next_multiple_of(HUGE_PAGE)?;
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    // SAFETY: an anonymous private mapping at an address the kernel picks touches no existing
    // memory; the result is checked against MAP_FAILED before use.
    let huge = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            flags | libc::MAP_HUGETLB | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
    if huge != libc::MAP_FAILED {
        return Some((NonNull::new(huge as *mut T)?, len, Backing::HugeTlb));
    }
    // Over-map by one huge page, keep the 2 MiB-aligned `len` bytes inside, unmap the rest.
    let padded = len.checked_add(HUGE_PAGE)?;
    // SAFETY: as above.
    let raw = unsafe { libc::mmap(std::ptr::null_mut(), padded, prot, flags, -1, 0) };
    if raw == libc::MAP_FAILED {
        return None;
    }
    let start = raw as usize;
    let aligned = start.next_multiple_of(HUGE_PAGE);
    let head = aligned - start;
    let tail = padded - head - len;
    if head > 0 {
        unmap(raw as *mut u8, head);
    }
    if tail > 0 {
        unmap((aligned + len) as *mut u8, tail);
    }
    // SAFETY: `[aligned, aligned + len)` is inside the mapping just made and still mapped;
    // madvise only changes how the kernel backs it.
    let advised = unsafe { libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
    let backing = if advised == 0 {
        Backing::Transparent
    } else {
        Backing::Plain
    };
    Some((NonNull::new(aligned as *mut T)?, len, backing))
}

#[cfg(not(target_os = "linux"))]
fn map<T>(_bytes: usize) -> Option<(NonNull<T>, usize, Backing)> {
    None
}

/// Unmaps `[ptr, ptr + len)`, a range `map` mapped.
#[cfg(target_os = "linux")]
fn unmap(ptr: *mut u8, len: usize) {
    // SAFETY: the range was mapped by `map` and nothing refers to it any more (its table is
    // being dropped, or it is the unused padding of a fresh mapping). munmap of a valid range
    // cannot fail in a way that leaves memory unsafe to use; a failure only leaks it.
    unsafe {
        libc::munmap(ptr as *mut libc::c_void, len);
    }
}

#[cfg(not(target_os = "linux"))]
fn unmap(_ptr: *mut u8, _len: usize) {}

/// Hints the CPU to start loading the cache line holding `*r` (a no-op where there is no
/// prefetch instruction). Changes nothing the program can observe but time.
#[inline(always)]
pub(crate) fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and reads nothing into the program; `r` is a valid
    // reference anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            r as *const T as *const i8,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_tables_hold_their_values() {
        for len in [0usize, 1, 1000, (HUGE_PAGE / 8) + 3] {
            let mut t = Table::from_fn(len, |i| i as u64 * 3);
            assert_eq!(t.len(), len);
            assert!(t.iter().enumerate().all(|(i, &v)| v == i as u64 * 3));
            if len > 0 {
                t[len - 1] = 7;
                let c = t.clone();
                assert_eq!(&c[..], &t[..]);
                assert_eq!(c[len - 1], 7);
            }
            if len * 8 >= HUGE_PAGE && cfg!(target_os = "linux") {
                assert_ne!(t.backing(), Backing::Heap);
                assert_eq!(t.as_ptr() as usize % HUGE_PAGE, 0, "2 MiB-aligned");
            } else {
                assert_eq!(t.backing(), Backing::Heap);
            }
        }
    }

    #[test]
    fn over_aligned_elements_are_aligned() {
        #[derive(Clone, Copy)]
        #[repr(align(64))]
        struct Line(u8);
        let t = Table::new(10, Line(1));
        assert_eq!(t.as_ptr() as usize % 64, 0);
        assert!(t.iter().all(|l| l.0 == 1));
        let mut g: Table<Line> = Table::with_capacity(HUGE_PAGE / 64 + 1);
        assert!(g.push(Line(2)));
        assert_eq!(g.as_ptr() as usize % 64, 0);
    }

    /// A table filled by `push` holds what was pushed, refuses past its capacity, and clones
    /// with the same capacity (small and mapped).
    #[test]
    fn pushed_tables_grow_to_their_capacity() {
        for cap in [0usize, 1, 1000, (HUGE_PAGE / 8) + 3] {
            let mut t: Table<u64> = Table::with_capacity(cap);
            assert_eq!((t.len(), t.capacity()), (0, cap));
            for i in 0..cap.min(5000) {
                assert!(t.push(i as u64 * 7));
            }
            assert_eq!(t.len(), cap.min(5000));
            assert!(t.iter().enumerate().all(|(i, &v)| v == i as u64 * 7));
            let mut c = t.clone();
            assert_eq!((c.len(), c.capacity()), (t.len(), cap));
            assert_eq!(&c[..], &t[..]);
            while c.len() < cap {
                assert!(c.push(1));
            }
            assert!(!c.push(2), "full at its capacity");
            assert_eq!(c.len(), cap);
            if cap * 8 >= HUGE_PAGE && cfg!(target_os = "linux") {
                assert_ne!(t.backing(), Backing::Heap);
                assert_eq!(t.as_ptr() as usize % HUGE_PAGE, 0, "2 MiB-aligned");
                #[cfg(target_os = "linux")]
                assert_eq!(
                    resident_pages(&t),
                    t.mapped().div_ceil(page_size()),
                    "every page faulted in before the first push past the first page"
                );
            }
        }
    }

    /// A zeroed table reads zeros everywhere, small or mapped, and its pages are resident once
    /// built (faulted in by the kernel, not by the first write).
    #[test]
    fn zeroed_tables_are_zero_and_resident() {
        for len in [0usize, 1, 1000, 3 * HUGE_PAGE / 8 + 5] {
            let mut t: Table<u64> = Table::zeroed(len);
            assert_eq!(t.len(), len);
            assert!(t.iter().all(|&v| v == 0));
            if len > 0 {
                t[len - 1] = 9;
                assert_eq!(t.clone()[len - 1], 9);
            }
            #[cfg(target_os = "linux")]
            if t.backing() != Backing::Heap {
                assert_eq!(resident_pages(&t), t.mapped().div_ceil(page_size()));
            }
        }
    }

    /// Tables built under `deferring_prefault` are not faulted in by their build (what their
    /// owner writes is), and are once the `Prefault` ran on another thread, with every value the
    /// owner wrote meanwhile kept; a table dropped before the run leaves it harmless.
    #[cfg(target_os = "linux")]
    #[test]
    fn deferred_tables_fault_in_beside_their_use_and_keep_every_value() {
        let len = 4 * HUGE_PAGE / 8;
        let ((mut t, gone), pre) = deferring_prefault(|| {
            let t: Table<u64> = Table::zeroed(len);
            let gone: Table<u64> = Table::with_capacity(len);
            let small: Table<u64> = Table::zeroed(10);
            assert_eq!(
                small.backing(),
                Backing::Heap,
                "heap tables are not deferred"
            );
            (t, gone)
        });
        if !populate_write_supported() {
            assert_eq!(
                pre.bytes(),
                0,
                "nothing deferred without the kernel's support"
            );
            return;
        }
        assert_eq!(pre.bytes(), 2 * t.mapped() as u64);
        let pages = t.mapped() / page_size();
        assert!(
            resident_pages(&t) < pages / 2,
            "not faulted in by the build: {} of {pages}",
            resident_pages(&t)
        );
        drop(gone);
        let pre = Arc::new(pre);
        let worker = std::thread::spawn({
            let pre = pre.clone();
            move || pre.run()
        });
        // The owner writes across the table while the pages are faulted in beside it, then
        // helps with what is left.
        for round in 0..4u64 {
            for i in (0..len).step_by(97) {
                t[i] = i as u64 * 3 + round;
            }
        }
        pre.run();
        worker.join().unwrap();
        assert!(pre.is_done());
        assert_eq!(resident_pages(&t), pages, "every page faulted in");
        for i in 0..len {
            let want = if i % 97 == 0 { i as u64 * 3 + 3 } else { 0 };
            assert_eq!(t[i], want, "element {i}");
        }
        // Outside `deferring_prefault`, tables are faulted in at their build as before.
        let now: Table<u64> = Table::zeroed(len);
        assert_eq!(resident_pages(&now), now.mapped() / page_size());
    }

    #[cfg(target_os = "linux")]
    fn page_size() -> usize {
        // SAFETY: sysconf reads a constant.
        unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
    }

    /// Pages of `t`'s mapping resident in memory (`mincore`).
    #[cfg(target_os = "linux")]
    fn resident_pages<T: Copy>(t: &Table<T>) -> usize {
        let pages = t.mapped().div_ceil(page_size());
        let mut v = vec![0u8; pages];
        // SAFETY: `[ptr, ptr + mapped)` is the table's own mapping; `v` has one byte per page.
        let rc = unsafe {
            libc::mincore(
                t.ptr.as_ptr() as *mut libc::c_void,
                t.mapped(),
                v.as_mut_ptr(),
            )
        };
        assert_eq!(rc, 0);
        v.iter().filter(|&&b| b & 1 == 1).count()
    }
}

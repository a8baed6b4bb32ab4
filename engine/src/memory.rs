//! The engine's large tables (order slab, order-type table, client-id index, price ladders) in
//! memory it maps itself: on 2 MiB pages where the host has them, written in full (so every page
//! is faulted in) when the engine is built, never at the first order that lands on it.
//!
//! A [`Table`] of at least [`HUGE_PAGE`] bytes is mapped, in this order of preference:
//!
//! 1. `mmap(MAP_HUGETLB)`: explicit 2 MiB pages from the host's reserved pool
//!    (`vm.nr_hugepages`); refused at once where the pool is too small.
//! 2. An anonymous mapping aligned to 2 MiB with `madvise(MADV_HUGEPAGE)`: transparent huge
//!    pages, which the kernel gives at the first touch where THP is `always` or `madvise`.
//! 3. Ordinary 4 KiB pages (THP `never`, or any `madvise` refusal).
//!
//! Smaller tables, and every table on a target without `mmap`, live on the heap. In every case
//! the table is filled with its initial value when built, so the pages are faulted in then.
//!
//! Why: on the `heavy` workload (1 M resting orders, 10 ladders of 400,000 ticks: ~450 MiB of
//! tables) each command reaches an order, an index bucket and two levels at random places; with
//! 4 KiB pages every one of them is also a TLB miss (see "Deep books" in
//! `docs/ARCHITECTURE.md` for the numbers). Which page size a table got never reaches events or
//! the state hash: the engine stays a pure function of its input.
//!
//! All of the engine's `unsafe` is here: the mapping, the slice views of it, and the prefetch
//! hint.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

/// The huge page size the tables are aligned to and mapped in.
pub(crate) const HUGE_PAGE: usize = 2 << 20;

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

/// A fixed-length table of `T`, filled at construction, on huge pages where possible. Derefs
/// to `[T]`; never grows.
pub(crate) struct Table<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    /// Bytes mapped at `ptr` (0: a heap allocation, a leaked `Box<[T]>` of `len`).
    mapped: usize,
    backing: Backing,
}

// SAFETY: a `Table` owns its memory exclusively, like a `Box<[T]>`: nothing else holds the
// pointer, so moving it to another thread or sharing `&Table` is as safe as for `Box<[T]>`.
unsafe impl<T: Copy + Send> Send for Table<T> {}
// SAFETY: as above; `&Table` only gives out `&[T]`.
unsafe impl<T: Copy + Sync> Sync for Table<T> {}

impl<T: Copy> Table<T> {
    /// A table of `len` copies of `fill`.
    pub(crate) fn new(len: usize, fill: T) -> Table<T> {
        Table::from_fn(len, |_| fill)
    }

    /// A table whose element `i` is `f(i)`.
    pub(crate) fn from_fn(len: usize, mut f: impl FnMut(usize) -> T) -> Table<T> {
        let bytes = len.saturating_mul(std::mem::size_of::<T>());
        if bytes >= HUGE_PAGE {
            if let Some((ptr, mapped, backing)) = map::<T>(bytes) {
                for i in 0..len {
                    // SAFETY: `ptr` is a fresh, writable, suitably aligned (2 MiB, or the
                    // page size) mapping of at least `len * size_of::<T>()` bytes; element `i
                    // < len` is in it. Writing every element faults its pages in now.
                    unsafe { ptr.as_ptr().add(i).write(f(i)) };
                }
                count(backing, mapped);
                return Table {
                    ptr,
                    len,
                    mapped,
                    backing,
                };
            }
        }
        let mut v = Vec::with_capacity(len);
        // `extend` writes every element (a `vec![0; n]` would take lazily zeroed pages).
        v.extend((0..len).map(f));
        count(Backing::Heap, bytes);
        let boxed: Box<[T]> = v.into_boxed_slice();
        let raw = Box::into_raw(boxed) as *mut T;
        Table {
            // SAFETY: `Box::into_raw` never returns null (a dangling, aligned pointer for an
            // empty slice).
            ptr: unsafe { NonNull::new_unchecked(raw) },
            len,
            mapped: 0,
            backing: Backing::Heap,
        }
    }

    /// How the table's memory was obtained.
    #[cfg(test)]
    pub(crate) fn backing(&self) -> Backing {
        self.backing
    }
}

impl<T: Copy> Deref for Table<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points to `len` initialised elements (written in `from_fn`) that this
        // table owns for its whole life; the borrow of `self` keeps them alive and unaliased
        // by any `&mut`.
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
        if self.mapped > 0 {
            unmap(self.ptr.as_ptr() as *mut u8, self.mapped);
        } else {
            let slice = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
            // SAFETY: a heap table's pointer and length are those of the `Box<[T]>` leaked in
            // `from_fn`, not freed since (`T: Copy` has no drop glue to run twice).
            drop(unsafe { Box::from_raw(slice) });
        }
    }
}

impl<T: Copy> Clone for Table<T> {
    fn clone(&self) -> Table<T> {
        Table::from_fn(self.len, |i| self[i])
    }
}

impl<T: Copy> fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Table({} x {} B, {:?})",
            self.len,
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
    }
}

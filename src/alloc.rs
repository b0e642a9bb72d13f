//! A counting global allocator: the system allocator plus a live-byte counter per thread, so
//! that INFO's `used_memory` is the exact amount of heap the process holds (like Redis's
//! `zmalloc_used_memory`).
//!
//! What it owns: one cache-line-padded counter slot per thread (a shard is one thread, so a
//! shard's slot is what its thread allocated minus what it freed), claimed on the thread's first
//! allocation. Only the owning thread writes its slot (a relaxed load and store, no atomic
//! read-modify-write on the hot path); anyone may read all slots and sum them. Memory allocated
//! on one thread and freed on another moves the two slots in opposite directions: the sum is
//! exact, a single slot is not (that is why per-shard limits use the shard's dataset estimate,
//! see `shard::memory`).
//!
//! Sizes are counted as the whole chunk glibc takes for an allocation (the usable size plus its
//! 8-byte header: what the process really spends, so that `used_memory` compares honestly with
//! Redis's jemalloc, whose size classes carry no header), computed arithmetically so that
//! counting costs no extra call.
//!
//! What it must never do: allocate, lock, log or panic (it runs inside every allocation), or
//! keep state that needs a destructor (it is used during thread teardown).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};

/// Threads beyond this many share one overflow slot (updated atomically).
const SLOTS: usize = 1024;
const UNASSIGNED: usize = usize::MAX;

#[repr(align(64))]
struct Slot(AtomicIsize);

static COUNTERS: [Slot; SLOTS] = [const { Slot(AtomicIsize::new(0)) }; SLOTS];
static OVERFLOW: Slot = Slot(AtomicIsize::new(0));
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
static ACTIVE: AtomicBool = AtomicBool::new(false);

thread_local! {
    static MY_SLOT: Cell<usize> = const { Cell::new(UNASSIGNED) };
}

/// The usable size glibc malloc gives a request of `n` bytes on 64-bit Linux: chunks are
/// 16-byte aligned, carry an 8-byte header and are at least 32 bytes. Large requests are mmapped
/// whole pages; the difference there is below one page per allocation and is ignored.
#[inline]
pub const fn usable_size(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let chunk = (n + 8 + 15) & !15;
    if chunk < 32 {
        24
    } else {
        chunk - 8
    }
}

/// The whole chunk glibc malloc takes for a request of `n` bytes: the usable size plus the
/// 8-byte chunk header (so never less than 32).
#[inline]
pub const fn chunk_size(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    usable_size(n) + 8
}

#[inline]
fn add(delta: isize) {
    let _ = MY_SLOT.try_with(|s| {
        let mut i = s.get();
        if i == UNASSIGNED {
            i = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
            s.set(i);
        }
        match COUNTERS.get(i) {
            Some(slot) => {
                let v = slot.0.load(Ordering::Relaxed);
                slot.0.store(v.wrapping_add(delta), Ordering::Relaxed);
            }
            None => {
                OVERFLOW.0.fetch_add(delta, Ordering::Relaxed);
            }
        }
    });
}

/// The system allocator with per-thread live-byte counters. Install it with
/// `#[global_allocator]` (the `tessera` binary does, behind the default `counting-alloc`
/// feature); without it every reader here returns 0 and `is_active` is false.
pub struct CountingAlloc;

unsafe impl GlobalAlloc for CountingAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            add(chunk_size(layout.size()) as isize);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            add(chunk_size(layout.size()) as isize);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        add(-(chunk_size(layout.size()) as isize));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            add(chunk_size(new_size) as isize - chunk_size(layout.size()) as isize);
        }
        p
    }
}

impl CountingAlloc {
    /// Marks the counters as meaningful; the binary calls it first thing in `main`.
    pub fn activate(&self) {
        ACTIVE.store(true, Ordering::Relaxed);
    }
}

/// Whether the counting allocator is installed (so the totals below are real).
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Bytes currently allocated by the whole process (sum over every thread).
pub fn allocated_total() -> usize {
    let n = NEXT_SLOT.load(Ordering::Relaxed).min(SLOTS);
    let mut sum: isize = OVERFLOW.0.load(Ordering::Relaxed);
    for slot in &COUNTERS[..n] {
        sum = sum.wrapping_add(slot.0.load(Ordering::Relaxed));
    }
    sum.max(0) as usize
}

/// Net bytes allocated by the calling thread (negative when it freed more than it allocated,
/// e.g. values built on another shard and dropped here).
pub fn thread_allocated() -> isize {
    MY_SLOT
        .try_with(|s| {
            COUNTERS
                .get(s.get())
                .map_or(0, |slot| slot.0.load(Ordering::Relaxed))
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_sizes_follow_glibc_chunks() {
        assert_eq!(usable_size(0), 0);
        assert_eq!(usable_size(1), 24);
        assert_eq!(usable_size(24), 24);
        assert_eq!(usable_size(25), 40);
        assert_eq!(usable_size(40), 40);
        assert_eq!(usable_size(41), 56);
        assert_eq!(usable_size(100), 104);
        assert_eq!(chunk_size(0), 0);
        assert_eq!(chunk_size(1), 32);
        assert_eq!(chunk_size(88), 96);
        assert_eq!(chunk_size(89), 112);
    }
}

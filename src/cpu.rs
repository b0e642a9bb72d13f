//! CPU hints for hot paths: what a caller may ask the processor to do ahead of time.
//!
//! Owns only hints with no effect on any result (a prefetch never faults, whatever the address,
//! and changes no memory), so that their callers stay free of `unsafe`. Must never hold an
//! `unsafe` block that could touch memory.

/// Starts loading the cache line holding `*p` into every cache level, without waiting for it.
#[inline(always)]
pub fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it never faults and reads nothing into the program's state.
    // SSE is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            p as *const T as *const i8,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// `prefetch` for every cache line `*p` spans (a value that may straddle a line boundary, such
/// as a 72-byte dict node: its key may sit in the second line).
#[inline(always)]
pub fn prefetch_span<T>(p: &T) {
    prefetch(p);
    let last = (p as *const T as usize).wrapping_add(std::mem::size_of::<T>().saturating_sub(1));
    if last / 64 != p as *const T as usize / 64 {
        prefetch_addr(last);
    }
}

/// `prefetch` of a bare address (it need not point to anything: a prefetch never faults).
#[inline(always)]
fn prefetch_addr(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it never faults, whatever the address, and reads nothing
    // into the program's state.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

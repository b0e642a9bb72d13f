//! CRC64 as Redis computes it (Jones polynomial, reflected, the running value as the initial
//! one, no final xor), for RDB streams and DUMP payloads.
//!
//! Owns only the arithmetic. Long inputs are folded 64 bytes at a time with carry-less
//! multiplication where the CPU has it (PCLMULQDQ: about five times the table's speed here);
//! short ones, the last partial 16 bytes, and CPUs without it use the `crc64` crate's tables,
//! which stay the reference the folding is tested against. Must never give a different value
//! than the tables for any input.

/// The Jones polynomial without its x^64 term, in normal bit order.
#[cfg(target_arch = "x86_64")]
const POLY: u64 = 0xad93d23594c935a9;

/// Shortest input worth the folding path (it finishes through the tables on 16 bytes).
const FOLD_MIN: usize = 128;

/// CRC64 of `data` continuing from `crc` (0 to start).
pub fn crc64(crc: u64, data: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if data.len() >= FOLD_MIN
            && std::arch::is_x86_feature_detected!("pclmulqdq")
            && std::arch::is_x86_feature_detected!("sse2")
        {
            // SAFETY: the CPU has the features `fold` is compiled for.
            return unsafe { x86::fold(crc, data) };
        }
    }
    crc64::crc64(crc, data)
}

/// x^(n-1) mod P, bit-reflected (bit i is the coefficient of x^(63-i)): the constant that
/// moves a 64-bit reflected half forward by n bits. One less than n because a carry-less
/// product of two reflected values lands one bit short of the 128-bit reflected position.
#[cfg(target_arch = "x86_64")]
const fn fold_constant(n: u32) -> u64 {
    let mut r: u64 = 1;
    let mut i = 1;
    while i < n {
        let carry = r >> 63;
        r <<= 1;
        if carry == 1 {
            r ^= POLY;
        }
        i += 1;
    }
    r.reverse_bits()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::fold_constant;
    use std::arch::x86_64::*;

    /// One 128-bit lane forward by 128 bits: its high-degree half (the low 64 bits, reflected)
    /// times x^192, its low-degree half times x^128.
    const K_192: u64 = fold_constant(192);
    const K_128: u64 = fold_constant(128);
    /// The same across four lanes: forward by 512 bits.
    const K_576: u64 = fold_constant(576);
    const K_512: u64 = fold_constant(512);

    /// `a`'s low half times `lo`, plus its high half times `hi` (carry-less).
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2")]
    fn mul(a: __m128i, lo: u64, hi: u64) -> __m128i {
        let k = _mm_set_epi64x(hi as i64, lo as i64);
        _mm_xor_si128(
            _mm_clmulepi64_si128(a, k, 0x00),
            _mm_clmulepi64_si128(a, k, 0x11),
        )
    }

    #[inline]
    #[target_feature(enable = "sse2")]
    fn load(b: &[u8]) -> __m128i {
        let w: [u8; 16] = b[..16].try_into().expect("16 bytes");
        // SAFETY: an unaligned 16-byte load from a 16-byte array.
        unsafe { _mm_loadu_si128(w.as_ptr() as *const __m128i) }
    }

    /// Folds `data` (at least 64 bytes) into one 128-bit remainder-equivalent, whose CRC (and
    /// then the tail's) the tables finish.
    ///
    /// # Safety
    /// The CPU must have PCLMULQDQ and SSE2.
    #[target_feature(enable = "pclmulqdq,sse2")]
    pub(super) unsafe fn fold(crc: u64, data: &[u8]) -> u64 {
        let blocks = data.len() / 16;
        // The running CRC goes onto the first 64 bits of the message, as the tables do.
        let mut lanes = [
            _mm_xor_si128(load(data), _mm_set_epi64x(0, crc as i64)),
            load(&data[16..]),
            load(&data[32..]),
            load(&data[48..]),
        ];
        let mut b = 4;
        while b + 4 <= blocks {
            for (j, lane) in lanes.iter_mut().enumerate() {
                *lane = _mm_xor_si128(mul(*lane, K_576, K_512), load(&data[(b + j) * 16..]));
            }
            b += 4;
        }
        let mut acc = lanes[0];
        for lane in &lanes[1..] {
            acc = _mm_xor_si128(mul(acc, K_192, K_128), *lane);
        }
        while b < blocks {
            acc = _mm_xor_si128(mul(acc, K_192, K_128), load(&data[b * 16..]));
            b += 1;
        }
        let mut rest = [0u8; 16];
        // SAFETY: an unaligned 16-byte store into a 16-byte array.
        unsafe { _mm_storeu_si128(rest.as_mut_ptr() as *mut __m128i, acc) };
        // `acc` is congruent to the message so far: its CRC from 0 is the message's.
        let crc = crc64::crc64(0, &rest);
        crc64::crc64(crc, &data[blocks * 16..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_agrees_with_the_tables_for_every_length_offset_and_start() {
        assert_eq!(crc64(0, b"123456789"), 0xe9c6d914c4b8d9ca);
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let lens = (0..700).chain([1023, 1024, 1025, 4096, 65_537, 299_990]);
        for len in lens {
            for off in [0, 1, 9] {
                for start in [0u64, 0xdead_beef_cafe_babe, u64::MAX] {
                    let d = &data[off..off + len];
                    assert_eq!(crc64(start, d), crc64::crc64(start, d), "{len} {off}");
                }
            }
        }
        // Split anywhere, chained: the same value.
        let whole = crc64(0, &data);
        for cut in [1, 127, 128, 5000, 299_999] {
            assert_eq!(crc64(crc64(0, &data[..cut]), &data[cut..]), whole, "{cut}");
        }
    }
}

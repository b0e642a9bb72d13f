//! HyperLogLog values: Redis 7.0's byte layout, kept in an ordinary string value.
//!
//! Owns the representation only: the 16-byte header ("HYLL", the encoding byte, three unused
//! bytes, the cached cardinality in little endian whose top bit marks it stale), the sparse
//! encoding (ZERO, XZERO and VAL opcodes run-length coding the 16384 registers), the dense one
//! (16384 six-bit registers packed least significant bit first), MurmurHash64A with Redis's
//! seed, promotion from sparse to dense and Redis 7's cardinality estimator (Ertl's improved
//! raw estimator). Every byte produced here is the byte Redis would have produced for the same
//! operations, so that GET, DUMP/RESTORE and RDB files interoperate with Redis.
//!
//! Nothing here trusts the bytes it is given: a value is any string a client may have written,
//! so every walk over opcodes is bounded by the value's length, every register index is
//! checked, and corruption is reported as [`Corrupt`] (never a panic, never a loop that does
//! not advance). Where Redis reads the byte just past a value (the terminating zero of its
//! strings) while decoding a truncated XZERO opcode, this code reads a zero too, so that even
//! corrupt values behave as in Redis.
//!
//! Nothing here looks at the keyspace, replies to clients or reads configuration: callers pass
//! `hll-sparse-max-bytes` in.

/// Header bytes before the registers.
pub const HDR: usize = 16;
/// log2 of the number of registers.
pub const P: u32 = 14;
/// Bits of the hash left for the run of zeros once the register index is taken.
pub const Q: u32 = 64 - P;
pub const REGISTERS: usize = 1 << P;
/// Bits per dense register.
const BITS: usize = 6;
pub const REGISTER_MAX: u8 = (1 << BITS) - 1;
/// Length of a dense value, header included (Redis's `HLL_DENSE_SIZE`).
pub const DENSE_SIZE: usize = HDR + (REGISTERS * BITS).div_ceil(8);
pub const ENC_DENSE: u8 = 0;
pub const ENC_SPARSE: u8 = 1;
/// Largest value a sparse VAL opcode can hold; a bigger register forces the dense encoding.
const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: u32 = 4;
const SPARSE_ZERO_MAX_LEN: u32 = 64;
const SPARSE_XZERO_MAX_LEN: u32 = 16384;
/// The seed Redis hashes elements with.
const SEED: u64 = 0xadc83b19;
/// 0.5 / ln(2), the estimator's constant for an infinite number of registers.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// The error Redis gives for a value whose header is valid but whose registers are not.
pub const ERR_CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";
/// The error Redis gives for a string that is not a HyperLogLog.
pub const ERR_NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";

/// The registers of a value are not a valid encoding of 16384 registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// Redis's `MurmurHash64A` (little-endian reads, 64-bit), the hash HyperLogLog elements go
/// through. Eight bytes at a time.
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4a7935bd1e995;
    const R: u32 = 47;
    // Redis takes the length as a C `int`; lengths past 2 GB cannot reach here (the bulk length
    // limit is far lower in practice), and are hashed with their full length.
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element lands in and the length of its run of zeros plus one (Redis's
/// `hllPatLen`): 1..=Q+1.
#[inline]
pub fn pat_len(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The bit set at Q bounds the count at Q + 1.
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// A new, empty HyperLogLog: sparse, cached cardinality 0 (valid), every register in one XZERO
/// opcode (Redis's `createHLLObject`).
pub fn new_sparse() -> Vec<u8> {
    let opcodes = REGISTERS.div_ceil(SPARSE_XZERO_MAX_LEN as usize);
    let mut v = Vec::with_capacity(HDR + opcodes * 2);
    v.extend_from_slice(b"HYLL");
    v.push(ENC_SPARSE);
    v.extend_from_slice(&[0; 11]);
    let mut left = REGISTERS as u32;
    while left > 0 {
        let n = left.min(SPARSE_XZERO_MAX_LEN);
        v.extend_from_slice(&xzero(n));
        left -= n;
    }
    v
}

/// Whether a string is a HyperLogLog as far as Redis checks before using one
/// (`isHLLObjectOrReply`): the magic, a known encoding, and the exact size when dense.
/// Integer-encoded strings never are (the caller checks that).
pub fn is_hll(v: &[u8]) -> bool {
    v.len() >= HDR
        && &v[..4] == b"HYLL"
        && v[4] <= ENC_SPARSE
        && (v[4] != ENC_DENSE || v.len() == DENSE_SIZE)
}

/// The cached cardinality, if the header says it is still valid.
#[inline]
pub fn cached(v: &[u8]) -> Option<u64> {
    let card = u64::from_le_bytes(v[8..16].try_into().ok()?);
    (v[15] & 0x80 == 0).then_some(card)
}

/// Stores a cardinality in the header cache (little endian, as Redis writes it).
#[inline]
pub fn set_cached(v: &mut [u8], card: u64) {
    v[8..16].copy_from_slice(&card.to_le_bytes());
}

/// Marks the cached cardinality stale.
#[inline]
pub fn invalidate(v: &mut [u8]) {
    v[15] |= 0x80;
}

/// The byte at `i`; past the end, the byte Redis's string has there (`tail`, normally its
/// terminating zero), which its decoders read when the last opcode is a truncated XZERO.
#[inline]
fn at(v: &[u8], i: usize, tail: u8) -> u8 {
    match v.get(i) {
        Some(&b) => b,
        None if i == v.len() => tail,
        None => 0,
    }
}

#[inline]
fn is_zero(b: u8) -> bool {
    b & 0xc0 == 0
}

#[inline]
fn is_xzero(b: u8) -> bool {
    b & 0xc0 == 0x40
}

#[inline]
fn is_val(b: u8) -> bool {
    b & 0x80 != 0
}

#[inline]
fn val_value(b: u8) -> u8 {
    ((b >> 2) & 0x1f) + 1
}

#[inline]
fn val_len(b: u8) -> u32 {
    (b & 3) as u32 + 1
}

#[inline]
fn zero_len(b: u8) -> u32 {
    (b & 0x3f) as u32 + 1
}

#[inline]
fn xzero_len(v: &[u8], p: usize, tail: u8) -> u32 {
    ((((v[p] & 0x3f) as u32) << 8) | at(v, p + 1, tail) as u32) + 1
}

#[inline]
fn val(value: u8, len: u32) -> u8 {
    (((value - 1) << 2) | (len as u8 - 1)) | 0x80
}

#[inline]
fn xzero(len: u32) -> [u8; 2] {
    let l = len - 1;
    [((l >> 8) as u8) | 0x40, (l & 0xff) as u8]
}

/// One decoded sparse opcode: (registers it covers, their value, bytes it takes).
#[inline]
fn opcode(v: &[u8], p: usize, tail: u8) -> (u32, u8, usize) {
    let b = v[p];
    if is_zero(b) {
        (zero_len(b), 0, 1)
    } else if is_xzero(b) {
        (xzero_len(v, p, tail), 0, 2)
    } else {
        (val_len(b), val_value(b), 1)
    }
}

/// Dense register `i` of the register bytes `regs` (the value past its header).
#[inline]
pub fn dense_get(regs: &[u8], i: usize) -> u8 {
    let bit = i * BITS;
    let (byte, fb) = (bit / 8, bit & 7);
    let b0 = regs[byte] as u16;
    let b1 = at(regs, byte + 1, 0) as u16;
    (((b0 >> fb) | (b1 << (8 - fb))) & REGISTER_MAX as u16) as u8
}

/// Sets dense register `i` (Redis's `HLL_DENSE_SET_REGISTER`).
#[inline]
pub fn dense_put(regs: &mut [u8], i: usize, value: u8) {
    let bit = i * BITS;
    let (byte, fb) = (bit / 8, bit & 7);
    let v = value as u16 & REGISTER_MAX as u16;
    let mask = (REGISTER_MAX as u16) << fb;
    regs[byte] = (regs[byte] & !(mask as u8)) | ((v << fb) as u8);
    let hi = (mask >> 8) as u8;
    if hi != 0 {
        if let Some(b) = regs.get_mut(byte + 1) {
            *b = (*b & !hi) | ((v << fb) >> 8) as u8;
        }
    }
}

/// Raises dense register `i` to `count`; true if it was lower (Redis's `hllDenseSet`).
#[inline]
fn dense_set(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_put(regs, i, count);
        true
    } else {
        false
    }
}

/// Calls `f` with every group of four dense registers (three bytes): the whole register area
/// in 4096 steps, without per-register index arithmetic.
#[inline]
fn dense_groups(regs: &[u8], mut f: impl FnMut(usize, [u8; 4])) {
    for (g, b) in regs[..REGISTERS * BITS / 8].chunks_exact(3).enumerate() {
        let w = b[0] as u32 | (b[1] as u32) << 8 | (b[2] as u32) << 16;
        f(
            g * 4,
            [
                (w & 63) as u8,
                ((w >> 6) & 63) as u8,
                ((w >> 12) & 63) as u8,
                ((w >> 18) & 63) as u8,
            ],
        );
    }
}

/// Converts a sparse value to dense in place (Redis's `hllSparseToDense`): the header is kept
/// (cached cardinality included) with the dense encoding byte. A value already dense is left
/// alone. Corrupt sparse data leaves the value unchanged.
pub fn to_dense(v: &mut Vec<u8>) -> Result<(), Corrupt> {
    to_dense_tail(v, 0)
}

/// `to_dense` of a value whose string has `tail` just past its end (see [`sparse_set`]).
fn to_dense_tail(v: &mut Vec<u8>, tail: u8) -> Result<(), Corrupt> {
    if v[4] == ENC_DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR].copy_from_slice(&v[..HDR]);
    dense[4] = ENC_DENSE;
    let regs = &mut dense[HDR..];
    let mut idx: u64 = 0;
    let mut p = HDR;
    while p < v.len() {
        let (run, value, oplen) = opcode(v, p, tail);
        // Any opcode that runs past the last register makes the value corrupt (Redis with
        // the fix for CVE-2025-32023, as the reference redis-server has it).
        if idx + run as u64 > REGISTERS as u64 {
            return Err(Corrupt);
        }
        if value != 0 {
            for i in idx..idx + run as u64 {
                dense_put(regs, i as usize, value);
            }
        }
        idx += run as u64;
        p += oplen;
    }
    if idx != REGISTERS as u64 {
        return Err(Corrupt);
    }
    *v = dense;
    Ok(())
}

/// Raises register `index` of a sparse value to `count` (Redis's `hllSparseSet`, byte for
/// byte: the same opcode splits, the same merge of neighbouring VAL opcodes, promotion to
/// dense when the value would outgrow `max_bytes` or `count` does not fit a VAL opcode).
/// Ok(true) when the register changed (the cache is then marked stale if the value stayed
/// sparse; the caller invalidates it anyway).
///
/// `tail` is the byte Redis's string holds just past the value's end: its terminating zero,
/// except after Redis split a truncated XZERO opcode at the very end of a corrupt value, where
/// it copies the new opcodes over the terminator it has just written. Such a value reads
/// differently until the end of the command; callers start every command with 0.
pub fn sparse_set(
    v: &mut Vec<u8>,
    tail: &mut u8,
    index: usize,
    count: u8,
    max_bytes: u64,
) -> Result<bool, Corrupt> {
    if count > SPARSE_VAL_MAX_VALUE {
        return promote(v, tail, index, count);
    }
    // Step 1: the opcode that covers the register.
    let end = v.len();
    let index = index as u64;
    let mut p = HDR;
    let mut first: u64 = 0;
    let mut prev: Option<usize> = None;
    let mut span: u64 = 0;
    while p < end {
        let (run, _, oplen) = opcode(v, p, *tail);
        span = run as u64;
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += oplen;
        first += span;
    }
    if span == 0 || p >= end {
        return Err(Corrupt);
    }
    let b = v[p];
    let oplen = if is_xzero(b) { 2 } else { 1 };
    let next = Some(p + oplen).filter(|&n| n < end);
    let last = first + span - 1;

    // Step 2: the trivial updates in place.
    if is_val(b) {
        let old = val_value(b);
        if old >= count {
            return Ok(false);
        }
        if val_len(b) == 1 {
            v[p] = val(count, 1);
            merge_vals(v, tail, prev);
            return Ok(true);
        }
    }
    if is_zero(b) && zero_len(b) == 1 {
        v[p] = val(count, 1);
        merge_vals(v, tail, prev);
        return Ok(true);
    }

    // General case: the opcode is split in up to three (XZERO-VAL-XZERO at worst).
    let mut seq = [0u8; 5];
    let mut n = 0;
    if is_val(b) {
        let cur = val_value(b);
        if index != first {
            seq[n] = val(cur, (index - first) as u32);
            n += 1;
        }
        seq[n] = val(count, 1);
        n += 1;
        if index != last {
            seq[n] = val(cur, (last - index) as u32);
            n += 1;
        }
    } else {
        if index != first {
            push_zeros(&mut seq, &mut n, index - first);
        }
        seq[n] = val(count, 1);
        n += 1;
        if index != last {
            push_zeros(&mut seq, &mut n, last - index);
        }
    }

    // Step 3: the new sequence replaces the old opcode.
    let delta = n as i64 - oplen as i64;
    if delta > 0 && (end as u64).saturating_add(delta as u64) > max_bytes {
        return promote(v, tail, index as usize, count);
    }
    let new_len = (end as i64 + delta) as usize;
    match next {
        Some(nx) => {
            v.splice(p..nx, seq[..n].iter().copied());
            *tail = 0;
        }
        None => {
            // The opcode was the last one. A truncated XZERO (its second byte past the end)
            // leaves the value one byte shorter than the new sequence, as in Redis, whose
            // copy of the sequence puts that byte where its terminator was.
            v.truncate(p);
            v.extend_from_slice(&seq[..n]);
            *tail = if new_len < v.len() { seq[n - 1] } else { 0 };
            v.truncate(new_len);
        }
    }
    merge_vals(v, tail, prev);
    Ok(true)
}

/// Appends a run of `len` zero registers to a split sequence: ZERO up to 64, XZERO past it.
fn push_zeros(seq: &mut [u8; 5], n: &mut usize, len: u64) {
    if len > SPARSE_ZERO_MAX_LEN as u64 {
        seq[*n..*n + 2].copy_from_slice(&xzero(len as u32));
        *n += 2;
    } else {
        seq[*n] = (len - 1) as u8;
        *n += 1;
    }
}

/// Step 4 of Redis's `hllSparseSet`: from the opcode before the changed one, up to five
/// opcodes are scanned and adjacent VAL opcodes with the same value are merged while their
/// length fits. Also marks the cache stale.
fn merge_vals(v: &mut Vec<u8>, tail: &mut u8, prev: Option<usize>) {
    let mut p = prev.unwrap_or(HDR);
    let mut scan = 5;
    while p < v.len() && scan > 0 {
        scan -= 1;
        let b = v[p];
        if is_xzero(b) {
            p += 2;
            continue;
        }
        if is_zero(b) {
            p += 1;
            continue;
        }
        if p + 1 < v.len() && is_val(v[p + 1]) {
            let (v1, v2) = (val_value(b), val_value(v[p + 1]));
            if v1 == v2 {
                let len = val_len(b) + val_len(v[p + 1]);
                if len <= SPARSE_VAL_MAX_LEN {
                    v[p + 1] = val(v1, len);
                    v.remove(p);
                    // Redis shortens its string by one, writing a new terminator.
                    *tail = 0;
                    // Try again from here: the merged opcode may merge with the next one.
                    continue;
                }
            }
        }
        p += 1;
    }
    invalidate(v);
}

/// Converts to dense, then sets the register (Redis's `promote:` path).
fn promote(v: &mut Vec<u8>, tail: &mut u8, index: usize, count: u8) -> Result<bool, Corrupt> {
    to_dense_tail(v, *tail)?;
    *tail = 0;
    dense_set(&mut v[HDR..], index, count);
    Ok(true)
}

/// Adds one element (Redis's `hllAdd`): Ok(true) when a register changed. The caller checked
/// the header with [`is_hll`]; `tail` is as for [`sparse_set`].
#[inline]
pub fn add(v: &mut Vec<u8>, tail: &mut u8, ele: &[u8], max_bytes: u64) -> Result<bool, Corrupt> {
    let (index, count) = pat_len(ele);
    if v[4] == ENC_DENSE {
        Ok(dense_set(&mut v[HDR..], index, count))
    } else {
        sparse_set(v, tail, index, count, max_bytes)
    }
}

/// Raises `max[i]` to register `i` of `v`, for every register (Redis's `hllMerge`). A sparse
/// value whose opcodes do not cover exactly 16384 registers is corrupt (an opcode past the
/// last register too, as in Redis with the fix for CVE-2025-32023); `max` may then be partly
/// updated, as in Redis (the caller discards it).
pub fn merge_into(max: &mut [u8; REGISTERS], v: &[u8]) -> Result<(), Corrupt> {
    if v[4] == ENC_DENSE {
        dense_groups(&v[HDR..], |i, r| {
            for (m, x) in max[i..i + 4].iter_mut().zip(r) {
                if x > *m {
                    *m = x;
                }
            }
        });
        return Ok(());
    }
    let mut idx: u64 = 0;
    let mut p = HDR;
    while p < v.len() {
        let (run, value, oplen) = opcode(v, p, 0);
        if idx + run as u64 > REGISTERS as u64 {
            return Err(Corrupt);
        }
        if value != 0 {
            for m in &mut max[idx as usize..idx as usize + run as usize] {
                if value > *m {
                    *m = value;
                }
            }
        }
        idx += run as u64;
        p += oplen;
    }
    if idx != REGISTERS as u64 {
        return Err(Corrupt);
    }
    Ok(())
}

/// The estimated cardinality of a value (Redis's `hllCount`), recomputed from the registers
/// whatever the cache says.
pub fn count(v: &[u8]) -> Result<u64, Corrupt> {
    let mut histo = [0u64; 64];
    if v[4] == ENC_DENSE {
        dense_groups(&v[HDR..], |_, r| {
            for x in r {
                histo[x as usize] += 1;
            }
        });
    } else {
        let mut idx: u64 = 0;
        let mut p = HDR;
        while p < v.len() {
            let (run, value, oplen) = opcode(v, p, 0);
            idx += run as u64;
            histo[value as usize] += run as u64;
            p += oplen;
        }
        // Redis adds these up in 32-bit integers, which a value of half a megabyte of zero
        // runs can wrap around to exactly 16384; counted in 64 bits, such a value is corrupt
        // (as PFMERGE and PFCOUNT of several keys find it in Redis too).
        if idx != REGISTERS as u64 {
            return Err(Corrupt);
        }
    }
    Ok(estimate(&histo))
}

/// The estimated cardinality of bare registers, one byte each (PFCOUNT of several keys).
pub fn count_registers(max: &[u8; REGISTERS]) -> u64 {
    let mut histo = [0u64; 64];
    for c in max.chunks_exact(8) {
        if u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])) == 0 {
            histo[0] += 8;
        } else {
            for &x in c {
                histo[(x & 63) as usize] += 1;
            }
        }
    }
    estimate(&histo)
}

/// Redis's `hllSigma`.
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let z_prev = z;
        z += x * y;
        y += y;
        if z_prev == z {
            return z;
        }
    }
}

/// Redis's `hllTau`.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let z_prev = z;
        y *= 0.5;
        let d = 1.0 - x;
        z -= d * d * y;
        if z_prev == z {
            return z / 3.0;
        }
    }
}

/// Ertl's improved raw estimator over a register histogram, rounded as Redis rounds it
/// (`llroundl`, then through a double to an unsigned 64-bit integer).
fn estimate(histo: &[u64; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - histo[Q as usize + 1] as f64) / m);
    for j in (1..=Q as usize).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    let e = ALPHA_INF * m * m / z;
    // `llroundl` of a value out of range (registers all past Q + 1 make z 0 and e infinite)
    // gives LLONG_MIN on x86-64; Redis then converts that through a double to 2^63.
    let r = if e.is_finite() && e < (1u64 << 63) as f64 {
        e.round() as i64
    } else {
        i64::MIN
    };
    let d = r as f64;
    if d < 0.0 {
        1u64 << 63
    } else {
        d as u64
    }
}

/// PFDEBUG DECODE's text for a sparse value: `z:len`, `Z:len` and `v:value,len` per opcode.
pub fn decode(v: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut p = HDR;
    while p < v.len() {
        let b = v[p];
        let (run, value, oplen) = opcode(v, p, 0);
        let _ = if is_zero(b) {
            write!(out, "z:{run} ")
        } else if is_xzero(b) {
            write!(out, "Z:{run} ")
        } else {
            write!(out, "v:{value},{run} ")
        };
        p += oplen;
    }
    // Redis trims the spaces at both ends (there are none at the start).
    out.truncate(out.trim_end_matches(' ').len());
    out
}

/// PFSELFTEST: checks the dense register accessors against plain bytes, and that sparse and
/// dense values fed the same elements agree and stay within the expected error. Err holds
/// Redis's TESTFAILED text.
pub fn self_test(max_bytes: u64, seed: u64) -> Result<(), String> {
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // Test 1: every register keeps its value and leaves its neighbours alone.
    let mut regs = vec![0u8; DENSE_SIZE - HDR];
    let mut bytes = vec![0u8; REGISTERS];
    for _ in 0..100 {
        for (i, b) in bytes.iter_mut().enumerate() {
            let r = (next() & REGISTER_MAX as u64) as u8;
            *b = r;
            dense_put(&mut regs, i, r);
        }
        for (i, &b) in bytes.iter().enumerate() {
            let got = dense_get(&regs, i);
            if got != b {
                return Err(format!(
                    "TESTFAILED Register {i} should be {b} but is {got}"
                ));
            }
        }
    }
    // Test 2: a dense and a sparse value fed the same elements.
    let mut dense = new_sparse();
    to_dense(&mut dense).map_err(|_| "TESTFAILED dense conversion".to_string())?;
    let mut sparse = new_sparse();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let base = next();
    let mut checkpoint: u64 = 1;
    for j in 1..=1_000_000u64 {
        let ele = (j ^ base).to_le_bytes();
        let _ = add(&mut dense, &mut 0, &ele, max_bytes);
        if add(&mut sparse, &mut 0, &ele, max_bytes).is_err() {
            return Err("TESTFAILED sparse value corrupted".into());
        }
        if j != checkpoint {
            continue;
        }
        if j < max_bytes / 2 && sparse[4] != ENC_SPARSE {
            return Err("TESTFAILED sparse encoding not used".into());
        }
        let card = count(&dense).unwrap_or(0);
        if Ok(card) != count(&sparse) {
            return Err("TESTFAILED dense/sparse disagree".into());
        }
        let abserr = checkpoint.abs_diff(card);
        let maxerr = if j == 10 {
            1
        } else {
            (relerr * 6.0 * checkpoint as f64).ceil() as u64
        };
        if abserr > maxerr {
            return Err(format!(
                "TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
            ));
        }
        checkpoint *= 10;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sparse_with(ops: &[u8]) -> Vec<u8> {
        let mut v = new_sparse();
        v.truncate(HDR);
        v.extend_from_slice(ops);
        v
    }

    #[test]
    fn murmur_matches_reference_values() {
        // MurmurHash64A reference outputs (seed 0) for the empty string and short inputs,
        // and the element-to-register mapping Redis documents through PFDEBUG (checked against
        // redis-server in tests/suite/diff_hll.rs).
        assert_eq!(murmur64a(b"", 0), 0);
        let a = murmur64a(b"a", SEED);
        let b = murmur64a(b"abcdefgh", SEED);
        let c = murmur64a(b"abcdefghi", SEED);
        assert!(a != b && b != c);
        // Hashing only looks at the bytes given: a longer buffer's tail changes nothing.
        assert_eq!(murmur64a(&b"abcdefghi"[..8], SEED), b);
    }

    #[test]
    fn an_empty_value_is_redis_s_18_bytes() {
        let v = new_sparse();
        assert_eq!(v, b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff".to_vec());
        assert!(is_hll(&v));
        assert_eq!(cached(&v), Some(0));
        assert_eq!(count(&v), Ok(0));
        assert_eq!(decode(&v), "Z:16384");
    }

    #[test]
    fn header_checks() {
        let mut v = new_sparse();
        assert!(is_hll(&v));
        v[4] = 2;
        assert!(!is_hll(&v));
        v[4] = ENC_DENSE;
        assert!(!is_hll(&v), "a dense value must be exactly DENSE_SIZE");
        assert!(!is_hll(b"HYLL\x01"));
        assert!(!is_hll(b"HYLX\x01\0\0\0\0\0\0\0\0\0\0\0"));
        assert!(is_hll(b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0"));
        let mut d = new_sparse();
        to_dense(&mut d).unwrap();
        assert_eq!(d.len(), DENSE_SIZE);
        assert!(is_hll(&d));
    }

    #[test]
    fn dense_registers_are_six_bits_lsb_first() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR];
        dense_put(&mut regs, 0, 63);
        assert_eq!(regs[0], 63);
        dense_put(&mut regs, 1, 1);
        assert_eq!(regs[0], 63 | 1 << 6);
        assert_eq!(regs[1], 0);
        dense_put(&mut regs, 1, 63);
        assert_eq!(regs[0], 0xff);
        assert_eq!(regs[1], 0x0f);
        dense_put(&mut regs, REGISTERS - 1, 63);
        assert_eq!(dense_get(&regs, REGISTERS - 1), 63);
        assert_eq!(regs[regs.len() - 1], 0xfc);
        for i in 0..REGISTERS {
            dense_put(&mut regs, i, (i % 64) as u8);
        }
        let mut seen = 0;
        dense_groups(&regs, |i, r| {
            for (k, x) in r.iter().enumerate() {
                assert_eq!(*x as usize, (i + k) % 64);
                assert_eq!(dense_get(&regs, i + k), *x);
                seen += 1;
            }
        });
        assert_eq!(seen, REGISTERS);
    }

    #[test]
    fn sparse_splits_and_merges_like_redis() {
        let mut v = new_sparse();
        // Register 100 in the middle of the XZERO: XZERO(100) VAL(3) XZERO(16283).
        assert_eq!(sparse_set(&mut v, &mut 0, 100, 3, 3000), Ok(true));
        assert_eq!(decode(&v), "Z:100 v:3,1 Z:16283");
        assert_eq!(cached(&v), None);
        // Already high enough: nothing changes.
        assert_eq!(sparse_set(&mut v, &mut 0, 100, 2, 3000), Ok(false));
        // A neighbour with the same value merges into one VAL of length 2.
        assert_eq!(sparse_set(&mut v, &mut 0, 101, 3, 3000), Ok(true));
        assert_eq!(decode(&v), "Z:100 v:3,2 Z:16282");
        // Short zero runs use ZERO opcodes.
        assert_eq!(sparse_set(&mut v, &mut 0, 105, 1, 3000), Ok(true));
        assert_eq!(decode(&v), "Z:100 v:3,2 z:3 v:1,1 Z:16278");
        // Raising one register of a VAL run splits it.
        assert_eq!(sparse_set(&mut v, &mut 0, 100, 5, 3000), Ok(true));
        assert_eq!(decode(&v), "Z:100 v:5,1 v:3,1 z:3 v:1,1 Z:16278");
        // The first and last registers.
        assert_eq!(sparse_set(&mut v, &mut 0, 0, 1, 3000), Ok(true));
        assert_eq!(sparse_set(&mut v, &mut 0, REGISTERS - 1, 2, 3000), Ok(true));
        assert_eq!(decode(&v), "v:1,1 Z:99 v:5,1 v:3,1 z:3 v:1,1 Z:16277 v:2,1");
        let mut d = v.clone();
        to_dense(&mut d).unwrap();
        let regs = &d[HDR..];
        for (i, want) in [(0, 1), (1, 0), (100, 5), (101, 3), (105, 1), (16383, 2)] {
            assert_eq!(dense_get(regs, i), want, "register {i}");
        }
        assert_eq!(count(&v), count(&d));
    }

    #[test]
    fn big_counts_and_size_limit_promote_to_dense() {
        let mut v = new_sparse();
        assert_eq!(sparse_set(&mut v, &mut 0, 7, 33, 3000), Ok(true));
        assert_eq!(v[4], ENC_DENSE);
        assert_eq!(v.len(), DENSE_SIZE);
        assert_eq!(dense_get(&v[HDR..], 7), 33);
        // The header (cache included) is carried over.
        let mut w = new_sparse();
        assert_eq!(sparse_set(&mut w, &mut 0, 7, 2, 18), Ok(true));
        assert_eq!(w[4], ENC_DENSE);
        assert_eq!(cached(&w), Some(0));
    }

    #[test]
    fn counts_agree_between_encodings_and_are_close() {
        let mut s = new_sparse();
        let mut d = new_sparse();
        to_dense(&mut d).unwrap();
        for i in 0..20_000u32 {
            let e = format!("ele:{i}");
            let a = add(&mut s, &mut 0, e.as_bytes(), 3000).unwrap();
            let b = add(&mut d, &mut 0, e.as_bytes(), 3000).unwrap();
            assert_eq!(a, b);
            if i % 997 == 0 {
                assert_eq!(count(&s), count(&d));
            }
        }
        let c = count(&d).unwrap() as f64;
        assert!((c - 20_000.0).abs() < 20_000.0 * 0.05, "{c}");
        let mut max = [0u8; REGISTERS];
        merge_into(&mut max, &s).unwrap();
        assert_eq!(count_registers(&max), count(&d).unwrap());
    }

    #[test]
    fn corrupt_sparse_values_are_reported() {
        // Too few registers.
        let v = sparse_with(&[0x7f, 0xfe]);
        assert_eq!(count(&v), Err(Corrupt));
        let mut max = [0u8; REGISTERS];
        assert_eq!(merge_into(&mut max, &v), Err(Corrupt));
        let mut w = v.clone();
        assert_eq!(to_dense(&mut w), Err(Corrupt));
        assert_eq!(w, v);
        // Too many.
        let v = sparse_with(&[0x7f, 0xff, 0x80]);
        assert_eq!(count(&v), Err(Corrupt));
        // No opcodes at all: nothing covers any register.
        let mut v = sparse_with(&[]);
        assert_eq!(sparse_set(&mut v, &mut 0, 0, 1, 3000), Err(Corrupt));
        // A truncated XZERO reads a zero second byte, as Redis reads its terminator.
        let v = sparse_with(&[0x40]);
        assert_eq!(decode(&v), "Z:1");
    }

    #[test]
    fn random_corruptions_never_panic() {
        let mut rng = 0x9e3779b97f4a7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..3000 {
            let mut v = new_sparse();
            for i in 0..(next() % 50) {
                let _ = add(&mut v, &mut 0, &i.to_le_bytes(), 3000);
            }
            let n = (next() % 40) as usize;
            for _ in 0..n {
                match next() % 3 {
                    0 if v.len() > HDR => {
                        let i = HDR + (next() as usize % (v.len() - HDR));
                        v[i] = next() as u8;
                    }
                    1 if v.len() > HDR => {
                        let keep = HDR + (next() as usize % (v.len() - HDR));
                        v.truncate(keep);
                    }
                    _ => v.push(next() as u8),
                }
            }
            if !is_hll(&v) {
                continue;
            }
            let _ = count(&v);
            let _ = decode(&v);
            let mut max = [0u8; REGISTERS];
            let _ = merge_into(&mut max, &v);
            let mut w = v.clone();
            for k in 0..5u32 {
                if add(&mut w, &mut 0, &k.to_le_bytes(), 3000).is_err() {
                    break;
                }
            }
        }
    }

    #[test]
    fn self_test_passes() {
        assert_eq!(self_test(3000, 42), Ok(()));
    }
}

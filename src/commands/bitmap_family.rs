//! Bitmap commands (Redis's bitops.c): SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and
//! BITFIELD_RO.
//!
//! A bitmap is a string value (`Value::Str`): bit 0 is the most significant bit of the first
//! byte, and bits past the end read as 0. An integer-encoded string is read as its decimal
//! text. This module owns the bit-level reads and writes of those strings and nothing else:
//! writes grow the string in place with zero bytes (`StrValue::grow_zeroed`, which leaves it
//! `raw` as Redis's `dbUnshareStringValue` does), and every handler runs on the shard that owns
//! its keys (BITOP's keys on several shards come as copies through `crate::tx`).
//!
//! It must never loop bit by bit over a range the client chose (counting and searching go a
//! 64-bit word at a time, BITOP too), never allocate past the `proto-max-bulk-len` limit that
//! the offsets are checked against, and never report a change (dirty count, `setbit`
//! notification) that Redis 7.0 would not: a SETBIT or BITFIELD write that leaves the bytes as
//! they were changes nothing.

use std::borrow::Cow;

use bytes::Bytes;

use super::args::{c_str, eq_ic, int_arg, parse_i64, ERR_NOT_INT, ERR_SYNTAX, ERR_WRONGTYPE};
use super::class;
use super::{cmd, flags::*, CommandSpec, Ctx, Exec, KeySpec, KEY1};
use crate::protocol::Reply;
use crate::types::{StrValue, Value};

const ERR_BIT_OFFSET: &str = "ERR bit offset is not an integer or out of range";
const ERR_BIT_VALUE: &str = "ERR bit is not an integer or out of range";
const ERR_BITPOS_BIT: &str = "ERR The bit argument must be 1 or 0.";
const ERR_NOT_SINGLE: &str = "ERR BITOP NOT must be called with a single source key.";
const ERR_BF_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
const ERR_BF_OVERFLOW: &str = "ERR Invalid OVERFLOW type specified";
const ERR_BF_RO: &str = "ERR BITFIELD_RO only supports the GET subcommand";

pub fn specs() -> Vec<CommandSpec> {
    let g = "bitmap";
    let per_op = "O(1) for each subcommand specified";
    vec![
        cmd(
            "setbit",
            4,
            WRITE | DENYOOM,
            KEY1,
            g,
            "2.2.0",
            "O(1)",
            "Sets or clears one bit of a string, growing it with zero bytes if needed.",
            Exec::Shard(setbit),
        )
        .key_flags(&["RW", "access", "update"]),
        cmd(
            "getbit",
            3,
            READONLY | FAST,
            KEY1,
            g,
            "2.2.0",
            "O(1)",
            "Returns one bit of a string (0 past its end).",
            Exec::Shard(getbit),
        )
        .key_flags(&["RO", "access"]),
        cmd(
            "bitcount",
            -2,
            READONLY,
            KEY1,
            g,
            "2.6.0",
            "O(N)",
            "Counts the bits set in a string, or in a range of its bytes or bits.",
            Exec::Shard(bitcount),
        )
        .key_flags(&["RO", "access"]),
        cmd(
            "bitpos",
            -3,
            READONLY,
            KEY1,
            g,
            "2.8.7",
            "O(N)",
            "Finds the first bit set to 0 or 1 in a string, or in a range of it.",
            Exec::Shard(bitpos),
        )
        .key_flags(&["RO", "access"]),
        cmd(
            "bitop",
            -4,
            WRITE | DENYOOM,
            (2, -1, 1),
            g,
            "2.6.0",
            "O(N)",
            "Stores the bitwise AND, OR, XOR or NOT of strings in a key.",
            Exec::Shard(bitop),
        )
        .key_specs(
            const {
                &[
                    KeySpec::range(&["OW", "update"], 2, 0, 1),
                    KeySpec::range(&["RO", "access"], 3, -1, 1),
                ]
            },
        ),
        cmd(
            "bitfield",
            -2,
            WRITE | DENYOOM,
            KEY1,
            g,
            "3.2.0",
            per_op,
            "Reads, sets and increments integers of any width at any bit offset of a string.",
            Exec::Shard(bitfield),
        )
        .key_specs(
            const {
                &[
                    KeySpec::range(&["RW", "access", "update", "variable_flags"], 1, 0, 1)
                        .notes("This command allows both access and modification of the key"),
                ]
            },
        ),
        cmd(
            "bitfield_ro",
            -2,
            READONLY | FAST,
            KEY1,
            g,
            "6.0.0",
            per_op,
            "Reads integers of any width at any bit offset of a string (BITFIELD's GET only).",
            Exec::Shard(bitfield_ro),
        )
        .key_flags(&["RO", "access"]),
    ]
}

// ----- argument parsing -----

/// `eq_ic` on the C-string view of an argument.
fn keyword(arg: &[u8], name: &str) -> bool {
    eq_ic(c_str(arg), name)
}

/// A bit offset (Redis's `getBitOffsetFromArgument`): a non-negative integer whose byte is
/// below `proto-max-bulk-len`. With `field_bits` (BITFIELD), `#N` means N fields of that
/// width; the product wraps like Redis's signed multiplication and is then range-checked.
fn bit_offset(max_len: u64, arg: &[u8], field_bits: Option<u32>) -> Result<u64, &'static str> {
    let s = c_str(arg);
    let (digits, times) = match field_bits {
        Some(bits) if s.len() > 1 && s[0] == b'#' => (&s[1..], bits as i64),
        _ => (s, 1),
    };
    let n = parse_i64(digits).ok_or(ERR_BIT_OFFSET)?.wrapping_mul(times);
    if n < 0 || (n >> 3) as u64 >= max_len {
        return Err(ERR_BIT_OFFSET);
    }
    Ok(n as u64)
}

/// BITCOUNT / BITPOS's unit keyword.
fn bit_unit(arg: &[u8]) -> Result<bool, &'static str> {
    if keyword(arg, "bit") {
        Ok(true)
    } else if keyword(arg, "byte") {
        Ok(false)
    } else {
        Err(ERR_SYNTAX)
    }
}

// ----- bit arithmetic on byte strings -----

/// The bit at `off` (0 past the end).
#[inline]
fn bit_at(p: &[u8], off: u64) -> bool {
    usize::try_from(off >> 3)
        .ok()
        .and_then(|i| p.get(i))
        .is_some_and(|b| b & (0x80 >> (off & 7)) != 0)
}

/// Bits set in `p`, a 64-bit word at a time, with the CPU's population count (and AVX2, which
/// lets the compiler count several words per instruction) when it has them: the portable
/// build targets baseline x86-64, whose `count_ones` is a dozen instructions per word.
fn popcount(p: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("popcnt")
        {
            // SAFETY: the CPU has AVX2 and POPCNT (checked just above).
            return unsafe { popcount_avx2(p) };
        }
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU has POPCNT (checked just above).
            return unsafe { popcount_popcnt(p) };
        }
    }
    popcount_words(p)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
unsafe fn popcount_avx2(p: &[u8]) -> u64 {
    popcount_words(p)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn popcount_popcnt(p: &[u8]) -> u64 {
    popcount_words(p)
}

/// The counting loop itself; inlined into each feature-specific copy above so that each is
/// compiled with its instructions.
#[inline(always)]
fn popcount_words(p: &[u8]) -> u64 {
    let mut words = p.chunks_exact(8);
    let mut n: u64 = 0;
    for w in &mut words {
        n += u64::from_ne_bytes(w.try_into().expect("8 bytes")).count_ones() as u64;
    }
    n + words
        .remainder()
        .iter()
        .map(|b| b.count_ones() as u64)
        .sum::<u64>()
}

/// Bits set in the inclusive bit range `first..=last` of `p` (both inside `p`).
fn count_range(p: &[u8], first: u64, last: u64) -> u64 {
    let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
    let mut n = popcount(&p[fb..=lb]);
    // Take back the bits of the edge bytes that lie outside the range.
    let before = (first & 7) as u32;
    if before != 0 {
        n -= (p[fb] >> (8 - before)).count_ones() as u64;
    }
    let after = 7 - (last & 7) as u32;
    if after != 0 {
        n -= (p[lb] & ((1u8 << after) - 1)).count_ones() as u64;
    }
    n
}

/// The first bit equal to `bit` in the inclusive bit range `first..=last` of `p` (both inside
/// `p`), skipping whole 64-bit words that cannot hold it.
fn find_bit(p: &[u8], first: u64, last: u64, bit: bool) -> Option<u64> {
    let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
    // Each byte is turned into "1 where the bit we look for is", edges masked to the range.
    let norm = |i: usize| -> u8 {
        let mut b = if bit { p[i] } else { !p[i] };
        if i == fb {
            b &= 0xFF >> (first & 7);
        }
        if i == lb {
            b &= 0xFF << (7 - (last & 7));
        }
        b
    };
    let found = |i: usize, lead: u32| Some(i as u64 * 8 + lead as u64);
    let b = norm(fb);
    if b != 0 {
        return found(fb, b.leading_zeros());
    }
    let mut i = fb + 1;
    // Whole words strictly between the edge bytes.
    while i + 8 <= lb {
        let w = u64::from_be_bytes(p[i..i + 8].try_into().expect("8 bytes"));
        let w = if bit { w } else { !w };
        if w != 0 {
            return found(i, w.leading_zeros());
        }
        i += 8;
    }
    while i <= lb {
        let b = norm(i);
        if b != 0 {
            return found(i, b.leading_zeros());
        }
        i += 1;
    }
    None
}

/// `bits` low bits set.
#[inline]
fn low_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// The 72 bits from the byte holding `off` on, most significant first, bytes past the end of
/// `p` read as 0: every field of up to 64 bits lies inside.
#[inline]
fn window(p: &[u8], byte: usize) -> u128 {
    let mut w: u128 = 0;
    for i in 0..9 {
        let b = byte.checked_add(i).and_then(|j| p.get(j)).copied();
        w = (w << 8) | b.unwrap_or(0) as u128;
    }
    w
}

/// The unsigned field of `bits` bits at bit `off` (zeros past the end of `p`).
fn get_unsigned(p: &[u8], off: u64, bits: u32) -> u64 {
    let byte = usize::try_from(off >> 3).unwrap_or(usize::MAX);
    let skip = (off & 7) as u32;
    (window(p, byte) >> (72 - skip - bits)) as u64 & low_mask(bits)
}

/// The signed (two's complement) field of `bits` bits at bit `off`.
fn get_signed(p: &[u8], off: u64, bits: u32) -> i64 {
    let mut v = get_unsigned(p, off, bits);
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        v |= !low_mask(bits);
    }
    v as i64
}

/// Writes the low `bits` bits of `value` at bit `off`; the field lies inside `p`.
fn set_field(p: &mut [u8], off: u64, bits: u32, value: u64) {
    let byte = (off >> 3) as usize;
    let shift = 72 - (off & 7) as u32 - bits;
    let mask = (low_mask(bits) as u128) << shift;
    let w = (window(p, byte) & !mask) | (((value & low_mask(bits)) as u128) << shift);
    let n = ((off & 7) as usize + bits as usize).div_ceil(8);
    for (i, d) in p[byte..byte + n].iter_mut().enumerate() {
        *d = (w >> (64 - 8 * i)) as u8;
    }
}

// ----- value access -----

/// Reads `key` as a string for a bit command: Ok(None) if missing.
fn read_str<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a StrValue>, &'static str> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Str(s) => Ok(Some(s)),
            _ => Err(ERR_WRONGTYPE),
        },
    }
}

/// Redis's `lookupStringForBitCommand`: the string at `key` grown with zero bytes to at least
/// `len` bytes (a new key holds exactly `len` zero bytes), handed to `f` with whether it grew
/// (or was created). WRONGTYPE for another type. Looked up for a write: no hit or miss counted.
fn edit_bits<R>(
    ctx: &mut Ctx,
    key: &[u8],
    len: usize,
    f: impl FnOnce(&mut [u8], bool) -> R,
) -> Result<R, &'static str> {
    let now = ctx.now_ms;
    match ctx.lookup_write(key) {
        Some(e) => match &mut e.value {
            Value::Str(s) => {
                let old = s.len();
                let buf = s.grow_zeroed(len);
                let grew = buf.len() != old;
                Ok(f(buf, grew))
            }
            _ => Err(ERR_WRONGTYPE),
        },
        None => {
            // An exact-size buffer, as Redis creates it.
            let mut v = vec![0u8; len];
            let out = f(&mut v, true);
            ctx.db().insert(key, Value::Str(StrValue::Raw(v)), 0, now);
            Ok(out)
        }
    }
}

// ----- SETBIT / GETBIT -----

fn setbit(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let off = match bit_offset(ctx.st.config.proto_max_bulk_len, &a[2], None) {
        Ok(o) => o,
        Err(e) => return r.error(e),
    };
    let on = match parse_i64(&a[3]) {
        Some(v) if v & !1 == 0 => v != 0,
        _ => return r.error(ERR_BIT_VALUE),
    };
    let byte = (off >> 3) as usize;
    let mask = 0x80u8 >> (off & 7);
    let edited = edit_bits(ctx, &a[1], byte + 1, |p, grew| {
        let old = p[byte] & mask != 0;
        // Redis writes (and reports) only a bit that changes, or a string that grew.
        let changed = grew || old != on;
        if changed {
            p[byte] = if on { p[byte] | mask } else { p[byte] & !mask };
        }
        (old, changed)
    });
    match edited {
        Err(e) => r.error(e),
        Ok((old, changed)) => {
            if changed {
                ctx.notify(class::STRING, "setbit", &a[1]);
                ctx.dirty(1);
            } else {
                ctx.dirty(0);
            }
            r.int(old as i64);
        }
    }
}

fn getbit(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let off = match bit_offset(ctx.st.config.proto_max_bulk_len, &a[2], None) {
        Ok(o) => o,
        Err(e) => return r.error(e),
    };
    match read_str(ctx, &a[1]) {
        Ok(Some(s)) => r.int(s.with_bytes(|p| bit_at(p, off)) as i64),
        Ok(None) => r.int(0),
        Err(e) => r.error(e),
    }
}

// ----- BITCOUNT / BITPOS -----

/// Clamps a start/end pair (negative: from the end) to `0..total`, Redis's way: afterwards
/// `end < total`, and the range is empty when `start > end`.
fn clamp_range(mut start: i64, mut end: i64, total: i64) -> (i64, i64) {
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    (start, end)
}

/// A clamped range in bytes or bits, as an inclusive bit range (None: empty).
fn bit_range(start: i64, end: i64, in_bits: bool) -> Option<(u64, u64)> {
    if start > end {
        return None;
    }
    let (s, e) = (start as u64, end as u64);
    Some(if in_bits { (s, e) } else { (s * 8, e * 8 + 7) })
}

fn bitcount(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    // Redis 7.0 looks the key up before it reads any argument: a missing key counts 0 whatever
    // follows, and a key of another type is WRONGTYPE before a syntax error.
    let s = match read_str(ctx, &a[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return r.int(0),
        Err(e) => return r.error(e),
    };
    let result = s.with_bytes(|p| -> Result<u64, &'static str> {
        let len = p.len() as i64;
        let (start, end, in_bits) = match a.len() {
            2 => (0, len - 1, false),
            4 | 5 => {
                let start = int_arg(&a[2])?;
                let end = int_arg(&a[3])?;
                if start < 0 && end < 0 && start > end {
                    return Ok(0);
                }
                let in_bits = match a.get(4) {
                    Some(u) => bit_unit(u)?,
                    None => false,
                };
                let total = if in_bits { len << 3 } else { len };
                let (s, e) = clamp_range(start, end, total);
                (s, e, in_bits)
            }
            _ => return Err(ERR_SYNTAX),
        };
        Ok(bit_range(start, end, in_bits).map_or(0, |(f, l)| count_range(p, f, l)))
    });
    match result {
        Ok(n) => r.int(n as i64),
        Err(e) => r.error(e),
    }
}

fn bitpos(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let bit = match parse_i64(&a[2]) {
        Some(b @ (0 | 1)) => b == 1,
        Some(_) => return r.error(ERR_BITPOS_BIT),
        None => return r.error(ERR_NOT_INT),
    };
    // A missing key is an endless run of zeros, whatever range follows (Redis 7.0 looks the
    // key up before it reads the range).
    let s = match read_str(ctx, &a[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return r.int(if bit { -1 } else { 0 }),
        Err(e) => return r.error(e),
    };
    let result = s.with_bytes(|p| -> Result<i64, &'static str> {
        let len = p.len() as i64;
        let (range, end_given) = match a.len() {
            3 => (bit_range(0, len - 1, false), false),
            4..=6 => {
                let start = int_arg(&a[3])?;
                let in_bits = match a.get(5) {
                    Some(u) => bit_unit(u)?,
                    None => false,
                };
                let (end, end_given) = match a.get(4) {
                    Some(e) => (int_arg(e)?, true),
                    None if in_bits => ((len << 3) + 7, false),
                    None => (len - 1, false),
                };
                let total = if in_bits { len << 3 } else { len };
                let (s, e) = clamp_range(start, end, total);
                (bit_range(s, e, in_bits), end_given)
            }
            _ => return Err(ERR_SYNTAX),
        };
        // An empty range holds neither a 0 nor a 1.
        let Some((first, last)) = range else {
            return Ok(-1);
        };
        Ok(match find_bit(p, first, last, bit) {
            Some(pos) => pos as i64,
            // Looking for a 0 without an explicit end: the string goes on with zeros, so the
            // first one is right after the range.
            None if !bit && !end_given => last as i64 + 1,
            None => -1,
        })
    });
    match result {
        Ok(n) => r.int(n),
        Err(e) => r.error(e),
    }
}

// ----- BITOP -----

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// Combines `src` into `dst[..src.len()]` a 64-bit word at a time.
fn combine(dst: &mut [u8], src: &[u8], op: BitOp) {
    let n = src.len().min(dst.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    let f = |x: u64, y: u64| match op {
        BitOp::And => x & y,
        BitOp::Or => x | y,
        BitOp::Xor => x ^ y,
        BitOp::Not => !x,
    };
    let mut dw = dst.chunks_exact_mut(8);
    let mut sw = src.chunks_exact(8);
    for (d, s) in (&mut dw).zip(&mut sw) {
        let x = u64::from_ne_bytes((&*d).try_into().expect("8 bytes"));
        let y = u64::from_ne_bytes(s.try_into().expect("8 bytes"));
        d.copy_from_slice(&f(x, y).to_ne_bytes());
    }
    for (d, s) in dw.into_remainder().iter_mut().zip(sw.remainder()) {
        *d = f(*d as u64, *s as u64) as u8;
    }
}

fn bitop(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let name = &a[1];
    let op = if keyword(name, "and") {
        BitOp::And
    } else if keyword(name, "or") {
        BitOp::Or
    } else if keyword(name, "xor") {
        BitOp::Xor
    } else if keyword(name, "not") {
        BitOp::Not
    } else {
        return r.error(ERR_SYNTAX);
    };
    if op == BitOp::Not && a.len() != 4 {
        return r.error(ERR_NOT_SINGLE);
    }
    let (dst, keys) = (&a[2], &a[3..]);
    // Read lookups first (hits, misses, expiry, types: stopping at the first wrong type, as
    // Redis does), then the values borrowed all at once.
    for k in keys {
        if let Err(e) = read_str(ctx, k) {
            return r.error(e);
        }
    }
    let result = {
        let db = &ctx.st.dbs[ctx.db];
        let srcs: Vec<Cow<[u8]>> = keys
            .iter()
            .map(|k| match db.keys.get(k).map(|e| &e.value) {
                Some(Value::Str(s)) => match s.stored_bytes() {
                    Some(b) => Cow::Borrowed(b),
                    None => Cow::Owned(s.to_bytes().to_vec()),
                },
                _ => Cow::Borrowed(&[][..]),
            })
            .collect();
        let maxlen = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut res = vec![0u8; maxlen];
        if maxlen > 0 {
            // The first string, zero-padded, then each other one folded in; past a shorter
            // string's end its bytes are zeros (which clears an AND and leaves OR/XOR as
            // they are).
            res[..srcs[0].len()].copy_from_slice(&srcs[0]);
            match op {
                BitOp::Not => combine(&mut res, &srcs[0], BitOp::Not),
                _ => {
                    for s in &srcs[1..] {
                        combine(&mut res, s, op);
                        if op == BitOp::And {
                            res[s.len()..].fill(0);
                        }
                    }
                }
            }
        }
        res
    };
    let n = result.len();
    if n > 0 {
        let now = ctx.now_ms;
        // Redis stores a fresh raw string (never integer- or embstr-encoded), without a TTL.
        ctx.db()
            .insert(dst, Value::Str(StrValue::Raw(result)), 0, now);
        ctx.notify(class::STRING, "set", dst);
        ctx.dirty(1);
    } else if ctx.db().delete(dst) {
        ctx.notify(class::GENERIC, "del", dst);
        ctx.dirty(1);
    } else {
        ctx.dirty(0);
    }
    r.int(n as i64);
}

// ----- BITFIELD -----

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldOp {
    Get,
    Set,
    IncrBy,
}

#[derive(Clone, Copy)]
struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    /// SET's value or INCRBY's increment.
    value: i64,
    overflow: Overflow,
}

/// A field type (`i1`..`i64`, `u1`..`u63`): (signed, bits).
fn field_type(arg: &[u8]) -> Result<(bool, u32), &'static str> {
    let s = c_str(arg);
    let signed = match s.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(ERR_BF_TYPE),
    };
    match parse_i64(&s[1..]) {
        Some(n) if n >= 1 && n <= if signed { 64 } else { 63 } => Ok((signed, n as u32)),
        _ => Err(ERR_BF_TYPE),
    }
}

/// Parses BITFIELD's operations in order, calling `each` with every GET/SET/INCRBY; the first
/// bad one is the error (Redis checks them all before it touches the key).
fn parse_fields(
    max_len: u64,
    a: &[Bytes],
    mut each: impl FnMut(Field),
) -> Result<(), &'static str> {
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < a.len() {
        let rest = a.len() - j - 1;
        let sub = &a[j];
        let op = if keyword(sub, "get") && rest >= 2 {
            FieldOp::Get
        } else if keyword(sub, "set") && rest >= 3 {
            FieldOp::Set
        } else if keyword(sub, "incrby") && rest >= 3 {
            FieldOp::IncrBy
        } else if keyword(sub, "overflow") && rest >= 1 {
            let kind = &a[j + 1];
            overflow = if keyword(kind, "wrap") {
                Overflow::Wrap
            } else if keyword(kind, "sat") {
                Overflow::Sat
            } else if keyword(kind, "fail") {
                Overflow::Fail
            } else {
                return Err(ERR_BF_OVERFLOW);
            };
            j += 2;
            continue;
        } else {
            return Err(ERR_SYNTAX);
        };
        let (signed, bits) = field_type(&a[j + 1])?;
        let offset = bit_offset(max_len, &a[j + 2], Some(bits))?;
        let value = if op == FieldOp::Get {
            0
        } else {
            int_arg(&a[j + 3]).map_err(|_| ERR_NOT_INT)?
        };
        each(Field {
            op,
            signed,
            bits,
            offset,
            value,
            overflow,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    Ok(())
}

/// Redis's `checkUnsignedBitfieldOverflow`: whether `value + incr` leaves the range of a
/// `bits`-bit unsigned field, and what to store then under WRAP or SAT (None under FAIL).
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<Option<u64>> {
    let max = low_mask(bits);
    // Compared as signed 64-bit numbers, as Redis does.
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = 0u64.wrapping_sub(value) as i64;
    let wrap = || value.wrapping_add(incr as u64) & max;
    let limit = if value > max || (incr > 0 && incr > max_incr) {
        max
    } else if incr < 0 && incr < min_incr {
        0
    } else {
        return None;
    };
    Some(match ow {
        Overflow::Wrap => Some(wrap()),
        Overflow::Sat => Some(limit),
        Overflow::Fail => None,
    })
}

/// Redis's `checkSignedBitfieldOverflow`, with its 64-bit wrapping arithmetic (which decides
/// a few out-of-range SET values differently from exact arithmetic: kept as Redis has it).
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<Option<i64>> {
    let max: i64 = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let high = !low_mask(bits);
            if c & (1u64 << (bits - 1)) != 0 {
                c |= high;
            } else {
                c &= !high;
            }
        }
        c as i64
    };
    let limit = if value > max
        || (bits != 64 && incr > max_incr)
        || (value >= 0 && incr > 0 && incr > max_incr)
    {
        max
    } else if value < min
        || (bits != 64 && incr < min_incr)
        || (value < 0 && incr < 0 && incr < min_incr)
    {
        min
    } else {
        return None;
    };
    Some(match ow {
        Overflow::Wrap => Some(wrap()),
        Overflow::Sat => Some(limit),
        Overflow::Fail => None,
    })
}

/// Runs one SET or INCRBY on `p` (which holds the field): the reply value (None: FAIL
/// overflow, nothing written) and whether the bytes changed.
fn write_field(p: &mut [u8], f: &Field, grew: bool) -> (Option<i64>, bool) {
    if f.signed {
        let old = get_signed(p, f.offset, f.bits);
        let (checked, wanted) = match f.op {
            FieldOp::IncrBy => (
                signed_overflow(old, f.value, f.bits, f.overflow),
                old.wrapping_add(f.value),
            ),
            _ => (signed_overflow(f.value, 0, f.bits, f.overflow), f.value),
        };
        let new = match checked {
            None => wanted,
            Some(Some(v)) => v,
            Some(None) => return (None, false),
        };
        set_field(p, f.offset, f.bits, new as u64);
        let reply = if f.op == FieldOp::IncrBy { new } else { old };
        (Some(reply), grew || old != new)
    } else {
        let old = get_unsigned(p, f.offset, f.bits);
        let (checked, wanted) = match f.op {
            FieldOp::IncrBy => (
                unsigned_overflow(old, f.value, f.bits, f.overflow),
                old.wrapping_add(f.value as u64),
            ),
            _ => (
                unsigned_overflow(f.value as u64, 0, f.bits, f.overflow),
                f.value as u64,
            ),
        };
        let new = match checked {
            None => wanted,
            Some(Some(v)) => v,
            Some(None) => return (None, false),
        };
        set_field(p, f.offset, f.bits, new);
        let reply = if f.op == FieldOp::IncrBy { new } else { old };
        (Some(reply as i64), grew || old != new)
    }
}

/// A GET's value.
fn read_field(p: &[u8], f: &Field) -> i64 {
    if f.signed {
        get_signed(p, f.offset, f.bits)
    } else {
        get_unsigned(p, f.offset, f.bits) as i64
    }
}

fn bitfield(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    bitfield_generic(ctx, a, r, false)
}

fn bitfield_ro(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    bitfield_generic(ctx, a, r, true)
}

/// BITFIELD and BITFIELD_RO (Redis's `bitfieldGeneric`). The operations are parsed twice (to
/// validate and size the write, then to run) rather than collected, which costs no allocation.
fn bitfield_generic(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply, read_only_cmd: bool) {
    let max_len = ctx.st.config.proto_max_bulk_len;
    let (mut count, mut writes, mut highest) = (0usize, false, 0u64);
    let parsed = parse_fields(max_len, a, |f| {
        count += 1;
        if f.op != FieldOp::Get {
            writes = true;
            highest = highest.max(f.offset + f.bits as u64 - 1);
        }
    });
    if let Err(e) = parsed {
        return r.error(e);
    }
    if !writes {
        // Only reads: a missing key reads as zeros, and nothing changes.
        ctx.dirty(0);
        let s = match read_str(ctx, &a[1]) {
            Ok(s) => s,
            Err(e) => return r.error(e),
        };
        r.array(count);
        let read_all = |p: &[u8], r: &mut Reply| {
            let _ = parse_fields(max_len, a, |f| r.int(read_field(p, &f)));
        };
        match s {
            Some(s) => s.with_bytes(|p| read_all(p, r)),
            None => read_all(&[], r),
        }
        return;
    }
    if read_only_cmd {
        return r.error(ERR_BF_RO);
    }
    // Grown once to the farthest bit any write reaches (a new key is created even when every
    // write then fails its overflow check, as in Redis).
    let len = (highest >> 3) as usize + 1;
    let mut changes = 0u64;
    let edited = edit_bits(ctx, &a[1], len, |p, grew| {
        r.array(count);
        let _ = parse_fields(max_len, a, |f| {
            if f.op == FieldOp::Get {
                return r.int(read_field(p, &f));
            }
            match write_field(p, &f, grew) {
                (Some(v), changed) => {
                    r.int(v);
                    changes += changed as u64;
                }
                (None, _) => r.null(),
            }
        });
    });
    if let Err(e) = edited {
        return r.error(e);
    }
    if changes > 0 {
        ctx.notify(class::STRING, "setbit", &a[1]);
    }
    ctx.dirty(changes);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit `i` of `p`, one at a time: the reference the word-at-a-time helpers are checked
    /// against.
    fn naive_bit(p: &[u8], i: u64) -> bool {
        p.get((i / 8) as usize)
            .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
    }

    fn sample(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Runs of 0x00 and 0xff too, so that whole words get skipped.
                match (i / 24) % 3 {
                    0 => 0,
                    1 => 0xff,
                    _ => x as u8,
                }
            })
            .collect()
    }

    #[test]
    fn counting_and_searching_match_a_bit_by_bit_walk() {
        for len in [1usize, 2, 7, 8, 9, 17, 40, 100] {
            let p = sample(len, len as u64 * 31);
            let bits = len as u64 * 8;
            for first in 0..bits {
                for last in (first..bits).step_by(3) {
                    let naive = (first..=last).filter(|&i| naive_bit(&p, i)).count() as u64;
                    assert_eq!(count_range(&p, first, last), naive, "{len} {first} {last}");
                    for bit in [false, true] {
                        let want = (first..=last).find(|&i| naive_bit(&p, i) == bit);
                        assert_eq!(find_bit(&p, first, last, bit), want, "{len} {first} {last}");
                    }
                }
            }
            assert_eq!(
                popcount(&p),
                (0..bits).filter(|&i| naive_bit(&p, i)).count() as u64
            );
        }
    }

    #[test]
    fn fields_read_and_write_msb_first_with_zero_padding() {
        let mut p = vec![0u8; 12];
        for bits in 1..=64u32 {
            for off in [0u64, 1, 5, 7, 8, 13, 31] {
                let v = 0xA5A5_5A5A_F00F_0FF0u64 & low_mask(bits);
                set_field(&mut p, off, bits, v);
                assert_eq!(get_unsigned(&p, off, bits), v, "u{bits} at {off}");
                for i in 0..bits as u64 {
                    assert_eq!(
                        naive_bit(&p, off + i),
                        v >> (bits as u64 - 1 - i) & 1 == 1,
                        "bit {i} of u{bits} at {off}"
                    );
                }
                p.fill(0);
            }
        }
        // Past the end reads as zeros; a set top bit sign-extends.
        assert_eq!(get_unsigned(&[0xff], 4, 8), 0xf0);
        assert_eq!(get_signed(&[0xff], 4, 8), -16);
        assert_eq!(get_signed(&[0x80], 0, 1), -1);
        assert_eq!(get_signed(&[0xff; 8], 0, 64), -1);
        assert_eq!(get_unsigned(&[], 1_000_000, 63), 0);
    }

    #[test]
    fn overflow_rules_follow_redis() {
        use Overflow::*;
        // u8: 250 + 10 wraps to 4, saturates at 255, fails.
        assert_eq!(unsigned_overflow(250, 10, 8, Wrap), Some(Some(4)));
        assert_eq!(unsigned_overflow(250, 10, 8, Sat), Some(Some(255)));
        assert_eq!(unsigned_overflow(250, 10, 8, Fail), Some(None));
        assert_eq!(unsigned_overflow(5, -10, 8, Sat), Some(Some(0)));
        assert_eq!(unsigned_overflow(5, -10, 8, Wrap), Some(Some(251)));
        assert_eq!(unsigned_overflow(5, 250, 8, Wrap), None);
        // SET of a negative value into an unsigned field: too big, so SAT gives the maximum.
        assert_eq!(unsigned_overflow(u64::MAX, 0, 8, Sat), Some(Some(255)));
        // i8.
        assert_eq!(signed_overflow(120, 10, 8, Wrap), Some(Some(-126)));
        assert_eq!(signed_overflow(120, 10, 8, Sat), Some(Some(127)));
        assert_eq!(signed_overflow(-120, -10, 8, Sat), Some(Some(-128)));
        assert_eq!(signed_overflow(-120, -10, 8, Wrap), Some(Some(126)));
        assert_eq!(signed_overflow(100, 27, 8, Sat), None);
        // i64.
        assert_eq!(signed_overflow(i64::MAX, 1, 64, Wrap), Some(Some(i64::MIN)));
        assert_eq!(signed_overflow(i64::MIN, -1, 64, Sat), Some(Some(i64::MIN)));
        assert_eq!(signed_overflow(-1, i64::MIN, 64, Sat), Some(Some(i64::MIN)));
        assert_eq!(signed_overflow(1, i64::MIN, 64, Sat), None);
        // Redis's wrapping arithmetic: i64::MIN set into an i8 counts as too big.
        assert_eq!(signed_overflow(i64::MIN, 0, 8, Sat), Some(Some(127)));
    }
}

//! The one argument parser: numbers and options exactly as Redis parses them, with Redis's
//! error texts. Command handlers never parse numbers any other way.
//!
//! One parser per Redis semantics:
//! - integers: `parse_i64` (`string2ll`);
//! - doubles that must be a whole number text (`getDoubleFromObject`, `string2d`: ZADD scores,
//!   weights, ZINCRBY): `parse_double`;
//! - bare `strtod` where Redis checks the end pointer itself (score range bounds, SORT scores):
//!   `strtod_c_string`, or `strtod` for a prefix (DEBUG SLEEP);
//! - long doubles (`getLongDoubleFromObject`, `string2ld`: INCRBYFLOAT, HINCRBYFLOAT):
//!   `crate::types::float::parse_long_double`, which keeps the 64-bit mantissa those commands
//!   compute with.

use std::cmp::Ordering;

/// Redis's `string2ull` (stream IDs): a `string2ll` integer when the text is one (negative ones
/// refused), else C's `strtoull` over the whole text: leading white space, an optional sign (a
/// `-` negates modulo 2^64, as C does), at least one digit, no overflow, nothing after.
pub fn parse_u64_string2ull(s: &[u8]) -> Option<u64> {
    if let Some(n) = parse_i64(s) {
        return u64::try_from(n).ok();
    }
    let start = s
        .iter()
        .position(|&c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    let (neg, digits) = match s[start] {
        b'-' => (true, &s[start + 1..]),
        b'+' => (false, &s[start + 1..]),
        _ => (false, &s[start..]),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Redis's `string2ll`: optional `-`, no leading `+`, spaces or zeros, must fit in i64.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = if s[0] == b'-' {
        (true, &s[1..])
    } else {
        (false, s)
    };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

pub const ERR_NOT_INT: &str = "ERR value is not an integer or out of range";
pub const ERR_NOT_FLOAT: &str = "ERR value is not a valid float";
pub const ERR_SYNTAX: &str = "ERR syntax error";
pub const ERR_WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const ERR_OVERFLOW: &str = "ERR increment or decrement would overflow";

/// C's `atoi` (glibc: `(int) strtol(s, NULL, 10)`): leading white space, an optional sign, the
/// digits that follow (saturating at the range of a long), then truncated to 32 bits; 0 when no
/// digits start the text. Redis's getkeys callbacks read `numkeys` with it.
pub fn atoi(s: &[u8]) -> i32 {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut v: i64 = 0;
    while let Some(&c) = s.get(i).filter(|c| c.is_ascii_digit()) {
        let d = (c - b'0') as i64;
        v = match v.checked_mul(10).and_then(|x| {
            if neg {
                x.checked_sub(d)
            } else {
                x.checked_add(d)
            }
        }) {
            Some(x) => x,
            None => {
                v = if neg { i64::MIN } else { i64::MAX };
                break;
            }
        };
        i += 1;
    }
    v as i32
}

/// The count of SRANDMEMBER, ZRANDMEMBER and HRANDFIELD: Redis reads it with
/// `getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX)`, so only i64::MIN is out of range.
pub fn random_count_arg(s: &[u8]) -> Result<i64, &'static str> {
    match int_arg(s)? {
        i64::MIN => Err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"),
        n => Ok(n),
    }
}

/// The most elements a reply with repeats (a negative count of SRANDMEMBER, ZRANDMEMBER or
/// HRANDFIELD on an existing key) may hold. Redis 7.0 builds such a reply whatever its size,
/// so a count like -9223372036854775807 runs it out of memory; Tessera answers
/// `ERR value is out of range` instead, the error Redis gives for the WITHSCORES/WITHVALUES
/// counts it does check. 50 million repeats is already a reply of hundreds of megabytes.
pub const MAX_RANDOM_REPEATS: u64 = 50_000_000;

/// Refuses a negative random count whose reply would exceed `MAX_RANDOM_REPEATS` elements.
pub fn check_random_repeats(count: i64) -> Result<(), &'static str> {
    if count < 0 && count.unsigned_abs() > MAX_RANDOM_REPEATS {
        Err(ERR_OUT_OF_RANGE)
    } else {
        Ok(())
    }
}

pub const ERR_OUT_OF_RANGE: &str = "ERR value is out of range";

pub fn int_arg(s: &[u8]) -> Result<i64, &'static str> {
    parse_i64(s).ok_or(ERR_NOT_INT)
}

/// Redis's `getIntFromObjectOrReply`: an integer that must also fit in 32 bits, with its own
/// error for values outside that range.
pub fn i32_arg(s: &[u8]) -> Result<i32, &'static str> {
    let v = int_arg(s)?;
    i32::try_from(v)
        .map_err(|_| "ERR value is out of range, value must between -2147483648 and 2147483647")
}

/// C's `isspace` in the "C" locale.
#[inline]
pub fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn starts_with_ic(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Multiplies by 2^exp in steps that cannot overflow the exponent of the factor.
fn scale_pow2(mut v: f64, mut exp: i64) -> f64 {
    while exp > 1000 {
        v *= 2f64.powi(1000);
        exp -= 1000;
        if v.is_infinite() {
            return v;
        }
    }
    while exp < -1000 {
        v *= 2f64.powi(-1000);
        exp += 1000;
        if v == 0.0 {
            return v;
        }
    }
    v * 2f64.powi(exp as i32)
}

/// C's `strtod` (glibc): skips leading white space and converts the longest prefix that forms
/// a decimal or hexadecimal floating constant, `inf`/`infinity` or `nan`/`nan(...)`. Returns
/// (value, bytes consumed, range error); consumes nothing when no number starts the text. The
/// range error is glibc's ERANGE: a finite number that overflowed to infinity, a nonzero one
/// that underflowed to zero, or one whose result is subnormal and inexact.
pub fn strtod(s: &[u8]) -> (f64, usize, bool) {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let signed = |v: f64| if neg { -v } else { v };
    let rest = &s[i..];
    if starts_with_ic(rest, b"infinity") {
        return (signed(f64::INFINITY), i + 8, false);
    }
    if starts_with_ic(rest, b"inf") {
        return (signed(f64::INFINITY), i + 3, false);
    }
    if starts_with_ic(rest, b"nan") {
        let mut end = i + 3;
        if s.get(end) == Some(&b'(') {
            let mut k = end + 1;
            while k < s.len() && (s[k].is_ascii_alphanumeric() || s[k] == b'_') {
                k += 1;
            }
            if s.get(k) == Some(&b')') {
                end = k + 1;
            }
        }
        return (f64::NAN, end, false);
    }
    let hex_digit = |c: u8| (c as char).to_digit(16);
    if starts_with_ic(rest, b"0x") {
        let after = &rest[2..];
        let has_digits = after.first().and_then(|&c| hex_digit(c)).is_some()
            || (after.first() == Some(&b'.') && after.get(1).and_then(|&c| hex_digit(c)).is_some());
        if has_digits {
            let mut j = i + 2;
            let mut mant: u64 = 0;
            let mut exp: i64 = 0;
            let mut sticky = false;
            let mut seen_dot = false;
            while j < s.len() {
                let c = s[j];
                if c == b'.' && !seen_dot {
                    seen_dot = true;
                } else if let Some(d) = hex_digit(c) {
                    if mant >> 60 == 0 {
                        mant = mant * 16 + d as u64;
                        if seen_dot {
                            exp -= 4;
                        }
                    } else {
                        sticky |= d != 0;
                        if !seen_dot {
                            exp += 4;
                        }
                    }
                } else {
                    break;
                }
                j += 1;
            }
            if j < s.len() && (s[j] == b'p' || s[j] == b'P') {
                let mut k = j + 1;
                let mut eneg = false;
                if k < s.len() && (s[k] == b'+' || s[k] == b'-') {
                    eneg = s[k] == b'-';
                    k += 1;
                }
                if k < s.len() && s[k].is_ascii_digit() {
                    let mut e: i64 = 0;
                    while k < s.len() && s[k].is_ascii_digit() {
                        e = (e * 10 + (s[k] - b'0') as i64).min(1 << 20);
                        k += 1;
                    }
                    exp += if eneg { -e } else { e };
                    j = k;
                }
            }
            if mant == 0 {
                return (signed(0.0), j, false);
            }
            // The value is mant * 2^exp (plus sticky bits below). Round once, to nearest with
            // ties to even, to the bits the result can hold: 53, or fewer for a subnormal (its
            // last bit is worth 2^-1074), so that the scaling below is exact.
            let bits = 64 - mant.leading_zeros() as i64;
            let top = exp + bits - 1;
            let keep = if top >= -1022 {
                53
            } else {
                (top + 1075).max(0)
            };
            let mut m = mant as u128;
            let mut inexact = sticky;
            if bits > keep {
                let drop = (bits - keep) as u32;
                exp += drop as i64;
                if drop >= 128 {
                    m = 0;
                    inexact = true;
                } else {
                    let rem = m & ((1u128 << drop) - 1);
                    let half = 1u128 << (drop - 1);
                    m >>= drop;
                    inexact |= rem != 0;
                    if rem > half || (rem == half && (sticky || m & 1 == 1)) {
                        m += 1;
                    }
                }
            }
            let v = scale_pow2(m as f64, exp);
            // glibc reports ERANGE for an inexact result of a number that is below the
            // smallest normal even once rounded to 53 bits (tininess after rounding).
            let top53 = if bits <= 53 {
                top
            } else {
                let shift = bits - 53;
                let rem = mant & ((1u64 << shift) - 1);
                let half = 1u64 << (shift - 1);
                let m53 = mant >> shift;
                let up = rem > half || (rem == half && (sticky || m53 & 1 == 1));
                if up && m53 + 1 == 1 << 53 {
                    top + 1
                } else {
                    top
                }
            };
            let erange = v.is_infinite() || v == 0.0 || (top53 < -1022 && inexact);
            return (signed(v), j, erange);
        }
    }
    let mut j = i;
    let mut digits = 0;
    let mut nonzero = false;
    while j < s.len() && s[j].is_ascii_digit() {
        nonzero |= s[j] != b'0';
        digits += 1;
        j += 1;
    }
    if j < s.len() && s[j] == b'.' {
        j += 1;
        while j < s.len() && s[j].is_ascii_digit() {
            nonzero |= s[j] != b'0';
            digits += 1;
            j += 1;
        }
    }
    if digits == 0 {
        return (0.0, 0, false);
    }
    if j < s.len() && (s[j] == b'e' || s[j] == b'E') {
        let mut k = j + 1;
        if k < s.len() && (s[k] == b'+' || s[k] == b'-') {
            k += 1;
        }
        if k < s.len() && s[k].is_ascii_digit() {
            while k < s.len() && s[k].is_ascii_digit() {
                k += 1;
            }
            j = k;
        }
    }
    // The validated text is plain ASCII in a form Rust's correctly rounded parser accepts.
    let v = std::str::from_utf8(&s[i..j])
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .unwrap_or(0.0);
    // glibc reports ERANGE for an inexact result of a number that is below the smallest normal
    // even once rounded to 53 bits: any inexact subnormal result, and a smallest-normal result
    // of a number below the midpoint under it (DBL_MIN - 2^-1076).
    let tiny_inexact = if v != 0.0 && v.abs() < f64::MIN_POSITIVE {
        decimal_cmp(&s[i..j], v.abs().to_bits() << 2) != Ordering::Equal
    } else if v.abs() == f64::MIN_POSITIVE {
        decimal_cmp(&s[i..j], (f64::MIN_POSITIVE.to_bits() << 2) - 1) == Ordering::Less
    } else {
        false
    };
    let erange = v.is_infinite() || (v == 0.0 && nonzero) || tiny_inexact;
    (signed(v), j, erange)
}

/// Compares the decimal constant `text` (digits, optional '.', optional exponent; no sign) with
/// quarters * 2^-1076, exactly: digits * 10^e against quarters * 5^1076 * 10^-1076.
fn decimal_cmp(text: &[u8], quarters: u64) -> Ordering {
    use num_bigint::BigUint;
    let (mant, exp_part) = match text.iter().position(|&c| c == b'e' || c == b'E') {
        Some(p) => (&text[..p], &text[p + 1..]),
        None => (text, &b""[..]),
    };
    let mut digits: Vec<u8> = Vec::with_capacity(mant.len());
    let mut e: i64 = 0;
    let mut after_dot = false;
    for &c in mant {
        if c == b'.' {
            after_dot = true;
        } else {
            digits.push(c);
            if after_dot {
                e -= 1;
            }
        }
    }
    let exp_val = std::str::from_utf8(exp_part)
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
        .unwrap_or(if exp_part.is_empty() { 0 } else { i64::MIN / 2 });
    e = e.saturating_add(exp_val);
    let first = digits
        .iter()
        .position(|&c| c != b'0')
        .unwrap_or(digits.len());
    let mut digits = &digits[first..];
    // k * 5^1074 has at most 770 digits, so 20000 significant digits decide the comparison;
    // nonzero digits beyond them only break a tie.
    const KEEP: usize = 20_000;
    let mut more = false;
    if digits.len() > KEEP {
        more = digits[KEEP..].iter().any(|&c| c != b'0');
        e = e.saturating_add((digits.len() - KEEP) as i64);
        digits = &digits[..KEEP];
    }
    let Some(d) = BigUint::parse_bytes(digits, 10) else {
        return Ordering::Less; // no digits: zero
    };
    let magnitude = e.saturating_add(digits.len() as i64);
    if magnitude > 1000 {
        return Ordering::Greater;
    }
    if magnitude < -2000 {
        return Ordering::Less;
    }
    let shift = e + 1076;
    let rhs = BigUint::from(quarters) * BigUint::from(5u32).pow(1076);
    let ten = BigUint::from(10u32);
    let ord = if shift >= 0 {
        (d * ten.pow(shift as u32)).cmp(&rhs)
    } else {
        d.cmp(&(rhs * ten.pow((-shift) as u32)))
    };
    if ord == Ordering::Equal && more {
        Ordering::Greater
    } else {
        ord
    }
}

/// Redis's `string2d` as `getDoubleFromObject` uses it (ZADD scores and weights): at most 5120
/// bytes, then [`string2d`].
pub fn parse_double(s: &[u8]) -> Option<f64> {
    if s.len() > 5 * 1024 {
        return None;
    }
    string2d(s)
}

/// Redis's `string2d`: the whole string must be a number for strtod, without leading space, no
/// overflow or underflow to zero, not NaN.
pub fn string2d(s: &[u8]) -> Option<f64> {
    if s.is_empty() || is_c_space(s[0]) {
        return None;
    }
    let (v, used, erange) = strtod(s);
    if used != s.len() || v.is_nan() || (erange && (v.is_infinite() || v == 0.0)) {
        return None;
    }
    Some(v)
}

/// strtod over the text as C sees it (up to its first NUL), which must consume all of it:
/// Redis's checks `eptr[0] == '\0'` after a bare strtod (ZRANGEBYSCORE bounds, SORT scores).
/// Unlike `parse_double`, leading white space is skipped and an empty text is 0. Returns the
/// value (possibly NaN or infinite) and whether strtod reported ERANGE.
pub fn strtod_c_string(s: &[u8]) -> Option<(f64, bool)> {
    let (v, used, erange) = strtod(s);
    (used == s.len() || s[used] == 0).then_some((v, erange))
}

/// ASCII case-insensitive comparison of an argument with an option name.
#[inline]
pub fn eq_ic(arg: &[u8], name: &str) -> bool {
    arg.eq_ignore_ascii_case(name.as_bytes())
}

/// Lossy text of an argument for error messages.
pub fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// The bytes of an argument up to its first NUL: Redis reads many arguments as C strings
/// (`strcasecmp`, `strlen`, `%s` in its error texts), so whatever follows a NUL is ignored there.
pub fn c_str(s: &[u8]) -> &[u8] {
    s.iter().position(|&b| b == 0).map_or(s, |i| &s[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_like_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"9223372036854775808"[..],
            b"01",
            b"-0",
            b"+1",
            b" 1",
            b"1 ",
            b"",
            b"-",
            b"1e3",
            b"0x10",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", std::str::from_utf8(bad));
        }
    }

    #[test]
    fn strtod_like_glibc() {
        assert_eq!(strtod(b"1.5"), (1.5, 3, false));
        assert_eq!(strtod(b"  -2e3x"), (-2000.0, 6, false));
        assert_eq!(strtod(b"1e"), (1.0, 1, false));
        assert_eq!(strtod(b"1e+"), (1.0, 1, false));
        assert_eq!(strtod(b"."), (0.0, 0, false));
        assert_eq!(strtod(b""), (0.0, 0, false));
        assert_eq!(strtod(b" "), (0.0, 0, false));
        assert_eq!(strtod(b"-"), (0.0, 0, false));
        assert_eq!(strtod(b"5."), (5.0, 2, false));
        assert_eq!(strtod(b".5"), (0.5, 2, false));
        assert_eq!(strtod(b"0x10"), (16.0, 4, false));
        assert_eq!(strtod(b"0x1p3"), (8.0, 5, false));
        assert_eq!(strtod(b"0x.8"), (0.5, 4, false));
        assert_eq!(strtod(b"0x1p"), (1.0, 3, false));
        assert_eq!(strtod(b"0xg"), (0.0, 1, false));
        assert_eq!(strtod(b"-Infinity"), (f64::NEG_INFINITY, 9, false));
        assert_eq!(strtod(b"infinit"), (f64::INFINITY, 3, false));
        assert_eq!(strtod(b"1e400"), (f64::INFINITY, 5, true));
        assert_eq!(strtod(b"1e-400"), (0.0, 6, true));
        assert_eq!(strtod(b"0e-400"), (0.0, 6, false));
        let (v, n, _) = strtod(b"nan(123)x");
        assert!(v.is_nan() && n == 8);
        assert_eq!(strtod(b"0x1fffffffffffffff"), (2f64.powi(61), 18, false));
        // Subnormal results: exact ones are fine, inexact ones raise ERANGE (as glibc does).
        let min_sub = f64::from_bits(1);
        assert_eq!(strtod(b"0x1p-1074"), (min_sub, 9, false));
        assert_eq!(strtod(b"0x1.8p-1074"), (2.0 * min_sub, 11, true));
        assert_eq!(strtod(b"0x1p-1075"), (0.0, 9, true));
        assert_eq!(strtod(b"0x1.0000000000001p-1075"), (min_sub, 23, true));
        assert_eq!(strtod(b"0x0.0000000000001p-1022"), (min_sub, 23, false));
        assert_eq!(
            strtod(b"0x1.fffffffffffffp-1023"),
            (f64::MIN_POSITIVE, 23, true)
        );
        // Rounds to the smallest normal already at 53 bits: not tiny, no ERANGE.
        assert_eq!(
            strtod(b"0x1.fffffffffffff8p-1023"),
            (f64::MIN_POSITIVE, 24, false)
        );
        assert!(strtod(b"2.2250738585072012e-308").2);
        assert_eq!(strtod(b"0x1p-1022"), (f64::MIN_POSITIVE, 9, false));
        assert_eq!(strtod(b"4.9e-324"), (min_sub, 8, true));
        assert!(strtod(b"1e-310").2);
        assert!(!strtod(b"2.2250738585072014e-308").2);
        let exact = "4.940656458412465441765687928682213723650598026143247644255856825006755072702087518652998363616359923797965646954457177309266567103559397963987747960107818781263007131903114045278458171678489821036887186360569987307230500063874091535649843873124733972731696151400317153853980741262385655911710266585566867681870395603106249319452715914924553293054565444011274801297099995419319894090804165633245247571478690147267801593552386115501348035264934720193790268107107491703332226844753335720832431936092382893458368060106011506169809753078342277318329247904982524730776375927247874656084778203734469699533647017972677717585125660551199131504891101451037862738167250955837389733598993664809941164205702637090279242767544565229087538682506419718265533447265625e-324";
        assert_eq!(strtod(exact.as_bytes()), (min_sub, exact.len(), false));
        assert_eq!(parse_double(b"1e-310").map(|v| v > 0.0), Some(true));
        for bad in [
            &b"1e400"[..],
            b"1e-400",
            b" 5",
            b"5 ",
            b"nan",
            b"",
            b"1e",
            b"abc",
        ] {
            assert_eq!(parse_double(bad), None, "{:?}", std::str::from_utf8(bad));
        }
        assert_eq!(parse_double(b"+5"), Some(5.0));
        assert_eq!(parse_double(b"-inf"), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn atoi_like_glibc() {
        assert_eq!(atoi(b"01"), 1);
        assert_eq!(atoi(b" \t+12x"), 12);
        assert_eq!(atoi(b"-0"), 0);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(atoi(b"1.9"), 1);
        assert_eq!(atoi(b"4294967297"), 1);
        assert_eq!(atoi(b"2147483649"), -2147483647);
        assert_eq!(atoi(b"9223372036854775808"), -1);
        assert_eq!(atoi(b"-9223372036854775809"), 0);
    }

    #[test]
    fn strtod_up_to_the_c_string_end() {
        assert_eq!(strtod_c_string(b""), Some((0.0, false)));
        assert_eq!(strtod_c_string(b"  1.5"), Some((1.5, false)));
        assert_eq!(strtod_c_string(b"1.5\0junk"), Some((1.5, false)));
        assert_eq!(strtod_c_string(b"0x1p3"), Some((8.0, false)));
        assert_eq!(strtod_c_string(b"1e400"), Some((f64::INFINITY, true)));
        assert_eq!(strtod_c_string(b"1.5 "), None);
        assert_eq!(strtod_c_string(b"abc"), None);
        assert!(strtod_c_string(b"nan").is_some_and(|(v, _)| v.is_nan()));
    }
}

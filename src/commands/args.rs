//! The one argument parser: numbers and options exactly as Redis parses them, with Redis's
//! error texts. Command handlers never parse numbers any other way.

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

/// Redis's `strtold`-based float parsing (`string2ld`): no leading space, the whole string must
/// be consumed, `inf`/`-inf` accepted, `nan` refused. Hexadecimal integers are accepted as
/// strtold does.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() > 5000 || s[0].is_ascii_whitespace() {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let lower = text.to_ascii_lowercase();
    let (neg, body) = match lower.as_bytes()[0] {
        b'-' => (true, &lower[1..]),
        b'+' => (false, &lower[1..]),
        _ => (false, &lower[..]),
    };
    let v = match body {
        "inf" | "infinity" => f64::INFINITY,
        _ if body.starts_with("0x") => {
            let hex = &body[2..];
            if hex.is_empty() || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            let mut v = 0f64;
            for c in hex.bytes() {
                v = v * 16.0 + (c as char).to_digit(16)? as f64;
            }
            v
        }
        _ => {
            // Rust's parser accepts "nan", "inf" spellings and forms C does not; restrict to
            // what strtold would consume fully.
            if !body
                .bytes()
                .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'-' | b'+'))
            {
                return None;
            }
            body.parse::<f64>().ok()?
        }
    };
    if v.is_nan() {
        return None;
    }
    Some(if neg { -v } else { v })
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
/// range error is ERANGE: the value overflowed to infinity or underflowed to zero.
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
            // Round the mantissa to 53 bits (to nearest, ties to even; dropped digits are sticky).
            let bits = 64 - mant.leading_zeros() as i64;
            let mut m = mant;
            if bits > 53 {
                let shift = bits - 53;
                let rem = mant & ((1u64 << shift) - 1);
                let half = 1u64 << (shift - 1);
                m = mant >> shift;
                if rem > half || (rem == half && (sticky || m & 1 == 1)) {
                    m += 1;
                }
                exp += shift;
            }
            let v = scale_pow2(m as f64, exp);
            let erange = v.is_infinite() || v == 0.0;
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
    let erange = v.is_infinite() || (v == 0.0 && nonzero);
    (signed(v), j, erange)
}

/// Redis's `string2d` (`getDoubleFromObject`, used for ZADD scores and weights): the whole
/// string must be a number for strtod, without leading space, no overflow or underflow to zero,
/// not NaN, at most 5120 bytes.
pub fn parse_double(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() > 5 * 1024 || is_c_space(s[0]) {
        return None;
    }
    let (v, used, erange) = strtod(s);
    if used != s.len() || v.is_nan() || (erange && (v.is_infinite() || v == 0.0)) {
        return None;
    }
    Some(v)
}

pub fn float_arg(s: &[u8]) -> Result<f64, &'static str> {
    parse_f64(s).ok_or(ERR_NOT_FLOAT)
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
    fn floats_like_strtold() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"0x10"), Some(16.0));
        assert_eq!(parse_f64(b".5"), Some(0.5));
        for bad in [&b"nan"[..], b" 1", b"1 ", b"", b"abc", b"1.2.3"] {
            assert_eq!(parse_f64(bad), None);
        }
    }
}

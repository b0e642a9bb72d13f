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

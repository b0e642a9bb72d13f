//! INCRBYFLOAT arithmetic. Redis adds two `long double`s and prints the sum with `%.17Lf`,
//! trimming trailing zeros. Rust has no 80-bit float, so decimal inputs are added exactly in
//! fixed point with 17 fractional digits (which is what the long double result rounds to for
//! every value of ordinary size); anything else falls back to f64.

use crate::commands::args::parse_f64;

const SCALE_DIGITS: u32 = 17;
const SCALE: i128 = 100_000_000_000_000_000; // 10^17

/// Parses `[-+]digits[.digits][e[-+]digits]` into a value scaled by 10^17, if exact and in range.
fn parse_fixed(s: &[u8]) -> Option<i128> {
    let (neg, mut rest) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let mut mantissa: i128 = 0;
    let mut frac_digits: i32 = 0;
    let mut seen_dot = false;
    let mut any = false;
    while let Some(&c) = rest.first() {
        if c.is_ascii_digit() {
            mantissa = mantissa.checked_mul(10)?.checked_add((c - b'0') as i128)?;
            if mantissa > 10i128.pow(30) {
                return None;
            }
            if seen_dot {
                frac_digits += 1;
            }
            any = true;
        } else if c == b'.' && !seen_dot {
            seen_dot = true;
        } else {
            break;
        }
        rest = &rest[1..];
    }
    if !any {
        return None;
    }
    let mut exp: i32 = 0;
    if let Some(&c) = rest.first() {
        if c != b'e' && c != b'E' {
            return None;
        }
        let e = std::str::from_utf8(&rest[1..]).ok()?;
        if e.is_empty() || e.len() > 6 {
            return None;
        }
        exp = e.parse().ok()?;
    }
    // value = mantissa * 10^(exp - frac_digits); scaled = value * 10^17.
    let shift = exp - frac_digits + SCALE_DIGITS as i32;
    let scaled = if shift >= 0 {
        mantissa.checked_mul(10i128.checked_pow(shift as u32)?)?
    } else {
        let div = 10i128.checked_pow((-shift) as u32)?;
        // More than 17 fractional digits: round half to even, as the conversion would.
        let (q, rem) = (mantissa / div, mantissa % div);
        let twice = rem * 2;
        if twice > div || (twice == div && q % 2 == 1) {
            q + 1
        } else {
            q
        }
    };
    if scaled.unsigned_abs() > 10u128.pow(38) {
        return None;
    }
    Some(if neg { -scaled } else { scaled })
}

fn trim(mut s: String) -> String {
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}

/// The text INCRBYFLOAT stores for `a + b`, or None if the sum is NaN or infinite. Both inputs
/// must already be valid floats (`parse_f64`).
pub fn add_decimal(a: &[u8], b: &[u8]) -> Option<String> {
    if let (Some(x), Some(y)) = (parse_fixed(a), parse_fixed(b)) {
        if let Some(sum) = x.checked_add(y) {
            let neg = sum < 0;
            let m = sum.unsigned_abs();
            let int = m / SCALE as u128;
            let frac = m % SCALE as u128;
            let s = format!(
                "{}{}.{:0width$}",
                if neg { "-" } else { "" },
                int,
                frac,
                width = SCALE_DIGITS as usize
            );
            return Some(trim(s));
        }
    }
    let sum = parse_f64(a)? + parse_f64(b)?;
    if !sum.is_finite() {
        return None;
    }
    Some(trim(format!("{:.17}", sum)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_like_long_double() {
        assert_eq!(add_decimal(b"10.5", b"0.1").unwrap(), "10.6");
        assert_eq!(add_decimal(b"0.1", b"0.2").unwrap(), "0.3");
        assert_eq!(add_decimal(b"5.0e3", b"2.0e2").unwrap(), "5200");
        assert_eq!(add_decimal(b"0", b"-0.0").unwrap(), "0");
        assert_eq!(add_decimal(b"1", b"-1.5").unwrap(), "-0.5");
        assert_eq!(add_decimal(b"3", b"1e-20").unwrap(), "3");
        assert_eq!(add_decimal(b"0x10", b"1").unwrap(), "17");
        assert!(add_decimal(b"inf", b"1").is_none());
    }
}

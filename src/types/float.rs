//! INCRBYFLOAT's arithmetic and text.
//!
//! Redis 7.0 parses the stored value and the increment with `strtold` (x86-64 80-bit
//! `long double`: 64-bit significand with an explicit integer bit, 15-bit exponent), adds them
//! in long double, and stores/replies the sum printed with `%.17Lf`, trailing zeros and a
//! trailing '.' removed, "-0" turned into "0" (`ld2string` with `LD_STR_HUMAN`). This module
//! owns that pipeline and reproduces it byte for byte without an 80-bit float type: values are
//! an [`F80`] (sign, biased exponent, 64-bit significand, exactly the x87 layout) and every
//! conversion or sum is computed exactly (u128 on the ordinary path, `num_bigint` for long or
//! extreme inputs) and then rounded once to nearest-even at 64 significant bits, with
//! subnormals and overflow handled as the FPU does.
//!
//! What it must never do: I/O of any kind, panic on any input bytes, or do unbounded work
//! (inputs of 5120 bytes or more are rejected up front, as Redis does, and exponents are
//! range-checked before any big-integer power is formed, so the worst case is a few hundred
//! microseconds for a ~5000-digit input or a 4933-digit result).

use num_bigint::BigUint;

/// Redis's `MAX_LONG_DOUBLE_CHARS`; `string2ld` rejects inputs of this length or longer.
const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;
/// Exponent of the last significand bit of subnormals (and of the smallest normals).
const MIN_UNIT_EXP: i64 = -16445;
/// Bias such that a normal value is `mant * 2^(biased - EXP_OFFSET)`.
const EXP_OFFSET: i64 = 16446;
const MAX_BIASED: i64 = 0x7FFE;
const INF_BIASED: u16 = 0x7FFF;
/// Exponents beyond this are saturated while parsing; anything that large over- or underflows.
const EXP_CLAMP: i64 = 1_000_000_000_000;
const TEN_POW_17: u128 = 100_000_000_000_000_000;

/// An x86-64 80-bit extended-precision value (never NaN): sign, 15-bit biased exponent and a
/// 64-bit significand with an explicit integer bit. Zero is `exp == 0, mant == 0`; subnormals
/// have `exp == 0` and the integer bit clear; infinity is `exp == 0x7FFF, mant == 1 << 63`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct F80 {
    neg: bool,
    exp: u16,
    mant: u64,
}

impl F80 {
    const fn zero(neg: bool) -> F80 {
        F80 {
            neg,
            exp: 0,
            mant: 0,
        }
    }

    const fn infinity(neg: bool) -> F80 {
        F80 {
            neg,
            exp: INF_BIASED,
            mant: 1 << 63,
        }
    }

    pub fn is_infinite(&self) -> bool {
        self.exp == INF_BIASED
    }

    pub fn is_finite(&self) -> bool {
        self.exp != INF_BIASED
    }

    pub fn is_zero(&self) -> bool {
        self.exp == 0 && self.mant == 0
    }

    pub fn is_sign_negative(&self) -> bool {
        self.neg
    }

    /// The 80-bit memory image (sign, exponent, significand) in the low 80 bits.
    pub fn to_bits(&self) -> u128 {
        ((self.neg as u128) << 79) | ((self.exp as u128) << 64) | self.mant as u128
    }

    /// A finite value as `mant * 2^exp`.
    fn parts(&self) -> (u64, i64) {
        if self.exp == 0 {
            (self.mant, MIN_UNIT_EXP)
        } else {
            (self.mant, self.exp as i64 - EXP_OFFSET)
        }
    }

    /// `self + rhs` in long double (round to nearest even). None only when the sum is NaN
    /// (infinities of opposite sign); overflow gives an infinity, like the FPU.
    pub fn plus(self, rhs: F80) -> Option<F80> {
        match (self.is_infinite(), rhs.is_infinite()) {
            (true, true) => {
                return if self.neg == rhs.neg {
                    Some(self)
                } else {
                    None
                }
            }
            (true, false) => return Some(self),
            (false, true) => return Some(rhs),
            (false, false) => {}
        }
        if rhs.is_zero() {
            return Some(if self.is_zero() {
                F80::zero(self.neg && rhs.neg)
            } else {
                self
            });
        }
        if self.is_zero() {
            return Some(rhs);
        }
        let (a, b) = if self.parts().1 >= rhs.parts().1 {
            (self, rhs)
        } else {
            (rhs, self)
        };
        let ((ma, ea), (mb, eb)) = (a.parts(), b.parts());
        let d = ea - eb;
        if d >= 66 {
            // d > 0 means `a` is normal (mant >= 2^63), so |b| < 2^(eb+64) <= ulp(a)/4 and the
            // exact sum lies strictly inside the rounding interval of `a`.
            return Some(a);
        }
        let sh = d.min(63) as u32;
        let x = (ma as u128) << sh;
        let rest = (d as u32) - sh; // 0..=2; jam the shifted-out bits into the lowest bit
        let y = if rest == 0 {
            mb as u128
        } else {
            let lost = mb & ((1u64 << rest) - 1);
            ((mb >> rest) as u128) | (lost != 0) as u128
        };
        let e = ea - sh as i64;
        let (neg, mag) = if a.neg == b.neg {
            (a.neg, x + y)
        } else if x > y {
            (a.neg, x - y)
        } else if y > x {
            (b.neg, y - x)
        } else {
            return Some(F80::zero(false));
        };
        Some(round_pack(neg, mag, false, e))
    }
}

/// Rounds `(q + f) * 2^e` to an F80, where `0 <= f < 1` and `sticky` says whether `f > 0`.
/// Callers only pass `sticky` with `q != 0`.
fn round_pack(neg: bool, mut q: u128, sticky: bool, mut e: i64) -> F80 {
    if q == 0 {
        return F80::zero(neg);
    }
    let mut n = 128 - q.leading_zeros() as i64;
    if sticky && n < 66 {
        // Make room so the sticky bit lies strictly below the rounding position.
        let s = 66 - n;
        q <<= s as u32;
        e -= s;
        n = 66;
    }
    let mut ue = (e + n - 64).max(MIN_UNIT_EXP);
    let shift = ue - e;
    let mut m: u128 = if shift <= 0 {
        // Exact: fewer than 65 bits (and no sticky); -shift <= 64 - n.
        q << ((-shift) as u32)
    } else if shift > 128 {
        0 // below half of the smallest subnormal
    } else {
        let (m, rem, half) = if shift == 128 {
            (0u128, q, 1u128 << 127)
        } else {
            let s = shift as u32;
            (q >> s, q & ((1u128 << s) - 1), 1u128 << (s - 1))
        };
        if rem > half || (rem == half && (sticky || m & 1 == 1)) {
            m + 1
        } else {
            m
        }
    };
    if m >> 64 != 0 {
        m >>= 1;
        ue += 1;
    }
    if m == 0 {
        return F80::zero(neg);
    }
    let biased = if m >> 63 == 0 { 0 } else { ue + EXP_OFFSET };
    if biased > MAX_BIASED {
        return F80::infinity(neg);
    }
    F80 {
        neg,
        exp: biased as u16,
        mant: m as u64,
    }
}

/// The top 128 bits of `n` (n != 0), whether anything below them is nonzero, and how many bits
/// were dropped: `n ~= top * 2^dropped`.
fn top128(n: &BigUint) -> (u128, bool, i64) {
    let bits = n.bits();
    let (top, sticky, dropped) = if bits > 128 {
        let dropped = bits - 128;
        let sticky = n.trailing_zeros().is_some_and(|tz| tz < dropped);
        (n >> (dropped as usize), sticky, dropped as i64)
    } else {
        (n.clone(), false, 0)
    };
    let mut v: u128 = 0;
    for (i, d) in top.iter_u64_digits().take(2).enumerate() {
        v |= (d as u128) << (64 * i);
    }
    (v, sticky, dropped)
}

/// `num / den` as `(q, sticky, e)` with `num / den = (q + f) * 2^e`, q having at least 66
/// significant bits (or being exact). Requires `0 < den < 2^127`.
fn div_u128(num: u128, den: u128) -> (u128, bool, i64) {
    let mut q = num / den;
    let mut r = num % den;
    let mut e = 0i64;
    let lz = den.leading_zeros(); // >= 1, so r << lz cannot overflow
    while r != 0 && q >> 65 == 0 {
        let bits = 128 - q.leading_zeros();
        let s = lz.min(66 - bits);
        r <<= s;
        q = (q << s) | (r / den);
        r %= den;
        e -= s as i64;
    }
    (q, r != 0, e)
}

/// A decimal significand: small enough for u128, or not.
enum Digits {
    Small(u128),
    Big(BigUint),
}

impl Digits {
    fn to_big(&self) -> BigUint {
        match self {
            Digits::Small(v) => BigUint::from(*v),
            Digits::Big(b) => b.clone(),
        }
    }
}

/// Correctly rounds `m * 10^e` (m != 0, and already known not to be hopelessly out of range).
fn decimal_to_f80(neg: bool, m: &Digits, e: i64) -> F80 {
    if let Digits::Small(v) = *m {
        if (0..=38).contains(&e) {
            if let Some(p) = v.checked_mul(10u128.pow(e as u32)) {
                return round_pack(neg, p, false, 0);
            }
        } else if (-54..0).contains(&e) {
            // m / 10^k = (m / 5^k) * 2^-k, and 5^54 < 2^127.
            let (q, sticky, qe) = div_u128(v, 5u128.pow((-e) as u32));
            return round_pack(neg, q, sticky, qe + e);
        }
    }
    decimal_to_f80_big(neg, &m.to_big(), e)
}

/// The arbitrary-size path of [`decimal_to_f80`]; also the reference the fast path is tested
/// against. `|e|` must be bounded (a few tens of thousands at most).
fn decimal_to_f80_big(neg: bool, m: &BigUint, e: i64) -> F80 {
    if e >= 0 {
        let n = m * BigUint::from(10u32).pow(e as u32);
        let (q, sticky, dropped) = top128(&n);
        round_pack(neg, q, sticky, dropped)
    } else {
        let k = -e;
        let den = BigUint::from(5u32).pow(k as u32);
        let s = (den.bits() as i64 + 66 - m.bits() as i64).max(0);
        let num = m << (s as usize);
        let quot = &num / &den;
        let inexact = &quot * &den != num;
        let (q, sticky, dropped) = top128(&quot);
        round_pack(neg, q, sticky || inexact, dropped - s - k)
    }
}

fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_ascii_lowercase() == *y)
}

/// Parses `[+-]?digits+` at `s[*i..]` as a saturated exponent; None if there are no digits.
fn parse_exponent(s: &[u8], i: &mut usize) -> Option<i64> {
    let mut neg = false;
    if let Some(&c) = s.get(*i) {
        if c == b'+' || c == b'-' {
            neg = c == b'-';
            *i += 1;
        }
    }
    let start = *i;
    let mut v: i64 = 0;
    while let Some(&c) = s.get(*i) {
        if !c.is_ascii_digit() {
            break;
        }
        v = (v * 10 + (c - b'0') as i64).min(EXP_CLAMP);
        *i += 1;
    }
    if *i == start {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// strtold-compatible parse as Redis's `string2ld` does it: no leading whitespace, the whole
/// input consumed, at most 5119 bytes, a finite result that overflowed to infinity or a
/// nonzero input that underflowed to zero (ERANGE) → None, NaN → None, "inf"/"infinity" (any
/// case, optional sign) → Some(infinite). Decimal: optional sign, digits, optional '.',
/// optional exponent. Hex: "0x"/"0X", hex digits with an optional '.', optional "p" exponent.
/// Subnormal results are accepted (glibc sets ERANGE but the value is neither 0 nor HUGE_VAL).
pub fn parse_long_double(s: &[u8]) -> Option<F80> {
    if s.is_empty() || s.len() >= MAX_LONG_DOUBLE_CHARS {
        return None;
    }
    let (neg, body) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    match body.first()? {
        b'i' | b'I' => {
            return if eq_ignore_case(body, b"inf") || eq_ignore_case(body, b"infinity") {
                Some(F80::infinity(neg))
            } else {
                None
            };
        }
        b'n' | b'N' => return None, // "nan", "nan(...)" parse as NaN, which Redis rejects
        _ => {}
    }
    if body.len() > 1 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
        parse_hex(neg, &body[2..])
    } else {
        parse_decimal(neg, body)
    }
}

fn parse_decimal(neg: bool, s: &[u8]) -> Option<F80> {
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        i += 1;
    }
    let int = &s[..i];
    let mut frac: &[u8] = &[];
    if i < s.len() && s[i] == b'.' {
        i += 1;
        let start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        frac = &s[start..i];
    }
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut exp = 0i64;
    if i < s.len() && (s[i] | 0x20) == b'e' {
        i += 1;
        exp = parse_exponent(s, &mut i)?;
    }
    if i != s.len() {
        return None;
    }
    // The significand is the concatenation int ++ frac, scaled by 10^(exp - frac.len()).
    let total = int.len() + frac.len();
    let digit = |k: usize| {
        if k < int.len() {
            int[k]
        } else {
            frac[k - int.len()]
        }
    };
    let Some(first) = (0..total).find(|&k| digit(k) != b'0') else {
        return Some(F80::zero(neg));
    };
    let last = (first..total)
        .rev()
        .find(|&k| digit(k) != b'0')
        .unwrap_or(first);
    let count = (last - first + 1) as i64;
    let e = exp - frac.len() as i64 + (total - 1 - last) as i64;
    // value is in [10^(count+e-1), 10^(count+e)); max finite ~1.19e4932, and anything below
    // 1e-4951 is under half the smallest subnormal (~3.65e-4951).
    if count + e > 4933 || count + e <= -4951 {
        return None;
    }
    let m = if count <= 38 {
        Digits::Small((first..=last).fold(0u128, |acc, k| acc * 10 + (digit(k) - b'0') as u128))
    } else {
        let text: Vec<u8> = (first..=last).map(digit).collect();
        Digits::Big(BigUint::parse_bytes(&text, 10)?)
    };
    let v = decimal_to_f80(neg, &m, e);
    if v.is_zero() || v.is_infinite() {
        None
    } else {
        Some(v)
    }
}

fn parse_hex(neg: bool, s: &[u8]) -> Option<F80> {
    let mut q: u128 = 0;
    let mut taken = 0; // significant hex digits held in q (at most 30 = 120 bits)
    let mut e: i64 = 0;
    let mut sticky = false;
    let mut any = false;
    let mut i = 0;
    let mut in_frac = false;
    while i < s.len() {
        let c = s[i];
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            b'.' if !in_frac => {
                in_frac = true;
                i += 1;
                continue;
            }
            _ => break,
        };
        any = true;
        i += 1;
        if q == 0 && d == 0 {
            if in_frac {
                e -= 4;
            }
            continue;
        }
        if taken < 30 {
            q = (q << 4) | d as u128;
            taken += 1;
            if in_frac {
                e -= 4;
            }
        } else {
            sticky |= d != 0;
            if !in_frac {
                e += 4;
            }
        }
    }
    if !any {
        return None;
    }
    if i < s.len() && (s[i] | 0x20) == b'p' {
        i += 1;
        e += parse_exponent(s, &mut i)?;
    }
    if i != s.len() {
        return None;
    }
    if q == 0 {
        return Some(F80::zero(neg));
    }
    let v = round_pack(neg, q, sticky, e);
    if v.is_zero() || v.is_infinite() {
        None
    } else {
        Some(v)
    }
}

/// The text INCRBYFLOAT stores for `a + b`, or None if the sum is NaN or infinite (or, which
/// callers should have ruled out already, if either input is not a valid long double).
pub fn add_decimal(a: &[u8], b: &[u8]) -> Option<String> {
    let sum = parse_long_double(a)?.plus(parse_long_double(b)?)?;
    if sum.is_infinite() {
        return None;
    }
    Some(format_human(&sum))
}

/// `%.17Lf` plus Redis's human trimming (trailing zeros, trailing '.', "-0" → "0") of an F80;
/// infinities print as "inf" / "-inf" as `ld2string` does.
pub fn format_human(v: &F80) -> String {
    if v.is_infinite() {
        return if v.neg { "-inf".into() } else { "inf".into() };
    }
    let (m, e) = v.parts();
    let mut out = String::new();
    if v.neg {
        out.push('-');
    }
    if e >= 0 {
        if e < 64 {
            out.push_str(&((m as u128) << e).to_string());
        } else {
            out.push_str(&(BigUint::from(m) << (e as usize)).to_string());
        }
    } else {
        // Round m * 2^e * 10^17 to an integer, ties to even (glibc's printf under
        // round-to-nearest); m * 10^17 < 2^121.
        let scaled = m as u128 * TEN_POW_17;
        let k = -e;
        let q = if k >= 122 {
            0 // scaled * 2^-k < 1/2
        } else {
            let k = k as u32;
            let (q, rem, half) = (scaled >> k, scaled & ((1u128 << k) - 1), 1u128 << (k - 1));
            if rem > half || (rem == half && q & 1 == 1) {
                q + 1
            } else {
                q
            }
        };
        out.push_str(&(q / TEN_POW_17).to_string());
        let frac = q % TEN_POW_17;
        if frac != 0 {
            let digits = format!("{:017}", frac);
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
    }
    if out == "-0" {
        out = "0".into();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::{BigInt, Sign};
    use proptest::prelude::*;

    enum Want {
        Ok(&'static str),
        /// "ERR value is not a valid float"
        NotFloat,
        /// "ERR increment would produce NaN or Infinity"
        NanOrInf,
    }
    use Want::*;

    /// What redis-server 7.0.15 (x86-64, glibc) replied to `SET k a` (or no key when None)
    /// followed by `INCRBYFLOAT k b`.
    const REDIS_CASES: &[(Option<&str>, &str, Want)] = &[
        (None, "0.1", Ok("0.1")),
        (Some("0.1"), "0.2", Ok("0.3")),
        (Some("0.3"), "1e3", Ok("1000.29999999999999999")),
        (Some("10.5"), "0.1", Ok("10.6")),
        (None, "-1e308", Ok("-99999999999999999996685879655845645660560099847415567207797047994921734868838061872100126921888539320446747225054013223152134749593960583597420814430196418767959100019603190778663109604507106667939153395788938914560543563061268364901618630217086589253444881623791300855757318142424510452728255046343928578048")),
        (Some("1e308"), "1e308", Ok("199999999999999999993371759311691291321120199694831134415594095989843469737676123744200253843777078640893494450108026446304269499187921167194841628860392837535918200039206381557326219209014213335878306791577877829121087126122536729803237260434173178506889763247582601711514636284849020905456510092687857156096")),
        (Some("0"), "123456789012345684.140625", Ok("123456789012345684.140625")),
        (Some("0"), "0x10", Ok("16")),
        (Some("0"), "+1", Ok("1")),
        (Some("0"), ".5", Ok("0.5")),
        (Some("0"), "5.", Ok("5")),
        (Some("0"), "1e-400", Ok("0")),
        (Some("1"), "-1.5", Ok("-0.5")),
        (Some("5"), "-10", Ok("-5")),
        (Some("-3.5"), "-0.25", Ok("-3.75")),
        (Some("1.5"), "1.5", Ok("3")),
        (Some("0"), "-0", Ok("0")),
        (Some("-0"), "-0", Ok("0")),
        (Some("0"), "-1e-20", Ok("0")),
        (Some("3"), "1e-20", Ok("3")),
        (Some("1e-4950"), "0", Ok("0")),
        (Some("0"), "0x1p-16445", Ok("0")),
        (Some("0"), "1e17", Ok("100000000000000000")),
        (Some("0"), "1e18", Ok("1000000000000000000")),
        (Some("0"), "1e19", Ok("10000000000000000000")),
        (Some("0"), "1e20", Ok("100000000000000000000")),
        (Some("0"), "18446744073709551617", Ok("18446744073709551616")),
        (Some("5.0e3"), "2.0e2", Ok("5200")),
        (Some("0"), "0.000003814697265625", Ok("0.00000381469726562")),
        (Some("0"), "0.000011444091796875", Ok("0.00001144409179688")),
        (Some("0"), "-0.000011444091796875", Ok("-0.00001144409179688")),
        (Some("0x1.8p1"), "0X1P-2", Ok("3.25")),
        (Some("0"), "0x.8", Ok("0.5")),
        (Some("1e400"), "-1e400", Ok("0")),
        (Some("1e4932"), "-1e4932", Ok("0")),
        (Some("3.14159265358979323846"), "2.71828182845904523536", Ok("5.85987448204883847")),
        (Some("0.1"), "-0.1", Ok("0")),
        (Some("0.1"), "-0.10000000000000000001", Ok("0")),
        (Some("99999999999999999999"), "1", Ok("100000000000000000000")),
        (Some("-1e-5"), "1e-5", Ok("0")),
        (Some("1e-18"), "1e-18", Ok("0")),
        (Some("0.000000000000000005"), "0", Ok("0")),
        (Some("0.000000000000000015"), "0", Ok("0.00000000000000002")),
        (Some("1234.5678"), "-0.0078", Ok("1234.55999999999999994")),
        (Some("-7"), "7", Ok("0")),
        (Some("2.5E+2"), "-0.5e1", Ok("245")),
        (Some("0"), "1.7976931348623157e308", Ok("179769313486231569995921046774104434048386446944329178485314420765176628523124396354701868608387085564428793419425520689308708363451136055357897278026477617073498977686288394835618163294045594434929537447290627480669417384648879122776218333598953852832103282504751611691208117720159985926376802466863339536384")),
        (Some("18446744073709551616"), "1", Ok("18446744073709551616")),
        (Some("18446744073709551616"), "3", Ok("18446744073709551620")),
        (Some("-0.000000000000000006"), "0", Ok("-0.00000000000000001")),
        (Some("1e-320"), "4.9e-324", Ok("0")),
        // Round-half-even ties at 64 bits, seen through a subtraction of 2^100.
        (Some("-1267650600228229401496703205376"), "0x1.0000000000000001p100", Ok("0")),
        (Some("-1267650600228229401496703205376"), "0x1.00000000000000010000000000000000000000000000001p100", Ok("137438953472")),
        (Some("-1267650600228229401496703205376"), "0x1.0000000000000003p100", Ok("274877906944")),
        (Some("-1267650600228229401496703205376"), "1267650600228229401565422682112", Ok("0")),
        (Some("-1267650600228229401496703205376"), "1267650600228229401565422682112.00000000000000001", Ok("137438953472")),
        (Some("-1267650600228229401496703205376"), "1267650600228229401702861635584", Ok("274877906944")),
        (Some("0"), "0xAbC.dEfP-4", Ok("171.8044281005859375")),
        (Some("0"), "0x1p+-3", NotFloat),
        (Some("0"), "1.8225e-4951", NotFloat),
        (Some("0"), "1.8226e-4951", Ok("0")),
        (Some("1.18973149535723176502e4932"), "1e4932", NanOrInf),
        (Some("INF"), "1", NanOrInf),
        (Some("inf"), "-inf", NanOrInf),
        (Some("-infinity"), "1", NanOrInf),
        (Some("0"), "nan", NotFloat),
        (Some("0"), "NaN", NotFloat),
        (Some("0"), "1e4933", NotFloat),
        (Some("0"), "1e-4951", NotFloat),
        (Some("0"), " 1", NotFloat),
        (Some("0"), "1 ", NotFloat),
        (Some("0"), "", NotFloat),
        (Some("0"), "0x", NotFloat),
        (Some("0"), "1e", NotFloat),
        (Some("0"), "abc", NotFloat),
        (Some("0"), "0x1p", NotFloat),
        (Some("0"), "1.2.3", NotFloat),
        (Some("0"), "infinit", NotFloat),
        (Some("abc"), "1", NotFloat),
        (Some("0"), "0x1p16384", NotFloat),
    ];

    /// INCRBYFLOAT as the command does it: a missing key counts as "0".
    fn incrbyfloat(cur: Option<&str>, incr: &str) -> Result<String, &'static str> {
        let cur = cur.unwrap_or("0").as_bytes();
        if parse_long_double(cur).is_none() || parse_long_double(incr.as_bytes()).is_none() {
            return Err("not a valid float");
        }
        add_decimal(cur, incr.as_bytes()).ok_or("NaN or Infinity")
    }

    #[test]
    fn matches_redis_table() {
        assert!(REDIS_CASES.len() >= 40);
        for (cur, incr, want) in REDIS_CASES {
            let got = incrbyfloat(*cur, incr);
            match want {
                Ok(text) => assert_eq!(got.as_deref(), Result::Ok(*text), "{cur:?} + {incr:?}"),
                NotFloat => assert_eq!(got, Err("not a valid float"), "{cur:?} + {incr:?}"),
                NanOrInf => assert_eq!(got, Err("NaN or Infinity"), "{cur:?} + {incr:?}"),
            }
        }
    }

    #[test]
    fn accumulation_matches_redis() {
        let mut cur: Option<String> = None;
        let tenths = [
            "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1",
        ];
        for want in tenths {
            let next = incrbyfloat(cur.as_deref(), "0.1").unwrap();
            assert_eq!(next, want);
            cur = Some(next);
        }
        let mut cur: Option<String> = None;
        let minus_137 = [
            "-1.37", "-2.74", "-4.11", "-5.48", "-6.85", "-8.22", "-9.59", "-10.96", "-12.33",
            "-13.7", "-15.07", "-16.44", "-17.81", "-19.18", "-20.55", "-21.92", "-23.29",
            "-24.66", "-26.03", "-27.4", "-28.77", "-30.14", "-31.51", "-32.88", "-34.25",
            "-35.62", "-36.99", "-38.36", "-39.73", "-41.1",
        ];
        for want in minus_137 {
            let next = incrbyfloat(cur.as_deref(), "-1.37").unwrap();
            assert_eq!(next, want);
            cur = Some(next);
        }
    }

    #[test]
    fn extremes_match_redis() {
        // 1e4932 and the largest long double both print as 4933 digits.
        let big = incrbyfloat(Some("0"), "1e4932").unwrap();
        assert_eq!(big.len(), 4933);
        assert!(big.starts_with("100000000000000000000601894938"));
        assert!(big.ends_with("163141086538418113791886622720"));
        let max = incrbyfloat(Some("0"), "1.18973149535723176502e4932").unwrap();
        assert_eq!(max.len(), 4933);
        assert!(max.ends_with("444156604419552086811989770240"));
        assert_eq!(
            incrbyfloat(Some("0"), "0x1.fffffffffffffffep16383").unwrap(),
            max
        );
        // 5119 bytes is the longest accepted input.
        let ok = format!("0.{}", "3".repeat(5117));
        assert_eq!(incrbyfloat(Some("0"), &ok).unwrap(), "0.33333333333333333");
        let too_long = format!("0.{}", "3".repeat(5118));
        assert!(incrbyfloat(Some("0"), &too_long).is_err());
        assert!(incrbyfloat(Some(&"1".repeat(5119)), "1.5").is_err()); // overflow
    }

    #[test]
    fn parse_classes() {
        assert!(parse_long_double(b"inf").unwrap().is_infinite());
        assert!(parse_long_double(b"-Infinity").unwrap().is_sign_negative());
        assert!(parse_long_double(b"nan(123)").is_none());
        assert!(parse_long_double(b"1e-4950").is_some()); // subnormal: ERANGE but nonzero
        assert!(parse_long_double(b"1.8226e-4951").is_some()); // just above half min subnormal
        assert!(parse_long_double(b"1.8225e-4951").is_none()); // rounds to zero
        assert!(parse_long_double(b"0e-999999999999999999999")
            .unwrap()
            .is_zero());
        assert!(parse_long_double(b"1e999999999999999999999").is_none());
        assert_eq!(parse_long_double(b"0x1p-16445").unwrap().to_bits(), 1);
        assert!(parse_long_double(b"0x1p-16446").is_none()); // tie with zero → 0 → ERANGE
        assert_eq!(parse_long_double(b"0x1.8p-16445").unwrap().to_bits(), 2);
        assert_eq!(
            parse_long_double(b"-0x1p0").unwrap().to_bits(),
            (1u128 << 79) | (0x3FFFu128 << 64) | (1u128 << 63)
        );
        assert_eq!(format_human(&F80::infinity(true)), "-inf");
    }

    // ---- reference implementations for the property tests ----

    fn f80_strategy() -> impl Strategy<Value = F80> {
        (any::<bool>(), 0u16..=0x7FFE, any::<u64>()).prop_map(|(neg, exp, mant)| {
            let mant = if exp == 0 { mant >> 1 } else { mant | 1 << 63 };
            F80 { neg, exp, mant }
        })
    }

    fn exact_decimal(m: u64, e: i64) -> String {
        if e >= 0 {
            (BigUint::from(m) << (e as usize)).to_string()
        } else {
            let k = (-e) as usize;
            let digits = (BigUint::from(m) * BigUint::from(5u32).pow(k as u32)).to_string();
            let digits = format!("{:0>width$}", digits, width = k + 1);
            let (int, frac) = digits.split_at(digits.len() - k);
            format!("{int}.{frac}")
        }
    }

    fn reference_plus(a: F80, b: F80) -> F80 {
        let ((ma, ea), (mb, eb)) = (a.parts(), b.parts());
        let emin = ea.min(eb);
        let signed = |neg: bool, m: u64, e: i64| {
            let v = BigInt::from(m) << ((e - emin) as usize);
            if neg {
                -v
            } else {
                v
            }
        };
        let sum = signed(a.neg, ma, ea) + signed(b.neg, mb, eb);
        let (sign, mag) = sum.into_parts();
        if mag.bits() == 0 {
            return F80::zero(a.neg && b.neg);
        }
        let (q, sticky, dropped) = top128(&mag);
        round_pack(sign == Sign::Minus, q, sticky, dropped + emin)
    }

    fn reference_format(v: &F80) -> String {
        let (m, e) = v.parts();
        let scaled = BigUint::from(m) * BigUint::from(TEN_POW_17);
        let q = if e >= 0 {
            scaled << (e as usize)
        } else {
            let k = (-e) as usize;
            let q = &scaled >> k;
            let rem = &scaled - (&q << k);
            let twice = rem << 1usize;
            let unit = BigUint::from(1u32) << k;
            if twice > unit || (twice == unit && q.bit(0)) {
                q + 1u32
            } else {
                q
            }
        };
        let digits = format!("{:0>18}", q.to_string());
        let (int, frac) = digits.split_at(digits.len() - 17);
        let mut s = format!("{}{}.{}", if v.neg { "-" } else { "" }, int, frac);
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
        if s == "-0" {
            s = "0".into();
        }
        s
    }

    fn decimal_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[+-]?[0-9]{1,12}(\\.[0-9]{0,12})?",
            "[+-]?[0-9]{0,30}\\.[0-9]{1,30}([eE][+-]?[0-9]{1,4})?",
            "[+-]?[0-9]{1,25}[eE][+-]?[0-9]{1,6}",
            "[+-]?0[xX][0-9a-fA-F]{1,24}(\\.[0-9a-f]{0,8})?([pP][+-]?[0-9]{1,5})?",
            "[+-]?(inf|INF|infinity|nan|[0-9.eE+-]{0,12})",
        ]
    }

    proptest! {
        #[test]
        fn random_decimal_pairs_never_panic(a in decimal_text(), b in decimal_text()) {
            let both = parse_long_double(a.as_bytes()).is_some() && parse_long_double(b.as_bytes()).is_some();
            let r = add_decimal(a.as_bytes(), b.as_bytes());
            if !both {
                prop_assert!(r.is_none());
            }
            if let Some(text) = r {
                // What we store must itself be a valid float for the next INCRBYFLOAT.
                prop_assert!(parse_long_double(text.as_bytes()).is_some() || text.len() >= MAX_LONG_DOUBLE_CHARS);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(a in proptest::collection::vec(any::<u8>(), 0..64), b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_long_double(&a);
            let _ = add_decimal(&a, &b);
        }

        #[test]
        fn fast_decimal_path_matches_bignum(m in 1u128.., e in -70i64..45, neg in any::<bool>()) {
            prop_assert_eq!(decimal_to_f80(neg, &Digits::Small(m), e), decimal_to_f80_big(neg, &BigUint::from(m), e));
        }

        #[test]
        fn plus_matches_exact_reference(a in f80_strategy(), b in f80_strategy()) {
            prop_assert_eq!(a.plus(b), Some(reference_plus(a, b)));
        }

        #[test]
        fn plus_near_cancellation(m in any::<u64>(), d in 0i64..70, exp in 1u16..0x7F00, neg in any::<bool>(), mb in any::<u64>()) {
            let a = F80 { neg, exp, mant: m | 1 << 63 };
            let be = (exp as i64 - d).max(1) as u16;
            let b = F80 { neg: !neg, exp: be, mant: mb | 1 << 63 };
            prop_assert_eq!(a.plus(b), Some(reference_plus(a, b)));
        }

        #[test]
        fn format_matches_exact_reference(v in f80_strategy()) {
            prop_assert_eq!(format_human(&v), reference_format(&v));
        }

        #[test]
        fn exact_decimal_text_round_trips(m in any::<u64>(), e in -120i64..120, neg in any::<bool>()) {
            prop_assume!(m != 0);
            let v = round_pack(neg, m as u128, false, e);
            let text = format!("{}{}", if neg { "-" } else { "" }, exact_decimal(m, e));
            prop_assert_eq!(parse_long_double(text.as_bytes()), Some(v));
        }

        #[test]
        fn decimal_midpoints_round_to_even(m in (1u64 << 63).., e in -120i64..120) {
            // m * 2^e + 2^(e-1) lies exactly halfway between two long doubles.
            let mid = ((m as u128) << 1) | 1;
            let text = if e > 0 {
                (BigUint::from(mid) << ((e - 1) as usize)).to_string()
            } else {
                let k = (1 - e) as usize;
                let digits = (BigUint::from(mid) * BigUint::from(5u32).pow(k as u32)).to_string();
                let digits = format!("{:0>width$}", digits, width = k + 1);
                let (int, frac) = digits.split_at(digits.len() - k);
                format!("{int}.{frac}")
            };
            let even = if m & 1 == 0 { m as u128 } else { m as u128 + 1 };
            prop_assert_eq!(parse_long_double(text.as_bytes()), Some(round_pack(false, even, false, e)));
        }
    }
}

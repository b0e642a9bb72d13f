//! The one reply writer. Every command writes its answer through `Reply`, which knows whether the
//! client speaks RESP2 or RESP3 and picks the wire type accordingly (a map is a flat array in
//! RESP2, a null is `$-1` or `_`, a double is a bulk string or `,`).
//!
//! It appends to a caller-owned buffer and never flushes: the connection writes the whole
//! pipeline's replies in one syscall.

use bytes::{BufMut, BytesMut};

/// Writes RESP replies into a buffer.
pub struct Reply<'a> {
    pub buf: &'a mut BytesMut,
    pub resp3: bool,
}

impl<'a> Reply<'a> {
    pub fn new(buf: &'a mut BytesMut, resp3: bool) -> Self {
        Reply { buf, resp3 }
    }

    #[inline]
    fn num_line(&mut self, prefix: u8, n: i64) {
        let mut b = itoa::Buffer::new();
        let s = b.format(n);
        self.buf.reserve(s.len() + 3);
        self.buf.put_u8(prefix);
        self.buf.put_slice(s.as_bytes());
        self.buf.put_slice(b"\r\n");
    }

    pub fn ok(&mut self) {
        self.buf.put_slice(b"+OK\r\n");
    }

    /// A status reply; `s` must not contain CR or LF.
    pub fn simple(&mut self, s: &str) {
        self.simple_bytes(s.as_bytes());
    }

    pub fn simple_bytes(&mut self, s: &[u8]) {
        self.buf.reserve(s.len() + 3);
        self.buf.put_u8(b'+');
        self.buf.put_slice(s);
        self.buf.put_slice(b"\r\n");
    }

    /// An error reply. `msg` is the full text including its code (`ERR ...`, `WRONGTYPE ...`);
    /// line breaks are replaced by spaces, as Redis does, so a reply can never break framing.
    pub fn error(&mut self, msg: &str) {
        self.error_bytes(msg.as_bytes());
    }

    /// An error reply from raw bytes (errors that echo client input).
    pub fn error_bytes(&mut self, msg: &[u8]) {
        self.buf.reserve(msg.len() + 3);
        self.buf.put_u8(b'-');
        for &b in msg {
            self.buf
                .put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        self.buf.put_slice(b"\r\n");
    }

    #[inline]
    pub fn int(&mut self, n: i64) {
        self.num_line(b':', n);
    }

    #[inline]
    pub fn bulk(&mut self, data: &[u8]) {
        self.num_line(b'$', data.len() as i64);
        self.buf.reserve(data.len() + 2);
        self.buf.put_slice(data);
        self.buf.put_slice(b"\r\n");
    }

    /// A bulk string holding the decimal form of `n` (GET of an integer-encoded value).
    pub fn bulk_int(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        let s = b.format(n);
        self.bulk(s.as_bytes());
    }

    /// The null bulk string (`$-1` / `_`).
    pub fn null(&mut self) {
        self.buf
            .put_slice(if self.resp3 { b"_\r\n" } else { b"$-1\r\n" });
    }

    /// The null array (`*-1` / `_`).
    pub fn null_array(&mut self) {
        self.buf
            .put_slice(if self.resp3 { b"_\r\n" } else { b"*-1\r\n" });
    }

    pub fn array(&mut self, len: usize) {
        self.num_line(b'*', len as i64);
    }

    /// A map of `len` pairs: `%` in RESP3, a flat array of 2*len in RESP2.
    pub fn map(&mut self, len: usize) {
        if self.resp3 {
            self.num_line(b'%', len as i64);
        } else {
            self.num_line(b'*', 2 * len as i64);
        }
    }

    /// A set: `~` in RESP3, an array in RESP2.
    pub fn set(&mut self, len: usize) {
        self.num_line(if self.resp3 { b'~' } else { b'*' }, len as i64);
    }

    /// An out-of-band push frame: `>` in RESP3, an array in RESP2.
    pub fn push(&mut self, len: usize) {
        self.num_line(if self.resp3 { b'>' } else { b'*' }, len as i64);
    }

    /// A double: `,` in RESP3, a bulk string in RESP2 (formatted like Redis's `%.17g`).
    pub fn double(&mut self, d: f64) {
        let s = format_double(d);
        if self.resp3 {
            self.buf.put_u8(b',');
            self.buf.put_slice(s.as_bytes());
            self.buf.put_slice(b"\r\n");
        } else {
            self.bulk(s.as_bytes());
        }
    }

    pub fn boolean(&mut self, v: bool) {
        if self.resp3 {
            self.buf.put_slice(if v { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(v as i64);
        }
    }

    /// A verbatim string (`=len\r\ntxt:...`) in RESP3, a bulk string in RESP2.
    pub fn verbatim(&mut self, format: &str, data: &[u8]) {
        if self.resp3 {
            self.num_line(b'=', (data.len() + 4) as i64);
            self.buf.put_slice(format.as_bytes());
            self.buf.put_u8(b':');
            self.buf.put_slice(data);
            self.buf.put_slice(b"\r\n");
        } else {
            self.bulk(data);
        }
    }

    /// A big number (`(`) in RESP3, a bulk string in RESP2.
    pub fn big_number(&mut self, digits: &str) {
        if self.resp3 {
            self.buf.put_u8(b'(');
            self.buf.put_slice(digits.as_bytes());
            self.buf.put_slice(b"\r\n");
        } else {
            self.bulk(digits.as_bytes());
        }
    }

    /// An attribute frame (`|`, RESP3 only; RESP2 clients get nothing).
    pub fn attribute(&mut self, len: usize) {
        if self.resp3 {
            self.num_line(b'|', len as i64);
        }
    }
}

/// Formats a double the way Redis replies with one (`%.17g`, with `inf`/`-inf`/`nan`).
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        // printf's `%g` on glibc shows the sign bit (x86-64's 0/0 has it set).
        return if d.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    format_g17(d)
}

/// C's `%.17g`: 17 significant digits, scientific notation when the exponent is < -4 or >= 17,
/// trailing zeros removed.
pub fn format_g17(d: f64) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{:.16e}", d); // d.ddddddddddddddddde±x
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..17).contains(&exp) {
        let mant = trim_fraction(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        let e = exp.unsigned_abs();
        if e < 10 {
            format!("{mant}e{sign}0{e}")
        } else {
            format!("{mant}e{sign}{e}")
        }
    } else {
        let decimals = (16 - exp).max(0) as usize;
        let fixed = format!("{:.*}", decimals, d);
        trim_fraction(&fixed).to_string()
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        let t = s.trim_end_matches('0');
        t.trim_end_matches('.')
    } else {
        s
    }
}

/// Reads back a reply this module wrote: the items of a flat array of bulk strings and nulls
/// (an MGET reply, RESP2 or RESP3), each as its whole encoding, so that replies computed on
/// several shards can be merged without re-encoding. None for anything else.
pub fn flat_array_items(buf: &[u8]) -> Option<Vec<&[u8]>> {
    let line = |at: usize| -> Option<(usize, usize)> {
        let end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
        Some((end, end + 2))
    };
    if buf.first() != Some(&b'*') {
        return None;
    }
    let (end, mut at) = line(0)?;
    let n: usize = std::str::from_utf8(&buf[1..end]).ok()?.parse().ok()?;
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        let start = at;
        let (end, next) = line(at)?;
        at = match buf[start] {
            b'_' => next,
            b'$' if &buf[start + 1..end] == b"-1" => next,
            b'$' => {
                let len: usize = std::str::from_utf8(&buf[start + 1..end])
                    .ok()?
                    .parse()
                    .ok()?;
                let data_end = next.checked_add(len)?;
                if buf.get(data_end..data_end + 2)? != b"\r\n" {
                    return None;
                }
                data_end + 2
            }
            _ => return None,
        };
        items.push(&buf[start..at]);
    }
    (at == buf.len()).then_some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g17_matches_printf() {
        assert_eq!(format_g17(1.5), "1.5");
        assert_eq!(format_g17(0.1), "0.10000000000000001");
        assert_eq!(format_g17(100.0), "100");
        assert_eq!(format_g17(1e17), "1e+17");
        assert_eq!(format_g17(1.25e-5), "1.2500000000000001e-05");
        assert_eq!(format_g17(-3.0), "-3");
        assert_eq!(format_g17(123456789012345680.0), "1.2345678901234568e+17");
    }

    #[test]
    fn resp2_and_resp3_types() {
        let mut b = BytesMut::new();
        let mut r = Reply::new(&mut b, false);
        r.null();
        r.map(1);
        r.double(1.5);
        assert_eq!(&b[..], b"$-1\r\n*2\r\n$3\r\n1.5\r\n");
        let mut b = BytesMut::new();
        let mut r = Reply::new(&mut b, true);
        r.null();
        r.map(1);
        r.double(1.5);
        assert_eq!(&b[..], b"_\r\n%1\r\n,1.5\r\n");
    }

    #[test]
    fn flat_array_items_reads_back_bulks_and_nulls() {
        let mut buf = BytesMut::new();
        let mut r = Reply::new(&mut buf, false);
        r.array(3);
        r.bulk(b"a\r\nb");
        r.null();
        r.bulk(b"");
        let items = flat_array_items(&buf).unwrap();
        assert_eq!(items, [&b"$4\r\na\r\nb\r\n"[..], b"$-1\r\n", b"$0\r\n\r\n"]);
        assert_eq!(flat_array_items(b"*1\r\n_\r\n").unwrap(), [&b"_\r\n"[..]]);
        assert_eq!(flat_array_items(b"*0\r\n").unwrap().len(), 0);
        for bad in [
            &b"-ERR x\r\n"[..],
            b"*2\r\n$1\r\na\r\n",
            b"*1\r\n:1\r\n",
            b"*1\r\n$5\r\nab\r\n",
            b"*1\r\n$1\r\na\r\nx",
        ] {
            assert_eq!(flat_array_items(bad), None, "{bad:?}");
        }
    }
}

//! Redis's packed byte formats as they appear inside RDB values: listpack, ziplist, intset and
//! zipmap.
//!
//! Encoders (listpack, intset) produce exactly the bytes Redis 7.0 produces for the same
//! elements: the smallest entry encoding, integers for canonical decimal strings, the same
//! back-lengths and header totals. Decoders validate everything Redis's deep sanitisation
//! validates (header totals and counts, every entry's encoding and length, back-lengths and
//! previous-entry lengths, terminators, intset order) and return an error for anything else;
//! they never panic and never allocate more than the blob they are given justifies.
//!
//! Nothing here knows about keys, values or the config.

use crate::commands::args::parse_i64;

/// One element of a listpack or ziplist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Elem<'_> {
    /// The element as bytes (integers in decimal).
    pub fn to_vec(self) -> Vec<u8> {
        match self {
            Elem::Int(n) => itoa::Buffer::new().format(n).as_bytes().to_vec(),
            Elem::Str(s) => s.to_vec(),
        }
    }

    /// Length of the element's text (what Redis compares with the `*-max-*-value` limits).
    pub fn text_len(self) -> usize {
        match self {
            Elem::Int(n) => itoa::Buffer::new().format(n).len(),
            Elem::Str(s) => s.len(),
        }
    }
}

/// A packed blob that is not well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadBlob(pub &'static str);

type Result<T> = std::result::Result<T, BadBlob>;

fn bad<T>(why: &'static str) -> Result<T> {
    Err(BadBlob(why))
}

// ---------------------------------------------------------------------------------------------
// listpack
// ---------------------------------------------------------------------------------------------

const LP_HDR: usize = 6;
const LP_EOF: u8 = 0xFF;
/// The count field saturates here; the real count is then found by walking.
const LP_COUNT_UNKNOWN: usize = 65535;

/// Builds a listpack entry by entry.
#[derive(Debug, Default)]
pub struct ListpackWriter {
    buf: Vec<u8>,
    count: usize,
}

/// Bytes of a back-length for an entry of `l` bytes (encoding + data).
fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

impl ListpackWriter {
    pub fn new() -> ListpackWriter {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0; LP_HDR]);
        ListpackWriter { buf, count: 0 }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The size of the finished listpack so far (header, entries and terminator).
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    /// Appends a string; canonical decimal integers are stored as integers, like `lpAppend`.
    pub fn push_str(&mut self, s: &[u8]) {
        if let Some(n) = parse_i64(s) {
            return self.push_int(n);
        }
        let start = self.buf.len();
        let l = s.len();
        if l < 64 {
            self.buf.push(0x80 | l as u8);
        } else if l < 4096 {
            self.buf.push(0xE0 | (l >> 8) as u8);
            self.buf.push(l as u8);
        } else {
            self.buf.push(0xF0);
            self.buf.extend_from_slice(&(l as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        self.finish_entry(start);
    }

    /// Appends an integer in its smallest encoding.
    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&v) {
            self.buf.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = if v < 0 { (1 << 13) + v } else { v } as u16;
            self.buf.push(0xC0 | (u >> 8) as u8);
            self.buf.push(u as u8);
        } else if (-32768..=32767).contains(&v) {
            self.buf.push(0xF1);
            self.buf.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-8388608..=8388607).contains(&v) {
            self.buf.push(0xF2);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if i32::try_from(v).is_ok() {
            self.buf.push(0xF3);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.buf.push(0xF4);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self.finish_entry(start);
    }

    pub fn push(&mut self, e: Elem) {
        match e {
            Elem::Int(n) => self.push_int(n),
            Elem::Str(s) => self.push_str(s),
        }
    }

    fn finish_entry(&mut self, start: usize) {
        let l = self.buf.len() - start;
        let n = backlen_size(l);
        // Most significant group first; every byte but the first has the high bit set.
        for k in (0..n).rev() {
            let bits = ((l >> (7 * k)) & 127) as u8;
            self.buf.push(if k + 1 == n { bits } else { bits | 128 });
        }
        self.count += 1;
    }

    /// The finished listpack.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(LP_EOF);
        let total = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        let count = self.count.min(LP_COUNT_UNKNOWN) as u16;
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

/// Bytes one integer takes in a listpack (encoding, data and back-length), as `push_int`
/// writes it: what Redis's stream nodes count against `stream-node-max-bytes`.
pub fn lp_int_size(v: i64) -> usize {
    let len = if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if (-32768..=32767).contains(&v) {
        3
    } else if (-8388608..=8388607).contains(&v) {
        4
    } else if i32::try_from(v).is_ok() {
        5
    } else {
        9
    };
    len + backlen_size(len)
}

/// Bytes one string takes in a listpack, as `push_str` writes it (integers as integers).
pub fn lp_str_size(s: &[u8]) -> usize {
    if let Some(n) = parse_i64(s) {
        return lp_int_size(n);
    }
    let l = s.len();
    let hdr = if l < 64 {
        1
    } else if l < 4096 {
        2
    } else {
        5
    };
    hdr + l + backlen_size(hdr + l)
}

/// Bytes of an empty listpack (header and terminator).
pub const LP_EMPTY_BYTES: usize = LP_HDR + 1;

/// Decodes the listpack entry at `pos`: (element, position after its back-length).
fn lp_entry(b: &[u8], pos: usize) -> Result<(Elem<'_>, usize)> {
    let t = *b.get(pos).ok_or(BadBlob("listpack entry past the end"))?;
    let body = |n: usize| -> Result<&[u8]> {
        b.get(pos + 1..pos + 1 + n)
            .ok_or(BadBlob("listpack entry past the end"))
    };
    let sbody = |hdr: usize, n: usize| -> Result<&[u8]> {
        let s = pos
            .checked_add(hdr)
            .and_then(|s| s.checked_add(n).map(|e| (s, e)));
        match s {
            Some((s, e)) if e <= b.len() => Ok(&b[s..e]),
            _ => bad("listpack string past the end"),
        }
    };
    let (elem, len) = if t & 0x80 == 0 {
        (Elem::Int((t & 0x7F) as i64), 1)
    } else if t & 0xC0 == 0x80 {
        let n = (t & 0x3F) as usize;
        (Elem::Str(sbody(1, n)?), 1 + n)
    } else if t & 0xE0 == 0xC0 {
        let lo = body(1)?[0] as i64;
        let u = (((t & 0x1F) as i64) << 8) | lo;
        (Elem::Int(if u >= 1 << 12 { u - (1 << 13) } else { u }), 2)
    } else if t & 0xF0 == 0xE0 {
        let n = (((t & 0x0F) as usize) << 8) | body(1)?[0] as usize;
        (Elem::Str(sbody(2, n)?), 2 + n)
    } else {
        match t {
            0xF0 => {
                let h = body(4)?;
                let n = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
                (Elem::Str(sbody(5, n)?), 5 + n)
            }
            0xF1 => {
                let h = body(2)?;
                (Elem::Int(i16::from_le_bytes([h[0], h[1]]) as i64), 3)
            }
            0xF2 => {
                let h = body(3)?;
                let v = i32::from_le_bytes([0, h[0], h[1], h[2]]) >> 8;
                (Elem::Int(v as i64), 4)
            }
            0xF3 => {
                let h = body(4)?;
                (
                    Elem::Int(i32::from_le_bytes([h[0], h[1], h[2], h[3]]) as i64),
                    5,
                )
            }
            0xF4 => {
                let h = body(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(h);
                (Elem::Int(i64::from_le_bytes(a)), 9)
            }
            _ => return bad("bad listpack entry encoding"),
        }
    };
    // The back-length must encode `len`, in its canonical size.
    let n = backlen_size(len);
    let bl = b
        .get(pos + len..pos + len + n)
        .ok_or(BadBlob("listpack back-length past the end"))?;
    let mut v = 0usize;
    for (k, &byte) in bl.iter().enumerate() {
        let continued = byte & 128 != 0;
        if continued != (k > 0) {
            return bad("bad listpack back-length");
        }
        v = (v << 7) | (byte & 127) as usize;
    }
    if v != len {
        return bad("listpack back-length does not match the entry");
    }
    Ok((elem, pos + len + n))
}

/// Every element of a listpack, validated.
pub fn listpack_elems(b: &[u8]) -> Result<Vec<Elem<'_>>> {
    if b.len() < LP_HDR + 1 {
        return bad("listpack shorter than its header");
    }
    let total = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if total != b.len() {
        return bad("listpack total bytes do not match");
    }
    let count = u16::from_le_bytes([b[4], b[5]]) as usize;
    // Each entry takes at least two bytes.
    let mut out = Vec::with_capacity(count.min(b.len() / 2));
    let mut pos = LP_HDR;
    loop {
        match b.get(pos) {
            None => return bad("listpack without terminator"),
            Some(&LP_EOF) => break,
            Some(_) => {
                let (e, next) = lp_entry(b, pos)?;
                out.push(e);
                pos = next;
            }
        }
    }
    if pos + 1 != b.len() {
        return bad("listpack terminator before the end");
    }
    if count != LP_COUNT_UNKNOWN && count != out.len() {
        return bad("listpack count does not match");
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// ziplist (read only: Redis 7.0 still loads it from old RDB files)
// ---------------------------------------------------------------------------------------------

const ZL_HDR: usize = 10;
const ZL_END: u8 = 0xFF;
const ZL_BIG_PREVLEN: u8 = 254;

/// Every element of a ziplist, validated (header totals, tail offset, previous-entry lengths).
pub fn ziplist_elems(b: &[u8]) -> Result<Vec<Elem<'_>>> {
    if b.len() < ZL_HDR + 1 {
        return bad("ziplist shorter than its header");
    }
    let total = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let tail = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    let count = u16::from_le_bytes([b[8], b[9]]) as usize;
    if total != b.len() {
        return bad("ziplist total bytes do not match");
    }
    let mut out = Vec::with_capacity(count.min(b.len() / 2));
    let mut pos = ZL_HDR;
    let mut prev_len = 0usize;
    let mut last_start = ZL_HDR;
    loop {
        let Some(&first) = b.get(pos) else {
            return bad("ziplist without terminator");
        };
        if first == ZL_END {
            break;
        }
        let start = pos;
        let (prevlen, p) = if first < ZL_BIG_PREVLEN {
            (first as usize, pos + 1)
        } else if first == ZL_BIG_PREVLEN {
            let h = b
                .get(pos + 1..pos + 5)
                .ok_or(BadBlob("ziplist entry past the end"))?;
            (
                u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize,
                pos + 5,
            )
        } else {
            return bad("bad ziplist prevlen");
        };
        if prevlen != prev_len {
            return bad("ziplist prevlen does not match");
        }
        let enc = *b.get(p).ok_or(BadBlob("ziplist entry past the end"))?;
        let get = |from: usize, n: usize| -> Result<&[u8]> {
            from.checked_add(n)
                .filter(|&e| e <= b.len())
                .map(|e| &b[from..e])
                .ok_or(BadBlob("ziplist entry past the end"))
        };
        let (elem, end) = match enc >> 6 {
            0 => {
                let n = (enc & 0x3F) as usize;
                (Elem::Str(get(p + 1, n)?), p + 1 + n)
            }
            1 => {
                let lo = get(p + 1, 1)?[0] as usize;
                let n = (((enc & 0x3F) as usize) << 8) | lo;
                (Elem::Str(get(p + 2, n)?), p + 2 + n)
            }
            2 => {
                if enc != 0x80 {
                    return bad("bad ziplist string encoding");
                }
                let h = get(p + 1, 4)?;
                let n = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
                (Elem::Str(get(p + 5, n)?), p + 5 + n)
            }
            _ => match enc {
                0xC0 => {
                    let h = get(p + 1, 2)?;
                    (Elem::Int(i16::from_le_bytes([h[0], h[1]]) as i64), p + 3)
                }
                0xD0 => {
                    let h = get(p + 1, 4)?;
                    (
                        Elem::Int(i32::from_le_bytes([h[0], h[1], h[2], h[3]]) as i64),
                        p + 5,
                    )
                }
                0xE0 => {
                    let h = get(p + 1, 8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(h);
                    (Elem::Int(i64::from_le_bytes(a)), p + 9)
                }
                0xF0 => {
                    let h = get(p + 1, 3)?;
                    (
                        Elem::Int((i32::from_le_bytes([0, h[0], h[1], h[2]]) >> 8) as i64),
                        p + 4,
                    )
                }
                0xFE => (Elem::Int(get(p + 1, 1)?[0] as i8 as i64), p + 2),
                0xF1..=0xFD => (Elem::Int((enc & 0x0F) as i64 - 1), p + 1),
                _ => return bad("bad ziplist entry encoding"),
            },
        };
        out.push(elem);
        prev_len = end - start;
        last_start = start;
        pos = end;
    }
    if pos + 1 != b.len() {
        return bad("ziplist terminator before the end");
    }
    let expected_tail = if out.is_empty() { ZL_HDR } else { last_start };
    if tail != expected_tail {
        return bad("ziplist tail offset does not match");
    }
    if count != 65535 && count != out.len() {
        return bad("ziplist count does not match");
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// intset
// ---------------------------------------------------------------------------------------------

/// An intset blob: encoding width (2, 4 or 8, little endian u32), count, sorted values.
pub fn intset_encode(width: usize, values: impl ExactSizeIterator<Item = i64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + width * values.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

/// The width and values of an intset blob, which must be strictly ascending.
pub fn intset_decode(b: &[u8]) -> Result<(usize, Vec<i64>)> {
    if b.len() < 8 {
        return bad("intset shorter than its header");
    }
    let width = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return bad("bad intset encoding");
    }
    let count = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    if count.checked_mul(width).and_then(|n| n.checked_add(8)) != Some(b.len()) {
        return bad("intset size does not match its count");
    }
    let mut out = Vec::with_capacity(count);
    for c in b[8..].chunks_exact(width) {
        let v = match width {
            2 => i16::from_le_bytes([c[0], c[1]]) as i64,
            4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
            _ => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        };
        if out.last().is_some_and(|&p| p >= v) {
            return bad("intset not sorted or has duplicates");
        }
        out.push(v);
    }
    Ok((width, out))
}

// ---------------------------------------------------------------------------------------------
// zipmap (read only: hashes in RDB files older than Redis 2.6)
// ---------------------------------------------------------------------------------------------

const ZM_BIGLEN: u8 = 254;
const ZM_END: u8 = 255;

/// The (field, value) pairs of a zipmap, validated.
pub fn zipmap_pairs(b: &[u8]) -> Result<Vec<(&[u8], &[u8])>> {
    if b.len() < 2 {
        return bad("zipmap too short");
    }
    let declared = b[0];
    let mut pos = 1;
    let read_len = |pos: &mut usize| -> Result<Option<usize>> {
        let first = *b.get(*pos).ok_or(BadBlob("zipmap past the end"))?;
        if first == ZM_END {
            return Ok(None);
        }
        if first < ZM_BIGLEN {
            *pos += 1;
            Ok(Some(first as usize))
        } else if first == ZM_BIGLEN {
            let h = b
                .get(*pos + 1..*pos + 5)
                .ok_or(BadBlob("zipmap past the end"))?;
            *pos += 5;
            Ok(Some(u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize))
        } else {
            bad("bad zipmap length")
        }
    };
    let take = |pos: &mut usize, n: usize| -> Result<&[u8]> {
        let s = *pos;
        let e = s
            .checked_add(n)
            .filter(|&e| e <= b.len())
            .ok_or(BadBlob("zipmap past the end"))?;
        *pos = e;
        Ok(&b[s..e])
    };
    let mut out = Vec::new();
    while let Some(klen) = read_len(&mut pos)? {
        let field = take(&mut pos, klen)?;
        let Some(vlen) = read_len(&mut pos)? else {
            return bad("zipmap field without value");
        };
        let free = take(&mut pos, 1)?[0] as usize;
        let value = take(&mut pos, vlen)?;
        take(&mut pos, free)?;
        out.push((field, value));
    }
    if pos + 1 != b.len() {
        return bad("zipmap terminator before the end");
    }
    if declared < ZM_BIGLEN && declared as usize != out.len() {
        return bad("zipmap count does not match");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lp(items: &[&[u8]]) -> Vec<u8> {
        let mut w = ListpackWriter::new();
        for i in items {
            w.push_str(i);
        }
        w.finish()
    }

    #[test]
    fn listpack_bytes_match_redis() {
        // redis-cli --no-raw DUMP of HSET h a 1 b 2.5 c xyz (HASH_LISTPACK payload).
        let want = b"\x1c\x00\x00\x00\x06\x00\x81a\x02\x01\x01\x81b\x02\x832.5\x04\x81c\x02\x83xyz\x04\xff";
        let got = lp(&[b"a", b"1", b"b", b"2.5", b"c", b"xyz"]);
        assert_eq!(got, want.to_vec());
        // RPUSH l 1 2 hello 300 -5 100000 abc (the QUICKLIST_2 node).
        let want = b"\"\x00\x00\x00\x07\x00\x01\x01\x02\x01\x85hello\x06\xc1,\x02\xdf\xfb\x02\xf2\xa0\x86\x01\x04\x83abc\x04\xff";
        let got = lp(&[b"1", b"2", b"hello", b"300", b"-5", b"100000", b"abc"]);
        assert_eq!(got, want.to_vec());
    }

    #[test]
    fn listpack_every_encoding_round_trips() {
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 300];
        let ints: Vec<i64> = vec![
            0,
            127,
            128,
            -1,
            -4096,
            4095,
            4096,
            -4097,
            32767,
            -32768,
            32768,
            8388607,
            -8388608,
            8388608,
            i32::MAX as i64,
            i32::MIN as i64,
            i32::MAX as i64 + 1,
            i64::MAX,
            i64::MIN,
        ];
        let mut w = ListpackWriter::new();
        for &i in &ints {
            w.push_int(i);
        }
        w.push_str(&long);
        w.push_str(&mid);
        w.push_str(b"");
        w.push_str(b"007");
        let blob = w.finish();
        let got = listpack_elems(&blob).unwrap();
        let mut want: Vec<Elem> = ints.iter().map(|&i| Elem::Int(i)).collect();
        want.extend([
            Elem::Str(&long),
            Elem::Str(&mid),
            Elem::Str(b""),
            Elem::Str(b"007"),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn listpack_validation() {
        let good = lp(&[b"a", b"b"]);
        assert!(listpack_elems(&good).is_ok());
        let mut bad_count = good.clone();
        bad_count[4] = 3;
        assert!(listpack_elems(&bad_count).is_err());
        let mut bad_back = good.clone();
        bad_back[8] = 3;
        assert!(listpack_elems(&bad_back).is_err());
        assert!(listpack_elems(&good[..good.len() - 1]).is_err());
        let mut unknown = good.clone();
        unknown[4] = 0xFF;
        unknown[5] = 0xFF;
        assert_eq!(listpack_elems(&unknown).unwrap().len(), 2);
    }

    #[test]
    fn intset_round_trip_and_validation() {
        let b = intset_encode(4, [1i64, 2, 3, 70000].into_iter());
        // SADD si 1 2 3 70000 on Redis 7.0.
        assert_eq!(b, b"\x04\x00\x00\x00\x04\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00p\x11\x01\x00".to_vec());
        assert_eq!(intset_decode(&b).unwrap(), (4, vec![1, 2, 3, 70000]));
        let dup = intset_encode(2, [1i64, 1].into_iter());
        assert!(intset_decode(&dup).is_err());
        assert!(intset_decode(&b[..b.len() - 1]).is_err());
    }

    #[test]
    fn ziplist_decodes_every_encoding() {
        // Built by hand: "ab", 12 (immediate), -2 (int8), 1000 (int16), 100000 (int24),
        // 2^31 (int64), a 70-byte string (14-bit length).
        let s70 = vec![b'z'; 70];
        let entries: Vec<Vec<u8>> = vec![
            [&[0x02u8][..], b"ab"].concat(),
            vec![0xFD],
            vec![0xFE, 0xFE],
            [&[0xC0u8][..], &1000i16.to_le_bytes()].concat(),
            [&[0xF0u8][..], &100000i32.to_le_bytes()[..3]].concat(),
            [&[0xE0u8][..], &(1i64 << 31).to_le_bytes()].concat(),
            [&[0x40u8, 70][..], &s70].concat(),
        ];
        let mut body = Vec::new();
        let mut prev = 0usize;
        let mut last = 0;
        for e in &entries {
            last = 10 + body.len();
            let mut ent = vec![prev as u8];
            ent.extend_from_slice(e);
            prev = ent.len();
            body.extend_from_slice(&ent);
        }
        let total = 10 + body.len() + 1;
        let mut zl = Vec::new();
        zl.extend_from_slice(&(total as u32).to_le_bytes());
        zl.extend_from_slice(&(last as u32).to_le_bytes());
        zl.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        zl.extend_from_slice(&body);
        zl.push(0xFF);
        let got = ziplist_elems(&zl).unwrap();
        assert_eq!(
            got,
            vec![
                Elem::Str(b"ab"),
                Elem::Int(12),
                Elem::Int(-2),
                Elem::Int(1000),
                Elem::Int(100000),
                Elem::Int(1 << 31),
                Elem::Str(&s70)
            ]
        );
        let mut broken = zl.clone();
        broken[11 + 3] = 9; // prevlen of the second entry
        assert!(ziplist_elems(&broken).is_err());
    }

    #[test]
    fn zipmap_decodes() {
        // {"foo": "bar", "k": "v"} with one free byte after "bar".
        let zm = b"\x02\x03foo\x03\x01barX\x01k\x01\x00v\xff";
        assert_eq!(
            zipmap_pairs(zm).unwrap(),
            vec![(&b"foo"[..], &b"bar"[..]), (&b"k"[..], &b"v"[..])]
        );
        assert!(zipmap_pairs(&zm[..zm.len() - 1]).is_err());
    }

    proptest! {
        #[test]
        fn listpack_round_trips(items in proptest::collection::vec(
            prop_oneof![
                any::<i64>().prop_map(|i| i.to_string().into_bytes()),
                (-5000i64..5000).prop_map(|i| i.to_string().into_bytes()),
                proptest::collection::vec(any::<u8>(), 0..100),
                proptest::collection::vec(any::<u8>(), 4090..4100),
            ], 0..20)) {
            let refs: Vec<&[u8]> = items.iter().map(|v| &v[..]).collect();
            let blob = lp(&refs);
            let got: Vec<Vec<u8>> = listpack_elems(&blob).unwrap().into_iter().map(Elem::to_vec).collect();
            prop_assert_eq!(got, items);
        }

        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = listpack_elems(&data);
            let _ = ziplist_elems(&data);
            let _ = intset_decode(&data);
            let _ = zipmap_pairs(&data);
        }

        #[test]
        fn mutated_listpacks_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut blob = lp(&[b"hello", b"12345", b"-7", &[b'q'; 70]]);
            let i = pos.index(blob.len());
            blob[i] = byte;
            let _ = listpack_elems(&blob);
        }
    }
}

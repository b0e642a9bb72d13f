//! The RDB primitives: length encoding, string encoding (integers, LZF, plain) and binary
//! doubles, written into byte vectors and read from a [`Source`].
//!
//! A [`Source`] is either a byte slice (DUMP payloads, whose remaining length bounds every
//! allocation) or a stream (files, read through a read-ahead buffer: strings that fit it are
//! parsed in place, longer ones grow only as bytes actually arrive, and the CRC64 is computed on
//! the way). Reading never panics and never trusts a length from the input to size an
//! allocation beyond what the input can still hold.

use std::borrow::Cow;
use std::io::Read;

use super::lzf;
use super::RdbError;
use crate::commands::args::parse_i64;

// ----- length encoding -----

const LEN_6BIT: u8 = 0;
const LEN_14BIT: u8 = 1;
const LEN_32BIT: u8 = 0x80;
const LEN_64BIT: u8 = 0x81;
const LEN_ENCVAL: u8 = 3;

/// Special string encodings (the low 6 bits after the `11` length prefix).
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// Appends a length in the smallest of Redis's length encodings.
pub fn write_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push((LEN_6BIT << 6) | len as u8);
    } else if len < 1 << 14 {
        out.push((LEN_14BIT << 6) | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u32::MAX as u64 {
        out.push(LEN_32BIT);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(LEN_64BIT);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// The integer encoding of `v` when it fits 32 bits (`rdbEncodeInteger`).
fn encode_int(out: &mut Vec<u8>, v: i64) -> bool {
    let tag = LEN_ENCVAL << 6;
    if let Ok(b) = i8::try_from(v) {
        out.push(tag | ENC_INT8);
        out.push(b as u8);
    } else if let Ok(h) = i16::try_from(v) {
        out.push(tag | ENC_INT16);
        out.extend_from_slice(&h.to_le_bytes());
    } else if let Ok(w) = i32::try_from(v) {
        out.push(tag | ENC_INT32);
        out.extend_from_slice(&w.to_le_bytes());
    } else {
        return false;
    }
    true
}

/// Appends a string the way `rdbSaveRawString` does: short canonical integers that fit 32 bits
/// as integers, strings over 20 bytes LZF-compressed when `compress` and it saves at least 4
/// bytes, the rest as length + bytes.
pub fn write_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = parse_i64(s) {
            if encode_int(out, v) {
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        if let Some(c) = lzf::compress(s, s.len() - 4) {
            out.push((LEN_ENCVAL << 6) | ENC_LZF);
            write_len(out, c.len() as u64);
            write_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    write_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Appends an integer string (`rdbSaveLongLongAsStringObject`): the integer encoding when it
/// fits 32 bits, its decimal text otherwise.
pub fn write_int_string(out: &mut Vec<u8>, v: i64) {
    if !encode_int(out, v) {
        let mut b = itoa::Buffer::new();
        let t = b.format(v).as_bytes();
        write_len(out, t.len() as u64);
        out.extend_from_slice(t);
    }
}

/// Appends a double as 8 little-endian bytes (`rdbSaveBinaryDoubleValue`).
pub fn write_binary_double(out: &mut Vec<u8>, d: f64) {
    out.extend_from_slice(&d.to_le_bytes());
}

// ----- reading -----

/// Where RDB bytes come from.
pub trait Source {
    /// Fills `buf` completely, or fails with `Truncated`.
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), RdbError>;
    /// Reads `n` bytes; the buffer grows with the input, never ahead of it.
    fn read_vec(&mut self, n: usize) -> Result<Vec<u8>, RdbError>;
    /// Reads `n` bytes and hands them to `f`: borrowed in place when the source holds them
    /// (no copy, no allocation), else gathered by `read_vec` first.
    fn read_with<T>(&mut self, n: usize, f: impl FnOnce(&[u8]) -> T) -> Result<T, RdbError>;
    /// How many of `count` announced items (each at least one byte) to allocate room for.
    fn prealloc(&self, count: u64) -> usize;
    /// Bytes consumed so far (for error messages).
    fn offset(&self) -> u64;

    fn read_u8(&mut self) -> Result<u8, RdbError> {
        let mut b = [0u8; 1];
        self.read_exact(&mut b)?;
        Ok(b[0])
    }
}

/// A byte slice being read.
pub struct SliceSource<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> SliceSource<'a> {
    pub fn new(buf: &'a [u8]) -> SliceSource<'a> {
        SliceSource { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes, consumed.
    fn take(&mut self, n: usize) -> Result<&'a [u8], RdbError> {
        if n > self.remaining() {
            return Err(RdbError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
}

impl Source for SliceSource<'_> {
    fn read_exact(&mut self, out: &mut [u8]) -> Result<(), RdbError> {
        out.copy_from_slice(self.take(out.len())?);
        Ok(())
    }

    fn read_vec(&mut self, n: usize) -> Result<Vec<u8>, RdbError> {
        Ok(self.take(n)?.to_vec())
    }

    fn read_with<T>(&mut self, n: usize, f: impl FnOnce(&[u8]) -> T) -> Result<T, RdbError> {
        Ok(f(self.take(n)?))
    }

    fn prealloc(&self, count: u64) -> usize {
        count.min(self.remaining() as u64) as usize
    }

    fn offset(&self) -> u64 {
        self.pos as u64
    }
}

/// Most items preallocated for a count read from a stream (whose length is unknown).
const STREAM_PREALLOC: u64 = 4096;
/// Most bytes preallocated for a string read from a stream.
const STREAM_CHUNK: usize = 1 << 16;
/// A stream source's read-ahead buffer. Every string up to this size is read in place; the
/// inner stream (a zstd decoder, a file) is asked for this much at a time, not for the one to
/// eight bytes an RDB item is parsed in.
const STREAM_BUF: usize = 128 << 10;

/// A stream being read through a read-ahead buffer, with the running CRC64 of everything
/// consumed. The checksum is folded in whole buffer spans (when the buffer is refilled or the
/// checksum is asked for), not per read.
pub struct StreamSource<R: Read> {
    inner: R,
    buf: Box<[u8]>,
    /// `buf[pos..end]` is read from `inner` but not consumed yet.
    pos: usize,
    end: usize,
    /// `buf[crc_from..pos]` is consumed but not yet in `crc`.
    crc_from: usize,
    crc: u64,
    /// The stream offset of `buf[0]`.
    base: u64,
}

impl<R: Read> StreamSource<R> {
    pub fn new(inner: R) -> StreamSource<R> {
        StreamSource {
            inner,
            buf: vec![0u8; STREAM_BUF].into_boxed_slice(),
            pos: 0,
            end: 0,
            crc_from: 0,
            crc: 0,
            base: 0,
        }
    }

    /// CRC64 (Jones) of the bytes consumed so far.
    pub fn crc(&mut self) -> u64 {
        self.fold_crc();
        self.crc
    }

    fn fold_crc(&mut self) {
        self.crc = super::crc64(self.crc, &self.buf[self.crc_from..self.pos]);
        self.crc_from = self.pos;
    }

    /// Makes at least `n` (at most the buffer's size) unconsumed bytes available: moves what
    /// is left to the front and reads as much as the inner stream gives until there are.
    fn fill(&mut self, n: usize) -> Result<(), RdbError> {
        debug_assert!(n <= self.buf.len());
        if self.end - self.pos >= n {
            return Ok(());
        }
        self.fold_crc();
        self.buf.copy_within(self.pos..self.end, 0);
        self.base += self.pos as u64;
        self.end -= self.pos;
        self.pos = 0;
        self.crc_from = 0;
        while self.end < n {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(RdbError::Truncated),
                Ok(k) => self.end += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(RdbError::Truncated)
                }
                Err(e) => return Err(RdbError::Io(e)),
            }
        }
        Ok(())
    }

    /// Reads without adding to the CRC (the trailer itself, at most the buffer's size).
    pub fn read_exact_raw(&mut self, out: &mut [u8]) -> Result<(), RdbError> {
        self.fold_crc();
        self.fill(out.len())?;
        out.copy_from_slice(&self.buf[self.pos..self.pos + out.len()]);
        self.pos += out.len();
        self.crc_from = self.pos;
        Ok(())
    }
}

impl<R: Read> Source for StreamSource<R> {
    #[inline]
    fn read_exact(&mut self, out: &mut [u8]) -> Result<(), RdbError> {
        let mut done = 0;
        while done < out.len() {
            if self.pos == self.end {
                self.fill(1)?;
            }
            let k = (out.len() - done).min(self.end - self.pos);
            out[done..done + k].copy_from_slice(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
            done += k;
        }
        Ok(())
    }

    #[inline]
    fn read_u8(&mut self) -> Result<u8, RdbError> {
        if self.pos == self.end {
            self.fill(1)?;
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(b)
    }

    fn read_vec(&mut self, n: usize) -> Result<Vec<u8>, RdbError> {
        let mut v = Vec::with_capacity(n.min(STREAM_CHUNK));
        while v.len() < n {
            if self.pos == self.end {
                self.fill(1)?;
            }
            let k = (n - v.len()).min(self.end - self.pos);
            v.extend_from_slice(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
        }
        Ok(v)
    }

    #[inline]
    fn read_with<T>(&mut self, n: usize, f: impl FnOnce(&[u8]) -> T) -> Result<T, RdbError> {
        if n > self.buf.len() {
            let v = self.read_vec(n)?;
            return Ok(f(&v));
        }
        self.fill(n)?;
        let r = f(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(r)
    }

    fn prealloc(&self, count: u64) -> usize {
        count.min(STREAM_PREALLOC) as usize
    }

    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }
}

/// A length, or the tag of a specially encoded string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Len {
    Plain(u64),
    Encoded(u8),
}

pub fn read_len_or_enc(src: &mut impl Source) -> Result<Len, RdbError> {
    let first = src.read_u8()?;
    match first >> 6 {
        LEN_6BIT => Ok(Len::Plain((first & 0x3F) as u64)),
        LEN_14BIT => {
            let second = src.read_u8()?;
            Ok(Len::Plain((((first & 0x3F) as u64) << 8) | second as u64))
        }
        LEN_ENCVAL => Ok(Len::Encoded(first & 0x3F)),
        _ => match first {
            LEN_32BIT => {
                let mut b = [0u8; 4];
                src.read_exact(&mut b)?;
                Ok(Len::Plain(u32::from_be_bytes(b) as u64))
            }
            LEN_64BIT => {
                let mut b = [0u8; 8];
                src.read_exact(&mut b)?;
                Ok(Len::Plain(u64::from_be_bytes(b)))
            }
            _ => Err(RdbError::corrupt("unknown length encoding")),
        },
    }
}

/// A plain length (a specially encoded string here is an error).
pub fn read_len(src: &mut impl Source) -> Result<u64, RdbError> {
    match read_len_or_enc(src)? {
        Len::Plain(n) => Ok(n),
        Len::Encoded(_) => Err(RdbError::corrupt("unexpected string encoding for a length")),
    }
}

/// A length that must fit memory.
pub fn read_usize(src: &mut impl Source) -> Result<usize, RdbError> {
    usize::try_from(read_len(src)?).map_err(|_| RdbError::corrupt("length too large"))
}

/// Largest expansion of an LZF block: a three-byte back reference yields 264 bytes.
const LZF_MAX_RATIO: usize = 88;

/// Reads a string in any of its encodings and hands its bytes to `f`: borrowed in place when it
/// is stored plain (no copy, no allocation for anything up to the stream's buffer size), owned
/// when it had to be decoded (LZF: the decoded buffer is exactly the string's size, for the
/// caller to keep).
pub fn read_string_with<T>(
    src: &mut impl Source,
    f: impl FnOnce(Cow<'_, [u8]>) -> T,
) -> Result<T, RdbError> {
    match read_len_or_enc(src)? {
        Len::Plain(n) => {
            let n = usize::try_from(n).map_err(|_| RdbError::corrupt("string too long"))?;
            src.read_with(n, |b| f(Cow::Borrowed(b)))
        }
        Len::Encoded(ENC_INT8) => {
            let v = src.read_u8()? as i8;
            Ok(f(Cow::Borrowed(itoa::Buffer::new().format(v).as_bytes())))
        }
        Len::Encoded(ENC_INT16) => {
            let mut b = [0u8; 2];
            src.read_exact(&mut b)?;
            let v = i16::from_le_bytes(b);
            Ok(f(Cow::Borrowed(itoa::Buffer::new().format(v).as_bytes())))
        }
        Len::Encoded(ENC_INT32) => {
            let mut b = [0u8; 4];
            src.read_exact(&mut b)?;
            let v = i32::from_le_bytes(b);
            Ok(f(Cow::Borrowed(itoa::Buffer::new().format(v).as_bytes())))
        }
        Len::Encoded(ENC_LZF) => {
            let clen = read_usize(src)?;
            let len = read_usize(src)?;
            if len == 0 || clen == 0 {
                return Err(RdbError::corrupt("empty LZF string"));
            }
            if len / LZF_MAX_RATIO > clen {
                return Err(RdbError::corrupt("LZF length impossible for its input"));
            }
            let out = src
                .read_with(clen, |c| lzf::decompress(c, len))?
                .map_err(|_| RdbError::corrupt("invalid LZF data"))?;
            Ok(f(Cow::Owned(out)))
        }
        Len::Encoded(_) => Err(RdbError::corrupt("unknown string encoding")),
    }
}

/// Reads a string in any of its encodings, returning its bytes.
pub fn read_string(src: &mut impl Source) -> Result<Vec<u8>, RdbError> {
    read_string_with(src, |s| s.into_owned())
}

/// A double as 8 little-endian bytes.
pub fn read_binary_double(src: &mut impl Source) -> Result<f64, RdbError> {
    let mut b = [0u8; 8];
    src.read_exact(&mut b)?;
    Ok(f64::from_le_bytes(b))
}

/// A double in the old text form (`rdbLoadDoubleValue`): a length byte, 253/254/255 for
/// nan/+inf/-inf, else that many bytes of text.
pub fn read_text_double(src: &mut impl Source) -> Result<f64, RdbError> {
    let n = src.read_u8()?;
    match n {
        253 => Ok(f64::NAN),
        254 => Ok(f64::INFINITY),
        255 => Ok(f64::NEG_INFINITY),
        _ => {
            let mut b = [0u8; 255];
            src.read_exact(&mut b[..n as usize])?;
            let (v, used, _) = crate::commands::args::strtod(&b[..n as usize]);
            if used != n as usize || n == 0 {
                return Err(RdbError::corrupt("invalid double"));
            }
            Ok(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(s: &[u8], compress: bool) -> Vec<u8> {
        let mut out = Vec::new();
        write_string(&mut out, s, compress);
        let mut src = SliceSource::new(&out);
        let back = read_string(&mut src).unwrap();
        assert_eq!(src.remaining(), 0);
        back
    }

    #[test]
    fn lengths_round_trip_in_each_size() {
        for n in [
            0u64,
            63,
            64,
            16383,
            16384,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            write_len(&mut out, n);
            let expected = match n {
                0..=63 => 1,
                64..=16383 => 2,
                16384..=0xFFFF_FFFF => 5,
                _ => 9,
            };
            assert_eq!(out.len(), expected, "{n}");
            assert_eq!(read_len(&mut SliceSource::new(&out)).unwrap(), n);
        }
    }

    #[test]
    fn strings_use_redis_encodings() {
        let enc = |s: &[u8]| {
            let mut out = Vec::new();
            write_string(&mut out, s, true);
            out
        };
        // Values from redis-cli --no-raw DUMP on Redis 7.0.
        assert_eq!(enc(b"123"), b"\xc0{");
        assert_eq!(enc(b"hello"), b"\x05hello");
        assert_eq!(enc(b"-129"), b"\xc1\x7f\xff");
        assert_eq!(enc(b"100000"), b"\xc2\xa0\x86\x01\x00");
        assert_eq!(enc(b"01"), b"\x0201");
        assert_eq!(enc(b"4294967296"), b"\x0a4294967296");
        let a100 = vec![b'a'; 100];
        assert_eq!(enc(&a100), b"\xc3\t@d\x01aa\xe0W\x00\x01aa");
        for s in [&b""[..], b"0", b"-2147483648", b"2147483648", b"x", &a100] {
            assert_eq!(round(s, true), s);
            assert_eq!(round(s, false), s);
        }
        let mut out = Vec::new();
        write_int_string(&mut out, i64::MIN);
        assert_eq!(
            read_string(&mut SliceSource::new(&out)).unwrap(),
            b"-9223372036854775808"
        );
    }

    #[test]
    fn bad_strings_are_errors() {
        assert!(read_string(&mut SliceSource::new(b"\x05abc")).is_err());
        assert!(read_string(&mut SliceSource::new(b"\xc4")).is_err());
        // LZF claiming a huge expansion of 2 bytes.
        assert!(read_string(&mut SliceSource::new(b"\xc3\x02\x80\x10\x00\x00\x00\x00a")).is_err());
        assert!(read_string(&mut SliceSource::new(
            b"\x81\xff\xff\xff\xff\xff\xff\xff\xff"
        ))
        .is_err());
    }

    /// A reader that hands out at most `step` bytes per call (as pipes and decoders may).
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.step).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn stream_reads_across_refills_keep_offset_and_checksum() {
        // Strings of every size around the read-ahead buffer's, plain and LZF, then a trailer.
        let sizes = [
            0,
            1,
            63,
            64,
            5000,
            STREAM_BUF - 1,
            STREAM_BUF,
            STREAM_BUF + 1,
            3 * STREAM_BUF,
        ];
        let mut body = Vec::new();
        let mut want = Vec::new();
        for (i, &n) in sizes.iter().enumerate() {
            let s: Vec<u8> = (0..n).map(|j| (j * 7 + i) as u8 % 251).collect();
            write_string(&mut body, &s, i % 2 == 0);
            want.push(s);
        }
        write_string(&mut body, b"12345", true);
        want.push(b"12345".to_vec());
        let crc = crc64::crc64(0, &body);
        let mut file = body.clone();
        file.extend_from_slice(&crc.to_le_bytes());
        for step in [1, 7, 4096, usize::MAX] {
            let mut src = StreamSource::new(Trickle { data: &file, step });
            for (i, w) in want.iter().enumerate() {
                if i % 3 == 0 {
                    assert_eq!(&read_string(&mut src).unwrap(), w, "step {step}");
                } else {
                    let got = read_string_with(&mut src, |b| b.to_vec()).unwrap();
                    assert_eq!(&got, w, "step {step}");
                }
            }
            assert_eq!(src.offset(), body.len() as u64, "step {step}");
            assert_eq!(src.crc(), crc, "step {step}");
            let mut trailer = [0u8; 8];
            src.read_exact_raw(&mut trailer).unwrap();
            assert_eq!(u64::from_le_bytes(trailer), crc);
            assert_eq!(src.offset(), file.len() as u64);
            assert_eq!(src.crc(), crc, "the trailer is not checksummed");
            assert!(matches!(src.read_u8(), Err(RdbError::Truncated)));
        }
        // Cut anywhere: a clean `Truncated`, never a panic, never more than the input.
        for cut in [1, 100, STREAM_BUF + 3, body.len() - 1] {
            let mut src = StreamSource::new(Trickle {
                data: &body[..cut],
                step: 1000,
            });
            let err = (0..want.len())
                .map(|_| read_string(&mut src))
                .find_map(Result::err);
            assert!(
                matches!(err, Some(RdbError::Truncated)),
                "cut {cut}: {err:?}"
            );
            assert!(src.offset() <= cut as u64);
        }
    }
}

//! Stream entry IDs: `<milliseconds>-<sequence>`, two unsigned 64-bit halves ordered as one
//! 128-bit number.
//!
//! Owns the ID itself (ordering, successor and predecessor, its decimal text and the big-endian
//! 16-byte form Redis uses as a stream node's key and in RDB files). Shared by the stream entries
//! and the consumer groups (pending entries, last-delivered IDs). Nothing here knows the special
//! arguments of the commands (`*`, `$`, `>`, `-`, `+`, `(`): their parsing belongs to the stream
//! families, which build on [`StreamId::parse`].

use std::fmt;

use crate::commands::args::parse_u64_string2ull;

/// One stream entry ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    /// `0-0`, below every entry a stream can hold.
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest ID (`18446744073709551615-18446744073709551615`).
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID in order, or None past [`StreamId::MAX`].
    pub fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self.ms.checked_add(1).map(|ms| StreamId { ms, seq: 0 }),
        }
    }

    /// The previous ID in order, or None below [`StreamId::MIN`].
    pub fn prev(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self
                .ms
                .checked_sub(1)
                .map(|ms| StreamId { ms, seq: u64::MAX }),
        }
    }

    /// Parses `<ms>` or `<ms>-<seq>` as Redis's `streamParseID` does: the text up to its first
    /// NUL byte (Redis copies it into a C string), at most 127 bytes, split at the first `-`, each
    /// half read by `string2ull` (so `+5` and ` 5` are 5). A missing sequence takes
    /// `missing_seq` (Redis uses 0 for range starts and `u64::MAX` for range ends). Returns None
    /// for anything else.
    pub fn parse(s: &[u8], missing_seq: u64) -> Option<StreamId> {
        if s.len() > 127 {
            return None;
        }
        let s = match s.iter().position(|&b| b == 0) {
            Some(nul) => &s[..nul],
            None => s,
        };
        match s.iter().position(|&b| b == b'-') {
            None => Some(StreamId {
                ms: parse_u64_string2ull(s)?,
                seq: missing_seq,
            }),
            Some(dash) => Some(StreamId {
                ms: parse_u64_string2ull(&s[..dash])?,
                seq: parse_u64_string2ull(&s[dash + 1..])?,
            }),
        }
    }

    /// The 16-byte big-endian form (milliseconds first): the key of a stream node in Redis's
    /// radix tree and in RDB files, which sorts like the ID.
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.ms.to_be_bytes());
        out[8..].copy_from_slice(&self.seq.to_be_bytes());
        out
    }

    /// Reads the 16-byte big-endian form; None unless `b` is exactly 16 bytes.
    pub fn from_be_bytes(b: &[u8]) -> Option<StreamId> {
        if b.len() != 16 {
            return None;
        }
        let (ms, seq) = b.split_at(8);
        Some(StreamId {
            ms: u64::from_be_bytes(ms.try_into().ok()?),
            seq: u64::from_be_bytes(seq.try_into().ok()?),
        })
    }

    /// Appends the decimal text `<ms>-<seq>` to `out`.
    pub fn write_text(self, out: &mut Vec<u8>) {
        let mut buf = itoa::Buffer::new();
        out.extend_from_slice(buf.format(self.ms).as_bytes());
        out.push(b'-');
        out.extend_from_slice(buf.format(self.seq).as_bytes());
    }

    /// The decimal text `<ms>-<seq>`.
    pub fn to_text(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(41);
        self.write_text(&mut out);
        out
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_successor_and_predecessor() {
        assert!(StreamId::new(1, u64::MAX) < StreamId::new(2, 0));
        assert_eq!(StreamId::new(1, u64::MAX).next(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::new(2, 0).prev(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(StreamId::MIN.prev(), None);
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(StreamId::parse(b"5", 0), Some(StreamId::new(5, 0)));
        assert_eq!(
            StreamId::parse(b"5", u64::MAX),
            Some(StreamId::new(5, u64::MAX))
        );
        assert_eq!(StreamId::parse(b"5-7", 0), Some(StreamId::new(5, 7)));
        // string2ull's strtoull leniency: sign, white space and leading zeros.
        assert_eq!(StreamId::parse(b"+5-007", 0), Some(StreamId::new(5, 7)));
        assert_eq!(StreamId::parse(b" 5", 0), Some(StreamId::new(5, 0)));
        assert_eq!(StreamId::parse(b"5\0junk", 0), Some(StreamId::new(5, 0)));
        for bad in [
            &b""[..],
            b"-",
            b"5-",
            b"-5",
            b"a-1",
            b"18446744073709551616",
            b"1-2-3",
            b"5 ",
        ] {
            assert_eq!(
                StreamId::parse(bad, 0),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            StreamId::MAX.to_text(),
            b"18446744073709551615-18446744073709551615"
        );
        assert_eq!(StreamId::new(3, 4).to_string(), "3-4");
    }

    #[test]
    fn big_endian_form_sorts_like_the_id() {
        let a = StreamId::new(1, u64::MAX);
        let b = StreamId::new(2, 0);
        assert!(a.to_be_bytes() < b.to_be_bytes());
        assert_eq!(StreamId::from_be_bytes(&b.to_be_bytes()), Some(b));
        assert_eq!(StreamId::from_be_bytes(&[0; 15]), None);
    }
}

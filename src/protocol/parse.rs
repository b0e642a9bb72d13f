//! Request parser: RESP arrays of bulk strings (what clients send) and inline commands (what a
//! person types into telnet).
//!
//! The parser works on the connection's read buffer and returns every complete command in it,
//! leaving a partial command for the next read. Arguments are zero-copy `Bytes` slices of the
//! consumed part of the buffer. Limits (`proto-max-bulk-len`, multibulk count) are checked before
//! any allocation sized by client input, so a hostile length cannot make us reserve memory.

use bytes::{Bytes, BytesMut};

/// One parsed command: its arguments, the command name first.
pub type Args = Vec<Bytes>;

/// Limits taken from the configuration at parse time.
#[derive(Clone, Copy, Debug)]
pub struct ParseLimits {
    pub max_bulk_len: u64,
    pub max_multibulk_len: u64,
    /// Largest inline command line accepted before the request is refused.
    pub max_inline_len: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: i32::MAX as u64,
            max_inline_len: 64 * 1024,
        }
    }
}

/// A protocol violation: the reply text (without the leading `-`) and the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl ParseError {
    fn new(text: &str) -> Self {
        ParseError(text.to_string())
    }
}

/// Parses every complete command in `buf`, appending them to `out`. Consumed bytes are removed
/// from `buf`; an incomplete trailing command stays there. On a protocol error the commands
/// parsed before it are still returned in `out` (Redis executes them before closing).
///
/// A one-off call; a connection keeps a [`RequestParser`] so that its bookkeeping vectors are
/// not allocated again for every read.
pub fn parse_requests(
    buf: &mut BytesMut,
    limits: &ParseLimits,
    out: &mut Vec<Args>,
) -> Result<(), ParseError> {
    RequestParser::default().parse(buf, limits, out)
}

/// The request parser with its working space, kept by a connection across reads.
#[derive(Default)]
pub struct RequestParser {
    /// Argument ranges relative to the start of the buffer; they become `Bytes` slices once we
    /// know how much of the buffer is consumed (one freeze for the whole batch).
    ranges: Vec<(usize, usize)>,
    pending: Vec<Pending>,
    /// Emptied argument vectors of commands that ran, for the next commands parsed (one
    /// vector per command would be an allocation per command). See [`RequestParser::recycle`].
    spare_args: Vec<Args>,
}

/// How many emptied argument vectors a parser keeps, and the largest it keeps (in arguments):
/// enough for a pipeline's worth of ordinary commands, 4 KB at most per connection.
const SPARE_ARGS_KEEP: usize = 16;
pub const SPARE_ARGS_MAX_LEN: usize = 8;

/// Working space a parser keeps between reads (argument ranges, pending commands); a read
/// that needed more (a pipeline of thousands of arguments) gives the surplus back afterwards.
const PARSER_KEEP: usize = 1024;

impl RequestParser {
    /// Gives back the working space of a burst beyond `PARSER_KEEP` entries (so a connection
    /// that once sent a huge pipeline does not hold its parse tables for good).
    pub fn trim(&mut self) {
        if self.ranges.capacity() > PARSER_KEEP {
            self.ranges = Vec::new();
        }
        if self.pending.capacity() > PARSER_KEEP {
            self.pending = Vec::new();
        }
    }

    /// Takes back the argument vector of a command that has run, emptied, for a later command.
    pub fn recycle(&mut self, mut args: Args) {
        let cap = args.capacity();
        if self.spare_args.len() < SPARE_ARGS_KEEP && cap > 0 && cap <= SPARE_ARGS_MAX_LEN {
            args.clear();
            self.spare_args.push(args);
        }
    }

    /// See [`parse_requests`].
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        limits: &ParseLimits,
        out: &mut Vec<Args>,
    ) -> Result<(), ParseError> {
        let RequestParser {
            ranges,
            pending,
            spare_args,
        } = self;
        ranges.clear();
        pending.clear();
        let mut pos = 0usize;
        let mut result = Ok(());
        while pos < buf.len() {
            if buf[pos] == b'*' {
                let start_ranges = ranges.len();
                match parse_multibulk(&buf[..], pos, limits, ranges) {
                    Ok(Some(next)) => {
                        pos = next;
                        if ranges.len() > start_ranges {
                            pending.push(Pending::Ranges(start_ranges, ranges.len()));
                        }
                    }
                    Ok(None) => {
                        ranges.truncate(start_ranges);
                        break;
                    }
                    Err(e) => {
                        ranges.truncate(start_ranges);
                        result = Err(e);
                        break;
                    }
                }
            } else {
                match parse_inline(&buf[..], pos, limits) {
                    Ok(Some((next, args))) => {
                        pos = next;
                        if !args.is_empty() {
                            pending.push(Pending::Owned(args));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        if pos > 0 {
            let consumed = buf.split_to(pos).freeze();
            for p in pending.drain(..) {
                match p {
                    Pending::Ranges(begin, end) => {
                        let mut args = spare_args.pop().unwrap_or_default();
                        args.reserve_exact(end - begin);
                        for &(s, e) in &ranges[begin..end] {
                            args.push(consumed.slice(s..e));
                        }
                        out.push(args);
                    }
                    Pending::Owned(args) => out.push(args),
                }
            }
        }
        // A huge pipeline must not pin its bookkeeping for the connection's lifetime.
        if ranges.capacity() > 4096 {
            *ranges = Vec::new();
        }
        if pending.capacity() > 1024 {
            *pending = Vec::new();
        }
        result
    }
}

enum Pending {
    Ranges(usize, usize),
    Owned(Args),
}

/// Finds `\r\n` starting at `from`; returns the index of `\r`.
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 1 < buf.len() {
        match buf[i + 1..].iter().position(|&b| b == b'\n') {
            Some(off) => {
                let nl = i + 1 + off;
                if buf[nl - 1] == b'\r' {
                    return Some(nl - 1);
                }
                i = nl;
            }
            None => return None,
        }
    }
    None
}

/// Parses the decimal length after a `*` or `$` prefix the way Redis does (`string2ll`).
fn parse_len(digits: &[u8]) -> Option<i64> {
    crate::commands::args::parse_i64(digits)
}

fn parse_multibulk(
    buf: &[u8],
    start: usize,
    limits: &ParseLimits,
    ranges: &mut Vec<(usize, usize)>,
) -> Result<Option<usize>, ParseError> {
    let Some(cr) = find_crlf(buf, start) else {
        if buf.len() - start > limits.max_inline_len {
            return Err(ParseError::new(
                "Protocol error: too big mbulk count string",
            ));
        }
        return Ok(None);
    };
    let count = match parse_len(&buf[start + 1..cr]) {
        Some(n) if (n as i128) <= limits.max_multibulk_len as i128 => n,
        _ => return Err(ParseError::new("Protocol error: invalid multibulk length")),
    };
    let mut pos = cr + 2;
    if count <= 0 {
        return Ok(Some(pos));
    }
    for _ in 0..count {
        if pos >= buf.len() {
            return Ok(None);
        }
        if buf[pos] != b'$' {
            return Err(ParseError(format!(
                "Protocol error: expected '$', got '{}'",
                buf[pos] as char
            )));
        }
        let Some(cr) = find_crlf(buf, pos) else {
            if buf.len() - pos > limits.max_inline_len {
                return Err(ParseError::new("Protocol error: too big bulk count string"));
            }
            return Ok(None);
        };
        let len = match parse_len(&buf[pos + 1..cr]) {
            Some(n) if n >= 0 && (n as u64) <= limits.max_bulk_len => n as usize,
            _ => return Err(ParseError::new("Protocol error: invalid bulk length")),
        };
        let data = cr + 2;
        if buf.len() < data + len + 2 {
            return Ok(None);
        }
        // Like Redis, the two bytes after the payload are skipped without being checked.
        ranges.push((data, data + len));
        pos = data + len + 2;
    }
    Ok(Some(pos))
}

fn parse_inline(
    buf: &[u8],
    start: usize,
    limits: &ParseLimits,
) -> Result<Option<(usize, Args)>, ParseError> {
    // Redis finds the end of the line with strchr, which stops at a NUL byte: a line with a
    // NUL before its newline never completes (until it grows too big), and so here.
    let found = buf[start..]
        .iter()
        .position(|&b| b == b'\n' || b == 0)
        .filter(|&i| buf[start + i] == b'\n');
    let Some(nl_off) = found else {
        if buf.len() - start > limits.max_inline_len {
            return Err(ParseError::new("Protocol error: too big inline request"));
        }
        return Ok(None);
    };
    let nl = start + nl_off;
    let mut end = nl;
    if end > start && buf[end - 1] == b'\r' {
        end -= 1;
    }
    // Inline commands come from people typing, not from clients on the hot path, so they are
    // decoded into owned arguments rather than sliced.
    let args = decode_inline(&buf[start..end])?
        .into_iter()
        .map(Bytes::from)
        .collect();
    Ok(Some((nl + 1, args)))
}

/// Decodes an inline line with Redis's quoting rules: double quotes with `\n \r \t \b \a \\ \"`
/// and `\xHH` escapes, single quotes with only `\'`.
pub fn decode_inline(line: &[u8]) -> Result<Vec<Vec<u8>>, ParseError> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Ok(out);
        }
        let mut cur = Vec::new();
        let mut inq = false;
        let mut insq = false;
        loop {
            if inq {
                if i >= n {
                    return Err(ParseError::new(
                        "Protocol error: unbalanced quotes in request",
                    ));
                }
                if line[i] == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && line[i + 2].is_ascii_hexdigit()
                    && line[i + 3].is_ascii_hexdigit()
                {
                    let h = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                    cur.push(h(line[i + 2]) * 16 + h(line[i + 3]));
                    i += 4;
                    continue;
                } else if line[i] == b'\\' && i + 1 < n {
                    let c = match line[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    };
                    cur.push(c);
                    i += 2;
                    continue;
                } else if line[i] == b'"' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return Err(ParseError::new(
                            "Protocol error: unbalanced quotes in request",
                        ));
                    }
                    i += 1;
                    break;
                }
                cur.push(line[i]);
                i += 1;
            } else if insq {
                if i >= n {
                    return Err(ParseError::new(
                        "Protocol error: unbalanced quotes in request",
                    ));
                }
                if line[i] == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    cur.push(b'\'');
                    i += 2;
                    continue;
                } else if line[i] == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return Err(ParseError::new(
                            "Protocol error: unbalanced quotes in request",
                        ));
                    }
                    i += 1;
                    break;
                }
                cur.push(line[i]);
                i += 1;
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        i += 1;
                        break;
                    }
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
                i += 1;
            }
        }
        out.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(cmds: &[Vec<Vec<u8>>]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in cmds {
            out.extend_from_slice(format!("*{}\r\n", c.len()).as_bytes());
            for a in c {
                out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                out.extend_from_slice(a);
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }

    fn parse_all(chunks: &[&[u8]]) -> (Vec<Args>, Result<(), ParseError>) {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for c in chunks {
            buf.extend_from_slice(c);
            if let Err(e) = parse_requests(&mut buf, &ParseLimits::default(), &mut out) {
                return (out, Err(e));
            }
        }
        (out, Ok(()))
    }

    #[test]
    fn multibulk_and_inline() {
        let (cmds, r) = parse_all(&[b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nSET a \"b c\"\r\n"]);
        assert!(r.is_ok());
        assert_eq!(cmds.len(), 3);
        assert_eq!(cmds[0], vec![Bytes::from("GET"), Bytes::from("k")]);
        assert_eq!(cmds[1], vec![Bytes::from("PING")]);
        assert_eq!(
            cmds[2],
            vec![Bytes::from("SET"), Bytes::from("a"), Bytes::from("b c")]
        );
    }

    #[test]
    fn inline_line_with_a_nul_waits_like_redis() {
        // Redis's strchr stops at the NUL: the line never completes, nor does what follows.
        let (cmds, r) = parse_all(&[b"PING\0x\r\nPING\r\n"]);
        assert!(r.is_ok());
        assert!(cmds.is_empty());
        // ... until it passes the inline limit.
        let mut big = b"PING\0".to_vec();
        big.extend(std::iter::repeat_n(b'x', 70 * 1024));
        let (cmds, r) = parse_all(&[&big]);
        assert!(cmds.is_empty());
        assert_eq!(
            r,
            Err(ParseError("Protocol error: too big inline request".into()))
        );
        // A NUL inside a RESP bulk string is just a byte.
        let (cmds, r) = parse_all(&[b"*2\r\n$4\r\nECHO\r\n$3\r\na\0b\r\n"]);
        assert!(r.is_ok());
        assert_eq!(cmds[0][1], Bytes::from_static(b"a\0b"));
    }

    #[test]
    fn protocol_errors() {
        for (input, msg) in [
            (&b"*abc\r\n"[..], "Protocol error: invalid multibulk length"),
            (b"*1\r\n$-5\r\n", "Protocol error: invalid bulk length"),
            (b"*1\r\nfoo\r\n", "Protocol error: expected '$', got 'f'"),
            (
                b"SET a \"b\r\n",
                "Protocol error: unbalanced quotes in request",
            ),
        ] {
            let (_, r) = parse_all(&[input]);
            assert_eq!(r, Err(ParseError(msg.to_string())), "{:?}", input);
        }
        let limits = ParseLimits {
            max_bulk_len: 10,
            ..ParseLimits::default()
        };
        let mut buf = BytesMut::from(&b"*1\r\n$11\r\n"[..]);
        assert!(parse_requests(&mut buf, &limits, &mut Vec::new()).is_err());
    }

    #[test]
    fn empty_and_null_multibulk_are_skipped() {
        let (cmds, r) = parse_all(&[b"*0\r\n*-1\r\n\r\nPING\r\n"]);
        assert!(r.is_ok());
        assert_eq!(cmds, vec![vec![Bytes::from("PING")]]);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// The fuzz target: arbitrary bytes, in arbitrary chunks, never panic the parser and
        /// never make it consume more than it was given.
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512), split in 0usize..512) {
            let split = split.min(data.len());
            let (a, b) = data.split_at(split);
            let _ = parse_all(&[a, b]);
        }

        /// Commands survive any split of the byte stream (partial reads at every boundary).
        #[test]
        fn split_anywhere_roundtrips(
            cmds in proptest::collection::vec(proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..5), 1..6),
            split in 0usize..400,
        ) {
            let wire = encode(&cmds);
            let split = split.min(wire.len());
            let (a, b) = wire.split_at(split);
            let (parsed, r) = parse_all(&[a, b]);
            prop_assert!(r.is_ok());
            let parsed: Vec<Vec<Vec<u8>>> = parsed.iter().map(|c| c.iter().map(|x| x.to_vec()).collect()).collect();
            prop_assert_eq!(parsed, cmds);
        }
    }
}

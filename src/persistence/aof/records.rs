//! The AOF record format (commands as RESP arrays of bulk strings, like Redis's AOF), a strict
//! incremental reader for it, and the per-key generator that writes commands recreating a key
//! from scratch (used by rewrites and by multi-shard write-backs).
//!
//! Pure functions over bytes and values (and a read of the function registry); no I/O and no
//! shard state.

use bytes::Bytes;

use crate::types::{Entry, Value};

/// Appends one command in RESP form.
pub fn push_cmd<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    let mut n = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(n.format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(n.format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// What the reader found at an offset.
#[derive(Debug, PartialEq)]
pub enum Read {
    /// A complete record and the offset just past it.
    Record(Vec<Bytes>, usize),
    /// The bytes end inside a record (a torn tail).
    Incomplete,
    /// Not a record: the file is damaged at this offset.
    Bad(&'static str),
}

fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let nl = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..nl], at + nl + 2))
}

fn number(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 18 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// The record that opens a write made under `appendfsync always` into a preallocated file:
/// `TESSERA.BATCH <bytes> <crc64 hex>`, covering the records that follow it in the same write.
/// Overwriting preallocated blocks, a write interrupted by power loss can reach the disk with
/// any subset of its sectors (a zero sector in the middle, the last one present), which could
/// still parse as records; the checksum tells such a write from a whole one. Only the last
/// write of a file can be torn (the next one starts after it is durable).
pub const BATCH: &[u8] = b"TESSERA.BATCH";

/// Appends the `BATCH` record for `data` (the write's records, which follow it).
pub fn push_batch_header(out: &mut Vec<u8>, data: &[u8]) {
    let crc = crate::persistence::rdb::crc::crc64(0, data);
    push_cmd(
        out,
        &[
            BATCH,
            data.len().to_string().as_bytes(),
            format!("{crc:016x}").as_bytes(),
        ],
    );
}

/// What a `BATCH` record says about the bytes after it.
#[derive(Debug, PartialEq)]
pub enum Batch {
    /// Present and matching its checksum: read its records.
    Whole,
    /// The file's last write, incomplete or not matching: a torn tail starting at the header.
    Torn,
    /// Not matching, with more log after it (or a malformed header): damage.
    Damaged(&'static str),
}

/// Checks the batch whose header record `args` ends at `next` in `log` (a file's bytes without
/// the zero padding, see `log_len`).
pub fn check_batch(log: &[u8], args: &[Bytes], next: usize) -> Batch {
    let len = args
        .get(1)
        .and_then(|a| std::str::from_utf8(a).ok())
        .and_then(|a| a.parse::<usize>().ok());
    let crc = args
        .get(2)
        .and_then(|a| std::str::from_utf8(a).ok())
        .and_then(|a| u64::from_str_radix(a, 16).ok());
    let (Some(len), Some(crc), 3) = (len, crc, args.len()) else {
        return Batch::Damaged("malformed TESSERA.BATCH");
    };
    let Some(end) = next.checked_add(len).filter(|&end| end <= log.len()) else {
        return Batch::Torn;
    };
    if crate::persistence::rdb::crc::crc64(0, &log[next..end]) == crc {
        Batch::Whole
    } else if end == log.len() {
        Batch::Torn
    } else {
        Batch::Damaged("TESSERA.BATCH checksum mismatch")
    }
}

/// Reads the next record of `log` (a file's bytes without the padding, see `log_len`) from
/// `at`, as the loader and `check` see the log: whole `BATCH` headers are stepped over, a torn
/// last batch or a write torn by power loss (`torn_by_padding`) reads as `Incomplete`, a damaged
/// batch as `Bad`. Returns the record's offset with what was found there, or `None` at the end.
pub fn read_log_record(log: &[u8], mut at: usize) -> Option<(usize, Read)> {
    while at < log.len() {
        let read = match read_record(log, at) {
            Read::Record(args, next) if args[0][..] == *BATCH => {
                match check_batch(log, &args, next) {
                    Batch::Whole => {
                        at = next;
                        continue;
                    }
                    Batch::Torn => Read::Incomplete,
                    Batch::Damaged(why) => Read::Bad(why),
                }
            }
            Read::Bad(_) if torn_by_padding(log, at) => Read::Incomplete,
            read => read,
        };
        return Some((at, read));
    }
    None
}

/// How much of a file's bytes is log: all but the zero padding that `appendfsync always`
/// preallocates at the end (a record ends in `\n`, so the last nonzero byte ends the log).
pub fn log_len(buf: &[u8]) -> usize {
    buf.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)
}

/// Whether a damaged record at `at` is a write that was in flight when the machine lost power
/// on a preallocated file: its sectors reach the disk in any order, so the padding shows
/// through as zeros from `at` to the end of its sector, or as a whole zero sector further on.
/// Such a tail was never acknowledged and is treated as torn (dropped under
/// `aof-load-truncated yes`), not as damage.
pub fn torn_by_padding(buf: &[u8], at: usize) -> bool {
    const SECTOR: usize = 512;
    let zero = |b: &[u8]| !b.is_empty() && b.iter().all(|&x| x == 0);
    let first = at.next_multiple_of(SECTOR).min(buf.len());
    zero(buf.get(at..first).unwrap_or(&[]))
        || buf
            .get(first..)
            .is_some_and(|rest| rest.chunks_exact(SECTOR).any(zero))
}

/// Reads the record starting at `at`.
pub fn read_record(buf: &[u8], at: usize) -> Read {
    let mut args = Vec::new();
    match scan_record(buf, at, |a| args.push(Bytes::copy_from_slice(a))) {
        Ok(end) => Read::Record(args, end),
        Err(r) => r,
    }
}

/// How many complete records `buf` starts with, counting no further than `limit`.
pub fn count_records(buf: &[u8], limit: usize) -> usize {
    let (mut n, mut at) = (0, 0);
    while n < limit && at < buf.len() {
        match scan_record(buf, at, |_| {}) {
            Ok(end) => {
                n += 1;
                at = end;
            }
            Err(_) => break,
        }
    }
    n
}

/// Walks the record at `at`, handing each argument to `arg`; the offset past it, or what was
/// found instead (never `Read::Record`).
fn scan_record(buf: &[u8], at: usize, mut arg: impl FnMut(&[u8])) -> Result<usize, Read> {
    if buf.get(at) != Some(&b'*') {
        return Err(Read::Bad("expected '*'"));
    }
    let Some((n, mut pos)) = line(buf, at + 1) else {
        return Err(if buf.len() - at > 32 {
            Read::Bad("bad array header")
        } else {
            Read::Incomplete
        });
    };
    let Some(n) = number(n).filter(|&n| n > 0) else {
        return Err(Read::Bad("bad array length"));
    };
    for _ in 0..n {
        match buf.get(pos) {
            None => return Err(Read::Incomplete),
            Some(b'$') => {}
            Some(_) => return Err(Read::Bad("expected '$'")),
        }
        let Some((len, start)) = line(buf, pos + 1) else {
            return Err(if buf.len() - pos > 32 {
                Read::Bad("bad bulk header")
            } else {
                Read::Incomplete
            });
        };
        let Some(len) = number(len) else {
            return Err(Read::Bad("bad bulk length"));
        };
        let end = start + len;
        if buf.len() < end + 2 {
            return Err(Read::Incomplete);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(Read::Bad("bulk not terminated by CRLF"));
        }
        arg(&buf[start..end]);
        pos = end + 2;
    }
    Ok(pos)
}

/// Appends the commands that recreate every function library (the start of shard 0's base in
/// a rewrite; the registry is process-wide, logged once). Take it in the same synchronous step
/// as the switch to the new incremental file: FUNCTION changes are applied and logged on shard
/// 0's thread, so none falls between the two.
pub fn functions_base(out: &mut Vec<u8>, scripting: &crate::scripting::Shared) {
    for code in crate::scripting::functions::library_codes(scripting) {
        push_cmd(out, &[&b"FUNCTION"[..], b"LOAD", b"REPLACE", &code]);
    }
}

/// Collects the bulk strings of a reply (a bulk, or an array/set of bulks); anything else adds
/// nothing.
pub fn reply_bulks(reply: &[u8], out: &mut Vec<Vec<u8>>) {
    fn bulk(buf: &[u8], at: usize) -> Option<(Vec<u8>, usize)> {
        if buf.get(at) != Some(&b'$') {
            return None;
        }
        let (len, start) = line(buf, at + 1)?;
        let len = number(len)?;
        let v = buf.get(start..start + len)?.to_vec();
        Some((v, start + len + 2))
    }
    match reply.first() {
        Some(b'$') => {
            if let Some((v, _)) = bulk(reply, 0) {
                out.push(v);
            }
        }
        Some(b'*') | Some(b'~') => {
            let Some((n, mut pos)) = line(reply, 1) else {
                return;
            };
            let Some(n) = number(n) else {
                return;
            };
            for _ in 0..n {
                let Some((v, next)) = bulk(reply, pos) else {
                    return;
                };
                out.push(v);
                pos = next;
            }
        }
        _ => {}
    }
}

/// Elements per command when a collection is recreated (keeps single records small).
const CHUNK: usize = 128;

fn score_text(s: f64) -> Vec<u8> {
    // Rust's shortest round-trip formatting; infinities print as inf/-inf, which ZADD accepts.
    format!("{}", s).into_bytes()
}

/// Appends commands that recreate `key` exactly as `entry` with its deadline (0 = none), or
/// delete it when `None` (see `Db::peek`): DEL, then the value in chunks, then its absolute
/// deadline.
pub fn recreate_key(out: &mut Vec<u8>, key: &[u8], entry: Option<(&Entry, u64)>) {
    push_cmd(out, &[&b"DEL"[..], key]);
    let Some((e, expire_at)) = entry else {
        return;
    };
    recreate_value(out, key, &e.value);
    if expire_at != 0 {
        push_cmd(
            out,
            &[&b"PEXPIREAT"[..], key, expire_at.to_string().as_bytes()],
        );
    }
}

/// Appends the one record that leaves `key` as `entry` after a SET-family write: `SET key
/// value [PXAT deadline]` (SET replaces any old value and TTL), or `DEL key` when the write
/// left no key behind; any other value is recreated in full.
pub fn set_absolute(out: &mut Vec<u8>, key: &[u8], entry: Option<(&Entry, u64)>) {
    match entry {
        None => push_cmd(out, &[&b"DEL"[..], key]),
        Some((e, expire_at)) => match &e.value {
            Value::Str(s) if expire_at == 0 => {
                s.with_bytes(|b| push_cmd(out, &[&b"SET"[..], key, b]))
            }
            Value::Str(s) => s.with_bytes(|b| {
                push_cmd(
                    out,
                    &[
                        &b"SET"[..],
                        key,
                        b,
                        b"PXAT",
                        expire_at.to_string().as_bytes(),
                    ],
                )
            }),
            _ => recreate_key(out, key, entry),
        },
    }
}

/// Appends commands that build `v` under `key` (which must not exist).
pub fn recreate_value(out: &mut Vec<u8>, key: &[u8], v: &Value) {
    let mut args: Vec<Vec<u8>> = Vec::new();
    let flush = |out: &mut Vec<u8>, cmd: &[u8], args: &mut Vec<Vec<u8>>| {
        if args.is_empty() {
            return;
        }
        let mut full: Vec<&[u8]> = Vec::with_capacity(args.len() + 2);
        full.push(cmd);
        full.push(key);
        full.extend(args.iter().map(|a| &a[..]));
        push_cmd(out, &full);
        args.clear();
    };
    match v {
        Value::Str(s) => s.with_bytes(|b| push_cmd(out, &[&b"SET"[..], key, b])),
        Value::List(l) => {
            for item in l.iter() {
                args.push(item.with_bytes(|b| b.to_vec()));
                if args.len() == CHUNK {
                    flush(out, b"RPUSH", &mut args);
                }
            }
            flush(out, b"RPUSH", &mut args);
        }
        Value::Set(s) => {
            for m in s.iter() {
                args.push(m.with_bytes(|b| b.to_vec()));
                if args.len() == CHUNK {
                    flush(out, b"SADD", &mut args);
                }
            }
            flush(out, b"SADD", &mut args);
        }
        Value::Hash(h) => {
            for (f, val) in h.iter() {
                args.push(f.to_vec());
                args.push(val.to_vec());
                if args.len() >= CHUNK {
                    flush(out, b"HSET", &mut args);
                }
            }
            flush(out, b"HSET", &mut args);
        }
        Value::ZSet(z) => {
            for (m, s) in z.iter() {
                args.push(score_text(s));
                args.push(m.to_vec());
                if args.len() >= CHUNK {
                    flush(out, b"ZADD", &mut args);
                }
            }
            flush(out, b"ZADD", &mut args);
        }
        Value::Stream(x) => recreate_stream(out, key, x),
    }
}

/// The commands that rebuild a stream (Redis's `rewriteStreamObject`): an XADD per live entry
/// (an empty stream is made by an XADD trimmed to nothing), then XSETID with the counters.
/// The consumer groups' commands follow from [`recreate_stream_groups`].
fn recreate_stream(out: &mut Vec<u8>, key: &[u8], x: &crate::types::StreamValue) {
    use crate::types::stream_id::StreamId;
    if x.is_empty() {
        push_cmd(out, &[b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"]);
    } else {
        x.range(StreamId::MIN, StreamId::MAX, false, 0, |id, pairs| {
            let id = id.to_text();
            let mut full: Vec<&[u8]> = Vec::with_capacity(pairs.len() + 3);
            full.push(b"XADD");
            full.push(key);
            full.push(&id);
            full.extend(pairs.iter().map(|p| &p[..]));
            push_cmd(out, &full);
            true
        });
    }
    let last = x.last_id.to_text();
    let added = x.entries_added.to_string();
    let maxdel = x.max_deleted_id.to_text();
    push_cmd(
        out,
        &[
            b"XSETID",
            key,
            &last,
            b"ENTRIESADDED",
            added.as_bytes(),
            b"MAXDELETEDID",
            &maxdel,
        ],
    );
    recreate_stream_groups(out, key, x);
}

/// The consumer groups' part of a stream's rewrite, as Redis's `rewriteStreamObject` writes
/// it: XGROUP CREATE with the group's position and entries-read, XGROUP CREATECONSUMER for
/// every consumer, then one `XCLAIM ... TIME t RETRYCOUNT n JUSTID FORCE` per pending entry
/// (its owner, delivery time and count). Like Redis's rewrite, a pending entry whose stream
/// entry was deleted cannot be claimed back and is dropped at replay; seen-times are the
/// replay's.
fn recreate_stream_groups(out: &mut Vec<u8>, key: &[u8], x: &crate::types::StreamValue) {
    for (name, g) in x.groups.iter() {
        let last = g.last_id.to_text();
        let read = g.entries_read.to_string();
        push_cmd(
            out,
            &[
                &b"XGROUP"[..],
                b"CREATE",
                key,
                name,
                &last,
                b"ENTRIESREAD",
                read.as_bytes(),
            ],
        );
        for cname in g.consumers.keys() {
            push_cmd(out, &[&b"XGROUP"[..], b"CREATECONSUMER", key, name, cname]);
        }
        for (id, n) in &g.pel {
            let id = id.to_text();
            let time = n.delivery_time.to_string();
            let count = n.delivery_count.to_string();
            push_cmd(
                out,
                &[
                    &b"XCLAIM"[..],
                    key,
                    name,
                    &n.consumer,
                    b"0",
                    &id,
                    b"TIME",
                    time.as_bytes(),
                    b"RETRYCOUNT",
                    count.as_bytes(),
                    b"JUSTID",
                    b"FORCE",
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_bulks_reads_bulks_arrays_and_sets() {
        let mut v = Vec::new();
        reply_bulks(b"$2\r\nab\r\n", &mut v);
        reply_bulks(b"*2\r\n$1\r\nx\r\n$0\r\n\r\n", &mut v);
        reply_bulks(b"~1\r\n$1\r\ny\r\n", &mut v);
        reply_bulks(b"$-1\r\n", &mut v);
        reply_bulks(b"*0\r\n", &mut v);
        assert_eq!(
            v,
            vec![b"ab".to_vec(), b"x".to_vec(), vec![], b"y".to_vec()]
        );
    }

    #[test]
    fn records_read_back_and_torn_or_bad_tails_are_told_apart() {
        let mut buf = Vec::new();
        push_cmd(&mut buf, &["SET", "k", "v\r\nx"]);
        push_cmd(&mut buf, &["DEL", ""]);
        let Read::Record(a, end) = read_record(&buf, 0) else {
            panic!()
        };
        assert_eq!(a, vec!["SET", "k", "v\r\nx"]);
        let Read::Record(b, end2) = read_record(&buf, end) else {
            panic!()
        };
        assert_eq!(b, vec!["DEL", ""]);
        assert_eq!(end2, buf.len());
        for cut in end + 1..buf.len() {
            assert_eq!(read_record(&buf[..cut], end), Read::Incomplete, "cut {cut}");
        }
        let mut bad = buf.clone();
        bad[end + 1] = b'x';
        assert!(matches!(read_record(&bad, end), Read::Bad(_)));
    }

    /// One framed write: header plus records, as the writer lays it down.
    fn framed(records: &[&[&str]]) -> Vec<u8> {
        let mut data = Vec::new();
        for r in records {
            push_cmd(&mut data, r);
        }
        let mut out = Vec::new();
        push_batch_header(&mut out, &data);
        out.extend_from_slice(&data);
        out
    }

    fn header(buf: &[u8], at: usize) -> (Vec<Bytes>, usize) {
        match read_record(buf, at) {
            Read::Record(args, next) if args[0][..] == *BATCH => (args, next),
            other => panic!("no batch header at {at}: {other:?}"),
        }
    }

    #[test]
    fn batches_check_whole_torn_and_damaged() {
        let big = "x".repeat(3000);
        let first = framed(&[&["SET", "a", "1"], &["SET", "b", &big]]);
        let second = framed(&[&["SET", "c", &big]]);
        let mut log = first.clone();
        log.extend_from_slice(&second);
        let (args, next) = header(&log, 0);
        assert_eq!(check_batch(&log, &args, next), Batch::Whole);
        let (args2, next2) = header(&log, first.len());
        assert_eq!(check_batch(&log, &args2, next2), Batch::Whole);
        // The last write cut short, or with a sector of it lost (zeros) but its end present:
        // torn. The same damage to a write with more log after it: damaged.
        assert_eq!(
            check_batch(&log[..log.len() - 1], &args2, next2),
            Batch::Torn
        );
        let mut holed = log.clone();
        let sector = (first.len() + 1024).next_multiple_of(512);
        holed[sector..sector + 512].fill(0);
        assert_eq!(check_batch(&holed, &args2, next2), Batch::Torn);
        assert!(torn_by_padding(&holed, first.len()));
        let mut holed_first = log.clone();
        holed_first[1024..1536].fill(0);
        assert!(matches!(
            check_batch(&holed_first, &args, next),
            Batch::Damaged(_)
        ));
        // A malformed header is damage.
        let bad = vec![Bytes::from_static(BATCH), Bytes::from_static(b"x")];
        assert!(matches!(check_batch(&log, &bad, next), Batch::Damaged(_)));
    }

    #[test]
    fn padding_is_not_log_and_a_zeroed_sector_marks_a_torn_write() {
        let mut buf = framed(&[&["SET", "k", "v"]]);
        let end = buf.len();
        buf.resize(end + 4096, 0);
        assert_eq!(log_len(&buf), end);
        assert_eq!(log_len(&[0, 0]), 0);
        assert_eq!(log_len(b""), 0);
        // A write whose first sector was lost: zeros from its start to the sector's end, then
        // the rest of it.
        let mut torn = buf[..end].to_vec();
        let at = torn.len();
        torn.resize(at.next_multiple_of(512), 0);
        torn.extend_from_slice(b"\r\n$1\r\nv\r\n");
        assert!(matches!(read_record(&torn, at), Read::Bad(_)));
        assert!(torn_by_padding(&torn, at));
        // Damage without zeros is not mistaken for a torn write.
        let mut damaged = buf[..end].to_vec();
        damaged.extend_from_slice(b"not a record");
        assert!(!torn_by_padding(&damaged, end));
    }
}

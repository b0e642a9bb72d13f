//! Stream commands without consumer groups (Redis's t_stream.c): XADD, XRANGE, XREVRANGE, XLEN,
//! XDEL, XTRIM, XSETID, XREAD (BLOCK included) and the XINFO container (STREAM, HELP; GROUPS and
//! CONSUMERS belong to the consumer-group commands, which replace their handler).
//!
//! Owns argument parsing in Redis's order of checks (so that the same bad command gets the same
//! error), the replies, keyspace events, dirty counts, and the rewriting of XADD/XTRIM for the
//! AOF (a generated ID and approximate trimming are logged as what they did). `types::stream`
//! owns the entries and their layout; this module never touches nodes directly.
//!
//! Every handler runs on the shard that owns its keys (XREAD over keys of several shards runs
//! as one transaction with copies of the foreign values); none may panic on any argument.
//!
//! XREAD BLOCK is driven by `blocking_family` (waiting, timeouts, CLIENT UNBLOCK, keys on
//! several shards) and `shard::blocking` (waking); this module gives them what is
//! stream-specific: when XREAD blocks at all, the arguments it waits with (`$` resolved, the
//! blocked default COUNT), the key it is narrowed to when woken, and Redis's rule for serving
//! a woken waiter ([`serve_blocked_xread`]).

use bytes::Bytes;

use super::args::{eq_ic, parse_i64, ERR_NOT_INT, ERR_SYNTAX, ERR_WRONGTYPE};
use super::class;
use super::{
    cmd, flags::*, sub, BeginSearch, CommandSpec, Ctx, Exec, FindKeys, KeySpec, SubCommand, KEY1,
};
use crate::protocol::Reply;
use crate::types::stream::{AddError, StreamLimits, Trim};
use crate::types::stream_id::StreamId;
use crate::types::{StreamValue, Value};

pub const ERR_INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
const ERR_NO_SUCH_KEY: &str = "ERR no such key";

const XREAD_KEYS: &[KeySpec] = &[KeySpec::new(
    &["RO", "access"],
    BeginSearch::Keyword("STREAMS", 1),
    FindKeys::Range(-1, 1, 2),
)];

const XINFO_SUBCOMMANDS: &[SubCommand] = &[
    sub("xinfo|consumers", 4)
        .flags(READONLY)
        .key_at(2, &["RO", "access"])
        .tips(&["nondeterministic_output"])
        .docs("5.0.0", "O(1)", "Lists the consumers in a consumer group."),
    sub("xinfo|groups", 3)
        .flags(READONLY)
        .key_at(2, &["RO", "access"])
        .docs("5.0.0", "O(1)", "Lists the consumer groups of a stream."),
    sub("xinfo|help", 2).flags(LOADING | STALE).docs(
        "5.0.0",
        "O(1)",
        "Returns helpful text about the different subcommands.",
    ),
    sub("xinfo|stream", -3)
        .flags(READONLY)
        .key_at(2, &["RO", "access"])
        .docs("5.0.0", "O(1)", "Returns information about a stream."),
];

pub fn specs() -> Vec<CommandSpec> {
    let g = "stream";
    vec![
        cmd(
            "xadd",
            -5,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "5.0.0",
            "O(1) when adding a new entry, O(N) when trimming where N being the number of entries evicted.",
            "Appends an entry to a stream; creates the key if needed.",
            Exec::Shard(xadd),
        )
        .tips(&["nondeterministic_output"])
        .key_specs(
            const {
                &[KeySpec::range(&["RW", "update"], 1, 0, 1)
                    .notes("UPDATE instead of INSERT because of the optional trimming feature")]
            },
        ),
        cmd(
            "xrange",
            -4,
            READONLY,
            KEY1,
            g,
            "5.0.0",
            "O(N) with N being the number of elements being returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).",
            "Returns the entries of a stream within a range of IDs.",
            Exec::Shard(xrange),
        )
        .key_flags(&["RO", "access"]),
        cmd(
            "xrevrange",
            -4,
            READONLY,
            KEY1,
            g,
            "5.0.0",
            "O(N) with N being the number of elements returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).",
            "Returns the entries of a stream within a range of IDs, in reverse order.",
            Exec::Shard(xrevrange),
        )
        .key_flags(&["RO", "access"]),
        cmd(
            "xlen",
            2,
            READONLY | FAST,
            KEY1,
            g,
            "5.0.0",
            "O(1)",
            "Returns the number of entries in a stream.",
            Exec::Shard(xlen),
        )
        .key_flags(&["RO"]),
        cmd(
            "xdel",
            -3,
            WRITE | FAST,
            KEY1,
            g,
            "5.0.0",
            "O(1) for each single item to delete in the stream, regardless of the stream size.",
            "Deletes entries from a stream and returns how many were deleted.",
            Exec::Shard(xdel),
        )
        .key_flags(&["RW", "delete"]),
        cmd(
            "xtrim",
            -4,
            WRITE,
            KEY1,
            g,
            "5.0.0",
            "O(N), with N being the number of evicted entries. Constant times are very small however, since entries are organized in macro nodes containing multiple entries that can be released with a single deallocation.",
            "Removes the oldest entries of a stream by length or by ID.",
            Exec::Shard(xtrim),
        )
        .tips(&["nondeterministic_output"])
        .key_flags(&["RW", "delete"]),
        cmd(
            "xsetid",
            -3,
            // Redis 7.0 does not signal the key as modified: a WATCH on it survives.
            WRITE | DENYOOM | FAST | OWN_SIGNALS,
            KEY1,
            g,
            "5.0.0",
            "O(1)",
            "Sets a stream's last ID and counters (used to replicate streams).",
            Exec::Shard(xsetid),
        )
        .key_flags(&["RW", "update"]),
        cmd(
            "xread",
            -4,
            READONLY | BLOCKING,
            (0, 0, 0),
            g,
            "5.0.0",
            "For each stream mentioned: O(N) with N being the number of elements being returned, it means that XREAD-ing with a fixed COUNT is O(1). Note that when the BLOCK option is used, XADD will pay O(M) time in order to serve the M clients blocked on the stream getting new data.",
            "Returns entries from streams with IDs above the given ones; can block until some arrive.",
            Exec::Shard(xread),
        )
        .movable_keys(xread_keys)
        .key_specs(XREAD_KEYS),
        cmd(
            "xinfo",
            -2,
            0,
            (2, 2, 1),
            g,
            "5.0.0",
            "Depends on subcommand.",
            "Inspects streams (STREAM) and their consumer groups (GROUPS, CONSUMERS).",
            Exec::Shard(xinfo),
        )
        .subcommands(XINFO_SUBCOMMANDS),
    ]
}

/// XREAD's keys as Redis's `xreadGetKeys` finds them: the first half of what follows the
/// STREAMS option (options before it skipped with their arguments).
pub fn xread_keys(a: &[Bytes]) -> Option<Vec<usize>> {
    let mut i = 1;
    let mut streams = None;
    while i < a.len() {
        if eq_ic(&a[i], "block") || eq_ic(&a[i], "count") {
            i += 2;
        } else if eq_ic(&a[i], "group") {
            i += 3;
        } else if eq_ic(&a[i], "noack") {
            i += 1;
        } else if eq_ic(&a[i], "streams") {
            streams = Some(i);
            break;
        } else {
            break;
        }
    }
    let pos = streams?;
    let num = a.len() - pos - 1;
    if num == 0 || !num.is_multiple_of(2) {
        return None;
    }
    Some((pos + 1..pos + 1 + num / 2).collect())
}

// ----- argument parsing -----

/// How an ID argument may be written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IdForm {
    /// `-` and `+` allowed (range bounds).
    Lax,
    /// `-` and `+` refused.
    Strict,
}

/// Redis's `streamGenericParseIDOrReply`: the text up to its first NUL, `-`/`+` unless strict,
/// `<ms>-<seq>` or `<ms>` (the sequence then `missing_seq`). With `seq_star`, `<ms>-*` is
/// accepted and returned with false (sequence not given).
fn parse_id(
    arg: &[u8],
    missing_seq: u64,
    form: IdForm,
    seq_star: bool,
) -> Result<(StreamId, bool), &'static str> {
    if arg.len() > 127 {
        return Err(ERR_INVALID_ID);
    }
    let s = super::args::c_str(arg);
    if s == b"-" || s == b"+" {
        if form == IdForm::Strict {
            return Err(ERR_INVALID_ID);
        }
        return Ok((
            if s == b"-" {
                StreamId::MIN
            } else {
                StreamId::MAX
            },
            true,
        ));
    }
    if seq_star {
        if let Some(ms) = s.strip_suffix(b"-*") {
            if !ms.contains(&b'-') {
                let ms = super::args::parse_u64_string2ull(ms).ok_or(ERR_INVALID_ID)?;
                return Ok((StreamId::new(ms, 0), false));
            }
        }
    }
    StreamId::parse(s, missing_seq)
        .map(|id| (id, true))
        .ok_or(ERR_INVALID_ID)
}

fn strict_id(arg: &[u8]) -> Result<StreamId, &'static str> {
    parse_id(arg, 0, IdForm::Strict, false).map(|x| x.0)
}

/// A range bound (`streamParseIntervalIdOrReply`): `(` makes it exclusive (then strict).
fn interval_id(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), &'static str> {
    if arg.len() > 1 && arg[0] == b'(' {
        let id = parse_id(&arg[1..], missing_seq, IdForm::Strict, false)?.0;
        Ok((id, true))
    } else {
        Ok((parse_id(arg, missing_seq, IdForm::Lax, false)?.0, false))
    }
}

/// An integer argument, with Redis's "not an integer" error.
pub(super) fn ll_arg(arg: &[u8]) -> Result<i64, &'static str> {
    parse_i64(arg).ok_or(ERR_NOT_INT)
}

/// The trimming options of XADD and XTRIM (Redis's `streamAddTrimArgs`).
#[derive(Default)]
struct TrimArgs {
    trim: Option<Trim>,
    approx: bool,
    limit: i64,
    /// Position of the MAXLEN/MINID value (for the AOF rewrite).
    trim_at: usize,
    nomkstream: bool,
    /// XADD: the ID argument's position and the ID (None: `*`), and whether its sequence was
    /// given.
    id_at: usize,
    id: Option<StreamId>,
    seq_given: bool,
}

/// Redis's `streamParseAddOrTrimArgsOrReply`. For XADD, returns where the ID is (the fields
/// follow); for XTRIM, the end.
fn parse_trim_args(ctx: &Ctx, a: &[Bytes], xadd: bool, from_aof: bool) -> Result<TrimArgs, String> {
    let mut t = TrimArgs {
        seq_given: true,
        ..Default::default()
    };
    let mut limit_given = false;
    let mut i = 2;
    let mut id_found = false;
    while i < a.len() {
        let more = a.len() - 1 - i;
        let opt = &a[i];
        if xadd && &opt[..] == b"*" {
            t.id_at = i;
            id_found = true;
            break;
        } else if (eq_ic(opt, "maxlen") || eq_ic(opt, "minid")) && more > 0 {
            let maxlen = eq_ic(opt, "maxlen");
            if t.trim.is_some() {
                return Err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible".into());
            }
            t.approx = false;
            let next = &a[i + 1];
            if more >= 2 && &next[..] == b"~" {
                t.approx = true;
                i += 1;
            } else if more >= 2 && &next[..] == b"=" {
                i += 1;
            }
            if maxlen {
                let n = ll_arg(&a[i + 1])?;
                if n < 0 {
                    return Err("ERR The MAXLEN argument must be >= 0.".into());
                }
                t.trim = Some(Trim::MaxLen(n as u64));
            } else {
                t.trim = Some(Trim::MinId(strict_id(&a[i + 1])?));
            }
            i += 1;
            t.trim_at = i;
        } else if eq_ic(opt, "limit") && more > 0 {
            let n = ll_arg(&a[i + 1])?;
            if n < 0 {
                return Err("ERR The LIMIT argument must be >= 0.".into());
            }
            t.limit = n;
            limit_given = true;
            i += 1;
        } else if xadd && eq_ic(opt, "nomkstream") {
            t.nomkstream = true;
        } else if xadd {
            let (id, seq_given) = parse_id(opt, 0, IdForm::Strict, true)?;
            t.id = Some(id);
            t.seq_given = seq_given;
            t.id_at = i;
            id_found = true;
            break;
        } else {
            return Err(ERR_SYNTAX.into());
        }
        i += 1;
    }
    if xadd && !id_found {
        t.id_at = a.len();
    }
    if t.limit != 0 && t.trim.is_none() {
        return Err(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy".into(),
        );
    }
    if !xadd && t.trim.is_none() {
        return Err("ERR syntax error, XTRIM must be called with a trimming strategy".into());
    }
    if from_aof {
        t.limit = 0;
    } else if limit_given {
        if !t.approx {
            return Err(
                "ERR syntax error, LIMIT cannot be used without the special ~ option".into(),
            );
        }
    } else if t.approx {
        let n = 100i64.saturating_mul(ctx.st.config.stream_node_max_entries as i64);
        t.limit = if n <= 0 { 10_000 } else { n.min(1_000_000) };
    } else {
        t.limit = 0;
    }
    Ok(t)
}

fn limits(ctx: &Ctx) -> StreamLimits {
    StreamLimits {
        max_bytes: ctx.st.config.stream_node_max_bytes.min(usize::MAX as u64) as usize,
        max_entries: ctx.st.config.stream_node_max_entries,
    }
}

/// The stream at `key` for a write: Ok(None) when missing, Err for another type.
fn write_stream<'a>(
    ctx: &'a mut Ctx,
    key: &[u8],
) -> Result<Option<&'a mut StreamValue>, &'static str> {
    match ctx.lookup_write(key) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Stream(s) => Ok(Some(s)),
            _ => Err(ERR_WRONGTYPE),
        },
    }
}

// ----- replies -----

/// One entry: `[id, [field, value, ...]]`.
fn reply_entry(r: &mut Reply, id: StreamId, pairs: &[Bytes]) {
    r.array(2);
    r.bulk(&id.to_text());
    r.array(pairs.len());
    for p in pairs {
        r.bulk(p);
    }
}

/// The entries from `start` to `end` (or reversed), up to `count` (0: all), as an array.
fn reply_range(
    r: &mut Reply,
    s: &StreamValue,
    start: StreamId,
    end: StreamId,
    rev: bool,
    count: u64,
) {
    // Collected first (cheap: `Bytes` are shared) because the reply starts with the count.
    let mut out: Vec<(StreamId, Vec<Bytes>)> = Vec::new();
    s.range(start, end, rev, count, |id, pairs| {
        out.push((id, pairs.to_vec()));
        true
    });
    r.array(out.len());
    for (id, pairs) in out {
        reply_entry(r, id, &pairs);
    }
}

// ----- commands -----

fn xadd(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let t = match parse_trim_args(ctx, a, true, ctx.st.loading) {
        Ok(t) => t,
        Err(e) => return r.error(&e),
    };
    let field_pos = t.id_at + 1;
    let nargs = a.len().saturating_sub(field_pos);
    if field_pos > a.len() || nargs < 2 || nargs % 2 == 1 {
        return r.error(&super::arity_error("xadd"));
    }
    if t.seq_given && t.id == Some(StreamId::MIN) {
        return r.error("ERR The ID specified in XADD must be greater than 0-0");
    }
    let key = &a[1];
    let lim = limits(ctx);
    let now = ctx.now_ms;
    match write_stream(ctx, key) {
        Err(e) => return r.error(e),
        Ok(None) if t.nomkstream => {
            ctx.dirty(0);
            return r.null();
        }
        Ok(None) => {
            ctx.db()
                .insert(key, Value::Stream(Box::new(StreamValue::new())), 0, now);
        }
        Ok(Some(_)) => {}
    }
    let Ok(Some(s)) = write_stream(ctx, key) else {
        return r.error(ERR_WRONGTYPE);
    };
    // (An error past this point leaves a stream this call created in place, as Redis does; no
    // valid ID can fail on a new stream.)
    if s.last_id == StreamId::MAX {
        ctx.dirty(0);
        return r
            .error("ERR The stream has exhausted the last possible ID, unable to add more items");
    }
    let added = s.add(t.id, t.seq_given, &a[field_pos..], now, lim);
    let id = match added {
        Ok(id) => id,
        Err(e) => {
            ctx.dirty(0);
            return r.error(match e {
                AddError::NotAbove => {
                    "ERR The ID specified in XADD is equal or smaller than the target stream top item"
                }
                AddError::TooLarge => "ERR Elements are too large to be stored",
            });
        }
    };
    r.bulk(&id.to_text());
    ctx.notify(class::STREAM, "xadd", key);
    ctx.dirty(1);
    let mut rewrite: Vec<(usize, Bytes)> = Vec::new();
    if let Some(trim) = t.trim {
        let Ok(Some(s)) = write_stream(ctx, key) else {
            return;
        };
        let deleted = s.trim(trim, t.approx, t.limit as u64);
        let (len, first) = (s.len(), s.first_entry_id_any());
        if deleted > 0 {
            ctx.notify(class::STREAM, "xtrim", key);
        }
        if t.approx {
            rewrite.push((t.trim_at - 1, Bytes::from_static(b"=")));
            rewrite.push((t.trim_at, trim_arg(trim, len, first)));
        }
    }
    if t.id.is_none() || !t.seq_given {
        rewrite.push((t.id_at, Bytes::from(id.to_text())));
    }
    if !rewrite.is_empty() {
        let mut v = a.to_vec();
        for (at, b) in rewrite {
            v[at] = b;
        }
        ctx.propagate_as(v);
    }
}

/// What an approximate trim is logged as: the length it left, or the first ID it left (a
/// deleted entry's included; the largest ID when nothing is left), as Redis logs it.
fn trim_arg(trim: Trim, len: u64, first: StreamId) -> Bytes {
    match trim {
        Trim::MaxLen(_) => Bytes::from(len.to_string()),
        Trim::MinId(_) => Bytes::from(first.to_text()),
    }
}

fn xrange(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    range_generic(ctx, a, r, false)
}

fn xrevrange(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    range_generic(ctx, a, r, true)
}

fn range_generic(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply, rev: bool) {
    let (start_arg, end_arg) = if rev { (&a[3], &a[2]) } else { (&a[2], &a[3]) };
    let (mut start, start_ex) = match interval_id(start_arg, 0) {
        Ok(x) => x,
        Err(e) => return r.error(e),
    };
    if start_ex {
        match start.next() {
            Some(n) => start = n,
            None => return r.error("ERR invalid start ID for the interval"),
        }
    }
    let (mut end, end_ex) = match interval_id(end_arg, u64::MAX) {
        Ok(x) => x,
        Err(e) => return r.error(e),
    };
    if end_ex {
        match end.prev() {
            Some(p) => end = p,
            None => return r.error("ERR invalid end ID for the interval"),
        }
    }
    let mut count: i64 = -1;
    let mut j = 4;
    while j < a.len() {
        if eq_ic(&a[j], "count") && j + 1 < a.len() {
            match ll_arg(&a[j + 1]) {
                Ok(n) => count = n.max(0),
                Err(e) => return r.error(e),
            }
            j += 2;
        } else {
            return r.error(ERR_SYNTAX);
        }
    }
    let Some(e) = ctx.lookup_read(&a[1]) else {
        return r.array(0);
    };
    let Value::Stream(s) = &e.value else {
        return r.error(ERR_WRONGTYPE);
    };
    if count == 0 {
        return r.null_array();
    }
    let count = if count < 0 { 0 } else { count as u64 };
    reply_range(r, s, start, end, rev, count);
}

fn xlen(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    match ctx.lookup_read(&a[1]) {
        None => r.int(0),
        Some(e) => match &e.value {
            Value::Stream(s) => r.int(s.len() as i64),
            _ => r.error(ERR_WRONGTYPE),
        },
    }
}

fn xdel(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let key = &a[1];
    match write_stream(ctx, key) {
        Err(e) => return r.error(e),
        Ok(None) => {
            ctx.dirty(0);
            return r.int(0);
        }
        Ok(Some(_)) => {}
    }
    let mut ids = Vec::with_capacity(a.len() - 2);
    for arg in &a[2..] {
        match strict_id(arg) {
            Ok(id) => ids.push(id),
            Err(e) => {
                ctx.dirty(0);
                return r.error(e);
            }
        }
    }
    let Ok(Some(s)) = write_stream(ctx, key) else {
        return;
    };
    let deleted = s.delete_ids(&ids);
    if deleted > 0 {
        ctx.notify(class::STREAM, "xdel", key);
    }
    ctx.dirty(deleted);
    r.int(deleted as i64);
}

fn xtrim(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let t = match parse_trim_args(ctx, a, false, ctx.st.loading) {
        Ok(t) => t,
        Err(e) => {
            ctx.dirty(0);
            return r.error(&e);
        }
    };
    let key = &a[1];
    let s = match write_stream(ctx, key) {
        Err(e) => {
            ctx.dirty(0);
            return r.error(e);
        }
        Ok(None) => {
            ctx.dirty(0);
            return r.int(0);
        }
        Ok(Some(s)) => s,
    };
    let Some(trim) = t.trim else {
        return r.int(0);
    };
    let deleted = s.trim(trim, t.approx, t.limit as u64);
    let (len, first) = (s.len(), s.first_entry_id_any());
    if deleted > 0 {
        ctx.notify(class::STREAM, "xtrim", key);
        if t.approx {
            let mut v = a.to_vec();
            v[t.trim_at - 1] = Bytes::from_static(b"=");
            v[t.trim_at] = trim_arg(trim, len, first);
            ctx.propagate_as(v);
        }
    }
    ctx.dirty(deleted);
    r.int(deleted as i64);
}

fn xsetid(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let fail = |ctx: &mut Ctx, r: &mut Reply, e: &str| {
        ctx.dirty(0);
        r.error(e)
    };
    let id = match strict_id(&a[2]) {
        Ok(id) => id,
        Err(e) => return fail(ctx, r, e),
    };
    let mut entries_added: i64 = -1;
    let mut max_xdel = StreamId::MIN;
    let mut i = 3;
    while i < a.len() {
        let more = a.len() - 1 - i;
        if eq_ic(&a[i], "entriesadded") && more > 0 {
            match ll_arg(&a[i + 1]) {
                Err(e) => return fail(ctx, r, e),
                Ok(n) if n < 0 => return fail(ctx, r, "ERR entries_added must be positive"),
                Ok(n) => entries_added = n,
            }
            i += 2;
        } else if eq_ic(&a[i], "maxdeletedid") && more > 0 {
            match strict_id(&a[i + 1]) {
                Err(e) => return fail(ctx, r, e),
                Ok(m) if id < m => {
                    return fail(
                        ctx,
                        r,
                        "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                    )
                }
                Ok(m) => max_xdel = m,
            }
            i += 2;
        } else {
            return fail(ctx, r, ERR_SYNTAX);
        }
    }
    let s = match write_stream(ctx, &a[1]) {
        Err(e) => return fail(ctx, r, e),
        Ok(None) => return fail(ctx, r, ERR_NO_SUCH_KEY),
        Ok(Some(s)) => s,
    };
    if !s.is_empty() {
        if id < s.last_valid_id() {
            return fail(
                ctx,
                r,
                "ERR The ID specified in XSETID is smaller than the target stream top item",
            );
        }
        if entries_added != -1 && s.len() > entries_added as u64 {
            return fail(
                ctx,
                r,
                "ERR The entries_added specified in XSETID is smaller than the target stream length",
            );
        }
    }
    s.last_id = id;
    if entries_added != -1 {
        s.entries_added = entries_added as u64;
    }
    if max_xdel != StreamId::MIN {
        s.max_deleted_id = max_xdel;
    }
    ctx.notify(class::STREAM, "xsetid", &a[1]);
    ctx.dirty(1);
    r.ok();
}

// ----- XREAD -----

/// XREAD's and XREADGROUP's parsed options.
pub struct XreadArgs {
    /// BLOCK's milliseconds (None: no BLOCK).
    pub block_ms: Option<i64>,
    pub count: u64,
    /// Where the keys start, and how many streams.
    pub keys_at: usize,
    pub n: usize,
    /// XREADGROUP's NOACK.
    pub noack: bool,
    /// XREADGROUP's GROUP group consumer.
    pub group: Option<(Bytes, Bytes)>,
}

/// Parses XREAD's options up to STREAMS (Redis's order of checks), without the IDs.
pub fn parse_xread(a: &[Bytes], in_script: bool) -> Result<XreadArgs, String> {
    parse_read_options(a, in_script, false)
}

/// The one parser of XREAD's and XREADGROUP's options (Redis parses both in one function):
/// up to STREAMS, in Redis's order of checks, without the IDs. GROUP and NOACK are XREADGROUP's
/// only; its missing GROUP is the caller's error to give (after the syntax checks here).
pub fn parse_read_options(
    a: &[Bytes],
    in_script: bool,
    xreadgroup: bool,
) -> Result<XreadArgs, String> {
    let mut x = XreadArgs {
        block_ms: None,
        count: 0,
        keys_at: 0,
        n: 0,
        noack: false,
        group: None,
    };
    let mut i = 1;
    while i < a.len() {
        let more = a.len() - i - 1;
        let o = &a[i];
        if eq_ic(o, "block") && more > 0 {
            if in_script {
                return Err(format!(
                    "ERR {} command is not allowed with BLOCK option from scripts",
                    String::from_utf8_lossy(super::args::c_str(&a[0]))
                ));
            }
            i += 1;
            let t = parse_i64(&a[i]).ok_or("ERR timeout is not an integer or out of range")?;
            if t < 0 {
                return Err("ERR timeout is negative".into());
            }
            x.block_ms = Some(t);
        } else if eq_ic(o, "count") && more > 0 {
            i += 1;
            x.count = ll_arg(&a[i])?.max(0) as u64;
        } else if eq_ic(o, "streams") && more > 0 {
            x.keys_at = i + 1;
            let rest = a.len() - x.keys_at;
            if !rest.is_multiple_of(2) {
                // XREADGROUP's is worded as XREAD's in Redis 7.0.
                return Err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.".into());
            }
            x.n = rest / 2;
            break;
        } else if eq_ic(o, "group") && more >= 2 {
            if !xreadgroup {
                return Err(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
                        .into(),
                );
            }
            x.group = Some((a[i + 1].clone(), a[i + 2].clone()));
            i += 2;
        } else if eq_ic(o, "noack") {
            if !xreadgroup {
                return Err(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
                        .into(),
                );
            }
            x.noack = true;
        } else {
            return Err(ERR_SYNTAX.into());
        }
        i += 1;
    }
    if x.keys_at == 0 {
        return Err(ERR_SYNTAX.into());
    }
    Ok(x)
}

/// Resolves XREAD's IDs (`$` is the stream's last ID now, 0-0 for a missing key), checking
/// each key's type first, as Redis does key by key.
pub fn resolve_xread_ids(
    ctx: &mut Ctx,
    a: &[Bytes],
    x: &XreadArgs,
) -> Result<Vec<StreamId>, &'static str> {
    let mut ids = Vec::with_capacity(x.n);
    for k in 0..x.n {
        let key = &a[x.keys_at + k];
        let arg = &a[x.keys_at + x.n + k];
        let last = match ctx.lookup_read(key) {
            None => None,
            Some(e) => match &e.value {
                Value::Stream(s) => Some(s.last_id),
                _ => return Err(ERR_WRONGTYPE),
            },
        };
        if &arg[..] == b"$" {
            ids.push(last.unwrap_or_default());
        } else if &arg[..] == b">" {
            return Err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.");
        } else {
            ids.push(strict_id(arg)?);
        }
    }
    Ok(ids)
}

/// Replies with the entries above `ids[k]` of every stream that has some; false (nothing
/// written) when none has.
pub fn xread_serve(
    ctx: &mut Ctx,
    a: &[Bytes],
    x: &XreadArgs,
    ids: &[StreamId],
    r: &mut Reply,
) -> bool {
    let mut ready = Vec::new();
    for k in 0..x.n {
        let key = &a[x.keys_at + k];
        let Some(e) = ctx.lookup_read(key) else {
            continue;
        };
        let Value::Stream(s) = &e.value else { continue };
        if !s.is_empty() && s.last_valid_id() > ids[k] {
            ready.push(k);
        }
    }
    if ready.is_empty() {
        return false;
    }
    if r.resp3 {
        r.map(ready.len());
    } else {
        r.array(ready.len());
    }
    for k in ready {
        let key = &a[x.keys_at + k];
        if !r.resp3 {
            r.array(2);
        }
        r.bulk(key);
        let db = ctx.db;
        let now = ctx.now_ms;
        let Some(e) = ctx.st.dbs[db].lookup_notouch(key, now) else {
            r.array(0);
            continue;
        };
        let Value::Stream(s) = &e.value else {
            r.array(0);
            continue;
        };
        let start = ids[k].next().unwrap_or_default();
        reply_range(r, s, start, StreamId::MAX, false, x.count);
    }
    true
}

fn xread(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let x = match parse_xread(
        a,
        crate::scripting::lua::in_script() || super::sort_family::running_from_script(),
    ) {
        Ok(x) => x,
        Err(e) => return r.error(&e),
    };
    let ids = match resolve_xread_ids(ctx, a, &x) {
        Ok(ids) => ids,
        Err(e) => return r.error(e),
    };
    if !xread_serve(ctx, a, &x, &ids, r) {
        r.null_array();
    }
}

// ----- XINFO -----

const XINFO_HELP: &[&str] = &[
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
];

fn xinfo(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let sub = &a[1];
    if eq_ic(sub, "help") {
        return super::reply_help(r, "xinfo", XINFO_HELP);
    }
    if eq_ic(sub, "stream") {
        return xinfo_stream(ctx, a, r);
    }
    if eq_ic(sub, "groups") || eq_ic(sub, "consumers") {
        return super::stream_group_family::xinfo_groups(ctx, a, r);
    }
    r.error(&super::unknown_subcommand_error(sub, "xinfo"))
}

fn xinfo_stream(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let Some(e) = ctx.lookup_read(&a[2]) else {
        return r.error(ERR_NO_SUCH_KEY);
    };
    let Value::Stream(s) = &e.value else {
        return r.error(ERR_WRONGTYPE);
    };
    let mut full = false;
    let mut count: i64 = 10;
    if a.len() > 3 {
        let bad = !eq_ic(&a[3], "full")
            || (a.len() != 4 && a.len() != 6)
            || (a.len() == 6 && !eq_ic(&a[4], "count"));
        if bad {
            return r.error(&super::subcommand_syntax_error(&a[1], "xinfo"));
        }
        full = true;
        if a.len() == 6 {
            match ll_arg(&a[5]) {
                Ok(n) => count = n.max(0),
                Err(e) => return r.error(e),
            }
        }
    }
    let fields = if full { 9 } else { 10 };
    r.map(fields);
    r.bulk(b"length");
    r.int(s.len() as i64);
    r.bulk(b"radix-tree-keys");
    r.int(s.node_count() as i64);
    r.bulk(b"radix-tree-nodes");
    r.int(rax_nodes(s) as i64);
    r.bulk(b"last-generated-id");
    r.bulk(&s.last_id.to_text());
    r.bulk(b"max-deleted-entry-id");
    r.bulk(&s.max_deleted_id.to_text());
    r.bulk(b"entries-added");
    r.int(s.entries_added as i64);
    r.bulk(b"recorded-first-entry-id");
    r.bulk(&s.first_id.to_text());
    if full {
        r.bulk(b"entries");
        reply_range(r, s, StreamId::MIN, StreamId::MAX, false, count as u64);
        r.bulk(b"groups");
        super::stream_group_family::xinfo_full_groups(r, s, count);
    } else {
        r.bulk(b"groups");
        r.int(s.groups.len() as i64);
        for (label, first) in [(&b"first-entry"[..], true), (b"last-entry", false)] {
            r.bulk(label);
            let (start, end) = (StreamId::MIN, StreamId::MAX);
            let n = {
                let mut one: Option<(StreamId, Vec<Bytes>)> = None;
                s.range(start, end, !first, 1, |id, pairs| {
                    one = Some((id, pairs.to_vec()));
                    false
                });
                one
            };
            match n {
                Some((id, pairs)) => reply_entry(r, id, &pairs),
                None => r.null(),
            }
        }
    }
}

/// How many nodes Redis's radix tree has for the stream's node keys (16-byte big-endian IDs):
/// the root, then one node per child of every branching point, and one per compressed run.
/// This is the count of a tree built by insertions only, as a freshly loaded stream has.
pub fn rax_nodes(s: &StreamValue) -> u64 {
    let keys: Vec<[u8; 16]> = s.nodes.keys().map(|k| k.to_be_bytes()).collect();
    if keys.is_empty() {
        return 1;
    }
    fn count(keys: &[[u8; 16]], d: usize) -> u64 {
        if d == 16 {
            return 1;
        }
        let (first, last) = (&keys[0], &keys[keys.len() - 1]);
        let mut lcp = d;
        while lcp < 16 && first[lcp] == last[lcp] {
            lcp += 1;
        }
        if lcp > d {
            return 1 + count(keys, lcp);
        }
        let mut n = 1;
        let mut i = 0;
        while i < keys.len() {
            let b = keys[i][d];
            let j = i + keys[i..].iter().take_while(|k| k[d] == b).count();
            n += count(&keys[i..j], d + 1);
            i = j;
        }
        n
    }
    count(&keys, 0)
}

// ----- XREAD BLOCK (driven by `blocking_family`) -----

/// Whether this XREAD blocks when there is nothing to read (it has a BLOCK option that
/// parses): otherwise it runs as an ordinary command.
pub fn xread_blocks(a: &[Bytes]) -> bool {
    let mut i = 1;
    while i + 1 < a.len() {
        if eq_ic(&a[i], "block") {
            return true;
        }
        if eq_ic(&a[i], "count") {
            i += 2;
        } else {
            return false;
        }
    }
    false
}

/// XREAD BLOCK's checks before it runs: the options' errors, and the timeout (None: forever).
pub fn xread_timeout(a: &[Bytes]) -> Result<Option<std::time::Duration>, String> {
    let x = parse_xread(a, false)?;
    Ok(match x.block_ms {
        Some(ms) if ms > 0 => Some(std::time::Duration::from_millis(ms as u64)),
        _ => None,
    })
}

/// How many entries a blocked XREAD without COUNT gets when served (Redis's
/// `XREAD_BLOCKED_DEFAULT_COUNT`): a low ID must not make the server reply with a whole stream.
const XREAD_BLOCKED_DEFAULT_COUNT: &[u8] = b"1000";

/// The arguments an XREAD waits with once it blocks: `$` replaced by the last ID each stream
/// has now (0-0 for a missing key; `last(key)` says, None for a key of another type, which
/// keeps its `$` and fails when served), and COUNT 1000 when it had none.
pub fn blocked_xread_args(
    a: &[Bytes],
    last: impl Fn(&[u8]) -> Option<Option<StreamId>>,
) -> Vec<Bytes> {
    let mut v = a.to_vec();
    let Ok(x) = parse_xread(a, false) else {
        return v;
    };
    for k in 0..x.n {
        let at = x.keys_at + x.n + k;
        if &v[at][..] == b"$" {
            if let Some(id) = last(&a[x.keys_at + k]) {
                v[at] = Bytes::from(id.unwrap_or_default().to_text());
            }
        }
    }
    if x.count == 0 {
        v.insert(1, Bytes::from_static(b"COUNT"));
        v.insert(2, Bytes::from_static(XREAD_BLOCKED_DEFAULT_COUNT));
    }
    v
}

/// A blocked XREAD or XREADGROUP narrowed to the key that became ready (Redis replies with
/// that stream only).
pub fn narrow_read(a: &[Bytes], key: &[u8]) -> Vec<Bytes> {
    // The XREADGROUP parse accepts XREAD's options too: only where the keys start matters.
    let Ok(x) = parse_read_options(a, false, true) else {
        return a.to_vec();
    };
    let Some(k) = (0..x.n).find(|&k| &a[x.keys_at + k][..] == key) else {
        return a.to_vec();
    };
    let mut v = a[..x.keys_at].to_vec();
    v.push(a[x.keys_at + k].clone());
    v.push(a[x.keys_at + x.n + k].clone());
    v
}

/// Serves an XREAD (blocked or trying before it blocks): true with the reply written (entries,
/// or an error), false with nothing written when no stream has entries above its ID.
pub fn try_xread(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) -> bool {
    let x = match parse_xread(a, false) {
        Ok(x) => x,
        Err(e) => {
            r.error(&e);
            return true;
        }
    };
    let ids = match resolve_xread_ids(ctx, a, &x) {
        Ok(ids) => ids,
        Err(e) => {
            r.error(e);
            return true;
        }
    };
    xread_serve(ctx, a, &x, &ids, r)
}

/// Serves a blocked XREAD narrowed to the one stream that became ready (Redis's
/// `serveClientsBlockedOnStreamKey`): served once the stream's last ID is above the waited ID,
/// with the entries after it (none, if those that moved the last ID are gone already), as a
/// one-stream reply. The lookup is not counted in the keyspace statistics. False, with nothing
/// written, while the waiter must go on waiting.
pub fn serve_blocked_xread(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) -> bool {
    let Ok(x) = parse_xread(a, false) else {
        return false;
    };
    if x.n != 1 {
        return false;
    }
    let key = &a[x.keys_at];
    let Ok(gt) = strict_id(&a[x.keys_at + 1]) else {
        return false;
    };
    let Some(e) = ctx.lookup_write(key) else {
        return false;
    };
    let Value::Stream(s) = &e.value else {
        return false;
    };
    if s.last_id <= gt {
        return false;
    }
    if r.resp3 {
        r.map(1);
    } else {
        r.array(1);
        r.array(2);
    }
    r.bulk(key);
    let start = gt.next().unwrap_or_default();
    reply_range(r, s, start, StreamId::MAX, false, x.count);
    true
}

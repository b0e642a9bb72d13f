//! Stream consumer-group commands (Redis 7.0's t_stream.c): XGROUP (CREATE, SETID, DESTROY,
//! CREATECONSUMER, DELCONSUMER, HELP), XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, and the
//! group parts of XINFO (GROUPS, CONSUMERS, the `groups` of STREAM FULL), which the XINFO
//! container of `stream_family` calls.
//!
//! Owns argument parsing in Redis's order of checks (the same bad command gets the same error),
//! the replies, keyspace events (`xgroup-*`), dirty counts and the explicit modified-key signals
//! (Redis signals none for group changes, so these commands are declared `OWN_SIGNALS` and
//! WATCH does not see them). `types::stream_groups` owns the group state and its rules;
//! `types::stream` owns the entries. Nothing here touches stream nodes. Times come from the
//! command's `now_ms`, except while loading (AOF replay runs with a stopped clock so that
//! nothing expires): delivery and seen-times are then the wall clock's, as in Redis.
//!
//! Every handler runs on the shard that owns its keys (XREADGROUP over keys of several shards
//! runs as one transaction with copies of the foreign values); none may panic on any argument.
//!
//! XREADGROUP, XCLAIM and XAUTOCLAIM depend on the clock and are never logged as themselves:
//! while the AOF is on they propagate what they changed (`Ctx::propagate_as`) as Redis 7.0
//! does, an idempotent `XCLAIM ... TIME t RETRYCOUNT n FORCE JUSTID LASTID id` per pending
//! entry they created, moved, or dropped because its entry was deleted, `XGROUP SETID ...
//! ENTRIESREAD n` where the group's position moved without such a claim (NOACK, LASTID), and
//! `XGROUP CREATECONSUMER` for a consumer no claim creates. Where Redis 7.0's records replay
//! to a different group state, one more record keeps it exact: an XGROUP SETID after the
//! claims of a read that moved the group's entries-read counter (XCLAIM's LASTID does not
//! move it), and for history reads (`XREADGROUP ... 0`, which Redis does not propagate) the
//! claims of the delivery counts and times they bumped and the consumer they created.

use bytes::Bytes;

use super::args::{c_str, eq_ic, parse_i64, ERR_SYNTAX, ERR_WRONGTYPE};
use super::class;
use super::{
    cmd, flags::*, sub, BeginSearch, CommandSpec, Ctx, Exec, FindKeys, KeySpec, SubCommand, KEY1,
};
use crate::protocol::Reply;
use crate::types::stream_groups::{Group, Nack, StreamMeta, ENTRIES_READ_INVALID};
use crate::types::stream_id::StreamId;
use crate::types::{StreamValue, Value};

const ERR_INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
const ERR_XGROUP_NOKEY: &str = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";
const ERR_ENTRIESREAD: &str = "ERR value for ENTRIESREAD must be positive or -1";

const XREADGROUP_KEYS: &[KeySpec] = &[KeySpec::new(
    &["RO", "access"],
    BeginSearch::Keyword("STREAMS", 4),
    FindKeys::Range(-1, 1, 2),
)];

const XGROUP_SUBCOMMANDS: &[SubCommand] = &[
    sub("xgroup|create", -5)
        .flags(WRITE | DENYOOM)
        .key_at(2, &["RW", "insert"])
        .docs("5.0.0", "O(1)", "Creates a consumer group."),
    sub("xgroup|createconsumer", 5)
        .flags(WRITE | DENYOOM)
        .key_at(2, &["RW", "insert"])
        .docs("6.2.0", "O(1)", "Creates a consumer in a consumer group."),
    sub("xgroup|delconsumer", 5)
        .flags(WRITE)
        .key_at(2, &["RW", "delete"])
        .docs("5.0.0", "O(1)", "Deletes a consumer from a consumer group."),
    sub("xgroup|destroy", 4)
        .flags(WRITE)
        .key_at(2, &["RW", "delete"])
        .docs(
            "5.0.0",
            "O(N) where N is the number of entries in the group's pending entries list (PEL).",
            "Destroys a consumer group.",
        ),
    sub("xgroup|help", 2).flags(LOADING | STALE).docs(
        "5.0.0",
        "O(1)",
        "Returns helpful text about the different subcommands.",
    ),
    sub("xgroup|setid", -5)
        .flags(WRITE)
        .key_at(2, &["RW", "update"])
        .docs(
            "5.0.0",
            "O(1)",
            "Sets the last-delivered ID of a consumer group.",
        ),
];

pub fn specs() -> Vec<CommandSpec> {
    let g = "stream";
    vec![
        cmd(
            "xgroup",
            -2,
            // WRITE here makes the shard count and log its changes; COMMAND INFO reports a
            // container's flags and keys per subcommand, as Redis does.
            WRITE | OWN_SIGNALS,
            (2, 2, 1),
            g,
            "5.0.0",
            "Depends on subcommand.",
            "A container for consumer groups commands.",
            Exec::Shard(xgroup),
        )
        .subcommands(XGROUP_SUBCOMMANDS),
        cmd(
            "xreadgroup",
            -7,
            WRITE | BLOCKING | OWN_SIGNALS,
            (0, 0, 0),
            g,
            "5.0.0",
            "For each stream mentioned: O(M) with M being the number of elements returned. If M is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1). On the other side when XREADGROUP blocks, XADD will pay the O(N) time in order to serve the N clients blocked on the stream getting new data.",
            "Returns new or historical entries of streams for a consumer in a group; can block until some arrive.",
            Exec::Shard(xreadgroup),
        )
        .movable_keys(super::stream_family::xread_keys)
        .key_specs(XREADGROUP_KEYS),
        cmd(
            "xack",
            -4,
            WRITE | FAST | OWN_SIGNALS,
            KEY1,
            g,
            "5.0.0",
            "O(1) for each message ID processed.",
            "Acknowledges pending entries of a consumer group, removing them from its PEL.",
            Exec::Shard(xack),
        )
        .key_flags(&["RW", "update"]),
        cmd(
            "xpending",
            -3,
            READONLY,
            KEY1,
            g,
            "5.0.0",
            "O(N) with N being the number of elements returned, so asking for a small fixed number of entries per call is O(1). O(M), where M is the total number of entries scanned when used with the IDLE filter. When the command returns just the summary and the list of consumers is small, it runs in O(1) time; otherwise, an additional O(N) time for iterating every consumer.",
            "Lists or summarises the pending entries of a consumer group.",
            Exec::Shard(xpending),
        )
        .tips(&["nondeterministic_output"])
        .key_flags(&["RO", "access"]),
        cmd(
            "xclaim",
            -6,
            WRITE | FAST | OWN_SIGNALS,
            KEY1,
            g,
            "5.0.0",
            "O(log N) with N being the number of messages in the PEL of the consumer group.",
            "Transfers pending entries of a consumer group to another consumer.",
            Exec::Shard(xclaim),
        )
        .tips(&["nondeterministic_output"])
        .key_flags(&["RW", "update"]),
        cmd(
            "xautoclaim",
            -6,
            WRITE | FAST | OWN_SIGNALS,
            KEY1,
            g,
            "6.2.0",
            "O(1) if COUNT is small.",
            "Transfers the pending entries idle long enough to another consumer, scanning like SCAN.",
            Exec::Shard(xautoclaim),
        )
        .tips(&["nondeterministic_output"])
        .key_flags(&["RW", "delete"]),
    ]
}

// ----- helpers -----

/// The time delivery and seen-times are set to (see the module's doc).
fn clock(ctx: &Ctx) -> i64 {
    if ctx.st.loading {
        crate::server::globals::unix_ms() as i64
    } else {
        ctx.now_ms as i64
    }
}

/// Redis's `streamGenericParseIDOrReply` for the group commands: `-`/`+` unless strict, then
/// `<ms>[-<seq>]` (the text up to its first NUL).
fn parse_id(arg: &[u8], missing_seq: u64, strict: bool) -> Result<StreamId, &'static str> {
    if arg.len() > 127 {
        return Err(ERR_INVALID_ID);
    }
    let s = c_str(arg);
    if s == b"-" || s == b"+" {
        if strict {
            return Err(ERR_INVALID_ID);
        }
        return Ok(if s == b"-" {
            StreamId::MIN
        } else {
            StreamId::MAX
        });
    }
    StreamId::parse(s, missing_seq).ok_or(ERR_INVALID_ID)
}

fn strict_id(arg: &[u8]) -> Result<StreamId, &'static str> {
    parse_id(arg, 0, true)
}

/// A range bound (`streamParseIntervalIDOrReply`): a leading `(` makes it exclusive (then
/// strict). Returns the ID and whether it was exclusive.
fn interval_id(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), &'static str> {
    if arg.len() > 1 && arg[0] == b'(' {
        Ok((parse_id(&arg[1..], missing_seq, true)?, true))
    } else {
        Ok((parse_id(arg, missing_seq, false)?, false))
    }
}

/// Redis's `streamIncrID`: the next ID, wrapping to 0-0 past the largest.
fn incr_id(id: StreamId) -> StreamId {
    id.next().unwrap_or(StreamId::MIN)
}

/// The error naming a key and a group as Redis's `%s` prints them (up to a NUL byte).
fn nogroup_key_group(key: &[u8], group: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut e = b"NOGROUP No such key '".to_vec();
    e.extend_from_slice(c_str(key));
    e.extend_from_slice(b"' or consumer group '");
    e.extend_from_slice(c_str(group));
    e.push(b'\'');
    e.extend_from_slice(tail);
    e
}

fn nogroup_for_key(group: &[u8], key: &[u8]) -> Vec<u8> {
    let mut e = b"NOGROUP No such consumer group '".to_vec();
    e.extend_from_slice(c_str(group));
    e.extend_from_slice(b"' for key name '");
    e.extend_from_slice(c_str(key));
    e.push(b'\'');
    e
}

/// The counters of `s` the lag estimate reads.
pub fn meta(s: &StreamValue) -> StreamMeta {
    StreamMeta {
        length: s.length,
        entries_added: s.entries_added,
        max_deleted: s.max_deleted_id,
        first_id: s.first_id,
        last_id: s.last_id,
    }
}

/// One entry, `[id, [field, value, ...]]`.
fn reply_entry(r: &mut Reply, id: StreamId, pairs: &[Bytes]) {
    r.array(2);
    r.bulk(&id.to_text());
    r.array(pairs.len());
    for p in pairs {
        r.bulk(p);
    }
}

/// The fields of entry `id`, if it is in the stream.
fn entry(s: &StreamValue, id: StreamId) -> Option<Vec<Bytes>> {
    let mut out = None;
    s.range(id, id, false, 1, |_, pairs| {
        out = Some(pairs.to_vec());
        false
    });
    out
}

/// Looks a key up for a group command: Ok(None) when missing, Err on another type.
fn stream_at<'a>(
    ctx: &'a mut Ctx,
    key: &[u8],
    write: bool,
) -> Result<Option<&'a mut StreamValue>, &'static str> {
    let e = if write {
        ctx.lookup_write(key)
    } else {
        ctx.lookup_read(key)
    };
    match e {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Stream(s) => Ok(Some(s)),
            _ => Err(ERR_WRONGTYPE),
        },
    }
}

// ----- propagation (AOF) -----

/// An ID as propagated records name it (`<ms>-<seq>`).
fn id_arg(id: StreamId) -> Bytes {
    Bytes::from(id.to_text())
}

/// Redis's `streamPropagateXCLAIM`: the idempotent XCLAIM that gives pending entry `id` of
/// `group` the owner, delivery time and count `n` has (FORCE creates the pending entry where it
/// is missing, JUSTID fetches nothing) and moves the group's last ID up to `last`; for an
/// entry no longer in the stream, it drops the pending entry at replay as it did here.
fn claim_record(key: &Bytes, group: &Bytes, id: Bytes, n: &Nack, last: StreamId) -> Vec<Bytes> {
    let mut num = itoa::Buffer::new();
    let time = Bytes::copy_from_slice(num.format(n.delivery_time).as_bytes());
    let count = Bytes::copy_from_slice(num.format(n.delivery_count).as_bytes());
    vec![
        Bytes::from_static(b"XCLAIM"),
        key.clone(),
        group.clone(),
        n.consumer.clone(),
        Bytes::from_static(b"0"),
        id,
        Bytes::from_static(b"TIME"),
        time,
        Bytes::from_static(b"RETRYCOUNT"),
        count,
        Bytes::from_static(b"FORCE"),
        Bytes::from_static(b"JUSTID"),
        Bytes::from_static(b"LASTID"),
        id_arg(last),
    ]
}

/// Redis's `streamPropagateGroupID`: the group's last ID and entries-read counter.
fn set_id_record(key: &Bytes, group: &Bytes, g: &Group) -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"XGROUP"),
        Bytes::from_static(b"SETID"),
        key.clone(),
        group.clone(),
        id_arg(g.last_id),
        Bytes::from_static(b"ENTRIESREAD"),
        Bytes::copy_from_slice(itoa::Buffer::new().format(g.entries_read).as_bytes()),
    ]
}

/// Redis's `streamPropagateConsumerCreation`.
fn create_consumer_record(key: &Bytes, group: &Bytes, consumer: &Bytes) -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"XGROUP"),
        Bytes::from_static(b"CREATECONSUMER"),
        key.clone(),
        group.clone(),
        consumer.clone(),
    ]
}

// ----- XGROUP -----

const XGROUP_HELP: &[&str] = &[
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
];

fn xgroup(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    ctx.dirty(0);
    let opt = &a[1];
    let syntax = || super::subcommand_syntax_error(opt, "xgroup");
    let mut mkstream = false;
    let mut entries_read = ENTRIES_READ_INVALID;
    let mut exists = false;
    let mut has_group = false;
    if a.len() >= 4 {
        if eq_ic(opt, "create") {
            let mut i = 5;
            while i < a.len() {
                if eq_ic(&a[i], "mkstream") {
                    mkstream = true;
                    i += 1;
                } else if eq_ic(&a[i], "entriesread") && i + 1 < a.len() {
                    match super::stream_family::ll_arg(&a[i + 1]) {
                        Ok(n) => entries_read = n,
                        Err(e) => return r.error(e),
                    }
                    if entries_read < 0 && entries_read != ENTRIES_READ_INVALID {
                        return r.error(ERR_ENTRIESREAD);
                    }
                    i += 2;
                } else {
                    return r.error(&syntax());
                }
            }
        }
        match stream_at(ctx, &a[2], true) {
            Err(e) => return r.error(e),
            Ok(None) => {}
            Ok(Some(s)) => {
                exists = true;
                has_group = s.groups.get(&a[3]).is_some();
            }
        }
        if !mkstream {
            if !exists {
                return r.error(ERR_XGROUP_NOKEY);
            }
            if !has_group
                && (eq_ic(opt, "setid")
                    || eq_ic(opt, "createconsumer")
                    || eq_ic(opt, "delconsumer"))
            {
                return r.error_bytes(&nogroup_for_key(&a[3], &a[2]));
            }
        }
    }
    let key = &a[2.min(a.len() - 1)];
    if a.len() == 2 && eq_ic(opt, "help") {
        super::reply_help(r, "xgroup", XGROUP_HELP);
    } else if eq_ic(opt, "create") && (5..=8).contains(&a.len()) {
        let id = if &a[4][..] == b"$" {
            None
        } else {
            match strict_id(&a[4]) {
                Ok(id) => Some(id),
                Err(e) => return r.error(e),
            }
        };
        if !exists {
            let now = ctx.now_ms;
            ctx.db().insert(key, Value::Stream(Box::default()), 0, now);
            ctx.db().touch(key);
        }
        let Ok(Some(s)) = stream_at(ctx, key, true) else {
            return r.error(ERR_WRONGTYPE);
        };
        let id = id.unwrap_or(s.last_id);
        if s.groups.create(&a[3], id, entries_read) {
            ctx.dirty(1);
            ctx.notify(class::STREAM, "xgroup-create", key);
            r.ok();
        } else {
            r.error("BUSYGROUP Consumer Group name already exists");
        }
    } else if eq_ic(opt, "setid") && (a.len() == 5 || a.len() == 7) {
        let Ok(Some(s)) = stream_at(ctx, key, true) else {
            return r.error(ERR_WRONGTYPE);
        };
        let id = if &a[4][..] == b"$" {
            s.last_id
        } else {
            match parse_id(&a[4], 0, false) {
                Ok(id) => id,
                Err(e) => return r.error(e),
            }
        };
        if a.len() == 7 {
            if !eq_ic(&a[5], "entriesread") {
                return r.error(&syntax());
            }
            // Redis 7.0 answers a non-integer here with two errors (the number's, then the
            // syntax error), which desynchronises the client; Tessera sends the first only.
            match super::stream_family::ll_arg(&a[6]) {
                Ok(n) => entries_read = n,
                Err(e) => return r.error(e),
            }
            if entries_read < 0 && entries_read != ENTRIES_READ_INVALID {
                return r.error(ERR_ENTRIESREAD);
            }
        }
        if let Some(g) = s.groups.get_mut(&a[3]) {
            g.last_id = id;
            g.entries_read = entries_read;
        }
        ctx.dirty(1);
        ctx.notify(class::STREAM, "xgroup-setid", key);
        r.ok();
    } else if eq_ic(opt, "destroy") && a.len() == 4 {
        let Ok(Some(s)) = stream_at(ctx, key, true) else {
            return r.error(ERR_WRONGTYPE);
        };
        if s.groups.destroy(&a[3]) {
            ctx.dirty(1);
            ctx.notify(class::STREAM, "xgroup-destroy", key);
            r.int(1);
        } else {
            r.int(0);
        }
    } else if eq_ic(opt, "createconsumer") && a.len() == 5 {
        let now = clock(ctx);
        let Ok(Some(s)) = stream_at(ctx, key, true) else {
            return r.error(ERR_WRONGTYPE);
        };
        let created = s
            .groups
            .get_mut(&a[3])
            .is_some_and(|g| g.create_consumer(&a[4], now));
        if created {
            ctx.dirty(1);
            ctx.notify(class::STREAM, "xgroup-createconsumer", key);
        }
        r.int(created as i64);
    } else if eq_ic(opt, "delconsumer") && a.len() == 5 {
        let Ok(Some(s)) = stream_at(ctx, key, true) else {
            return r.error(ERR_WRONGTYPE);
        };
        let pending = s.groups.get_mut(&a[3]).and_then(|g| g.del_consumer(&a[4]));
        if let Some(n) = pending {
            ctx.dirty(1);
            ctx.notify(class::STREAM, "xgroup-delconsumer", key);
            r.int(n as i64);
        } else {
            r.int(0);
        }
    } else {
        r.error(&syntax());
    }
}

// ----- XREADGROUP -----

/// XREADGROUP's parsed options.
pub struct ReadGroupArgs {
    pub block_ms: Option<i64>,
    pub count: u64,
    pub noack: bool,
    pub group: Bytes,
    pub consumer: Bytes,
    pub keys_at: usize,
    pub n: usize,
    /// A blocked client's serve: its lookups count no keyspace hits or misses (Redis serves
    /// blocked clients with uncounted lookups).
    pub quiet: bool,
}

/// Parses XREADGROUP's options up to STREAMS, in Redis's order of checks (the parser XREAD
/// shares).
pub fn parse_xreadgroup(a: &[Bytes], in_script: bool) -> Result<ReadGroupArgs, String> {
    let x = super::stream_family::parse_read_options(a, in_script, true)?;
    let Some((group, consumer)) = x.group else {
        return Err("ERR Missing GROUP option for XREADGROUP".into());
    };
    Ok(ReadGroupArgs {
        block_ms: x.block_ms,
        count: x.count,
        noack: x.noack,
        group,
        consumer,
        keys_at: x.keys_at,
        n: x.n,
        quiet: false,
    })
}

/// Resolves XREADGROUP's IDs key by key as Redis does (type, group, then the ID): `>` is
/// [`StreamId::MAX`], as in Redis (an explicit MAX-MAX reads the same way).
pub fn resolve_xreadgroup_ids(
    ctx: &mut Ctx,
    a: &[Bytes],
    x: &ReadGroupArgs,
) -> Result<Vec<StreamId>, Vec<u8>> {
    let mut ids = Vec::with_capacity(x.n);
    for k in 0..x.n {
        let key = &a[x.keys_at + k];
        let arg = &a[x.keys_at + x.n + k];
        match stream_at(ctx, key, x.quiet) {
            Err(e) => return Err(e.as_bytes().to_vec()),
            Ok(Some(s)) if s.groups.get(&x.group).is_some() => {}
            Ok(_) => {
                return Err(nogroup_key_group(
                    key,
                    &x.group,
                    b" in XREADGROUP with GROUP option",
                ))
            }
        }
        if &arg[..] == b"$" {
            return Err(b"ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.".to_vec());
        } else if &arg[..] == b">" {
            ids.push(StreamId::MAX);
        } else {
            ids.push(strict_id(arg).map_err(|e| e.as_bytes().to_vec())?);
        }
    }
    Ok(ids)
}

/// What one stream gives a reader: its entries (`None` fields: a pending entry no longer in the
/// stream).
type Served = Vec<(StreamId, Option<Vec<Bytes>>)>;

/// Serves stream `key` for the group reader: new entries after the group's last ID (`>`,
/// `gt` = MAX) or the consumer's pending entries after `gt`. None when a `>` read finds
/// nothing new (or the key or group went away).
fn serve_one(ctx: &mut Ctx, key: &Bytes, x: &ReadGroupArgs, gt: StreamId) -> Option<Served> {
    let now = clock(ctx);
    let propagating = ctx.propagating();
    let Ok(Some(s)) = stream_at(ctx, key, x.quiet) else {
        return None;
    };
    let m = meta(s);
    let history = gt != StreamId::MAX;
    let start = {
        let g = s.groups.get(&x.group)?;
        if history {
            incr_id(gt)
        } else {
            if !(s.length > 0 && s.last_valid_id() > g.last_id) {
                return None;
            }
            incr_id(g.last_id)
        }
    };
    let mut out: Vec<(StreamId, Option<Vec<Bytes>>)> = Vec::new();
    if history {
        let ids: Vec<StreamId> = s
            .groups
            .get(&x.group)
            .and_then(|g| g.consumers.get(&x.consumer))
            .map(|c| {
                c.pel
                    .range(start..)
                    .take(if x.count == 0 {
                        usize::MAX
                    } else {
                        x.count as usize
                    })
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        for id in ids {
            out.push((id, entry(s, id)));
        }
    } else {
        s.range(start, StreamId::MAX, false, x.count, |id, pairs| {
            out.push((id, Some(pairs.to_vec())));
            true
        });
    }
    let created;
    let mut records: Vec<Vec<Bytes>> = Vec::new();
    {
        let g = s.groups.get_mut(&x.group)?;
        created = g.touch_consumer(&x.consumer, now, true);
        // An acknowledging read of new entries creates the consumer with its first claim.
        if propagating && created && (history || x.noack) {
            records.push(create_consumer_record(key, &x.group, &x.consumer));
        }
        if history {
            for (id, fields) in &out {
                if fields.is_some() {
                    if let Some(n) = g.pel.get_mut(id) {
                        n.delivery_time = now;
                        n.delivery_count = n.delivery_count.wrapping_add(1);
                        if propagating {
                            records.push(claim_record(key, &x.group, id_arg(*id), n, g.last_id));
                        }
                    }
                }
            }
        } else {
            let entries_read = g.entries_read;
            for (id, _) in &out {
                g.advance(*id, &m);
                if !x.noack {
                    g.deliver(*id, &x.consumer, now);
                    if let Some(n) = g.pel.get(id).filter(|_| propagating) {
                        records.push(claim_record(key, &x.group, id_arg(*id), n, g.last_id));
                    }
                }
            }
            if propagating && !out.is_empty() && (x.noack || g.entries_read != entries_read) {
                records.push(set_id_record(key, &x.group, g));
            }
        }
    }
    if created {
        ctx.dirty(1);
        ctx.notify(class::STREAM, "xgroup-createconsumer", key);
    }
    ctx.dirty(1);
    for rec in records {
        ctx.propagate_as(rec);
    }
    Some(out)
}

/// Serves every stream of an XREADGROUP that has something for it and replies; false (nothing
/// written) when none has.
pub fn xreadgroup_serve(
    ctx: &mut Ctx,
    a: &[Bytes],
    x: &ReadGroupArgs,
    ids: &[StreamId],
    r: &mut Reply,
) -> bool {
    let mut served: Vec<(usize, Served)> = Vec::new();
    for (k, &gt) in ids.iter().enumerate().take(x.n) {
        let key = &a[x.keys_at + k];
        if let Some(s) = serve_one(ctx, key, x, gt) {
            served.push((k, s));
        }
    }
    if served.is_empty() {
        return false;
    }
    if r.resp3 {
        r.map(served.len());
    } else {
        r.array(served.len());
    }
    for (k, s) in served {
        if !r.resp3 {
            r.array(2);
        }
        r.bulk(&a[x.keys_at + k]);
        let list = s;
        r.array(list.len());
        for (id, fields) in list {
            match fields {
                Some(f) => reply_entry(r, id, &f),
                None => {
                    r.array(2);
                    r.bulk(&id.to_text());
                    r.null_array();
                }
            }
        }
    }
    true
}

fn xreadgroup(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    ctx.dirty(0);
    let x = match parse_xreadgroup(a, crate::scripting::lua::in_script()) {
        Ok(x) => x,
        Err(e) => return r.error(&e),
    };
    let ids = match resolve_xreadgroup_ids(ctx, a, &x) {
        Ok(ids) => ids,
        Err(e) => return r.error_bytes(&e),
    };
    if !xreadgroup_serve(ctx, a, &x, &ids, r) {
        r.null_array();
    }
}

// ----- XACK -----

fn xack(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    ctx.dirty(0);
    let s = match stream_at(ctx, &a[1], false) {
        Err(e) => return r.error(e),
        Ok(s) => s,
    };
    let Some(g) = s.and_then(|s| s.groups.get_mut(&a[2])) else {
        return r.int(0);
    };
    let mut ids = Vec::with_capacity(a.len() - 3);
    for arg in &a[3..] {
        match strict_id(arg) {
            Ok(id) => ids.push(id),
            Err(e) => return r.error(e),
        }
    }
    let acked = ids.into_iter().filter(|&id| g.ack(id)).count();
    ctx.dirty(acked as u64);
    r.int(acked as i64);
}

// ----- XPENDING -----

fn xpending(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let justinfo = a.len() == 3;
    if a.len() != 3 && !(6..=9).contains(&a.len()) {
        return r.error(ERR_SYNTAX);
    }
    let mut minidle = 0i64;
    let mut count = 0i64;
    let (mut start, mut end) = (StreamId::MIN, StreamId::MAX);
    let mut consumer: Option<&Bytes> = None;
    if a.len() >= 6 {
        let mut at = 3;
        if eq_ic(&a[3], "idle") {
            match super::stream_family::ll_arg(&a[4]) {
                Ok(n) => minidle = n,
                Err(e) => return r.error(e),
            }
            if a.len() < 8 {
                return r.error(ERR_SYNTAX);
            }
            at += 2;
        }
        match super::stream_family::ll_arg(&a[at + 2]) {
            Ok(n) => count = n.max(0),
            Err(e) => return r.error(e),
        }
        match interval_id(&a[at], 0) {
            Ok((id, ex)) => {
                start = id;
                if ex {
                    match id.next() {
                        Some(n) => start = n,
                        None => return r.error("ERR invalid start ID for the interval"),
                    }
                }
            }
            Err(e) => return r.error(e),
        }
        match interval_id(&a[at + 1], u64::MAX) {
            Ok((id, ex)) => {
                end = id;
                if ex {
                    match id.prev() {
                        Some(p) => end = p,
                        None => return r.error("ERR invalid end ID for the interval"),
                    }
                }
            }
            Err(e) => return r.error(e),
        }
        if at + 3 < a.len() {
            consumer = Some(&a[at + 3]);
        }
    }
    let now = clock(ctx);
    let s = match stream_at(ctx, &a[1], false) {
        Err(e) => return r.error(e),
        Ok(s) => s,
    };
    let Some(g) = s.and_then(|s| s.groups.get(&a[2])) else {
        return r.error_bytes(&nogroup_key_group(&a[1], &a[2], b""));
    };
    if justinfo {
        r.array(4);
        r.int(g.pel.len() as i64);
        match (g.pel.keys().next(), g.pel.keys().next_back()) {
            (Some(first), Some(last)) => {
                r.bulk(&first.to_text());
                r.bulk(&last.to_text());
                let owners: Vec<_> = g
                    .consumers
                    .iter()
                    .filter(|(_, c)| !c.pel.is_empty())
                    .collect();
                r.array(owners.len());
                for (name, c) in owners {
                    r.array(2);
                    r.bulk(name);
                    r.bulk_int(c.pel.len() as i64);
                }
            }
            _ => {
                r.null();
                r.null();
                r.null_array();
            }
        }
        return;
    }
    let rows: Vec<(StreamId, &Bytes, i64, i64)> = {
        let iter: Box<dyn Iterator<Item = StreamId>> = match consumer {
            Some(name) => match g.consumers.get(name) {
                Some(c) => Box::new(c.pel.range(start..).copied()),
                None => return r.array(0),
            },
            None => Box::new(g.pel.range(start..).map(|(id, _)| *id)),
        };
        let mut rows = Vec::new();
        for id in iter {
            if count == 0 || id > end {
                break;
            }
            let Some(n) = g.pel.get(&id) else { continue };
            let idle = now.wrapping_sub(n.delivery_time);
            if minidle != 0 && idle < minidle {
                continue;
            }
            rows.push((id, &n.consumer, idle.max(0), n.delivery_count));
            count -= 1;
        }
        rows
    };
    r.array(rows.len());
    for (id, name, idle, deliveries) in rows {
        r.array(4);
        r.bulk(&id.to_text());
        r.bulk(name);
        r.int(idle);
        r.int(deliveries);
    }
}

// ----- XCLAIM -----

fn xclaim(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    ctx.dirty(0);
    let now = clock(ctx);
    let propagating = ctx.propagating();
    let exists = match stream_at(ctx, &a[1], false) {
        Err(e) => return r.error(e),
        Ok(s) => s.is_some_and(|s| s.groups.get(&a[2]).is_some()),
    };
    if !exists {
        return r.error_bytes(&nogroup_key_group(&a[1], &a[2], b""));
    }
    let minidle = match parse_i64(&a[4]) {
        Some(n) => n.max(0),
        None => return r.error("ERR Invalid min-idle-time argument for XCLAIM"),
    };
    let mut j = 5;
    let mut ids = Vec::new();
    while j < a.len() {
        match strict_id(&a[j]) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let mut force = false;
    let mut justid = false;
    let mut deliverytime = -1i64;
    let mut retrycount = -1i64;
    let mut last_id = StreamId::MIN;
    while j < a.len() {
        let more = a.len() - 1 - j;
        let o = &a[j];
        if eq_ic(o, "force") {
            force = true;
        } else if eq_ic(o, "justid") {
            justid = true;
        } else if eq_ic(o, "idle") && more > 0 {
            j += 1;
            match parse_i64(&a[j]) {
                Some(n) => deliverytime = now.wrapping_sub(n),
                None => return r.error("ERR Invalid IDLE option argument for XCLAIM"),
            }
        } else if eq_ic(o, "time") && more > 0 {
            j += 1;
            match parse_i64(&a[j]) {
                Some(n) => deliverytime = n,
                None => return r.error("ERR Invalid TIME option argument for XCLAIM"),
            }
        } else if eq_ic(o, "retrycount") && more > 0 {
            j += 1;
            match parse_i64(&a[j]) {
                Some(n) => retrycount = n,
                None => return r.error("ERR Invalid RETRYCOUNT option argument for XCLAIM"),
            }
        } else if eq_ic(o, "lastid") && more > 0 {
            j += 1;
            match strict_id(&a[j]) {
                Ok(id) => last_id = id,
                Err(e) => return r.error(e),
            }
        } else {
            let mut e = b"ERR Unrecognized XCLAIM option '".to_vec();
            e.extend_from_slice(c_str(o));
            e.push(b'\'');
            return r.error_bytes(&e);
        }
        j += 1;
    }
    if deliverytime != -1 {
        if deliverytime < 0 || deliverytime > now {
            deliverytime = now;
        }
    } else {
        deliverytime = now;
    }
    let Ok(Some(s)) = stream_at(ctx, &a[1], false) else {
        return r.array(0);
    };
    let name = &a[3];
    let mut changes = 0u64;
    let mut created = false;
    let mut out: Vec<(StreamId, Option<Option<Vec<Bytes>>>)> = Vec::new();
    let entries: Vec<Option<Vec<Bytes>>> = ids.iter().map(|&id| entry(s, id)).collect();
    let Some(g) = s.groups.get_mut(&a[2]) else {
        return r.array(0);
    };
    // LASTID counts as a change only when nothing else changed (Redis then propagates the
    // group's position on its own).
    let moved = last_id > g.last_id;
    if moved {
        g.last_id = last_id;
    }
    let mut have_consumer = false;
    let mut records: Vec<Vec<Bytes>> = Vec::new();
    // The IDs were parsed from the arguments from the sixth on; the records name them as given.
    for ((id, fields), arg) in ids.into_iter().zip(entries).zip(&a[5..]) {
        if fields.is_none() {
            // A pending entry no longer in the stream leaves the PEL; so does it at replay.
            if let Some(n) = g.pel.get(&id).filter(|_| propagating) {
                records.push(claim_record(&a[1], &a[2], arg.clone(), n, g.last_id));
            }
            if g.ack(id) {
                changes += 1;
            }
            continue;
        }
        let mut fresh = false;
        if !g.pel.contains_key(&id) {
            if !force {
                continue;
            }
            fresh = true;
        }
        if !fresh && minidle != 0 {
            let n = &g.pel[&id];
            if now.wrapping_sub(n.delivery_time) < minidle {
                continue;
            }
        }
        if !have_consumer {
            created = g.touch_consumer(name, now, true);
            have_consumer = true;
        }
        let old_count = if fresh {
            // FORCE creates the entry as Redis's NACK does: count 1, no owner yet.
            g.pel.insert(
                id,
                crate::types::stream_groups::Nack {
                    consumer: name.clone(),
                    delivery_time: now,
                    delivery_count: 1,
                },
            );
            1
        } else {
            g.pel[&id].delivery_count
        };
        let count = if retrycount >= 0 {
            retrycount
        } else if !justid {
            old_count.wrapping_add(1)
        } else {
            old_count
        };
        g.assign(id, name, deliverytime, count);
        if let Some(n) = g.pel.get(&id).filter(|_| propagating) {
            records.push(claim_record(&a[1], &a[2], arg.clone(), n, g.last_id));
        }
        out.push((id, if justid { None } else { Some(fields) }));
        changes += 1;
    }
    // The claims carry the group's new position (LASTID); without any, it goes on its own.
    if moved && changes == 0 {
        changes = 1;
        if propagating {
            records.push(set_id_record(&a[1], &a[2], g));
        }
    }
    if created {
        changes += 1;
        ctx.notify(class::STREAM, "xgroup-createconsumer", &a[1]);
    }
    ctx.dirty(changes);
    for rec in records {
        ctx.propagate_as(rec);
    }
    r.array(out.len());
    for (id, fields) in out {
        match fields {
            None => r.bulk(&id.to_text()),
            Some(Some(f)) => reply_entry(r, id, &f),
            Some(None) => r.null(),
        }
    }
}

// ----- XAUTOCLAIM -----

fn xautoclaim(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    ctx.dirty(0);
    let now = clock(ctx);
    let propagating = ctx.propagating();
    let minidle = match parse_i64(&a[4]) {
        Some(n) => n.max(0),
        None => return r.error("ERR Invalid min-idle-time argument for XAUTOCLAIM"),
    };
    let start = match interval_id(&a[5], 0) {
        Ok((id, false)) => id,
        Ok((id, true)) => match id.next() {
            Some(n) => n,
            None => return r.error("ERR invalid start ID for the interval"),
        },
        Err(e) => return r.error(e),
    };
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < a.len() {
        let more = a.len() - 1 - j;
        if eq_ic(&a[j], "count") && more > 0 {
            // Redis bounds COUNT by LONG_MAX / max(sizeof(streamID), 10).
            let max = i64::MAX / 16;
            match parse_i64(&a[j + 1]) {
                Some(n) if (1..=max).contains(&n) => count = n,
                _ => return r.error("ERR COUNT must be > 0"),
            }
            j += 1;
        } else if eq_ic(&a[j], "justid") {
            justid = true;
        } else {
            return r.error(ERR_SYNTAX);
        }
        j += 1;
    }
    let exists = match stream_at(ctx, &a[1], false) {
        Err(e) => return r.error(e),
        Ok(s) => s.is_some_and(|s| s.groups.get(&a[2]).is_some()),
    };
    if !exists {
        return r.error_bytes(&nogroup_key_group(&a[1], &a[2], b""));
    }
    let Ok(Some(s)) = stream_at(ctx, &a[1], false) else {
        return r.array(0);
    };
    let name = &a[3];
    let mut attempts = count.saturating_mul(10);
    let mut deleted: Vec<StreamId> = Vec::new();
    let mut claimed: Vec<(StreamId, Option<Vec<Bytes>>)> = Vec::new();
    let mut changes = 0u64;
    let mut created = false;
    let mut have_consumer = false;
    let mut records: Vec<Vec<Bytes>> = Vec::new();
    // The PEL scanned from `start`: Redis's attempts and count limits, then the cursor.
    let candidates: Vec<StreamId> = match s.groups.get(&a[2]) {
        Some(g) => g.pel.range(start..).map(|(id, _)| *id).collect(),
        None => Vec::new(),
    };
    let mut next_cursor = StreamId::MIN;
    let mut idx = 0;
    loop {
        if attempts == 0 || count == 0 {
            // The cursor: the next PEL entry, if any.
            if let Some(id) = candidates.get(idx) {
                next_cursor = *id;
            }
            break;
        }
        attempts -= 1;
        let Some(&id) = candidates.get(idx) else {
            break;
        };
        idx += 1;
        let f = entry(s, id);
        let Some(g) = s.groups.get_mut(&a[2]) else {
            break;
        };
        if f.is_none() {
            // Dropped from the PEL; the claim Redis propagates for it drops it at replay too.
            if let Some(n) = g.pel.get(&id).filter(|_| propagating) {
                records.push(claim_record(&a[1], &a[2], id_arg(id), n, g.last_id));
            }
            g.ack(id);
            deleted.push(id);
            changes += 1;
            count -= 1;
            continue;
        }
        let Some((delivered, times)) = g.pel.get(&id).map(|n| (n.delivery_time, n.delivery_count))
        else {
            continue;
        };
        if minidle != 0 && now.wrapping_sub(delivered) < minidle {
            continue;
        }
        if !have_consumer {
            created = g.touch_consumer(name, now, true);
            have_consumer = true;
        }
        let c = if justid { times } else { times.wrapping_add(1) };
        g.assign(id, name, now, c);
        if let Some(n) = g.pel.get(&id).filter(|_| propagating) {
            records.push(claim_record(&a[1], &a[2], id_arg(id), n, g.last_id));
        }
        claimed.push((id, if justid { None } else { f }));
        count -= 1;
        changes += 1;
    }
    if created {
        changes += 1;
        ctx.notify(class::STREAM, "xgroup-createconsumer", &a[1]);
    }
    ctx.dirty(changes);
    for rec in records {
        ctx.propagate_as(rec);
    }
    r.array(3);
    r.bulk(&next_cursor.to_text());
    r.array(claimed.len());
    for (id, f) in claimed {
        match f {
            Some(f) => reply_entry(r, id, &f),
            None => r.bulk(&id.to_text()),
        }
    }
    r.array(deleted.len());
    for id in deleted {
        r.bulk(&id.to_text());
    }
}

// ----- XINFO GROUPS / CONSUMERS / STREAM FULL -----

fn reply_lag(r: &mut Reply, g: &Group, m: &StreamMeta) {
    match g.lag(m) {
        Some(l) => r.int(l),
        None => r.null(),
    }
}

fn reply_entries_read(r: &mut Reply, g: &Group) {
    if g.entries_read != ENTRIES_READ_INVALID {
        r.int(g.entries_read)
    } else {
        r.null()
    }
}

/// XINFO GROUPS key / XINFO CONSUMERS key group (the key already checked by the caller's
/// arity; missing key and wrong type answered here as Redis does).
pub fn xinfo_groups(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let now = clock(ctx);
    let s = match stream_at(ctx, &a[2], false) {
        Err(e) => return r.error(e),
        Ok(None) => return r.error("ERR no such key"),
        Ok(Some(s)) => s,
    };
    if eq_ic(&a[1], "groups") {
        let m = meta(s);
        r.array(s.groups.len());
        for (name, g) in s.groups.iter() {
            r.map(6);
            r.bulk(b"name");
            r.bulk(name);
            r.bulk(b"consumers");
            r.int(g.consumers.len() as i64);
            r.bulk(b"pending");
            r.int(g.pel.len() as i64);
            r.bulk(b"last-delivered-id");
            r.bulk(&g.last_id.to_text());
            r.bulk(b"entries-read");
            reply_entries_read(r, g);
            r.bulk(b"lag");
            reply_lag(r, g, &m);
        }
        return;
    }
    let Some(g) = s.groups.get(&a[3]) else {
        return r.error_bytes(&nogroup_for_key(&a[3], &a[2]));
    };
    r.array(g.consumers.len());
    for (name, c) in &g.consumers {
        r.map(3);
        r.bulk(b"name");
        r.bulk(name);
        r.bulk(b"pending");
        r.int(c.pel.len() as i64);
        r.bulk(b"idle");
        r.int(now.wrapping_sub(c.seen_time).max(0));
    }
}

/// The `groups` value of XINFO STREAM FULL (PELs limited to `count` entries, 0: all).
pub fn xinfo_full_groups(r: &mut Reply, s: &StreamValue, count: i64) {
    let m = meta(s);
    let limit = if count <= 0 {
        usize::MAX
    } else {
        count as usize
    };
    r.array(s.groups.len());
    for (name, g) in s.groups.iter() {
        r.map(7);
        r.bulk(b"name");
        r.bulk(name);
        r.bulk(b"last-delivered-id");
        r.bulk(&g.last_id.to_text());
        r.bulk(b"entries-read");
        reply_entries_read(r, g);
        r.bulk(b"lag");
        reply_lag(r, g, &m);
        r.bulk(b"pel-count");
        r.int(g.pel.len() as i64);
        r.bulk(b"pending");
        let n = g.pel.len().min(limit);
        r.array(n);
        for (id, nack) in g.pel.iter().take(n) {
            r.array(4);
            r.bulk(&id.to_text());
            r.bulk(&nack.consumer);
            r.int(nack.delivery_time);
            r.int(nack.delivery_count);
        }
        r.bulk(b"consumers");
        r.array(g.consumers.len());
        for (cname, c) in &g.consumers {
            r.map(4);
            r.bulk(b"name");
            r.bulk(cname);
            r.bulk(b"seen-time");
            r.int(c.seen_time);
            r.bulk(b"pel-count");
            r.int(c.pel.len() as i64);
            r.bulk(b"pending");
            let n = c.pel.len().min(limit);
            r.array(n);
            for id in c.pel.iter().take(n) {
                let (t, d) = g
                    .pel
                    .get(id)
                    .map_or((0, 0), |n| (n.delivery_time, n.delivery_count));
                r.array(3);
                r.bulk(&id.to_text());
                r.int(t);
                r.int(d);
            }
        }
    }
}

// ----- XREADGROUP BLOCK -----

/// Whether an XREADGROUP asks to block (a BLOCK option among well-formed options); a call
/// whose options do not parse runs as a plain command, which reports the error.
pub fn xreadgroup_blocks(a: &[Bytes]) -> bool {
    parse_xreadgroup(a, false).is_ok_and(|x| x.block_ms.is_some())
}

/// XREADGROUP BLOCK's checks before it runs: the options' errors, and the timeout (None:
/// forever).
pub fn xreadgroup_timeout(a: &[Bytes]) -> Result<Option<std::time::Duration>, String> {
    let x = parse_xreadgroup(a, false)?;
    Ok(match x.block_ms {
        Some(ms) if ms > 0 => Some(std::time::Duration::from_millis(ms as u64)),
        _ => None,
    })
}

/// The arguments a blocked XREADGROUP waits with: COUNT 1000 when it had none (Redis's
/// `XREAD_BLOCKED_DEFAULT_COUNT`, as for XREAD).
pub fn blocked_xreadgroup_args(a: &[Bytes]) -> Vec<Bytes> {
    let mut v = a.to_vec();
    if parse_xreadgroup(a, false).is_ok_and(|x| x.count == 0) {
        v.insert(1, Bytes::from_static(b"COUNT"));
        v.insert(2, Bytes::from_static(b"1000"));
    }
    v
}

/// Serves an XREADGROUP trying before it blocks (or inside MULTI/EXEC and scripts): true with
/// the reply written (entries or an error), false with nothing written when no stream has
/// anything new.
pub fn try_xreadgroup(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) -> bool {
    serve_xreadgroup(ctx, a, r, false)
}

/// Serves a blocked XREADGROUP (`shard::blocking` calls it, narrowed to the stream that became
/// ready): like `try_xreadgroup`, but a client that was blocked gets Redis's UNBLOCKED /
/// NOGROUP errors when its key or group went away, and its lookups count no keyspace hits or
/// misses.
pub fn serve_blocked_xreadgroup(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) -> bool {
    serve_xreadgroup(ctx, a, r, true)
}

fn serve_xreadgroup(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply, blocked: bool) -> bool {
    let mut x = match parse_xreadgroup(a, false) {
        Ok(x) => x,
        Err(e) => {
            r.error(&e);
            return true;
        }
    };
    if blocked {
        x.quiet = true;
        for k in 0..x.n {
            let key = &a[x.keys_at + k];
            match stream_at(ctx, key, true) {
                Ok(Some(s)) if s.groups.get(&x.group).is_some() => {}
                Ok(Some(_)) => {
                    r.error(
                        "NOGROUP the consumer group this client was blocked on no longer exists",
                    );
                    return true;
                }
                _ => {
                    r.error("UNBLOCKED the stream key no longer exists");
                    return true;
                }
            }
        }
    }
    let ids = match resolve_xreadgroup_ids(ctx, a, &x) {
        Ok(ids) => ids,
        Err(e) => {
            r.error_bytes(&e);
            return true;
        }
    };
    xreadgroup_serve(ctx, a, &x, &ids, r)
}

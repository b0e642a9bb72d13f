//! Generic keyspace commands (Redis's db.c and expire.c): existence, deletion, types, expiry,
//! renaming and copying, and the commands that walk or clear whole databases.
//!
//! Per-key handlers run on the key's shard. Whole-database commands (KEYS, SCAN, DBSIZE,
//! RANDOMKEY, FLUSHDB, FLUSHALL, SWAPDB) run on the connection's shard and visit every shard by
//! message; they never touch another shard's data directly.

use bytes::Bytes;
use futures::future::LocalBoxFuture;

use super::args::{eq_ic, int_arg, text, ERR_SYNTAX};
use super::class;
use super::{
    cmd, flags::*, sub, CommandSpec, Ctx, Exec, KeySpec, MultiKind, SubCommand, KEY1, NO_KEYS,
};
use crate::config::glob_match;
use crate::protocol::Reply;
use crate::pubsub::notify::notify;
use crate::server::conn::Conn;
use crate::types::Entry;

pub fn specs() -> Vec<CommandSpec> {
    let g = "generic";
    vec![
        cmd(
            "del",
            -2,
            WRITE,
            (1, -1, 1),
            g,
            "1.0.0",
            "O(N) where N is the number of keys",
            "Deletes one or more keys.",
            Exec::Shard(del),
        )
        .key_flags(&["RM", "delete"])
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
        .multi(MultiKind::SumInt),
        cmd(
            "unlink",
            -2,
            WRITE | FAST,
            (1, -1, 1),
            g,
            "4.0.0",
            "O(1) per key; memory is reclaimed without blocking",
            "Deletes one or more keys, freeing memory lazily.",
            Exec::Shard(unlink),
        )
        .key_flags(&["RM", "delete"])
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
        .multi(MultiKind::SumInt),
        cmd(
            "exists",
            -2,
            READONLY | FAST,
            (1, -1, 1),
            g,
            "1.0.0",
            "O(N) where N is the number of keys",
            "Counts how many of the given keys exist.",
            Exec::Shard(exists),
        )
        .key_flags(&["RO"])
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
        .multi(MultiKind::SumInt),
        cmd(
            "touch",
            -2,
            READONLY | FAST,
            (1, -1, 1),
            g,
            "3.2.1",
            "O(N) where N is the number of keys",
            "Updates the access time of keys; returns how many exist.",
            Exec::Shard(touch),
        )
        .key_flags(&["RO"])
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
        .multi(MultiKind::SumInt),
        cmd(
            "type",
            2,
            READONLY | FAST,
            KEY1,
            g,
            "1.0.0",
            "O(1)",
            "Returns the type of the value stored at a key.",
            Exec::Shard(type_cmd),
        )
        .key_flags(&["RO"]),
        cmd(
            "expire",
            -3,
            WRITE | FAST,
            KEY1,
            g,
            "1.0.0",
            "O(1)",
            "Sets a key's time to live in seconds.",
            Exec::Shard(expire),
        )
        .key_flags(&["RW", "update"]),
        cmd(
            "pexpire",
            -3,
            WRITE | FAST,
            KEY1,
            g,
            "2.6.0",
            "O(1)",
            "Sets a key's time to live in milliseconds.",
            Exec::Shard(pexpire),
        )
        .key_flags(&["RW", "update"]),
        cmd(
            "expireat",
            -3,
            WRITE | FAST,
            KEY1,
            g,
            "1.2.0",
            "O(1)",
            "Sets a key's expiry as a Unix time in seconds.",
            Exec::Shard(expireat),
        )
        .key_flags(&["RW", "update"]),
        cmd(
            "pexpireat",
            -3,
            WRITE | FAST,
            KEY1,
            g,
            "2.6.0",
            "O(1)",
            "Sets a key's expiry as a Unix time in milliseconds.",
            Exec::Shard(pexpireat),
        )
        .key_flags(&["RW", "update"]),
        cmd(
            "ttl",
            2,
            READONLY | FAST,
            KEY1,
            g,
            "1.0.0",
            "O(1)",
            "Returns a key's time to live in seconds.",
            Exec::Shard(ttl),
        )
        .key_flags(&["RO", "access"])
        .tips(&["nondeterministic_output"]),
        cmd(
            "pttl",
            2,
            READONLY | FAST,
            KEY1,
            g,
            "2.6.0",
            "O(1)",
            "Returns a key's time to live in milliseconds.",
            Exec::Shard(pttl),
        )
        .key_flags(&["RO", "access"])
        .tips(&["nondeterministic_output"]),
        cmd(
            "expiretime",
            2,
            READONLY | FAST,
            KEY1,
            g,
            "7.0.0",
            "O(1)",
            "Returns a key's expiry as a Unix time in seconds.",
            Exec::Shard(expiretime),
        )
        .key_flags(&["RO", "access"]),
        cmd(
            "pexpiretime",
            2,
            READONLY | FAST,
            KEY1,
            g,
            "7.0.0",
            "O(1)",
            "Returns a key's expiry as a Unix time in milliseconds.",
            Exec::Shard(pexpiretime),
        )
        .key_flags(&["RO", "access"]),
        cmd(
            "persist",
            2,
            WRITE | FAST,
            KEY1,
            g,
            "2.2.0",
            "O(1)",
            "Removes a key's expiry.",
            Exec::Shard(persist),
        )
        .key_flags(&["RW", "update"]),
        cmd(
            "rename",
            3,
            WRITE,
            (1, 2, 1),
            g,
            "1.0.0",
            "O(1)",
            "Renames a key, overwriting the destination.",
            Exec::Shard(rename),
        )
        .key_specs(
            const {
                &[
                    KeySpec::range(&["RW", "access", "delete"], 1, 0, 1),
                    KeySpec::range(&["OW", "update"], 2, 0, 1),
                ]
            },
        ),
        cmd(
            "renamenx",
            3,
            WRITE | FAST,
            (1, 2, 1),
            g,
            "1.0.0",
            "O(1)",
            "Renames a key only if the new name does not exist.",
            Exec::Shard(renamenx),
        )
        .key_specs(
            const {
                &[
                    KeySpec::range(&["RW", "access", "delete"], 1, 0, 1),
                    KeySpec::range(&["OW", "insert"], 2, 0, 1),
                ]
            },
        ),
        cmd(
            "copy",
            -3,
            WRITE | DENYOOM,
            (1, 2, 1),
            g,
            "6.2.0",
            "O(N) for collections, O(1) for strings",
            "Copies a key's value to another key.",
            Exec::Shard(copy),
        )
        .key_specs(
            const {
                &[
                    KeySpec::range(&["RO", "access"], 1, 0, 1),
                    KeySpec::range(&["OW", "update"], 2, 0, 1),
                ]
            },
        ),
        cmd(
            "move",
            3,
            WRITE | FAST,
            KEY1,
            g,
            "1.0.0",
            "O(1)",
            "Moves a key to another database.",
            Exec::Shard(move_cmd),
        )
        .key_flags(&["RW", "access", "update"]),
        cmd(
            "object",
            -2,
            READONLY,
            (2, 2, 1),
            g,
            "2.2.3",
            "O(1)",
            "Inspects the internals of a key's value (ENCODING, FREQ, IDLETIME, REFCOUNT).",
            Exec::Shard(object),
        )
        .subcommands(OBJECT_SUBCOMMANDS),
        cmd(
            "keys",
            2,
            READONLY,
            NO_KEYS,
            g,
            "1.0.0",
            "O(N) where N is the number of keys in the database",
            "Returns all key names that match a pattern.",
            Exec::Conn(keys),
        )
        .tips(&["request_policy:all_shards", "nondeterministic_output_order"]),
        cmd(
            "scan",
            -2,
            READONLY,
            NO_KEYS,
            g,
            "2.8.0",
            "O(1) per call, O(N) for a complete iteration",
            "Iterates over the key names in the database.",
            Exec::Conn(scan),
        )
        .tips(&["nondeterministic_output", "request_policy:special"]),
        cmd(
            "randomkey",
            1,
            READONLY,
            NO_KEYS,
            g,
            "1.0.0",
            "O(1)",
            "Returns a random key name from the database.",
            Exec::Conn(randomkey),
        )
        .tips(&["request_policy:all_shards", "nondeterministic_output"]),
        cmd(
            "dbsize",
            1,
            READONLY | FAST,
            NO_KEYS,
            "server",
            "1.0.0",
            "O(1) per shard",
            "Returns the number of keys in the database.",
            Exec::Conn(dbsize),
        )
        .tips(&["request_policy:all_shards", "response_policy:agg_sum"]),
        cmd(
            "flushdb",
            -1,
            WRITE,
            NO_KEYS,
            "server",
            "1.0.0",
            "O(N) where N is the number of keys in the database",
            "Removes all keys from the current database.",
            Exec::Conn(flushdb),
        )
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
        cmd(
            "flushall",
            -1,
            WRITE,
            NO_KEYS,
            "server",
            "1.0.0",
            "O(N) where N is the number of keys",
            "Removes all keys from all databases.",
            Exec::Conn(flushall),
        )
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
        cmd(
            "swapdb",
            3,
            WRITE | FAST,
            NO_KEYS,
            "server",
            "4.0.0",
            "O(N) where N is the count of clients watching or blocking on keys",
            "Swaps two databases.",
            Exec::Conn(swapdb),
        ),
    ]
}

/// OBJECT's subcommands, as Redis 7.0 declares them.
const OBJECT_SUBCOMMANDS: &[SubCommand] = &[
    sub("object|idletime", 3)
        .flags(READONLY)
        .key_at(2, &["RO"])
        .tips(&["nondeterministic_output"])
        .docs(
            "2.2.3",
            "O(1)",
            "Returns the seconds since a key was last accessed.",
        ),
    sub("object|freq", 3)
        .flags(READONLY)
        .key_at(2, &["RO"])
        .tips(&["nondeterministic_output"])
        .docs(
            "4.0.0",
            "O(1)",
            "Returns the logarithmic access frequency counter of a key.",
        ),
    sub("object|help", 2).flags(LOADING | STALE).docs(
        "6.2.0",
        "O(1)",
        "Lists the OBJECT subcommands.",
    ),
    sub("object|encoding", 3)
        .flags(READONLY)
        .key_at(2, &["RO"])
        .tips(&["nondeterministic_output"])
        .docs("2.2.3", "O(1)", "Returns the internal encoding of a value."),
    sub("object|refcount", 3)
        .flags(READONLY)
        .key_at(2, &["RO"])
        .tips(&["nondeterministic_output"])
        .docs("2.2.3", "O(1)", "Returns the reference count of a value."),
];

/// DEL and UNLINK: `lazy` hands big values to the shard's background task.
fn del_generic(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply, lazy: bool) {
    let now = ctx.now_ms;
    let mut n = 0;
    for k in &a[1..] {
        if ctx.db().exists(k, now) {
            ctx.db().delete_with(k, lazy);
            ctx.notify(class::GENERIC, "del", k);
            n += 1;
        }
    }
    ctx.dirty(n as u64);
    r.int(n);
}

fn del(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let lazy = ctx.st.config.lazyfree_lazy_user_del;
    del_generic(ctx, a, r, lazy)
}

fn unlink(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    del_generic(ctx, a, r, true)
}

fn exists(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let n = a[1..]
        .iter()
        .filter(|k| ctx.lookup_read_notouch(k).is_some())
        .count();
    r.int(n as i64);
}

fn touch(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let n = a[1..]
        .iter()
        .filter(|k| ctx.lookup_read(k).is_some())
        .count();
    r.int(n as i64);
}

fn type_cmd(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let name = ctx
        .lookup_read_notouch(&a[1])
        .map(|e| e.value.type_name())
        .unwrap_or("none");
    r.simple(name);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Base {
    Now,
    Zero,
}

fn expire_generic(
    ctx: &mut Ctx,
    a: &[Bytes],
    r: &mut Reply,
    base: Base,
    seconds: bool,
    name: &str,
) {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &a[3..] {
        if eq_ic(opt, "nx") {
            nx = true;
        } else if eq_ic(opt, "xx") {
            xx = true;
        } else if eq_ic(opt, "gt") {
            gt = true;
        } else if eq_ic(opt, "lt") {
            lt = true;
        } else {
            return r.error(&format!("ERR Unsupported option {}", text(opt)));
        }
    }
    if nx && (xx || gt || lt) {
        return r.error("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return r.error("ERR GT and LT options at the same time are not compatible");
    }
    let mut when = match int_arg(&a[2]) {
        Ok(w) => w,
        Err(e) => return r.error(e),
    };
    let invalid = format!("ERR invalid expire time in '{}' command", name);
    if seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return r.error(&invalid);
        }
        when *= 1000;
    }
    let basetime = if base == Base::Now {
        ctx.now_ms as i64
    } else {
        0
    };
    if when > i64::MAX - basetime {
        return r.error(&invalid);
    }
    when += basetime;
    let now = ctx.now_ms;
    let Some(has_deadline) = ctx.lookup_write(&a[1]).map(|e| e.has_deadline()) else {
        ctx.dirty(0);
        return r.int(0);
    };
    let current = if has_deadline {
        ctx.db().deadline(&a[1])
    } else {
        0
    };
    if nx && current != 0 {
        ctx.dirty(0);
        return r.int(0);
    }
    if xx && current == 0 {
        ctx.dirty(0);
        return r.int(0);
    }
    if gt && (current == 0 || when <= current as i64) {
        ctx.dirty(0);
        return r.int(0);
    }
    if lt && current != 0 && when >= current as i64 {
        ctx.dirty(0);
        return r.int(0);
    }
    if when <= now as i64 {
        let lazy = ctx.st.config.lazyfree_lazy_expire;
        ctx.db().delete_with(&a[1], lazy);
        ctx.notify(class::GENERIC, "del", &a[1]);
    } else {
        ctx.db().set_expire(&a[1], when as u64);
        ctx.notify(class::GENERIC, "expire", &a[1]);
    }
    r.int(1);
}

fn expire(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    expire_generic(ctx, a, r, Base::Now, true, "expire")
}
fn pexpire(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    expire_generic(ctx, a, r, Base::Now, false, "pexpire")
}
fn expireat(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    expire_generic(ctx, a, r, Base::Zero, true, "expireat")
}
fn pexpireat(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    expire_generic(ctx, a, r, Base::Zero, false, "pexpireat")
}

/// -2 for a missing key, -1 for no expiry, else `f(expire_at, now)`.
fn ttl_generic(ctx: &mut Ctx, key: &[u8], r: &mut Reply, f: impl Fn(u64, u64) -> i64) {
    let now = ctx.now_ms;
    match ctx.lookup_read_notouch(key).map(|e| e.has_deadline()) {
        None => r.int(-2),
        Some(false) => r.int(-1),
        Some(true) => {
            let at = ctx.db().deadline(key);
            r.int(f(at, now))
        }
    }
}

fn ttl(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    ttl_generic(ctx, &a[1], r, |at, now| {
        ((at.saturating_sub(now)) as i64 + 500) / 1000
    })
}
fn pttl(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    ttl_generic(ctx, &a[1], r, |at, now| at.saturating_sub(now) as i64)
}
fn expiretime(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    // Redis rounds to the nearest second here.
    ttl_generic(ctx, &a[1], r, |at, _| ((at as u128 + 500) / 1000) as i64)
}
fn pexpiretime(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    ttl_generic(ctx, &a[1], r, |at, _| at as i64)
}

fn persist(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    if ctx.lookup_write(&a[1]).is_some_and(|e| e.has_deadline()) {
        ctx.db().set_expire(&a[1], 0);
        ctx.notify(class::GENERIC, "persist", &a[1]);
        r.int(1)
    } else {
        ctx.dirty(0);
        r.int(0)
    }
}

fn rename_generic(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply, nx: bool) {
    if ctx.lookup_write(&a[1]).is_none() {
        return r.error("ERR no such key");
    }
    if a[1] == a[2] {
        // Neither RENAME k k nor RENAMENX k k changes anything (Redis 7.0.15 counts no change,
        // logs nothing and invalidates nothing).
        ctx.dirty(0);
        return if nx { r.int(0) } else { r.ok() };
    }
    let now = ctx.now_ms;
    if nx && ctx.db().exists(&a[2], now) {
        ctx.dirty(0);
        return r.int(0);
    }
    if let Some(e) = ctx.db().remove(&a[1]) {
        // Redis deletes an existing destination and adds the key anew (`new` either way).
        ctx.db().delete(&a[2]);
        ctx.db().insert_entry(&a[2], e, now);
        ctx.notify(class::GENERIC, "rename_from", &a[1]);
        ctx.notify(class::GENERIC, "rename_to", &a[2]);
    }
    if nx {
        r.int(1)
    } else {
        r.ok()
    }
}

fn rename(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    rename_generic(ctx, a, r, false)
}
fn renamenx(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    rename_generic(ctx, a, r, true)
}

/// COPY's options: (destination db, replace).
pub fn copy_options(
    a: &[Bytes],
    cur_db: usize,
    databases: usize,
) -> Result<(usize, bool), &'static str> {
    let mut db = cur_db;
    let mut replace = false;
    let mut j = 3;
    while j < a.len() {
        if eq_ic(&a[j], "replace") {
            replace = true;
        } else if eq_ic(&a[j], "db") && j + 1 < a.len() {
            db = db_index(&a[j + 1], databases)?;
            j += 1;
        } else {
            return Err(ERR_SYNTAX);
        }
        j += 1;
    }
    if db == cur_db && a[1] == a[2] {
        return Err("ERR source and destination objects are the same");
    }
    Ok((db, replace))
}

fn copy(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let (dst_db, replace) = match copy_options(a, ctx.db, ctx.st.dbs.len()) {
        Ok(o) => o,
        Err(e) => return r.error(e),
    };
    let Some((value, has_deadline)) = ctx
        .lookup_read(&a[1])
        .map(|e| (e.value.clone(), e.has_deadline()))
    else {
        ctx.dirty(0);
        return r.int(0);
    };
    let expire_at = if has_deadline {
        ctx.db().deadline(&a[1])
    } else {
        0
    };
    let now = ctx.now_ms;
    if ctx.st.dbs[dst_db].exists(&a[2], now) && !replace {
        ctx.dirty(0);
        return r.int(0);
    }
    let dst = &mut ctx.st.dbs[dst_db];
    // An existing destination is deleted and the copy added anew (`new` either way).
    dst.delete(&a[2]);
    dst.insert(&a[2], value, expire_at, now);
    // Waiters on the destination are served after the command (`execute_keyed` wakes those of
    // the command's own database; another database's are named here).
    ctx.st.blocked.touched(dst_db, &a[2]);
    notify(class::GENERIC, "copy_to", &a[2], dst_db);
    r.int(1);
}

/// Parses a DB index argument the way SELECT/MOVE do.
pub fn db_index(arg: &[u8], databases: usize) -> Result<usize, &'static str> {
    let id = super::args::i32_arg(arg)?;
    if id < 0 || id as usize >= databases {
        return Err("ERR DB index is out of range");
    }
    Ok(id as usize)
}

fn move_cmd(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let dst = match db_index(&a[2], ctx.st.dbs.len()) {
        Ok(d) => d,
        Err(e) => return r.error(e),
    };
    if dst == ctx.db {
        return r.error("ERR source and destination objects are the same");
    }
    if ctx.lookup_write(&a[1]).is_none() {
        ctx.dirty(0);
        return r.int(0);
    }
    let now = ctx.now_ms;
    if ctx.st.dbs[dst].exists(&a[1], now) {
        ctx.dirty(0);
        return r.int(0);
    }
    if let Some(e) = ctx.db().remove(&a[1]) {
        ctx.st.dbs[dst].insert_entry(&a[1], e, now);
        ctx.notify(class::GENERIC, "move_from", &a[1]);
        notify(class::GENERIC, "move_to", &a[1], dst);
    }
    ctx.st.blocked.touched(dst, &a[1]);
    r.int(1);
}

const OBJECT_HELP: &[&str] = &[
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
];

fn object(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let sub = &a[1];
    if eq_ic(sub, "help") && a.len() == 2 {
        return super::reply_help(r, "object", OBJECT_HELP);
    }
    let known = ["encoding", "freq", "idletime", "refcount"];
    let Some(which) = known.iter().find(|n| eq_ic(sub, n)) else {
        return r.error(&super::unknown_subcommand_error(sub, "object"));
    };
    if a.len() != 3 {
        return r.error(&super::arity_error(&format!("object|{}", which)));
    }
    let now = ctx.now_ms;
    let policy_lfu = crate::server::policy_is_lfu(&ctx.st.config);
    let decay = ctx.st.config.lfu_decay_time;
    // Redis 7.0 counts OBJECT's lookup in keyspace_hits/misses, without a `keymiss` event.
    let st = &mut *ctx.st;
    let found = st.dbs[ctx.db].lookup_notouch(&a[2], now);
    match found {
        Some(_) => st.stats.keyspace_hits += 1,
        None => st.stats.keyspace_misses += 1,
    }
    let Some(e): Option<&mut Entry> = found else {
        return r.null();
    };
    match *which {
        "encoding" => r.bulk(e.value.encoding().as_bytes()),
        "refcount" => r.int(match &e.value {
            crate::types::Value::Str(crate::types::StrValue::Int(n)) if (0..10000).contains(n) => {
                i32::MAX as i64
            }
            _ => 1,
        }),
        "idletime" => {
            if policy_lfu {
                return r.error("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
            }
            r.int((crate::shard::memory::lru_idle_ms(e.access(), now) / 1000) as i64)
        }
        _ => {
            if !policy_lfu {
                return r.error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
            }
            r.int(crate::shard::memory::lfu_decr_and_return(e.access(), now, decay) as i64)
        }
    }
}

// ----- whole-database commands (connection level) -----

fn keys(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let db = c.db;
        let pattern = a[1].clone();
        let res = c
            .shard
            .run_on_all(move |sh| {
                let now = crate::server::globals::unix_ms();
                let st = sh.state.borrow();
                let all = &pattern[..] == b"*";
                let d = &st.dbs[db];
                d.keys
                    .iter()
                    .filter(|(k, e)| {
                        d.is_live(k, e, now) && (all || glob_match(&pattern, k, false))
                    })
                    .map(|(k, _)| Bytes::copy_from_slice(k))
                    .collect::<Vec<Bytes>>()
            })
            .await;
        let mut r = c.reply();
        match res {
            Ok(parts) => {
                r.array(parts.iter().map(|p| p.len()).sum());
                for k in parts.iter().flatten() {
                    r.bulk(k);
                }
            }
            Err(_) => r.error(crate::server::conn::ERR_SHARD_GONE),
        }
    })
}

fn scan(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let mut walk = match ScanWalk::parse(&a, c.shard.nshards(), c.db) {
            Ok(w) => w,
            Err(e) => return c.reply().error(e),
        };
        let next = loop {
            let (shard, step) = walk.next_step();
            let Ok(part) = c.shard.run_on(shard, move |sh| step.run(sh)).await else {
                return c.reply().error(crate::server::conn::ERR_SHARD_GONE);
            };
            if let Some(next) = walk.absorb(part) {
                break next;
            }
        };
        walk.reply(&mut c.reply(), next);
    })
}

/// One SCAN call walking the shards, shared by the connection and scripts: `next_step` says
/// which shard to ask and what, `absorb` takes its answer and says when the call is done.
///
/// One cursor walks every shard in turn: the low part of the cursor names the shard, the rest
/// is that shard's table cursor. A call moves on to the next shard while it has not visited
/// COUNT entries yet, so an empty shard never ends a call with nothing done.
pub(crate) struct ScanWalk {
    nshards: u64,
    shard: usize,
    inner: u64,
    db: usize,
    count: usize,
    pattern: Option<Bytes>,
    typ: Option<Bytes>,
    found: Vec<Bytes>,
    visited: usize,
}

/// What one shard does for a [`ScanWalk`].
pub(crate) struct ScanStep {
    db: usize,
    start: u64,
    budget: usize,
    pattern: Option<Bytes>,
    typ: Option<Bytes>,
}

impl ScanStep {
    /// (matching keys, entries visited, next table cursor) on this shard.
    pub(crate) fn run(self, sh: &crate::shard::Shard) -> (Vec<Bytes>, usize, u64) {
        scan_shard(sh, self.db, self.start, self.budget, self.pattern, self.typ)
    }
}

impl ScanWalk {
    pub(crate) fn parse(a: &[Bytes], nshards: usize, db: usize) -> Result<ScanWalk, &'static str> {
        let n = nshards as u64;
        let cursor = parse_cursor(&a[1]).ok_or("ERR invalid cursor")?;
        let mut count = 10usize;
        let mut pattern: Option<Bytes> = None;
        let mut typ: Option<Bytes> = None;
        let mut j = 2;
        while j < a.len() {
            let more = j + 1 < a.len();
            if eq_ic(&a[j], "count") && more {
                match int_arg(&a[j + 1]) {
                    Ok(v) if v >= 1 => count = v as usize,
                    Ok(_) => return Err(ERR_SYNTAX),
                    Err(e) => return Err(e),
                }
            } else if eq_ic(&a[j], "match") && more {
                // A bare `*` matches everything, including the empty key (Redis skips the
                // matcher for it too).
                pattern = if &a[j + 1][..] == b"*" {
                    None
                } else {
                    Some(a[j + 1].clone())
                };
            } else if eq_ic(&a[j], "type") && more {
                typ = Some(a[j + 1].clone());
            } else {
                return Err(ERR_SYNTAX);
            }
            j += 2;
        }
        Ok(ScanWalk {
            nshards: n,
            shard: (cursor % n) as usize,
            inner: cursor / n,
            db,
            count,
            pattern,
            typ,
            found: Vec::new(),
            visited: 0,
        })
    }

    pub(crate) fn next_step(&self) -> (usize, ScanStep) {
        let step = ScanStep {
            db: self.db,
            start: self.inner,
            budget: self.count - self.visited.min(self.count - 1),
            pattern: self.pattern.clone(),
            typ: self.typ.clone(),
        };
        (self.shard, step)
    }

    /// Takes a shard's answer; Some(cursor to return) once the call is done.
    pub(crate) fn absorb(&mut self, (keys, seen, cur): (Vec<Bytes>, usize, u64)) -> Option<u64> {
        self.found.extend(keys);
        self.visited += seen;
        if cur != 0 {
            return Some(
                cur.checked_mul(self.nshards)
                    .and_then(|v| v.checked_add(self.shard as u64))
                    .unwrap_or(0),
            );
        }
        if self.shard as u64 + 1 >= self.nshards {
            return Some(0);
        }
        self.shard += 1;
        self.inner = 0;
        (self.visited >= self.count).then_some(self.shard as u64)
    }

    pub(crate) fn reply(&self, r: &mut Reply, next: u64) {
        r.array(2);
        r.bulk(next.to_string().as_bytes());
        r.array(self.found.len());
        for k in &self.found {
            r.bulk(k);
        }
    }
}

/// SCAN's cursor: an unsigned 64-bit number, parsed like `strtoull` (so "-1" wraps around).
/// HSCAN/SSCAN/ZSCAN's options after `key cursor`: `COUNT n` (at least 1) and `MATCH pattern`
/// (`*` means no filter), with Redis's errors. Returns (count, pattern).
pub fn collection_scan_options(a: &[Bytes]) -> Result<(usize, Option<&[u8]>), &'static str> {
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut j = 3;
    while j < a.len() {
        let more = j + 1 < a.len();
        if eq_ic(&a[j], "count") && more {
            match int_arg(&a[j + 1]) {
                Ok(v) if v >= 1 => count = usize::try_from(v).unwrap_or(usize::MAX),
                Ok(_) => return Err(ERR_SYNTAX),
                Err(e) => return Err(e),
            }
        } else if eq_ic(&a[j], "match") && more {
            pattern = if &a[j + 1][..] == b"*" {
                None
            } else {
                Some(&a[j + 1][..])
            };
        } else {
            return Err(ERR_SYNTAX);
        }
        j += 2;
    }
    Ok((count, pattern))
}

pub fn parse_cursor(arg: &[u8]) -> Option<u64> {
    // Redis reads it with strtoul: an optional sign, and an empty cursor is 0.
    if arg.is_empty() {
        return Some(0);
    }
    let (neg, digits) = match arg[0] {
        b'-' => (true, &arg[1..]),
        b'+' => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// One shard's part of SCAN: (matching keys, entries visited, next table cursor).
fn scan_shard(
    sh: &crate::shard::Shard,
    db: usize,
    start: u64,
    count: usize,
    pattern: Option<Bytes>,
    typ: Option<Bytes>,
) -> (Vec<Bytes>, usize, u64) {
    let now = crate::server::globals::unix_ms();
    let mut st = sh.state.borrow_mut();
    let d = &st.dbs[db];
    let table = &d.keys;
    // COUNT bounds the entries visited, as in Redis; filters apply afterwards.
    let mut scanned: Vec<(Bytes, bool)> = Vec::new();
    // Like Redis, an expired key that the pattern lets through is deleted, not just skipped
    // (with its `expired` event and its invalidation).
    let mut expired: Vec<Bytes> = Vec::new();
    let mut cur = start;
    let mut budget = count.saturating_mul(10).max(1);
    let mut visited = 0;
    loop {
        cur = table.scan(cur, |k, e| {
            visited += 1;
            if !d.is_live(k, e, now) {
                if pattern.as_ref().is_none_or(|p| glob_match(p, k, false)) {
                    expired.push(Bytes::copy_from_slice(k));
                }
                return;
            }
            let type_ok = typ.as_ref().is_none_or(|t| eq_ic(t, e.value.type_name()));
            scanned.push((Bytes::copy_from_slice(k), type_ok));
        });
        budget -= 1;
        if cur == 0 || visited >= count || budget == 0 {
            break;
        }
    }
    for k in &expired {
        st.dbs[db].exists(k, now);
    }
    crate::pubsub::tracking::flush_bcast();
    let found = scanned
        .into_iter()
        .filter(|(k, type_ok)| *type_ok && pattern.as_ref().is_none_or(|p| glob_match(p, k, false)))
        .map(|(k, _)| k)
        .collect();
    (found, visited, cur)
}

fn randomkey(c: &mut Conn, _a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let db = c.db;
        let sizes = match c
            .shard
            .run_on_all(move |sh| sh.state.borrow().dbs[db].len())
            .await
        {
            Ok(s) => s,
            Err(_) => return c.reply().error(crate::server::conn::ERR_SHARD_GONE),
        };
        let total: usize = sizes.iter().sum();
        let mut tries = 0;
        while total > 0 && tries < 16 {
            tries += 1;
            let mut pick = rand::random::<usize>() % total;
            let mut shard = 0;
            for (i, s) in sizes.iter().enumerate() {
                if pick < *s {
                    shard = i;
                    break;
                }
                pick -= s;
            }
            let got = c
                .shard
                .run_on(shard, move |sh| {
                    let now = crate::server::globals::unix_ms();
                    let mut st = sh.state.borrow_mut();
                    let st = &mut *st;
                    for _ in 0..100 {
                        let k = st.dbs[db]
                            .keys
                            .random_entry(&mut st.rng)
                            .map(|(k, _)| k.clone())?;
                        if st.dbs[db].exists(&k, now) {
                            return Some(k);
                        }
                    }
                    None
                })
                .await;
            if let Ok(Some(k)) = got {
                return c.reply().bulk(&k);
            }
        }
        c.reply().null();
    })
}

fn dbsize(c: &mut Conn, _a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let db = c.db;
        match c
            .shard
            .run_on_all(move |sh| sh.state.borrow().dbs[db].len())
            .await
        {
            Ok(v) => c.reply().int(v.iter().sum::<usize>() as i64),
            Err(_) => c.reply().error(crate::server::conn::ERR_SHARD_GONE),
        }
    })
}

/// Whole-shard locks on every shard for a command that changes whole databases, so that no
/// multi-shard transaction straddles it; none when an EXEC block already holds them.
async fn hold_all_shards(c: &mut Conn) -> Result<Option<AllShards>, &'static str> {
    if c.in_exec.is_some() {
        return Ok(None);
    }
    let shard = c.shard.clone();
    let held = crate::tx::lock_all_shards(&shard).await?;
    // Every shard's part of the fan-out is recovered from the AOF all or nothing.
    let unit = crate::persistence::aof::units::global_begin(&shard, held.tx()).await;
    Ok(Some(AllShards { held, unit }))
}

/// Every shard locked whole for a keyless fan-out, with its AOF unit.
struct AllShards {
    held: crate::tx::HeldLocks,
    unit: crate::persistence::aof::units::GlobalUnit,
}

impl AllShards {
    async fn release_all(self) {
        self.unit.end().await;
        self.held.release_all().await;
    }
}

/// FLUSHDB/FLUSHALL's optional ASYNC|SYNC argument: whether to free in the background
/// (without the argument, `lazyfree-lazy-user-flush` decides). None: syntax error.
fn flush_async(c: &Conn, a: &[Bytes]) -> Option<bool> {
    match a.len() {
        1 => Some(c.shard.state.borrow().config.lazyfree_lazy_user_flush),
        2 if eq_ic(&a[1], "sync") => Some(false),
        2 if eq_ic(&a[1], "async") => Some(true),
        _ => None,
    }
}

/// Empties a database; returns how many keys it held (changes, for the save rules).
fn flush_db(d: &mut crate::shard::db::Db, lazy: bool) -> u64 {
    let n = d.len() as u64;
    if lazy {
        d.clear_async();
    } else {
        d.clear();
    }
    n
}

fn flushdb(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let Some(lazy) = flush_async(c, &a) else {
            return c.reply().error(ERR_SYNTAX);
        };
        let db = c.db;
        let held = match hold_all_shards(c).await {
            Ok(h) => h,
            Err(e) => return c.reply().error(e),
        };
        let res = c
            .shard
            .run_on_all(move |sh| {
                let mut st = sh.state.borrow_mut();
                let n = flush_db(&mut st.dbs[db], lazy);
                sh.globals.snapshot.note_changes(sh.id, n);
                crate::persistence::aof::log_command(&mut st, db, &["FLUSHDB"]);
            })
            .await;
        if let Some(h) = held {
            h.release_all().await;
        }
        crate::pubsub::tracking::invalidate_everything();
        match res {
            Ok(_) => c.reply().ok(),
            Err(_) => c.reply().error(crate::server::conn::ERR_SHARD_GONE),
        }
    })
}

fn flushall(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let Some(lazy) = flush_async(c, &a) else {
            return c.reply().error(ERR_SYNTAX);
        };
        let held = match hold_all_shards(c).await {
            Ok(h) => h,
            Err(e) => return c.reply().error(e),
        };
        let res = c
            .shard
            .run_on_all(move |sh| {
                let mut st = sh.state.borrow_mut();
                let mut n = 0;
                for d in st.dbs.iter_mut() {
                    n += flush_db(d, lazy);
                }
                sh.globals.snapshot.note_changes(sh.id, n);
                crate::persistence::aof::log_command(&mut st, 0, &["FLUSHALL"]);
            })
            .await;
        if let Some(h) = held {
            h.release_all().await;
        }
        crate::pubsub::tracking::invalidate_everything();
        if res.is_err() {
            return c.reply().error(crate::server::conn::ERR_SHARD_GONE);
        }
        // Like Redis, with save rules the flush is saved at once, so that the old data does not
        // come back at the next start.
        crate::persistence::snapshot::save_after_flushall(&c.shard).await;
        c.reply().ok()
    })
}

/// SWAPDB's two database indexes, checked as Redis checks them.
pub(crate) fn swapdb_indexes(a: &[Bytes], ndb: usize) -> Result<(usize, usize), String> {
    let parse = |arg: &[u8], what: &str| -> Result<i64, String> {
        match super::args::parse_i64(arg) {
            Some(v) if v >= i32::MIN as i64 && v <= i32::MAX as i64 => Ok(v),
            _ => Err(format!("ERR invalid {} DB index", what)),
        }
    };
    let (x, y) = (parse(&a[1], "first")?, parse(&a[2], "second")?);
    if x < 0 || y < 0 || x as usize >= ndb || y as usize >= ndb {
        return Err("ERR DB index is out of range".into());
    }
    Ok((x as usize, y as usize))
}

/// One shard's part of SWAPDB (the caller holds every shard).
pub(crate) fn swap_on(sh: &crate::shard::Shard, x: usize, y: usize) {
    let mut st = sh.state.borrow_mut();
    crate::shard::db::Db::swap(&mut st.dbs, x, y);
    // One change for the whole swap (Redis), counted by one shard.
    if sh.id == 0 {
        sh.globals.snapshot.note_changes(sh.id, 1);
    }
    crate::persistence::aof::log_command(
        &mut st,
        0,
        &[
            &b"SWAPDB"[..],
            x.to_string().as_bytes(),
            y.to_string().as_bytes(),
        ],
    );
    // Keys the swap brought into view wake their waiters, as in Redis.
    st.blocked.db_changed(x);
    st.blocked.db_changed(y);
    if st.blocked.has_ready() {
        let now = crate::server::globals::unix_ms();
        crate::shard::blocking::serve_ready(&mut st, &sh.globals, now);
    }
}

fn swapdb(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let ndb = c.shard.state.borrow().dbs.len();
        let (x, y) = match swapdb_indexes(&a, ndb) {
            Ok(xy) => xy,
            Err(e) => return c.reply().error(&e),
        };
        let held = match hold_all_shards(c).await {
            Ok(h) => h,
            Err(e) => return c.reply().error(e),
        };
        let res = c.shard.run_on_all(move |sh| swap_on(sh, x, y)).await;
        if let Some(h) = held {
            h.release_all().await;
        }
        match res {
            Ok(_) => c.reply().ok(),
            Err(_) => c.reply().error(crate::server::conn::ERR_SHARD_GONE),
        }
    })
}

//! Hash commands (Redis's t_hash.c): field reads and writes, counters, random fields, HSCAN.
//!
//! Every handler runs on the shard that owns its key and touches only that shard's data. The
//! encoding (listpack or hashtable) is the value's business (`types::hash`); handlers only pass
//! the configured thresholds along and never convert a hash themselves. A hash left without
//! fields is deleted, so an empty hash is never visible.

use bytes::Bytes;

use super::args::{self, eq_ic, int_arg, ERR_SYNTAX, ERR_WRONGTYPE};
use super::class;
use super::{cmd, flags::*, CommandSpec, Ctx, Exec, KEY1};
use crate::config::glob_match;
use crate::protocol::Reply;
use crate::types::float::parse_long_double;
use crate::types::{HashLimits, HashValue, Value};

pub fn specs() -> Vec<CommandSpec> {
    let g = "hash";
    vec![
        cmd(
            "hset",
            -4,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "2.0.0",
            "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs.",
            "Sets one or more fields of a hash; returns how many were new.",
            Exec::Shard(hset),
        )
.key_flags(&["RW", "update"]),
        cmd(
            "hsetnx",
            4,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "2.0.0",
            "O(1)",
            "Sets a hash field only if it does not exist yet.",
            Exec::Shard(hsetnx),
        )
.key_flags(&["RW", "insert"]),
        cmd(
            "hget",
            3,
            READONLY | FAST,
            KEY1,
            g,
            "2.0.0",
            "O(1)",
            "Returns the value of one hash field.",
            Exec::Shard(hget),
        )
.key_flags(&["RO", "access"]),
        cmd(
            "hmset",
            -4,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "2.0.0",
            "O(N) where N is the number of fields being set.",
            "Sets several hash fields (older form of HSET that replies OK).",
            Exec::Shard(hmset),
        )
.deprecated("4.0.0", "HSET key field value [field value ...]")
.key_flags(&["RW", "update"]),
        cmd(
            "hmget",
            -3,
            READONLY | FAST,
            KEY1,
            g,
            "2.0.0",
            "O(N) where N is the number of fields being requested.",
            "Returns the values of several hash fields.",
            Exec::Shard(hmget),
        )
.key_flags(&["RO", "access"]),
        cmd(
            "hgetall",
            2,
            READONLY,
            KEY1,
            g,
            "2.0.0",
            "O(N) where N is the size of the hash.",
            "Returns every field and value of a hash.",
            Exec::Shard(hgetall),
        )
.key_flags(&["RO", "access"])
.tips(&["nondeterministic_output_order"]),
        cmd(
            "hdel",
            -3,
            WRITE | FAST,
            KEY1,
            g,
            "2.0.0",
            "O(N) where N is the number of fields to be removed.",
            "Deletes hash fields; deletes the key with its last field.",
            Exec::Shard(hdel),
        )
.key_flags(&["RW", "delete"]),
        cmd(
            "hexists",
            3,
            READONLY | FAST,
            KEY1,
            g,
            "2.0.0",
            "O(1)",
            "Tells whether a hash field exists.",
            Exec::Shard(hexists),
        )
.key_flags(&["RO"]),
        cmd(
            "hlen",
            2,
            READONLY | FAST,
            KEY1,
            g,
            "2.0.0",
            "O(1)",
            "Returns the number of fields of a hash.",
            Exec::Shard(hlen),
        )
.key_flags(&["RO"]),
        cmd(
            "hkeys",
            2,
            READONLY,
            KEY1,
            g,
            "2.0.0",
            "O(N) where N is the size of the hash.",
            "Returns every field name of a hash.",
            Exec::Shard(hkeys),
        )
.key_flags(&["RO", "access"])
.tips(&["nondeterministic_output_order"]),
        cmd(
            "hvals",
            2,
            READONLY,
            KEY1,
            g,
            "2.0.0",
            "O(N) where N is the size of the hash.",
            "Returns every value of a hash.",
            Exec::Shard(hvals),
        )
.key_flags(&["RO", "access"])
.tips(&["nondeterministic_output_order"]),
        cmd(
            "hincrby",
            4,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "2.0.0",
            "O(1)",
            "Adds an integer to a hash field's integer value.",
            Exec::Shard(hincrby),
        )
.key_flags(&["RW", "access", "update"]),
        cmd(
            "hincrbyfloat",
            4,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "2.6.0",
            "O(1)",
            "Adds a floating point number to a hash field's value.",
            Exec::Shard(hincrbyfloat),
        )
.key_flags(&["RW", "access", "update"]),
        cmd(
            "hstrlen",
            3,
            READONLY | FAST,
            KEY1,
            g,
            "3.2.0",
            "O(1)",
            "Returns the length of a hash field's value.",
            Exec::Shard(hstrlen),
        )
.key_flags(&["RO"]),
        cmd(
            "hrandfield",
            -2,
            READONLY,
            KEY1,
            g,
            "6.2.0",
            "O(N) where N is the number of fields returned",
            "Returns random fields of a hash, optionally with their values.",
            Exec::Shard(hrandfield),
        )
.key_flags(&["RO", "access"])
.tips(&["nondeterministic_output"]),
        cmd(
            "hscan",
            -3,
            READONLY,
            KEY1,
            g,
            "2.8.0",
            "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..",
            "Iterates over the fields and values of a hash.",
            Exec::Shard(hscan),
        )
.key_flags(&["RO", "access"])
.tips(&["nondeterministic_output"]),
    ]
}

fn limits(ctx: &Ctx) -> HashLimits {
    let c = &ctx.st.config;
    HashLimits {
        max_entries: usize::try_from(c.hash_max_listpack_entries).unwrap_or(usize::MAX),
        max_value: usize::try_from(c.hash_max_listpack_value).unwrap_or(usize::MAX),
    }
}

/// Reads a key as a hash (counting hits and misses): Ok(None) if missing, Err if another type.
fn read_hash<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a HashValue>, &'static str> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Hash(h) => Ok(Some(h)),
            _ => Err(ERR_WRONGTYPE),
        },
    }
}

/// Looks a key up for a write: Ok(None) if missing, Err if another type.
fn write_hash<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut HashValue>, &'static str> {
    match ctx.lookup_write(key) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Hash(h) => Ok(Some(h)),
            _ => Err(ERR_WRONGTYPE),
        },
    }
}

/// Redis's `hashTypeLookupWriteOrCreate`: the hash at `key`, created empty if missing. Callers
/// must add a field before returning so that no empty hash is left behind.
fn hash_or_create<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<&'a mut HashValue, &'static str> {
    if write_hash(ctx, key)?.is_none() {
        let now = ctx.now_ms;
        ctx.db().insert(key, Value::Hash(HashValue::new()), 0, now);
    }
    match write_hash(ctx, key) {
        Ok(Some(h)) => Ok(h),
        _ => Err(ERR_WRONGTYPE), // unreachable: just inserted
    }
}

fn set_pairs(ctx: &mut Ctx, a: &[Bytes], name: &str, r: &mut Reply) -> Option<i64> {
    if a.len() % 2 == 1 {
        r.error(&super::arity_error(name));
        return None;
    }
    let lim = limits(ctx);
    let h = match hash_or_create(ctx, &a[1]) {
        Ok(h) => h,
        Err(e) => {
            r.error(e);
            return None;
        }
    };
    let mut created = 0;
    for pair in a[2..].chunks_exact(2) {
        if h.set(&pair[0], &pair[1], lim) {
            created += 1;
        }
    }
    ctx.notify(class::HASH, "hset", &a[1]);
    // Every field given counts, new or updated (Redis).
    ctx.dirty((a.len() as u64 - 2) / 2);
    Some(created)
}

fn hset(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    if let Some(n) = set_pairs(ctx, a, "hset", r) {
        r.int(n);
    }
}

fn hmset(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    if set_pairs(ctx, a, "hmset", r).is_some() {
        r.ok();
    }
}

fn hsetnx(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let lim = limits(ctx);
    let h = match hash_or_create(ctx, &a[1]) {
        Ok(h) => h,
        Err(e) => return r.error(e),
    };
    if h.contains(&a[2]) {
        ctx.dirty(0);
        r.int(0);
    } else {
        h.set(&a[2], &a[3], lim);
        ctx.notify(class::HASH, "hset", &a[1]);
        r.int(1);
    }
}

fn hget(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    match read_hash(ctx, &a[1]) {
        Ok(Some(h)) => match h.get(&a[2]) {
            Some(v) => r.bulk(v),
            None => r.null(),
        },
        Ok(None) => r.null(),
        Err(e) => r.error(e),
    }
}

fn hmget(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let h = match read_hash(ctx, &a[1]) {
        Ok(h) => h,
        Err(e) => return r.error(e),
    };
    r.array(a.len() - 2);
    for f in &a[2..] {
        match h.and_then(|h| h.get(f)) {
            Some(v) => r.bulk(v),
            None => r.null(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Parts {
    Fields,
    Values,
    Both,
}

/// HGETALL / HKEYS / HVALS (Redis's `genericHgetallCommand`): a map for both, an array for one.
fn get_all(ctx: &mut Ctx, key: &[u8], parts: Parts, r: &mut Reply) {
    let h = match read_hash(ctx, key) {
        Ok(h) => h,
        Err(e) => return r.error(e),
    };
    let len = h.map_or(0, |h| h.len());
    if parts == Parts::Both {
        r.map(len);
    } else {
        r.array(len);
    }
    let Some(h) = h else { return };
    for (f, v) in h.iter() {
        if parts != Parts::Values {
            r.bulk(f);
        }
        if parts != Parts::Fields {
            r.bulk(v);
        }
    }
}

fn hgetall(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    get_all(ctx, &a[1], Parts::Both, r)
}

fn hkeys(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    get_all(ctx, &a[1], Parts::Fields, r)
}

fn hvals(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    get_all(ctx, &a[1], Parts::Values, r)
}

fn hdel(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let h = match write_hash(ctx, &a[1]) {
        Ok(Some(h)) => h,
        Ok(None) => {
            ctx.dirty(0);
            return r.int(0);
        }
        Err(e) => return r.error(e),
    };
    let mut deleted = 0;
    for f in &a[2..] {
        if h.remove(f) {
            deleted += 1;
            if h.is_empty() {
                break;
            }
        }
    }
    let emptied = h.is_empty();
    if deleted > 0 {
        ctx.notify(class::HASH, "hdel", &a[1]);
    }
    if emptied {
        ctx.db().remove(&a[1]);
        ctx.notify(class::GENERIC, "del", &a[1]);
    }
    ctx.dirty(deleted as u64);
    r.int(deleted);
}

fn hexists(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    match read_hash(ctx, &a[1]) {
        Ok(h) => r.int(h.is_some_and(|h| h.contains(&a[2])) as i64),
        Err(e) => r.error(e),
    }
}

fn hlen(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    match read_hash(ctx, &a[1]) {
        Ok(h) => r.int(h.map_or(0, |h| h.len()) as i64),
        Err(e) => r.error(e),
    }
}

fn hstrlen(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    match read_hash(ctx, &a[1]) {
        Ok(h) => r.int(h.and_then(|h| h.get(&a[2])).map_or(0, |v| v.len()) as i64),
        Err(e) => r.error(e),
    }
}

/// The current value of a field for an increment: Ok(None) when the key or field is missing.
fn current_value(ctx: &mut Ctx, key: &[u8], field: &[u8]) -> Result<Option<Bytes>, &'static str> {
    Ok(write_hash(ctx, key)?.and_then(|h| h.get(field).map(Bytes::copy_from_slice)))
}

fn store(ctx: &mut Ctx, key: &[u8], field: &[u8], value: &[u8]) {
    let lim = limits(ctx);
    if let Ok(h) = hash_or_create(ctx, key) {
        h.set(field, value, lim);
    }
}

fn hincrby(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let by = match int_arg(&a[3]) {
        Ok(n) => n,
        Err(e) => return r.error(e),
    };
    let cur = match current_value(ctx, &a[1], &a[2]) {
        Ok(Some(v)) => match args::parse_i64(&v) {
            Some(n) => n,
            None => return r.error("ERR hash value is not an integer"),
        },
        Ok(None) => 0,
        Err(e) => return r.error(e),
    };
    let Some(new) = cur.checked_add(by) else {
        return r.error(args::ERR_OVERFLOW);
    };
    store(
        ctx,
        &a[1],
        &a[2],
        itoa::Buffer::new().format(new).as_bytes(),
    );
    ctx.notify(class::HASH, "hincrby", &a[1]);
    r.int(new);
}

fn hincrbyfloat(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    match parse_long_double(&a[3]) {
        None => return r.error(args::ERR_NOT_FLOAT),
        Some(v) if v.is_infinite() => return r.error("ERR value is NaN or Infinity"),
        Some(_) => {}
    }
    let cur = match current_value(ctx, &a[1], &a[2]) {
        Ok(Some(v)) => {
            if parse_long_double(&v).is_none() {
                return r.error("ERR hash value is not a float");
            }
            v
        }
        Ok(None) => Bytes::from_static(b"0"),
        Err(e) => return r.error(e),
    };
    let Some(text) = crate::types::float::add_decimal(&cur, &a[3]) else {
        return r.error("ERR increment would produce NaN or Infinity");
    };
    store(ctx, &a[1], &a[2], text.as_bytes());
    ctx.notify(class::HASH, "hincrbyfloat", &a[1]);
    r.bulk(text.as_bytes());
}

/// Writes one random pick: a field, or a field and its value (flat in RESP2, a pair in RESP3).
fn reply_pick(r: &mut Reply, f: &[u8], v: &[u8], withvalues: bool) {
    if withvalues && r.resp3 {
        r.array(2);
    }
    r.bulk(f);
    if withvalues {
        r.bulk(v);
    }
}

fn hrandfield(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    if a.len() == 2 {
        return match read_hash(ctx, &a[1]) {
            Err(e) => r.error(e),
            Ok(None) => r.null(),
            Ok(Some(_)) => {
                let st = &mut *ctx.st;
                let h = match st.dbs[ctx.db].keys.get(&a[1]).map(|e| &e.value) {
                    Some(Value::Hash(h)) => h,
                    _ => return r.null(),
                };
                match h.random_pair(&mut st.rng) {
                    Some((f, _)) => r.bulk(f),
                    None => r.null(),
                }
            }
        };
    }
    let l = match args::random_count_arg(&a[2]) {
        Ok(n) => n,
        Err(e) => return r.error(e),
    };
    let mut withvalues = false;
    if a.len() > 4 || (a.len() == 4 && !eq_ic(&a[3], "withvalues")) {
        return r.error(ERR_SYNTAX);
    } else if a.len() == 4 {
        withvalues = true;
        if !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
            return r.error(args::ERR_OUT_OF_RANGE);
        }
    }
    match read_hash(ctx, &a[1]) {
        Err(e) => return r.error(e),
        Ok(None) => return r.array(0),
        Ok(Some(_)) => {}
    }
    if l == 0 {
        return r.array(0);
    }
    if let Err(e) = args::check_random_repeats(l) {
        return r.error(e);
    }
    let st = &mut *ctx.st;
    let h = match st.dbs[ctx.db].keys.get(&a[1]).map(|e| &e.value) {
        Some(Value::Hash(h)) => h,
        _ => return r.array(0),
    };
    let rng = &mut st.rng;
    let count = l.unsigned_abs() as usize;
    let flat = withvalues && !r.resp3;
    if l < 0 || count == 1 {
        // Repetitions allowed: every pick samples the whole hash.
        r.array(if flat { count * 2 } else { count });
        h.random_pairs(rng, count, |f, v| reply_pick(r, f, v, withvalues));
        return;
    }
    let picks = h.random_distinct(rng, count);
    r.array(if flat { picks.len() * 2 } else { picks.len() });
    for (f, v) in &picks {
        reply_pick(r, f, v, withvalues);
    }
}

fn hscan(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let Some(cursor) = super::keys_family::parse_cursor(&a[2]) else {
        return r.error("ERR invalid cursor");
    };
    let h = match read_hash(ctx, &a[1]) {
        Err(e) => return r.error(e),
        Ok(None) => {
            r.array(2);
            r.bulk(b"0");
            return r.array(0);
        }
        Ok(Some(h)) => h,
    };
    let (count, pattern) = match super::keys_family::collection_scan_options(a) {
        Ok(o) => o,
        Err(e) => return r.error(e),
    };
    let mut found: Vec<(&[u8], &[u8])> = Vec::new();
    let mut next = cursor;
    // As in Redis: at most COUNT*10 bucket steps, stopping once COUNT fields were collected;
    // the pattern filters afterwards.
    let mut steps = count.saturating_mul(10);
    loop {
        next = h.scan(next, |f, v| found.push((f, v)));
        if next == 0 || steps == 0 || found.len() >= count {
            break;
        }
        steps -= 1;
    }
    if let Some(p) = pattern {
        found.retain(|(f, _)| glob_match(p, f, false));
    }
    r.array(2);
    r.bulk(next.to_string().as_bytes());
    r.array(found.len() * 2);
    for (f, v) in &found {
        r.bulk(f);
        r.bulk(v);
    }
}

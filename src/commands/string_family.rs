//! String commands (Redis's t_string.c): GET/SET and their variants, counters, ranges, LCS.
//!
//! Every handler here runs on the shard that owns its key(s) and touches only that shard's data.

use bytes::Bytes;

use super::args::{self, eq_ic, int_arg, ERR_NOT_INT, ERR_SYNTAX, ERR_WRONGTYPE};
use super::class;
use super::{cmd, flags::*, CommandSpec, Ctx, Exec, KeySpec, MultiKind, KEY1};
use crate::protocol::Reply;
use crate::types::{Entry, StrValue, Value};

pub fn specs() -> Vec<CommandSpec> {
    let g = "string";
    vec![
        cmd(
            "get",
            2,
            READONLY | FAST,
            KEY1,
            g,
            "1.0.0",
            "O(1)",
            "Returns the string value of a key.",
            Exec::Shard(get),
        )
        .key_flags(&["RO", "access"]),
        cmd(
            "set",
            -3,
            WRITE | DENYOOM,
            KEY1,
            g,
            "1.0.0",
            "O(1)",
            "Sets the string value of a key, with options for expiry and conditions.",
            Exec::Shard(set),
        )
        .key_specs(
            const {
                &[
                    KeySpec::range(&["RW", "access", "update", "variable_flags"], 1, 0, 1)
                        .notes("RW and ACCESS due to the optional `GET` argument"),
                ]
            },
        ),
        cmd(
            "setnx",
            3,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "1.0.0",
            "O(1)",
            "Sets a key only if it does not exist.",
            Exec::Shard(setnx),
        )
        .key_flags(&["OW", "insert"]),
        cmd(
            "setex",
            4,
            WRITE | DENYOOM,
            KEY1,
            g,
            "2.0.0",
            "O(1)",
            "Sets a key with an expiry in seconds.",
            Exec::Shard(setex),
        )
        .key_flags(&["OW", "update"]),
        cmd(
            "psetex",
            4,
            WRITE | DENYOOM,
            KEY1,
            g,
            "2.6.0",
            "O(1)",
            "Sets a key with an expiry in milliseconds.",
            Exec::Shard(psetex),
        )
        .key_flags(&["OW", "update"]),
        cmd(
            "getset",
            3,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "1.0.0",
            "O(1)",
            "Sets a key and returns its previous value.",
            Exec::Shard(getset),
        )
        .deprecated("6.2.0", "SET key value GET")
        .key_flags(&["RW", "access", "update"]),
        cmd(
            "getdel",
            2,
            WRITE | FAST,
            KEY1,
            g,
            "6.2.0",
            "O(1)",
            "Returns a key's value and deletes the key.",
            Exec::Shard(getdel),
        )
        .key_flags(&["RW", "access", "delete"]),
        cmd(
            "getex",
            -2,
            WRITE | FAST,
            KEY1,
            g,
            "6.2.0",
            "O(1)",
            "Returns a key's value and optionally changes its expiry.",
            Exec::Shard(getex),
        )
        .key_specs(
            const {
                &[KeySpec::range(&["RW", "access", "update"], 1, 0, 1)
                    .notes("RW and UPDATE because it changes the TTL")]
            },
        ),
        cmd(
            "mget",
            -2,
            READONLY | FAST,
            (1, -1, 1),
            g,
            "1.0.0",
            "O(N) where N is the number of keys",
            "Returns the values of several keys.",
            Exec::Shard(mget),
        )
        .key_flags(&["RO", "access"])
        .tips(&["request_policy:multi_shard"])
        .multi(MultiKind::Gather),
        cmd(
            "mset",
            -3,
            WRITE | DENYOOM,
            (1, -1, 2),
            g,
            "1.0.1",
            "O(N) where N is the number of keys",
            "Sets several keys at once.",
            Exec::Shard(mset),
        )
        .key_flags(&["OW", "update"])
        .tips(&[
            "request_policy:multi_shard",
            "response_policy:all_succeeded",
        ])
        .multi(MultiKind::SetPairs),
        cmd(
            "msetnx",
            -3,
            WRITE | DENYOOM,
            (1, -1, 2),
            g,
            "1.0.1",
            "O(N) where N is the number of keys",
            "Sets several keys only if none of them exists.",
            Exec::Shard(msetnx),
        )
        .key_flags(&["OW", "insert"])
        .tips(&["request_policy:multi_shard", "response_policy:agg_min"]),
        cmd(
            "append",
            3,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "2.0.0",
            "O(1)",
            "Appends to a key's string value; creates the key if needed.",
            Exec::Shard(append),
        )
        .key_flags(&["RW", "insert"]),
        cmd(
            "strlen",
            2,
            READONLY | FAST,
            KEY1,
            g,
            "2.2.0",
            "O(1)",
            "Returns the length of a string value.",
            Exec::Shard(strlen),
        )
        .key_flags(&["RO"]),
        cmd(
            "incr",
            2,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "1.0.0",
            "O(1)",
            "Increments an integer value by one.",
            Exec::Shard(incr),
        )
        .key_flags(&["RW", "access", "update"]),
        cmd(
            "decr",
            2,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "1.0.0",
            "O(1)",
            "Decrements an integer value by one.",
            Exec::Shard(decr),
        )
        .key_flags(&["RW", "access", "update"]),
        cmd(
            "incrby",
            3,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "1.0.0",
            "O(1)",
            "Increments an integer value by a number.",
            Exec::Shard(incrby),
        )
        .key_flags(&["RW", "access", "update"]),
        cmd(
            "decrby",
            3,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "1.0.0",
            "O(1)",
            "Decrements an integer value by a number.",
            Exec::Shard(decrby),
        )
        .key_flags(&["RW", "access", "update"]),
        cmd(
            "incrbyfloat",
            3,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "2.6.0",
            "O(1)",
            "Increments a floating point value by a number.",
            Exec::Shard(incrbyfloat),
        )
        .key_flags(&["RW", "access", "update"]),
        cmd(
            "getrange",
            4,
            READONLY,
            KEY1,
            g,
            "2.4.0",
            "O(N) where N is the length of the returned string",
            "Returns a substring of a string value.",
            Exec::Shard(getrange),
        )
        .key_flags(&["RO", "access"]),
        cmd(
            "substr",
            4,
            READONLY,
            KEY1,
            g,
            "1.0.0",
            "O(N) where N is the length of the returned string",
            "Returns a substring of a string value (old name of GETRANGE).",
            Exec::Shard(getrange),
        )
        .deprecated("2.0.0", "GETRANGE key start end")
        .key_flags(&["RO", "access"]),
        cmd(
            "setrange",
            4,
            WRITE | DENYOOM,
            KEY1,
            g,
            "2.2.0",
            "O(1), not counting the time to copy the new string in place",
            "Overwrites part of a string value at an offset.",
            Exec::Shard(setrange),
        )
        .key_flags(&["RW", "update"]),
        cmd(
            "lcs",
            -3,
            READONLY,
            (1, 2, 1),
            g,
            "7.0.0",
            "O(N*M) where N and M are the lengths of the strings",
            "Finds the longest common subsequence of two string values.",
            Exec::Shard(lcs),
        )
        .key_flags(&["RO", "access"]),
    ]
}

/// Reads a key as a string: Ok(None) if missing, Err if another type.
fn read_str<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a StrValue>, &'static str> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Str(s) => Ok(Some(s)),
            _ => Err(ERR_WRONGTYPE),
        },
    }
}

fn reply_str(r: &mut Reply, s: &StrValue) {
    match s {
        StrValue::Int(n) => r.bulk_int(*n),
        other => r.bulk(other.stored_bytes().unwrap_or_default()),
    }
}

/// Replies with the string at `key` (or null): Redis's `getGenericCommand`. Returns false after
/// replying WRONGTYPE.
fn get_generic(ctx: &mut Ctx, key: &[u8], r: &mut Reply) -> bool {
    match read_str(ctx, key) {
        Ok(Some(s)) => {
            reply_str(r, s);
            true
        }
        Ok(None) => {
            r.null();
            true
        }
        Err(e) => {
            r.error(e);
            false
        }
    }
}

fn get(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    get_generic(ctx, &a[1], r);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Millis,
}

/// Options shared by SET and GETEX (Redis's `parseExtendedStringArgumentsOrReply`).
#[derive(Default)]
struct SetOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// (value, unit, absolute)
    expire: Option<(&'a [u8], Unit, bool)>,
}

#[derive(PartialEq, Eq)]
enum OptsFor {
    Set,
    Get,
}

fn parse_set_opts<'a>(
    a: &'a [Bytes],
    from: usize,
    kind: OptsFor,
) -> Result<SetOpts<'a>, &'static str> {
    let mut o = SetOpts::default();
    let mut j = from;
    while j < a.len() {
        let opt = &a[j][..];
        let has_next = j + 1 < a.len();
        let exp_kind = |name: &str| eq_ic(opt, name);
        let expire_free = |o: &SetOpts, own: (Unit, bool)| match o.expire {
            None => true,
            Some((_, u, abs)) => (u, abs) == own,
        };
        if eq_ic(opt, "nx") && !o.xx && kind == OptsFor::Set {
            o.nx = true;
        } else if eq_ic(opt, "xx") && !o.nx && kind == OptsFor::Set {
            o.xx = true;
        } else if eq_ic(opt, "get") && kind == OptsFor::Set {
            o.get = true;
        } else if eq_ic(opt, "keepttl") && !o.persist && o.expire.is_none() && kind == OptsFor::Set
        {
            o.keepttl = true;
        } else if eq_ic(opt, "persist") && kind == OptsFor::Get && o.expire.is_none() && !o.keepttl
        {
            o.persist = true;
        } else if let Some(own) = [
            ("ex", (Unit::Seconds, false)),
            ("px", (Unit::Millis, false)),
            ("exat", (Unit::Seconds, true)),
            ("pxat", (Unit::Millis, true)),
        ]
        .iter()
        .find(|(n, _)| exp_kind(n))
        .map(|(_, k)| *k)
        {
            if o.keepttl || o.persist || !expire_free(&o, own) || !has_next {
                return Err(ERR_SYNTAX);
            }
            o.expire = Some((&a[j + 1][..], own.0, own.1));
            j += 1;
        } else {
            return Err(ERR_SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

/// Converts an expiry argument to an absolute Unix time in ms (`getExpireMillisecondsOrReply`).
fn expire_ms(
    val: &[u8],
    unit: Unit,
    absolute: bool,
    now_ms: u64,
    cmd: &str,
) -> Result<u64, String> {
    let mut ms = int_arg(val).map_err(|e| e.to_string())?;
    let invalid = || format!("ERR invalid expire time in '{}' command", cmd);
    if ms <= 0 || (unit == Unit::Seconds && ms > i64::MAX / 1000) {
        return Err(invalid());
    }
    if unit == Unit::Seconds {
        ms *= 1000;
    }
    if !absolute {
        ms = ms.wrapping_add(now_ms as i64);
    }
    if ms <= 0 {
        return Err(invalid());
    }
    Ok(ms as u64)
}

fn set(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let o = match parse_set_opts(a, 3, OptsFor::Set) {
        Ok(o) => o,
        Err(e) => return r.error(e),
    };
    let mut expire_at = 0;
    if let Some((v, unit, abs)) = o.expire {
        match expire_ms(v, unit, abs, ctx.now_ms, "set") {
            Ok(t) => expire_at = t,
            Err(e) => return r.error(&e),
        }
    }
    if o.get && !get_generic(ctx, &a[1], r) {
        return;
    }
    let found = ctx.lookup_write(&a[1]).is_some();
    if (o.nx && found) || (o.xx && !found) {
        ctx.dirty(0);
        if !o.get {
            r.null();
        }
        return;
    }
    let value = Value::Str(StrValue::from_bytes(&a[2]));
    let now = ctx.now_ms;
    if o.keepttl {
        ctx.db().set_keep_ttl(&a[1], value, now);
    } else {
        ctx.db().insert(&a[1], value, expire_at, now);
    }
    ctx.notify(class::STRING, "set", &a[1]);
    if o.expire.is_some() {
        ctx.notify(class::GENERIC, "expire", &a[1]);
    }
    if !o.get {
        r.ok();
    }
}

fn setnx(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    if ctx.lookup_write(&a[1]).is_some() {
        ctx.dirty(0);
        return r.int(0);
    }
    let now = ctx.now_ms;
    ctx.db()
        .insert(&a[1], Value::Str(StrValue::from_bytes(&a[2])), 0, now);
    ctx.notify(class::STRING, "set", &a[1]);
    r.int(1);
}

fn set_with_expire(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply, unit: Unit, name: &str) {
    let at = match expire_ms(&a[2], unit, false, ctx.now_ms, name) {
        Ok(t) => t,
        Err(e) => return r.error(&e),
    };
    let now = ctx.now_ms;
    ctx.db()
        .insert(&a[1], Value::Str(StrValue::from_bytes(&a[3])), at, now);
    ctx.notify(class::STRING, "set", &a[1]);
    ctx.notify(class::GENERIC, "expire", &a[1]);
    r.ok();
}

fn setex(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    set_with_expire(ctx, a, r, Unit::Seconds, "setex");
}

fn psetex(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    set_with_expire(ctx, a, r, Unit::Millis, "psetex");
}

fn getset(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    if !get_generic(ctx, &a[1], r) {
        return;
    }
    let now = ctx.now_ms;
    ctx.db()
        .insert(&a[1], Value::Str(StrValue::from_bytes(&a[2])), 0, now);
    ctx.notify(class::STRING, "set", &a[1]);
}

fn getdel(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    if !get_generic(ctx, &a[1], r) {
        return;
    }
    if ctx.db().remove(&a[1]).is_some() {
        ctx.notify(class::GENERIC, "del", &a[1]);
        ctx.dirty(1);
    } else {
        ctx.dirty(0);
    }
}

fn getex(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let o = match parse_set_opts(a, 2, OptsFor::Get) {
        Ok(o) => o,
        Err(e) => return r.error(e),
    };
    let s = match read_str(ctx, &a[1]) {
        Ok(Some(s)) => s.clone(),
        Ok(None) => {
            ctx.dirty(0);
            return r.null();
        }
        Err(e) => return r.error(e),
    };
    // Only a changed deadline counts (plain GETEX is a read).
    ctx.dirty(0);
    let mut at = 0;
    if let Some((v, unit, abs)) = o.expire {
        match expire_ms(v, unit, abs, ctx.now_ms, "getex") {
            Ok(t) => at = t,
            Err(e) => return r.error(&e),
        }
    }
    reply_str(r, &s);
    let now = ctx.now_ms;
    if let Some((_, _, true)) = o.expire {
        if at <= now {
            ctx.db().remove(&a[1]);
            ctx.notify(class::GENERIC, "del", &a[1]);
            ctx.dirty(1);
            return;
        }
    }
    if o.expire.is_some() {
        ctx.db().set_expire(&a[1], at);
        ctx.notify(class::GENERIC, "expire", &a[1]);
        ctx.dirty(1);
    } else if o.persist && ctx.db().deadline(&a[1]) != 0 {
        ctx.db().set_expire(&a[1], 0);
        ctx.notify(class::GENERIC, "persist", &a[1]);
        ctx.dirty(1);
    }
}

/// MGET on this shard's keys: the value of each key, or None if missing or not a string.
pub fn mget_values(ctx: &mut Ctx, keys: &[Bytes]) -> Vec<Option<Bytes>> {
    keys.iter()
        .map(|k| match ctx.lookup_read(k) {
            Some(e) => match &e.value {
                Value::Str(s) => Some(s.to_bytes()),
                _ => None,
            },
            None => None,
        })
        .collect()
}

pub fn reply_mget(r: &mut Reply, values: &[Option<Bytes>]) {
    r.array(values.len());
    for v in values {
        match v {
            Some(b) => r.bulk(b),
            None => r.null(),
        }
    }
}

fn mget(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    if a.len() > 2 {
        // As for MSET: the lookups' misses overlap when their lines are asked for first.
        ctx.db()
            .keys
            .prefetch_lookups(a[1..].iter().map(|k| &k[..]));
    }
    r.array(a.len() - 1);
    for k in &a[1..] {
        match ctx.lookup_read(k) {
            Some(e) => match &e.value {
                Value::Str(s) => reply_str(r, s),
                _ => r.null(),
            },
            None => r.null(),
        }
    }
}

/// MSET's argument count must be odd (name + pairs).
pub fn mset_arity_ok(a: &[Bytes]) -> bool {
    a.len() % 2 == 1
}

/// Applies key/value pairs on this shard.
pub fn mset_pairs(ctx: &mut Ctx, pairs: &[Bytes]) {
    let now = ctx.now_ms;
    if pairs.len() > 2 {
        // In a keyspace bigger than the caches each insert waits for its bucket and then its
        // chain's first node; asking for all of them first lets those misses overlap.
        ctx.db()
            .keys
            .prefetch_lookups(pairs.chunks_exact(2).map(|kv| &kv[0][..]));
    }
    for kv in pairs.chunks_exact(2) {
        ctx.db()
            .insert(&kv[0], Value::Str(StrValue::from_bytes(&kv[1])), 0, now);
        ctx.notify(class::STRING, "set", &kv[0]);
    }
}

fn mset(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    if !mset_arity_ok(a) {
        return r.error(&super::arity_error("mset"));
    }
    mset_pairs(ctx, &a[1..]);
    ctx.dirty((a.len() as u64 - 1) / 2);
    r.ok();
}

fn msetnx(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    if !mset_arity_ok(a) {
        return r.error(&super::arity_error("msetnx"));
    }
    if a[1..]
        .chunks_exact(2)
        .any(|kv| ctx.lookup_write(&kv[0]).is_some())
    {
        ctx.dirty(0);
        return r.int(0);
    }
    mset_pairs(ctx, &a[1..]);
    ctx.dirty((a.len() as u64 - 1) / 2);
    r.int(1);
}

fn check_len(ctx: &Ctx, total: u64) -> Result<(), &'static str> {
    if total > ctx.st.config.proto_max_bulk_len {
        Err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    } else {
        Ok(())
    }
}

fn append(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let cur_len = match ctx.lookup_write(&a[1]) {
        None => None,
        Some(e) => match &e.value {
            Value::Str(s) => Some(s.len()),
            _ => return r.error(ERR_WRONGTYPE),
        },
    };
    let now = ctx.now_ms;
    match cur_len {
        None => {
            ctx.db()
                .insert(&a[1], Value::Str(StrValue::from_bytes(&a[2])), 0, now);
            ctx.notify(class::STRING, "append", &a[1]);
            r.int(a[2].len() as i64);
        }
        Some(old_len) => {
            let total = old_len + a[2].len();
            if let Err(e) = check_len(ctx, total as u64) {
                return r.error(e);
            }
            // Already looked up (and counted as one access) above; appended in place.
            if let Some(e) = ctx.db().lookup_notouch(&a[1], now) {
                if let Value::Str(s) = &mut e.value {
                    s.append(&a[2]);
                }
            }
            ctx.notify(class::STRING, "append", &a[1]);
            r.int(total as i64);
        }
    }
}

fn strlen(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    match read_str(ctx, &a[1]) {
        Ok(Some(s)) => r.int(s.len() as i64),
        Ok(None) => r.int(0),
        Err(e) => r.error(e),
    }
}

fn incr_by(ctx: &mut Ctx, key: &[u8], by: i64, r: &mut Reply) {
    let now = ctx.now_ms;
    let cur = match ctx.lookup_write(key) {
        None => 0,
        Some(e) => match &e.value {
            Value::Str(StrValue::Int(n)) => *n,
            Value::Str(s) => match s.with_bytes(args::parse_i64) {
                Some(n) => n,
                None => return r.error(ERR_NOT_INT),
            },
            _ => return r.error(ERR_WRONGTYPE),
        },
    };
    let Some(new) = cur.checked_add(by) else {
        return r.error("ERR increment or decrement would overflow");
    };
    // Already looked up (and counted as one access) above.
    match ctx.db().lookup_notouch(key, now) {
        Some(e) => e.value = Value::Str(StrValue::Int(new)),
        None => ctx.db().insert(key, Value::Str(StrValue::Int(new)), 0, now),
    }
    ctx.notify(class::STRING, "incrby", key);
    r.int(new);
}

fn incr(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    incr_by(ctx, &a[1], 1, r)
}

fn decr(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    incr_by(ctx, &a[1], -1, r)
}

fn incrby(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    match int_arg(&a[2]) {
        Ok(n) => incr_by(ctx, &a[1], n, r),
        Err(e) => r.error(e),
    }
}

fn decrby(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    match int_arg(&a[2]) {
        Ok(i64::MIN) => r.error("ERR decrement would overflow"),
        Ok(n) => incr_by(ctx, &a[1], -n, r),
        Err(e) => r.error(e),
    }
}

fn incrbyfloat(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let cur: Bytes = match ctx.lookup_write(&a[1]) {
        None => Bytes::from_static(b"0"),
        Some(e) => match &e.value {
            Value::Str(s) => s.to_bytes(),
            _ => return r.error(ERR_WRONGTYPE),
        },
    };
    if crate::types::float::parse_long_double(&cur).is_none() {
        return r.error(args::ERR_NOT_FLOAT);
    }
    if crate::types::float::parse_long_double(&a[2]).is_none() {
        return r.error(args::ERR_NOT_FLOAT);
    }
    let Some(text) = crate::types::float::add_decimal(&cur, &a[2]) else {
        return r.error("ERR increment would produce NaN or Infinity");
    };
    let now = ctx.now_ms;
    let value = Value::Str(StrValue::text(text.as_bytes()));
    ctx.db().set_keep_ttl(&a[1], value, now);
    ctx.notify(class::STRING, "incrbyfloat", &a[1]);
    r.bulk(text.as_bytes());
}

fn getrange(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let (mut start, mut end) = match (int_arg(&a[2]), int_arg(&a[3])) {
        (Ok(s), Ok(e)) => (s, e),
        _ => return r.error(ERR_NOT_INT),
    };
    let s = match read_str(ctx, &a[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return r.bulk(b""),
        Err(e) => return r.error(e),
    };
    s.with_bytes(|s| {
        let len = s.len() as i64;
        if start < 0 && end < 0 && start > end {
            return r.bulk(b"");
        }
        if start < 0 {
            start += len;
        }
        if end < 0 {
            end += len;
        }
        start = start.max(0);
        end = end.max(0);
        if end >= len {
            end = len - 1;
        }
        if start > end || len == 0 {
            return r.bulk(b"");
        }
        r.bulk(&s[start as usize..=end as usize]);
    })
}

fn setrange(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let offset = match int_arg(&a[2]) {
        Ok(o) => o,
        Err(e) => return r.error(e),
    };
    if offset < 0 {
        return r.error("ERR offset is out of range");
    }
    let value = &a[3];
    let olen = match ctx.lookup_write(&a[1]) {
        None => 0,
        Some(e) => match &e.value {
            Value::Str(s) => s.len(),
            _ => return r.error(ERR_WRONGTYPE),
        },
    };
    if value.is_empty() {
        ctx.dirty(0);
        return r.int(olen as i64);
    }
    let total = offset as u64 + value.len() as u64;
    if let Err(e) = check_len(ctx, total) {
        return r.error(e);
    }
    let offset = offset as usize;
    let now = ctx.now_ms;
    // Already looked up (and counted as one access) above; overwritten in place.
    let new_len = match ctx.db().lookup_notouch(&a[1], now) {
        // The type was checked above.
        Some(Entry {
            value: Value::Str(s),
            ..
        }) => s.set_range(offset, value),
        _ => {
            // A new key: an exact-size buffer, as Redis creates it.
            let mut s = StrValue::Raw(Vec::with_capacity(offset + value.len()));
            let n = s.set_range(offset, value);
            ctx.db().insert(&a[1], Value::Str(s), 0, now);
            n
        }
    };
    ctx.notify(class::STRING, "setrange", &a[1]);
    r.int(new_len as i64);
}

/// What LCS needs of a key: its string (empty if missing), or a type error.
#[allow(clippy::result_unit_err)]
pub fn lcs_input(ctx: &mut Ctx, key: &[u8]) -> Result<Bytes, ()> {
    match ctx.lookup_read(key) {
        None => Ok(Bytes::new()),
        Some(e) => match &e.value {
            Value::Str(s) => Ok(s.to_bytes()),
            _ => Err(()),
        },
    }
}

fn lcs(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let x = lcs_input(ctx, &a[1]);
    let y = lcs_input(ctx, &a[2]);
    let max = ctx.st.config.proto_max_bulk_len;
    lcs_reply(x, y, a, max, r);
}

/// Computes and replies LCS from both inputs (also used when the keys live on two shards).
#[allow(clippy::result_unit_err)]
pub fn lcs_reply(
    x: Result<Bytes, ()>,
    y: Result<Bytes, ()>,
    a: &[Bytes],
    max_bulk: u64,
    r: &mut Reply,
) {
    let (Ok(x), Ok(y)) = (x, y) else {
        return r.error("ERR The specified keys must contain string values");
    };
    let (mut getlen, mut getidx, mut withmatchlen, mut minmatchlen) = (false, false, false, 0i64);
    let mut j = 3;
    while j < a.len() {
        let opt = &a[j][..];
        let more = a.len() - 1 - j;
        if eq_ic(opt, "idx") {
            getidx = true;
        } else if eq_ic(opt, "len") {
            getlen = true;
        } else if eq_ic(opt, "withmatchlen") {
            withmatchlen = true;
        } else if eq_ic(opt, "minmatchlen") && more > 0 {
            match int_arg(&a[j + 1]) {
                Ok(n) => minmatchlen = n.max(0),
                Err(e) => return r.error(e),
            }
            j += 1;
        } else {
            return r.error(ERR_SYNTAX);
        }
        j += 1;
    }
    if getidx && getlen {
        return r.error("ERR If you want both the length and indexes, please just use IDX.");
    }
    let (alen, blen) = (x.len(), y.len());
    let cells = (alen as u128 + 1) * (blen as u128 + 1);
    if cells * 4 > max_bulk as u128 {
        return r
            .error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    let w = blen + 1;
    let mut dp = vec![0u32; (alen + 1) * w];
    for i in 1..=alen {
        for k in 1..=blen {
            dp[i * w + k] = if x[i - 1] == y[k - 1] {
                dp[(i - 1) * w + k - 1] + 1
            } else {
                dp[(i - 1) * w + k].max(dp[i * w + k - 1])
            };
        }
    }
    let total = dp[alen * w + blen] as usize;
    let mut result = vec![0u8; total];
    let mut matches: Vec<[i64; 5]> = Vec::new();
    let (mut i, mut k, mut idx) = (alen, blen, total);
    let mut ar = (alen, 0usize); // (start, end); start == alen means "no range open"
    let mut br = (0usize, 0usize);
    while i > 0 && k > 0 {
        let mut emit = false;
        if x[i - 1] == y[k - 1] {
            result[idx - 1] = x[i - 1];
            if ar.0 == alen {
                ar = (i - 1, i - 1);
                br = (k - 1, k - 1);
            } else if ar.0 == i && br.0 == k {
                ar.0 -= 1;
                br.0 -= 1;
            } else {
                emit = true;
            }
            if ar.0 == 0 || br.0 == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            k -= 1;
        } else {
            let l1 = dp[(i - 1) * w + k];
            let l2 = dp[i * w + k - 1];
            if l1 > l2 {
                i -= 1;
            } else {
                k -= 1;
            }
            if ar.0 != alen {
                emit = true;
            }
        }
        if emit {
            let mlen = (ar.1 - ar.0 + 1) as i64;
            if minmatchlen == 0 || mlen >= minmatchlen {
                matches.push([ar.0 as i64, ar.1 as i64, br.0 as i64, br.1 as i64, mlen]);
            }
            ar.0 = alen;
        }
    }
    if getlen {
        r.int(total as i64);
    } else if getidx {
        r.map(2);
        r.bulk(b"matches");
        r.array(matches.len());
        for m in &matches {
            r.array(2 + withmatchlen as usize);
            r.array(2);
            r.int(m[0]);
            r.int(m[1]);
            r.array(2);
            r.int(m[2]);
            r.int(m[3]);
            if withmatchlen {
                r.int(m[4]);
            }
        }
        r.bulk(b"len");
        r.int(total as i64);
    } else {
        r.bulk(&result);
    }
}

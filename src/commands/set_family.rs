//! Set commands (Redis's t_set.c): membership, random members and pops, moves, the algebra
//! (SINTER/SUNION/SDIFF and their STORE and CARD forms) and SSCAN.
//!
//! Every handler runs on the shard that owns its keys and touches only that shard's data; the
//! multi-key commands read and write their keys through `ctx` as if all were local (keys that
//! span shards are the transaction layer's business). Encodings (intset, listpack, hashtable)
//! are the value's business (`types::set`): handlers only pass the configured thresholds along.
//! A set left without members is deleted, so an empty set is never visible, and a STORE with an
//! empty result deletes its destination.
//!
//! Reply order is the set's own order (ascending for an intset, as in Redis); the algebra builds
//! its results the way Redis does (from an empty intset, member by member, with Redis's choice
//! of SDIFF algorithm), so stored results get the encoding Redis would give them.

use bytes::Bytes;
use rand::rngs::SmallRng;

use super::args::{self, eq_ic, parse_i64, ERR_SYNTAX, ERR_WRONGTYPE};
use super::class;
use super::{cmd, flags::*, numkeys_positions, CommandSpec, Ctx, Exec, KeySpec, KEY1, NO_KEYS};
use crate::config::glob_match;
use crate::protocol::Reply;
use crate::types::set::{Item, Member};
use crate::types::{SetLimits, SetValue, Value};

pub fn specs() -> Vec<CommandSpec> {
    let g = "set";
    let inter = "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.";
    let total = "O(N) where N is the total number of elements in all given sets.";
    vec![
        cmd(
            "sadd",
            -3,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "1.0.0",
            "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
            "Adds members to a set; returns how many were new.",
            Exec::Shard(sadd),
        )
.key_flags(&["RW", "insert"]),
        cmd(
            "srem",
            -3,
            WRITE | FAST,
            KEY1,
            g,
            "1.0.0",
            "O(N) where N is the number of members to be removed.",
            "Removes members from a set; deletes the key with its last member.",
            Exec::Shard(srem),
        )
.key_flags(&["RW", "delete"]),
        cmd(
            "smembers",
            2,
            READONLY,
            KEY1,
            g,
            "1.0.0",
            "O(N) where N is the set cardinality.",
            "Returns every member of a set.",
            Exec::Shard(smembers),
        )
.key_flags(&["RO", "access"])
.tips(&["nondeterministic_output_order"]),
        cmd(
            "sismember",
            3,
            READONLY | FAST,
            KEY1,
            g,
            "1.0.0",
            "O(1)",
            "Tells whether a value is a member of a set.",
            Exec::Shard(sismember),
        )
.key_flags(&["RO"]),
        cmd(
            "smismember",
            -3,
            READONLY | FAST,
            KEY1,
            g,
            "6.2.0",
            "O(N) where N is the number of elements being checked for membership",
            "Tells, for each of several values, whether it is a member of a set.",
            Exec::Shard(smismember),
        )
.key_flags(&["RO", "access"]),
        cmd(
            "scard",
            2,
            READONLY | FAST,
            KEY1,
            g,
            "1.0.0",
            "O(1)",
            "Returns the number of members of a set.",
            Exec::Shard(scard),
        )
.key_flags(&["RO"]),
        cmd(
            "spop",
            -2,
            WRITE | FAST,
            KEY1,
            g,
            "1.0.0",
            "Without the count argument O(1), otherwise O(N) where N is the value of the passed count.",
            "Removes and returns random members of a set.",
            Exec::Shard(spop),
        )
.key_flags(&["RW", "access", "delete"])
.tips(&["nondeterministic_output"]),
        cmd(
            "srandmember",
            -2,
            READONLY,
            KEY1,
            g,
            "1.0.0",
            "Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count.",
            "Returns random members of a set (distinct, or with repeats for a negative count).",
            Exec::Shard(srandmember),
        )
.key_flags(&["RO", "access"])
.tips(&["nondeterministic_output"]),
        cmd(
            "smove",
            4,
            WRITE | FAST,
            (1, 2, 1),
            g,
            "1.0.0",
            "O(1)",
            "Moves a member from one set to another.",
            Exec::Shard(smove),
        )
.key_specs(const { &[KeySpec::range(&["RW", "access", "delete"], 1, 0, 1), KeySpec::range(&["RW", "insert"], 2, 0, 1)] }),
        cmd(
            "sinter",
            -2,
            READONLY,
            (1, -1, 1),
            g,
            "1.0.0",
            inter,
            "Returns the intersection of sets.",
            Exec::Shard(sinter),
        )
.key_flags(&["RO", "access"])
.tips(&["nondeterministic_output_order"]),
        cmd(
            "sintercard",
            -3,
            READONLY,
            NO_KEYS,
            g,
            "7.0.0",
            inter,
            "Returns the size of the intersection of sets, optionally stopping at a limit.",
            Exec::Shard(sintercard),
        )
.key_specs(const { &[KeySpec::numkeys(&["RO", "access"], 1)] })
        .movable_keys(sintercard_keys),
        cmd(
            "sinterstore",
            -3,
            WRITE | DENYOOM,
            (1, -1, 1),
            g,
            "1.0.0",
            inter,
            "Stores the intersection of sets in a key.",
            Exec::Shard(sinterstore),
        )
.key_specs(const { &[KeySpec::range(&["RW", "update"], 1, 0, 1), KeySpec::range(&["RO", "access"], 2, -1, 1)] }),
        cmd(
            "sunion",
            -2,
            READONLY,
            (1, -1, 1),
            g,
            "1.0.0",
            total,
            "Returns the union of sets.",
            Exec::Shard(sunion),
        )
.key_flags(&["RO", "access"])
.tips(&["nondeterministic_output_order"]),
        cmd(
            "sunionstore",
            -3,
            WRITE | DENYOOM,
            (1, -1, 1),
            g,
            "1.0.0",
            total,
            "Stores the union of sets in a key.",
            Exec::Shard(sunionstore),
        )
.key_specs(const { &[KeySpec::range(&["OW", "update"], 1, 0, 1), KeySpec::range(&["RO", "access"], 2, -1, 1)] }),
        cmd(
            "sdiff",
            -2,
            READONLY,
            (1, -1, 1),
            g,
            "1.0.0",
            total,
            "Returns the members of the first set that are in none of the others.",
            Exec::Shard(sdiff),
        )
.key_flags(&["RO", "access"])
.tips(&["nondeterministic_output_order"]),
        cmd(
            "sdiffstore",
            -3,
            WRITE | DENYOOM,
            (1, -1, 1),
            g,
            "1.0.0",
            total,
            "Stores the difference of sets in a key.",
            Exec::Shard(sdiffstore),
        )
.key_specs(const { &[KeySpec::range(&["OW", "update"], 1, 0, 1), KeySpec::range(&["RO", "access"], 2, -1, 1)] }),
        cmd(
            "sscan",
            -3,
            READONLY,
            KEY1,
            g,
            "2.8.0",
            "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..",
            "Iterates over the members of a set.",
            Exec::Shard(sscan),
        )
.key_flags(&["RO", "access"])
.tips(&["nondeterministic_output"]),
    ]
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
fn sintercard_keys(a: &[Bytes]) -> Option<Vec<usize>> {
    numkeys_positions(a, 1, &[])
}

fn limits(ctx: &Ctx) -> SetLimits {
    let c = &ctx.st.config;
    let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    SetLimits {
        max_intset_entries: size(c.set_max_intset_entries),
        max_listpack_entries: size(c.set_max_listpack_entries),
        max_listpack_value: size(c.set_max_listpack_value),
    }
}

/// Reads a key as a set (counting hits and misses): Ok(None) if missing, Err if another type.
fn read_set<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a SetValue>, &'static str> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Set(s) => Ok(Some(s)),
            _ => Err(ERR_WRONGTYPE),
        },
    }
}

/// Looks a key up for a write: Ok(None) if missing, Err if another type.
fn write_set<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut SetValue>, &'static str> {
    match ctx.lookup_write(key) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Set(s) => Ok(Some(s)),
            _ => Err(ERR_WRONGTYPE),
        },
    }
}

/// The set at `key` (already looked up, so not expired) and the shard's random generator.
fn set_and_rng<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Option<(&'a mut SetValue, &'a mut SmallRng)> {
    let db = ctx.db;
    let st = &mut *ctx.st;
    match st.dbs[db].keys.get_mut(key).map(|e| &mut e.value) {
        Some(Value::Set(s)) => Some((s, &mut st.rng)),
        _ => None,
    }
}

fn reply_member(r: &mut Reply, m: Member) {
    match m {
        Member::Int(n) => r.bulk_int(n),
        Member::Str(s) => r.bulk(s),
    }
}

fn reply_items(r: &mut Reply, items: &[Item]) {
    for it in items {
        reply_member(r, it.as_member());
    }
}

/// Deletes `key` if its set is empty (after removals).
fn delete_if_empty(ctx: &mut Ctx, key: &[u8]) {
    let empty = matches!(
        ctx.db().keys.get(key).map(|e| &e.value),
        Some(Value::Set(s)) if s.is_empty()
    );
    if empty {
        ctx.db().remove(key);
        ctx.notify(class::GENERIC, "del", key);
    }
}

fn sadd(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let lim = limits(ctx);
    match write_set(ctx, &a[1]) {
        Err(e) => return r.error(e),
        Ok(Some(_)) => {}
        Ok(None) => {
            let now = ctx.now_ms;
            let s = SetValue::new_for(&a[2], a.len() - 2, lim);
            ctx.db().insert(&a[1], Value::Set(s), 0, now);
        }
    }
    let Ok(Some(s)) = write_set(ctx, &a[1]) else {
        return r.error(ERR_WRONGTYPE); // unreachable: checked or just inserted
    };
    let added = a[2..].iter().filter(|m| s.insert(m, lim)).count();
    if added > 0 {
        ctx.notify(class::SET, "sadd", &a[1]);
    }
    ctx.dirty(added as u64);
    r.int(added as i64);
}

fn srem(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let s = match write_set(ctx, &a[1]) {
        Ok(Some(s)) => s,
        Ok(None) => {
            ctx.dirty(0);
            return r.int(0);
        }
        Err(e) => return r.error(e),
    };
    let mut removed = 0;
    for m in &a[2..] {
        if s.remove(m) {
            removed += 1;
            if s.is_empty() {
                break;
            }
        }
    }
    if removed > 0 {
        ctx.notify(class::SET, "srem", &a[1]);
    }
    delete_if_empty(ctx, &a[1]);
    ctx.dirty(removed as u64);
    r.int(removed);
}

fn smembers(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    match read_set(ctx, &a[1]) {
        Err(e) => r.error(e),
        Ok(None) => r.set(0),
        Ok(Some(s)) => {
            r.set(s.len());
            s.iter().for_each(|m| reply_member(r, m));
        }
    }
}

fn sismember(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    match read_set(ctx, &a[1]) {
        Err(e) => r.error(e),
        Ok(s) => r.int(s.is_some_and(|s| s.contains(&a[2])) as i64),
    }
}

fn smismember(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let s = match read_set(ctx, &a[1]) {
        Err(e) => return r.error(e),
        Ok(s) => s,
    };
    r.array(a.len() - 2);
    for m in &a[2..] {
        r.int(s.is_some_and(|s| s.contains(m)) as i64);
    }
}

fn scard(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    match read_set(ctx, &a[1]) {
        Err(e) => r.error(e),
        Ok(s) => r.int(s.map_or(0, |s| s.len()) as i64),
    }
}

fn spop(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    match a.len() {
        2 => {
            match write_set(ctx, &a[1]) {
                Err(e) => return r.error(e),
                Ok(None) => {
                    ctx.dirty(0);
                    return r.null();
                }
                Ok(Some(_)) => {}
            }
            match set_and_rng(ctx, &a[1]).and_then(|(s, rng)| s.pop_random(rng)) {
                Some(it) => {
                    reply_member(r, it.as_member());
                    ctx.notify(class::SET, "spop", &a[1]);
                }
                None => r.null(),
            }
            delete_if_empty(ctx, &a[1]);
        }
        3 => {
            let count = match parse_i64(&a[2]) {
                Some(n) if n >= 0 => n as usize,
                _ => return r.error("ERR value is out of range, must be positive"),
            };
            pop_reply(ctx, &a[1], count, r);
        }
        _ => r.error(ERR_SYNTAX),
    }
}

/// SPOP key count: pops up to `count` random members of the set at `key` into `r` as a set
/// reply (empty when the key is missing), deleting the key when it empties. Exposed for a
/// caller that pops on someone else's behalf; returns false when nothing was popped (missing
/// key, zero count or wrong type, which is replied as an error).
pub fn pop_reply(ctx: &mut Ctx, key: &[u8], count: usize, r: &mut Reply) -> bool {
    let lim = limits(ctx);
    let len = match write_set(ctx, key) {
        Err(e) => {
            r.error(e);
            return false;
        }
        Ok(None) => 0,
        Ok(Some(s)) => s.len(),
    };
    if len == 0 || count == 0 {
        ctx.dirty(0);
        r.set(0);
        return false;
    }
    let Some((s, rng)) = set_and_rng(ctx, key) else {
        ctx.dirty(0);
        r.set(0);
        return false;
    };
    if count >= len {
        // The whole set, in its own order.
        r.set(len);
        s.iter().for_each(|m| reply_member(r, m));
        // One change per member popped (Redis).
        ctx.dirty(len as u64);
        ctx.notify(class::SET, "spop", key);
        ctx.db().remove(key);
        ctx.notify(class::GENERIC, "del", key);
        return true;
    }
    let popped = s.pop_many(rng, count, lim);
    ctx.dirty(popped.len() as u64);
    r.set(popped.len());
    reply_items(r, &popped);
    ctx.notify(class::SET, "spop", key);
    delete_if_empty(ctx, key);
    true
}

fn srandmember(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    if a.len() > 3 {
        return r.error(ERR_SYNTAX);
    }
    if a.len() == 2 {
        match read_set(ctx, &a[1]) {
            Err(e) => return r.error(e),
            Ok(None) => return r.null(),
            Ok(Some(_)) => {}
        }
        return match set_and_rng(ctx, &a[1]) {
            Some((s, rng)) => match s.random_member(rng) {
                Some(m) => reply_member(r, m),
                None => r.null(),
            },
            None => r.null(),
        };
    }
    let l = match args::random_count_arg(&a[2]) {
        Ok(n) => n,
        Err(e) => return r.error(e),
    };
    match read_set(ctx, &a[1]) {
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
    let Some((s, rng)) = set_and_rng(ctx, &a[1]) else {
        return r.array(0);
    };
    let count = usize::try_from(l.unsigned_abs()).unwrap_or(usize::MAX);
    if l < 0 || count == 1 {
        // Repeats allowed: every pick samples the whole set.
        r.array(count);
        s.random_with_repeats(rng, count, |m| reply_member(r, m));
        return;
    }
    let n = count.min(s.len());
    r.array(n);
    s.random_distinct(rng, n, |m| reply_member(r, m));
}

fn smove(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let (src, dst, member) = (&a[1], &a[2], &a[3]);
    let lim = limits(ctx);
    // Both keys are looked up (and expired) first; a missing source answers 0 before any type
    // check, like Redis.
    let src_state = write_set(ctx, src).map(|s| s.is_some());
    let dst_state = write_set(ctx, dst).map(|s| s.is_some());
    match src_state {
        Ok(false) => {
            ctx.dirty(0);
            return r.int(0);
        }
        Ok(true) => {}
        Err(e) => return r.error(e),
    }
    let dst_exists = match dst_state {
        Ok(d) => d,
        Err(e) => return r.error(e),
    };
    if src == dst {
        let has = matches!(write_set(ctx, src), Ok(Some(s)) if s.contains(member));
        ctx.dirty(0);
        return r.int(has as i64);
    }
    let removed = match write_set(ctx, src) {
        Ok(Some(s)) => s.remove(member),
        _ => false,
    };
    if !removed {
        ctx.dirty(0);
        return r.int(0);
    }
    // A change for the removal and one for the addition, if the member was new there (Redis).
    ctx.dirty(1);
    ctx.notify(class::SET, "srem", src);
    delete_if_empty(ctx, src);
    if !dst_exists {
        let now = ctx.now_ms;
        let s = SetValue::new_for(member, 1, lim);
        ctx.db().insert(dst, Value::Set(s), 0, now);
    }
    if let Ok(Some(s)) = write_set(ctx, dst) {
        if s.insert(member, lim) {
            ctx.dirty(1);
            ctx.notify(class::SET, "sadd", dst);
        }
    }
    r.int(1);
}

/// Looks up every source key of a set operation (expiring them and counting hits and misses);
/// WRONGTYPE if any of them holds another type.
fn check_sources(ctx: &mut Ctx, keys: &[Bytes]) -> Result<(), &'static str> {
    for k in keys {
        read_set(ctx, k)?;
    }
    Ok(())
}

/// The sets at `keys` (None for a missing key), after [`check_sources`].
fn sources<'a>(ctx: &'a Ctx, keys: &[Bytes]) -> Vec<Option<&'a SetValue>> {
    let db = &ctx.st.dbs[ctx.db];
    keys.iter()
        .map(|k| match db.keys.get(k).map(|e| &e.value) {
            Some(Value::Set(s)) => Some(s),
            _ => None,
        })
        .collect()
}

/// Writes a computed set to `dst` (replacing whatever was there, deadline included) or deletes
/// `dst` when the result is empty; replies with the result's size.
fn store(ctx: &mut Ctx, dst: &[u8], result: SetValue, event: &'static str, r: &mut Reply) {
    let n = result.len();
    // One change, or none for an empty result where `dst` was missing already (Redis).
    if n == 0 {
        if ctx.db().delete(dst) {
            ctx.notify(class::GENERIC, "del", dst);
        } else {
            ctx.dirty(0);
        }
    } else {
        let now = ctx.now_ms;
        ctx.db().insert(dst, Value::Set(result), 0, now);
        ctx.notify(class::SET, event, dst);
    }
    r.int(n as i64);
}

/// What an intersection produces.
enum InterOut<'k> {
    Members,
    Card { limit: usize },
    Store(&'k [u8]),
}

/// SINTER / SINTERCARD / SINTERSTORE (Redis's `sinterGenericCommand`): walks the smallest set
/// and keeps the members every other set has.
fn inter(ctx: &mut Ctx, keys: &[Bytes], out: InterOut, r: &mut Reply) {
    if let Err(e) = check_sources(ctx, keys) {
        return r.error(e);
    }
    let lim = limits(ctx);
    let found = sources(ctx, keys);
    let sets: Option<Vec<&SetValue>> = found.into_iter().collect();
    let Some(mut sets) = sets else {
        // A missing key is an empty set, and so is the intersection.
        return match out {
            InterOut::Members => r.set(0),
            InterOut::Card { .. } => r.int(0),
            InterOut::Store(dst) => store(ctx, dst, SetValue::new(), "sinterstore", r),
        };
    };
    sets.sort_by_key(|s| s.len());
    let Some((smallest, others)) = sets.split_first() else {
        return r.set(0); // unreachable: the arity asks for a key
    };
    let mut common = smallest
        .iter()
        .filter(|m| others.iter().all(|o| o.contains_member(*m)));
    match out {
        InterOut::Members => {
            let members: Vec<Member> = common.collect();
            r.set(members.len());
            members.into_iter().for_each(|m| reply_member(r, m));
        }
        InterOut::Card { limit } => {
            let n = if limit == 0 {
                common.count()
            } else {
                common.take(limit).count()
            };
            r.int(n as i64);
        }
        InterOut::Store(dst) => {
            // From an empty intset, member by member, as Redis builds it.
            let mut result = SetValue::new();
            for m in &mut common {
                result.insert_member(m, lim);
            }
            store(ctx, dst, result, "sinterstore", r);
        }
    }
}

fn sinter(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    inter(ctx, &a[1..], InterOut::Members, r)
}

fn sinterstore(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    inter(ctx, &a[2..], InterOut::Store(&a[1]), r)
}

fn sintercard(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    const ERR_NUMKEYS: &str = "ERR numkeys should be greater than 0";
    let numkeys = match parse_i64(&a[1]) {
        Some(n) if n >= 1 => n as u64,
        _ => return r.error(ERR_NUMKEYS),
    };
    if numkeys > (a.len() - 2) as u64 {
        return r.error("ERR Number of keys can't be greater than number of args");
    }
    let keys_end = 2 + numkeys as usize;
    let mut limit = 0usize;
    let mut j = keys_end;
    while j < a.len() {
        if eq_ic(&a[j], "limit") && j + 1 < a.len() {
            limit = match parse_i64(&a[j + 1]) {
                Some(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
                _ => return r.error("ERR LIMIT can't be negative"),
            };
            j += 2;
        } else {
            return r.error(ERR_SYNTAX);
        }
    }
    inter(ctx, &a[2..keys_end], InterOut::Card { limit }, r)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Diff,
}

/// SUNION / SDIFF and their STORE forms (Redis's `sunionDiffGenericCommand`): the result is
/// built in a fresh set starting as an empty intset; SDIFF picks Redis's algorithm (check each
/// member of the first set against the others, or copy the first set and remove the others'
/// members) by the same estimate, so the result's encoding is the one Redis would produce.
fn union_diff(ctx: &mut Ctx, keys: &[Bytes], op: Op, dst: Option<&[u8]>, r: &mut Reply) {
    if let Err(e) = check_sources(ctx, keys) {
        return r.error(e);
    }
    let lim = limits(ctx);
    let sets = sources(ctx, keys);
    let mut result = SetValue::new();
    match op {
        Op::Union => {
            for s in sets.iter().flatten() {
                for m in s.iter() {
                    result.insert_member(m, lim);
                }
            }
        }
        Op::Diff => {
            // Subtracting the first set from itself (it appears again) leaves nothing.
            let first = sets[0].filter(|_| !keys[1..].iter().any(|k| *k == keys[0]));
            if let Some(first) = first {
                let mut others: Vec<&SetValue> = sets[1..].iter().flatten().copied().collect();
                let sizes: usize = others.iter().map(|s| s.len()).sum();
                let algo_one = first.len() * (others.len() + 1) / 2;
                let algo_two = first.len() + sizes;
                if algo_one <= algo_two {
                    // Bigger sets first: a member common to them is found sooner.
                    others.sort_by_key(|s| std::cmp::Reverse(s.len()));
                    for m in first.iter() {
                        if !others.iter().any(|o| o.contains_member(m)) {
                            result.insert_member(m, lim);
                        }
                    }
                } else {
                    for m in first.iter() {
                        result.insert_member(m, lim);
                    }
                    for o in &others {
                        for m in o.iter() {
                            result.remove_member(m);
                        }
                        if result.is_empty() {
                            break;
                        }
                    }
                }
            }
        }
    }
    match dst {
        Some(dst) => {
            let event = match op {
                Op::Union => "sunionstore",
                Op::Diff => "sdiffstore",
            };
            store(ctx, dst, result, event, r)
        }
        None => {
            r.set(result.len());
            result.iter().for_each(|m| reply_member(r, m));
        }
    }
}

fn sunion(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    union_diff(ctx, &a[1..], Op::Union, None, r)
}

fn sunionstore(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    union_diff(ctx, &a[2..], Op::Union, Some(&a[1]), r)
}

fn sdiff(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    union_diff(ctx, &a[1..], Op::Diff, None, r)
}

fn sdiffstore(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    union_diff(ctx, &a[2..], Op::Diff, Some(&a[1]), r)
}

fn sscan(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let Some(cursor) = super::keys_family::parse_cursor(&a[2]) else {
        return r.error("ERR invalid cursor");
    };
    let s = match read_set(ctx, &a[1]) {
        Err(e) => return r.error(e),
        Ok(None) => {
            r.array(2);
            r.bulk(b"0");
            return r.array(0);
        }
        Ok(Some(s)) => s,
    };
    let (count, pattern) = match super::keys_family::collection_scan_options(a) {
        Ok(o) => o,
        Err(e) => return r.error(e),
    };
    let mut found: Vec<Item> = Vec::new();
    let mut next = cursor;
    // As in Redis: at most COUNT*10 bucket steps, stopping once COUNT members were collected;
    // the pattern filters afterwards.
    let mut steps = count.saturating_mul(10);
    loop {
        next = s.scan(next, |m| found.push(m.to_item()));
        if next == 0 || steps == 0 || found.len() >= count {
            break;
        }
        steps -= 1;
    }
    if let Some(p) = pattern {
        found.retain(|m| m.as_member().with_bytes(|b| glob_match(p, b, false)));
    }
    r.array(2);
    r.bulk(next.to_string().as_bytes());
    r.array(found.len());
    reply_items(r, &found);
}

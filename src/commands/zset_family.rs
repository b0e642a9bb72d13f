//! Sorted set commands (Redis's t_zset.c): adds and increments, scores and ranks, ranges by
//! rank, score and lex (read, store and remove), pops, random members, the set operations
//! (ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD) and ZSCAN.
//!
//! Every handler runs on the shard that owns its keys and touches only that shard's data;
//! multi-key commands read and write their keys through `ctx` as if all were local (the
//! cross-shard layer runs them when keys span shards). The encoding (listpack or skiplist) is
//! the value's business (`types::zset`); handlers only pass the configured thresholds along.
//! A sorted set left without members is deleted, so an empty sorted set is never visible.
//!
//! The pop core ([`pop_reply`]) and ZMPOP's argument parser ([`parse_mpop`]) are public for the
//! blocking variants (BZPOPMIN, BZPOPMAX, BZMPOP), which live with the blocking framework.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use rand::Rng;

use super::args::{self, eq_ic, int_arg, ERR_NOT_FLOAT, ERR_SYNTAX, ERR_WRONGTYPE};
use super::class;
use super::{cmd, flags::*, numkeys_positions, CommandSpec, Ctx, Exec, KeySpec, KEY1};
use crate::config::glob_match;
use crate::protocol::reply::format_double;
use crate::protocol::Reply;
use crate::types::zset::{cmp_entries, LexBound, LexRange, ScoreRange, ZRange};
use crate::types::{Value, ZSetValue, ZsetLimits};

const ERR_SCORE_RANGE: &str = "ERR min or max is not a float";
const ERR_LEX_RANGE: &str = "ERR min or max not valid string range item";
const ERR_NAN: &str = "ERR resulting score is not a number (NaN)";
const ERR_NOT_POSITIVE: &str = "ERR value is out of range, must be positive";

pub fn specs() -> Vec<CommandSpec> {
    let g = "sorted-set";
    vec![
        cmd(
            "zadd",
            -4,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "1.2.0",
            "O(log(N)) for each item added, where N is the number of elements in the sorted set.",
            "Adds members to a sorted set or updates their scores (NX XX GT LT CH INCR).",
            Exec::Shard(zadd),
        )
.key_flags(&["RW", "update"]),
        cmd(
            "zincrby",
            4,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "1.2.0",
            "O(log(N)) where N is the number of elements in the sorted set.",
            "Increments the score of a sorted set member.",
            Exec::Shard(zincrby),
        )
.key_flags(&["RW", "access", "update"]),
        cmd(
            "zrem",
            -3,
            WRITE | FAST,
            KEY1,
            g,
            "1.2.0",
            "O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed.",
            "Removes members from a sorted set; deletes the key with its last member.",
            Exec::Shard(zrem),
        )
.key_flags(&["RW", "delete"]),
        cmd(
            "zcard",
            2,
            READONLY | FAST,
            KEY1,
            g,
            "1.2.0",
            "O(1)",
            "Returns the number of members of a sorted set.",
            Exec::Shard(zcard),
        )
.key_flags(&["RO"]),
        cmd(
            "zcount",
            4,
            READONLY | FAST,
            KEY1,
            g,
            "2.0.0",
            "O(log(N)) with N being the number of elements in the sorted set.",
            "Counts the members whose score is within a range.",
            Exec::Shard(zcount),
        )
.key_flags(&["RO", "access"]),
        cmd(
            "zlexcount",
            4,
            READONLY | FAST,
            KEY1,
            g,
            "2.8.9",
            "O(log(N)) with N being the number of elements in the sorted set.",
            "Counts the members within a lexicographical range.",
            Exec::Shard(zlexcount),
        )
.key_flags(&["RO", "access"]),
        cmd(
            "zscore",
            3,
            READONLY | FAST,
            KEY1,
            g,
            "1.2.0",
            "O(1)",
            "Returns the score of a sorted set member.",
            Exec::Shard(zscore),
        )
.key_flags(&["RO", "access"]),
        cmd(
            "zmscore",
            -3,
            READONLY | FAST,
            KEY1,
            g,
            "6.2.0",
            "O(N) where N is the number of members being requested.",
            "Returns the scores of several sorted set members.",
            Exec::Shard(zmscore),
        )
.key_flags(&["RO", "access"]),
        cmd(
            "zrank",
            3,
            READONLY | FAST,
            KEY1,
            g,
            "2.0.0",
            "O(log(N))",
            "Returns the rank of a member, lowest score first.",
            Exec::Shard(zrank),
        )
.key_flags(&["RO", "access"]),
        cmd(
            "zrevrank",
            3,
            READONLY | FAST,
            KEY1,
            g,
            "2.0.0",
            "O(log(N))",
            "Returns the rank of a member, highest score first.",
            Exec::Shard(zrevrank),
        )
.key_flags(&["RO", "access"]),
        cmd(
            "zrange",
            -4,
            READONLY,
            KEY1,
            g,
            "1.2.0",
            "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.",
            "Returns members in a range of ranks, scores (BYSCORE) or members (BYLEX).",
            Exec::Shard(zrange),
        )
.key_flags(&["RO", "access"]),
        cmd(
            "zrangestore",
            -5,
            WRITE | DENYOOM,
            (1, 2, 1),
            g,
            "6.2.0",
            "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored into the destination key.",
            "Stores a range of a sorted set into another key.",
            Exec::Shard(zrangestore),
        )
.key_specs(const { &[KeySpec::range(&["OW", "update"], 1, 0, 1), KeySpec::range(&["RO", "access"], 2, 0, 1)] }),
        cmd(
            "zrangebyscore",
            -4,
            READONLY,
            KEY1,
            g,
            "1.0.5",
            "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
            "Returns members within a score range.",
            Exec::Shard(zrangebyscore),
        )
.deprecated("6.2.0", "ZRANGE key min max BYSCORE")
.key_flags(&["RO", "access"]),
        cmd(
            "zrevrangebyscore",
            -4,
            READONLY,
            KEY1,
            g,
            "2.2.0",
            "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
            "Returns members within a score range, highest first.",
            Exec::Shard(zrevrangebyscore),
        )
.deprecated("6.2.0", "ZRANGE key max min BYSCORE REV")
.key_flags(&["RO", "access"]),
        cmd(
            "zrangebylex",
            -4,
            READONLY,
            KEY1,
            g,
            "2.8.9",
            "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
            "Returns members within a lexicographical range.",
            Exec::Shard(zrangebylex),
        )
.deprecated("6.2.0", "ZRANGE key min max BYLEX")
.key_flags(&["RO", "access"]),
        cmd(
            "zrevrangebylex",
            -4,
            READONLY,
            KEY1,
            g,
            "2.8.9",
            "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
            "Returns members within a lexicographical range, highest first.",
            Exec::Shard(zrevrangebylex),
        )
.deprecated("6.2.0", "ZRANGE key max min BYLEX REV")
.key_flags(&["RO", "access"]),
        cmd(
            "zrevrange",
            -4,
            READONLY,
            KEY1,
            g,
            "1.2.0",
            "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.",
            "Returns members in a range of ranks, highest score first.",
            Exec::Shard(zrevrange),
        )
.deprecated("6.2.0", "ZRANGE key start stop REV")
.key_flags(&["RO", "access"]),
        cmd(
            "zremrangebyrank",
            4,
            WRITE,
            KEY1,
            g,
            "2.0.0",
            "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.",
            "Removes the members in a range of ranks.",
            Exec::Shard(zremrangebyrank),
        )
.key_flags(&["RW", "delete"]),
        cmd(
            "zremrangebyscore",
            4,
            WRITE,
            KEY1,
            g,
            "1.2.0",
            "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.",
            "Removes the members within a score range.",
            Exec::Shard(zremrangebyscore),
        )
.key_flags(&["RW", "delete"]),
        cmd(
            "zremrangebylex",
            4,
            WRITE,
            KEY1,
            g,
            "2.8.9",
            "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.",
            "Removes the members within a lexicographical range.",
            Exec::Shard(zremrangebylex),
        )
.key_flags(&["RW", "delete"]),
        cmd(
            "zpopmin",
            -2,
            WRITE | FAST,
            KEY1,
            g,
            "5.0.0",
            "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.",
            "Removes and returns the members with the lowest scores.",
            Exec::Shard(zpopmin),
        )
.key_flags(&["RW", "access", "delete"]),
        cmd(
            "zpopmax",
            -2,
            WRITE | FAST,
            KEY1,
            g,
            "5.0.0",
            "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.",
            "Removes and returns the members with the highest scores.",
            Exec::Shard(zpopmax),
        )
.key_flags(&["RW", "access", "delete"]),
        cmd(
            "zmpop",
            -4,
            WRITE,
            (0, 0, 0),
            g,
            "7.0.0",
            "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.",
            "Pops members from the first non-empty sorted set of several keys.",
            Exec::Shard(zmpop),
        )
.key_specs(const { &[KeySpec::numkeys(&["RW", "access", "delete"], 1)] })
        .movable_keys(keys_after_numkeys),
        cmd(
            "zrandmember",
            -2,
            READONLY,
            KEY1,
            g,
            "6.2.0",
            "O(N) where N is the number of elements returned",
            "Returns random members of a sorted set, optionally with their scores.",
            Exec::Shard(zrandmember),
        )
.key_flags(&["RO", "access"])
.tips(&["nondeterministic_output"]),
        cmd(
            "zunion",
            -3,
            READONLY,
            (0, 0, 0),
            g,
            "6.2.0",
            "O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.",
            "Returns the union of sorted sets (WEIGHTS, AGGREGATE, WITHSCORES).",
            Exec::Shard(zunion),
        )
.key_specs(const { &[KeySpec::numkeys(&["RO", "access"], 1)] })
        .movable_keys(keys_after_numkeys),
        cmd(
            "zinter",
            -3,
            READONLY,
            (0, 0, 0),
            g,
            "6.2.0",
            "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.",
            "Returns the intersection of sorted sets (WEIGHTS, AGGREGATE, WITHSCORES).",
            Exec::Shard(zinter),
        )
.key_specs(const { &[KeySpec::numkeys(&["RO", "access"], 1)] })
        .movable_keys(keys_after_numkeys),
        cmd(
            "zdiff",
            -3,
            READONLY,
            (0, 0, 0),
            g,
            "6.2.0",
            "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.",
            "Returns the members of the first sorted set that are in none of the others.",
            Exec::Shard(zdiff),
        )
.key_specs(const { &[KeySpec::numkeys(&["RO", "access"], 1)] })
        .movable_keys(keys_after_numkeys),
        cmd(
            "zunionstore",
            -4,
            WRITE | DENYOOM,
            KEY1,
            g,
            "2.0.0",
            "O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.",
            "Stores the union of sorted sets in a key.",
            Exec::Shard(zunionstore),
        )
.key_specs(const { &[KeySpec::range(&["OW", "update"], 1, 0, 1), KeySpec::numkeys(&["RO", "access"], 2)] })
        .movable_keys(keys_of_store),
        cmd(
            "zinterstore",
            -4,
            WRITE | DENYOOM,
            KEY1,
            g,
            "2.0.0",
            "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.",
            "Stores the intersection of sorted sets in a key.",
            Exec::Shard(zinterstore),
        )
.key_specs(const { &[KeySpec::range(&["OW", "update"], 1, 0, 1), KeySpec::numkeys(&["RO", "access"], 2)] })
        .movable_keys(keys_of_store),
        cmd(
            "zdiffstore",
            -4,
            WRITE | DENYOOM,
            KEY1,
            g,
            "6.2.0",
            "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.",
            "Stores the difference of sorted sets in a key.",
            Exec::Shard(zdiffstore),
        )
.key_specs(const { &[KeySpec::range(&["OW", "update"], 1, 0, 1), KeySpec::numkeys(&["RO", "access"], 2)] })
        .movable_keys(keys_of_store),
        cmd(
            "zintercard",
            -3,
            READONLY,
            (0, 0, 0),
            g,
            "7.0.0",
            "O(N*K) worst case with N being the smallest input sorted set, K being the number of input sorted sets.",
            "Returns the size of the intersection of sorted sets (LIMIT stops early).",
            Exec::Shard(zintercard),
        )
.key_specs(const { &[KeySpec::numkeys(&["RO", "access"], 1)] })
        .movable_keys(keys_after_numkeys),
        cmd(
            "zscan",
            -3,
            READONLY,
            KEY1,
            g,
            "2.8.0",
            "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..",
            "Iterates over the members and scores of a sorted set.",
            Exec::Shard(zscan),
        )
.key_flags(&["RO", "access"])
.tips(&["nondeterministic_output"]),
    ]
}

/// ZUNION, ZINTER, ZDIFF, ZINTERCARD, ZMPOP: `numkeys` at 1, keys after it.
fn keys_after_numkeys(a: &[Bytes]) -> Option<Vec<usize>> {
    numkeys_positions(a, 1, &[])
}

/// ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE: the destination, then `numkeys` at 2 and the inputs.
fn keys_of_store(a: &[Bytes]) -> Option<Vec<usize>> {
    numkeys_positions(a, 2, &[1])
}

fn limits(ctx: &Ctx) -> ZsetLimits {
    let c = &ctx.st.config;
    ZsetLimits {
        max_entries: usize::try_from(c.zset_max_listpack_entries).unwrap_or(usize::MAX),
        max_value: usize::try_from(c.zset_max_listpack_value).unwrap_or(usize::MAX),
    }
}

/// Reads a key as a sorted set (counting hits and misses): Ok(None) if missing, Err if another
/// type.
fn read_zset<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a ZSetValue>, &'static str> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::ZSet(z) => Ok(Some(z)),
            _ => Err(ERR_WRONGTYPE),
        },
    }
}

/// Looks a key up for a write: Ok(None) if missing, Err if another type.
fn write_zset<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut ZSetValue>, &'static str> {
    match ctx.lookup_write(key) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::ZSet(z) => Ok(Some(z)),
            _ => Err(ERR_WRONGTYPE),
        },
    }
}

/// Writes a STORE result: the sorted set built from `entries` (sorted by (score, member)), or
/// deletes `dst` when there is nothing to store. Replies with the stored size.
fn store_result(
    ctx: &mut Ctx,
    dst: &[u8],
    entries: Vec<(Bytes, f64)>,
    event: &'static str,
    r: &mut Reply,
) {
    let n = entries.len();
    // One change, or none for an empty result where `dst` was missing already (Redis).
    if n == 0 {
        if ctx.db().delete(dst) {
            ctx.notify(class::GENERIC, "del", dst);
        } else {
            ctx.dirty(0);
        }
    } else {
        let z = ZSetValue::from_sorted(entries, limits(ctx));
        let now = ctx.now_ms;
        ctx.db().insert(dst, Value::ZSet(z), 0, now);
        ctx.notify(class::ZSET, event, dst);
    }
    r.int(n as i64);
}

/// Writes a list of entries, with scores when asked: flat in RESP2, [member, score] pairs in
/// RESP3 (Redis's zrange result handler and ZUNION/ZRANDMEMBER replies).
fn reply_entries<'a>(
    r: &mut Reply,
    entries: impl ExactSizeIterator<Item = (&'a [u8], f64)>,
    withscores: bool,
) {
    let n = entries.len();
    r.array(if withscores && !r.resp3 { n * 2 } else { n });
    for (m, s) in entries {
        reply_entry(r, m, s, withscores);
    }
}

fn reply_entry(r: &mut Reply, m: &[u8], s: f64, withscores: bool) {
    if withscores && r.resp3 {
        r.array(2);
    }
    r.bulk(m);
    if withscores {
        r.double(s);
    }
}

// ---------------------------------------------------------------------------------------------
// Range parsing
// ---------------------------------------------------------------------------------------------

/// One end of a score range (Redis's `zslParseRange`): `(` makes it open; the rest goes through
/// strtod, which must stop at the end of the text (or at a NUL, as C sees it). An empty number
/// is 0, leading white space and `inf` are accepted, NaN is not.
fn parse_score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    let (text, ex) = match arg.first() {
        Some(b'(') => (&arg[1..], true),
        _ => (arg, false),
    };
    let (v, _) = args::strtod_c_string(text)?;
    (!v.is_nan()).then_some((v, ex))
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, &'static str> {
    match (parse_score_bound(min), parse_score_bound(max)) {
        (Some((min, min_ex)), Some((max, max_ex))) => Ok(ScoreRange {
            min,
            min_ex,
            max,
            max_ex,
        }),
        _ => Err(ERR_SCORE_RANGE),
    }
}

/// One end of a lex range (Redis's `zslParseLexRangeItem`): `+`, `-`, `[member`, `(member`.
fn parse_lex_bound(arg: &[u8]) -> Option<LexBound> {
    // `+` and `-` must stand alone (as C strings: a NUL ends them).
    let alone = arg.get(1).is_none_or(|&c| c == 0);
    match arg.first()? {
        b'+' if alone => Some(LexBound::Max),
        b'-' if alone => Some(LexBound::Min),
        b'(' => Some(LexBound::Excl(Bytes::copy_from_slice(&arg[1..]))),
        b'[' => Some(LexBound::Incl(Bytes::copy_from_slice(&arg[1..]))),
        _ => None,
    }
}

fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, &'static str> {
    match (parse_lex_bound(min), parse_lex_bound(max)) {
        (Some(min), Some(max)) => Ok(LexRange { min, max }),
        _ => Err(ERR_LEX_RANGE),
    }
}

/// A rank range as ZRANGE/ZREMRANGEBYRANK sanitize it: (first rank, count), None when empty.
fn rank_span(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 {
        start.saturating_add(len)
    } else {
        start
    };
    let mut end = if end < 0 {
        end.saturating_add(len)
    } else {
        end
    };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as usize, (end - start + 1) as usize))
}

/// The entries of a score or lex range in walk order, after skipping `offset` and taking at
/// most `limit` (negative: all). As in Redis, a negative offset skips everything.
fn collect_by<'z>(
    z: &'z ZSetValue,
    range: &impl ZRange,
    rev: bool,
    offset: i64,
    limit: i64,
) -> Vec<(&'z [u8], f64)> {
    if offset < 0 {
        return Vec::new();
    }
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if !rev {
        let Some(first) = z.first_in(range) else {
            return Vec::new();
        };
        z.range(first.saturating_add(offset), limit, false)
            .take_while(|(m, s)| range.lte_max(*s, m))
            .collect()
    } else {
        let Some(last) = z.last_in(range) else {
            return Vec::new();
        };
        let Some(start) = last.checked_sub(offset) else {
            return Vec::new();
        };
        z.range(start, limit, true)
            .take_while(|(m, s)| range.gte_min(*s, m))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// ZADD / ZINCRBY
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    incr: bool,
}

/// What one score-member pair did (Redis's `zsetAdd` out flags).
enum AddOutcome {
    Added(f64),
    Updated(f64),
    /// Processed, score unchanged.
    Same(f64),
    /// Skipped by NX, XX, GT or LT.
    Nop,
    Nan,
}

fn add_one(
    z: &mut ZSetValue,
    member: &[u8],
    score: f64,
    f: AddFlags,
    lim: ZsetLimits,
) -> AddOutcome {
    match z.locate(member) {
        Some((cur, at)) => {
            if f.nx {
                return AddOutcome::Nop;
            }
            let score = if f.incr { score + cur } else { score };
            if score.is_nan() {
                return AddOutcome::Nan;
            }
            if (f.lt && score >= cur) || (f.gt && score <= cur) {
                return AddOutcome::Nop;
            }
            if score != cur {
                z.update_at(at, member, cur, score);
                AddOutcome::Updated(score)
            } else {
                AddOutcome::Same(score)
            }
        }
        None if !f.xx => {
            z.insert(member, score, lim);
            AddOutcome::Added(score)
        }
        None => AddOutcome::Nop,
    }
}

/// ZADD and ZINCRBY (Redis's `zaddGenericCommand`; ZINCRBY is ZADD with INCR forced on, and its
/// arguments go through the same option scan).
fn zadd_generic(ctx: &mut Ctx, a: &[Bytes], mut f: AddFlags, r: &mut Reply) {
    let mut ch = false;
    let mut idx = 2;
    while idx < a.len() {
        let o = &a[idx];
        if eq_ic(o, "nx") {
            f.nx = true;
        } else if eq_ic(o, "xx") {
            f.xx = true;
        } else if eq_ic(o, "ch") {
            ch = true;
        } else if eq_ic(o, "incr") {
            f.incr = true;
        } else if eq_ic(o, "gt") {
            f.gt = true;
        } else if eq_ic(o, "lt") {
            f.lt = true;
        } else {
            break;
        }
        idx += 1;
    }
    let elements = a.len() - idx;
    if elements % 2 == 1 || elements == 0 {
        return r.error(ERR_SYNTAX);
    }
    let n = elements / 2;
    if f.nx && f.xx {
        return r.error("ERR XX and NX options at the same time are not compatible");
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return r.error("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && n > 1 {
        return r.error("ERR INCR option supports a single increment-element pair");
    }
    let mut scores = Vec::with_capacity(n);
    for j in 0..n {
        match args::parse_double(&a[idx + 2 * j]) {
            Some(s) => scores.push(s),
            None => return r.error(ERR_NOT_FLOAT),
        }
    }
    let key = &a[1];
    let lim = limits(ctx);
    match write_zset(ctx, key) {
        Err(e) => return r.error(e),
        Ok(Some(_)) => {}
        Ok(None) => {
            if f.xx {
                ctx.dirty(0);
                return if f.incr { r.null() } else { r.int(0) };
            }
            let now = ctx.now_ms;
            ctx.db().insert(key, Value::ZSet(ZSetValue::new()), 0, now);
        }
    }
    let Ok(Some(z)) = write_zset(ctx, key) else {
        return r.error(ERR_WRONGTYPE); // unreachable: checked or created above
    };
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut last = 0.0;
    let mut nan = false;
    for (j, &score) in scores.iter().enumerate() {
        match add_one(z, &a[idx + 2 * j + 1], score, f, lim) {
            AddOutcome::Added(s) => {
                added += 1;
                processed += 1;
                last = s;
            }
            AddOutcome::Updated(s) => {
                updated += 1;
                processed += 1;
                last = s;
            }
            AddOutcome::Same(s) => {
                processed += 1;
                last = s;
            }
            AddOutcome::Nop => {}
            AddOutcome::Nan => {
                nan = true;
                break;
            }
        }
    }
    if z.is_empty() {
        ctx.db().remove(key);
    }
    if added + updated > 0 {
        ctx.notify(class::ZSET, if f.incr { "zincr" } else { "zadd" }, key);
    }
    ctx.dirty((added + updated) as u64);
    if nan {
        r.error(ERR_NAN);
    } else if f.incr {
        if processed > 0 {
            r.double(last);
        } else {
            r.null();
        }
    } else {
        r.int(if ch { added + updated } else { added });
    }
}

fn zadd(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    zadd_generic(ctx, a, AddFlags::default(), r)
}

fn zincrby(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    zadd_generic(
        ctx,
        a,
        AddFlags {
            incr: true,
            ..AddFlags::default()
        },
        r,
    )
}

// ---------------------------------------------------------------------------------------------
// Point reads and removal
// ---------------------------------------------------------------------------------------------

fn zrem(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let z = match write_zset(ctx, &a[1]) {
        Ok(Some(z)) => z,
        Ok(None) => {
            ctx.dirty(0);
            return r.int(0);
        }
        Err(e) => return r.error(e),
    };
    let mut deleted = 0;
    for m in &a[2..] {
        if z.remove(m).is_some() {
            deleted += 1;
            if z.is_empty() {
                break;
            }
        }
    }
    let emptied = z.is_empty();
    if deleted > 0 {
        ctx.notify(class::ZSET, "zrem", &a[1]);
    }
    if emptied {
        ctx.db().remove(&a[1]);
        if deleted > 0 {
            ctx.notify(class::GENERIC, "del", &a[1]);
        }
    }
    ctx.dirty(deleted as u64);
    r.int(deleted);
}

fn zcard(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    match read_zset(ctx, &a[1]) {
        Ok(z) => r.int(z.map_or(0, |z| z.len()) as i64),
        Err(e) => r.error(e),
    }
}

fn zscore(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    match read_zset(ctx, &a[1]) {
        Ok(z) => match z.and_then(|z| z.score(&a[2])) {
            Some(s) => r.double(s),
            None => r.null(),
        },
        Err(e) => r.error(e),
    }
}

fn zmscore(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let z = match read_zset(ctx, &a[1]) {
        Ok(z) => z,
        Err(e) => return r.error(e),
    };
    r.array(a.len() - 2);
    for m in &a[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => r.double(s),
            None => r.null(),
        }
    }
}

fn rank_generic(ctx: &mut Ctx, a: &[Bytes], rev: bool, r: &mut Reply) {
    match read_zset(ctx, &a[1]) {
        Err(e) => r.error(e),
        Ok(None) => r.null(),
        Ok(Some(z)) => match z.rank(&a[2]) {
            Some(rank) => r.int(if rev { z.len() - 1 - rank } else { rank } as i64),
            None => r.null(),
        },
    }
}

fn zrank(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    rank_generic(ctx, a, false, r)
}

fn zrevrank(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    rank_generic(ctx, a, true, r)
}

fn zcount(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let range = match parse_score_range(&a[2], &a[3]) {
        Ok(range) => range,
        Err(e) => return r.error(e),
    };
    match read_zset(ctx, &a[1]) {
        Ok(z) => r.int(z.map_or(0, |z| z.count_in(&range)) as i64),
        Err(e) => r.error(e),
    }
}

fn zlexcount(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let range = match parse_lex_range(&a[2], &a[3]) {
        Ok(range) => range,
        Err(e) => return r.error(e),
    };
    match read_zset(ctx, &a[1]) {
        Ok(z) => r.int(z.map_or(0, |z| z.count_in(&range)) as i64),
        Err(e) => r.error(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Auto,
    Rank,
    Score,
    Lex,
}

enum Parsed {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// The ZRANGE family (Redis's `zrangeGenericCommand`): options, then the range, then the key.
/// `at` is the source key's position; `store` makes it ZRANGESTORE (destination at 1).
fn zrange_generic(
    ctx: &mut Ctx,
    a: &[Bytes],
    at: usize,
    store: bool,
    mut by: By,
    mut rev: Option<bool>,
    r: &mut Reply,
) {
    let (mut min_at, mut max_at) = (at + 1, at + 2);
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = at + 3;
    while j < a.len() {
        let left = a.len() - j - 1;
        if !store && eq_ic(&a[j], "withscores") {
            withscores = true;
        } else if eq_ic(&a[j], "limit") && left >= 2 {
            match (int_arg(&a[j + 1]), int_arg(&a[j + 2])) {
                (Ok(o), Ok(l)) => (offset, limit) = (o, l),
                (Err(e), _) | (_, Err(e)) => return r.error(e),
            }
            j += 2;
        } else if rev.is_none() && eq_ic(&a[j], "rev") {
            rev = Some(true);
        } else if by == By::Auto && eq_ic(&a[j], "bylex") {
            by = By::Lex;
        } else if by == By::Auto && eq_ic(&a[j], "byscore") {
            by = By::Score;
        } else {
            return r.error(ERR_SYNTAX);
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if by == By::Auto {
        by = By::Rank;
    }
    if limit != -1 && by == By::Rank {
        return r.error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
    }
    if withscores && by == By::Lex {
        return r.error("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    if rev && by != By::Rank {
        std::mem::swap(&mut min_at, &mut max_at);
    }
    let parsed = match by {
        By::Auto | By::Rank => match (int_arg(&a[min_at]), int_arg(&a[max_at])) {
            (Ok(s), Ok(e)) => Parsed::Rank(s, e),
            (Err(e), _) | (_, Err(e)) => return r.error(e),
        },
        By::Score => match parse_score_range(&a[min_at], &a[max_at]) {
            Ok(range) => Parsed::Score(range),
            Err(e) => return r.error(e),
        },
        By::Lex => match parse_lex_range(&a[min_at], &a[max_at]) {
            Ok(range) => Parsed::Lex(range),
            Err(e) => return r.error(e),
        },
    };
    let lim = limits(ctx);
    let z = match read_zset(ctx, &a[at]) {
        Err(e) => return r.error(e),
        Ok(None) if store => return store_result(ctx, &a[1], Vec::new(), "zrangestore", r),
        Ok(None) => return r.array(0),
        Ok(Some(z)) => z,
    };
    let items: Vec<(&[u8], f64)> = match &parsed {
        Parsed::Rank(s, e) => match rank_span(*s, *e, z.len()) {
            None => Vec::new(),
            Some((start, n)) if rev => z.range(z.len() - 1 - start, n, true).collect(),
            Some((start, n)) => z.range(start, n, false).collect(),
        },
        Parsed::Score(range) => collect_by(z, range, rev, offset, limit),
        Parsed::Lex(range) => collect_by(z, range, rev, offset, limit),
    };
    if store {
        // Redis builds the destination by adding the entries in walk order to a set that
        // starts as a listpack unless the rank range alone exceeds the entry threshold; this is
        // observable (a listpack turns a -0 score into 0 before any later conversion).
        let mut dst = match &parsed {
            Parsed::Rank(..) if items.len() > lim.max_entries => ZSetValue::new_skiplist(),
            _ => ZSetValue::new(),
        };
        for (m, s) in &items {
            dst.insert(m, *s, lim);
        }
        let n = dst.len();
        if n == 0 {
            if ctx.db().remove(&a[1]).is_some() {
                ctx.notify(class::GENERIC, "del", &a[1]);
            }
        } else {
            let now = ctx.now_ms;
            ctx.db().insert(&a[1], Value::ZSet(dst), 0, now);
            ctx.notify(class::ZSET, "zrangestore", &a[1]);
        }
        r.int(n as i64);
    } else {
        reply_entries(r, items.into_iter(), withscores);
    }
}

fn zrange(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    zrange_generic(ctx, a, 1, false, By::Auto, None, r)
}

fn zrangestore(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    zrange_generic(ctx, a, 2, true, By::Auto, None, r)
}

fn zrevrange(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    zrange_generic(ctx, a, 1, false, By::Rank, Some(true), r)
}

fn zrangebyscore(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    zrange_generic(ctx, a, 1, false, By::Score, Some(false), r)
}

fn zrevrangebyscore(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    zrange_generic(ctx, a, 1, false, By::Score, Some(true), r)
}

fn zrangebylex(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    zrange_generic(ctx, a, 1, false, By::Lex, Some(false), r)
}

fn zrevrangebylex(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    zrange_generic(ctx, a, 1, false, By::Lex, Some(true), r)
}

/// ZREMRANGEBYRANK/SCORE/LEX (Redis's `zremrangeGenericCommand`).
fn zremrange_generic(ctx: &mut Ctx, a: &[Bytes], by: By, r: &mut Reply) {
    let parsed = match by {
        By::Score => match parse_score_range(&a[2], &a[3]) {
            Ok(range) => Parsed::Score(range),
            Err(e) => return r.error(e),
        },
        By::Lex => match parse_lex_range(&a[2], &a[3]) {
            Ok(range) => Parsed::Lex(range),
            Err(e) => return r.error(e),
        },
        By::Auto | By::Rank => match (int_arg(&a[2]), int_arg(&a[3])) {
            (Ok(s), Ok(e)) => Parsed::Rank(s, e),
            (Err(e), _) | (_, Err(e)) => return r.error(e),
        },
    };
    let z = match write_zset(ctx, &a[1]) {
        Ok(Some(z)) => z,
        Ok(None) => {
            ctx.dirty(0);
            return r.int(0);
        }
        Err(e) => return r.error(e),
    };
    fn run(z: &ZSetValue, range: &impl ZRange) -> Option<(usize, usize)> {
        let first = z.first_in(range)?;
        let n = z
            .range(first, usize::MAX, false)
            .take_while(|(m, s)| range.lte_max(*s, m))
            .count();
        Some((first, n))
    }
    let span = match &parsed {
        Parsed::Rank(s, e) => rank_span(*s, *e, z.len()),
        Parsed::Score(range) => run(z, range),
        Parsed::Lex(range) => run(z, range),
    };
    let removed = span.map_or(0, |(start, n)| z.remove_range(start, n));
    let emptied = z.is_empty();
    ctx.dirty(removed as u64);
    if removed > 0 {
        let event = match &parsed {
            Parsed::Rank(..) => "zremrangebyrank",
            Parsed::Score(_) => "zremrangebyscore",
            Parsed::Lex(_) => "zremrangebylex",
        };
        ctx.notify(class::ZSET, event, &a[1]);
    }
    if emptied {
        ctx.db().remove(&a[1]);
        if removed > 0 {
            ctx.notify(class::GENERIC, "del", &a[1]);
        }
    }
    r.int(removed as i64);
}

fn zremrangebyrank(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    zremrange_generic(ctx, a, By::Rank, r)
}

fn zremrangebyscore(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    zremrange_generic(ctx, a, By::Score, r)
}

fn zremrangebylex(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    zremrange_generic(ctx, a, By::Lex, r)
}

// ---------------------------------------------------------------------------------------------
// Pops (shared with the blocking variants)
// ---------------------------------------------------------------------------------------------

/// How popped entries are framed in the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PopShape {
    /// ZPOPMIN/ZPOPMAX without COUNT: `[member, score, ...]` in both protocols.
    Flat,
    /// ZPOPMIN/ZPOPMAX with COUNT: flat in RESP2, `[[member, score], ...]` in RESP3.
    Counted,
    /// BZPOPMIN/BZPOPMAX: `[key, member, score]` in both protocols.
    KeyFlat,
    /// ZMPOP/BZMPOP: `[key, [[member, score], ...]]` in both protocols.
    KeyNested,
}

/// The pop core of ZPOPMIN, ZPOPMAX, ZMPOP and their blocking variants (Redis's
/// `genericZpopCommand`): pops up to `count` entries, lowest first (highest first when `max`),
/// from the first of `keys` that exists, replies in `shape`, and deletes the key if it empties.
///
/// Returns false, writing nothing, when none of the keys exists: ZPOPMIN/ZPOPMAX then reply
/// with an empty array, ZMPOP with a null array, and the blocking variants block. A key of
/// another type met first gets WRONGTYPE (and true). A `count` of 0 replies with an empty array
/// once a sorted set is found.
pub fn pop_reply(
    ctx: &mut Ctx,
    keys: &[Bytes],
    max: bool,
    count: usize,
    shape: PopShape,
    r: &mut Reply,
) -> bool {
    for key in keys {
        let z = match write_zset(ctx, key) {
            Err(e) => {
                r.error(e);
                return true;
            }
            Ok(None) => continue,
            Ok(Some(z)) => z,
        };
        if count == 0 {
            ctx.dirty(0);
            r.array(0);
            return true;
        }
        let n = count.min(z.len());
        let nested = shape == PopShape::KeyNested || (shape == PopShape::Counted && r.resp3);
        match shape {
            PopShape::Flat | PopShape::Counted => r.array(if nested { n } else { 2 * n }),
            PopShape::KeyFlat => {
                r.array(2 * n + 1);
                r.bulk(key);
            }
            PopShape::KeyNested => {
                r.array(2);
                r.bulk(key);
                r.array(n);
            }
        }
        for _ in 0..n {
            let Some((m, s)) = z.pop(max) else { break };
            if nested {
                r.array(2);
            }
            r.bulk(&m);
            r.double(s);
        }
        let emptied = z.is_empty();
        // One change per entry popped (Redis).
        ctx.dirty(n as u64);
        ctx.notify(class::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
        if emptied {
            ctx.db().remove(key);
            ctx.notify(class::GENERIC, "del", key);
        }
        return true;
    }
    ctx.dirty(0);
    false
}

fn zpop_generic(ctx: &mut Ctx, a: &[Bytes], max: bool, r: &mut Reply) {
    if a.len() > 3 {
        return r.error(ERR_SYNTAX);
    }
    let (count, shape) = if a.len() == 3 {
        match args::parse_i64(&a[2]) {
            Some(c) if c >= 0 => (usize::try_from(c).unwrap_or(usize::MAX), PopShape::Counted),
            _ => return r.error(ERR_NOT_POSITIVE),
        }
    } else {
        (1, PopShape::Flat)
    };
    if !pop_reply(ctx, &a[1..2], max, count, shape, r) {
        r.array(0);
    }
}

fn zpopmin(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    zpop_generic(ctx, a, false, r)
}

fn zpopmax(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    zpop_generic(ctx, a, true, r)
}

/// ZMPOP's arguments from `numkeys_at` on: `numkeys key... MIN|MAX [COUNT count]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpopArgs {
    /// Positions of the keys in the arguments.
    pub keys: std::ops::Range<usize>,
    pub max: bool,
    pub count: usize,
}

/// Parses ZMPOP (`numkeys_at` = 1) or BZMPOP (`numkeys_at` = 2) arguments with Redis's errors
/// (`zmpopGenericCommand`).
pub fn parse_mpop(a: &[Bytes], numkeys_at: usize) -> Result<MpopArgs, &'static str> {
    const ERR_NUMKEYS: &str = "ERR numkeys should be greater than 0";
    let numkeys = match args::parse_i64(&a[numkeys_at]) {
        Some(n) if n >= 1 => n as usize,
        _ => return Err(ERR_NUMKEYS),
    };
    let where_at = numkeys_at.saturating_add(numkeys).saturating_add(1);
    if where_at >= a.len() {
        return Err(ERR_SYNTAX);
    }
    let max = if eq_ic(&a[where_at], "min") {
        false
    } else if eq_ic(&a[where_at], "max") {
        true
    } else {
        return Err(ERR_SYNTAX);
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < a.len() {
        if count.is_none() && eq_ic(&a[j], "count") && j + 1 < a.len() {
            j += 1;
            match args::parse_i64(&a[j]) {
                Some(c) if c >= 1 => count = Some(c as usize),
                _ => return Err("ERR count should be greater than 0"),
            }
        } else {
            return Err(ERR_SYNTAX);
        }
        j += 1;
    }
    Ok(MpopArgs {
        keys: numkeys_at + 1..where_at,
        max,
        count: count.unwrap_or(1),
    })
}

fn zmpop(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let p = match parse_mpop(a, 1) {
        Ok(p) => p,
        Err(e) => return r.error(e),
    };
    if !pop_reply(ctx, &a[p.keys], p.max, p.count, PopShape::KeyNested, r) {
        r.null_array();
    }
}

// ---------------------------------------------------------------------------------------------
// ZRANDMEMBER
// ---------------------------------------------------------------------------------------------

fn zrandmember(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let key = &a[1];
    if a.len() == 2 {
        match read_zset(ctx, key) {
            Err(e) => return r.error(e),
            Ok(None) => return r.null(),
            Ok(Some(_)) => {}
        }
        let st = &mut *ctx.st;
        let Some(Value::ZSet(z)) = st.dbs[ctx.db].keys.get(key).map(|e| &e.value) else {
            return r.null();
        };
        return match z.random_entry(&mut st.rng) {
            Some((m, _)) => r.bulk(m),
            None => r.null(),
        };
    }
    let l = match args::random_count_arg(&a[2]) {
        Ok(n) => n,
        Err(e) => return r.error(e),
    };
    let withscores = a.len() == 4;
    if a.len() > 4 || (withscores && !eq_ic(&a[3], "withscores")) {
        return r.error(ERR_SYNTAX);
    }
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
        return r.error(args::ERR_OUT_OF_RANGE);
    }
    match read_zset(ctx, key) {
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
    let Some(Value::ZSet(z)) = st.dbs[ctx.db].keys.get(key).map(|e| &e.value) else {
        return r.array(0);
    };
    let rng = &mut st.rng;
    let count = usize::try_from(l.unsigned_abs()).unwrap_or(usize::MAX);
    let size = z.len();
    let flat_pairs = withscores && !r.resp3;
    let ranked = z.ranked();
    if l < 0 || count == 1 {
        // Repetitions allowed: every pick samples the whole set.
        r.array(if flat_pairs { count * 2 } else { count });
        for _ in 0..count {
            if let Some((m, s)) = ranked.random(rng) {
                reply_entry(r, m, s, withscores);
            }
        }
        return;
    }
    if count >= size {
        // The whole set, highest first: Redis's set-operation iterator walks from the tail.
        let all: Vec<(&[u8], f64)> = z.range(size - 1, size, true).collect();
        return reply_entries(r, all.into_iter(), withscores);
    }
    let mut picked: Vec<(&[u8], f64)> = Vec::with_capacity(count);
    if count * 3 > size {
        // Most of the set: selection sampling over one walk, each subset equally likely.
        for (i, e) in z.iter().enumerate() {
            if rng.gen_range(0..size - i) < count - picked.len() {
                picked.push(e);
            }
        }
    } else {
        // A small part: draw until `count` distinct members (expected O(count) draws).
        let mut seen: HashSet<&[u8]> = HashSet::with_capacity(count);
        while picked.len() < count {
            let Some(e) = ranked.random(rng) else { break };
            if seen.insert(e.0) {
                picked.push(e);
            }
        }
    }
    reply_entries(r, picked.into_iter(), withscores);
}

// ---------------------------------------------------------------------------------------------
// Set operations
// ---------------------------------------------------------------------------------------------

/// One input of ZUNION/ZINTER/ZDIFF/ZINTERCARD and their STORE forms. This is the one place
/// that decides which values can be inputs and how they read: Redis also accepts plain sets,
/// every member with score 1.
pub enum ZInput<'a> {
    Missing,
    Zset(&'a ZSetValue),
    /// A plain set: its members as bytes (intset members have no byte form of their own) and
    /// the set itself for membership tests.
    Set(Vec<Vec<u8>>, &'a crate::types::SetValue),
}

impl<'a> ZInput<'a> {
    /// The input a keyspace value (or a missing key) provides; None for a type that cannot be an
    /// input (WRONGTYPE).
    pub fn from_value(v: Option<&'a Value>) -> Option<ZInput<'a>> {
        match v {
            None => Some(ZInput::Missing),
            Some(Value::ZSet(z)) => Some(ZInput::Zset(z)),
            Some(Value::Set(set)) => Some(ZInput::Set(
                set.iter().map(|m| m.with_bytes(|b| b.to_vec())).collect(),
                set,
            )),
            Some(_) => None,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ZInput::Missing => 0,
            ZInput::Zset(z) => z.len(),
            ZInput::Set(m, _) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every (member, score), in the input's own order.
    pub fn entries(&self) -> Box<dyn Iterator<Item = (&[u8], f64)> + '_> {
        match self {
            ZInput::Missing => Box::new(std::iter::empty()),
            ZInput::Zset(z) => Box::new(z.iter()),
            ZInput::Set(members, _) => Box::new(members.iter().map(|m| (&m[..], 1.0))),
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZInput::Missing => None,
            ZInput::Zset(z) => z.score(member),
            ZInput::Set(_, set) => set.contains(member).then_some(1.0),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Redis's `zunionInterAggregate`: a sum that is NaN (inf + -inf) becomes 0; MIN and MAX keep
/// the current score when the new one does not compare (NaN).
fn aggregate(target: &mut f64, val: f64, agg: Aggregate) {
    match agg {
        Aggregate::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val;
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

/// ZUNION/ZINTER/ZDIFF[STORE] and ZINTERCARD (Redis's `zunionInterDiffGenericCommand`): the
/// input keys are type-checked before the options are parsed, as in Redis.
fn setop_generic(
    ctx: &mut Ctx,
    a: &[Bytes],
    numkeys_at: usize,
    store: bool,
    op: SetOp,
    card_only: bool,
    r: &mut Reply,
) {
    let setnum = match int_arg(&a[numkeys_at]) {
        Ok(n) => n,
        Err(e) => return r.error(e),
    };
    if setnum < 1 {
        return r.error(&format!(
            "ERR at least 1 input key is needed for '{}' command",
            String::from_utf8_lossy(&a[0]).to_ascii_lowercase()
        ));
    }
    if setnum > (a.len() - numkeys_at - 1) as i64 {
        return r.error(ERR_SYNTAX);
    }
    let n = setnum as usize;
    let keys = &a[numkeys_at + 1..numkeys_at + 1 + n];
    for k in keys {
        if let Some(e) = ctx.lookup_read(k) {
            if ZInput::from_value(Some(&e.value)).is_none() {
                return r.error(ERR_WRONGTYPE);
            }
        }
    }
    let mut weights = vec![1.0f64; n];
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0usize;
    let mut j = numkeys_at + 1 + n;
    while j < a.len() {
        let remaining = a.len() - j;
        let weighted = op != SetOp::Diff && !card_only;
        if weighted && remaining > n && eq_ic(&a[j], "weights") {
            j += 1;
            for w in weights.iter_mut() {
                match args::parse_double(&a[j]) {
                    Some(v) => *w = v,
                    None => return r.error("ERR weight value is not a float"),
                }
                j += 1;
            }
        } else if weighted && remaining >= 2 && eq_ic(&a[j], "aggregate") {
            agg = if eq_ic(&a[j + 1], "sum") {
                Aggregate::Sum
            } else if eq_ic(&a[j + 1], "min") {
                Aggregate::Min
            } else if eq_ic(&a[j + 1], "max") {
                Aggregate::Max
            } else {
                return r.error(ERR_SYNTAX);
            };
            j += 2;
        } else if !store && !card_only && eq_ic(&a[j], "withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && eq_ic(&a[j], "limit") {
            match args::parse_i64(&a[j + 1]) {
                Some(v) if v >= 0 => limit = usize::try_from(v).unwrap_or(usize::MAX),
                _ => return r.error("ERR LIMIT can't be negative"),
            }
            j += 2;
        } else {
            return r.error(ERR_SYNTAX);
        }
    }

    let db = &ctx.st.dbs[ctx.db];
    let mut inputs: Vec<(ZInput, f64)> = keys
        .iter()
        .zip(weights)
        .map(|(k, w)| {
            let v = db.keys.get(k).map(|e| &e.value);
            (ZInput::from_value(v).unwrap_or(ZInput::Missing), w)
        })
        .collect();
    if op != SetOp::Diff {
        // Smallest first (a stable sort, like glibc's qsort for these sizes): the
        // intersection walks the smallest input, and the order fixes how sums are rounded.
        inputs.sort_by_key(|(i, _)| i.len());
    }
    let mut result: Vec<(&[u8], f64)> = Vec::new();
    let mut cardinality = 0usize;
    match op {
        SetOp::Inter => {
            let (first, w0) = &inputs[0];
            for (m, s) in first.entries() {
                let mut score = w0 * s;
                if score.is_nan() {
                    score = 0.0;
                }
                let in_all = inputs[1..].iter().all(|(inp, w)| match inp.score(m) {
                    Some(v) => {
                        aggregate(&mut score, v * w, agg);
                        true
                    }
                    None => false,
                });
                if !in_all {
                    continue;
                }
                if card_only {
                    cardinality += 1;
                    if limit != 0 && cardinality >= limit {
                        break;
                    }
                } else {
                    result.push((m, score));
                }
            }
        }
        SetOp::Union => {
            let largest = inputs.last().map_or(0, |(i, _)| i.len());
            let mut acc: HashMap<&[u8], f64, ahash::RandomState> =
                HashMap::with_capacity_and_hasher(largest, ahash::RandomState::new());
            for (inp, w) in &inputs {
                for (m, s) in inp.entries() {
                    let mut score = w * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match acc.entry(m) {
                        MapEntry::Vacant(v) => {
                            v.insert(score);
                        }
                        MapEntry::Occupied(mut o) => aggregate(o.get_mut(), score, agg),
                    }
                }
            }
            result = acc.into_iter().collect();
        }
        SetOp::Diff => {
            let (first, _) = &inputs[0];
            for (m, s) in first.entries() {
                if !inputs[1..].iter().any(|(inp, _)| inp.score(m).is_some()) {
                    result.push((m, s));
                }
            }
        }
    }
    if card_only {
        return r.int(cardinality as i64);
    }
    result.sort_by(|x, y| cmp_entries(x.1, x.0, y.1, y.0));
    if store {
        let owned: Vec<(Bytes, f64)> = result
            .into_iter()
            .map(|(m, s)| (Bytes::copy_from_slice(m), s))
            .collect();
        let event = match op {
            SetOp::Union => "zunionstore",
            SetOp::Inter => "zinterstore",
            SetOp::Diff => "zdiffstore",
        };
        store_result(ctx, &a[1], owned, event, r);
    } else {
        reply_entries(r, result.into_iter(), withscores);
    }
}

fn zunion(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    setop_generic(ctx, a, 1, false, SetOp::Union, false, r)
}

fn zinter(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    setop_generic(ctx, a, 1, false, SetOp::Inter, false, r)
}

fn zdiff(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    setop_generic(ctx, a, 1, false, SetOp::Diff, false, r)
}

fn zunionstore(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    setop_generic(ctx, a, 2, true, SetOp::Union, false, r)
}

fn zinterstore(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    setop_generic(ctx, a, 2, true, SetOp::Inter, false, r)
}

fn zdiffstore(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    setop_generic(ctx, a, 2, true, SetOp::Diff, false, r)
}

fn zintercard(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    setop_generic(ctx, a, 1, false, SetOp::Inter, true, r)
}

// ---------------------------------------------------------------------------------------------
// ZSCAN
// ---------------------------------------------------------------------------------------------

fn zscan(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let Some(cursor) = super::keys_family::parse_cursor(&a[2]) else {
        return r.error("ERR invalid cursor");
    };
    let z = match read_zset(ctx, &a[1]) {
        Err(e) => return r.error(e),
        Ok(None) => {
            r.array(2);
            r.bulk(b"0");
            return r.array(0);
        }
        Ok(Some(z)) => z,
    };
    let (count, pattern) = match super::keys_family::collection_scan_options(a) {
        Ok(o) => o,
        Err(e) => return r.error(e),
    };
    let mut found: Vec<(Bytes, f64)> = Vec::new();
    let mut next = cursor;
    // As in Redis: at most COUNT*10 bucket steps, stopping once COUNT entries were collected;
    // the pattern filters afterwards.
    let mut steps = count.saturating_mul(10);
    loop {
        next = z.scan(next, |m, s| found.push((m, s)));
        if next == 0 || steps == 0 || found.len() >= count {
            break;
        }
        steps -= 1;
    }
    if let Some(p) = pattern {
        found.retain(|(m, _)| glob_match(p, m, false));
    }
    // A listpack gives back the score text it stored (`d2string`: integers up to 2^62 in
    // full); a skiplist's score is printed here (`%.17Lg`). Bulk strings in RESP3 too.
    let listpack = matches!(z, crate::types::zset::ZSetValue::Listpack(_));
    r.array(2);
    r.bulk(next.to_string().as_bytes());
    r.array(found.len() * 2);
    for (m, s) in &found {
        r.bulk(m);
        match listpack_integer_score(*s) {
            Some(i) if listpack => r.bulk(i.to_string().as_bytes()),
            _ => r.bulk(format_double(*s).as_bytes()),
        }
    }
}

/// The integer Redis's `d2string` prints for a score it stores in a listpack: integral values
/// within ±2^62 (`double2ll`), zero excepted (it keeps its sign as text).
fn listpack_integer_score(s: f64) -> Option<i64> {
    const LIMIT: f64 = 4_611_686_018_427_387_904.0; // LLONG_MAX / 2, as a double
    (s != 0.0 && s.fract() == 0.0 && (-LIMIT..=LIMIT).contains(&s)).then_some(s as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_bounds_like_zslparserange() {
        assert_eq!(parse_score_bound(b"1.5"), Some((1.5, false)));
        assert_eq!(parse_score_bound(b"(1.5"), Some((1.5, true)));
        assert_eq!(parse_score_bound(b""), Some((0.0, false)));
        assert_eq!(parse_score_bound(b"("), Some((0.0, true)));
        assert_eq!(parse_score_bound(b" 1"), Some((1.0, false)));
        assert_eq!(parse_score_bound(b"1e400"), Some((f64::INFINITY, false)));
        assert_eq!(parse_score_bound(b"-inf"), Some((f64::NEG_INFINITY, false)));
        assert_eq!(parse_score_bound(b"1\0junk"), Some((1.0, false)));
        for bad in [&b"nan"[..], b"(nan", b" ", b"1x", b"1e", b"-", b"."] {
            assert_eq!(parse_score_bound(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn lex_bounds_like_zslparselexrangeitem() {
        assert_eq!(parse_lex_bound(b"+"), Some(LexBound::Max));
        assert_eq!(parse_lex_bound(b"-"), Some(LexBound::Min));
        assert_eq!(
            parse_lex_bound(b"[a"),
            Some(LexBound::Incl(Bytes::from_static(b"a")))
        );
        assert_eq!(
            parse_lex_bound(b"("),
            Some(LexBound::Excl(Bytes::from_static(b"")))
        );
        for bad in [&b""[..], b"a", b"+a", b"-a"] {
            assert_eq!(parse_lex_bound(bad), None);
        }
    }

    #[test]
    fn rank_spans_are_sanitized_like_redis() {
        assert_eq!(rank_span(0, -1, 5), Some((0, 5)));
        assert_eq!(rank_span(-100, 100, 5), Some((0, 5)));
        assert_eq!(rank_span(3, 1, 5), None);
        assert_eq!(rank_span(5, 10, 5), None);
        assert_eq!(rank_span(-2, -1, 5), Some((3, 2)));
        assert_eq!(rank_span(i64::MAX, i64::MIN, 5), None);
        assert_eq!(rank_span(i64::MIN, i64::MAX, 5), Some((0, 5)));
        assert_eq!(rank_span(0, -1, 0), None);
    }

    #[test]
    fn mpop_arguments() {
        let a: Vec<Bytes> = ["zmpop", "2", "a", "b", "max", "count", "3"]
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        assert_eq!(
            parse_mpop(&a, 1),
            Ok(MpopArgs {
                keys: 2..4,
                max: true,
                count: 3
            })
        );
        let bad = |v: &[&str]| {
            let a: Vec<Bytes> = v
                .iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect();
            parse_mpop(&a, 1).unwrap_err()
        };
        assert_eq!(
            bad(&["zmpop", "0", "a", "min"]),
            "ERR numkeys should be greater than 0"
        );
        assert_eq!(bad(&["zmpop", "3", "a", "min"]), ERR_SYNTAX);
        assert_eq!(bad(&["zmpop", "1", "a", "mid"]), ERR_SYNTAX);
        assert_eq!(
            bad(&["zmpop", "1", "a", "min", "count", "0"]),
            "ERR count should be greater than 0"
        );
        assert_eq!(
            bad(&["zmpop", "1", "a", "min", "count", "1", "count", "2"]),
            ERR_SYNTAX
        );
    }
}

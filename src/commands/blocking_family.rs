//! Blocking pops (Redis's blocking variants in t_list.c / t_zset.c): BLPOP, BRPOP, BLMOVE,
//! BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP.
//!
//! Each command has a table entry whose shard handler is its *non-blocking* behaviour (serve now
//! or answer as if the timeout expired): that is what runs inside MULTI/EXEC and scripts, as in
//! Redis. A connection outside a transaction goes through `execute_blocking` instead: try once,
//! and if there is nothing to serve, register with the keys' shard (`shard::blocking`) and wait
//! for a reply, the timeout, or the client going away.
//!
//! The pops themselves belong to the list and sorted set families; this module only parses the
//! blocking forms and wires them to the framework.
//!
//! Statistics follow Redis 7.0: a call served (or refused) at once counts like any command; a
//! call that blocks counts as a call with the time it took so far, and its latency is recorded
//! when it ends: served (its time so far plus the serving's), or ended by CLIENT UNBLOCK (a
//! failed call). A timeout adds nothing.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::channel::oneshot;

use super::args::{self, eq_ic, ERR_SYNTAX};
use super::list_family::{self, parse_end, PopShape as ListShape};
use super::zset_family::{self, parse_mpop, PopShape as ZShape};
use super::{cmd, flags::*, numkeys_positions, CommandSpec, Ctx, Exec, KeySpec};
use crate::protocol::Reply;
use crate::server::conn::{Conn, ERR_SHARD_GONE};
use crate::shard::blocking::{release_claim, take_claim, TryServe, Waiter, Wake};
use crate::shard::router::ShardMsg;
use crate::shard::Shard;
use crate::types::list::End;
use futures::StreamExt;

pub fn specs() -> Vec<CommandSpec> {
    vec![
        cmd("blpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), "list", "2.0.0", "O(N) where N is the number of provided keys.", "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", Exec::Shard(blpop)).key_flags(&["RW", "access", "delete"]),
        cmd("brpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), "list", "2.0.0", "O(N) where N is the number of provided keys.", "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", Exec::Shard(brpop)).key_flags(&["RW", "access", "delete"]),
        cmd("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, (1, 2, 1), "list", "6.2.0", "O(1)", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", Exec::Shard(blmove)).key_specs(const { &[KeySpec::range(&["RW", "access", "delete"], 1, 0, 1), KeySpec::range(&["RW", "insert"], 2, 0, 1)] }),
        cmd("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, (1, 2, 1), "list", "2.2.0", "O(1)", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", Exec::Shard(brpoplpush)).key_specs(const { &[KeySpec::range(&["RW", "access", "delete"], 1, 0, 1), KeySpec::range(&["RW", "insert"], 2, 0, 1)] }).deprecated("6.2.0", "BLMOVE source destination RIGHT LEFT timeout"),
        cmd("blmpop", -5, WRITE | BLOCKING, (0, 0, 0), "list", "7.0.0", "O(N+M) where N is the number of provided keys and M is the number of elements returned.", "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", Exec::Shard(blmpop)).movable_keys(blmpop_keys).key_specs(const { &[KeySpec::numkeys(&["RW", "access", "delete"], 2)] }),
        cmd("bzpopmin", -3, WRITE | NOSCRIPT | BLOCKING | FAST, (1, -2, 1), "sorted-set", "5.0.0", "O(log(N)) with N being the number of elements in the sorted set.", "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", Exec::Shard(bzpopmin)).key_flags(&["RW", "access", "delete"]),
        cmd("bzpopmax", -3, WRITE | NOSCRIPT | BLOCKING | FAST, (1, -2, 1), "sorted-set", "5.0.0", "O(log(N)) with N being the number of elements in the sorted set.", "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", Exec::Shard(bzpopmax)).key_flags(&["RW", "access", "delete"]),
        cmd("bzmpop", -5, WRITE | BLOCKING, (0, 0, 0), "sorted-set", "7.0.0", "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.", "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", Exec::Shard(bzmpop)).movable_keys(blmpop_keys).key_specs(const { &[KeySpec::numkeys(&["RW", "access", "delete"], 2)] }),
    ]
}

fn blmpop_keys(a: &[Bytes]) -> Option<Vec<usize>> {
    numkeys_positions(a, 2, &[])
}

/// Redis's `getTimeoutFromObjectOrReply` for seconds: a float, converted to milliseconds rounded
/// up; out-of-range values behave like negative ones (the C conversion overflows). Zero means
/// forever.
fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, &'static str> {
    // Redis reads the timeout as a long double (`string2ld`); its value in seconds as a double
    // is all that matters here (huge values overflow to "negative" either way).
    if crate::types::float::parse_long_double(arg).is_none() {
        return Err("ERR timeout is not a float or out of range");
    }
    let secs = args::strtod(arg).0;
    let ms = (secs * 1000.0).ceil();
    // Past i64::MAX milliseconds C's conversion yields a negative number.
    if !(ms.is_finite() && ms < 9_223_372_036_854_775_808.0) || ms < 0.0 {
        return Err("ERR timeout is negative");
    }
    Ok(if ms == 0.0 {
        None
    } else {
        Some(Duration::from_millis(ms as u64))
    })
}

/// Checks a blocking command's arguments; returns its timeout.
fn check(a: &[Bytes], name: &str) -> Result<Option<Duration>, String> {
    if name == "xread" {
        return super::stream_family::xread_timeout(a);
    }
    if name == "xreadgroup" {
        return super::stream_group_family::xreadgroup_timeout(a);
    }
    check_pops(a, name).map_err(String::from)
}

/// `check` for the pops.
fn check_pops(a: &[Bytes], name: &str) -> Result<Option<Duration>, &'static str> {
    match name {
        // Redis parses numkeys, the direction and COUNT before the timeout here.
        "blmpop" | "bzmpop" => {
            if name == "blmpop" {
                parse_blmpop(a)?;
            } else {
                parse_mpop(a, 2)?;
            }
            parse_timeout(&a[1])
        }
        "blmove" => {
            let t = parse_timeout(&a[5]);
            if parse_end(&a[3]).is_none() || parse_end(&a[4]).is_none() {
                return Err(ERR_SYNTAX);
            }
            t
        }
        _ => parse_timeout(&a[a.len() - 1]),
    }
}

/// BLMPOP's `numkeys key... LEFT|RIGHT [COUNT n]` from position 2.
fn parse_blmpop(a: &[Bytes]) -> Result<(std::ops::Range<usize>, End, usize), &'static str> {
    let numkeys = match args::parse_i64(&a[2]) {
        Some(n) if n >= 1 => n as usize,
        _ => return Err("ERR numkeys should be greater than 0"),
    };
    let where_at = match numkeys.checked_add(3) {
        Some(i) if i < a.len() => i,
        _ => return Err(ERR_SYNTAX),
    };
    let end = parse_end(&a[where_at]).ok_or(ERR_SYNTAX)?;
    let mut count = None;
    let mut j = where_at + 1;
    while j < a.len() {
        if count.is_none() && eq_ic(&a[j], "count") && j + 1 < a.len() {
            match args::parse_i64(&a[j + 1]) {
                Some(n) if n >= 1 => count = Some(n as usize),
                _ => return Err("ERR count should be greater than 0"),
            }
            j += 2;
        } else {
            return Err(ERR_SYNTAX);
        }
    }
    Ok((3..where_at, end, count.unwrap_or(1)))
}

/// A blocked command's arguments narrowed to the one key `key` (which became ready), for
/// serving it from that key: BLPOP/BRPOP/BZPOPMIN/BZPOPMAX and XREAD/XREADGROUP keep that key
/// alone, BLMPOP/BZMPOP get numkeys 1; commands of one source key stay as they are.
pub fn narrow_to_key(args: &[Bytes], key: &[u8]) -> Vec<Bytes> {
    let name = &args[0];
    if eq_ic(name, "xread") || eq_ic(name, "xreadgroup") {
        return super::stream_family::narrow_read(args, key);
    }
    let single = |a: &[Bytes]| a.iter().any(|k| &k[..] == key);
    if ["blpop", "brpop", "bzpopmin", "bzpopmax"]
        .iter()
        .any(|n| eq_ic(name, n))
        && args.len() > 3
        && single(&args[1..args.len() - 1])
    {
        return vec![
            args[0].clone(),
            Bytes::copy_from_slice(key),
            args[args.len() - 1].clone(),
        ];
    }
    if (eq_ic(name, "blmpop") || eq_ic(name, "bzmpop")) && args.len() > 3 {
        if let Some(n) = args::parse_i64(&args[2]).filter(|&n| n > 1) {
            let n = n as usize;
            if 3 + n <= args.len() && single(&args[3..3 + n]) {
                let mut v = vec![
                    args[0].clone(),
                    args[1].clone(),
                    Bytes::from_static(b"1"),
                    Bytes::copy_from_slice(key),
                ];
                v.extend_from_slice(&args[3 + n..]);
                return v;
            }
        }
    }
    args.to_vec()
}

// --- The pops (serve now or write nothing) ------------------------------------------------------

fn try_bpop(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply, end: End) -> bool {
    match list_family::first_list_pop(ctx, &a[1..a.len() - 1], end, ListShape::KeyOne, r) {
        Ok(served) => served,
        Err(e) => {
            r.error(e);
            true
        }
    }
}

fn try_blpop(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) -> bool {
    try_bpop(ctx, a, r, End::Head)
}

fn try_brpop(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) -> bool {
    try_bpop(ctx, a, r, End::Tail)
}

fn try_move(ctx: &mut Ctx, src: &[u8], dst: &[u8], from: End, to: End, r: &mut Reply) -> bool {
    match list_family::move_reply(ctx, src, dst, from, to, r) {
        Ok(served) => served,
        Err(e) => {
            r.error(e);
            true
        }
    }
}

fn try_blmove(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) -> bool {
    let (Some(from), Some(to)) = (parse_end(&a[3]), parse_end(&a[4])) else {
        r.error(ERR_SYNTAX);
        return true;
    };
    try_move(ctx, &a[1], &a[2], from, to, r)
}

fn try_brpoplpush(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) -> bool {
    try_move(ctx, &a[1], &a[2], End::Tail, End::Head, r)
}

fn try_blmpop(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) -> bool {
    let (keys, end, count) = match parse_blmpop(a) {
        Ok(p) => p,
        Err(e) => {
            r.error(e);
            return true;
        }
    };
    match list_family::mpop_reply(ctx, &a[keys], end, count, r) {
        Ok(served) => served,
        Err(e) => {
            r.error(e);
            true
        }
    }
}

fn try_bzpop(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply, max: bool) -> bool {
    zset_family::pop_reply(ctx, &a[1..a.len() - 1], max, 1, ZShape::KeyFlat, r)
}

fn try_bzpopmin(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) -> bool {
    try_bzpop(ctx, a, r, false)
}

fn try_bzpopmax(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) -> bool {
    try_bzpop(ctx, a, r, true)
}

fn try_bzmpop(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) -> bool {
    let p = match parse_mpop(a, 2) {
        Ok(p) => p,
        Err(e) => {
            r.error(e);
            return true;
        }
    };
    zset_family::pop_reply(ctx, &a[p.keys], p.max, p.count, ZShape::KeyNested, r)
}

/// The pop of a blocking command, the type its keys must hold, and its non-blocking "nothing"
/// reply (inside MULTI/EXEC and scripts).
fn blocking_kind(name: &str) -> (TryServe, &'static str, bool) {
    // (serve, wanted type, nothing-reply is a null bulk rather than a null array)
    match name {
        "blpop" => (try_blpop, "list", false),
        "brpop" => (try_brpop, "list", false),
        "blmove" => (try_blmove, "list", true),
        "brpoplpush" => (try_brpoplpush, "list", true),
        "blmpop" => (try_blmpop, "list", false),
        "bzpopmin" => (try_bzpopmin, "zset", false),
        "bzpopmax" => (try_bzpopmax, "zset", false),
        // XREAD reads without consuming: every waiter below the new entries is served.
        "xread" => (super::stream_family::try_xread, "stream", false),
        "xreadgroup" => (super::stream_group_family::try_xreadgroup, "stream", false),
        _ => (try_bzmpop, "zset", false),
    }
}

/// How a waiter is served once it blocked: like its first attempt, except a blocked XREAD (by
/// the stream's rule on the ID it waits for) and a blocked XREADGROUP (which gets the errors
/// of a client that was blocked when its key or group went away).
fn blocked_serve(name: &str, first: TryServe) -> TryServe {
    match name {
        "xread" => super::stream_family::serve_blocked_xread,
        "xreadgroup" => super::stream_group_family::serve_blocked_xreadgroup,
        _ => first,
    }
}

/// The non-blocking behaviour shared by the table entries.
fn nonblocking(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let name = a[0].to_ascii_lowercase();
    let name = std::str::from_utf8(&name).unwrap_or("");
    if let Err(e) = check(a, name) {
        return r.error(&e);
    }
    let (serve, _, null_bulk) = blocking_kind(name);
    if !serve(ctx, a, r) {
        if null_bulk {
            r.null();
        } else {
            r.null_array();
        }
    }
}

fn blpop(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    nonblocking(ctx, a, r)
}
fn brpop(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    nonblocking(ctx, a, r)
}
fn blmove(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    nonblocking(ctx, a, r)
}
fn brpoplpush(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    nonblocking(ctx, a, r)
}
fn blmpop(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    nonblocking(ctx, a, r)
}
fn bzpopmin(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    nonblocking(ctx, a, r)
}
fn bzpopmax(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    nonblocking(ctx, a, r)
}
fn bzmpop(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    nonblocking(ctx, a, r)
}

// --- Blocking -----------------------------------------------------------------------------------

/// What a try on the keys' shard produced.
enum Attempt {
    Done(BytesMut),
    Blocked(u64, oneshot::Receiver<Wake>),
}

/// On the shard owning every key: waits for transaction locks on the keys, then either serves
/// the command or registers the client as a waiter, in one synchronous step (no wake-up can be
/// lost in between).
///
/// `retry`: the client is blocked over keys of several shards and tries again, one key at a time
/// (`args` narrowed to it). It is served as a blocked client is served (a blocked XREAD by its
/// stream's rule), never registered, and its call is counted by the caller; `Done` with nothing
/// written means there is still nothing to serve.
async fn attempt_here(
    sh: &Shard,
    spec: &'static CommandSpec,
    args: Vec<Bytes>,
    db: usize,
    resp3: bool,
    retry: bool,
) -> Attempt {
    sh.wait_unlocked(db, std::iter::once((spec, &args[..])))
        .await;
    let (first, wants, _) = blocking_kind(spec.name);
    let serve = if retry {
        blocked_serve(spec.name, first)
    } else {
        first
    };
    let slot = crate::commands::stat_index(spec, &args);
    let mut buf = BytesMut::new();
    let mut st = sh.state.borrow_mut();
    let started = st.clock.now_us();
    // Served at once, the command is a write like any other: a WATCH on what it changed
    // fails, and client-side caches of it are invalidated (`execute_keyed` does both for
    // every other command).
    let watched_before = if spec.has(WRITE)
        && st.dbs[db].has_watches()
        && !spec.has(crate::commands::flags::OWN_SIGNALS)
    {
        crate::shard::watched_snapshot(&st.dbs[db], spec, &args, false)
    } else {
        Vec::new()
    };
    st.dirty = None;
    let served = {
        let mut ctx = Ctx {
            st: &mut st,
            db,
            now_ms: crate::server::globals::unix_ms(),
            globals: &sh.globals,
        };
        serve(&mut ctx, &args, &mut Reply::new(&mut buf, resp3))
    };
    let changes = st.dirty.take().unwrap_or(1);
    // A pop or a group read writes; XREAD only reads, and an error changed nothing.
    let wrote = served && spec.has(WRITE) && buf.first() != Some(&b'-') && changes > 0;
    if served && spec.has(WRITE) {
        crate::persistence::aof::record_served(&mut st, &args, db, &buf);
        if buf.first() != Some(&b'-') {
            sh.globals.snapshot.note_changes(st.id, changes);
        }
    }
    if !watched_before.is_empty() {
        crate::shard::touch_changed_watched(&st.dbs[db], spec, &args, watched_before, wrote);
    }
    if served && spec.has(WRITE) {
        let d = &st.dbs[db];
        crate::pubsub::tracking::after_command(
            spec,
            &args,
            crate::pubsub::tracking::Track::default(),
            wrote,
            |k| d.peek(k).is_some(),
        );
    }
    if served || retry {
        if !retry {
            let usec = st.clock.now_us().saturating_sub(started);
            let failed = buf.first() == Some(&b'-');
            st.count_call(slot, usec, failed);
            if failed {
                st.stats.error_replied(&buf);
            }
        }
        // The pop changed keys other waiters may want (BLMOVE's destination).
        for p in spec.keys(&args) {
            st.blocked.touched(db, &args[p]);
        }
        let now = crate::server::globals::unix_ms();
        crate::shard::blocking::serve_ready(&mut st, &sh.globals, now);
        return Attempt::Done(buf);
    }
    let args = if spec.name == "xread" {
        let d = &st.dbs[db];
        let now = crate::server::globals::unix_ms();
        super::stream_family::blocked_xread_args(&args, |k| stream_last_id(d, k, now))
    } else if spec.name == "xreadgroup" {
        super::stream_group_family::blocked_xreadgroup_args(&args)
    } else {
        args
    };
    let keys: Vec<Bytes> = spec.keys(&args).map(|p| args[p].clone()).collect();
    let (wake, rx) = oneshot::channel();
    let usec = st.clock.now_us().saturating_sub(started);
    st.count_blocked(slot, usec);
    let id = st.blocked.add(Waiter {
        db,
        keys,
        wants,
        serve: Some((blocked_serve(spec.name, first), args, resp3)),
        stat: Some((slot, usec)),
        claim: None,
        wake,
        in_flight: false,
    });
    Attempt::Blocked(id, rx)
}

/// For a blocked XREAD's `$`: the last ID of the stream at `key` (None inside when missing),
/// or None for a key of another type.
fn stream_last_id(
    d: &crate::shard::db::Db,
    key: &[u8],
    now: u64,
) -> Option<Option<crate::types::stream_id::StreamId>> {
    match d.peek(key) {
        None => Some(None),
        Some((e, at)) if at != 0 && at <= now => {
            let _ = e;
            Some(None)
        }
        Some((e, _)) => match &e.value {
            crate::types::Value::Stream(s) => Some(Some(s.last_id)),
            _ => None,
        },
    }
}

/// Runs a blocking command for a connection outside MULTI/EXEC.
pub async fn execute_blocking(c: &mut Conn, spec: &'static CommandSpec, args: Vec<Bytes>) {
    let started = std::time::Instant::now();
    let slot = crate::commands::stat_index(spec, &args);
    let timeout = match check(&args, spec.name) {
        Ok(t) => t,
        Err(e) => {
            let mut st = c.shard.state.borrow_mut();
            st.count_call(slot, started.elapsed().as_micros() as u64, true);
            st.stats.error_replied(e.as_bytes());
            drop(st);
            return c.reply().error(&e);
        }
    };
    // A deadline past what the clock can represent is as good as none.
    let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
    let shards: Vec<usize> = {
        let mut v: Vec<usize> = spec
            .keys(&args)
            .map(|p| c.shard.shard_of(&args[p]))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let (db, resp3) = (c.db, c.resp3);
    if shards.len() <= 1 {
        let target = shards.first().copied().unwrap_or(c.shard.id);
        let Some(attempt) = attempt_on(c, target, spec, args, db, resp3, false).await else {
            return c.reply().error(ERR_SHARD_GONE);
        };
        match attempt {
            Attempt::Done(b) => c.out.extend_from_slice(&b),
            Attempt::Blocked(id, rx) => {
                let outcome = c.wait_blocked(rx, deadline).await;
                finish_single(c, target, id, outcome).await;
            }
        }
        return;
    }
    // Keys on several shards: register on each of them under one claim (`Claim`), try the
    // command as a transaction while holding the claim, then give it back and wait to be
    // served in place by whichever shard gets something first. A BLMOVE/BRPOPLPUSH, whose pop
    // and push are on different shards, registers notify-only and retries as a transaction
    // when woken. The attempts are counted here, where it is known which one blocked and which
    // one ended the call; `blocked` is the first attempt's time once the call blocked.
    let mut blocked: Option<u64> = None;
    // The key whose change woke the client last.
    let mut woken_by: Option<Bytes> = None;
    let mut args = args;
    if spec.name == "xread" {
        // `$` is what each stream holds when the command starts (its first attempt can serve
        // nothing from it anyway).
        let mut resolved: Vec<(Bytes, Option<Option<crate::types::stream_id::StreamId>>)> =
            Vec::new();
        for p in spec.keys(&args) {
            let key = args[p].clone();
            let s = c.shard.shard_of(&key);
            let k2 = key.clone();
            let last = c
                .shard
                .run_on(s, move |sh| {
                    let st = sh.state.borrow();
                    stream_last_id(&st.dbs[db], &k2, crate::server::globals::unix_ms())
                })
                .await
                .unwrap_or(None);
            resolved.push((key, last));
        }
        let with_count = super::stream_family::blocked_xread_args(&args, |k| {
            resolved
                .iter()
                .find(|(key, _)| &key[..] == k)
                .and_then(|(_, last)| *last)
        });
        // The first attempt reads without the blocked default COUNT: drop it again if added.
        if with_count.len() == args.len() + 2 {
            let mut v = with_count;
            v.drain(1..3);
            args = v;
        } else {
            args = with_count;
        }
    }
    // What a blocked call serves with: a blocked read's IDs and default COUNT.
    let blocked_args = match spec.name {
        "xread" => super::stream_family::blocked_xread_args(&args, |_| None),
        "xreadgroup" => super::stream_group_family::blocked_xreadgroup_args(&args),
        _ => args.clone(),
    };
    let in_place = narrows_to_one_key(spec.name);
    let (first_try, wants, _) = blocking_kind(spec.name);
    let serve = blocked_serve(spec.name, first_try);
    // A notify-only call waits on its source alone (Redis blocks BLMOVE on its source only).
    let waits_on = |p: &usize| in_place || *p == 1;
    // A notify-only call woken in its turn keeps its registrations (and its place) while it
    // retries.
    let mut in_flight: Option<Vec<(usize, u64)>> = None;
    loop {
        let claim = in_place.then(crate::shard::blocking::new_claim);
        let mut registered: Vec<(usize, u64)> = Vec::new();
        let (any_tx, mut any_rx) = futures::channel::mpsc::unbounded::<Wake>();
        let retrying = in_flight.is_some();
        if let Some(kept) = in_flight.take() {
            registered = kept;
        } else {
            for &s in &shards {
                let keys: Vec<Bytes> = spec
                    .keys(&args)
                    .filter(|p| waits_on(p) && c.shard.shard_of(&args[*p]) == s)
                    .map(|p| args[p].clone())
                    .collect();
                if keys.is_empty() {
                    continue;
                }
                let claim = claim.clone();
                let serve = claim
                    .is_some()
                    .then(|| (serve, blocked_args.clone(), resp3));
                let wake = forward_wake(&any_tx);
                let id = c
                    .shard
                    .run_on(s, move |sh| {
                        let wake = wake();
                        sh.state.borrow_mut().blocked.add(Waiter {
                            db,
                            keys,
                            wants,
                            serve,
                            stat: None,
                            claim,
                            wake,
                            in_flight: false,
                        })
                    })
                    .await;
                match id {
                    Ok(id) => registered.push((s, id)),
                    Err(_) => {
                        unregister(c, &registered).await;
                        return c.reply().error(ERR_SHARD_GONE);
                    }
                }
            }
        }
        let attempt = std::time::Instant::now();
        let result = match (blocked, woken_by.take()) {
            // Once blocked, served as a blocked client is: from one key, the one whose change
            // woke it first, then each other in order.
            (Some(_), key) if in_place => {
                let mut served = None;
                for k in retry_order(spec, &args, key.as_ref()) {
                    let target = c.shard.shard_of(&k);
                    let narrowed = narrow_to_key(&args, &k);
                    match attempt_on(c, target, spec, narrowed, db, resp3, true).await {
                        Some(Attempt::Done(b)) if !b.is_empty() => {
                            served = Some(Ok(b));
                            break;
                        }
                        Some(_) => {}
                        None => {
                            served = Some(Err(ERR_SHARD_GONE));
                            break;
                        }
                    }
                }
                served
            }
            _ => {
                let mut cmd = crate::tx::TxCmd::new(spec, args.clone(), db);
                cmd.uncounted = true;
                let shard = c.shard.clone();
                let label = c.label.clone();
                let nothing: &[u8] = if resp3 { b"_\r\n" } else { b"*-1\r\n" };
                let null_bulk: &[u8] = if resp3 { b"_\r\n" } else { b"$-1\r\n" };
                match crate::tx::run_atomic(&shard, vec![cmd], resp3, &label).await {
                    Ok(r) if r.buf[..] == *nothing || r.buf[..] == *null_bulk => None,
                    Ok(r) => Some(Ok(r.buf)),
                    Err(e) => Some(Err(e)),
                }
            }
        };
        let usec = attempt.elapsed().as_micros() as u64;
        if retrying && result.is_none() {
            // Nothing after all (taken by a command that came first): its place again, armed
            // anew, and the waiters behind it have their turn.
            let mut armed = true;
            for &(s, id) in &registered {
                let wake = forward_wake(&any_tx);
                armed &= c
                    .shard
                    .run_task_on(s, move |sh| async move {
                        crate::shard::blocking::end_turn(&sh, id, Some(wake()))
                    })
                    .await
                    .unwrap_or(false);
            }
            if !armed {
                unregister(c, &registered).await;
                continue;
            }
        }
        drop(any_tx);
        if let Some(result) = result {
            unregister(c, &registered).await;
            let reply = match result {
                Ok(b) => b,
                Err(e) => {
                    let mut b = BytesMut::new();
                    Reply::new(&mut b, resp3).error(e);
                    b
                }
            };
            let usec = blocked.map_or(usec, |before| before + usec);
            return deliver(c, slot, usec, blocked.is_some(), &reply);
        }
        if blocked.is_none() {
            c.shard.state.borrow_mut().count_blocked(slot, usec);
            blocked = Some(usec);
            args = blocked_args.clone();
        }
        // From here the shards serve it. Passed over while the attempt held the claim:
        // something arrived meanwhile, so it tries again.
        if claim.as_ref().is_some_and(|c| !release_claim(c)) {
            unregister(c, &registered).await;
            continue;
        }
        let woke = c.wait_notified(&mut any_rx, deadline).await;
        let woke = match woke {
            BlockOutcome::TimedOut | BlockOutcome::Unblocked(_) | BlockOutcome::Gone
                if claim.as_ref().is_some_and(|c| !take_claim(c)) =>
            {
                // A shard is serving it right now: what it did decides.
                match any_rx.next().await {
                    Some(Wake::Served(b)) => BlockOutcome::Reply(b),
                    _ => woke,
                }
            }
            woke => woke,
        };
        if !in_place && matches!(woke, BlockOutcome::Woken(_)) {
            // Woken in its turn: it retries from where it waits.
            in_flight = Some(registered);
            continue;
        }
        unregister(c, &registered).await;
        match woke {
            BlockOutcome::Reply(b) => {
                let usec = blocked.unwrap_or(0);
                return deliver(c, slot, usec, true, &b);
            }
            BlockOutcome::Woken(key) => {
                woken_by = key;
                continue;
            }
            BlockOutcome::TimedOut => return timed_out_reply(c, None),
            BlockOutcome::Unblocked(how) => {
                count_client_unblock(&mut c.shard.state.borrow_mut(), slot, blocked, how);
                return timed_out_reply(c, Some(how));
            }
            BlockOutcome::Gone => {
                c.close_after_reply = true;
                return;
            }
        }
    }
}

/// Sends the reply of a call over keys of several shards and counts the call (`unblocked`: it
/// had blocked, taking `usec` in all).
fn deliver(c: &mut Conn, slot: usize, usec: u64, unblocked: bool, reply: &[u8]) {
    c.out.extend_from_slice(reply);
    let failed = reply.first() == Some(&b'-');
    let mut st = c.shard.state.borrow_mut();
    if unblocked {
        st.count_unblocked(slot, usec, failed);
    } else {
        st.count_call(slot, usec, failed);
    }
    if failed {
        st.stats.error_replied(reply);
    }
}

/// Whether a blocked call narrowed to one of its keys (`narrow_to_key`) reads that key alone:
/// every blocking command but those with one source and a destination, whose retry stays whole.
fn narrows_to_one_key(name: &str) -> bool {
    !matches!(name, "blmove" | "brpoplpush")
}

/// The keys a woken call retries from, one at a time: the key whose change woke it first, then
/// the others in the order the call names them, each once.
fn retry_order(spec: &CommandSpec, args: &[Bytes], woken_by: Option<&Bytes>) -> Vec<Bytes> {
    let mut keys: Vec<Bytes> = Vec::new();
    for p in spec.keys(args) {
        if !keys.contains(&args[p]) {
            keys.push(args[p].clone());
        }
    }
    if let Some(i) = keys.iter().position(|k| Some(k) == woken_by) {
        let k = keys.remove(i);
        keys.insert(0, k);
    }
    keys
}

/// `attempt_here` on shard `target` (this one or another); None when that shard is gone.
async fn attempt_on(
    c: &Conn,
    target: usize,
    spec: &'static CommandSpec,
    args: Vec<Bytes>,
    db: usize,
    resp3: bool,
    retry: bool,
) -> Option<Attempt> {
    if target == c.shard.id {
        return Some(attempt_here(&c.shard, spec, args, db, resp3, retry).await);
    }
    let (reply, rx) = oneshot::channel();
    let task: crate::shard::router::TaskJob = Box::new(move |sh| {
        Box::pin(async move {
            let a = attempt_here(&sh, spec, args, db, resp3, retry).await;
            let _ = reply.send(match a {
                Attempt::Done(b) => Ok(b),
                Attempt::Blocked(id, rx) => Err((id, rx)),
            });
        })
    });
    c.shard
        .router
        .send(target, ShardMsg::Task(task))
        .await
        .ok()?;
    match rx.await.ok()? {
        Ok(b) => Some(Attempt::Done(b)),
        Err((id, rx)) => Some(Attempt::Blocked(id, rx)),
    }
}

/// Removes a call's registrations. One that was woken in its turn (notify-only, in flight)
/// hands the turn on (`end_turn`).
async fn unregister(c: &Conn, registered: &[(usize, u64)]) {
    for &(s, id) in registered {
        let _ = c
            .shard
            .run_task_on(s, move |sh| async move {
                crate::shard::blocking::end_turn(&sh, id, None);
            })
            .await;
    }
}

/// A maker of wake-up senders for a registration on another shard: each sender it makes
/// there forwards what it gets to the call's channel `any`.
fn forward_wake(
    any: &futures::channel::mpsc::UnboundedSender<Wake>,
) -> impl FnOnce() -> oneshot::Sender<Wake> + Send + 'static {
    let any = any.clone();
    move || {
        let (wake, rx) = oneshot::channel();
        glommio::spawn_local(async move {
            if let Ok(w) = rx.await {
                let _ = any.unbounded_send(w);
            }
        })
        .detach();
        wake
    }
}

/// How a blocked wait ended.
pub enum BlockOutcome {
    /// Served in place: the reply.
    Reply(BytesMut),
    /// Woken to retry (notify-only waiters), by a change to this key.
    Woken(Option<Bytes>),
    TimedOut,
    /// CLIENT UNBLOCK ended the wait.
    Unblocked(crate::server::client::Unblock),
    /// The client closed the connection.
    Gone,
}

/// The reply of a client that CLIENT UNBLOCK ended with ERROR (TIMEOUT gives the timeout reply).
pub const ERR_UNBLOCKED: &str = "UNBLOCKED client unblocked via CLIENT UNBLOCK";

/// Counts a blocked call that CLIENT UNBLOCK ended: a failed call either way (as Redis 7.0
/// counts it), its error in errorstats when it ends with one. `blocked` is the slot's
/// statistics slot and the time the call took before it blocked.
fn count_client_unblock(
    st: &mut crate::shard::ShardState,
    slot: usize,
    blocked: Option<u64>,
    how: crate::server::client::Unblock,
) {
    if let Some(usec) = blocked {
        st.count_unblocked(slot, usec, true);
        if how == crate::server::client::Unblock::Error {
            st.stats.error_replied(ERR_UNBLOCKED.as_bytes());
        }
    }
}

/// The reply for a wait ended by its timeout or by CLIENT UNBLOCK.
fn timed_out_reply(c: &mut Conn, how: Option<crate::server::client::Unblock>) {
    match how {
        Some(crate::server::client::Unblock::Error) => c.reply().error(ERR_UNBLOCKED),
        _ => c.reply().null_array(),
    }
}

/// After a single-shard wait: on timeout or disconnect the waiter is withdrawn from its shard;
/// if it was served at that very moment, the served reply still goes out (never lost).
async fn finish_single(
    c: &mut Conn,
    target: usize,
    id: u64,
    outcome: (BlockOutcome, Option<oneshot::Receiver<Wake>>),
) {
    let (outcome, rx) = outcome;
    match outcome {
        BlockOutcome::Reply(b) => c.out.extend_from_slice(&b),
        BlockOutcome::Woken(_) => c.reply().null_array(),
        BlockOutcome::TimedOut | BlockOutcome::Unblocked(_) | BlockOutcome::Gone => {
            let unblock = match outcome {
                BlockOutcome::Unblocked(how) => Some(how),
                _ => None,
            };
            let removed = c
                .shard
                .run_on(target, move |sh| {
                    let mut st = sh.state.borrow_mut();
                    let Some(w) = st.blocked.remove(id) else {
                        return false;
                    };
                    if let (Some(how), Some((slot, usec))) = (unblock, w.stat) {
                        count_client_unblock(&mut st, slot, Some(usec), how);
                    }
                    true
                })
                .await
                .unwrap_or(true);
            let gone = matches!(outcome, BlockOutcome::Gone);
            if removed {
                if gone {
                    c.close_after_reply = true;
                } else if let BlockOutcome::Unblocked(how) = outcome {
                    timed_out_reply(c, Some(how));
                } else {
                    timed_out_reply(c, None);
                }
                return;
            }
            // Served concurrently: deliver it.
            if let Some(rx) = rx {
                if let Ok(Wake::Served(b)) = rx.await {
                    c.out.extend_from_slice(&b);
                }
            }
            if gone {
                c.close_after_reply = true;
            }
        }
    }
}

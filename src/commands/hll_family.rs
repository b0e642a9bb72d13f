//! HyperLogLog commands (Redis's hyperloglog.c): PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST.
//!
//! A HyperLogLog is an ordinary string value holding Redis's exact bytes (`types::hll` owns the
//! layout), so GET, SET, DUMP/RESTORE and RDB files carry it to and from Redis unchanged. This
//! module owns what the commands do with such a string: the header check and its errors, when
//! a value is changed in place and made a raw string (Redis "unshares" it first), the cached
//! cardinality that PFCOUNT of one key writes back, and the dirty counts, `pfadd` events and
//! modified-key signals Redis gives for each.
//!
//! Every handler runs on the shard that owns its keys and touches only that shard's data:
//! PFCOUNT and PFMERGE over keys of several shards are run by the transaction layer with copies
//! of the foreign values. Handlers never trust a value's bytes: a corrupt one gets Redis's
//! INVALIDOBJ error, never a panic.

use bytes::Bytes;

use super::args::{eq_ic, ERR_WRONGTYPE};
use super::class;
use super::{cmd, flags::*, CommandSpec, Ctx, Exec, KeySpec, KEY1, NO_KEYS};
use crate::protocol::Reply;
use crate::types::hll::{self, ERR_CORRUPT, ERR_NOT_HLL, REGISTERS};
use crate::types::{StrValue, Value};

pub fn specs() -> Vec<CommandSpec> {
    let g = "hyperloglog";
    vec![
        cmd(
            "pfadd",
            -2,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "2.8.9",
            "O(1) to add every element.",
            "Adds elements to a HyperLogLog; creates the key if needed.",
            Exec::Shard(pfadd),
        )
        .key_flags(&["RW", "insert"]),
        cmd(
            "pfcount",
            -2,
            READONLY,
            (1, -1, 1),
            g,
            "2.8.9",
            "O(1) with a very small average constant time when called with a single key. O(N) with N being the number of keys, and much bigger constant times, when called with multiple keys.",
            "Estimates the number of distinct elements seen by one or more HyperLogLogs.",
            Exec::Shard(pfcount),
        )
        .key_specs(
            const {
                &[KeySpec::range(&["RW", "access"], 1, -1, 1).notes(
                    "RW because it may change the internal representation of the key, and propagate to replicas",
                )]
            },
        ),
        cmd(
            "pfmerge",
            -2,
            WRITE | DENYOOM,
            (1, -1, 1),
            g,
            "2.8.9",
            "O(N) to merge N HyperLogLogs, but with high constant times.",
            "Merges HyperLogLogs into one stored at the destination key.",
            Exec::Shard(pfmerge),
        )
        .key_specs(
            const {
                &[
                    KeySpec::range(&["RW", "access", "insert"], 1, 0, 1),
                    KeySpec::range(&["RO", "access"], 2, -1, 1),
                ]
            },
        ),
        cmd(
            "pfdebug",
            3,
            WRITE | DENYOOM | ADMIN,
            (2, 2, 1),
            g,
            "2.8.9",
            "N/A",
            "Debugging aid for HyperLogLog values (registers, opcodes, encoding).",
            Exec::Shard(pfdebug),
        )
        .key_flags(&["RW", "access"]),
        cmd(
            "pfselftest",
            1,
            ADMIN,
            NO_KEYS,
            g,
            "2.8.9",
            "N/A",
            "Checks the HyperLogLog implementation against itself.",
            Exec::Shard(pfselftest),
        ),
    ]
}

/// What a key holds for an HLL command: Err with the reply error when it is not a string, or
/// not a string Redis accepts as a HyperLogLog (an integer-encoded string never is).
fn hll_bytes(v: &Value) -> Result<&[u8], &'static str> {
    match v {
        Value::Str(s) => match s.stored_bytes() {
            Some(b) if hll::is_hll(b) => Ok(b),
            _ => Err(ERR_NOT_HLL),
        },
        _ => Err(ERR_WRONGTYPE),
    }
}

/// Changes a string value in place the way Redis does after `dbUnshareStringValue`: the bytes
/// become a raw string that `f` may grow or shrink. `f` reports whether it changed anything; a
/// value not raw yet is copied out and replaced only then, so that a command that changes
/// nothing leaves the value (and a WATCH on it) alone.
fn edit<R>(v: &mut Value, f: impl FnOnce(&mut Vec<u8>) -> (bool, R)) -> R {
    let Value::Str(s) = v else {
        // The callers checked the type; nothing to edit otherwise.
        return f(&mut Vec::new()).1;
    };
    if let StrValue::Raw(b) = s {
        return f(b).1;
    }
    let mut b = s.stored_bytes().unwrap_or_default().to_vec();
    let (changed, out) = f(&mut b);
    if changed {
        *s = StrValue::Raw(b);
    }
    out
}

fn pfadd(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let key = &a[1];
    let max_bytes = ctx.st.config.hll_sparse_max_bytes;
    let now = ctx.now_ms;
    let created = match ctx.lookup_write(key) {
        None => true,
        Some(e) => match hll_bytes(&e.value) {
            Ok(_) => false,
            Err(err) => return r.error(err),
        },
    };
    if created {
        ctx.db()
            .insert(key, Value::Str(StrValue::Raw(hll::new_sparse())), 0, now);
    }
    let Some(e) = ctx.db().lookup_notouch(key, now) else {
        return r.error(ERR_CORRUPT);
    };
    // Redis counts one change per element that raised a register, plus one for a new key.
    let result = edit(&mut e.value, |v| {
        let mut updated = created as u64;
        let mut tail = 0;
        for ele in &a[2..] {
            match hll::add(v, &mut tail, ele, max_bytes) {
                Ok(true) => updated += 1,
                Ok(false) => {}
                // What changed before the corrupt part stays changed, as in Redis.
                Err(hll::Corrupt) => return (updated > 0, Err(updated)),
            }
        }
        if updated > 0 {
            hll::invalidate(v);
        }
        (updated > 0, Ok(updated))
    });
    match result {
        Ok(0) => {
            ctx.dirty(0);
            r.int(0);
        }
        Ok(n) => {
            ctx.notify(class::STRING, "pfadd", key);
            ctx.dirty(n);
            r.int(1);
        }
        Err(_) => {
            ctx.dirty(0);
            r.error(ERR_CORRUPT);
        }
    }
}

fn pfcount(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    if a.len() > 2 {
        return pfcount_union(ctx, &a[1..], r);
    }
    let key = &a[1];
    let Some(e) = ctx.lookup_read(key) else {
        return r.int(0);
    };
    let card = match hll_bytes(&e.value) {
        Err(err) => return r.error(err),
        Ok(b) => match hll::cached(b) {
            Some(card) => return r.int(card as i64),
            None => match hll::count(b) {
                Ok(card) => card,
                Err(hll::Corrupt) => return r.error(ERR_CORRUPT),
            },
        },
    };
    // The recomputed cardinality goes back into the header cache. Redis counts this as a
    // change (dirty, propagated) and signals the key as modified (WATCH, client caching), but
    // it is no keyspace event.
    edit(&mut e.value, |v| {
        hll::set_cached(v, card);
        (true, ())
    });
    ctx.db().recharge(key);
    ctx.db().touch(key);
    ctx.dirty(1);
    // Redis replies with the cardinality as a signed 64-bit integer.
    r.int(card as i64);
}

/// PFCOUNT of several keys: the registers' maximum over every key, estimated; nothing is
/// written.
fn pfcount_union(ctx: &mut Ctx, keys: &[Bytes], r: &mut Reply) {
    let mut max = vec![0u8; REGISTERS];
    let max: &mut [u8; REGISTERS] = match max.as_mut_slice().try_into() {
        Ok(m) => m,
        Err(_) => return r.error(ERR_CORRUPT),
    };
    for k in keys {
        let Some(e) = ctx.lookup_read(k) else {
            continue;
        };
        match hll_bytes(&e.value) {
            Err(err) => return r.error(err),
            Ok(b) => {
                if hll::merge_into(max, b).is_err() {
                    return r.error(ERR_CORRUPT);
                }
            }
        }
    }
    r.int(hll::count_registers(max) as i64);
}

fn pfmerge(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let mut regs = vec![0u8; REGISTERS];
    let max: &mut [u8; REGISTERS] = match regs.as_mut_slice().try_into() {
        Ok(m) => m,
        Err(_) => return r.error(ERR_CORRUPT),
    };
    // The destination is merged too (it is the first key), and any dense input makes the
    // result dense.
    let mut use_dense = false;
    for k in &a[1..] {
        let Some(e) = ctx.lookup_read(k) else {
            continue;
        };
        match hll_bytes(&e.value) {
            Err(err) => return r.error(err),
            Ok(b) => {
                use_dense |= b[4] == hll::ENC_DENSE;
                if hll::merge_into(max, b).is_err() {
                    return r.error(ERR_CORRUPT);
                }
            }
        }
    }
    let dest = &a[1];
    let max_bytes = ctx.st.config.hll_sparse_max_bytes;
    let now = ctx.now_ms;
    if ctx.db().lookup_notouch(dest, now).is_none() {
        ctx.db()
            .insert(dest, Value::Str(StrValue::Raw(hll::new_sparse())), 0, now);
    }
    let Some(e) = ctx.db().lookup_notouch(dest, now) else {
        return r.error(ERR_CORRUPT);
    };
    let ok = edit(&mut e.value, |v| {
        let mut tail = 0;
        if use_dense && hll::to_dense(v).is_err() {
            return (false, false);
        }
        for (i, &m) in max.iter().enumerate() {
            if m == 0 {
                continue;
            }
            // A sparse destination may turn dense on the way; Redis ignores a sparse update's
            // failure here (the destination was checked as a source already).
            if v[4] == hll::ENC_DENSE {
                if m > hll::dense_get(&v[hll::HDR..], i) {
                    hll::dense_put(&mut v[hll::HDR..], i, m);
                }
            } else {
                let _ = hll::sparse_set(v, &mut tail, i, m, max_bytes);
            }
        }
        hll::invalidate(v);
        (true, true)
    });
    if !ok {
        ctx.dirty(0);
        return r.error(ERR_CORRUPT);
    }
    // Redis signals the destination as modified even when its bytes did not change.
    ctx.db().touch(dest);
    // PFMERGE is announced as a PFADD: in effect it adds many elements at once.
    ctx.notify(class::STRING, "pfadd", dest);
    ctx.dirty(1);
    r.ok();
}

fn pfdebug(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    // Only a conversion to dense (GETREG, TODENSE of a sparse value) counts as a change.
    ctx.dirty(0);
    let (sub, key) = (&a[1], &a[2]);
    let Some(e) = ctx.lookup_write(key) else {
        return r.error("ERR The specified key does not exist");
    };
    let sparse = match hll_bytes(&e.value) {
        Err(err) => return r.error(err),
        Ok(b) => b[4] == hll::ENC_SPARSE,
    };
    let getreg = eq_ic(sub, "getreg");
    if getreg || eq_ic(sub, "todense") {
        if sparse {
            let converted = edit(&mut e.value, |v| {
                let ok = hll::to_dense(v).is_ok();
                (ok, ok)
            });
            if !converted {
                return r.error(ERR_CORRUPT);
            }
        }
        if getreg {
            let Ok(b) = hll_bytes(&e.value) else {
                return r.error(ERR_CORRUPT);
            };
            r.array(REGISTERS);
            for i in 0..REGISTERS {
                r.int(hll::dense_get(&b[hll::HDR..], i) as i64);
            }
        } else {
            r.int(sparse as i64);
        }
        if sparse {
            ctx.dirty(1);
        }
    } else if eq_ic(sub, "decode") {
        match hll_bytes(&e.value) {
            Ok(b) if sparse => r.bulk(hll::decode(b).as_bytes()),
            _ => r.error("ERR HLL encoding is not sparse"),
        }
    } else if eq_ic(sub, "encoding") {
        r.simple(if sparse { "sparse" } else { "dense" });
    } else {
        // Redis formats the name with %s: it ends at a NUL byte.
        let name = sub.split(|&c| c == 0).next().unwrap_or_default();
        let mut msg = b"ERR Unknown PFDEBUG subcommand '".to_vec();
        msg.extend_from_slice(name);
        msg.push(b'\'');
        r.error_bytes(&msg);
    }
}

fn pfselftest(ctx: &mut Ctx, _a: &[Bytes], r: &mut Reply) {
    let seed = ctx.now_ms ^ 0x9e37_79b9_7f4a_7c15;
    match hll::self_test(ctx.st.config.hll_sparse_max_bytes, seed) {
        Ok(()) => r.ok(),
        Err(e) => r.error(&e),
    }
}

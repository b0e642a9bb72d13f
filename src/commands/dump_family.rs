//! DUMP and RESTORE (Redis's cluster.c): a key's value as a Redis 7.0 RDB payload and back.
//!
//! The payload is the value's RDB object (`crate::persistence::rdb`), the RDB version and a
//! CRC64, byte-compatible with Redis 7.0 both ways. These handlers only parse arguments, check
//! the payload's footer and move entries in and out of the keyspace; the encoding lives in the
//! persistence module.

use bytes::Bytes;

use super::args::{eq_ic, ERR_NOT_INT, ERR_SYNTAX};
use super::{cmd, flags::*, CommandSpec, Ctx, Exec, KEY1};
use crate::commands::args::parse_i64;
use crate::persistence::rdb::{dump_payload, restore_value, verify_payload, LoadLimits};
use crate::protocol::Reply;
use crate::pubsub::notify::{class, notify};
use crate::shard::memory::{lfu_pack, lru_for_idle};

pub fn specs() -> Vec<CommandSpec> {
    let g = "generic";
    vec![
        cmd(
            "dump",
            2,
            READONLY,
            KEY1,
            g,
            "2.6.0",
            "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1).",
            "Returns a serialized representation of the value stored at a key.",
            Exec::Shard(dump),
        )
.key_flags(&["RO", "access"])
.tips(&["nondeterministic_output"]),
        cmd(
            "restore",
            -4,
            WRITE | DENYOOM,
            KEY1,
            g,
            "2.6.0",
            "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).",
            "Creates a key from the serialized representation of a value.",
            Exec::Shard(restore),
        )
.key_flags(&["OW", "update"]),
    ]
}

fn dump(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let compress = ctx.st.config.rdbcompression;
    match ctx.lookup_read(&a[1]) {
        None => r.null(),
        Some(e) => r.bulk(&dump_payload(&e.value, compress)),
    }
}

/// RESTORE's options after the payload.
struct RestoreOpts {
    replace: bool,
    absttl: bool,
    /// Seconds idle (IDLETIME), -1 when absent.
    idle: i64,
    /// LFU counter (FREQ), -1 when absent.
    freq: i64,
}

fn restore_opts(a: &[Bytes]) -> Result<RestoreOpts, &'static str> {
    let mut o = RestoreOpts {
        replace: false,
        absttl: false,
        idle: -1,
        freq: -1,
    };
    let mut j = 4;
    while j < a.len() {
        let more = a.len() - j - 1;
        let arg = &a[j];
        if eq_ic(arg, "replace") {
            o.replace = true;
        } else if eq_ic(arg, "absttl") {
            o.absttl = true;
        } else if eq_ic(arg, "idletime") && more >= 1 && o.freq == -1 {
            o.idle = parse_i64(&a[j + 1]).ok_or(ERR_NOT_INT)?;
            if o.idle < 0 {
                return Err("ERR Invalid IDLETIME value, must be >= 0");
            }
            j += 1;
        } else if eq_ic(arg, "freq") && more >= 1 && o.idle == -1 {
            o.freq = parse_i64(&a[j + 1]).ok_or(ERR_NOT_INT)?;
            if !(0..=255).contains(&o.freq) {
                return Err("ERR Invalid FREQ value, must be >= 0 and <= 255");
            }
            j += 1;
        } else {
            return Err(ERR_SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

fn restore(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let opts = match restore_opts(a) {
        Ok(o) => o,
        Err(e) => return r.error(e),
    };
    let key = &a[1];
    if !opts.replace && ctx.lookup_write(key).is_some() {
        return r.error("BUSYKEY Target key name already exists.");
    }
    let Some(ttl) = parse_i64(&a[2]) else {
        return r.error(ERR_NOT_INT);
    };
    if ttl < 0 {
        return r.error("ERR Invalid TTL value, must be >= 0");
    }
    let payload = &a[3];
    if !verify_payload(payload) {
        return r.error("ERR DUMP payload version or checksum are wrong");
    }
    let limits = LoadLimits::from_config(&ctx.st.config);
    let value = match restore_value(payload, &limits) {
        Ok(v) => v,
        Err(_) => return r.error("ERR Bad data format"),
    };
    let now = ctx.now_ms;
    let deleted = opts.replace && ctx.db().delete(key);
    let deadline = if ttl != 0 && !opts.absttl {
        ttl.wrapping_add(now as i64)
    } else {
        ttl
    };
    if deadline != 0 && deadline <= now as i64 {
        // Already expired: Redis answers OK and leaves the key deleted (or absent).
        if deleted {
            notify(class::GENERIC, "del", key, ctx.db);
        }
        return r.ok();
    }
    ctx.db().insert(key, value, deadline as u64, now);
    notify(class::GENERIC, "restore", key, ctx.db);
    let policy = ctx.st.config.maxmemory_policy;
    let access = if policy.is_lfu() {
        (opts.freq >= 0).then(|| lfu_pack(now, opts.freq as u32))
    } else {
        (opts.idle >= 0).then(|| lru_for_idle(opts.idle, now))
    };
    if let Some(access) = access {
        if let Some(e) = ctx.db().lookup_notouch(key, now) {
            e.set_access(access);
        }
    }
    r.ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn options_parse_like_redis() {
        let o = restore_opts(&args(&[
            "restore", "k", "0", "p", "REPLACE", "absttl", "idletime", "5",
        ]))
        .unwrap();
        assert!(o.replace && o.absttl && o.idle == 5 && o.freq == -1);
        assert_eq!(
            restore_opts(&args(&[
                "restore", "k", "0", "p", "idletime", "5", "freq", "3"
            ]))
            .err(),
            Some(ERR_SYNTAX)
        );
        assert_eq!(
            restore_opts(&args(&["restore", "k", "0", "p", "freq", "256"])).err(),
            Some("ERR Invalid FREQ value, must be >= 0 and <= 255")
        );
        assert_eq!(
            restore_opts(&args(&["restore", "k", "0", "p", "idletime", "-1"])).err(),
            Some("ERR Invalid IDLETIME value, must be >= 0")
        );
        assert_eq!(
            restore_opts(&args(&["restore", "k", "0", "p", "idletime"])).err(),
            Some(ERR_SYNTAX)
        );
        assert_eq!(
            restore_opts(&args(&["restore", "k", "0", "p", "freq", "x"])).err(),
            Some(ERR_NOT_INT)
        );
    }

    #[test]
    fn idle_time_sets_the_lru_clock_back() {
        let now = 1_700_000_000_000u64;
        let lru = lru_for_idle(100, now);
        assert_eq!(crate::shard::memory::lru_idle_ms(lru, now) / 1000, 100);
        // Redis 7.0.15 with the clock at 504637: IDLETIME 100000000000 reads back as 7792639,
        // IDLETIME i64::MAX (overflowing) as 16777214.
        let now = 504637 * 1000;
        assert_eq!(
            crate::shard::memory::lru_idle_ms(lru_for_idle(100_000_000_000, now), now) / 1000,
            7792639
        );
        assert_eq!(
            crate::shard::memory::lru_idle_ms(lru_for_idle(i64::MAX, now), now) / 1000,
            16777214
        );
    }
}

//! Differential tests of the stream commands without consumer groups (XADD, XRANGE, XREVRANGE,
//! XLEN, XDEL, XTRIM, XSETID, XREAD with and without BLOCK, XINFO STREAM) against
//! redis-server 7.0, Tessera with 1 and 4 shards.
//!
//! Besides replies and errors, XINFO STREAM FULL after changes shows the node layout
//! (`radix-tree-keys`, `radix-tree-nodes`), the counters and every entry; DUMP payloads are
//! compared byte for byte (they hold each node's listpack). Also compared: dirty counts,
//! keyspace hits and misses, keyspace notifications, a seeded random run with explicit IDs,
//! restarts and DEBUG RELOAD. Auto-generated IDs (`*`, `<ms>-*` on a new millisecond) depend on
//! the clock: those replies are compared by shape only, as the comments say where.

use crate::common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Runs a command on every target and compares its reply together with how much it changed
/// `rdb_changes_since_last_save` and the keyspace hit and miss counters.
fn counted(d: &mut Diff, line: &str) {
    let args = split_cmd(line);
    let refs: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
    let what = format!("{line} (reply, dirty, hits, misses)");
    d.each(&what, |t, active| {
        let c = &mut t.conns[active];
        let dirty0 = info_num(c, "persistence", "rdb_changes_since_last_save");
        let hits0 = info_num(c, "stats", "keyspace_hits");
        let miss0 = info_num(c, "stats", "keyspace_misses");
        let mut out = c.cmd(&refs);
        let dirty1 = info_num(c, "persistence", "rdb_changes_since_last_save");
        let hits1 = info_num(c, "stats", "keyspace_hits");
        let miss1 = info_num(c, "stats", "keyspace_misses");
        out.extend(
            format!(
                " dirty+{} hits+{} misses+{}",
                dirty1 - dirty0,
                hits1 - hits0,
                miss1 - miss0
            )
            .into_bytes(),
        );
        out
    });
}

/// The whole observable state of a stream: XINFO STREAM FULL (every entry) and its DUMP.
fn state(d: &mut Diff, key: &str) {
    d.s(&format!("XINFO STREAM {key} FULL COUNT 0"));
    d.s(&format!("DUMP {key}"));
}

#[test]
fn xadd_ids_and_errors() {
    let mut d = diff_or_skip!("xadd_ids_and_errors");
    for line in [
        "XADD s 1-1 a 1",
        "XADD s 1-1 a 1",
        "XADD s 1-0 a 1",
        "XADD s 1 a 1",
        "XADD s 1-2 a 1 b",
        "XADD s 1-2",
        "XADD s 1-2 a",
        "XADD s 0-0 a 1",
        "XADD s0 0-0 a 1",
        "EXISTS s0",
        "XADD s0 0 a 1",
        "XADD s0 0-1 a 1",
        "XADD s 1-* a 1",
        "XADD s 1-* a 1",
        "XADD s 0-* a 1",
        "XADD s 5-* a 1",
        "XADD s 2-x a 1",
        "XADD s - a 1",
        "XADD s + a 1",
        "XADD s 18446744073709551616-0 a 1",
        "XADD s -1 a 1",
        "XADD s 18446744073709551615-18446744073709551614 a 1",
        "XADD s 18446744073709551615-* a 1",
        "XADD s 18446744073709551615-* a 1",
        "XADD s * a 1",
        "XADD s 18446744073709551615-18446744073709551615 a 1",
        "XLEN s",
        // An emptied stream at the last ID with no entries added: the error keeps the key.
        "XADD x MAXLEN 0 1-1 a 1",
        "XSETID x 18446744073709551615-18446744073709551615 ENTRIESADDED 0",
        "XADD x * a 1",
        "XADD x 18446744073709551615-* a 1",
        "EXISTS x",
        "XINFO STREAM x",
        "XADD t NOMKSTREAM 1-1 a 1",
        "EXISTS t",
        "XADD t nomkstream * a 1",
        "XADD t 5-18446744073709551615 a 1",
        "XADD t 5-* a 1",
        "XADD t 5-* a 1",
        "XADD t MAXLEN a 6-1 a 1",
        "XADD t MAXLEN -1 6-1 a 1",
        "XADD t MAXLEN 1 MINID 1 6-1 a 1",
        "XADD t MINID 1 MAXLEN 1 6-1 a 1",
        "XADD t LIMIT 10 6-1 a 1",
        "XADD t LIMIT 0 6-1 a 1",
        "XADD t MAXLEN 1 LIMIT 10 6-2 a 1",
        "XADD t MAXLEN = 1 LIMIT 10 6-2 a 1",
        "XADD t MAXLEN ~ 1 LIMIT -1 6-2 a 1",
        "XADD t MAXLEN ~ 1 LIMIT x 6-2 a 1",
        "XADD t MINID x 6-2 a 1",
        "XADD t MINID - 6-2 a 1",
        "XADD t MAXLEN ~",
        "XADD t MAXLEN",
        "XADD t MAXLEN 5",
        "XADD t MAXLEN 5 *",
        "XADD t MAXLEN 5 * a",
        "XRANGE t - +",
        "SET str x",
        "XADD str * a 1",
        "XADD str NOMKSTREAM * a 1",
        "XADD t 7-1 a 1 a 2 a 3",
        "XRANGE t - +",
        "XADD t 7-2 12345 -17 3.5 x 99999999999 9223372036854775808",
        "XRANGE t 7-2 7-2",
    ] {
        d.s(line);
    }
    state(&mut d, "t");
    state(&mut d, "s");
    // Auto IDs depend on each server's clock: compared by shape.
    d.s_norm("XADD auto * f v", Norm::Shape);
    d.s_norm("XADD auto 123-* f v", Norm::Shape);
    d.s("XLEN auto");
    d.s("XADD auto 1-1 f v");
}

#[test]
fn ranges_and_counts() {
    let mut d = diff_or_skip!("ranges_and_counts");
    for i in 1..=30 {
        d.s(&format!(
            "XADD s {}-{} f{} v{} g {}",
            i / 3,
            i % 3,
            i % 4,
            i,
            i
        ));
    }
    for line in [
        "XRANGE s - +",
        "XREVRANGE s + -",
        "XRANGE s - + COUNT 5",
        "XRANGE s - + COUNT 0",
        "XRANGE s - + COUNT -3",
        "XRANGE nosuch - + COUNT 0",
        "XRANGE s - + COUNT x",
        "XRANGE s - + COUNT",
        "XRANGE s - + LIMIT 5",
        "XRANGE s - + COUNT 2 COUNT 3",
        "XREVRANGE s + - COUNT 4",
        "XRANGE s 3 5",
        "XRANGE s 3-1 5-1",
        "XRANGE s (3-1 (5-1",
        "XREVRANGE s (5-1 (3-1",
        "XRANGE s (3 5",
        "XRANGE s ( 5",
        "XRANGE s (- +",
        "XRANGE s - (+",
        "XRANGE s (18446744073709551615-18446744073709551615 +",
        "XRANGE s - (0-0",
        "XREVRANGE s (0-0 -",
        "XRANGE s 5 3",
        "XRANGE s x +",
        "XRANGE s - x",
        "XRANGE s 1-2-3 +",
        "XRANGE s 18446744073709551615 +",
        "XRANGE s 0 18446744073709551615",
        "XRANGE nosuch - +",
        "XREVRANGE nosuch + -",
        "XLEN s",
        "XLEN nosuch",
        "SET str x",
        "XRANGE str - +",
        "XLEN str",
        "XREVRANGE str + -",
        "XRANGE str - + COUNT 0",
    ] {
        d.s(line);
    }
    d.section("RESP3");
    d.s_norm("HELLO 3", Norm::Hello);
    d.s("XRANGE s - + COUNT 0");
    d.s("XRANGE s - + COUNT 2");
    d.s("XINFO STREAM s");
    d.s("XINFO STREAM s FULL COUNT 2");
    d.s("XREAD COUNT 2 STREAMS s 0");
    d.s("XREAD STREAMS s $");
    d.s_norm("HELLO 2", Norm::Hello);
}

#[test]
fn xdel_xtrim_xsetid() {
    let mut d = diff_or_skip!("xdel_xtrim_xsetid");
    for i in 1..=250 {
        d.s(&format!("XADD s {i}-0 f v{i}"));
    }
    state(&mut d, "s");
    for line in [
        "XDEL s 1-0 2 3-0 3-0 1000",
        "XDEL s x",
        "XDEL s 5 x",
        "XDEL s -",
        "XDEL nosuch x",
        "XDEL nosuch 1",
        "XDEL s 4-0",
        "XINFO STREAM s",
        "XTRIM s MAXLEN 240",
        "XTRIM s MAXLEN ~ 200",
        "XTRIM s MAXLEN ~ 150",
        "XINFO STREAM s",
        "XTRIM s MINID 160",
        "XTRIM s MINID ~ 210",
        "XTRIM s MINID ~ 260 LIMIT 10",
        "XTRIM s MAXLEN ~ 0 LIMIT 200",
        "XINFO STREAM s",
        "XTRIM s",
        "XTRIM s MAXLEN",
        "XTRIM s FOO 1",
        "XTRIM s MAXLEN 1 LIMIT 5",
        "XTRIM s MAXLEN -1",
        "XTRIM s MAXLEN x",
        "XTRIM s MINID -",
        "XTRIM s MINID 1 MAXLEN 1",
        "XTRIM s LIMIT 5",
        "XTRIM s MAXLEN 1 NOMKSTREAM",
        "XTRIM nosuch MAXLEN 0",
        "XTRIM nosuch MINID x",
        "SET str x",
        "XTRIM str MAXLEN 0",
        "XDEL str 1",
        "XSETID str 1",
        "XSETID nosuch 1",
        "XSETID s 1",
        "XSETID s x",
        "XSETID s 300-0",
        "XSETID s 300 ENTRIESADDED 2",
        "XSETID s 300 ENTRIESADDED -1",
        "XSETID s 300 ENTRIESADDED x",
        "XSETID s 300 MAXDELETEDID 400",
        "XSETID s 300 MAXDELETEDID 10",
        "XSETID s 300 MAXDELETEDID 250-1",
        "XSETID s 300 FOO 1",
        "XSETID s 300 ENTRIESADDED",
        "XSETID s 400 ENTRIESADDED 9999 MAXDELETEDID 300",
        "XSETID s 350",
        "XINFO STREAM s",
        "XADD s 399-0 a 1",
        "XADD s 400-* a 1",
    ] {
        d.s(line);
    }
    state(&mut d, "s");
    // Trim everything, then the stream stays as an empty key.
    d.s("XTRIM s MAXLEN 0");
    state(&mut d, "s");
    d.s("EXISTS s");
    d.s("TYPE s");
    d.s("OBJECT ENCODING s");
    d.s("XADD e MAXLEN 0 1-1 a b");
    state(&mut d, "e");
    d.s("XDEL e 1-1");
    d.s("XSETID e 0-5");
    d.s("XSETID e 1-0");
    state(&mut d, "e");
}

#[test]
fn node_layout_matches_redis() {
    let mut d = diff_or_skip!("node_layout_matches_redis");
    // Same fields (SAMEFIELDS), other fields, integer values, big values crossing
    // stream-node-max-bytes, and the entry limit.
    for i in 1..=120 {
        let line = match i % 4 {
            0 => format!("XADD s {i}-1 a {i} b x"),
            1 => format!("XADD s {i}-1 a {i} b y c z"),
            2 => format!("XADD s {i}-1 a {}", "w".repeat(i * 7)),
            _ => format!("XADD s {i}-1 {i} {i}"),
        };
        d.s(&line);
    }
    state(&mut d, "s");
    d.s("CONFIG SET stream-node-max-entries 5");
    d.s("CONFIG SET stream-node-max-bytes 200");
    for i in 1..=40 {
        d.s(&format!("XADD t {i}-0 f {}", "q".repeat(i * 3)));
    }
    state(&mut d, "t");
    d.s("XDEL t 3-0 4-0 5-0 6-0 7-0 8-0");
    state(&mut d, "t");
    d.s("CONFIG SET stream-node-max-entries 0");
    d.s("CONFIG SET stream-node-max-bytes 0");
    for i in 1..=300 {
        d.s(&format!("XADD u {i}-0 f {i}"));
    }
    state(&mut d, "u");
    // Node keys spread over many bytes (radix-tree-nodes follows Redis's radix tree), nodes
    // removed from the middle and the head.
    d.s("CONFIG SET stream-node-max-entries 2");
    let mut ids = Vec::new();
    for i in 1..=400u64 {
        let ms = i * i * 1_000_003 + (i % 7) * 65_536;
        let seq = (i % 5) * 300 + i * 1_000_000_007;
        ids.push(format!("{ms}-{seq}"));
        d.s(&format!("XADD w {ms}-{seq} f {i}"));
    }
    d.s("XINFO STREAM w");
    for chunk in ids.chunks(7).step_by(3) {
        d.s(&format!("XDEL w {}", chunk.join(" ")));
        d.s("XINFO STREAM w");
    }
    d.s("XTRIM w MAXLEN ~ 100");
    state(&mut d, "w");
    d.s("CONFIG GET stream-node-max-entries");
    d.s("CONFIG GET stream-node-max-bytes");
    d.s("CONFIG SET stream-node-max-entries 100");
    d.s("CONFIG SET stream-node-max-bytes 4096");
}

#[test]
fn xread_without_block() {
    let mut d = diff_or_skip!("xread_without_block");
    for k in ["a", "b", "c", "{a}x"] {
        for i in 1..=5 {
            d.s(&format!("XADD {k} {i}-0 f {k}{i}"));
        }
    }
    for line in [
        "XREAD STREAMS a 0",
        "XREAD COUNT 2 STREAMS a b c 0 3 5",
        "XREAD COUNT 2 STREAMS a b c {a}x 1 2 3 4",
        "XREAD STREAMS a b $ 0",
        "XREAD STREAMS a nosuch 0 0",
        "XREAD STREAMS nosuch $",
        "XREAD COUNT 0 STREAMS a 3",
        "XREAD COUNT -5 STREAMS a 3",
        "XREAD COUNT x STREAMS a 3",
        "XREAD STREAMS a",
        "XREAD STREAMS a b 0",
        "XREAD STREAMS",
        "XREAD COUNT 1",
        "XREAD FOO STREAMS a 0",
        "XREAD STREAMS a x",
        "XREAD STREAMS a -",
        "XREAD STREAMS a +",
        "XREAD STREAMS a >",
        "XREAD GROUP g c STREAMS a 0",
        "XREAD NOACK STREAMS a 0",
        "XREAD BLOCK x STREAMS a 0",
        "XREAD BLOCK -1 STREAMS a 0",
        "XREAD BLOCK 0 STREAMS a 0",
        "XREAD STREAMS a 18446744073709551615-18446744073709551615",
        "SET str x",
        "XREAD STREAMS a str 0 0",
        "XREAD STREAMS str a 0 0",
        "XREAD STREAMS a str 0 x",
    ] {
        d.s(line);
    }
    counted(&mut d, "XREAD STREAMS a nosuch 0 0");
    counted(&mut d, "XREAD STREAMS a nosuch 9 0");
    counted(&mut d, "XRANGE a - +");
    counted(&mut d, "XRANGE nosuch - +");
    counted(&mut d, "XRANGE a - + COUNT 0");
    counted(&mut d, "XLEN a");
    counted(&mut d, "XADD a 9-0 f v");
    counted(&mut d, "XADD a 9-0 f v");
    counted(&mut d, "XDEL a 9-0 1-0 77");
    counted(&mut d, "XDEL a 77");
    counted(&mut d, "XTRIM a MAXLEN 1");
    counted(&mut d, "XTRIM a MAXLEN 1");
    counted(&mut d, "XSETID a 100");
    counted(&mut d, "XINFO STREAM a");
    counted(&mut d, "XINFO STREAM nosuch");
    // Inside MULTI and scripts BLOCK does not block.
    d.s("MULTI");
    d.s("XREAD BLOCK 0 STREAMS nosuch $");
    d.s("EXEC");
    for body in [
        "return redis.pcall('xread','block','0','streams','a','0')",
        "return redis.pcall('XREAD','BLOCK','10','STREAMS','nosuch','$')",
        "return redis.call('xread','streams','a','0')",
        "return redis.pcall('xadd','a','*')",
    ] {
        d.cmd(&[b"EVAL", body.as_bytes(), b"0"]);
    }
}

#[test]
fn xinfo_and_types() {
    let mut d = diff_or_skip!("xinfo_and_types");
    for line in [
        "XINFO",
        "XINFO HELP",
        "XINFO help extra",
        "XINFO FOO",
        "XINFO STREAM",
        "XINFO STREAM nosuch",
        "XADD s 1-1 a 1",
        "XINFO STREAM s",
        "XINFO STREAM s FULL",
        "XINFO STREAM s FULL COUNT 1",
        "XINFO STREAM s FULL COUNT -1",
        "XINFO STREAM s FULL COUNT x",
        "XINFO STREAM s FULL LIMIT 1",
        "XINFO STREAM s FOO",
        "XINFO STREAM s FULL COUNT",
        "XINFO GROUPS s",
        "XINFO GROUPS nosuch",
        "XINFO CONSUMERS s g",
        "TYPE s",
        "OBJECT ENCODING s",
        "SCAN 0 TYPE stream",
        "KEYS *",
        "COPY s s2",
        "XRANGE s2 - +",
        "RENAME s2 s3",
        "XINFO STREAM s3",
        "MOVE s3 1",
        "SELECT 1",
        "XRANGE s3 - +",
        "SELECT 0",
        "DEL s3",
        "GET s",
        "LPUSH s x",
        "SADD s x",
        "HSET s x y",
        "ZADD s 1 x",
        "INCR s",
        "SORT s",
        "PFADD s x",
        "SET str x",
        "XINFO STREAM str",
        "XDEL s 1-1",
        "XINFO STREAM s",
        "XINFO STREAM s FULL",
        "UNLINK s",
        "EXISTS s",
    ] {
        d.s(line);
    }
    // Memory usage is an estimate: compared by shape.
    d.s("XADD m 1-1 a 1");
    d.s_norm("MEMORY USAGE m", Norm::Shape);
    d.s_norm("DEBUG DIGEST-VALUE m", Norm::Shape);
}

#[test]
fn dump_restore_and_reload() {
    let mut d = diff_or_skip!("dump_restore_and_reload");
    for i in 1..=150 {
        d.s(&format!(
            "XADD s {i}-{} f{} {} g {}",
            i % 7,
            i % 3,
            i * 11,
            "z".repeat(i % 40)
        ));
    }
    d.s("XDEL s 3-3 50-1 101-3");
    d.s("XTRIM s MAXLEN 140");
    d.s("XSETID s 500-5 ENTRIESADDED 1000 MAXDELETEDID 400");
    state(&mut d, "s");
    // Redis's payload restored everywhere (each target restores what redis dumped).
    let payload = d.targets[0].conns[0].cmd_str("DUMP s");
    let blob = resp_parse(&payload);
    let blob = blob.as_bytes().unwrap().to_vec();
    d.cmd(&[b"RESTORE", b"r", b"0", &blob]);
    state(&mut d, "r");
    d.cmd(&[b"RESTORE", b"r", b"0", &blob]);
    d.cmd(&[b"RESTORE", b"r", b"0", &blob, b"REPLACE"]);
    d.s("DEBUG RELOAD");
    state(&mut d, "s");
    state(&mut d, "r");
    d.s("XADD empty MAXLEN 0 1-1 a b");
    d.s("DEBUG RELOAD");
    state(&mut d, "empty");
    d.s("XINFO STREAM empty");
}

#[test]
fn notifications() {
    let mut d = diff_or_skip!("stream_notifications");
    d.s("CONFIG SET notify-keyspace-events KEA");
    let sub = d.subscribe_keyspace();
    d.use_conn(0);
    for line in [
        "XADD s 1-1 a 1",
        "XADD s 2-1 a 1",
        "XADD s MAXLEN 1 3-1 a 1",
        "XADD s 1-1 a 1",
        "XDEL s 3-1",
        "XDEL s 3-1",
        "XADD s 4-1 a 1",
        "XADD s 5-1 a 1",
        "XTRIM s MAXLEN 1",
        "XTRIM s MAXLEN 1",
        "XSETID s 10",
        "XSETID s 1",
        "XADD n NOMKSTREAM 1-1 a 1",
        "DEL s",
    ] {
        d.s(line);
    }
    d.compare_notifications(sub, "stream events");
}

#[test]
fn randomized_against_redis() {
    let mut d = diff_or_skip!("streams_randomized");
    let seed = env_or("STREAM_SEED", 0x57_2e_a3_u64);
    d.seed = Some(seed);
    let mut rng = SmallRng::seed_from_u64(seed);
    let steps = env_or("STREAM_STEPS", 3000_usize);
    let keys = ["s1", "s2", "{s1}x", "str"];
    d.s("SET str x");
    d.s("CONFIG SET stream-node-max-entries 7");
    d.s("CONFIG SET stream-node-max-bytes 300");
    let mut next: [u64; 4] = [1, 1, 1, 1];
    for _ in 0..steps {
        let k = rng.gen_range(0..keys.len());
        let key = keys[k];
        let id = |rng: &mut SmallRng, next: u64| -> String {
            let ms = rng.gen_range(0..next + 2);
            match rng.gen_range(0..6) {
                0 => format!("{ms}"),
                1 => format!("({ms}-{}", rng.gen_range(0..3)),
                2 => "-".into(),
                3 => "+".into(),
                _ => format!("{ms}-{}", rng.gen_range(0..3)),
            }
        };
        let line = match rng.gen_range(0..20) {
            0..=6 => {
                next[k] += rng.gen_range(0..3);
                let nf = rng.gen_range(1..4);
                let mut l = format!("XADD {key} ");
                match rng.gen_range(0..8) {
                    0 => l.push_str(&format!("MAXLEN {} ", rng.gen_range(0..30))),
                    1 => l.push_str(&format!("MAXLEN ~ {} ", rng.gen_range(0..30))),
                    2 => l.push_str(&format!(
                        "MINID ~ {} LIMIT {} ",
                        rng.gen_range(0..next[k]),
                        rng.gen_range(0..20)
                    )),
                    3 => l.push_str(&format!("MINID {} ", rng.gen_range(0..next[k]))),
                    _ => {}
                }
                if rng.gen_bool(0.2) {
                    l.push_str(&format!("{}-* ", next[k]));
                } else {
                    l.push_str(&format!("{}-{} ", next[k], rng.gen_range(0..3)));
                }
                for f in 0..nf {
                    let field = if rng.gen_bool(0.7) {
                        format!("f{f}")
                    } else {
                        format!("g{}", rng.gen_range(0..5))
                    };
                    let val = match rng.gen_range(0..4) {
                        0 => rng.gen_range(-1000i64..100000).to_string(),
                        1 => "v".repeat(rng.gen_range(0..70)),
                        _ => format!("x{}", rng.gen_range(0..100)),
                    };
                    l.push_str(&format!("{field} {val} "));
                }
                l
            }
            7 | 8 => {
                let a = id(&mut rng, next[k]);
                let b = id(&mut rng, next[k]);
                let c = if rng.gen_bool(0.5) {
                    format!(" COUNT {}", rng.gen_range(0..5))
                } else {
                    String::new()
                };
                if rng.gen_bool(0.5) {
                    format!("XRANGE {key} {a} {b}{c}")
                } else {
                    format!("XREVRANGE {key} {b} {a}{c}")
                }
            }
            9 | 10 => {
                let n = rng.gen_range(1..4);
                let ids: Vec<String> = (0..n)
                    .map(|_| format!("{}-{}", rng.gen_range(0..next[k] + 1), rng.gen_range(0..3)))
                    .collect();
                format!("XDEL {key} {}", ids.join(" "))
            }
            11 => match rng.gen_range(0..4) {
                0 => format!("XTRIM {key} MAXLEN {}", rng.gen_range(0..30)),
                1 => format!("XTRIM {key} MAXLEN ~ {}", rng.gen_range(0..30)),
                2 => format!("XTRIM {key} MINID {}", rng.gen_range(0..next[k] + 1)),
                _ => format!(
                    "XTRIM {key} MINID ~ {} LIMIT {}",
                    rng.gen_range(0..next[k] + 1),
                    rng.gen_range(0..30)
                ),
            },
            12 => format!("XLEN {key}"),
            13 | 14 => {
                let k2 = keys[rng.gen_range(0..keys.len())];
                format!(
                    "XREAD COUNT {} STREAMS {key} {k2} {}-0 {}",
                    rng.gen_range(0..4),
                    rng.gen_range(0..next[k] + 1),
                    if rng.gen_bool(0.3) {
                        "$".to_string()
                    } else {
                        rng.gen_range(0..20).to_string()
                    }
                )
            }
            15 => {
                next[k] += 1;
                format!("XSETID {key} {}-5", next[k])
            }
            16 => format!("XINFO STREAM {key}"),
            17 => format!("XINFO STREAM {key} FULL COUNT 0"),
            18 => format!("DUMP {key}"),
            _ => {
                if rng.gen_bool(0.1) {
                    next[k] = 1;
                    format!("DEL {key}")
                } else {
                    format!("EXISTS {key}")
                }
            }
        };
        d.s(line.trim_end());
    }
    for key in keys {
        state(&mut d, key);
    }
}

#[test]
fn xread_block_served_timeout_and_dollar() {
    compare_transcripts("xread_block_served_timeout_and_dollar", |port| {
        let mut log = Vec::new();
        let mut a = RawConn::connect(port);
        let mut b = RawConn::connect(port);
        let mut c = RawConn::connect(port);
        let mut p = RawConn::connect(port);
        logged_cmd(&mut p, &mut log, "XADD s 5-0 f old");
        // `$` is the last ID when the command blocks: only later entries are returned.
        send_line(&mut a, "XREAD BLOCK 0 STREAMS s $");
        wait_blocked_clients(port, 1);
        // An explicit ID below the next entry, and one above it.
        send_line(&mut b, "XREAD COUNT 5 BLOCK 0 STREAMS s 0-1");
        send_line(&mut c, "XREAD BLOCK 0 STREAMS s 100-0");
        // b is served at once (there are entries above 0-1).
        logged_reply(&mut b, &mut log, "b at once");
        wait_blocked_clients(port, 2);
        send_line(&mut b, "XREAD BLOCK 0 STREAMS s 5-0");
        wait_blocked_clients(port, 3);
        // One XADD serves every waiter whose ID is below it, not only the oldest.
        logged_cmd(&mut p, &mut log, "XADD s 6-0 f new");
        logged_reply(&mut a, &mut log, "a");
        logged_reply(&mut b, &mut log, "b");
        wait_blocked_clients(port, 1);
        logged_cmd(&mut p, &mut log, "XADD s 101-0 f newer");
        logged_reply(&mut c, &mut log, "c");
        // Timeout: a null array.
        logged_cmd(&mut a, &mut log, "XREAD BLOCK 30 STREAMS s $");
        logged_cmd(&mut a, &mut log, "XREAD BLOCK 30 STREAMS nosuch $");
        // A missing key with `$`: any first entry serves it.
        send_line(&mut a, "XREAD BLOCK 0 STREAMS fresh $");
        wait_blocked_clients(port, 1);
        logged_cmd(&mut p, &mut log, "XADD fresh 1-1 a b");
        logged_reply(&mut a, &mut log, "a fresh");
        // Several keys, one of which gets data; keys on different shards (untagged).
        send_line(&mut a, "XREAD BLOCK 0 STREAMS k1 k2 k3 $ $ $");
        wait_blocked_clients(port, 1);
        logged_cmd(&mut p, &mut log, "XADD k2 1-1 a b");
        logged_reply(&mut a, &mut log, "a multi");
        send_line(&mut a, "XREAD BLOCK 0 STREAMS {t}1 {t}2 $ $");
        wait_blocked_clients(port, 1);
        logged_cmd(&mut p, &mut log, "XADD {t}2 1-1 a b");
        logged_reply(&mut a, &mut log, "a tagged");
        // XADD inside MULTI serves after EXEC; a non-stream write wakes nobody.
        send_line(&mut a, "XREAD BLOCK 0 STREAMS m 0");
        wait_blocked_clients(port, 1);
        logged_cmd(&mut p, &mut log, "SET m x");
        logged_cmd(&mut p, &mut log, "DEL m");
        for line in ["MULTI", "XADD m 1-1 a 1", "XADD m 2-1 a 2", "EXEC"] {
            logged_cmd(&mut p, &mut log, line);
        }
        logged_reply(&mut a, &mut log, "a after exec");
        // Wrong type at block time: the error, not a wait.
        logged_cmd(&mut p, &mut log, "SET str x");
        logged_cmd(&mut a, &mut log, "XREAD BLOCK 0 STREAMS str $");
        logged_cmd(&mut a, &mut log, "XREAD BLOCK 0 STREAMS s str 0 $");
        logged_cmd(&mut a, &mut log, "XREAD BLOCK x STREAMS s $");
        logged_cmd(&mut a, &mut log, "XREAD BLOCK -5 STREAMS s $");
        logged_cmd(&mut a, &mut log, "XREAD BLOCK 0 STREAMS s");
        log
    });
}

#[test]
fn xread_block_client_unblock_and_resp3() {
    compare_transcripts("xread_block_client_unblock_and_resp3", |port| {
        let mut log = Vec::new();
        let mut a = RawConn::connect(port);
        let mut p = RawConn::connect(port);
        let id = match resp_parse(&a.cmd(&[b"CLIENT", b"ID"])) {
            Value::Int(n) => n.to_string(),
            other => panic!("CLIENT ID: {:?}", other),
        };
        for (cmd, how) in [
            ("XREAD BLOCK 0 STREAMS u $", "TIMEOUT"),
            ("XREAD BLOCK 0 STREAMS u1 u2 u3 $ $ $", "ERROR"),
        ] {
            send_line(&mut a, cmd);
            wait_blocked_clients(port, 1);
            send_line(&mut p, &format!("CLIENT UNBLOCK {id} {how}"));
            logged_reply(&mut p, &mut log, &format!("CLIENT UNBLOCK <id> {how}"));
            logged_reply(&mut a, &mut log, cmd);
        }
        // Lookups counted: the attempt before blocking (twice per key, as Redis's XREAD
        // looks each key up twice), none when served.
        let stats = |p: &mut RawConn| {
            (
                info_num(p, "stats", "keyspace_hits"),
                info_num(p, "stats", "keyspace_misses"),
            )
        };
        for (key, setup, cmd) in [
            ("h", "DEL h", "XREAD BLOCK 0 STREAMS h $"),
            ("h2", "XADD h2 1-1 a b", "XREAD BLOCK 0 STREAMS h2 1-1"),
        ] {
            logged_cmd(&mut p, &mut log, setup);
            let before = stats(&mut p);
            send_line(&mut a, cmd);
            wait_blocked_clients(port, 1);
            logged_cmd(&mut p, &mut log, &format!("XADD {key} 2-2 a b"));
            let _ = a.read_reply();
            let after = stats(&mut p);
            log.push(format!(
                "{cmd}: hits +{} misses +{}",
                after.0 - before.0,
                after.1 - before.1
            ));
        }
        // RESP3: the served reply is a map.
        a.cmd(&[b"HELLO", b"3"]);
        send_line(&mut a, "XREAD BLOCK 0 STREAMS r $");
        wait_blocked_clients(port, 1);
        logged_cmd(&mut p, &mut log, "XADD r 1-1 a b");
        logged_reply(&mut a, &mut log, "a resp3");
        logged_cmd(&mut a, &mut log, "XREAD BLOCK 20 STREAMS r $");
        logged_cmd(&mut a, &mut log, "XREAD STREAMS r 0");
        log
    });
}

/// What the AOF holds for XADD with generated IDs and approximate trimming replays to the same
/// streams (Redis logs the generated ID and the trimming it did), before and after a rewrite.
#[test]
fn aof_replays_generated_ids_and_approximate_trimming() {
    if start_redis().is_none() {
        return;
    }
    for shards in [1, 4] {
        let s = start_tessera(shards, &["--appendonly", "yes"]);
        let mut c = s.conn();
        let mut lines = vec!["CONFIG SET stream-node-max-entries 10".to_string()];
        for i in 0..120 {
            lines.push(format!("XADD a * f {i}"));
            lines.push(format!("XADD b 5-* f {i}"));
            lines.push(format!("XADD c{} MAXLEN ~ 25 * f {i} g {}", i % 3, i * 7));
            if i % 10 == 9 {
                lines.push(format!("XTRIM a MAXLEN ~ {}", 100 - i / 2));
                lines.push("XTRIM b MINID ~ 5-40 LIMIT 20".to_string());
            }
        }
        lines.push("XDEL a 0-1".into());
        lines.push("XADD e MAXLEN 0 1-1 x y".into());
        lines.push("XSETID e 9-9 ENTRIESADDED 50 MAXDELETEDID 3-3".into());
        for l in &lines {
            let r = c.cmd_str(l);
            assert!(!r.starts_with(b"-"), "{l}: {}", String::from_utf8_lossy(&r));
        }
        let keys = ["a", "b", "c0", "c1", "c2", "e"];
        let snapshot = |c: &mut RawConn| -> Vec<Vec<u8>> {
            let mut v = Vec::new();
            for k in keys {
                v.push(c.cmd(&[b"XINFO", b"STREAM", k.as_bytes(), b"FULL", b"COUNT", b"0"]));
                v.push(c.cmd(&[b"DUMP", k.as_bytes()]));
            }
            v
        };
        let before = snapshot(&mut c);
        assert_eq!(c.cmd_str("DEBUG LOADAOF"), b"+OK\r\n");
        let replayed = snapshot(&mut c);
        for (i, (x, y)) in before.iter().zip(&replayed).enumerate() {
            assert_eq!(
                render_raw(x),
                render_raw(y),
                "{shards} shards: {} replays differently",
                keys[i / 2]
            );
        }
        assert_eq!(c.cmd_str("BGREWRITEAOF")[0], b'+');
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let info = String::from_utf8_lossy(&c.cmd_str("INFO persistence")).into_owned();
            if info.contains("aof_rewrite_in_progress:0")
                && info.contains("aof_rewrite_scheduled:0")
            {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "rewrite never ended");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(c.cmd_str("DEBUG LOADAOF"), b"+OK\r\n");
        // A rewrite rebuilds each stream entry by entry: the entries and counters stay, the
        // node layout is what re-adding them makes (as with Redis's own rewrite).
        let after = snapshot(&mut c);
        for (i, k) in keys.iter().enumerate() {
            let a = resp_parse(&before[2 * i]);
            let b = resp_parse(&after[2 * i]);
            let pick = |v: &Value| -> Vec<String> {
                let items = v.items().cloned().unwrap_or_default();
                items
                    .chunks(2)
                    .filter(|p| {
                        !matches!(
                            p[0].as_bytes(),
                            Some(b"radix-tree-keys") | Some(b"radix-tree-nodes")
                        )
                    })
                    .map(|p| format!("{} {}", render(&p[0]), render(&p[1])))
                    .collect()
            };
            assert_eq!(pick(&a), pick(&b), "{shards} shards: {k} after rewrite");
        }
    }
}

#[test]
fn watch_sees_stream_changes() {
    let mut d = diff_or_skip!("stream_watch");
    let other = d.open_conn();
    d.s("XADD s 1-1 a 1");
    for change in [
        "XADD s 2-1 a 1",
        "XDEL s 2-1",
        "XTRIM s MAXLEN 0",
        "XSETID s 9-9",
        "XADD s NOMKSTREAM 10-1 a 1",
    ] {
        d.use_conn(0);
        d.s("WATCH s");
        d.use_conn(other);
        d.s(change);
        d.use_conn(0);
        d.s("MULTI");
        d.s("XLEN s");
        d.s("EXEC");
    }
    // Changing nothing (an XDEL of a missing entry, a failed XADD) leaves the watch alone.
    for nothing in [
        "XDEL s 77-7",
        "XADD s 1-1 a 1",
        "XTRIM s MAXLEN 100",
        "XRANGE s - +",
    ] {
        d.use_conn(0);
        d.s("WATCH s");
        d.use_conn(other);
        d.s(nothing);
        d.use_conn(0);
        d.s("MULTI");
        d.s("XLEN s");
        d.s("EXEC");
    }
}

#[test]
fn xread_block_woken_by_entries_already_gone() {
    compare_transcripts("xread_block_woken_by_entries_already_gone", |port| {
        let mut log = Vec::new();
        let mut a = RawConn::connect(port);
        let mut b = RawConn::connect(port);
        let mut p = RawConn::connect(port);
        logged_cmd(&mut p, &mut log, "XADD g 1-1 a b");
        // The entry that moves the last ID is trimmed away at once: the waiters still wake,
        // with no entries.
        send_line(&mut a, "XREAD BLOCK 0 STREAMS g $");
        wait_blocked_clients(port, 1);
        send_line(&mut b, "XREAD COUNT 3 BLOCK 0 STREAMS g 0");
        logged_reply(&mut b, &mut log, "b at once");
        logged_cmd(&mut p, &mut log, "XADD g MAXLEN 0 2-2 a b");
        logged_reply(&mut a, &mut log, "a");
        send_line(&mut a, "XREAD BLOCK 0 STREAMS g $");
        wait_blocked_clients(port, 1);
        for line in [
            "MULTI",
            "XADD g 3-3 a b",
            "XADD g 4-4 c d",
            "XDEL g 3-3",
            "EXEC",
        ] {
            logged_cmd(&mut p, &mut log, line);
        }
        logged_reply(&mut a, &mut log, "a after exec");
        // XSETID moves the last ID without waking anyone.
        send_line(&mut a, "XREAD BLOCK 0 STREAMS g $");
        wait_blocked_clients(port, 1);
        logged_cmd(&mut p, &mut log, "XSETID g 10-0");
        logged_cmd(&mut p, &mut log, "XADD g 11-0 x y");
        logged_reply(&mut a, &mut log, "a after xsetid");
        // A key replaced by another type, then a stream again.
        send_line(&mut a, "XREAD BLOCK 0 STREAMS g 11-0");
        wait_blocked_clients(port, 1);
        logged_cmd(&mut p, &mut log, "DEL g");
        logged_cmd(&mut p, &mut log, "SET g str");
        logged_cmd(&mut p, &mut log, "DEL g");
        logged_cmd(&mut p, &mut log, "XADD g 5-0 low x");
        logged_cmd(&mut p, &mut log, "XADD g 12-0 high x");
        logged_reply(&mut a, &mut log, "a after retype");
        // After XSETID moved the last ID past the waiter's, writes that add nothing (group
        // commands, EXPIRE, PERSIST, XTRIM) wake no one; a stream renamed over the key does.
        send_line(&mut a, "XREAD BLOCK 0 STREAMS g 12-0");
        wait_blocked_clients(port, 1);
        for line in [
            "XSETID g 20-0",
            "XGROUP CREATE g grp $",
            "XGROUP CREATECONSUMER g grp c",
            "EXPIRE g 1000",
            "PERSIST g",
            "XTRIM g MAXLEN 5",
            "XADD other 30-0 renamed x",
        ] {
            logged_cmd(&mut p, &mut log, line);
        }
        logged_cmd(&mut p, &mut log, "RENAME other g");
        logged_reply(&mut a, &mut log, "a after rename");
        log
    });
}

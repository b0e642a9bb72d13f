//! Differential tests of the bitmap commands (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
//! BITFIELD, BITFIELD_RO) against redis-server 7.0, with Tessera on 1 and 4 shards.
//!
//! Replies are compared byte for byte, and so are the effects Redis makes visible: the values
//! (GET), OBJECT ENCODING, the dirty counter (INFO's `rdb_changes_since_last_save`, compared
//! after every command), keyspace hits and misses, and the keyspace notifications. Most keys
//! share a hash tag; BITOP also runs with keys on different shards (the transaction path).

use crate::common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Compares the dirty counter on every target.
fn dirty(d: &mut Diff, after: &str) {
    d.each(
        &format!("rdb_changes_since_last_save after {after}"),
        |t, active| {
            let info = t.conns[active].cmd_str("INFO persistence");
            info_field(&info, "rdb_changes_since_last_save").into_bytes()
        },
    );
}

/// Compares keyspace hits and misses on every target.
fn hits(d: &mut Diff, after: &str) {
    d.each(
        &format!("keyspace hits/misses after {after}"),
        |t, active| {
            let info = t.conns[active].cmd_str("INFO stats");
            format!(
                "{} {}",
                info_field(&info, "keyspace_hits"),
                info_field(&info, "keyspace_misses")
            )
            .into_bytes()
        },
    );
}

/// OBJECT ENCODING of `key`, compared (its lookup counts as a keyspace hit or miss, as in
/// Redis).
fn encoding(d: &mut Diff, key: &str) {
    d.s(&format!("OBJECT ENCODING {key}"));
}

/// Runs each line, comparing its reply and then the dirty counter.
fn counted(d: &mut Diff, lines: &[&str]) {
    for l in lines {
        match l.strip_prefix("OBJECT ENCODING ") {
            Some(key) => encoding(d, key),
            None => {
                d.s(l);
            }
        }
        dirty(d, l);
    }
}

#[test]
fn setbit_and_getbit() {
    let mut d = diff_or_skip!("setbit_and_getbit");
    d.s("CONFIG SET save ''");
    counted(
        &mut d,
        &[
            "SETBIT b 7 1",
            "GET b",
            "OBJECT ENCODING b",
            "SETBIT b 7 1",
            "SETBIT b 0 0",
            "SETBIT b 100 0",
            "STRLEN b",
            "GET b",
            "SETBIT b 100 1",
            "GETBIT b 100",
            "GETBIT b 101",
            "GETBIT b 100000",
            "GETBIT nokey 3",
            "SET n 123",
            "OBJECT ENCODING n",
            "GETBIT n 2",
            "GETBIT n 3",
            "SETBIT n 0 0",
            "OBJECT ENCODING n",
            "GET n",
            "SET e abc",
            "OBJECT ENCODING e",
            "SETBIT e 1 1",
            "OBJECT ENCODING e",
            "GET e",
            // Bad offsets and values, in Redis's order of checks.
            "SETBIT b -1 1",
            "SETBIT b x 1",
            "SETBIT b 1.5 1",
            "SETBIT b #3 1",
            "SETBIT b 01 1",
            "SETBIT b +1 1",
            "SETBIT b 4294967296 1",
            "SETBIT b 9223372036854775807 1",
            "SETBIT b 99999999999999999999 1",
            "SETBIT b 1 2",
            "SETBIT b 1 -1",
            "SETBIT b 1 x",
            "SETBIT b x x",
            "SETBIT b 1 ''",
            "GETBIT b -1",
            "GETBIT b x",
            "GETBIT b 4294967296",
            "GETBIT b #1",
            "LPUSH l a",
            "SETBIT l 1 1",
            "SETBIT l 1 2",
            "SETBIT l x 1",
            "GETBIT l 1",
            "GETBIT l x",
            "SETBIT b",
            "GETBIT b",
            "SETBIT b 1 1 1",
        ],
    );
    // A deadline survives SETBIT.
    d.script(&["SET t abc EX 100", "SETBIT t 3 1"]);
    d.s_norm("TTL t", Norm::TtlClass);
    // The offset limit follows proto-max-bulk-len.
    d.s("CONFIG SET proto-max-bulk-len 1mb");
    counted(
        &mut d,
        &[
            "SETBIT big 8388608 1",
            "SETBIT big 8388607 1",
            "STRLEN big",
            "BITCOUNT big",
            "GETBIT big 8388608",
            "BITFIELD big GET u8 8388600",
            "BITFIELD big GET u8 8388601",
            "BITFIELD big SET u8 8388601 1",
            "BITFIELD big GET u8 #1048575",
            "BITFIELD big GET u8 #1048576",
            "BITPOS big 1",
            "BITPOS big 0 -1",
            "DEL big",
        ],
    );
    d.s("CONFIG SET proto-max-bulk-len 512mb");
    hits(&mut d, "setbit/getbit");
}

#[test]
fn bitcount_ranges() {
    let mut d = diff_or_skip!("bitcount_ranges");
    d.s("CONFIG SET save ''");
    d.cmd(&[b"SET", b"s", b"foobar"]);
    d.cmd(&[
        b"SET",
        b"z",
        b"\x00\xff\x0f\xf0\x80\x01\xaa\x55\x00\xff\xff\xff\x13",
    ]);
    d.s("SET n 1234567");
    d.s("SET e ''");
    for key in ["s", "z", "n", "e", "nokey"] {
        d.s(&format!("BITCOUNT {key}"));
        for (a, b) in [
            (0, 0),
            (0, -1),
            (1, 1),
            (1, 3),
            (-1, -1),
            (-2, -1),
            (-1, -2),
            (-100, 100),
            (5, 2),
            (2, 100),
            (100, 200),
            (-100, -50),
            (0, 7),
            (3, 17),
            (-9, -3),
            (9, 40),
            (7, 8),
            (1, 6),
            (-5, 1000),
        ] {
            d.s(&format!("BITCOUNT {key} {a} {b}"));
            d.s(&format!("BITCOUNT {key} {a} {b} BIT"));
            d.s(&format!("BITCOUNT {key} {a} {b} byte"));
        }
    }
    d.script(&[
        "BITCOUNT s 0",
        "BITCOUNT nokey 0",
        "BITCOUNT nokey x y",
        "BITCOUNT nokey 1 2 foo",
        "BITCOUNT s x 1",
        "BITCOUNT s 1 x",
        "BITCOUNT s 1 2 foo",
        "BITCOUNT s -1 -2 foo",
        "BITCOUNT s 1 2 BIT x",
        "BITCOUNT s 0 9223372036854775807 BIT",
        "BITCOUNT s -9223372036854775808 -1 BIT",
        "BITCOUNT s -9223372036854775808 9223372036854775807",
        "BITCOUNT s 9223372036854775807 -9223372036854775808 bit",
        "LPUSH l a",
        "BITCOUNT l",
        "BITCOUNT l x",
        "BITCOUNT l 0 1 foo",
        "BITCOUNT",
    ]);
    // Long strings: word-at-a-time counting with ragged edges.
    let long: Vec<u8> = (0..1000u32).map(|i| (i * 37 % 251) as u8).collect();
    d.cmd(&[b"SET", b"long", &long]);
    for (a, b) in [(0, -1), (3, 997), (13, 800), (1, 1), (7, 8), (-300, -7)] {
        d.s(&format!("BITCOUNT long {a} {b}"));
        d.s(&format!("BITCOUNT long {a} {b} BIT"));
        d.s(&format!("BITCOUNT long {} {} BIT", a * 8 + 3, b * 8 - 5));
    }
    hits(&mut d, "bitcount");
}

#[test]
fn bitpos_ranges() {
    let mut d = diff_or_skip!("bitpos_ranges");
    d.cmd(&[b"SET", b"z", b"\x00\x00\x01\xff\xff\xfe\x00\x80"]);
    d.cmd(&[b"SET", b"ones", b"\xff\xff\xff"]);
    d.cmd(&[b"SET", b"zeros", b"\x00\x00\x00"]);
    d.s("SET n 9");
    d.s("SET e ''");
    let long_zero = vec![0u8; 300];
    let mut long_one = vec![0xffu8; 300];
    long_one[257] = 0xfb;
    d.cmd(&[b"SET", b"lz", &long_zero]);
    d.cmd(&[b"SET", b"lo", &long_one]);
    for key in ["z", "ones", "zeros", "n", "e", "nokey", "lz", "lo"] {
        for bit in [0, 1] {
            d.s(&format!("BITPOS {key} {bit}"));
            for start in [0, 1, 2, -1, -3, 5, 100, -100] {
                d.s(&format!("BITPOS {key} {bit} {start}"));
                d.s(&format!("BITPOS {key} {bit} {start} -1"));
                d.s(&format!("BITPOS {key} {bit} {start} BIT"));
                for end in [0, 1, 3, -1, -2, 7, 20, 2000, -200] {
                    d.s(&format!("BITPOS {key} {bit} {start} {end}"));
                    d.s(&format!("BITPOS {key} {bit} {start} {end} BYTE"));
                    d.s(&format!("BITPOS {key} {bit} {start} {end} BIT"));
                }
            }
            for (s, e) in [(3, 13), (9, 9), (15, 16), (17, 22), (23, 47), (41, 2085)] {
                d.s(&format!("BITPOS {key} {bit} {s} {e} BIT"));
                d.s(&format!("BITPOS {key} {bit} {s} -{e} BIT"));
            }
        }
    }
    d.script(&[
        "BITPOS z 2",
        "BITPOS z -1",
        "BITPOS z x",
        "BITPOS nokey 2",
        "BITPOS nokey 1 x",
        "BITPOS nokey 0 1 2 foo",
        "BITPOS z 1 x",
        "BITPOS z 1 0 x",
        "BITPOS z 1 0 1 foo",
        "BITPOS z 1 0 x foo",
        "BITPOS z 1 0 1 BIT x",
        "BITPOS z 0 -9223372036854775808 9223372036854775807 BIT",
        "BITPOS z 1 9223372036854775807",
        "LPUSH l a",
        "BITPOS l 1",
        "BITPOS l 2",
        "BITPOS l 1 x",
        "BITPOS",
        "BITPOS z",
    ]);
    hits(&mut d, "bitpos");
}

#[test]
fn bitop_operations() {
    let mut d = diff_or_skip!("bitop_operations");
    d.s("CONFIG SET save ''");
    d.cmd(&[
        b"SET",
        b"{k}a",
        b"\x00\xff\x0f\xf0abcdefghijklmnopqrstuvwxyz0123456789",
    ]);
    d.cmd(&[b"SET", b"{k}b", b"\xff\x00\x33"]);
    d.s("SET {k}n 12345");
    d.s("SET {k}e ''");
    let long: Vec<u8> = (0..200u32).map(|i| (i * 91 % 256) as u8).collect();
    d.cmd(&[b"SET", b"{k}l", &long]);
    for op in ["AND", "OR", "XOR", "and", "Or"] {
        for srcs in [
            "{k}a {k}b",
            "{k}b {k}a",
            "{k}a {k}nokey",
            "{k}nokey {k}a",
            "{k}a {k}b {k}n",
            "{k}l {k}a {k}b",
            "{k}a {k}l",
            "{k}e",
            "{k}e {k}nokey",
            "{k}a",
            "{k}a {k}a",
        ] {
            counted(&mut d, &[&format!("BITOP {op} {{k}}d {srcs}")]);
            d.s("GET {k}d");
            encoding(&mut d, "{k}d");
            d.s("EXISTS {k}d");
        }
    }
    counted(
        &mut d,
        &[
            "BITOP NOT {k}d {k}a",
            "GET {k}d",
            "BITOP NOT {k}d {k}n",
            "GET {k}d",
            "OBJECT ENCODING {k}d",
            "BITOP NOT {k}d {k}l",
            "GET {k}d",
            "BITOP NOT {k}d {k}nokey",
            "EXISTS {k}d",
            "BITOP NOT {k}d {k}nokey",
            "BITOP NOT {k}d {k}a {k}b",
            "BITOP NOT {k}d",
            "BITOP NOPE {k}d {k}a",
            "BITOP ANDX {k}d {k}a",
            "BITOP '' {k}d {k}a",
            "LPUSH {k}list x",
            "BITOP AND {k}d {k}a {k}list",
            "BITOP AND {k}d {k}nokey {k}list {k}a",
            "BITOP NOT {k}d {k}list",
            // The destination may hold any type: it is replaced, or deleted by an empty result.
            "BITOP OR {k}list {k}a",
            "TYPE {k}list",
            "LPUSH {k}list2 x",
            "BITOP OR {k}list2 {k}nokey",
            "EXISTS {k}list2",
            "SET {k}d x EX 100",
            "BITOP OR {k}d {k}a",
            "TTL {k}d",
            "BITOP OR {k}d {k}d {k}b",
            "GET {k}d",
            "BITOP",
            "BITOP AND",
            "BITOP AND {k}d",
        ],
    );
    hits(&mut d, "bitop");
}

/// BITOP's keys on different shards (with 4 shards): the transaction path copies them.
#[test]
fn bitop_across_shards() {
    let mut d = diff_or_skip!("bitop_across_shards");
    d.s("CONFIG SET save ''");
    counted(
        &mut d,
        &[
            "SET a foobar",
            "SET b abcdef",
            "SETBIT c 100 1",
            "BITOP AND dst a b",
            "GET dst",
            "BITOP OR dst2 a b c",
            "GET dst2",
            "BITOP XOR a a b",
            "GET a",
            "BITOP NOT x c",
            "GET x",
            "BITOP OR dst nokey1 nokey2",
            "EXISTS dst",
            "LPUSH l v",
            "BITOP AND dst a l",
            "BITOP OR l a b",
            "TYPE l",
            "OBJECT ENCODING l",
        ],
    );
    hits(&mut d, "cross-shard bitop");
}

#[test]
fn bitfield_operations() {
    let mut d = diff_or_skip!("bitfield_operations");
    d.s("CONFIG SET save ''");
    counted(
        &mut d,
        &[
            "BITFIELD f",
            "EXISTS f",
            "BITFIELD f GET u8 0",
            "EXISTS f",
            "BITFIELD f SET u8 0 255 GET u8 0 GET i8 0 GET u4 4 GET i4 4",
            "GET f",
            "OBJECT ENCODING f",
            "BITFIELD f SET u8 0 255",
            "BITFIELD f INCRBY u8 0 0",
            "BITFIELD f INCRBY u8 0 1",
            "BITFIELD f OVERFLOW SAT INCRBY u8 0 300 INCRBY u8 0 -1000 OVERFLOW FAIL INCRBY u8 0 1 INCRBY u8 0 -1",
            "BITFIELD f OVERFLOW FAIL SET u8 0 256 SET u8 0 -1 SET i8 0 128 SET i8 0 -129 SET i8 0 127",
            "BITFIELD f OVERFLOW SAT SET u8 0 256 GET u8 0 SET u8 0 -1 GET u8 0 SET i8 0 200 GET i8 0 SET i8 0 -200 GET i8 0",
            "BITFIELD f OVERFLOW WRAP SET u8 0 257 GET u8 0 SET i8 0 200 GET i8 0 SET i8 0 -200 GET i8 0",
            "BITFIELD f SET i64 0 -1 GET i64 0 GET u63 0 GET u63 1 GET i64 1 GET u1 0",
            "BITFIELD f INCRBY i64 0 9223372036854775807 OVERFLOW SAT INCRBY i64 0 9223372036854775807 INCRBY i64 0 -9223372036854775808 INCRBY i64 0 -9223372036854775808",
            "BITFIELD f OVERFLOW FAIL INCRBY i64 0 -1 OVERFLOW WRAP INCRBY i64 0 -1",
            "BITFIELD f OVERFLOW SAT SET i8 0 -9223372036854775808 GET i8 0 SET i8 0 9223372036854775807 GET i8 0 SET u8 0 -9223372036854775808 GET u8 0",
            "BITFIELD f OVERFLOW SAT SET u63 0 -1 INCRBY u63 0 5 INCRBY u63 0 -9223372036854775808",
            "BITFIELD f OVERFLOW WRAP SET u63 0 -1 INCRBY u63 0 5 SET i1 3 1 GET i1 3 INCRBY i1 3 1 INCRBY u1 3 1",
            "BITFIELD f SET u5 #3 17 GET u5 #3 GET u5 15 INCRBY i7 #10 100 GET i7 70",
            "GET f",
            "STRLEN f",
            // Fields at and past the end, growth and zero padding.
            "BITFIELD f GET u16 200 GET i32 100 GET u63 1000",
            "BITFIELD f SET i16 1000 -2",
            "STRLEN f",
            "BITFIELD f GET i16 1000 GET u16 1000 GET u8 1008",
            // A failing write on a missing key creates it (zeros) and changes nothing else.
            "BITFIELD g OVERFLOW FAIL SET u8 0 300",
            "EXISTS g",
            "GET g",
            "BITFIELD g OVERFLOW FAIL SET u8 0 3 SET u8 8 5",
            "BITFIELD g SET u8 0 3",
            "BITFIELD g SET u8 8 5 SET u8 16 0",
            "GET g",
            // Integers are read as their text.
            "SET n 42",
            "BITFIELD n GET u8 0 GET u8 8 GET u16 0",
            "BITFIELD_RO n GET u8 0 GET i4 4",
            "BITFIELD n SET u8 0 52",
            "OBJECT ENCODING n",
            "GET n",
            "BITFIELD n INCRBY u8 0 0",
            "OBJECT ENCODING n",
            // BITFIELD_RO.
            "BITFIELD_RO f GET u8 0 GET i8 0 GET u8 #2",
            "BITFIELD_RO nokey GET u8 0",
            "BITFIELD_RO f",
            "BITFIELD_RO f SET u8 0 1",
            "BITFIELD_RO f INCRBY u8 0 1",
            "BITFIELD_RO f OVERFLOW FAIL",
            "BITFIELD_RO f GET u8 0 SET x 0 1",
            "BITFIELD_RO f GET u8",
            // Bad arguments: the first bad operation decides, before the key is looked at.
            "BITFIELD f GET",
            "BITFIELD f GET u8",
            "BITFIELD f SET u8 0",
            "BITFIELD f INCRBY u8 0",
            "BITFIELD f OVERFLOW",
            "BITFIELD f OVERFLOW nope",
            "BITFIELD f OVERFLOW fail GET u8 0 nope",
            "BITFIELD f NOPE u8 0",
            "BITFIELD f GET u64 0",
            "BITFIELD f GET i65 0",
            "BITFIELD f GET i0 0",
            "BITFIELD f GET u0 0",
            "BITFIELD f GET I8 0",
            "BITFIELD f GET U8 0",
            "BITFIELD f GET x8 0",
            "BITFIELD f GET i 0",
            "BITFIELD f GET i08 0",
            "BITFIELD f GET i-8 0",
            "BITFIELD f GET '' 0",
            "BITFIELD f GET u8 -1",
            "BITFIELD f GET u8 x",
            "BITFIELD f GET u8 #",
            "BITFIELD f GET u8 #-1",
            "BITFIELD f GET u8 #x",
            "BITFIELD f GET u8 ##1",
            "BITFIELD f GET u8 4294967296",
            "BITFIELD f GET u8 #536870912",
            "BITFIELD f GET u8 #536870911",
            "BITFIELD f GET i64 #1152921504606846976",
            "BITFIELD f GET i64 #9223372036854775807",
            "BITFIELD f SET u8 0 x",
            "BITFIELD f SET u8 0 1.5",
            "BITFIELD f INCRBY u8 0 99999999999999999999",
            "BITFIELD f SET u8 0 1 GET u8 x",
            "BITFIELD f get u8 0 set u8 0 7 incrby u8 0 1 overflow sat",
            "LPUSH l a",
            "BITFIELD l GET u8 0",
            "BITFIELD l SET u8 0 1",
            "BITFIELD l",
            "BITFIELD l GET u99 0",
            "BITFIELD_RO l GET u8 0",
            "BITFIELD_RO l SET u8 0 1",
            "BITFIELD",
            "BITFIELD_RO",
        ],
    );
    hits(&mut d, "bitfield");
}

/// Keyspace notifications (and keymiss) of the bitmap commands, compared as a transcript.
#[test]
fn bitmap_notifications() {
    let mut d = diff_or_skip!("bitmap_notifications");
    let sub = d.subscribe_keyspace();
    d.use_conn(0);
    d.s("CONFIG SET notify-keyspace-events KEAmn");
    d.script(&[
        "SETBIT b 3 1",
        "SETBIT b 3 1",
        "SETBIT b 3 0",
        "SETBIT b 30 0",
        "SETBIT b 1 0",
        "GETBIT b 1",
        "GETBIT nokey 1",
        "BITCOUNT nokey",
        "BITPOS nokey 1",
        "BITCOUNT b",
        "BITPOS b 1",
        "BITFIELD f OVERFLOW FAIL SET u8 0 300",
        "BITFIELD f SET u8 0 0",
        "BITFIELD f SET u8 0 1 SET u8 8 2",
        "BITFIELD f GET u8 0",
        "BITFIELD nokey2 GET u8 0",
        "BITFIELD_RO nokey3 GET u8 0",
        "BITOP OR {x}d {x}a {x}b",
        "SET {x}a abc",
        "BITOP OR {x}d {x}a {x}b",
        "BITOP OR {x}d {x}a {x}b",
        "BITOP AND {x}d {x}none",
        "BITOP AND {x}d {x}none",
        "SET {x}e v EX 100",
        "BITOP NOT {x}e {x}a",
        "BITOP NOT da {x}a",
        "SETBIT n2 0 0",
    ]);
    d.s("CONFIG SET notify-keyspace-events ''");
    d.compare_notifications(sub, "bitmap commands");
}

/// MULTI/EXEC, WATCH and scripts run the bitmap commands like any other.
#[test]
fn bitmaps_in_transactions_and_scripts() {
    let mut d = diff_or_skip!("bitmaps_in_transactions_and_scripts");
    d.script(&[
        "MULTI",
        "SETBIT {t}a 5 1",
        "BITFIELD {t}a INCRBY u4 0 3",
        "BITOP NOT {t}b {t}a",
        "BITCOUNT {t}b",
        "BITPOS {t}b 0",
        "EXEC",
    ]);
    d.cmd(&[
        b"EVAL",
        b"return redis.call('setbit', KEYS[1], 9, 1)",
        b"1",
        b"{t}a",
    ]);
    d.cmd(&[
        b"EVAL",
        b"return {redis.call('bitcount', KEYS[1]), redis.call('bitfield_ro', KEYS[1], 'GET', 'u16', 0)}",
        b"1",
        b"{t}a",
    ]);
    d.cmd(&[
        b"EVAL",
        b"return redis.pcall('bitfield_ro', KEYS[1], 'SET', 'u8', 0, 1)",
        b"1",
        b"{t}a",
    ]);
    // WATCH: a SETBIT that changes nothing leaves the watch alone in Redis; one that changes
    // a bit breaks it.
    d.script(&["WATCH {t}a", "SETBIT {t}a 5 0", "MULTI", "GET {t}a", "EXEC"]);
    d.section("command info");
    for c in [
        "setbit",
        "getbit",
        "bitcount",
        "bitpos",
        "bitop",
        "bitfield",
        "bitfield_ro",
    ] {
        d.s(&format!("COMMAND INFO {c}"));
        d.each(&format!("COMMAND DOCS {c} (since, group)"), |t, active| {
            let v = resp_parse(&t.conns[active].cmd_str(&format!("COMMAND DOCS {c}")));
            let doc = v
                .items()
                .and_then(|i| i.get(1))
                .and_then(|e| e.items())
                .cloned()
                .unwrap_or_default();
            let mut kept = Vec::new();
            for f in doc.chunks(2) {
                if matches!(f[0].as_bytes(), Some(b"since" | b"group" | b"complexity")) {
                    kept.push(render(&f[0]));
                    kept.push(render(&f[1]));
                }
            }
            kept.join(" ").into_bytes()
        });
    }
    d.script(&[
        "COMMAND GETKEYS BITOP AND d a b c",
        "COMMAND GETKEYS BITFIELD k GET u8 0",
        "COMMAND GETKEYS BITPOS k 1",
    ]);
}

// ---------------------------------------------------------------------------------------------
// Seeded random command sequences
// ---------------------------------------------------------------------------------------------

/// Tagged keys (one shard) and two untagged ones (other shards, with 4) for BITOP.
const KEYS: &[&str] = &["{b}a", "{b}b", "{b}c", "{b}d"];
const FAR_KEYS: &[&str] = &["x", "y"];
const LIST_KEY: &str = "{b}list";

struct Gen {
    rng: SmallRng,
}

impl Gen {
    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.rng.gen_range(0..from.len())]
    }

    fn key(&mut self) -> String {
        match self.rng.gen_range(0..100) {
            0..=4 => LIST_KEY.into(),
            5..=7 => "{b}missing".into(),
            _ => self.pick(KEYS).into(),
        }
    }

    fn any_key(&mut self) -> String {
        if self.chance(0.2) {
            self.pick(FAR_KEYS).into()
        } else {
            self.key()
        }
    }

    /// A bit offset: mostly small, sometimes far, sometimes bad.
    fn offset(&mut self) -> String {
        match self.rng.gen_range(0..100) {
            0..=69 => self.rng.gen_range(0..96).to_string(),
            70..=89 => self.rng.gen_range(0..4000).to_string(),
            90 => "-1".into(),
            91 => "x".into(),
            92 => "4294967296".into(),
            93 => "#2".into(),
            94 => "1.0".into(),
            95 => "9223372036854775807".into(),
            _ => self.rng.gen_range(0..16).to_string(),
        }
    }

    /// A range bound: small, around the end, or extreme.
    fn bound(&mut self) -> String {
        match self.rng.gen_range(0..100) {
            0..=79 => self.rng.gen_range(-40..40).to_string(),
            80..=89 => self.rng.gen_range(-600..600).to_string(),
            90 => "9223372036854775807".into(),
            91 => "-9223372036854775808".into(),
            92 => "x".into(),
            _ => self.rng.gen_range(-3..3).to_string(),
        }
    }

    fn field_type(&mut self) -> String {
        match self.rng.gen_range(0..100) {
            0..=44 => format!("u{}", self.rng.gen_range(1..=63)),
            45..=89 => format!("i{}", self.rng.gen_range(1..=64)),
            90..=93 => ["u8", "i8", "u16", "i64", "u63"][self.rng.gen_range(0..5)].into(),
            _ => ["u64", "i65", "i0", "I8", "x3", "i"][self.rng.gen_range(0..6)].into(),
        }
    }

    fn field_offset(&mut self) -> String {
        match self.rng.gen_range(0..100) {
            0..=69 => self.rng.gen_range(0..120).to_string(),
            70..=89 => format!("#{}", self.rng.gen_range(0..12)),
            90..=95 => self.rng.gen_range(0..3000).to_string(),
            96 => "-3".into(),
            97 => "#-1".into(),
            98 => "#x".into(),
            _ => "x".into(),
        }
    }

    fn field_value(&mut self) -> String {
        match self.rng.gen_range(0..100) {
            0..=49 => self.rng.gen_range(-300..300).to_string(),
            50..=69 => self.rng.gen_range(-70000i64..70000).to_string(),
            70..=84 => self.rng.gen::<i64>().to_string(),
            85..=88 => i64::MAX.to_string(),
            89..=92 => i64::MIN.to_string(),
            93..=96 => (1i64 << self.rng.gen_range(0..63)).to_string(),
            97 => "x".into(),
            98 => "99999999999999999999".into(),
            _ => "-1".into(),
        }
    }

    fn string_value(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..10) {
            0 => self
                .rng
                .gen_range(-1000i64..100000)
                .to_string()
                .into_bytes(),
            1 => Vec::new(),
            2 => vec![0xff; self.rng.gen_range(1..80)],
            3 => vec![0; self.rng.gen_range(1..80)],
            _ => {
                let n = self.rng.gen_range(1..60);
                (0..n).map(|_| self.rng.gen()).collect()
            }
        }
    }
}

fn run_parts(d: &mut Diff, parts: &[Vec<u8>]) -> Vec<u8> {
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    d.cmd(&refs)
}

fn random_step(g: &mut Gen, d: &mut Diff) {
    let key = g.key();
    let mut p: Vec<String> = Vec::new();
    match g.rng.gen_range(0..100) {
        0..=17 => {
            let bit = match g.rng.gen_range(0..20) {
                0 => "2".to_string(),
                1 => "x".to_string(),
                2 => "-1".to_string(),
                n => (n % 2).to_string(),
            };
            p.extend(["SETBIT".into(), key, g.offset(), bit]);
        }
        18..=25 => p.extend(["GETBIT".into(), key, g.offset()]),
        26..=37 => {
            p.extend(["BITCOUNT".into(), key]);
            match g.rng.gen_range(0..10) {
                0..=2 => {}
                3 => p.push(g.bound()),
                _ => {
                    p.extend([g.bound(), g.bound()]);
                    if g.chance(0.6) {
                        p.push(g.pick(&["BIT", "BYTE", "bit", "byte", "bits"]).into());
                    }
                }
            }
        }
        38..=51 => {
            let bit = match g.rng.gen_range(0..20) {
                0 => "2".to_string(),
                1 => "x".to_string(),
                n => (n % 2).to_string(),
            };
            p.extend(["BITPOS".into(), key, bit]);
            let n = g.rng.gen_range(0..4);
            if n >= 1 {
                p.push(g.bound());
            }
            if n >= 2 {
                p.push(g.bound());
            }
            if n >= 3 || (n == 1 && g.chance(0.2)) {
                p.push(g.pick(&["BIT", "BYTE", "Bit", "nope"]).into());
            }
        }
        52..=63 => {
            let op = g.pick(&["AND", "OR", "XOR", "NOT", "and", "NOT", "NAND"]);
            let n = if op.eq_ignore_ascii_case("not") && g.chance(0.9) {
                1
            } else {
                g.rng.gen_range(1..=4)
            };
            p.extend(["BITOP".into(), op.into(), g.any_key()]);
            for _ in 0..n {
                p.push(g.any_key());
            }
        }
        64..=81 => {
            let ro = g.chance(0.2);
            p.extend([if ro { "BITFIELD_RO" } else { "BITFIELD" }.into(), key]);
            for _ in 0..g.rng.gen_range(0..5) {
                let write_ok = !ro || g.chance(0.1);
                match g.rng.gen_range(0..10) {
                    0..=3 => p.extend(["GET".into(), g.field_type(), g.field_offset()]),
                    4..=5 if write_ok => p.extend([
                        "SET".into(),
                        g.field_type(),
                        g.field_offset(),
                        g.field_value(),
                    ]),
                    6..=7 if write_ok => p.extend([
                        "INCRBY".into(),
                        g.field_type(),
                        g.field_offset(),
                        g.field_value(),
                    ]),
                    8 => p.extend([
                        "OVERFLOW".into(),
                        g.pick(&["WRAP", "SAT", "FAIL", "fail", "sat", "nope"])
                            .into(),
                    ]),
                    9 if g.chance(0.3) => {
                        p.push(g.pick(&["GET", "NOPE", "SET", "OVERFLOW"]).into())
                    }
                    _ => p.extend(["GET".into(), "u8".into(), "0".into()]),
                }
            }
        }
        82..=86 => {
            let v = g.string_value();
            let k = g.pick(KEYS);
            let refs: Vec<Vec<u8>> = vec![b"SET".to_vec(), k.as_bytes().to_vec(), v];
            run_parts(d, &refs);
            return;
        }
        87..=88 => p.extend(["DEL".into(), g.any_key()]),
        89 => p.extend(["LPUSH".into(), LIST_KEY.into(), "v".into()]),
        90 => p.extend(["EXPIRE".into(), key, g.pick(&["100", "0"]).into()]),
        91..=93 => p.extend(["GET".into(), g.any_key()]),
        94..=95 => {
            let k = g.any_key();
            return encoding(d, &k);
        }
        96 => p.extend(["STRLEN".into(), key]),
        97 => {
            let v = g.string_value();
            run_parts(d, &[b"APPEND".to_vec(), key.into_bytes(), v]);
            return;
        }
        _ => {
            let bad: [&[&str]; 6] = [
                &["BITCOUNT", "K", "0"],
                &["BITPOS", "K"],
                &["BITOP", "NOT", "K", "K", "K"],
                &["SETBIT", "K", "1"],
                &["BITFIELD_RO", "K", "INCRBY", "u8", "0", "1"],
                &["BITCOUNT", "K", "0", "1", "BIT", "x"],
            ];
            let pick = bad[g.rng.gen_range(0..bad.len())];
            p.extend(pick.iter().map(|s| {
                if *s == "K" {
                    key.clone()
                } else {
                    s.to_string()
                }
            }));
        }
    }
    let parts: Vec<Vec<u8>> = p.into_iter().map(String::into_bytes).collect();
    run_parts(d, &parts);
}

fn checkpoint(d: &mut Diff) {
    let saved = d.section.clone();
    d.section(&format!("{saved} / checkpoint"));
    for k in KEYS.iter().chain(FAR_KEYS).chain([&LIST_KEY]) {
        d.s(&format!("TYPE {k}"));
        encoding(d, k);
        if d.s(&format!("TYPE {k}")) == b"+string\r\n" {
            d.s(&format!("GET {k}"));
        }
        d.s_norm(&format!("TTL {k}"), Norm::TtlClass);
    }
    hits(d, "checkpoint");
    d.section(&saved);
}

fn run_random(seed: u64, steps: usize) {
    let Some(mut d) = Diff::new("bitmap_randomized") else {
        return;
    };
    d.seed = Some(seed);
    d.section(&format!("seed {seed}"));
    d.s("CONFIG SET save ''");
    let mut g = Gen {
        rng: SmallRng::seed_from_u64(seed),
    };
    for i in 0..steps {
        d.gen_step = Some(i);
        random_step(&mut g, &mut d);
        dirty(&mut d, "the last command");
        if (i + 1) % 100 == 0 {
            checkpoint(&mut d);
        }
    }
    checkpoint(&mut d);
}

/// `DIFF_SEEDS=1,2,3` and `DIFF_STEPS=5000` override the seeds and the length.
#[test]
fn bitmap_randomized() {
    for seed in env_list("DIFF_SEEDS", &[21, 22]) {
        run_random(seed, env_or("DIFF_STEPS", 1500));
    }
}

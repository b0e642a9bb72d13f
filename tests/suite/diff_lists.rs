//! Differential tests of the list family: every command goes to redis-server 7.0 and to Tessera
//! with 1 and 4 shards, replies compared byte for byte (see `common::Diff`).
//!
//! Multi-key commands use keys with one hash tag so that they stay on one shard; the test that
//! uses untagged keys waits for the cross-shard transaction path.
//!
//! Env knobs: `DIFF_LIST_SEEDS=1,2` / `DIFF_STEPS=2000` for the randomized sequences.

use crate::common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[test]
fn list_commands() {
    let mut d = diff_or_skip!("list_commands");
    d.section("push / pop");
    d.script(&[
        "LPUSH l a b c",
        "RPUSH l 1 2 3",
        "LRANGE l 0 -1",
        "LLEN l",
        "TYPE l",
        "OBJECT ENCODING l",
        "LPUSHX l x",
        "RPUSHX l y z",
        "LPUSHX nokey x",
        "RPUSHX nokey x y",
        "EXISTS nokey",
        "LRANGE l 0 -1",
        "LPOP l",
        "RPOP l",
        "LPOP l 2",
        "RPOP l 2",
        "LPOP l 0",
        "RPOP l 0",
        "LPOP l -1",
        "RPOP l -1",
        "LPOP l x",
        "LPOP l 1.5",
        "LPOP l ''",
        "LPOP l 1 2",
        "RPOP l 1 2 3",
        "LRANGE l 0 -1",
        "RPOP l 9223372036854775807",
        "EXISTS l",
        "LPOP l",
        "LPOP nokey",
        "RPOP nokey",
        "LPOP nokey 0",
        "LPOP nokey 2",
        "RPOP nokey -1",
        "LLEN nokey",
        "RPUSH e ''",
        "LLEN e",
        "LPOP e",
        "EXISTS e",
        "RPUSH n -1 0 125 126 -9223372036854775808 9223372036854775807 01 -0 +1 ' 1' 1e3 18446744073709551616 -",
        "LRANGE n 0 -1",
        "LINDEX n 5",
        "LPOP n 3",
        "RPOP n 20",
        "EXISTS n",
    ]);

    d.section("lindex / lset");
    d.script(&[
        "RPUSH i a b c d e",
        "LINDEX i 0",
        "LINDEX i -1",
        "LINDEX i 4",
        "LINDEX i 5",
        "LINDEX i -5",
        "LINDEX i -6",
        "LINDEX i 9223372036854775807",
        "LINDEX i -9223372036854775808",
        "LINDEX i x",
        "LINDEX i 1.0",
        "LINDEX nokey x",
        "LINDEX nokey 0",
        "LSET i 0 A",
        "LSET i -1 E",
        "LSET i 2 123",
        "LSET i 1 ''",
        "LSET i 5 x",
        "LSET i -6 x",
        "LSET i 9223372036854775807 x",
        "LSET i x y",
        "LSET nokey 0 x",
        "LSET nokey x y",
        "EXISTS nokey",
        "LRANGE i 0 -1",
        "LINDEX i 2",
    ]);

    d.section("lrange / ltrim");
    d.script(&[
        "LRANGE i 0 0",
        "LRANGE i -2 -1",
        "LRANGE i 2 1",
        "LRANGE i -100 100",
        "LRANGE i 5 10",
        "LRANGE i 4 4",
        "LRANGE i -9223372036854775808 9223372036854775807",
        "LRANGE i 0 -6",
        "LRANGE i -5 -5",
        "LRANGE i x 0",
        "LRANGE i 0 y",
        "LRANGE nokey 0 -1",
        "LRANGE nokey x 0",
        "LTRIM i 1 -2",
        "LRANGE i 0 -1",
        "LTRIM i 0 100",
        "LRANGE i 0 -1",
        "LTRIM i -1 -1",
        "LRANGE i 0 -1",
        "LTRIM i 1 0",
        "EXISTS i",
        "LTRIM nokey 0 1",
        "LTRIM nokey x 1",
        "RPUSH t 1 2 3",
        "LTRIM t 5 10",
        "EXISTS t",
        "RPUSH t 1 2 3",
        "LTRIM t -9223372036854775808 9223372036854775807",
        "LRANGE t 0 -1",
        "LTRIM t 0 x",
        "LTRIM t x 0",
        "LTRIM t -2 -3",
        "EXISTS t",
    ]);

    d.section("linsert / lrem");
    d.script(&[
        "RPUSH s a b c b a",
        "LINSERT s BEFORE b X",
        "LINSERT s after b Y",
        "LINSERT s before nope Z",
        "LINSERT s middle b Z",
        "LINSERT s AFTER a 5",
        "LINSERT s BEFORE a ''",
        "LRANGE s 0 -1",
        "LINSERT nokey before a b",
        "LINSERT nokey foo a b",
        "EXISTS nokey",
        "LREM s 1 b",
        "LREM s -1 a",
        "LREM s 0 nope",
        "LREM s 0 X",
        "LRANGE s 0 -1",
        "LREM s x a",
        "LREM s 1.5 a",
        "LREM nokey 1 a",
        "LREM nokey x a",
        "LREM s -9223372036854775808 a",
        "LRANGE s 0 -1",
        "LREM s 0 Y",
        "LREM s 0 c",
        "LREM s 0 b",
        "LREM s 9223372036854775807 5",
        "LRANGE s 0 -1",
        "LREM s 0 ''",
        "EXISTS s",
        // Integers are stored packed but compare as bytes.
        "RPUSH ni 1 01 1 2 -0 0",
        "LREM ni 0 1",
        "LRANGE ni 0 -1",
        "LINSERT ni BEFORE 01 z",
        "LINSERT ni AFTER 0 9223372036854775807",
        "LINSERT ni AFTER 1 q",
        "LRANGE ni 0 -1",
        "LPOS ni 01",
        "LPOS ni 0",
        "LPOS ni -0",
        "LREM ni 0 -0",
        "LRANGE ni 0 -1",
    ]);

    d.section("lpos");
    d.script(&[
        "RPUSH p a b a c a d a",
        "LPOS p a",
        "LPOS p b",
        "LPOS p a RANK 2",
        "LPOS p a RANK -1",
        "LPOS p a RANK -2 COUNT 2",
        "LPOS p a COUNT 0",
        "LPOS p a COUNT 2",
        "LPOS p a COUNT 9223372036854775807",
        "LPOS p a MAXLEN 1",
        "LPOS p a MAXLEN 1 RANK -1",
        "LPOS p a RANK 2 MAXLEN 2",
        "LPOS p a RANK 2 MAXLEN 3",
        "LPOS p a COUNT 0 MAXLEN 3",
        "LPOS p a RANK -2 COUNT 0 MAXLEN 3",
        "LPOS p z",
        "LPOS p z COUNT 0",
        "LPOS p a RANK 4",
        "LPOS p a RANK 5",
        "LPOS p a RANK 5 COUNT 1",
        "LPOS p a RANK -4 COUNT 3",
        "LPOS p a RANK 0",
        "LPOS p a RANK x",
        "LPOS p a RANK 9223372036854775808",
        "LPOS p a RANK -9223372036854775808",
        "LPOS p a RANK -9223372036854775808 COUNT 2",
        "LPOS p a RANK -9223372036854775808 COUNT 0",
        "LPOS p a RANK 9223372036854775807",
        "LPOS p a RANK 9223372036854775807 COUNT 0",
        "LPOS p a RANK -9223372036854775807 COUNT 0",
        "LPOS p a COUNT -1",
        "LPOS p a COUNT x",
        "LPOS p a COUNT 9223372036854775808",
        "LPOS p a MAXLEN -1",
        "LPOS p a MAXLEN x",
        "LPOS p a FOO 1",
        "LPOS p a RANK",
        "LPOS p a COUNT",
        "LPOS p a rank 1 count 1 maxlen 0",
        "LPOS p a COUNT 1 COUNT 0",
        "LPOS p a RANK -1 RANK 2",
        "LPOS p a RANK 0 COUNT -1",
        "LPOS p a COUNT -1 RANK 0",
        "LPOS nokey a",
        "LPOS nokey a COUNT 0",
        "LPOS nokey a RANK 0",
        "LPOS nokey a COUNT x",
        "LPOS nokey a FOO",
    ]);

    d.section("wrong type");
    d.script(&[
        "SET str v",
        "HSET h f v",
        "LPUSH str a",
        "RPUSH str a",
        "LPUSHX str a",
        "RPUSHX str a",
        "LPOP str",
        "LPOP str 2",
        "LPOP str 0",
        "LPOP str -1",
        "RPOP str",
        "LLEN str",
        "LLEN h",
        "LRANGE str 0 -1",
        "LRANGE str x 0",
        "LINDEX str 0",
        "LINDEX str x",
        "LSET str 0 a",
        "LSET str x a",
        "LINSERT str BEFORE a b",
        "LINSERT str FOO a b",
        "LREM str 0 a",
        "LREM str x a",
        "LTRIM str 0 1",
        "LTRIM str x 1",
        "LPOS str a",
        "LPOS str a COUNT 0",
        "LPOS str a RANK 0",
        "GET str",
        "HGETALL h",
    ]);

    d.section("arity");
    d.script(&[
        "LPUSH l",
        "RPUSH",
        "LPUSHX l",
        "RPUSHX l",
        "LPOP",
        "RPOP",
        "LLEN",
        "LLEN a b",
        "LRANGE l 0",
        "LRANGE l 0 1 2",
        "LINDEX l",
        "LSET l 0",
        "LINSERT l before a",
        "LREM l 0",
        "LTRIM l 0",
        "LPOS l",
        "LMOVE a b left",
        "RPOPLPUSH a",
        "RPOPLPUSH a b c",
        "LMPOP 1 a",
        "LMPOP",
    ]);
}

#[test]
fn list_multi_key_commands() {
    let mut d = diff_or_skip!("list_multi_key_commands");
    d.section("lmove / rpoplpush");
    d.script(&[
        "RPUSH {t}a 1 2 3 4",
        "LMOVE {t}a {t}b LEFT RIGHT",
        "LMOVE {t}a {t}b RIGHT LEFT",
        "LMOVE {t}a {t}b left left",
        "LRANGE {t}a 0 -1",
        "LRANGE {t}b 0 -1",
        "RPUSH {t}a 5 6",
        "LMOVE {t}a {t}a LEFT RIGHT",
        "LRANGE {t}a 0 -1",
        "LMOVE {t}a {t}a RIGHT LEFT",
        "LRANGE {t}a 0 -1",
        "LMOVE {t}a {t}a LEFT LEFT",
        "LMOVE {t}a {t}a RIGHT RIGHT",
        "RPOPLPUSH {t}a {t}a",
        "LRANGE {t}a 0 -1",
        "RPOPLPUSH {t}a {t}b",
        "RPOPLPUSH {t}a {t}b",
        "EXISTS {t}a",
        "LRANGE {t}b 0 -1",
        "LMOVE {t}nokey {t}b LEFT LEFT",
        "RPOPLPUSH {t}nokey {t}b",
        "EXISTS {t}nokey",
        "LMOVE {t}b {t}c UP LEFT",
        "LMOVE {t}b {t}c LEFT DOWN",
        "LMOVE {t}nokey {t}c LEFT DOWN",
        "LMOVE {t}b {t}c Left rIGHT",
        "RPUSH {t}one x",
        "LMOVE {t}one {t}one LEFT LEFT",
        "LRANGE {t}one 0 -1",
        "RPOPLPUSH {t}one {t}one",
        "LMOVE {t}one {t}one LEFT RIGHT",
        "LRANGE {t}one 0 -1",
        "EXISTS {t}one",
        "LMOVE {t}one {t}two LEFT RIGHT",
        "EXISTS {t}one",
        "LRANGE {t}two 0 -1",
    ]);
    d.section("lmove wrong type");
    d.script(&[
        "SET {t}s v",
        "LMOVE {t}b {t}s LEFT LEFT",
        "LRANGE {t}b 0 -1",
        "LMOVE {t}s {t}b LEFT LEFT",
        "LMOVE {t}nokey {t}s LEFT LEFT",
        "RPOPLPUSH {t}b {t}s",
        "RPOPLPUSH {t}s {t}b",
        "RPOPLPUSH {t}s {t}s",
        "RPOPLPUSH {t}nokey {t}s",
        "GET {t}s",
    ]);
    d.section("lmove keeps ttls");
    d.script(&[
        "RPUSH {t}x 1",
        "EXPIRE {t}x 100",
        "RPOPLPUSH {t}b {t}x",
        "LRANGE {t}x 0 -1",
        "RPOPLPUSH {t}x {t}new",
        "RPOPLPUSH {t}x {t}new",
        "EXISTS {t}x",
    ]);
    d.s_norm("TTL {t}new", Norm::TtlClass);
    d.script(&["RPUSH {t}y 1", "EXPIRE {t}y 100", "RPOPLPUSH {t}y {t}y"]);
    d.s_norm("TTL {t}y", Norm::TtlClass);

    d.section("lmpop");
    d.script(&[
        "RPUSH {t}m1 a b c",
        "RPUSH {t}m2 d e",
        "LMPOP 2 {t}nokey {t}m1 LEFT",
        "LMPOP 2 {t}m1 {t}m2 RIGHT COUNT 5",
        "LMPOP 2 {t}m1 {t}m2 left count 5",
        "LMPOP 2 {t}m1 {t}m2 LEFT",
        "EXISTS {t}m1 {t}m2",
        "LMPOP 1 {t}nokey LEFT",
        "LMPOP 3 {t}nokey {t}m1 {t}m2 RIGHT COUNT 2",
        "RPUSH {t}m2 z y",
        "LMPOP 2 {t}s {t}m2 LEFT",
        "LMPOP 2 {t}m2 {t}s LEFT",
        "LMPOP 2 {t}nokey {t}s LEFT",
        "LMPOP 1 {t}m2 RIGHT COUNT 9223372036854775807",
        "EXISTS {t}m2",
        "LMPOP 0 {t}a LEFT",
        "LMPOP x {t}a LEFT",
        "LMPOP -1 {t}a LEFT",
        "LMPOP 9223372036854775808 {t}a LEFT",
        "LMPOP 1 {t}a MIDDLE",
        "LMPOP 1 {t}a LEFT COUNT 0",
        "LMPOP 1 {t}a LEFT COUNT -1",
        "LMPOP 1 {t}a LEFT COUNT x",
        "LMPOP 1 {t}a LEFT COUNT 1 COUNT 2",
        "LMPOP 1 {t}a LEFT COUNT",
        "LMPOP 1 {t}a LEFT FOO",
        "LMPOP 1 {t}a LEFT COUNT 9223372036854775808",
        "LMPOP 1 {t}s LEFT COUNT 0",
        "lmpop 1 {t}nokey right",
    ]);
    d.section("command table");
    d.script(&[
        "COMMAND GETKEYS LMPOP 2 {t}a {t}b LEFT",
        "COMMAND GETKEYS LMPOP 1 {t}a LEFT COUNT 2",
        "COMMAND GETKEYS LMPOP 0 a LEFT",
        "COMMAND GETKEYS LMPOP 5 a LEFT",
        // Only the numkeys count is checked, as Redis does: LEFT may be taken for a key.
        "COMMAND GETKEYS LMPOP 2 a LEFT",
        "COMMAND GETKEYS LMPOP -1 a LEFT",
        "COMMAND GETKEYS LMPOP x a LEFT",
        "COMMAND GETKEYS LMOVE a b LEFT LEFT",
        "COMMAND GETKEYS RPOPLPUSH a b",
        "COMMAND GETKEYS LPUSH a b",
    ]);
    // Key specifications are simplified in Tessera (README); the legacy fields must match.
    let names = [
        "lpush",
        "rpush",
        "lpushx",
        "rpushx",
        "lpop",
        "rpop",
        "llen",
        "lrange",
        "lindex",
        "lset",
        "linsert",
        "lrem",
        "ltrim",
        "lpos",
        "lmove",
        "rpoplpush",
        "lmpop",
    ];
    d.each("COMMAND INFO <list commands> (first 8 fields)", |t, c| {
        let mut args: Vec<&[u8]> = vec![b"COMMAND", b"INFO"];
        args.extend(names.iter().map(|n| n.as_bytes()));
        let reply = resp_parse(&t.conns[c].cmd(&args));
        let mut out = String::new();
        for entry in reply.items().cloned().unwrap_or_default() {
            let fields = entry.items().cloned().unwrap_or_default();
            for f in fields.iter().take(8) {
                out.push_str(&render(f));
                out.push(' ');
            }
            out.push('\n');
        }
        out.into_bytes()
    });
}

#[test]
fn list_multi_key_commands_across_shards() {
    let mut d = diff_or_skip!("list_multi_key_commands_across_shards");
    d.script(&[
        "RPUSH src 1 2 3",
        "LMOVE src dst LEFT RIGHT",
        "RPOPLPUSH src dst",
        "LRANGE src 0 -1",
        "LRANGE dst 0 -1",
        "SET str v",
        "LMOVE src str LEFT LEFT",
        "LMOVE src other RIGHT LEFT",
        "EXISTS src",
        "LMPOP 3 nokey str dst LEFT",
        "LMPOP 3 nokey dst other RIGHT COUNT 10",
        "LMPOP 2 other LEFT",
        "LRANGE other 0 -1",
        "LMPOP 2 dst other LEFT COUNT 10",
        "EXISTS dst other",
    ]);
}

#[test]
fn list_resp3() {
    let mut d = diff_or_skip!("list_resp3");
    d.s_norm("HELLO 3", Norm::Hello);
    d.script(&[
        "RPUSH {t}r a b 1 2",
        "LRANGE {t}r 0 -1",
        "LRANGE {t}nokey 0 -1",
        "LPOP {t}nokey",
        "LPOP {t}nokey 1",
        "LPOP {t}nokey 0",
        "RPOP {t}nokey",
        "LPOP {t}r 0",
        "LPOP {t}r 1",
        "RPOP {t}r",
        "LINDEX {t}nokey 0",
        "LINDEX {t}r 10",
        "LPOS {t}r z",
        "LPOS {t}r z COUNT 0",
        "LPOS {t}nokey z",
        "LPOS {t}nokey z COUNT 1",
        "LPOS {t}r 1 COUNT 0",
        "LMPOP 1 {t}nokey LEFT",
        "LMPOP 2 {t}nokey {t}r LEFT COUNT 3",
        "LMOVE {t}nokey {t}x LEFT LEFT",
        "RPOPLPUSH {t}nokey {t}x",
        "RPUSH {t}r x",
        "LMOVE {t}r {t}x LEFT LEFT",
        "LINSERT {t}x BEFORE nope y",
        "LSET {t}x 5 y",
        "LLEN {t}x",
        "LTRIM {t}x 0 0",
        "LREM {t}x 0 x",
    ]);
}

/// The digests of `keys` on one server: "same"/"differ" for each key against the first.
fn digest_relations(conn: &mut RawConn, keys: &[&str]) -> Vec<u8> {
    let mut args: Vec<&[u8]> = vec![b"DEBUG", b"DIGEST-VALUE"];
    args.extend(keys.iter().map(|k| k.as_bytes()));
    let reply = resp_parse(&conn.cmd(&args));
    let items = reply.items().cloned().unwrap_or_default();
    let first = items.first().and_then(|v| v.as_bytes()).map(|b| b.to_vec());
    let mut out = Vec::new();
    for v in &items[1..] {
        let same = v.as_bytes().map(|b| b.to_vec()) == first;
        out.extend_from_slice(if same { b"same " } else { b"differ " });
    }
    out
}

#[test]
fn list_encoding_and_keyspace() {
    let mut d = diff_or_skip!("list_encoding_and_keyspace");
    d.section("encoding");
    d.script(&[
        "CONFIG GET list-max-listpack-size",
        "CONFIG GET list-max-ziplist-size",
        "RPUSH small a",
        "OBJECT ENCODING small",
        "CONFIG SET list-max-listpack-size 2",
        "RPUSH c2 1 2 3 4 5",
        "OBJECT ENCODING c2",
        "CONFIG SET list-max-listpack-size -5",
        "RPUSH c5 1 2 3",
        "OBJECT ENCODING c5",
        "CONFIG SET list-max-listpack-size 0",
        "RPUSH c0 1 2 3",
        "OBJECT ENCODING c0",
        "LRANGE c0 0 -1",
        "CONFIG SET list-max-listpack-size -100",
        "CONFIG SET list-max-listpack-size 1000000",
        "CONFIG SET list-max-ziplist-size x",
        "CONFIG GET list-max-listpack-size",
    ]);
    d.s_norm("DEBUG OBJECT c2", Norm::TypeOnly);

    // Lists that span many nodes, with small nodes and with byte-capped nodes.
    for (fill, key) in [("3", "big3"), ("-1", "bigb"), ("-2", "bigd")] {
        d.section(&format!("big list, list-max-listpack-size {fill}"));
        d.s(&format!("CONFIG SET list-max-listpack-size {fill}"));
        let mut args: Vec<String> = vec!["RPUSH".into(), key.into()];
        for i in 0..600 {
            args.push(match i % 4 {
                0 => i.to_string(),
                1 => format!("item:{i}"),
                2 => "x".repeat(i % 200),
                _ => (i % 7).to_string(),
            });
        }
        let refs: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        d.cmd(&refs);
        let k = key;
        d.script(&[
            &format!("LLEN {k}"),
            &format!("LINDEX {k} 0"),
            &format!("LINDEX {k} 299"),
            &format!("LINDEX {k} -300"),
            &format!("LINDEX {k} 599"),
            &format!("LRANGE {k} 250 270"),
            &format!("LRANGE {k} -20 -10"),
            &format!("LSET {k} 300 {}", "y".repeat(5000)),
            &format!("LSET {k} 301 short"),
            &format!("LSET {k} 0 0"),
            &format!("LINSERT {k} BEFORE item:401 {}", "z".repeat(3000)),
            &format!("LINSERT {k} AFTER item:401 after"),
            &format!("LINSERT {k} AFTER 596 tail"),
            &format!("LPOS {k} 3 RANK 10"),
            &format!("LPOS {k} 3 RANK -10 COUNT 5"),
            &format!("LPOS {k} 3 COUNT 0 MAXLEN 100"),
            &format!("LREM {k} 5 3"),
            &format!("LREM {k} -5 5"),
            &format!("LREM {k} 0 {}", "x".repeat(9)),
            &format!("LRANGE {k} 0 -1"),
            &format!("LTRIM {k} 37 -41"),
            &format!("LRANGE {k} 0 -1"),
            &format!("LPOP {k} 100"),
            &format!("RPOP {k} 100"),
            &format!("LRANGE {k} 0 -1"),
            &format!("LREM {k} 0 0"),
            &format!("LTRIM {k} 10 20"),
            &format!("LRANGE {k} 0 -1"),
        ]);
    }
    d.s("CONFIG SET list-max-listpack-size -2");

    d.section("generic commands on lists");
    d.script(&[
        "RPUSH k a b c 1 2",
        "TYPE k",
        "COPY k kcopy",
        "LRANGE kcopy 0 -1",
        "RPUSH kcopy d",
        "LLEN k",
        "OBJECT ENCODING kcopy",
        "RPUSH krev 2 1 c b a",
        "RENAME krev kr",
        "LRANGE kr 0 -1",
        "EXISTS krev",
        "EXPIRE k 100",
        "LPUSH k z",
        "LPOP k",
        "LSET k 0 a",
        "LTRIM k 0 -1",
    ]);
    d.s_norm("TTL k", Norm::TtlClass);
    d.s_norm("DEBUG DIGEST-VALUE k", Norm::Shape);
    // Digests are Tessera's own; what must match is which keys digest equally.
    d.script(&[
        "PERSIST k",
        "COPY k kc2",
        "RPUSH kc3 a b c 1 2",
        "RPUSH kc4 a b c 2 1",
    ]);
    d.each("DEBUG DIGEST-VALUE relations", |t, c| {
        digest_relations(&mut t.conns[c], &["k", "kc2", "kc3", "kc4", "kr"])
    });
    d.script(&[
        "MOVE kc2 1",
        "SELECT 1",
        "LRANGE kc2 0 -1",
        "TYPE kc2",
        "SELECT 0",
        "SET str v",
        "HSET h f v",
    ]);
    d.scan_all(&[b"TYPE", b"list"]);
    d.scan_all(&[b"TYPE", b"LIST", b"MATCH", b"k*"]);
    d.s_norm("KEYS *", Norm::Sorted);
    d.script(&["DEL k kcopy kr kc3 kc4", "DBSIZE"]);
}

// ---------------------------------------------------------------------------------------------
// Seeded random sequences
// ---------------------------------------------------------------------------------------------

const KEYS: &[&str] = &["{l}a", "{l}b", "{l}c", "{l}s"];

struct Gen {
    rng: SmallRng,
}

impl Gen {
    fn key(&mut self) -> String {
        // The last key is mostly a string or missing: wrong-type cases arise by themselves.
        let i = if self.rng.gen_bool(0.9) {
            self.rng.gen_range(0..3)
        } else {
            3
        };
        KEYS[i].to_string()
    }

    fn list_key(&mut self) -> String {
        KEYS[self.rng.gen_range(0..3)].to_string()
    }

    fn value(&mut self) -> String {
        match self.rng.gen_range(0..20) {
            0 => String::new(),
            1 => "x".repeat(self.rng.gen_range(100..400)),
            2 => "9223372036854775807".into(),
            3 => "-9223372036854775808".into(),
            4 => "01".into(),
            5..=8 => self.rng.gen_range(-3..130).to_string(),
            _ => ["a", "b", "c", "d", "hello", "-", " 1"][self.rng.gen_range(0..7)].into(),
        }
    }

    fn index(&mut self) -> String {
        match self.rng.gen_range(0..20) {
            0 => "9223372036854775807".into(),
            1 => "-9223372036854775808".into(),
            2 => "x".into(),
            _ => self.rng.gen_range(-12i64..12).to_string(),
        }
    }

    fn end(&mut self) -> &'static str {
        ["LEFT", "RIGHT", "left", "Right"][self.rng.gen_range(0..4)]
    }

    fn command(&mut self) -> (Vec<String>, Norm) {
        let s = |v: &str| v.to_string();
        let r = self.rng.gen_range(0..110);
        let key = self.key();
        let cmd: Vec<String> = match r {
            0..=13 | 100..=109 => {
                let name = ["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"][self.rng.gen_range(0..4)];
                let n = self.rng.gen_range(1..7);
                let mut v = vec![s(name), key];
                v.extend((0..n).map(|_| self.value()));
                v
            }
            14..=21 => {
                let name = if self.rng.gen_bool(0.5) {
                    "LPOP"
                } else {
                    "RPOP"
                };
                let mut v = vec![s(name), key];
                if self.rng.gen_bool(0.5) {
                    v.push(self.rng.gen_range(-1..6).to_string());
                }
                v
            }
            22..=24 => vec![s("LLEN"), key],
            25..=31 => vec![s("LRANGE"), key, self.index(), self.index()],
            32..=35 => vec![s("LINDEX"), key, self.index()],
            36..=39 => vec![s("LSET"), key, self.index(), self.value()],
            40..=44 => {
                let w = ["BEFORE", "AFTER", "after", "nowhere"][self.rng.gen_range(0..4)];
                vec![s("LINSERT"), key, s(w), self.value(), self.value()]
            }
            45..=49 => vec![
                s("LREM"),
                key,
                self.rng.gen_range(-3..4).to_string(),
                self.value(),
            ],
            50..=52 => vec![s("LTRIM"), key, self.index(), self.index()],
            53..=58 => {
                let mut v = vec![s("LPOS"), key, self.value()];
                for _ in 0..self.rng.gen_range(0..3) {
                    match self.rng.gen_range(0..3) {
                        0 => v.extend([s("RANK"), self.rng.gen_range(-4i64..5).to_string()]),
                        1 => v.extend([s("COUNT"), self.rng.gen_range(-1i64..4).to_string()]),
                        _ => v.extend([s("MAXLEN"), self.rng.gen_range(-1i64..8).to_string()]),
                    }
                }
                v
            }
            59..=65 => vec![s("LMOVE"), key, self.key(), s(self.end()), s(self.end())],
            66..=68 => vec![s("RPOPLPUSH"), key, self.key()],
            69..=74 => {
                let n = self.rng.gen_range(1..4);
                let mut v = vec![s("LMPOP"), n.to_string()];
                v.extend((0..n).map(|_| self.key()));
                v.push(s(self.end()));
                if self.rng.gen_bool(0.5) {
                    v.extend([s("COUNT"), self.rng.gen_range(0..5).to_string()]);
                }
                v
            }
            75..=76 => vec![s("DEL"), key],
            // Mostly the string key: list keys turn into strings only now and then.
            77..=79 => {
                let k = if self.rng.gen_bool(0.2) {
                    key
                } else {
                    s(KEYS[3])
                };
                vec![s("SET"), k, self.value()]
            }
            80..=81 => vec![s("EXPIRE"), key, s("100")],
            82 => vec![s("PERSIST"), key],
            83..=85 => vec![s("TYPE"), key],
            86..=87 => vec![s("OBJECT"), s("ENCODING"), key],
            88 => vec![s("EXISTS"), key],
            89..=90 => return (vec![s("TTL"), key], Norm::TtlClass),
            91..=93 => {
                let (src, dst) = (self.list_key(), self.list_key());
                vec![s("COPY"), src, dst, s("REPLACE")]
            }
            94 => vec![s("RENAME"), self.list_key(), self.list_key()],
            _ => vec![s("LRANGE"), key, s("0"), s("-1")],
        };
        (cmd, Norm::Exact)
    }
}

fn run_random(seed: u64, steps: usize, resp3: bool) {
    let name = format!("list_randomized{}", if resp3 { "_resp3" } else { "" });
    let Some(mut d) = Diff::new(&name) else {
        return;
    };
    d.seed = Some(seed);
    d.section(&format!("seed {seed}"));
    d.seed_env = "DIFF_LIST_SEEDS";
    if resp3 {
        d.s_norm("HELLO 3", Norm::Hello);
    }
    // Vary the node size so that splits and merges happen at different points.
    let fill = ["-2", "3", "-1", "1", "5"][seed as usize % 5];
    d.s(&format!("CONFIG SET list-max-listpack-size {fill}"));
    let mut g = Gen {
        rng: SmallRng::seed_from_u64(seed),
    };
    for i in 0..steps {
        d.gen_step = Some(i);
        let (cmd, norm) = g.command();
        let refs: Vec<&[u8]> = cmd.iter().map(|s| s.as_bytes()).collect();
        d.cmd_norm(&refs, norm);
        if (i + 1) % 100 == 0 {
            for k in KEYS {
                d.cmd(&[b"LRANGE", k.as_bytes(), b"0", b"-1"]);
            }
        }
    }
}

#[test]
fn list_randomized() {
    for seed in env_list("DIFF_LIST_SEEDS", &[1, 2, 3]) {
        run_random(seed, env_or("DIFF_STEPS", 2000), false);
    }
}

#[test]
fn list_randomized_resp3() {
    for seed in env_list("DIFF_LIST_SEEDS", &[4]) {
        run_random(seed, env_or("DIFF_STEPS", 2000), true);
    }
}

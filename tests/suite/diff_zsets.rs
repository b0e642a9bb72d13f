//! Differential tests of the sorted set family: every command goes to the reference
//! redis-server (7.0.15) and to Tessera with 1 and 4 shards; replies must be byte-identical
//! unless a case asks for a normalisation. Multi-key commands use keys with one hash tag
//! (`{t}`) so that they live on one shard (one test without tags waits for the cross-shard
//! transaction path). Random replies (ZRANDMEMBER) get property checks.
//!
//! Env knobs: `ZSET_SEEDS=1,2` (`ZSET_RESP3_SEEDS` for RESP3) and `DIFF_STEPS=2000` for the
//! randomized sequences.

use crate::common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeSet, HashSet};

/// Full ZSCAN iteration on every target; compares the set of (member, score) pairs.
fn zscan_all(d: &mut Diff, key: &str, extra: &[&str]) {
    let what = format!("ZSCAN {key} <full iteration> {}", extra.join(" "));
    d.each(&what, |t, active| {
        let conn = &mut t.conns[active];
        let mut cursor = b"0".to_vec();
        let mut pairs = BTreeSet::new();
        for _ in 0..100_000 {
            let mut args: Vec<&[u8]> = vec![b"ZSCAN", key.as_bytes(), &cursor];
            args.extend(extra.iter().map(|s| s.as_bytes()));
            let v = resp_parse(&conn.cmd(&args));
            let Value::Array(items) = v else {
                return render(&v).into_bytes();
            };
            let (Value::Bulk(next), Some(batch)) = (&items[0], items[1].items()) else {
                return b"malformed".to_vec();
            };
            for p in batch.chunks(2) {
                pairs.insert((render(&p[0]), render(&p[1])));
            }
            if next == b"0" {
                return format!("{pairs:?}").into_bytes();
            }
            cursor = next.clone();
        }
        b"no end".to_vec()
    });
}

/// Sends a command built from parts (for arguments with spaces or NULs).
fn raw(d: &mut Diff, parts: &[&[u8]]) {
    d.cmd(parts);
}

#[test]
fn zadd_and_point_reads() {
    let mut d = diff_or_skip!("zadd_and_point_reads");
    d.section("zadd basics");
    d.script(&[
        "ZADD z 1 a 2 b 3 c",
        "ZADD z 4 a 5 d",
        "ZADD z CH 4 a 6 b 7 e",
        "ZADD z ch 6 b",
        "ZRANGE z 0 -1 WITHSCORES",
        "TYPE z",
        "OBJECT ENCODING z",
        "ZCARD z",
        "ZCARD nokey",
        "ZADD z NX 100 a 8 f",
        "ZADD z XX 100 a 9 g",
        "ZADD z XX CH 101 a 9 g",
        "ZADD z GT 1 a 200 b",
        "ZADD z GT CH 1 a 201 b 10 h",
        "ZADD z LT CH 1 a 300 b",
        "ZADD z LT XX CH 0 a 0 nope",
        "ZADD z GT XX 1000 c",
        "ZRANGE z 0 -1 WITHSCORES",
        "ZADD z INCR 5 a",
        "ZADD z INCR NX 5 a",
        "ZADD z INCR XX 5 nope",
        "ZADD z INCR GT -100 a",
        "ZADD z INCR LT -100 a",
        "ZADD z INCR 5 newone",
        "ZADD z INCR inf inf1",
        "ZADD z INCR -inf inf1",
        "ZADD z INCR inf inf1",
        "ZSCORE z inf1",
        "ZINCRBY z 1 a",
        "ZINCRBY z -1.5 a",
        "ZINCRBY z 1 brandnew",
        "ZINCRBY z abc a",
        "ZINCRBY z nan a",
        "ZINCRBY z inf a",
        "ZINCRBY z -inf a",
        "ZINCRBY z 1 a 2",
        "ZINCRBY z nx a",
        "ZINCRBY z ch a",
        "ZINCRBY nokey2 5 m",
        "ZRANGE nokey2 0 -1 WITHSCORES",
        "ZADD nokey3 XX 1 a",
        "EXISTS nokey3",
        "ZADD nokey3 XX INCR 1 a",
        "ZADD nokey3 GT 1 a",
        "ZRANGE nokey3 0 -1 WITHSCORES",
    ]);
    d.section("zadd errors");
    d.script(&[
        "ZADD z",
        "ZADD z 1",
        "ZADD z nx",
        "ZADD z nx 1",
        "ZADD z ch nx",
        "ZADD z 1 a 2",
        "ZADD z foo 1 a",
        "ZADD z NX XX 1 a",
        "ZADD z NX GT 1 a",
        "ZADD z LT NX 1 a",
        "ZADD z GT LT 1 a",
        "ZADD z INCR 1 a 2 b",
        "ZADD z NX XX 1 a 2",
        "ZADD z x a",
        "ZADD z 1 a x b",
        "ZADD z nan a",
        "ZADD z 1e400 a",
        "ZADD z -1e400 a",
        "ZADD z 1e-400 a",
        "ZADD z 1e a",
        "ZADD z .5. a",
        "ZADD z 1x a",
        "ZRANGE z 0 -1 WITHSCORES",
        "SET str v",
        "ZADD str 1 a",
        "ZADD str x a",
        "ZINCRBY str 1 a",
        "ZSCORE str a",
        "ZMSCORE str a",
        "ZCARD str",
        "ZREM str a",
        "ZRANK str a",
        "ZREVRANK str a",
    ]);
    raw(&mut d, &[b"ZADD", b"z", b" 5", b"a"]);
    raw(&mut d, &[b"ZADD", b"z", b"5 ", b"a"]);
    raw(&mut d, &[b"ZADD", b"z", b"5\x00", b"a"]);
    d.section("score formatting");
    d.script(&[
        "ZADD f 0.1 a 1e300 b 3.0 c -0.0 d inf e -inf g 1e-310 h 0x10 i 0x1p-3 j",
        "ZADD f +5 k .5 l 5. m INFINITY n -Infinity o 1.7976931348623157e308 p 4.9e-324 q",
        "ZADD f 123456789012345678 r 0.30000000000000004 s -1e-5 t 1e17 u 1e16 v",
        "ZADD f 9007199254740993 w 4503599627370496.5 x -4503599627370495 y 1e-7 zz",
        "ZRANGE f 0 -1 WITHSCORES",
        "ZSCORE f a",
        "ZSCORE f b",
        "ZSCORE f c",
        "ZSCORE f d",
        "ZSCORE f e",
        "ZSCORE f g",
        "ZSCORE f h",
        "ZSCORE f nope",
        "ZSCORE nokey a",
        "ZMSCORE f a b nope c",
        "ZMSCORE nokey a b",
        "ZMSCORE f",
        "ZADD neg 0 a",
        "ZADD neg -0 a",
        "ZSCORE neg a",
        "ZADD neg -0 b",
        "ZSCORE neg b",
        "ZADD neg INCR 0 b",
        "ZRANGE neg 0 -1 WITHSCORES",
        "ZINCRBY neg 0.1 a",
        "ZINCRBY neg 0.2 a",
    ]);
    d.section("zrem, rank");
    d.script(&[
        "ZADD r 1 a 2 b 3 c 3 d 4 e",
        "ZRANK r a",
        "ZRANK r d",
        "ZRANK r e",
        "ZRANK r nope",
        "ZRANK nokey a",
        "ZREVRANK r a",
        "ZREVRANK r c",
        "ZREVRANK r nope",
        "ZREVRANK nokey a",
        "ZREM r a nope c",
        "ZREM r nope",
        "ZREM nokey a",
        "ZRANGE r 0 -1",
        "ZREM r b d e e",
        "EXISTS r",
        "ZADD e 1 ''",
        "ZSCORE e ''",
        "ZRANK e ''",
        "ZRANGE e 0 -1 WITHSCORES",
    ]);
    d.section("arity");
    d.script(&[
        "ZINCRBY z 1",
        "ZREM z",
        "ZCARD",
        "ZCARD z x",
        "ZSCORE z",
        "ZSCORE z a b",
        "ZMSCORE z",
        "ZRANK z",
        "ZRANK z a withscore",
        "ZREVRANK z a b",
        "ZCOUNT z 1",
        "ZLEXCOUNT z -",
        "ZRANGE z 0",
        "ZRANGESTORE d z 0",
        "ZRANGEBYSCORE z 0",
        "ZREVRANGEBYSCORE z 0",
        "ZRANGEBYLEX z -",
        "ZREVRANGEBYLEX z +",
        "ZREVRANGE z 0",
        "ZREMRANGEBYRANK z 0",
        "ZREMRANGEBYSCORE z 0 1 2",
        "ZREMRANGEBYLEX z - + x",
        "ZPOPMIN",
        "ZPOPMAX",
        "ZMPOP 1 z",
        "ZRANDMEMBER",
        "ZUNION 1",
        "ZINTER 1",
        "ZDIFF 1",
        "ZUNIONSTORE d 1",
        "ZINTERSTORE d",
        "ZDIFFSTORE d 1",
        "ZINTERCARD 1",
        "ZSCAN z",
    ]);
}

#[test]
fn ranges() {
    let mut d = diff_or_skip!("ranges");
    d.section("by rank");
    d.script(&[
        "ZADD z 1 a 2 b 3 c 4 d 5 e 5 f 6 g",
        "ZRANGE z 0 -1",
        "ZRANGE z 0 -1 WITHSCORES",
        "ZRANGE z 0 -1 withscores",
        "ZRANGE z 2 4",
        "ZRANGE z -3 -1",
        "ZRANGE z -100 100",
        "ZRANGE z 5 2",
        "ZRANGE z 7 10",
        "ZRANGE z -1 -3",
        "ZRANGE z 9223372036854775807 -9223372036854775808",
        "ZRANGE z -9223372036854775808 9223372036854775807",
        "ZRANGE z 0 -1 REV",
        "ZRANGE z 0 1 REV WITHSCORES",
        "ZRANGE z 1 3 rev",
        "ZREVRANGE z 0 -1",
        "ZREVRANGE z 0 2 WITHSCORES",
        "ZREVRANGE z -2 -1",
        "ZREVRANGE z 10 20",
        "ZRANGE nokey 0 -1",
        "ZREVRANGE nokey 0 -1 WITHSCORES",
        "ZRANGE z a 1",
        "ZRANGE z 0 b",
        "ZRANGE z 0 1.5",
        "ZRANGE z 0 -1 LIMIT 0 1",
        "ZRANGE z 0 -1 LIMIT 0 -1",
        "ZRANGE z 0 -1 LIMIT 5 -1",
        "ZRANGE z 0 -1 LIMIT x 1",
        "ZRANGE z 0 -1 LIMIT 0",
        "ZRANGE z 0 -1 REV REV",
        "ZRANGE z 0 -1 FOO",
        "ZRANGE z 0 -1 BYSCORE BYLEX",
        "ZRANGE z 0 -1 BYLEX WITHSCORES",
        "ZRANGE z x y BYLEX WITHSCORES",
        "ZREVRANGE z 0 -1 REV",
        "ZREVRANGE z 0 -1 BYSCORE",
        "ZREVRANGE z 0 -1 LIMIT 0 1",
        "SET str v",
        "ZRANGE str 0 -1",
        "ZRANGE str x 1",
        "ZREVRANGE str 0 -1",
    ]);
    d.section("by score");
    d.script(&[
        "ZADD s -inf ninf 1 a 2 b 2 bb 3 c 4.5 d 10 e inf pinf",
        "ZRANGEBYSCORE s -inf +inf",
        "ZRANGEBYSCORE s -inf +inf WITHSCORES",
        "ZRANGEBYSCORE s 2 3",
        "ZRANGEBYSCORE s (2 3",
        "ZRANGEBYSCORE s 2 (3",
        "ZRANGEBYSCORE s (2 (3",
        "ZRANGEBYSCORE s (2 (2",
        "ZRANGEBYSCORE s 2 2",
        "ZRANGEBYSCORE s 3 2",
        "ZRANGEBYSCORE s inf inf",
        "ZRANGEBYSCORE s (inf inf",
        "ZRANGEBYSCORE s -inf -inf",
        "ZRANGEBYSCORE s 1e400 +inf",
        "ZRANGEBYSCORE s '' 2",
        "ZRANGEBYSCORE s ( 2",
        "ZRANGEBYSCORE s 0x2 0x3",
        "ZRANGEBYSCORE s 1 5 LIMIT 1 2",
        "ZRANGEBYSCORE s 1 5 LIMIT 1 -1",
        "ZRANGEBYSCORE s 1 5 LIMIT -1 2",
        "ZRANGEBYSCORE s 1 5 LIMIT 0 0",
        "ZRANGEBYSCORE s 1 5 LIMIT 100 2",
        "ZRANGEBYSCORE s 1 5 LIMIT 9223372036854775807 2",
        "ZRANGEBYSCORE s 1 5 WITHSCORES LIMIT 2 10",
        "ZRANGEBYSCORE s 1 5 LIMIT 1 1 LIMIT 2 1",
        "ZRANGEBYSCORE s 1 5 LIMIT 1",
        "ZRANGEBYSCORE s 1 5 LIMIT a 1",
        "ZRANGEBYSCORE s 1 5 REV",
        "ZRANGEBYSCORE s 1 5 BYSCORE",
        "ZRANGEBYSCORE s a 5",
        "ZRANGEBYSCORE s 1 nan",
        "ZRANGEBYSCORE s (nan 1",
        "ZRANGEBYSCORE s 1x 2",
        "ZRANGEBYSCORE s - 2",
        "ZREVRANGEBYSCORE s +inf -inf",
        "ZREVRANGEBYSCORE s +inf -inf WITHSCORES",
        "ZREVRANGEBYSCORE s 3 2",
        "ZREVRANGEBYSCORE s (3 2",
        "ZREVRANGEBYSCORE s 2 3",
        "ZREVRANGEBYSCORE s 5 1 LIMIT 1 2",
        "ZREVRANGEBYSCORE s 5 1 LIMIT 3 5",
        "ZREVRANGEBYSCORE s 5 1 LIMIT 4 5",
        "ZREVRANGEBYSCORE s 5 1 LIMIT 10 5",
        "ZREVRANGEBYSCORE s 5 1 LIMIT -1 5",
        "ZRANGE s 2 3 BYSCORE",
        "ZRANGE s 3 2 BYSCORE REV",
        "ZRANGE s 2 3 BYSCORE REV",
        "ZRANGE s (1 +inf BYSCORE LIMIT 1 3 WITHSCORES",
        "ZRANGE s +inf (1 BYSCORE REV LIMIT 1 3 WITHSCORES",
        "ZRANGE s -inf +inf byscore limit 0 -5",
        "ZRANGEBYSCORE nokey 1 2",
        "ZRANGEBYSCORE nokey a 2",
        "ZRANGEBYSCORE str 1 2",
        "ZRANGEBYSCORE str a 2",
        "ZCOUNT s -inf +inf",
        "ZCOUNT s 2 2",
        "ZCOUNT s (2 3",
        "ZCOUNT s 3 2",
        "ZCOUNT s (2 (2",
        "ZCOUNT s inf inf",
        "ZCOUNT s 100 200",
        "ZCOUNT s -200 -100",
        "ZCOUNT s a 1",
        "ZCOUNT nokey 1 2",
        "ZCOUNT nokey a 2",
        "ZCOUNT str 1 2",
        "ZCOUNT str a 2",
    ]);
    raw(&mut d, &[b"ZCOUNT", b"s", b" 2", b"3"]);
    raw(&mut d, &[b"ZCOUNT", b"s", b" ", b"3"]);
    raw(&mut d, &[b"ZCOUNT", b"s", b"2\x00junk", b"3"]);
    raw(&mut d, &[b"ZRANGEBYSCORE", b"s", b"(2\x00", b"+inf"]);
    d.section("by lex");
    d.script(&[
        "ZADD l 0 a 0 b 0 c 0 d 0 e 0 f 0 '' 0 aa 0 ab",
        "ZRANGEBYLEX l - +",
        "ZRANGEBYLEX l [b [d",
        "ZRANGEBYLEX l (b (d",
        "ZRANGEBYLEX l (b [d",
        "ZRANGEBYLEX l [a (b",
        "ZRANGEBYLEX l [ [a",
        "ZRANGEBYLEX l ( [a",
        "ZRANGEBYLEX l - (c",
        "ZRANGEBYLEX l [c +",
        "ZRANGEBYLEX l + -",
        "ZRANGEBYLEX l - -",
        "ZRANGEBYLEX l + +",
        "ZRANGEBYLEX l [c [c",
        "ZRANGEBYLEX l (c [c",
        "ZRANGEBYLEX l [d [b",
        "ZRANGEBYLEX l - + LIMIT 2 3",
        "ZRANGEBYLEX l - + LIMIT 2 -1",
        "ZRANGEBYLEX l - + LIMIT -1 3",
        "ZRANGEBYLEX l - + LIMIT 100 3",
        "ZRANGEBYLEX l - + LIMIT 0 0",
        "ZRANGEBYLEX l - + WITHSCORES",
        "ZRANGEBYLEX l a +",
        "ZRANGEBYLEX l '' +",
        "ZRANGEBYLEX l +a +",
        "ZRANGEBYLEX l - -a",
        "ZRANGEBYLEX l - + LIMIT 1",
        "ZREVRANGEBYLEX l + -",
        "ZREVRANGEBYLEX l [d [b",
        "ZREVRANGEBYLEX l (d (b",
        "ZREVRANGEBYLEX l [b [d",
        "ZREVRANGEBYLEX l + - LIMIT 1 3",
        "ZREVRANGEBYLEX l + - LIMIT 8 3",
        "ZREVRANGEBYLEX l + - LIMIT 9 3",
        "ZRANGE l [b [d BYLEX",
        "ZRANGE l [d [b BYLEX REV",
        "ZRANGE l - + BYLEX LIMIT 1 2",
        "ZRANGE l + - BYLEX REV LIMIT 1 2",
        "ZLEXCOUNT l - +",
        "ZLEXCOUNT l [b [d",
        "ZLEXCOUNT l (b (d",
        "ZLEXCOUNT l [d [b",
        "ZLEXCOUNT l + -",
        "ZLEXCOUNT l a b",
        "ZLEXCOUNT nokey - +",
        "ZLEXCOUNT nokey a b",
        "ZLEXCOUNT str - +",
        "ZRANGEBYLEX nokey - +",
        "ZRANGEBYLEX str - +",
    ]);
    raw(&mut d, &[b"ZRANGEBYLEX", b"l", b"-\x00x", b"+"]);
    raw(&mut d, &[b"ZRANGEBYLEX", b"l", b"[\x00", b"+"]);
    d.section("lex on a listpack with mixed scores (Redis's linear walks)");
    d.script(&[
        "ZADD u 1 b 2 a 3 c 4 e 5 d",
        "ZRANGEBYLEX u [b [b",
        "ZREVRANGEBYLEX u [b [b",
        "ZLEXCOUNT u [b [b",
        "ZRANGEBYLEX u [a [c",
        "ZREVRANGEBYLEX u [e [a",
        "ZLEXCOUNT u [a [c",
        "ZRANGEBYLEX u (a +",
        "ZREVRANGEBYLEX u + (a",
        "ZLEXCOUNT u (a +",
        "ZRANGEBYLEX u - [a",
        "ZRANGE u [c [e BYLEX",
        "ZREMRANGEBYLEX u [b [b",
        "ZRANGE u 0 -1",
    ]);
    d.section("remove ranges");
    d.script(&[
        "ZADD rr 1 a 2 b 3 c 4 d 5 e 6 f",
        "ZREMRANGEBYRANK rr 1 2",
        "ZRANGE rr 0 -1",
        "ZREMRANGEBYRANK rr -1 -1",
        "ZREMRANGEBYRANK rr 5 10",
        "ZREMRANGEBYRANK rr 2 1",
        "ZREMRANGEBYRANK rr a 1",
        "ZREMRANGEBYRANK nokey 0 -1",
        "ZREMRANGEBYRANK str 0 -1",
        "ZREMRANGEBYRANK str a -1",
        "ZRANGE rr 0 -1",
        "ZREMRANGEBYRANK rr 0 -1",
        "EXISTS rr",
        "ZADD rs 1 a 2 b 3 c 4 d 5 e 6 f",
        "ZREMRANGEBYSCORE rs (1 3",
        "ZREMRANGEBYSCORE rs 10 20",
        "ZREMRANGEBYSCORE rs 5 4",
        "ZREMRANGEBYSCORE rs x 4",
        "ZREMRANGEBYSCORE nokey 0 1",
        "ZREMRANGEBYSCORE nokey x 1",
        "ZREMRANGEBYSCORE str 0 1",
        "ZRANGE rs 0 -1 WITHSCORES",
        "ZREMRANGEBYSCORE rs -inf +inf",
        "EXISTS rs",
        "ZADD rl 0 a 0 b 0 c 0 d 0 e",
        "ZREMRANGEBYLEX rl [b (d",
        "ZREMRANGEBYLEX rl (e +",
        "ZREMRANGEBYLEX rl x +",
        "ZREMRANGEBYLEX nokey - +",
        "ZREMRANGEBYLEX nokey x +",
        "ZREMRANGEBYLEX str - +",
        "ZRANGE rl 0 -1",
        "ZREMRANGEBYLEX rl - +",
        "EXISTS rl",
    ]);
    d.section("zrangestore");
    d.script(&[
        "ZADD {t}src 1 a 2 b 3 c 4 d 5 e",
        "ZRANGESTORE {t}dst {t}src 1 3",
        "ZRANGE {t}dst 0 -1 WITHSCORES",
        "OBJECT ENCODING {t}dst",
        "ZRANGESTORE {t}dst {t}src 0 1 REV",
        "ZRANGE {t}dst 0 -1 WITHSCORES",
        "ZRANGESTORE {t}dst {t}src (1 4 BYSCORE LIMIT 1 2",
        "ZRANGE {t}dst 0 -1 WITHSCORES",
        "ZRANGESTORE {t}dst {t}src 4 (1 BYSCORE REV LIMIT 1 2",
        "ZRANGE {t}dst 0 -1 WITHSCORES",
        "ZRANGESTORE {t}dst {t}src [b [d BYLEX",
        "ZRANGE {t}dst 0 -1 WITHSCORES",
        "ZRANGESTORE {t}dst {t}src 10 20",
        "EXISTS {t}dst",
        "ZRANGESTORE {t}dst {t}src 0 -1",
        "ZRANGESTORE {t}dst {t}nokey 0 -1",
        "EXISTS {t}dst",
        "SET {t}str v",
        "ZRANGESTORE {t}dst {t}str 0 -1",
        "ZRANGESTORE {t}str {t}src 0 0",
        "TYPE {t}str",
        "ZRANGESTORE {t}dst {t}src 0 -1 WITHSCORES",
        "ZRANGESTORE {t}dst {t}src 0 -1 LIMIT 0 1",
        "ZRANGESTORE {t}dst {t}src a b",
        "ZRANGESTORE {t}dst {t}src 0 -1 BYLEX",
        "ZRANGESTORE {t}src {t}src 1 2",
        "ZRANGE {t}src 0 -1 WITHSCORES",
        "SET {t}x 1",
        "EXPIRE {t}x 100",
        "ZRANGESTORE {t}x {t}src 0 -1",
        "TTL {t}x",
    ]);
}

#[test]
fn pops() {
    let mut d = diff_or_skip!("pops");
    d.script(&[
        "ZADD p 1 a 2 b 3 c 4 d 5 e",
        "ZPOPMIN p",
        "ZPOPMAX p",
        "ZPOPMIN p 2",
        "ZPOPMIN p 0",
        "ZPOPMAX p 10",
        "EXISTS p",
        "ZPOPMIN p",
        "ZPOPMIN p 3",
        "ZPOPMAX nokey",
        "ZPOPMIN nokey 0",
        "ZPOPMIN p -1",
        "ZPOPMIN p x",
        "ZPOPMIN p 1 2",
        "SET str v",
        "ZPOPMIN str",
        "ZPOPMAX str 0",
        "ZPOPMIN str -1",
        "ZADD {t}a 1 x 2 y 3 z",
        "ZADD {t}b 10 p",
        "ZMPOP 1 {t}a MIN",
        "ZMPOP 2 {t}none {t}a MAX",
        "ZMPOP 2 {t}a {t}b min COUNT 10",
        "EXISTS {t}a",
        "ZMPOP 2 {t}a {t}b MAX count 2",
        "ZMPOP 2 {t}a {t}b MAX",
        "ZMPOP 1 {t}str MIN",
        "ZMPOP 2 {t}none {t}str MIN",
        "SET {t}str v",
        "ZADD {t}a 1 x",
        "ZMPOP 2 {t}str {t}a MIN",
        "ZMPOP 2 {t}a {t}str MIN",
        "ZMPOP 0 {t}a MIN",
        "ZMPOP -1 {t}a MIN",
        "ZMPOP abc {t}a MIN",
        "ZMPOP 2 {t}a MIN",
        "ZMPOP 1 {t}a MIDDLE",
        "ZMPOP 1 {t}a MIN COUNT",
        "ZMPOP 1 {t}a MIN COUNT 0",
        "ZMPOP 1 {t}a MIN COUNT -1",
        "ZMPOP 1 {t}a MIN COUNT x",
        "ZMPOP 1 {t}a MIN COUNT 1 COUNT 1",
        "ZMPOP 1 {t}a MIN FOO",
        "ZMPOP 9223372036854775807 {t}a MIN",
        "ZMPOP 1 {t}a max COUNT 9223372036854775807",
        "EXISTS {t}a",
    ]);
    d.section("resp3");
    d.s_norm("HELLO 3", Norm::Hello);
    d.script(&[
        "ZADD p 1 a 2 b 3 c 4 d 5 e",
        "ZPOPMIN p",
        "ZPOPMAX p 1",
        "ZPOPMIN p 2",
        "ZPOPMIN p 0",
        "ZPOPMIN nokey",
        "ZPOPMIN nokey 2",
        "ZADD {t}a 1 x 2 y",
        "ZMPOP 1 {t}a MIN",
        "ZMPOP 2 {t}none {t}a MAX COUNT 5",
        "ZMPOP 1 {t}a MIN",
        "ZPOPMAX p 5",
    ]);
}

/// Parses a ZRANDMEMBER reply into (member, optional score) picks.
fn picks(reply: &[u8], withscores: bool, resp3: bool) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let v = resp_parse(reply);
    let items = v.items().cloned().unwrap_or_default();
    if !withscores {
        return items
            .iter()
            .map(|i| (i.as_bytes().unwrap().to_vec(), None))
            .collect();
    }
    if resp3 {
        items
            .iter()
            .map(|p| {
                let pair = p.items().unwrap();
                let score = match &pair[1] {
                    Value::Double(b) => b.clone(),
                    other => panic!("score not a double: {other:?}"),
                };
                (pair[0].as_bytes().unwrap().to_vec(), Some(score))
            })
            .collect()
    } else {
        items
            .chunks(2)
            .map(|p| {
                (
                    p[0].as_bytes().unwrap().to_vec(),
                    Some(p[1].as_bytes().unwrap().to_vec()),
                )
            })
            .collect()
    }
}

#[test]
fn randmember() {
    let mut d = diff_or_skip!("randmember");
    d.script(&[
        "ZRANDMEMBER nokey",
        "ZRANDMEMBER nokey 3",
        "ZRANDMEMBER nokey -3 WITHSCORES",
        "ZRANDMEMBER nokey 0",
        "ZADD one 1.5 only",
        "ZRANDMEMBER one",
        "ZRANDMEMBER one 1",
        "ZRANDMEMBER one -3",
        "ZRANDMEMBER one -3 WITHSCORES",
        "ZRANDMEMBER one 2 withscores",
        "ZADD r 1 z 2 a 3 m",
        "ZRANDMEMBER r 3",
        "ZRANDMEMBER r 10 WITHSCORES",
        "ZRANDMEMBER r 0",
        "ZRANDMEMBER r 0 WITHSCORES",
        "ZRANDMEMBER r x",
        "ZRANDMEMBER r 1 WITHSCORE",
        "ZRANDMEMBER r 1 WITHSCORES x",
        "ZRANDMEMBER r -9223372036854775808",
        "ZRANDMEMBER r 9223372036854775807 WITHSCORES",
        "ZRANDMEMBER r -4611686018427387904 WITHSCORES",
        "ZRANDMEMBER r -9223372036854775807 WITHSCORES",
        "ZRANDMEMBER r 4611686018427387904 WITHSCORES",
        "ZRANDMEMBER nokey -9223372036854775807",
        "ZRANDMEMBER nokey -4611686018427387903 WITHSCORES",
        "ZRANDMEMBER nokey 4611686018427387904 WITHSCORES",
        "SET str v",
        "ZRANDMEMBER str",
        "ZRANDMEMBER str 1",
        "ZRANDMEMBER str x",
    ]);
    for line in [
        "ZRANDMEMBER r",
        "ZRANDMEMBER r 2",
        "ZRANDMEMBER r -7",
        "ZRANDMEMBER r -7 WITHSCORES",
        "ZRANDMEMBER r 2 WITHSCORES",
    ] {
        d.s_norm(line, Norm::Shape);
    }
    // A skiplist: the whole set comes back in order when count >= size.
    let mut args: Vec<String> = vec!["ZADD".into(), "big".into()];
    for i in 0..300 {
        args.push(format!("{}", (i * 37) % 101));
        args.push(format!("member:{i}"));
    }
    let refs: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    d.cmd(&refs);
    d.script(&[
        "OBJECT ENCODING big",
        "ZRANDMEMBER big 300",
        "ZRANDMEMBER big 1000 WITHSCORES",
    ]);
    for (line, n, withscores, distinct) in [
        ("ZRANDMEMBER big 5 WITHSCORES", 5, true, true),
        ("ZRANDMEMBER big 200", 200, false, true),
        ("ZRANDMEMBER big 299 WITHSCORES", 299, true, true),
        ("ZRANDMEMBER big -500 WITHSCORES", 500, true, false),
        ("ZRANDMEMBER r 2", 2, false, true),
        ("ZRANDMEMBER r -10 WITHSCORES", 10, true, false),
    ] {
        let reply = d.s_norm(line, Norm::Shape);
        // Check Tessera's own reply (redis' is only compared by shape).
        for t in 1..d.targets.len() {
            let mine = d.targets[t].conns[0].cmd_str(line);
            let p = picks(&mine, withscores, false);
            assert_eq!(p.len(), n, "{line}");
            let names: HashSet<_> = p.iter().map(|(m, _)| m.clone()).collect();
            if distinct {
                assert_eq!(names.len(), n, "{line}: picks are distinct");
            }
            for (m, s) in &p {
                let key = line.split(' ').nth(1).unwrap();
                let score = d.targets[t].conns[0].cmd(&[b"ZSCORE", key.as_bytes(), m]);
                assert!(
                    !resp_parse(&score).is_nil(),
                    "{line}: pick belongs to the set"
                );
                if let Some(s) = s {
                    assert_eq!(resp_parse(&score).as_bytes().unwrap(), &s[..], "{line}");
                }
            }
        }
        let _ = reply;
    }
    // Repetitions do happen with negative counts on a small set.
    let mine = d.targets[1].conns[0].cmd_str("ZRANDMEMBER r -50");
    let p = picks(&mine, false, false);
    let names: HashSet<_> = p.iter().map(|(m, _)| m.clone()).collect();
    assert!(names.len() <= 3 && p.len() == 50);

    d.section("resp3");
    d.s_norm("HELLO 3", Norm::Hello);
    d.script(&[
        "ZRANDMEMBER nokey",
        "ZRANDMEMBER nokey 2 WITHSCORES",
        "ZRANDMEMBER one 1 WITHSCORES",
        "ZRANDMEMBER one -2 WITHSCORES",
        "ZRANDMEMBER one -2",
        "ZRANDMEMBER r 5 WITHSCORES",
        "ZRANDMEMBER r 0 WITHSCORES",
    ]);
    d.s_norm("ZRANDMEMBER r -5 WITHSCORES", Norm::Shape);
    d.s_norm("ZRANDMEMBER r 2 WITHSCORES", Norm::Shape);
    let mine = d.targets[1].conns[0].cmd_str("ZRANDMEMBER big 20 WITHSCORES");
    let p = picks(&mine, true, true);
    assert_eq!(p.len(), 20);
}

#[test]
fn set_operations() {
    let mut d = diff_or_skip!("set_operations");
    d.script(&[
        "ZADD {t}a 1 x 2 y 3 z",
        "ZADD {t}b 10 y 20 z 30 w",
        "ZADD {t}c 0.1 y 0.2 x",
        "SET {t}str v",
        "ZUNION 2 {t}a {t}b",
        "ZUNION 2 {t}a {t}b WITHSCORES",
        "ZUNION 3 {t}a {t}b {t}c WITHSCORES",
        "ZUNION 3 {t}c {t}b {t}a WITHSCORES",
        "ZUNION 2 {t}a {t}b WEIGHTS 1 2 WITHSCORES",
        "ZUNION 2 {t}a {t}b WEIGHTS 1 2 WEIGHTS 3 4 WITHSCORES",
        "ZUNION 2 {t}a {t}b AGGREGATE MAX WITHSCORES",
        "ZUNION 2 {t}a {t}b AGGREGATE min WITHSCORES",
        "ZUNION 2 {t}a {t}b aggregate sum withscores",
        "ZUNION 2 {t}a {t}b WITHSCORES WITHSCORES",
        "ZUNION 2 {t}a {t}nokey WITHSCORES",
        "ZUNION 1 {t}nokey",
        "ZUNION 2 {t}a {t}a WITHSCORES",
        "ZUNION 2 {t}a {t}b WEIGHTS inf -inf WITHSCORES",
        "ZUNION 2 {t}a {t}b WEIGHTS 0 1 WITHSCORES",
        "ZUNION 2 {t}a {t}b WEIGHTS 1e400 1",
        "ZUNION 2 {t}a {t}b WEIGHTS x 1",
        "ZUNION 2 {t}a {t}b WEIGHTS 1",
        "ZUNION 2 {t}a {t}b AGGREGATE foo",
        "ZUNION 2 {t}a {t}b AGGREGATE",
        "ZUNION 2 {t}a {t}b FOO",
        "ZUNION 2 {t}a {t}str",
        "ZUNION 2 {t}a {t}str WEIGHTS x",
        "ZUNION 2 {t}str {t}a FOO",
        "ZUNION 0 {t}a",
        "ZUNION -1 {t}a",
        "ZUNION 1.5 {t}a",
        "ZUNION x {t}a",
        "ZUNION 3 {t}a {t}b",
        "ZINTER 2 {t}a {t}b",
        "ZINTER 2 {t}a {t}b WITHSCORES",
        "ZINTER 3 {t}a {t}b {t}c WITHSCORES",
        "ZINTER 2 {t}a {t}b WEIGHTS 2 0.5 AGGREGATE MIN WITHSCORES",
        "ZINTER 2 {t}a {t}b AGGREGATE MAX WITHSCORES",
        "ZINTER 2 {t}a {t}nokey WITHSCORES",
        "ZINTER 2 {t}a {t}a WITHSCORES",
        "ZINTER 2 {t}a {t}b WEIGHTS 0 inf WITHSCORES",
        "ZINTER 0 {t}a",
        "ZINTER 2 {t}a {t}str",
        "ZDIFF 2 {t}a {t}b",
        "ZDIFF 2 {t}a {t}b WITHSCORES",
        "ZDIFF 3 {t}b {t}a {t}c WITHSCORES",
        "ZDIFF 2 {t}a {t}a",
        "ZDIFF 1 {t}a WITHSCORES",
        "ZDIFF 2 {t}nokey {t}a",
        "ZDIFF 2 {t}a {t}nokey WITHSCORES",
        "ZDIFF 2 {t}a {t}b WEIGHTS 1 2",
        "ZDIFF 2 {t}a {t}b AGGREGATE SUM",
        "ZDIFF 0 {t}a",
        "ZDIFF 2 {t}a {t}str",
        "ZINTERCARD 2 {t}a {t}b",
        "ZINTERCARD 3 {t}a {t}b {t}c",
        "ZINTERCARD 2 {t}a {t}b LIMIT 1",
        "ZINTERCARD 2 {t}a {t}b LIMIT 0",
        "ZINTERCARD 2 {t}a {t}b LIMIT 100",
        "ZINTERCARD 2 {t}a {t}b LIMIT -1",
        "ZINTERCARD 2 {t}a {t}b LIMIT x",
        "ZINTERCARD 2 {t}a {t}b LIMIT",
        "ZINTERCARD 2 {t}a {t}b WEIGHTS 1 2",
        "ZINTERCARD 2 {t}a {t}b WITHSCORES",
        "ZINTERCARD 2 {t}a {t}nokey",
        "ZINTERCARD 0 {t}a",
        "ZINTERCARD x {t}a",
        "ZINTERCARD 3 {t}a {t}b",
        "ZINTERCARD 2 {t}a {t}str",
        "ZUNIONSTORE {t}d 2 {t}a {t}b",
        "ZRANGE {t}d 0 -1 WITHSCORES",
        "OBJECT ENCODING {t}d",
        "ZUNIONSTORE {t}d 2 {t}a {t}b WEIGHTS 1 -1 AGGREGATE MIN",
        "ZRANGE {t}d 0 -1 WITHSCORES",
        "ZUNIONSTORE {t}d 2 {t}a {t}b WITHSCORES",
        "ZINTERSTORE {t}d 2 {t}a {t}b WEIGHTS 2 0.5 AGGREGATE min",
        "ZRANGE {t}d 0 -1 WITHSCORES",
        "ZDIFFSTORE {t}d 2 {t}b {t}a",
        "ZRANGE {t}d 0 -1 WITHSCORES",
        "ZDIFFSTORE {t}d 2 {t}a {t}a",
        "EXISTS {t}d",
        "ZINTERSTORE {t}d 2 {t}a {t}nokey",
        "ZUNIONSTORE {t}str 1 {t}nokey",
        "EXISTS {t}str",
        "SET {t}str v",
        "ZUNIONSTORE {t}str 1 {t}a",
        "TYPE {t}str",
        "ZUNIONSTORE {t}a 2 {t}a {t}b",
        "ZRANGE {t}a 0 -1 WITHSCORES",
        "ZUNIONSTORE {t}d 0 {t}a",
        "ZINTERSTORE {t}d 3 {t}a",
        "ZDIFFSTORE {t}d 1 {t}a WITHSCORES",
        "SET {t}str v",
        "ZINTERSTORE {t}d 2 {t}a {t}str",
        "SET {t}e v",
        "EXPIRE {t}e 100",
        "ZUNIONSTORE {t}e 1 {t}a",
        "TTL {t}e",
    ]);
    d.section("float sums follow Redis's input order");
    d.script(&[
        "ZADD {t}f1 0.1 m",
        "ZADD {t}f2 0.2 m",
        "ZADD {t}f3 0.3 m 1 n",
        "ZUNION 3 {t}f1 {t}f2 {t}f3 WITHSCORES",
        "ZUNION 3 {t}f3 {t}f2 {t}f1 WITHSCORES",
        "ZUNION 3 {t}f2 {t}f3 {t}f1 WITHSCORES",
        "ZINTER 3 {t}f3 {t}f1 {t}f2 WITHSCORES",
        "ZINTER 3 {t}f2 {t}f1 {t}f3 WITHSCORES",
        "ZADD {t}i1 inf m -inf n",
        "ZADD {t}i2 -inf m -inf n",
        "ZUNION 2 {t}i1 {t}i2 WITHSCORES",
        "ZINTER 2 {t}i1 {t}i2 WITHSCORES",
        "ZUNION 2 {t}i1 {t}i2 WEIGHTS 0 0 WITHSCORES",
        "ZINTER 2 {t}i1 {t}i2 WEIGHTS 1 0 AGGREGATE MIN WITHSCORES",
        "ZINTER 2 {t}i1 {t}i2 WEIGHTS 1 0 AGGREGATE MAX WITHSCORES",
        "ZINTER 2 {t}i1 {t}i2 WEIGHTS 0 1 AGGREGATE MAX WITHSCORES",
        "ZINTER 2 {t}i2 {t}i1 WEIGHTS -1 -1 WITHSCORES",
    ]);
    d.section("store encodings");
    d.script(&[
        "CONFIG SET zset-max-listpack-entries 4",
        "CONFIG SET zset-max-listpack-value 5",
        "ZADD {t}s 1 a 2 b 3 c 4 d 5 e 6 f",
        "OBJECT ENCODING {t}s",
        "ZADD {t}s2 1 a",
        "ZINTERSTORE {t}i 2 {t}s2 {t}s",
        "OBJECT ENCODING {t}i",
        "ZUNIONSTORE {t}u 2 {t}s2 {t}s",
        "OBJECT ENCODING {t}u",
        "ZRANGESTORE {t}r {t}s 0 3",
        "OBJECT ENCODING {t}r",
        "ZRANGESTORE {t}r {t}s 0 4",
        "OBJECT ENCODING {t}r",
        "ZRANGESTORE {t}r {t}s 2 5 BYSCORE",
        "OBJECT ENCODING {t}r",
        "ZADD {t}long 1 abcdef 2 a",
        "OBJECT ENCODING {t}long",
        "ZREM {t}long abcdef",
        "OBJECT ENCODING {t}long",
        "ZUNIONSTORE {t}u2 1 {t}long",
        "OBJECT ENCODING {t}u2",
        "ZADD {t}long 3 abcdef",
        "ZDIFFSTORE {t}u3 1 {t}long",
        "OBJECT ENCODING {t}u3",
        "ZRANGESTORE {t}u4 {t}long 0 -1",
        "OBJECT ENCODING {t}u4",
        "CONFIG SET zset-max-listpack-entries 0",
        "ZUNIONSTORE {t}z0 1 {t}s2",
        "OBJECT ENCODING {t}z0",
        "CONFIG SET zset-max-listpack-entries 128",
        "CONFIG SET zset-max-listpack-value 64",
    ]);
    d.section("-0 scores: a listpack stores 0, a skiplist keeps the sign");
    d.script(&[
        "CONFIG SET zset-max-listpack-entries 4",
        "ZADD {t}n 1 a 2 b 3 c 4 d 5 e 6 f",
        "ZADD {t}n -0 a",
        "ZSCORE {t}n a",
        "ZRANGESTORE {t}nd {t}n 0 4",
        "ZSCORE {t}nd a",
        "ZRANGESTORE {t}nd {t}n 0 3",
        "ZSCORE {t}nd a",
        "ZRANGESTORE {t}nd {t}n -inf +inf BYSCORE",
        "ZSCORE {t}nd a",
        "ZRANGESTORE {t}nd {t}n +inf -inf BYSCORE REV",
        "ZSCORE {t}nd a",
        "ZRANGESTORE {t}nd {t}n 0 -1 REV",
        "ZSCORE {t}nd a",
        "ZRANGESTORE {t}nd {t}n [a [c BYLEX",
        "ZSCORE {t}nd a",
        "ZUNIONSTORE {t}nd 1 {t}n",
        "ZSCORE {t}nd a",
        "ZINTERSTORE {t}nd 1 {t}n",
        "ZSCORE {t}nd a",
        "ZDIFFSTORE {t}nd 2 {t}n {t}x",
        "ZSCORE {t}nd a",
        "ZRANGESTORE {t}nd {t}n 0 0",
        "ZSCORE {t}nd a",
        "ZUNION 1 {t}n WITHSCORES",
        "ZRANDMEMBER {t}n 10 WITHSCORES",
        "ZSCAN {t}n 0 MATCH a",
        "ZPOPMIN {t}n",
        "ZADD {t}lp -0 x",
        "ZSCORE {t}lp x",
        "ZINCRBY {t}lp -0 y",
        "ZSCORE {t}lp y",
        "ZADD {t}lp INCR -0 w",
        "ZRANGE {t}lp 0 -1 WITHSCORES",
        "CONFIG SET zset-max-listpack-entries 128",
    ]);
    d.section("resp3");
    d.s_norm("HELLO 3", Norm::Hello);
    d.script(&[
        "ZADD {t}a 1 x 2 y 3 z",
        "ZUNION 2 {t}a {t}b WITHSCORES",
        "ZUNION 2 {t}a {t}b",
        "ZINTER 2 {t}a {t}b WITHSCORES",
        "ZDIFF 2 {t}a {t}b WITHSCORES",
        "ZINTERCARD 2 {t}a {t}b",
        "ZUNIONSTORE {t}d 2 {t}a {t}b",
    ]);
}

#[test]
fn set_operations_across_shards() {
    let mut d = diff_or_skip!("set_operations_across_shards");
    d.script(&[
        "ZADD a 1 x 2 y 3 z",
        "ZADD b 10 y 20 z 30 w",
        "ZADD c 5 q",
        "ZUNION 2 a b WITHSCORES",
        "ZINTER 2 a b WITHSCORES",
        "ZDIFF 2 a b WITHSCORES",
        "ZINTERCARD 2 a b",
        "ZUNIONSTORE d 2 a b",
        "ZRANGE d 0 -1 WITHSCORES",
        "ZINTERSTORE e 2 a b WEIGHTS 2 3",
        "ZRANGE e 0 -1 WITHSCORES",
        "ZDIFFSTORE f 2 b a",
        "ZRANGE f 0 -1 WITHSCORES",
        "ZRANGESTORE g a 0 1",
        "ZRANGE g 0 -1 WITHSCORES",
        "ZMPOP 3 nokey c a MIN COUNT 2",
        "ZMPOP 2 a b MAX",
        // Plain sets are inputs with score 1 (intset and string sets).
        "SADD si 1 2 3 y",
        "SADD sn 5 6",
        "ZUNION 3 b si sn WITHSCORES",
        "ZINTER 2 b si WITHSCORES",
        "ZINTER 2 si b WEIGHTS 4 1 AGGREGATE MAX WITHSCORES",
        "ZDIFF 2 si b WITHSCORES",
        "ZDIFF 2 sn si",
        "ZINTERCARD 2 si b",
        "ZUNIONSTORE h 2 si sn WEIGHTS 2 3",
        "ZRANGE h 0 -1 WITHSCORES",
        "OBJECT ENCODING h",
        "SET str x",
        "ZUNION 2 si str",
    ]);
}

#[test]
fn scan_encodings_and_keyspace() {
    let mut d = diff_or_skip!("scan_encodings_and_keyspace");
    d.section("zscan");
    d.script(&[
        "ZADD s 1 a 0.1 b -0 c inf d 1e300 e 2.5 abc",
        "ZSCAN s 0",
        "ZSCAN s 0 COUNT 1",
        "ZSCAN s 5",
        "ZSCAN s 0 MATCH a*",
        "ZSCAN s 0 MATCH * COUNT 100",
        "ZSCAN s 0 match [ab] count 2",
        // A listpack returns the text it stored: integers up to 2^62 in full.
        "ZADD big 1e17 i 123456789012345678 f 1e18 j -1e17 m 4611686018427387904 c -4611686018427387904 e 4611686018427388928 g 9.2e18 h 1e16 k -0.0 z",
        "ZSCAN big 0",
        "ZRANGE big 0 -1 WITHSCORES",
        "CONFIG SET zset-max-listpack-entries 1",
        "ZADD big2 1e17 i 1e18 j",
        "OBJECT ENCODING big2",
    ]);
    // A skiplist's scan order is its hash table's.
    d.s_norm("ZSCAN big2 0", Norm::SortedScan);
    d.script(&[
        "CONFIG SET zset-max-listpack-entries 128",
        "ZSCAN s abc",
        "ZSCAN s -1",
        "ZSCAN s 18446744073709551616",
        "ZSCAN s 0 COUNT 0",
        "ZSCAN s 0 COUNT x",
        "ZSCAN s 0 COUNT",
        "ZSCAN s 0 MATCH",
        "ZSCAN s 0 TYPE zset",
        "ZSCAN s 0 NOVALUES",
        "ZSCAN nokey 0",
        "ZSCAN nokey 0 COUNT 0",
        "ZSCAN nokey x",
        "SET str v",
        "ZSCAN str 0",
        "ZSCAN str x",
    ]);
    let mut args: Vec<String> = vec!["ZADD".into(), "big".into()];
    for i in 0..300 {
        args.push(format!("{}", i as f64 / 10.0));
        args.push(format!("member:{i}"));
    }
    let refs: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    d.cmd(&refs);
    d.script(&["OBJECT ENCODING big", "ZCARD big"]);
    // Batch sizes depend on bucket layout: only the reply type compares.
    d.s_norm("ZSCAN big 0", Norm::TypeOnly);
    zscan_all(&mut d, "big", &[]);
    zscan_all(&mut d, "big", &["COUNT", "3"]);
    zscan_all(&mut d, "big", &["MATCH", "member:1*", "COUNT", "50"]);
    zscan_all(&mut d, "s", &[]);
    d.section("big skiplist ranges");
    d.script(&[
        "ZRANGE big 0 9 WITHSCORES",
        "ZRANGE big -5 -1 WITHSCORES",
        "ZRANGE big 100 120",
        "ZREVRANGE big 0 4 WITHSCORES",
        "ZRANGEBYSCORE big 10 12 WITHSCORES",
        "ZRANGEBYSCORE big (10 (12",
        "ZREVRANGEBYSCORE big 29.9 29 WITHSCORES",
        "ZRANGEBYSCORE big -inf +inf LIMIT 150 5",
        "ZREVRANGEBYSCORE big +inf -inf LIMIT 150 5",
        "ZRANGE big 5 25 BYSCORE LIMIT 10 3",
        "ZCOUNT big 5 10",
        "ZCOUNT big (5 (10",
        "ZCOUNT big -inf +inf",
        "ZCOUNT big 100 200",
        "ZRANK big member:150",
        "ZREVRANK big member:150",
        "ZRANK big nope",
        "ZSCORE big member:123",
        "ZMSCORE big member:1 member:2 nope",
        "ZINCRBY big 100 member:0",
        "ZRANK big member:0",
        "ZINCRBY big -50 member:0",
        "ZRANK big member:0",
        "ZADD big 0.05 member:0",
        "ZRANK big member:0",
        "ZREMRANGEBYRANK big 10 19",
        "ZREMRANGEBYSCORE big 20 (21",
        "ZCARD big",
        "ZRANGE big 5 15 WITHSCORES",
        "ZPOPMIN big 3",
        "ZPOPMAX big 3",
        "ZREM big member:50 member:51 nope",
        "ZCARD big",
        "OBJECT ENCODING big",
        "ZRANGESTORE {big}small big 0 9",
        "OBJECT ENCODING {big}small",
        "ZUNIONSTORE {big}small2 1 big",
        "OBJECT ENCODING {big}small2",
        "ZRANGE {big}small2 0 -1 WITHSCORES",
    ]);
    d.section("lex on a skiplist of equal scores");
    let mut args: Vec<String> = vec!["ZADD".into(), "lexbig".into()];
    for i in 0..200 {
        args.push("0".into());
        args.push(format!("w{:03}", (i * 7) % 200));
    }
    let refs: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    d.cmd(&refs);
    d.script(&[
        "OBJECT ENCODING lexbig",
        "ZRANGEBYLEX lexbig [w050 (w060",
        "ZREVRANGEBYLEX lexbig [w060 (w050",
        "ZRANGEBYLEX lexbig - + LIMIT 190 20",
        "ZREVRANGEBYLEX lexbig + - LIMIT 190 20",
        "ZLEXCOUNT lexbig [w050 (w060",
        "ZLEXCOUNT lexbig - +",
        "ZLEXCOUNT lexbig (w199 +",
        "ZLEXCOUNT lexbig + -",
        "ZREMRANGEBYLEX lexbig [w100 [w149",
        "ZLEXCOUNT lexbig - +",
        "ZRANGE lexbig [w095 [w155 BYLEX",
    ]);
    d.section("encoding thresholds");
    d.script(&[
        "CONFIG SET zset-max-listpack-entries 4",
        "CONFIG SET zset-max-listpack-value 8",
        "ZADD t 1 a 2 b 3 c 4 d",
        "OBJECT ENCODING t",
        "ZADD t 5 a",
        "OBJECT ENCODING t",
        "ZADD t 5 e",
        "OBJECT ENCODING t",
        "ZREM t e d c b",
        "OBJECT ENCODING t",
        "ZADD v 1 12345678",
        "OBJECT ENCODING v",
        "ZADD v 1 123456789",
        "OBJECT ENCODING v",
        "ZADD w 1 123456789",
        "OBJECT ENCODING w",
        "ZADD w2 1 a",
        "ZADD w2 XX 1 123456789",
        "OBJECT ENCODING w2",
        "ZADD w2 NX 1 123456789",
        "OBJECT ENCODING w2",
        "ZINCRBY w3 1 123456789",
        "OBJECT ENCODING w3",
        "ZADD dup 1 a 1 a 1 a 1 a 1 a 1 a",
        "OBJECT ENCODING dup",
        "CONFIG SET zset-max-listpack-value 2",
        "ZADD dup 2 a",
        "OBJECT ENCODING dup",
        "ZADD dup 2 abc",
        "OBJECT ENCODING dup",
        "CONFIG SET zset-max-listpack-entries 0",
        "ZADD zero 1 a",
        "OBJECT ENCODING zero",
        "CONFIG SET zset-max-ziplist-entries 128",
        "CONFIG GET zset-max-listpack-entries",
        "CONFIG SET zset-max-ziplist-value 64",
        "CONFIG GET zset-max-listpack-value",
    ]);
    d.section("keyspace");
    d.script(&[
        "ZADD k 1 a 2 b",
        "EXPIRE k 100",
        "ZADD k 3 c",
        "ZREM k a",
        "ZINCRBY k 1 b",
        "OBJECT ENCODING k",
        "COPY k k2",
        "ZRANGE k2 0 -1 WITHSCORES",
        "OBJECT ENCODING k2",
        "COPY big bigcopy",
        "OBJECT ENCODING bigcopy",
        "ZCARD bigcopy",
        "ZRANGE bigcopy 0 4 WITHSCORES",
        "RENAME k2 k3",
        "ZRANGE k3 0 -1 WITHSCORES",
        "TYPE k3",
        "MOVE k3 1",
        "SELECT 1",
        "ZRANGE k3 0 -1 WITHSCORES",
        "TYPE k3",
        "SELECT 0",
        "DEL k",
        "EXISTS k",
        "ZADD k 1 a",
        "SET k str",
        "TYPE k",
        "ZADD k 1 a",
        "DEL k",
        "ZADD k 1 a",
        "EXPIRE k 0",
        "EXISTS k",
        "TYPE big",
    ]);
    d.s_norm("TTL k3", Norm::TtlClass);
    d.scan_all(&[b"TYPE", b"zset"]);
    d.scan_all(&[b"TYPE", b"ZSET"]);
    // DEBUG DIGEST-VALUE is Tessera's own hash: equal for equal sorted sets, whatever the
    // encoding, different after a change.
    for t in 1..d.targets.len() {
        let c = &mut d.targets[t].conns[0];
        let a = c.cmd_str("DEBUG DIGEST-VALUE big bigcopy");
        let v = resp_parse(&a);
        let items = v.items().unwrap();
        assert_eq!(items[0], items[1], "copy digests equal");
        c.cmd_str("ZADD lp 1 x 2 y");
        let long = "z".repeat(70);
        c.cmd_str(&format!("ZADD sl 1 x 2 y 3 {long}"));
        c.cmd_str(&format!("ZREM sl {long}"));
        assert_eq!(
            c.cmd_str("OBJECT ENCODING sl"),
            b"$8\r\nskiplist\r\n".to_vec()
        );
        let v = resp_parse(&c.cmd_str("DEBUG DIGEST-VALUE lp sl"));
        let items = v.items().unwrap();
        assert_eq!(items[0], items[1], "digest is encoding-independent");
        c.cmd_str("ZINCRBY sl 1 x");
        let v = resp_parse(&c.cmd_str("DEBUG DIGEST-VALUE lp sl"));
        let items = v.items().unwrap();
        assert_ne!(items[0], items[1], "digest follows the scores");
        let before = c.cmd_str("DEBUG DIGEST");
        c.cmd_str("ZADD lp 3 x");
        assert_ne!(before, c.cmd_str("DEBUG DIGEST"));
        let dbg = c.cmd_str("DEBUG OBJECT big");
        assert!(
            String::from_utf8_lossy(&dbg).contains("encoding:skiplist"),
            "{}",
            String::from_utf8_lossy(&dbg)
        );
    }
}

#[test]
fn resp3_replies() {
    let mut d = diff_or_skip!("resp3_replies");
    d.s_norm("HELLO 3", Norm::Hello);
    d.script(&[
        "ZADD z 1 a 2.5 b inf c -0 d",
        "ZADD z INCR 1 a",
        "ZADD z XX INCR 1 nope",
        "ZINCRBY z 0.1 a",
        "ZSCORE z b",
        "ZSCORE z c",
        "ZSCORE z d",
        "ZSCORE z nope",
        "ZSCORE nokey a",
        "ZMSCORE z a nope c",
        "ZRANK z b",
        "ZRANK z nope",
        "ZREVRANK nokey a",
        "ZRANGE z 0 -1",
        "ZRANGE z 0 -1 WITHSCORES",
        "ZRANGE nokey 0 -1 WITHSCORES",
        "ZRANGE z 0 -1 REV WITHSCORES",
        "ZREVRANGE z 0 1 WITHSCORES",
        "ZRANGEBYSCORE z -inf +inf WITHSCORES LIMIT 1 2",
        "ZREVRANGEBYSCORE z +inf -inf WITHSCORES",
        "ZRANGEBYLEX z - +",
        "ZCOUNT z -inf +inf",
        "ZSCAN z 0",
        "ZSCAN nokey 0",
        "ZCARD z",
    ]);
}

#[test]
fn command_info_and_keys() {
    let mut d = diff_or_skip!("command_info_and_keys");
    let cmds = [
        "zadd",
        "zincrby",
        "zrem",
        "zcard",
        "zcount",
        "zlexcount",
        "zscore",
        "zmscore",
        "zrank",
        "zrevrank",
        "zrange",
        "zrangestore",
        "zrangebyscore",
        "zrevrangebyscore",
        "zrangebylex",
        "zrevrangebylex",
        "zrevrange",
        "zremrangebyrank",
        "zremrangebyscore",
        "zremrangebylex",
        "zpopmin",
        "zpopmax",
        "zmpop",
        "zrandmember",
        "zunion",
        "zinter",
        "zdiff",
        "zunionstore",
        "zinterstore",
        "zdiffstore",
        "zintercard",
        "zscan",
    ];
    for c in cmds {
        d.each(&format!("COMMAND INFO {c} (fields 1-6)"), |t, active| {
            let v = resp_parse(&t.conns[active].cmd_str(&format!("COMMAND INFO {c}")));
            let entry = v
                .items()
                .and_then(|i| i.first().cloned())
                .unwrap_or(Value::Null);
            let mut fields: Vec<Value> = entry
                .items()
                .map(|i| i.iter().take(6).cloned().collect())
                .unwrap_or_default();
            if let Some(Value::Array(flags)) = fields.get_mut(2) {
                flags.sort();
            }
            render(&Value::Array(fields)).into_bytes()
        });
    }
    d.script(&[
        "COMMAND GETKEYS ZUNIONSTORE d 2 a b WEIGHTS 1 2",
        "COMMAND GETKEYS ZINTERSTORE d 1 a",
        "COMMAND GETKEYS ZDIFFSTORE d 3 a b c",
        "COMMAND GETKEYS ZUNION 2 a b WITHSCORES",
        "COMMAND GETKEYS ZINTER 1 a",
        "COMMAND GETKEYS ZDIFF 2 a b",
        "COMMAND GETKEYS ZINTERCARD 2 a b LIMIT 1",
        "COMMAND GETKEYS ZMPOP 2 a b MIN COUNT 2",
        // Only the numkeys count is checked, as Redis does: MIN may be taken for a key.
        "COMMAND GETKEYS ZMPOP 2 a MIN",
        "COMMAND GETKEYS ZMPOP 0 a MIN",
        "COMMAND GETKEYS ZMPOP 3 a MIN",
        "COMMAND GETKEYS ZMPOP x a MIN",
        "COMMAND GETKEYS ZMPOP -1 a MIN",
        "COMMAND GETKEYS ZMPOP 9223372036854775807 a",
        "COMMAND GETKEYS ZUNION 2 a",
        "COMMAND GETKEYS ZUNION 3 a b",
        "COMMAND GETKEYS ZUNION 1",
        "COMMAND GETKEYS ZINTER 0 a",
        "COMMAND GETKEYS ZINTER 1 a WEIGHTS 1",
        "COMMAND GETKEYS ZDIFF 2 a",
        "COMMAND GETKEYS ZINTERCARD 3 a b",
        "COMMAND GETKEYS ZINTERCARD 2 a LIMIT",
        "COMMAND GETKEYS ZUNIONSTORE d 2 a",
        "COMMAND GETKEYS ZUNIONSTORE d 3 a b",
        "COMMAND GETKEYS ZINTERSTORE d 0 a",
        "COMMAND GETKEYS ZDIFFSTORE d 2 a",
        "COMMAND GETKEYS ZDIFFSTORE d x a",
        // A numkeys that string2ll refuses goes through Redis's getkeys callback: atoi, and
        // the destination last.
        "COMMAND GETKEYS ZUNIONSTORE d +1 a",
        "COMMAND GETKEYS ZINTERSTORE d 01 a b",
        "COMMAND GETKEYS ZDIFFSTORE d 1.9 a",
        "COMMAND GETKEYS ZUNION 1x a",
        "COMMAND GETKEYS ZMPOP 01 a MIN",
        "COMMAND GETKEYS ZDIFF 4294967297 a",
        "COMMAND GETKEYS ZDIFF 18446744073709551617 a",
        "COMMAND GETKEYS ZUNIONSTORE d 4294967297 a",
        "COMMAND GETKEYS ZUNIONSTORE d -4294967295 a",
        "COMMAND GETKEYS ZRANGESTORE d s 0 -1",
        "COMMAND GETKEYS ZADD k 1 a",
    ]);
}

// ---------------------------------------------------------------------------------------------
// Randomized sequences
// ---------------------------------------------------------------------------------------------

/// Keys written with any scores.
const KEYS: &[&str] = &["{t}a", "{t}b", "{t}c", "{t}s"];
/// Keys whose members all have score 0, so lex ranges are well defined on both encodings.
const LEX_KEYS: &[&str] = &["{t}l1", "{t}l2"];

struct Gen {
    rng: SmallRng,
}

impl Gen {
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.rng.gen_range(0..from.len())]
    }

    fn key(&mut self) -> String {
        if self.rng.gen_bool(0.1) {
            self.pick(LEX_KEYS).into()
        } else {
            self.pick(KEYS).into()
        }
    }

    fn member(&mut self) -> String {
        let i = self.rng.gen_range(0..24);
        if i == 23 {
            // Longer than the value threshold set for the run.
            "a-member-longer-than-the-threshold".into()
        } else {
            format!("m{i}")
        }
    }

    fn score(&mut self) -> String {
        match self.rng.gen_range(0..12) {
            0 => "inf".into(),
            1 => "-inf".into(),
            2 => "-0".into(),
            3 => "0.1".into(),
            4 => "1e-3".into(),
            5 => format!("{}.5", self.rng.gen_range(-5..5)),
            _ => self.rng.gen_range(-6..7).to_string(),
        }
    }

    fn bound(&mut self) -> String {
        let s = match self.rng.gen_range(0..8) {
            0 => "-inf".into(),
            1 => "+inf".into(),
            _ => self.rng.gen_range(-6..7).to_string(),
        };
        if self.rng.gen_bool(0.3) {
            format!("({s}")
        } else {
            s
        }
    }

    fn lex_bound(&mut self) -> String {
        match self.rng.gen_range(0..8) {
            0 => "-".into(),
            1 => "+".into(),
            2..=4 => format!("[{}", self.member()),
            _ => format!("({}", self.member()),
        }
    }

    fn index(&mut self) -> String {
        self.rng.gen_range(-8..9).to_string()
    }

    fn limit(&mut self, line: &mut String) {
        if self.rng.gen_bool(0.3) {
            let off = self.rng.gen_range(-1..5);
            let cnt = self.rng.gen_range(-1..5);
            line.push_str(&format!(" LIMIT {off} {cnt}"));
        }
    }

    fn withscores(&mut self, line: &mut String) {
        if self.rng.gen_bool(0.5) {
            line.push_str(" WITHSCORES");
        }
    }

    /// One command line and how to compare its reply.
    fn command(&mut self) -> (String, Norm) {
        let k = self.key();
        let general = self.pick(KEYS);
        let lex = self.pick(LEX_KEYS);
        let mut norm = Norm::Exact;
        let line = match self.rng.gen_range(0..100) {
            0..=17 => {
                let mut l = format!("ZADD {general}");
                for opt in ["NX", "XX", "GT", "LT", "CH", "INCR"] {
                    if self.rng.gen_bool(0.08) {
                        l.push(' ');
                        l.push_str(opt);
                    }
                }
                for _ in 0..self.rng.gen_range(1..4) {
                    let (s, m) = (self.score(), self.member());
                    l.push_str(&format!(" {s} {m}"));
                }
                l
            }
            18..=23 => {
                let mut l = format!("ZADD {lex}");
                for _ in 0..self.rng.gen_range(1..4) {
                    let m = self.member();
                    l.push_str(&format!(" 0 {m}"));
                }
                l
            }
            24..=27 => format!("ZINCRBY {general} {} {}", self.score(), self.member()),
            28..=31 => {
                let (m1, m2) = (self.member(), self.member());
                format!("ZREM {k} {m1} {m2}")
            }
            32 => format!("ZCARD {k}"),
            33 => format!("ZSCORE {k} {}", self.member()),
            34 => format!("ZMSCORE {k} {} {}", self.member(), self.member()),
            35 => format!("ZRANK {k} {}", self.member()),
            36 => format!("ZREVRANK {k} {}", self.member()),
            37..=38 => format!("ZCOUNT {k} {} {}", self.bound(), self.bound()),
            39..=42 => {
                let mut l = format!("ZRANGE {k} {} {}", self.index(), self.index());
                if self.rng.gen_bool(0.3) {
                    l.push_str(" REV");
                }
                self.withscores(&mut l);
                l
            }
            43..=46 => {
                let mut l = format!("ZRANGEBYSCORE {k} {} {}", self.bound(), self.bound());
                self.withscores(&mut l);
                self.limit(&mut l);
                l
            }
            47..=48 => {
                let mut l = format!("ZREVRANGEBYSCORE {k} {} {}", self.bound(), self.bound());
                self.withscores(&mut l);
                self.limit(&mut l);
                l
            }
            49..=50 => {
                let mut l = format!("ZRANGE {k} {} {} BYSCORE", self.bound(), self.bound());
                if self.rng.gen_bool(0.5) {
                    l.push_str(" REV");
                }
                self.withscores(&mut l);
                self.limit(&mut l);
                l
            }
            51..=53 => {
                let mut l = format!(
                    "ZRANGEBYLEX {lex} {} {}",
                    self.lex_bound(),
                    self.lex_bound()
                );
                self.limit(&mut l);
                l
            }
            54 => {
                let mut l = format!(
                    "ZREVRANGEBYLEX {lex} {} {}",
                    self.lex_bound(),
                    self.lex_bound()
                );
                self.limit(&mut l);
                l
            }
            55 => format!("ZLEXCOUNT {lex} {} {}", self.lex_bound(), self.lex_bound()),
            56 => format!(
                "ZREMRANGEBYLEX {lex} {} {}",
                self.lex_bound(),
                self.lex_bound()
            ),
            57 => format!("ZREVRANGE {k} {} {} WITHSCORES", self.index(), self.index()),
            58..=59 => format!("ZREMRANGEBYRANK {k} {} {}", self.index(), self.index()),
            60..=61 => format!(
                "ZREMRANGEBYSCORE {general} {} {}",
                self.bound(),
                self.bound()
            ),
            62..=63 => {
                let c = self.rng.gen_range(0..4);
                let cmd = if self.rng.gen_bool(0.5) {
                    "ZPOPMIN"
                } else {
                    "ZPOPMAX"
                };
                if c == 0 {
                    format!("{cmd} {k}")
                } else {
                    format!("{cmd} {k} {}", c - 1)
                }
            }
            64..=65 => {
                let (a, b) = (self.key(), self.key());
                let w = if self.rng.gen_bool(0.5) { "MIN" } else { "MAX" };
                let mut l = format!("ZMPOP 2 {a} {b} {w}");
                if self.rng.gen_bool(0.5) {
                    l.push_str(&format!(" COUNT {}", self.rng.gen_range(1..5)));
                }
                l
            }
            66 => {
                // Whole set in order (count >= size) is deterministic; smaller counts are not.
                let c = self.rng.gen_range(-3..40);
                if c < 25 {
                    norm = Norm::Shape;
                }
                let mut l = format!("ZRANDMEMBER {k} {c}");
                self.withscores(&mut l);
                l
            }
            67..=71 => {
                let op = self.pick(&["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]);
                let (a, b) = (self.key(), self.key());
                let mut l = format!("{op} {general} 2 {a} {b}");
                if op != "ZDIFFSTORE" {
                    if self.rng.gen_bool(0.3) {
                        l.push_str(&format!(" WEIGHTS {} {}", self.score(), self.score()));
                    }
                    if self.rng.gen_bool(0.3) {
                        l.push_str(&format!(" AGGREGATE {}", self.pick(&["SUM", "MIN", "MAX"])));
                    }
                }
                l
            }
            72..=75 => {
                let op = self.pick(&["ZUNION", "ZINTER", "ZDIFF"]);
                let (a, b, c) = (self.key(), self.key(), self.key());
                let mut l = format!("{op} 3 {a} {b} {c}");
                if op != "ZDIFF" && self.rng.gen_bool(0.3) {
                    l.push_str(&format!(
                        " WEIGHTS {} {} {}",
                        self.score(),
                        self.score(),
                        self.score()
                    ));
                }
                if op != "ZDIFF" && self.rng.gen_bool(0.3) {
                    l.push_str(&format!(" AGGREGATE {}", self.pick(&["SUM", "MIN", "MAX"])));
                }
                self.withscores(&mut l);
                l
            }
            76 => format!(
                "ZINTERCARD 2 {} {} LIMIT {}",
                self.key(),
                self.key(),
                self.rng.gen_range(0..3)
            ),
            77..=79 => {
                let src = self.key();
                let mut l = format!("ZRANGESTORE {general} {src}");
                match self.rng.gen_range(0..3) {
                    0 => l.push_str(&format!(" {} {}", self.index(), self.index())),
                    1 => {
                        l.push_str(&format!(" {} {} BYSCORE", self.bound(), self.bound()));
                        self.limit(&mut l);
                    }
                    _ => {
                        l.push_str(&format!(" {} {}", self.index(), self.index()));
                        l.push_str(" REV");
                    }
                }
                l
            }
            80..=81 => format!("ZRANGESTORE {lex} {lex} {} {}", self.index(), self.index()),
            82..=84 => format!("OBJECT ENCODING {k}"),
            85 => format!("TYPE {k}"),
            86 => format!("DEL {k}"),
            87 => format!("EXPIRE {k} {}", self.pick(&["0", "100"])),
            88 => format!("PERSIST {k}"),
            89 => "SET {t}s str".into(),
            90 => format!("ZSCAN {k} 0 COUNT 100"),
            91 => "ZRANGESTORE {t}l2 {t}l1 0 -1".into(),
            92 => format!("COPY {k} {general} REPLACE"),
            93 => format!("EXISTS {k}"),
            _ => format!("ZRANGE {k} 0 -1 WITHSCORES"),
        };
        (line, norm)
    }
}

/// A listpack ZSCAN returns everything in order; a skiplist's order depends on its hash table,
/// so its reply is compared sorted (pairs kept together by the full-iteration helper instead).
fn run_random(seed: u64, steps: usize, resp3: bool) {
    let name = format!("randomized_sequences{}", if resp3 { "_resp3" } else { "" });
    let Some(mut d) = Diff::new(&name) else {
        return;
    };
    d.seed = Some(seed);
    d.seed_env = if resp3 {
        "ZSET_RESP3_SEEDS"
    } else {
        "ZSET_SEEDS"
    };
    d.section(&format!("seed {seed}"));
    if resp3 {
        d.s_norm("HELLO 3", Norm::Hello);
    }
    // Small thresholds so both encodings and the conversions are exercised.
    d.s("CONFIG SET zset-max-listpack-entries 6");
    d.s("CONFIG SET zset-max-listpack-value 16");
    let mut g = Gen {
        rng: SmallRng::seed_from_u64(seed),
    };
    for i in 0..steps {
        d.gen_step = Some(i);
        let (line, mut norm) = g.command();
        if line.starts_with("ZSCAN") {
            // One COUNT 100 step covers these small sets, but a skiplist's order is its own.
            norm = Norm::TypeOnly;
        }
        d.s_norm(&line, norm);
        if line.starts_with("ZSCAN") {
            let key = line.split(' ').nth(1).unwrap().to_string();
            zscan_all(&mut d, &key, &[]);
        }
        if (i + 1) % 50 == 0 {
            for k in KEYS.iter().chain(LEX_KEYS) {
                d.s(&format!("ZRANGE {k} 0 -1 WITHSCORES"));
                d.s(&format!("OBJECT ENCODING {k}"));
            }
        }
    }
}

#[test]
fn randomized_sequences() {
    for seed in env_list("ZSET_SEEDS", &[11, 12]) {
        run_random(seed, env_or("DIFF_STEPS", 2000), false);
    }
}

#[test]
fn randomized_sequences_resp3() {
    for seed in env_list("ZSET_RESP3_SEEDS", &[21]) {
        run_random(seed, env_or("DIFF_STEPS", 2000), true);
    }
}

/// A negative count whose reply Redis 7.0 would build without bound (it runs out of memory on
/// `ZRANDMEMBER k -9223372036854775807`, and on `-4611686018427387903 WITHSCORES`; no
/// reference to compare with): Tessera refuses it with the range error Redis gives for the
/// counts it checks, at once, and keeps serving.
#[test]
fn zrandmember_huge_negative_count_is_refused() {
    let srv = start_tessera(4, &[]);
    let mut c = srv.conn();
    c.cmd_str("ZADD z 1 a 2 b");
    for args in [
        "-9223372036854775807",
        "-4611686018427387903 WITHSCORES",
        "-50000001",
        "-50000001 WITHSCORES",
    ] {
        assert_eq!(
            c.cmd_str(&format!("ZRANDMEMBER z {args}")),
            b"-ERR value is out of range\r\n",
            "{args}"
        );
    }
    let v = resp_parse(&c.cmd_str("ZRANDMEMBER z -3 WITHSCORES"));
    assert_eq!(v.items().map(|i| i.len()), Some(6));
    assert_eq!(c.cmd_str("ZCARD z"), b":2\r\n");
}

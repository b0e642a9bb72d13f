//! Differential tests of keyspace and keyevent notifications (`notify-keyspace-events`)
//! against redis-server: the same commands on every server, then the complete stream of
//! messages each subscriber received, compared byte for byte.
//!
//! Two subscribers per server: a RESP2 one with `PSUBSCRIBE __key*__:*`, and a RESP3 one
//! (push frames) with exact keyspace/keyevent channels plus a keyevent pattern. Both also
//! subscribe to `__marker__`; a PUBLISH there after the commands tells when every notification
//! has arrived (a command's notifications are queued before its reply, so the marker comes
//! last). Commands are sent one at a time, so Redis's order is the order to reproduce, also
//! with 4 shards where keys, subscribers and the command connection sit on different shards.

use crate::common::*;

use std::time::{Duration, Instant};

/// Subscriber connections (indexes into every target's `conns`).
struct Subs {
    resp2: usize,
    resp3: usize,
}

fn subscribe(d: &mut Diff) -> Subs {
    let resp2 = d.open_conn();
    let resp3 = d.open_conn();
    d.each("subscribe the RESP2 subscriber", |t, _| {
        let c = &mut t.conns[resp2];
        let mut out = c.cmd_str("PSUBSCRIBE __key*__:*");
        out.extend(c.cmd_str("SUBSCRIBE __marker__"));
        out
    });
    d.each("subscribe the RESP3 subscriber", |t, _| {
        let c = &mut t.conns[resp3];
        c.cmd_str("HELLO 3");
        let mut out = Vec::new();
        send_line(
            c,
            "SUBSCRIBE __keyevent@0__:del __keyspace@0__:k1 __keyevent@1__:new __marker__",
        );
        for _ in 0..4 {
            out.extend(c.read_reply());
        }
        out.extend(c.cmd_str("PSUBSCRIBE __keyevent@*__:*"));
        out
    });
    Subs { resp2, resp3 }
}

/// Compares what both subscribers received since the last check.
fn check_received(d: &mut Diff, subs: &Subs, what: &str) {
    d.use_conn(0);
    d.s("PUBLISH __marker__ end");
    let (r2, r3) = (subs.resp2, subs.resp3);
    d.each(&format!("{what}: RESP2 subscriber transcript"), |t, _| {
        read_until_marker(&mut t.conns[r2])
    });
    d.each(&format!("{what}: RESP3 subscriber transcript"), |t, _| {
        read_until_marker(&mut t.conns[r3])
    });
}

/// Runs `cmds` (one at a time, replies compared) with `notify-keyspace-events` set to each of
/// `flag_sets` in turn, from an empty keyspace, and compares the notifications. A line
/// `sleep N` waits N milliseconds.
fn run(d: &mut Diff, subs: &Subs, section: &str, flag_sets: &[&str], cmds: &[&str]) {
    for flags in flag_sets {
        d.section(&format!("{section} [{flags}]"));
        d.use_conn(0);
        d.s("SELECT 0");
        d.s("FLUSHALL");
        let set = if flags.is_empty() { "''" } else { flags };
        d.s(&format!("CONFIG SET notify-keyspace-events {set}"));
        for c in cmds {
            if let Some(ms) = c.strip_prefix("sleep ") {
                std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
                continue;
            }
            d.s(c);
        }
        d.s("CONFIG SET notify-keyspace-events ''");
        check_received(d, subs, section);
    }
}

fn diff(test: &str) -> Option<(Diff, Subs)> {
    let mut d = Diff::new(test)?;
    let subs = subscribe(&mut d);
    Some((d, subs))
}

#[test]
fn notify_config_flags_like_redis() {
    let Some(mut d) = Diff::new("notify_config_flags_like_redis") else {
        return;
    };
    for flags in [
        "KEA", "KEAnm", "AKE", "gxE", "K", "E", "A", "Elg$", "mnK", "KA$", "Ex", "KEtd", "''",
    ] {
        d.s(&format!("CONFIG SET notify-keyspace-events {flags}"));
        d.s("CONFIG GET notify-keyspace-events");
    }
    d.script(&[
        "CONFIG SET notify-keyspace-events KEQ",
        "CONFIG SET notify-keyspace-events k",
        "CONFIG GET notify-keyspace-events",
        "CONFIG SET notify-keyspace-events Kgl maxmemory-samples 0",
        "CONFIG GET notify-keyspace-events",
    ]);
}

#[test]
fn notify_off_publishes_nothing() {
    let Some((mut d, subs)) = diff("notify_off_publishes_nothing") else {
        return;
    };
    let cmds = [
        "SET k1 v",
        "LPUSH l a",
        "GET nokey",
        "DEL k1 l",
        "HSET h f v",
        "EXPIRE h 0",
    ];
    run(
        &mut d,
        &subs,
        "off",
        &["", "K", "E", "g$lshzxe", "KE"],
        &cmds,
    );
}

const STRINGS: &[&str] = &[
    "SET k1 v",
    "SET k1 v2 XX",
    "SET k1 v3 NX",
    "SET s2 v EX 100",
    "SET s2 v KEEPTTL",
    "SET s3 v PX 100000 GET",
    "SET k1 x GET",
    "SET s9 x XX",
    "SET k1 v EX 0",
    "SETNX k1 y",
    "SETNX s4 y",
    "SETEX s5 100 v",
    "PSETEX s6 100000 v",
    "SETEX s5 0 v",
    "GETSET k1 z",
    "GETSET snew z",
    "GETDEL k1",
    "GETDEL nokey",
    "GETEX s4 EX 100",
    "GETEX s4 PERSIST",
    "GETEX s4 PERSIST",
    "GETEX s4",
    "GETEX s4 PXAT 1",
    "GETEX nokey EX 10",
    "MSET m1 1 m2 2 m3 3 a 1 b 2 c 3",
    "MSETNX m1 1 m4 4",
    "MSETNX m5 5 m6 6 d 4",
    "APPEND a1 x",
    "APPEND a1 y",
    "INCR i1",
    "INCRBY i1 5",
    "DECR i1",
    "DECRBY i1 2",
    "INCRBYFLOAT f1 1.5",
    "INCRBYFLOAT f1 x",
    "INCR s5",
    "SETRANGE r1 5 xx",
    "SETRANGE r1 0 ''",
    "SETRANGE r2 0 ''",
    "SETRANGE r1 -1 x",
    "GET nokey",
    "STRLEN nokey",
    "GETRANGE nokey 0 1",
    "SUBSTR nokey 0 1",
    "MGET nokey s2 nokey2",
    "LCS s2 nokey",
    "SET s7 v EXAT 1",
    "GET s7",
    "LPUSH l1 x",
    "SET l1 v XX GET",
    "APPEND l1 x",
    "INCR l1",
    "GET l1",
];

#[test]
fn notify_strings() {
    let Some((mut d, subs)) = diff("notify_strings") else {
        return;
    };
    run(
        &mut d,
        &subs,
        "strings",
        &["KEAnm", "K$", "Eg", "En", "Em"],
        STRINGS,
    );
}

const KEYS: &[&str] = &[
    "SET k1 v",
    "SET k2 v",
    "DEL k1 k2 nokey",
    "DEL nokey",
    "SET k1 v",
    "UNLINK k1 nokey",
    "SET k1 v",
    "SET a v",
    "SET b v",
    "SET c v",
    "DEL c nokey b a",
    "EXPIRE k1 100",
    "EXPIRE k1 100 NX",
    "EXPIRE k1 200 GT",
    "PEXPIRE k1 100000 LT",
    "EXPIRE k1 abc",
    "EXPIREAT k1 1",
    "SET k1 v",
    "PEXPIREAT k1 99999999999999",
    "PEXPIRE k1 -5",
    "SET k1 v",
    "EXPIRE k1 100",
    "PERSIST k1",
    "PERSIST k1",
    "PERSIST nokey",
    "EXPIRE nokey 10",
    "TTL nokey",
    "PTTL nokey",
    "EXPIRETIME nokey",
    "PEXPIRETIME nokey",
    "TYPE nokey",
    "EXISTS nokey k1",
    "TOUCH nokey k1",
    "OBJECT ENCODING nokey",
    "OBJECT FREQ nokey",
    "RENAME k1 k2",
    "SET k1 x",
    "RENAME k1 k2",
    "RENAMENX k2 k1",
    "SET k1 y",
    "RENAMENX k1 k2",
    "RENAME nokey k3",
    "RENAME k2 k2",
    "RENAMENX k2 k2",
    "SET x1 v EX 100",
    "RENAME x1 x2",
    "COPY k2 k3",
    "COPY k2 k3",
    "COPY k2 k3 REPLACE",
    "COPY k2 k4 DB 1",
    "COPY nokey k5",
    "COPY k2 k2",
    "MOVE k3 1",
    "MOVE k4 1",
    "MOVE k2 1",
    "MOVE nokey 1",
    "MOVE k1 0",
    "SET k5 v EX 100",
    "MOVE k5 1",
    "SELECT 1",
    "DEL k5 k4",
    "SET k6 v",
    "SELECT 0",
    "SWAPDB 0 1",
    "DEL k6",
    "FLUSHDB",
    "SET k7 v",
    "FLUSHALL",
    "RANDOMKEY",
    "DBSIZE",
];

#[test]
fn notify_keys() {
    let Some((mut d, subs)) = diff("notify_keys") else {
        return;
    };
    run(
        &mut d,
        &subs,
        "keys",
        &["KEAnm", "Kg", "E$", "En", "Em"],
        KEYS,
    );
}

const HASHES: &[&str] = &[
    "HSET h f v f2 v2",
    "HSET h f v",
    "HSET h f",
    "HMSET h f3 v3",
    "HSETNX h f x",
    "HSETNX h f4 x",
    "HSETNX h2 f x",
    "HDEL h nofield",
    "HDEL nokey f",
    "HDEL h f f2",
    "HDEL h f3 f4 f5",
    "HINCRBY h3 n 5",
    "HINCRBYFLOAT h3 x 1.5",
    "HINCRBY h3 x 1",
    "HINCRBYFLOAT h3 n abc",
    "HGET nokey f",
    "HGET h3 nofield",
    "HMGET nokey f",
    "HGETALL nokey",
    "HKEYS nokey",
    "HVALS nokey",
    "HLEN nokey",
    "HEXISTS nokey f",
    "HSTRLEN nokey f",
    "HRANDFIELD nokey",
    "HSCAN nokey 0",
    "SET s v",
    "HSET s f v",
    "HDEL s f",
    "HINCRBY s f 1",
];

#[test]
fn notify_hashes() {
    let Some((mut d, subs)) = diff("notify_hashes") else {
        return;
    };
    run(
        &mut d,
        &subs,
        "hashes",
        &["KEAnm", "Kh", "Eg", "En"],
        HASHES,
    );
}

const LISTS: &[&str] = &[
    "LPUSH l a b c",
    "RPUSH l d",
    "LPUSHX nol x",
    "RPUSHX nol x",
    "RPUSHX l e",
    "LPUSHX l f",
    "LPOP l",
    "RPOP l 2",
    "LPOP l 0",
    "LPOP nol",
    "RPOP nol 3",
    "LSET l 0 X",
    "LSET l 99 X",
    "LSET nol 0 X",
    "LINSERT l BEFORE X Y",
    "LINSERT l BEFORE nope Y",
    "LINSERT nol BEFORE X Y",
    "LREM l 0 Y",
    "LREM l 0 nope",
    "LTRIM l 0 0",
    "LTRIM l 5 10",
    "LTRIM nol 0 1",
    "RPUSH l2 a b",
    "LMOVE l2 l3 LEFT RIGHT",
    "RPOPLPUSH l2 l3",
    "LMOVE l3 l3 LEFT RIGHT",
    "RPOPLPUSH nol l3",
    "RPUSH l4 1 2 3",
    "LMPOP 2 nol l4 LEFT COUNT 2",
    "LMPOP 1 l4 RIGHT",
    "LMPOP 1 nol RIGHT",
    "RPUSH l5 a",
    "BLPOP nol l5 0",
    "RPUSH l5 a b",
    "BRPOP l5 0",
    "BLMOVE l5 l6 LEFT LEFT 0",
    "BRPOPLPUSH l6 l7 0",
    "RPUSH l8 x y",
    "BLMPOP 0 2 nol l8 RIGHT COUNT 5",
    "LREM l7 0 a",
    "RPUSH q1 a",
    "LMOVE q1 q2 RIGHT LEFT",
    "LRANGE nol 0 -1",
    "LLEN nol",
    "LINDEX nol 0",
    "LPOS nol x",
    "SET s v",
    "LPUSH s x",
    "LPOP s",
    "LMOVE l7 s LEFT LEFT",
    "RPOPLPUSH s l7",
];

#[test]
fn notify_lists() {
    let Some((mut d, subs)) = diff("notify_lists") else {
        return;
    };
    run(&mut d, &subs, "lists", &["KEAnm", "Kl", "Eg", "En"], LISTS);
}

const SETS: &[&str] = &[
    "SADD s a b c",
    "SADD s a",
    "SREM s nope",
    "SREM nokey a",
    "SREM s a",
    "SADD one x",
    "SPOP one",
    "SPOP nokey",
    "SADD s2 1 2 3",
    "SPOP s2 0",
    "SPOP s2 5",
    "SPOP nokey 2",
    "SADD s3 a b",
    "SADD s4 b",
    "SMOVE s3 s4 b",
    "SMOVE s3 s4 nope",
    "SMOVE s3 s5 a",
    "SMOVE s4 s4 b",
    "SMOVE nokey s4 b",
    "SADD s6 x y z",
    "SADD s7 y z w",
    "SINTERSTORE d s6 s7",
    "SUNIONSTORE d s6 s7",
    "SDIFFSTORE d s6 s7",
    "SDIFFSTORE d s6 s6",
    "SINTERSTORE d2 nokey s6",
    "SADD d2 q",
    "SINTERSTORE d2 nokey s6",
    "SUNIONSTORE d3 nokey",
    "SMEMBERS nokey",
    "SISMEMBER nokey x",
    "SMISMEMBER nokey x",
    "SCARD nokey",
    "SRANDMEMBER nokey",
    "SINTER nokey s6",
    "SUNION nokey",
    "SDIFF nokey s6",
    "SINTERCARD 1 nokey",
    "SSCAN nokey 0",
    "SET str v",
    "SADD str x",
    "SREM str x",
    "SPOP str",
    "SINTERSTORE d4 str",
];

#[test]
fn notify_sets() {
    let Some((mut d, subs)) = diff("notify_sets") else {
        return;
    };
    run(
        &mut d,
        &subs,
        "sets",
        &["KEAnm", "Ks", "Eg", "En", "Em"],
        SETS,
    );
    // A random pop that leaves members behind: which member is random, the events are not.
    d.section("sets: partial SPOP");
    d.use_conn(0);
    d.s("FLUSHALL");
    d.s("CONFIG SET notify-keyspace-events KEA");
    d.s("SADD s 1 2 3 4");
    d.s_norm("SPOP s", Norm::Shape);
    d.s_norm("SPOP s 2", Norm::Shape);
    d.s("SCARD s");
    d.s("CONFIG SET notify-keyspace-events ''");
    check_received(&mut d, &subs, "partial SPOP");
}

const ZSETS: &[&str] = &[
    "ZADD z 1 a 2 b",
    "ZADD z 1 a",
    "ZADD z NX 5 a",
    "ZADD z XX 5 a",
    "ZADD z CH 6 a",
    "ZADD z INCR 1 a",
    "ZADD z GT 1 a",
    "ZADD z XX INCR 1 nope",
    "ZINCRBY z 1 b",
    "ZADD nz XX 1 a",
    "ZADD z 1",
    "ZADD z nan a",
    "ZREM z nope",
    "ZREM nokey a",
    "ZREM z a b",
    "ZADD z2 1 a 2 b 3 c 4 d 5 e",
    "ZREMRANGEBYRANK z2 0 0",
    "ZREMRANGEBYSCORE z2 2 2",
    "ZREMRANGEBYLEX z2 [d [d",
    "ZREMRANGEBYSCORE z2 100 200",
    "ZREMRANGEBYRANK nokey 0 1",
    "ZPOPMIN z2",
    "ZPOPMIN z2 0",
    "ZPOPMAX z2 5",
    "ZPOPMIN nokey",
    "ZADD z3 1 a 2 b",
    "ZMPOP 2 nokey z3 MIN COUNT 1",
    "ZADD z4 1 a 2 b 3 c",
    "ZREMRANGEBYRANK z4 0 -1",
    "ZADD z5 1 a",
    "ZUNIONSTORE d 2 z3 nokey",
    "ZINTERSTORE d 2 z3 nokey",
    "ZDIFFSTORE d 1 z3",
    "ZRANGESTORE d2 z3 0 -1",
    "ZRANGESTORE d2 z3 5 10",
    "ZRANGESTORE d2 z3 0 -1",
    "ZRANGESTORE d2 nokey 0 -1",
    "ZUNIONSTORE d3 1 nokey",
    "BZPOPMIN z3 0",
    "ZADD z6 1 a 2 b",
    "BZPOPMAX nokey z6 0",
    "BZMPOP 0 1 z6 MIN COUNT 3",
    "ZSCORE nokey a",
    "ZRANGE nokey 0 -1",
    "ZCARD nokey",
    "ZRANK nokey a",
    "ZCOUNT nokey 0 1",
    "ZLEXCOUNT nokey - +",
    "ZMSCORE nokey a",
    "ZRANDMEMBER nokey",
    "ZUNION 1 nokey",
    "ZINTER 2 nokey z5",
    "ZDIFF 1 nokey",
    "ZINTERCARD 1 nokey",
    "ZSCAN nokey 0",
    "SET str v",
    "ZADD str 1 a",
    "ZPOPMIN str",
    "ZUNIONSTORE d 1 str",
];

#[test]
fn notify_zsets() {
    let Some((mut d, subs)) = diff("notify_zsets") else {
        return;
    };
    run(
        &mut d,
        &subs,
        "zsets",
        &["KEAnm", "Kz", "Eg", "En", "Em"],
        ZSETS,
    );
}

const SORTS: &[&str] = &[
    "RPUSH sl 3 1 2",
    "SORT sl STORE sd",
    "SORT sl LIMIT 0 0 STORE sd",
    "SORT nokey STORE sd",
    "SORT sl",
    "SORT nokey",
    "SORT_RO nokey",
    "SET w_1 3",
    "SET w_2 1",
    "SET o_2 two",
    "SET o_1 one",
    "SORT sl BY w_* GET o_* STORE sd2",
    "SORT sl BY nosort STORE sd2",
    "SET s v",
    "SORT s STORE sd",
];

#[test]
fn notify_sort() {
    let Some((mut d, subs)) = diff("notify_sort") else {
        return;
    };
    run(&mut d, &subs, "sort", &["KEAnm", "Kl", "Eg", "Em"], SORTS);
}

/// Deadlines are 20 ms away, not 1: Redis reads the clock twice in PEXPIRE (the base time,
/// then the "already expired?" check), so a millisecond that ends between the two, likelier
/// on a loaded machine, makes PEXPIRE 1 delete the key at once (a `del` event, no `expired`
/// later). That is Redis's timing, not a rule to compare; this test met it 2 times in 60 runs
/// beside a full suite run. Tessera reads the clock once per command.
const EXPIRY: &[&str] = &[
    "DEBUG SET-ACTIVE-EXPIRE 0",
    "SET e1 v PX 20",
    "SET e2 v PX 20",
    "HSET e3 f v",
    "PEXPIRE e3 20",
    "RPUSH e4 a",
    "PEXPIRE e4 20",
    "SET e5 v PX 20",
    "SET e6 v PX 20",
    "SADD e7 a",
    "PEXPIRE e7 20",
    "sleep 60",
    "GET e1",
    "EXISTS e2",
    "HGET e3 f",
    "LPUSH e4 b",
    "SET e5 again",
    "TTL e6",
    "SMOVE e7 e8 a",
    "DEBUG SET-ACTIVE-EXPIRE 1",
];

#[test]
fn notify_expiry() {
    let Some((mut d, subs)) = diff("notify_expiry") else {
        return;
    };
    run(
        &mut d,
        &subs,
        "lazy expiry",
        &["KEAnm", "Ex", "Kx", "Eg"],
        EXPIRY,
    );

    // Active expiry: which key expires first depends on sampling, so the transcripts are
    // compared as sorted lists of messages.
    d.section("active expiry");
    d.use_conn(0);
    d.s("FLUSHALL");
    d.s("CONFIG SET notify-keyspace-events Ex");
    for i in 0..20 {
        d.s(&format!("SET ax{i} v PX 20"));
    }
    d.s("SET keep v");
    d.each("active expiry removes every volatile key", |t, active| {
        let c = &mut t.conns[active];
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.cmd_str("DBSIZE") != b":1\r\n" {
            assert!(Instant::now() < deadline, "{}: keys did not expire", t.name);
            std::thread::sleep(Duration::from_millis(20));
        }
        b"done".to_vec()
    });
    d.s("CONFIG SET notify-keyspace-events ''");
    d.s("PUBLISH __marker__ end");
    let r2 = subs.resp2;
    d.each("active expiry: RESP2 messages, sorted", |t, _| {
        let raw = read_until_marker(&mut t.conns[r2]);
        let mut frames = Vec::new();
        let mut pos = 0;
        while let Ok(Some((v, end))) = parse_frame(&raw, pos) {
            frames.push(render(&v));
            pos = end;
        }
        frames.sort();
        frames.join("\n").into_bytes()
    });
    let r3 = subs.resp3;
    d.each("drain the RESP3 subscriber", |t, _| {
        read_until_marker(&mut t.conns[r3]);
        Vec::new()
    });
}

#[test]
fn notify_multi_exec_and_scripts() {
    let Some((mut d, subs)) = diff("notify_multi_exec_and_scripts") else {
        return;
    };
    let cmds = [
        "MULTI",
        "SET t1 v",
        "LPUSH t2 a",
        "DEL t1 t3",
        "INCR t2",
        "SADD t3 x",
        "RENAME t3 t4",
        "EXEC",
        "MULTI",
        "SET t5 v",
        "NOSUCHCOMMAND",
        "EXEC",
        "MULTI",
        "SET a 1",
        "SET b 2",
        "MSET c 3 d 4",
        "EXEC",
        "RENAME a b",
        "RENAME c e",
        "MSET x 1 y 2 z 3",
        "DEL x y z nokey",
        "SET x 1",
        "SET y 1",
        "UNLINK y x",
        "SET x 1",
        "EXISTS nokey1 nokey2 x",
        "TOUCH nokey1 x nokey2",
        "MGET nokey1 x nokey2",
        "SUNIONSTORE su nokey1 nokey2",
        "LPUSH ls a",
        "LMOVE ls ld LEFT LEFT",
    ];
    run(&mut d, &subs, "multi", &["KEAnm", "Kg", "Em"], &cmds);

    d.section("scripts");
    for flags in ["KEAnm", "E$"] {
        d.use_conn(0);
        d.s("FLUSHALL");
        d.s(&format!("CONFIG SET notify-keyspace-events {flags}"));
        let scripts: &[(&str, &[&str])] = &[
            (
                "redis.call('set',KEYS[1],'v'); redis.call('lpush',KEYS[2],'x'); redis.call('del',KEYS[1]); return 1",
                &["ev1", "ev2"],
            ),
            (
                "redis.call('set',KEYS[1],'v'); return redis.call('lpush',KEYS[1],'x')",
                &["ev3"],
            ),
            (
                "redis.call('set','undeclared1','v'); redis.call('set','undeclared2','v'); redis.call('incr','undeclared3'); return redis.call('get','nokey')",
                &[],
            ),
            (
                "redis.call('set','undeclared1','w'); redis.call('set','undeclared2','w'); redis.call('incr','undeclared3'); return 2",
                &[],
            ),
            ("return redis.pcall('hget',KEYS[1],'f')", &["nokey"]),
        ];
        for (body, keys) in scripts {
            let n = keys.len().to_string();
            let mut args: Vec<&[u8]> = vec![b"EVAL", body.as_bytes(), n.as_bytes()];
            args.extend(keys.iter().map(|k| k.as_bytes()));
            d.cmd(&args);
        }
        d.s("CONFIG SET notify-keyspace-events ''");
        check_received(&mut d, &subs, "scripts");
    }
}

/// A blocked client served by a push: the pusher's events, then the pop's.
#[test]
fn notify_blocking_pops_when_served() {
    let Some((mut d, subs)) = diff("notify_blocking_pops_when_served") else {
        return;
    };
    let blocker = d.open_conn();
    for (block, feed) in [
        ("BLPOP bl1 0", "RPUSH bl1 a"),
        ("BLMOVE bl2 bl3 RIGHT LEFT 0", "LPUSH bl2 a b"),
        ("BZPOPMIN bz1 0", "ZADD bz1 1 a"),
        ("BLMPOP 0 1 bl4 LEFT COUNT 3", "RPUSH bl4 a b"),
        // Keys on different shards (with 4): the waiter retries as a multi-shard transaction.
        ("BLPOP a b c 0", "RPUSH c x"),
        ("BLMOVE c a LEFT LEFT 0", "RPUSH c y z"),
    ] {
        d.section(block);
        d.use_conn(0);
        d.s("FLUSHALL");
        d.s("CONFIG SET notify-keyspace-events KEAn");
        d.each(&format!("send {block}"), |t, _| {
            send_line(&mut t.conns[blocker], block);
            let c = &mut t.conns[0];
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let info = c.cmd_str("INFO clients");
                if String::from_utf8_lossy(&info).contains("blocked_clients:1") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{}: client never blocked",
                    t.name
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            Vec::new()
        });
        d.s(feed);
        d.each("blocked client's reply", |t, _| {
            t.conns[blocker].read_reply()
        });
        d.s("CONFIG SET notify-keyspace-events ''");
        check_received(&mut d, &subs, block);
    }
}

/// Eviction is not deterministic (which keys, and how many, depends on memory figures), so
/// each server is checked on its own: every evicted key was one of ours and is gone, every key
/// gone was announced, once.
#[test]
fn notify_evicted_keys() {
    let Some(redis) = start_redis() else {
        return;
    };
    let tessera = [start_tessera(1, &[]), start_tessera(4, &[])];
    for server in std::iter::once(&redis).chain(tessera.iter()) {
        let mut c = server.conn();
        let mut sub = server.conn();
        sub.cmd_str("PSUBSCRIBE __keyevent@*__:evicted");
        sub.cmd_str("SUBSCRIBE __marker__");
        c.cmd_str("CONFIG SET notify-keyspace-events Ee");
        let value = "x".repeat(1000);
        for i in 0..400 {
            c.cmd(&[b"SET", format!("ev{i}").as_bytes(), value.as_bytes()]);
        }
        // Tessera's eviction counts the process overhead (buffers, connections) as an average
        // of its last 8 cron samples, so right after startup it lags the `used_memory` read
        // below by about as much as the margin; a second of cron ticks lets it catch up.
        std::thread::sleep(std::time::Duration::from_millis(1000));
        let used = c.cmd_str("INFO memory");
        let used = String::from_utf8_lossy(&used)
            .lines()
            .find_map(|l| {
                l.strip_prefix("used_memory:")
                    .map(|v| v.trim().parse::<u64>())
            })
            .unwrap()
            .unwrap();
        c.cmd_str("CONFIG SET maxmemory-policy allkeys-random");
        c.cmd(&[
            b"CONFIG",
            b"SET",
            b"maxmemory",
            (used - 200_000).to_string().as_bytes(),
        ]);
        c.cmd_str("SET trigger v");
        c.cmd_str("CONFIG SET maxmemory 0");
        c.cmd_str("CONFIG SET notify-keyspace-events ''");
        c.cmd_str("PUBLISH __marker__ end");
        let raw = read_until_marker(&mut sub);
        let mut evicted = Vec::new();
        let mut pos = 0;
        while let Ok(Some((v, end))) = parse_frame(&raw, pos) {
            pos = end;
            let items = v.items().cloned().unwrap_or_default();
            if items.len() == 4 {
                assert_eq!(items[2].as_bytes(), Some(&b"__keyevent@0__:evicted"[..]));
                evicted.push(String::from_utf8(items[3].as_bytes().unwrap().to_vec()).unwrap());
            }
        }
        assert!(!evicted.is_empty(), "port {}: nothing evicted", server.port);
        let mut distinct = evicted.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), evicted.len(), "a key announced twice");
        let mut missing = Vec::new();
        for i in 0..400 {
            let k = format!("ev{i}");
            if c.cmd(&[b"EXISTS", k.as_bytes()]) == b":0\r\n" {
                missing.push(k);
            }
        }
        if c.cmd_str("EXISTS trigger") == b":0\r\n" {
            missing.push("trigger".into());
        }
        missing.sort();
        assert_eq!(
            distinct, missing,
            "port {}: evicted events vs keys gone",
            server.port
        );
    }
}

/// A seeded random mix of write and read commands of every family over a few keys (spread
/// over the shards), with every notification class on; replies compared at each step, the
/// subscribers' transcripts every 100 steps.
#[test]
fn notify_random_sequence() {
    let Some((mut d, subs)) = diff("notify_random_sequence") else {
        return;
    };
    let seeds = env_list("DIFF_SEEDS", &[11u64, 12]);
    const TEMPLATES: &[&str] = &[
        "SET {k} {m}",
        "SET {k} {m} EX 100",
        "SET {k} {m} NX",
        "GET {k}",
        "GETDEL {k}",
        "INCR {k}",
        "APPEND {k} {m}",
        "MSET {k} {m} {k2} {m}",
        "DEL {k} {k2}",
        "UNLINK {k}",
        "EXISTS {k} {k2}",
        "TOUCH {k}",
        "TYPE {k}",
        "EXPIRE {k} 100",
        "EXPIRE {k} 0",
        "PERSIST {k}",
        "RENAME {k} {k2}",
        "RENAMENX {k} {k2}",
        "COPY {k} {k2} REPLACE",
        "LPUSH {k} {m}",
        "RPUSH {k} {m} {m}",
        "RPOP {k}",
        "LPOP {k} 2",
        "LMOVE {k} {k2} LEFT RIGHT",
        "LREM {k} 0 {m}",
        "LTRIM {k} 1 -1",
        "LRANGE {k} 0 -1",
        "SADD {k} {m}",
        "SREM {k} {m}",
        "SPOP {k} 100",
        "SMOVE {k} {k2} {m}",
        "SINTERSTORE {k} {k2} {k3}",
        "SUNIONSTORE {k} {k2} {k3}",
        "SMEMBERS {k}",
        "HSET {k} {m} {m}",
        "HDEL {k} {m}",
        "HINCRBY {k} n 1",
        "HGETALL {k}",
        "ZADD {k} 1 {m}",
        "ZINCRBY {k} 2 {m}",
        "ZREM {k} {m}",
        "ZPOPMIN {k}",
        "ZUNIONSTORE {k} 2 {k2} {k3}",
        "ZRANGESTORE {k} {k2} 0 1",
        "ZRANGE {k} 0 -1 WITHSCORES",
        "SORT {k} ALPHA STORE {k2}",
    ];
    const KEYS: &[&str] = &["a", "b", "c", "d", "e", "f"];
    const MEMBERS: &[&str] = &["x", "y", "z", "1", "2"];
    for seed in seeds {
        d.seed = Some(seed);
        d.section(&format!("random sequence, seed {seed}"));
        d.use_conn(0);
        d.s("FLUSHALL");
        d.s("CONFIG SET notify-keyspace-events KEAnm");
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as usize) % n
        };
        for step in 0..1000 {
            d.gen_step = Some(step);
            let t = TEMPLATES[next(TEMPLATES.len())];
            let line = t
                .replace("{k}", KEYS[next(KEYS.len())])
                .replace("{k2}", KEYS[next(KEYS.len())])
                .replace("{k3}", KEYS[next(KEYS.len())])
                .replace("{m}", MEMBERS[next(MEMBERS.len())]);
            // Small sets of strings reply in insertion order (see README): compare sorted.
            if line.starts_with("SPOP") || line.starts_with("SMEMBERS") {
                d.s_norm(&line, Norm::Sorted);
            } else {
                d.s(&line);
            }
            if step % 100 == 99 {
                check_received(&mut d, &subs, "random sequence");
            }
        }
        d.gen_step = None;
        d.s("CONFIG SET notify-keyspace-events ''");
        check_received(&mut d, &subs, "random sequence");
    }
}

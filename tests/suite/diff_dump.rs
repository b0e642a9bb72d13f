//! DUMP and RESTORE against Redis 7.0: payload bytes compared byte for byte wherever Redis's
//! bytes are deterministic, payloads moved across the two servers in both directions (contents
//! and OBJECT ENCODING compared), every RESTORE error, and mutated payloads.

use crate::common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn bulk_items(v: &Value) -> Vec<Vec<u8>> {
    v.items()
        .map(|i| {
            i.iter()
                .map(|x| x.as_bytes().unwrap_or_default().to_vec())
                .collect()
        })
        .unwrap_or_default()
}

/// A key's type and elements in a canonical order (sets and hashes sorted).
fn contents(c: &mut RawConn, key: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let t = resp_parse(&c.cmd(&[b"TYPE", key]))
        .as_bytes()
        .unwrap_or_default()
        .to_vec();
    let items = match &t[..] {
        b"string" => vec![resp_parse(&c.cmd(&[b"GET", key]))
            .as_bytes()
            .unwrap_or_default()
            .to_vec()],
        b"list" => bulk_items(&resp_parse(&c.cmd(&[b"LRANGE", key, b"0", b"-1"]))),
        b"set" => {
            let mut m = bulk_items(&resp_parse(&c.cmd(&[b"SMEMBERS", key])));
            m.sort();
            m
        }
        b"hash" => {
            let flat = bulk_items(&resp_parse(&c.cmd(&[b"HGETALL", key])));
            let mut m: Vec<Vec<u8>> = flat
                .chunks(2)
                .map(|p| [&p[0][..], b"\0", &p[1][..]].concat())
                .collect();
            m.sort();
            m
        }
        b"zset" => bulk_items(&resp_parse(&c.cmd(&[
            b"ZRANGE",
            key,
            b"0",
            b"-1",
            b"WITHSCORES",
        ]))),
        _ => vec![],
    };
    (t, items)
}

fn encoding(c: &mut RawConn, key: &[u8]) -> Vec<u8> {
    c.cmd(&[b"OBJECT", b"ENCODING", key])
}

/// Payload of `key` on one target (its DUMP reply's bulk body).
fn dump_on(c: &mut RawConn, key: &[u8]) -> Vec<u8> {
    resp_parse(&c.cmd(&[b"DUMP", key]))
        .as_bytes()
        .expect("DUMP reply")
        .to_vec()
}

/// One case: commands building `k` (run on every target and compared), whether Redis's DUMP
/// bytes are deterministic for it, and the thresholds to set first.
struct Case {
    name: &'static str,
    setup: Vec<String>,
    exact_bytes: bool,
    /// False where our encoding deliberately differs (listpack sets).
    same_encoding: bool,
}

fn case(name: &'static str, exact_bytes: bool, setup: Vec<String>) -> Case {
    Case {
        name,
        setup,
        exact_bytes,
        same_encoding: true,
    }
}

fn cases() -> Vec<Case> {
    let long_text: String = (0..200).map(|i| format!("w{} ", i % 13)).collect();
    let rpush = |key: &str, n: usize, f: &dyn Fn(usize) -> String| -> Vec<String> {
        (0..n).map(|i| format!("RPUSH {key} {}", f(i))).collect()
    };
    let mut v = vec![
        case("int string", true, vec!["SET k 12345".into()]),
        case("negative int", true, vec!["SET k -100000".into()]),
        case("wide int", true, vec!["SET k 1099511627776".into()]),
        case("not canonical int", true, vec!["SET k 007".into()]),
        case("embstr", true, vec!["SET k hello".into()]),
        case(
            "21-byte string",
            true,
            vec!["SET k aaaaaaaaaaaaaaaaaaaaa".into()],
        ),
        case(
            "raw string",
            true,
            vec![format!("SET k {}", "xyz".repeat(30))],
        ),
        case(
            "compressible string",
            true,
            vec![format!("SET k {}", long_text.replace(' ', "_"))],
        ),
        case(
            "appended raw",
            true,
            vec!["SET k abc".into(), "APPEND k def".into()],
        ),
        case("empty string", true, vec!["SET k ''".into()]),
        case(
            "small list",
            true,
            vec!["RPUSH k a b 1 2 -3 100000 hello".into()],
        ),
        case(
            "list with long elements",
            true,
            vec![format!(
                "RPUSH k {} {} x",
                "a".repeat(100),
                "b".repeat(5000)
            )],
        ),
        case("intset", true, vec!["SADD k 1 2 3 -5 70000".into()]),
        case("wide intset", true, vec!["SADD k 1 5000000000 -9".into()]),
        case(
            "listpack hash",
            true,
            vec!["HSET k a 1 b 2.5 c xyz d -12 e 100000".into()],
        ),
        case(
            "listpack zset",
            true,
            vec!["ZADD k 1 a 2.5 b -0 c inf d -inf e 0.1 f 1e20 g -3 h".into()],
        ),
        case(
            "hashtable set",
            false,
            vec![format!(
                "SADD k {}",
                (0..200)
                    .map(|i| format!("m{i}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )],
        ),
        Case {
            same_encoding: false,
            ..case(
                "string set (listpack here)",
                false,
                vec!["SADD k a b c d 1 2".into()],
            )
        },
        case(
            "hashtable hash",
            false,
            vec![format!("HSET k f {} g 1", "v".repeat(100))],
        ),
        case(
            "skiplist zset",
            false,
            vec![format!("ZADD k 1.5 {} 2 b -inf c", "m".repeat(100))],
        ),
        case("string with ttl", true, vec!["SET k v EX 1000".into()]),
    ];
    // Lists of several nodes, built by pushes at the tail (Redis's node cuts are reproduced).
    let mut l = vec!["CONFIG SET list-max-listpack-size 3".into()];
    l.extend(rpush("k", 10, &|i| format!("e{i}")));
    v.push(case("list, 3 per node", true, l));
    let mut l = vec!["CONFIG SET list-max-listpack-size -1".into()];
    l.extend(rpush("k", 400, &|i| {
        if i % 2 == 0 {
            i.to_string()
        } else {
            format!("element-{i}-{}", "p".repeat(i % 50))
        }
    }));
    v.push(case("list, 4k nodes", true, l));
    // Redis compresses the inner nodes (`list-compress-depth 1`, set on Redis alone).
    let mut l = vec!["CONFIG SET list-max-listpack-size 5".into()];
    l.extend(rpush("k", 40, &|i| {
        format!("compressible-element-{}", i % 3)
    }));
    v.push(case("list, compressed nodes", true, l));
    // Thresholds: a hash and zset just over their entry limits, a set over the intset limit.
    let mut h = vec!["CONFIG SET hash-max-listpack-entries 4".into()];
    h.extend((0..5).map(|i| format!("HSET k f{i} {i}")));
    v.push(case("hash over entries", false, h));
    let mut z = vec!["CONFIG SET zset-max-listpack-entries 4".into()];
    z.extend((0..5).map(|i| format!("ZADD k {i} m{i}")));
    v.push(case("zset over entries", false, z));
    let mut s = vec!["CONFIG SET set-max-intset-entries 4".into()];
    s.extend((0..5).map(|i| format!("SADD k {i}")));
    v.push(case("set over intset entries", false, s));
    v
}

const RESET: &[&str] = &[
    "CONFIG SET list-max-listpack-size -2",
    "CONFIG SET hash-max-listpack-entries 128",
    "CONFIG SET zset-max-listpack-entries 128",
    "CONFIG SET set-max-intset-entries 512",
];

#[test]
fn dump_bytes_and_cross_restore() {
    let mut d = diff_or_skip!("dump_bytes_and_cross_restore");
    for c in cases() {
        d.section(c.name);
        d.s("FLUSHALL");
        d.script(RESET);
        let depth: &[u8] = if c.name.contains("compressed") {
            b"1"
        } else {
            b"0"
        };
        let r = d.targets[0].conns[0].cmd(&[b"CONFIG", b"SET", b"list-compress-depth", depth]);
        assert_eq!(r, b"+OK\r\n");
        for line in &c.setup {
            d.s(line);
        }
        let enc_norm = if c.same_encoding {
            Norm::Exact
        } else {
            Norm::NilOrNot
        };
        d.s_norm("OBJECT ENCODING k", enc_norm);
        // Redis's payload, compared byte for byte where Redis's bytes are deterministic.
        let payload = if c.exact_bytes {
            d.s("DUMP k")
        } else {
            d.s_norm("DUMP k", Norm::NilOrNot)
        };
        let payload = resp_parse(&payload).as_bytes().unwrap().to_vec();
        // Redis's payload restored everywhere: same reply, contents and encoding.
        d.cmd(&[b"RESTORE", b"from-redis", b"0", &payload]);
        d.s_norm("OBJECT ENCODING from-redis", enc_norm);
        d.s_norm("PTTL from-redis", Norm::TtlClass);
        let nt = d.targets.len();
        let reference = contents(&mut d.targets[0].conns[0], b"k");
        for i in 0..nt {
            let t = &mut d.targets[i];
            let got = contents(&mut t.conns[0], b"from-redis");
            assert_eq!(
                got, reference,
                "[{}] {} restored from redis",
                c.name, t.name
            );
        }
        // Each Tessera's payload restored on Redis (and on itself).
        for i in 1..nt {
            let ours = dump_on(&mut d.targets[i].conns[0], b"k");
            let name = d.targets[i].name.clone();
            let key = format!("from-{i}");
            let r = d.targets[0].conns[0].cmd(&[b"RESTORE", key.as_bytes(), b"0", &ours]);
            assert_eq!(
                r, b"+OK\r\n",
                "[{}] redis RESTORE of {name}'s payload",
                c.name
            );
            let got = contents(&mut d.targets[0].conns[0], key.as_bytes());
            assert_eq!(got, reference, "[{}] {name}'s payload on redis", c.name);
            let enc_theirs = encoding(&mut d.targets[0].conns[0], key.as_bytes());
            let enc_own = encoding(&mut d.targets[0].conns[0], b"from-redis");
            assert_eq!(
                enc_theirs, enc_own,
                "[{}] encoding of {name}'s payload on redis",
                c.name
            );
            let r = d.targets[i].conns[0].cmd(&[b"RESTORE", b"self", b"0", &ours, b"REPLACE"]);
            assert_eq!(r, b"+OK\r\n");
            if c.exact_bytes {
                let again = dump_on(&mut d.targets[i].conns[0], b"self");
                assert_eq!(again, ours, "[{}] {name}: DUMP of its own RESTORE", c.name);
            }
        }
    }
}

#[test]
fn dump_restore_replies_and_errors() {
    let mut d = diff_or_skip!("dump_restore_replies_and_errors");
    d.section("dump");
    d.script(&[
        "DUMP nokey",
        "DUMP",
        "DUMP a b",
        "SET k hello",
        "COMMAND GETKEYS RESTORE k 0 x",
        "COMMAND GETKEYS DUMP k",
    ]);
    // COMMAND INFO: everything but the command tips (which Tessera does not report).
    let infos: Vec<Value> = (0..d.targets.len())
        .map(|t| {
            resp_parse(&d.targets[t].conns[0].cmd(&[b"COMMAND", b"INFO", b"dump", b"restore"]))
        })
        .collect();
    for (t, info) in infos.iter().enumerate().skip(1) {
        for (ours, theirs) in info.items().unwrap().iter().zip(infos[0].items().unwrap()) {
            let (o, r) = (ours.items().unwrap(), theirs.items().unwrap());
            assert_eq!(o[..7], r[..7], "{}: COMMAND INFO", d.targets[t].name);
            assert_eq!(
                o[8..],
                r[8..],
                "{}: COMMAND INFO key specs",
                d.targets[t].name
            );
        }
    }
    let p = resp_parse(&d.s("DUMP k")).as_bytes().unwrap().to_vec();
    d.section("restore options");
    let run = |d: &mut Diff, args: &[&[u8]]| {
        let mut v: Vec<&[u8]> = vec![b"RESTORE"];
        v.extend_from_slice(args);
        d.cmd(&v);
    };
    run(&mut d, &[b"k", b"0", &p]); // BUSYKEY
    run(&mut d, &[b"k", b"0", &p, b"REPLACE"]);
    run(&mut d, &[b"k2", b"0", &p, b"replace", b"absttl"]);
    run(&mut d, &[b"k3", b"abc", &p]);
    run(&mut d, &[b"k3", b"-1", &p]);
    run(&mut d, &[b"k3", b"1.5", &p]);
    run(&mut d, &[b"k3", b"0", &p, b"bogus"]);
    run(&mut d, &[b"k3", b"0", &p, b"IDLETIME"]);
    run(&mut d, &[b"k3", b"0", &p, b"IDLETIME", b"-1"]);
    run(&mut d, &[b"k3", b"0", &p, b"IDLETIME", b"x"]);
    run(&mut d, &[b"k3", b"0", &p, b"FREQ", b"256"]);
    run(&mut d, &[b"k3", b"0", &p, b"FREQ", b"-1"]);
    run(&mut d, &[b"k3", b"0", &p, b"FREQ", b"1.5"]);
    run(
        &mut d,
        &[b"k3", b"0", &p, b"IDLETIME", b"10", b"FREQ", b"5"],
    );
    run(
        &mut d,
        &[b"k3", b"0", &p, b"FREQ", b"5", b"IDLETIME", b"10"],
    );
    run(&mut d, &[b"k", b"0", &p, b"bogus"]); // options are checked before BUSYKEY
    run(&mut d, &[b"k", b"x", &p]); // BUSYKEY before the TTL
    run(&mut d, &[b"k3", b"0", b"short"]);
    run(&mut d, &[b"k3", b"x", b"short"]);
    run(&mut d, &[b"k3"]);
    run(&mut d, &[b"k3", b"0"]);
    d.s("EXISTS k3");
    d.section("payload errors");
    let mut bad_crc = p.clone();
    let n = bad_crc.len();
    bad_crc[n - 1] ^= 0xFF;
    run(&mut d, &[b"k4", b"0", &bad_crc]);
    let mut newer = p.clone();
    newer[n - 10] = 11;
    run(&mut d, &[b"k4", b"0", &newer]);
    let mut older = p[..n - 8].to_vec();
    older[n - 10] = 9;
    let crc = tessera::persistence::rdb::crc64(0, &older);
    older.extend_from_slice(&crc.to_le_bytes());
    run(&mut d, &[b"k4", b"0", &older]); // an older version with a good checksum loads
                                         // Well-formed footers around a bad object: unknown type, truncated string.
    for body in [
        &b"\x2a\x01x"[..],
        b"\x00\x05ab",
        b"\x02\x00",
        b"",
        b"\x0b\x03abc",
    ] {
        let mut q = body.to_vec();
        q.extend_from_slice(&10u16.to_le_bytes());
        let crc = tessera::persistence::rdb::crc64(0, &q);
        q.extend_from_slice(&crc.to_le_bytes());
        run(&mut d, &[b"k4", b"0", &q]);
    }
    d.s("EXISTS k4");
    d.section("ttl");
    run(&mut d, &[b"t1", b"100000", &p]);
    d.s_norm("PTTL t1", Norm::TtlClass);
    run(&mut d, &[b"t2", b"1", &p, b"ABSTTL"]); // long past: OK, nothing created
    d.s("EXISTS t2");
    run(&mut d, &[b"t1", b"1", &p, b"ABSTTL", b"REPLACE"]); // deletes the existing key
    d.s("EXISTS t1");
    run(&mut d, &[b"t3", b"4102444800000", &p, b"ABSTTL"]);
    d.s("PEXPIRETIME t3");
    run(&mut d, &[b"t4", b"9223372036854775807", &p]);
    d.s("EXISTS t4");
    d.section("idletime and freq");
    run(&mut d, &[b"i1", b"0", &p, b"IDLETIME", b"1000"]);
    run(&mut d, &[b"i2", b"0", &p, b"IDLETIME", b"100000000000"]);
    run(&mut d, &[b"i3", b"0", &p, b"FREQ", b"100"]); // ignored under an LRU policy
    run(
        &mut d,
        &[b"i4", b"0", &p, b"IDLETIME", b"9223372036854775807"],
    );
    // The LRU clock ticks every second: allow for a tick between the servers.
    for key in [&b"i1"[..], b"i2", b"i4"] {
        let idles: Vec<i64> = (0..d.targets.len())
            .map(|t| {
                resp_parse(&d.targets[t].conns[0].cmd(&[b"OBJECT", b"IDLETIME", key]))
                    .as_int()
                    .unwrap()
            })
            .collect();
        let (lo, hi) = (idles.iter().min().unwrap(), idles.iter().max().unwrap());
        assert!(
            hi - lo <= 2,
            "OBJECT IDLETIME {}: {idles:?}",
            String::from_utf8_lossy(key)
        );
    }
    d.s("CONFIG SET maxmemory-policy allkeys-lfu");
    run(&mut d, &[b"f1", b"0", &p, b"FREQ", b"100"]);
    run(&mut d, &[b"f2", b"0", &p, b"IDLETIME", b"50"]); // ignored under an LFU policy
    d.s("OBJECT FREQ f1");
    d.s("OBJECT FREQ f2");
    d.s("CONFIG SET maxmemory-policy noeviction");
    d.section("resp3");
    d.s_norm("HELLO 3", Norm::Hello);
    d.s("DUMP nokey");
    d.s("DUMP k");
    d.s_norm("HELLO 2", Norm::Hello);
}

#[test]
fn mutated_payloads_get_errors_and_servers_keep_serving() {
    let mut d = diff_or_skip!("mutated_payloads_get_errors_and_servers_keep_serving");
    let mut rng = SmallRng::seed_from_u64(0xD0_5EED);
    d.s("FLUSHALL");
    d.script(&[
        "SET s:long aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "RPUSH l a b c 1 2 3 hello world",
        "SADD si 1 2 3 4 5",
        "SADD ss a b c d",
        "HSET h a 1 b 2 c 3",
        "ZADD z 1 a 2 b 3.5 c",
        "HSET hh a 1 b 2 c xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "ZADD zz 1 a 2 b 3 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ]);
    let keys: [&[u8]; 8] = [b"s:long", b"l", b"si", b"ss", b"h", b"z", b"hh", b"zz"];
    let payloads: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| dump_on(&mut d.targets[0].conns[0], k))
        .collect();
    // Flipped bytes and truncations with the footer left as is: the checksum catches them on
    // both servers, with the same error.
    for step in 0..200 {
        let p = &payloads[step % payloads.len()];
        let mut m = p.clone();
        if step % 2 == 0 {
            let i = rng.gen_range(0..m.len());
            m[i] ^= 1 << rng.gen_range(0..8);
        } else {
            m.truncate(rng.gen_range(0..m.len()));
        }
        d.cmd(&[b"RESTORE", b"mut", b"0", &m, b"REPLACE"]);
    }
    // Mutations with a recomputed checksum reach the decoder. Redis 7.0 (no deep sanitisation)
    // may accept garbage there, so only Tessera is checked: OK or "Bad data format", and the
    // server keeps answering; whatever it accepted must dump and restore again.
    for step in 0..600 {
        let p = &payloads[step % payloads.len()];
        let mut m = p[..p.len() - 8].to_vec();
        let body_len = m.len() - 2;
        match step % 3 {
            0 => {
                let i = rng.gen_range(0..body_len);
                m[i] = rng.gen();
            }
            1 => {
                let i = rng.gen_range(0..body_len);
                m[i] ^= 1 << rng.gen_range(0..8);
            }
            _ => {
                let cut = rng.gen_range(0..body_len);
                m.drain(cut..body_len);
            }
        }
        let crc = tessera::persistence::rdb::crc64(0, &m);
        m.extend_from_slice(&crc.to_le_bytes());
        for t in 1..d.targets.len() {
            let c = &mut d.targets[t].conns[0];
            let r = c.cmd(&[b"RESTORE", b"mut", b"0", &m, b"REPLACE"]);
            assert!(
                r == b"+OK\r\n" || r == b"-ERR Bad data format\r\n",
                "{}: {}",
                d.targets[t].name,
                String::from_utf8_lossy(&r)
            );
            if r == b"+OK\r\n" {
                let again = dump_on(c, b"mut");
                let r = c.cmd(&[b"RESTORE", b"mut2", b"0", &again, b"REPLACE"]);
                assert_eq!(r, b"+OK\r\n");
            }
            assert_eq!(c.cmd(&[b"PING"]), b"+PONG\r\n");
        }
    }
    for t in 1..d.targets.len() {
        d.targets[t].conns[0].cmd(&[b"DEL", b"mut", b"mut2"]);
    }
    d.s("DBSIZE");
}

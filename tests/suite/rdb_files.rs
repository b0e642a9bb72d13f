//! Whole RDB files between Tessera's codec and Redis 7.0: files written by `RdbWriter` pass
//! `redis-check-rdb` and load into `redis-server` with the same contents; a `dump.rdb` saved by
//! `redis-server` (every type and encoding, compressed list nodes, three databases, expiries)
//! is read back completely by `RdbReader`.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::*;
use tessera::persistence::rdb::{
    AccessMeta, LoadLimits, RdbError, RdbItem, RdbReader, RdbWriter, WriteOptions,
};
use tessera::types::hash::{HashLimits, HashValue};
use tessera::types::list::{End, ListValue};
use tessera::types::set::{SetLimits, SetValue};
use tessera::types::zset::{ZSetValue, ZsetLimits};
use tessera::types::{StrValue, Value as TValue};

// ----- building values -----

fn string(s: &[u8]) -> TValue {
    TValue::Str(StrValue::from_bytes(s))
}

fn list(items: &[Vec<u8>], fill: i64) -> TValue {
    let mut l = ListValue::new(fill);
    for i in items {
        l.push(End::Tail, i);
    }
    TValue::List(Box::new(l))
}

fn set(items: &[Vec<u8>], lim: SetLimits) -> TValue {
    let mut s = SetValue::new_for(&items[0], items.len(), lim);
    for i in items {
        s.insert(i, lim);
    }
    TValue::Set(s)
}

fn hash(pairs: &[(Vec<u8>, Vec<u8>)]) -> TValue {
    let mut h = HashValue::new();
    for (f, v) in pairs {
        h.set(f, v, HashLimits::default());
    }
    TValue::Hash(h)
}

fn zset(entries: &[(Vec<u8>, f64)]) -> TValue {
    let mut z = ZSetValue::new();
    for (m, s) in entries {
        z.insert(m, *s, ZsetLimits::default());
    }
    TValue::ZSet(z)
}

/// A stream of several nodes with deleted entries and entries of other fields.
fn stream_value() -> TValue {
    use bytes::Bytes;
    use tessera::types::stream::StreamLimits;
    use tessera::types::stream_id::StreamId;
    let mut x = tessera::types::StreamValue::new();
    for i in 1..=230u64 {
        let mut pairs = vec![Bytes::from("f"), Bytes::from(i.to_string())];
        if i % 9 == 0 {
            pairs.push(Bytes::from(format!("extra{i}")));
            pairs.push(Bytes::from("v".repeat(i as usize)));
        }
        x.add(
            Some(StreamId::new(i * 3, i % 4)),
            true,
            &pairs,
            0,
            StreamLimits::default(),
        )
        .unwrap();
    }
    x.delete_ids(&[
        StreamId::new(3, 1),
        StreamId::new(300, 0),
        StreamId::new(303, 1),
    ]);
    TValue::Stream(Box::new(x))
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// (db, key, value, deadline ms) for every type and encoding.
fn dataset(now_ms: u64) -> Vec<(u64, Vec<u8>, TValue, u64)> {
    let mut out = Vec::new();
    let text: Vec<u8> = (0..300)
        .flat_map(|i| format!("word{} ", i % 17).into_bytes())
        .collect();
    let ints: Vec<Vec<u8>> = (0..40)
        .map(|i| (i * 37 - 300).to_string().into_bytes())
        .collect();
    let words: Vec<Vec<u8>> = (0..40)
        .map(|i| format!("member-{i}").into_bytes())
        .collect();
    let many: Vec<Vec<u8>> = (0..3000)
        .map(|i| {
            if i % 3 == 0 {
                i.to_string().into_bytes()
            } else {
                format!("element number {i}").into_bytes()
            }
        })
        .collect();
    let big_set: Vec<Vec<u8>> = (0..300).map(|i| format!("m{i}").into_bytes()).collect();
    let pairs = |n: usize| -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..n)
            .map(|i| {
                (
                    format!("f{i}").into_bytes(),
                    if i % 2 == 0 {
                        i.to_string().into_bytes()
                    } else {
                        format!("v{i}").into_bytes()
                    },
                )
            })
            .collect()
    };
    let scored = |n: usize| -> Vec<(Vec<u8>, f64)> {
        (0..n)
            .map(|i| (format!("z{i}").into_bytes(), (i as f64) * 0.75 - 10.0))
            .collect()
    };
    let mut zspecial = scored(5);
    zspecial.push((b("pinf"), f64::INFINITY));
    zspecial.push((b("ninf"), f64::NEG_INFINITY));
    zspecial.push((b("tenth"), 0.1));
    zspecial.push((b("big"), 1e300));
    let mut keys: Vec<(Vec<u8>, TValue)> = vec![
        (b("s:int"), string(b"12345")),
        (b("s:neg"), string(b"-7")),
        (b("s:wide"), string(b"1099511627776")),
        (b("s:emb"), string(b"hello world")),
        (b("s:raw"), string(&[b'q'; 60])),
        (b("s:text"), TValue::Str(StrValue::from_bytes(&text))),
        (b("s:empty"), string(b"")),
        (b("s:binary"), string(&(0u8..=255).collect::<Vec<_>>())),
        (
            b("l:small"),
            list(&[b("a"), b("1"), b("-2"), b("bcd"), b("100000")], -2),
        ),
        (b("l:big"), list(&many, -2)),
        (b("l:fill5"), list(&words, 5)),
        (b("set:int"), set(&ints, SetLimits::default())),
        (
            b("set:wide"),
            set(&[b("1"), b("5000000000"), b("-3")], SetLimits::default()),
        ),
        (b("set:lp"), set(&words, SetLimits::default())),
        (b("set:ht"), set(&big_set, SetLimits::default())),
        (b("h:lp"), hash(&pairs(10))),
        (b("h:ht"), hash(&pairs(700))),
        (b("z:lp"), zset(&zspecial)),
        (b("z:sk"), zset(&scored(300))),
        (b("12345"), string(b"numeric key")),
        (b("x:stream"), stream_value()),
    ];
    for (k, v) in keys.drain(..) {
        out.push((0, k, v, 0));
    }
    out.push((0, b("s:ttl"), string(b"expiring"), now_ms + 3_600_000));
    out.push((0, b("h:ttl"), hash(&pairs(3)), now_ms + 7_200_000));
    out.push((1, b("s:db1"), string(b"in db one"), 0));
    out.push((1, b("z:db1"), zset(&scored(3)), now_ms + 100_000));
    out.push((3, b("l:db3"), list(&[b("x"), b("y")], -2), 0));
    out
}

// ----- comparing contents -----

fn fmt_score(d: f64) -> Vec<u8> {
    tessera::protocol::reply::format_double(d).into_bytes()
}

/// A value's type and elements in a canonical order.
fn value_contents(v: &TValue) -> (String, Vec<Vec<u8>>) {
    let items = match v {
        TValue::Str(s) => vec![s.to_bytes().to_vec()],
        TValue::List(l) => l.iter().map(|i| i.to_vec()).collect(),
        TValue::Set(s) => {
            let mut m: Vec<Vec<u8>> = s.iter().map(|m| m.to_bytes().to_vec()).collect();
            m.sort();
            m
        }
        TValue::Hash(h) => {
            let mut m: Vec<Vec<u8>> = h.iter().map(|(f, v)| [f, b"\0", v].concat()).collect();
            m.sort();
            m
        }
        TValue::ZSet(z) => z
            .iter()
            .map(|(m, s)| [m, b"\0", &fmt_score(s)].concat())
            .collect(),
        TValue::Stream(x) => {
            use tessera::types::stream_id::StreamId;
            let mut m = Vec::new();
            x.range(StreamId::MIN, StreamId::MAX, false, 0, |id, pairs| {
                m.push([id.to_text(), pairs.join(&b"\0"[..])].join(&b"\0"[..]));
                true
            });
            m
        }
    };
    (v.type_name().to_string(), items)
}

fn bulk_items(v: &crate::common::Value) -> Vec<Vec<u8>> {
    v.items()
        .map(|i| {
            i.iter()
                .map(|x| x.as_bytes().unwrap_or_default().to_vec())
                .collect()
        })
        .unwrap_or_default()
}

/// The same for a key on a server (RESP2 connection, database already selected).
fn server_contents(c: &mut RawConn, key: &[u8]) -> (String, Vec<Vec<u8>>) {
    let t = resp_parse(&c.cmd(&[b"TYPE", key]));
    let t = String::from_utf8_lossy(t.as_bytes().unwrap_or_default()).into_owned();
    let items = match t.as_str() {
        "string" => vec![resp_parse(&c.cmd(&[b"GET", key]))
            .as_bytes()
            .unwrap_or_default()
            .to_vec()],
        "list" => bulk_items(&resp_parse(&c.cmd(&[b"LRANGE", key, b"0", b"-1"]))),
        "set" => {
            let mut m = bulk_items(&resp_parse(&c.cmd(&[b"SMEMBERS", key])));
            m.sort();
            m
        }
        "hash" => {
            let flat = bulk_items(&resp_parse(&c.cmd(&[b"HGETALL", key])));
            let mut m: Vec<Vec<u8>> = flat
                .chunks(2)
                .map(|p| [&p[0][..], b"\0", &p[1][..]].concat())
                .collect();
            m.sort();
            m
        }
        "zset" => {
            let flat = bulk_items(&resp_parse(&c.cmd(&[
                b"ZRANGE",
                key,
                b"0",
                b"-1",
                b"WITHSCORES",
            ])));
            flat.chunks(2)
                .map(|p| [&p[0][..], b"\0", &p[1][..]].concat())
                .collect()
        }
        "stream" => resp_parse(&c.cmd(&[b"XRANGE", key, b"-", b"+"]))
            .items()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|e| {
                let parts = e.items().cloned().unwrap_or_default();
                let mut v = vec![parts[0].as_bytes().unwrap_or_default().to_vec()];
                v.extend(bulk_items(&parts[1]));
                v.join(&b"\0"[..])
            })
            .collect(),
        _ => vec![],
    };
    (t, items)
}

fn int_reply(c: &mut RawConn, args: &[&[u8]]) -> i64 {
    resp_parse(&c.cmd(args)).as_int().unwrap_or(i64::MIN)
}

fn temp_dir(label: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tessera-rdb-{label}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn write_file(path: &Path, data: &[(u64, Vec<u8>, TValue, u64)], compress: bool, checksum: bool) {
    let f = fs::File::create(path).unwrap();
    let opts = WriteOptions {
        compress,
        checksum,
        ..WriteOptions::default()
    };
    let mut w = RdbWriter::new(std::io::BufWriter::new(f), opts).unwrap();
    let mut dbs: Vec<u64> = data.iter().map(|d| d.0).collect();
    dbs.dedup();
    for db in dbs {
        let keys: Vec<_> = data.iter().filter(|d| d.0 == db).collect();
        let expires = keys.iter().filter(|d| d.3 != 0).count();
        w.select_db(db, keys.len() as u64, expires as u64).unwrap();
        for (i, (_, k, v, exp)) in keys.into_iter().enumerate() {
            let meta = match i % 3 {
                0 => AccessMeta::None,
                1 => AccessMeta::Idle(i as u64),
                _ => AccessMeta::Freq(i as u8),
            };
            w.write_entry(k, v, *exp, meta).unwrap();
        }
    }
    w.finish().unwrap();
}

fn read_all(path: &Path) -> Result<Vec<(u64, tessera::persistence::rdb::RdbEntry)>, RdbError> {
    let f = fs::File::open(path).unwrap();
    let mut r = RdbReader::new(std::io::BufReader::new(f), LoadLimits::default())?;
    let mut db = 0;
    let mut out = Vec::new();
    while let Some(item) = r.next_item()? {
        match item {
            RdbItem::SelectDb(d) => db = d,
            RdbItem::Entry(e) => out.push((db, e)),
            _ => {}
        }
    }
    Ok(out)
}

#[test]
fn our_files_read_back_and_bad_files_are_refused() {
    let dir = temp_dir("roundtrip");
    let now = now_ms();
    let data = dataset(now);
    for (compress, checksum) in [(true, true), (false, true), (true, false)] {
        let path = dir.join("rt.rdb");
        write_file(&path, &data, compress, checksum);
        let back = read_all(&path).unwrap();
        assert_eq!(back.len(), data.len());
        for ((db, k, v, exp), (rdb, e)) in data.iter().zip(back.iter()) {
            assert_eq!((db, &k[..]), (rdb, &e.key[..]));
            assert_eq!(
                value_contents(v),
                value_contents(&e.value),
                "{}",
                String::from_utf8_lossy(k)
            );
            assert_eq!(*exp, e.expire_ms);
        }
        let bytes = fs::read(&path).unwrap();
        // Truncated anywhere: an error, never a panic or a silent success.
        for cut in [9, 20, bytes.len() / 2, bytes.len() - 9, bytes.len() - 1] {
            fs::write(dir.join("cut.rdb"), &bytes[..cut]).unwrap();
            assert!(read_all(&dir.join("cut.rdb")).is_err(), "cut at {cut}");
        }
        if checksum {
            let mut flipped = bytes.clone();
            let i = bytes.len() / 3;
            flipped[i] ^= 0x01;
            fs::write(dir.join("flip.rdb"), &flipped).unwrap();
            assert!(read_all(&dir.join("flip.rdb")).is_err());
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn redis_accepts_and_loads_our_files() {
    if !redis_tools() {
        return;
    }
    let dir = temp_dir("ours");
    let now = now_ms();
    let data = dataset(now);
    for compress in [false, true] {
        let name = if compress { "lzf.rdb" } else { "plain.rdb" };
        let path = dir.join(name);
        write_file(&path, &data, compress, true);
        let check = Command::new("redis-check-rdb").arg(&path).output().unwrap();
        let out = String::from_utf8_lossy(&check.stdout).into_owned();
        assert!(
            check.status.success() && out.contains("RDB looks OK"),
            "redis-check-rdb refused {name}:\n{out}"
        );
        let redis = redis_on_file(&dir, name);
        let mut c = RawConn::connect(redis.port);
        for db in [0u64, 1, 3] {
            c.cmd(&[b"SELECT", db.to_string().as_bytes()]);
            let expected: Vec<_> = data.iter().filter(|d| d.0 == db).collect();
            assert_eq!(
                int_reply(&mut c, &[b"DBSIZE"]),
                expected.len() as i64,
                "db {db}"
            );
            for (_, k, v, exp) in expected {
                let key = String::from_utf8_lossy(k).into_owned();
                assert_eq!(
                    server_contents(&mut c, k),
                    value_contents(v),
                    "{name} {key}"
                );
                let pttl = int_reply(&mut c, &[b"PTTL", k]);
                if *exp == 0 {
                    assert_eq!(pttl, -1, "{key}");
                } else {
                    assert!(pttl > 0 && pttl <= (*exp - now) as i64, "{key} pttl {pttl}");
                }
                let enc = resp_parse(&c.cmd(&[b"OBJECT", b"ENCODING", k]));
                let enc = String::from_utf8_lossy(enc.as_bytes().unwrap_or_default()).into_owned();
                let ours = v.encoding();
                let expected_enc = match (v, ours) {
                    // Redis 7.0 has no listpack sets: small string sets load as hashtables.
                    (TValue::Set(_), "listpack") => "hashtable",
                    _ => ours,
                };
                assert_eq!(enc, expected_enc, "{name} {key}");
            }
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn redis_saved_files_read_back_completely() {
    let Some(redis) = start_redis() else { return };
    let mut c = redis.conn();
    let big: String = (0..400).map(|i| format!("x{i}-")).collect();
    let mut script: Vec<String> = vec![
        "CONFIG SET list-max-listpack-size 4".into(),
        "CONFIG SET list-compress-depth 1".into(),
        "SET s:int 12345".into(),
        "SET s:wide 1099511627776".into(),
        "SET s:emb hello".into(),
        format!("SET s:long {big}"),
        "SET s:ttl v PX 3600000".into(),
        "RPUSH l:small a b 1 2".into(),
        "SADD set:int 1 2 3 -100000 5000000000".into(),
        "SADD set:str a b c d".into(),
        "HSET h:lp a 1 b 2 c hello".into(),
        "ZADD z:lp 1 a 2.5 b -0 c inf d -inf e 0.1 f".into(),
        "EXPIRE h:lp 1000".into(),
        "SELECT 2".into(),
        "SET two 2".into(),
        "SELECT 15".into(),
        "SET fifteen 15".into(),
        "RPUSH l:one x".into(),
        "SELECT 0".into(),
    ];
    // A list compressed in the middle: 500 elements in nodes of 4, inner nodes LZF'd.
    for i in 0..50 {
        script.push(format!(
            "RPUSH l:comp {i} {big}{i} element-{i} {}",
            i * 1000
        ));
        script.push(format!("SADD set:ht member-{i} {i}x"));
        script.push(format!("HSET h:ht field-{i} {big}"));
        script.push(format!("ZADD z:sk {i}.5 m{i} {} n{i}", -i));
        script.push(format!("RPUSH l:plainbig {big}{i}"));
    }
    // Streams: several nodes, same and other fields, deleted entries, an emptied stream.
    for i in 1..=250 {
        script.push(format!(
            "XADD x:s {i}-{} f {i} g y{}",
            i % 3,
            "y".repeat(i % 50)
        ));
        if i % 7 == 0 {
            script.push(format!("XADD x:s {i}-9 other {big}"));
        }
    }
    script.push("XDEL x:s 5-2 6-0 100-1".into());
    script.push("XTRIM x:s MAXLEN 200".into());
    script.push("XADD x:empty MAXLEN 0 1-1 a b".into());
    for i in 0..300 {
        script.push(format!("SADD set:bigint {}", i * 7));
        script.push(format!("HSET h:many f{i} {i}"));
    }
    for line in &script {
        let parts = split_cmd(line);
        let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        let r = c.cmd(&refs);
        assert!(
            !r.starts_with(b"-"),
            "{line}: {}",
            String::from_utf8_lossy(&r)
        );
    }
    assert_eq!(c.cmd(&[b"SAVE"]), b"+OK\r\n");
    let enc = resp_parse(&c.cmd(&[b"OBJECT", b"ENCODING", b"l:comp"]));
    assert_eq!(enc.as_bytes(), Some(&b"quicklist"[..]));
    let entries = read_all(&redis.dir().join("dump.rdb")).expect("read redis dump.rdb");
    let mut per_db = std::collections::BTreeMap::new();
    let now = now_ms();
    for (db, e) in &entries {
        *per_db.entry(*db).or_insert(0i64) += 1;
        c.cmd(&[b"SELECT", db.to_string().as_bytes()]);
        let key = String::from_utf8_lossy(&e.key).into_owned();
        assert_eq!(
            value_contents(&e.value),
            server_contents(&mut c, &e.key),
            "{key}"
        );
        let pttl = int_reply(&mut c, &[b"PTTL", &e.key]);
        if pttl == -1 {
            assert_eq!(e.expire_ms, 0, "{key}");
        } else {
            assert!(
                e.expire_ms > now && e.expire_ms <= now + pttl as u64 + 5000,
                "{key}"
            );
        }
        let enc = resp_parse(&c.cmd(&[b"OBJECT", b"ENCODING", &e.key]));
        let enc = String::from_utf8_lossy(enc.as_bytes().unwrap_or_default()).into_owned();
        let ours = e.value.encoding();
        let ok = ours == enc
            || (matches!(e.value, TValue::Set(_)) && ours == "listpack" && enc == "hashtable");
        assert!(ok, "{key}: ours {ours}, redis {enc}");
    }
    for (db, n) in per_db {
        c.cmd(&[b"SELECT", db.to_string().as_bytes()]);
        assert_eq!(int_reply(&mut c, &[b"DBSIZE"]), n, "db {db}");
    }
    assert_eq!(
        entries
            .iter()
            .map(|e| e.0)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3
    );
}

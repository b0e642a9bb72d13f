//! The offline tools of the `tessera` binary: `tessera check` on RDB files (plain and zstd),
//! snapshot manifests and AOF directories (torn tails reported and fixed, damage only reported),
//! and `tessera export-rdb` merging shard files into one RDB that redis-server 7.0 loads.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::common::*;
use tessera::persistence::rdb::{
    AccessMeta, LoadLimits, RdbItem, RdbReader, RdbWriter, WriteOptions,
};
use tessera::types::hash::{HashLimits, HashValue};
use tessera::types::list::{End, ListValue};
use tessera::types::set::{SetLimits, SetValue};
use tessera::types::zset::{ZSetValue, ZsetLimits};
use tessera::types::{StrValue, Value as TValue};

fn temp_dir(label: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tessera-check-{label}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `tessera ARGS`: (exit code, stdout + stderr).
fn tessera(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

// ----- building files -----

fn string(s: &str) -> TValue {
    TValue::Str(StrValue::from_bytes(s.as_bytes()))
}

fn list(items: &[&str]) -> TValue {
    let mut l = ListValue::new(-2);
    for i in items {
        l.push(End::Tail, i.as_bytes());
    }
    TValue::List(Box::new(l))
}

fn set(items: &[&str]) -> TValue {
    let lim = SetLimits::default();
    let mut s = SetValue::new_for(items[0].as_bytes(), items.len(), lim);
    for i in items {
        s.insert(i.as_bytes(), lim);
    }
    TValue::Set(s)
}

fn hash(pairs: &[(&str, &str)]) -> TValue {
    let mut h = HashValue::new();
    for (f, v) in pairs {
        h.set(f.as_bytes(), v.as_bytes(), HashLimits::default());
    }
    TValue::Hash(h)
}

fn zset(entries: &[(&str, f64)]) -> TValue {
    let mut z = ZSetValue::new();
    for (m, s) in entries {
        z.insert(m.as_bytes(), *s, ZsetLimits::default());
    }
    TValue::ZSet(z)
}

/// One key of a test file.
struct Key {
    db: u64,
    key: String,
    value: TValue,
    expire_ms: u64,
    meta: AccessMeta,
}

fn key(db: u64, k: &str, value: TValue) -> Key {
    Key {
        db,
        key: k.to_string(),
        value,
        expire_ms: 0,
        meta: AccessMeta::None,
    }
}

const LIBRARY: &str =
    "#!lua name=checklib\nredis.register_function('checkfn', function(keys, args) return 42 end)";

/// Writes an RDB stream: `functions`, then the keys in the given order (a new SELECTDB section
/// whenever the database changes, as a snapshot shard file may), zstd-compressed when `zstd`.
fn write_rdb(path: &Path, functions: &[&str], keys: &[Key], zstd: bool) {
    let mut w = RdbWriter::new(Vec::new(), WriteOptions::default()).unwrap();
    for f in functions {
        w.write_function(f.as_bytes()).unwrap();
    }
    let mut current = None;
    for (i, k) in keys.iter().enumerate() {
        if current != Some(k.db) {
            let section: Vec<&Key> = keys[i..].iter().take_while(|x| x.db == k.db).collect();
            let expires = section.iter().filter(|x| x.expire_ms != 0).count();
            w.select_db(k.db, section.len() as u64, expires as u64)
                .unwrap();
            current = Some(k.db);
        }
        w.write_entry(k.key.as_bytes(), &k.value, k.expire_ms, k.meta)
            .unwrap();
    }
    let bytes = w.finish().unwrap();
    let bytes = if zstd {
        zstd::encode_all(&bytes[..], 3).unwrap()
    } else {
        bytes
    };
    fs::write(path, bytes).unwrap();
}

fn every_type(db: u64, prefix: &str, deadline: u64) -> Vec<Key> {
    let mut keys = vec![
        key(db, &format!("{prefix}str"), string("hello")),
        key(db, &format!("{prefix}int"), string("12345")),
        key(db, &format!("{prefix}list"), list(&["a", "b", "7"])),
        key(db, &format!("{prefix}set"), set(&["x", "y", "z"])),
        key(db, &format!("{prefix}iset"), set(&["1", "2", "3"])),
        key(
            db,
            &format!("{prefix}hash"),
            hash(&[("f", "v"), ("g", "1")]),
        ),
        key(
            db,
            &format!("{prefix}zset"),
            zset(&[("m", 1.5), ("n", -2.0)]),
        ),
    ];
    keys[0].expire_ms = deadline;
    keys[1].meta = AccessMeta::Idle(1000);
    keys[2].meta = AccessMeta::Freq(9);
    keys
}

// ----- RDB files and snapshots -----

#[test]
fn rdb_files_pass_and_damage_is_reported_with_an_offset() {
    let dir = temp_dir("rdb");
    let mut keys = every_type(0, "", now_ms() + 3_600_000);
    keys.extend(every_type(2, "two:", 0));
    let plain = dir.join("plain.rdb");
    write_rdb(&plain, &[LIBRARY], &keys, false);
    let (code, out) = tessera(&["check", &p(&plain)]);
    assert_eq!(code, 0, "{out}");
    for want in [
        "RDB format version 10",
        "AUX redis-ver = '7.0.15'",
        "function library 'checklib'",
        "db 0: 7 keys (hash 1, list 1, set 2, string 2, zset 1), 1 with expiry",
        "db 2: 7 keys",
        "total: 14 keys in 2 databases, 1 with expiry, 1 function libraries",
        "checksum OK",
        "RDB looks OK",
    ] {
        assert!(out.contains(want), "missing '{want}' in:\n{out}");
    }
    if redis_tools() {
        let check = Command::new("redis-check-rdb")
            .arg(&plain)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&check.stdout);
        assert!(
            check.status.success() && text.contains("RDB looks OK"),
            "{text}"
        );
    }

    let bytes = fs::read(&plain).unwrap();
    // A flipped byte in the middle (inside a value or caught by the CRC64 trailer).
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x5a;
    let bad = dir.join("flipped.rdb");
    fs::write(&bad, &flipped).unwrap();
    let (code, out) = tessera(&["check", &p(&bad)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("RDB ERROR DETECTED") && out.contains("[offset "),
        "{out}"
    );
    // Truncated: the offset where the data ran out.
    let cut = dir.join("cut.rdb");
    fs::write(&cut, &bytes[..bytes.len() - 20]).unwrap();
    let (code, out) = tessera(&["check", &p(&cut)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("unexpected end of input"), "{out}");

    // The same stream zstd-compressed passes; cut short it does not.
    let z = dir.join("shard.rdb.zst");
    write_rdb(&z, &[LIBRARY], &keys, true);
    let (code, out) = tessera(&["check", &p(&z)]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("zstd-compressed") && out.contains("total: 14 keys"),
        "{out}"
    );
    let zbytes = fs::read(&z).unwrap();
    fs::write(&z, &zbytes[..zbytes.len() / 2]).unwrap();
    let (code, out) = tessera(&["check", &p(&z)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("[offset "), "{out}");

    // Anything else is refused by kind.
    let other = dir.join("notes.txt");
    fs::write(&other, "hello\n").unwrap();
    let (code, out) = tessera(&["check", &p(&other)]);
    assert_eq!(code, 1);
    assert!(
        out.contains("not an RDB, snapshot manifest or AOF"),
        "{out}"
    );
    let _ = fs::remove_dir_all(&dir);
}

fn snapshot_manifest(dir: &Path, files: &[&str]) -> PathBuf {
    let mut text = format!(
        "# tessera snapshot manifest\ntessera-snapshot version 1 shards {} compression zstd ctime 1764140000\n",
        files.len()
    );
    for (i, f) in files.iter().enumerate() {
        text.push_str(&format!("file {f} shard {i}\n"));
    }
    let path = dir.join("dump.rdb.manifest");
    fs::write(&path, text).unwrap();
    path
}

#[test]
fn snapshot_manifests_are_checked_with_every_shard_file() {
    let dir = temp_dir("snap");
    write_rdb(
        &dir.join("dump.rdb.s0.4.rdb.zst"),
        &[LIBRARY],
        &every_type(0, "a:", now_ms() + 3_600_000),
        true,
    );
    write_rdb(
        &dir.join("dump.rdb.s1.4.rdb.zst"),
        &[],
        &every_type(0, "b:", 0),
        true,
    );
    let m = snapshot_manifest(&dir, &["dump.rdb.s0.4.rdb.zst", "dump.rdb.s1.4.rdb.zst"]);
    let (code, out) = tessera(&["check", &p(&m)]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("shard 0: dump.rdb.s0.4.rdb.zst OK")
            && out.contains("shard 1: dump.rdb.s1.4.rdb.zst OK")
            && out.contains("total: 14 keys in 1 databases, 1 with expiry, 1 function libraries")
            && out.contains("Snapshot looks OK"),
        "{out}"
    );
    fs::remove_file(dir.join("dump.rdb.s1.4.rdb.zst")).unwrap();
    let (code, out) = tessera(&["check", &p(&m)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is missing"), "{out}");
    // A manifest that leaves a shard without its file.
    fs::write(
        &m,
        "tessera-snapshot version 1 shards 2 compression zstd ctime 1\nfile dump.rdb.s0.4.rdb.zst shard 0\n",
    )
    .unwrap();
    let (code, out) = tessera(&["check", &p(&m)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("MANIFEST ERROR"), "{out}");
    let _ = fs::remove_dir_all(&dir);
}

// ----- AOF -----

fn aof_server(dir: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["--dir", dir.to_str().unwrap(), "--appendonly", "yes"];
    args.extend_from_slice(extra);
    start_tessera(2, &args)
}

fn shutdown(mut s: Server) {
    let mut c = s.conn();
    c.send(&encode(&[b"SHUTDOWN"]));
    assert!(
        s.wait_exit(Duration::from_secs(20)),
        "SHUTDOWN did not stop it"
    );
}

/// The last incremental file named by the manifest (its name and path).
fn last_incr(dir: &Path) -> (String, PathBuf) {
    let aof_dir = dir.join("appendonlydir");
    let m = fs::read_to_string(aof_dir.join("appendonly.aof.manifest")).unwrap();
    let name = m
        .lines()
        .filter(|l| l.contains("type i"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .next_back()
        .unwrap()
        .to_string();
    let path = aof_dir.join(&name);
    (name, path)
}

#[test]
fn aof_torn_tails_are_reported_and_fixed_damage_is_only_reported() {
    let dir = temp_dir("aof");
    let s = aof_server(&dir, &[]);
    let mut c = s.conn();
    for i in 0..50 {
        assert_eq!(c.cmd_str(&format!("SET key:{i} v{i}")), b"+OK\r\n");
    }
    c.cmd_str("RPUSH l a b c");
    c.cmd_str("MSET {x}1 a {x}2 b other c");
    drop(c);
    shutdown(s);
    let aof_dir = p(&dir.join("appendonlydir"));
    let (code, out) = tessera(&["check", &aof_dir]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("AOF looks OK (2 shards)") && out.contains("shard 1: "),
        "{out}"
    );

    // Half a record appended: reported with file and offset; --fix cuts it off.
    let (name, incr) = last_incr(&dir);
    let good = fs::read(&incr).unwrap();
    let mut torn = good.clone();
    torn.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$3\r\nkey");
    fs::write(&incr, &torn).unwrap();
    let (code, out) = tessera(&["check", &aof_dir]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("{name} has a torn tail at offset {}", good.len())),
        "{out}"
    );
    assert_eq!(
        fs::read(&incr).unwrap(),
        torn,
        "nothing changes without --fix"
    );
    let (code, out) = tessera(&["check", "--fix", &aof_dir]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("from {} to {} bytes", torn.len(), good.len())),
        "{out}"
    );
    assert_eq!(fs::read(&incr).unwrap(), good);

    // An unterminated multi-shard unit at the tail (no torn record): cut before its TXBEGIN.
    let mut open = good.clone();
    for rec in [
        &[&b"TESSERA.TXBEGIN"[..], b"99", b"2"][..],
        &[&b"SET"[..], b"half", b"unit"][..],
    ] {
        open.extend_from_slice(&encode(rec));
    }
    fs::write(&incr, &open).unwrap();
    let (code, out) = tessera(&["check", &aof_dir]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "unit 99 opened at offset {} of {}",
            good.len(),
            incr.display()
        )),
        "{out}"
    );
    let (code, out) = tessera(&["check", "--fix", &aof_dir]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(fs::read(&incr).unwrap(), good);

    // Fixed logs load even where torn tails are refused, with every key.
    let s = aof_server(&dir, &["--aof-load-truncated", "no"]);
    let mut c = s.conn();
    assert_eq!(c.cmd_str("DBSIZE"), b":54\r\n");
    assert_eq!(c.cmd_str("GET key:49"), b"$3\r\nv49\r\n");
    assert_eq!(c.cmd_str("EXISTS half"), b":0\r\n");
    drop(c);
    shutdown(s);

    // Damage in the middle (the restart rewrote the logs: the data is in the base files now):
    // reported with its offset, never "fixed".
    let aof_dir_path = dir.join("appendonlydir");
    let m = fs::read_to_string(aof_dir_path.join("appendonly.aof.manifest")).unwrap();
    let base = m
        .lines()
        .filter(|l| l.contains("type b"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|n| aof_dir_path.join(n))
        .find(|b| fs::metadata(b).unwrap().len() > 40)
        .expect("a base file with records");
    let mut bytes = fs::read(&base).unwrap();
    let rdb_base = bytes.starts_with(b"REDIS");
    if rdb_base {
        // An RDB-preamble base (the default): a flipped byte breaks its structure or checksum.
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x5a;
    } else {
        let at = bytes.iter().position(|&b| b == b'$').unwrap();
        bytes[at] = b'#';
    }
    fs::write(&base, &bytes).unwrap();
    let (code, out) = tessera(&["check", "--fix", &aof_dir]);
    assert_eq!(code, 1, "{out}");
    let want = if rdb_base {
        assert!(out.contains("offset"), "{out}");
        format!("{} --- RDB ERROR DETECTED ---", base.display())
    } else {
        format!("{} is damaged at offset 0", base.display())
    };
    assert!(out.contains(&want), "{out}");
    assert_eq!(fs::read(&base).unwrap(), bytes);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn aof_base_files_may_be_rdb_streams_and_single_aof_files_are_checked() {
    let dir = temp_dir("preamble");
    write_rdb(
        &dir.join("a.aof.s0.1.base.aof"),
        &[],
        &every_type(0, "", 0),
        false,
    );
    let mut incr = encode(&[b"SELECT", b"0"]);
    incr.extend_from_slice(&encode(&[b"SET", b"after", b"base"]));
    fs::write(dir.join("a.aof.s0.1.incr.aof"), &incr).unwrap();
    let manifest = dir.join("a.aof.manifest");
    fs::write(
        &manifest,
        "tessera-aof version 1 shards 1\nfile a.aof.s0.1.base.aof seq 1 type b shard 0\nfile a.aof.s0.1.incr.aof seq 1 type i shard 0\n",
    )
    .unwrap();
    let (code, out) = tessera(&["check", &p(&manifest)]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("a.aof.s0.1.base.aof OK (RDB preamble, 7 keys)")
            && out.contains("a.aof.s0.1.incr.aof OK (2 records"),
        "{out}"
    );
    // A damaged preamble is reported like any RDB.
    let base = fs::read(dir.join("a.aof.s0.1.base.aof")).unwrap();
    fs::write(dir.join("a.aof.s0.1.base.aof"), &base[..base.len() - 3]).unwrap();
    let (code, out) = tessera(&["check", &p(&dir)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("RDB ERROR DETECTED"), "{out}");

    // One AOF file on its own: its torn tail is its last record's.
    let single = dir.join("single.aof");
    let mut torn = incr.clone();
    torn.extend_from_slice(b"*2\r\n$3\r\nDEL");
    fs::write(&single, &torn).unwrap();
    let (code, out) = tessera(&["check", &p(&single)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("torn tail at offset {}", incr.len())),
        "{out}"
    );
    let (code, out) = tessera(&["check", "--fix", &p(&single)]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(fs::read(&single).unwrap(), incr);
    let _ = fs::remove_dir_all(&dir);
}

// ----- export-rdb -----

struct Redis {
    child: Child,
    port: u16,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_on_file(dir: &Path, file: &str) -> Redis {
    let port = free_port();
    let log = fs::File::create(dir.join("redis.log")).unwrap();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .args(["--dir", dir.to_str().unwrap(), "--dbfilename", file])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start redis-server");
    // Owned from here on, so that every path (a failed assert included) kills and reaps it.
    let redis = Redis { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let mut c = RawConn::connect(port);
            if c.cmd(&[b"PING"]) == b"+PONG\r\n" {
                return redis;
            }
        }
        assert!(
            Instant::now() < deadline,
            "redis-server did not start: {}",
            fs::read_to_string(dir.join("redis.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn export_rdb_merges_shard_files_into_one_file_redis_loads() {
    let dir = temp_dir("export");
    let deadline = now_ms() + 3_600_000;
    // Shard 0: the function library, db 0 and db 3. Shard 1 (zstd): db 0 in two sections
    // around db 3, as a snapshot with copy-on-write entries writes them.
    let mut s0 = every_type(0, "s0:", deadline);
    s0.extend(every_type(3, "s0:", 0));
    let mut s1 = every_type(0, "s1:", 0);
    s1.extend(every_type(3, "s1:", deadline));
    s1.push(key(0, "s1:late", string("written late")));
    write_rdb(&dir.join("dump.rdb.s0.9.rdb"), &[LIBRARY], &s0, false);
    write_rdb(&dir.join("dump.rdb.s1.9.rdb.zst"), &[], &s1, true);
    snapshot_manifest(&dir, &["dump.rdb.s0.9.rdb", "dump.rdb.s1.9.rdb.zst"]);
    let out = dir.join("out.rdb");
    let (code, text) = tessera(&["export-rdb", "--dir", &p(&dir), &p(&out)]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("Exported 29 keys in 2 databases and 1 function libraries from 2 files"),
        "{text}"
    );
    assert!(!dir.join("out.rdb.tmp").exists());

    // One section per database, every key with its deadline and access metadata.
    let f = fs::File::open(&out).unwrap();
    let mut r = RdbReader::new(std::io::BufReader::new(f), LoadLimits::default()).unwrap();
    let (mut sections, mut functions, mut db) = (Vec::new(), 0, 0);
    let mut entries = std::collections::HashMap::new();
    while let Some(item) = r.next_item().unwrap() {
        match item {
            RdbItem::SelectDb(d) => {
                db = d;
                sections.push(d);
            }
            RdbItem::Function(_) => functions += 1,
            RdbItem::Entry(e) => {
                entries.insert((db, String::from_utf8_lossy(&e.key).into_owned()), e);
            }
            _ => {}
        }
    }
    assert_eq!((sections, functions), (vec![0, 3], 1));
    for k in s0.iter().chain(s1.iter()) {
        let e = &entries[&(k.db, k.key.clone())];
        assert_eq!(e.expire_ms, k.expire_ms, "{}", k.key);
        let meta = match (e.idle_secs, e.freq) {
            (Some(i), _) => AccessMeta::Idle(i),
            (None, Some(f)) => AccessMeta::Freq(f),
            _ => AccessMeta::None,
        };
        assert_eq!(meta, k.meta, "{}", k.key);
    }
    assert_eq!(entries.len(), 29);
    let (code, text) = tessera(&["check", &p(&out)]);
    assert_eq!(code, 0, "{text}");

    // A single shard file is a source too.
    let single = dir.join("single.rdb");
    let (code, text) = tessera(&[
        "export-rdb",
        &p(&dir.join("dump.rdb.s1.9.rdb.zst")),
        &p(&single),
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("Exported 15 keys in 2 databases and 0 function libraries"),
        "{text}"
    );

    if redis_tools() {
        let check = Command::new("redis-check-rdb").arg(&out).output().unwrap();
        let t = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success() && t.contains("RDB looks OK"), "{t}");
        let redis = redis_on_file(&dir, "out.rdb");
        let mut c = RawConn::connect(redis.port);
        assert_eq!(c.cmd_str("DBSIZE"), b":15\r\n");
        assert_eq!(c.cmd_str("GET s1:late"), b"$12\r\nwritten late\r\n");
        assert_eq!(
            c.cmd_str("LRANGE s0:list 0 -1"),
            b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\n7\r\n"
        );
        assert_eq!(c.cmd_str("HGET s1:hash g"), b"$1\r\n1\r\n");
        assert_eq!(c.cmd_str("ZSCORE s0:zset n"), b"$2\r\n-2\r\n");
        assert_eq!(c.cmd_str("SISMEMBER s1:iset 3"), b":1\r\n");
        let pttl = resp_parse(&c.cmd_str("PTTL s0:str")).as_int().unwrap();
        assert!(pttl > 3_000_000 && pttl <= 3_600_000, "{pttl}");
        let idle = resp_parse(&c.cmd_str("OBJECT IDLETIME s0:int"))
            .as_int()
            .unwrap();
        assert!(idle >= 1000, "IDLE kept: {idle}");
        assert_eq!(c.cmd_str("FCALL checkfn 0"), b":42\r\n");
        assert_eq!(c.cmd_str("SELECT 3"), b"+OK\r\n");
        assert_eq!(c.cmd_str("DBSIZE"), b":14\r\n");
        assert_eq!(c.cmd_str("GET s0:str"), b"$5\r\nhello\r\n");
        let pttl = resp_parse(&c.cmd_str("PTTL s1:str")).as_int().unwrap();
        assert!(pttl > 3_000_000, "{pttl}");
    }
    let _ = fs::remove_dir_all(&dir);
}

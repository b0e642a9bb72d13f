//! Forkless snapshots: SAVE/BGSAVE restart equivalence with any shard count, the point-in-time
//! cut under concurrent writes (multi-shard units wholly in or out, copy-on-write, flushes and
//! SWAPDB during the walk), save rules, shutdown saves, write refusal after a failed save,
//! interchange with stock Redis and damaged files.

use crate::common::*;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tessera-snap-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn start(shards: usize, dir: &Path, extra: &[&str]) -> Server {
    let d = dir.display().to_string();
    let mut args = vec!["--dir", d.as_str()];
    args.extend_from_slice(extra);
    start_tessera(shards, &args)
}

fn digest(s: &Server) -> Vec<u8> {
    s.conn().cmd_str("DEBUG DIGEST")
}

fn info(c: &mut RawConn) -> String {
    String::from_utf8_lossy(&c.cmd_str("INFO persistence")).to_string()
}

fn field(info: &str, name: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Waits until no snapshot runs; returns INFO persistence.
fn wait_saved(c: &mut RawConn) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let i = info(c);
        if field(&i, "rdb_bgsave_in_progress") == "0" {
            return i;
        }
        assert!(Instant::now() < deadline, "snapshot never finished: {i}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every type and encoding, several databases, deadlines, a function library.
fn fill(c: &mut RawConn) {
    for line in [
        "SET s1 hello",
        "SET s2 v EX 1000",
        "SET n 12345",
        "RPUSH l a b c d",
        "SADD st x y z",
        "SADD ints 1 2 3 400000",
        "HSET h f1 v1 f2 v2",
        "ZADD z 1 a 2.5 b -inf c",
        "MSET {t}a 1 {t}b 2 m1 x m2 y m3 z",
        "PEXPIREAT m1 99999999999999",
        "SELECT 3",
        "SET db3key v",
        "SELECT 15",
        "HSET db15 a b",
        "SELECT 0",
    ] {
        let r = c.cmd_str(line);
        assert!(!r.starts_with(b"-"), "{line}: {}", render_raw(&r));
    }
    let lib = "#!lua name=snaplib\nredis.register_function('snapget', function(keys, args) return redis.call('GET', keys[1]) end)";
    let r = c.cmd(&[b"FUNCTION", b"LOAD", lib.as_bytes()]);
    assert_eq!(r, b"$7\r\nsnaplib\r\n");
    for i in 0..300 {
        c.cmd_str(&format!("SET key:{i} {i}"));
        c.cmd_str(&format!("RPUSH biglist {}", "x".repeat(i % 50 + 1)));
        c.cmd_str(&format!("HSET bighash f{i} {}", "v".repeat(i % 70)));
        c.cmd_str(&format!("SADD bigset m{i}"));
        c.cmd_str(&format!("ZADD bigzset {i} m{i}"));
    }
}

#[test]
fn save_and_restart_with_any_shard_count_keeps_every_key() {
    let dir = tmp_dir("equiv");
    let s = start(4, &dir, &[]);
    let mut c = s.conn();
    fill(&mut c);
    let before = digest(&s);
    let ttl = c.cmd_str("PEXPIRETIME s2");
    let last = c.cmd_str("LASTSAVE");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(c.cmd_str("SAVE"), b"+OK\r\n");
    assert_ne!(c.cmd_str("LASTSAVE"), last, "LASTSAVE moves");
    let i = info(&mut c);
    assert_eq!(field(&i, "rdb_last_bgsave_status"), "ok", "{i}");
    assert_eq!(field(&i, "rdb_changes_since_last_save"), "0", "{i}");
    assert_eq!(field(&i, "rdb_saves"), "1", "{i}");
    drop(c);
    drop(s); // SIGKILL: only the snapshot survives
    for shards in [4, 1, 3] {
        let s = start(shards, &dir, &[]);
        assert_eq!(digest(&s), before, "{shards} shards");
        let mut c = s.conn();
        assert_eq!(c.cmd_str("PEXPIRETIME s2"), ttl);
        assert_eq!(c.cmd_str("FCALL snapget 1 s1"), b"$5\r\nhello\r\n");
        let i = info(&mut c);
        let loaded: u64 = field(&i, "rdb_last_load_keys_loaded").parse().unwrap();
        assert!(loaded > 300, "{i}");
        // A snapshot by this shard count, for the next round.
        assert_eq!(c.cmd_str("SAVE"), b"+OK\r\n");
    }
    // Plain (uncompressed) shard files are RDB files stock tools accept.
    let s = start(2, &dir, &["--snapshot-compression", "none"]);
    let mut c = s.conn();
    assert_eq!(c.cmd_str("BGSAVE"), b"+Background saving started\r\n");
    wait_saved(&mut c);
    let manifest = std::fs::read_to_string(dir.join("dump.rdb.manifest")).unwrap();
    assert!(manifest.contains("compression none"), "{manifest}");
    let files: Vec<String> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("file "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(files.len(), 2);
    // The old snapshot's files are gone.
    let on_disk = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.ends_with(".rdb") || n.ends_with(".rdb.zst")
        })
        .count();
    assert_eq!(
        on_disk,
        2,
        "{:?}",
        std::fs::read_dir(&dir).unwrap().collect::<Vec<_>>()
    );
    if redis_tools() {
        for f in &files {
            let out = Command::new("redis-check-rdb")
                .arg(dir.join(f))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("RDB looks OK"), "{f}: {text}");
        }
    }
    drop(c);
    drop(s);
    let s = start(4, &dir, &[]);
    assert_eq!(digest(&s), before, "from plain files");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_snapshot_is_one_point_in_time_under_concurrent_writes() {
    let dir = tmp_dir("cut");
    let s = start(4, &dir, &[]);
    let mut c = s.conn();
    // Enough data that the walk takes a while, so writes land during it.
    let payload = "p".repeat(200);
    for chunk in 0..40 {
        let mut args: Vec<Vec<u8>> = vec![b"MSET".to_vec()];
        for i in 0..1000 {
            args.push(format!("bulk:{}", chunk * 1000 + i).into_bytes());
            args.push(payload.as_bytes().to_vec());
        }
        let refs: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        assert_eq!(c.cmd(&refs), b"+OK\r\n");
    }
    c.cmd_str("SELECT 2");
    c.cmd_str("SET indb2 before");
    c.cmd_str("SELECT 0");
    c.cmd_str("SET flushed:probe x");
    // Writers: pairs of keys on different shards set together by one multi-shard MSET, and
    // single keys overwritten and deleted.
    let stop = Arc::new(AtomicBool::new(false));
    let port = s.port;
    let mut writers = Vec::new();
    for w in 0..3 {
        let stop = stop.clone();
        writers.push(std::thread::spawn(move || {
            let mut c = RawConn::connect(port);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let v = n.to_string();
                let i = n % 50;
                let r = c.cmd(&[
                    b"MSET",
                    format!("pair:{w}:{i}:a").as_bytes(),
                    v.as_bytes(),
                    format!("pair:{w}:{i}:b").as_bytes(),
                    v.as_bytes(),
                ]);
                assert_eq!(r, b"+OK\r\n");
                c.cmd(&[
                    b"SET",
                    format!("bulk:{}", (n * 7919) % 40000).as_bytes(),
                    b"new",
                ]);
                c.cmd(&[b"DEL", format!("bulk:{}", (n * 104729) % 40000).as_bytes()]);
            }
            n
        }));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c.cmd_str("BGSAVE"), b"+Background saving started\r\n");
    // While the walk runs: a flush of db 2 and a swap must not leak into the snapshot.
    c.cmd_str("SWAPDB 2 5");
    c.cmd_str("SELECT 5");
    c.cmd_str("FLUSHDB");
    c.cmd_str("SELECT 0");
    let i = wait_saved(&mut c);
    assert_eq!(field(&i, "rdb_last_bgsave_status"), "ok", "{i}");
    let cow: u64 = field(&i, "rdb_last_cow_size").parse().unwrap();
    assert!(cow > 0, "no write landed during the walk: {i}");
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    drop(c);
    drop(s); // SIGKILL
    let s = start(2, &dir, &[]);
    let mut c = s.conn();
    // Whatever instant the cut was, each pair was written by one atomic MSET.
    for w in 0..3 {
        for i in 0..50 {
            let a = c.cmd_str(&format!("GET pair:{w}:{i}:a"));
            let b = c.cmd_str(&format!("GET pair:{w}:{i}:b"));
            assert_eq!(a, b, "pair {w}:{i} split by the snapshot");
        }
    }
    // The swap and the flush came after the cut: db 2 still has its key, db 5 nothing.
    c.cmd_str("SELECT 2");
    assert_eq!(c.cmd_str("GET indb2"), b"$6\r\nbefore\r\n");
    c.cmd_str("SELECT 5");
    assert_eq!(c.cmd_str("DBSIZE"), b":0\r\n");
    c.cmd_str("SELECT 0");
    // Every bulk key is there with its old or new value, or was deleted after... never torn.
    let n: i64 = String::from_utf8_lossy(&c.cmd_str("DBSIZE"))
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!(n > 30_000, "{n} keys");
    drop(c);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn acknowledged_writes_before_save_are_in_it_and_flushall_saves_with_rules() {
    let dir = tmp_dir("ack");
    let s = start(4, &dir, &[]);
    let mut c = s.conn();
    for i in 0..500 {
        c.cmd_str(&format!("SET a:{i} {i}"));
    }
    assert_eq!(c.cmd_str("SAVE"), b"+OK\r\n");
    c.cmd_str("SET after:save 1");
    drop(c);
    drop(s);
    let s = start(4, &dir, &["--save", "3600 1"]);
    let mut c = s.conn();
    assert_eq!(c.cmd_str("DBSIZE"), b":500\r\n");
    assert_eq!(c.cmd_str("EXISTS after:save"), b":0\r\n");
    // With save rules, FLUSHALL saves at once: the data does not come back.
    assert_eq!(c.cmd_str("FLUSHALL"), b"+OK\r\n");
    drop(c);
    drop(s);
    let s = start(4, &dir, &[]);
    assert_eq!(s.conn().cmd_str("DBSIZE"), b":0\r\n");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn save_rules_shutdown_and_sigterm_save() {
    let dir = tmp_dir("rules");
    let s = start(2, &dir, &["--save", "1 3"]);
    let mut c = s.conn();
    c.cmd_str("SET one 1");
    c.cmd_str("SET two 2");
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(field(&info(&mut c), "rdb_saves"), "0", "2 changes < 3");
    c.cmd_str("SET three 3");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let i = info(&mut c);
        if field(&i, "rdb_saves") == "1" && field(&i, "rdb_bgsave_in_progress") == "0" {
            assert_eq!(field(&i, "rdb_changes_since_last_save"), "0", "{i}");
            break;
        }
        assert!(Instant::now() < deadline, "rule never fired: {i}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SHUTDOWN NOSAVE: the last write is lost.
    c.cmd_str("SET four 4");
    let mut s = s;
    c.send(b"SHUTDOWN NOSAVE\r\n");
    assert!(s.wait_exit(Duration::from_secs(10)));
    drop(s);
    let s = start(2, &dir, &["--save", ""]);
    let mut c = s.conn();
    assert_eq!(c.cmd_str("DBSIZE"), b":3\r\n");
    // SHUTDOWN SAVE without rules saves.
    c.cmd_str("SET five 5");
    let mut s = s;
    c.send(b"SHUTDOWN SAVE\r\n");
    assert!(s.wait_exit(Duration::from_secs(10)));
    drop(s);
    // SIGTERM with rules saves.
    let mut s = start(3, &dir, &["--save", "3600 1"]);
    let mut c = s.conn();
    assert_eq!(c.cmd_str("DBSIZE"), b":4\r\n");
    c.cmd_str("SET six 6");
    Command::new("kill")
        .args(["-TERM", &s.pid().to_string()])
        .status()
        .unwrap();
    assert!(s.wait_exit(Duration::from_secs(10)));
    drop(s);
    let s = start(1, &dir, &[]);
    assert_eq!(s.conn().cmd_str("DBSIZE"), b":5\r\n");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two shards with save rules, uncompressed snapshots and a file-size limit that makes writes
/// past 64 KiB fail (EFBIG), like a full disk.
fn spawn_with_failing_saves(dir: &str) -> (std::process::Child, u16) {
    spawn_tessera_fsize_limited(
        &[
            "--shards",
            "2",
            "--dir",
            dir,
            "--save",
            "3600 1",
            "--snapshot-compression",
            "none",
            "--rdbcompression",
            "no",
        ],
        64 * 1024,
    )
}

#[test]
fn bgsave_replies_and_a_failed_save_refuses_writes_until_one_succeeds() {
    let dir = tmp_dir("fail");
    let d = dir.display().to_string();
    let (mut child, port) = spawn_with_failing_saves(&d);
    let mut c = RawConn::connect(port);
    assert_eq!(c.cmd_str("BGSAVE now"), b"-ERR syntax error\r\n");
    assert_eq!(c.cmd_str("BGSAVE a b"), b"-ERR syntax error\r\n");
    assert_eq!(
        c.cmd_str("SAVE x"),
        b"-ERR wrong number of arguments for 'save' command\r\n"
    );
    assert_eq!(
        c.cmd_str("LASTSAVE x"),
        b"-ERR wrong number of arguments for 'lastsave' command\r\n"
    );
    assert_eq!(
        c.cmd_str("BGSAVE SCHEDULE"),
        b"+Background saving started\r\n"
    );
    wait_saved(&mut c);
    c.cmd_str("SET k v");
    let big = "x".repeat(200_000);
    assert_eq!(c.cmd(&[b"SET", b"big", big.as_bytes()]), b"+OK\r\n");
    assert_eq!(c.cmd_str("SAVE"), b"-ERR\r\n");
    let i = info(&mut c);
    assert_eq!(field(&i, "rdb_last_bgsave_status"), "err", "{i}");
    let r = c.cmd_str("SET k2 v");
    assert!(
        r.starts_with(b"-MISCONF Redis is configured to save RDB snapshots"),
        "{}",
        render_raw(&r)
    );
    assert_eq!(c.cmd_str("GET k"), b"$1\r\nv\r\n", "reads go on");
    // The switch is read at each write, like Redis.
    assert_eq!(
        c.cmd_str("CONFIG SET stop-writes-on-bgsave-error no"),
        b"+OK\r\n"
    );
    assert_eq!(c.cmd_str("DEL big"), b":1\r\n");
    assert_eq!(
        c.cmd_str("CONFIG SET stop-writes-on-bgsave-error yes"),
        b"+OK\r\n"
    );
    assert!(c.cmd_str("SET k2 v").starts_with(b"-MISCONF"));
    assert_eq!(c.cmd_str("BGSAVE"), b"+Background saving started\r\n");
    let i = wait_saved(&mut c);
    assert_eq!(field(&i, "rdb_last_bgsave_status"), "ok", "{i}");
    assert_eq!(c.cmd_str("SET k2 v"), b"+OK\r\n");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn damaged_snapshots_are_refused_with_the_file_and_reason() {
    let dir = tmp_dir("bad");
    let s = start(2, &dir, &["--snapshot-compression", "none"]);
    let mut c = s.conn();
    for i in 0..200 {
        c.cmd_str(&format!("SET k{i} {}", "v".repeat(i)));
    }
    assert_eq!(c.cmd_str("SAVE"), b"+OK\r\n");
    drop(c);
    drop(s);
    let manifest = std::fs::read_to_string(dir.join("dump.rdb.manifest")).unwrap();
    let f0 = manifest
        .lines()
        .find_map(|l| l.strip_prefix("file "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let path = dir.join(&f0);
    let good = std::fs::read(&path).unwrap();
    let refuses = |what: &str, want: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["--port", &free_port().to_string(), "--dir"])
            .arg(&dir)
            .args(["--shards", "2", "--save", ""])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{what}: started");
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(want), "{what}: {text}");
    };
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    std::fs::write(&path, &bad).unwrap();
    refuses("flipped byte", &f0);
    std::fs::write(&path, &good[..good.len() - 20]).unwrap();
    refuses("truncated", &f0);
    std::fs::remove_file(&path).unwrap();
    refuses("missing shard file", &f0);
    std::fs::write(&path, &good).unwrap();
    std::fs::write(dir.join("dump.rdb.manifest"), "garbage\n").unwrap();
    refuses("bad manifest", "dump.rdb.manifest");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every key of databases 0, 3 and 15 with its type, contents (sorted where Redis's order is
/// not defined) and whether it has a deadline: what must survive a trip between servers.
fn contents(c: &mut RawConn) -> Vec<String> {
    let mut out = Vec::new();
    for db in [0, 3, 15] {
        c.cmd_str(&format!("SELECT {db}"));
        let keys = bulks(&c.cmd_str("KEYS *"));
        for k in keys {
            let ty = String::from_utf8_lossy(&c.cmd(&[b"TYPE", k.as_bytes()])).to_string();
            let mut items = match ty.trim() {
                "+string" => vec![c.cmd(&[b"GET", k.as_bytes()])],
                "+list" => vec![c.cmd(&[b"LRANGE", k.as_bytes(), b"0", b"-1"])],
                "+set" => bulks(&c.cmd(&[b"SMEMBERS", k.as_bytes()]))
                    .into_iter()
                    .map(String::into_bytes)
                    .collect(),
                "+hash" => bulks(&c.cmd(&[b"HGETALL", k.as_bytes()]))
                    .chunks(2)
                    .map(|p| p.join("=").into_bytes())
                    .collect(),
                "+zset" => vec![c.cmd(&[b"ZRANGE", k.as_bytes(), b"0", b"-1", b"WITHSCORES"])],
                other => panic!("unexpected type {other}"),
            };
            items.sort();
            let ttl = c.cmd(&[b"PTTL", k.as_bytes()]) != b":-1\r\n";
            out.push(format!("{db} {k} {} ttl={ttl} {:?}", ty.trim(), items));
        }
    }
    c.cmd_str("SELECT 0");
    out.sort();
    out
}

/// The bulk strings of a flat array reply.
fn bulks(reply: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(reply).to_string();
    let lines: Vec<&str> = text.split("\r\n").collect();
    let mut out = Vec::new();
    let mut i = 1;
    while i + 1 < lines.len() {
        if lines[i].starts_with('$') {
            out.push(lines[i + 1].to_string());
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn a_dump_written_by_redis_loads_and_ours_loads_into_redis() {
    let Some(r) = start_redis() else {
        return;
    };
    let dir = tmp_dir("redis");
    let mut rc = r.conn();
    fill(&mut rc);
    // Encodings beyond the small ones.
    rc.cmd_str("CONFIG SET list-max-listpack-size 4");
    for i in 0..20 {
        rc.cmd_str(&format!("RPUSH quick {i}"));
    }
    let want = contents(&mut rc);
    assert!(want.len() > 300);
    assert_eq!(rc.cmd_str("SAVE"), b"+OK\r\n");
    std::fs::copy(r.dir().join("dump.rdb"), dir.join("dump.rdb")).unwrap();
    drop(rc);
    drop(r);
    let s = start(4, &dir, &["--snapshot-compression", "none"]);
    let mut c = s.conn();
    assert_eq!(
        contents(&mut c),
        want,
        "Redis's dump.rdb spread over 4 shards"
    );
    assert_eq!(c.cmd_str("FCALL snapget 1 s1"), b"$5\r\nhello\r\n");
    // And back: our shard files, merged by the offline export, load into Redis. Here: each
    // shard file alone is a valid RDB Redis loads with that shard's keys.
    assert_eq!(c.cmd_str("SAVE"), b"+OK\r\n");
    drop(c);
    drop(s);
    let manifest = std::fs::read_to_string(dir.join("dump.rdb.manifest")).unwrap();
    let mut merged = Vec::new();
    for f in manifest.lines().filter_map(|l| l.strip_prefix("file ")) {
        let name = f.split_whitespace().next().unwrap();
        let r = redis_on_file(&dir, name);
        merged.extend(contents(&mut r.conn()));
    }
    merged.sort();
    assert_eq!(merged, want, "Redis loads every shard file");
    let _ = std::fs::remove_dir_all(&dir);
}

/// BGSAVE inside EXEC is only scheduled (the cron starts it), SAVE cannot be queued: the same
/// replies as redis-server, and the scheduled snapshot does happen.
#[test]
fn bgsave_in_exec_is_scheduled_and_save_is_refused_in_multi_like_redis() {
    let dir = tmp_dir("multi");
    let s = start(2, &dir, &[]);
    let script = [
        "MULTI",
        "BGSAVE",
        "SAVE",
        "EXEC",
        "MULTI",
        "BGSAVE",
        "EXEC",
        "BGSAVE SCHEDULE x",
    ];
    let run = |c: &mut RawConn| -> Vec<Vec<u8>> { script.iter().map(|l| c.cmd_str(l)).collect() };
    let ours = run(&mut s.conn());
    if let Some(r) = start_redis() {
        assert_eq!(ours, run(&mut r.conn()), "replies differ from redis-server");
    }
    assert_eq!(ours[5], b"+QUEUED\r\n");
    assert_eq!(ours[6], b"*1\r\n+Background saving scheduled\r\n");
    let mut c = s.conn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while field(&info(&mut c), "rdb_saves") != "1" {
        assert!(Instant::now() < deadline, "the scheduled BGSAVE never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_saved(&mut c);
    assert!(dir.join("dump.rdb.manifest").exists());
    drop(c);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_final_save_refuses_shutdown_and_sigterm_unless_forced() {
    let dir = tmp_dir("shutdown-fail");
    let d = dir.display().to_string();
    // Replies checked against redis-server 7.0.15 whose final save fails (its dump.rdb made a
    // directory): SHUTDOWN [SAVE|NOW] answer the error and it keeps serving, as after SIGTERM
    // and SIGINT; SHUTDOWN FORCE exits anyway.
    let (mut child, port) = spawn_with_failing_saves(&d);
    let mut c = RawConn::connect(port);
    let big = "x".repeat(200_000);
    assert_eq!(c.cmd(&[b"SET", b"big", big.as_bytes()]), b"+OK\r\n");
    assert_eq!(c.cmd_str("SET k v"), b"+OK\r\n");
    for line in [
        "SHUTDOWN",
        "SHUTDOWN SAVE",
        "SHUTDOWN NOW",
        "shutdown save now",
    ] {
        assert_eq!(
            c.cmd_str(line),
            b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n",
            "{line}"
        );
        assert_eq!(c.cmd_str("GET k"), b"$1\r\nv\r\n", "serving after {line}");
    }
    for (line, want) in [
        ("SHUTDOWN ABORT", &b"-ERR No shutdown in progress.\r\n"[..]),
        ("SHUTDOWN ABORT ABORT", b"-ERR No shutdown in progress.\r\n"),
        ("SHUTDOWN NOSAVE ABORT", b"-ERR syntax error\r\n"),
        ("SHUTDOWN ABORT NOW", b"-ERR syntax error\r\n"),
        ("SHUTDOWN FORCE NOW X", b"-ERR syntax error\r\n"),
        ("SHUTDOWN NOSAVE SAVE", b"-ERR syntax error\r\n"),
    ] {
        assert_eq!(c.cmd_str(line), want, "{line}");
    }
    for sig in ["-TERM", "-INT"] {
        Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(800));
        assert!(child.try_wait().unwrap().is_none(), "exited on {sig}");
        assert_eq!(c.cmd_str("GET k"), b"$1\r\nv\r\n", "serving after {sig}");
        // Clients of every shard are still connected and served.
        let mut other = RawConn::connect(port);
        assert_eq!(other.cmd_str("PING"), b"+PONG\r\n");
    }
    c.send(b"SHUTDOWN FORCE\r\n");
    assert!(c.wait_closed(Duration::from_secs(10)).is_ok());
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "SHUTDOWN FORCE did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// rdb_changes_since_last_save after each command, next to redis-server 7.0 (both with
/// `save ""`, so the counter never resets): Redis's `server.dirty` counts what a command
/// changed (fields, members, elements, keys), and nothing for a write that changed nothing.
#[test]
fn changes_since_last_save_count_like_redis() {
    let Some(redis) = start_redis() else {
        return;
    };
    let tessera = start_tessera(2, &[]);
    let (mut r, mut t) = (redis.conn(), tessera.conn());
    for line in [
        "SET a 1",
        "SET a 1 NX",
        "SET b 2 XX",
        "SET a 2 EX 100",
        "SETEX c 100 v",
        "SETNX c v",
        "MSET {x}1 1 {x}2 2 {x}3 3",
        "MSETNX {x}1 1 {x}q 2",
        "MSETNX {x}q 1 {x}w 2",
        "INCR n",
        "INCRBY n 5",
        "INCRBYFLOAT f 1.5",
        "APPEND a xyz",
        "SETRANGE a 1 Q",
        "SETRANGE a 1 ''",
        "GETDEL nokey",
        "GETDEL {x}w",
        "GETEX a PX 5000",
        "GETEX a",
        "GETEX a PERSIST",
        "DEL {x}1 {x}2 nokey",
        "UNLINK {x}3 {x}q",
        "EXPIRE a 100",
        "EXPIRE nokey 100",
        "EXPIRE a 100 NX",
        "PERSIST a",
        "PERSIST a",
        "RENAME a a",
        "RENAMENX a a",
        "HSET h f1 v f2 v",
        "HSET h f1 v f3 v",
        "HSETNX h f1 v",
        "HDEL h f1 nokey f2",
        "HDEL noh f",
        "HINCRBY h c 1",
        "SADD s a b c",
        "SADD s a d",
        "SREM s a zz",
        "SREM nos a",
        "LPUSH l a b c",
        "RPUSH l d",
        "LPUSHX nol a",
        "LPOP l",
        "LPOP l 2",
        "RPOP l 5",
        "LPOP l",
        "ZADD z 1 a 2 b",
        "ZADD z 1 a 3 b 4 c",
        "ZADD z XX 5 nomember",
        "ZADD z INCR 1 a",
        "ZREM z a zz",
        "ZINCRBY z 1 b",
        "RENAME h {h}2",
        "RENAMENX {h}2 {h}2",
        "COPY {h}2 {h}3",
        "COPY nokey {h}4",
        "MOVE c 3",
        "FLUSHDB",
        "SET a 1",
        "SET b 1",
        "FLUSHALL",
        "FLUSHALL",
    ] {
        let rr = r.cmd_str(line);
        let tr = t.cmd_str(line);
        assert_eq!(render_raw(&tr), render_raw(&rr), "{line}");
        let (ri, ti) = (info(&mut r), info(&mut t));
        assert_eq!(
            field(&ti, "rdb_changes_since_last_save"),
            field(&ri, "rdb_changes_since_last_save"),
            "after {line}"
        );
    }
}

/// Writes a plain RDB file of `(key, value, deadline in Unix ms)` strings in database 0.
fn write_strings_rdb(path: &Path, keys: &[(&str, &str, u64)]) {
    use tessera::persistence::rdb::{AccessMeta, RdbWriter, WriteOptions};
    use tessera::types::{StrValue, Value};
    let f = std::fs::File::create(path).unwrap();
    let mut w = RdbWriter::new(std::io::BufWriter::new(f), WriteOptions::default()).unwrap();
    let expires = keys.iter().filter(|k| k.2 != 0).count() as u64;
    w.select_db(0, keys.len() as u64, expires).unwrap();
    for (k, v, at) in keys {
        let v = Value::Str(StrValue::from_bytes(v.as_bytes()));
        w.write_entry(k.as_bytes(), &v, *at, AccessMeta::None)
            .unwrap();
    }
    w.finish().unwrap();
}

/// Runs a server on `dir` (Tessera with `args`, or redis-server) until it exits or answers
/// PING; returns whether it started, and its output.
fn starts_on(dir: &Path, redis: bool, args: &[&str]) -> (bool, String) {
    let port = free_port().to_string();
    let log = dir.join("start.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = if redis {
        Command::new("redis-server")
    } else {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
    };
    cmd.args([
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--dir",
    ])
    .arg(dir)
    .args(args)
    .stdout(out.try_clone().unwrap())
    .stderr(out);
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let started = loop {
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        // Raw PING: a server that fails its load may close the connection at any point.
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port.parse().unwrap())) {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
            let mut reply = [0u8; 7];
            if s.write_all(b"PING\r\n").is_ok()
                && s.read_exact(&mut reply).is_ok()
                && &reply == b"+PONG\r\n"
            {
                break true;
            }
        }
        assert!(Instant::now() < deadline, "neither started nor exited");
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    (started, std::fs::read_to_string(&log).unwrap_or_default())
}

/// A file that names a key twice stops the load, as it stops Redis 7.0 ("Duplicated key found
/// in RDB file"), whatever shard count reads it; a first copy that has expired is skipped
/// before it goes in (as in Redis), so the second one loads. Two shard files naming one key
/// are refused the same way.
#[test]
fn a_key_named_twice_stops_the_load_like_redis() {
    let dir = tmp_dir("dup");
    let future = 4_000_000_000_000; // year 2096
    write_strings_rdb(
        &dir.join("dump.rdb"),
        &[
            ("a", "1", 0),
            ("dup", "one", 0),
            ("b", "2", future),
            ("dup", "two", 0),
        ],
    );
    for shards in ["1", "4"] {
        let (started, out) = starts_on(&dir, false, &["--shards", shards]);
        assert!(!started, "{shards} shards: loaded a duplicate key");
        assert!(
            out.contains("Duplicated key found in RDB file") && out.contains("'dup' in DB 0"),
            "{shards} shards: {out}"
        );
    }
    if let Some(r) = start_redis() {
        drop(r);
        let (started, out) = starts_on(&dir, true, &[]);
        assert!(
            !started && out.contains("Duplicated key found in RDB file"),
            "redis-server: {out}"
        );
    }
    // The first copy expired: it is dropped before the second arrives.
    write_strings_rdb(
        &dir.join("dump.rdb"),
        &[("dup", "one", 1_000), ("a", "1", 0), ("dup", "two", 0)],
    );
    for shards in [1, 4] {
        let s = start(shards, &dir, &[]);
        let mut c = s.conn();
        assert_eq!(c.cmd_str("GET dup"), b"$3\r\ntwo\r\n", "{shards} shards");
        assert_eq!(c.cmd_str("DBSIZE"), b":2\r\n");
        let i = info(&mut c);
        assert_eq!(field(&i, "rdb_last_load_keys_expired"), "1", "{i}");
    }
    if let Some(r) = start_redis() {
        drop(r);
        let r = redis_on_file(&dir, "dump.rdb");
        assert_eq!(r.conn().cmd_str("GET dup"), b"$3\r\ntwo\r\n");
    }
    // Two shard files of one snapshot that both hold "x".
    std::fs::remove_file(dir.join("dump.rdb")).unwrap();
    write_strings_rdb(&dir.join("f0.rdb"), &[("x", "0", 0), ("y", "0", 0)]);
    write_strings_rdb(&dir.join("f1.rdb"), &[("z", "1", 0), ("x", "1", 0)]);
    std::fs::write(
        dir.join("dump.rdb.manifest"),
        "tessera-snapshot version 1 shards 2 compression none ctime 1\n\
         file f0.rdb shard 0\nfile f1.rdb shard 1\n",
    )
    .unwrap();
    for shards in ["1", "2", "3"] {
        let (started, out) = starts_on(&dir, false, &["--shards", shards]);
        assert!(!started, "{shards} shards: loaded a key twice");
        assert!(
            out.contains("Duplicated key found in RDB file") && out.contains("'x' in DB 0"),
            "{shards} shards: {out}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Enough keys for many load batches per shard (each batch reserves room and prefetches
/// ahead), values bigger than the loader's read-ahead buffer, deadlines, two databases: the
/// same data after a restart into 1, 4 and 3 shards, zstd-compressed and plain (LZF strings).
#[test]
fn a_large_snapshot_reloads_whole_into_any_shard_count() {
    let dir = tmp_dir("large");
    for compression in ["zstd", "none"] {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let opts = ["--snapshot-compression", compression];
        let s = start(2, &dir, &opts);
        let mut c = s.conn();
        let mut cmds: Vec<Vec<u8>> = Vec::new();
        let n = 12_000;
        for i in 0..n {
            let k = format!("key:{i}");
            let v = match i % 4 {
                0 => i.to_string(),
                1 => "v".repeat(100),
                2 => format!("{i}-{}", "w".repeat(i % 40)),
                _ => format!("a-long-key-name-for-the-heap-{i}"),
            };
            cmds.push(encode(&[b"SET", k.as_bytes(), v.as_bytes()]));
            if i % 5 == 0 {
                cmds.push(encode(&[b"PEXPIRE", k.as_bytes(), b"100000000"]));
            }
            if i % 3 == 0 {
                cmds.push(encode(&[b"HSET", format!("h:{i}").as_bytes(), b"f", b"v"]));
            }
        }
        cmds.push(encode(&[b"SELECT", b"2"]));
        for i in 0..3000 {
            cmds.push(encode(&[b"SET", format!("db2:{i}").as_bytes(), b"x"]));
        }
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        cmds.push(encode(&[b"SET", b"big", &big]));
        cmds.push(encode(&[b"SELECT", b"0"]));
        for chunk in cmds.chunks(500) {
            c.send(&chunk.concat());
            for _ in chunk {
                let r = c.read_reply();
                assert!(!r.starts_with(b"-"), "{}", render_raw(&r));
            }
        }
        let before = digest(&s);
        assert_eq!(
            c.cmd_str("DBSIZE"),
            format!(":{}\r\n", n + n.div_ceil(3)).into_bytes()
        );
        assert_eq!(c.cmd_str("SAVE"), b"+OK\r\n");
        drop(c);
        drop(s);
        for shards in [1, 4, 3] {
            let s = start(shards, &dir, &opts);
            assert_eq!(digest(&s), before, "{compression}, {shards} shards");
            let mut c = s.conn();
            let i = info(&mut c);
            let loaded: usize = field(&i, "rdb_last_load_keys_loaded").parse().unwrap();
            assert_eq!(loaded, n + n.div_ceil(3) + 3001, "{i}");
            assert_eq!(c.cmd(&[b"SELECT", b"2"]), b"+OK\r\n");
            assert_eq!(c.cmd(&[b"STRLEN", b"big"]), b":300000\r\n");
            assert_eq!(c.cmd_str("SAVE"), b"+OK\r\n");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

//! Per-shard AOF: restart equivalence (same and different shard counts, after BGREWRITEAOF),
//! acknowledged writes surviving SIGKILL under `appendfsync always`, and damaged files.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tessera-aof-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn start(shards: usize, dir: &Path, fsync: &str) -> Server {
    start_tessera(
        shards,
        &[
            "--dir",
            &dir.display().to_string(),
            "--appendonly",
            "yes",
            "--appendfsync",
            fsync,
        ],
    )
}

fn digest(s: &Server) -> Vec<u8> {
    s.conn().cmd_str("DEBUG DIGEST")
}

fn fill(s: &Server) {
    let mut c = s.conn();
    for line in [
        "SET s1 hello",
        "SET s2 v EX 1000",
        "SET gone v PX 1",
        "RPUSH l a b c d",
        "LPOP l",
        "SADD st x y z 1 2 3",
        "SREM st y",
        "SPOP st",
        "HSET h f1 v1 f2 v2",
        "HDEL h f1",
        "ZADD z 1 a 2.5 b -inf c",
        "ZINCRBY z 3 a",
        "MSET {t}a 1 {t}b 2 m1 x m2 y m3 z",
        "EXPIRE m1 5000",
        "INCR counter",
        "INCRBY counter 41",
        "APPEND s1 world",
        "SELECT 3",
        "SET db3key v",
        "FLUSHDB",
        "SET db3key2 w",
        "SELECT 0",
        "RPOPLPUSH l l2",
        "SET tmp 1",
        "DEL tmp",
        "SPOP st 2",
        "SADD big 1 2 3 4 5 6 7 8 9 10 a b c",
        "SPOP big",
        "SPOP big 3",
        // Alive when these ran, expired by the restart: replay must not expire them first.
        "SET p v PX 150",
        "PERSIST p",
        "SET q v PX 150",
        "RENAME q q2",
        "PERSIST q2",
        "SET r 5 PX 150",
        "INCR r",
        "PERSIST r",
    ] {
        let r = c.cmd_str(line);
        assert!(!r.starts_with(b"-"), "{line}: {}", render_raw(&r));
    }
    for i in 0..200 {
        c.cmd_str(&format!("SET key:{i} {i}"));
        c.cmd_str(&format!("HSET hash:{} f{i} {i}", i % 7));
    }
    let mut c2 = s.conn();
    assert_eq!(c2.cmd_str("MULTI"), b"+OK\r\n");
    c2.cmd_str("SET x1 1");
    c2.cmd_str("LPUSH x2 a");
    c2.cmd_str("INCR x3");
    let r = c2.cmd_str("EXEC");
    assert!(r.starts_with(b"*3"), "{}", render_raw(&r));
}

#[test]
fn restart_equivalence_across_shard_counts_and_rewrites() {
    let dir = tmp_dir("equiv");
    let s = start(4, &dir, "always");
    fill(&s);
    std::thread::sleep(Duration::from_millis(200));
    let before = digest(&s);
    let ttl = s.conn().cmd_str("PEXPIRETIME s2");
    drop(s); // SIGKILL
    let s = start(4, &dir, "always");
    assert_eq!(digest(&s), before, "same shard count");
    assert_eq!(
        s.conn().cmd_str("PEXPIRETIME s2"),
        ttl,
        "absolute deadline kept"
    );
    assert_eq!(s.conn().cmd_str("EXISTS gone"), b":0\r\n");
    assert_eq!(
        s.conn().cmd_str("MGET p q2 r"),
        b"*3\r\n$1\r\nv\r\n$1\r\nv\r\n$1\r\n6\r\n"
    );
    drop(s);
    let s = start(1, &dir, "always");
    assert_eq!(digest(&s), before, "4 -> 1 shard");
    drop(s);
    let s = start(3, &dir, "everysec");
    assert_eq!(digest(&s), before, "1 -> 3 shards");
    let mut c = s.conn();
    assert_eq!(
        c.cmd_str("BGREWRITEAOF"),
        b"+Background append only file rewriting started\r\n"
    );
    for _ in 0..200 {
        let info = String::from_utf8_lossy(&c.cmd_str("INFO persistence")).to_string();
        if info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrites:2") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let info = String::from_utf8_lossy(&c.cmd_str("INFO persistence")).to_string();
    assert!(info.contains("aof_enabled:1"), "{info}");
    assert!(info.contains("aof_last_bgrewrite_status:ok"), "{info}");
    c.cmd_str("SET after rewrite");
    let after = digest(&s);
    // Let everysec reach the kernel, then a clean shutdown.
    std::thread::sleep(Duration::from_millis(100));
    drop(c);
    drop(s);
    let s = start(2, &dir, "no");
    assert_eq!(digest(&s), after, "after BGREWRITEAOF");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn acknowledged_writes_survive_sigkill_with_appendfsync_always() {
    crash_cycles("always");
}

#[test]
fn acknowledged_writes_survive_sigkill_with_appendfsync_everysec() {
    crash_cycles("everysec");
}

fn bulk_or_nil(r: &Value) -> Option<Vec<u8>> {
    r.as_bytes().map(|b| b.to_vec())
}

/// SIGKILL at varying points of a pipelined stream of single-shard SETs, cross-shard MSETs and
/// cross-shard MULTI/EXEC blocks: every acknowledged write is there after the restart, and
/// every multi-shard unit is there on all its shards or on none.
fn crash_cycles(fsync: &str) {
    let dir = tmp_dir(&format!("crash-{fsync}"));
    let mut acked: Vec<u32> = Vec::new();
    let mut next = 0u32;
    for cycle in 0..6 {
        let s = start(4, &dir, "always");
        let mut c = s.conn();
        for i in &acked {
            assert_eq!(
                c.cmd_str(&format!("GET k{i}")),
                format!("${}\r\n{i}\r\n", i.to_string().len()).into_bytes(),
                "cycle {cycle}: acknowledged k{i} lost"
            );
            let r = c.cmd_str(&format!("MGET a{{{i}}} b{i}"));
            assert_eq!(
                r,
                format!(
                    "*2\r\n${}\r\n{i}\r\n${}\r\n{i}\r\n",
                    i.to_string().len(),
                    i.to_string().len()
                )
                .into_bytes(),
                "cycle {cycle}: cross-shard MSET {i}"
            );
        }
        for i in 0..next {
            let r = resp_parse(&c.cmd_str(&format!("MGET a{{{i}}} b{i} c{{{i}}} d{i}")));
            let v: Vec<Option<Vec<u8>>> = r.items().unwrap().iter().map(bulk_or_nil).collect();
            assert_eq!(
                v[0], v[1],
                "cycle {cycle}: MSET {i} applied on one shard only"
            );
            assert_eq!(
                v[2], v[3],
                "cycle {cycle}: EXEC {i} applied on one shard only"
            );
        }
        // Pipeline writes; kill the server while replies are still arriving.
        let n = 150;
        let mut pipe = Vec::new();
        for i in next..next + n {
            pipe.extend(encode(&[
                b"SET",
                format!("k{i}").as_bytes(),
                i.to_string().as_bytes(),
            ]));
            pipe.extend(encode(&[
                b"MSET",
                format!("a{{{i}}}").as_bytes(),
                i.to_string().as_bytes(),
                format!("b{i}").as_bytes(),
                i.to_string().as_bytes(),
            ]));
            pipe.extend(encode(&[b"MULTI"]));
            pipe.extend(encode(&[b"SET", format!("c{{{i}}}").as_bytes(), b"x"]));
            pipe.extend(encode(&[b"SET", format!("d{i}").as_bytes(), b"x"]));
            pipe.extend(encode(&[b"EXEC"]));
        }
        c.send(&pipe);
        let stop_after = 20 + (cycle as u32 * 37) % 120;
        for i in next..next + stop_after {
            assert_eq!(c.read_reply(), b"+OK\r\n");
            assert_eq!(c.read_reply(), b"+OK\r\n");
            assert_eq!(c.read_reply(), b"+OK\r\n");
            assert_eq!(c.read_reply(), b"+QUEUED\r\n");
            assert_eq!(c.read_reply(), b"+QUEUED\r\n");
            assert_eq!(c.read_reply(), b"*2\r\n+OK\r\n+OK\r\n");
            acked.push(i);
        }
        next += n;
        drop(s); // SIGKILL mid-stream
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn wait_info(c: &mut RawConn, want: &[&str]) -> String {
    for _ in 0..300 {
        let info = String::from_utf8_lossy(&c.cmd_str("INFO persistence")).to_string();
        if want.iter().all(|w| info.contains(w)) {
            return info;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    String::from_utf8_lossy(&c.cmd_str("INFO persistence")).to_string()
}

#[test]
fn config_set_appendonly_starts_and_stops_logging_and_auto_rewrite_triggers() {
    let dir = tmp_dir("runtime");
    let s = start_tessera(2, &["--dir", &dir.display().to_string()]);
    let mut c = s.conn();
    c.cmd_str("SET before 1");
    c.cmd_str("RPUSH l a b");
    let info = String::from_utf8_lossy(&c.cmd_str("INFO persistence")).to_string();
    assert!(info.contains("aof_enabled:0"), "{info}");
    assert_eq!(c.cmd_str("CONFIG SET appendonly yes"), b"+OK\r\n");
    let info = wait_info(
        &mut c,
        &[
            "aof_enabled:1",
            "aof_rewrites:1",
            "aof_rewrite_in_progress:0",
        ],
    );
    assert!(info.contains("aof_last_bgrewrite_status:ok"), "{info}");
    c.cmd_str("SET after 2");
    c.cmd_str("CONFIG SET auto-aof-rewrite-min-size 1");
    c.cmd_str("CONFIG SET auto-aof-rewrite-percentage 1");
    for i in 0..50 {
        c.cmd_str(&format!("SET grow{i} {}", "x".repeat(100)));
    }
    let info = wait_info(&mut c, &["aof_rewrites:2"]);
    assert!(
        info.contains("aof_rewrites:2") || info.contains("aof_rewrites:3"),
        "{info}"
    );
    c.cmd_str("CONFIG SET auto-aof-rewrite-percentage 0");
    let want = digest(&s);
    assert_eq!(c.cmd_str("CONFIG SET appendonly no"), b"+OK\r\n");
    wait_info(&mut c, &["aof_enabled:0"]);
    // Every shard's cron stops its writer within a tick.
    std::thread::sleep(Duration::from_millis(300));
    c.cmd_str("SET not-logged 3");
    drop(c);
    drop(s);
    let s = start(4, &dir, "everysec");
    assert_eq!(digest(&s), want);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_aof_write_refuses_writes_with_misconf_while_reads_go_on() {
    use std::os::unix::process::CommandExt;
    let dir = tmp_dir("efbig");
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--shards",
        "1",
        "--dir",
        &dir.display().to_string(),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    // SAFETY: only async-signal-safe setrlimit between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 64 * 1024,
                rlim_max: 64 * 1024,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut up = false;
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(up, "server did not start");
    let mut c = RawConn::connect(port);
    let value = "v".repeat(4096);
    let mut refused = None;
    for i in 0..200 {
        let r = c.cmd_str(&format!("SET k{i} {value}"));
        if r.starts_with(b"-") {
            refused = Some(String::from_utf8_lossy(&r).to_string());
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let refused = refused.expect("writes were never refused");
    assert_eq!(
        refused,
        "-MISCONF Errors writing to the AOF file: File too large\r\n"
    );
    assert_eq!(
        c.cmd_str("GET k0"),
        format!("$4096\r\n{value}\r\n").into_bytes()
    );
    let info = String::from_utf8_lossy(&c.cmd_str("INFO persistence")).to_string();
    assert!(info.contains("aof_last_write_status:err"), "{info}");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

fn run_bin(dir: &Path, truncated: &str) -> (bool, String) {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--shards",
            "2",
            "--dir",
            &dir.display().to_string(),
            "--appendonly",
            "yes",
            "--aof-load-truncated",
            truncated,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..300 {
        if let Ok(Some(_)) = child.try_wait() {
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stderr).to_string()
                + &String::from_utf8_lossy(&out.stdout);
            return (false, text);
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let mut c = RawConn::connect(port);
            let v = c.cmd_str("GET k1");
            let _ = child.kill();
            let _ = child.wait();
            return (true, String::from_utf8_lossy(&v).to_string());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("server neither started nor exited");
}

fn incr_file(dir: &Path) -> PathBuf {
    let m = std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
    let name = m
        .lines()
        .find(|l| l.contains("type i"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .to_string();
    dir.join("appendonlydir").join(name)
}

#[test]
fn torn_tails_corruption_and_missing_manifest() {
    let dir = tmp_dir("torn");
    let s = start(1, &dir, "always");
    let mut c = s.conn();
    c.cmd_str("SET k1 v1");
    drop(c);
    drop(s);
    // 1 shard wrote it; the loader below runs with 2 shards (re-routed).
    let incr = incr_file(&dir);
    let good = std::fs::read(&incr).unwrap();
    assert!(!good.is_empty());
    let mut torn = good.clone();
    torn.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$2\r\nk2");
    std::fs::write(&incr, &torn).unwrap();
    let (ok, text) = run_bin(&dir, "no");
    assert!(!ok, "refused a torn tail");
    assert!(
        text.contains("Unexpected end of file") && text.contains(&format!("offset {}", good.len())),
        "{text}"
    );
    // run_bin with "yes" rewrites the files; restore the torn layout afterwards is not needed.
    let (ok, text) = run_bin(&dir, "yes");
    assert!(ok, "{text}");
    assert_eq!(text, "$2\r\nv1\r\n");
    // A corrupted byte in the middle is refused whatever aof-load-truncated says.
    let incr = incr_file(&dir);
    let base = std::fs::read_dir(dir.join("appendonlydir"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.to_string_lossy().ends_with(".base.aof") && std::fs::metadata(p).unwrap().len() > 0
        })
        .unwrap_or(incr);
    let mut bytes = std::fs::read(&base).unwrap();
    bytes[1] = b'x';
    std::fs::write(&base, &bytes).unwrap();
    let (ok, text) = run_bin(&dir, "yes");
    assert!(!ok);
    assert!(text.contains("Bad file format"), "{text}");
    // Missing manifest with AOF files present.
    std::fs::remove_file(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
    let (ok, text) = run_bin(&dir, "yes");
    assert!(!ok);
    assert!(text.contains("no manifest"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

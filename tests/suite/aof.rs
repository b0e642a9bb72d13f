//! Per-shard AOF: restart equivalence (same and different shard counts, after BGREWRITEAOF),
//! acknowledged writes surviving SIGKILL under each `appendfsync` policy (and across changes of it), and damaged files.

use crate::common::*;

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
        assert!(
            !r.starts_with(b"-"),
            "{line}: {}",
            String::from_utf8_lossy(&r)
        );
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
    assert!(r.starts_with(b"*3"), "{}", String::from_utf8_lossy(&r));
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
    // Like Redis, replaying counts in no statistics: only the harness's PING (it waits for the
    // server with one) and INFO show.
    let mut c = s.conn();
    let names = |text: &[u8], prefix: &str| -> Vec<String> {
        String::from_utf8_lossy(text)
            .lines()
            .filter_map(|l| l.strip_prefix(prefix)?.split(':').next().map(String::from))
            .collect()
    };
    assert_eq!(names(&c.cmd_str("INFO commandstats"), "cmdstat_"), ["ping"]);
    let mut latency = names(&c.cmd_str("INFO latencystats"), "latency_percentiles_usec_");
    latency.sort();
    assert_eq!(latency, ["info", "ping"]);
    drop(c);
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
    let info = rewrite_once_more(&mut c);
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
    crash_cycles("always", &["always"]);
}

#[test]
fn acknowledged_writes_survive_sigkill_with_appendfsync_everysec() {
    crash_cycles("everysec", &["everysec"]);
}

#[test]
fn acknowledged_writes_survive_sigkill_with_appendfsync_no() {
    crash_cycles("no", &["no"]);
}

/// One shard writes `always` batches through its O_DIRECT twin (whole blocks, the log's last
/// partial block rewritten in front of each batch); each process starts under `everysec` and
/// switches, so the twin reads that block back after buffered writes moved the log end.
#[test]
fn acknowledged_writes_survive_sigkill_with_direct_always_writes_on_one_shard() {
    crash_cycles_on("direct", 1, &["always"]);
    crash_cycles_on(
        "direct-switching",
        1,
        &["everysec", "always", "no", "always", "everysec", "always"],
    );
}

/// A direct write that fails (here by fault injection, as on a device whose O_DIRECT alignment
/// it misses) is retried through a buffered O_DSYNC descriptor: the write is acknowledged,
/// logged once, and survives SIGKILL.
#[test]
fn a_failed_direct_always_write_falls_back_to_a_buffered_one() {
    let dir = tmp_dir("directfail");
    let flag = dir.join("fail-direct");
    std::fs::write(&flag, b"").unwrap();
    let (mut child, mut c) =
        spawn_with_fault(&dir, 1, "always", "TESSERA_FAULT_DIRECT_FILE", &flag);
    for i in 0..20 {
        assert_eq!(c.cmd_str(&format!("SET k{i} v{i}")), b"+OK\r\n");
    }
    let info = String::from_utf8_lossy(&c.cmd_str("INFO persistence")).to_string();
    assert!(info.contains("aof_last_write_status:ok"), "{info}");
    drop(c);
    let _ = child.kill();
    let _ = child.wait();
    let recs = records_of(&log_of(&incr_file(&dir)));
    assert_eq!(recs.len(), 20, "each write logged once: {recs:?}");
    std::fs::remove_file(&flag).unwrap();
    let (ok, out) = run_bin_cmds(&dir, "no", 1, &["GET k0", "GET k19", "DBSIZE"]);
    assert!(ok, "{out:?}");
    assert_eq!(out, ["$2\r\nv0\r\n", "$3\r\nv19\r\n", ":20\r\n"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// CONFIG SET appendfsync between writes of one process: what was written under the old
/// policy stays, and `always` covers it before its own replies.
#[test]
fn acknowledged_writes_survive_sigkill_across_appendfsync_changes() {
    crash_cycles(
        "switching",
        &["everysec", "always", "no", "always", "everysec", "no"],
    );
}

fn bulk_or_nil(r: &Value) -> Option<Vec<u8>> {
    r.as_bytes().map(|b| b.to_vec())
}

/// SIGKILL at varying points of a pipelined stream of single-shard SETs, cross-shard MSETs and
/// cross-shard MULTI/EXEC blocks: every acknowledged write is there after the restart, and
/// every multi-shard unit is there on all its shards or on none.
/// The server starts with `policies[0]`; cycle k writes a few acknowledged keys under it, then
/// switches to `policies[k % len]` for the pipelined stream.
fn crash_cycles(name: &str, policies: &[&str]) {
    crash_cycles_on(name, 4, policies)
}

fn crash_cycles_on(name: &str, shards: usize, policies: &[&str]) {
    let dir = tmp_dir(&format!("crash-{name}"));
    let mut acked: Vec<u32> = Vec::new();
    let mut next = 0u32;
    for cycle in 0..6 {
        let s = start(shards, &dir, policies[0]);
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
        for i in next..next + 3 {
            let (k, v) = (format!("k{i}"), i.to_string());
            assert_eq!(c.cmd(&[b"SET", k.as_bytes(), v.as_bytes()]), b"+OK\r\n");
            let (a, b) = (format!("a{{{i}}}"), format!("b{i}"));
            let mset: [&[u8]; 5] = [
                b"MSET",
                a.as_bytes(),
                v.as_bytes(),
                b.as_bytes(),
                v.as_bytes(),
            ];
            assert_eq!(c.cmd(&mset), b"+OK\r\n");
            acked.push(i);
        }
        next += 3;
        let policy = policies[cycle % policies.len()];
        assert_eq!(
            c.cmd_str(&format!("CONFIG SET appendfsync {policy}")),
            b"+OK\r\n"
        );
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
    for _ in 0..500 {
        let info = String::from_utf8_lossy(&c.cmd_str("INFO persistence")).to_string();
        if want.iter().all(|w| info.contains(w)) {
            return info;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    String::from_utf8_lossy(&c.cmd_str("INFO persistence")).to_string()
}

/// BGREWRITEAOF on a server that has rewritten once (at startup), then INFO persistence once
/// the second rewrite is done.
fn rewrite_once_more(c: &mut RawConn) -> String {
    assert_eq!(
        c.cmd_str("BGREWRITEAOF"),
        b"+Background append only file rewriting started\r\n"
    );
    wait_info(c, &["aof_rewrites:2", "aof_rewrite_in_progress:0"])
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
    // Each 1% of growth triggers another rewrite: on a loaded machine the 50 SETs can span
    // several cron ticks and rewrites, so at least one more is what is checked.
    let rewrites = |info: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix("aof_rewrites:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let mut info = String::new();
    for _ in 0..500 {
        info = String::from_utf8_lossy(&c.cmd_str("INFO persistence")).to_string();
        if rewrites(&info) >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(rewrites(&info) >= 2, "{info}");
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
    let dir = tmp_dir("efbig");
    let d = dir.display().to_string();
    let (mut child, port) = spawn_tessera_fsize_limited(
        &[
            "--shards",
            "1",
            "--dir",
            &d,
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
        ],
        64 * 1024,
    );
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
    // The writes acknowledged before the refusal.
    let acked = (0..200)
        .take_while(|i| c.cmd_str(&format!("EXISTS k{i}")) == b":1\r\n")
        .count();
    // Space returns (the limit is lifted): the writer's retry succeeds, writes are accepted
    // again, and everything acknowledged is in the log after a restart.
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit only reads `unlimited` and writes nothing back (null old-limit pointer).
    let rc = unsafe {
        libc::prlimit(
            child.id() as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &unlimited,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit failed");
    wait_writes_accepted(&mut c, "SET after space-returned");
    let _ = child.kill();
    let _ = child.wait();
    let s = start(1, &dir, "everysec");
    let mut c = s.conn();
    for i in 0..acked {
        assert_eq!(
            c.cmd_str(&format!("STRLEN k{i}")),
            b":4096\r\n",
            "acknowledged write k{i} lost"
        );
    }
    assert_eq!(c.cmd_str("GET after"), b"$14\r\nspace-returned\r\n");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Retries the write `cmd` until it is accepted again, then waits until INFO reports the AOF
/// healthy (within 10 s in all). INFO speaks for every shard, and each shard recovers on its
/// own next successful write or sync, so another shard may still report the error for a
/// moment after this write's shard has recovered.
fn wait_writes_accepted(c: &mut RawConn, cmd: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = c.cmd_str(cmd);
        if r == b"+OK\r\n" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "writes stayed refused: {}",
            String::from_utf8_lossy(&r)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    loop {
        let info = String::from_utf8_lossy(&c.cmd_str("INFO persistence")).to_string();
        if info.contains("aof_last_write_status:ok") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{info}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_failed_background_fsync_refuses_writes_until_a_later_one_succeeds() {
    let dir = tmp_dir("fsyncfail");
    std::fs::create_dir_all(&dir).unwrap();
    let flag = dir.join("fail-fsync");
    let (mut child, mut c) =
        spawn_with_fault(&dir, 2, "everysec", "TESSERA_FAULT_FSYNC_FILE", &flag);
    assert_eq!(c.cmd_str("SET a 1"), b"+OK\r\n");
    std::fs::write(&flag, b"").unwrap();
    // Writes are accepted until a background fdatasync has run (and failed) on the shard.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut i = 0;
    let refused = loop {
        let r = c.cmd_str(&format!("SET b{i} 1"));
        if r.starts_with(b"-") {
            break String::from_utf8_lossy(&r).to_string();
        }
        i += 1;
        assert!(
            std::time::Instant::now() < deadline,
            "writes were never refused"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        refused,
        "-MISCONF Errors writing to the AOF file: Input/output error\r\n"
    );
    assert_eq!(c.cmd_str("GET a"), b"$1\r\n1\r\n", "reads go on");
    let info = String::from_utf8_lossy(&c.cmd_str("INFO persistence")).to_string();
    assert!(info.contains("aof_last_write_status:err"), "{info}");
    std::fs::remove_file(&flag).unwrap();
    wait_writes_accepted(&mut c, &format!("SET b{i} 1"));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

fn run_bin(dir: &Path, truncated: &str) -> (bool, String) {
    let (ok, text) = run_bin_cmds(dir, truncated, 2, &["GET k1"]);
    (ok, text.concat())
}

/// The binary on `port` with `shards` shards and the AOF on in `dir` (the caller adds options
/// and spawns it).
fn aof_bin(dir: &Path, shards: usize, port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--shards", &shards.to_string()])
        .args(["--dir", &dir.display().to_string(), "--appendonly", "yes"]);
    cmd
}

/// Starts the binary on `dir` with `shards` shards and `appendfsync policy`, with the fault
/// injector `var` watching `flag`; returns it with a connection once it accepts them.
fn spawn_with_fault(
    dir: &Path,
    shards: usize,
    policy: &str,
    var: &str,
    flag: &Path,
) -> (std::process::Child, RawConn) {
    let port = free_port();
    let child = aof_bin(dir, shards, port)
        .args(["--appendfsync", policy])
        .env(var, flag)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "tessera did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, RawConn::connect(port))
}

/// Starts the binary on `dir` with `shards` shards: Ok with the replies to `cmds` when it
/// came up (then it is killed), Err with its output when it refused to start.
fn run_bin_cmds(dir: &Path, truncated: &str, shards: usize, cmds: &[&str]) -> (bool, Vec<String>) {
    let port = free_port();
    let mut child = aof_bin(dir, shards, port)
        .args(["--aof-load-truncated", truncated])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..300 {
        if let Ok(Some(_)) = child.try_wait() {
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stderr).to_string()
                + &String::from_utf8_lossy(&out.stdout);
            return (false, vec![text]);
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let mut c = RawConn::connect(port);
            let replies = cmds
                .iter()
                .map(|cmd| String::from_utf8_lossy(&c.cmd_str(cmd)).to_string())
                .collect();
            let _ = child.kill();
            let _ = child.wait();
            return (true, replies);
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
    let good = log_of(&incr);
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
            let name = p.to_string_lossy().to_string();
            (name.ends_with(".base.aof") || name.ends_with(".base.rdb"))
                && std::fs::metadata(p).unwrap().len() > 0
        })
        .unwrap_or(incr);
    let mut bytes = std::fs::read(&base).unwrap();
    let rdb_base = bytes.starts_with(b"REDIS");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&base, &bytes).unwrap();
    let (ok, text) = run_bin(&dir, "yes");
    assert!(!ok);
    if rdb_base {
        // An RDB-preamble base (the default): named, with the offset and the reason.
        assert!(
            text.contains("Bad AOF base file") && text.contains("offset"),
            "{text}"
        );
    } else {
        assert!(text.contains("Bad file format"), "{text}");
    }
    // Missing manifest with AOF files present.
    std::fs::remove_file(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
    let (ok, text) = run_bin(&dir, "yes");
    assert!(!ok);
    assert!(text.contains("no manifest"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

// Keys whose hash tags put them on different shards of 4 (CLUSTER KEYSLOT foo = 12182 -> shard
// 2, bar = 5061 -> shard 1), and a tag for two keys of one shard (hello = 866 -> shard 0).
const ON_SHARD_2: &str = "{foo}";
const ON_SHARD_1: &str = "{bar}";
const ONE_SHARD: &str = "{hello}";

fn int_or_zero(c: &mut RawConn, key: &str) -> i64 {
    let r = resp_parse(&c.cmd(&[b"GET", key.as_bytes()]));
    r.as_bytes()
        .map(|b| std::str::from_utf8(b).unwrap().parse().unwrap())
        .unwrap_or(0)
}

/// The first integer of a reply (`:n`, or an array starting with one).
fn first_int(reply: &[u8]) -> Option<i64> {
    let v = resp_parse(reply);
    v.as_int()
        .or_else(|| v.items().and_then(|i| i.first()).and_then(|x| x.as_int()))
}

/// One client's loop: sends `request` (answered by `replies` replies, the last one carrying
/// the value) until the server dies; the highest value acknowledged.
fn hammer(port: u16, request: Vec<u8>, replies: usize) -> i64 {
    let mut c = RawConn::connect(port);
    let mut acked = 0;
    loop {
        if c.try_send(&request).is_err() {
            return acked;
        }
        for _ in 1..replies {
            if c.try_read_reply().is_err() {
                return acked;
            }
        }
        match c.try_read_reply() {
            Ok(r) => match first_int(&r) {
                Some(n) => acked = acked.max(n),
                None => panic!("unexpected reply {}", String::from_utf8_lossy(&r)),
            },
            Err(_) => return acked,
        }
    }
}

/// SIGKILL at varying moments while clients run, on 4 shards under `appendfsync always`:
/// a MULTI/EXEC incrementing two keys on different shards, a single-shard MULTI/EXEC and a
/// single-shard EVAL each incrementing two keys of one shard, and a script that escalates to
/// the global lock incrementing keys on two shards. After every restart each pair is equal
/// (all or nothing) and at least every value a client saw acknowledged.
#[test]
fn transaction_and_script_units_are_all_or_nothing_across_sigkill() {
    let dir = tmp_dir("units");
    let pairs = [
        (format!("x{ON_SHARD_2}"), format!("x{ON_SHARD_1}")),
        (format!("s1{ONE_SHARD}"), format!("s2{ONE_SHARD}")),
        (format!("e1{ONE_SHARD}"), format!("e2{ONE_SHARD}")),
        (format!("g{ON_SHARD_2}"), format!("g{ON_SHARD_1}")),
    ];
    let exec = |a: &str, b: &str| {
        let mut v = encode(&[b"MULTI"]);
        v.extend(encode(&[b"INCR", a.as_bytes()]));
        v.extend(encode(&[b"INCR", b.as_bytes()]));
        v.extend(encode(&[b"EXEC"]));
        v
    };
    let requests = [
        exec(&pairs[0].0, &pairs[0].1),
        exec(&pairs[1].0, &pairs[1].1),
        encode(&[
            b"EVAL",
            b"redis.call('INCR', KEYS[2]) return redis.call('INCR', KEYS[1])",
            b"2",
            pairs[2].0.as_bytes(),
            pairs[2].1.as_bytes(),
        ]),
        // g{bar} is not declared: the run escalates to the global lock.
        encode(&[
            b"EVAL",
            format!("redis.call('INCR', 'g{ON_SHARD_1}') return redis.call('INCR', KEYS[1])")
                .as_bytes(),
            b"1",
            pairs[3].0.as_bytes(),
        ]),
    ];
    let mut acked = [0i64; 4];
    let mut seed = 0x9e37_79b9_u64 ^ std::process::id() as u64;
    for cycle in 0..5 {
        let s = start(4, &dir, "always");
        let mut c = s.conn();
        for (i, (a, b)) in pairs.iter().enumerate() {
            let (va, vb) = (int_or_zero(&mut c, a), int_or_zero(&mut c, b));
            assert_eq!(va, vb, "cycle {cycle}: {a} and {b} differ");
            assert!(
                va >= acked[i],
                "cycle {cycle}: {a}={va} < acknowledged {}",
                acked[i]
            );
        }
        if cycle == 4 {
            break;
        }
        // With 4 shards the first pair really is a multi-shard unit.
        let before = String::from_utf8_lossy(&c.cmd_str("INFO stats")).to_string();
        let clients: Vec<_> = requests
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let (port, r) = (s.port, r.clone());
                std::thread::spawn(move || hammer(port, r, if i < 2 { 4 } else { 1 }))
            })
            .collect();
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(150 + (seed >> 33) % 250));
        if cycle == 0 {
            let after = String::from_utf8_lossy(&c.cmd_str("INFO stats")).to_string();
            assert_ne!(
                info_field(&before, "multi_shard_transactions"),
                info_field(&after, "multi_shard_transactions"),
                "{after}"
            );
        }
        drop(c);
        drop(s); // SIGKILL while the clients run
        for (i, t) in clients.into_iter().enumerate() {
            acked[i] = acked[i].max(t.join().unwrap());
        }
        assert!(acked.iter().all(|&n| n > 0), "cycle {cycle}: {acked:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn info_field(info: &str, name: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// A bracket cut off at the tail of the log (the crash came mid-unit) is dropped whole under
/// `aof-load-truncated yes` and refuses the start under `no`; what came before it stays.
#[test]
fn a_torn_transaction_at_the_tail_is_dropped_whole() {
    for cut_mid_record in [false, true] {
        let dir = tmp_dir(&format!("torn-unit-{cut_mid_record}"));
        let s = start(1, &dir, "always");
        let mut c = s.conn();
        c.cmd_str("SET before 1");
        for n in 1..=2 {
            c.cmd_str("MULTI");
            c.cmd_str("INCR x");
            c.cmd_str("INCR y");
            assert_eq!(
                c.cmd_str("EXEC"),
                format!("*2\r\n:{n}\r\n:{n}\r\n").into_bytes()
            );
        }
        drop(c);
        drop(s);
        let incr = incr_file(&dir);
        let bytes = log_of(&incr);
        let text = String::from_utf8_lossy(&bytes);
        let last_begin = text
            .rfind("TESSERA.TXBEGIN")
            .expect("the EXEC is bracketed");
        // Back to the '*' of the BEGIN record, then past it and past the first INCR.
        let begin_at = text[..last_begin].rfind('*').unwrap();
        let first_incr = text[last_begin..].find("*2\r\n$4\r\nINCR").unwrap() + last_begin;
        let cut = if cut_mid_record {
            first_incr + 6
        } else {
            text[first_incr + 1..].find('*').unwrap() + first_incr + 1
        };
        assert!(begin_at < cut && cut < bytes.len());
        std::fs::write(&incr, &bytes[..cut]).unwrap();
        let probe = ["GET before", "GET x", "GET y"];
        let (ok, out) = run_bin_cmds(&dir, "no", 1, &probe);
        assert!(
            !ok,
            "a torn unit was loaded under aof-load-truncated no: {out:?}"
        );
        assert!(out[0].contains("Unexpected end of file"), "{out:?}");
        let (ok, out) = run_bin_cmds(&dir, "yes", 1, &probe);
        assert!(ok, "{out:?}");
        assert_eq!(out, ["$1\r\n1\r\n", "$1\r\n1\r\n", "$1\r\n1\r\n"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// FUNCTION LOAD / DELETE / FLUSH / RESTORE are logged and replayed at startup (on every shard),
/// and the rewrite's base keeps the libraries.
#[test]
fn function_libraries_survive_restarts_and_rewrites() {
    let dir = tmp_dir("functions");
    let lib = |name: &str, f: &str, step: i64| {
        format!(
            "#!lua name={name}\nredis.register_function('{f}', function(keys, args) return redis.call('INCRBY', keys[1], {step}) end)"
        )
    };
    let load = |c: &mut RawConn, code: &str, replace: bool| {
        let mut a: Vec<&[u8]> = vec![b"FUNCTION", b"LOAD"];
        if replace {
            a.push(b"REPLACE");
        }
        a.push(code.as_bytes());
        c.cmd(&a)
    };
    // Keys on every shard, so that each shard's functions state is used.
    let keys = ["k{hello}", "k{bar}", "k{foo}", "k{zap}"];
    let fcall_all = |s: &Server, f: &str| -> Vec<String> {
        let mut c = s.conn();
        keys.iter()
            .map(|k| {
                String::from_utf8_lossy(&c.cmd(&[b"FCALL", f.as_bytes(), b"1", k.as_bytes()]))
                    .to_string()
            })
            .collect()
    };
    let s = start(4, &dir, "always");
    let mut c = s.conn();
    assert_eq!(load(&mut c, &lib("one", "f1", 1), false), b"$3\r\none\r\n");
    assert_eq!(load(&mut c, &lib("two", "f2", 10), false), b"$3\r\ntwo\r\n");
    assert_eq!(
        load(&mut c, &lib("three", "f3", 100), false),
        b"$5\r\nthree\r\n"
    );
    assert_eq!(c.cmd_str("FUNCTION DELETE two"), b"+OK\r\n");
    assert_eq!(fcall_all(&s, "f1"), [":1\r\n"; 4]);
    drop(c);
    drop(s); // SIGKILL
    let s = start(4, &dir, "always");
    assert_eq!(fcall_all(&s, "f1"), [":2\r\n"; 4]);
    assert_eq!(fcall_all(&s, "f3"), [":102\r\n"; 4]);
    assert_eq!(fcall_all(&s, "f2")[0], "-ERR Function not found\r\n");
    let mut c = s.conn();
    // REPLACE, then a DUMP / FLUSH / RESTORE round trip, then a rewrite.
    assert_eq!(
        load(&mut c, &lib("one", "f1", 1000), true),
        b"$3\r\none\r\n"
    );
    let dump = resp_parse(&c.cmd_str("FUNCTION DUMP"))
        .as_bytes()
        .unwrap()
        .to_vec();
    assert_eq!(c.cmd_str("FUNCTION FLUSH"), b"+OK\r\n");
    assert_eq!(c.cmd(&[b"FUNCTION", b"RESTORE", &dump]), b"+OK\r\n");
    let info = rewrite_once_more(&mut c);
    assert!(info.contains("aof_last_bgrewrite_status:ok"), "{info}");
    assert_eq!(fcall_all(&s, "f1"), [":1102\r\n"; 4]);
    drop(c);
    drop(s);
    let s = start(4, &dir, "always");
    assert_eq!(fcall_all(&s, "f1"), [":2102\r\n"; 4]);
    assert_eq!(fcall_all(&s, "f3"), [":2202\r\n"; 4]);
    let mut c = s.conn();
    assert_eq!(c.cmd_str("FUNCTION FLUSH"), b"+OK\r\n");
    drop(c);
    drop(s);
    let s = start(2, &dir, "always");
    assert_eq!(fcall_all(&s, "f1")[0], "-ERR Function not found\r\n");
    assert_eq!(s.conn().cmd_str("GET k{foo}"), b"$4\r\n2202\r\n");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rewrites_write_rdb_preamble_bases_or_command_bases_and_both_reload() {
    for preamble in ["yes", "no"] {
        let dir = tmp_dir(&format!("preamble-{preamble}"));
        let d = dir.display().to_string();
        let args = [
            "--dir",
            d.as_str(),
            "--appendonly",
            "yes",
            "--aof-use-rdb-preamble",
            preamble,
        ];
        let s = start_tessera(3, &args);
        fill(&s);
        let mut c = s.conn();
        rewrite_once_more(&mut c);
        c.cmd_str("SET after rewrite");
        let before = digest(&s);
        let manifest =
            std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
        let bases: Vec<&str> = manifest
            .lines()
            .filter(|l| l.contains("type b"))
            .map(|l| l.split_whitespace().nth(1).unwrap())
            .collect();
        assert_eq!(bases.len(), 3, "{manifest}");
        for b in &bases {
            let bytes = std::fs::read(dir.join("appendonlydir").join(b)).unwrap();
            if preamble == "yes" {
                assert!(
                    b.ends_with(".base.rdb") && bytes.starts_with(b"REDIS0010"),
                    "{b}"
                );
            } else {
                assert!(b.ends_with(".base.aof"), "{b}");
                assert!(bytes.is_empty() || bytes.starts_with(b"*"), "{b}");
            }
        }
        drop(c);
        drop(s);
        let s = start_tessera(2, &args);
        assert_eq!(digest(&s), before, "preamble {preamble}, 3 -> 2 shards");
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The records of `bytes` (an incremental file), SELECTs left out.
/// The log in an incremental file: its bytes without the zero padding that `appendfsync
/// always` keeps ahead of the log while the file is in use.
fn log_of(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    bytes.truncate(end);
    bytes
}

/// The commands in `bytes` (whole records), without SELECTs and the `TESSERA.BATCH` headers of
/// `always` writes.
fn records_of(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let (v, next) = parse_frame(bytes, at).unwrap().expect("whole records");
        let args: Vec<String> = v
            .items()
            .unwrap()
            .iter()
            .map(|a| String::from_utf8_lossy(a.as_bytes().unwrap()).to_string())
            .collect();
        if !args[0].eq_ignore_ascii_case("select") && args[0] != "TESSERA.BATCH" {
            out.push(args);
        }
        at = next;
    }
    out
}

#[test]
fn one_command_is_one_atomic_aof_effect() {
    let dir = tmp_dir("one-effect");
    let s = start(1, &dir, "always");
    let mut c = s.conn();
    let incr = incr_file(&dir);
    let before = log_of(&incr).len();
    // A relative TTL is logged as one absolute SET, like Redis's rewrite of SET EX.
    assert_eq!(c.cmd_str("SET k v EX 100"), b"+OK\r\n");
    let recs = records_of(&log_of(&incr)[before..]);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0][..4], ["SET", "k", "v", "PXAT"], "{recs:?}");
    let pxat: u64 = recs[0][4].parse().unwrap();
    // Writes that change nothing are not logged (Redis propagates only what made it dirty).
    let len = log_of(&incr).len();
    for line in [
        "SET k other NX",
        "SET nokey v XX",
        "SET nokey v EX 10 XX",
        "DEL nokey",
        "EXPIRE nokey 10",
        "PERSIST nokey",
        "SREM noset a",
        "HDEL nohash f",
        "SETNX k v",
        "MSETNX k 1 other 2",
        "LPUSHX nolist a",
    ] {
        assert!(!c.cmd_str(line).starts_with(b"-"), "{line}");
    }
    assert_eq!(log_of(&incr).len(), len, "no-op writes logged");
    assert_eq!(c.cmd_str("SETEX k2 100 w"), b"+OK\r\n");
    assert_eq!(c.cmd_str("PSETEX k3 100000 x"), b"+OK\r\n");
    assert_eq!(c.cmd_str("SET k4 y KEEPTTL"), b"+OK\r\n");
    let recs = records_of(&log_of(&incr)[len..]);
    assert_eq!(recs.len(), 3, "{recs:?}");
    assert_eq!(recs[0][..4], ["SET", "k2", "w", "PXAT"]);
    assert_eq!(recs[1][..4], ["SET", "k3", "x", "PXAT"]);
    assert_eq!(recs[2], ["SET", "k4", "y"]);
    // A recreation of several records (RESTORE with a TTL) is bracketed as one unit.
    c.cmd_str("RPUSH src a b c");
    let dump = resp_parse(&c.cmd_str("DUMP src"));
    let payload = dump.as_bytes().unwrap().to_vec();
    // Inside a unit of its own (EXEC on one shard) the command's bracket gives way to the
    // unit's: brackets never nest.
    let m0 = log_of(&incr).len();
    c.cmd_str("MULTI");
    c.cmd(&[b"RESTORE", b"inexec", b"0", &payload]);
    c.cmd_str("INCR x");
    assert_eq!(c.cmd_str("EXEC"), b"*2\r\n+OK\r\n:1\r\n");
    let recs = records_of(&log_of(&incr)[m0..]);
    let names: Vec<&str> = recs.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        names,
        ["TESSERA.TXBEGIN", "DEL", "RPUSH", "INCR", "TESSERA.TXEND"],
        "{recs:?}"
    );
    let mark = log_of(&incr).len();
    assert_eq!(
        c.cmd(&[b"RESTORE", b"dst", b"100000", &payload]),
        b"+OK\r\n"
    );
    drop(c);
    drop(s);
    let bytes = log_of(&incr);
    let recs = records_of(&bytes[mark..]);
    let names: Vec<&str> = recs.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        names,
        [
            "TESSERA.TXBEGIN",
            "DEL",
            "RPUSH",
            "PEXPIREAT",
            "TESSERA.TXEND"
        ],
        "{recs:?}"
    );
    assert_eq!(recs[0][2], "1", "a unit of one part");
    // A crash before the bracket closed: the key is wholly absent, or the start is refused.
    let end = String::from_utf8_lossy(&bytes)
        .rfind("TESSERA.TXEND")
        .unwrap();
    let end_at = String::from_utf8_lossy(&bytes[..end]).rfind('*').unwrap();
    for cut in [end_at, end_at - 3] {
        std::fs::write(&incr, &bytes[..cut]).unwrap();
        let probe = ["EXISTS dst", "GET k", "PEXPIRETIME k", "GET k4", "LLEN src"];
        let (ok, out) = run_bin_cmds(&dir, "no", 1, &probe);
        assert!(!ok, "a torn command unit was loaded: {out:?}");
        assert!(out[0].contains("Unexpected end of file"), "{out:?}");
    }
    std::fs::write(&incr, &bytes[..end_at]).unwrap();
    let probe = [
        "EXISTS dst",
        "GET k",
        "PEXPIRETIME k",
        "GET k4",
        "LRANGE inexec 0 -1",
    ];
    let (ok, out) = run_bin_cmds(&dir, "yes", 1, &probe);
    assert!(ok, "{out:?}");
    assert_eq!(
        out,
        [
            ":0\r\n".to_string(),
            "$1\r\nv\r\n".to_string(),
            format!(":{pxat}\r\n"),
            "$1\r\ny\r\n".to_string(),
            "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n".to_string()
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Copies the AOF directory of `from` into `to` (a fresh directory).
fn copy_aof_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    copy_tree(&from.join("appendonlydir"), &to.join("appendonlydir"));
}

fn check_aof(dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["check", &dir.join("appendonlydir").display().to_string()])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Under `appendfsync always` the writer overwrites zero padding preallocated ahead of the log,
/// each write opened by a checksummed `TESSERA.BATCH` record: a killed server's file ends in
/// padding that loading and `check` ignore, a clean shutdown cuts the padding off, and a write
/// torn by power loss (a sector of it never reached the disk, its end did) is a torn tail,
/// never loaded as records.
#[test]
fn always_writes_into_checksummed_preallocated_padding() {
    let dir = tmp_dir("padding");
    let s = start(1, &dir, "always");
    let mut c = s.conn();
    for i in 0..100 {
        assert_eq!(c.cmd_str(&format!("SET k{i} v{i}")), b"+OK\r\n");
    }
    let big = "x".repeat(3000);
    assert_eq!(c.cmd_str(&format!("SET big {big}")), b"+OK\r\n");
    drop(c);
    drop(s); // SIGKILL
    let incr = incr_file(&dir);
    let size = std::fs::metadata(&incr).unwrap().len() as usize;
    let log = log_of(&incr);
    assert!(
        size >= 1 << 20 && size > log.len(),
        "padding ahead of the log: file {size} bytes, log {}",
        log.len()
    );
    let text = String::from_utf8_lossy(&log);
    assert_eq!(text.matches("TESSERA.BATCH").count(), 101, "one per write");
    assert_eq!(records_of(&log).len(), 101);
    let torn_dir = tmp_dir("padding-torn");
    copy_aof_dir(&dir, &torn_dir);

    let (ok, out) = check_aof(&dir);
    assert!(ok && out.contains("OK"), "{out}");
    let probe = ["GET k0", "GET k99", "STRLEN big", "DBSIZE"];
    let (ok, out) = run_bin_cmds(&dir, "no", 1, &probe);
    assert!(ok, "padding is not a torn tail: {out:?}");
    assert_eq!(
        out,
        ["$2\r\nv0\r\n", "$3\r\nv99\r\n", ":3000\r\n", ":101\r\n"]
    );

    // The last write (SET big) lost a sector in its middle; its end and the padding are there.
    let incr = incr_file(&torn_dir);
    let mut bytes = std::fs::read(&incr).unwrap();
    let last = text.rfind("TESSERA.BATCH").unwrap();
    let header = text[..last].rfind('*').unwrap();
    let hole = (header + 1024).next_multiple_of(512);
    assert!(hole + 512 < log.len() - 2);
    bytes[hole..hole + 512].fill(0);
    std::fs::write(&incr, &bytes).unwrap();
    let (ok, out) = check_aof(&torn_dir);
    assert!(
        !ok && out.contains(&format!("torn tail at offset {header}")),
        "{out}"
    );
    let (ok, out) = run_bin_cmds(&torn_dir, "no", 1, &probe);
    assert!(!ok, "a torn write was loaded: {out:?}");
    assert!(
        out[0].contains("Unexpected end of file") && out[0].contains(&format!("offset {header}")),
        "{out:?}"
    );
    let (ok, out) = run_bin_cmds(&torn_dir, "yes", 1, &probe);
    assert!(ok, "{out:?}");
    assert_eq!(out, ["$2\r\nv0\r\n", "$3\r\nv99\r\n", ":0\r\n", ":100\r\n"]);

    // A clean shutdown leaves the log without padding.
    let clean_dir = tmp_dir("padding-clean");
    let mut s = start(1, &clean_dir, "always");
    let mut c = s.conn();
    assert_eq!(c.cmd_str("SET k v"), b"+OK\r\n");
    let incr = incr_file(&clean_dir);
    assert!(std::fs::metadata(&incr).unwrap().len() > 1 << 20);
    c.send(b"*1\r\n$8\r\nSHUTDOWN\r\n");
    assert!(
        s.wait_exit(Duration::from_secs(20)),
        "SHUTDOWN did not stop it"
    );
    let bytes = std::fs::read(&incr).unwrap();
    assert_eq!(bytes, log_of(&incr), "no padding after SHUTDOWN");
    assert_eq!(records_of(&bytes).last().unwrap(), &["SET", "k", "v"]);
    for d in [dir, torn_dir, clean_dir] {
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// Every byte of every file under `dir`, in path order (the zero tail of a preallocated log
/// trimmed).
fn all_logs(dir: &Path) -> Vec<u8> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(p).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    files.iter().flat_map(|f| log_of(f)).collect()
}

/// Multi-key commands split by shard: reads (MGET, EXISTS, TOUCH) append nothing to any log;
/// a DEL over four shards is logged as a unit on every participant and replays as one.
#[test]
fn split_reads_log_nothing_and_split_deletes_replay_whole() {
    let dir = tmp_dir("split");
    let s = start(4, &dir, "always");
    let mut c = s.conn();
    for i in 0..8 {
        assert_eq!(c.cmd_str(&format!("SET acct:{i} v")), b"+OK\r\n");
    }
    let before = all_logs(&dir);
    assert_eq!(
        c.cmd_str("MGET acct:0 acct:1 acct:2 nokey acct:3"),
        b"*5\r\n$1\r\nv\r\n$1\r\nv\r\n$1\r\nv\r\n$-1\r\n$1\r\nv\r\n"
    );
    assert_eq!(
        c.cmd_str("EXISTS acct:0 acct:1 acct:5 acct:6 nokey"),
        b":4\r\n"
    );
    assert_eq!(c.cmd_str("TOUCH acct:0 acct:3 acct:7"), b":3\r\n");
    assert_eq!(all_logs(&dir), before, "cross-shard reads were logged");
    assert_eq!(
        c.cmd_str("DEL acct:0 acct:1 acct:2 acct:3 acct:4 acct:5 nokey"),
        b":6\r\n"
    );
    assert_ne!(all_logs(&dir), before, "the DEL was not logged");
    drop(c);
    drop(s); // SIGKILL
    let s = start(4, &dir, "always");
    let mut c = s.conn();
    assert_eq!(c.cmd_str("DBSIZE"), b":2\r\n");
    assert_eq!(c.cmd_str("EXISTS acct:6 acct:7"), b":2\r\n");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A blocked pop that a push serves is logged after the push, as Redis propagates it (and an
/// XREAD that a client blocked with, served at once, logs nothing), so that the log replays
/// to what the clients saw.
#[test]
fn a_pop_served_by_a_push_is_logged_after_it() {
    let dir = tmp_dir("served-pop");
    let s = start(1, &dir, "everysec");
    let mut c = s.conn();
    let mut w = s.conn();
    let incr = incr_file(&dir);
    assert_eq!(c.cmd_str("XADD x 1-0 f v"), b"$3\r\n1-0\r\n");
    let before = log_of(&incr).len();
    assert!(c.cmd_str("XREAD BLOCK 0 STREAMS x 0").starts_with(b"*1"));
    assert_eq!(log_of(&incr).len(), before, "a served XREAD was logged");
    w.send(&encode(&[b"BLPOP", b"l", b"0"]));
    for _ in 0..500 {
        let info = String::from_utf8_lossy(&c.cmd_str("INFO clients")).to_string();
        if info.contains("blocked_clients:1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(c.cmd_str("LPUSH l a b"), b":2\r\n");
    assert_eq!(w.read_reply(), b"*2\r\n$1\r\nl\r\n$1\r\nb\r\n");
    let recs = records_of(&log_of(&incr)[before..]);
    assert_eq!(recs[0], ["LPUSH", "l", "a", "b"], "{recs:?}");
    let one_left = b"*1\r\n$1\r\na\r\n";
    assert_eq!(c.cmd_str("LRANGE l 0 -1"), one_left);
    assert_eq!(c.cmd_str("DEBUG LOADAOF"), b"+OK\r\n");
    assert_eq!(c.cmd_str("LRANGE l 0 -1"), one_left);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

//! Side-by-side benchmark of persistence: Tessera vs. the reference Redis on
//!
//! * `set-persist`: SET throughput and p99 latency (pipeline 1 or `--pipeline`,
//!   several connections) with no persistence, `appendonly yes` + `appendfsync everysec`,
//!   and `appendonly yes` + `appendfsync always`;
//! * `bgsave`: BGSAVE of N keys under a write-heavy SET load: wall time, SET
//!   throughput meanwhile, and the peak memory of the server's process tree
//!   (sum of `Pss` over the server and its children, so a forked child's shared
//!   pages are counted once) relative to the footprint just before, and the SET
//!   rate during BGSAVE relative to the same load's rate in the second before;
//! * `load`: SAVE, then restart on the same directory and time from spawn to
//!   the first PING answered `+PONG` (`-LOADING` replies keep the clock running).
//!
//! ```text
//! cargo bench --bench persistence -- [--rounds N] [--ops N] [--clients N]
//!     [--scenarios set-persist,bgsave,load] [--shards-list 1,2] [--keyspace N]
//!     [--keys N] [--timeout-s S] [--pipeline N] [--quick]
//! ```
//!
//! N (`--keys`) defaults to `TESSERA_BENCH_KEYS`, else 1,000,000; values are
//! 100 bytes everywhere. Every server runs with `--save ''` in a temporary
//! directory of its own, which is removed at exit. A server that answers BGSAVE
//! or SAVE with an error is reported `n/a` for that scenario instead of being
//! waited on.
//!
//! Servers of one scenario are started once and alternate round by round
//! (order rotated each round) so that drift on a small shared machine hits all
//! of them equally; the report gives medians and medians of per-round ratios.
//! Markdown goes to stdout and `target/persistence.md`, progress to stderr,
//! server logs to `target/persistence/`. Every child process is killed on exit,
//! panic included. Shares only `benches/common` with the other benches.

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

mod common;
use common::*;

const USAGE: &str = "\
usage: cargo bench --bench persistence -- [options]
  --rounds N         rounds; servers alternate within each round (default 3)
  --ops N            SETs per set-persist run, all clients together (default 100000)
  --clients N        connections for set-persist, one thread each (default 8)
  --pipeline N       SETs in flight per set-persist connection (default 1)
  --scenarios L      set-persist,bgsave,load (default all)
  --shards-list L    tessera shard counts (default 1,2)
  --keyspace N       random keys for set-persist (default 100000)
  --keys N           keys for bgsave and load (default $TESSERA_BENCH_KEYS, else 1000000)
  --timeout-s S      socket timeout: a run with no reply for S seconds fails (default 30)
  --quick            1 round of 20000 ops (explicit flags still win)
env: TESSERA_BIN, REDIS_SERVER override the binaries; TESSERA_BENCH_KEYS as --keys";

const ALL_SCENARIOS: [&str; 3] = ["set-persist", "bgsave", "load"];

/// Every value written by this bench (the size the issue asks for).
const VALUE: &[u8; 100] = &[b'v'; 100];

/// The write load that runs during BGSAVE: enough connections and pipelining
/// to dirty pages quickly, which is what copy-on-write snapshots pay for.
const BGSAVE_CLIENTS: usize = 4;
const BGSAVE_PIPELINE: usize = 16;
/// Pss and INFO sampling period during BGSAVE.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);
/// How long the write load's rate is measured before BGSAVE.
const RATE_WINDOW: Duration = Duration::from_millis(1000);
/// Longest wait for one BGSAVE, SAVE or restart.
const PERSIST_DEADLINE: Duration = Duration::from_secs(600);

// ---------------------------------------------------------------- options --

#[derive(Debug, Clone)]
struct Opts {
    rounds: usize,
    ops: u64,
    clients: usize,
    pipeline: usize,
    scenarios: Vec<String>,
    shards_list: Vec<usize>,
    keyspace: u64,
    keys: u64,
    timeout_s: u64,
}

fn die(msg: &str) -> ! {
    eprintln!("persistence: {msg}\n{USAGE}");
    std::process::exit(2);
}

fn parse_num<T: std::str::FromStr>(flag: &str, v: &str) -> T {
    v.trim()
        .replace('_', "")
        .parse()
        .unwrap_or_else(|_| die(&format!("{flag}: bad number {v:?}")))
}

fn parse_list<T: std::str::FromStr>(flag: &str, v: &str) -> Vec<T> {
    let out: Vec<T> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| parse_num(flag, s))
        .collect();
    if out.is_empty() {
        die(&format!("{flag}: empty list"));
    }
    out
}

fn parse_args() -> Opts {
    let mut rounds = None;
    let mut ops = None;
    let mut clients = 8;
    let mut pipeline = 1;
    let mut scenarios: Vec<String> = ALL_SCENARIOS.iter().map(|s| s.to_string()).collect();
    let mut shards_list = vec![1, 2];
    let mut keyspace = 100_000;
    let mut keys = std::env::var("TESSERA_BENCH_KEYS")
        .ok()
        .map(|v| parse_num::<u64>("TESSERA_BENCH_KEYS", &v))
        .unwrap_or(1_000_000);
    let mut timeout_s = 30;
    let mut quick = false;

    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let takes_value = matches!(
            flag.as_str(),
            "--rounds"
                | "--ops"
                | "--clients"
                | "--pipeline"
                | "--scenarios"
                | "--shards-list"
                | "--keyspace"
                | "--keys"
                | "--timeout-s"
        );
        let value = if takes_value {
            inline.unwrap_or_else(|| {
                args.next()
                    .unwrap_or_else(|| die(&format!("{flag} needs a value")))
            })
        } else {
            String::new()
        };
        match flag.as_str() {
            "--rounds" => rounds = Some(parse_num(&flag, &value)),
            "--ops" => ops = Some(parse_num(&flag, &value)),
            "--clients" => clients = parse_num(&flag, &value),
            "--pipeline" => pipeline = parse_num(&flag, &value),
            "--scenarios" => {
                scenarios = value
                    .split(',')
                    .map(|s| s.trim().to_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect();
                if let Some(bad) = scenarios
                    .iter()
                    .find(|s| !ALL_SCENARIOS.contains(&s.as_str()))
                {
                    die(&format!("--scenarios: unknown scenario {bad:?}"));
                }
            }
            "--shards-list" => shards_list = parse_list(&flag, &value),
            "--keyspace" => keyspace = parse_num(&flag, &value),
            "--keys" => keys = parse_num(&flag, &value),
            "--timeout-s" => timeout_s = parse_num(&flag, &value),
            "--quick" => quick = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            // cargo bench appends `--bench`.
            f if f.starts_with("--bench") => {}
            other => die(&format!("unknown argument {other:?}")),
        }
    }
    let rounds = rounds.unwrap_or(if quick { 1 } else { 3 });
    let ops = ops.unwrap_or(if quick { 20_000 } else { 100_000 });
    if rounds == 0
        || ops == 0
        || clients == 0
        || pipeline == 0
        || timeout_s == 0
        || keyspace == 0
        || keys == 0
    {
        die("--rounds, --ops, --clients, --pipeline, --keyspace, --keys and --timeout-s must be > 0");
    }
    if shards_list.contains(&0) {
        die("shard counts must be > 0");
    }
    if scenarios.is_empty() {
        die("--scenarios: empty list");
    }
    Opts {
        rounds,
        ops,
        clients,
        pipeline,
        scenarios,
        shards_list,
        keyspace,
        keys,
        timeout_s,
    }
}

// --------------------------------------------------------------- servers --

#[derive(Debug, Clone, Copy)]
enum Kind {
    Redis,
    Tessera { shards: usize },
}

/// The persistence settings `set-persist` compares (snapshots are always off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persist {
    None,
    Everysec,
    Always,
}

impl Persist {
    const ALL: [Persist; 3] = [Persist::None, Persist::Everysec, Persist::Always];

    fn name(self) -> &'static str {
        match self {
            Persist::None => "none",
            Persist::Everysec => "aof everysec",
            Persist::Always => "aof always",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Persist::None => &["--appendonly", "no"],
            Persist::Everysec => &["--appendonly", "yes", "--appendfsync", "everysec"],
            Persist::Always => &["--appendonly", "yes", "--appendfsync", "always"],
        }
    }
}

/// A server that can be stopped and started again on the same port and directory.
struct Server {
    label: String,
    kind: Kind,
    persist: Persist,
    port: u16,
    dir: PathBuf,
    log: PathBuf,
    /// None while stopped.
    proc_: Option<ChildGuard>,
    dead: bool,
}

impl Server {
    fn new(
        label: String,
        kind: Kind,
        persist: Persist,
        port: u16,
        root: &Path,
        logs: &Path,
    ) -> Self {
        let slug = label.replace([' ', '='], "_");
        let dir = root.join(&slug);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Server {
            log: logs.join(format!("{slug}.log")),
            label,
            kind,
            persist,
            port,
            dir,
            proc_: None,
            dead: false,
        }
    }

    fn pid(&self) -> u32 {
        self.proc_.as_ref().map_or(0, ChildGuard::pid)
    }

    /// Spawn the server and wait for its first `+PONG`; returns the time from
    /// spawn to that reply (a restart's load time).
    fn start(&mut self, bins: &Bins) -> Result<Duration, String> {
        let mut args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            &self.dir.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(self.persist.args().iter().map(|s| s.to_string()));
        let prog: PathBuf = match self.kind {
            Kind::Tessera { shards } if !bins.tessera_is_redis => {
                args.extend(["--shards".into(), shards.to_string()]);
                args.extend(["--loglevel".into(), "warning".into()]);
                bins.tessera.clone()
            }
            Kind::Tessera { .. } => {
                args.extend(["--daemonize".into(), "no".into()]);
                bins.tessera.clone()
            }
            Kind::Redis => {
                args.extend(["--daemonize".into(), "no".into()]);
                bins.redis_server.clone().into()
            }
        };
        // Appended to, so a restart keeps the previous run's log.
        let logf = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("open {}: {e}", self.log.display()))?;
        let mut cmd = Command::new(&prog);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().map_err(|e| e.to_string())?)
            .stderr(logf);
        die_with_parent(&mut cmd);
        let t0 = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", prog.display()))?;
        let proc_ = self.proc_.insert(ChildGuard { child });
        loop {
            if let Some(st) = proc_.exited() {
                self.proc_ = None;
                return Err(format!(
                    "{} exited during startup: {st}\n--- {} ---\n{}",
                    self.label,
                    self.log.display(),
                    log_tail(&self.log)
                ));
            }
            // Redis answers -LOADING while it loads; anything but +PONG means "not yet".
            if call(self.port, &[b"PING"]).is_ok_and(|r| r == b"+PONG\r\n") {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > PERSIST_DEADLINE {
                return Err(format!(
                    "{} did not answer PING on port {} within {} s",
                    self.label,
                    self.port,
                    PERSIST_DEADLINE.as_secs()
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills the server and waits until its port can be bound again, so that the next
    /// `start` times the load and not the release of the old listener: a killed io_uring
    /// process (Tessera) can still hold its SO_REUSEPORT listener for some milliseconds after
    /// it is reaped, while the ring is torn down, and Tessera then refuses to start with
    /// "Address already in use".
    fn stop(&mut self) {
        self.proc_ = None; // ChildGuard kills and reaps
        let t0 = Instant::now();
        while std::net::TcpListener::bind(("127.0.0.1", self.port)).is_err() {
            if t0.elapsed() > Duration::from_secs(10) {
                eprintln!(
                    "warning: port {} of {} still taken 10 s after the kill",
                    self.port, self.label
                );
                break;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// False (and a log tail on stderr, once) if the process has died.
    fn alive(&mut self) -> bool {
        if self.dead {
            return false;
        }
        let exited = match self.proc_.as_mut() {
            None => None,
            Some(p) => p.exited(),
        };
        if let Some(st) = exited {
            self.dead = true;
            eprintln!(
                "error: {} died ({st}); its remaining runs are skipped\n--- {} ---\n{}",
                self.label,
                self.log.display(),
                log_tail(&self.log)
            );
        }
        !self.dead && self.proc_.is_some()
    }
}

/// Removes the servers' directories at exit (declared before the servers, so
/// dropped after they are killed).
struct TempRoot(PathBuf);

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ------------------------------------------------------ process memory --

/// Parent pid from `/proc/<pid>/stat` (the field after the parenthesised name,
/// which may itself contain spaces and parentheses).
fn ppid_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `pid` and all its descendants (processes, not threads: /proc lists thread
/// group leaders only).
fn process_tree(pid: u32) -> Vec<u32> {
    let mut links: Vec<(u32, u32)> = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
                if let Some(pp) = ppid_of(p) {
                    links.push((pp, p));
                }
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            links
                .iter()
                .filter(|(pp, _)| *pp == parent)
                .map(|(_, p)| *p),
        );
        i += 1;
    }
    tree
}

/// Proportional set size in bytes: shared pages are split between the
/// processes sharing them, so the sum over a tree is its real footprint.
fn pss_bytes(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Pss:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn tree_pss_bytes(pid: u32) -> u64 {
    process_tree(pid).into_iter().filter_map(pss_bytes).sum()
}

// --------------------------------------------------------- load generator --

fn key(n: u64) -> String {
    format!("key:{n}")
}

/// Pipelined SET of every `key:0..n` (not measured).
fn fill(port: u16, n: u64, timeout: Duration) -> std::io::Result<()> {
    let mut s = connect(port, timeout)?;
    let mut rd = ReplyReader::new();
    let mut req = Vec::new();
    let mut done = 0;
    while done < n {
        let batch = (n - done).min(1000);
        req.clear();
        for i in done..done + batch {
            encode(&mut req, &[b"SET", key(i).as_bytes(), VALUE]);
        }
        s.write_all(&req)?;
        rd.read_replies(&mut s, batch as usize)?;
        done += batch;
    }
    if rd.errors > 0 {
        return Err(std::io::Error::other(format!(
            "{} error replies",
            rd.errors
        )));
    }
    Ok(())
}

#[derive(Clone, Copy)]
struct SetRun {
    ops_per_s: f64,
    p99_us: f64,
    errors: u64,
}

/// `ops` SETs of random keys from `clients` connections, `pipeline` in flight
/// each; every batch's round trip is timed for the latency percentile (one
/// sample per SET of the batch).
#[allow(clippy::too_many_arguments)]
fn set_load(
    port: u16,
    ops: u64,
    clients: usize,
    pipeline: usize,
    keyspace: u64,
    timeout: Duration,
    seed: u64,
) -> Result<SetRun, String> {
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut handles = Vec::with_capacity(clients);
    for c in 0..clients {
        let share = ops / clients as u64 + u64::from((c as u64) < ops % clients as u64);
        let barrier = Arc::clone(&barrier);
        let conn = connect(port, timeout);
        handles.push(thread::spawn(
            move || -> Result<(u64, Vec<u32>, Instant), String> {
                // Always reach the barrier, even on failure, so the others are not stuck.
                barrier.wait();
                let mut s = conn.map_err(|e| format!("connect: {e}"))?;
                let mut rng = Rng((seed ^ (c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1);
                let mut rd = ReplyReader::new();
                let mut req = Vec::with_capacity(256 * pipeline);
                let mut lat = Vec::with_capacity(share as usize);
                let mut sent = 0;
                while sent < share {
                    let batch = (share - sent).min(pipeline as u64);
                    req.clear();
                    for _ in 0..batch {
                        encode(
                            &mut req,
                            &[b"SET", key(rng.below(keyspace)).as_bytes(), VALUE],
                        );
                    }
                    let t = Instant::now();
                    s.write_all(&req).map_err(|e| format!("write: {e}"))?;
                    rd.read_replies(&mut s, batch as usize)
                        .map_err(|e| format!("read: {e}"))?;
                    let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    lat.extend(std::iter::repeat_n(us, batch as usize));
                    sent += batch;
                }
                Ok((rd.errors, lat, Instant::now()))
            },
        ));
    }
    barrier.wait();
    let t0 = Instant::now();
    let mut errors = 0;
    let mut last = t0;
    let mut lat_all: Vec<u32> = Vec::with_capacity(ops as usize);
    let mut failure = None;
    for h in handles {
        match h.join() {
            Ok(Ok((e, lat, done))) => {
                errors += e;
                lat_all.extend(lat);
                last = last.max(done);
            }
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some("client thread panicked".into()),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let secs = last.duration_since(t0).as_secs_f64().max(1e-9);
    Ok(SetRun {
        ops_per_s: ops as f64 / secs,
        p99_us: percentile(&mut lat_all, 0.99),
        errors,
    })
}

fn percentile(v: &mut [u32], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1] as f64
}

/// SETs of random existing keys until stopped, `BGSAVE_PIPELINE` in flight per
/// connection; `done` counts completed SETs.
struct BackgroundWrites {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    threads: Vec<thread::JoinHandle<Result<(), String>>>,
}

impl BackgroundWrites {
    fn start(port: u16, keys: u64, timeout: Duration, seed: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let threads = (0..BGSAVE_CLIENTS)
            .map(|c| {
                let stop = Arc::clone(&stop);
                let done = Arc::clone(&done);
                thread::spawn(move || -> Result<(), String> {
                    let mut s = connect(port, timeout).map_err(|e| format!("connect: {e}"))?;
                    let mut rng =
                        Rng((seed ^ (c as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407)) | 1);
                    let mut rd = ReplyReader::new();
                    let mut req = Vec::with_capacity(BGSAVE_PIPELINE * 160);
                    while !stop.load(Ordering::Relaxed) {
                        req.clear();
                        for _ in 0..BGSAVE_PIPELINE {
                            encode(&mut req, &[b"SET", key(rng.below(keys)).as_bytes(), VALUE]);
                        }
                        s.write_all(&req).map_err(|e| format!("write: {e}"))?;
                        rd.read_replies(&mut s, BGSAVE_PIPELINE)
                            .map_err(|e| format!("read: {e}"))?;
                        done.fetch_add(BGSAVE_PIPELINE as u64, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        BackgroundWrites {
            stop,
            done,
            threads,
        }
    }

    fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    fn finish(self) -> Result<(), String> {
        self.stop.store(true, Ordering::Relaxed);
        let mut res = Ok(());
        for t in self.threads {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => res = Err(e),
                Err(_) => res = Err("writer thread panicked".into()),
            }
        }
        res
    }
}

/// One field of an INFO reply (a bulk string of `name:value` lines).
fn info_field(reply: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(reply).lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|r| r.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    })
}

fn error_text(reply: &[u8]) -> Option<String> {
    reply
        .strip_prefix(b"-")
        .map(|e| String::from_utf8_lossy(e).trim_end().to_string())
}

struct BgsaveRun {
    secs: f64,
    /// SET/s of the same write load in the `RATE_WINDOW` just before BGSAVE.
    before_ops_per_s: f64,
    before_bytes: u64,
    peak_bytes: u64,
    ops_per_s: f64,
    status: String,
}

enum Outcome<T> {
    Done(T),
    /// The server refused the command (its error text).
    Refused(String),
    Failed(String),
}

/// BGSAVE under background writes; Pss and INFO sampled every `SAMPLE_EVERY`.
fn bgsave_run(srv: &Server, keys: u64, timeout: Duration, seed: u64) -> Outcome<BgsaveRun> {
    let writes = BackgroundWrites::start(srv.port, keys, timeout, seed);
    // Let the write load reach steady state.
    thread::sleep(Duration::from_millis(200));
    // The same load's rate without a snapshot, for the "during / before" comparison.
    let (ops_a, ta) = (writes.done(), Instant::now());
    thread::sleep(RATE_WINDOW);
    let before_ops_per_s = (writes.done() - ops_a) as f64 / ta.elapsed().as_secs_f64();
    let before_bytes = tree_pss_bytes(srv.pid());
    let mut peak_bytes = before_bytes;
    let ops0 = writes.done();
    let t0 = Instant::now();
    let reply = match call(srv.port, &[b"BGSAVE"]) {
        Ok(r) => r,
        Err(e) => {
            let _ = writes.finish();
            return Outcome::Failed(format!("BGSAVE: {e}"));
        }
    };
    if let Some(err) = error_text(&reply) {
        let _ = writes.finish();
        return Outcome::Refused(err);
    }
    let outcome = loop {
        peak_bytes = peak_bytes.max(tree_pss_bytes(srv.pid()));
        match call(srv.port, &[b"INFO", b"persistence"]) {
            Ok(info) => {
                if info_field(&info, "rdb_bgsave_in_progress").as_deref() == Some("0") {
                    let secs = t0.elapsed().as_secs_f64();
                    let ops = writes.done() - ops0;
                    let status =
                        info_field(&info, "rdb_last_bgsave_status").unwrap_or_else(|| "?".into());
                    break Outcome::Done(BgsaveRun {
                        secs,
                        before_ops_per_s,
                        before_bytes,
                        peak_bytes,
                        ops_per_s: ops as f64 / secs.max(1e-9),
                        status,
                    });
                }
            }
            Err(e) => break Outcome::Failed(format!("INFO persistence: {e}")),
        }
        if t0.elapsed() > PERSIST_DEADLINE {
            break Outcome::Failed(format!(
                "BGSAVE still in progress after {} s",
                PERSIST_DEADLINE.as_secs()
            ));
        }
        thread::sleep(SAMPLE_EVERY);
    };
    match (writes.finish(), outcome) {
        (Err(e), Outcome::Done(_)) => Outcome::Failed(format!("write load: {e}")),
        (_, o) => o,
    }
}

// ---------------------------------------------------------------- report --

fn fmt_num(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) if x >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
    }
}

fn fmt_ratio(v: Option<f64>) -> String {
    v.map_or("—".into(), |x| format!("{x:.2}"))
}

fn mib(b: f64) -> f64 {
    b / (1024.0 * 1024.0)
}

/// Median of `f(sample)` over rounds, `None` when no round produced one.
fn med<T>(samples: &[Option<T>], f: impl Fn(&T) -> f64) -> Option<f64> {
    median(samples.iter().flatten().map(f).collect())
}

/// Median of per-round ratios `f(a) / f(b)` over rounds where both exist.
fn med_ratio<T>(a: &[Option<T>], b: &[Option<T>], f: impl Fn(&T) -> f64) -> Option<f64> {
    median(
        a.iter()
            .zip(b)
            .filter_map(|(x, y)| Some(f(x.as_ref()?) / f(y.as_ref()?)))
            .collect(),
    )
}

/// Per-server record of a scenario whose rounds may be refused or fail.
struct Track<T> {
    samples: Vec<Option<T>>,
    refused: Option<String>,
    failures: Vec<String>,
}

impl<T> Track<T> {
    fn new(rounds: usize) -> Self {
        Track {
            samples: (0..rounds).map(|_| None).collect(),
            refused: None,
            failures: Vec::new(),
        }
    }
}

// ------------------------------------------------------------------ main --

struct Env {
    bins: Bins,
    opts: Opts,
    root: PathBuf,
    logs: PathBuf,
    timeout: Duration,
}

impl Env {
    /// Servers labelled like the other benches (`redis`, `tessera s=N`) plus `suffix`.
    fn servers(&self, persist: Persist, suffix: &str) -> Vec<Server> {
        let kinds = std::iter::once(Kind::Redis).chain(
            self.opts
                .shards_list
                .iter()
                .map(|&shards| Kind::Tessera { shards }),
        );
        let specs: Vec<(String, Kind)> = self
            .server_labels()
            .into_iter()
            .map(|l| format!("{l}{suffix}"))
            .zip(kinds)
            .collect();
        let ports = free_ports(specs.len());
        specs
            .into_iter()
            .zip(ports)
            .map(|((label, kind), port)| {
                let mut srv = Server::new(label, kind, persist, port, &self.root, &self.logs);
                let t = srv.start(&self.bins).unwrap_or_else(|e| panic!("{e}"));
                eprintln!(
                    "started {:<28} pid {:<7} port {port}  ({:.2} s)",
                    srv.label,
                    srv.pid(),
                    t.as_secs_f64()
                );
                srv
            })
            .collect()
    }
}

fn set_persist(env: &Env, md: &mut String) {
    let o = &env.opts;
    // groups[setting] = servers (redis first), all started now.
    let mut groups: Vec<Vec<Server>> = Persist::ALL
        .iter()
        .map(|&p| env.servers(p, &format!(" {}", p.name())))
        .collect();
    for srv in groups.iter().flatten() {
        if let Err(e) = fill(srv.port, o.keyspace, env.timeout) {
            eprintln!("warning: filling {} failed: {e}", srv.label);
        }
    }
    let per = groups[0].len();
    // by_round[round][setting][server]
    let mut by_round: Vec<Vec<Vec<Option<SetRun>>>> =
        vec![vec![vec![None; per]; Persist::ALL.len()]; o.rounds];
    let mut notes: Vec<String> = Vec::new();
    let total = o.rounds * Persist::ALL.len() * per;
    let mut run_no = 0;
    for (round, results) in by_round.iter_mut().enumerate() {
        for (pi, group) in groups.iter_mut().enumerate() {
            for k in 0..per {
                let si = (k + round) % per;
                run_no += 1;
                let srv = &mut group[si];
                if !srv.alive() {
                    continue;
                }
                let seed = 0x5EED ^ ((round as u64) << 32) ^ run_no as u64;
                let tag = format!("[{run_no}/{total}] round {} {}", round + 1, srv.label);
                match set_load(
                    srv.port,
                    o.ops,
                    o.clients,
                    o.pipeline,
                    o.keyspace,
                    env.timeout,
                    seed,
                ) {
                    Ok(r) => {
                        eprintln!(
                            "{tag}: {:>9.0} ops/s  p99 {:>7.0} us  errors {}",
                            r.ops_per_s, r.p99_us, r.errors
                        );
                        if r.errors > 0 {
                            notes.push(format!("{tag}: {} error replies", r.errors));
                        }
                        results[pi][si] = Some(r);
                    }
                    Err(e) => {
                        eprintln!("{tag}: FAILED: {e}");
                        notes.push(format!("{tag}: failed: {e}"));
                    }
                }
            }
        }
    }
    drop(groups);

    let labels: Vec<String> = env.server_labels();
    let _ = writeln!(md, "#### set-persist: SET, pipeline {}\n", o.pipeline);
    let _ = writeln!(
        md,
        "{} connections · {} SETs per run · {} random keys (pre-filled) · 100-byte values. \
         `× redis`: against Redis with the same setting; `× none`: against the same server \
         without persistence (medians of per-round ratios).\n",
        o.clients, o.ops, o.keyspace
    );
    let _ = writeln!(
        md,
        "| setting | server | ops/s | p99 µs | × redis ops/s | × none ops/s |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|");
    // One server's samples over rounds, for medians and per-round ratios.
    let rounds_of = |pi: usize, si: usize| -> Vec<Option<SetRun>> {
        by_round.iter().map(|r| r[pi][si]).collect()
    };
    for (pi, p) in Persist::ALL.iter().enumerate() {
        for (si, label) in labels.iter().enumerate() {
            let s = &rounds_of(pi, si);
            let ops = |r: &SetRun| r.ops_per_s;
            let vs_redis = (si > 0)
                .then(|| med_ratio(s, &rounds_of(pi, 0), ops))
                .flatten();
            let vs_none = (pi > 0)
                .then(|| med_ratio(s, &rounds_of(0, si), ops))
                .flatten();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                p.name(),
                label,
                fmt_num(med(s, ops)),
                fmt_num(med(s, |r| r.p99_us)),
                fmt_ratio(vs_redis),
                fmt_ratio(vs_none)
            );
        }
    }
    write_notes(md, &notes);
}

fn write_notes(md: &mut String, notes: &[String]) {
    if !notes.is_empty() {
        let _ = writeln!(md, "\nNotes:\n");
        for n in notes {
            let _ = writeln!(md, "- {n}");
        }
    }
    let _ = writeln!(md);
}

impl Env {
    fn server_labels(&self) -> Vec<String> {
        let star = if self.bins.tessera_is_redis { "*" } else { "" };
        std::iter::once("redis".to_string())
            .chain(
                self.opts
                    .shards_list
                    .iter()
                    .map(|s| format!("tessera{star} s={s}")),
            )
            .collect()
    }
}

/// `bgsave` and `load` share servers filled once with `--keys` keys.
fn snapshots(env: &Env, md: &mut String) {
    let o = &env.opts;
    let want_bgsave = o.scenarios.iter().any(|s| s == "bgsave");
    let want_load = o.scenarios.iter().any(|s| s == "load");
    let mut servers = env.servers(Persist::None, "");
    let per = servers.len();
    let mut dataset: Vec<Option<u64>> = vec![None; per];
    for (i, srv) in servers.iter_mut().enumerate() {
        let t = Instant::now();
        match fill(srv.port, o.keys, env.timeout) {
            Ok(()) => {
                dataset[i] = Some(tree_pss_bytes(srv.pid()));
                eprintln!(
                    "filled {} with {} keys in {:.1} s (Pss {:.0} MiB)",
                    srv.label,
                    o.keys,
                    t.elapsed().as_secs_f64(),
                    mib(dataset[i].unwrap_or(0) as f64)
                );
            }
            Err(e) => {
                eprintln!("error: filling {} failed: {e}", srv.label);
                srv.dead = true;
            }
        }
    }
    let labels = env.server_labels();

    if want_bgsave {
        let mut tracks: Vec<Track<BgsaveRun>> = (0..per).map(|_| Track::new(o.rounds)).collect();
        for round in 0..o.rounds {
            for k in 0..per {
                let si = (k + round) % per;
                let srv = &mut servers[si];
                if tracks[si].refused.is_some() || !srv.alive() {
                    continue;
                }
                let seed = 0xB65A ^ ((round as u64) << 32) ^ si as u64;
                let tag = format!("round {} bgsave {}", round + 1, srv.label);
                match bgsave_run(srv, o.keys, env.timeout, seed) {
                    Outcome::Done(r) => {
                        eprintln!(
                            "{tag}: {:.2} s  Pss {:.0} -> peak {:.0} MiB  SET/s {:.0} -> {:.0}  status {}",
                            r.secs,
                            mib(r.before_bytes as f64),
                            mib(r.peak_bytes as f64),
                            r.before_ops_per_s,
                            r.ops_per_s,
                            r.status
                        );
                        tracks[si].samples[round] = Some(r);
                    }
                    Outcome::Refused(e) => {
                        eprintln!("{tag}: refused: {e} (n/a)");
                        tracks[si].refused = Some(e);
                    }
                    Outcome::Failed(e) => {
                        eprintln!("{tag}: FAILED: {e}");
                        tracks[si].failures.push(e);
                    }
                }
            }
        }
        let _ = writeln!(md, "#### bgsave: BGSAVE under a write load\n");
        let _ = writeln!(
            md,
            "{} keys of 100 bytes · during BGSAVE {BGSAVE_CLIENTS} connections SET random \
             existing keys, {BGSAVE_PIPELINE} in flight each · memory = sum of `Pss` over the \
             server and its child processes, sampled every {} ms; `before` is taken under \
             the write load just before BGSAVE (its SET/s over the {} ms before).\n",
            o.keys,
            SAMPLE_EVERY.as_millis(),
            RATE_WINDOW.as_millis()
        );
        let _ = writeln!(
            md,
            "| server | BGSAVE s | Pss before MiB | peak Pss MiB | peak / before | SET/s before | SET/s during BGSAVE | during / before | status |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
        let mut notes = Vec::new();
        for (si, t) in tracks.iter().enumerate() {
            if let Some(e) = &t.refused {
                let _ = writeln!(
                    md,
                    "| {} | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |",
                    labels[si]
                );
                notes.push(format!("{}: BGSAVE answered `-{e}`", labels[si]));
                continue;
            }
            let s = &t.samples;
            let statuses: Vec<&str> = s.iter().flatten().map(|r| r.status.as_str()).collect();
            let status = if statuses.is_empty() {
                "—".to_string()
            } else if statuses.iter().all(|x| *x == statuses[0]) {
                statuses[0].to_string()
            } else {
                statuses.join(",")
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                labels[si],
                fmt_num(med(s, |r| r.secs)),
                fmt_num(med(s, |r| mib(r.before_bytes as f64))),
                fmt_num(med(s, |r| mib(r.peak_bytes as f64))),
                fmt_ratio(med(s, |r| r.peak_bytes as f64 / r.before_bytes.max(1) as f64)),
                fmt_num(med(s, |r| r.before_ops_per_s)),
                fmt_num(med(s, |r| r.ops_per_s)),
                fmt_ratio(med(s, |r| r.ops_per_s / r.before_ops_per_s.max(1e-9))),
                status
            );
            for e in &t.failures {
                notes.push(format!("{}: {e}", labels[si]));
            }
        }
        write_notes(md, &notes);
    }

    if want_load {
        let mut save_secs: Vec<Option<f64>> = vec![None; per];
        let mut tracks: Vec<Track<f64>> = (0..per).map(|_| Track::new(o.rounds)).collect();
        for (si, srv) in servers.iter_mut().enumerate() {
            if !srv.alive() {
                continue;
            }
            let t = Instant::now();
            match call_timeout(srv.port, &[b"SAVE"], PERSIST_DEADLINE) {
                Ok(r) => match error_text(&r) {
                    Some(e) => {
                        eprintln!("SAVE {}: refused: {e} (n/a)", srv.label);
                        tracks[si].refused = Some(e);
                    }
                    None => {
                        save_secs[si] = Some(t.elapsed().as_secs_f64());
                        eprintln!("SAVE {}: {:.2} s", srv.label, t.elapsed().as_secs_f64());
                    }
                },
                Err(e) => tracks[si].failures.push(format!("SAVE: {e}")),
            }
        }
        for round in 0..o.rounds {
            for k in 0..per {
                let si = (k + round) % per;
                let srv = &mut servers[si];
                if save_secs[si].is_none() || !srv.alive() {
                    continue;
                }
                srv.stop();
                let tag = format!("round {} restart {}", round + 1, srv.label);
                match srv.start(&env.bins) {
                    Ok(t) => {
                        let n = call(srv.port, &[b"DBSIZE"]).unwrap_or_default();
                        let expect = format!(":{}\r\n", o.keys);
                        eprintln!("{tag}: {:.2} s to PONG", t.as_secs_f64());
                        if n != expect.as_bytes() {
                            tracks[si].failures.push(format!(
                                "DBSIZE after restart {:?}, expected {}",
                                String::from_utf8_lossy(&n).trim_end(),
                                o.keys
                            ));
                        } else {
                            tracks[si].samples[round] = Some(t.as_secs_f64());
                        }
                    }
                    Err(e) => {
                        eprintln!("{tag}: FAILED: {e}");
                        tracks[si].failures.push(e);
                        srv.dead = true;
                    }
                }
            }
        }
        let _ = writeln!(md, "#### load: restart after SAVE\n");
        let _ = writeln!(
            md,
            "{} keys of 100 bytes · time from spawn to the first `+PONG` (a `-LOADING` reply \
             keeps the clock running) · DBSIZE checked after each restart.\n",
            o.keys
        );
        let _ = writeln!(md, "| server | SAVE s | restart to PONG s | × redis |");
        let _ = writeln!(md, "|---|---:|---:|---:|");
        let mut notes = Vec::new();
        for (si, t) in tracks.iter().enumerate() {
            if let Some(e) = &t.refused {
                let _ = writeln!(md, "| {} | n/a | n/a | n/a |", labels[si]);
                notes.push(format!("{}: SAVE answered `-{e}`", labels[si]));
                continue;
            }
            let vs = (si > 0)
                .then(|| med_ratio(&t.samples, &tracks[0].samples, |x| *x))
                .flatten();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                labels[si],
                fmt_num(save_secs[si]),
                fmt_num(med(&t.samples, |x| *x)),
                fmt_ratio(vs)
            );
            for e in &t.failures {
                notes.push(format!("{}: {e}", labels[si]));
            }
        }
        write_notes(md, &notes);
    }
    drop(servers);
}

fn main() {
    let opts = parse_args();
    let started = Instant::now();
    let user_args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--bench"))
        .collect();
    let cmdline = if user_args.is_empty() {
        "cargo bench --bench persistence".to_string()
    } else {
        format!("cargo bench --bench persistence -- {}", user_args.join(" "))
    };

    let bins = Bins::from_env().unwrap_or_else(|e| die(&e));
    let redis_version = bins.redis_version().unwrap_or_else(|e| die(&e));
    let target_dir = target_dir();
    let logs = target_dir.join("persistence");
    fs::create_dir_all(&logs).expect("create target/persistence");
    let _ = fs::read_dir(&logs).map(|rd| {
        for e in rd.flatten() {
            let _ = fs::remove_file(e.path());
        }
    });
    let root = TempRoot(
        std::env::temp_dir().join(format!("tessera-bench-persistence-{}", std::process::id())),
    );
    fs::create_dir_all(&root.0).expect("create the servers' temporary directory");

    let env = Env {
        timeout: Duration::from_secs(opts.timeout_s),
        root: root.0.clone(),
        logs,
        bins,
        opts,
    };

    let Host {
        date,
        cpu_model,
        nproc,
    } = Host::probe();

    let mut md = String::new();
    let _ = writeln!(md, "### Persistence: Tessera vs Redis\n");
    let _ = writeln!(md, "`{cmdline}`\n");
    let _ = writeln!(
        md,
        "{date} · CPU {cpu_model} · nproc {nproc} · redis-server {redis_version} · rounds {} · \
         every server `--save ''` in its own directory on the same disk. The load generator \
         runs on the same host and competes for the same cores: compare ratios.\n",
        env.opts.rounds
    );
    if env.bins.tessera_is_redis {
        let _ = writeln!(
            md,
            "\\* **validation run**: the `tessera*` rows are redis-server ({}).\n",
            env.bins.tessera.display()
        );
    }
    if env.opts.scenarios.iter().any(|s| s == "set-persist") {
        set_persist(&env, &mut md);
    }
    if env
        .opts
        .scenarios
        .iter()
        .any(|s| s == "bgsave" || s == "load")
    {
        snapshots(&env, &mut md);
    }

    println!("\n{md}");
    let md_path = target_dir.join("persistence.md");
    match fs::write(&md_path, &md) {
        Ok(()) => eprintln!(
            "wrote {} ({:.0} s total)",
            md_path.display(),
            started.elapsed().as_secs_f64()
        ),
        Err(e) => eprintln!("warning: cannot write {}: {e}", md_path.display()),
    }
    drop(env);
    drop(root); // after every server is gone
}

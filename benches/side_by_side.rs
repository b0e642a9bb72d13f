//! Side-by-side benchmark: Tessera vs. the reference Redis, both driven by
//! `redis-benchmark`, alternating servers round by round so that machine
//! drift (this often runs on small, shared boxes) hits every server equally.
//!
//! ```text
//! cargo bench --bench side_by_side -- [--rounds N] [--requests N]
//!     [--shards-list 1,2] [--tests get,set,incr,mset] [--pipelines 1,16]
//!     [--clients 50] [--keyspace 100000] [--quick] [--cross-shard]
//!     [--timeout-s S] [--bench-threads N] [--bench-cpus L] [--redis-cpus L]
//!     [--tessera-cpus L]
//!     [--redis-io-threads L]
//! ```
//!
//! The last five are for pinning: a threaded load generator kept away from the
//! cores the servers use (Tessera pins shard i to the i-th CPU it may run on),
//! so a run measures the server and not the client's share of the CPUs. On a
//! small host, `--redis-cpus 0 --tessera-cpus 0 --bench-cpus 1` gives every
//! server the same one core however many shards it runs.
//!
//! Needs `redis-server` and `redis-benchmark` on `PATH` (override with the
//! `REDIS_SERVER` / `REDIS_BENCHMARK` env vars). The Tessera binary is the
//! crate's own `tessera` bin (`CARGO_BIN_EXE_tessera`); the `TESSERA_BIN` env
//! var overrides it. If that path names a `redis-server`, the Tessera-only
//! `--shards` flag is dropped, which lets the runner be validated redis vs redis.
//!
//! The Markdown report goes to stdout and to `target/side_by_side.md`; progress
//! and warnings go to stderr; server logs go to `target/side_by_side/`.
//! Every child process is killed on exit, panic included (guards with `Drop`,
//! plus `PR_SET_PDEATHSIG` on Linux in case the runner itself is killed).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

mod common;
use common::*;
use tessera::shard::slot::{key_slot, SlotMap};

fn parse_num<T: std::str::FromStr>(flag: &str, v: &str) -> T {
    v.trim()
        .parse()
        .unwrap_or_else(|_| die(&format!("{flag}: bad number {v:?}")))
}

const USAGE: &str = "\
usage: cargo bench --bench side_by_side -- [options]
  --rounds N         rounds; servers alternate within each round (default 3)
  --requests N       requests per redis-benchmark run, -n (default 100000)
  --shards-list L    tessera shard counts to compare, e.g. 1,2 (default 1,2)
  --tests L          redis-benchmark -t tests (default get,set,incr,mset), plus
                     zrange100 (ZRANGE 0 -1 of a preloaded 100-member zset)
  --pipelines L      pipeline depths, -P (default 1,16)
  --clients N        parallel connections, -c (default 50)
  --keyspace N       random key space, -r (default 100000)
  --quick            1 round of 20000 requests (explicit flags still win)
  --cross-shard      also run the fixed-key GET/SET shard-placement scenario
  --timeout-s S      kill a redis-benchmark run after S seconds
                     (default 120 + requests/1000)
  --bench-threads N  redis-benchmark --threads N (multi-threaded client)
  --bench-cpus L     run redis-benchmark under `taskset -c L`
  --redis-cpus L     run redis-server under `taskset -c L`
  --tessera-cpus L   run Tessera under `taskset -c L` (its shards are pinned inside L, or
                     share L unpinned when there are more shards than CPUs in L)
  --redis-io-threads L  also compare redis-server with --io-threads N for
                     each N in L (threaded I/O, reads included)
env: TESSERA_BIN, REDIS_SERVER, REDIS_BENCHMARK override the binaries";

// ---------------------------------------------------------------- options --

#[derive(Debug, Clone)]
struct Opts {
    rounds: usize,
    requests: u64,
    shards_list: Vec<usize>,
    tests: Vec<String>,
    pipelines: Vec<usize>,
    clients: usize,
    keyspace: u64,
    cross_shard: bool,
    timeout_s: Option<u64>,
    bench_threads: Option<usize>,
    bench_cpus: Option<String>,
    redis_cpus: Option<String>,
    tessera_cpus: Option<String>,
    redis_io_threads: Vec<usize>,
}

fn parse_list<T: std::str::FromStr>(flag: &str, v: &str) -> Vec<T> {
    let out: Vec<T> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| die(&format!("{flag}: bad list item {s:?}")))
        })
        .collect();
    if out.is_empty() {
        die(&format!("{flag}: empty list"));
    }
    out
}

fn die(msg: &str) -> ! {
    eprintln!("side_by_side: {msg}\n{USAGE}");
    std::process::exit(2);
}

fn parse_args() -> Opts {
    let mut rounds = None;
    let mut requests = None;
    let mut shards_list = vec![1, 2];
    let mut tests: Vec<String> = ["get", "set", "incr", "mset"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut pipelines = vec![1, 16];
    let mut clients = 50;
    let mut keyspace = 100_000;
    let mut quick = false;
    let mut cross_shard = false;
    let mut timeout_s = None;
    let mut bench_threads = None;
    let mut bench_cpus = None;
    let mut redis_cpus = None;
    let mut tessera_cpus = None;
    let mut redis_io_threads = Vec::new();

    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let takes_value = matches!(
            flag.as_str(),
            "--rounds"
                | "--requests"
                | "--shards-list"
                | "--tests"
                | "--pipelines"
                | "--clients"
                | "--keyspace"
                | "--timeout-s"
                | "--bench-threads"
                | "--bench-cpus"
                | "--redis-cpus"
                | "--tessera-cpus"
                | "--redis-io-threads"
        );
        let value = if takes_value {
            match inline {
                Some(v) => v,
                None => args
                    .next()
                    .unwrap_or_else(|| die(&format!("{flag} needs a value"))),
            }
        } else {
            String::new()
        };
        match flag.as_str() {
            "--rounds" => rounds = Some(parse_num(&flag, &value)),
            "--requests" => requests = Some(parse_num(&flag, &value)),
            "--shards-list" => shards_list = parse_list(&flag, &value),
            "--tests" => {
                tests = parse_list::<String>(&flag, &value)
                    .into_iter()
                    .map(|t| t.to_lowercase())
                    .collect()
            }
            "--pipelines" => pipelines = parse_list(&flag, &value),
            "--clients" => clients = parse_num(&flag, &value),
            "--keyspace" => keyspace = parse_num(&flag, &value),
            "--timeout-s" => timeout_s = Some(parse_num(&flag, &value)),
            "--bench-threads" => bench_threads = Some(parse_num(&flag, &value)),
            "--bench-cpus" => bench_cpus = Some(value),
            "--redis-cpus" => redis_cpus = Some(value),
            "--tessera-cpus" => tessera_cpus = Some(value),
            "--redis-io-threads" => redis_io_threads = parse_list(&flag, &value),
            "--quick" => quick = true,
            "--cross-shard" => cross_shard = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            // cargo bench appends `--bench`; libtest-style flags are ignored too.
            f if f.starts_with("--bench") => {}
            other => die(&format!("unknown argument {other:?}")),
        }
    }
    let rounds: usize = rounds.unwrap_or(if quick { 1 } else { 3 });
    let requests: u64 = requests.unwrap_or(if quick { 20_000 } else { 100_000 });
    if rounds == 0 || requests == 0 || clients == 0 {
        die("--rounds, --requests and --clients must be > 0");
    }
    if shards_list.contains(&0) || pipelines.contains(&0) {
        die("shard counts and pipeline depths must be > 0");
    }
    Opts {
        rounds,
        requests,
        shards_list,
        tests,
        pipelines,
        clients,
        keyspace,
        cross_shard,
        timeout_s,
        bench_threads,
        bench_cpus,
        redis_cpus,
        tessera_cpus,
        redis_io_threads,
    }
}

/// `--tests` name of the one scenario redis-benchmark has no `-t` test for: ZRANGE of a whole
/// 100-member sorted set (issue 4's collection read), preloaded into every server.
const ZRANGE_TEST: &str = "zrange100";
const ZRANGE_KEY: &str = "bench:zset100";

// ------------------------------------------------------- key → shard map --

/// First key of the form `xkey:N` that lands on `shard` out of `shards`.
fn key_on_shard(shard: usize, shards: usize) -> (String, u16) {
    (0u32..)
        .map(|n| format!("xkey:{n}"))
        .find(|k| SlotMap::new(shards).shard_of_key(k.as_bytes()) == shard)
        .map(|k| {
            let slot = key_slot(k.as_bytes());
            (k, slot)
        })
        .expect("some key maps to every shard")
}

// ------------------------------------------------------ child processes --

fn spawn_guarded(mut cmd: Command) -> std::io::Result<ChildGuard> {
    die_with_parent(&mut cmd);
    cmd.spawn().map(|child| ChildGuard { child })
}

// --------------------------------------------------------------- servers --

#[derive(Debug, Clone)]
enum Kind {
    /// Stock redis-server; `io_threads` > 1 turns on its threaded I/O.
    Redis {
        io_threads: usize,
    },
    Tessera {
        shards: usize,
    },
}

struct Server {
    label: String,
    port: u16,
    log: PathBuf,
    proc_: ChildGuard,
    dead: bool,
}

fn ping(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(250)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while got.len() < 7 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got.starts_with(b"+PONG\r\n")
}

struct Bins {
    redis_server: String,
    redis_benchmark: String,
    tessera: PathBuf,
    /// TESSERA_BIN is really a redis-server (validation mode).
    tessera_is_redis: bool,
}

fn start_server(
    bins: &Bins,
    opts: &Opts,
    label: &str,
    kind: Kind,
    port: u16,
    log_dir: &Path,
) -> Server {
    let log = log_dir.join(format!("{}-{port}.log", label.replace([' ', '='], "_")));
    let (prog, args): (PathBuf, Vec<String>) = match kind {
        Kind::Redis { io_threads } => (
            bins.redis_server.clone().into(),
            [
                "--io-threads".to_string(),
                io_threads.to_string(),
                "--io-threads-do-reads".into(),
                if io_threads > 1 { "yes" } else { "no" }.into(),
            ]
            .into_iter()
            .chain([
                "--port".into(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--save".into(),
                "".into(),
                "--appendonly".into(),
                "no".into(),
                "--daemonize".into(),
                "no".into(),
            ])
            .collect(),
        ),
        Kind::Tessera { shards } => {
            let mut a: Vec<String> = vec![
                "--port".into(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
            ];
            if !bins.tessera_is_redis {
                a.extend(["--shards".into(), shards.to_string()]);
            }
            a.extend([
                "--save".into(),
                "".into(),
                "--appendonly".into(),
                "no".into(),
                "--loglevel".into(),
                "warning".into(),
            ]);
            if bins.tessera_is_redis {
                a.extend(["--daemonize".into(), "no".into()]);
            }
            (bins.tessera.clone(), a)
        }
    };
    let logf = fs::File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let cpus = match kind {
        Kind::Redis { .. } => opts.redis_cpus.as_deref(),
        Kind::Tessera { .. } => opts.tessera_cpus.as_deref(),
    };
    let mut cmd = pinned_command(&prog, &args, cpus);
    cmd.stdin(Stdio::null())
        .stdout(logf.try_clone().expect("dup log fd"))
        .stderr(logf);
    let mut proc_ = spawn_guarded(cmd).unwrap_or_else(|e| panic!("spawn {}: {e}", prog.display()));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = proc_.exited() {
            panic!(
                "{label} ({}) exited during startup: {st}\n--- {} ---\n{}",
                prog.display(),
                log.display(),
                log_tail(&log)
            );
        }
        if ping(port) {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "{label} did not answer PING on port {port} within 20 s\n--- {} ---\n{}",
                log.display(),
                log_tail(&log)
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "started {label:<14} pid {:<7} port {port}  ({} {})",
        proc_.pid(),
        prog.display(),
        args.iter()
            .map(|a| if a.is_empty() {
                "\"\"".to_string()
            } else {
                a.clone()
            })
            .collect::<Vec<_>>()
            .join(" ")
    );
    Server {
        label: label.to_string(),
        port,
        log,
        proc_,
        dead: false,
    }
}

// --------------------------------------------------------- redis-benchmark --

#[derive(Debug, Clone)]
struct Sample {
    name: String,
    rps: f64,
    p50: f64,
    p99: f64,
    cpu_ticks: Option<u64>,
}

fn split_csv_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches(['\r', '\n']).chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

struct RunOutput {
    stdout: String,
    stderr: String,
    status: Option<ExitStatus>, // None: killed on timeout
}

fn run_with_timeout(
    prog: &str,
    args: &[String],
    cpus: Option<&str>,
    timeout: Duration,
) -> std::io::Result<RunOutput> {
    let mut cmd = pinned_command(Path::new(prog), args, cpus);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut g = spawn_guarded(cmd)?;
    let mut so = g.child.stdout.take().unwrap();
    let mut se = g.child.stderr.take().unwrap();
    let t_out = thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t_err = thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = g.exited() {
            break Some(st);
        }
        if Instant::now() > deadline {
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    drop(g); // kills on timeout; closes the pipes so the readers finish
    Ok(RunOutput {
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
        status,
    })
}

/// Known-harmless redis-benchmark stderr noise.
fn benign_stderr(line: &str) -> bool {
    let l = line.trim();
    l.is_empty() || l.starts_with("WARNING: Could not fetch server CONFIG")
}

fn parse_csv(stdout: &str) -> Result<Sample, String> {
    let mut lines = stdout.lines().filter(|l| l.starts_with('"'));
    let header = lines
        .next()
        .ok_or("no CSV header in redis-benchmark output")?;
    let cols = split_csv_line(header);
    let idx = |name: &str| {
        cols.iter()
            .position(|c| c == name)
            .ok_or(format!("CSV header lacks {name:?}: {header}"))
    };
    let (i_test, i_rps, i_p50, i_p99) = (
        idx("test")?,
        idx("rps")?,
        idx("p50_latency_ms")?,
        idx("p99_latency_ms")?,
    );
    let row = lines.next().ok_or("no CSV data row (test errored?)")?;
    let f = split_csv_line(row);
    let num = |i: usize| -> Result<f64, String> {
        f.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or(format!("bad CSV row: {row}"))
    };
    Ok(Sample {
        name: f.get(i_test).cloned().unwrap_or_default(),
        rps: num(i_rps)?,
        p50: num(i_p50)?,
        p99: num(i_p99)?,
        cpu_ticks: None,
    })
}

// ------------------------------------------------------------ scenarios --

#[derive(Clone, Copy, PartialEq)]
enum Section {
    Main,
    Cross,
}

struct Entry {
    label: String,
    server: usize,
    /// redis-benchmark args after the common `-h -p -c -n -P --csv`.
    args: Vec<String>,
    /// One slot per round; None = failed/skipped.
    samples: Vec<Option<Sample>>,
}

struct Group {
    section: Section,
    test: String,
    pipeline: usize,
    /// entries[0] is the reference (redis); for Cross, entries[1] is tessera shards=1.
    entries: Vec<Entry>,
}

fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    v.map_or("n/a".to_string(), |x| format!("{x:.prec$}"))
}

fn fmt_rps(v: Option<f64>) -> String {
    match v {
        None => "n/a".into(),
        Some(x) => {
            // thousands separators for README readability
            let s = format!("{:.0}", x);
            let mut out = String::new();
            for (i, c) in s.chars().enumerate() {
                if i > 0 && (s.len() - i) % 3 == 0 {
                    out.push(',');
                }
                out.push(c);
            }
            out
        }
    }
}

struct Ctx {
    opts: Opts,
    clk_tck: f64,
}

impl Ctx {
    fn cpu_us_per_req(&self, s: &Sample) -> Option<f64> {
        s.cpu_ticks
            .map(|t| t as f64 / self.clk_tck * 1e6 / self.opts.requests as f64)
    }
}

/// Median over rounds of the per-round ratio `f(entry) / f(reference)`:
/// pairing within a round cancels drift better than a ratio of medians.
fn paired_ratio(e: &Entry, r: &Entry, f: &dyn Fn(&Sample) -> Option<f64>) -> Option<f64> {
    let v: Vec<f64> = e
        .samples
        .iter()
        .zip(&r.samples)
        .filter_map(|(a, b)| Some(f(a.as_ref()?)? / f(b.as_ref()?)?))
        .collect();
    median(v)
}

const LOW_TICKS: u64 = 20;

fn render_table(ctx: &Ctx, groups: &[Group], section: Section, out: &mut String) -> bool {
    let cross = section == Section::Cross;
    let mut low_res = false;
    if cross {
        out.push_str("| command | P | server / key placement | rps | p50 ms | p99 ms | CPU µs/req | rps × redis | CPU × redis | rps × tessera s=1 | rps spread |\n");
        out.push_str("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    } else {
        out.push_str("| test | P | server | rps | p50 ms | p99 ms | CPU µs/req | rps × redis | CPU × redis | rps spread |\n");
        out.push_str("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|\n");
    }
    let rps = |s: &Sample| Some(s.rps);
    let cpu = |s: &Sample| ctx.cpu_us_per_req(s).filter(|&c| c > 0.0);
    for g in groups.iter().filter(|g| g.section == section) {
        // Cross rows: the CSV name embeds the key of the first entry only.
        let name = if cross {
            g.test.clone()
        } else {
            g.entries
                .iter()
                .flat_map(|e| e.samples.iter().flatten())
                .map(|s| s.name.clone())
                .next()
                .unwrap_or_else(|| g.test.clone())
        };
        for (i, e) in g.entries.iter().enumerate() {
            let ok: Vec<&Sample> = e.samples.iter().flatten().collect();
            let m_rps = median(ok.iter().map(|s| s.rps).collect());
            let m_p50 = median(ok.iter().map(|s| s.p50).collect());
            let m_p99 = median(ok.iter().map(|s| s.p99).collect());
            let m_cpu = median(ok.iter().filter_map(|s| ctx.cpu_us_per_req(s)).collect());
            let m_ticks = median(
                ok.iter()
                    .filter_map(|s| s.cpu_ticks.map(|t| t as f64))
                    .collect(),
            );
            let mut cpu_cell = fmt_opt(m_cpu, 2);
            if m_ticks.is_some_and(|t| t < LOW_TICKS as f64) {
                cpu_cell.push_str(" †");
                low_res = true;
            }
            let spread = match (ok.len() >= 2, m_rps) {
                (true, Some(m)) if m > 0.0 => {
                    let mx = ok.iter().map(|s| s.rps).fold(f64::MIN, f64::max);
                    let mn = ok.iter().map(|s| s.rps).fold(f64::MAX, f64::min);
                    format!("±{:.0}%", (mx - mn) / m * 50.0)
                }
                _ => "—".into(),
            };
            let (r_rps, r_cpu) = if i == 0 {
                ("ref".to_string(), "ref".to_string())
            } else {
                (
                    fmt_opt(paired_ratio(e, &g.entries[0], &rps), 2),
                    fmt_opt(paired_ratio(e, &g.entries[0], &cpu), 2),
                )
            };
            let fail = e.samples.iter().filter(|s| s.is_none()).count();
            let label = if fail > 0 {
                format!("{} ({fail} failed)", e.label)
            } else {
                e.label.clone()
            };
            let _ = write!(
                out,
                "| {name} | {} | {label} | {} | {} | {} | {cpu_cell} | {r_rps} | {r_cpu} |",
                g.pipeline,
                fmt_rps(m_rps),
                fmt_opt(m_p50, 3),
                fmt_opt(m_p99, 3),
            );
            if cross {
                let r1 = match i {
                    0 => "—".to_string(),
                    1 => "ref".to_string(),
                    _ => fmt_opt(paired_ratio(e, &g.entries[1], &rps), 2),
                };
                let _ = write!(out, " {r1} |");
            }
            let _ = writeln!(out, " {spread} |");
        }
    }
    low_res
}

// ------------------------------------------------------------------ main --

fn main() {
    let opts = parse_args();
    let started = Instant::now();

    let tessera = std::env::var_os("TESSERA_BIN")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_BIN_EXE_tessera").map(PathBuf::from))
        .unwrap_or_else(|| {
            die("no tessera binary: CARGO_BIN_EXE_tessera unset and TESSERA_BIN not given")
        });
    let tessera_is_redis = tessera
        .file_name()
        .is_some_and(|n| n.to_string_lossy().contains("redis-server"));
    let bins = Bins {
        redis_server: std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into()),
        redis_benchmark: std::env::var("REDIS_BENCHMARK")
            .unwrap_or_else(|_| "redis-benchmark".into()),
        tessera,
        tessera_is_redis,
    };

    // target/ dir: CARGO_TARGET_TMPDIR is <target>/tmp for bench targets.
    let target_dir = option_env!("CARGO_TARGET_TMPDIR")
        .and_then(|p| Path::new(p).parent().map(Path::to_path_buf))
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target"));
    let log_dir = target_dir.join("side_by_side");
    fs::create_dir_all(&log_dir).expect("create target/side_by_side");

    let clk_tck = clk_tck();
    let redis_version = capture(&bins.redis_server, &["--version"])
        .and_then(|s| {
            s.split_whitespace()
                .find_map(|w| w.strip_prefix("v=").map(str::to_string))
        })
        .unwrap_or_else(|| die(&format!("cannot run `{} --version`", bins.redis_server)));
    if capture(&bins.redis_benchmark, &["--version"]).is_none() {
        die(&format!("cannot run `{} --version`", bins.redis_benchmark));
    }

    // ---- servers: started once, kept for the whole run ----
    let mut specs: Vec<(String, Kind)> = vec![("redis".into(), Kind::Redis { io_threads: 1 })];
    for &n in opts.redis_io_threads.iter().filter(|&&n| n > 1) {
        specs.push((
            format!("redis io-threads={n}"),
            Kind::Redis { io_threads: n },
        ));
    }
    let mut shard_counts: Vec<usize> = opts.shards_list.clone();
    if opts.cross_shard {
        for s in [1, 2] {
            if !shard_counts.contains(&s) {
                shard_counts.push(s);
            }
        }
    }
    let star = if bins.tessera_is_redis { "*" } else { "" };
    for &s in &shard_counts {
        specs.push((format!("tessera{star} s={s}"), Kind::Tessera { shards: s }));
    }
    let ports = free_ports(specs.len());
    let mut servers: Vec<Server> = specs
        .iter()
        .zip(&ports)
        .map(|((label, kind), &port)| {
            start_server(&bins, &opts, label, kind.clone(), port, &log_dir)
        })
        .collect();
    let tessera_idx =
        |shards: usize| servers_index(&specs, shards).expect("tessera config started");

    // ---- scenario groups ----
    let mut groups: Vec<Group> = Vec::new();
    for test in &opts.tests {
        for &p in &opts.pipelines {
            let args: Vec<String> = if test == ZRANGE_TEST {
                ["zrange", ZRANGE_KEY, "0", "-1"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            } else {
                vec![
                    "-r".into(),
                    opts.keyspace.to_string(),
                    "-t".into(),
                    test.clone(),
                ]
            };
            let mut entries = vec![entry("redis", 0, &args, opts.rounds)];
            for (i, (label, kind)) in specs.iter().enumerate() {
                if matches!(kind, Kind::Redis { io_threads } if *io_threads > 1) {
                    entries.push(entry(label, i, &args, opts.rounds));
                }
            }
            for &s in &opts.shards_list {
                entries.push(entry(
                    &specs[tessera_idx(s)].0,
                    tessera_idx(s),
                    &args,
                    opts.rounds,
                ));
            }
            groups.push(Group {
                section: Section::Main,
                test: if test == ZRANGE_TEST {
                    "ZRANGE (100 members)".into()
                } else {
                    test.to_uppercase()
                },
                pipeline: p,
                entries,
            });
        }
    }
    let (key0, slot0) = key_on_shard(0, 2);
    let (key1, slot1) = key_on_shard(1, 2);
    if opts.cross_shard {
        for cmd in ["SET", "GET"] {
            for &p in &opts.pipelines {
                let a = |k: &str| -> Vec<String> {
                    let mut v = vec![cmd.to_string(), k.to_string()];
                    if cmd == "SET" {
                        v.push("xxx".into()); // 3 bytes, like the default -d 3
                    }
                    v
                };
                let (t1, t2) = (tessera_idx(1), tessera_idx(2));
                let entries = vec![
                    entry(&format!("redis, key {key0}"), 0, &a(&key0), opts.rounds),
                    entry(
                        &format!("{} (all local), key {key0}", specs[t1].0),
                        t1,
                        &a(&key0),
                        opts.rounds,
                    ),
                    entry(
                        &format!("{}, key {key0} → shard 0", specs[t2].0),
                        t2,
                        &a(&key0),
                        opts.rounds,
                    ),
                    entry(
                        &format!("{}, key {key1} → shard 1", specs[t2].0),
                        t2,
                        &a(&key1),
                        opts.rounds,
                    ),
                ];
                groups.push(Group {
                    section: Section::Cross,
                    test: cmd.into(),
                    pipeline: p,
                    entries,
                });
            }
        }
    }

    let ctx = Ctx {
        opts: opts.clone(),
        clk_tck,
    };
    let timeout = Duration::from_secs(opts.timeout_s.unwrap_or(120 + opts.requests / 1000));
    let common = |port: u16, p: usize| -> Vec<String> {
        vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-c".into(),
            opts.clients.to_string(),
            "-n".into(),
            opts.requests.to_string(),
            "-P".into(),
            p.to_string(),
            "--csv".into(),
        ]
        .into_iter()
        .chain(
            opts.bench_threads
                .into_iter()
                .flat_map(|t| ["--threads".to_string(), t.to_string()]),
        )
        .collect::<Vec<String>>()
    };

    // ---- the sorted set that ZRANGE reads ----
    if opts.tests.iter().any(|t| t == ZRANGE_TEST) {
        let members: Vec<(String, String)> = (0..100)
            .map(|i| (i.to_string(), format!("member:{i}")))
            .collect();
        let mut zadd: Vec<&[u8]> = vec![b"ZADD", ZRANGE_KEY.as_bytes()];
        for (score, member) in &members {
            zadd.push(score.as_bytes());
            zadd.push(member.as_bytes());
        }
        for srv in &servers {
            let loaded = call(srv.port, &[b"DEL", ZRANGE_KEY.as_bytes()])
                .and_then(|_| call(srv.port, &zadd));
            match loaded {
                Ok(r) if r == b":100\r\n" => {}
                other => die(&format!(
                    "loading {ZRANGE_KEY} into {}: {other:?}",
                    srv.label
                )),
            }
        }
    }

    // ---- warm-up (not recorded): fill part of the keyspace, warm allocators ----
    for srv in servers.iter_mut() {
        let mut a = common(srv.port, 16);
        a.extend([
            "-r".into(),
            opts.keyspace.to_string(),
            "-t".into(),
            "set".into(),
        ]);
        match run_with_timeout(
            &bins.redis_benchmark,
            &a,
            opts.bench_cpus.as_deref(),
            timeout,
        ) {
            Ok(o) if o.status.is_some_and(|s| s.success()) => {}
            Ok(o) => eprintln!(
                "warning: warm-up of {} failed: {}",
                srv.label,
                o.stderr.trim()
            ),
            Err(e) => eprintln!("warning: warm-up of {}: {e}", srv.label),
        }
    }

    // ---- measurement: rounds × groups × servers (rotated each round) ----
    let mut warned: BTreeSet<String> = BTreeSet::new();
    let total_runs: usize = groups.iter().map(|g| g.entries.len()).sum::<usize>() * opts.rounds;
    let mut run_no = 0;
    for round in 0..opts.rounds {
        for g in groups.iter_mut() {
            let n = g.entries.len();
            for k in 0..n {
                // Rotate the start so no server always runs first (or right after
                // the same neighbour); round 0 runs redis first.
                let ei = (k + round) % n;
                let e = &mut g.entries[ei];
                run_no += 1;
                let srv = &mut servers[e.server];
                if !srv.dead {
                    if let Some(st) = srv.proc_.exited() {
                        srv.dead = true;
                        eprintln!(
                            "error: {} died ({st}); its remaining runs are skipped\n--- {} ---\n{}",
                            srv.label,
                            srv.log.display(),
                            log_tail(&srv.log)
                        );
                    }
                }
                if srv.dead {
                    continue;
                }
                let mut a = common(srv.port, g.pipeline);
                a.extend(e.args.iter().cloned());
                let pid = srv.proc_.pid();
                let t0 = cpu_ticks(pid);
                let res = run_with_timeout(
                    &bins.redis_benchmark,
                    &a,
                    opts.bench_cpus.as_deref(),
                    timeout,
                );
                let t1 = cpu_ticks(pid);
                let tag = format!(
                    "[{run_no}/{total_runs}] round {} {} P={} {}",
                    round + 1,
                    g.test,
                    g.pipeline,
                    e.label
                );
                let out = match res {
                    Ok(o) => o,
                    Err(err) => {
                        eprintln!("{tag}: cannot run redis-benchmark: {err}");
                        continue;
                    }
                };
                for l in out.stderr.lines().filter(|l| !benign_stderr(l)) {
                    if warned.insert(format!("{}|{}|{l}", srv.label, g.test)) {
                        eprintln!("{tag}: redis-benchmark stderr: {l}");
                    }
                }
                let sample = match out.status {
                    None => Err(format!("timed out after {} s (killed)", timeout.as_secs())),
                    Some(st) if !st.success() => {
                        Err(format!("redis-benchmark {st}: {}", out.stderr.trim()))
                    }
                    Some(_) => parse_csv(&out.stdout),
                };
                match sample {
                    Ok(mut s) => {
                        s.cpu_ticks = match (t0, t1) {
                            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                            _ => None,
                        };
                        eprintln!(
                            "{tag}: {:>10.0} rps  p50 {:.3}  p99 {:.3} ms  cpu {} µs/req",
                            s.rps,
                            s.p50,
                            s.p99,
                            fmt_opt(ctx.cpu_us_per_req(&s), 2)
                        );
                        e.samples[round] = Some(s);
                    }
                    Err(msg) => eprintln!("{tag}: FAILED: {msg}"),
                }
            }
        }
    }

    // ---- report ----
    let Host {
        date,
        cpu_model,
        nproc,
    } = Host::probe();
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());

    let mut md = String::new();
    let _ = writeln!(md, "### Tessera vs Redis (redis-benchmark)\n");
    let _ = writeln!(
        md,
        "{date} · kernel {kernel} · CPU {cpu_model} · nproc {nproc} · redis-server {redis_version} · \
         requests {} · clients {} · rounds {} · keyspace -r {} · value size 3 B (redis-benchmark default -d 3) · pipelines {}\n",
        opts.requests, opts.clients, opts.rounds, opts.keyspace,
        opts.pipelines.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",")
    );
    let _ = writeln!(
        md,
        "Medians over rounds; servers alternate within each round (order rotated per round). \
         `rps × redis` / `CPU × redis` are medians of per-round ratios. CPU µs/req = server utime+stime \
         from /proc/<pid>/stat (whole process, clock tick {:.0} ms) ÷ requests. redis-benchmark runs on \
         the same host and competes for the same cores. `rps spread` = ±half the max–min range across rounds.\n",
        1000.0 / clk_tck
    );
    if opts.bench_threads.is_some()
        || opts.bench_cpus.is_some()
        || opts.redis_cpus.is_some()
        || opts.tessera_cpus.is_some()
    {
        let _ = writeln!(
            md,
            "Load generator: redis-benchmark --threads {} on CPUs {}; redis-server on CPUs {}; \
             Tessera on CPUs {} (shard i pinned to the i-th of them when there are enough, else \
             unpinned).\n",
            opts.bench_threads.map_or("1".into(), |t| t.to_string()),
            opts.bench_cpus.as_deref().unwrap_or("any"),
            opts.redis_cpus.as_deref().unwrap_or("any"),
            opts.tessera_cpus.as_deref().unwrap_or("any"),
        );
    }
    if bins.tessera_is_redis {
        let _ = writeln!(md, "\\* **validation run**: the `tessera*` rows are redis-server ({}) started in place of Tessera.\n", bins.tessera.display());
    }
    let mut low = render_table(&ctx, &groups, Section::Main, &mut md);
    if opts.cross_shard {
        let _ = writeln!(
            md,
            "\n#### Shard placement (fixed key, GET/SET, no -r)\n\n\
             Every request hits one key. With `--shards 2` connections are spread over both shards by \
             SO_REUSEPORT, so roughly half of them are served by the shard that does not own the key. \
             `{key0}` (slot {slot0}) lives on shard 0, `{key1}` (slot {slot1}) on shard 1 \
             (CRC16/XMODEM mod 16384, shard = slot × 2 / 16384). `tessera s=1` has no cross-shard hops \
             at all and is the same-shard baseline (`rps × tessera s=1`).\n"
        );
        low |= render_table(&ctx, &groups, Section::Cross, &mut md);
    }
    if low {
        let _ = writeln!(
            md,
            "\n† median CPU delta under {LOW_TICKS} clock ticks: low resolution, raise --requests."
        );
    }

    println!("\n{md}");
    let md_path = target_dir.join("side_by_side.md");
    match fs::write(&md_path, &md) {
        Ok(()) => eprintln!(
            "wrote {} ({:.0} s total)",
            md_path.display(),
            started.elapsed().as_secs_f64()
        ),
        Err(e) => eprintln!("warning: cannot write {}: {e}", md_path.display()),
    }
    drop(servers); // explicit: kill all servers before exiting
}

fn servers_index(specs: &[(String, Kind)], shards: usize) -> Option<usize> {
    specs
        .iter()
        .position(|(_, k)| matches!(k, Kind::Tessera { shards: s } if *s == shards))
}

fn entry(label: &str, server: usize, args: &[String], rounds: usize) -> Entry {
    Entry {
        label: label.to_string(),
        server,
        args: args.to_vec(),
        samples: vec![None; rounds],
    }
}

//! Side-by-side benchmark of multi-key work: Tessera vs. the reference Redis on
//! single-key GET/SET (baseline), MSET of 10 keys, a 2-key EVALSHA, and MULTI/EXEC
//! of 4 SETs with the keys on one shard (shared hash tag) or spread over shards.
//!
//! ```text
//! cargo bench --bench transactions -- [--rounds N] [--ops N] [--clients N]
//!     [--pipelines 1,16] [--scenarios get,set,mset10,evalsha2,multi4tag,multi4cross]
//!     [--shards-list 1,2] [--keyspace N] [--timeout-s S] [--quick]
//!     [--server-cpus L] [--client-cpus L]
//! ```
//!
//! Unlike `side_by_side` this runner has its own load generator, because
//! redis-benchmark cannot express MULTI/EXEC or EVALSHA with random keys: std
//! threads, one TCP connection each, RESP written by hand, replies counted by
//! parsing just enough RESP to find where each one ends (and to spot errors).
//! One "op" is one unit of the scenario (a GET, an MSET, an EVALSHA, or a whole
//! MULTI..EXEC transaction); the pipeline depth is counted in ops.
//!
//! Servers are started once on free ports and alternate round by round (order
//! rotated each round) so that drift on a small shared machine hits all of them
//! equally; the report gives medians and the median of per-round ratios to Redis,
//! never absolute claims. Each run also reads the server's CPU time from /proc, reported per
//! op; with `--server-cpus 0 --client-cpus 1` every server gets the same single core and the
//! load generator another, which is how "at equal cores" is measured. Markdown goes to stdout and `target/transactions.md`,
//! progress to stderr, server logs to `target/transactions/`. Every child
//! process is killed on exit, panic included (`Drop` guards plus
//! `PR_SET_PDEATHSIG` on Linux). It shares only `benches/common` (RESP client,
//! process guards) with the other benches, and no code with the crate.

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

mod common;
use common::*;
use tessera::shard::slot::SlotMap;

fn parse_num<T: std::str::FromStr>(flag: &str, v: &str) -> T {
    v.trim()
        .parse()
        .unwrap_or_else(|_| die(&format!("{flag}: bad number {v:?}")))
}

const USAGE: &str = "\
usage: cargo bench --bench transactions -- [options]
  --rounds N         rounds; servers alternate within each round (default 3)
  --ops N            operations per run, all clients together (default 100000)
  --clients N        connections, one thread each (default 8)
  --pipelines L      pipeline depths in ops, e.g. 1,16 (default 1,16)
  --scenarios L      get,set,mset10,evalsha2,multi4tag,multi4cross (default all)
  --shards-list L    tessera shard counts (default 1,2)
  --keyspace N       random keys per scenario (default 100000)
  --timeout-s S      socket timeout: a run with no reply for S seconds fails (default 30)
  --quick            1 round of 20000 ops (explicit flags still win)
  --server-cpus L    run every server under `taskset -c L` (e.g. 0: equal cores)
  --client-cpus L    run the load generator's threads on CPUs L (e.g. 1)
env: TESSERA_BIN, REDIS_SERVER override the binaries";

const ALL_SCENARIOS: [&str; 6] = [
    "get",
    "set",
    "mset10",
    "evalsha2",
    "multi4tag",
    "multi4cross",
];

const SCRIPT: &str = "redis.call('INCR',KEYS[1]); return redis.call('INCR',KEYS[2])";

// ---------------------------------------------------------------- options --

#[derive(Debug, Clone)]
struct Opts {
    rounds: usize,
    ops: u64,
    clients: usize,
    pipelines: Vec<usize>,
    scenarios: Vec<String>,
    shards_list: Vec<usize>,
    keyspace: u64,
    timeout_s: u64,
    server_cpus: Option<String>,
    client_cpus: Option<String>,
}

fn die(msg: &str) -> ! {
    eprintln!("transactions: {msg}\n{USAGE}");
    std::process::exit(2);
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
    let mut pipelines = vec![1, 16];
    let mut scenarios: Vec<String> = ALL_SCENARIOS.iter().map(|s| s.to_string()).collect();
    let mut shards_list = vec![1, 2];
    let mut keyspace = 100_000;
    let mut timeout_s = 30;
    let mut quick = false;
    let mut server_cpus = None;
    let mut client_cpus = None;

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
                | "--pipelines"
                | "--scenarios"
                | "--shards-list"
                | "--keyspace"
                | "--timeout-s"
                | "--server-cpus"
                | "--client-cpus"
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
            "--pipelines" => pipelines = parse_list(&flag, &value),
            "--scenarios" => {
                scenarios = parse_list::<String>(&flag, &value)
                    .into_iter()
                    .map(|s| s.to_lowercase())
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
            "--timeout-s" => timeout_s = parse_num(&flag, &value),
            "--quick" => quick = true,
            "--server-cpus" => server_cpus = Some(value),
            "--client-cpus" => client_cpus = Some(value),
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
    if rounds == 0 || ops == 0 || clients == 0 || timeout_s == 0 {
        die("--rounds, --ops, --clients and --timeout-s must be > 0");
    }
    // Cross-shard scenarios need keys on at least two shards of a 2-shard split.
    if keyspace < 16 {
        die("--keyspace must be >= 16");
    }
    if shards_list.contains(&0) || pipelines.contains(&0) {
        die("shard counts and pipeline depths must be > 0");
    }
    Opts {
        rounds,
        ops,
        clients,
        pipelines,
        scenarios,
        shards_list,
        keyspace,
        timeout_s,
        server_cpus,
        client_cpus,
    }
}

// ------------------------------------------------------- key → shard map --

/// The shard `key` lands on with `--shards 2` (Tessera's own key router).
fn shard_of_2(key: &str) -> usize {
    SlotMap::new(2).shard_of_key(key.as_bytes())
}

/// Key numbers `0..keyspace` split by the shard `<prefix><n>` lands on with
/// `--shards 2`, so cross-shard scenarios can alternate shards deterministically
/// (on one shard, or on Redis, the same keys are simply all local).
fn split_by_shard(prefix: &str, keyspace: u64) -> [Vec<u64>; 2] {
    let mut out = [Vec::new(), Vec::new()];
    for n in 0..keyspace {
        out[shard_of_2(&format!("{prefix}{n}"))].push(n);
    }
    if out[0].is_empty() || out[1].is_empty() {
        die("keyspace too small to place keys on both shards");
    }
    out
}

// --------------------------------------------------------------- servers --

#[derive(Debug, Clone, Copy)]
enum Kind {
    Redis,
    Tessera { shards: usize },
}

struct Server {
    label: String,
    port: u16,
    log: PathBuf,
    proc_: ChildGuard,
    dead: bool,
    /// SHA1 returned by SCRIPT LOAD on this server.
    sha: String,
}

fn start_server(
    bins: &Bins,
    label: &str,
    kind: Kind,
    port: u16,
    log_dir: &Path,
    cpus: Option<&str>,
) -> Server {
    let log = log_dir.join(format!("{}-{port}.log", label.replace([' ', '='], "_")));
    let mut args: Vec<String> = vec![
        "--port".into(),
        port.to_string(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--save".into(),
        "".into(),
        "--appendonly".into(),
        "no".into(),
    ];
    let prog: PathBuf = match kind {
        Kind::Redis => {
            args.extend(["--daemonize".into(), "no".into()]);
            bins.redis_server.clone().into()
        }
        Kind::Tessera { shards } => {
            if bins.tessera_is_redis {
                args.extend(["--daemonize".into(), "no".into()]);
            } else {
                args.extend(["--shards".into(), shards.to_string()]);
                args.extend(["--loglevel".into(), "warning".into()]);
            }
            bins.tessera.clone()
        }
    };
    let logf = fs::File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let mut cmd = pinned_command(&prog, &args, cpus);
    cmd.stdin(Stdio::null())
        .stdout(logf.try_clone().expect("dup log fd"))
        .stderr(logf);
    die_with_parent(&mut cmd);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", prog.display()));
    let mut proc_ = ChildGuard { child };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = proc_.exited() {
            panic!(
                "{label} exited during startup: {st}\n--- {} ---\n{}",
                log.display(),
                log_tail(&log)
            );
        }
        if call(port, &[b"PING"]).is_ok_and(|r| r == b"+PONG\r\n") {
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
        "started {label:<14} pid {:<7} port {port}  ({})",
        proc_.pid(),
        prog.display()
    );
    // SCRIPT LOAD once per server; the reply is a bulk string holding the SHA1.
    let reply = call(port, &[b"SCRIPT", b"LOAD", SCRIPT.as_bytes()])
        .unwrap_or_else(|e| panic!("{label}: SCRIPT LOAD: {e}"));
    let text = String::from_utf8_lossy(&reply);
    let sha = text
        .lines()
        .nth(1)
        .filter(|l| text.starts_with('$') && l.len() == 40)
        .unwrap_or_else(|| panic!("{label}: unexpected SCRIPT LOAD reply {text:?}"))
        .to_string();
    Server {
        label: label.to_string(),
        port,
        log,
        proc_,
        dead: false,
        sha,
    }
}

// --------------------------------------------------------- load generator --

/// Everything a client thread needs to build requests for one scenario.
struct Workload {
    scenario: String,
    keyspace: u64,
    sha: String,
    /// `key:N` split by shard (for MSET and MULTI across shards).
    key_shards: Arc<[Vec<u64>; 2]>,
    /// `ctr:N` split by shard (EVALSHA INCRs its keys, so they must not hold "xxx").
    ctr_shards: Arc<[Vec<u64>; 2]>,
}

impl Workload {
    /// Replies one op produces.
    fn replies_per_op(&self) -> usize {
        match self.scenario.as_str() {
            "multi4tag" | "multi4cross" => 6, // +OK, 4 × +QUEUED, EXEC's array
            _ => 1,
        }
    }

    /// Append one op to `out`. Cross-shard keys alternate shard 0 / shard 1 of
    /// a 2-shard split, so with `--shards 2` they always span both shards.
    fn push_op(&self, rng: &mut Rng, out: &mut Vec<u8>) {
        let ks = &self.key_shards;
        match self.scenario.as_str() {
            "get" => {
                let k = format!("key:{}", rng.below(self.keyspace));
                encode(out, &[b"GET", k.as_bytes()]);
            }
            "set" => {
                let k = format!("key:{}", rng.below(self.keyspace));
                encode(out, &[b"SET", k.as_bytes(), b"xxx"]);
            }
            "mset10" => {
                let keys: Vec<String> = (0..10)
                    .map(|i| format!("key:{}", rng.pick(&ks[i % 2])))
                    .collect();
                let mut args: Vec<&[u8]> = vec![b"MSET"];
                for k in &keys {
                    args.push(k.as_bytes());
                    args.push(b"xxx");
                }
                encode(out, &args);
            }
            "evalsha2" => {
                let k1 = format!("ctr:{}", rng.pick(&self.ctr_shards[0]));
                let k2 = format!("ctr:{}", rng.pick(&self.ctr_shards[1]));
                encode(
                    out,
                    &[
                        b"EVALSHA",
                        self.sha.as_bytes(),
                        b"2",
                        k1.as_bytes(),
                        k2.as_bytes(),
                    ],
                );
            }
            "multi4tag" | "multi4cross" => {
                let tagged = self.scenario == "multi4tag";
                let n = rng.below(self.keyspace);
                encode(out, &[b"MULTI"]);
                for (i, suffix) in ["a", "b", "c", "d"].iter().enumerate() {
                    let k = if tagged {
                        format!("{{u{n}}}{suffix}")
                    } else {
                        format!("key:{}", rng.pick(&ks[i % 2]))
                    };
                    encode(out, &[b"SET", k.as_bytes(), b"xxx"]);
                }
                encode(out, &[b"EXEC"]);
            }
            other => unreachable!("scenario {other} validated in parse_args"),
        }
    }
}

struct RunResult {
    ops_per_s: f64,
    errors: u64,
}

/// One measured run: `clients` threads, `ops` ops in all, `pipeline` ops in
/// flight per connection (written as one batch, then all replies read back).
fn run_load(
    port: u16,
    wl: &Arc<Workload>,
    ops: u64,
    clients: usize,
    pipeline: usize,
    timeout: Duration,
    seed: u64,
) -> Result<RunResult, String> {
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut handles = Vec::with_capacity(clients);
    for c in 0..clients {
        let share = ops / clients as u64 + u64::from((c as u64) < ops % clients as u64);
        let wl = Arc::clone(wl);
        let barrier = Arc::clone(&barrier);
        let conn = connect(port, timeout);
        handles.push(thread::spawn(move || -> Result<(u64, Instant), String> {
            // Always reach the barrier, even on failure, so the others are not stuck.
            let mut s = match conn {
                Ok(s) => {
                    barrier.wait();
                    s
                }
                Err(e) => {
                    barrier.wait();
                    return Err(format!("connect: {e}"));
                }
            };
            let mut rng = Rng((seed ^ (c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1);
            let mut rd = ReplyReader::new();
            let mut req = Vec::with_capacity(4096);
            let mut left = share;
            while left > 0 {
                let batch = left.min(pipeline as u64);
                req.clear();
                for _ in 0..batch {
                    wl.push_op(&mut rng, &mut req);
                }
                s.write_all(&req).map_err(|e| format!("write: {e}"))?;
                rd.read_replies(&mut s, batch as usize * wl.replies_per_op())
                    .map_err(|e| format!("read: {e}"))?;
                left -= batch;
            }
            Ok((rd.errors, Instant::now()))
        }));
    }
    barrier.wait();
    let t0 = Instant::now();
    let mut errors = 0;
    let mut last = t0;
    let mut failure = None;
    for h in handles {
        match h.join() {
            Ok(Ok((e, done))) => {
                errors += e;
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
    Ok(RunResult {
        ops_per_s: ops as f64 / secs,
        errors,
    })
}

/// Pipelined SET of every `key:N` so GET hits real values (not recorded).
fn fill_keyspace(port: u16, keyspace: u64, timeout: Duration) -> std::io::Result<()> {
    let mut s = connect(port, timeout)?;
    let mut rd = ReplyReader::new();
    let mut req = Vec::new();
    let mut n = 0;
    while n < keyspace {
        let batch = (keyspace - n).min(1000);
        req.clear();
        for i in n..n + batch {
            let k = format!("key:{i}");
            encode(&mut req, &[b"SET", k.as_bytes(), b"xxx"]);
        }
        s.write_all(&req)?;
        rd.read_replies(&mut s, batch as usize)?;
        n += batch;
    }
    Ok(())
}

// ---------------------------------------------------------------- report --

fn fmt_ops(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
    }
}

fn fmt_ratio(v: Option<f64>) -> String {
    v.map_or("—".into(), |x| format!("{x:.2}"))
}

/// One scenario at one pipeline depth: samples[server][round].
struct Group {
    scenario: String,
    pipeline: usize,
    samples: Vec<Vec<Option<f64>>>,
    /// Server CPU time per op (µs), same layout as `samples`.
    cpu_us: Vec<Vec<Option<f64>>>,
    errors: Vec<u64>,
    failures: Vec<usize>,
}

/// One markdown table: a row per group, per server its median of `values` and (after the
/// first, Redis) the median of its per-round ratios to Redis.
fn write_table(
    md: &mut String,
    labels: &[&str],
    groups: &[Group],
    unit: &str,
    values: impl Fn(&Group) -> &Vec<Vec<Option<f64>>>,
    fmt: impl Fn(Option<f64>) -> String,
) {
    let _ = write!(md, "| scenario | P |");
    for (i, label) in labels.iter().enumerate() {
        let _ = write!(md, " {label} {unit} |");
        if i > 0 {
            let _ = write!(md, " {label} × redis |");
        }
    }
    let _ = writeln!(md);
    let _ = write!(md, "|---|---:|");
    for i in 0..labels.len() {
        let _ = write!(md, "---:|{}", if i > 0 { "---:|" } else { "" });
    }
    let _ = writeln!(md);
    for g in groups {
        let v = values(g);
        let _ = write!(md, "| {} | {} |", g.scenario, g.pipeline);
        for i in 0..labels.len() {
            let med = median(v[i].iter().flatten().copied().collect());
            let _ = write!(md, " {} |", fmt(med));
            if i > 0 {
                let ratios: Vec<f64> = v[i]
                    .iter()
                    .zip(&v[0])
                    .filter_map(|(t, r)| Some(t.as_ref()? / r.as_ref()?))
                    .collect();
                let _ = write!(md, " {} |", fmt_ratio(median(ratios)));
            }
        }
        let _ = writeln!(md);
    }
}

// ------------------------------------------------------------------ main --

fn main() {
    let opts = parse_args();
    let started = Instant::now();
    let user_args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--bench"))
        .collect();
    let cmdline = if user_args.is_empty() {
        "cargo bench --bench transactions".to_string()
    } else {
        format!(
            "cargo bench --bench transactions -- {}",
            user_args.join(" ")
        )
    };

    let bins = Bins::from_env().unwrap_or_else(|e| die(&e));
    let redis_version = bins.redis_version().unwrap_or_else(|e| die(&e));
    let target_dir = target_dir();
    let log_dir = target_dir.join("transactions");
    fs::create_dir_all(&log_dir).expect("create target/transactions");

    let timeout = Duration::from_secs(opts.timeout_s);
    let clk = clk_tck();
    let key_shards = Arc::new(split_by_shard("key:", opts.keyspace));
    let ctr_shards = Arc::new(split_by_shard("ctr:", opts.keyspace));

    // ---- servers: started once, kept for the whole run ----
    let star = if bins.tessera_is_redis { "*" } else { "" };
    let mut specs: Vec<(String, Kind)> = vec![("redis".into(), Kind::Redis)];
    for &s in &opts.shards_list {
        specs.push((format!("tessera{star} s={s}"), Kind::Tessera { shards: s }));
    }
    let ports = free_ports(specs.len());
    let mut servers: Vec<Server> = specs
        .iter()
        .zip(&ports)
        .map(|((label, kind), &port)| {
            start_server(
                &bins,
                label,
                *kind,
                port,
                &log_dir,
                opts.server_cpus.as_deref(),
            )
        })
        .collect();
    // Probed before pinning, which would hide the other CPUs.
    let Host {
        date,
        cpu_model,
        nproc,
    } = Host::probe();
    // Pinned only now: servers started without --server-cpus must not inherit the mask.
    if let Some(cpus) = &opts.client_cpus {
        pin_current_process(cpus).unwrap_or_else(|e| die(&format!("--client-cpus: {e}")));
    }
    for srv in &servers {
        if let Err(e) = fill_keyspace(srv.port, opts.keyspace, timeout) {
            eprintln!("warning: filling the keyspace of {} failed: {e}", srv.label);
        }
    }

    let mut groups: Vec<Group> = Vec::new();
    for sc in &opts.scenarios {
        for &p in &opts.pipelines {
            groups.push(Group {
                scenario: sc.clone(),
                pipeline: p,
                samples: vec![vec![None; opts.rounds]; servers.len()],
                cpu_us: vec![vec![None; opts.rounds]; servers.len()],
                errors: vec![0; servers.len()],
                failures: vec![0; servers.len()],
            });
        }
    }

    // ---- measurement: rounds × groups × servers (rotated each round) ----
    let total = groups.len() * servers.len() * opts.rounds;
    let mut run_no = 0;
    for round in 0..opts.rounds {
        for g in groups.iter_mut() {
            let n = servers.len();
            for k in 0..n {
                let si = (k + round) % n;
                run_no += 1;
                let srv = &mut servers[si];
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
                    g.failures[si] += 1;
                    continue;
                }
                let wl = Arc::new(Workload {
                    scenario: g.scenario.clone(),
                    keyspace: opts.keyspace,
                    sha: srv.sha.clone(),
                    key_shards: Arc::clone(&key_shards),
                    ctr_shards: Arc::clone(&ctr_shards),
                });
                let seed = 0x5EED ^ ((round as u64) << 32) ^ run_no as u64;
                let tag = format!(
                    "[{run_no}/{total}] round {} {} P={} {}",
                    round + 1,
                    g.scenario,
                    g.pipeline,
                    srv.label
                );
                let pid = srv.proc_.pid();
                let ticks_before = cpu_ticks(pid);
                match run_load(
                    srv.port,
                    &wl,
                    opts.ops,
                    opts.clients,
                    g.pipeline,
                    timeout,
                    seed,
                ) {
                    Ok(r) => {
                        let cpu = ticks_before
                            .zip(cpu_ticks(pid))
                            .map(|(a, b)| b.saturating_sub(a) as f64 / clk * 1e6 / opts.ops as f64);
                        eprintln!(
                            "{tag}: {:>10.0} ops/s  cpu {} us/op  errors {}",
                            r.ops_per_s,
                            cpu.map_or("-".into(), |c| format!("{c:.2}")),
                            r.errors
                        );
                        g.samples[si][round] = Some(r.ops_per_s);
                        g.cpu_us[si][round] = cpu;
                        g.errors[si] += r.errors;
                    }
                    Err(e) => {
                        eprintln!("{tag}: FAILED: {e}");
                        g.failures[si] += 1;
                    }
                }
            }
        }
    }

    // ---- report ----

    let mut md = String::new();
    let _ = writeln!(md, "### Transactions and scripts: Tessera vs Redis\n");
    let _ = writeln!(md, "`{cmdline}`\n");
    let _ = writeln!(
        md,
        "{date} · CPU {cpu_model} · nproc {nproc} · redis-server {redis_version} · ops {} per run · \
         clients {} · rounds {} · keyspace {} · 3-byte values\n",
        opts.ops, opts.clients, opts.rounds, opts.keyspace
    );
    let _ = writeln!(
        md,
        "ops/s: medians over rounds (one op = one GET/SET/MSET/EVALSHA, or one whole MULTI..EXEC \
         transaction); P = ops in flight per connection. `× redis` = median of per-round ratios. \
         Cross-shard keys alternate between the two halves of a 2-shard split.\n"
    );
    let _ = writeln!(
        md,
        "Placement: servers on {}, load generator on {}.\n",
        opts.server_cpus
            .as_deref()
            .map_or("any CPU".to_string(), |c| format!("CPUs {c}")),
        opts.client_cpus.as_deref().map_or(
            "any CPU (it competes with the servers for the same cores: compare ratios)".to_string(),
            |c| format!("CPUs {c}")
        )
    );
    if bins.tessera_is_redis {
        let _ = writeln!(
            md,
            "\\* **validation run**: the `tessera*` columns are redis-server ({}).\n",
            bins.tessera.display()
        );
    }
    let labels: Vec<&str> = servers.iter().map(|srv| srv.label.as_str()).collect();
    write_table(&mut md, &labels, &groups, "ops/s", |g| &g.samples, fmt_ops);
    let _ = writeln!(
        md,
        "\nServer CPU time per op (user + system, from /proc; µs, medians; `× redis` = median \
         of per-round ratios, lower is better):\n"
    );
    write_table(
        &mut md,
        &labels,
        &groups,
        "µs/op",
        |g| &g.cpu_us,
        |v| v.map_or("—".into(), |c| format!("{c:.2}")),
    );
    let mut notes = Vec::new();
    for g in &groups {
        for (i, label) in labels.iter().enumerate() {
            if g.errors[i] > 0 || g.failures[i] > 0 {
                notes.push(format!(
                    "{} P={} on {label}: {} error replies, {} failed runs",
                    g.scenario, g.pipeline, g.errors[i], g.failures[i]
                ));
            }
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(md, "\n**Errors:**\n");
        for n in notes {
            let _ = writeln!(md, "- {n}");
        }
    }

    println!("\n{md}");
    let md_path = target_dir.join("transactions.md");
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

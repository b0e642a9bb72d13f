//! Eviction and memory-efficiency benchmark: Tessera vs. the reference Redis.
//!
//! ```text
//! cargo bench --bench eviction -- [--keys N] [--ops N] [--maxmemory BYTES] [--value-size N]
//!     [--zipf S] [--shards-list 1,4] [--policies allkeys-lru,allkeys-lfu]
//!     [--memory-keys N] [--collection-keys N] [--big-items N] [--skip-hit-rates] [--skip-memory]
//! ```
//!
//! Part 1 (hit rates): every server gets the same `maxmemory` and policy, then the same
//! Zipf-skewed stream of keys (fixed seed): GET, and SET with a `value-size` value on a miss,
//! pipelined in batches. A warm-up of one fifth of the operations is not counted. The report
//! shows the hit rate, the keys held at the end and the evictions.
//!
//! Part 2 (memory per item, the datasets of issue 4): `used_memory` and RSS before and after
//! loading, into a fresh server each time, `memory-keys` small strings, `collection-keys`
//! hashes of 10 fields, `collection-keys` sets of 10 integers, one sorted set of `big-items`
//! members and one list of `big-items` items; the growth is divided by the keys, members or
//! items. `--skip-hit-rates --shards-list 1` gives the memory table alone.
//!
//! Needs `redis-server` on `PATH` (or `REDIS_SERVER`); the Tessera binary is the crate's own
//! (`TESSERA_BIN` overrides it). The Markdown report goes to stdout and to
//! `target/eviction.md`; children are killed on exit, panic included.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: cargo bench --bench eviction -- [options]
  --keys N             key space of the hit-rate workload (default 200000)
  --ops N              GETs per run, warm-up included (default 600000)
  --maxmemory BYTES    the same limit for every server (default 64000000)
  --value-size N       bytes per value written on a miss (default 1000)
  --zipf S             Zipf exponent of key popularity (default 0.99)
  --shards-list L      tessera shard counts (default 1,4)
  --policies L         policies to compare (default allkeys-lru,allkeys-lfu)
  --memory-keys N      small string keys for the memory table (default 1000000)
  --collection-keys N  hashes of 10 fields, and sets of 10 integers (default 100000)
  --big-items N        members of the one sorted set, items of the one list (default 1000000)
  --skip-hit-rates     only the memory table
  --skip-memory        only the hit-rate table
env: TESSERA_BIN, REDIS_SERVER override the binaries";

struct Opts {
    keys: usize,
    ops: usize,
    maxmemory: u64,
    value_size: usize,
    zipf: f64,
    shards_list: Vec<usize>,
    policies: Vec<String>,
    memory_keys: usize,
    collection_keys: usize,
    big_items: usize,
    hit_rates: bool,
    memory: bool,
}

fn die(msg: &str) -> ! {
    eprintln!("eviction: {msg}\n{USAGE}");
    std::process::exit(2);
}

fn parse_args() -> Opts {
    let mut o = Opts {
        keys: 200_000,
        ops: 600_000,
        maxmemory: 64_000_000,
        value_size: 1000,
        zipf: 0.99,
        shards_list: vec![1, 4],
        policies: vec!["allkeys-lru".into(), "allkeys-lfu".into()],
        memory_keys: 1_000_000,
        collection_keys: 100_000,
        big_items: 1_000_000,
        hit_rates: true,
        memory: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| -> String {
            args.next()
                .unwrap_or_else(|| die(&format!("{name} needs a value")))
        };
        let num = |name: &str, v: String| -> usize {
            v.parse()
                .unwrap_or_else(|_| die(&format!("{name}: bad number {v:?}")))
        };
        match a.as_str() {
            "--keys" => o.keys = num("--keys", val("--keys")),
            "--ops" => o.ops = num("--ops", val("--ops")),
            "--maxmemory" => o.maxmemory = num("--maxmemory", val("--maxmemory")) as u64,
            "--value-size" => o.value_size = num("--value-size", val("--value-size")),
            "--zipf" => {
                o.zipf = val("--zipf")
                    .parse()
                    .unwrap_or_else(|_| die("--zipf: bad number"))
            }
            "--shards-list" => {
                o.shards_list = val("--shards-list")
                    .split(',')
                    .map(|s| num("--shards-list", s.to_string()))
                    .collect()
            }
            "--policies" => o.policies = val("--policies").split(',').map(str::to_string).collect(),
            "--memory-keys" => o.memory_keys = num("--memory-keys", val("--memory-keys")),
            "--collection-keys" => {
                o.collection_keys = num("--collection-keys", val("--collection-keys"))
            }
            "--big-items" => o.big_items = num("--big-items", val("--big-items")),
            "--skip-hit-rates" => o.hit_rates = false,
            "--skip-memory" => o.memory = false,
            // cargo bench passes --bench to harness=false benches.
            "--bench" => {}
            other => die(&format!("unknown option {other}")),
        }
    }
    o
}

// ----- processes -----

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().unwrap().port()
}

#[derive(Clone, Copy)]
enum Kind {
    Redis,
    Tessera(usize),
}

impl Kind {
    fn label(self) -> String {
        match self {
            Kind::Redis => "redis".into(),
            Kind::Tessera(n) => format!("tessera s={n}"),
        }
    }
}

fn bins() -> (String, PathBuf) {
    let redis = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let tessera = std::env::var_os("TESSERA_BIN")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_BIN_EXE_tessera").map(PathBuf::from))
        .unwrap_or_else(|| die("no tessera binary (TESSERA_BIN)"));
    (redis, tessera)
}

fn start(kind: Kind, extra: &[String]) -> (Proc, Client) {
    let (redis, tessera) = bins();
    let port = free_port();
    let mut args: Vec<String> = ["--port", &port.to_string(), "--bind", "127.0.0.1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(
        ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
            .iter()
            .map(|s| s.to_string()),
    );
    let prog: PathBuf = match kind {
        Kind::Redis => redis.into(),
        Kind::Tessera(n) => {
            args.push("--shards".into());
            args.push(n.to_string());
            tessera
        }
    };
    args.extend(extra.iter().cloned());
    let child = Command::new(&prog)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| die(&format!("spawn {}: {e}", prog.display())));
    let proc_ = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            let mut c = Client::new(s);
            if c.cmd(&["PING"]) == Reply::Status("PONG".into()) {
                return (proc_, c);
            }
        }
        if Instant::now() > deadline {
            die(&format!("{} did not start", kind.label()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ----- a minimal RESP2 client -----

#[derive(Debug, PartialEq)]
enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
    out: Vec<u8>,
    queued: usize,
}

impl Client {
    fn new(s: TcpStream) -> Client {
        s.set_nodelay(true).unwrap();
        Client {
            r: BufReader::with_capacity(1 << 16, s.try_clone().unwrap()),
            w: s,
            out: Vec::new(),
            queued: 0,
        }
    }

    fn queue(&mut self, args: &[&[u8]]) {
        write!(self.out, "*{}\r\n", args.len()).unwrap();
        for a in args {
            write!(self.out, "${}\r\n", a.len()).unwrap();
            self.out.extend_from_slice(a);
            self.out.extend_from_slice(b"\r\n");
        }
        self.queued += 1;
    }

    fn flush(&mut self) -> Vec<Reply> {
        self.w.write_all(&self.out).expect("write");
        self.out.clear();
        let n = std::mem::take(&mut self.queued);
        (0..n).map(|_| self.read()).collect()
    }

    fn cmd(&mut self, args: &[&str]) -> Reply {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.queue(&a);
        self.flush().pop().unwrap()
    }

    fn read(&mut self) -> Reply {
        let mut line = String::new();
        self.r.read_line(&mut line).expect("read");
        let body = line[1..].trim_end().to_string();
        match line.as_bytes()[0] {
            b'+' => Reply::Status(body),
            b'-' => Reply::Error(body),
            b':' => Reply::Int(body.parse().unwrap()),
            b'$' | b'=' => {
                let n: i64 = body.parse().unwrap();
                if n < 0 {
                    return Reply::Bulk(None);
                }
                let mut buf = vec![0u8; n as usize + 2];
                self.r.read_exact(&mut buf).expect("read");
                buf.truncate(n as usize);
                Reply::Bulk(Some(buf))
            }
            b'*' => {
                let n: i64 = body.parse().unwrap();
                Reply::Array((0..n.max(0)).map(|_| self.read()).collect())
            }
            other => panic!("unexpected reply type {:?}", other as char),
        }
    }

    fn info_field(&mut self, field: &str) -> u64 {
        let Reply::Bulk(Some(text)) = self.cmd(&["INFO", "all"]) else {
            panic!("INFO failed");
        };
        let text = String::from_utf8_lossy(&text).into_owned();
        let prefix = format!("{field}:");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field}"))
    }
}

// ----- part 1: hit rates -----

/// Zipf(s) ranks 0..n by inverse CDF over precomputed weights.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut acc = 0.0;
        let mut cdf = Vec::with_capacity(n);
        for k in 1..=n {
            acc += 1.0 / (k as f64).powf(s);
            cdf.push(acc);
        }
        for c in cdf.iter_mut() {
            *c /= acc;
        }
        Zipf { cdf }
    }

    fn sample(&self, u: f64) -> usize {
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// xorshift64*, so every server sees the same key sequence.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct HitResult {
    hit_rate: f64,
    keys: u64,
    evicted: u64,
    used: u64,
}

fn hit_rate_run(kind: Kind, policy: &str, o: &Opts, zipf: &Zipf) -> HitResult {
    let (_p, mut c) = start(
        kind,
        &[
            "--maxmemory".into(),
            o.maxmemory.to_string(),
            "--maxmemory-policy".into(),
            policy.into(),
        ],
    );
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let value = vec![b'v'; o.value_size];
    let warmup = o.ops / 5;
    let (mut hits, mut counted) = (0u64, 0u64);
    let batch = 64;
    let mut done = 0;
    while done < o.ops {
        let n = batch.min(o.ops - done);
        let keys: Vec<String> = (0..n)
            .map(|_| format!("key:{}", zipf.sample(rng.next_f64())))
            .collect();
        for k in &keys {
            c.queue(&[b"GET".as_slice(), k.as_bytes()]);
        }
        let replies = c.flush();
        let mut misses = 0;
        for (k, r) in keys.iter().zip(&replies) {
            let hit = matches!(r, Reply::Bulk(Some(_)));
            if done >= warmup {
                counted += 1;
                hits += hit as u64;
            }
            if !hit {
                c.queue(&[b"SET".as_slice(), k.as_bytes(), &value]);
                misses += 1;
            }
            done += 1;
        }
        if misses > 0 {
            for r in c.flush() {
                if let Reply::Error(e) = r {
                    panic!("{}: SET failed: {e}", kind.label());
                }
            }
        }
    }
    let keys = match c.cmd(&["DBSIZE"]) {
        Reply::Int(n) => n as u64,
        r => panic!("DBSIZE: {r:?}"),
    };
    HitResult {
        hit_rate: hits as f64 / counted.max(1) as f64,
        keys,
        evicted: c.info_field("evicted_keys"),
        used: c.info_field("used_memory"),
    }
}

// ----- part 2: memory per key -----

fn rss(c: &mut Client) -> u64 {
    c.info_field("used_memory_rss")
}

/// One dataset of the memory table.
struct Dataset {
    label: &'static str,
    /// What one unit is (key, member, item), for the table.
    unit: &'static str,
    commands: usize,
    items: usize,
    /// Commands sent per pipelined round trip.
    batch: usize,
    load: fn(&mut Client, usize),
}

/// (used_memory growth per item, RSS growth per item) after sending the dataset's commands to
/// a fresh server.
fn per_item(kind: Kind, d: &Dataset) -> (f64, f64) {
    let (_p, mut c) = start(kind, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let (used0, rss0) = (c.info_field("used_memory"), rss(&mut c));
    let mut i = 0;
    while i < d.commands {
        let m = d.batch.min(d.commands - i);
        for j in i..i + m {
            (d.load)(&mut c, j);
        }
        for r in c.flush() {
            if let Reply::Error(e) = r {
                panic!("{}: load failed: {e}", kind.label());
            }
        }
        i += m;
    }
    std::thread::sleep(Duration::from_millis(300));
    let (used1, rss1) = (c.info_field("used_memory"), rss(&mut c));
    (
        (used1 as f64 - used0 as f64) / d.items as f64,
        (rss1 as f64 - rss0 as f64) / d.items as f64,
    )
}

/// Elements per command when one big collection is loaded.
const BIG_BATCH: usize = 1000;

fn load_string(c: &mut Client, i: usize) {
    let k = format!("key:{i:08}");
    let v = format!("val:{i:08}");
    c.queue(&[b"SET".as_slice(), k.as_bytes(), v.as_bytes()]);
}

/// Hash number `i`: 10 fields `field:N` with values `value:N` (a listpack in both servers).
fn load_hash(c: &mut Client, i: usize) {
    let k = format!("hash:{i:08}");
    let fields: Vec<String> = (0..10)
        .flat_map(|j| [format!("field:{j}"), format!("value:{j}")])
        .collect();
    let mut args: Vec<&[u8]> = vec![b"HSET".as_slice(), k.as_bytes()];
    args.extend(fields.iter().map(|s| s.as_bytes()));
    c.queue(&args);
}

/// Set number `i`: 10 integers (an intset in both servers).
fn load_intset(c: &mut Client, i: usize) {
    let k = format!("set:{i:08}");
    let members: Vec<String> = (0..10).map(|j| (i % 1000 * 10 + j).to_string()).collect();
    let mut args: Vec<&[u8]> = vec![b"SADD".as_slice(), k.as_bytes()];
    args.extend(members.iter().map(|s| s.as_bytes()));
    c.queue(&args);
}

/// Command `i` of loading one sorted set: members `member:N` with score N.
fn load_big_zset(c: &mut Client, i: usize) {
    let pairs: Vec<String> = (i * BIG_BATCH..(i + 1) * BIG_BATCH)
        .flat_map(|j| [j.to_string(), format!("member:{j}")])
        .collect();
    let mut args: Vec<&[u8]> = vec![b"ZADD".as_slice(), b"zset"];
    args.extend(pairs.iter().map(|s| s.as_bytes()));
    c.queue(&args);
}

/// Command `i` of loading one list: items `item:N`.
fn load_big_list(c: &mut Client, i: usize) {
    let items: Vec<String> = (i * BIG_BATCH..(i + 1) * BIG_BATCH)
        .map(|j| format!("item:{j}"))
        .collect();
    let mut args: Vec<&[u8]> = vec![b"RPUSH".as_slice(), b"list"];
    args.extend(items.iter().map(|s| s.as_bytes()));
    c.queue(&args);
}

fn main() {
    let o = parse_args();
    let mut servers = vec![Kind::Redis];
    servers.extend(o.shards_list.iter().map(|&n| Kind::Tessera(n)));
    let mut md = String::new();
    let redis_version = Command::new(bins().0)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default();
    writeln!(md, "{redis_version}\n").unwrap();
    if o.hit_rates {
        eprintln!("building the Zipf table...");
        let zipf = Zipf::new(o.keys, o.zipf);
        writeln!(
            md,
            "Hit rates: {} keys, Zipf s={}, {} GETs (first fifth not counted), SET of {} bytes on a miss, maxmemory {} for every server.\n",
            o.keys, o.zipf, o.ops, o.value_size, o.maxmemory
        )
        .unwrap();
        md.push_str("| policy | server | hit rate | keys held | evicted | used_memory |\n|---|---|--:|--:|--:|--:|\n");
        for policy in &o.policies {
            for &k in &servers {
                eprintln!("{policy} on {}...", k.label());
                let r = hit_rate_run(k, policy, &o, &zipf);
                writeln!(
                    md,
                    "| {policy} | {} | {:.2}% | {} | {} | {} |",
                    k.label(),
                    r.hit_rate * 100.0,
                    r.keys,
                    r.evicted,
                    r.used
                )
                .unwrap();
            }
        }
        md.push('\n');
    }
    if o.memory {
        let (n, big) = (o.memory_keys, o.big_items);
        let sets = [
            Dataset {
                label: "string (12-byte key, 12-byte value)",
                unit: "key",
                commands: n,
                items: n,
                batch: 1000,
                load: load_string,
            },
            Dataset {
                label: "hash of 10 fields",
                unit: "key",
                commands: o.collection_keys,
                items: o.collection_keys,
                batch: 1000,
                load: load_hash,
            },
            Dataset {
                label: "set of 10 integers",
                unit: "key",
                commands: o.collection_keys,
                items: o.collection_keys,
                batch: 1000,
                load: load_intset,
            },
            Dataset {
                label: "one sorted set",
                unit: "member",
                commands: big.div_ceil(BIG_BATCH),
                items: big.div_ceil(BIG_BATCH) * BIG_BATCH,
                batch: 10,
                load: load_big_zset,
            },
            Dataset {
                label: "one list",
                unit: "item",
                commands: big.div_ceil(BIG_BATCH),
                items: big.div_ceil(BIG_BATCH) * BIG_BATCH,
                batch: 10,
                load: load_big_list,
            },
        ];
        md.push_str("Memory per item: growth of `used_memory` and RSS over loading the data into a fresh server, divided by the items.\n\n");
        md.push_str("| data | items | server | used_memory per item | RSS per item | × redis (used) | × redis (RSS) |\n|---|--:|---|--:|--:|--:|--:|\n");
        for d in &sets {
            let mut redis = (0.0, 0.0);
            for &k in &servers {
                eprintln!("{} on {}...", d.label, k.label());
                let (used, rss) = per_item(k, d);
                let (ru, rr) = if matches!(k, Kind::Redis) {
                    redis = (used, rss);
                    ("ref".to_string(), "ref".to_string())
                } else {
                    (
                        format!("{:.2}", used / redis.0),
                        format!("{:.2}", rss / redis.1),
                    )
                };
                writeln!(
                    md,
                    "| {} | {} {}s | {} | {:.1} | {:.1} | {ru} | {rr} |",
                    d.label,
                    d.items,
                    d.unit,
                    k.label(),
                    used,
                    rss
                )
                .unwrap();
            }
        }
    }
    print!("{md}");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let _ = std::fs::create_dir_all(&target);
    let _ = std::fs::write(target.join("eviction.md"), md);
}

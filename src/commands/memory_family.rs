//! MEMORY (USAGE, STATS, DOCTOR, MALLOC-STATS, PURGE, HELP) and the figures behind INFO's
//! Memory section.
//!
//! Everything here runs at connection level and asks the shards for their `MemReport`s by
//! message; the process-wide numbers come from the counting allocator (`crate::alloc`), the
//! allocator's own statistics (glibc `mallinfo2`) and /proc. It never changes data (MEMORY
//! PURGE only asks the allocator to return free pages).

use bytes::Bytes;
use futures::future::LocalBoxFuture;

use super::args::{eq_ic, int_arg, text, ERR_SYNTAX};
use super::{cmd, flags::*, sub, CommandSpec, Exec, SubCommand};
use crate::protocol::Reply;
use crate::server::conn::{Conn, ERR_SHARD_GONE};
use crate::shard::memory::{self, MemReport};
use crate::shard::Shard;

pub fn specs() -> Vec<CommandSpec> {
    // Key at 2 for USAGE (what COMMAND GETKEYS reports; other subcommands have none). It runs
    // at connection level and reaches the key's shard by message.
    vec![cmd(
        "memory",
        -2,
        0,
        (2, 2, 1),
        "server",
        "4.0.0",
        "Depends on subcommand",
        "Memory introspection (USAGE, STATS, DOCTOR, MALLOC-STATS, PURGE).",
        Exec::Conn(memory_cmd),
    )
    .subcommands(MEMORY_SUBCOMMANDS)]
}

/// MEMORY's subcommands, as Redis 7.0 declares them.
const MEMORY_SUBCOMMANDS: &[SubCommand] = &[
    sub("memory|doctor", 2)
        .tips(&[
            "nondeterministic_output",
            "request_policy:all_shards",
            "response_policy:special",
        ])
        .docs("4.0.0", "O(1)", "Reports memory problems and advice."),
    sub("memory|purge", 2)
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
        .docs(
            "4.0.0",
            "Depends on how much memory is allocated, could be slow",
            "Asks the allocator to release memory it does not use.",
        ),
    sub("memory|help", 2).flags(LOADING | STALE).docs(
        "4.0.0",
        "O(1)",
        "Lists the MEMORY subcommands.",
    ),
    sub("memory|usage", -3)
        .flags(READONLY)
        .key_at(2, &["RO"])
        .docs(
            "4.0.0",
            "O(N) where N is the number of samples.",
            "Estimates the memory used by a key and its value.",
        ),
    sub("memory|malloc-stats", 2)
        .tips(&[
            "nondeterministic_output",
            "request_policy:all_shards",
            "response_policy:special",
        ])
        .docs(
            "4.0.0",
            "Depends on how much memory is allocated, could be slow",
            "Returns the allocator's statistics.",
        ),
    sub("memory|stats", 2)
        .tips(&[
            "nondeterministic_output",
            "request_policy:all_shards",
            "response_policy:special",
        ])
        .docs(
            "4.0.0",
            "O(1)",
            "Returns details of the server's memory usage.",
        ),
];

const MEMORY_HELP: &[&str] = &[
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
];

/// Redis's `bytesToHuman`.
pub fn bytes_to_human(n: u64) -> String {
    const K: f64 = 1024.0;
    let d = n as f64;
    if n < 1024 {
        format!("{}B", n)
    } else if d < K * K {
        format!("{:.2}K", d / K)
    } else if d < K * K * K {
        format!("{:.2}M", d / (K * K))
    } else if d < K * K * K * K {
        format!("{:.2}G", d / (K * K * K))
    } else if d < K * K * K * K * K {
        format!("{:.2}T", d / (K * K * K * K))
    } else if d < K * K * K * K * K * K {
        format!("{:.2}P", d / (K * K * K * K * K))
    } else {
        format!("{}B", n)
    }
}

/// What glibc malloc says about itself: (allocated, active) bytes.
fn allocator_stats() -> (u64, u64) {
    // SAFETY: mallinfo2 only reads the allocator's own statistics into the returned struct.
    let mi = unsafe { libc::mallinfo2() };
    let allocated = (mi.uordblks + mi.hblkhd) as u64;
    let active = (mi.arena + mi.hblkhd) as u64;
    (allocated, active.max(allocated))
}

pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|pages| pages * page_size())
        .unwrap_or(0)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no side effects.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

pub fn total_system_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// The process-wide memory picture (Redis's `getMemoryOverheadData`).
pub struct Overview {
    pub used: u64,
    pub peak: u64,
    pub startup: u64,
    pub rss: u64,
    pub clients_normal: u64,
    pub clients_count: u64,
    /// Per database (summed over shards): (keys, main table overhead, expiry index overhead).
    pub dbs: Vec<(u64, u64, u64)>,
    pub overhead: u64,
    pub dataset: u64,
    pub keys: u64,
    pub allocator_allocated: u64,
    pub allocator_active: u64,
    pub allocator_resident: u64,
    pub lazy_pending: u64,
    pub lazy_freed: u64,
}

impl Overview {
    pub fn from_reports(sh: &Shard, reports: &[MemReport]) -> Overview {
        let shared = &sh.globals.mem;
        let rss = rss_bytes();
        let (used, peak) = if crate::alloc::is_active() {
            shared.update_peak()
        } else {
            // Without the counting allocator the best measure left is the resident set.
            let p = shared
                .peak
                .fetch_max(rss, std::sync::atomic::Ordering::Relaxed);
            (rss, p.max(rss))
        };
        let startup = shared.startup.load(std::sync::atomic::Ordering::Relaxed);
        let ndb = reports.first().map_or(0, |r| r.dbs.len());
        let dbs: Vec<(u64, u64, u64)> = (0..ndb)
            .map(|i| {
                reports.iter().fold((0, 0, 0), |acc, r| {
                    let d = r.dbs[i];
                    (acc.0 + d.0, acc.1 + d.1, acc.2 + d.2)
                })
            })
            .collect();
        let clients_normal: u64 = reports.iter().map(|r| r.clients).sum();
        let overhead = startup + clients_normal + dbs.iter().map(|d| d.1 + d.2).sum::<u64>();
        let (allocator_allocated, allocator_active) = allocator_stats();
        Overview {
            used,
            peak,
            startup,
            rss,
            clients_normal,
            clients_count: reports.iter().map(|r| r.clients_count).sum(),
            overhead,
            dataset: used.saturating_sub(overhead),
            keys: dbs.iter().map(|d| d.0).sum(),
            dbs,
            allocator_allocated,
            allocator_active,
            // glibc cannot tell its resident pages apart: the process RSS beyond what the
            // allocator holds (code, stacks, io_uring buffers) shows as the RSS overhead.
            allocator_resident: allocator_active,
            lazy_pending: reports.iter().map(|r| r.lazy_pending_objects).sum(),
            lazy_freed: reports.iter().map(|r| r.lazy_freed_objects).sum(),
        }
    }

    fn net(&self) -> u64 {
        if self.used > self.startup {
            self.used - self.startup
        } else {
            1
        }
    }

    /// As Redis computes it: a float percentage.
    pub fn dataset_perc(&self) -> f32 {
        self.dataset as f32 * 100.0 / self.net() as f32
    }

    pub fn peak_perc(&self) -> f32 {
        self.used as f32 * 100.0 / self.peak.max(1) as f32
    }

    pub fn bytes_per_key(&self) -> u64 {
        self.net().checked_div(self.keys).unwrap_or(0)
    }

    fn ratio(a: u64, b: u64) -> f32 {
        a as f32 / b.max(1) as f32
    }

    pub fn frag(&self) -> (f32, i64) {
        (
            Self::ratio(self.rss, self.used),
            self.rss as i64 - self.used as i64,
        )
    }

    pub fn allocator_frag(&self) -> (f32, i64) {
        (
            Self::ratio(self.allocator_active, self.allocator_allocated),
            self.allocator_active as i64 - self.allocator_allocated as i64,
        )
    }

    pub fn allocator_rss(&self) -> (f32, i64) {
        (
            Self::ratio(self.allocator_resident, self.allocator_active),
            self.allocator_resident as i64 - self.allocator_active as i64,
        )
    }

    pub fn rss_overhead(&self) -> (f32, i64) {
        (
            Self::ratio(self.rss, self.allocator_resident),
            self.rss as i64 - self.allocator_resident as i64,
        )
    }
}

/// INFO's Memory section body.
pub fn info_section(sh: &Shard, reports: &[MemReport]) -> String {
    let o = Overview::from_reports(sh, reports);
    let st = sh.state.borrow();
    let cfg = &st.config;
    let total_mem = total_system_memory();
    let (frag, frag_bytes) = o.frag();
    let (afrag, afrag_bytes) = o.allocator_frag();
    let (arss, arss_bytes) = o.allocator_rss();
    let (rss_oh, rss_oh_bytes) = o.rss_overhead();
    let mut s = String::with_capacity(1500);
    let mut line = |k: &str, v: String| super::server_family::info_line(&mut s, k, &v);
    line("used_memory", o.used.to_string());
    line("used_memory_human", bytes_to_human(o.used));
    line("used_memory_rss", o.rss.to_string());
    line("used_memory_rss_human", bytes_to_human(o.rss));
    line("used_memory_peak", o.peak.to_string());
    line("used_memory_peak_human", bytes_to_human(o.peak));
    line("used_memory_peak_perc", format!("{:.2}%", o.peak_perc()));
    line("used_memory_overhead", o.overhead.to_string());
    line("used_memory_startup", o.startup.to_string());
    line("used_memory_dataset", o.dataset.to_string());
    line(
        "used_memory_dataset_perc",
        format!("{:.2}%", o.dataset_perc()),
    );
    line("allocator_allocated", o.allocator_allocated.to_string());
    line("allocator_active", o.allocator_active.to_string());
    line("allocator_resident", o.allocator_resident.to_string());
    line("total_system_memory", total_mem.to_string());
    line("total_system_memory_human", bytes_to_human(total_mem));
    let lua: u64 = reports.iter().map(|r| r.lua).sum();
    for (k, v) in crate::scripting::info_memory_fields(sh, lua) {
        line(k, v);
    }
    line("maxmemory", cfg.maxmemory.to_string());
    line("maxmemory_human", bytes_to_human(cfg.maxmemory));
    line(
        "maxmemory_policy",
        cfg.maxmemory_policy.as_str().to_string(),
    );
    line("allocator_frag_ratio", format!("{:.2}", afrag));
    line("allocator_frag_bytes", afrag_bytes.to_string());
    line("allocator_rss_ratio", format!("{:.2}", arss));
    line("allocator_rss_bytes", arss_bytes.to_string());
    line("rss_overhead_ratio", format!("{:.2}", rss_oh));
    line("rss_overhead_bytes", rss_oh_bytes.to_string());
    line("mem_fragmentation_ratio", format!("{:.2}", frag));
    line("mem_fragmentation_bytes", frag_bytes.to_string());
    line("mem_not_counted_for_evict", "0".into());
    line("mem_replication_backlog", "0".into());
    line("mem_total_replication_buffers", "0".into());
    line("mem_clients_slaves", "0".into());
    line("mem_clients_normal", o.clients_normal.to_string());
    line("mem_cluster_links", "0".into());
    line("mem_aof_buffer", "0".into());
    line("mem_allocator", "libc".into());
    line("active_defrag_running", "0".into());
    line("lazyfree_pending_objects", o.lazy_pending.to_string());
    line("lazyfreed_objects", o.lazy_freed.to_string());
    s
}

/// (total, current) milliseconds spent over maxmemory, for INFO stats: summed and the longest
/// current stretch over the shards.
pub fn eviction_exceeded_ms(reports: &[MemReport]) -> (u64, u64) {
    let total: u64 = reports.iter().map(|r| r.exceeded_us.0).sum();
    let current = reports.iter().map(|r| r.exceeded_us.1).max().unwrap_or(0);
    (total / 1000, current / 1000)
}

/// Every shard's report, by message.
pub async fn gather(c: &Conn) -> Result<Vec<MemReport>, &'static str> {
    c.shard
        .run_on_all(memory::report)
        .await
        .map_err(|_| ERR_SHARD_GONE)
}

fn memory_cmd(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let op = match MemoryOp::parse(&a) {
            Ok(op) => op,
            Err(e) => return c.reply().error(&e),
        };
        match op {
            MemoryOp::Usage(key) => {
                let db = c.db;
                let owner = c.shard.shard_of(&key);
                match c
                    .shard
                    .run_on(owner, move |sh| usage_of(sh, db, &key))
                    .await
                {
                    Ok(n) => reply_usage(&mut c.reply(), n),
                    Err(_) => c.reply().error(ERR_SHARD_GONE),
                }
            }
            MemoryOp::Stats | MemoryOp::Doctor => match gather(c).await {
                Ok(reports) => {
                    let sh = c.shard.clone();
                    op.reply_overview(&mut c.reply(), &sh, &reports)
                }
                Err(e) => c.reply().error(e),
            },
            _ => op.reply_local(&mut c.reply()),
        }
    })
}

/// A parsed MEMORY call, shared by the connection and scripts: USAGE needs the key's shard,
/// STATS and DOCTOR every shard's report, the rest nothing but this process.
pub(crate) enum MemoryOp {
    Help,
    Usage(Bytes),
    Stats,
    Doctor,
    MallocStats,
    Purge,
}

impl MemoryOp {
    pub(crate) fn parse(a: &[Bytes]) -> Result<MemoryOp, String> {
        let sub = text(&a[1]).to_ascii_lowercase();
        match sub.as_str() {
            "help" if a.len() == 2 => Ok(MemoryOp::Help),
            "usage" if a.len() >= 3 => {
                // SAMPLES is validated but not needed: collections keep their sizes.
                let mut j = 3;
                while j < a.len() {
                    if eq_ic(&a[j], "samples") && j + 1 < a.len() {
                        match int_arg(&a[j + 1]) {
                            Ok(n) if n < 0 => return Err(ERR_SYNTAX.into()),
                            Ok(_) => {}
                            Err(e) => return Err(e.into()),
                        }
                        j += 2;
                    } else {
                        return Err(ERR_SYNTAX.into());
                    }
                }
                Ok(MemoryOp::Usage(a[2].clone()))
            }
            "stats" if a.len() == 2 => Ok(MemoryOp::Stats),
            "doctor" if a.len() == 2 => Ok(MemoryOp::Doctor),
            "malloc-stats" if a.len() == 2 => Ok(MemoryOp::MallocStats),
            "purge" if a.len() == 2 => Ok(MemoryOp::Purge),
            "help" | "usage" | "stats" | "doctor" | "malloc-stats" | "purge" => {
                Err(super::arity_error(&format!("memory|{}", sub)))
            }
            _ => Err(super::unknown_subcommand_error(&a[1], "memory")),
        }
    }

    /// STATS and DOCTOR, from every shard's report.
    pub(crate) fn reply_overview(&self, r: &mut Reply, sh: &Shard, reports: &[MemReport]) {
        let o = Overview::from_reports(sh, reports);
        match self {
            MemoryOp::Stats => reply_stats(r, &o),
            _ => r.verbatim("txt", doctor(&o).as_bytes()),
        }
    }

    /// HELP, MALLOC-STATS and PURGE.
    pub(crate) fn reply_local(&self, r: &mut Reply) {
        match self {
            MemoryOp::Help => super::reply_help(r, "memory", MEMORY_HELP),
            MemoryOp::MallocStats => r.verbatim("txt", malloc_stats().as_bytes()),
            _ => {
                // Return free memory at the top of every arena to the system.
                // SAFETY: malloc_trim only releases free pages the allocator holds.
                unsafe {
                    libc::malloc_trim(0);
                }
                r.ok()
            }
        }
    }
}

/// MEMORY USAGE on the key's shard: the key's charge (key, table node, value, expiry entry),
/// counted exactly, or None for a missing key.
pub(crate) fn usage_of(sh: &Shard, db: usize, key: &[u8]) -> Option<i64> {
    let now = crate::server::globals::unix_ms();
    let mut st = sh.state.borrow_mut();
    let e = st.dbs[db].lookup_notouch(key, now)?;
    Some(memory::entry_charge(key.len(), e) as i64)
}

pub(crate) fn reply_usage(r: &mut Reply, n: Option<i64>) {
    match n {
        Some(n) => r.int(n),
        None => r.null(),
    }
}

fn kv_int(r: &mut Reply, k: &str, v: i64) {
    r.bulk(k.as_bytes());
    r.int(v);
}

/// Redis computes these ratios as floats and replies with them as doubles.
fn kv_double(r: &mut Reply, k: &str, v: f32) {
    r.bulk(k.as_bytes());
    r.double(v as f64);
}

fn reply_stats(r: &mut Reply, o: &Overview) {
    let dbs: Vec<(usize, &(u64, u64, u64))> =
        o.dbs.iter().enumerate().filter(|(_, d)| d.0 > 0).collect();
    r.map(27 + dbs.len());
    kv_int(r, "peak.allocated", o.peak as i64);
    kv_int(r, "total.allocated", o.used as i64);
    kv_int(r, "startup.allocated", o.startup as i64);
    kv_int(r, "replication.backlog", 0);
    kv_int(r, "clients.slaves", 0);
    kv_int(r, "clients.normal", o.clients_normal as i64);
    kv_int(r, "cluster.links", 0);
    kv_int(r, "aof.buffer", 0);
    kv_int(r, "lua.caches", 0);
    kv_int(r, "functions.caches", 0);
    for (i, d) in dbs {
        r.bulk(format!("db.{}", i).as_bytes());
        r.map(3);
        kv_int(r, "overhead.hashtable.main", d.1 as i64);
        kv_int(r, "overhead.hashtable.expires", d.2 as i64);
        kv_int(r, "overhead.hashtable.slot-to-keys", 0);
    }
    kv_int(r, "overhead.total", o.overhead as i64);
    kv_int(r, "keys.count", o.keys as i64);
    kv_int(r, "keys.bytes-per-key", o.bytes_per_key() as i64);
    kv_int(r, "dataset.bytes", o.dataset as i64);
    kv_double(r, "dataset.percentage", o.dataset_perc());
    kv_double(r, "peak.percentage", o.peak_perc());
    kv_int(r, "allocator.allocated", o.allocator_allocated as i64);
    kv_int(r, "allocator.active", o.allocator_active as i64);
    kv_int(r, "allocator.resident", o.allocator_resident as i64);
    let (afrag, afrag_bytes) = o.allocator_frag();
    let (arss, arss_bytes) = o.allocator_rss();
    let (rss_oh, rss_oh_bytes) = o.rss_overhead();
    let (frag, frag_bytes) = o.frag();
    kv_double(r, "allocator-fragmentation.ratio", afrag);
    kv_int(r, "allocator-fragmentation.bytes", afrag_bytes);
    kv_double(r, "allocator-rss.ratio", arss);
    kv_int(r, "allocator-rss.bytes", arss_bytes);
    kv_double(r, "rss-overhead.ratio", rss_oh);
    kv_int(r, "rss-overhead.bytes", rss_oh_bytes);
    kv_double(r, "fragmentation", frag);
    kv_int(r, "fragmentation.bytes", frag_bytes);
}

/// Redis's `getMemoryDoctorReport`, on Tessera's figures.
fn doctor(o: &Overview) -> String {
    const MB10: i64 = 10 << 20;
    let mut issues: Vec<&str> = Vec::new();
    if o.used < 5 * 1024 * 1024 {
        return "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n".into();
    }
    if o.peak as f32 / o.used as f32 > 1.5 {
        issues.push(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n");
    }
    let (frag, frag_bytes) = o.frag();
    if frag > 1.4 && frag_bytes > MB10 {
        issues.push(" * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"libc\".\n\n");
    }
    let (afrag, afrag_bytes) = o.allocator_frag();
    if afrag > 1.1 && afrag_bytes > MB10 {
        issues.push(" * High allocator fragmentation: This instance has an allocator external fragmentation greater than 1.1. This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. You can try enabling 'activedefrag' config option.\n\n");
    }
    let (arss, arss_bytes) = o.allocator_rss();
    if arss > 1.1 && arss_bytes > MB10 {
        issues.push(" * High allocator RSS overhead: This instance has an RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the allocator is much larger than the sum what the allocator actually holds). This problem is usually due to a large peak memory (check if there is a peak memory entry above in the report), you can try the MEMORY PURGE command to reclaim it.\n\n");
    }
    let (rss_oh, rss_oh_bytes) = o.rss_overhead();
    if rss_oh > 1.1 && rss_oh_bytes > MB10 {
        issues.push(" * High process RSS overhead: This instance has non-allocator RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the Redis process is much larger than the RSS the allocator holds). This problem may be due to Lua scripts or Modules.\n\n");
    }
    if o.clients_count > 0 && o.clients_normal / o.clients_count > 1024 * 200 {
        issues.push(" * Big client buffers: The clients output buffers in this instance are greater than 200K per client (on average). This may result from different causes, like Pub/Sub clients subscribed to channels bot not receiving data fast enough, so that data piles on the Redis instance output buffer, or clients sending commands with large replies or very large sequences of commands in the same pipeline. Please use the CLIENT LIST command in order to investigate the issue if it causes problems in your instance, or to understand better why certain clients are using a big amount of memory.\n\n");
    }
    if issues.is_empty() {
        return "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n".into();
    }
    let mut s =
        String::from("Sam, I detected a few issues in this Redis instance memory implants:\n\n");
    for i in issues {
        s.push_str(i);
    }
    s.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
    s
}

/// MEMORY MALLOC-STATS: glibc's own counters and the counting allocator's total.
fn malloc_stats() -> String {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let mi = unsafe { libc::mallinfo2() };
    format!(
        "___ Begin glibc malloc statistics ___\n\
         counted.allocated:{}\n\
         arena:{}\nordblks:{}\nsmblks:{}\nhblks:{}\nhblkhd:{}\nusmblks:{}\nfsmblks:{}\n\
         uordblks:{}\nfordblks:{}\nkeepcost:{}\n\
         --- End glibc malloc statistics ---\n",
        memory::process_allocated(),
        mi.arena,
        mi.ordblks,
        mi.smblks,
        mi.hblks,
        mi.hblkhd,
        mi.usmblks,
        mi.fsmblks,
        mi.uordblks,
        mi.fordblks,
        mi.keepcost
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_like_redis() {
        assert_eq!(bytes_to_human(0), "0B");
        assert_eq!(bytes_to_human(1023), "1023B");
        assert_eq!(bytes_to_human(914_696), "893.26K");
        assert_eq!(bytes_to_human(6_529_024), "6.23M");
        assert_eq!(bytes_to_human(25_276_510_208), "23.54G");
        assert_eq!(bytes_to_human(3 << 40), "3.00T");
    }
}

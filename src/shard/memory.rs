//! Memory accounting, `maxmemory` and eviction for one shard (Redis's evict.c and the memory
//! parts of object.c).
//!
//! What it owns:
//! * The per-entry **charge** (`entry_charge`): key, table node, value and expiry-index bytes
//!   of one key, kept in `Entry::charged` and summed per database (`Db::used`). Writes refresh
//!   the charge of the keys they name (`execute_keyed` calls `Db::recharge`), so a shard's
//!   dataset estimate is exact with respect to what it owns, however values moved between
//!   shards (the allocator's per-thread counters are not: see `crate::alloc`).
//! * The shard's **usage** for enforcement: its dataset estimate plus an even share of the
//!   process's remaining allocations (startup, connections, buffers: the counting allocator's
//!   total minus every shard's dataset and pending lazy frees), refreshed by the cron. The
//!   shards' usages add up to the process total, and each shard enforces `maxmemory / shards`
//!   on its own, without asking any other shard.
//! * **Eviction** (`perform_evictions`): Redis 7.0's `performEvictions` with its eviction pool of
//!   the best candidates sampled across the shard's databases, all eight policies, the time
//!   limit from `maxmemory-eviction-tenacity` (the shard's background task carries on after
//!   it) and the OOM verdict for DENYOOM commands.
//! * The **access metadata** maths: the 24-bit LRU clock and the LFU counter with its decay, as
//!   Redis computes them.
//!
//! What it must never do: block, await, or touch another shard's data. It reads other shards
//! only through the atomics in `MemShared` (published by each shard's cron).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::ShardState;
use crate::config::{Config, MaxmemoryPolicy};
use crate::types::dict::Dict;
use crate::types::key::Key;
use crate::types::Entry;

/// Redis's error for DENYOOM commands when memory cannot be freed.
pub const ERR_OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Values with more allocations than this are freed by the background task when freed lazily
/// (Redis's `LAZYFREE_THRESHOLD`).
pub const LAZYFREE_THRESHOLD: usize = 64;

// ----- LRU clock and LFU counter (Redis's object.c / evict.c) -----

/// Largest value of the 24-bit LRU clock.
pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
/// The LRU clock ticks once a second.
pub const LRU_CLOCK_RESOLUTION_MS: u64 = 1000;
/// The LFU counter of a new key, so that it is not evicted before it had a chance to be used.
pub const LFU_INIT_VAL: u32 = 5;

/// The LRU clock at `now_ms` (seconds, wrapping at 2^24, like Redis's `LRU_CLOCK()`).
#[inline]
pub fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / LRU_CLOCK_RESOLUTION_MS) & LRU_CLOCK_MAX as u64) as u32
}

/// Milliseconds since the access recorded in an LRU field (`estimateObjectIdleTime`).
pub fn lru_idle_ms(access: u32, now_ms: u64) -> u64 {
    let clock = lru_clock(now_ms);
    let access = access & LRU_CLOCK_MAX;
    let ticks = if clock >= access {
        (clock - access) as u64
    } else {
        clock as u64 + (LRU_CLOCK_MAX - access) as u64
    };
    ticks * LRU_CLOCK_RESOLUTION_MS
}

/// Unix time in minutes, 16 bits (`LFUGetTimeInMinutes`).
#[inline]
pub fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 1000 / 60) & 65535) as u32
}

/// Minutes since `ldt`, a 16-bit minute stamp, allowing one wrap (`LFUTimeElapsed`).
pub fn lfu_time_elapsed(ldt: u32, now_ms: u64) -> u32 {
    let now = lfu_minutes(now_ms);
    if now >= ldt {
        now - ldt
    } else {
        65535 - ldt + now
    }
}

/// The LFU counter of an access field after decaying it by one per `decay_time` minutes
/// elapsed, without storing it (`LFUDecrAndReturn`).
pub fn lfu_decr_and_return(access: u32, now_ms: u64, decay_time: u32) -> u32 {
    let ldt = (access >> 8) & 65535;
    let counter = access & 255;
    // A decay time of 0 turns decay off.
    let periods = lfu_time_elapsed(ldt, now_ms)
        .checked_div(decay_time)
        .unwrap_or(0);
    counter.saturating_sub(periods)
}

/// Logarithmic increment (`LFULogIncr`): the higher the counter, the less likely an access
/// increments it. `r` is uniform in [0, 1].
pub fn lfu_log_incr(counter: u32, log_factor: u32, r: f64) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let baseval = (counter as f64 - LFU_INIT_VAL as f64).max(0.0);
    let p = 1.0 / (baseval * log_factor as f64 + 1.0);
    if r < p {
        counter + 1
    } else {
        counter
    }
}

/// The LRU field of a key last accessed `idle_secs` ago (Redis's `objectSetLRUOrLFU`): the
/// clock minus the idle time, kept to the field's 24 bits (so a time before the clock's start
/// wraps, and an idle time too big for Redis's arithmetic wraps as it does there).
pub fn lru_for_idle(idle_secs: i64, now_ms: u64) -> u32 {
    let clock = lru_clock(now_ms) as i64;
    let idle = idle_secs
        .wrapping_mul(1000)
        .wrapping_div(LRU_CLOCK_RESOLUTION_MS as i64);
    (clock.wrapping_sub(idle) & ((1 << 24) - 1)) as u32
}

/// An LFU access field: minutes stamp in the high 16 bits, counter in the low 8.
#[inline]
pub fn lfu_pack(now_ms: u64, counter: u32) -> u32 {
    (lfu_minutes(now_ms) << 8) | (counter & 255)
}

thread_local! {
    /// Counts the commands run on this shard's thread, so that per-command bookkeeping (which
    /// keys a command already accessed) resets without being told.
    static COMMAND_SEQ: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Marks the start of a command on this shard (`execute_keyed`).
#[inline]
pub fn next_command() {
    COMMAND_SEQ.with(|c| c.set(c.get() + 1));
}

/// The current command's sequence number on this thread.
#[inline]
pub fn command_seq() -> u64 {
    COMMAND_SEQ.with(|c| c.get())
}

/// How accesses update an entry's metadata (from `maxmemory-policy` and the LFU directives).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AccessMode {
    #[default]
    Lru,
    Lfu {
        log_factor: u32,
        decay_time: u32,
    },
}

impl AccessMode {
    pub fn from_config(cfg: &Config) -> AccessMode {
        if cfg.maxmemory_policy.is_lfu() {
            AccessMode::Lfu {
                log_factor: cfg.lfu_log_factor,
                decay_time: cfg.lfu_decay_time,
            }
        } else {
            AccessMode::Lru
        }
    }

    /// The field of a new key.
    #[inline]
    pub fn initial(self, now_ms: u64) -> u32 {
        match self {
            AccessMode::Lru => lru_clock(now_ms),
            AccessMode::Lfu { .. } => lfu_pack(now_ms, LFU_INIT_VAL),
        }
    }

    /// The field after an access (`updateLFU` or a fresh LRU clock); `r` uniform in [0, 1].
    #[inline]
    pub fn touched(self, access: u32, now_ms: u64, r: f64) -> u32 {
        match self {
            AccessMode::Lru => lru_clock(now_ms),
            AccessMode::Lfu {
                log_factor,
                decay_time,
            } => {
                let c = lfu_decr_and_return(access, now_ms, decay_time);
                lfu_pack(now_ms, lfu_log_incr(c, log_factor, r))
            }
        }
    }
}

// ----- per-entry charge -----

/// Bytes one key costs: its table node (which holds a short key inline), a long key's buffer,
/// its value's heap, and for a key with a deadline its node in the expiry index (with its own
/// copy of a long key). What MEMORY USAGE reports.
pub fn entry_charge(key_len: usize, e: &Entry) -> usize {
    let mut n = Dict::<Entry, Key>::node_bytes() + Key::heap_bytes(key_len) + e.value.mem_bytes();
    if e.has_deadline() {
        n += Dict::<u64, Key>::node_bytes() + Key::heap_bytes(key_len);
    }
    n
}

/// `entry_charge` as stored in `Entry::charged` (saturating for values over 4 GiB).
#[inline]
pub fn charge_u32(n: usize) -> u32 {
    n.min(u32::MAX as usize) as u32
}

// ----- process-wide view shared by the shards -----

/// What every shard publishes for the others (and for INFO): written by the owning shard only.
pub struct MemShared {
    dataset: Vec<AtomicU64>,
    pending: Vec<AtomicU64>,
    oom: Vec<Arc<AtomicBool>>,
    pub peak: AtomicU64,
    pub startup: AtomicU64,
    ready: AtomicUsize,
}

impl MemShared {
    pub fn new(nshards: usize) -> MemShared {
        let n = nshards.max(1);
        MemShared {
            dataset: (0..n).map(|_| AtomicU64::new(0)).collect(),
            pending: (0..n).map(|_| AtomicU64::new(0)).collect(),
            oom: (0..n).map(|_| Arc::new(AtomicBool::new(false))).collect(),
            peak: AtomicU64::new(0),
            startup: AtomicU64::new(0),
            ready: AtomicUsize::new(0),
        }
    }

    /// A shard finished starting; the last one records `used_memory_startup`.
    pub fn shard_ready(&self) {
        if self.ready.fetch_add(1, Ordering::AcqRel) + 1 == self.dataset.len() {
            let total = process_allocated();
            self.startup.store(total, Ordering::Relaxed);
            self.peak.fetch_max(total, Ordering::Relaxed);
        }
    }

    /// Whether shard `s` could not get under its limit at its last attempt.
    pub fn is_oom(&self, s: usize) -> bool {
        self.oom.get(s).is_some_and(|f| f.load(Ordering::Relaxed))
    }

    pub fn any_oom(&self) -> bool {
        self.oom.iter().any(|f| f.load(Ordering::Relaxed))
    }

    /// Shard `s`'s OOM flag, which its `MemState` keeps up to date.
    pub fn oom_flag(&self, s: usize) -> Option<Arc<AtomicBool>> {
        self.oom.get(s).cloned()
    }

    /// Raises the recorded peak to the current total and returns (current, peak).
    pub fn update_peak(&self) -> (u64, u64) {
        let total = process_allocated();
        let peak = self.peak.fetch_max(total, Ordering::Relaxed).max(total);
        (total, peak)
    }
}

/// Bytes the process has allocated (the counting allocator's total; without it, the shards'
/// dataset estimates are all there is).
pub fn process_allocated() -> u64 {
    crate::alloc::allocated_total() as u64
}

// ----- the shard's memory state -----

/// One slot of the eviction pool.
#[derive(Clone, Debug)]
struct PoolEntry {
    /// Higher is a better candidate (idle time, 255 - frequency, or MAX - deadline).
    idle: u64,
    key: Key,
    db: usize,
}

/// Redis's `EVPOOL_SIZE`.
const EVPOOL_SIZE: usize = 16;

/// Cron samples the overhead share is the minimum of (8 at the default `hz` of 10: 0.8 s).
const OVERHEAD_WINDOW: usize = 8;

/// Outcome of `perform_evictions`, as in Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evict {
    /// Under the limit (or no limit).
    Ok,
    /// Evicting, but the time limit was reached: the background task carries on. Commands are
    /// not refused meanwhile.
    Running,
    /// Over the limit and nothing can be evicted: DENYOOM commands are refused.
    Fail,
}

/// A shard's memory limits and eviction state.
pub struct MemState {
    nshards: usize,
    /// This shard's share of `maxmemory` (0 = no limit).
    pub limit: u64,
    /// The even share of non-dataset allocations charged to this shard: the smallest of the
    /// last `OVERHEAD_WINDOW` cron samples, so that a burst of reply buffers that is gone a
    /// moment later does not make every shard evict.
    pub overhead_share: u64,
    overhead_samples: [u64; OVERHEAD_WINDOW],
    overhead_next: usize,
    pool: [Option<PoolEntry>; EVPOOL_SIZE],
    /// Random policies walk the databases round-robin.
    next_db: usize,
    /// The time limit was hit: the background task must keep evicting.
    pub eviction_running: bool,
    /// Last verdict of `perform_evictions`, also published for the other shards' connections.
    pub oom: bool,
    oom_flag: Option<Arc<AtomicBool>>,
    /// Since when this shard has been over its limit (INFO's eviction exceeded times).
    exceeded_since: Option<Instant>,
    exceeded_total_us: u64,
}

impl Default for MemState {
    fn default() -> Self {
        MemState {
            nshards: 1,
            limit: 0,
            overhead_share: 0,
            overhead_samples: [0; OVERHEAD_WINDOW],
            overhead_next: 0,
            pool: Default::default(),
            next_db: 0,
            eviction_running: false,
            oom: false,
            oom_flag: None,
            exceeded_since: None,
            exceeded_total_us: 0,
        }
    }
}

impl MemState {
    /// (total, current) microseconds spent over the limit.
    pub fn exceeded_us(&self) -> (u64, u64) {
        let cur = self
            .exceeded_since
            .map_or(0, |t| t.elapsed().as_micros() as u64);
        (self.exceeded_total_us + cur, cur)
    }

    pub fn reset_stats(&mut self) {
        self.exceeded_total_us = 0;
        if self.exceeded_since.is_some() {
            self.exceeded_since = Some(Instant::now());
        }
    }

    fn note(&mut self, result: Evict) {
        match result {
            Evict::Ok => {
                if let Some(t) = self.exceeded_since.take() {
                    self.exceeded_total_us += t.elapsed().as_micros() as u64;
                }
            }
            Evict::Running | Evict::Fail => {
                if self.exceeded_since.is_none() {
                    self.exceeded_since = Some(Instant::now());
                }
            }
        }
        if result != Evict::Running {
            self.eviction_running = false;
        }
        let oom = result == Evict::Fail;
        if oom != self.oom {
            self.oom = oom;
            if let Some(f) = &self.oom_flag {
                f.store(oom, Ordering::Relaxed);
            }
        }
    }
}

/// Installs a configuration on a shard: the config itself, what the databases derive from it
/// (access mode, lazy-free switches), and this shard's memory limit. Evicts at once if the new
/// limit is below the current usage, like Redis's CONFIG SET maxmemory.
pub fn apply_config(st: &mut ShardState, cfg: Config, now_ms: u64) {
    let mode = AccessMode::from_config(&cfg);
    let lazy = super::db::LazyFlags {
        expire: cfg.lazyfree_lazy_expire,
        server_del: cfg.lazyfree_lazy_server_del,
    };
    for d in st.dbs.iter_mut() {
        d.set_modes(mode, lazy);
    }
    crate::pubsub::notify::set_flags(cfg.notify_keyspace_events);
    crate::pubsub::tracking::set_max_keys(cfg.tracking_table_max_keys, st.mem.nshards);
    let limit_changed = cfg.maxmemory != st.config.maxmemory;
    st.config = cfg;
    set_limit(st);
    if limit_changed && st.mem.limit > 0 {
        perform_evictions(st, now_ms);
    }
}

/// Sets the number of shards the limit is split over and where this shard publishes its OOM
/// verdict (once, at startup).
pub fn set_shard_count(st: &mut ShardState, n: usize, shared: &MemShared) {
    st.mem.nshards = n.max(1);
    st.mem.oom_flag = shared.oom_flag(st.id);
    set_limit(st);
}

fn set_limit(st: &mut ShardState) {
    let max = st.config.maxmemory;
    st.mem.limit = if max == 0 {
        0
    } else {
        (max / st.mem.nshards as u64).max(1)
    };
    if st.mem.limit == 0 {
        st.mem.note(Evict::Ok);
    }
}

/// The shard's dataset: every entry's charge plus the databases' bucket arrays.
pub fn dataset_bytes(st: &ShardState) -> u64 {
    st.dbs.iter().map(|d| d.mem_total()).sum()
}

/// The shard's usage as enforced against its limit.
#[inline]
pub fn usage(st: &ShardState) -> u64 {
    dataset_bytes(st) + st.mem.overhead_share
}

/// Cron: publishes this shard's dataset and pending frees, refreshes its overhead share from
/// the process total, the OOM flag and the peak.
pub fn refresh(st: &mut ShardState, shared: &MemShared) {
    let id = st.id;
    let ds = dataset_bytes(st);
    if let Some(a) = shared.dataset.get(id) {
        a.store(ds, Ordering::Relaxed);
    }
    if let Some(a) = shared.pending.get(id) {
        a.store(super::lazyfree::pending_bytes(), Ordering::Relaxed);
    }
    if crate::alloc::is_active() {
        let (total, _) = shared.update_peak();
        let owned: u64 = shared
            .dataset
            .iter()
            .chain(shared.pending.iter())
            .map(|a| a.load(Ordering::Relaxed))
            .sum();
        let share = total.saturating_sub(owned) / shared.dataset.len() as u64;
        let m = &mut st.mem;
        m.overhead_samples[m.overhead_next % OVERHEAD_WINDOW] = share;
        m.overhead_next += 1;
        let filled = m.overhead_next.min(OVERHEAD_WINDOW);
        m.overhead_share = m.overhead_samples[..filled]
            .iter()
            .copied()
            .min()
            .unwrap_or(0);
    }
    if st.mem.oom && (st.mem.limit == 0 || usage(st) <= st.mem.limit) {
        st.mem.note(Evict::Ok);
    }
}

/// Whether a command must be refused for memory before it is queued or run at connection
/// level (MULTI queueing, EXEC): the shards its keys live on (every shard, for a keyless
/// command) are over their limits with nothing left to evict. The connection's own shard
/// evicts first, like Redis's processCommand; other shards answer from their last attempt.
pub fn command_oom(
    shard: &super::Shard,
    spec: &crate::commands::CommandSpec,
    args: &[Bytes],
) -> bool {
    if shard.state.borrow().config.maxmemory == 0 {
        return false;
    }
    let shared = &shard.globals.mem;
    let local = || {
        let now = crate::server::globals::unix_ms();
        perform_evictions(&mut shard.state.borrow_mut(), now) == Evict::Fail
    };
    let mut keyed = false;
    for p in spec.keys(args) {
        keyed = true;
        let owner = shard.shard_of(&args[p]);
        let oom = if owner == shard.id {
            local()
        } else {
            shared.is_oom(owner)
        };
        if oom {
            return true;
        }
    }
    !keyed && (local() || shared.any_oom())
}

/// One shard's memory figures for INFO and MEMORY STATS.
#[derive(Clone, Debug, Default)]
pub struct MemReport {
    /// Entries' charges plus bucket arrays.
    pub dataset: u64,
    /// Per database: (keys, main table overhead, expiry index overhead).
    pub dbs: Vec<(u64, u64, u64)>,
    pub lazy_pending_objects: u64,
    pub lazy_pending_bytes: u64,
    pub lazy_freed_objects: u64,
    /// Client buffers of this shard's connections (as CLIENT LIST's tot-mem counts them).
    pub clients: u64,
    pub clients_count: u64,
    /// (total, current) microseconds over the limit.
    pub exceeded_us: (u64, u64),
    pub limit: u64,
    pub usage: u64,
    /// This shard's Lua states.
    pub lua: u64,
}

/// This shard's report (runs on the shard).
pub fn report(sh: &super::Shard) -> MemReport {
    let st = sh.state.borrow();
    let clients = sh.clients.borrow();
    MemReport {
        dataset: dataset_bytes(&st),
        dbs: st
            .dbs
            .iter()
            .map(|d| {
                let (main, exp) = d.table_overhead();
                (d.len() as u64, main, exp)
            })
            .collect(),
        lazy_pending_objects: super::lazyfree::pending_objects(),
        lazy_pending_bytes: super::lazyfree::pending_bytes(),
        lazy_freed_objects: super::lazyfree::freed_objects(),
        clients: clients.clients.values().map(|c| c.memory()).sum(),
        clients_count: clients.clients.len() as u64,
        exceeded_us: st.mem.exceeded_us(),
        limit: st.mem.limit,
        usage: usage(&st),
        lua: crate::scripting::lua::thread_memory() as u64,
    }
}

/// Redis's `evictionTimeLimitUs`: how long one call may evict before leaving the rest to the
/// background task.
pub fn eviction_time_limit_us(tenacity: u32) -> u64 {
    if tenacity <= 10 {
        return 50 * tenacity as u64;
    }
    if tenacity < 100 {
        return (500.0 * 1.15f64.powf(tenacity as f64 - 10.0)) as u64;
    }
    u64::MAX
}

/// Evicts keys until the shard is under its limit, the policy or the data forbids it, or the
/// time limit is reached (Redis's `performEvictions`). Called before every keyed command when a
/// limit is set.
pub fn perform_evictions(st: &mut ShardState, now_ms: u64) -> Evict {
    let limit = st.mem.limit;
    if limit == 0 {
        return Evict::Ok;
    }
    let used = usage(st);
    if used <= limit {
        st.mem.note(Evict::Ok);
        return Evict::Ok;
    }
    let policy = st.config.maxmemory_policy;
    if policy == MaxmemoryPolicy::NoEviction {
        st.mem.note(Evict::Fail);
        return Evict::Fail;
    }
    let to_free = used - limit;
    let time_limit = eviction_time_limit_us(st.config.maxmemory_eviction_tenacity);
    let lazy = st.config.lazyfree_lazy_eviction;
    let started = Instant::now();
    let mut freed = 0u64;
    let mut keys_freed = 0u64;
    let mut result = Evict::Ok;
    while freed < to_free {
        let Some((db, key)) = select_victim(st, policy, now_ms) else {
            result = Evict::Fail;
            break;
        };
        let d = &mut st.dbs[db];
        let before = d.mem_total();
        let deleting = Instant::now();
        d.delete_with(&key, lazy);
        freed += before.saturating_sub(d.mem_total());
        st.latency_event("eviction-del", deleting.elapsed().as_millis() as u64);
        crate::persistence::aof::log_command(st, db, &[&b"DEL"[..], &key[..]]);
        st.stats.evicted_keys += 1;
        crate::pubsub::notify::notify(crate::pubsub::notify::class::EVICTED, "evicted", &key, db);
        keys_freed += 1;
        if keys_freed.is_multiple_of(16) && started.elapsed().as_micros() as u64 > time_limit {
            st.mem.eviction_running = true;
            super::lazyfree::wake();
            break;
        }
    }
    st.latency_event("eviction-cycle", started.elapsed().as_millis() as u64);
    if result == Evict::Ok && st.mem.eviction_running {
        result = Evict::Running;
    }
    st.mem.note(result);
    result
}

/// The next key to evict under `policy`, with its database.
fn select_victim(
    st: &mut ShardState,
    policy: MaxmemoryPolicy,
    now_ms: u64,
) -> Option<(usize, Key)> {
    let allkeys = policy.is_allkeys();
    let ShardState {
        dbs,
        rng,
        mem,
        config,
        ..
    } = st;
    if policy.is_random() {
        let n = dbs.len();
        for _ in 0..n {
            mem.next_db = (mem.next_db + 1) % n;
            let d = &dbs[mem.next_db];
            let key = if allkeys {
                d.keys.random_entry(rng).map(|(k, _)| k.clone())
            } else {
                d.expires.random_entry(rng).map(|(k, _)| k.clone())
            };
            if let Some(k) = key {
                return Some((mem.next_db, k));
            }
        }
        return None;
    }
    let samples = (config.maxmemory_samples as usize).max(1);
    let decay = config.lfu_decay_time;
    // `expire_at`: the key's deadline, as sampled from the expiry index (volatile-ttl samples
    // nothing else; the allkeys policies never look at it).
    let score = |e: &Entry, expire_at: u64| -> u64 {
        match policy {
            MaxmemoryPolicy::VolatileTtl => u64::MAX - expire_at,
            p if p.is_lfu() => 255 - lfu_decr_and_return(e.access(), now_ms, decay) as u64,
            _ => lru_idle_ms(e.access(), now_ms),
        }
    };
    let mut sampled: Vec<(u64, Key)> = Vec::with_capacity(samples);
    // Every round samples each database; rounds only repeat when all the pooled candidates
    // turned out to be gone (ghosts of keys deleted since they were pooled).
    for _round in 0..1000 {
        let mut total_keys = 0;
        for (i, d) in dbs.iter().enumerate() {
            let n = if allkeys {
                d.keys.len()
            } else {
                d.expires.len()
            };
            if n == 0 {
                continue;
            }
            total_keys += n;
            sampled.clear();
            if allkeys {
                d.keys
                    .sample_with(rng, samples, |k, e| sampled.push((score(e, 0), k.clone())));
            } else {
                d.expires.sample_with(rng, samples, |k, &at| {
                    if let Some(e) = d.keys.get(k) {
                        sampled.push((score(e, at), k.clone()));
                    }
                });
            }
            for (idle, key) in sampled.drain(..) {
                pool_insert(&mut mem.pool, PoolEntry { idle, key, db: i });
            }
        }
        if total_keys == 0 {
            return None;
        }
        for slot in mem.pool.iter_mut().rev() {
            let Some(pe) = slot.take() else {
                continue;
            };
            let d = &dbs[pe.db];
            let alive = if allkeys {
                d.keys.contains_key(&pe.key)
            } else {
                d.expires.contains_key(&pe.key)
            };
            if alive {
                return Some((pe.db, pe.key));
            }
        }
    }
    None
}

/// Inserts a candidate into the pool, kept in ascending `idle` order with the best candidate
/// on the right (Redis's `evictionPoolPopulate`): a candidate worse than all of a full pool is
/// dropped; otherwise the worst one makes room.
fn pool_insert(pool: &mut [Option<PoolEntry>; EVPOOL_SIZE], e: PoolEntry) {
    let mut k = 0;
    while k < EVPOOL_SIZE && pool[k].as_ref().is_some_and(|p| p.idle < e.idle) {
        k += 1;
    }
    if k == 0 && pool[EVPOOL_SIZE - 1].is_some() {
        return;
    }
    if k < EVPOOL_SIZE && pool[k].is_none() {
        // An empty slot at the insertion point.
    } else if pool[EVPOOL_SIZE - 1].is_none() {
        // Room on the right: shift k.. right by one.
        pool[k..].rotate_right(1);
    } else {
        // Full: drop the leftmost (worst) and shift everything before k left by one.
        k -= 1;
        pool[..=k].rotate_left(1);
    }
    pool[k] = Some(e);
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::shard::ShardState;
    use crate::types::{HashLimits, HashValue, StrValue, Value};

    fn shard(settings: &[(&str, &str)]) -> ShardState {
        let mut cfg = Config::default();
        let pairs: Vec<(&[u8], &[u8])> = settings
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        cfg.set(&pairs).unwrap();
        ShardState::new(0, cfg)
    }

    fn string(len: usize) -> Value {
        Value::Str(StrValue::from_bytes(&vec![b'x'; len]))
    }

    /// The database's total always equals the sum of its entries' charges, and each charge is
    /// what `entry_charge` computes now, through inserts, overwrites, in-place writes,
    /// deadlines and removals.
    #[test]
    fn charges_add_up() {
        let mut st = shard(&[]);
        let now = 1_700_000_000_000;
        let d = &mut st.dbs[0];
        d.insert(b"a", string(10), 0, now);
        d.insert(b"b", string(1000), 0, now);
        d.insert(b"b", string(5000), 0, now);
        d.insert(b"c", Value::Hash(HashValue::new()), 0, now);
        for i in 0..600 {
            if let Some(e) = d.lookup_mut(b"c", now) {
                if let Value::Hash(h) = &mut e.value {
                    h.set(format!("f{i}").as_bytes(), b"value", HashLimits::default());
                }
            }
            d.recharge(b"c");
        }
        d.set_expire(b"a", now + 10_000);
        d.remove(b"b");
        let sum: u64 = d
            .keys
            .iter()
            .map(|(k, e)| {
                assert_eq!(e.charged as usize, entry_charge(k.len(), e));
                e.charged as u64
            })
            .sum();
        assert_eq!(d.charged_bytes(), sum);
        assert!(sum > 600 * 10, "{sum}");
        d.clear();
        assert_eq!(d.charged_bytes(), 0);
    }

    /// Fills a shard past a limit and returns it with the keys it evicted.
    fn fill_and_evict(
        settings: &[(&str, &str)],
        keys: &[(&str, u64, u32)],
        extra: usize,
    ) -> (ShardState, Vec<String>) {
        let mut st = shard(settings);
        let now = 1_700_000_000_000u64;
        for &(k, ttl, access) in keys {
            let at = if ttl == 0 { 0 } else { now + ttl };
            st.dbs[0].insert(k.as_bytes(), string(1000), at, now);
            st.dbs[0]
                .keys
                .get_mut(k.as_bytes())
                .unwrap()
                .set_access(access);
        }
        // Room for all but `extra` of them.
        let per_key = dataset_bytes(&st) / keys.len() as u64;
        st.mem.limit = dataset_bytes(&st) - per_key * extra as u64 + per_key / 2;
        let result = perform_evictions(&mut st, now);
        assert_ne!(result, Evict::Running);
        let gone = keys
            .iter()
            .filter(|(k, ..)| !st.dbs[0].keys.contains_key(k.as_bytes()))
            .map(|(k, ..)| k.to_string())
            .collect();
        (st, gone)
    }

    #[test]
    fn lru_evicts_the_longest_idle() {
        let now_clock = lru_clock(1_700_000_000_000);
        let keys: Vec<(String, u64, u32)> = (0..40)
            .map(|i| (format!("k{i}"), 0, now_clock - i as u32))
            .collect();
        let keys: Vec<(&str, u64, u32)> =
            keys.iter().map(|(k, t, a)| (k.as_str(), *t, *a)).collect();
        // With as many samples as keys, sampling sees everything: exactly the oldest go.
        let (st, gone) = fill_and_evict(
            &[
                ("maxmemory-policy", "allkeys-lru"),
                ("maxmemory-samples", "40"),
            ],
            &keys,
            5,
        );
        let mut gone = gone;
        gone.sort();
        assert_eq!(gone, ["k35", "k36", "k37", "k38", "k39"]);
        assert_eq!(st.stats.evicted_keys, 5);
    }

    #[test]
    fn lfu_evicts_the_least_frequent() {
        let now = 1_700_000_000_000u64;
        let keys: Vec<(String, u64, u32)> = (0..40)
            .map(|i| (format!("k{i}"), 0, lfu_pack(now, 10 + i as u32)))
            .collect();
        let keys: Vec<(&str, u64, u32)> =
            keys.iter().map(|(k, t, a)| (k.as_str(), *t, *a)).collect();
        let (_, mut gone) = fill_and_evict(
            &[
                ("maxmemory-policy", "allkeys-lfu"),
                ("maxmemory-samples", "40"),
            ],
            &keys,
            3,
        );
        gone.sort();
        assert_eq!(gone, ["k0", "k1", "k2"]);
    }

    #[test]
    fn volatile_policies_only_take_keys_with_a_deadline() {
        let clock = lru_clock(1_700_000_000_000);
        for policy in [
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
        ] {
            // Persistent keys are the oldest; only the ones with a TTL may go.
            let keys: Vec<(String, u64, u32)> = (0..20)
                .map(|i| {
                    let ttl = if i < 10 {
                        0
                    } else {
                        1_000_000 - i as u64 * 1000
                    };
                    (format!("k{i}"), ttl, clock - 100 + i as u32)
                })
                .collect();
            let keys: Vec<(&str, u64, u32)> =
                keys.iter().map(|(k, t, a)| (k.as_str(), *t, *a)).collect();
            let (mut st, gone) = fill_and_evict(
                &[("maxmemory-policy", policy), ("maxmemory-samples", "20")],
                &keys,
                4,
            );
            assert_eq!(gone.len(), 4, "{policy}");
            assert!(
                gone.iter().all(|k| k[1..].parse::<u32>().unwrap() >= 10),
                "{policy}: {gone:?}"
            );
            if policy == "volatile-ttl" {
                let mut gone = gone.clone();
                gone.sort();
                assert_eq!(gone, ["k16", "k17", "k18", "k19"], "shortest TTLs first");
            }
            // Once only persistent keys are left, nothing can be freed.
            st.mem.limit = 1;
            assert_eq!(
                perform_evictions(&mut st, 1_700_000_000_000),
                Evict::Fail,
                "{policy}"
            );
            assert_eq!(st.dbs[0].len(), 10, "{policy}");
            assert!(st.mem.oom);
        }
    }

    #[test]
    fn noeviction_fails_without_touching_data() {
        let (st, gone) = fill_and_evict(
            &[("maxmemory-policy", "noeviction")],
            &[("a", 0, 0), ("b", 0, 0)],
            1,
        );
        assert!(gone.is_empty());
        assert!(st.mem.oom);
        assert_eq!(st.stats.evicted_keys, 0);
    }

    #[test]
    fn lazy_eviction_detaches_big_values() {
        let mut st = shard(&[
            ("maxmemory-policy", "allkeys-random"),
            ("lazyfree-lazy-eviction", "yes"),
        ]);
        let now = 1_700_000_000_000u64;
        let mut l = crate::types::ListValue::new(1);
        for i in 0..500 {
            l.push(crate::types::list::End::Tail, format!("{i}").as_bytes());
        }
        st.dbs[0].insert(b"big", Value::List(Box::new(l)), 0, now);
        crate::shard::lazyfree::drain_all();
        st.mem.limit = 1;
        assert_eq!(perform_evictions(&mut st, now), Evict::Fail);
        assert_eq!(st.stats.evicted_keys, 1);
        assert_eq!(crate::shard::lazyfree::pending_objects(), 1);
        crate::shard::lazyfree::drain_all();
        assert_eq!(crate::shard::lazyfree::pending_objects(), 0);
    }

    #[test]
    fn lru_idle_time_wraps_like_redis() {
        let now = 1_700_000_000_000u64;
        let clock = lru_clock(now);
        assert_eq!(lru_idle_ms(clock, now), 0);
        assert_eq!(lru_idle_ms(clock, now + 5_000), 5_000);
        // An access stamped just before the clock wrapped.
        let before_wrap = LRU_CLOCK_MAX - 2;
        let after = ((now / 1000) & !(LRU_CLOCK_MAX as u64)) + (1 << 24) + 3;
        assert_eq!(lru_idle_ms(before_wrap, after * 1000), (3 + 2) * 1000);
    }

    /// Redis's formulas, written out independently: p = 1 / ((counter - 5) * factor + 1).
    #[test]
    fn lfu_log_incr_matches_redis_probabilities() {
        // New keys (counter <= LFU_INIT_VAL) always increment.
        for c in 0..=LFU_INIT_VAL {
            assert_eq!(lfu_log_incr(c, 10, 0.999_999), c + 1);
        }
        // counter 6, factor 10: p = 1/11.
        assert_eq!(lfu_log_incr(6, 10, 1.0 / 11.0 - 1e-9), 7);
        assert_eq!(lfu_log_incr(6, 10, 1.0 / 11.0 + 1e-9), 6);
        // counter 105, factor 1: p = 1/101.
        assert_eq!(lfu_log_incr(105, 1, 0.0099), 106);
        assert_eq!(lfu_log_incr(105, 1, 0.0100), 105);
        // factor 0: every access counts; 255 saturates.
        assert_eq!(lfu_log_incr(200, 0, 0.999_999), 201);
        assert_eq!(lfu_log_incr(255, 0, 0.0), 255);
        // Expected number of hits to reach a counter, as in redis.conf's table: with factor 10,
        // about 100 hits give ~10 and 1000 hits ~18 (with a fixed pseudo-random sequence).
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand01 = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut c = LFU_INIT_VAL;
        for _ in 0..100 {
            c = lfu_log_incr(c, 10, rand01());
        }
        assert!((8..=13).contains(&c), "100 hits gave {c}");
        for _ in 100..1000 {
            c = lfu_log_incr(c, 10, rand01());
        }
        assert!((15..=22).contains(&c), "1000 hits gave {c}");
    }

    #[test]
    fn lfu_decay_subtracts_one_per_period() {
        let t0 = 1_700_000_000_000u64 / 60_000 * 60_000;
        let field = lfu_pack(t0, 20);
        assert_eq!(field & 255, 20);
        assert_eq!(field >> 8, lfu_minutes(t0));
        assert_eq!(lfu_decr_and_return(field, t0 + 59_000, 1), 20);
        assert_eq!(lfu_decr_and_return(field, t0 + 60_000, 1), 19);
        assert_eq!(lfu_decr_and_return(field, t0 + 7 * 60_000, 1), 13);
        assert_eq!(lfu_decr_and_return(field, t0 + 7 * 60_000, 2), 17);
        assert_eq!(
            lfu_decr_and_return(field, t0 + 7 * 60_000, 0),
            20,
            "decay off"
        );
        assert_eq!(
            lfu_decr_and_return(field, t0 + 100 * 60_000, 1),
            0,
            "floors at 0"
        );
        // The 16-bit minute stamp wraps: 65535 - ldt + now.
        let ldt = 65_530u32;
        let now = (1u64 << 16) * 60_000 * 400 + 4 * 60_000; // minutes % 65536 == 4
        assert_eq!(lfu_time_elapsed(ldt, now), 65_535 - 65_530 + 4);
        assert_eq!(lfu_decr_and_return((ldt << 8) | 30, now, 1), 30 - 9);
    }

    #[test]
    fn eviction_time_limit_follows_tenacity() {
        assert_eq!(eviction_time_limit_us(0), 0);
        assert_eq!(eviction_time_limit_us(10), 500);
        assert_eq!(eviction_time_limit_us(11), 575);
        assert_eq!(
            eviction_time_limit_us(99),
            (500.0 * 1.15f64.powi(89)) as u64
        );
        assert_eq!(eviction_time_limit_us(100), u64::MAX);
    }

    #[test]
    fn the_pool_keeps_the_best_sixteen_in_order() {
        let mut pool: [Option<PoolEntry>; EVPOOL_SIZE] = Default::default();
        let e = |idle: u64| PoolEntry {
            idle,
            key: Key::new(idle.to_string().as_bytes()),
            db: 0,
        };
        for idle in [50u64, 10, 90, 30, 70] {
            pool_insert(&mut pool, e(idle));
        }
        let got: Vec<u64> = pool.iter().flatten().map(|p| p.idle).collect();
        assert_eq!(got, [10, 30, 50, 70, 90]);
        for idle in 100..120u64 {
            pool_insert(&mut pool, e(idle));
        }
        let got: Vec<u64> = pool.iter().flatten().map(|p| p.idle).collect();
        assert_eq!(got.len(), EVPOOL_SIZE);
        assert_eq!(got, (104..120).collect::<Vec<u64>>());
        // Worse than everything in a full pool: ignored.
        pool_insert(&mut pool, e(1));
        assert_eq!(pool[0].as_ref().map(|p| p.idle), Some(104));
        // In the middle of a full pool: the worst goes.
        pool_insert(&mut pool, e(110));
        let got: Vec<u64> = pool.iter().flatten().map(|p| p.idle).collect();
        assert_eq!(got[0], 105);
        assert!(got.windows(2).all(|w| w[0] <= w[1]));
    }
}

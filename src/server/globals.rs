//! Process-wide facts shared by all shards: identity, start time, counters that must be unique
//! across shards, the listening port, and the shutdown flag. Only atomics and immutable data
//! live here: shards never coordinate through this struct, they only read it, bump a counter,
//! or publish a fact (the port, once every shard listens there).

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub struct Globals {
    pub run_id: String,
    /// The replication id INFO replication reports as `master_replid`: random at startup, like
    /// Redis's, and replaced by DEBUG CHANGE-REPL-ID.
    pub replid: std::sync::Mutex<String>,
    /// DEBUG PAUSE-CRON: every shard's cron skips its periodic work (see `server::cron`).
    pub cron_paused: AtomicBool,
    /// DEBUG SET-DISABLE-DENY-SCRIPTS: scripts may call commands flagged `noscript`.
    pub script_deny_disabled: AtomicBool,
    pub start_ms: u64,
    /// The TCP port the shards listen on (0: none); CONFIG SET port changes it.
    pub port: AtomicU16,
    pub nshards: usize,
    /// Each shard has a core of its own (pinned one per core): a shard waiting a few
    /// microseconds for another's answer may spin on its core instead of sleeping.
    pub shards_pinned: bool,
    pub pid: u32,
    pub executable: String,
    pub config_file: String,
    next_client_id: AtomicU64,
    slowlog_id: AtomicU64,
    pub shutdown: AtomicBool,
    /// SIGINT or SIGTERM (its number) received and not yet acted on, 0 for none (shard 0's
    /// cron starts the shutdown, with the options `shutdown-on-sigint/sigterm` give it).
    pub shutdown_signal: std::sync::atomic::AtomicI32,
    /// Monitors connected anywhere; the hot path only feeds them when this is non-zero.
    pub monitors: AtomicUsize,
    /// Keys WATCHed anywhere (one per client and key): a multi-shard unit looks for the keys its
    /// writes signal only when this is non-zero (see `ShardState::unit_signalled`).
    pub watched_keys: AtomicUsize,
    pub connected_clients: AtomicUsize,
    /// Per shard: the memory its clients take, and (while all clients are over
    /// `maxmemory-clients`) its biggest evictable client's (see `client_eviction`).
    pub client_mem: Vec<PaddedU64>,
    pub client_largest: Vec<AtomicU64>,
    /// A shard is deciding which clients to evict (one at a time).
    pub client_evicting: AtomicBool,
    pub lastsave: AtomicU64,
    /// Bit `i` set: shard `i` has pub/sub subscribers (PUBLISH visits only those shards).
    pub pubsub_shards: AtomicU64,
    /// Process-wide scripting state (script cache, function libraries, busy scripts); see
    /// `crate::scripting` for why it is shared rather than per shard.
    pub scripting: crate::scripting::Shared,
    /// Each shard's published memory figures, the peak and the startup total.
    pub mem: crate::shard::memory::MemShared,
    /// AOF state shared by the shards (INFO persistence, manifest, rewrites).
    pub aof: crate::persistence::aof::AofGlobal,
    /// Snapshot state shared by the shards (INFO persistence, save rules, LASTSAVE).
    pub snapshot: crate::persistence::snapshot::SnapGlobal,
    /// ACL users and log (see `crate::server::acl`: a mutex for the control path, one atomic
    /// load per command on the data path).
    pub acl: crate::server::acl::Acl,
}

/// A counter on a cache line of its own: each shard writes its own one, on every request.
#[repr(align(64))]
#[derive(Default)]
pub struct PaddedU64(pub AtomicU64);

impl Globals {
    pub fn new(port: u16, nshards: usize, config_file: String) -> Globals {
        let start_ms = unix_ms();
        let mut seed = start_ms ^ ((std::process::id() as u64) << 32);
        let run_id: String = (0..40)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from_digit((seed % 16) as u32, 16).unwrap_or('0')
            })
            .collect();
        Globals {
            run_id,
            replid: std::sync::Mutex::new(random_hex_id()),
            cron_paused: AtomicBool::new(false),
            script_deny_disabled: AtomicBool::new(false),
            start_ms,
            port: AtomicU16::new(port),
            nshards,
            shards_pinned: false,
            pid: std::process::id(),
            executable: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            config_file,
            next_client_id: AtomicU64::new(1),
            slowlog_id: AtomicU64::new(0),
            shutdown: AtomicBool::new(false),
            shutdown_signal: std::sync::atomic::AtomicI32::new(0),
            monitors: AtomicUsize::new(0),
            watched_keys: AtomicUsize::new(0),
            connected_clients: AtomicUsize::new(0),
            client_mem: (0..nshards).map(|_| PaddedU64::default()).collect(),
            client_largest: (0..nshards).map(|_| AtomicU64::new(0)).collect(),
            client_evicting: AtomicBool::new(false),
            lastsave: AtomicU64::new(start_ms / 1000),
            pubsub_shards: AtomicU64::new(0),
            scripting: crate::scripting::Shared::new(nshards),
            mem: crate::shard::memory::MemShared::new(nshards),
            aof: crate::persistence::aof::AofGlobal::new(nshards),
            snapshot: crate::persistence::snapshot::SnapGlobal::new(nshards, start_ms),
            acl: crate::server::acl::Acl::new(),
        }
    }

    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn next_slowlog_id(&self) -> u64 {
        self.slowlog_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn reset_slowlog_ids(&self) {}

    pub fn request_shutdown(&self) {
        if !self.shutdown.swap(true, Ordering::SeqCst) {
            super::supervise::stopping();
        }
    }

    pub fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }
}

/// A fresh random 40-hex-digit id (Redis's replication ids).
pub fn random_hex_id() -> String {
    let bytes: [u8; 20] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Wall-clock Unix time in milliseconds.
#[inline]
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Wall-clock Unix time in microseconds.
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

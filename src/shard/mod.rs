//! A shard: one core's partition of the keyspace (all logical databases), its expiry state, its
//! memory limit and eviction (`memory`, `lazyfree`), its statistics (with per-command latency
//! histograms, `latency`) and slow log, and its end of the cross-shard router.
//!
//! A shard's data is only ever touched by code running on that shard's executor thread. Other
//! shards reach it by sending a message (`ShardMsg`) and awaiting the reply; there are no locks.
//! Code here must never hold a `RefCell` borrow of the state across an `.await`.

pub mod blocking;
pub mod clock;
pub mod db;
pub mod digest;
pub mod expiry;
pub mod latency;
pub mod lazyfree;
pub mod memory;
pub mod router;
pub mod slot;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::commands::{self, CommandSpec};
use crate::config::Config;
use crate::server::globals::Globals;
use crate::tx::locks::LockTable;
use db::Db;
pub use router::{BatchReply, Router, ShardGone, ShardMsg};

/// Per-command counters (INFO commandstats).
#[derive(Clone, Copy, Default, Debug)]
pub struct CmdStat {
    pub calls: u64,
    pub usec: u64,
    pub rejected_calls: u64,
    pub failed_calls: u64,
}

/// Counters that INFO sums over all shards.
#[derive(Clone, Default, Debug)]
pub struct ShardStats {
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub total_commands: u64,
    pub total_error_replies: u64,
    pub total_connections_received: u64,
    pub rejected_connections: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub evicted_keys: u64,
    /// Clients disconnected by client eviction (`maxmemory-clients`).
    pub evicted_clients: u64,
    pub cross_shard_batches: u64,
    pub cross_shard_commands: u64,
    /// Units (commands, EXEC blocks, scripts) that ran as multi-shard transactions here.
    pub tx_multi_shard: u64,
    /// Lock requests of multi-shard units that had to queue on this shard behind another unit.
    pub tx_lock_waits: u64,
    /// Lock attempts of multi-shard units that could not wait (optimistic ones) and were
    /// refused, so that the unit took its locks again in shard order.
    pub tx_lock_retries: u64,
    /// Error replies by their code (the error's first word: ERR, WRONGTYPE, NOAUTH...), for INFO
    /// errorstats. At most `MAX_ERROR_CODES` codes, as Redis tracks at most 128.
    pub error_codes: Vec<(Box<[u8]>, u64)>,
    /// Socket reads and writes of client connections (INFO total_reads/writes_processed).
    pub reads_processed: u64,
    pub writes_processed: u64,
    /// Active expiry: cycles that stopped at their time budget, time spent (µs), and Redis's
    /// running estimate of the share of sampled keys found expired (percent).
    pub expire_time_cap_reached: u64,
    pub expire_cycle_us: u64,
    pub expired_stale_perc: f64,
    /// Samples behind INFO's instantaneous_* rates.
    pub instant: InstantMetrics,
    /// Set while a script run that may still be rolled back and redone in global mode runs
    /// here (`ShardState::begin_provisional`): what its commands count, to be taken back if it
    /// is redone, so that the re-run counts them once.
    pub provisional: Option<Box<Provisional>>,
}

/// Redis's instantaneous metrics: every 100 ms the rate of commands, input bytes and output
/// bytes since the previous sample; INFO reports the mean of the last 16 samples.
#[derive(Clone, Default, Debug)]
pub struct InstantMetrics {
    last_ms: u64,
    last: [u64; 3],
    samples: [[u64; INSTANT_SAMPLES]; 3],
    next: usize,
}

const INSTANT_SAMPLES: usize = 16;

impl ShardStats {
    /// Takes a sample of the instantaneous rates if 100 ms passed since the last one.
    pub fn sample_instantaneous(&mut self, now_ms: u64) {
        let m = &mut self.instant;
        let now = [
            self.total_commands,
            self.net_input_bytes,
            self.net_output_bytes,
        ];
        if m.last_ms == 0 {
            m.last_ms = now_ms;
            m.last = now;
            return;
        }
        let elapsed = now_ms.saturating_sub(m.last_ms);
        if elapsed < 100 {
            return;
        }
        for (i, v) in now.iter().enumerate() {
            m.samples[i][m.next] = v.saturating_sub(m.last[i]) * 1000 / elapsed;
        }
        m.next = (m.next + 1) % INSTANT_SAMPLES;
        m.last_ms = now_ms;
        m.last = now;
    }

    /// Commands per second, input and output bytes per second (means of the samples).
    pub fn instantaneous(&self) -> [u64; 3] {
        std::array::from_fn(|i| {
            self.instant.samples[i].iter().sum::<u64>() / INSTANT_SAMPLES as u64
        })
    }
}

/// What the commands of a script run that may be redone counted (see
/// `ShardStats::provisional`).
#[derive(Clone, Debug, Default)]
pub struct Provisional {
    /// Calls counted: (statistics slot, microseconds, failed).
    calls: Vec<(usize, u64, bool)>,
    /// Error codes counted in errorstats.
    errors: Vec<Box<[u8]>>,
    keyspace_hits: u64,
    keyspace_misses: u64,
    /// Entries the run added to the slow log.
    slowlog_added: usize,
}

/// How many distinct error codes INFO errorstats tracks (Redis's limit).
const MAX_ERROR_CODES: usize = 128;

impl ShardStats {
    /// Counts an error reply: `reply` is the error as sent (`-CODE message\r\n`) or its text.
    pub fn error_replied(&mut self, reply: &[u8]) {
        self.total_error_replies += 1;
        let text = reply.strip_prefix(b"-").unwrap_or(reply);
        let end = text
            .iter()
            .position(|&c| c == b' ' || c == b'\r' || c == b'\n')
            .unwrap_or(text.len());
        let code = &text[..end];
        if let Some(p) = self.provisional.as_mut() {
            p.errors.push(code.into());
        }
        if let Some((_, n)) = self.error_codes.iter_mut().find(|(c, _)| &c[..] == code) {
            *n += 1;
        } else if self.error_codes.len() < MAX_ERROR_CODES {
            self.error_codes.push((code.into(), 1));
        }
    }
}

/// Who issued a command, for SLOWLOG and MONITOR and for client-side caching (shared with the
/// batches a connection sends).
#[derive(Debug, Default)]
pub struct ClientLabel {
    pub addr: String,
    pub name: String,
    /// The client's tracking (CLIENT TRACKING), as the key's shard needs it.
    pub track: crate::pubsub::tracking::Track,
}

/// One SLOWLOG entry.
#[derive(Clone, Debug)]
pub struct SlowEntry {
    pub id: u64,
    pub time: u64,
    pub usec: u64,
    pub args: Vec<Bytes>,
    pub addr: String,
    pub name: String,
}

/// The mutable state of a shard.
pub struct ShardState {
    pub id: usize,
    pub dbs: Vec<Db>,
    pub config: Config,
    pub cmd_stats: Vec<CmdStat>,
    /// Latency histograms per statistics slot, like `cmd_stats` (INFO latencystats).
    pub latency: latency::LatencyStats,
    /// The latency monitor's events on this shard (LATENCY LATEST...).
    pub latency_events: latency::LatencyMonitor,
    pub stats: ShardStats,
    pub slowlog: VecDeque<SlowEntry>,
    pub rng: SmallRng,
    /// DEBUG SET-ACTIVE-EXPIRE.
    pub active_expire: bool,
    /// Clients blocked on this shard's keys.
    pub blocked: blocking::Blocked,
    /// Set while a unit of several commands runs (EXEC, transactions): blocked clients are
    /// served after the unit, not between its commands.
    pub in_unit: bool,
    /// While this shard runs a multi-shard unit over copies of other shards' keys: the keys
    /// its writes signalled (`touch_changed_watched`), so that the owners fail the WATCHes on
    /// them even when the value came back byte-identical.
    pub unit_signalled: Option<Vec<(usize, Bytes)>>,
    /// Memory limit and eviction state (see `memory`).
    pub mem: memory::MemState,
    /// The append-only log, while `appendonly yes` (see `crate::persistence::aof`).
    pub aof: Option<Box<crate::persistence::aof::AofLog>>,
    /// Replaying the AOF: nothing expires (like Redis while loading), so that a command that
    /// found a key alive when it was logged finds it alive again; deadlines apply afterwards.
    /// Replayed commands count in no statistics (INFO commandstats, latencystats, slow log).
    pub loading: bool,
    /// Changes the running command reported (`Ctx::dirty`); None when it reported none.
    pub dirty: Option<u64>,
    /// Wall-clock milliseconds when the latest command (or cron tick) started on this shard: a
    /// free "now" for bookkeeping that second resolution satisfies (a client's last interaction),
    /// so that a connection needs no clock read of its own per read. At most one cron period old.
    pub clock_ms: u64,
    /// Reads the wall clock for each command (see `clock`).
    pub clock: clock::CommandClock,
    /// Set while this shard runs a part of a client command split across shards that is not
    /// its first part (`crate::tx`): the command is counted once, by its first part.
    pub split_part: bool,
    /// Set while this shard runs any part of such a command: the coordinator logs the whole
    /// command in the slow log, once, with all its arguments and its whole time.
    pub in_split: bool,
    /// Set while this shard runs a command whose statistics its caller counts (or not): an
    /// attempt of a blocking command whose keys span shards, which only its connection knows
    /// to have blocked, served or failed (`crate::commands::blocking_family`), or an AOF record
    /// replayed across shards. The slow log is not affected.
    pub uncounted: bool,
    /// The commands the running command is to be logged as instead of its own arguments
    /// (XADD's generated ID, approximate trimming made exact, XREADGROUP's deliveries as
    /// XCLAIMs: `Ctx::propagate_as`); taken right after it.
    pub rewritten: Option<Vec<Vec<bytes::Bytes>>>,
}

impl ShardState {
    /// Prefetch hints for a batch of (command index, arguments) about to run in database `db`
    /// (`Db::prefetch_batch`); nothing for a batch of one.
    pub fn prefetch_cmds(&self, db: usize, cmds: &[(u16, crate::protocol::parse::Args)]) {
        if cmds.len() < 2 {
            return;
        }
        if let Some(d) = self.dbs.get(db) {
            d.prefetch_batch(
                cmds.iter()
                    .map(|(idx, args)| (commands::spec(*idx), &args[..])),
            );
        }
    }

    pub fn new(id: usize, config: Config) -> ShardState {
        let dbs = (0..config.databases.max(1)).map(Db::numbered).collect();
        let mut st = ShardState {
            id,
            dbs,
            config: config.clone(),
            cmd_stats: vec![CmdStat::default(); commands::stat_names().len()],
            latency: latency::LatencyStats::new(commands::stat_names().len()),
            latency_events: latency::LatencyMonitor::default(),
            stats: ShardStats::default(),
            slowlog: VecDeque::new(),
            rng: SmallRng::seed_from_u64(0x7e55_e4a0 ^ id as u64),
            active_expire: true,
            blocked: Default::default(),
            in_unit: false,
            unit_signalled: None,
            mem: memory::MemState::default(),
            aof: None,
            loading: false,
            dirty: None,
            clock_ms: crate::server::globals::unix_ms(),
            clock: Default::default(),
            split_part: false,
            in_split: false,
            uncounted: false,
            rewritten: None,
        };
        memory::apply_config(&mut st, config, crate::server::globals::unix_ms());
        st
    }

    /// Counts a call of statistics slot `slot` (`commands::stat_index`) that ran for `usec`
    /// microseconds, as Redis's `call()` does: INFO commandstats, the command count and, with
    /// `latency-tracking` on (as it is once the call is over), the slot's latency histogram.
    /// The caller counts a failed call's error reply in errorstats.
    #[inline]
    pub fn count_call(&mut self, slot: usize, usec: u64, failed: bool) {
        let stat = &mut self.cmd_stats[slot];
        stat.calls += 1;
        stat.usec += usec;
        stat.failed_calls += failed as u64;
        self.stats.total_commands += 1;
        if self.config.latency_tracking {
            self.latency.record(slot, usec);
        }
        if let Some(p) = self.stats.provisional.as_mut() {
            p.calls.push((slot, usec, failed));
        }
    }

    /// Starts keeping what a script run that may be rolled back counts (see
    /// `ShardStats::provisional`). The run is one synchronous step on this shard, so nothing
    /// else counts here meanwhile.
    pub fn begin_provisional(&mut self) {
        self.stats.provisional = Some(Box::new(Provisional {
            keyspace_hits: self.stats.keyspace_hits,
            keyspace_misses: self.stats.keyspace_misses,
            ..Provisional::default()
        }));
    }

    /// Ends a provisional run: what it counted stands, or (`take_back`, the run is redone in
    /// global mode) is taken back from commandstats, latencystats, errorstats, the keyspace
    /// hit and miss counts and the slow log. The slow log's entry ids are process-wide and
    /// stay used.
    pub fn end_provisional(&mut self, take_back: bool) {
        let Some(p) = self.stats.provisional.take() else {
            return;
        };
        if !take_back {
            return;
        }
        for &(slot, usec, failed) in &p.calls {
            // (Saturating: nothing a script may call resets statistics, but a wrong count
            // must not become a panic.)
            let stat = &mut self.cmd_stats[slot];
            stat.calls = stat.calls.saturating_sub(1);
            stat.usec = stat.usec.saturating_sub(usec);
            stat.failed_calls = stat.failed_calls.saturating_sub(failed as u64);
            self.stats.total_commands = self.stats.total_commands.saturating_sub(1);
            if self.config.latency_tracking {
                self.latency.unrecord(slot, usec);
            }
        }
        for code in &p.errors {
            self.stats.total_error_replies = self.stats.total_error_replies.saturating_sub(1);
            if let Some(i) = self.stats.error_codes.iter().position(|(c, _)| c == code) {
                self.stats.error_codes[i].1 = self.stats.error_codes[i].1.saturating_sub(1);
                if self.stats.error_codes[i].1 == 0 {
                    self.stats.error_codes.remove(i);
                }
            }
        }
        self.stats.keyspace_hits = p.keyspace_hits;
        self.stats.keyspace_misses = p.keyspace_misses;
        for _ in 0..p.slowlog_added.min(self.slowlog.len()) {
            self.slowlog.pop_front();
        }
    }

    /// Counts a call that blocked after running `usec` microseconds, as Redis 7.0 does when a
    /// command blocks: a call with its time so far, but no latency yet (see `count_unblocked`).
    pub fn count_blocked(&mut self, slot: usize, usec: u64) {
        let stat = &mut self.cmd_stats[slot];
        stat.calls += 1;
        stat.usec += usec;
        self.stats.total_commands += 1;
    }

    /// Counts the end of a blocked call (Redis 7.0's `updateStatsOnUnblock`): served, or ended
    /// by CLIENT UNBLOCK (`failed`, whatever the reply). `usec` is the time the call that
    /// blocked took plus the time serving it took (the wait itself is not counted); it is added
    /// to the command's time and recorded as its latency. A timeout counts nothing.
    pub fn count_unblocked(&mut self, slot: usize, usec: u64, failed: bool) {
        let stat = &mut self.cmd_stats[slot];
        stat.usec += usec;
        stat.failed_calls += failed as u64;
        if self.config.latency_tracking {
            self.latency.record(slot, usec);
        }
    }

    /// Whether a command that ran for `usec` microseconds goes into the slow log.
    pub fn slowlog_wants(&self, usec: u64) -> bool {
        let threshold = self.config.slowlog_log_slower_than;
        threshold >= 0 && usec as i64 >= threshold && self.config.slowlog_max_len > 0
    }

    /// Records an `event` of the latency monitor that took `ms` milliseconds, if it reached
    /// `latency-monitor-threshold` (Redis's `latencyAddSampleIfNeeded`).
    pub fn latency_event(&mut self, event: &'static str, ms: u64) {
        let threshold = self.config.latency_monitor_threshold;
        if threshold > 0 && ms >= threshold {
            let now = crate::server::globals::unix_ms() / 1000;
            self.latency_events.add(event, ms, now);
        }
    }

    /// Records a command that ran for `usec` microseconds where Redis's `call()` does once it
    /// ran: the latency monitor (`command`, or `fast-command` for a command or subcommand
    /// flagged fast) and the slow log, if it was slow enough for them.
    pub fn maybe_slowlog(
        &mut self,
        globals: &Globals,
        args: &[Bytes],
        usec: u64,
        who: &ClientLabel,
    ) {
        let threshold = self.config.latency_monitor_threshold;
        if threshold > 0 && usec / 1000 >= threshold {
            let fast = commands::lookup(&args[0]).is_some_and(|spec| match spec.subcommand(args) {
                Ok(Some(sub)) => sub.has(commands::flags::FAST),
                _ => spec.has(commands::flags::FAST),
            });
            let event = if fast { "fast-command" } else { "command" };
            self.latency_event(event, usec / 1000);
        }
        if !self.slowlog_wants(usec) {
            return;
        }
        let max = self.config.slowlog_max_len as usize;
        // Like Redis: at most 32 arguments, each at most 128 bytes, with a summary of the rest;
        // passwords replaced.
        let secret = secret_args(args);
        let mut logged: Vec<Bytes> = Vec::with_capacity(args.len().min(32));
        for (i, a) in args.iter().enumerate() {
            if i == 31 && args.len() > 32 {
                logged.push(Bytes::from(format!(
                    "... ({} more arguments)",
                    args.len() - 31
                )));
                break;
            }
            if secret(i) {
                logged.push(Bytes::from_static(b"(redacted)"));
            } else if a.len() > 128 {
                let mut v = a[..128].to_vec();
                v.extend_from_slice(format!("... ({} more bytes)", a.len() - 128).as_bytes());
                logged.push(Bytes::from(v));
            } else {
                logged.push(Bytes::copy_from_slice(a));
            }
        }
        let entry = SlowEntry {
            id: globals.next_slowlog_id(),
            time: crate::server::globals::unix_ms() / 1000,
            usec,
            args: logged,
            addr: who.addr.clone(),
            name: who.name.clone(),
        };
        self.slowlog.push_front(entry);
        if let Some(p) = self.stats.provisional.as_mut() {
            p.slowlog_added += 1;
        }
        while self.slowlog.len() > max {
            self.slowlog.pop_back();
        }
    }
}

/// Which arguments of a command the slow log (and Redis's other command logs) must not show:
/// AUTH's, HELLO's AUTH username and password, CONFIG SET's values of `requirepass` and
/// `masterauth`.
fn secret_args(args: &[Bytes]) -> impl Fn(usize) -> bool + '_ {
    use crate::commands::args::eq_ic;
    let name = &args[0];
    let auth = eq_ic(name, "auth");
    let hello_auth = if eq_ic(name, "hello") {
        args.iter()
            .skip(2)
            .position(|a| eq_ic(a, "auth"))
            .map(|j| j + 2)
    } else {
        None
    };
    let config_set = eq_ic(name, "config") && args.len() > 1 && eq_ic(&args[1], "set");
    move |i| {
        i > 0 && auth
            || hello_auth.is_some_and(|j| i == j + 1 || i == j + 2)
            || config_set
                && i >= 3
                && i % 2 == 1
                && (eq_ic(&args[i - 1], "requirepass") || eq_ic(&args[i - 1], "masterauth"))
    }
}

/// A shard as seen from tasks running on its executor.
pub struct Shard {
    pub id: usize,
    pub state: RefCell<ShardState>,
    pub router: Router,
    pub globals: Arc<Globals>,
    pub clients: RefCell<crate::server::client::ClientRegistry>,
    /// MONITOR clients (on any shard) that this shard's connections feed.
    pub monitors: RefCell<Vec<(u64, futures::channel::mpsc::UnboundedSender<Bytes>)>>,
    /// CLIENT PAUSE: (until Unix ms, write-only).
    pub pause: std::cell::Cell<Option<(u64, bool)>>,
    /// Keys held by multi-shard transactions (see `crate::tx::locks`).
    pub locks: RefCell<LockTable>,
    /// Pub/sub subscriptions of this shard's connections.
    pub pubsub: RefCell<crate::pubsub::Registry>,
    /// Connections of this shard currently blocked (INFO blocked_clients).
    pub blocked_clients: std::cell::Cell<usize>,
    /// The memory of this shard's clients, as each accounts for it (`ClientHandle::mem`):
    /// what client eviction counts.
    pub client_mem: std::cell::Cell<u64>,
    /// What of the AOF is durable, and who waits for it (`appendfsync always`).
    pub aof: RefCell<crate::persistence::aof::Durability>,
    /// The AOF is on: replies wait until their writes reached the file (see `aof::sync_replies`).
    pub aof_replies_wait: std::cell::Cell<bool>,
    /// The low-share task queue for background work (lazy freeing, snapshot walks), once the
    /// shard serves.
    pub background_tq: std::cell::Cell<Option<glommio::TaskQueueHandle>>,
    /// This shard's listening sockets (see `crate::server::listen`).
    pub listeners: RefCell<crate::server::listen::Listeners>,
    /// CONFIG SET runs on shard 0, one at a time: each reads the configuration, changes the
    /// listeners if asked and hands the result to every shard before the next one reads it.
    pub config_turn: glommio::sync::Semaphore,
    next_tx: std::cell::Cell<u64>,
}

impl Shard {
    /// Sets what this shard's clients take (`client_mem`) and publishes it for client eviction
    /// on the other shards.
    pub fn set_client_mem(&self, bytes: u64) {
        self.client_mem.set(bytes);
        if let Some(m) = self.globals.client_mem.get(self.id) {
            m.0.store(bytes, std::sync::atomic::Ordering::Release);
        }
    }

    pub fn new(id: usize, config: Config, router: Router, globals: Arc<Globals>) -> Rc<Shard> {
        crate::pubsub::set_output_limit(config.output_limit(crate::config::OBUF_PUBSUB));
        let mut st = ShardState::new(id, config);
        memory::set_shard_count(&mut st, globals.nshards, &globals.mem);
        crate::pubsub::tracking::install(id, router.slots());
        crate::pubsub::tracking::set_max_keys(st.config.tracking_table_max_keys, globals.nshards);
        Rc::new(Shard {
            id,
            state: RefCell::new(st),
            router,
            globals,
            clients: RefCell::new(Default::default()),
            monitors: RefCell::new(Vec::new()),
            pause: std::cell::Cell::new(None),
            locks: RefCell::new(LockTable::default()),
            pubsub: RefCell::new(Default::default()),
            blocked_clients: std::cell::Cell::new(0),
            client_mem: std::cell::Cell::new(0),
            aof: RefCell::new(Default::default()),
            aof_replies_wait: std::cell::Cell::new(false),
            background_tq: std::cell::Cell::new(None),
            listeners: RefCell::new(Default::default()),
            config_turn: glommio::sync::Semaphore::new(1),
            next_tx: std::cell::Cell::new(0),
        })
    }

    pub fn nshards(&self) -> usize {
        self.router.nshards()
    }

    /// A transaction id unique across shards: the shard id in the top bits.
    pub fn new_tx_id(&self) -> crate::tx::locks::TxId {
        let n = self.next_tx.get() + 1;
        self.next_tx.set(n);
        ((self.id as u64) << 48) | (n & ((1 << 48) - 1))
    }

    /// The shard that owns `key`.
    #[inline]
    pub fn shard_of(&self, key: &[u8]) -> usize {
        self.router.shard_of_key(key)
    }

    /// Runs `f` on shard `to` (inline when it is this shard) and returns its result.
    pub async fn run_on<R, F>(&self, to: usize, f: F) -> Result<R, ShardGone>
    where
        R: Send + 'static,
        F: FnOnce(&Shard) -> R + Send + 'static,
    {
        if to == self.id {
            return Ok(f(self));
        }
        let (tx, rx) = futures::channel::oneshot::channel();
        let job: router::Job = Box::new(move |sh: &Shard| {
            let _ = tx.send(f(sh));
        });
        self.router.send(to, ShardMsg::Job(job)).await?;
        rx.await.map_err(|_| ShardGone)
    }

    /// Runs the async `f` on shard `to` as a task of its own (it may wait on I/O there) and
    /// returns its result; `None` if that shard is gone.
    pub async fn run_task_on<R, F, Fut>(self: &Rc<Self>, to: usize, f: F) -> Option<R>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = R> + 'static,
    {
        if to == self.id {
            return Some(f(self.clone()).await);
        }
        let (tx, rx) = futures::channel::oneshot::channel();
        let task: router::TaskJob = Box::new(move |sh: Rc<Shard>| {
            Box::pin(async move {
                let _ = tx.send(f(sh).await);
            })
        });
        self.router.send(to, ShardMsg::Task(task)).await.ok()?;
        rx.await.ok()
    }

    /// Runs `f` on every shard concurrently; results are indexed by shard id.
    pub async fn run_on_all<R, F>(&self, f: F) -> Result<Vec<R>, ShardGone>
    where
        R: Send + 'static,
        F: Fn(&Shard) -> R + Send + Clone + 'static,
    {
        let n = self.nshards();
        let mut futs = Vec::with_capacity(n);
        for to in 0..n {
            let f = f.clone();
            futs.push(self.run_on(to, f));
        }
        futures::future::join_all(futs).await.into_iter().collect()
    }

    /// Whether a keyed command must wait because a transaction holds one of its keys here.
    #[inline]
    pub fn command_blocked(&self, spec: &CommandSpec, args: &[Bytes], db: usize) -> bool {
        let locks = self.locks.borrow();
        if locks.is_idle() {
            return false;
        }
        spec.keys(args).any(|p| locks.blocks(db, &args[p]))
    }

    /// Waits until no transaction holds a key of any of these commands on this shard. Returns
    /// at a moment when they can all run (the caller runs them before its next `.await`).
    pub async fn wait_unlocked<'a>(
        &self,
        db: usize,
        cmds: impl Iterator<Item = (&'a CommandSpec, &'a [Bytes])> + Clone,
    ) {
        loop {
            if !cmds
                .clone()
                .any(|(spec, args)| self.command_blocked(spec, args, db))
            {
                return;
            }
            let rx = self.locks.borrow_mut().wait_release();
            let _ = rx.await;
        }
    }

    /// Prefetch hints for what a peer queued, before it runs: the keys of its one-command
    /// batches (a connection's single command, the usual case without pipelining), together,
    /// so that their cache misses overlap instead of each batch waiting for its own. Batches of
    /// more hint their own keys when they run (`execute_batch`). Changes nothing.
    pub fn prefetch_queued(&self, queued: &[router::ShardMsg]) {
        let singles = || {
            queued.iter().filter_map(|m| match m {
                router::ShardMsg::Batch(b) if b.cmds.len() == 1 => Some(b),
                _ => None,
            })
        };
        let Some(db) = singles().next().map(|b| b.db) else {
            return;
        };
        if singles().nth(1).is_none() {
            return;
        }
        let st = self.state.borrow();
        if let Some(d) = st.dbs.get(db) {
            d.prefetch_batch(singles().filter(|b| b.db == db).map(|b| {
                let (idx, args) = &b.cmds[0];
                (commands::spec(*idx), &args[..])
            }));
        }
    }

    /// Runs a batch that arrived from another shard: now, or once the keys it names are no
    /// longer held by a transaction (in a task of its own, so that the transaction's own
    /// messages behind it in the channel are not held up).
    pub fn receive_batch(sh: &Rc<Shard>, batch: router::Batch) {
        let blocked = batch
            .cmds
            .iter()
            .any(|(idx, args)| sh.command_blocked(commands::spec(*idx), args, batch.db));
        if !blocked {
            return sh.execute_batch(batch);
        }
        let sh = sh.clone();
        glommio::spawn_local(async move {
            let db = batch.db;
            sh.wait_unlocked(
                db,
                batch
                    .cmds
                    .iter()
                    .map(|(idx, args)| (commands::spec(*idx), &args[..])),
            )
            .await;
            sh.execute_batch(batch);
        })
        .detach();
    }

    /// Executes a batch of keyed commands sent by another shard's connection. When the AOF
    /// makes replies wait for the log, the batch is answered only once what it logged is written
    /// (durable under `always`): the connection then needs no second round trip to ask.
    pub fn execute_batch(self: &Rc<Self>, batch: router::Batch) {
        let router::Batch {
            db,
            resp3,
            mut cmds,
            origin,
            reply: tx,
            room: mut reply,
        } = batch;
        let BatchReply { buf, ends, .. } = &mut *reply;
        buf.reserve(64 * cmds.len());
        ends.reserve(cmds.len());
        let logged_before = self.state.borrow().aof.as_ref().map(|l| l.appended());
        {
            let mut st = self.state.borrow_mut();
            st.stats.cross_shard_batches += 1;
            st.stats.cross_shard_commands += cmds.len() as u64;
            st.prefetch_cmds(db, &cmds);
            for (idx, args) in &cmds {
                execute_keyed(
                    &mut st,
                    &self.globals,
                    commands::spec(*idx),
                    args,
                    db,
                    resp3,
                    &origin,
                    buf,
                );
                ends.push(buf.len());
            }
        }
        // The arguments are dropped here, on the thread that used them; the vectors go back,
        // emptied, for the connection's next commands.
        for (_, args) in cmds.iter_mut() {
            if args.capacity() > crate::protocol::parse::SPARE_ARGS_MAX_LEN {
                *args = Vec::new();
            } else {
                args.clear();
            }
        }
        reply.cmds = cmds;
        let logged = self.state.borrow().aof.as_ref().map(|l| l.appended()) != logged_before;
        if logged && crate::persistence::aof::sync_replies(self) {
            let sh = self.clone();
            glommio::spawn_local(async move {
                crate::persistence::aof::wait_durable_local(&sh).await;
                let _ = tx.send(reply);
            })
            .detach();
        } else {
            let _ = tx.send(reply);
        }
    }
}

/// Executes one keyed (shard-local) command against `st`, writing its reply to `out`, with
/// command statistics, the slow log, and panic containment: a bug in a command handler costs
/// that command an error reply, never the shard.
#[allow(clippy::too_many_arguments)]
pub fn execute_keyed(
    st: &mut ShardState,
    globals: &Globals,
    spec: &CommandSpec,
    args: &[Bytes],
    db: usize,
    resp3: bool,
    who: &ClientLabel,
    out: &mut BytesMut,
) {
    // A connection-level command reaches a shard only through its keyed body, and its
    // connection counts its statistics.
    let (handler, counted) = match (spec.exec, spec.keyed_body) {
        (commands::Exec::Shard(h), _) => (h, true),
        (commands::Exec::Conn(_), Some(h)) => (h, false),
        (commands::Exec::Conn(_), None) => {
            crate::protocol::Reply::new(out, resp3).error("ERR internal error: misrouted command");
            return;
        }
    };
    let start_len = out.len();
    // One wall-clock read gives both the command's notion of "now" (expiry) and the start of
    // its timing, like Redis's per-call `ustime()`.
    let started_us = st.clock.now_us();
    st.clock_ms = started_us / 1000;
    let now_ms = if st.loading { 0 } else { st.clock_ms };
    // WATCH needs to see in-place modifications too (HSET on an existing hash...): snapshot
    // the watched keys this write names and compare afterwards. Costs nothing unless the
    // database has watched keys.
    memory::next_command();
    // Redis's processCommand: with a memory limit, evict before every command, and refuse the
    // commands that may grow memory when nothing more can be freed. (Inside a multi-shard unit
    // the coordinator's keyspace also holds copies of foreign keys; evicting one of those is
    // written back as its deletion, i.e. an eviction of that key on its owner.)
    if st.mem.limit > 0
        && memory::perform_evictions(st, now_ms) == memory::Evict::Fail
        && spec.has(commands::flags::DENYOOM)
    {
        crate::protocol::Reply::new(out, resp3).error(memory::ERR_OOM);
        st.cmd_stats[commands::stat_index(spec, args)].rejected_calls += 1;
        st.stats.error_replied(memory::ERR_OOM.as_bytes());
        return;
    }
    let is_write = spec.has(commands::flags::WRITE);
    if is_write
        && globals
            .snapshot
            .last_failed
            .load(std::sync::atomic::Ordering::Relaxed)
        && crate::persistence::snapshot::refuses_writes(&st.config)
    {
        crate::protocol::Reply::new(out, resp3).error(crate::persistence::snapshot::ERR_MISCONF);
        st.cmd_stats[commands::stat_index(spec, args)].rejected_calls += 1;
        st.stats
            .error_replied(crate::persistence::snapshot::ERR_MISCONF.as_bytes());
        return;
    }
    if is_write && st.aof.is_some() {
        if let Some(e) = crate::persistence::aof::write_refused(st) {
            crate::protocol::Reply::new(out, resp3).error(&e);
            st.cmd_stats[commands::stat_index(spec, args)].rejected_calls += 1;
            st.stats.error_replied(e.as_bytes());
            return;
        }
    }
    // In a multi-shard unit every key is looked at while anyone WATCHes anything: who watches
    // another shard's key is known only on that shard.
    let in_copies = st.unit_signalled.is_some()
        && globals
            .watched_keys
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0;
    let watched_before = if is_write
        && (st.dbs[db].has_watches() || in_copies)
        && !spec.has(commands::flags::OWN_SIGNALS)
    {
        watched_snapshot(&st.dbs[db], spec, args, in_copies)
    } else {
        Vec::new()
    };
    st.dirty = None;
    crate::pubsub::tracking::set_current(who.track.id);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut ctx = commands::Ctx {
            st: &mut *st,
            db,
            now_ms,
            globals,
        };
        let mut reply = crate::protocol::Reply::new(out, resp3);
        handler(&mut ctx, args, &mut reply);
    }));
    let usec = st.clock.now_us().saturating_sub(started_us);
    if is_write {
        // Values changed in place (HSET, APPEND, LPUSH...) update their memory charge.
        let d = &mut st.dbs[db];
        for p in spec.keys(args) {
            d.recharge(&args[p]);
        }
    }
    let counted_changes = st.dirty.take();
    // Only writes rewrite what they log (`Ctx::propagate_as`): reads pay nothing for it.
    let rewritten = if is_write { st.rewritten.take() } else { None };
    let changes = counted_changes.unwrap_or(1);
    let succeeded = result.is_ok() && out.get(start_len) != Some(&b'-');
    let wrote = is_write && changes > 0 && succeeded;
    // A read-only command that counts changes itself (PFCOUNT writing its cached cardinality
    // back, Redis's `server.dirty++` in a read command) is counted and logged like a write;
    // it invalidates nothing more for client-side caching than what it signalled itself.
    let logged = wrote || (succeeded && counted_changes.is_some_and(|n| n > 0));
    if logged {
        globals.snapshot.note_changes(st.id, changes);
        if st.aof.is_some() {
            crate::persistence::aof::record(st, spec, args, rewritten, db, &out[start_len..]);
        }
    }
    // Blocked clients wait for writes to their keys. Served after the write is logged: what
    // serving them logs (a pop, XREADGROUP's claims of the entries XADD added) replays after
    // it, as Redis propagates it.
    if !st.blocked.is_empty() && spec.has(commands::flags::WRITE) {
        for p in spec.keys(args) {
            if !wakes_stream_readers(&st.dbs[db], spec, args, p) {
                continue;
            }
            st.blocked.touched(db, &args[p]);
        }
        if !st.in_unit && st.blocked.has_ready() {
            blocking::serve_ready(st, globals, now_ms);
        }
    }
    if !watched_before.is_empty() {
        let signalled = touch_changed_watched(&st.dbs[db], spec, args, watched_before, wrote);
        if let Some(all) = st.unit_signalled.as_mut() {
            all.extend(signalled.into_iter().map(|k| (db, k)));
        }
    }
    let d = &st.dbs[db];
    crate::pubsub::tracking::after_command(spec, args, who.track, wrote, |k| d.peek(k).is_some());
    if result.is_err() {
        out.truncate(start_len);
        tracing::error!(
            command = spec.name,
            "command handler panicked; shard keeps serving"
        );
        crate::protocol::Reply::new(out, resp3).error(&format!(
            "ERR internal error while executing '{}'",
            spec.name
        ));
    }
    // Like Redis, replaying the AOF populates no statistics and no slow log.
    if !counted || st.split_part || st.loading {
        return;
    }
    let failed = out.len() > start_len && out[start_len] == b'-';
    if !st.uncounted {
        st.count_call(commands::stat_index(spec, args), usec, failed);
        if failed {
            st.stats.error_replied(&out[start_len..]);
        }
    }
    if !st.in_split {
        st.maybe_slowlog(globals, args, usec, who);
    }
}

/// A watched key before a write names it: its value and deadline when they are cheap to copy,
/// or only its argument position when the value is big.
pub(crate) enum WatchedBefore {
    /// The value and deadline, and the key's argument position.
    Copied(Option<(crate::types::Value, u64)>, usize),
    /// Copying a big value on every write while someone watches it made each write as slow as
    /// the copy (a ZADD to a watched sorted set of a million members took 124 ms).
    Big(usize),
}

/// Values charged at most this many bytes are copied before a write (see [`WatchedBefore`]).
const WATCH_COPY_MAX: u32 = 64 * 1024;

/// Keys a command names, with what they held before it ran.
pub(crate) type WatchSnapshot = Vec<(Bytes, WatchedBefore)>;

/// The watched keys a command names (every key it names with `all`), before it runs.
pub(crate) fn watched_snapshot(
    d: &Db,
    spec: &CommandSpec,
    args: &[Bytes],
    all: bool,
) -> WatchSnapshot {
    spec.keys(args)
        .filter(|&p| all || d.is_watched(&args[p]))
        .map(|p| {
            let key = args[p].clone();
            let before = match d.peek(&key) {
                Some((e, _)) if e.charged > WATCH_COPY_MAX => WatchedBefore::Big(p),
                found => WatchedBefore::Copied(found.map(|(e, at)| (e.value.clone(), at)), p),
            };
            (key, before)
        })
        .collect()
}

/// Marks the watched keys a write changed (Redis's `signalModifiedKey`). Redis signals a key
/// whenever a command changed something (its dirty count, `wrote`) through that key, even when
/// the value came out the same (HSET of the same value, INCRBY 0, LSET of the same element):
/// so does Tessera for a command that names one key, when its key spec lets it write there,
/// and for a big value whatever the command. For a command over several keys it does for a
/// destination the command replaces whole (`replaces_key_at`); its other keys' copied values are
/// compared with what is there now: its dirty count does not say which of those it changed (DEL
/// of a present key and a missing one, SMOVE of a member the destination already has).
pub(crate) fn touch_changed_watched(
    d: &Db,
    spec: &CommandSpec,
    args: &[Bytes],
    snapshot: WatchSnapshot,
    wrote: bool,
) -> Vec<Bytes> {
    let mut signalled = Vec::new();
    let one_key = || {
        let mut keys = spec.keys(args).map(|p| &args[p]);
        let first = keys.next();
        keys.all(|k| Some(k) == first)
    };
    for (key, before) in snapshot {
        let changed = match before {
            WatchedBefore::Copied(before, p) => {
                let after = d.peek(&key).map(|(e, at)| (&e.value, at));
                after != before.as_ref().map(|(v, t)| (v, *t))
                    || (wrote
                        && ((one_key() && writes_key_at(spec, args, p))
                            || replaces_key_at(spec, args, p)))
            }
            WatchedBefore::Big(p) => wrote && writes_key_at(spec, args, p),
        };
        if changed {
            d.touch(&key);
            signalled.push(key);
        }
    }
    signalled
}

/// Whether a write to the key at argument `p` may serve the clients blocked on it. Always, unless
/// the key holds a stream afterwards: Redis wakes a stream's readers only when entries were
/// added (XADD), a group was destroyed (its readers end with NOGROUP), or the key was replaced;
/// other writes to a stream (XSETID, XDEL, XTRIM, the group commands, EXPIRE...) wake no one.
/// Otherwise, once XSETID moved the last ID past a waiting XREAD's ID, any such write would
/// serve it an empty list.
fn wakes_stream_readers(d: &Db, spec: &CommandSpec, args: &[Bytes], p: usize) -> bool {
    let holds_stream = d
        .keys
        .get(&args[p][..])
        .is_some_and(|e| matches!(e.value, crate::types::Value::Stream(_)));
    if !holds_stream {
        return true;
    }
    match spec.name {
        "xadd" => true,
        "xgroup" => args
            .get(1)
            .is_some_and(|sub| sub.eq_ignore_ascii_case(b"destroy")),
        _ if spec.name.starts_with('x') => false,
        _ => replaces_key_at(spec, args, p),
    }
}

/// Whether a command that changed something always wrote the key at argument `p`: a destination
/// its key spec says it overwrites (the S/Z*STORE commands, COPY, RENAME, BITOP, SORT ... STORE,
/// GEOSEARCHSTORE), or the destination of SINTERSTORE and PFMERGE, which Redis 7.0's key specs
/// call RW though it replaces (or, for PFMERGE, signals) it on every call that changes anything.
fn replaces_key_at(spec: &CommandSpec, args: &[Bytes], p: usize) -> bool {
    if matches!(spec.name, "sinterstore" | "pfmerge") {
        return p == 1;
    }
    let sub = spec.subcommand(args).ok().flatten();
    commands::server_family::keys_and_flags(spec, sub, args, &[p])
        .into_iter()
        .any(|(k, flags)| k == p && flags.contains(&"OW"))
}

/// Whether the key at argument `p` is one the command may write, by its key spec's flags (a key
/// found without a spec counts as written).
fn writes_key_at(spec: &CommandSpec, args: &[Bytes], p: usize) -> bool {
    let sub = spec.subcommand(args).ok().flatten();
    commands::server_family::keys_and_flags(spec, sub, args, &[p])
        .into_iter()
        .filter(|(k, _)| *k == p)
        .all(|(_, flags)| {
            flags.is_empty()
                || flags
                    .iter()
                    .any(|f| matches!(*f, "RW" | "OW" | "RM" | "insert" | "delete" | "update"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{cmd, Exec, NO_KEYS};

    fn boom(_: &mut commands::Ctx, _: &[Bytes], r: &mut crate::protocol::Reply) {
        r.bulk(b"partial reply that must not reach the client");
        panic!("handler bug");
    }

    #[test]
    fn a_panicking_handler_costs_one_error_reply_not_the_shard() {
        let spec = cmd(
            "boom",
            1,
            0,
            NO_KEYS,
            "test",
            "0",
            "O(1)",
            "panics",
            Exec::Shard(boom),
        );
        let globals = Globals::new(0, 1, String::new());
        let mut st = ShardState::new(0, Config::default());
        let mut out = BytesMut::new();
        let who = ClientLabel::default();
        let prev_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        execute_keyed(
            &mut st,
            &globals,
            &spec,
            &[Bytes::from("boom")],
            0,
            false,
            &who,
            &mut out,
        );
        std::panic::set_hook(prev_hook);
        assert_eq!(&out[..], b"-ERR internal error while executing 'boom'\r\n");
        assert_eq!(st.stats.total_error_replies, 1);
        // The shard state is still usable afterwards.
        let get = commands::lookup(b"set").unwrap();
        out.clear();
        let args = [Bytes::from("set"), Bytes::from("k"), Bytes::from("v")];
        execute_keyed(&mut st, &globals, get, &args, 0, false, &who, &mut out);
        assert_eq!(&out[..], b"+OK\r\n");
    }
}

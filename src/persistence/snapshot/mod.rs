//! Point-in-time snapshots of the whole keyspace without fork: SAVE, BGSAVE, `save` rules and the
//! final save at shutdown. One RDB stream per shard plus a manifest (`manifest` has the files).
//!
//! # How a snapshot is cut and written
//! 1. Cut: the coordinator takes every shard whole (`tx::lock_all_shards`, ordered like any
//!    transaction over all shards, so a multi-shard unit is wholly before or wholly after it),
//!    and on each shard flips every database's snapshot bit (`DbSnapshot::begin`) and installs
//!    this thread's `Sink`. Then the locks go. The cut costs one round of messages; no data is
//!    copied.
//! 2. Serialize while serving: each shard's writer task walks its databases with the keyspace's
//!    SCAN cursor, a bounded number of buckets per step, yielding between steps. An entry whose
//!    mark differs from its database's bit has not been saved: the walk saves it and sets the
//!    mark. Entries created after the cut get the new bit when inserted, so they are never
//!    saved.
//! 3. Copy-on-write per entry: every change to an entry (`shard::db::Db`: lookup for writing,
//!    replacement, removal, expiry, deadline change) first saves the entry if its mark says it
//!    has not been saved. A flushed database's table goes to the snapshot whole
//!    (`DbSnapshot::detached`), which saves and frees it as it goes. So the stream holds exactly
//!    the entries of the cut, each once, and memory grows only by the serialized form of the
//!    entries written during the snapshot.
//! 4. The shard files are made durable (fdatasync), then the manifest naming them replaces the
//!    old one atomically; only then do the old files go.
//!
//! Invariant when no snapshot runs: every entry's mark equals its database's bit (a walk
//! always finishes, even after a write error, so marks never go stale).
//!
//! Must never: save an entry twice or save one that did not exist at the cut, block a serving
//! shard on disk (file I/O is glommio's), or replace the manifest before every shard file it
//! names is durable.

pub mod load;
pub mod manifest;

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;

use crate::config::Config;
use crate::persistence::rdb::file::{AccessMeta, RdbWriter, WriteOptions};
use crate::shard::db::{deadline_of, Db};
use crate::shard::Shard;
use crate::types::dict::{Dict, ScanPrefetch};
use crate::types::key::Key;
use crate::types::Entry;
use manifest::{Compression, ShardFile, SnapshotManifest};

/// SCAN buckets one step of the walk covers at least before the writer task yields.
const STEP_BUCKETS: usize = 512;
/// A step covers at least 1/2^`STEP_SHIFT` of the buckets being walked. The cursor keeps the
/// fraction of the table already covered when the table grows, so a walk ends within about
/// 2^`STEP_SHIFT` steps however fast writers add keys.
const STEP_SHIFT: u32 = 12;

/// The buckets one step covers: at least `min` and a fixed fraction of the active tables.
fn walk_budget(dbs: &[Db], min: usize, shift: u32) -> usize {
    let buckets: usize = dbs
        .iter()
        .filter(|d| d.snap.active)
        .map(|d| d.keys.bucket_count())
        .sum();
    min.max(buckets >> shift)
}
/// How many cursors ahead of the walk the keyspace is asked to prefetch values, chain heads
/// and buckets (see `Dict::prefetch_scan`).
const WALK_AHEAD: [u32; 3] = [4, 8, 16];
/// Serialized bytes gathered before they go to the file.
const FLUSH_BYTES: usize = 64 << 10;

/// Redis's reply to writes after a failed snapshot under `stop-writes-on-bgsave-error yes`.
pub const ERR_MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// The walk engine, held while a snapshot or an AOF rewrite's RDB base is cut and written.
pub(crate) struct WalkClaim<'a>(&'a SnapGlobal);

impl Drop for WalkClaim<'_> {
    fn drop(&mut self) {
        self.0.walk_busy.store(false, Ordering::Release);
    }
}

/// Waits until the walk engine is free and claims it.
pub(crate) async fn claim_walk(g: &SnapGlobal) -> WalkClaim<'_> {
    while g.walk_busy.swap(true, Ordering::AcqRel) {
        glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
    }
    WalkClaim(g)
}

/// Whether a write is refused after a failed snapshot (Redis's `stop-writes-on-bgsave-error`):
/// only called once `SnapGlobal::last_failed` is set.
#[cold]
pub fn refuses_writes(cfg: &Config) -> bool {
    let s = Settings::from_config(cfg);
    s.stop_writes_on_error && !s.rules.is_empty()
}

/// A database's part in the running snapshot. Lives in `Db` and moves with its data on SWAPDB.
#[derive(Default)]
pub struct DbSnapshot {
    /// A snapshot is walking this database.
    pub active: bool,
    /// Entries whose mark equals this bit are saved (or were created after the cut).
    pub bit: bool,
    /// The database number this data had at the cut (what the stream calls it).
    pub db_at_cut: usize,
    cursor: u64,
    scanned: bool,
    /// Tables flushed during the snapshot, with their expiry indexes (where the deadlines
    /// are), still to be saved (and freed).
    pub detached: Vec<(Dict<Entry, Key>, Dict<u64, Key>)>,
}

impl DbSnapshot {
    fn begin(&mut self, index: usize) {
        self.bit = !self.bit;
        self.active = true;
        self.db_at_cut = index;
        self.cursor = 0;
        self.scanned = false;
    }

    /// A flush during the walk: the whole table goes to the snapshot; what replaces it holds
    /// only entries newer than the cut, so the walk has nothing more to scan.
    pub fn detach(&mut self, mut table: Dict<Entry, Key>, expires: Dict<u64, Key>) {
        table.defer_growth(false);
        self.detached.push((table, expires));
        self.scanned = true;
    }
}

/// Access metadata saved with each entry, after the eviction policy (as Redis: IDLE under LRU
/// policies, FREQ under LFU ones, nothing otherwise).
#[derive(Clone, Copy)]
enum MetaMode {
    None,
    Idle,
    Freq { decay: u32 },
}

/// This shard's running snapshot stream.
struct Sink {
    rdb: RdbWriter<Vec<u8>>,
    cur_db: Option<usize>,
    meta: MetaMode,
    cut_ms: u64,
    /// After a write error: entries are still marked, but nothing is kept.
    discard: bool,
    /// Bytes saved ahead of the walk because an entry was about to change.
    cow_bytes: u64,
    keys: u64,
}

thread_local! {
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

impl Sink {
    /// Bytes of the stream gathered so far (an in-memory sink cannot fail).
    fn stream_len(&mut self) -> usize {
        self.rdb.get_mut().map_or(0, |out| out.len())
    }

    fn write(&mut self, db: usize, key: &[u8], e: &Entry, expire_at: u64) {
        if self.discard || (expire_at != 0 && expire_at <= self.cut_ms) {
            return;
        }
        if self.cur_db != Some(db) {
            let _ = self.rdb.switch_db(db as u64);
            self.cur_db = Some(db);
        }
        let meta = match self.meta {
            MetaMode::None => AccessMeta::None,
            MetaMode::Idle => {
                AccessMeta::Idle(crate::shard::memory::lru_idle_ms(e.access(), self.cut_ms) / 1000)
            }
            MetaMode::Freq { decay } => AccessMeta::Freq(
                crate::shard::memory::lfu_decr_and_return(e.access(), self.cut_ms, decay).min(255)
                    as u8,
            ),
        };
        let _ = self.rdb.write_entry(key, &e.value, expire_at, meta);
        self.keys += 1;
    }
}

/// Saves `e` (about to change) with its deadline `expire_at` (0 = none) into this shard's
/// running snapshot: the copy-on-write hook of `Db`. The caller marks the entry.
pub fn save_entry(db: usize, key: &[u8], e: &Entry, expire_at: u64) {
    SINK.with(|s| {
        if let Some(s) = s.borrow_mut().as_mut() {
            let before = s.stream_len();
            s.write(db, key, e, expire_at);
            s.cow_bytes += s.stream_len().saturating_sub(before) as u64;
        }
    });
}

/// One step of the walk over a database: at most `budget` buckets (flushed tables count their
/// entries). Returns true once the database is done (and no longer active).
fn step_db(d: &mut Db, budget: &mut usize, sink: &mut Sink) -> bool {
    if !d.snap.active {
        return true;
    }
    let (bit, db) = (d.snap.bit, d.snap.db_at_cut);
    let mut save = |k: &Key, e: &mut Entry, expire_at: u64| {
        if e.snap_mark() != bit {
            sink.write(db, k, e, expire_at);
            e.set_snap_mark(bit);
        }
    };
    // Cursors 4, 8 and 16 steps ahead of the walk, whose values, chain heads and buckets are
    // prefetched (see `Dict::prefetch_scan`); each stage's lines are in cache by the time the
    // next stage reads them. 0 once past the end.
    let mut ahead = [0u64; 3];
    if !d.snap.scanned {
        let mut c = d.snap.cursor;
        for i in 1..=WALK_AHEAD[2] {
            c = d.keys.scan_next(c);
            for (a, &n) in ahead.iter_mut().zip(WALK_AHEAD.iter()) {
                if n == i {
                    *a = c;
                }
            }
            if c == 0 {
                break;
            }
        }
    }
    let hint = |e: &Entry| e.value.prefetch_heap();
    let stages = [
        ScanPrefetch::Value(&hint),
        ScanPrefetch::Chain,
        ScanPrefetch::Bucket,
    ];
    while !d.snap.scanned && *budget > 0 {
        for (a, stage) in ahead.iter_mut().zip(stages) {
            if *a != 0 {
                d.keys.prefetch_scan(*a, stage);
                *a = d.keys.scan_next(*a);
            }
        }
        let expires = &d.expires;
        let next = d
            .keys
            .scan_mut(d.snap.cursor, |k, e| save(k, e, deadline_of(expires, k, e)));
        *budget -= 1;
        d.snap.cursor = next;
        if next == 0 {
            d.snap.scanned = true;
        }
    }
    while *budget > 0 {
        let Some((t, expires)) = d.snap.detached.last_mut() else {
            break;
        };
        let n = t.drain_some(*budget, |k, mut e| {
            let at = if e.has_deadline() {
                expires.remove(&k).map_or(0, |(_, at)| at)
            } else {
                0
            };
            save(&k, &mut e, at)
        });
        *budget = budget.saturating_sub(n.max(1));
        if t.is_empty() {
            d.snap.detached.pop();
        }
    }
    if d.snap.scanned && d.snap.detached.is_empty() {
        d.snap.active = false;
        d.keys.defer_growth(false);
        return true;
    }
    false
}

/// Process-wide snapshot state (INFO persistence, LASTSAVE, the save rules).
pub struct SnapGlobal {
    pub in_progress: AtomicBool,
    pub last_ok: AtomicBool,
    pub last_time_sec: AtomicI64,
    pub started_ms: AtomicU64,
    pub saves: AtomicU64,
    pub last_cow_bytes: AtomicU64,
    /// BGSAVE SCHEDULE asked for one while another ran.
    pub scheduled: AtomicBool,
    /// When the last attempt started (failed snapshots are retried after 5 s by the rules).
    pub last_try_ms: AtomicU64,
    /// The last snapshot failed: writes are refused while `stop-writes-on-bgsave-error yes`
    /// and `save` rules are configured (`refuses_writes`).
    pub last_failed: AtomicBool,
    pub last_error: Mutex<String>,
    /// The walk engine is in use (a snapshot or an AOF rewrite's RDB base): one at a time, since
    /// each shard has one sink.
    walk_busy: AtomicBool,
    /// The sequence number of the newest snapshot (file names).
    pub seq: AtomicU64,
    /// Keys loaded and skipped as expired by the last load at startup.
    pub loaded_keys: AtomicU64,
    pub loaded_expired: AtomicU64,
    /// What the shutdown sequence saves (`ShutdownSave`, set by SHUTDOWN's options).
    shutdown_save: std::sync::atomic::AtomicU8,
    /// Shards that closed their clients in the shutdown sequence.
    closed_shards: std::sync::atomic::AtomicUsize,
    /// The final save is over (shards keep their message loops until then).
    final_done: AtomicBool,
    /// Changes per shard since the last successful snapshot (Redis's `dirty`), one cache line
    /// each: shards bump their own on every write.
    dirty: Vec<PaddedCounter>,
}

/// Whether the shutdown sequence saves a snapshot: SHUTDOWN SAVE, SHUTDOWN NOSAVE, or (plain
/// SHUTDOWN, SIGTERM, SIGINT) when `save` rules are configured, as Redis does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownSave {
    IfRules = 0,
    Yes = 1,
    No = 2,
}

#[repr(align(64))]
#[derive(Default)]
struct PaddedCounter(AtomicU64);

impl SnapGlobal {
    pub fn new(nshards: usize, now_ms: u64) -> SnapGlobal {
        let _ = now_ms;
        SnapGlobal {
            in_progress: AtomicBool::new(false),
            last_ok: AtomicBool::new(true),
            last_time_sec: AtomicI64::new(-1),
            started_ms: AtomicU64::new(0),
            saves: AtomicU64::new(0),
            last_cow_bytes: AtomicU64::new(0),
            scheduled: AtomicBool::new(false),
            last_try_ms: AtomicU64::new(0),
            last_failed: AtomicBool::new(false),
            last_error: Mutex::new(String::new()),
            walk_busy: AtomicBool::new(false),
            seq: AtomicU64::new(0),
            loaded_keys: AtomicU64::new(0),
            loaded_expired: AtomicU64::new(0),
            shutdown_save: std::sync::atomic::AtomicU8::new(ShutdownSave::IfRules as u8),
            closed_shards: std::sync::atomic::AtomicUsize::new(0),
            final_done: AtomicBool::new(false),
            dirty: (0..nshards).map(|_| PaddedCounter::default()).collect(),
        }
    }

    pub fn set_shutdown_save(&self, mode: ShutdownSave) {
        self.shutdown_save.store(mode as u8, Ordering::Relaxed);
    }

    /// Counts `n` changes made by shard `shard`.
    #[inline]
    pub fn note_changes(&self, shard: usize, n: u64) {
        if let Some(c) = self.dirty.get(shard) {
            c.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Changes since the last successful snapshot, all shards.
    pub fn dirty(&self) -> u64 {
        self.dirty.iter().map(|c| c.0.load(Ordering::Relaxed)).sum()
    }

    /// The snapshot lines of INFO persistence.
    pub fn info(&self, lastsave: u64, now_ms: u64) -> String {
        let running = self.in_progress.load(Ordering::Relaxed);
        let current = if running {
            (now_ms.saturating_sub(self.started_ms.load(Ordering::Relaxed)) / 1000) as i64
        } else {
            -1
        };
        format!(
            "rdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_saves:{}\r\nrdb_last_cow_size:{}\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\n",
            self.dirty(),
            running as u8,
            lastsave,
            if self.last_ok.load(Ordering::Relaxed) { "ok" } else { "err" },
            self.last_time_sec.load(Ordering::Relaxed),
            current,
            self.saves.load(Ordering::Relaxed),
            self.last_cow_bytes.load(Ordering::Relaxed),
            self.loaded_expired.load(Ordering::Relaxed),
            self.loaded_keys.load(Ordering::Relaxed),
        )
    }
}

/// The snapshot directives, read from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub dir: PathBuf,
    pub dbfilename: String,
    pub compression: Compression,
    pub rdbcompression: bool,
    pub rdbchecksum: bool,
    /// `save` rules: (seconds, changes).
    pub rules: Vec<(u64, u64)>,
    pub stop_writes_on_error: bool,
}

impl Settings {
    pub fn from_config(cfg: &Config) -> Settings {
        let words: Vec<u64> = cfg
            .value("save")
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        Settings {
            dir: cfg.dir.clone(),
            dbfilename: cfg.value("dbfilename"),
            compression: Compression::from_name(&cfg.value("snapshot-compression"))
                .unwrap_or(Compression::Zstd),
            rdbcompression: cfg.rdbcompression,
            rdbchecksum: cfg.rdbchecksum,
            rules: words.chunks_exact(2).map(|c| (c[0], c[1])).collect(),
            stop_writes_on_error: cfg.value("stop-writes-on-bgsave-error") != "no",
        }
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join(manifest::manifest_name(&self.dbfilename))
    }
}

/// The write options of a snapshot stream (`aof_base` for an AOF rewrite's preamble).
pub(crate) fn write_options(cfg: &Config, aof_base: bool) -> WriteOptions {
    WriteOptions {
        compress: cfg.rdbcompression,
        checksum: cfg.rdbchecksum,
        ctime: crate::server::globals::unix_ms() / 1000,
        used_mem: 0,
        aof_base,
    }
}

/// The cut on one shard (run while the coordinator holds every shard whole, with the walk
/// claimed): every database starts its walk and this thread's sink opens the stream.
pub(crate) fn begin_shard(sh: &Shard, opts: WriteOptions, functions: &[Bytes]) {
    let mut st = sh.state.borrow_mut();
    let cut_ms = crate::server::globals::unix_ms();
    let policy = st.config.maxmemory_policy;
    let meta = if policy.is_lfu() {
        MetaMode::Freq {
            decay: st.config.lfu_decay_time,
        }
    } else if policy.is_lru() {
        MetaMode::Idle
    } else {
        MetaMode::None
    };
    let mut rdb = RdbWriter::new(Vec::with_capacity(FLUSH_BYTES), opts)
        .expect("writing into memory cannot fail");
    for code in functions {
        let _ = rdb.write_function(code);
    }
    // Each database's size at the cut, up front (entries follow in walk order, switching
    // databases as they come), so that a loader can size its tables once (RESIZEDB).
    for (index, d) in st.dbs.iter().enumerate() {
        if !d.keys.is_empty() {
            let _ = rdb.select_db(index as u64, d.keys.len() as u64, d.expires.len() as u64);
        }
    }
    for d in st.dbs.iter_mut() {
        if d.snap.active {
            // A walk that never finished (its writer died): finish its marking first, or the
            // flip below would take its unsaved entries for saved ones.
            let bit = d.snap.bit;
            let mut cursor = 0;
            loop {
                cursor = d.keys.scan_mut(cursor, |_, e| e.set_snap_mark(bit));
                if cursor == 0 {
                    break;
                }
            }
            d.snap.detached.clear();
        }
        let index = d.index;
        d.snap.begin(index);
        d.keys.defer_growth(true);
    }
    SINK.with(|s| {
        *s.borrow_mut() = Some(Sink {
            rdb,
            cur_db: None,
            meta,
            cut_ms,
            discard: false,
            cow_bytes: 0,
            keys: 0,
        })
    });
}

/// One step on this shard: walks up to `STEP_BUCKETS` buckets, and hands back the bytes due to
/// the file (all of them, with the trailer, once the walk is done).
fn step_shard(sh: &Shard) -> (Vec<u8>, bool) {
    let mut st = sh.state.borrow_mut();
    SINK.with(|s| {
        let mut guard = s.borrow_mut();
        let Some(sink) = guard.as_mut() else {
            return (Vec::new(), true);
        };
        let mut budget = walk_budget(&st.dbs, STEP_BUCKETS, STEP_SHIFT);
        let mut done = true;
        for d in st.dbs.iter_mut() {
            if !step_db(d, &mut budget, sink) {
                done = false;
                break;
            }
        }
        if !done {
            let out = match sink.rdb.get_mut() {
                Ok(out) if out.len() >= FLUSH_BYTES => std::mem::take(out),
                _ => Vec::new(),
            };
            return (out, false);
        }
        let sink = guard.take().expect("checked above");
        (sink.rdb.finish().unwrap_or_default(), true)
    })
}

/// Ends this shard's stream early (nothing more is kept; the walk still marks every entry).
fn discard_shard() {
    SINK.with(|s| {
        if let Some(sink) = s.borrow_mut().as_mut() {
            sink.discard = true;
            if let Ok(out) = sink.rdb.get_mut() {
                out.clear();
            }
        }
    });
}

/// What one shard's writer reports.
pub(crate) struct ShardOutcome {
    pub bytes: u64,
    pub cow_bytes: u64,
}

/// Writes this shard's stream to `path` while serving, then makes it durable. The walk runs in
/// the shard's background task queue (a tenth of the connections' shares) and yields its queue
/// after every step, so clients keep most of the core.
pub(crate) async fn write_shard(
    sh: Rc<Shard>,
    path: PathBuf,
    compression: Compression,
) -> Result<ShardOutcome, String> {
    match sh.background_tq.get() {
        Some(tq) => {
            glommio::spawn_local_into(write_shard_here(sh, path, compression), tq)
                .map_err(|e| format!("cannot start the snapshot writer: {e}"))?
                .await
        }
        None => write_shard_here(sh, path, compression).await,
    }
}

async fn write_shard_here(
    sh: Rc<Shard>,
    path: PathBuf,
    compression: Compression,
) -> Result<ShardOutcome, String> {
    let name = path.display().to_string();
    let mut error: Option<String> = None;
    let file = match glommio::io::BufferedFile::create(&path).await {
        Ok(f) => Some(f),
        Err(e) => {
            error = Some(format!(
                "Failed opening the temp RDB file {} (in server root dir {}) for saving: {}",
                name,
                path.parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                e
            ));
            discard_shard();
            None
        }
    };
    let mut encoder = match compression {
        Compression::Zstd => Some(
            zstd::stream::write::Encoder::new(Vec::new(), 1).map_err(|e| format!("zstd: {e}"))?,
        ),
        Compression::None => None,
    };
    let mut pos = 0u64;
    let mut cow_bytes = 0;
    loop {
        let cow_now = SINK.with(|s| s.borrow().as_ref().map(|k| k.cow_bytes));
        if let Some(c) = cow_now {
            cow_bytes = c;
        }
        let (chunk, done) = step_shard(&sh);
        if error.is_none() && (!chunk.is_empty() || done) {
            let data = match encoder.as_mut() {
                Some(enc) => {
                    let r = enc.write_all(&chunk);
                    match r {
                        Ok(()) if done => encoder
                            .take()
                            .map(|e| e.finish())
                            .transpose()
                            .map(|v| v.unwrap_or_default()),
                        Ok(()) => Ok(std::mem::take(enc.get_mut())),
                        Err(e) => Err(e),
                    }
                }
                None => Ok(chunk),
            };
            let res = match (data, file.as_ref()) {
                (Ok(data), Some(f)) => {
                    let r = crate::persistence::aof::write_all(f, &data, pos).await;
                    pos += data.len() as u64;
                    r
                }
                (Err(e), _) => Err(e),
                (_, None) => Ok(()),
            };
            if let Err(e) = res {
                error = Some(format!("Write error saving DB on disk: {e}"));
                discard_shard();
            }
        }
        if done {
            break;
        }
        // Each step is bounded (a fraction of a millisecond). A timer, not a yield, ends it:
        // the walk becomes idle for a moment, so the executor polls its rings and the clients
        // whose requests arrived run before the next step (a yield alone keeps the walk
        // runnable, and completions would wait for the executor's preemption timer).
        glommio::timer::sleep(std::time::Duration::from_micros(20)).await;
    }
    if let Some(f) = file {
        if error.is_none() {
            if let Err(e) = f.fdatasync().await {
                error = Some(format!("Write error saving DB on disk: {e}"));
            }
        }
        let _ = f.close().await;
    }
    match error {
        Some(e) => {
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
        None => Ok(ShardOutcome {
            bytes: pos,
            cow_bytes,
        }),
    }
}

/// Writes `data` to `dir/name` atomically: temp file, fdatasync, rename, directory fsync.
pub async fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<(), String> {
    let tmp = dir.join(format!("temp-{}-{}", std::process::id(), name));
    let e = |e: glommio::GlommioError<()>| format!("cannot write {}: {}", name, e);
    let mut f = glommio::io::BufferedFile::create(&tmp).await.map_err(e)?;
    if let Err(x) = crate::persistence::aof::write_all(&f, data, 0).await {
        let _ = f.close().await;
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {}", name, x));
    }
    f.fdatasync().await.map_err(e)?;
    f.rename(dir.join(name)).await.map_err(e)?;
    f.close().await.map_err(e)?;
    let d = glommio::io::Directory::open(dir).await.map_err(e)?;
    d.sync().await.map_err(e)?;
    let _ = d.close().await;
    Ok(())
}

/// The error of a snapshot asked for while one runs.
pub const ERR_IN_PROGRESS: &str = "Background save already in progress";

/// Claims the right to run a snapshot (false if one runs). `run_started` must follow.
pub fn try_start(sh: &Shard) -> bool {
    !sh.globals.snapshot.in_progress.swap(true, Ordering::AcqRel)
}

/// Takes a snapshot of every shard and makes it the current one (SAVE, BGSAVE, the save rules,
/// shutdown). Errors if one is already running.
pub async fn snapshot_all(sh: &Rc<Shard>) -> Result<(), String> {
    if !try_start(sh) {
        return Err(ERR_IN_PROGRESS.into());
    }
    run_started(sh).await
}

/// Waits until this caller may run a snapshot (as `try_start` claims it). For a caller that
/// will hold every shard itself (DEBUG RELOAD): it claims before taking them, so that a
/// snapshot already running can still take its own cut and finish.
pub async fn claim(sh: &Shard) {
    while !try_start(sh) {
        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Gives a claim back without running a snapshot.
pub fn release_claim(sh: &Shard) {
    sh.globals
        .snapshot
        .in_progress
        .store(false, Ordering::Release);
}

/// Runs the snapshot `claim` claimed, with its cut taken while the caller holds every shard
/// whole (and keeps holding them), and releases the claim.
pub async fn run_claimed_under_caller_locks(sh: &Rc<Shard>) -> Result<(), String> {
    run_claimed(sh, true).await
}

/// Runs the snapshot `try_start` claimed, and releases the claim.
pub async fn run_started(sh: &Rc<Shard>) -> Result<(), String> {
    run_claimed(sh, false).await
}

/// `run_started`; with `caller_holds`, the cut is taken under the caller's hold on every shard
/// (kept after it) instead of locks of its own.
async fn run_claimed(sh: &Rc<Shard>, caller_holds: bool) -> Result<(), String> {
    let g = &sh.globals.snapshot;
    let started = Instant::now();
    let now = crate::server::globals::unix_ms();
    g.started_ms.store(now, Ordering::Relaxed);
    g.last_try_ms.store(now, Ordering::Relaxed);
    let result = snapshot_inner(sh, caller_holds).await;
    g.last_time_sec
        .store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
    g.saves.fetch_add(1, Ordering::Relaxed);
    match &result {
        Ok(()) => {
            g.last_ok.store(true, Ordering::Relaxed);
            g.last_failed.store(false, Ordering::Relaxed);
            tracing::info!("DB saved on disk");
        }
        Err(e) => {
            g.last_ok.store(false, Ordering::Relaxed);
            g.last_failed.store(true, Ordering::Relaxed);
            *g.last_error.lock().unwrap_or_else(|x| x.into_inner()) = e.clone();
            tracing::warn!("Background saving error: {}", e);
        }
    }
    g.in_progress.store(false, Ordering::Release);
    result
}

async fn snapshot_inner(sh: &Rc<Shard>, caller_holds: bool) -> Result<(), String> {
    let g = &sh.globals.snapshot;
    let settings = Settings::from_config(&sh.state.borrow().config);
    let old = SnapshotManifest::read(&settings.manifest_path()).unwrap_or(None);
    let old_seq = old
        .as_ref()
        .map(|m| {
            m.files
                .iter()
                .map(|f| manifest::seq_of(&f.name))
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    let seq = g.seq.load(Ordering::Relaxed).max(old_seq) + 1;
    g.seq.store(seq, Ordering::Relaxed);
    let _walk = claim_walk(g).await;
    let functions = crate::scripting::functions::library_codes(&sh.globals.scripting);
    // The cut, ordered like a transaction over every shard.
    let own_locks = if caller_holds {
        None
    } else {
        Some(
            crate::tx::lock_all_shards(sh)
                .await
                .map_err(|e| e.to_string())?,
        )
    };
    let mut dirty_at_cut = Vec::new();
    for s in 0..sh.nshards() {
        let mut opts = write_options(&sh.state.borrow().config, false);
        // zstd compresses the whole stream better than LZF does value by value, and LZF would
        // cost the shard CPU for nothing.
        opts.compress &= settings.compression == Compression::None;
        let functions = if s == 0 {
            functions.clone()
        } else {
            Vec::new()
        };
        let r = sh
            .run_on(s, move |owner| {
                begin_shard(owner, opts, &functions);
                owner.globals.snapshot.dirty[owner.id]
                    .0
                    .load(Ordering::Relaxed)
            })
            .await;
        match r {
            Ok(d) => dirty_at_cut.push(d),
            Err(_) => {
                if let Some(h) = own_locks {
                    h.release_all().await;
                }
                return Err("a shard is gone".into());
            }
        }
    }
    if let Some(h) = own_locks {
        h.release_all().await;
    }
    let ctime = crate::server::globals::unix_ms() / 1000;
    let mut futs = Vec::new();
    let mut files = Vec::new();
    for s in 0..sh.nshards() {
        let name = manifest::shard_file_name(&settings.dbfilename, s, seq, settings.compression);
        let path = settings.dir.join(&name);
        files.push(ShardFile { name, shard: s });
        let c = settings.compression;
        futs.push(sh.run_task_on(s, move |owner| write_shard(owner, path, c)));
    }
    let outcomes = futures::future::join_all(futs).await;
    let mut result = Ok(());
    let mut cow = 0;
    for o in outcomes {
        match o {
            Some(Ok(o)) => {
                cow += o.cow_bytes;
                let _ = o.bytes;
            }
            Some(Err(e)) => result = Err(e),
            None => result = Err("a shard is gone".to_string()),
        }
    }
    let m = SnapshotManifest {
        shards: sh.nshards(),
        compression: settings.compression,
        ctime,
        files,
    };
    if result.is_ok() {
        result = write_atomic(
            &settings.dir,
            &manifest::manifest_name(&settings.dbfilename),
            m.format().as_bytes(),
        )
        .await;
    }
    if result.is_err() {
        for f in &m.files {
            let _ = std::fs::remove_file(settings.dir.join(&f.name));
        }
        return result;
    }
    if let Some(old) = old {
        for f in &old.files {
            if !m.files.iter().any(|n| n.name == f.name) {
                let _ = std::fs::remove_file(settings.dir.join(&f.name));
            }
        }
    }
    for (s, d) in dirty_at_cut.into_iter().enumerate() {
        g.dirty[s].0.fetch_sub(
            d.min(g.dirty[s].0.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
    }
    g.last_cow_bytes.store(cow, Ordering::Relaxed);
    sh.globals.lastsave.store(ctime, Ordering::Relaxed);
    Ok(())
}

/// Shard 0's periodic duty: start a snapshot when a `save` rule is met (a failed one is retried
/// after 5 seconds, like Redis) or one was scheduled.
pub fn cron(sh: &Rc<Shard>) {
    if sh.id != 0 {
        return;
    }
    let g = &sh.globals.snapshot;
    if g.in_progress.load(Ordering::Relaxed) {
        return;
    }
    let settings = Settings::from_config(&sh.state.borrow().config);
    let now = crate::server::globals::unix_ms();
    let scheduled = g.scheduled.load(Ordering::Relaxed)
        && !sh.globals.aof.rewrite_in_progress.load(Ordering::Relaxed);
    let dirty = g.dirty();
    let lastsave = sh.globals.lastsave.load(Ordering::Relaxed);
    let retry_ok = g.last_ok.load(Ordering::Relaxed)
        || now.saturating_sub(g.last_try_ms.load(Ordering::Relaxed)) >= 5000;
    let due =
        settings.rules.iter().any(|&(secs, changes)| {
            dirty >= changes && (now / 1000).saturating_sub(lastsave) >= secs
        }) && retry_ok;
    if !(due || scheduled) {
        return;
    }
    g.scheduled.store(false, Ordering::Relaxed);
    if due {
        tracing::info!("{} changes since the last save: saving...", dirty);
    }
    if !try_start(sh) {
        return;
    }
    let sh = sh.clone();
    glommio::spawn_local(async move {
        let _ = run_started(&sh).await;
    })
    .detach();
}

/// FLUSHALL with `save` rules: once any running snapshot is done, save the (empty) keyspace.
pub async fn save_after_flushall(sh: &Rc<Shard>) {
    if Settings::from_config(&sh.state.borrow().config)
        .rules
        .is_empty()
    {
        return;
    }
    while sh.globals.snapshot.in_progress.load(Ordering::Acquire) {
        glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
    }
    let _ = snapshot_all(sh).await;
}

/// What SHUTDOWN, SIGTERM and SIGINT do before the server stops (Redis's prepareForShutdown):
/// the final save, when `mode` or the `save` rules ask for one, while every shard is held whole
/// (commands wait, as they do while Redis saves), then the stop. A failed save stops nothing
/// unless `force`: the shards are released, keep serving, and the caller reports the error.
/// After a good save the shards stay held until they stop, so that no write lands after it.
pub async fn prepare_shutdown(sh: &Rc<Shard>, mode: ShutdownSave, force: bool) -> Result<(), ()> {
    tracing::warn!("User requested shutdown...");
    let g = &sh.globals.snapshot;
    let rules = !Settings::from_config(&sh.state.borrow().config)
        .rules
        .is_empty();
    if mode == ShutdownSave::Yes || (mode == ShutdownSave::IfRules && rules) {
        tracing::info!("Saving the final RDB snapshot before exiting.");
        // A running snapshot finishes first (Redis kills its child and saves anew).
        while !try_start(sh) {
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
        }
        let (result, held) = match crate::tx::lock_all_shards(sh).await {
            Ok(held) => (run_claimed(sh, true).await, Some(held)),
            Err(e) => {
                g.in_progress.store(false, Ordering::Release);
                (Err(e.to_string()), None)
            }
        };
        match result {
            Ok(()) => {}
            Err(_) if force => tracing::warn!("Error trying to save the DB. Exit anyway."),
            Err(_) => {
                tracing::warn!("Error trying to save the DB, can't exit.");
                tracing::warn!(
                    "Errors trying to shut down the server. Check the logs for more information."
                );
                if let Some(h) = held {
                    h.release_all().await;
                }
                return Err(());
            }
        }
        // Held until the process ends: the saved state is the last one.
        std::mem::forget(held);
    }
    g.set_shutdown_save(ShutdownSave::No);
    sh.globals.request_shutdown();
    Ok(())
}

/// The shutdown sequence, on every shard once it has closed its clients: shard 0 waits for the
/// others, then makes the final save (`final_save`) while their message loops still run; the
/// others wait for it. A shard that never arrives is given up on after 10 seconds.
pub async fn shutdown_barrier(sh: &Rc<Shard>) {
    let g = &sh.globals.snapshot;
    g.closed_shards.fetch_add(1, Ordering::AcqRel);
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    if sh.id == 0 {
        while g.closed_shards.load(Ordering::Acquire) < sh.nshards() && Instant::now() < deadline {
            glommio::timer::sleep(std::time::Duration::from_millis(2)).await;
        }
        final_save(sh).await;
        g.final_done.store(true, Ordering::Release);
        return;
    }
    while !g.final_done.load(Ordering::Acquire) {
        glommio::timer::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// Waits for a running snapshot, then saves one if SHUTDOWN's options or the `save` rules ask
/// for it.
async fn final_save(sh: &Rc<Shard>) {
    let g = &sh.globals.snapshot;
    let mode = match g.shutdown_save.load(Ordering::Relaxed) {
        1 => ShutdownSave::Yes,
        2 => ShutdownSave::No,
        _ => ShutdownSave::IfRules,
    };
    let rules = !Settings::from_config(&sh.state.borrow().config)
        .rules
        .is_empty();
    while g.in_progress.load(Ordering::Acquire) {
        glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
    }
    if mode == ShutdownSave::Yes || (mode == ShutdownSave::IfRules && rules) {
        tracing::info!("Saving the final RDB snapshot before exiting.");
        if let Err(e) = snapshot_all(sh).await {
            tracing::error!("Error trying to save the DB before exiting: {}", e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::rdb::file::{RdbItem, RdbReader};
    use crate::persistence::rdb::LoadLimits;
    use crate::types::{StrValue, Value};
    use std::collections::BTreeMap;

    fn sv(s: &str) -> Value {
        Value::Str(StrValue::from_bytes(s.as_bytes()))
    }

    fn install_sink() {
        let rdb = RdbWriter::new(Vec::new(), WriteOptions::default()).unwrap();
        SINK.with(|s| {
            *s.borrow_mut() = Some(Sink {
                rdb,
                cur_db: None,
                meta: MetaMode::None,
                cut_ms: 1,
                discard: false,
                cow_bytes: 0,
                keys: 0,
            })
        });
    }

    /// Runs the walk to the end over `dbs`, with `mutate(step)` between steps.
    fn walk(dbs: &mut [Db], mut mutate: impl FnMut(&mut [Db], usize)) -> Vec<u8> {
        let mut step = 0;
        loop {
            let done = SINK.with(|s| {
                let mut g = s.borrow_mut();
                let sink = g.as_mut().unwrap();
                let mut budget = walk_budget(dbs, 3, 5);
                dbs.iter_mut().all(|d| step_db(d, &mut budget, sink))
            });
            if done {
                break;
            }
            mutate(dbs, step);
            step += 1;
        }
        let sink = SINK.with(|s| s.borrow_mut().take()).unwrap();
        sink.rdb.finish().unwrap()
    }

    /// (db, key) -> (value, deadline).
    type Saved = BTreeMap<(u64, Vec<u8>), (Vec<u8>, u64)>;

    fn read_back(bytes: &[u8]) -> Saved {
        let mut r = RdbReader::new(bytes, LoadLimits::default()).unwrap();
        let mut db = 0;
        let mut out = BTreeMap::new();
        while let Some(item) = r.next_item().unwrap() {
            match item {
                RdbItem::SelectDb(d) => db = d,
                RdbItem::Entry(e) => {
                    let Value::Str(s) = &e.value else { panic!() };
                    let prev =
                        out.insert((db, e.key.to_vec()), (s.to_bytes().to_vec(), e.expire_ms));
                    assert!(prev.is_none(), "saved twice: {:?}", e.key);
                }
                _ => {}
            }
        }
        out
    }

    fn state(dbs: &mut [Db]) -> Saved {
        let mut out = BTreeMap::new();
        for (i, d) in dbs.iter().enumerate() {
            for (k, e) in d.keys.iter() {
                let Value::Str(s) = &e.value else { panic!() };
                let at = deadline_of(&d.expires, k, e);
                out.insert((i as u64, k.to_vec()), (s.to_bytes().to_vec(), at));
            }
        }
        out
    }

    /// The stream holds exactly the cut, whatever happens to the keys during the walk:
    /// overwrites, in-place changes, deletions, new keys, deadlines (set, changed, removed;
    /// saved as they were at the cut), flushes, SWAPDB, and a
    /// table growing (rehashing) under the cursor. Afterwards every mark equals its bit, so the
    /// next snapshot starts clean.
    #[test]
    fn the_walk_saves_exactly_the_cut_under_every_kind_of_change() {
        for seed in 0..20u64 {
            let mut dbs: Vec<Db> = (0..3).map(Db::numbered).collect();
            for i in 0..200 {
                let at = if i % 4 == 0 {
                    88_888_888_888_888 + i
                } else {
                    0
                };
                dbs[(i % 3) as usize].insert(
                    format!("k{i}").as_bytes(),
                    sv(&format!("v{i}")),
                    at,
                    1,
                );
            }
            for round in 0..2 {
                let cut = state(&mut dbs);
                install_sink();
                for d in dbs.iter_mut() {
                    let i = d.index;
                    d.snap.begin(i);
                    d.keys.defer_growth(true);
                }
                let mut x = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(round + 1);
                let bytes = walk(&mut dbs, |dbs, step| {
                    for _ in 0..4 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let db = (x % 3) as usize;
                        let key = format!("k{}", (x >> 8) % 260);
                        let d = &mut dbs[db];
                        match (x >> 20) % 7 {
                            0 => d.insert(key.as_bytes(), sv("new"), 0, 1),
                            1 => {
                                d.delete(key.as_bytes());
                            }
                            2 => {
                                if let Some(e) = d.lookup_mut(key.as_bytes(), 1) {
                                    e.value = sv("inplace");
                                }
                            }
                            3 => {
                                let at =
                                    [0, 99_999_999_999_999 + step as u64][(x >> 40) as usize % 2];
                                d.set_expire(key.as_bytes(), at);
                            }
                            4 if step % 17 == 5 => d.clear(),
                            5 if step % 23 == 7 => Db::swap(dbs, 0, 2),
                            _ => {
                                for j in 0..20 {
                                    d.insert(format!("grow{step}-{j}").as_bytes(), sv("g"), 0, 1);
                                }
                            }
                        }
                    }
                });
                assert_eq!(read_back(&bytes), cut, "seed {seed} round {round}");
                for d in dbs.iter() {
                    assert!(!d.snap.active);
                    assert!(d.keys.iter().all(|(_, e)| e.snap_mark() == d.snap.bit));
                }
            }
        }
    }
}

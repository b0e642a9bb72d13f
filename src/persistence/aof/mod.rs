//! Per-shard append-only files (Redis 7 multi-part AOF, one log per shard).
//!
//! Owns: recording each successful write a shard executes as a command (rewritten where replay
//! would differ: relative expiries become absolute, a command that propagates what it did is
//! logged as that, e.g. XADD's ID or XREADGROUP's deliveries as XCLAIMs, several commands as
//! one unit; commands touching keys of other shards inside a multi-shard unit become per-key
//! recreations), the per-shard writer task (glommio buffered file, fdatasync per
//! `appendfsync`), the durability watermark that `appendfsync always` replies wait for,
//! rewrites (new base + new incremental file switched through the manifest) and loading at
//! startup.
//!
//! Must never: block a serving shard on disk (all file I/O after startup goes through glommio
//! tasks), record a command whose reply was an error, or delete an old file before the manifest
//! that replaces it is durable.

pub mod load;
pub mod manifest;
pub mod records;
pub mod units;

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;

use crate::commands::CommandSpec;
use crate::config::Config;
use crate::shard::db::deadline_of;
use crate::shard::slot::SlotMap;
use crate::shard::{Shard, ShardState};
use manifest::{FileEntry, FileKind, Manifest};

/// Redis's reply to writes while the AOF cannot be written.
pub const ERR_MISCONF_PREFIX: &str = "MISCONF Errors writing to the AOF file: ";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    Always,
    EverySec,
    No,
}

/// The AOF directives, read from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub enabled: bool,
    pub fsync: Fsync,
    pub dir: PathBuf,
    pub filename: String,
    pub load_truncated: bool,
    pub rewrite_percentage: u64,
    pub rewrite_min_size: u64,
}

impl Settings {
    pub fn from_config(cfg: &Config) -> Settings {
        Settings {
            enabled: cfg.value("appendonly") == "yes",
            fsync: fsync_policy(cfg),
            dir: cfg.dir.join(cfg.value("appenddirname")),
            filename: cfg.value("appendfilename"),
            load_truncated: cfg.value("aof-load-truncated") != "no",
            rewrite_percentage: cfg
                .value("auto-aof-rewrite-percentage")
                .parse()
                .unwrap_or(100),
            rewrite_min_size: cfg
                .value("auto-aof-rewrite-min-size")
                .parse()
                .unwrap_or(64 << 20),
        }
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join(format!("{}.manifest", self.filename))
    }
}

/// Process-wide AOF state (INFO persistence, the current manifest, rewrite exclusion).
pub struct AofGlobal {
    pub enabled: AtomicBool,
    pub rewrite_in_progress: AtomicBool,
    pub rewrite_scheduled: AtomicBool,
    pub last_rewrite_time_sec: AtomicI64,
    pub last_bgrewrite_ok: AtomicBool,
    pub rewrites: AtomicU64,
    /// Rewrites that failed since the last one that succeeded.
    pub rewrites_consecutive_failures: AtomicU64,
    /// Startup loading finished (shards other than 0 wait for it before accepting clients).
    pub ready: AtomicBool,
    pub current_size: Vec<AtomicU64>,
    pub base_size: Vec<AtomicU64>,
    pub write_failed: Vec<AtomicBool>,
    /// The last `everysec` background fdatasync of each shard failed (Redis's
    /// `aof_bio_fsync_status`): writes are refused until one succeeds.
    pub fsync_failed: Vec<AtomicBool>,
    pub manifest: Mutex<Option<Manifest>>,
    /// DEBUG AOF-FLUSH-SLEEP: microseconds each shard's writer waits before writing what it
    /// took from the log (0: no wait). For tests that need writes to linger in the buffers.
    pub flush_sleep_us: AtomicU64,
}

impl AofGlobal {
    pub fn new(nshards: usize) -> AofGlobal {
        AofGlobal {
            enabled: AtomicBool::new(false),
            rewrite_in_progress: AtomicBool::new(false),
            rewrite_scheduled: AtomicBool::new(false),
            last_rewrite_time_sec: AtomicI64::new(-1),
            last_bgrewrite_ok: AtomicBool::new(true),
            rewrites: AtomicU64::new(0),
            rewrites_consecutive_failures: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            current_size: (0..nshards).map(|_| AtomicU64::new(0)).collect(),
            base_size: (0..nshards).map(|_| AtomicU64::new(0)).collect(),
            write_failed: (0..nshards).map(|_| AtomicBool::new(false)).collect(),
            fsync_failed: (0..nshards).map(|_| AtomicBool::new(false)).collect(),
            manifest: Mutex::new(None),
            flush_sleep_us: AtomicU64::new(0),
        }
    }

    /// Bytes in all shards' base and incremental files.
    pub fn total_size(&self) -> u64 {
        self.current_size
            .iter()
            .chain(self.base_size.iter())
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }

    /// The AOF lines of INFO persistence.
    pub fn info(&self) -> String {
        let sum = |v: &[AtomicU64]| v.iter().map(|a| a.load(Ordering::Relaxed)).sum::<u64>();
        let enabled = self.enabled.load(Ordering::Relaxed);
        let mut s = format!(
            "aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\naof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:-1\r\naof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{}\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
            enabled as u8,
            self.rewrite_in_progress.load(Ordering::Relaxed) as u8,
            self.rewrite_scheduled.load(Ordering::Relaxed) as u8,
            self.last_rewrite_time_sec.load(Ordering::Relaxed),
            if self.last_bgrewrite_ok.load(Ordering::Relaxed) { "ok" } else { "err" },
            self.rewrites.load(Ordering::Relaxed),
            self.rewrites_consecutive_failures.load(Ordering::Relaxed),
            if self.write_failed.iter().chain(&self.fsync_failed).any(|f| f.load(Ordering::Relaxed)) { "err" } else { "ok" },
        );
        if enabled {
            s.push_str(&format!(
                "aof_current_size:{}\r\naof_base_size:{}\r\n",
                self.total_size(),
                sum(&self.base_size)
            ));
        }
        s
    }
}

/// A shard's pending log (lives in `ShardState`; `None` while the AOF is off).
pub struct AofLog {
    buf: Vec<u8>,
    /// The buffer the writer drained last, cleared, for `buf` to swap with next time (so the
    /// log's buffer keeps its capacity instead of growing anew after every write).
    spare: Vec<u8>,
    /// Records still due to the file in use before the last rewrite switched files.
    old_tail: Vec<u8>,
    /// The incremental file the writer moves to after draining `old_tail`.
    switch_to: Option<PathBuf>,
    /// Bytes ever appended: the sequence number durability is measured in.
    appended: u64,
    cur_db: usize,
    id: usize,
    slots: Arc<SlotMap>,
    wake: mpsc::UnboundedSender<()>,
    woken: bool,
    /// The last write error, while writes are refused.
    pub error: Option<String>,
    /// The last background fdatasync error (`everysec`), while writes are refused: kept apart
    /// from `error` because a later successful write does not make earlier data durable.
    pub fsync_error: Option<String>,
    /// This shard's part of a unit run under the global lock, held aside until it is sealed
    /// as one bracket (see `units`).
    unit: Option<units::OpenUnit>,
    /// One-command brackets written so far (their ids, and whether a step has any to flatten).
    command_units: u64,
}

impl AofLog {
    fn push(&mut self, db: usize, rec: &[u8]) {
        if !rec.is_empty() {
            self.push_with(db, |sink| sink.extend_from_slice(rec));
        }
    }

    /// Appends the record `write` puts in the sink, in database `db`.
    fn push_with(&mut self, db: usize, write: impl FnOnce(&mut Vec<u8>)) {
        let sink = match self.unit.as_mut() {
            Some(u) => &mut u.buf,
            None => &mut self.buf,
        };
        let before = sink.len();
        if db != self.cur_db {
            records::push_cmd(
                sink,
                &[&b"SELECT"[..], itoa::Buffer::new().format(db).as_bytes()],
            );
            self.cur_db = db;
        }
        write(sink);
        if self.unit.is_some() {
            return;
        }
        self.appended += (self.buf.len() - before) as u64;
        self.wake_writer();
    }

    /// Appends a record that does not depend on the selected database.
    fn push_raw(&mut self, rec: &[u8]) {
        if let Some(u) = self.unit.as_mut() {
            u.buf.extend_from_slice(rec);
            return;
        }
        self.buf.extend_from_slice(rec);
        self.appended += rec.len() as u64;
        self.wake_writer();
    }

    pub fn appended(&self) -> u64 {
        self.appended
    }

    /// Wakes the writer task, once per batch of records (it clears `woken` as it drains).
    fn wake_writer(&mut self) {
        if !self.woken {
            self.woken = true;
            let _ = self.wake.unbounded_send(());
        }
    }
}

/// Durability as seen by the shard's connections (in `Shard`).
#[derive(Default)]
pub struct Durability {
    /// Log bytes (in `AofLog::appended` units) whose replies may go out: written under
    /// `everysec`/`no`, fdatasync'ed under `always`.
    pub durable: u64,
    /// Connections waiting for `durable` to reach their sequence number. Wakers, not channels:
    /// a reply waiting costs no allocation once the vector has grown.
    waiters: Vec<(u64, std::task::Waker)>,
    stop: Option<oneshot::Sender<()>>,
    stopped: Option<oneshot::Receiver<()>>,
}

impl Durability {
    /// Moves the watermark to `upto` and wakes the replies it releases.
    fn release(&mut self, upto: u64) {
        self.durable = self.durable.max(upto);
        let durable = self.durable;
        self.waiters.retain(|(seq, w)| {
            if *seq <= durable {
                w.wake_by_ref();
                false
            } else {
                true
            }
        });
    }
}

/// How a write is logged.
enum Plan {
    Verbatim,
    /// SET with a relative or kept TTL, SETEX, PSETEX: one `SET key value PXAT ms` from the
    /// stored entry (like Redis's rewrite; GET/NX/XX are dropped, the outcome is known).
    SetAbsolute,
    /// The keys' whole state afterwards (relative TTLs, randomness, foreign keys).
    Recreate,
    /// Only the keys' deadlines afterwards (EXPIRE family, GETEX).
    Deadline,
    /// Only what the command propagated (`Ctx::propagate_as`), which is nothing here: it
    /// changed nothing that replay needs.
    Propagated,
}

fn has_relative_ttl(args: &[Bytes]) -> bool {
    args.iter().skip(3).any(|a| {
        a.eq_ignore_ascii_case(b"ex")
            || a.eq_ignore_ascii_case(b"px")
            || a.eq_ignore_ascii_case(b"exat")
            || a.eq_ignore_ascii_case(b"keepttl")
    })
}

fn plan_for(name: &str, args: &[Bytes]) -> Plan {
    match name {
        "set" if has_relative_ttl(args) => Plan::SetAbsolute,
        "setex" | "psetex" => Plan::SetAbsolute,
        "restore" => Plan::Recreate,
        // Deliveries, idle filters and claims depend on the clock: these propagate what they
        // changed as Redis does (XCLAIM with TIME and RETRYCOUNT, XGROUP SETID and
        // CREATECONSUMER) and are never logged as themselves.
        "xreadgroup" | "xclaim" | "xautoclaim" => Plan::Propagated,
        "expire" | "pexpire" | "expireat" | "pexpireat" | "getex" => Plan::Deadline,
        _ => Plan::Verbatim,
    }
}

/// Refuses a write while the log cannot be written (Redis's MISCONF for the AOF).
#[inline]
pub fn write_refused(st: &ShardState) -> Option<String> {
    st.aof
        .as_ref()
        .and_then(|l| l.error.as_ref().or(l.fsync_error.as_ref()))
        .map(|e| format!("{}{}", ERR_MISCONF_PREFIX, e))
}

/// Records a write command that succeeded on this shard, as what it propagated when it did
/// (`Ctx::propagate_as`).
pub fn record(
    st: &mut ShardState,
    spec: &CommandSpec,
    args: &[Bytes],
    propagated: Option<Vec<Vec<Bytes>>>,
    db: usize,
    reply: &[u8],
) {
    if spec.name == "spop"
        && st
            .aof
            .as_ref()
            .is_some_and(|l| l.slots.shard_of_key(&args[1]) == l.id)
    {
        // What SPOP removed is in its reply: log it as SREM (its randomness must not replay).
        let mut members = Vec::new();
        records::reply_bulks(reply, &mut members);
        if !members.is_empty() {
            let mut cmd: Vec<&[u8]> = vec![b"SREM", &args[1]];
            cmd.extend(members.iter().map(|m| &m[..]));
            let mut rec = Vec::new();
            records::push_cmd(&mut rec, &cmd);
            if let Some(log) = st.aof.as_mut() {
                log.push(db, &rec);
            }
        }
        return;
    }
    record_as(st, spec, args, propagated, db, false)
}

/// Records a command: as what it propagated, or by its plan; `state` logs its keys' state
/// (a served blocking pop), as do keys of other shards (a unit running over copies of them).
fn record_as(
    st: &mut ShardState,
    spec: &CommandSpec,
    args: &[Bytes],
    propagated: Option<Vec<Vec<Bytes>>>,
    db: usize,
    state: bool,
) {
    let Some(log) = st.aof.as_ref() else {
        return;
    };
    let foreign = spec
        .keys(args)
        .any(|p| log.slots.shard_of_key(&args[p]) != log.id);
    if let Some(cmds) = propagated {
        return record_propagated(st, &cmds, db, foreign);
    }
    let plan = match plan_for(spec.name, args) {
        Plan::Propagated => Plan::Propagated,
        _ if foreign || state => Plan::Recreate,
        plan => plan,
    };
    let mut rec = Vec::new();
    match plan {
        Plan::Verbatim => {
            // Straight into the log's buffer: the common case allocates nothing.
            if let Some(log) = st.aof.as_mut() {
                log.push_with(db, |sink| records::push_cmd(sink, args));
            }
            return;
        }
        Plan::SetAbsolute => {
            records::set_absolute(&mut rec, &args[1], st.dbs[db].peek(&args[1]));
            if let Some(log) = st.aof.as_mut() {
                units::bracket_command(log, &mut rec);
            }
        }
        Plan::Recreate => {
            let mut seen: Vec<&[u8]> = Vec::new();
            for p in spec.keys(args) {
                let key = &args[p][..];
                if seen.contains(&key) || log.slots.shard_of_key(key) != log.id {
                    continue;
                }
                seen.push(key);
                records::recreate_key(&mut rec, key, st.dbs[db].peek(key));
            }
            if let Some(log) = st.aof.as_mut() {
                units::bracket_command(log, &mut rec);
            }
        }
        // Nothing propagated: nothing replay needs changed (keys of other shards are logged
        // by their owners).
        Plan::Propagated => return,
        Plan::Deadline => {
            for p in spec.keys(args) {
                let key = &args[p][..];
                match st.dbs[db].peek(key) {
                    None => records::push_cmd(&mut rec, &[&b"DEL"[..], key]),
                    Some((_, 0)) => records::push_cmd(&mut rec, &[&b"PERSIST"[..], key]),
                    Some((_, at)) => records::push_cmd(
                        &mut rec,
                        &[&b"PEXPIREAT"[..], key, at.to_string().as_bytes()],
                    ),
                }
            }
        }
    }
    if let Some(log) = st.aof.as_mut() {
        log.push(db, &rec);
    }
}

/// Logs what the commands a command propagated did: each whose keys belong to this shard (a
/// key of another shard, in a unit running over copies, is logged by its owner as its state
/// when the unit writes it back), as one unit when more than one.
fn record_propagated(st: &mut ShardState, cmds: &[Vec<Bytes>], db: usize, foreign: bool) {
    let Some(log) = st.aof.as_mut() else {
        return;
    };
    if let [cmd] = cmds {
        if !foreign {
            // The common case (XADD's ID): straight into the log's buffer.
            log.push_with(db, |sink| records::push_cmd(sink, cmd));
            return;
        }
    }
    let mut rec = Vec::new();
    for cmd in cmds {
        let local = !foreign
            || crate::commands::lookup(&cmd[0]).is_some_and(|spec| {
                spec.keys(cmd)
                    .all(|p| log.slots.shard_of_key(&cmd[p]) == log.id)
            });
        if local {
            records::push_cmd(&mut rec, cmd);
        }
    }
    units::bracket_command(log, &mut rec);
    log.push(db, &rec);
}

/// Logs what a blocked command served outside `execute_keyed` changed (unless it replied with
/// an error): what it propagated (a blocked XREADGROUP's claims), or else its keys' state (a
/// pop is replayed as its effect, never as a blocking command).
pub fn record_served(st: &mut ShardState, args: &[Bytes], db: usize, reply: &[u8]) {
    let propagated = st.rewritten.take();
    if st.aof.is_none() || reply.first() == Some(&b'-') {
        return;
    }
    if let Some(spec) = crate::commands::lookup(&args[0]) {
        record_as(st, spec, args, propagated, db, true);
    }
}

/// Marker commands of a multi-shard unit's part in this shard's log (understood only by the
/// loader, never executed).
pub const TX_BEGIN: &[u8] = b"TESSERA.TXBEGIN";
pub const TX_END: &[u8] = b"TESSERA.TXEND";

/// Opens this shard's part of multi-shard unit `id` with `participants` parts in all.
pub fn tx_begin(st: &mut ShardState, id: u64, participants: usize) {
    if let Some(log) = st.aof.as_mut().filter(|l| l.unit.is_none()) {
        let rec = units::bracket_begin(id, participants);
        log.push_raw(&rec);
    }
}

/// Where the log stands now, for `tx_wrap` after a synchronous step.
pub fn tx_mark(st: &ShardState) -> Option<units::Mark> {
    units::mark(st)
}

/// Brackets the records appended since `mark` (same synchronous step) as this shard's part of
/// multi-shard unit `id`.
pub fn tx_wrap(st: &mut ShardState, mark: Option<units::Mark>, id: u64, participants: usize) {
    // Inside a unit under the global lock, that unit's bracket already covers these records.
    let (Some(mark), Some(log)) = (mark, st.aof.as_mut().filter(|l| l.unit.is_none())) else {
        return;
    };
    let at = mark.len.min(log.buf.len());
    units::flatten_since(log, &mark);
    let begin = units::bracket_begin(id, participants);
    log.appended += begin.len() as u64;
    log.buf.splice(at..at, begin);
    tx_end(st, id);
}

/// Closes this shard's part of unit `id`.
pub fn tx_end(st: &mut ShardState, id: u64) {
    if let Some(log) = st.aof.as_mut().filter(|l| l.unit.is_none()) {
        let mut rec = Vec::new();
        records::push_cmd(&mut rec, &[TX_END, id.to_string().as_bytes()]);
        log.push_raw(&rec);
    }
}

/// Logs a command the shard applied outside `execute_keyed` (FLUSHDB, FLUSHALL, SWAPDB fan-outs,
/// evictions, multi-shard write-backs).
pub fn log_command<A: AsRef<[u8]>>(st: &mut ShardState, db: usize, args: &[A]) {
    if let Some(log) = st.aof.as_mut() {
        let mut rec = Vec::new();
        records::push_cmd(&mut rec, args);
        log.push(db, &rec);
    }
}

/// Logs a command that belongs to no database (FUNCTION changes, on shard 0's log).
pub fn log_global<A: AsRef<[u8]>>(st: &mut ShardState, args: &[A]) {
    if let Some(log) = st.aof.as_mut() {
        let mut rec = Vec::new();
        records::push_cmd(&mut rec, args);
        log.push_raw(&rec);
    }
}

/// Logs `key`'s current state in `db` from scratch (a multi-shard unit wrote it back).
pub fn log_key_state(st: &mut ShardState, db: usize, key: &[u8]) {
    if st.aof.is_none() {
        return;
    }
    let mut rec = Vec::new();
    records::recreate_key(&mut rec, key, st.dbs[db].peek(key));
    if let Some(log) = st.aof.as_mut() {
        log.push(db, &rec);
    }
}

/// Whether replies on this shard wait for the log: for its write() under `everysec` and `no`
/// (a killed process then loses no acknowledged write, as with Redis, which writes the AOF
/// before replying), for its fdatasync under `always`.
#[inline]
pub fn sync_replies(sh: &Shard) -> bool {
    sh.aof_replies_wait.get()
}

/// Waits until everything this shard has logged so far is durable.
pub async fn wait_durable_local(sh: &Shard) {
    let target = match sh.state.borrow().aof.as_ref() {
        Some(l) => l.appended,
        None => return,
    };
    futures::future::poll_fn(|cx| {
        let mut d = sh.aof.borrow_mut();
        if d.durable >= target {
            return std::task::Poll::Ready(());
        }
        d.waiters.push((target, cx.waker().clone()));
        std::task::Poll::Pending
    })
    .await
}

/// Waits until every shard in `mask` (bit per shard; bit 63 stands for all beyond) has made
/// what it logged so far durable.
pub async fn wait_durable(sh: &Rc<Shard>, mask: u64) {
    let n = sh.nshards();
    let involved = |s: usize| mask & shard_bit(s) != 0;
    // The common case (a keyed write on the connection's own shard) waits in place: no
    // cross-shard task, no join.
    if !(0..n).any(|s| s != sh.id && involved(s)) {
        if involved(sh.id) {
            wait_durable_local(sh).await;
        }
        return;
    }
    let mut futs = Vec::new();
    for s in 0..n {
        if !involved(s) {
            continue;
        }
        if s == sh.id {
            futs.push(futures::future::Either::Left(wait_durable_local(sh)));
            continue;
        }
        let (tx, rx) = oneshot::channel::<()>();
        let task: crate::shard::router::TaskJob = Box::new(move |sh: Rc<Shard>| {
            Box::pin(async move {
                wait_durable_local(&sh).await;
                let _ = tx.send(());
            })
        });
        let sent = sh
            .router
            .send(s, crate::shard::ShardMsg::Task(task))
            .await
            .is_ok();
        if sent {
            futs.push(futures::future::Either::Right(async move {
                let _ = rx.await;
            }));
        }
    }
    futures::future::join_all(futs).await;
}

/// The bit of `wait_durable`'s mask for shard `s`.
#[inline]
pub fn shard_bit(s: usize) -> u64 {
    1u64 << s.min(63)
}

pub(crate) async fn write_all(
    file: &glommio::io::BufferedFile,
    data: &[u8],
    pos: u64,
) -> std::io::Result<()> {
    let mut off = 0;
    while off < data.len() {
        let n = file
            .write_at(data[off..].to_vec(), pos + off as u64)
            .await
            .map_err(std::io::Error::from)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "short write",
            ));
        }
        off += n;
    }
    Ok(())
}

/// Opens a log file for appending. Returns the file, where the log ends, and the file's size:
/// they differ when the file ends in the zero padding that `appendfsync always` preallocates
/// (see `Preallocation`), which the next record overwrites.
async fn open_append(
    path: &std::path::Path,
) -> std::io::Result<(glommio::io::BufferedFile, u64, u64)> {
    let f = glommio::io::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .buffered_open(path)
        .await
        .map_err(std::io::Error::from)?;
    let size = f.file_size().await.map_err(std::io::Error::from)?;
    let end = log_end(&f, size).await?;
    Ok((f, end, size))
}

/// Where the log in `file` ends: its size less any zero padding at the end (a record always
/// ends in `\n`, so the last nonzero byte ends the log).
async fn log_end(file: &glommio::io::BufferedFile, size: u64) -> std::io::Result<u64> {
    const BLOCK: u64 = 64 << 10;
    let mut end = size;
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let block = file
            .read_at(start, (end - start) as usize)
            .await
            .map_err(std::io::Error::from)?;
        if block.is_empty() {
            break;
        }
        if let Some(i) = block.iter().rposition(|&b| b != 0) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

fn io_text(e: &std::io::Error) -> String {
    // strerror's text alone, as Redis prints it: without Rust's "(os error N)" suffix and the
    // path details glommio adds.
    let s = match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
        None => e.to_string(),
    };
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

/// The `appendfsync` policy in force (CONFIG SET changes it at runtime).
fn fsync_policy(cfg: &Config) -> Fsync {
    match cfg.value("appendfsync").as_str() {
        "always" => Fsync::Always,
        "no" => Fsync::No,
        _ => Fsync::EverySec,
    }
}

/// The smallest block of direct durable writes: ext4 submits an O_DIRECT overwrite without a
/// worker thread only when it covers whole filesystem blocks.
const DIRECT_BLOCK: u64 = 4096;

/// A second descriptor of the current file through which `appendfsync always` writes: a write
/// through it is durable once it completes (O_DSYNC), so a batch costs one io_uring operation
/// instead of a write and an fdatasync.
enum DurableTwin {
    /// O_DIRECT | O_DSYNC, overwriting the preallocated zeros whole blocks at a time. An
    /// O_DIRECT overwrite of allocated blocks is submitted from the shard thread itself, where
    /// a buffered write (below) waits for an io-wq worker thread to pick it up; on this VM the
    /// scheduler put that worker behind the busy shard (135 us median before the sync began).
    Direct(DirectWrites),
    /// O_DSYNC buffered: with several shards, where O_DIRECT is refused (tmpfs), or after a
    /// direct write failed.
    Buffered(glommio::io::BufferedFile),
}

struct DirectWrites {
    file: glommio::io::DmaFile,
    path: PathBuf,
    /// `DIRECT_BLOCK` or the device's larger O_DIRECT alignment.
    block: u64,
    /// The log's last partial block (its bytes from the block start to the log end) and the
    /// log end it belongs to: every write rewrites it in front of its records. Read back from
    /// the file when a write made elsewhere moved the end.
    tail: Vec<u8>,
    tail_at: Option<u64>,
}

impl DirectWrites {
    /// Writes `data` at the log end `pos`, durably. `log` is the writer's buffered descriptor
    /// of the same file, which reads the partial block back when needed (an O_DIRECT read
    /// goes to glommio's polled ring, which this VM's disk does not support).
    async fn write(
        &mut self,
        log: &glommio::io::BufferedFile,
        data: &[u8],
        pos: u64,
    ) -> std::io::Result<()> {
        if let Some(e) = injected_direct_failure() {
            return Err(e);
        }
        let block = self.block;
        let start = pos - pos % block;
        if self.tail_at != Some(pos) {
            let keep = (pos - start) as usize;
            let bytes = log
                .read_at(start, keep)
                .await
                .map_err(std::io::Error::from)?;
            if bytes.len() < keep {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the AOF file is shorter than its log",
                ));
            }
            self.tail.clear();
            self.tail.extend_from_slice(&bytes[..keep]);
        }
        let tail = &self.tail;
        let used = tail.len() + data.len();
        let len = (used as u64).next_multiple_of(block) as usize;
        let mut buf = self.file.alloc_dma_buffer(len);
        let bytes = buf.as_bytes_mut();
        bytes[..tail.len()].copy_from_slice(tail);
        bytes[tail.len()..used].copy_from_slice(data);
        bytes[used..].fill(0);
        let end = pos + data.len() as u64;
        let last = used - (end % block) as usize;
        // The next write's tail, taken before the buffer goes to the kernel.
        let next_tail = bytes[last..used].to_vec();
        self.tail_at = None;
        let n = self
            .file
            .write_at(buf, start)
            .await
            .map_err(std::io::Error::from)?;
        if n < len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "short write",
            ));
        }
        self.tail = next_tail;
        self.tail_at = Some(end);
        Ok(())
    }
}

async fn open_buffered_dsync(path: &std::path::Path) -> std::io::Result<glommio::io::BufferedFile> {
    glommio::io::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DSYNC)
        .buffered_open(path)
        .await
        .map_err(std::io::Error::from)
}

impl DurableTwin {
    /// Opens the twin of `path`: direct when `direct` and the filesystem allows it.
    ///
    /// Direct only with one shard. With two shards on this VM the direct twins' SET
    /// throughput fell to 0.45-0.78x of the buffered twins' (each direct write flushed the
    /// disk cache on its own: 2.1 SETs per flush against Redis's 4.5; not investigated
    /// further); with one shard the direct twin measured 1.05-1.47x of Redis's `always`
    /// against 0.61-0.89x for the buffered one (8 clients with a thread each, P=1,
    /// alternating runs).
    async fn open(path: &std::path::Path, direct: bool) -> std::io::Result<DurableTwin> {
        let file = match direct {
            true => glommio::io::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_DSYNC)
                .dma_open(path)
                .await
                .ok(),
            false => None,
        };
        if let Some(file) = file {
            let block = file.align_up(DIRECT_BLOCK);
            return Ok(DurableTwin::Direct(DirectWrites {
                file,
                path: path.to_path_buf(),
                block,
                tail: Vec::new(),
                tail_at: None,
            }));
        }
        open_buffered_dsync(path).await.map(DurableTwin::Buffered)
    }

    /// How far past `pos + len` a write of `len` bytes at `pos` reaches in the file.
    fn reach(&self, pos: u64, len: u64) -> u64 {
        match self {
            DurableTwin::Direct(d) => (pos + len).next_multiple_of(d.block),
            DurableTwin::Buffered(_) => pos + len,
        }
    }

    /// Writes `data` at the log end `pos`, durably. A failed direct write is retried through a
    /// buffered O_DSYNC descriptor, which this file then keeps: a disk that refuses the direct
    /// path (alignment, an unexpected filesystem) costs speed, never writes.
    async fn write(
        &mut self,
        log: &glommio::io::BufferedFile,
        data: &[u8],
        pos: u64,
    ) -> std::io::Result<()> {
        let direct = match self {
            DurableTwin::Buffered(f) => return write_all(f, data, pos).await,
            DurableTwin::Direct(d) => d,
        };
        let Err(e) = direct.write(log, data, pos).await else {
            return Ok(());
        };
        tracing::warn!(
            "A direct AOF write failed ({}): writing through a buffered O_DSYNC descriptor",
            e
        );
        let buffered = open_buffered_dsync(&direct.path).await?;
        let result = write_all(&buffered, data, pos).await;
        if let DurableTwin::Direct(d) = std::mem::replace(self, DurableTwin::Buffered(buffered)) {
            let _ = d.file.close().await;
        }
        result
    }

    async fn close(self) {
        let _ = match self {
            DurableTwin::Direct(d) => d.file.close().await,
            DurableTwin::Buffered(file) => file.close().await,
        };
    }
}

/// What the writer has written and how much of it an fdatasync covers; shared by the writer
/// and the `everysec` syncer (same shard thread).
struct SyncState {
    /// The incremental file in use (replaced when a rewrite switches files; taken when the
    /// writer stops).
    file: Option<Rc<glommio::io::BufferedFile>>,
    /// Bytes written so far (all files, a running count) and how many of them are synced.
    written: u64,
    synced: u64,
}

impl SyncState {
    /// The file in use (the writer's view: present until it stops).
    fn current(&self) -> Rc<glommio::io::BufferedFile> {
        self.file
            .clone()
            .expect("the AOF writer's file is present while it runs")
    }

    fn mark_synced(&mut self, upto: u64) {
        self.synced = self.synced.max(upto);
    }
}

/// Closes a file once nothing else holds it (the syncer may still be inside an fdatasync of
/// it; then dropping it closes it when that ends).
async fn close_shared(file: Rc<glommio::io::BufferedFile>) {
    if let Ok(f) = Rc::try_unwrap(file) {
        let _ = f.close().await;
    }
}

/// `appendfsync everysec`: once a second, an fdatasync of what the writer has written, beside
/// the writer (writes and the replies waiting for them never wait for it, like Redis's
/// background fsync thread).
async fn syncer(sh: Rc<Shard>, sync: Rc<std::cell::RefCell<SyncState>>) {
    loop {
        glommio::timer::sleep(Duration::from_secs(1)).await;
        let (file, upto) = {
            let s = sync.borrow();
            // No file: the writer is gone, and so is the syncer.
            let Some(file) = s.file.clone() else {
                sh.globals.aof.fsync_failed[sh.id].store(false, Ordering::Relaxed);
                return;
            };
            if s.synced >= s.written {
                continue;
            }
            (file, s.written)
        };
        if fsync_policy(&sh.state.borrow().config) != Fsync::EverySec {
            continue;
        }
        let result = match injected_fsync_failure() {
            Some(e) => Err(e),
            None => file.fdatasync().await.map_err(std::io::Error::from),
        };
        let failed = result.is_err();
        sh.globals.aof.fsync_failed[sh.id].store(failed, Ordering::Relaxed);
        let mut st = sh.state.borrow_mut();
        let log = st.aof.as_mut();
        match result {
            Ok(()) => {
                sync.borrow_mut().mark_synced(upto);
                if let Some(l) = log {
                    if l.fsync_error.take().is_some() {
                        tracing::warn!("AOF fsync error is solved, the AOF can be written again");
                    }
                }
            }
            Err(e) => {
                // Like Redis's background fsync: the data written so far is not known to be
                // durable, so writes are refused (MISCONF) until a later fdatasync, retried
                // every second, succeeds.
                tracing::warn!("Error syncing the AOF file: {}", e);
                if let Some(l) = log {
                    l.fsync_error = Some(io_text(&e));
                }
            }
        }
    }
}

/// Fault injection for tests: while the file named by the environment variable `var` exists,
/// the guarded operation fails with `errno` (a failing disk cannot be produced on demand
/// otherwise). Unset, it costs one environment read per process and injector.
fn injected_fault(
    flag: &'static std::sync::OnceLock<Option<PathBuf>>,
    var: &str,
    errno: i32,
) -> Option<std::io::Error> {
    let path = flag.get_or_init(|| std::env::var_os(var).map(PathBuf::from));
    path.as_ref()
        .filter(|p| p.exists())
        .map(|_| std::io::Error::from_raw_os_error(errno))
}

/// `TESSERA_FAULT_FSYNC_FILE`: the `everysec` background fdatasync fails with EIO.
fn injected_fsync_failure() -> Option<std::io::Error> {
    static FLAG: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    injected_fault(&FLAG, "TESSERA_FAULT_FSYNC_FILE", libc::EIO)
}

/// `TESSERA_FAULT_DIRECT_FILE`: direct `always` writes fail with EINVAL, as on a device whose
/// O_DIRECT alignment they miss.
fn injected_direct_failure() -> Option<std::io::Error> {
    static FLAG: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    injected_fault(&FLAG, "TESSERA_FAULT_DIRECT_FILE", libc::EINVAL)
}

/// The largest drained buffer the log keeps for reuse (a burst's buffer is given back).
const SPARE_MAX: usize = 1 << 20;

/// Zero padding written ahead of the log under `appendfsync always` (see `Preallocation`).
const PREALLOC_CHUNK: u64 = 1 << 20;

/// Under `appendfsync always`, the file is kept zero-filled (and synced) ahead of the log, so
/// that a durable write overwrites blocks the file already has instead of growing it. A write
/// that grows the file changes its size, so its fdatasync must commit the filesystem journal
/// (ext4: a journal write and a second cache flush); an overwrite needs only the data and one
/// cache flush. Measured on this project's VM disk: 308-350 us per append + fdatasync against
/// 230-250 us per overwrite + fdatasync, and about 12% more SET throughput with 8 clients at
/// P=1 (alternating runs against the same build without it). The padding is written 1 MiB at a time, and
/// cut off when the writer leaves the file (switch or stop); after a crash the loader and
/// `check` ignore zero padding at the end of a file.
struct Preallocation {
    /// Bytes of the file that exist (log plus padding) and are synced.
    end: u64,
    /// This file has been preallocated: every write into it carries a `TESSERA.BATCH` header.
    framing: bool,
}

impl Preallocation {
    fn new(size: u64) -> Preallocation {
        Preallocation {
            end: size,
            framing: false,
        }
    }

    /// The bytes to write at `pos` for `data`: framed with a checksum (`records::BATCH`) when
    /// they overwrite padding, where a torn write could otherwise pass for whole records.
    fn frame<'a>(&self, data: &'a [u8], pos: u64) -> std::borrow::Cow<'a, [u8]> {
        if self.framing || self.end > pos {
            let mut out = Vec::with_capacity(data.len() + 64);
            records::push_batch_header(&mut out, data);
            out.extend_from_slice(data);
            std::borrow::Cow::Owned(out)
        } else {
            std::borrow::Cow::Borrowed(data)
        }
    }

    /// Makes sure the file holds `upto` bytes, padding it with zeros up to a chunk beyond.
    async fn reserve(
        &mut self,
        file: &glommio::io::BufferedFile,
        pos: u64,
        upto: u64,
    ) -> std::io::Result<()> {
        if upto <= self.end {
            return Ok(());
        }
        let start = self.end.max(pos);
        let end = (upto + PREALLOC_CHUNK).next_multiple_of(4096);
        write_all(file, &vec![0u8; (end - start) as usize], start).await?;
        file.fdatasync().await.map_err(std::io::Error::from)?;
        // The zeros are on disk: drop their cached pages, which would otherwise make each
        // first O_DIRECT write to them wait for a worker thread to invalidate the cache.
        // SAFETY: a plain advisory call on a descriptor `file` keeps open.
        unsafe {
            libc::posix_fadvise(
                std::os::fd::AsRawFd::as_raw_fd(file),
                start as libc::off_t,
                (end - start) as libc::off_t,
                libc::POSIX_FADV_DONTNEED,
            );
        }
        self.end = end;
        Ok(())
    }

    /// Cuts the padding off before the writer leaves the file, so a file at rest holds just
    /// the log.
    async fn trim(&mut self, file: &glommio::io::BufferedFile, pos: u64) {
        if self.end > pos {
            match file.truncate(pos).await {
                Ok(()) => self.end = pos,
                Err(e) => tracing::warn!("Can't trim the AOF file's preallocated tail: {}", e),
            }
        }
    }
}

/// How long an inline write may take before the writer stops writing inline for a while: far
/// above a page-cache copy (a few microseconds), far below what a client would notice.
const INLINE_WRITE_SLOW: Duration = Duration::from_millis(2);
/// How long the writer goes through io_uring after an isolated slow inline write before
/// trying again; each slow write within `INLINE_WRITE_MEMORY` of the previous one doubles it,
/// up to `INLINE_WRITE_BACKOFF_MAX`.
const INLINE_WRITE_BACKOFF_MIN: Duration = Duration::from_millis(100);
const INLINE_WRITE_BACKOFF_MAX: Duration = Duration::from_secs(10);
const INLINE_WRITE_MEMORY: Duration = Duration::from_secs(60);

/// Under `everysec` and `no`, the writer copies records into the page cache with `pwrite` on
/// the shard thread instead of an io_uring write. On filesystems without asynchronous buffered
/// writes (ext4 among them) io_uring hands every buffered write to a kernel worker thread, and
/// the shard sleeps until that thread is done: measured at P=1 with 8 clients, that handoff
/// cost 16-22 us of CPU per request and halved throughput, while the copy itself takes 1-2 us.
/// A page-cache write can still block (dirty-page throttling when the disk falls behind), so a
/// write slower than `INLINE_WRITE_SLOW` sends the writer back to io_uring for a while. An
/// isolated slow write (a journal commit, a rewrite switching files) costs only
/// `INLINE_WRITE_BACKOFF_MIN` of io_uring writes; slow writes that keep coming double the
/// pause each time, so a shard on a disk that stays slow stalls a handful of times, then
/// writes through io_uring for `INLINE_WRITE_BACKOFF_MAX` at a time. (A fixed 10 s pause after
/// any slow write measured 2-3 us more CPU per SET for those 10 s, with 8 clients at P=1.)
#[derive(Default)]
struct InlineWrites {
    paused_until: Option<Instant>,
    /// The latest slow write and the pause it started.
    last_slow: Option<(Instant, Duration)>,
}

/// The io_uring pause after a slow write at `now`, given the previous slow write.
fn inline_backoff(last_slow: Option<(Instant, Duration)>, now: Instant) -> Duration {
    match last_slow {
        Some((at, pause)) if now.duration_since(at) < INLINE_WRITE_MEMORY => {
            (pause * 2).min(INLINE_WRITE_BACKOFF_MAX)
        }
        _ => INLINE_WRITE_BACKOFF_MIN,
    }
}

impl InlineWrites {
    /// Writes `data` at `pos`, or `None` when inline writes are paused (the caller goes through
    /// io_uring). A short write is finished inline; an error is returned as is.
    fn write(
        &mut self,
        file: &glommio::io::BufferedFile,
        data: &[u8],
        pos: u64,
    ) -> Option<std::io::Result<()>> {
        use std::os::fd::AsRawFd;
        if let Some(until) = self.paused_until {
            if Instant::now() < until {
                return None;
            }
            self.paused_until = None;
        }
        let started = Instant::now();
        let fd = file.as_raw_fd();
        let mut off = 0;
        let mut result = Ok(());
        while off < data.len() {
            let rest = &data[off..];
            // SAFETY: `rest` is a live slice for the whole call and `fd` stays open while
            // `file` is borrowed.
            let n = unsafe {
                libc::pwrite(
                    fd,
                    rest.as_ptr().cast(),
                    rest.len(),
                    (pos + off as u64) as libc::off_t,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                result = Err(e);
                break;
            }
            if n == 0 {
                result = Err(std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    "short write",
                ));
                break;
            }
            off += n as usize;
        }
        let took = started.elapsed();
        if took > INLINE_WRITE_SLOW {
            let now = Instant::now();
            let pause = inline_backoff(self.last_slow, now);
            self.last_slow = Some((now, pause));
            self.paused_until = Some(now + pause);
            // An isolated slow write is routine (journal commits); slow writes that keep
            // coming are worth an operator's attention.
            if pause >= Duration::from_secs(1) {
                tracing::warn!(
                    "AOF writes keep blocking the shard thread (the last took {} ms): writing through io_uring for the next {} ms",
                    took.as_millis(),
                    pause.as_millis()
                );
            } else {
                tracing::debug!(
                    "An AOF write took {} ms on the shard thread: writing through io_uring for the next {} ms",
                    took.as_millis(),
                    pause.as_millis()
                );
            }
        }
        Some(result)
    }
}

/// The shard's writer: drains the log into the current incremental file after each loop
/// iteration's writes: one write for all of them, and under `always` that write made durable
/// (O_DSYNC) before their replies go. Under `everysec` the fdatasync is the syncer's.
async fn writer(sh: Rc<Shard>, mut wake: mpsc::UnboundedReceiver<()>, path: PathBuf) {
    let (file, mut pos, size) = match open_append(&path).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!("Can't open the append-only file {}: {}", path.display(), e);
            if let Some(l) = sh.state.borrow_mut().aof.as_mut() {
                l.error = Some(io_text(&e));
            }
            return;
        }
    };
    let mut cur_path = path;
    let sync = Rc::new(std::cell::RefCell::new(SyncState {
        file: Some(Rc::new(file)),
        written: 0,
        synced: 0,
    }));
    // The durable twin of the current file, opened when `always` first needs it (tried once
    // per file).
    let mut dsync: Option<DurableTwin> = None;
    let mut dsync_tried = false;
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    {
        let mut d = sh.aof.borrow_mut();
        d.stop = Some(stop_tx);
        d.stopped = Some(done_rx);
    }
    glommio::spawn_local(syncer(sh.clone(), sync.clone())).detach();
    let mut stopping = false;
    let mut retrying = false;
    let mut inline = InlineWrites::default();
    let mut prealloc = Preallocation::new(size);
    loop {
        if !stopping && !std::mem::take(&mut retrying) {
            match futures::future::select(wake.next(), &mut stop_rx).await {
                futures::future::Either::Left((None, _)) | futures::future::Either::Right(_) => {
                    stopping = true
                }
                _ => {}
            }
            // Woken by the first record of this iteration: let the connections woken in the
            // same reactor poll run first, so their records join this write (and this
            // fdatasync) instead of waiting a whole write for the next one.
            futures_lite::future::yield_now().await;
        }
        // DEBUG AOF-FLUSH-SLEEP, like Redis's `aof_flush_sleep`: wait before a write that has
        // something to write (records arriving meanwhile join it).
        let sleep_us = sh.globals.aof.flush_sleep_us.load(Ordering::Relaxed);
        if sleep_us > 0
            && sh
                .state
                .borrow()
                .aof
                .as_ref()
                .is_some_and(|l| !l.buf.is_empty() || !l.old_tail.is_empty())
        {
            glommio::timer::sleep(Duration::from_micros(sleep_us)).await;
        }
        let (tail, switch, data, upto, fsync) = {
            let mut st = sh.state.borrow_mut();
            let fsync = fsync_policy(&st.config);
            let Some(l) = st.aof.as_mut() else {
                break;
            };
            l.woken = false;
            (
                std::mem::take(&mut l.old_tail),
                l.switch_to.take(),
                std::mem::replace(&mut l.buf, std::mem::take(&mut l.spare)),
                l.appended,
                fsync,
            )
        };
        let mut result: std::io::Result<()> = Ok(());
        let (mut tail_done, mut switch_done, mut data_done) = (false, false, false);
        if !tail.is_empty() {
            let file = sync.borrow().current();
            let out = prealloc.frame(&tail, pos);
            result = write_all(&file, &out, pos).await;
            if result.is_ok() {
                pos += out.len() as u64;
                sync.borrow_mut().written += out.len() as u64;
            }
        }
        tail_done |= result.is_ok();
        if result.is_ok() {
            if let Some(p) = switch.clone() {
                let old = sync.borrow().current();
                prealloc.trim(&old, pos).await;
                let _ = old.fdatasync().await;
                match open_append(&p).await {
                    Ok((f, end, size)) => {
                        {
                            let mut s = sync.borrow_mut();
                            s.file = Some(Rc::new(f));
                            s.synced = s.written;
                        }
                        if let Some(d) = dsync.take() {
                            d.close().await;
                        }
                        dsync_tried = false;
                        close_shared(old).await;
                        cur_path = p;
                        pos = end;
                        prealloc = Preallocation::new(size);
                        switch_done = true;
                    }
                    Err(e) => result = Err(e),
                }
            }
        }
        if result.is_ok() && fsync == Fsync::Always && !dsync_tried {
            dsync_tried = true;
            match DurableTwin::open(&cur_path, sh.nshards() == 1).await {
                Ok(f) => dsync = Some(f),
                // Without the twin, `always` falls back to a write and an fdatasync.
                Err(e) => tracing::warn!("Can't open the AOF file with O_DSYNC: {}", e),
            }
        }
        let file = sync.borrow().current();
        if result.is_ok() && !data.is_empty() {
            let through_dsync = fsync == Fsync::Always && dsync.is_some();
            if through_dsync && sync.borrow().synced < sync.borrow().written {
                // Bytes written before `always` took effect are made durable first.
                let upto = sync.borrow().written;
                result = file.fdatasync().await.map_err(std::io::Error::from);
                if result.is_ok() {
                    sync.borrow_mut().mark_synced(upto);
                }
            }
            if through_dsync {
                // Overwriting zeros (see `Preallocation`): every such write is framed.
                prealloc.framing = true;
            }
            let out = prealloc.frame(&data, pos);
            let n = out.len() as u64;
            if let (true, Some(twin)) = (result.is_ok() && through_dsync, &dsync) {
                result = prealloc.reserve(&file, pos, twin.reach(pos, n)).await;
            }
            if result.is_ok() {
                result = match (&mut dsync, through_dsync) {
                    (Some(twin), true) => twin.write(&file, &out, pos).await,
                    _ if fsync == Fsync::Always => write_all(&file, &out, pos).await,
                    _ => match inline.write(&file, &out, pos) {
                        Some(r) => r,
                        None => write_all(&file, &out, pos).await,
                    },
                };
                if result.is_ok() {
                    pos += n;
                    let mut s = sync.borrow_mut();
                    s.written += n;
                    if through_dsync && s.synced + n == s.written {
                        s.synced = s.written;
                    }
                }
            }
        }
        data_done |= result.is_ok();
        let unsynced = {
            let s = sync.borrow();
            (s.synced < s.written).then_some(s.written)
        };
        if let (true, Fsync::Always, Some(upto)) = (result.is_ok(), fsync, unsynced) {
            result = file.fdatasync().await.map_err(std::io::Error::from);
            if result.is_ok() {
                sync.borrow_mut().mark_synced(upto);
            }
        }
        drop(file);
        let failed = result.is_err();
        sh.globals.aof.write_failed[sh.id].store(failed, Ordering::Relaxed);
        match result {
            Ok(()) => {
                sh.globals.aof.current_size[sh.id].store(pos, Ordering::Relaxed);
                if let Some(l) = sh.state.borrow_mut().aof.as_mut() {
                    if l.error.take().is_some() {
                        tracing::warn!("AOF write error is solved, the AOF can be written again");
                    }
                }
                sh.aof.borrow_mut().release(upto);
                if let Some(l) = sh.state.borrow_mut().aof.as_mut() {
                    if data.capacity() <= SPARE_MAX && l.spare.capacity() < data.capacity() {
                        let mut data = data;
                        data.clear();
                        l.spare = data;
                    }
                }
            }
            Err(e) => {
                tracing::warn!("Error writing to the AOF file: {}", e);
                // Nothing unwritten is lost from the log: it goes back in front, and the
                // writer retries soon (at the same file offsets).
                put_back(
                    &sh,
                    &e,
                    (tail, tail_done),
                    (switch, switch_done),
                    (data, data_done),
                );
                if fsync != Fsync::Always {
                    // Like Redis, a failed write under everysec/no still answers the commands
                    // that already ran (later writes are refused); under always their replies
                    // wait for the retry that makes them durable.
                    let ran = sh.state.borrow().aof.as_ref().map_or(upto, |l| l.appended);
                    sh.aof.borrow_mut().release(ran);
                }
                if !stopping {
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                    if let Some(l) = sh.state.borrow_mut().aof.as_mut() {
                        l.woken = false;
                    }
                    retrying = true;
                    continue;
                }
            }
        }
        if stopping {
            break;
        }
    }
    let file = { sync.borrow_mut().file.take() };
    let Some(file) = file else {
        let _ = done_tx.send(());
        return;
    };
    prealloc.trim(&file, pos).await;
    let _ = file.fdatasync().await;
    if let Some(d) = dsync.take() {
        d.close().await;
    }
    drop(sync);
    close_shared(file).await;
    let _ = done_tx.send(());
}

/// After a failed write: what was not written goes back to the log, in order, and writes are
/// refused until a retry succeeds.
fn put_back(
    sh: &Shard,
    e: &std::io::Error,
    (tail, tail_done): (Vec<u8>, bool),
    (switch, switch_done): (Option<PathBuf>, bool),
    (data, data_done): (Vec<u8>, bool),
) {
    let mut st = sh.state.borrow_mut();
    let Some(l) = st.aof.as_mut() else {
        return;
    };
    let mut buf = if data_done { Vec::new() } else { data };
    buf.extend_from_slice(&l.buf);
    let tail = if tail_done { Vec::new() } else { tail };
    match switch {
        Some(p) if !switch_done => {
            let mut old = tail;
            old.extend_from_slice(&l.old_tail);
            l.old_tail = old;
            l.switch_to = Some(p);
        }
        _ => {
            let mut t = tail;
            t.extend_from_slice(&buf);
            buf = t;
        }
    }
    l.buf = buf;
    l.error = Some(io_text(e));
}

/// Starts logging on this shard into `incr` (a fresh or existing file), or switches an active
/// log to it: records appended from now on go to `incr`.
fn start_or_switch(sh: &Rc<Shard>, st: &mut ShardState, incr: PathBuf) {
    if let Some(l) = st.aof.as_mut() {
        let pending = std::mem::take(&mut l.buf);
        l.old_tail.extend_from_slice(&pending);
        l.switch_to = Some(incr);
        l.cur_db = usize::MAX;
        l.wake_writer();
        return;
    }
    let (tx, rx) = mpsc::unbounded();
    st.aof = Some(Box::new(AofLog {
        buf: Vec::new(),
        spare: Vec::new(),
        old_tail: Vec::new(),
        switch_to: None,
        appended: sh.aof.borrow().durable,
        cur_db: usize::MAX,
        id: sh.id,
        slots: sh.router.slots(),
        wake: tx,
        woken: false,
        error: None,
        fsync_error: None,
        unit: None,
        command_units: 0,
    }));
    sh.aof_replies_wait.set(true);
    let sh2 = sh.clone();
    glommio::spawn_local(writer(sh2, rx, incr)).detach();
}

/// The command-format base of this shard (`aof-use-rdb-preamble no`): every key recreated,
/// with its deadline, and the function libraries on shard 0. Serialized in one step, at the cut.
fn commands_base(sh: &Shard) -> Vec<u8> {
    let st = sh.state.borrow();
    let now = crate::server::globals::unix_ms();
    let mut out = Vec::new();
    if sh.id == 0 {
        records::functions_base(&mut out, &sh.globals.scripting);
    }
    for (dbid, d) in st.dbs.iter().enumerate() {
        if d.keys.iter().next().is_none() {
            continue;
        }
        records::push_cmd(&mut out, &[&b"SELECT"[..], dbid.to_string().as_bytes()]);
        for (k, e) in d.keys.iter() {
            let expire_at = deadline_of(&d.expires, k, e);
            if expire_at != 0 && expire_at <= now {
                continue;
            }
            records::recreate_value(&mut out, k, &e.value);
            if expire_at != 0 {
                records::push_cmd(
                    &mut out,
                    &[&b"PEXPIREAT"[..], &k[..], expire_at.to_string().as_bytes()],
                );
            }
        }
    }
    out
}

/// Writes a command-format base file and makes it durable; returns its size.
async fn write_commands_base(path: PathBuf, data: Vec<u8>) -> Result<u64, String> {
    let name = path.display().to_string();
    let err = |what: &str, e: glommio::GlommioError<()>| format!("{} {}: {}", what, name, e);
    let f = glommio::io::BufferedFile::create(&path)
        .await
        .map_err(|e| err("cannot create", e))?;
    write_all(&f, &data, 0)
        .await
        .map_err(|e| format!("cannot write {}: {}", name, e))?;
    f.fdatasync().await.map_err(|e| err("cannot sync", e))?;
    f.close().await.map_err(|e| err("cannot close", e))?;
    Ok(data.len() as u64)
}

/// Creates an empty file (a new incremental file, before any writer is pointed at it).
async fn create_empty(path: &std::path::Path) -> Result<(), String> {
    let err = |e: glommio::GlommioError<()>| format!("cannot create {}: {}", path.display(), e);
    glommio::io::BufferedFile::create(path)
        .await
        .map_err(err)?
        .close()
        .await
        .map_err(err)
}

/// Writes the manifest atomically: temp file, fdatasync, rename, directory sync.
async fn write_manifest(settings: &Settings, m: &Manifest) -> Result<(), String> {
    let path = settings.manifest_path();
    let tmp = settings
        .dir
        .join(format!("temp-{}.manifest", settings.filename));
    let e = |e: glommio::GlommioError<()>| format!("cannot write the AOF manifest: {}", e);
    let mut f = glommio::io::BufferedFile::create(&tmp).await.map_err(e)?;
    write_all(&f, m.format().as_bytes(), 0)
        .await
        .map_err(|x| format!("cannot write the AOF manifest: {}", x))?;
    f.fdatasync().await.map_err(e)?;
    f.rename(&path).await.map_err(e)?;
    f.close().await.map_err(e)?;
    let dir = glommio::io::Directory::open(&settings.dir)
        .await
        .map_err(e)?;
    dir.sync().await.map_err(e)?;
    let _ = dir.close().await;
    Ok(())
}

/// BGREWRITEAOF (and the rewrite at startup), like Redis 7's multi-part AOF:
/// 1. every shard gets a new, empty incremental file, and a manifest naming the old files plus
///    the new incremental ones is made durable (a crash from here on replays old base, old and
///    new incremental files: nothing is lost);
/// 2. the cut, with every shard held whole (ordered like a transaction over all shards, so a
///    multi-shard unit is wholly in the base or wholly in the new incremental files): each
///    shard switches its log to the new file and starts its base;
/// 3. the bases are written while the shards serve: with `aof-use-rdb-preamble yes` an RDB
///    stream produced by the snapshot walk (copy-on-write, never blocking the shard), otherwise
///    commands serialized at the cut;
/// 4. once every base is durable, the manifest naming the new base and incremental files
///    replaces the old one; then the old files go.
pub async fn rewrite_all(sh: &Rc<Shard>) -> Result<(), String> {
    let g = &sh.globals.aof;
    if g.rewrite_in_progress.swap(true, Ordering::AcqRel) {
        return Err("Background append only file rewriting already in progress".into());
    }
    let started = Instant::now();
    let result = rewrite_inner(sh).await;
    g.last_bgrewrite_ok.store(result.is_ok(), Ordering::Relaxed);
    if result.is_ok() {
        g.rewrites_consecutive_failures.store(0, Ordering::Relaxed);
    } else {
        g.rewrites_consecutive_failures
            .fetch_add(1, Ordering::Relaxed);
    }
    g.last_rewrite_time_sec
        .store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
    if result.is_ok() {
        g.rewrites.fetch_add(1, Ordering::Relaxed);
        tracing::info!("Background AOF rewrite finished successfully");
    } else if let Err(e) = &result {
        tracing::warn!("Background AOF rewrite failed: {}", e);
    }
    g.rewrite_in_progress.store(false, Ordering::Release);
    result
}

async fn rewrite_inner(sh: &Rc<Shard>) -> Result<(), String> {
    let g = &sh.globals.aof;
    let (settings, preamble) = {
        let st = sh.state.borrow();
        (
            Settings::from_config(&st.config),
            st.config.value("aof-use-rdb-preamble") == "yes",
        )
    };
    let log = g.enabled.load(Ordering::Relaxed);
    let old = g.manifest.lock().unwrap().clone();
    let seq = old.as_ref().map_or(0, |m| m.max_seq()) + 1;
    let n = sh.nshards();
    let file = |s: usize, kind: FileKind| {
        let ext = match kind {
            FileKind::Base if preamble => "base.rdb",
            FileKind::Base => "base.aof",
            FileKind::Incr => "incr.aof",
        };
        FileEntry {
            name: format!("{}.s{}.{}.{}", settings.filename, s, seq, ext),
            seq,
            kind,
            shard: s,
        }
    };
    // 1. New incremental files, named by a durable manifest before any write goes to them.
    for s in 0..n {
        create_empty(&settings.dir.join(&file(s, FileKind::Incr).name)).await?;
    }
    if log {
        if let Some(m) = old.as_ref().filter(|m| m.shards == n) {
            let mut interim = m.clone();
            interim
                .files
                .extend((0..n).map(|s| file(s, FileKind::Incr)));
            write_manifest(&settings, &interim).await?;
        }
    }
    // 2. The cut.
    let walk = if preamble {
        Some(crate::persistence::snapshot::claim_walk(&sh.globals.snapshot).await)
    } else {
        None
    };
    let functions = if preamble {
        crate::scripting::functions::library_codes(&sh.globals.scripting)
    } else {
        Vec::new()
    };
    let held = crate::tx::lock_all_shards(sh)
        .await
        .map_err(|e| e.to_string())?;
    let mut cmd_bases = Vec::with_capacity(n);
    for s in 0..n {
        let incr = settings.dir.join(&file(s, FileKind::Incr).name);
        let opts = crate::persistence::snapshot::write_options(&sh.state.borrow().config, true);
        let functions = if s == 0 {
            functions.clone()
        } else {
            Vec::new()
        };
        let r = sh
            .run_task_on(s, move |owner| async move {
                let base = if preamble {
                    crate::persistence::snapshot::begin_shard(&owner, opts, &functions);
                    None
                } else {
                    Some(commands_base(&owner))
                };
                if log {
                    let mut st = owner.state.borrow_mut();
                    start_or_switch(&owner, &mut st, incr);
                }
                base
            })
            .await;
        match r {
            Some(b) => cmd_bases.push(b),
            None => {
                held.release_all().await;
                return Err("a shard is gone".into());
            }
        }
    }
    held.release_all().await;
    // 3. The bases, while the shards serve.
    let mut futs = Vec::new();
    for (s, data) in cmd_bases.into_iter().enumerate() {
        let path = settings.dir.join(&file(s, FileKind::Base).name);
        futs.push(sh.run_task_on(s, move |owner| async move {
            match data {
                Some(data) => write_commands_base(path, data).await,
                None => crate::persistence::snapshot::write_shard(
                    owner,
                    path,
                    crate::persistence::snapshot::manifest::Compression::None,
                )
                .await
                .map(|o| o.bytes),
            }
        }));
    }
    let results = futures::future::join_all(futs).await;
    drop(walk);
    let mut result = Ok(());
    for (s, r) in results.into_iter().enumerate() {
        match r {
            Some(Ok(size)) => g.base_size[s].store(size, Ordering::Relaxed),
            Some(Err(e)) => result = Err(e),
            None => result = Err("a shard is gone".to_string()),
        }
    }
    if let Err(e) = result {
        for s in 0..n {
            let _ = std::fs::remove_file(settings.dir.join(&file(s, FileKind::Base).name));
        }
        return Err(e);
    }
    // 4. The switch.
    let m = Manifest {
        shards: n,
        files: (0..n)
            .flat_map(|s| [file(s, FileKind::Base), file(s, FileKind::Incr)])
            .collect(),
    };
    write_manifest(&settings, &m).await?;
    if let Some(old) = &old {
        for f in &old.files {
            if !m.files.iter().any(|x| x.name == f.name) {
                let _ = std::fs::remove_file(settings.dir.join(&f.name));
            }
        }
    }
    *g.manifest.lock().unwrap() = Some(m);
    Ok(())
}

/// Startup on shard 0, before any shard accepts clients: load the files the manifest names
/// (each shard its own when the shard count matches, else re-routed by key), then rewrite so
/// that the log continues in this process's layout.
pub async fn startup(sh: &Rc<Shard>) -> Result<(), String> {
    let settings = Settings::from_config(&sh.state.borrow().config);
    sh.globals.aof.enabled.store(true, Ordering::Relaxed);
    std::fs::create_dir_all(&settings.dir).map_err(|e| {
        format!(
            "Can't create the append-only directory {}: {}",
            settings.dir.display(),
            e
        )
    })?;
    let manifest = read_manifest(&settings)?;
    if let Some(m) = &manifest {
        let started = Instant::now();
        load::load(sh, &settings, m).await?;
        tracing::info!(
            "DB loaded from append only file: {:.3} seconds",
            started.elapsed().as_secs_f64()
        );
    }
    *sh.globals.aof.manifest.lock().unwrap() = manifest;
    rewrite_all(sh).await
}

/// DEBUG LOADAOF's reading: the files the manifest on disk names, read and checked while the
/// data set is still there (a damaged file then costs nothing). The caller holds every shard
/// whole and made everything logged so far durable first; it then empties the keyspace and
/// applies the files (`load::apply`), as startup does. The log itself goes on in the same
/// files. A rewrite under way cannot reach its cut meanwhile, and the manifest it may have
/// written already (old files plus its new, still empty, incremental ones) names the whole
/// log. Files written by another shard count are refused (this process rewrites into its own
/// layout at startup, so they only appear if someone replaced the files).
pub fn read_for_reload(sh: &Shard) -> Result<load::Files, String> {
    let settings = Settings::from_config(&sh.state.borrow().config);
    let Some(m) = read_manifest(&settings)? else {
        return Err(format!(
            "The AOF manifest {} is missing",
            settings.manifest_path().display()
        ));
    };
    if m.shards != sh.nshards() {
        return Err(format!(
            "The AOF manifest {} describes {} shards, this server runs {}",
            settings.manifest_path().display(),
            m.shards,
            sh.nshards()
        ));
    }
    let files = load::read_all(&settings, &m)?;
    *sh.globals.aof.manifest.lock().unwrap() = Some(m);
    Ok(files)
}

/// The manifest in the AOF directory; None when there is none and no AOF file either.
fn read_manifest(settings: &Settings) -> Result<Option<Manifest>, String> {
    let mpath = settings.manifest_path();
    let manifest = match std::fs::read_to_string(&mpath) {
        Ok(text) => Some(Manifest::parse(&text)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let leftovers = std::fs::read_dir(&settings.dir)
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .any(|e| e.file_name().to_string_lossy().ends_with(".aof"))
                })
                .unwrap_or(false);
            if leftovers {
                return Err(format!(
                    "The AOF directory {} holds AOF files but no manifest {}: refusing to start (restore the manifest or remove the files)",
                    settings.dir.display(),
                    mpath.display()
                ));
            }
            None
        }
        Err(e) => {
            return Err(format!(
                "Can't read the AOF manifest {}: {}",
                mpath.display(),
                e
            ))
        }
    };
    Ok(manifest)
}

/// The shard's periodic AOF duties: follow CONFIG SET appendonly (shard 0 starts logging
/// everywhere with a rewrite, like Redis; every shard stops its own writer), and on shard 0
/// start the automatic rewrite when the files grew by `auto-aof-rewrite-percentage`.
pub fn cron(sh: &Rc<Shard>) {
    let g = &sh.globals.aof;
    let want = sh.state.borrow().config.value("appendonly") == "yes";
    let on = g.enabled.load(Ordering::Relaxed);
    if sh.id == 0 && want && !on && g.ready.load(Ordering::Relaxed) {
        g.enabled.store(true, Ordering::Relaxed);
        let settings = Settings::from_config(&sh.state.borrow().config);
        if let Ok(text) = std::fs::read_to_string(settings.manifest_path()) {
            *g.manifest.lock().unwrap() = Manifest::parse(&text).ok();
        }
        let sh = sh.clone();
        glommio::spawn_local(async move {
            if let Err(e) = std::fs::create_dir_all(&settings.dir) {
                tracing::warn!("Can't create the append-only directory: {}", e);
            }
            let _ = rewrite_all(&sh).await;
        })
        .detach();
        return;
    }
    if sh.id == 0 && !want && on {
        g.enabled.store(false, Ordering::Relaxed);
    }
    if !g.enabled.load(Ordering::Relaxed) && sh.state.borrow().aof.is_some() {
        // Turned off: the writer drains what is pending, then the log goes away.
        if sh.aof.borrow().stop.is_some() {
            let sh = sh.clone();
            glommio::spawn_local(async move {
                shutdown(&sh).await;
                if !sh.globals.aof.enabled.load(Ordering::Relaxed) {
                    sh.state.borrow_mut().aof = None;
                }
            })
            .detach();
        }
        return;
    }
    // DEBUG PAUSE-CRON stops the automatic rewrite (Redis's serverCron starts it); following
    // CONFIG SET appendonly above goes on (Redis does that in CONFIG SET itself).
    if sh.id != 0
        || !on
        || g.rewrite_in_progress.load(Ordering::Relaxed)
        || sh.globals.cron_paused.load(Ordering::Relaxed)
    {
        return;
    }
    let settings = Settings::from_config(&sh.state.borrow().config);
    if settings.rewrite_percentage == 0 {
        return;
    }
    let size = g.total_size();
    let base = g
        .base_size
        .iter()
        .map(|a| a.load(Ordering::Relaxed))
        .sum::<u64>()
        .max(1);
    if size >= settings.rewrite_min_size
        && size.saturating_sub(base) * 100 / base >= settings.rewrite_percentage
    {
        tracing::info!(
            "Starting automatic rewriting of AOF on {}% growth",
            size.saturating_sub(base) * 100 / base
        );
        let sh = sh.clone();
        glommio::spawn_local(async move {
            let _ = rewrite_all(&sh).await;
        })
        .detach();
    }
}

/// Stops this shard's writer after a last write and fdatasync (shutdown).
pub async fn shutdown(sh: &Shard) {
    let (stop, stopped) = {
        let mut d = sh.aof.borrow_mut();
        (d.stop.take(), d.stopped.take())
    };
    if let Some(stop) = stop {
        let _ = stop.send(());
    }
    if let Some(rx) = stopped {
        let _ = rx.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_write_pauses_grow_only_while_slow_writes_keep_coming() {
        let t0 = Instant::now();
        assert_eq!(inline_backoff(None, t0), INLINE_WRITE_BACKOFF_MIN);
        let mut last = Some((t0, INLINE_WRITE_BACKOFF_MIN));
        let mut now = t0;
        let mut pauses = Vec::new();
        for _ in 0..10 {
            now += Duration::from_secs(1);
            let p = inline_backoff(last, now);
            pauses.push(p.as_millis());
            last = Some((now, p));
        }
        assert_eq!(
            pauses,
            [200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000, 10000]
        );
        // A slow write long after the previous one starts over.
        let later = now + INLINE_WRITE_MEMORY + Duration::from_secs(1);
        assert_eq!(inline_backoff(last, later), INLINE_WRITE_BACKOFF_MIN);
    }

    #[test]
    fn commands_are_logged_as_resp() {
        let mut out = Vec::new();
        records::push_cmd(&mut out, &[&b"SET"[..], b"k", b"", &[b'v'; 12][..]]);
        assert_eq!(
            out,
            b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n$12\r\nvvvvvvvvvvvv\r\n".to_vec()
        );
    }
}

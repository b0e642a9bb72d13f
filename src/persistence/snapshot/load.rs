//! Loading snapshots: at startup (before any shard accepts clients), and for DEBUG RELOAD (with
//! every shard held whole by the caller): the shard files a snapshot manifest names, or a single
//! `dump.rdb` written by stock Redis. Keys go to the shard owning their slot whatever shard count
//! wrote them; expired keys are skipped, as Redis does when it loads as a primary.
//!
//! Must never: leave half a file loaded without failing (at startup any read error stops the
//! server with the file, offset and reason), load a key twice (a key that is already in the
//! keyspace fails the load, as Redis 7.0 stops on a duplicated key, unless the caller merges),
//! or run beside clients that could see the keyspace half loaded.

use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::manifest::{self, SnapshotManifest};
use super::Settings;
use crate::persistence::rdb::file::{RdbEntry, RdbItem, RdbReader};
use crate::persistence::rdb::LoadLimits;
use crate::shard::memory::{lfu_pack, lru_for_idle};
use crate::shard::Shard;

/// Entries sent to another shard in one message.
const BATCH: usize = 1024;

/// What one file held.
#[derive(Default, Clone, Copy)]
pub(crate) struct Counts {
    pub loaded: u64,
    pub expired: u64,
}

/// Room to make in a database before a batch goes in: (db, entries expected from this file).
type Reserve = Option<(usize, usize)>;

/// How many entries ahead of the one being inserted the keyspace is asked to prefetch: the
/// bucket `PREFETCH_AHEAD` entries ahead, the chain head half as far ahead (its bucket was
/// prefetched by then).
const PREFETCH_AHEAD: usize = 16;

/// How a load treats what is already there: a key or function library already loaded fails the
/// load, or (DEBUG RELOAD MERGE) is replaced.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDuplicate {
    Fail,
    Replace,
}

/// Places loaded entries into this shard's keyspace. A key already there (a file naming it
/// twice, or two files naming it) fails the load, as Redis 7.0 does ("Duplicated key found in
/// RDB file"), unless `dup` replaces it.
fn insert_batch(
    sh: &Shard,
    batch: Vec<(usize, RdbEntry)>,
    reserve: Reserve,
    dup: OnDuplicate,
) -> Result<(), String> {
    let mut st = sh.state.borrow_mut();
    if let Some((db, additional)) = reserve {
        st.dbs[db].keys.reserve(additional);
    }
    let now = crate::server::globals::unix_ms();
    let lfu = st.config.maxmemory_policy.is_lfu();
    let mut rest = batch.into_iter();
    for (i, (db, e)) in rest.as_slice().iter().take(PREFETCH_AHEAD).enumerate() {
        st.dbs[*db].keys.prefetch(&e.key, false);
        if i < PREFETCH_AHEAD / 2 {
            st.dbs[*db].keys.prefetch(&e.key, true);
        }
    }
    while let Some((db, e)) = rest.next() {
        let ahead = rest.as_slice();
        if let Some((d, e)) = ahead.get(PREFETCH_AHEAD - 1) {
            st.dbs[*d].keys.prefetch(&e.key, false);
        }
        if let Some((d, e)) = ahead.get(PREFETCH_AHEAD / 2 - 1) {
            st.dbs[*d].keys.prefetch(&e.key, true);
        }
        let access = if lfu {
            e.freq.map(|f| lfu_pack(now, f as u32))
        } else {
            e.idle_secs.map(|i| lru_for_idle(i as i64, now))
        };
        if dup == OnDuplicate::Replace {
            st.dbs[db].delete(&e.key);
        }
        st.dbs[db]
            .insert_loaded(e.key, e.value, e.expire_ms, access, now)
            .map_err(|k| {
                format!(
                    "RDB has duplicated key '{}' in DB {}: Duplicated key found in RDB file",
                    String::from_utf8_lossy(&k),
                    db
                )
            })?;
    }
    Ok(())
}

/// What a stream announced about one database's size (RESIZEDB) and how its entries spread.
struct SizeHint {
    keys: usize,
    seen: usize,
    reserved: Vec<bool>,
}

impl SizeHint {
    /// Entries to reserve on shard `to` with its first batch (of `batch` entries): the
    /// announced total times the part of the entries read so far that went to it.
    fn share(&mut self, to: usize, batch: usize) -> Option<usize> {
        if self.keys == 0 || std::mem::replace(&mut self.reserved[to], true) {
            return None;
        }
        Some(self.keys.saturating_mul(batch) / self.seen.max(1))
    }
}

/// Reads one RDB stream on this shard and spreads its keys over the shards.
pub(crate) async fn load_file(
    sh: &Rc<Shard>,
    path: &Path,
    dup: OnDuplicate,
) -> Result<Counts, String> {
    let name = path.display().to_string();
    let reader = manifest::open_rdb(path)
        .map_err(|e| format!("Can't open the snapshot file {name}: {e}"))?;
    let limits = LoadLimits::from_config(&sh.state.borrow().config);
    let databases = sh.state.borrow().dbs.len();
    let mut rdb =
        RdbReader::new(reader, limits).map_err(|e| format!("Bad snapshot file {name}: {e}"))?;
    let n = sh.nshards();
    let mut batches: Vec<Vec<(usize, RdbEntry)>> = (0..n).map(|_| Vec::new()).collect();
    let mut db = 0usize;
    // Per database: RESIZEDB's key count, the entries read so far, and the shards whose share
    // of it was reserved (a shard's share is estimated from the first batch sent to it).
    let mut hints: Vec<SizeHint> = (0..databases)
        .map(|_| SizeHint {
            keys: 0,
            seen: 0,
            reserved: vec![false; n],
        })
        .collect();
    let mut counts = Counts::default();
    let now = crate::server::globals::unix_ms();
    loop {
        let item = rdb.next_item().map_err(|e| {
            format!(
                "Short read or bad format loading {} at offset {}: {}",
                name,
                rdb.offset(),
                e
            )
        })?;
        let Some(item) = item else {
            break;
        };
        match item {
            RdbItem::Aux { .. } => {}
            RdbItem::ResizeDb { keys, .. } => {
                let h = &mut hints[db];
                h.keys = usize::try_from(keys).unwrap_or(0);
                h.seen = 0;
                h.reserved.iter_mut().for_each(|r| *r = false);
            }
            RdbItem::SelectDb(d) => {
                if d as usize >= databases {
                    return Err(format!(
                        "FATAL: Data file {name} was created with a server configured to handle more than {databases} databases. Exiting"
                    ));
                }
                db = d as usize;
            }
            RdbItem::Function(code) => {
                crate::scripting::functions::restore_library(
                    &sh.globals.scripting,
                    code,
                    dup == OnDuplicate::Replace,
                )
                .map_err(|e| format!("Can't load a function library from {name}: {e}"))?;
            }
            RdbItem::Entry(e) => {
                if e.expire_ms != 0 && e.expire_ms <= now {
                    counts.expired += 1;
                    continue;
                }
                counts.loaded += 1;
                hints[db].seen += 1;
                let to = sh.shard_of(&e.key);
                batches[to].push((db, e));
                if batches[to].len() >= BATCH {
                    // A full-size replacement: one that grew from empty again would copy its
                    // entries about ten times on the way to BATCH.
                    let batch = std::mem::replace(&mut batches[to], Vec::with_capacity(BATCH));
                    let reserve = hints[db].share(to, batch.len()).map(|k| (db, k));
                    send(sh, to, batch, reserve, dup)
                        .await
                        .map_err(|e| format!("Can't load {name}: {e}"))?;
                }
            }
        }
    }
    for (to, b) in batches.into_iter().enumerate() {
        if !b.is_empty() {
            send(sh, to, b, None, dup)
                .await
                .map_err(|e| format!("Can't load {name}: {e}"))?;
        }
    }
    Ok(counts)
}

async fn send(
    sh: &Rc<Shard>,
    to: usize,
    batch: Vec<(usize, RdbEntry)>,
    reserve: Reserve,
    dup: OnDuplicate,
) -> Result<(), String> {
    sh.run_on(to, move |owner| insert_batch(owner, batch, reserve, dup))
        .await
        .map_err(|_| "a shard is gone".to_string())?
}

/// Startup on shard 0 without the AOF: loads the snapshot the manifest in `dir` names, else a
/// `dbfilename` RDB file (e.g. one stock Redis wrote), else nothing.
pub async fn startup(sh: &Rc<Shard>) -> Result<(), String> {
    let started = Instant::now();
    let g = &sh.globals.snapshot;
    let counts = load_saved(sh, OnDuplicate::Fail).await?;
    if let Some(c) = counts {
        g.loaded_keys.store(c.loaded, Ordering::Relaxed);
        g.loaded_expired.store(c.expired, Ordering::Relaxed);
        tracing::info!(
            "Done loading RDB, keys loaded: {}, keys expired: {}.",
            c.loaded,
            c.expired
        );
        tracing::info!(
            "DB loaded from disk: {:.3} seconds",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Loads what the last save left in `dir` (the snapshot its manifest names, else a `dbfilename`
/// RDB file) into the keyspaces as they are. None: there is nothing to load.
pub(crate) async fn load_saved(sh: &Rc<Shard>, dup: OnDuplicate) -> Result<Option<Counts>, String> {
    let settings = Settings::from_config(&sh.state.borrow().config);
    let g = &sh.globals.snapshot;
    match SnapshotManifest::read(&settings.manifest_path())? {
        Some(m) => {
            let seq = m
                .files
                .iter()
                .map(|f| manifest::seq_of(&f.name))
                .max()
                .unwrap_or(0);
            g.seq.fetch_max(seq, Ordering::Relaxed);
            if m.shards != sh.nshards() {
                tracing::info!(
                    "Loading a snapshot written by {} shards into {}: re-routing by key",
                    m.shards,
                    sh.nshards()
                );
            }
            let mut futs = Vec::new();
            for (i, f) in m.files.iter().enumerate() {
                let path = settings.dir.join(&f.name);
                let reader_shard = i % sh.nshards();
                futs.push(sh.run_task_on(reader_shard, move |owner| async move {
                    load_file(&owner, &path, dup).await
                }));
            }
            let mut total = Counts::default();
            for r in futures::future::join_all(futs).await {
                let c = r.ok_or("a shard is gone")??;
                total.loaded += c.loaded;
                total.expired += c.expired;
            }
            Ok(Some(total))
        }
        None => {
            let path = settings.dir.join(&settings.dbfilename);
            if path.exists() {
                Ok(Some(load_file(sh, &path, dup).await?))
            } else {
                Ok(None)
            }
        }
    }
}

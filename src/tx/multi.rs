//! MULTI/EXEC/DISCARD/WATCH/UNWATCH: a client's queued block and its watched keys.
//!
//! The connection owns the queue (`MultiState`) and its WATCH flag (`WatchState`). A WATCH
//! registers the flag with each key's owner (`Db::watch`); any change to the key there sets it.
//! EXEC runs the queued block as one unit through `run_atomic` with the watched keys added to
//! its lock set and the flag checked at the instant the block runs, so a block either sees no
//! change to its watched keys or does not run at all.
//!
//! A block that contains connection-level commands (SELECT, FLUSHALL, KEYS, CLIENT...) runs
//! under whole-shard locks on every shard instead, one command after another.
//!
//! This module never touches another shard's data except through jobs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::LocalBoxFuture;

use super::locks::LockKey;
use super::{run_atomic_watched, TxCmd};
use crate::commands::{cmd, flags::*, CommandSpec, Exec, NO_KEYS};
use crate::protocol::parse::Args;
use crate::server::conn::Conn;
use crate::shard::Shard;

/// The queue of a client between MULTI and EXEC/DISCARD.
#[derive(Default)]
pub struct MultiState {
    pub cmds: Vec<(&'static CommandSpec, Args)>,
    /// A command was rejected while queueing: EXEC answers EXECABORT.
    pub failed: bool,
}

/// A client's WATCHed keys and the flag their owners set on any change.
pub struct WatchState {
    pub flag: Arc<AtomicBool>,
    /// Watched (db, key) pairs, in WATCH order, each once (a client may watch many thousands).
    pub(crate) keys: super::Distinct<(usize, Bytes)>,
}

/// Runs `f(owner, keys)` on each shard that owns some of `keys`, one message per shard.
async fn on_owners(
    shard: &Shard,
    keys: &[(usize, Bytes)],
    f: impl Fn(&Shard, Vec<(usize, Bytes)>) + Clone + Send + 'static,
) {
    let mut by_owner: std::collections::BTreeMap<usize, Vec<(usize, Bytes)>> = Default::default();
    for (db, k) in keys {
        by_owner
            .entry(shard.shard_of(k))
            .or_default()
            .push((*db, k.clone()));
    }
    let futs: Vec<_> = by_owner
        .into_iter()
        .map(|(owner, ks)| {
            let f = f.clone();
            shard.run_on(owner, move |sh| f(sh, ks))
        })
        .collect();
    futures::future::join_all(futs).await;
}

pub fn specs() -> Vec<CommandSpec> {
    let g = "transactions";
    vec![
        cmd(
            "multi",
            1,
            NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
            NO_KEYS,
            g,
            "1.2.0",
            "O(1)",
            "Starts a transaction.",
            Exec::Conn(multi),
        ),
        cmd(
            "exec",
            1,
            NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG,
            NO_KEYS,
            g,
            "1.2.0",
            "Depends on commands in the transaction",
            "Executes all commands in a transaction.",
            Exec::Conn(exec),
        ),
        cmd(
            "discard",
            1,
            NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
            NO_KEYS,
            g,
            "2.0.0",
            "O(N), when N is the number of queued commands",
            "Discards a transaction.",
            Exec::Conn(discard),
        ),
        cmd(
            "watch",
            -2,
            NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
            (1, -1, 1),
            g,
            "2.2.0",
            "O(1) for every key.",
            "Monitors changes to keys to determine the execution of a transaction.",
            Exec::Conn(watch),
        )
        .key_flags(&["RO"]),
        cmd(
            "unwatch",
            1,
            NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
            NO_KEYS,
            g,
            "2.2.0",
            "O(1)",
            "Forgets about all watched keys.",
            Exec::Conn(unwatch),
        ),
    ]
}

/// Whether a command is executed at once rather than queued inside MULTI.
pub fn runs_immediately_in_multi(name: &str) -> bool {
    matches!(
        name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

fn multi(c: &mut Conn, _a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        if c.multi.is_some() {
            return c.reply().error("ERR MULTI calls can not be nested");
        }
        c.multi = Some(MultiState::default());
        c.reply().ok();
    })
}

fn discard(c: &mut Conn, _a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        if c.multi.take().is_none() {
            return c.reply().error("ERR DISCARD without MULTI");
        }
        unwatch_all(c).await;
        c.reply().ok();
    })
}

fn watch(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        if c.multi.is_some() {
            return c.reply().error("ERR WATCH inside MULTI is not allowed");
        }
        let flag = c
            .watch
            .get_or_insert_with(|| WatchState {
                flag: Arc::new(AtomicBool::new(false)),
                keys: Default::default(),
            })
            .flag
            .clone();
        let db = c.db;
        let w = c.watch.as_mut().expect("just set");
        let mut new = Vec::new();
        for key in &a[1..] {
            if w.keys.push((db, key.clone())) {
                new.push((db, key.clone()));
            }
        }
        // Registered on every owner before the reply: from then on any change is seen.
        on_owners(&c.shard, &new, move |sh, ks| {
            let mut st = sh.state.borrow_mut();
            for (db, k) in ks {
                st.dbs[db].watch(&k, flag.clone());
                sh.globals
                    .watched_keys
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
        .await;
        c.reply().ok();
    })
}

fn unwatch(c: &mut Conn, _a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        unwatch_all(c).await;
        c.reply().ok();
    })
}

/// Forgets every WATCH of this client (EXEC, DISCARD, UNWATCH, RESET, disconnect).
pub async fn unwatch_all(c: &mut Conn) {
    if let Some(w) = c.watch.take() {
        forget_watches(&c.shard, w).await;
    }
}

pub async fn forget_watches(shard: &Shard, w: WatchState) {
    let flag = w.flag;
    on_owners(shard, w.keys.as_slice(), move |sh, ks| {
        let mut st = sh.state.borrow_mut();
        for (db, k) in ks {
            st.dbs[db].unwatch(&k, &flag);
            sh.globals
                .watched_keys
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    })
    .await;
}

fn exec(c: &mut Conn, _a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let Some(m) = c.multi.take() else {
            return c.reply().error("ERR EXEC without MULTI");
        };
        let watch = c.watch.take();
        if m.failed {
            if let Some(w) = watch {
                forget_watches(&c.shard, w).await;
            }
            return c
                .reply()
                .error("EXECABORT Transaction discarded because of previous errors.");
        }
        let aborted = watch
            .as_ref()
            .is_some_and(|w| w.flag.load(Ordering::Acquire));
        if aborted {
            forget_watches(&c.shard, watch.expect("checked")).await;
            return c.reply().null_array();
        }
        // The rules may have changed since the commands were queued: Redis checks each one
        // again when EXEC runs it. A block with a refused command runs command by command.
        c.sync_user();
        let refused =
            !c.perms.unrestricted && m.cmds.iter().any(|(s, a)| c.perms.check(s, a).is_err());
        if !refused && m.cmds.iter().all(|(s, _)| matches!(s.exec, Exec::Shard(_))) {
            exec_keyed_block(c, m, watch.as_ref()).await;
        } else {
            exec_mixed_block(c, m, watch.as_ref()).await;
        }
        if let Some(w) = watch {
            forget_watches(&c.shard, w).await;
        }
    })
}

/// A block of keyed commands only: one atomic unit over exactly the shards involved.
async fn exec_keyed_block(c: &mut Conn, m: MultiState, watch: Option<&WatchState>) {
    let db = c.db;
    let n = m.cmds.len();
    let cmds: Vec<TxCmd> = m
        .cmds
        .into_iter()
        .map(|(spec, args)| TxCmd::new(spec, args, db))
        .collect();
    let watched: Vec<LockKey> = watch
        .map(|w| {
            w.keys
                .as_slice()
                .iter()
                .map(|(d, k)| LockKey {
                    db: *d as u32,
                    key: k.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let flag = watch.map(|w| w.flag.clone());
    let shard = c.shard.clone();
    let label = c.label.clone();
    match run_atomic_watched(&shard, cmds, watched, flag, c.resp3, &label).await {
        Ok(Some(replies)) => {
            c.reply().array(n);
            c.out.extend_from_slice(&replies.buf);
        }
        Ok(None) => c.reply().null_array(),
        Err(e) => c.reply().error(e),
    }
}

/// A block with connection-level commands: every shard is locked whole for the duration, and
/// the commands run one after another as they would outside MULTI.
async fn exec_mixed_block(c: &mut Conn, m: MultiState, watch: Option<&WatchState>) {
    let shard = c.shard.clone();
    let held = match super::lock_all_shards(&shard).await {
        Ok(h) => h,
        Err(e) => return c.reply().error(e),
    };
    // Watched keys that expired before this instant count as changed.
    if let Some(w) = watch {
        on_owners(&shard, w.keys.as_slice(), |sh, ks| {
            let now = crate::server::globals::unix_ms();
            let mut st = sh.state.borrow_mut();
            for (db, key) in ks {
                st.dbs[db].exists(&key, now);
            }
        })
        .await;
        if w.flag.load(Ordering::Acquire) {
            held.release_all().await;
            return c.reply().null_array();
        }
    }
    c.reply().array(m.cmds.len());
    c.in_exec = Some(held.tx());
    // Whatever the block writes on any shard is recovered all or nothing.
    let unit = crate::persistence::aof::units::global_begin(&shard, held.tx()).await;
    for (spec, args) in m.cmds {
        if let Some(refusal) = c.acl_refusal_in_exec(spec, &args) {
            c.reply().error(&refusal);
            continue;
        }
        c.execute_in_exec(spec, args).await;
    }
    c.in_exec = None;
    unit.end().await;
    held.release_all().await;
}

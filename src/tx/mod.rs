//! Multi-shard coordination: commands whose keys live on more than one shard.
//!
//! The connection's shard acts as coordinator. It splits the command by owning shard, ships each
//! part to its shard as a job, and combines the results into one reply. Each part runs
//! atomically on its shard (a job runs to completion without yielding), so a per-shard part is
//! never observed half-done.
//!
//! What this layer does not yet guarantee is isolation *across* shards: another client can
//! observe one shard's part before another's (for example an MGET racing an MSET). The
//! cross-shard transaction issue replaces `run_parts` with a scheduled, ordered transaction
//! (global sequence numbers and per-shard queues); the split/combine logic per command kind
//! below stays as it is. No code here holds a shard borrow across an `.await`.

use bytes::{Bytes, BytesMut};

use crate::commands::{self, string_family, CommandSpec, Ctx, MultiKind};
use crate::protocol::Reply;
use crate::server::conn::{Conn, ERR_SHARD_GONE};
use crate::server::globals::unix_ms;
use crate::shard::Shard;
use crate::types::Entry;

/// Runs `f` with a command context for `db` on the given shard (inside a job).
pub fn with_ctx<R>(sh: &Shard, db: usize, f: impl FnOnce(&mut Ctx) -> R) -> R {
    let mut st = sh.state.borrow_mut();
    let mut ctx = Ctx {
        st: &mut st,
        db,
        now_ms: unix_ms(),
        globals: &sh.globals,
    };
    f(&mut ctx)
}

/// Key arguments grouped by owning shard: (shard, positions in `args`).
fn group_by_shard(
    sh: &Shard,
    positions: impl Iterator<Item = usize>,
    args: &[Bytes],
) -> Vec<(usize, Vec<usize>)> {
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for pos in positions {
        let s = sh.shard_of(&args[pos]);
        match groups.iter_mut().find(|(g, _)| *g == s) {
            Some((_, v)) => v.push(pos),
            None => groups.push((s, vec![pos])),
        }
    }
    groups
}

/// Executes a multi-key command whose keys span shards, writing its reply to the connection.
pub async fn execute_cross_shard(c: &mut Conn, spec: &'static CommandSpec, args: Vec<Bytes>) {
    let Some(kind) = spec.multi else {
        return c
            .reply()
            .error("CROSSSLOT Keys in request don't hash to the same slot");
    };
    let db = c.db;
    let res: Result<(), &'static str> = match kind {
        MultiKind::Mget => mget(c, &args, db).await,
        MultiKind::Mset => {
            if !string_family::mset_arity_ok(&args) {
                c.reply().error(&commands::arity_error(spec.name));
                Ok(())
            } else {
                mset(c, &args, db).await.map(|_| c.reply().ok())
            }
        }
        MultiKind::Msetnx => msetnx(c, &args, db, spec).await,
        MultiKind::SumInt => sum_int(c, spec, &args, db).await,
        MultiKind::Rename { nx } => rename(c, &args, db, nx).await,
        MultiKind::Copy => copy(c, &args, db).await,
        MultiKind::Lcs => lcs(c, &args, db).await,
    };
    if let Err(e) = res {
        c.reply().error(e);
    }
}

async fn mget(c: &mut Conn, args: &[Bytes], db: usize) -> Result<(), &'static str> {
    let groups = group_by_shard(&c.shard, 1..args.len(), args);
    let mut futs = Vec::new();
    for (s, positions) in &groups {
        let keys: Vec<Bytes> = positions.iter().map(|&p| args[p].clone()).collect();
        futs.push(c.shard.run_on(*s, move |sh| {
            with_ctx(sh, db, |ctx| string_family::mget_values(ctx, &keys))
        }));
    }
    let results = futures::future::join_all(futs).await;
    let mut values: Vec<Option<Bytes>> = vec![None; args.len() - 1];
    for ((_, positions), res) in groups.iter().zip(results) {
        let vals = res.map_err(|_| ERR_SHARD_GONE)?;
        for (&p, v) in positions.iter().zip(vals) {
            values[p - 1] = v;
        }
    }
    string_family::reply_mget(&mut c.reply(), &values);
    Ok(())
}

async fn mset(c: &mut Conn, args: &[Bytes], db: usize) -> Result<(), &'static str> {
    let groups = group_by_shard(&c.shard, (1..args.len()).step_by(2), args);
    let mut futs = Vec::new();
    for (s, positions) in &groups {
        let pairs: Vec<Bytes> = positions
            .iter()
            .flat_map(|&p| [args[p].clone(), args[p + 1].clone()])
            .collect();
        futs.push(c.shard.run_on(*s, move |sh| {
            with_ctx(sh, db, |ctx| string_family::mset_pairs(ctx, &pairs))
        }));
    }
    for r in futures::future::join_all(futs).await {
        r.map_err(|_| ERR_SHARD_GONE)?;
    }
    Ok(())
}

async fn msetnx(
    c: &mut Conn,
    args: &[Bytes],
    db: usize,
    spec: &CommandSpec,
) -> Result<(), &'static str> {
    if !string_family::mset_arity_ok(args) {
        c.reply().error(&commands::arity_error(spec.name));
        return Ok(());
    }
    let groups = group_by_shard(&c.shard, (1..args.len()).step_by(2), args);
    let mut futs = Vec::new();
    for (s, positions) in &groups {
        let keys: Vec<Bytes> = positions.iter().map(|&p| args[p].clone()).collect();
        futs.push(c.shard.run_on(*s, move |sh| {
            let now = unix_ms();
            let mut st = sh.state.borrow_mut();
            keys.iter().any(|k| st.dbs[db].exists(k, now))
        }));
    }
    for r in futures::future::join_all(futs).await {
        if r.map_err(|_| ERR_SHARD_GONE)? {
            c.reply().int(0);
            return Ok(());
        }
    }
    mset(c, args, db).await?;
    c.reply().int(1);
    Ok(())
}

/// DEL, UNLINK, EXISTS, TOUCH: the command's own handler on each shard's keys, replies summed.
async fn sum_int(
    c: &mut Conn,
    spec: &'static CommandSpec,
    args: &[Bytes],
    db: usize,
) -> Result<(), &'static str> {
    let commands::Exec::Shard(handler) = spec.exec else {
        return Err("ERR internal error: not a keyed command");
    };
    let groups = group_by_shard(&c.shard, 1..args.len(), args);
    let mut futs = Vec::new();
    for (s, positions) in &groups {
        let mut sub: Vec<Bytes> = Vec::with_capacity(positions.len() + 1);
        sub.push(args[0].clone());
        sub.extend(positions.iter().map(|&p| args[p].clone()));
        futs.push(c.shard.run_on(*s, move |sh| {
            with_ctx(sh, db, |ctx| {
                let mut buf = BytesMut::new();
                handler(ctx, &sub, &mut Reply::new(&mut buf, false));
                parse_int_reply(&buf)
            })
        }));
    }
    let mut total = 0i64;
    for r in futures::future::join_all(futs).await {
        total += r
            .map_err(|_| ERR_SHARD_GONE)?
            .ok_or("ERR internal error: bad sub-reply")?;
    }
    c.reply().int(total);
    Ok(())
}

fn parse_int_reply(buf: &[u8]) -> Option<i64> {
    if buf.first() != Some(&b':') || buf.len() < 3 {
        return None;
    }
    commands::args::parse_i64(&buf[1..buf.len() - 2])
}

async fn rename(c: &mut Conn, args: &[Bytes], db: usize, nx: bool) -> Result<(), &'static str> {
    let (src, dst) = (args[1].clone(), args[2].clone());
    let (ss, ds) = (c.shard.shard_of(&src), c.shard.shard_of(&dst));
    // RENAMENX must report a missing source before looking at the destination, and must not
    // take the source before knowing the destination is free: two extra hops. Plain RENAME
    // takes the source directly (a missing source comes back as None).
    if nx {
        let k = src.clone();
        let exists = c
            .shard
            .run_on(ss, move |sh| {
                sh.state.borrow_mut().dbs[db].exists(&k, unix_ms())
            })
            .await
            .map_err(|_| ERR_SHARD_GONE)?;
        if !exists {
            return Err("ERR no such key");
        }
        let k = dst.clone();
        let taken = c
            .shard
            .run_on(ds, move |sh| {
                sh.state.borrow_mut().dbs[db].exists(&k, unix_ms())
            })
            .await
            .map_err(|_| ERR_SHARD_GONE)?;
        if taken {
            c.reply().int(0);
            return Ok(());
        }
    }
    let k = src.clone();
    let entry: Option<Entry> = c
        .shard
        .run_on(ss, move |sh| {
            let mut st = sh.state.borrow_mut();
            let now = unix_ms();
            if st.dbs[db].exists(&k, now) {
                st.dbs[db].remove(&k)
            } else {
                None
            }
        })
        .await
        .map_err(|_| ERR_SHARD_GONE)?;
    let Some(entry) = entry else {
        return Err("ERR no such key");
    };
    c.shard
        .run_on(ds, move |sh| {
            sh.state.borrow_mut().dbs[db].insert(&dst, entry.value, entry.expire_at, unix_ms())
        })
        .await
        .map_err(|_| ERR_SHARD_GONE)?;
    if nx {
        c.reply().int(1);
    } else {
        c.reply().ok();
    }
    Ok(())
}

async fn copy(c: &mut Conn, args: &[Bytes], db: usize) -> Result<(), &'static str> {
    let databases = c.shard.state.borrow().dbs.len();
    let (dst_db, replace) = crate::commands::keys_family::copy_options(args, db, databases)?;
    let (src, dst) = (args[1].clone(), args[2].clone());
    let (ss, ds) = (c.shard.shard_of(&src), c.shard.shard_of(&dst));
    let value = c
        .shard
        .run_on(ss, move |sh| {
            with_ctx(sh, db, |ctx| {
                ctx.lookup_read(&src)
                    .map(|e| (e.value.clone(), e.expire_at))
            })
        })
        .await
        .map_err(|_| ERR_SHARD_GONE)?;
    let Some((value, expire_at)) = value else {
        c.reply().int(0);
        return Ok(());
    };
    let done = c
        .shard
        .run_on(ds, move |sh| {
            let now = unix_ms();
            let mut st = sh.state.borrow_mut();
            let d = &mut st.dbs[dst_db];
            if d.exists(&dst, now) && !replace {
                return false;
            }
            d.insert(&dst, value, expire_at, now);
            true
        })
        .await
        .map_err(|_| ERR_SHARD_GONE)?;
    c.reply().int(done as i64);
    Ok(())
}

async fn lcs(c: &mut Conn, args: &[Bytes], db: usize) -> Result<(), &'static str> {
    let mut inputs = Vec::new();
    for key in [args[1].clone(), args[2].clone()] {
        let s = c.shard.shard_of(&key);
        let v = c
            .shard
            .run_on(s, move |sh| {
                with_ctx(sh, db, |ctx| string_family::lcs_input(ctx, &key))
            })
            .await
            .map_err(|_| ERR_SHARD_GONE)?;
        inputs.push(v);
    }
    let y = inputs.pop().unwrap_or(Ok(Bytes::new()));
    let x = inputs.pop().unwrap_or(Ok(Bytes::new()));
    let max = c.shard.state.borrow().config.proto_max_bulk_len;
    string_family::lcs_reply(x, y, args, max, &mut c.reply());
    Ok(())
}

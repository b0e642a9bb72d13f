//! Loading the AOF at startup and for DEBUG LOADAOF: each file is read and checked record by
//! record, then replayed through the ordinary command path (`execute_keyed`, or `tx` for
//! commands whose keys now span shards). With the same shard count every shard replays its own
//! files; with another count shard 0 re-routes every record by key.
//!
//! Runs before any shard accepts clients, or under DEBUG LOADAOF with every shard held (Redis
//! blocks for it too); reading the files with blocking std::fs is confined to those. Must never
//! load a file half: a damaged record refuses the start, a torn tail is dropped only under
//! `aof-load-truncated yes`.

use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::manifest::{FileKind, Manifest};
use super::records::{self, Read};
use super::{Settings, TX_BEGIN, TX_END};
use crate::commands::{self, Exec};
use crate::shard::slot::SlotMap;
use crate::shard::{execute_keyed, ClientLabel, Shard, ShardState};
use std::collections::{HashMap, HashSet};

/// Reads every complete record of one file.
pub fn read_file(path: &Path, load_truncated: bool) -> Result<Vec<Vec<Bytes>>, String> {
    let name = path.display();
    let mut buf = std::fs::read(path)
        .map_err(|e| format!("Can't open the append-only file {}: {}", name, e))?;
    buf.truncate(records::log_len(&buf));
    let mut out = Vec::new();
    let mut next_at = 0;
    while let Some((at, read)) = records::read_log_record(&buf, next_at) {
        match read {
            Read::Record(args, next) => {
                out.push(args);
                next_at = next;
            }
            Read::Incomplete if load_truncated => {
                tracing::warn!(
                    "!!! Warning: short read while loading the AOF file {}!!! Truncating the AOF at offset {} (last complete record)",
                    name,
                    at
                );
                break;
            }
            Read::Incomplete => {
                return Err(format!(
                    "Unexpected end of file reading the append only file {} at offset {}. Set the 'aof-load-truncated' configuration option to yes and restart the server.",
                    name, at
                ));
            }
            Read::Bad(why) => {
                return Err(format!(
                    "Bad file format reading the append only file {} at offset {}: {}",
                    name, at, why
                ));
            }
        }
    }
    Ok(out)
}

fn parse_db(args: &[Bytes], databases: usize) -> Result<usize, String> {
    std::str::from_utf8(args.get(1).map(|b| &b[..]).unwrap_or(b""))
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&d| d < databases)
        .ok_or_else(|| "Bad SELECT in the append only file".to_string())
}

/// Applies the keyless records (FLUSHDB, FLUSHALL, SWAPDB) of old shard `origin` to this shard:
/// only keys that shard owned are affected (all keys when the layouts match).
fn apply_keyless(
    st: &mut ShardState,
    args: &[Bytes],
    db: usize,
    origin: Option<(&SlotMap, usize)>,
) -> Result<(), String> {
    let owned = |k: &[u8]| origin.is_none_or(|(m, s)| m.shard_of_key(k) == s);
    // The keys of database `d` that the record's shard owned.
    let owned_keys = |st: &ShardState, d: usize| -> Vec<Bytes> {
        st.dbs[d]
            .keys
            .iter()
            .filter(|(k, _)| owned(k))
            .map(|(k, _)| Bytes::copy_from_slice(k))
            .collect()
    };
    let clear = |st: &mut ShardState, d: usize| {
        for k in owned_keys(st, d) {
            st.dbs[d].remove(&k);
        }
    };
    let name = args[0].to_ascii_lowercase();
    match &name[..] {
        b"flushdb" => clear(st, db),
        b"flushall" => {
            for d in 0..st.dbs.len() {
                clear(st, d);
            }
        }
        b"swapdb" => {
            let n = st.dbs.len();
            let x = parse_db(&args[..2], n)?;
            let y = parse_db(
                &[args[0].clone(), args.get(2).cloned().unwrap_or_default()],
                n,
            )?;
            let take = |st: &mut ShardState, d: usize| {
                owned_keys(st, d)
                    .into_iter()
                    .filter_map(|k| st.dbs[d].remove(&k).map(|e| (k, e)))
                    .collect::<Vec<_>>()
            };
            let from_x = take(st, x);
            let from_y = take(st, y);
            for (k, e) in from_x {
                st.dbs[y].insert_entry(&k, e, 0);
            }
            for (k, e) in from_y {
                st.dbs[x].insert_entry(&k, e, 0);
            }
        }
        _ => {
            return Err(format!(
                "Unknown command '{}' reading the append only file",
                String::from_utf8_lossy(&args[0])
            ))
        }
    }
    Ok(())
}

/// Replays records on this shard (their keys all belong here). The shard's log, when it has
/// one (DEBUG LOADAOF loads while the AOF is on), is set aside meanwhile: what is replayed is
/// already in the files and must not be logged again. One synchronous step, so nothing else
/// runs on the shard without its log.
fn replay_local(sh: &Shard, recs: &[Vec<Bytes>], db: &mut usize) -> Result<(), String> {
    let mut st = sh.state.borrow_mut();
    st.loading = true;
    let log = st.aof.take();
    let result = replay_records(&mut st, &sh.globals, recs, db);
    st.aof = log;
    st.loading = false;
    result
}

fn replay_records(
    st: &mut ShardState,
    globals: &crate::server::globals::Globals,
    recs: &[Vec<Bytes>],
    db: &mut usize,
) -> Result<(), String> {
    let who = ClientLabel::default();
    let mut out = BytesMut::new();
    let databases = st.dbs.len();
    for args in recs {
        if args[0].eq_ignore_ascii_case(b"select") {
            *db = parse_db(args, databases)?;
            continue;
        }
        if args[0].eq_ignore_ascii_case(b"function") {
            replay_function(globals, args);
            continue;
        }
        let spec = logged_command(&args[0])?;
        if runs_keyed(spec) {
            execute_keyed(st, globals, spec, args, *db, false, &who, &mut out);
            out.clear();
        } else {
            apply_keyless(st, args, *db, None)?;
        }
    }
    Ok(())
}

/// Applies a logged FUNCTION change to the process-wide library registry. Like Redis's loader,
/// a change that fails now (it cannot, unless the file was edited) is reported and skipped.
fn replay_function(globals: &crate::server::globals::Globals, args: &[Bytes]) {
    if let Err(e) = crate::scripting::functions::replay(&globals.scripting, args) {
        tracing::warn!("AOF: a FUNCTION record could not be applied: {}", e);
    }
}

/// The command a record names, or the error that refuses the file.
fn logged_command(name: &[u8]) -> Result<&'static commands::CommandSpec, String> {
    commands::lookup(name).ok_or_else(|| {
        format!(
            "Unknown command '{}' reading the append only file",
            String::from_utf8_lossy(name)
        )
    })
}

/// Whether a record replays through the keyed path (`execute_keyed`) rather than as a
/// keyless, shard-wide command.
fn runs_keyed(spec: &commands::CommandSpec) -> bool {
    matches!(
        (spec.exec, spec.keyed_body),
        (Exec::Shard(_), _) | (Exec::Conn(_), Some(_))
    )
}

fn marker_id(args: &[Bytes]) -> Option<u64> {
    std::str::from_utf8(args.get(1)?).ok()?.parse().ok()
}

/// What the loader found about the bracketed units in the logs.
#[derive(Debug, Default, PartialEq)]
struct Units {
    /// Units whose every part is complete (applied).
    complete: HashSet<u64>,
    /// Shards whose log ends inside a bracket (torn by a crash), with that unit's id.
    torn: Vec<(usize, u64)>,
    /// Units with closed parts on some shards but missing on others: (id, have, need).
    partial: Vec<(u64, usize, usize)>,
}

/// Sorts the bracketed units of the logs into complete ones and the rest (all-or-nothing
/// recovery).
fn find_units(logs: &[Vec<Vec<Bytes>>]) -> Units {
    let mut parts: HashMap<u64, (usize, usize)> = HashMap::new();
    let mut units = Units::default();
    for (shard, recs) in logs.iter().enumerate() {
        let mut open: Option<(u64, usize)> = None;
        for args in recs {
            if args[0][..] == *TX_BEGIN {
                let n = args
                    .get(2)
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(usize::MAX);
                open = marker_id(args).map(|id| (id, n));
            } else if args[0][..] == *TX_END {
                if let (Some((id, n)), Some(end)) = (open.take(), marker_id(args)) {
                    if id == end {
                        let e = parts.entry(id).or_insert((0, n));
                        e.0 += 1;
                    }
                }
            }
        }
        if let Some((id, _)) = open {
            units.torn.push((shard, id));
        }
    }
    for (id, (have, need)) in parts {
        if have == need {
            units.complete.insert(id);
        } else {
            units.partial.push((id, have, need));
        }
    }
    units
}

/// Refuses the start over units that did not reach the logs whole, unless
/// `aof-load-truncated yes` (then they are dropped whole, with a warning).
fn check_units(units: &Units, load_truncated: bool) -> Result<(), String> {
    for &(shard, id) in &units.torn {
        if !load_truncated {
            return Err(format!(
                "Unexpected end of file reading the append only file of shard {}: transaction {} is not complete. Set the 'aof-load-truncated' configuration option to yes and restart the server.",
                shard, id
            ));
        }
        tracing::warn!(
            "!!! Warning: the AOF of shard {} ends inside transaction {} !!! Dropping that transaction",
            shard,
            id
        );
    }
    for &(id, have, need) in &units.partial {
        if !load_truncated {
            return Err(format!(
                "Unexpected end of file reading the append only files: multi-shard transaction {} reached {} of its {} shard logs. Set the 'aof-load-truncated' configuration option to yes and restart the server.",
                id, have, need
            ));
        }
        tracing::warn!(
            "!!! Warning: multi-shard transaction {} reached {} of its {} shard logs !!! Dropping it",
            id,
            have,
            need
        );
    }
    Ok(())
}

/// Drops the markers, and the parts of units that are not complete everywhere (keeping their
/// SELECTs: the records after them are written relative to the database they selected).
fn strip_units(recs: Vec<Vec<Bytes>>, complete: &HashSet<u64>) -> Vec<Vec<Bytes>> {
    let mut out = Vec::with_capacity(recs.len());
    let mut skipping = false;
    let mut dropped = 0usize;
    for args in recs {
        if args[0][..] == *TX_BEGIN {
            skipping = !marker_id(&args).is_some_and(|id| complete.contains(&id));
            continue;
        }
        if args[0][..] == *TX_END {
            skipping = false;
            continue;
        }
        if skipping && !args[0].eq_ignore_ascii_case(b"select") {
            dropped += 1;
        } else {
            out.push(args);
        }
    }
    if dropped > 0 {
        tracing::warn!(
            "AOF: dropped {} records of transactions that did not reach the logs whole",
            dropped
        );
    }
    out
}

/// Whether a file is an RDB stream (an `aof-use-rdb-preamble` base) rather than commands.
fn is_rdb(path: &Path) -> bool {
    let mut head = [0u8; 5];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .map(|()| {
            &head == b"REDIS" || head[..4] == crate::persistence::snapshot::manifest::ZSTD_MAGIC
        })
        .unwrap_or(false)
}

/// The files a manifest names, read and checked, ready to be applied.
pub struct Files {
    /// The shard count that wrote them.
    shards: usize,
    /// Each old shard's records.
    logs: Vec<Vec<Vec<Bytes>>>,
    /// RDB-preamble bases (read when applied).
    rdb_bases: Vec<std::path::PathBuf>,
}

/// Loads every file the manifest names.
pub async fn load(sh: &Rc<Shard>, settings: &Settings, m: &Manifest) -> Result<(), String> {
    apply(sh, read_all(settings, m)?).await
}

/// Reads and checks every command file the manifest names (nothing is applied yet).
pub fn read_all(settings: &Settings, m: &Manifest) -> Result<Files, String> {
    let mut logs = Vec::with_capacity(m.shards);
    let mut rdb_bases = Vec::new();
    for k in 0..m.shards {
        let mut recs = Vec::new();
        for f in m.files_of(k) {
            let path = settings.dir.join(&f.name);
            if f.kind == FileKind::Base && is_rdb(&path) {
                rdb_bases.push(path);
                continue;
            }
            recs.extend(read_file(&path, settings.load_truncated)?);
        }
        logs.push(recs);
    }
    let units = find_units(&logs);
    check_units(&units, settings.load_truncated)?;
    let logs = logs
        .into_iter()
        .map(|recs| strip_units(recs, &units.complete))
        .collect();
    Ok(Files {
        shards: m.shards,
        logs,
        rdb_bases,
    })
}

/// Applies files read by `read_all` to the keyspace.
pub async fn apply(sh: &Rc<Shard>, files: Files) -> Result<(), String> {
    let n = sh.nshards();
    let Files {
        shards,
        logs,
        rdb_bases,
    } = files;
    // RDB-preamble bases first: a shard's base holds only its own keys, so loading every base
    // before any incremental record keeps each key's history in order.
    for path in rdb_bases {
        crate::persistence::snapshot::load::load_file(
            sh,
            &path,
            crate::persistence::snapshot::load::OnDuplicate::Fail,
        )
        .await
        .map_err(|e| format!("Bad AOF base file: {e}"))?;
    }
    if shards == n {
        let mut futs = Vec::new();
        for (s, recs) in logs.into_iter().enumerate() {
            futs.push(sh.run_on(s, move |sh| -> Result<(), String> {
                let mut db = 0;
                replay_local(sh, &recs, &mut db)
            }));
        }
        for r in futures::future::join_all(futs).await {
            r.map_err(|_| "a shard is gone".to_string())??;
        }
        return Ok(());
    }
    tracing::info!(
        "Loading an AOF written by {} shards into {} shards: re-routing by key",
        shards,
        n
    );
    let old_map = Arc::new(SlotMap::new(shards));
    let label = Arc::new(ClientLabel::default());
    for (k, recs) in logs.into_iter().enumerate() {
        let mut db = 0usize;
        {
            for args in recs {
                if args[0].eq_ignore_ascii_case(b"select") {
                    db = parse_db(&args, sh.state.borrow().dbs.len())?;
                    continue;
                }
                if args[0].eq_ignore_ascii_case(b"function") {
                    replay_function(&sh.globals, &args);
                    continue;
                }
                let spec = logged_command(&args[0])?;
                if !runs_keyed(spec) {
                    let map = old_map.clone();
                    let res = sh
                        .run_on_all(move |sh| {
                            apply_keyless(&mut sh.state.borrow_mut(), &args, db, Some((&map, k)))
                        })
                        .await
                        .map_err(|_| "a shard is gone".to_string())?;
                    res.into_iter().collect::<Result<Vec<_>, _>>()?;
                    continue;
                }
                let mut targets: Vec<usize> =
                    spec.keys(&args).map(|p| sh.shard_of(&args[p])).collect();
                targets.sort_unstable();
                targets.dedup();
                if targets.len() <= 1 {
                    let to = targets.first().copied().unwrap_or(sh.id);
                    sh.run_on(to, move |sh| {
                        let mut d = db;
                        replay_local(sh, &[args], &mut d)
                    })
                    .await
                    .map_err(|_| "a shard is gone".to_string())??;
                } else {
                    // Replays populate no statistics (`loading` is for the shard-local ones).
                    let mut cmd = crate::tx::TxCmd::new(spec, args, db);
                    cmd.uncounted = true;
                    crate::tx::run_atomic(sh, vec![cmd], false, &label).await?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(parts: &[&str]) -> Vec<Bytes> {
        parts
            .iter()
            .map(|p| Bytes::copy_from_slice(p.as_bytes()))
            .collect()
    }

    #[test]
    fn a_multi_shard_unit_is_applied_only_when_every_part_is_complete() {
        let begin = |id: &str| rec(&["TESSERA.TXBEGIN", id, "2"]);
        let end = |id: &str| rec(&["TESSERA.TXEND", id]);
        // Unit 7 is complete on both shards; unit 9 lost its end marker on shard 1 (torn).
        let s0 = vec![
            begin("7"),
            rec(&["SET", "a", "1"]),
            end("7"),
            begin("9"),
            rec(&["SET", "a", "2"]),
            end("9"),
            rec(&["SET", "c", "3"]),
        ];
        let s1 = vec![
            begin("7"),
            rec(&["SET", "b", "1"]),
            end("7"),
            begin("9"),
            rec(&["SET", "b", "2"]),
        ];
        let units = find_units(&[s0.clone(), s1.clone()]);
        assert_eq!(units.complete, HashSet::from([7]));
        assert_eq!(units.torn, vec![(1, 9)]);
        assert_eq!(units.partial, vec![(9, 1, 2)]);
        assert!(check_units(&units, true).is_ok());
        let refused = check_units(&units, false).unwrap_err();
        assert!(refused.contains("Unexpected end of file"), "{refused}");
        assert_eq!(
            strip_units(s0, &units.complete),
            vec![rec(&["SET", "a", "1"]), rec(&["SET", "c", "3"])]
        );
        assert_eq!(
            strip_units(s1, &units.complete),
            vec![rec(&["SET", "b", "1"])]
        );
    }

    #[test]
    fn a_dropped_unit_keeps_its_selects_and_a_single_part_unit_needs_its_end() {
        let begin = |id: &str| rec(&["TESSERA.TXBEGIN", id, "1"]);
        let end = |id: &str| rec(&["TESSERA.TXEND", id]);
        let s0 = vec![
            begin("3"),
            rec(&["SELECT", "2"]),
            rec(&["INCR", "a"]),
            rec(&["INCR", "b"]),
            end("3"),
            begin("4"),
            rec(&["SELECT", "5"]),
            rec(&["INCR", "a"]),
        ];
        let units = find_units(std::slice::from_ref(&s0));
        assert_eq!(units.complete, HashSet::from([3]));
        assert_eq!(units.torn, vec![(0, 4)]);
        assert!(units.partial.is_empty());
        assert_eq!(
            strip_units(s0, &units.complete),
            vec![
                rec(&["SELECT", "2"]),
                rec(&["INCR", "a"]),
                rec(&["INCR", "b"]),
                rec(&["SELECT", "5"]),
            ]
        );
    }
}

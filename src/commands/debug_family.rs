//! DEBUG: debugging and testing helpers, gated by `enable-debug-command` (the command is
//! PROTECTED). Each subcommand does for real what Redis 7.0's does, on Tessera's own
//! structures, and answers with Redis's texts; README's compatibility notes list where the
//! figures or the printed layouts are Tessera's own.
//!
//! Not implemented, and answered with Redis's unknown-subcommand error, because Tessera lacks
//! the mechanism behind them: MALLCTL/MALLCTL-STR (no jemalloc), REPLICATE (no replication),
//! DROP-CLUSTER-PACKET-FILTER and CLUSTERLINK (no cluster bus), CLIENT-EVICTION (it lists
//! Redis's client memory buckets, which Tessera's client eviction does not keep), REPLYBUFFER
//! (no reply-buffer resizing cron), RESTART and CRASH-AND-RECOVER (no self re-exec),
//! QUICKLIST-PACKED-THRESHOLD (no plain list nodes).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::LocalBoxFuture;

use super::args::{atoi, eq_ic, text};
use crate::protocol::Reply;
use crate::server::conn::{Conn, ERR_SHARD_GONE};
use crate::server::globals::{random_hex_id, unix_ms};
use crate::shard::{Shard, ShardState};
use crate::types::{Entry, Value};

const DEBUG_HELP: &[&str] = &[
    "AOF-FLUSH-SLEEP <microsec>",
    "    Server will sleep before flushing the AOF, this is used for testing.",
    "ASSERT",
    "    Crash by assertion failed.",
    "CHANGE-REPL-ID",
    "    Change the replication IDs of the instance.",
    "    Dangerous: should be used only for testing the replication subsystem.",
    "CONFIG-REWRITE-FORCE-ALL",
    "    Like CONFIG REWRITE but writes all configuration options, including",
    "    keywords not listed in original configuration file or default values.",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for clients",
    "    unit tests to simulate Redis errors.",
    "LEAK <string>",
    "    Create a memory leak of the input string.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "HTSTATS <dbid>",
    "    Return hash table statistics of the specified Redis database.",
    "HTSTATS-KEY <key>",
    "    Like HTSTATS but for the hash table stored at <key>'s value.",
    "LOADAOF",
    "    Flush the AOF buffers on disk and reload the AOF in memory.",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "OOM",
    "    Crash the server simulating an out-of-memory error.",
    "PANIC",
    "    Crash the server simulating a panic.",
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas. Cluster slots are not respected so keys not belonging to the",
    "    current node can be created in cluster mode.",
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: string,",
    "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
    "    true, false.",
    "RELOAD [option ...]",
    "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
    "    * MERGE: conflicting keys will be loaded from RDB.",
    "    * NOFLUSH: the existing database will not be removed before load, but",
    "      conflicting keys will generate an exception and kill the server.",
    "    * NOSAVE: the database will be loaded from an existing RDB file.",
    "    Examples:",
    "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
    "      the database.",
    "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
    "      existing RDB file.",
    "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
    "      file to the database.",
    "SDSLEN <key>",
    "    Show low level SDS string info representing `key` and value.",
    "SEGFAULT",
    "    Crash the server with sigsegv.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "SET-SKIP-CHECKSUM-VALIDATION <0|1>",
    "    Enables or disables checksum checks for RDB files and RESTORE's payload.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    "STRINGMATCH-TEST",
    "    Run a fuzz tester against the stringmatchlen() function.",
    "STRUCTSIZE",
    "    Return the size of different Redis core C structures.",
    "LISTPACK <key>",
    "    Show low level info about the listpack encoding of <key>.",
    "QUICKLIST <key> [<0|1>]",
    "    Show low level info about the quicklist encoding of <key>.",
    "    The optional argument (0 by default) sets the level of detail",
    "PAUSE-CRON <0|1>",
    "    Stop periodic cron job processing.",
];

/// DEBUG POPULATE's part on one shard: `<prefix>:<n>` for n below `count`, where this shard
/// owns the name and no live key has it, set to `value:<n>` (cut or padded with zero bytes to
/// `size` when it is not 0), as Redis makes them.
fn populate_on(sh: &Shard, db: usize, count: u64, prefix: &[u8], size: usize) {
    let now = unix_ms();
    let mut st = sh.state.borrow_mut();
    let d = &mut st.dbs[db];
    let mut key = Vec::with_capacity(prefix.len() + 21);
    for n in 0..count {
        key.clear();
        key.extend_from_slice(prefix);
        key.push(b':');
        key.extend_from_slice(n.to_string().as_bytes());
        if sh.shard_of(&key) != sh.id || d.exists(&key, now) {
            continue;
        }
        let mut value = format!("value:{n}").into_bytes();
        if size > 0 {
            value.resize(size, 0);
        }
        d.insert(
            &key,
            crate::types::Value::Str(crate::types::StrValue::from_vec(value)),
            0,
            now,
        );
    }
}

pub fn debug(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        // `enable-debug-command` was checked before it ran or was queued (PROTECTED).
        let sub = text(&a[1]).to_ascii_lowercase();
        let db = c.db;
        let shard = c.shard.clone();
        match without_connection(&shard, &sub, &a, &mut c.reply()) {
            Local::Ran => return,
            Local::BadArity => {
                return c
                    .reply()
                    .error(&super::subcommand_syntax_error(&a[1], "debug"))
            }
            Local::Other => {}
        }
        match sub.as_str() {
            "help" if a.len() == 2 => super::reply_help(&mut c.reply(), "debug", DEBUG_HELP),
            "set-active-expire" if a.len() == 3 => {
                let on = atoi(&a[2]) != 0;
                let _ = c
                    .shard
                    .run_on_all(move |sh| sh.state.borrow_mut().active_expire = on)
                    .await;
                c.reply().ok();
            }
            "populate" if (3..=5).contains(&a.len()) => {
                let positive = |arg: &Bytes| {
                    super::args::parse_i64(arg)
                        .filter(|&n| n >= 0)
                        .ok_or("ERR value is out of range, must be positive")
                };
                let count = match positive(&a[2]) {
                    Ok(n) => n as u64,
                    Err(e) => return c.reply().error(e),
                };
                let size = match a.get(4).map(positive) {
                    Some(Err(e)) => return c.reply().error(e),
                    Some(Ok(n)) => n as usize,
                    None => 0,
                };
                let prefix = a.get(3).cloned().unwrap_or(Bytes::from_static(b"key"));
                // Every shard walks the names and creates those it owns. Unlike in Redis this
                // is not atomic: other clients may see some shards filled before others.
                let done = c
                    .shard
                    .run_on_all(move |sh| populate_on(sh, db, count, &prefix, size))
                    .await;
                match done {
                    Ok(_) => c.reply().ok(),
                    Err(_) => c.reply().error(ERR_SHARD_GONE),
                }
            }
            "object" if a.len() == 3 => {
                let key = a[2].clone();
                let s = c.shard.shard_of(&key);
                let res = c
                    .shard
                    .run_on(s, move |sh| {
                        let now = unix_ms();
                        let mut st = sh.state.borrow_mut();
                        if !st.dbs[db].exists(&key, now) {
                            return None;
                        }
                        let e = st.dbs[db].keys.get(&key)?;
                        let serialized = match &e.value {
                            crate::types::Value::Str(sv) => sv.len(),
                            crate::types::Value::Hash(h) => h.payload_len(),
                            crate::types::Value::List(l) => l.packed_bytes(),
                            crate::types::Value::Set(s) => s.payload_len(),
                            crate::types::Value::ZSet(z) => z.payload_len(),
                            crate::types::Value::Stream(_) => {
                                // What Redis's rdbSavedObjectLen measures: the saved object.
                                let mut out = Vec::new();
                                crate::persistence::rdb::value::write_object(
                                    &mut out, &e.value, false,
                                );
                                out.len().saturating_sub(1)
                            }
                        };
                        let mut s = format!(
                            "Value at:0x{:x} refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
                            e as *const _ as usize,
                            e.value.encoding(),
                            serialized,
                            e.access() & 0xFF_FFFF,
                            crate::shard::memory::lru_idle_ms(e.access(), now) / 1000
                        );
                        if let crate::types::Value::List(l) = &e.value {
                            // Redis appends the quicklist's shape; nodes are never compressed.
                            let nodes = l.node_count();
                            s.push_str(&format!(
                                " ql_nodes:{} ql_avg_node:{:.2} ql_listpack_max:{} ql_compressed:0 ql_uncompressed_size:{}",
                                nodes,
                                l.len() as f64 / nodes.max(1) as f64,
                                l.fill(),
                                l.packed_bytes()
                            ));
                        }
                        Some(s)
                    })
                    .await;
                match res {
                    Ok(Some(s)) => c.reply().simple(&s),
                    Ok(None) => c.reply().error("ERR no such key"),
                    Err(_) => c.reply().error(ERR_SHARD_GONE),
                }
            }
            "digest" if a.len() == 2 => {
                let res = c
                    .shard
                    .run_on_all(|sh| crate::shard::digest::shard_digest(&sh.state.borrow()))
                    .await;
                match res {
                    Ok(parts) => {
                        let d = crate::shard::digest::combine(&parts);
                        c.reply().simple(&d)
                    }
                    Err(_) => c.reply().error(ERR_SHARD_GONE),
                }
            }
            "digest-value" => {
                let mut out = Vec::new();
                for key in &a[2..] {
                    let k = key.clone();
                    let s = c.shard.shard_of(&k);
                    let d = c
                        .shard
                        .run_on(s, move |sh| {
                            let now = unix_ms();
                            let mut st = sh.state.borrow_mut();
                            if !st.dbs[db].exists(&k, now) {
                                return None;
                            }
                            st.dbs[db]
                                .peek(&k)
                                .map(|(e, at)| crate::shard::digest::value_digest(&e.value, at))
                        })
                        .await;
                    out.push(d.ok().flatten());
                }
                let mut r = c.reply();
                r.array(out.len());
                for d in out {
                    match d {
                        Some(h) => r.simple(&h),
                        None => r.simple(&"0".repeat(40)),
                    }
                }
            }
            "reload" => debug_reload(c, &a).await,
            "loadaof" => debug_loadaof(c).await,
            "error" if a.len() == 3 => {
                // Redis writes "-<string>\r\n" as a raw reply (line breaks turned into
                // spaces): no error code is added and nothing counts it as an error.
                c.uncounted_error = true;
                c.reply().error_bytes(&a[2]);
            }
            "sdslen" if a.len() == 3 => {
                let key = a[2].clone();
                let res = on_key_owner(c, key, sdslen).await;
                match res {
                    Ok(s) => c.reply().simple(&s),
                    Err(e) => c.reply().error(e),
                }
            }
            "htstats" if a.len() == 3 => debug_htstats(c, &a[2]).await,
            "htstats-key" if a.len() == 3 => {
                let key = a[2].clone();
                let res = on_key_owner(c, key, move |st, db, key| {
                    value_stats(st, db, key).map(|s| s.render())
                })
                .await;
                match res {
                    Ok(s) => c.reply().verbatim("txt", s.as_bytes()),
                    Err(e) => c.reply().error(e),
                }
            }
            "listpack" if a.len() == 3 => {
                let key = a[2].clone();
                let res = on_key_owner(c, key, move |st, db, key| {
                    let v = &live_value(st, db, key)?.value;
                    let repr = match v {
                        Value::Hash(h) => h.listpack_repr(),
                        Value::Set(s) => s.listpack_repr(),
                        Value::ZSet(z) => z.listpack_repr(),
                        Value::Str(_) | Value::List(_) | Value::Stream(_) => None,
                    };
                    repr.ok_or("ERR Not a listpack encoded object.")
                })
                .await;
                match res {
                    Ok(repr) => {
                        print_structure(&repr);
                        c.reply().simple("Listpack structure printed on stdout")
                    }
                    Err(e) => c.reply().error(e),
                }
            }
            "quicklist" if a.len() == 3 || a.len() == 4 => {
                let key = a[2].clone();
                let full = a.get(3).is_some_and(|f| atoi(f) != 0);
                let res = on_key_owner(c, key, move |st, db, key| {
                    match &live_value(st, db, key)?.value {
                        Value::List(l) => Ok(l.repr(full)),
                        _ => Err("ERR Not a quicklist encoded object."),
                    }
                })
                .await;
                match res {
                    Ok(repr) => {
                        print_structure(&repr);
                        c.reply().simple("Quicklist structure printed on stdout")
                    }
                    Err(e) => c.reply().error(e),
                }
            }
            "config-rewrite-force-all" if a.len() == 2 => {
                let users = super::acl_family::users_for_config_rewrite(c);
                let res = c
                    .shard
                    .state
                    .borrow()
                    .config
                    .rewrite_force_all(users.as_deref());
                match res {
                    Ok(()) => c.reply().ok(),
                    Err(e) => c.reply().error(&e),
                }
            }
            // Redis 7.0 matches these whatever follows them.
            "segfault" | "panic" | "assert" | "oom" => debug_crash(c, &sub, &a),
            _ => c
                .reply()
                .error(&super::subcommand_syntax_error(&a[1], "debug")),
        }
    })
}

/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: saves a snapshot, empties the keyspace and the
/// function libraries, and loads the snapshot back, with every shard held whole throughout, as
/// Redis does it in its one thread: no client sees the data missing or half loaded. NOSAVE
/// loads the last save; NOFLUSH loads over what is there, failing on a key or library already
/// present (Redis 7.0 stops the server on a duplicated key) unless MERGE replaces them. The
/// AOF is left as it is: the reload changes nothing it logged.
async fn debug_reload(c: &mut Conn, a: &[Bytes]) {
    let (mut merge, mut flush, mut save) = (false, true, true);
    for opt in &a[2..] {
        if eq_ic(opt, "merge") {
            merge = true;
        } else if eq_ic(opt, "noflush") {
            flush = false;
        } else if eq_ic(opt, "nosave") {
            save = false;
        } else {
            return c
                .reply()
                .error("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.");
        }
    }
    use crate::persistence::snapshot as snap;
    let shard = c.shard.clone();
    if save {
        if c.in_exec.is_none() {
            snap::claim(&shard).await;
        } else if !snap::try_start(&shard) {
            // A running snapshot may be waiting for the shards this EXEC holds.
            return c.reply().error("ERR Error trying to save the DB");
        }
    }
    // Inside EXEC every shard is already held whole (a block with connection-level commands
    // runs that way, see `crate::tx::multi`).
    let held = match crate::tx::lock_all_shards_unless_in_exec(c).await {
        Ok(h) => h,
        Err(e) => {
            if save {
                snap::release_claim(&shard);
            }
            return c.reply().error(e);
        }
    };
    let result = async {
        if save && snap::run_claimed_under_caller_locks(&shard).await.is_err() {
            return Err("ERR Error trying to save the DB");
        }
        if flush {
            empty_data(&shard).await?;
        }
        let dup = if merge {
            snap::load::OnDuplicate::Replace
        } else {
            snap::load::OnDuplicate::Fail
        };
        match snap::load::load_saved(&shard, dup).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err("ERR Error trying to load the RDB dump"),
            Err(e) => {
                tracing::warn!("DEBUG RELOAD: {}", e);
                Err("ERR Error trying to load the RDB dump")
            }
        }
    }
    .await;
    if let Some(h) = held {
        h.release_all().await;
    }
    match result {
        Ok(()) => {
            tracing::warn!("DB reloaded by DEBUG RELOAD");
            c.reply().ok()
        }
        Err(e) => c.reply().error(e),
    }
}

fn debug_protocol(r: &mut Reply, name: &[u8]) {
    let name = text(name).to_ascii_lowercase();
    match name.as_str() {
        "string" => r.bulk(b"Hello World"),
        "integer" => r.int(12345),
        // The value Redis uses for DEBUG PROTOCOL double (not meant as pi).
        #[allow(clippy::approx_constant)]
        "double" => r.double(3.141),
        "bignum" => r.big_number("1234567999999999999999999999999999999"),
        "null" => r.null(),
        "array" => {
            r.array(3);
            for j in 0..3 {
                r.int(j);
            }
        }
        "set" => {
            r.set(3);
            for j in 0..3 {
                r.int(j);
            }
        }
        "map" => {
            r.map(3);
            for j in 0..3 {
                r.int(j);
                r.boolean(j == 1);
            }
        }
        "attrib" => {
            if r.resp3 {
                r.attribute(1);
                r.bulk(b"key-popularity");
                r.array(2);
                r.bulk(b"key:123");
                r.int(90);
            }
            r.bulk(b"Some real reply following the attribute");
        }
        "push" => {
            if !r.resp3 {
                return r.error("ERR RESP2 is not supported by this command");
            }
            r.push(2);
            r.bulk(b"server-cpu-usage");
            r.int(42);
            r.bulk(b"Some real reply following the push reply");
        }
        "true" => r.boolean(true),
        "false" => r.boolean(false),
        "verbatim" => r.verbatim("txt", b"This is a verbatim\nstring"),
        _ => r.error("ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false"),
    }
}

/// What `without_connection` did with a subcommand.
enum Local {
    /// It ran and replied.
    Ran,
    /// It is one of them, with the wrong number of arguments: nothing written.
    BadArity,
    /// It is not one of them: nothing written.
    Other,
}

/// The subcommands that need neither the connection nor another shard: run here for clients
/// and for scripts (`from_script`). Each is listed once, with its arity (DEBUG included).
fn without_connection(sh: &Shard, sub: &str, a: &[Bytes], r: &mut Reply) -> Local {
    type Run = fn(&Shard, &[Bytes], &mut Reply);
    let (arity, run): (usize, Run) = match sub {
        "sleep" => (3, |_, a, r| {
            // Redis reads the longest numeric prefix (strtod, end ignored): "abc" sleeps 0.
            let (secs, _, _) = super::args::strtod(&a[2]);
            let secs = if secs.is_nan() { 0.0 } else { secs.max(0.0) };
            // Like Redis, the sleep blocks the executing thread: this shard stops serving.
            std::thread::sleep(Duration::from_secs_f64(secs.min(3600.0)));
            r.ok();
        }),
        "log" => (3, |_, a, r| {
            tracing::warn!("DEBUG LOG: {}", text(&a[2]));
            r.ok();
        }),
        "protocol" => (3, |_, a, r| debug_protocol(r, &a[2])),
        "leak" => (3, |_, a, r| {
            // A copy nobody will ever free (it shows in used_memory).
            let _: &'static mut [u8] = Box::leak(a[2].to_vec().into_boxed_slice());
            r.ok();
        }),
        "change-repl-id" => (2, |sh, _, r| {
            tracing::warn!("Changing replication IDs after receiving DEBUG change-repl-id");
            // master_replid2 and second_repl_offset stay cleared (Redis's
            // clearReplicationId2): there is no previous master history to keep.
            *sh.globals.replid.lock().unwrap_or_else(|e| e.into_inner()) = random_hex_id();
            r.ok();
        }),
        "stringmatch-test" => (2, |_, _, r| match stringmatch_fuzz() {
            Ok(()) => r.simple("Apparently Redis did not crash: test passed"),
            Err(e) => r.error(&e),
        }),
        "structsize" => (2, |_, _, r| r.bulk(structsize().as_bytes())),
        // Switches read the way Redis reads them (atoi: "abc" is 0, "1x" is 1).
        "set-skip-checksum-validation" => (3, |_, a, r| {
            let on = atoi(&a[2]) != 0;
            crate::persistence::rdb::SKIP_CHECKSUM.store(on, Ordering::Relaxed);
            r.ok();
        }),
        "pause-cron" => (3, |sh, a, r| {
            sh.globals
                .cron_paused
                .store(atoi(&a[2]) != 0, Ordering::Relaxed);
            r.ok();
        }),
        "set-disable-deny-scripts" => (3, |sh, a, r| {
            let on = atoi(&a[2]) != 0;
            sh.globals.script_deny_disabled.store(on, Ordering::Relaxed);
            r.ok();
        }),
        "aof-flush-sleep" => (3, |sh, a, r| {
            // Redis sleeps `atoi(arg)` microseconds (a negative value wraps around to an
            // hour-long sleep there); here a negative value means no sleep.
            let us = atoi(&a[2]).max(0) as u64;
            sh.globals.aof.flush_sleep_us.store(us, Ordering::Relaxed);
            r.ok();
        }),
        _ => return Local::Other,
    };
    if a.len() != arity {
        return Local::BadArity;
    }
    run(sh, a, r);
    Local::Ran
}

/// DEBUG called from a script, which only DEBUG SET-DISABLE-DENY-SCRIPTS allows (DEBUG is
/// `noscript`): the subcommands that need no connection (`without_connection`, DEBUG SLEEP
/// being the one Redis's own tests use), with `enable-debug-command yes` (a script has no
/// connection to call local). Returns false for the others, which scripts cannot run.
pub fn from_script(sh: &Shard, a: &[Bytes], r: &mut Reply) -> bool {
    use crate::config::DebugCommandPolicy;
    if sh.state.borrow().config.enable_debug_command != DebugCommandPolicy::Yes {
        r.error(crate::server::conn::ERR_DEBUG_NOT_ALLOWED);
        return true;
    }
    let sub = text(&a[1]).to_ascii_lowercase();
    if sub == "help" && a.len() == 2 {
        super::reply_help(r, "debug", DEBUG_HELP);
        return true;
    }
    match without_connection(sh, &sub, a, r) {
        Local::Ran => true,
        Local::BadArity => {
            r.error(&super::subcommand_syntax_error(&a[1], "debug"));
            true
        }
        Local::Other if sub == "help" => {
            r.error(&super::subcommand_syntax_error(&a[1], "debug"));
            true
        }
        Local::Other => false,
    }
}

/// Empties every database and the function libraries (Redis's `emptyData`), for DEBUG RELOAD
/// and DEBUG LOADAOF, whose caller holds every shard whole.
async fn empty_data(shard: &Shard) -> Result<(), &'static str> {
    crate::scripting::functions::clear_libraries(&shard.globals.scripting);
    shard
        .run_on_all(|sh| {
            for d in sh.state.borrow_mut().dbs.iter_mut() {
                d.clear();
            }
        })
        .await
        .map_err(|_| ERR_SHARD_GONE)?;
    // Like a flush, for client-side caches (Redis's `emptyData`).
    crate::pubsub::tracking::invalidate_everything();
    Ok(())
}

/// DEBUG LOADAOF: makes everything logged so far durable, empties the data set and loads it
/// back from the AOF files (`aof::read_for_reload` and `load::apply`, the startup loader),
/// holding every shard whole throughout like DEBUG RELOAD. The files are read and checked
/// before anything is emptied, so a damaged AOF costs an error reply, not the data.
///
/// With `appendonly no` there is nothing to load: Redis 7.0 empties the data set and then
/// exits; Tessera leaves the data as it is, logs why, and answers Redis's load error.
async fn debug_loadaof(c: &mut Conn) {
    const ERR_LOAD: &str = "ERR Error trying to load the AOF files, check server logs.";
    let shard = c.shard.clone();
    if !shard.globals.aof.enabled.load(Ordering::Relaxed) {
        tracing::warn!(
            "DEBUG LOADAOF: appendonly is off, there is no AOF to load; the data set is left as it is"
        );
        return c.reply().error(ERR_LOAD);
    }
    let held = match crate::tx::lock_all_shards_unless_in_exec(c).await {
        Ok(h) => h,
        Err(e) => return c.reply().error(e),
    };
    let result = async {
        use crate::persistence::aof;
        // Every shard must be logging (the AOF may have just been switched on, its first
        // rewrite still to come) and able to write what it holds.
        let logs = shard
            .run_on_all(|sh| {
                let st = sh.state.borrow();
                match st.aof.as_ref() {
                    None => Some("the AOF is not running yet".to_string()),
                    Some(_) => aof::write_refused(&st),
                }
            })
            .await
            .map_err(|_| ERR_SHARD_GONE.to_string())?;
        if let Some(e) = logs.into_iter().flatten().next() {
            return Err(e);
        }
        aof::wait_durable(&shard, u64::MAX).await;
        let files = aof::read_for_reload(&shard)?;
        empty_data(&shard).await.map_err(str::to_string)?;
        aof::load::apply(&shard, files).await
    }
    .await;
    if let Some(h) = held {
        h.release_all().await;
    }
    match result {
        Ok(()) => {
            tracing::warn!("Append Only File loaded by DEBUG LOADAOF");
            c.reply().ok()
        }
        Err(e) => {
            tracing::warn!("DEBUG LOADAOF: {}", e);
            c.reply().error(ERR_LOAD)
        }
    }
}

const ERR_NO_KEY: &str = "ERR no such key";

/// Runs `f` on the shard that owns `key`, with that shard's state and the connection's
/// database.
async fn on_key_owner<R: Send + 'static>(
    c: &Conn,
    key: Bytes,
    f: impl FnOnce(&mut ShardState, usize, &[u8]) -> Result<R, &'static str> + Send + 'static,
) -> Result<R, &'static str> {
    let db = c.db;
    let owner = c.shard.shard_of(&key);
    c.shard
        .run_on(owner, move |sh| f(&mut sh.state.borrow_mut(), db, &key))
        .await
        .unwrap_or(Err(ERR_SHARD_GONE))
}

/// The entry of a live key (one past its deadline is reclaimed first), as Redis's
/// `objectCommandLookup` finds it; Redis's "no such key" error otherwise.
fn live_value<'a>(
    st: &'a mut ShardState,
    db: usize,
    key: &[u8],
) -> Result<&'a Entry, &'static str> {
    let d = &mut st.dbs[db];
    if !d.exists(key, unix_ms()) {
        return Err(ERR_NO_KEY);
    }
    d.keys.get(key).ok_or(ERR_NO_KEY)
}

/// DEBUG SDSLEN's figures with Redis's field names: for the key and the value, the length,
/// the spare room kept for growth (only strings grown in place by APPEND or SETRANGE keep
/// some) and the memory holding the bytes: the malloc chunk of a heap buffer, or the in-place
/// room of a key or value stored inline (in the table node). Like Redis, a key past its
/// deadline that is still there is reported.
fn sdslen(st: &mut ShardState, db: usize, key: &[u8]) -> Result<String, &'static str> {
    use crate::alloc::chunk_size;
    use crate::types::key::Key;
    use crate::types::StrValue;
    use std::mem::size_of;
    const ERR_NOT_SDS: &str = "ERR Not an sds encoded string.";
    let (k, e) = st.dbs[db].keys.get_key_value(key).ok_or(ERR_NO_KEY)?;
    let Value::Str(v) = &e.value else {
        return Err(ERR_NOT_SDS);
    };
    let (len, avail, alloc) = match v {
        StrValue::Int(_) => return Err(ERR_NOT_SDS),
        StrValue::Small { len, .. } => (*len as usize, 0, size_of::<StrValue>()),
        StrValue::Plain(b) => (b.len(), 0, chunk_size(b.len())),
        StrValue::Raw(b) => (b.len(), b.capacity() - b.len(), chunk_size(b.capacity())),
    };
    let key_alloc = match k {
        Key::Inline { .. } => size_of::<Key>(),
        Key::Heap(b) => chunk_size(b.len()),
    };
    Ok(format!(
        "key_sds_len:{}, key_sds_avail:0, key_zmalloc: {}, val_sds_len:{}, val_sds_avail:{}, val_zmalloc: {}",
        k.len(),
        key_alloc,
        len,
        avail,
        alloc
    ))
}

/// The hash table behind a hash, set or sorted set value (DEBUG HTSTATS-KEY).
fn value_stats(
    st: &mut ShardState,
    db: usize,
    key: &[u8],
) -> Result<crate::types::dict::DictStats, &'static str> {
    let stats = match &live_value(st, db, key)?.value {
        Value::Hash(h) => h.table_stats(),
        Value::Set(s) => s.table_stats(),
        Value::ZSet(z) => z.table_stats(),
        Value::Str(_) | Value::List(_) | Value::Stream(_) => None,
    };
    stats.ok_or("ERR The value stored at the specified key is not represented using an hash table")
}

/// DEBUG HTSTATS <dbid>: the keyspace and expiry tables of a database in Redis's layout. Each
/// shard has its own tables; they are reported summed, as if they were one table (sizes,
/// element and slot counts and the chain-length histogram add up, the longest chain is the
/// longest anywhere), so the reply has Redis's shape whatever the shard count.
async fn debug_htstats(c: &mut Conn, arg: &[u8]) {
    let Some(dbid) = super::args::parse_i64(arg) else {
        return c.reply().error(super::args::ERR_NOT_INT);
    };
    let databases = c.shard.state.borrow().dbs.len();
    if dbid < 0 || dbid as u64 >= databases as u64 {
        return c.reply().error("ERR Out of range database");
    }
    let db = dbid as usize;
    let parts = c
        .shard
        .run_on_all(move |sh| {
            let st = sh.state.borrow();
            (st.dbs[db].keys.stats(), st.dbs[db].expires.stats())
        })
        .await;
    let Ok(parts) = parts else {
        return c.reply().error(ERR_SHARD_GONE);
    };
    let mut parts = parts.into_iter();
    let Some((mut keys, mut expires)) = parts.next() else {
        return c.reply().error(ERR_SHARD_GONE);
    };
    for (k, e) in parts {
        keys.merge(&k);
        expires.merge(&e);
    }
    let text = format!(
        "[Dictionary HT]\n{}[Expires HT]\n{}",
        keys.render(),
        expires.render()
    );
    c.reply().verbatim("txt", text.as_bytes())
}

/// Writes a structure dump where DEBUG LISTPACK and DEBUG QUICKLIST say it goes: stdout (the
/// log too when no `logfile` is set).
fn print_structure(repr: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(repr.as_bytes());
    let _ = out.flush();
}

/// DEBUG STRUCTSIZE: the sizes of Tessera's core structures, in Redis's `name:bytes ` format:
/// a keyspace value and entry, a key, the keyspace and expiry table nodes, and each type's
/// value (with a list node's bookkeeping).
fn structsize() -> String {
    use crate::types::dict::Dict;
    use crate::types::key::Key;
    use crate::types::{HashValue, ListValue, SetValue, StrValue, ZSetValue};
    use std::mem::size_of;
    let sizes = [
        ("bits", usize::BITS as usize),
        ("value", size_of::<Value>()),
        ("entry", size_of::<Entry>()),
        ("key", size_of::<Key>()),
        ("keynode", Dict::<Entry, Key>::node_bytes()),
        ("expirenode", Dict::<u64, Key>::node_bytes()),
        ("strvalue", size_of::<StrValue>()),
        ("hashvalue", size_of::<HashValue>()),
        ("listvalue", size_of::<ListValue>()),
        ("listnode", ListValue::node_struct_bytes()),
        ("setvalue", size_of::<SetValue>()),
        ("zsetvalue", size_of::<ZSetValue>()),
    ];
    sizes.iter().map(|(n, s)| format!("{n}:{s} ")).collect()
}

/// DEBUG STRINGMATCH-TEST: random patterns against random strings through the glob matcher
/// KEYS, SCAN MATCH and the pub/sub patterns use, for at most as many rounds as Redis runs
/// (10 million) and at most a second. Patterns lean on the special characters; every 97th
/// round is a pathological one (up to 1500 stars over a long run of one byte), which the
/// matcher's nesting limit must keep linear. A panic is reported with its input.
fn stringmatch_fuzz() -> Result<(), String> {
    use rand::Rng;
    const ROUNDS: u64 = 10_000_000;
    const BUDGET: Duration = Duration::from_secs(1);
    const SPECIAL: &[u8] = b"*?[]^-\\aA";
    let mut rng = rand::thread_rng();
    let started = Instant::now();
    let (mut rounds, mut matches) = (0u64, 0u64);
    let (mut pat, mut s) = (Vec::new(), Vec::new());
    while rounds < ROUNDS {
        if rounds % 256 == 0 && started.elapsed() >= BUDGET {
            break;
        }
        pat.clear();
        s.clear();
        if rounds % 97 == 0 {
            for _ in 0..rng.gen_range(1..1500) {
                pat.extend_from_slice(b"a*");
            }
            pat.push(b'b');
            s.resize(rng.gen_range(0..3000), b'a');
        } else {
            let byte = |rng: &mut rand::rngs::ThreadRng, special: f64| {
                if rng.gen_bool(special) {
                    SPECIAL[rng.gen_range(0..SPECIAL.len())]
                } else {
                    rng.gen()
                }
            };
            for _ in 0..rng.gen_range(0..32) {
                pat.push(byte(&mut rng, 0.5));
            }
            for _ in 0..rng.gen_range(0..32) {
                s.push(byte(&mut rng, 0.3));
            }
        }
        let nocase = rng.gen_bool(0.5);
        match std::panic::catch_unwind(|| crate::config::glob_match(&pat, &s, nocase)) {
            Ok(m) => matches += m as u64,
            Err(_) => {
                return Err(format!(
                    "ERR the glob matcher panicked on pattern \"{}\" and string \"{}\"",
                    pat.escape_ascii(),
                    s.escape_ascii()
                ))
            }
        }
        rounds += 1;
    }
    tracing::info!(
        "DEBUG STRINGMATCH-TEST: {} rounds in {:.3} s, total matches: {}",
        rounds,
        started.elapsed().as_secs_f64(),
        matches
    );
    Ok(())
}

/// DEBUG SEGFAULT, PANIC, ASSERT and OOM: the process dies on purpose, as Redis does, after a
/// crash report in the log saying what was asked and by which client. It must be the whole
/// process, so nothing here unwinds (a panic would be contained to the command): SEGFAULT
/// raises SIGSEGV with its default action restored, PANIC and ASSERT abort, OOM asks the
/// allocator for half the address space and, refused, ends in the standard allocation-failure
/// abort (should the allocation succeed, it is freed and the reply is OK, as in Redis).
fn debug_crash(c: &mut Conn, what: &str, a: &[Bytes]) {
    let client = format!(
        "id={} addr={} laddr={} name={} db={}",
        c.info.id,
        c.info.addr,
        c.info.laddr,
        c.info.name.borrow(),
        c.db
    );
    let command = a
        .iter()
        .take(8)
        .map(|x| String::from_utf8_lossy(x).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let report = |lines: &[String]| {
        tracing::error!("=== TESSERA BUG REPORT START: Cut & paste starting from here ===");
        for l in lines {
            tracing::error!("{}", l);
        }
        tracing::error!("Crash requested by client {} with: {}", client, command);
        tracing::error!("=== TESSERA BUG REPORT END ===");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
    };
    let version = env!("CARGO_PKG_VERSION");
    match what {
        "segfault" => {
            report(&[format!(
                "Tessera {version} crashed by signal: 11 (SIGSEGV raised by DEBUG SEGFAULT)"
            )]);
            // SAFETY: restoring the default action of SIGSEGV and raising it: the process is
            // meant to die here.
            unsafe {
                libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                libc::raise(libc::SIGSEGV);
            }
            std::process::abort();
        }
        "panic" => {
            let secs = unix_ms() / 1000;
            report(&[format!(
                "Guru Meditation: DEBUG PANIC called at Unix time {secs}"
            )]);
            std::process::abort();
        }
        "assert" => {
            report(&[
                "=== ASSERTION FAILED ===".to_string(),
                "==> debug: '1 == 2' is not true".to_string(),
            ]);
            std::process::abort();
        }
        _ => {
            let size = usize::MAX / 2;
            let Ok(layout) = std::alloc::Layout::from_size_align(size, 1) else {
                report(&["DEBUG OOM: no layout for the allocation".to_string()]);
                std::process::abort();
            };
            // SAFETY: a layout of non-zero size; a granted block is freed with that layout.
            // (`black_box`: an allocation nobody uses could otherwise be optimized away.)
            let p = std::hint::black_box(unsafe { std::alloc::alloc(layout) });
            if !p.is_null() {
                unsafe { std::alloc::dealloc(p, layout) };
                return c.reply().ok();
            }
            report(&[format!("Out Of Memory allocating {size} bytes!")]);
            std::alloc::handle_alloc_error(layout);
        }
    }
}

//! Lua scripting: EVAL/EVALSHA(_RO), SCRIPT, FUNCTION and FCALL(_RO), with Redis 7.0's
//! semantics, run atomically over a sharded keyspace.
//!
//! Module map: `lua` (the Lua states, sandbox, `redis.*` API and RESP<->Lua conversions),
//! `libs` (bit, cjson, cmsgpack, struct), `functions` (FUNCTION libraries and FCALL), and this
//! module (commands, the script cache, and the execution protocol below).
//!
//! ## Caches
//! The script cache (SHA1 -> body) and the function library registry are process-wide
//! (`Shared`, reached through `Globals`): a script loaded on one shard is found by EVALSHA on
//! every shard, and SCRIPT FLUSH / FUNCTION changes are seen by all at once. Each shard thread
//! compiles lazily into its own Lua state; an epoch counter tells a state that it is stale
//! (SCRIPT FLUSH / FUNCTION changes) and must be rebuilt, as Redis rebuilds its Lua state.
//!
//! ## Atomicity protocol
//! A script is one unit over the shards of its declared KEYS (`tx::run_atomic_body`):
//! 1. **Single shard.** All declared keys on one shard (or none: the connection's shard): the
//!    script runs synchronously on that shard, once no transaction holds those keys (or the
//!    whole shard). `redis.call` executes commands in place with `shard::execute_keyed`.
//! 2. **Declared keys on several shards.** The keys are locked and the foreign entries copied
//!    into the coordinator's keyspace (the transaction layer, `tx`); the script runs there in
//!    one synchronous step, and the foreign entries go back to their owners.
//! 3. **Escalation.** A `redis.call` on a key this run cannot use safely (owned by another
//!    shard and not imported, or locked by another transaction), or a command that needs every
//!    shard (KEYS, DBSIZE, FLUSHALL...), aborts the run: its writes to this shard are undone
//!    from an undo log (the first write to each key saves the entry; imported copies are simply
//!    not written back), and the script is re-run in **global mode**. A write to an entry too
//!    large to save cheaply (`UNDO_MAX_ELEMENTS`) escalates before the write instead. The SHA
//!    (or function) is remembered as global so later runs go straight there.
//! 4. **Global mode.** `tx::lock_all_shards` (whole-shard locks on every shard, in order), then
//!    the script runs on the connection's shard; each `redis.call` executes where its keys live:
//!    locally, or as a job on the owning shard while this thread waits for the job's result.
//!    Waiting (rather than yielding) keeps Lua 5.1 semantics intact (a coroutine yield cannot
//!    cross `pcall`); it cannot deadlock because every other shard is locked by this unit, so
//!    no other script or transaction runs, and a shard's mesh receiver runs jobs without ever
//!    waiting on another shard. Keys whose hash tag puts them on a declared key's shard never
//!    escalate. Each such job is a round trip, so the wait spins before it sleeps (yielding
//!    the core where shards share cores), and a pinned shard held whole spins for its next job
//!    (`tx::lock_all_shards`): a sleep and a wake-up on both sides cost more than the job.
//!
//! Scripts inside MULTI run in global mode under the EXEC block's locks.
//!
//! ## Busy scripts
//! A count hook (every 100000 Lua instructions) checks the elapsed time; past
//! `busy-reply-threshold` the script is marked busy in `Shared`. Then:
//! - clients on *other* shards get `-BUSY ...` for every command not flagged `allow_busy`
//!   (SCRIPT KILL / FUNCTION KILL work from there);
//! - clients connected to the shard running the script cannot be served at all until it ends:
//!   that thread is inside the script (Redis would serve them between hook calls).
//!
//! SCRIPT KILL / FUNCTION KILL stop a script that has not written (else `UNKILLABLE`).
//!
//! This module never holds a shard-state borrow across an `.await`, and it never blocks a
//! thread except in global mode as described above.

// Every `unsafe fn` below `lua` and `libs` has one contract: it is called with a live Lua
// state owned by this thread (a `lua::Vm`), from Lua or from code that keeps its stack balanced.
#![allow(clippy::missing_safety_doc)]

pub mod functions;
pub mod libs;
pub mod lua;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::future::LocalBoxFuture;

use crate::commands::args::{eq_ic, parse_i64, ERR_NOT_INT};
use crate::commands::{cmd, flags::*, sub, CommandSpec, Exec, KeySpec, SubCommand, NO_KEYS};
use crate::protocol::Reply;
use crate::server::conn::{Conn, ERR_SHARD_GONE};
use crate::shard::{execute_keyed, ClientLabel, Shard};
use crate::tx::locks::LockKey;
use crate::types::{Taken, Value};
use lua::{CallResult, FnKey, RunEnd, RunHooks, VmKind};

/// Largest value (in elements, or bytes for strings / 64) an optimistic run saves in its undo
/// log; writing a larger existing value escalates to global mode first.
const UNDO_MAX_ELEMENTS: usize = 4096;

pub const ERR_NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";
pub const ERR_BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const ERR_BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// Script flags (shebang `flags=` / register_function flags).
pub mod sflags {
    pub const NO_WRITES: u32 = 1;
    pub const ALLOW_OOM: u32 = 2;
    pub const ALLOW_STALE: u32 = 4;
    pub const NO_CLUSTER: u32 = 8;
    pub const ALLOW_CROSS_SLOT: u32 = 16;
    /// The script had a shebang (EVAL scripts without one keep 7.0's legacy behaviour).
    pub const SHEBANG: u32 = 32;

    pub const NAMES: &[(u32, &str)] = &[
        (NO_WRITES, "no-writes"),
        (ALLOW_OOM, "allow-oom"),
        (ALLOW_STALE, "allow-stale"),
        (NO_CLUSTER, "no-cluster"),
        (ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ];
}

/// A thread's copy of part of the script cache, by the SHA bytes as clients sent them.
type LocalScripts = HashMap<Box<[u8]>, Arc<ScriptEntry>, ahash::RandomState>;

/// A command name a script called and what it resolved to.
type RecentCommand = (Box<[u8]>, &'static CommandSpec);

/// A cached EVAL script.
pub struct ScriptEntry {
    pub sha: String,
    /// Registry name of the compiled function in each shard's Lua state (`f_<sha>`).
    fn_name: String,
    pub body: Bytes,
    pub flags: u32,
    /// Learned: runs of this script need global mode.
    pub global: AtomicBool,
}

/// One shard's running-script status, readable from every shard (SCRIPT KILL, BUSY).
#[derive(Default)]
pub struct Slot {
    pub running: AtomicBool,
    pub busy: AtomicBool,
    pub eval: AtomicBool,
    pub wrote: AtomicBool,
    pub kill: AtomicBool,
    pub started_ms: AtomicU64,
    pub name: Mutex<String>,
    pub command: Mutex<String>,
}

/// Process-wide scripting state.
pub struct Shared {
    scripts: Mutex<HashMap<String, Arc<ScriptEntry>>>,
    /// Bumped by SCRIPT FLUSH: shard Lua states built before are rebuilt.
    pub epoch: AtomicU64,
    pub functions: Mutex<functions::Registry>,
    pub fn_epoch: AtomicU64,
    pub slots: Vec<Slot>,
    /// Scripts currently past the busy threshold, anywhere.
    pub busy: AtomicUsize,
    /// Runs that had to be redone in global mode (INFO scripts_escalated_to_global).
    pub escalated: AtomicU64,
    /// Runs in global mode, escalated or learned (INFO scripts_global_runs).
    pub global_runs: AtomicU64,
}

impl Shared {
    pub fn new(nshards: usize) -> Shared {
        Shared {
            scripts: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            functions: Mutex::new(functions::Registry::default()),
            fn_epoch: AtomicU64::new(0),
            slots: (0..nshards.max(1)).map(|_| Slot::default()).collect(),
            busy: AtomicUsize::new(0),
            escalated: AtomicU64::new(0),
            global_runs: AtomicU64::new(0),
        }
    }

    /// The script EVALSHA names (any letter case), through this thread's copy of the cache.
    /// The copy holds entries of the current epoch only, so SCRIPT FLUSH empties it too.
    fn get_for_evalsha(&self, sha: &[u8]) -> Option<Arc<ScriptEntry>> {
        thread_local! {
            static LOCAL: std::cell::RefCell<(u64, LocalScripts)> =
                std::cell::RefCell::new((0, HashMap::default()));
        }
        // Bounds the copy when clients send many distinct (or differently cased) SHAs.
        const LOCAL_MAX: usize = 1024;
        let epoch = self.epoch.load(Ordering::Acquire);
        let hit = LOCAL.with(|l| {
            let l = l.borrow();
            (l.0 == epoch).then(|| l.1.get(sha).cloned()).flatten()
        });
        if hit.is_some() {
            return hit;
        }
        let e = self.get(&String::from_utf8_lossy(sha).to_ascii_lowercase())?;
        LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            if l.0 != epoch || l.1.len() >= LOCAL_MAX {
                l.1.clear();
                l.0 = epoch;
            }
            l.1.insert(sha.into(), e.clone());
        });
        Some(e)
    }

    pub fn get(&self, sha: &str) -> Option<Arc<ScriptEntry>> {
        self.scripts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sha)
            .cloned()
    }

    fn insert(&self, e: ScriptEntry) -> Arc<ScriptEntry> {
        let mut m = self.scripts.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(e.sha.clone())
            .or_insert_with(|| Arc::new(e))
            .clone()
    }

    pub fn script_count(&self) -> usize {
        self.scripts.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Bytes of the cached scripts' bodies and names (INFO used_memory_scripts_eval).
    pub fn script_bytes(&self) -> usize {
        self.scripts
            .lock()
            .map(|m| m.values().map(|e| e.body.len() + e.sha.len()).sum())
            .unwrap_or(0)
    }

    fn flush(&self) {
        libs::cjson::reset_shared();
        self.scripts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// The BUSY error other clients get while a script is past the threshold, if any.
    pub fn busy_error(&self) -> Option<&'static str> {
        if self.busy.load(Ordering::Acquire) == 0 {
            return None;
        }
        let eval = self
            .slots
            .iter()
            .find(|s| s.busy.load(Ordering::Acquire))
            .map(|s| s.eval.load(Ordering::Acquire))?;
        Some(if eval {
            ERR_BUSY_EVAL
        } else {
            ERR_BUSY_FUNCTION
        })
    }
}

/// Parses an EVAL shebang line (`#!lua flags=...`) as Redis's `evalExtractShebangFlags`: the
/// line is split like `sdssplitargs`, and the flag list on every `,`.
fn parse_shebang(body: &[u8]) -> Result<u32, String> {
    if !body.starts_with(b"#!") {
        return Ok(0);
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let parts = match crate::config::split_args(&body[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err("ERR Invalid engine in script shebang".into()),
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if parts[0] != b"#!lua" {
        return Err(format!(
            "ERR Unexpected engine in script shebang: {}",
            text(&parts[0])
        ));
    }
    let mut flags = sflags::SHEBANG;
    for p in &parts[1..] {
        if let Some(list) = p.strip_prefix(b"flags=") {
            if list.is_empty() {
                continue;
            }
            for f in list.split(|&b| b == b',') {
                match sflags::NAMES.iter().find(|(_, n)| n.as_bytes() == f) {
                    Some((bit, _)) => flags |= bit,
                    None => {
                        return Err(format!(
                            "ERR Unexpected flag in script shebang: {}",
                            text(f)
                        ))
                    }
                }
            }
        } else {
            return Err(format!("ERR Unknown lua shebang option: {}", text(p)));
        }
    }
    Ok(flags)
}

/// The code Lua compiles for a script: the shebang line blanked, so line numbers still match.
fn lua_source(body: &[u8]) -> Vec<u8> {
    if body.starts_with(b"#!") {
        let end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
        body[end..].to_vec()
    } else {
        body.to_vec()
    }
}

/// Adds a script to the cache (validating shebang and syntax on this thread's state).
fn load_script(sh: &Shard, body: Bytes) -> Result<Arc<ScriptEntry>, String> {
    let sha = lua::sha1_hex(&body);
    let shared = &sh.globals.scripting;
    if let Some(e) = shared.get(&sha) {
        return Ok(e);
    }
    let flags = parse_shebang(&body)?;
    let epoch = shared.epoch.load(Ordering::Acquire);
    let name = format!("f_{}", sha);
    let src = lua_source(&body);
    lua::with_vm(
        VmKind::Eval,
        epoch,
        |_| Ok(()),
        |vm| vm.compile(&name, c"@user_script", &src),
    )
    .map_err(|e| format!("ERR {}", e))?
    .map_err(|e| format!("ERR Error compiling script (new function): {}", e))?;
    Ok(shared.insert(ScriptEntry {
        fn_name: name,
        sha,
        body,
        flags,
        global: AtomicBool::new(false),
    }))
}

// ---------------------------------------------------------------------------------------------
// Command table
// ---------------------------------------------------------------------------------------------

fn eval_keys(args: &[Bytes]) -> Option<Vec<usize>> {
    let n = parse_i64(args.get(2)?)?;
    if n <= 0 || n as usize > args.len().saturating_sub(3) {
        return None;
    }
    Some((3..3 + n as usize).collect())
}

pub fn specs() -> Vec<CommandSpec> {
    let g = "scripting";
    let eval_flags = NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS;
    vec![
        cmd(
            "eval",
            -3,
            eval_flags,
            NO_KEYS,
            g,
            "2.6.0",
            "Depends on the script that is executed.",
            "Execute a Lua script server side",
            Exec::Conn(eval),
        )
.key_specs(const { &[KeySpec::numkeys(&["RW", "access", "update"], 2).notes("We cannot tell how the keys will be used so we assume the worst, RW and UPDATE")] })
        .movable_keys(eval_keys),
        cmd(
            "evalsha",
            -3,
            eval_flags,
            NO_KEYS,
            g,
            "2.6.0",
            "Depends on the script that is executed.",
            "Execute a Lua script server side",
            Exec::Conn(evalsha),
        )
.key_specs(const { &[KeySpec::numkeys(&["RW", "access", "update"], 2)] })
        .movable_keys(eval_keys),
        cmd(
            "eval_ro",
            -3,
            READONLY | eval_flags,
            NO_KEYS,
            g,
            "7.0.0",
            "Depends on the script that is executed.",
            "Execute a read-only Lua script server side",
            Exec::Conn(eval_ro),
        )
.key_specs(const { &[KeySpec::numkeys(&["RO", "access"], 2).notes("We cannot tell how the keys will be used so we assume the worst, RO and ACCESS")] })
        .movable_keys(eval_keys),
        cmd(
            "evalsha_ro",
            -3,
            READONLY | eval_flags,
            NO_KEYS,
            g,
            "7.0.0",
            "Depends on the script that is executed.",
            "Execute a read-only Lua script server side",
            Exec::Conn(evalsha_ro),
        )
.key_specs(const { &[KeySpec::numkeys(&["RO", "access"], 2)] })
        .movable_keys(eval_keys),
        cmd(
            "fcall",
            -3,
            eval_flags,
            NO_KEYS,
            g,
            "7.0.0",
            "Depends on the function that is executed.",
            "Invoke a function",
            Exec::Conn(functions::fcall),
        )
.key_specs(const { &[KeySpec::numkeys(&["RW", "access", "update"], 2).notes("We cannot tell how the keys will be used so we assume the worst, RW and UPDATE")] })
        .movable_keys(eval_keys),
        cmd(
            "fcall_ro",
            -3,
            READONLY | eval_flags,
            NO_KEYS,
            g,
            "7.0.0",
            "Depends on the function that is executed.",
            "Invoke a read-only function",
            Exec::Conn(functions::fcall_ro),
        )
.key_specs(const { &[KeySpec::numkeys(&["RO", "access"], 2).notes("We cannot tell how the keys will be used so we assume the worst, RO and ACCESS")] })
        .movable_keys(eval_keys),
        cmd(
            "script",
            -2,
            NOSCRIPT | ALLOW_BUSY,
            NO_KEYS,
            g,
            "2.6.0",
            "Depends on subcommand.",
            "A container for Lua scripts management commands",
            Exec::Conn(script),
        )
        .subcommands(SCRIPT_SUBCOMMANDS),
        cmd(
            "function",
            -2,
            NOSCRIPT | ALLOW_BUSY,
            NO_KEYS,
            g,
            "7.0.0",
            "Depends on subcommand.",
            "A container for function commands",
            Exec::Conn(functions::function),
        )
        .subcommands(FUNCTION_SUBCOMMANDS),
    ]
}

/// SCRIPT's subcommands, as Redis 7.0 declares them.
const SCRIPT_SUBCOMMANDS: &[SubCommand] = &[
    sub("script|help", 2)
        .flags(LOADING | STALE)
        .docs("5.0.0", "O(1)", "Lists the SCRIPT subcommands."),
    sub("script|flush", -2)
        .flags(NOSCRIPT)
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"])
        .docs("2.6.0", "O(N) with N being the number of scripts in cache", "Empties the script cache."),
    sub("script|exists", -3)
        .flags(NOSCRIPT)
        .tips(&["request_policy:all_shards", "response_policy:agg_logical_and"])
        .docs("2.6.0", "O(N) with N being the number of scripts to check (so checking a single script is an O(1) operation).", "Tells whether scripts are in the script cache."),
    sub("script|load", 3)
        .flags(NOSCRIPT | STALE)
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"])
        .docs("2.6.0", "O(N) with N being the length in bytes of the script body.", "Loads a script into the script cache and returns its SHA1 digest."),
    sub("script|debug", 3)
        .flags(NOSCRIPT)
        .docs("3.2.0", "O(1)", "Sets the debug mode of later scripts."),
    sub("script|kill", 2)
        .flags(NOSCRIPT | ALLOW_BUSY)
        .tips(&["request_policy:all_shards", "response_policy:one_succeeded"])
        .docs("2.6.0", "O(1)", "Stops the script that is running, if it has not written."),
];

/// FUNCTION's subcommands, as Redis 7.0 declares them.
const FUNCTION_SUBCOMMANDS: &[SubCommand] = &[
    sub("function|load", -3)
        .flags(WRITE | DENYOOM | NOSCRIPT)
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
        .docs(
            "7.0.0",
            "O(1) (considering compilation time is redundant)",
            "Creates or replaces a function library.",
        ),
    sub("function|delete", 3)
        .flags(WRITE | NOSCRIPT)
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
        .docs("7.0.0", "O(1)", "Deletes a function library."),
    sub("function|help", 2).flags(LOADING | STALE).docs(
        "7.0.0",
        "O(1)",
        "Lists the FUNCTION subcommands.",
    ),
    sub("function|list", -2)
        .flags(NOSCRIPT)
        .tips(&["nondeterministic_output_order"])
        .docs(
            "7.0.0",
            "O(N) where N is the number of functions",
            "Lists the function libraries and their functions.",
        ),
    sub("function|kill", 2)
        .flags(NOSCRIPT | ALLOW_BUSY)
        .tips(&["request_policy:all_shards", "response_policy:one_succeeded"])
        .docs(
            "7.0.0",
            "O(1)",
            "Stops the function that is running, if it has not written.",
        ),
    sub("function|restore", -3)
        .flags(WRITE | DENYOOM | NOSCRIPT)
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
        .docs(
            "7.0.0",
            "O(N) where N is the number of functions on the payload",
            "Restores function libraries from a FUNCTION DUMP payload.",
        ),
    sub("function|dump", 2).flags(NOSCRIPT).docs(
        "7.0.0",
        "O(N) where N is the number of functions",
        "Returns a serialized payload of all function libraries.",
    ),
    sub("function|flush", -2)
        .flags(WRITE | NOSCRIPT)
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
        .docs(
            "7.0.0",
            "O(N) where N is the number of functions deleted",
            "Deletes all function libraries.",
        ),
    sub("function|stats", 2)
        .flags(NOSCRIPT | ALLOW_BUSY)
        .tips(&[
            "nondeterministic_output",
            "request_policy:all_shards",
            "response_policy:special",
        ])
        .docs(
            "7.0.0",
            "O(1)",
            "Returns the running function and the engines' statistics.",
        ),
];

// ---------------------------------------------------------------------------------------------
// EVAL family
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum EvalKind {
    Eval,
    EvalSha,
}

fn eval(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(eval_generic(c, a, EvalKind::Eval, false))
}
fn evalsha(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(eval_generic(c, a, EvalKind::EvalSha, false))
}
fn eval_ro(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(eval_generic(c, a, EvalKind::Eval, true))
}
fn evalsha_ro(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(eval_generic(c, a, EvalKind::EvalSha, true))
}

async fn eval_generic(c: &mut Conn, mut a: Vec<Bytes>, kind: EvalKind, ro: bool) {
    let (keys, argv) = match parse_i64(&a[2]) {
        None => return c.reply().error(ERR_NOT_INT),
        Some(n) if n < 0 => return c.reply().error("ERR Number of keys can't be negative"),
        Some(n) if n as usize > a.len() - 3 => {
            return c
                .reply()
                .error("ERR Number of keys can't be greater than number of args")
        }
        Some(n) => {
            // Moved out of the request, not copied.
            let argv = a.split_off(3 + n as usize);
            (a.split_off(3), argv)
        }
    };
    let shard = c.shard.clone();
    let entry = match kind {
        EvalKind::Eval => match load_script(&shard, a[1].clone()) {
            Ok(e) => e,
            Err(e) => return c.reply().error(&e),
        },
        EvalKind::EvalSha => match shard.globals.scripting.get_for_evalsha(&a[1]) {
            Some(e) => e,
            None => return c.reply().error(ERR_NOSCRIPT),
        },
    };
    let no_writes = entry.flags & sflags::NO_WRITES != 0;
    if ro && entry.flags & sflags::SHEBANG != 0 && !no_writes {
        return c
            .reply()
            .error("ERR Can not execute a script with write flag using *_ro command.");
    }
    let read_only = ro || no_writes;
    let job = Job {
        target: Target::Eval(entry.clone()),
        keys,
        argv,
        read_only,
        db: c.db,
        resp3: c.resp3,
        who: c.label.clone(),
        caller_info: crate::server::acl::caller_info_for_log(c),
        perms: c.perms.clone(),
        command: if ro { "eval_ro" } else { "eval" },
    };
    let out = run_job(c, job, &entry.global).await;
    c.out.extend_from_slice(&out);
}

// ---------------------------------------------------------------------------------------------
// Execution
// ---------------------------------------------------------------------------------------------

/// What to run.
#[derive(Clone)]
pub enum Target {
    Eval(Arc<ScriptEntry>),
    Function(Arc<functions::FunctionEntry>),
}

impl Target {
    fn label(&self) -> String {
        match self {
            Target::Eval(e) => e.sha.clone(),
            Target::Function(f) => f.name.clone(),
        }
    }
}

/// One script invocation, sendable to the shard that runs it.
#[derive(Clone)]
pub struct Job {
    pub target: Target,
    pub keys: Vec<Bytes>,
    pub argv: Vec<Bytes>,
    pub read_only: bool,
    pub db: usize,
    pub resp3: bool,
    pub who: Arc<ClientLabel>,
    /// The calling connection's user: every command the script runs is checked against it.
    pub perms: Arc<crate::server::acl::Perms>,
    /// The caller's CLIENT INFO line for ACL log entries of refused calls (None for a user
    /// with every permission, who is never refused).
    pub caller_info: Option<Arc<str>>,
    pub command: &'static str,
}

enum Outcome {
    Done(BytesMut),
    Escalate,
}

/// Remembers that this script needs global mode from now on, and counts the escalation for
/// INFO.
fn note_escalation(shard: &Shard, global_flag: &AtomicBool) {
    global_flag.store(true, Ordering::Relaxed);
    shard
        .globals
        .scripting
        .escalated
        .fetch_add(1, Ordering::Relaxed);
}

/// Runs a script invocation with the protocol of the module docs and returns its reply.
pub async fn run_job(c: &mut Conn, job: Job, global_flag: &AtomicBool) -> BytesMut {
    let shard = c.shard.clone();
    if c.in_exec.is_some() {
        return run_global_locked(&shard, &job);
    }
    let all_here = job.keys.iter().all(|k| shard.shard_of(k) == shard.id);
    if !global_flag.load(Ordering::Relaxed) && all_here {
        // Step 1 of the protocol, run in place: no plan, no copy of the job.
        let out = crate::tx::run_local_unit(&shard, job.db, &job.keys, true, |owner| {
            let mark = crate::persistence::aof::units::mark(&owner.state.borrow());
            let mut run = ScriptRun::new(owner, &job, false, Vec::new(), Vec::new());
            let out = run.execute(&job);
            if run.escalate {
                crate::persistence::aof::units::discard(&mut owner.state.borrow_mut(), mark);
            }
            out
        })
        .await;
        match out {
            Outcome::Done(b) => return b,
            Outcome::Escalate => note_escalation(&shard, global_flag),
        }
    } else if !global_flag.load(Ordering::Relaxed) {
        let keys: Vec<LockKey> = job
            .keys
            .iter()
            .map(|k| LockKey {
                db: job.db as u32,
                key: k.clone(),
            })
            .collect();
        let j = job.clone();
        let res = crate::tx::run_atomic_body(&shard, keys, true, move |owner, bk| {
            let mark = crate::persistence::aof::units::mark(&owner.state.borrow());
            let mut run =
                ScriptRun::new(owner, &j, false, bk.imported.clone(), bk.held_here.clone());
            let out = run.execute(&j);
            if run.escalate {
                // Its writes were undone: the global re-run logs the ones that stand.
                crate::persistence::aof::units::discard(&mut owner.state.borrow_mut(), mark);
            }
            let write_back = !run.escalate && run.wrote;
            (out, write_back)
        })
        .await;
        match res {
            Err(e) => {
                let mut b = BytesMut::new();
                Reply::new(&mut b, job.resp3).error(e);
                return b;
            }
            Ok(Outcome::Done(b)) => return b,
            Ok(Outcome::Escalate) => note_escalation(&shard, global_flag),
        }
    }
    let held = match crate::tx::lock_all_shards(&shard).await {
        Ok(h) => h,
        Err(e) => {
            let mut b = BytesMut::new();
            Reply::new(&mut b, job.resp3).error(e);
            return b;
        }
    };
    let unit = crate::persistence::aof::units::global_begin(&shard, held.tx()).await;
    let out = run_global_locked(&shard, &job);
    unit.end().await;
    held.release_all().await;
    out
}

/// Runs in global mode; the caller holds every shard whole.
fn run_global_locked(sh: &Rc<Shard>, job: &Job) -> BytesMut {
    sh.globals
        .scripting
        .global_runs
        .fetch_add(1, Ordering::Relaxed);
    let mut run = ScriptRun::new(sh, job, true, Vec::new(), Vec::new());
    match run.execute(job) {
        Outcome::Done(b) => b,
        Outcome::Escalate => {
            let mut b = BytesMut::new();
            Reply::new(&mut b, job.resp3).error("ERR internal error: script aborted");
            b
        }
    }
}

/// The context of one script run on one shard (implements what `redis.call` needs).
struct ScriptRun<'a> {
    sh: &'a Shard,
    db: usize,
    global: bool,
    read_only: bool,
    /// Whether this optimistic run may have to escalate, so must check each key, keep an undo
    /// log and hold its notifications back. Not with one shard and no other unit holding a
    /// lock when the run starts: nothing can take a lock while the run holds the thread.
    guarded: bool,
    imported: HashSet<(usize, Bytes)>,
    held_here: HashSet<(usize, Bytes)>,
    undo: Vec<(usize, Bytes, Option<Taken>)>,
    saved: HashSet<(usize, Bytes)>,
    escalate: bool,
    wrote: bool,
    who: Arc<ClientLabel>,
    perms: Arc<crate::server::acl::Perms>,
    caller_info: Option<Arc<str>>,
    /// Calls refused by the ACL rules: logged once the run stands (not for a run undone to
    /// escalate, which runs again).
    acl_denials: Vec<(crate::server::acl::LogReason, Vec<u8>)>,
    started: Instant,
    busy_ms: u64,
    busy_marked: bool,
}

impl<'a> ScriptRun<'a> {
    fn new(
        sh: &'a Shard,
        job: &Job,
        global: bool,
        imported: Vec<LockKey>,
        held_here: Vec<LockKey>,
    ) -> ScriptRun<'a> {
        let busy_ms = sh.state.borrow().config.busy_reply_threshold;
        let guarded = !global && (sh.nshards() > 1 || !sh.locks.borrow().is_idle());
        ScriptRun {
            sh,
            db: job.db,
            global,
            guarded,
            read_only: job.read_only,
            imported: imported
                .into_iter()
                .map(|k| (k.db as usize, k.key))
                .collect(),
            held_here: held_here
                .into_iter()
                .map(|k| (k.db as usize, k.key))
                .collect(),
            undo: Vec::new(),
            saved: HashSet::new(),
            escalate: false,
            wrote: false,
            who: job.who.clone(),
            perms: job.perms.clone(),
            caller_info: job.caller_info.clone(),
            acl_denials: Vec::new(),
            started: Instant::now(),
            busy_ms,
            busy_marked: false,
        }
    }

    /// Adds the run's refused calls to the ACL log (context `lua`), as the caller's.
    fn log_acl_denials(&mut self) {
        use crate::server::acl::{LogContext, LogEntry};
        let max = self.sh.state.borrow().config.acllog_max_len();
        let info = self.caller_info.as_deref().unwrap_or_default();
        let now = crate::server::globals::unix_ms();
        for (reason, object) in self.acl_denials.drain(..) {
            self.sh.globals.acl.log(
                LogEntry {
                    count: 1,
                    reason,
                    context: LogContext::Lua,
                    object,
                    username: self.perms.name.as_bytes().to_vec(),
                    ctime_ms: now,
                    client_info: info.to_string(),
                },
                max,
            );
        }
    }

    fn slot(&self) -> &Slot {
        &self.sh.globals.scripting.slots[self.sh.id.min(self.sh.globals.scripting.slots.len() - 1)]
    }

    /// Runs the script and produces its reply (or asks for escalation, effects undone).
    fn execute(&mut self, job: &Job) -> Outcome {
        let shared = &self.sh.globals.scripting;
        let slot = self.slot();
        slot.running.store(true, Ordering::Release);
        slot.kill.store(false, Ordering::Release);
        slot.wrote.store(false, Ordering::Release);
        let is_eval = matches!(job.target, Target::Eval(_));
        slot.eval.store(is_eval, Ordering::Release);
        if !is_eval {
            // Only FUNCTION STATS reports these (of functions).
            slot.started_ms
                .store(crate::server::globals::unix_ms(), Ordering::Release);
            *slot.name.lock().unwrap_or_else(|e| e.into_inner()) = job.target.label();
            *slot.command.lock().unwrap_or_else(|e| e.into_inner()) = job.command.to_string();
        }
        let hook = self.busy_ms > 0;
        let mut out = BytesMut::new();
        // Clients blocked on keys the script writes are served after it, never in the middle
        // (nor with elements a rolled-back run pushed).
        let outer_unit = std::mem::replace(&mut self.sh.state.borrow_mut().in_unit, true);
        // A run that may still be rolled back and redone in global mode holds its keyspace
        // notifications until it is known to stand, so that none is published twice.
        let captured = self.guarded && crate::pubsub::notify::capture_begin();
        // Its statistics too: a re-run in global mode counts its commands again.
        if self.guarded {
            self.sh.state.borrow_mut().begin_provisional();
        }
        let end = match &job.target {
            Target::Eval(entry) => {
                let epoch = shared.epoch.load(Ordering::Acquire);
                lua::with_vm(
                    VmKind::Eval,
                    epoch,
                    |_| Ok(()),
                    |vm| {
                        let name = FnKey::Name(&entry.fn_name);
                        let mut run = |vm: &lua::Vm, out: &mut BytesMut| {
                            vm.run(
                                &name, &job.keys, &job.argv, true, &entry.sha, hook, self,
                                job.resp3, out,
                            )
                        };
                        let end = run(vm, &mut out);
                        if end != RunEnd::Missing {
                            return end;
                        }
                        let src = lua_source(&entry.body);
                        if let Err(e) = vm.compile(&entry.fn_name, c"@user_script", &src) {
                            Reply::new(&mut out, job.resp3).error(&format!(
                                "ERR Error compiling script (new function): {}",
                                e
                            ));
                            return RunEnd::Done;
                        }
                        run(vm, &mut out)
                    },
                )
            }
            Target::Function(f) => functions::run_function(self, f, job, hook, &mut out),
        };
        let slot = self.slot();
        if self.busy_marked {
            slot.busy.store(false, Ordering::Release);
            shared.busy.fetch_sub(1, Ordering::AcqRel);
        }
        slot.running.store(false, Ordering::Release);
        if captured {
            crate::pubsub::notify::capture_end(!(end.is_ok() && self.escalate));
        }
        if self.guarded {
            let redone = end.is_ok() && self.escalate;
            self.sh.state.borrow_mut().end_provisional(redone);
        }
        let outcome = match end {
            Err(e) => {
                out.clear();
                Reply::new(&mut out, job.resp3).error(&format!("ERR {}", e));
                Outcome::Done(out)
            }
            Ok(_) if self.escalate => {
                self.rollback();
                Outcome::Escalate
            }
            Ok(_) => Outcome::Done(out),
        };
        if matches!(outcome, Outcome::Done(_)) && !self.acl_denials.is_empty() {
            self.log_acl_denials();
        }
        let mut st = self.sh.state.borrow_mut();
        st.in_unit = outer_unit;
        if !outer_unit && st.blocked.has_ready() {
            crate::shard::blocking::serve_ready(
                &mut st,
                &self.sh.globals,
                crate::server::globals::unix_ms(),
            );
        }
        outcome
    }

    fn rollback(&mut self) {
        let now = crate::server::globals::unix_ms();
        let mut st = self.sh.state.borrow_mut();
        for (db, key, old) in self.undo.drain(..).rev() {
            let d = &mut st.dbs[db];
            match old {
                Some(t) => {
                    d.insert_quiet(&key, t.entry.value, t.expire_at, now);
                }
                None => {
                    d.remove(&key);
                }
            }
        }
    }

    /// Saves the entries a write is about to change; false when one is too large to save.
    fn save_for_undo(&mut self, keys: &[(usize, Bytes)]) -> bool {
        let st = self.sh.state.borrow_mut();
        for (db, key) in keys {
            let id = (*db, key.clone());
            if self.saved.contains(&id) || self.imported.contains(&id) {
                continue;
            }
            let e = st.dbs[*db].copy_out(key);
            if let Some(t) = &e {
                if value_size(&t.entry.value) > UNDO_MAX_ELEMENTS {
                    return false;
                }
            }
            self.saved.insert(id);
            self.undo.push((*db, key.clone(), e));
        }
        true
    }

    fn abort(&mut self) -> CallResult {
        self.escalate = true;
        CallResult::Abort
    }

    /// Key (db, name) pairs a command names.
    fn command_keys(&self, spec: &'static CommandSpec, args: &[Bytes]) -> Vec<(usize, Bytes)> {
        let databases = self.sh.state.borrow().dbs.len();
        let mut v = Vec::new();
        crate::tx::command_keys(spec, args, self.db, databases, |k| {
            v.push((k.db as usize, k.key))
        });
        v
    }

    fn exec_local(&mut self, spec: &'static CommandSpec, args: &[Bytes], resp3: bool) -> BytesMut {
        let mut buf = BytesMut::new();
        let mut st = self.sh.state.borrow_mut();
        crate::commands::sort_family::from_script(|| {
            execute_keyed(
                &mut st,
                &self.sh.globals,
                spec,
                args,
                self.db,
                resp3,
                &self.who,
                &mut buf,
            )
        });
        buf
    }

    fn exec_global(
        &mut self,
        spec: &'static CommandSpec,
        args: Vec<Bytes>,
        keys: &[(usize, Bytes)],
        resp3: bool,
    ) -> BytesMut {
        let me = self.sh.id;
        let owners: BTreeSet<usize> = keys.iter().map(|(_, k)| self.sh.shard_of(k)).collect();
        if owners.is_empty() || owners.len() == 1 && owners.contains(&me) {
            return self.exec_local(spec, &args, resp3);
        }
        let db = self.db;
        let who = self.who.clone();
        if owners.len() == 1 {
            let to = *owners.iter().next().expect("one owner");
            let r = block_on_shard(self.sh, to, move |owner| {
                let mut buf = BytesMut::new();
                let mut st = owner.state.borrow_mut();
                // Its blocked clients are served when the unit lets go of the shard
                // (`tx::release_on`), never between the script's commands.
                st.in_unit = true;
                crate::commands::sort_family::from_script(|| {
                    execute_keyed(
                        &mut st,
                        &owner.globals,
                        spec,
                        &args,
                        db,
                        resp3,
                        &who,
                        &mut buf,
                    )
                });
                buf
            });
            return r.unwrap_or_else(|_| shard_gone(resp3));
        }
        // Keys on several shards: copies here, run, then back to their owners.
        let mut by_owner = crate::tx::group_by_shard(
            self.sh,
            keys.iter().map(|(d, k)| LockKey {
                db: *d as u32,
                key: k.clone(),
            }),
        );
        by_owner.remove(&me);
        let now = crate::server::globals::unix_ms();
        for (o, ks) in &by_owner {
            let ks2 = ks.clone();
            let Ok(entries) =
                block_on_shard(self.sh, *o, move |owner| crate::tx::fetch(owner, &ks2))
            else {
                return shard_gone(resp3);
            };
            let mut st = self.sh.state.borrow_mut();
            for (k, e) in ks.iter().zip(entries) {
                if let Some(t) = e {
                    st.dbs[k.db as usize].insert_quiet(&k.key, t.entry.value, t.expire_at, now);
                }
            }
        }
        // The keys this command signals go to their owners with their entries (the WATCHes
        // on them live there); a unit this runs inside keeps its own list.
        let outer = self
            .sh
            .state
            .borrow_mut()
            .unit_signalled
            .replace(Vec::new());
        let out = self.exec_local(spec, &args, resp3);
        let mut signalled =
            std::mem::replace(&mut self.sh.state.borrow_mut().unit_signalled, outer)
                .unwrap_or_default();
        for (o, ks) in by_owner {
            let entries: Vec<Option<Taken>> = {
                let mut st = self.sh.state.borrow_mut();
                ks.iter()
                    .map(|k| st.dbs[k.db as usize].remove(&k.key))
                    .collect()
            };
            let (theirs, rest): (Vec<_>, Vec<_>) = signalled
                .into_iter()
                .partition(|(_, k)| self.sh.shard_of(k) == o);
            signalled = rest;
            let _ = block_on_shard(self.sh, o, move |owner| {
                owner.state.borrow_mut().in_unit = true;
                crate::tx::write_back(owner, None, ks, Some(entries), None, &theirs)
            });
        }
        out
    }

    /// The keys SORT's BY/GET patterns may read, from the source where this run can read it: on
    /// this shard (its own or an imported copy), or in global mode on its owner. None when the
    /// source itself is out of reach (the run escalates on it).
    fn sort_pattern_keys(&self, spec: &'static CommandSpec, args: &[Bytes]) -> Vec<Bytes> {
        let readonly = spec.name == "sort_ro";
        let (db, source) = (self.db, &args[1]);
        let owner = self.sh.shard_of(source);
        if owner == self.sh.id || self.imported.contains(&(db, source.clone())) {
            crate::commands::sort_family::pattern_keys(self.sh, db, args, readonly)
        } else if self.global {
            let args = args.to_vec();
            block_on_shard(self.sh, owner, move |sh| {
                crate::commands::sort_family::pattern_keys(sh, db, &args, readonly)
            })
            .unwrap_or_default()
        } else {
            Vec::new()
        }
    }

    /// Connection-level commands scripts may call.
    fn exec_conn_command(
        &mut self,
        spec: &'static CommandSpec,
        args: &[Bytes],
        resp3: bool,
    ) -> CallResult {
        let name = spec.name;
        let mut buf = BytesMut::new();
        let needs_all = matches!(
            name,
            "dbsize"
                | "keys"
                | "randomkey"
                | "flushdb"
                | "flushall"
                | "publish"
                | "spublish"
                | "scan"
                | "swapdb"
                | "pubsub"
                | "info"
                | "slowlog"
        );
        // A write to every shard cannot be undone: with one shard too, a run that may still
        // roll back escalates first.
        if needs_all && !self.global && (self.sh.nshards() > 1 || self.guarded && spec.has(WRITE)) {
            return self.abort();
        }
        let db = self.db;
        match name {
            "select" => {
                let ndb = self.sh.state.borrow().dbs.len();
                match parse_i64(&args[1]) {
                    None => Reply::new(&mut buf, resp3).error(ERR_NOT_INT),
                    Some(n) if n < 0 || n as usize >= ndb => {
                        Reply::new(&mut buf, resp3).error("ERR DB index is out of range")
                    }
                    Some(n) => {
                        self.db = n as usize;
                        Reply::new(&mut buf, resp3).ok();
                    }
                }
            }
            "dbsize" => {
                let n: usize = self
                    .on_all(move |sh| sh.state.borrow().dbs[db].len())
                    .into_iter()
                    .sum();
                Reply::new(&mut buf, resp3).int(n as i64);
            }
            "keys" => {
                let pat = args[1].clone();
                let parts = self.on_all(move |sh| {
                    let now = crate::server::globals::unix_ms();
                    let st = sh.state.borrow();
                    let d = &st.dbs[db];
                    d.keys
                        .iter()
                        .filter(|(k, e)| {
                            d.is_live(k, e, now) && crate::config::glob_match(&pat, k, false)
                        })
                        .map(|(k, _)| Bytes::copy_from_slice(k))
                        .collect::<Vec<Bytes>>()
                });
                let mut r = Reply::new(&mut buf, resp3);
                r.array(parts.iter().map(|p| p.len()).sum());
                for k in parts.iter().flatten() {
                    r.bulk(k);
                }
            }
            "randomkey" => {
                let parts = self.on_all(move |sh| {
                    let now = crate::server::globals::unix_ms();
                    let st = sh.state.borrow();
                    let d = &st.dbs[db];
                    d.keys
                        .iter()
                        .find(|(k, e)| d.is_live(k, e, now))
                        .map(|(k, _)| k.clone())
                });
                match parts.into_iter().flatten().next() {
                    Some(k) => Reply::new(&mut buf, resp3).bulk(&k),
                    None => Reply::new(&mut buf, resp3).null(),
                }
            }
            "flushdb" | "flushall" => {
                let all = name == "flushall";
                if args.len() > 2
                    || args.len() == 2 && !eq_ic(&args[1], "sync") && !eq_ic(&args[1], "async")
                {
                    Reply::new(&mut buf, resp3).error(crate::commands::args::ERR_SYNTAX);
                } else {
                    self.wrote = true;
                    self.on_all(move |sh| {
                        let mut st = sh.state.borrow_mut();
                        if all {
                            st.dbs.iter_mut().for_each(|d| d.clear());
                            crate::persistence::aof::log_command(&mut st, 0, &["FLUSHALL"]);
                        } else {
                            st.dbs[db].clear();
                            crate::persistence::aof::log_command(&mut st, db, &["FLUSHDB"]);
                        }
                    });
                    crate::pubsub::tracking::invalidate_everything();
                    Reply::new(&mut buf, resp3).ok();
                }
            }
            "swapdb" => {
                let ndb = self.sh.state.borrow().dbs.len();
                match crate::commands::keys_family::swapdb_indexes(args, ndb) {
                    Err(e) => Reply::new(&mut buf, resp3).error(&e),
                    Ok((x, y)) => {
                        self.wrote = true;
                        self.on_all(move |sh| crate::commands::keys_family::swap_on(sh, x, y));
                        Reply::new(&mut buf, resp3).ok();
                    }
                }
            }
            "pubsub" => match crate::pubsub::Query::parse(args) {
                Err(e) => Reply::new(&mut buf, resp3).error(&e),
                Ok(q) => {
                    let q2 = q.clone();
                    let parts = self.on_all(move |sh| q2.part(sh));
                    q.reply(&mut Reply::new(&mut buf, resp3), parts);
                }
            },
            "info" => {
                use crate::commands::server_family::{info_report, info_sections, render_info};
                let sections = info_sections(args);
                let reports = self.on_all(info_report(&sections));
                let text = render_info(self.sh, &reports, &sections);
                Reply::new(&mut buf, resp3).verbatim("txt", text.as_bytes());
            }
            "scan" => {
                match crate::commands::keys_family::ScanWalk::parse(args, self.sh.nshards(), db) {
                    Err(e) => Reply::new(&mut buf, resp3).error(e),
                    Ok(mut walk) => {
                        let next = loop {
                            let (to, step) = walk.next_step();
                            let Ok(part) = block_on_shard(self.sh, to, move |sh| step.run(sh))
                            else {
                                return CallResult::Reply(shard_gone(resp3));
                            };
                            if let Some(next) = walk.absorb(part) {
                                break next;
                            }
                        };
                        walk.reply(&mut Reply::new(&mut buf, resp3), next);
                    }
                }
            }
            "slowlog" => match crate::commands::server_family::SlowlogOp::parse(args) {
                Err(e) => Reply::new(&mut buf, resp3).error(&e),
                Ok(op) => {
                    let parts = if op.needs_shards() {
                        let op2 = op.clone();
                        self.on_all(move |sh| op2.part(sh))
                    } else {
                        Vec::new()
                    };
                    op.reply(&mut Reply::new(&mut buf, resp3), parts);
                }
            },
            "memory" => {
                use crate::commands::memory_family::{reply_usage, usage_of, MemoryOp};
                match MemoryOp::parse(args) {
                    Err(e) => Reply::new(&mut buf, resp3).error(&e),
                    Ok(MemoryOp::Usage(key)) => {
                        let owner = self.sh.shard_of(&key);
                        let n = if owner == self.sh.id || self.imported.contains(&(db, key.clone()))
                        {
                            usage_of(self.sh, db, &key)
                        } else if self.global {
                            match block_on_shard(self.sh, owner, move |sh| usage_of(sh, db, &key)) {
                                Ok(n) => n,
                                Err(_) => return CallResult::Reply(shard_gone(resp3)),
                            }
                        } else {
                            return self.abort();
                        };
                        reply_usage(&mut Reply::new(&mut buf, resp3), n);
                    }
                    Ok(op @ (MemoryOp::Stats | MemoryOp::Doctor)) => {
                        if !self.global && self.sh.nshards() > 1 {
                            return self.abort();
                        }
                        let reports = self.on_all(crate::shard::memory::report);
                        op.reply_overview(&mut Reply::new(&mut buf, resp3), self.sh, &reports);
                    }
                    Ok(op) => op.reply_local(&mut Reply::new(&mut buf, resp3)),
                }
            }
            // Every LATENCY subcommand but HELP is `noscript`, as in Redis.
            "latency" if args.len() == 2 && crate::commands::args::eq_ic(&args[1], "help") => {
                crate::commands::latency_family::reply_help(&mut Reply::new(&mut buf, resp3))
            }
            "command" => crate::commands::server_family::command_reply(
                &mut Reply::new(&mut buf, resp3),
                args,
            ),
            "publish" | "spublish" if args.len() == 3 => {
                let sharded = name == "spublish";
                let (ch, msg) = (args[1].clone(), args[2].clone());
                let n: i64 = self
                    .on_all(move |sh| sh.pubsub.borrow().publish(sharded, &ch, &msg))
                    .into_iter()
                    .sum();
                Reply::new(&mut buf, resp3).int(n);
            }
            // Reached only while DEBUG SET-DISABLE-DENY-SCRIPTS is on (DEBUG is `noscript`).
            "debug"
                if crate::commands::debug_family::from_script(
                    self.sh,
                    args,
                    &mut Reply::new(&mut buf, resp3),
                ) => {}
            _ => {
                return CallResult::Refused("This Redis command is not allowed from script".into())
            }
        }
        CallResult::Reply(buf)
    }

    /// Runs `f` on every shard (this one inline, others as jobs this thread waits for). Only in
    /// global mode or with one shard.
    fn on_all<R: Send + 'static>(
        &self,
        f: impl Fn(&Shard) -> R + Send + Clone + 'static,
    ) -> Vec<R> {
        (0..self.sh.nshards())
            .filter_map(|s| block_on_shard(self.sh, s, f.clone()).ok())
            .collect()
    }
}

/// `commands::lookup` through a small per-thread memo of the names scripts used last (exact
/// bytes, so no case folding or hashing on a hit): scripts call the same few commands.
fn lookup_command(name: &[u8]) -> Option<&'static CommandSpec> {
    const MEMO: usize = 8;
    thread_local! {
        static RECENT: std::cell::RefCell<Vec<RecentCommand>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    let hit = RECENT.with(|r| {
        r.borrow()
            .iter()
            .find(|(n, _)| &n[..] == name)
            .map(|(_, spec)| *spec)
    });
    if hit.is_some() {
        return hit;
    }
    let spec = crate::commands::lookup(name)?;
    RECENT.with(|r| {
        let mut r = r.borrow_mut();
        if r.len() == MEMO {
            r.remove(0);
        }
        r.push((name.into(), spec));
    });
    Some(spec)
}

/// Size used to decide whether an entry is cheap enough to save in the undo log.
fn value_size(v: &Value) -> usize {
    match v {
        Value::Str(s) => s.len() / 64,
        Value::Hash(h) => h.len(),
        Value::List(l) => l.len(),
        Value::Set(s) => s.len(),
        Value::ZSet(z) => z.len(),
        Value::Stream(x) => x.len() as usize,
    }
}

fn shard_gone(resp3: bool) -> BytesMut {
    let mut b = BytesMut::new();
    Reply::new(&mut b, resp3).error(ERR_SHARD_GONE);
    b
}

/// Runs `f` on shard `to` and waits for it by blocking this thread, spinning first (global mode
/// only; see the module docs for why this cannot deadlock).
fn block_on_shard<R: Send + 'static>(
    sh: &Shard,
    to: usize,
    f: impl FnOnce(&Shard) -> R + Send + 'static,
) -> Result<R, crate::shard::ShardGone> {
    if to == sh.id {
        return Ok(f(sh));
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let job: crate::shard::router::Job = Box::new(move |owner: &Shard| {
        let _ = tx.send(f(owner));
    });
    let mut msg = crate::shard::ShardMsg::Job(job);
    loop {
        match sh.router.try_send(to, msg) {
            Ok(()) => break,
            Err(Some(m)) => {
                msg = m;
                std::thread::yield_now();
            }
            Err(None) => return Err(crate::shard::ShardGone),
        }
    }
    // The answer usually takes a few microseconds, far less than a sleep and a wake-up (tens of
    // microseconds on virtual machines). Where shards share cores, yielding lets the owner run.
    let pinned = sh.globals.shards_pinned;
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        match rx.try_recv() {
            Ok(r) => return Ok(r),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                return Err(crate::shard::ShardGone)
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
        }
        spins += 1;
        if spins.is_multiple_of(64) && start.elapsed() > BLOCKED_REPLY_SPIN {
            break;
        }
        if pinned {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    rx.recv().map_err(|_| crate::shard::ShardGone)
}

/// How long a global-mode run waits for another shard's answer on its core before it sleeps.
const BLOCKED_REPLY_SPIN: std::time::Duration = std::time::Duration::from_micros(200);

impl RunHooks for ScriptRun<'_> {
    fn call(&mut self, args: Vec<Bytes>, resp3: bool) -> CallResult {
        let Some(spec) = lookup_command(&args[0]) else {
            return CallResult::Refused("Unknown Redis command called from script".into());
        };
        if !spec.arity_ok(args.len()) {
            return CallResult::Refused(
                "Wrong number of args calling Redis command from script".into(),
            );
        }
        // Redis looks subcommands up (and checks their arity) before running the command too.
        match spec.subcommand(&args) {
            Err(_) => {
                return CallResult::Refused("Unknown Redis command called from script".into())
            }
            Ok(Some(sub)) if !crate::commands::arity_ok(sub.arity, args.len()) => {
                return CallResult::Refused(
                    "Wrong number of args calling Redis command from script".into(),
                )
            }
            _ => {}
        }
        // DEBUG SET-DISABLE-DENY-SCRIPTS lifts this check alone, as in Redis. Keyed commands
        // flagged `noscript` (the blocking pops) then run as in EXEC, without blocking; the
        // connection-level ones a script cannot run (it has no connection) are still refused
        // below, by `exec_conn_command`.
        if spec.has(NOSCRIPT)
            && !self
                .sh
                .globals
                .script_deny_disabled
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            return CallResult::Refused("This Redis command is not allowed from script".into());
        }
        // The caller's ACL rules hold inside scripts too (after the `noscript` check, before the
        // read-only one, as in Redis 7.0).
        if let Err(denied) = self.perms.check(spec, &args) {
            let name = crate::commands::resolve(&args).map_or(spec.name, |(_, n)| n);
            self.acl_denials
                .push(crate::server::acl::log_reason_and_object(
                    denied, name, &args,
                ));
            return CallResult::Refused(format!(
                "The user executing the script {}",
                denied.script_text()
            ));
        }
        // A container's subcommand carries its own flags, as in Redis (XGROUP HELP is no write).
        let is_write = match spec.subcommand(&args) {
            Ok(Some(sub)) => sub.has(WRITE),
            _ => spec.has(WRITE),
        };
        if is_write && self.read_only {
            return CallResult::Refused(
                "Write commands are not allowed from read-only scripts.".into(),
            );
        }
        if matches!(spec.exec, Exec::Conn(_)) && spec.keyed_body.is_none() {
            // Counted here like a keyed command is by `execute_keyed` (Redis's `call()` counts
            // a script's commands whatever they are).
            let started = Instant::now();
            let result = self.exec_conn_command(spec, &args, resp3);
            if let CallResult::Reply(buf) = &result {
                let usec = started.elapsed().as_micros() as u64;
                let failed = buf.first() == Some(&b'-');
                let mut st = self.sh.state.borrow_mut();
                st.count_call(crate::commands::stat_index(spec, &args), usec, failed);
                if failed {
                    st.stats.error_replied(buf);
                }
            }
            return result;
        }
        let mut keys = if self.guarded || self.global {
            self.command_keys(spec, &args)
        } else {
            Vec::new()
        };
        // The keys the command declares (those it may write): SORT's pattern keys follow.
        let declared = keys.len();
        if spec.keyed_body.is_some() && (self.guarded || self.global) {
            let extra = self.sort_pattern_keys(spec, &args);
            keys.extend(extra.into_iter().map(|k| (self.db, k)));
        }
        if self.guarded {
            let me = self.sh.id;
            for (db, k) in &keys {
                let id = (*db, k.clone());
                if self.sh.shard_of(k) != me {
                    if !self.imported.contains(&id) {
                        return self.abort();
                    }
                } else if !self.held_here.contains(&id) && self.sh.locks.borrow().blocks(*db, k) {
                    return self.abort();
                }
            }
            if is_write && !self.save_for_undo(&keys[..declared]) {
                return self.abort();
            }
        }
        if is_write {
            self.wrote = true;
            self.slot().wrote.store(true, Ordering::Release);
        }
        let out = if self.global {
            self.exec_global(spec, args, &keys, resp3)
        } else {
            self.exec_local(spec, &args, resp3)
        };
        CallResult::Reply(out)
    }

    fn tick(&mut self) -> Option<String> {
        if self.escalate {
            return Some("Script aborted by the server".into());
        }
        let elapsed = self.started.elapsed().as_millis() as u64;
        if !self.busy_marked && self.busy_ms > 0 && elapsed >= self.busy_ms {
            self.busy_marked = true;
            self.slot().busy.store(true, Ordering::Release);
            self.sh
                .globals
                .scripting
                .busy
                .fetch_add(1, Ordering::AcqRel);
            tracing::warn!(
                "Slow script detected: still in execution after {} milliseconds. You can try killing the script using the SCRIPT KILL command.",
                elapsed
            );
        }
        if self.busy_marked {
            // This shard's own clients hear from the shard only through this while it runs.
            crate::server::busy::serve_while_busy(self.sh);
        }
        if self.slot().kill.swap(false, Ordering::AcqRel) {
            tracing::warn!("Lua script killed by user with SCRIPT KILL.");
            return Some("Script killed by user with SCRIPT KILL...".into());
        }
        None
    }

    fn register_function(&mut self, _f: lua::RegisteredFunction) -> Result<(), String> {
        Err("redis.register_function can only be called on FUNCTION LOAD command".into())
    }
}

// ---------------------------------------------------------------------------------------------
// SCRIPT
// ---------------------------------------------------------------------------------------------

const SCRIPT_HELP: &[&str] = &[
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
];

fn script(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let sub = String::from_utf8_lossy(&a[1]).to_ascii_lowercase();
        let argc = a.len();
        let arity = |n: i32| {
            if n >= 0 {
                argc == n as usize
            } else {
                argc >= (-n) as usize
            }
        };
        let check = |c: &mut Conn, ok: bool| -> bool {
            if !ok {
                c.reply()
                    .error(&crate::commands::arity_error(&format!("script|{}", sub)));
            }
            ok
        };
        match sub.as_str() {
            "help" if argc == 2 => {
                crate::commands::reply_help(&mut c.reply(), "script", SCRIPT_HELP)
            }
            "load" => {
                if check(c, arity(3)) {
                    let shard = c.shard.clone();
                    match load_script(&shard, a[2].clone()) {
                        Ok(e) => c.reply().bulk(e.sha.as_bytes()),
                        Err(e) => c.reply().error(&e),
                    }
                }
            }
            "exists" => {
                if check(c, arity(-3)) {
                    let shared = &c.shard.globals.scripting;
                    let found: Vec<bool> = a[2..]
                        .iter()
                        .map(|s| {
                            shared
                                .get(&String::from_utf8_lossy(s).to_ascii_lowercase())
                                .is_some()
                        })
                        .collect();
                    let mut r = c.reply();
                    r.array(found.len());
                    for f in found {
                        r.int(f as i64);
                    }
                }
            }
            "flush" => {
                if check(c, arity(-2)) {
                    let ok =
                        argc == 2 || argc == 3 && (eq_ic(&a[2], "sync") || eq_ic(&a[2], "async"));
                    if !ok {
                        return c
                            .reply()
                            .error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
                    }
                    c.shard.globals.scripting.flush();
                    c.reply().ok();
                }
            }
            "kill" => {
                if check(c, arity(2)) {
                    kill(c, true).await;
                }
            }
            "debug" => {
                if check(c, arity(3)) {
                    if eq_ic(&a[2], "no") {
                        c.reply().ok()
                    } else if eq_ic(&a[2], "yes") || eq_ic(&a[2], "sync") {
                        c.reply()
                            .error("ERR SCRIPT DEBUG is not supported by Tessera")
                    } else {
                        c.reply().error("ERR Use SCRIPT DEBUG YES/SYNC/NO")
                    }
                }
            }
            "help" => c
                .reply()
                .error(&crate::commands::arity_error("script|help")),
            _ => c
                .reply()
                .error(&crate::commands::unknown_subcommand_error(&a[1], "script")),
        }
    })
}

/// SCRIPT KILL / FUNCTION KILL. A script still under the busy threshold keeps this client
/// waiting (as Redis would not read the command before), until it ends or becomes busy.
pub async fn kill(c: &mut Conn, eval: bool) {
    let shared = &c.shard.globals.scripting;
    loop {
        let running = shared
            .slots
            .iter()
            .any(|s| s.running.load(Ordering::Acquire));
        if !running {
            return c
                .reply()
                .error("NOTBUSY No scripts in execution right now.");
        }
        if shared.busy.load(Ordering::Acquire) > 0 {
            return match kill_busy(shared, eval) {
                Ok(()) => c.reply().ok(),
                Err(e) => c.reply().error(e),
            };
        }
        glommio::timer::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// SCRIPT KILL (`eval`) or FUNCTION KILL of the busy run, if it may be killed: Ok once it is
/// told to stop, or the error to answer.
pub fn kill_busy(shared: &Shared, eval: bool) -> Result<(), &'static str> {
    let Some(s) = shared.slots.iter().find(|s| s.busy.load(Ordering::Acquire)) else {
        return Err("NOTBUSY No scripts in execution right now.");
    };
    if s.wrote.load(Ordering::Acquire) {
        return Err("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.");
    }
    let is_eval = s.eval.load(Ordering::Acquire);
    if eval && !is_eval {
        return Err(ERR_BUSY_FUNCTION);
    }
    if !eval && is_eval {
        return Err(ERR_BUSY_EVAL);
    }
    s.kill.store(true, Ordering::Release);
    Ok(())
}

/// INFO fields of the scripting section.
pub fn info_fields(sh: &Shard) -> String {
    let s = &sh.globals.scripting;
    format!(
        "scripts_escalated_to_global:{}\r\nscripts_global_runs:{}\r\n",
        s.escalated.load(Ordering::Relaxed),
        s.global_runs.load(Ordering::Relaxed)
    )
}

/// INFO memory's scripting lines, in Redis's order. `lua` is every shard's Lua memory; scripts
/// and functions share each shard's Lua state, so all of it is reported as the eval VM's.
pub fn info_memory_fields(sh: &Shard, lua: u64) -> Vec<(&'static str, String)> {
    use crate::commands::memory_family::bytes_to_human;
    let s = &sh.globals.scripting;
    let (libs, funcs, code) = {
        let r = s.functions.lock().unwrap_or_else(|e| e.into_inner());
        (r.library_count(), r.function_count(), r.code_bytes() as u64)
    };
    let scripts = s.script_bytes() as u64;
    vec![
        ("used_memory_lua", lua.to_string()),
        ("used_memory_vm_eval", lua.to_string()),
        ("used_memory_lua_human", bytes_to_human(lua)),
        ("used_memory_scripts_eval", scripts.to_string()),
        ("number_of_cached_scripts", s.script_count().to_string()),
        ("number_of_functions", funcs.to_string()),
        ("number_of_libraries", libs.to_string()),
        ("used_memory_vm_functions", "0".into()),
        ("used_memory_vm_total", lua.to_string()),
        ("used_memory_vm_total_human", bytes_to_human(lua)),
        ("used_memory_functions", code.to_string()),
        ("used_memory_scripts", (scripts + code).to_string()),
        ("used_memory_scripts_human", bytes_to_human(scripts + code)),
    ]
}

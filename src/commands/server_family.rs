//! Server commands: COMMAND, INFO, CONFIG, SLOWLOG, MONITOR, SHUTDOWN, DEBUG, TIME, LASTSAVE,
//! and WAIT (which, with no replicas, only ever waits for its timeout).
//!
//! These run at connection level and gather what they need from every shard by message
//! (statistics are per shard and summed here). CONFIG SET runs on shard 0, one at a time: it
//! validates once, moves every shard's listeners when `port` or `bind` asks for it
//! (`server::listen`), then installs the new configuration on every shard, so shards never share
//! a mutable config.

use std::rc::Rc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures::future::LocalBoxFuture;

use super::args::{eq_ic, text, ERR_SYNTAX};
use super::{cmd, flags::*, sub, table, CommandSpec, Ctx, Exec, SubCommand, NO_KEYS};
use crate::config::glob_match;
use crate::protocol::Reply;
use crate::server::conn::{Conn, ERR_SHARD_GONE};
use crate::server::globals::{unix_ms, unix_us};
use crate::shard::{CmdStat, Shard, ShardStats, SlowEntry};

pub fn specs() -> Vec<CommandSpec> {
    let g = "server";
    vec![
        cmd(
            "command",
            -1,
            LOADING | STALE,
            NO_KEYS,
            g,
            "2.8.13",
            "O(N) where N is the total number of commands",
            "Describes the server's commands (COUNT, INFO, DOCS, GETKEYS, LIST).",
            Exec::Conn(command),
        )
        .subcommands(COMMAND_SUBCOMMANDS)
        .tips(&["nondeterministic_output_order"]),
        cmd(
            "info",
            -1,
            LOADING | STALE,
            NO_KEYS,
            g,
            "1.0.0",
            "O(1)",
            "Returns information and statistics about the server.",
            Exec::Conn(info),
        )
.tips(&["nondeterministic_output", "request_policy:all_shards", "response_policy:special"]),
        cmd(
            "config",
            -2,
            ADMIN | NOSCRIPT | LOADING | STALE,
            NO_KEYS,
            g,
            "2.0.0",
            "Depends on subcommand",
            "Reads and changes the configuration (GET, SET, RESETSTAT, REWRITE).",
            Exec::Conn(config),
        )
        .subcommands(CONFIG_SUBCOMMANDS),
        cmd(
            "slowlog",
            -2,
            ADMIN | LOADING | STALE,
            NO_KEYS,
            g,
            "2.2.12",
            "Depends on subcommand",
            "Reads or resets the slow log (GET, LEN, RESET).",
            Exec::Conn(slowlog),
        )
        .subcommands(SLOWLOG_SUBCOMMANDS),
        cmd(
            "monitor",
            1,
            ADMIN | NOSCRIPT | LOADING | STALE,
            NO_KEYS,
            g,
            "1.0.0",
            // Redis documents no complexity for MONITOR.
            "",
            "Streams every command the server receives.",
            Exec::Conn(monitor),
        ),
        cmd(
            "shutdown",
            -1,
            ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY,
            NO_KEYS,
            g,
            "1.0.0",
            "O(N) when saving",
            "Stops the server.",
            Exec::Conn(shutdown),
        ),
        cmd(
            "debug",
            -2,
            ADMIN | NOSCRIPT | LOADING | STALE | PROTECTED,
            NO_KEYS,
            g,
            "1.0.0",
            "Depends on subcommand",
            "Debugging and testing helpers (gated by enable-debug-command).",
            Exec::Conn(super::debug_family::debug),
        ),
        cmd(
            "wait",
            3,
            NOSCRIPT,
            NO_KEYS,
            "generic",
            "3.0.0",
            "O(1)",
            "Wait for the synchronous replication of all the write commands sent in the context of the current connection",
            Exec::Conn(wait),
        )
.tips(&["request_policy:all_shards", "response_policy:agg_min"]),
        cmd(
            "time",
            1,
            LOADING | STALE | FAST,
            NO_KEYS,
            g,
            "2.6.0",
            "O(1)",
            "Returns the server time.",
            Exec::Shard(time),
        )
.tips(&["nondeterministic_output"]),
        cmd(
            "lastsave",
            1,
            LOADING | STALE | FAST,
            NO_KEYS,
            g,
            "1.0.0",
            "O(1)",
            "Returns the Unix time of the last successful save.",
            Exec::Shard(lastsave),
        )
.tips(&["nondeterministic_output"]),
        cmd(
            "role",
            1,
            NOSCRIPT | LOADING | STALE | FAST,
            NO_KEYS,
            g,
            "2.8.12",
            "O(1)",
            "Returns the server's replication role.",
            Exec::Shard(role),
        ),
        cmd(
            "save",
            1,
            ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI,
            NO_KEYS,
            g,
            "1.0.0",
            "O(N) where N is the total number of keys in all databases",
            "Saves a point-in-time snapshot of every shard and waits for it.",
            Exec::Conn(save),
        ),
        cmd(
            "bgsave",
            -1,
            ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
            NO_KEYS,
            g,
            "1.0.0",
            "O(N) where N is the total number of keys in all databases",
            "Saves a point-in-time snapshot of every shard in the background.",
            Exec::Conn(bgsave),
        ),
        cmd(
            "bgrewriteaof",
            1,
            ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
            NO_KEYS,
            g,
            "1.0.0",
            "O(1)",
            "Asynchronously rewrites the append-only file to disk.",
            Exec::Conn(bgrewriteaof),
        ),
    ]
}

/// COMMAND's subcommands, as Redis 7.0 declares them.
const COMMAND_SUBCOMMANDS: &[SubCommand] = &[
    sub("command|docs", -2)
        .flags(LOADING | STALE)
        .tips(&["nondeterministic_output_order"])
        .docs(
            "7.0.0",
            "O(N) where N is the number of commands to look up",
            "Returns documentation of commands.",
        ),
    sub("command|getkeysandflags", -4)
        .flags(LOADING | STALE)
        .docs(
            "7.0.0",
            "O(N) where N is the number of arguments to the command",
            "Returns the keys of a full command line and how the command uses each.",
        ),
    sub("command|info", -2)
        .flags(LOADING | STALE)
        .tips(&["nondeterministic_output_order"])
        .docs(
            "2.8.13",
            "O(N) where N is the number of commands to look up",
            "Returns the details of commands.",
        ),
    sub("command|help", 2).flags(LOADING | STALE).docs(
        "5.0.0",
        "O(1)",
        "Lists the COMMAND subcommands.",
    ),
    sub("command|list", -2)
        .flags(LOADING | STALE)
        .tips(&["nondeterministic_output_order"])
        .docs(
            "7.0.0",
            "O(N) where N is the total number of Redis commands",
            "Lists the command names, optionally filtered.",
        ),
    sub("command|count", 2).flags(LOADING | STALE).docs(
        "2.8.13",
        "O(1)",
        "Returns the number of commands.",
    ),
    sub("command|getkeys", -4).flags(LOADING | STALE).docs(
        "2.8.13",
        "O(N) where N is the number of arguments to the command",
        "Returns the keys of a full command line.",
    ),
];

/// CONFIG's subcommands, as Redis 7.0 declares them.
const CONFIG_SUBCOMMANDS: &[SubCommand] = &[
    sub("config|rewrite", 2)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .docs(
            "2.8.0",
            "O(1)",
            "Writes the running configuration back to the configuration file.",
        ),
    sub("config|resetstat", 2)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .docs("2.0.0", "O(1)", "Resets the statistics INFO reports."),
    sub("config|help", 2).flags(LOADING | STALE).docs(
        "5.0.0",
        "O(1)",
        "Lists the CONFIG subcommands.",
    ),
    sub("config|get", -3)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .docs(
            "2.0.0",
            "O(N) when N is the number of configuration parameters provided",
            "Returns the values of configuration parameters.",
        ),
    sub("config|set", -4)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"])
        .docs(
            "2.0.0",
            "O(N) when N is the number of configuration parameters provided",
            "Sets configuration parameters at runtime.",
        ),
];

/// SLOWLOG's subcommands, as Redis 7.0 declares them.
const SLOWLOG_SUBCOMMANDS: &[SubCommand] = &[
    sub("slowlog|reset", 2)
        .flags(ADMIN | LOADING | STALE)
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"])
        .docs(
            "2.2.12",
            "O(N) where N is the number of entries in the slowlog",
            "Empties the slow log.",
        ),
    sub("slowlog|len", 2)
        .flags(ADMIN | LOADING | STALE)
        .tips(&[
            "request_policy:all_nodes",
            "response_policy:agg_sum",
            "nondeterministic_output",
        ])
        .docs(
            "2.2.12",
            "O(1)",
            "Returns the number of entries in the slow log.",
        ),
    sub("slowlog|help", 2).flags(LOADING | STALE).docs(
        "6.2.0",
        "O(1)",
        "Lists the SLOWLOG subcommands.",
    ),
    sub("slowlog|get", -2)
        .flags(ADMIN | LOADING | STALE)
        .tips(&["request_policy:all_nodes", "nondeterministic_output"])
        .docs(
            "2.2.12",
            "O(N) where N is the number of entries returned",
            "Returns entries of the slow log.",
        ),
];

/// SAVE: a snapshot like BGSAVE's (forkless, the shards keep serving), but the reply waits for
/// it to be durable.
fn save(c: &mut Conn, _a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        match crate::persistence::snapshot::snapshot_all(&c.shard).await {
            Ok(()) => c.reply().ok(),
            Err(e) if e == crate::persistence::snapshot::ERR_IN_PROGRESS => {
                c.reply().error(&format!("ERR {e}"))
            }
            Err(_) => c.reply().error("ERR"),
        }
    })
}

/// BGSAVE [SCHEDULE]: starts a snapshot and replies at once.
fn bgsave(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let schedule = match a.len() {
            1 => false,
            2 if eq_ic(&a[1], "schedule") => true,
            _ => return c.reply().error(ERR_SYNTAX),
        };
        let g = &c.shard.globals;
        if g.snapshot.in_progress.load(Ordering::Acquire) {
            return c.reply().error("ERR Background save already in progress");
        }
        // Like Redis, inside EXEC (or while an AOF rewrite runs, with SCHEDULE) the snapshot is
        // only scheduled: the cron starts it afterwards.
        if c.in_exec.is_some() {
            g.snapshot.scheduled.store(true, Ordering::Relaxed);
            return c.reply().simple("Background saving scheduled");
        }
        if g.aof.rewrite_in_progress.load(Ordering::Acquire) {
            if schedule {
                g.snapshot.scheduled.store(true, Ordering::Relaxed);
                return c.reply().simple("Background saving scheduled");
            }
            return c.reply().error("ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.");
        }
        if !crate::persistence::snapshot::try_start(&c.shard) {
            return c.reply().error("ERR Background save already in progress");
        }
        let sh = c.shard.clone();
        glommio::spawn_local(async move {
            let _ = crate::persistence::snapshot::run_started(&sh).await;
        })
        .detach();
        c.reply().simple("Background saving started");
    })
}

/// Starts a rewrite of every shard's AOF in the background (`crate::persistence::aof`).
fn bgrewriteaof(c: &mut Conn, _a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        if c.shard
            .globals
            .aof
            .rewrite_in_progress
            .load(Ordering::Acquire)
        {
            return c
                .reply()
                .error("ERR Background append only file rewriting already in progress");
        }
        let sh = c.shard.clone();
        glommio::spawn_local(async move {
            let _ = crate::persistence::aof::rewrite_all(&sh).await;
        })
        .detach();
        c.reply()
            .simple("Background append only file rewriting started");
    })
}

fn time(_ctx: &mut Ctx, _a: &[Bytes], r: &mut Reply) {
    let us = unix_us();
    r.array(2);
    r.bulk((us / 1_000_000).to_string().as_bytes());
    r.bulk((us % 1_000_000).to_string().as_bytes());
}

fn lastsave(ctx: &mut Ctx, _a: &[Bytes], r: &mut Reply) {
    r.int(ctx.globals.lastsave.load(Ordering::Relaxed) as i64);
}

/// ROLE: Tessera has no replication, so it is always a primary (`master`) with no replicas, at
/// the replication offset INFO reports.
fn role(_ctx: &mut Ctx, _a: &[Bytes], r: &mut Reply) {
    r.array(3);
    r.bulk(b"master");
    r.int(0);
    r.array(0);
}

// ----- COMMAND -----

/// ACL categories in the order Redis lists them (its category table's order).
const CATEGORY_ORDER: &[&str] = &[
    "@keyspace",
    "@read",
    "@write",
    "@set",
    "@sortedset",
    "@list",
    "@hash",
    "@string",
    "@bitmap",
    "@hyperloglog",
    "@geo",
    "@stream",
    "@pubsub",
    "@admin",
    "@fast",
    "@slow",
    "@blocking",
    "@dangerous",
    "@connection",
    "@transaction",
    "@scripting",
];

pub(crate) fn command_categories(s: &CommandSpec) -> Vec<&'static str> {
    // A container (CLIENT, CONFIG, OBJECT...) is only @slow in Redis 7.0: its subcommands carry
    // the rest. COMMAND is the exception, and scripts are @scripting whatever they do.
    match s.name {
        "command" => return vec!["@slow", "@connection"],
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => {
            return vec!["@slow", "@scripting"]
        }
        n if CONTAINERS.contains(&n) => return vec!["@slow"],
        _ => {}
    }
    let mut v = Vec::new();
    if s.has(WRITE) {
        v.push("@write");
    }
    if s.has(READONLY) {
        v.push("@read");
    }
    match (s.group, s.name) {
        // SORT works on three types and reads keys its patterns name.
        (_, "sort" | "sort_ro") => v.extend(["@set", "@sortedset", "@list", "@dangerous"]),
        // WAIT is documented with the generic commands but counts as a connection command.
        (_, "wait") => v.push("@connection"),
        ("string", _) => v.push("@string"),
        ("bitmap", _) => v.push("@bitmap"),
        ("hash", _) => v.push("@hash"),
        ("list", _) => v.push("@list"),
        ("set", _) => v.push("@set"),
        ("sorted-set", _) => v.push("@sortedset"),
        ("geo", _) => v.push("@geo"),
        ("hyperloglog", _) => v.push("@hyperloglog"),
        ("stream", _) => v.push("@stream"),
        ("generic", _) => v.push("@keyspace"),
        ("connection" | "cluster", _) => v.push("@connection"),
        ("pubsub", name) if !CONTAINERS.contains(&name) => v.push("@pubsub"),
        _ => {}
    }
    if s.has(ADMIN) || matches!(s.name, "lastsave" | "role") {
        v.push("@admin");
        v.push("@dangerous");
    }
    if matches!(s.name, "dbsize" | "flushdb" | "flushall" | "swapdb") {
        v.push("@keyspace");
    }
    if matches!(
        s.name,
        "keys"
            | "flushdb"
            | "flushall"
            | "swapdb"
            | "info"
            | "client"
            | "config"
            | "debug"
            | "monitor"
            | "shutdown"
            | "slowlog"
            | "restore"
    ) {
        v.push("@dangerous");
    }
    v.push(if s.has(FAST) { "@fast" } else { "@slow" });
    if s.has(BLOCKING) {
        v.push("@blocking");
    }
    if s.group == "transactions" {
        v.push("@transaction");
    }
    CATEGORY_ORDER
        .iter()
        .copied()
        .filter(|c| v.contains(c))
        .collect()
}

/// Commands with subcommands: Redis 7 reports their flags and keys per subcommand, and none on
/// the container itself.
const CONTAINERS: &[&str] = &[
    "acl", "client", "config", "object", "slowlog", "pubsub", "memory", "script", "function",
    "latency", "module", "cluster", "xinfo", "xgroup",
];

/// What COMMAND INFO and COMMAND DOCS report for a command or a container's subcommand.
#[derive(Clone, Copy)]
enum Described {
    Command(&'static CommandSpec),
    Sub(&'static CommandSpec, &'static SubCommand),
}

impl Described {
    /// A command by name, or a subcommand by its full name (`config|get`), case-insensitively.
    fn lookup(name: &[u8]) -> Option<Described> {
        match name.iter().position(|&b| b == b'|') {
            None => super::lookup(name).map(Described::Command),
            Some(bar) => {
                let container = super::lookup(&name[..bar])?;
                let sub = container.subcommand_named(&name[bar + 1..])?;
                Some(Described::Sub(container, sub))
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Described::Command(s) => s.name,
            Described::Sub(_, x) => x.full_name,
        }
    }

    fn categories(&self) -> Vec<&'static str> {
        match self {
            Described::Command(s) => command_categories(s),
            Described::Sub(c, x) => subcommand_categories(c, x),
        }
    }

    /// Every command, each container followed by its subcommands (COMMAND LIST's order).
    fn all() -> impl Iterator<Item = Described> {
        table().iter().flat_map(|s| {
            std::iter::once(Described::Command(s)).chain(
                s.subcommands
                    .unwrap_or(&[])
                    .iter()
                    .map(move |x| Described::Sub(s, x)),
            )
        })
    }
}

/// A subcommand's ACL categories: what its flags imply, plus its container's family.
pub(crate) fn subcommand_categories(container: &CommandSpec, x: &SubCommand) -> Vec<&'static str> {
    let mut v = Vec::new();
    if x.has(WRITE) {
        v.push("@write");
    }
    if x.has(READONLY) {
        v.push("@read");
    }
    if x.has(ADMIN) {
        v.extend(["@admin", "@dangerous"]);
    }
    if x.has(super::flags::PUBSUB) {
        v.push("@pubsub");
    }
    v.push(if x.has(FAST) { "@fast" } else { "@slow" });
    match container.name {
        "client" | "command" => v.push("@connection"),
        "script" | "function" => v.push("@scripting"),
        "object" => v.push("@keyspace"),
        "xinfo" | "xgroup" => v.push("@stream"),
        _ => {}
    }
    CATEGORY_ORDER
        .iter()
        .copied()
        .filter(|c| v.contains(c))
        .collect()
}

/// COMMAND INFO's entry: name, arity, flags, legacy key range, ACL categories, tips, key specs,
/// and a container's subcommands (each in the same shape).
fn reply_command_info(r: &mut Reply, d: Described) {
    let (arity, flag_bits, movable, keys, tips, specs, subs) = match d {
        Described::Command(s) => {
            // Containers report their flags and keys per subcommand.
            let container = CONTAINERS.contains(&s.name);
            (
                s.arity,
                if container { 0 } else { s.flags },
                s.keys_fn.is_some(),
                if container {
                    NO_KEYS
                } else {
                    (s.first_key, s.last_key, s.step)
                },
                s.tips,
                s.all_key_specs(),
                s.subcommands.unwrap_or(&[]),
            )
        }
        Described::Sub(_, x) => (
            x.arity,
            x.flags,
            false,
            x.keys,
            x.tips,
            x.all_key_specs(),
            &[][..],
        ),
    };
    r.array(10);
    r.bulk(d.name().as_bytes());
    r.int(arity as i64);
    let mut flags: Vec<&str> = super::flags::NAMES
        .iter()
        .filter(|(f, _)| flag_bits & f != 0)
        .map(|(_, n)| *n)
        .collect();
    if movable {
        flags.push("movablekeys");
    }
    r.set(flags.len());
    for f in flags {
        r.simple(f);
    }
    r.int(keys.0 as i64);
    r.int(keys.1 as i64);
    r.int(keys.2 as i64);
    let cats = d.categories();
    r.set(cats.len());
    for c in cats {
        r.simple(c);
    }
    r.set(tips.len());
    for t in tips {
        r.bulk(t.as_bytes());
    }
    reply_key_specs(r, &specs);
    if let Described::Command(s) = d {
        if !subs.is_empty() {
            r.array(subs.len());
            for x in subs {
                reply_command_info(r, Described::Sub(s, x));
            }
            return;
        }
    }
    r.set(0);
}

/// Key specs as Redis 7.0 writes them.
fn reply_key_specs(r: &mut Reply, specs: &[super::KeySpec]) {
    use super::{BeginSearch, FindKeys};
    r.set(specs.len());
    for k in specs {
        r.map(if k.notes.is_some() { 4 } else { 3 });
        if let Some(n) = k.notes {
            r.bulk(b"notes");
            r.bulk(n.as_bytes());
        }
        r.bulk(b"flags");
        r.set(k.flags.len());
        for f in k.flags {
            r.simple(f);
        }
        r.bulk(b"begin_search");
        r.map(2);
        r.bulk(b"type");
        match k.begin {
            BeginSearch::Index(i) => {
                r.bulk(b"index");
                r.bulk(b"spec");
                r.map(1);
                r.bulk(b"index");
                r.int(i as i64);
            }
            BeginSearch::Keyword(keyword, startfrom) => {
                r.bulk(b"keyword");
                r.bulk(b"spec");
                r.map(2);
                r.bulk(b"keyword");
                r.bulk(keyword.as_bytes());
                r.bulk(b"startfrom");
                r.int(startfrom as i64);
            }
            BeginSearch::Unknown => {
                r.bulk(b"unknown");
                r.bulk(b"spec");
                r.map(0);
            }
        }
        r.bulk(b"find_keys");
        r.map(2);
        r.bulk(b"type");
        match k.find {
            FindKeys::Range(lastkey, keystep, limit) => {
                r.bulk(b"range");
                r.bulk(b"spec");
                r.map(3);
                r.bulk(b"lastkey");
                r.int(lastkey as i64);
                r.bulk(b"keystep");
                r.int(keystep as i64);
                r.bulk(b"limit");
                r.int(limit as i64);
            }
            FindKeys::Keynum(keynumidx, firstkey, keystep) => {
                r.bulk(b"keynum");
                r.bulk(b"spec");
                r.map(3);
                r.bulk(b"keynumidx");
                r.int(keynumidx as i64);
                r.bulk(b"firstkey");
                r.int(firstkey as i64);
                r.bulk(b"keystep");
                r.int(keystep as i64);
            }
            FindKeys::Unknown => {
                r.bulk(b"unknown");
                r.bulk(b"spec");
                r.map(0);
            }
        }
    }
}

/// COMMAND DOCS's entry (name, then its map), fields in Redis's order: summary, since, group,
/// complexity, doc flags and deprecation, history, arguments, subcommands.
fn reply_command_docs(r: &mut Reply, d: Described) {
    r.bulk(d.name().as_bytes());
    let more = super::docs::lookup(d.name());
    let history = more.map_or(&[][..], |m| m.history);
    let args = more.map_or(&[][..], |m| &m.args[..]);
    let (summary, since, group, complexity, deprecated, subs) = match d {
        Described::Command(s) => (
            s.summary,
            s.since,
            s.group,
            s.complexity,
            s.deprecated,
            s.subcommands.unwrap_or(&[]),
        ),
        Described::Sub(c, x) => (
            x.summary,
            x.since,
            c.group,
            x.complexity,
            x.deprecated,
            &[][..],
        ),
    };
    // Redis marks DEBUG, PFDEBUG and PFSELFTEST as system commands (not for applications).
    let syscmd = matches!(d.name(), "debug" | "pfdebug" | "pfselftest");
    let fields = 3
        + usize::from(!complexity.is_empty())
        + match deprecated {
            Some(_) => 3,
            None => usize::from(syscmd),
        }
        + usize::from(!history.is_empty())
        + usize::from(!args.is_empty())
        + usize::from(!subs.is_empty());
    r.map(fields);
    reply_docs_fields(r, summary, since, group, complexity);
    if let Some(deprecation) = deprecated {
        reply_deprecation(r, deprecation);
    } else if syscmd {
        r.bulk(b"doc_flags");
        r.set(1);
        r.simple("syscmd");
    }
    if !history.is_empty() {
        r.bulk(b"history");
        super::docs::reply_history(r, history);
    }
    if !args.is_empty() {
        r.bulk(b"arguments");
        super::docs::reply_args(r, args);
    }
    if let Described::Command(s) = d {
        if !subs.is_empty() {
            r.bulk(b"subcommands");
            r.map(subs.len());
            for x in subs {
                reply_command_docs(r, Described::Sub(s, x));
            }
        }
    }
}

/// COMMAND DOCS's fields of a deprecated command: (since, replaced by).
fn reply_deprecation(r: &mut Reply, (since, replaced_by): (&str, &str)) {
    r.bulk(b"doc_flags");
    r.set(1);
    r.simple("deprecated");
    r.bulk(b"deprecated_since");
    r.bulk(since.as_bytes());
    r.bulk(b"replaced_by");
    r.bulk(replaced_by.as_bytes());
}

/// The fields every COMMAND DOCS entry has, but the complexity, which a command may lack.
fn reply_docs_fields(r: &mut Reply, summary: &str, since: &str, group: &str, complexity: &str) {
    r.bulk(b"summary");
    r.bulk(summary.as_bytes());
    r.bulk(b"since");
    r.bulk(since.as_bytes());
    r.bulk(b"group");
    r.bulk(group.as_bytes());
    if !complexity.is_empty() {
        r.bulk(b"complexity");
        r.bulk(complexity.as_bytes());
    }
}

/// COMMAND GETKEYSANDFLAGS: each key with the flags of the key spec that finds it, as Redis 7.0
/// finds them: through the key specs when every spec can be followed and none has variable
/// flags, otherwise through the command's own key finder (`keys`), which flags SORT's and SET's
/// keys and leaves the others without flags.
pub(crate) fn keys_and_flags(
    s: &CommandSpec,
    subcmd: Option<&SubCommand>,
    args: &[Bytes],
    keys: &[usize],
) -> Vec<(usize, &'static [&'static str])> {
    let specs = match subcmd {
        Some(x) => x.all_key_specs(),
        None => s.all_key_specs(),
    };
    let variable = specs.iter().any(|k| k.has("variable_flags"));
    if !variable {
        if let Some(found) = super::keys_by_specs(&specs, args) {
            return found
                .into_iter()
                .map(|(k, j)| (k, specs[j].flags))
                .collect();
        }
    }
    const RO_ACCESS: &[&str] = &["RO", "access"];
    const OW_UPDATE: &[&str] = &["OW", "update"];
    const RW_ACCESS_UPDATE: &[&str] = &["RW", "access", "update"];
    keys.iter()
        .map(|&k| {
            let flags: &'static [&'static str] = match s.name {
                "sort" | "sort_ro" if k == 1 => RO_ACCESS,
                "sort" => OW_UPDATE,
                "set" if args[3..].iter().any(|a| eq_ic(a, "get")) => RW_ACCESS_UPDATE,
                "set" => OW_UPDATE,
                _ => &[],
            };
            (k, flags)
        })
        .collect()
}

const COMMAND_HELP: &[&str] = &[
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
];

fn command(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move { command_reply(&mut c.reply(), &a) })
}

/// COMMAND and its subcommands (also called from scripts).
pub(crate) fn command_reply(r: &mut Reply, a: &[Bytes]) {
    if a.len() == 1 {
        r.array(table().len());
        for s in table() {
            reply_command_info(r, Described::Command(s));
        }
        return;
    }
    let sub = text(&a[1]).to_ascii_lowercase();
    match sub.as_str() {
        "help" if a.len() == 2 => super::reply_help(r, "command", COMMAND_HELP),
        "count" if a.len() == 2 => r.int(table().len() as i64),
        "list" => {
            type Filter = Box<dyn Fn(&Described) -> bool>;
            let mut filter: Option<Filter> = None;
            if a.len() == 5 && eq_ic(&a[2], "filterby") {
                let v = a[4].clone();
                if eq_ic(&a[3], "pattern") {
                    filter = Some(Box::new(move |d| glob_match(&v, d.name().as_bytes(), true)));
                } else if eq_ic(&a[3], "aclcat") {
                    let cat = format!("@{}", text(&v).to_ascii_lowercase());
                    filter = Some(Box::new(move |d| d.categories().contains(&cat.as_str())));
                } else if eq_ic(&a[3], "module") {
                    filter = Some(Box::new(|_| false));
                } else {
                    return r.error(ERR_SYNTAX);
                }
            } else if a.len() != 2 {
                return r.error(ERR_SYNTAX);
            }
            let names: Vec<&str> = Described::all()
                .filter(|d| filter.as_ref().is_none_or(|f| f(d)))
                .map(|d| d.name())
                .collect();
            r.array(names.len());
            for n in names {
                r.bulk(n.as_bytes());
            }
        }
        "info" => {
            if a.len() == 2 {
                r.array(table().len());
                for s in table() {
                    reply_command_info(r, Described::Command(s));
                }
            } else {
                r.array(a.len() - 2);
                for name in &a[2..] {
                    match Described::lookup(name) {
                        Some(d) => reply_command_info(r, d),
                        None => r.null(),
                    }
                }
            }
        }
        "docs" => {
            if a.len() == 2 {
                r.map(table().len());
                for s in table() {
                    reply_command_docs(r, Described::Command(s));
                }
            } else {
                let found: Vec<_> = a[2..].iter().filter_map(|n| Described::lookup(n)).collect();
                r.map(found.len());
                for d in found {
                    reply_command_docs(r, d);
                }
            }
        }
        // Like Redis, the subcommand needs a command *and* at least one argument.
        "getkeys" | "getkeysandflags" if a.len() >= 4 => {
            // Redis's order of checks (commandGetKeysAndFlags).
            let Some(s) = super::lookup(&a[2]) else {
                return r.error("ERR Invalid command specified");
            };
            let args = &a[2..];
            // A container's subcommand is the command here (memory|usage has a key,
            // memory|stats none).
            let Ok(subcmd) = s.subcommand(args) else {
                return r.error("ERR Invalid command specified");
            };
            // Redis's doesCommandHaveKeys: a key finder, or a key spec that is not `not_key`
            // (shard channels are declared as keys for cluster routing only).
            let has_keys = match subcmd {
                Some(x) => x.keys.0 > 0,
                None => s.keys_fn.is_some() || s.all_key_specs().iter().any(|k| !k.has("not_key")),
            };
            if !has_keys {
                return r.error("ERR The command has no key arguments");
            }
            let arity = subcmd.map_or(s.arity, |x| x.arity);
            if !super::arity_ok(arity, args.len()) {
                return r.error("ERR Invalid number of arguments specified for command");
            }
            let keys: Vec<usize> = match s.keys_fn.map(|f| f(args)) {
                Some(None) => Vec::new(),
                _ => s.keys(args).collect(),
            };
            if keys.is_empty() && subcmd.is_some() {
                return r.error("ERR The command has no key arguments");
            }
            if keys.is_empty() {
                // Scripts may name no keys; any other command must name one.
                if s.has(super::flags::NO_MANDATORY_KEYS) {
                    return r.array(0);
                }
                return r.error("ERR Invalid arguments specified for command");
            }
            if sub == "getkeys" {
                r.array(keys.len());
                for k in keys {
                    r.bulk(&args[k]);
                }
                return;
            }
            let flagged = keys_and_flags(s, subcmd, args, &keys);
            r.array(flagged.len());
            for (k, flags) in flagged {
                r.array(2);
                r.bulk(&args[k]);
                r.set(flags.len());
                for f in flags {
                    r.simple(f);
                }
            }
        }
        "count" | "help" | "getkeys" | "getkeysandflags" => {
            r.error(&super::arity_error(&format!("command|{}", sub)))
        }
        _ => r.error(&super::unknown_subcommand_error(&a[1], "command")),
    }
}

// ----- INFO -----

/// Everything INFO needs from one shard.
#[derive(Default)]
pub(crate) struct ShardReport {
    stats: ShardStats,
    cmd_stats: Vec<CmdStat>,
    keyspace: Vec<(usize, usize, u64)>, // (keys, expires, avg_ttl) per db
    clients: usize,
    blocked_clients: usize,
    expired: u64,
    /// Channels, patterns and shard channels with subscribers on this shard.
    pubsub: (Vec<Bytes>, Vec<Bytes>, Vec<Bytes>),
    /// CPU time of this shard's thread (system, user), in seconds.
    thread_cpu: (f64, f64),
    mem: crate::shard::memory::MemReport,
    /// The latency histograms (slot, non-zero counters), when INFO asks for latencystats.
    latency: crate::shard::latency::Exported,
    /// Client-side caching: (clients, keys, items, prefixes), see `pubsub::tracking::stats`.
    tracking: (usize, usize, usize, usize),
}

/// (system, user) CPU seconds of the process (`RUSAGE_SELF`) or the calling thread.
fn cpu_times(who: libc::c_int) -> (f64, f64) {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(who, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(u.ru_stime), t(u.ru_utime))
}

fn info(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let sections = info_sections(&a);
        let Ok(reports) = c.shard.run_on_all(info_report(&sections)).await else {
            return c.reply().error(ERR_SHARD_GONE);
        };
        let text = render_info(&c.shard, &reports, &sections);
        c.reply().verbatim("txt", text.as_bytes());
    })
}

/// What gathers one shard's part of INFO for these sections (the connection and a script's
/// `redis.call('INFO')` both run it on every shard). The latency histograms travel only when
/// the latencystats section is wanted.
pub(crate) fn info_report(
    sections: &[String],
) -> impl Fn(&Shard) -> ShardReport + Send + Clone + 'static {
    let latency = info_wants(sections, "latencystats", false);
    move |sh| shard_report(sh, latency)
}

fn shard_report(sh: &Shard, with_latency: bool) -> ShardReport {
    let st = sh.state.borrow();
    ShardReport {
        stats: st.stats.clone(),
        cmd_stats: st.cmd_stats.clone(),
        keyspace: st
            .dbs
            .iter()
            .map(|d| (d.len(), d.volatile_len(), d.avg_ttl))
            .collect(),
        clients: sh.clients.borrow().clients.len(),
        blocked_clients: sh.blocked_clients.get(),
        expired: st.dbs.iter().map(|d| d.expired_keys).sum(),
        pubsub: sh.pubsub.borrow().names(),
        tracking: crate::pubsub::tracking::stats(),
        thread_cpu: cpu_times(libc::RUSAGE_THREAD),
        mem: crate::shard::memory::report(sh),
        latency: if with_latency {
            st.latency.export()
        } else {
            Vec::new()
        },
    }
}

/// One `name:value` line of an INFO section.
pub(crate) fn info_line(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push(':');
    out.push_str(value);
    out.push_str("\r\n");
}

/// INFO's section arguments, lower-cased.
pub(crate) fn info_sections(a: &[Bytes]) -> Vec<String> {
    a[1..]
        .iter()
        .map(|s| text(s).to_ascii_lowercase())
        .collect()
}

/// Whether INFO with these (lower-cased) section arguments prints section `name`: asked for
/// by name, or by `all`/`everything`, or by `default` (or no argument) when it is a default
/// section.
fn info_wants(sections: &[String], name: &str, in_default: bool) -> bool {
    let all = sections.iter().any(|s| s == "all" || s == "everything");
    let default = sections.is_empty() || sections.iter().any(|s| s == "default");
    all || (default && in_default) || sections.iter().any(|s| s == name)
}

pub(crate) fn render_info(sh: &Shard, reports: &[ShardReport], sections: &[String]) -> String {
    let want = |name: &str, in_default: bool| info_wants(sections, name, in_default);
    let g = &sh.globals;
    let cfg = sh.state.borrow().config.clone();
    let now = unix_ms();
    let uptime = (now - g.start_ms) / 1000;
    let mut out = String::new();
    let mut sum = ShardStats::default();
    for r in reports {
        let s = &r.stats;
        sum.keyspace_hits += s.keyspace_hits;
        sum.keyspace_misses += s.keyspace_misses;
        sum.total_commands += s.total_commands;
        sum.total_error_replies += s.total_error_replies;
        sum.total_connections_received += s.total_connections_received;
        sum.rejected_connections += s.rejected_connections;
        sum.net_input_bytes += s.net_input_bytes;
        sum.net_output_bytes += s.net_output_bytes;
        sum.evicted_keys += s.evicted_keys;
        sum.evicted_clients += s.evicted_clients;
        sum.cross_shard_batches += s.cross_shard_batches;
        sum.cross_shard_commands += s.cross_shard_commands;
        sum.tx_multi_shard += s.tx_multi_shard;
        sum.tx_lock_waits += s.tx_lock_waits;
        sum.tx_lock_retries += s.tx_lock_retries;
    }
    // A channel with subscribers on several shards counts once, like in one Redis.
    let distinct = |pick: fn(&ShardReport) -> &Vec<Bytes>| {
        let mut all: Vec<&Bytes> = reports.iter().flat_map(|r| pick(r).iter()).collect();
        all.sort();
        all.dedup();
        all.len()
    };
    let pubsub_channels = distinct(|r| &r.pubsub.0);
    let pubsub_patterns = distinct(|r| &r.pubsub.1);
    let pubsubshard_channels = distinct(|r| &r.pubsub.2);
    let expired: u64 = reports.iter().map(|r| r.expired).sum();
    let section = |out: &mut String, title: &str, body: String| {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        out.push_str(&format!("# {}\r\n", title));
        out.push_str(&body);
    };
    if want("server", true) {
        let body = format!(
            "redis_version:{}\r\ntessera_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:io_uring\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\nshards:{}\r\n",
            crate::REDIS_VERSION,
            env!("CARGO_PKG_VERSION"),
            os_line(),
            g.pid,
            g.run_id,
            g.port.load(Ordering::Relaxed),
            unix_us(),
            uptime,
            uptime / 86400,
            cfg.hz,
            cfg.hz,
            (now / 1000) & 0xFF_FFFF,
            g.executable,
            g.config_file,
            g.nshards
        );
        section(&mut out, "Server", body);
    }
    if want("clients", true) {
        let clients: usize = reports.iter().map(|r| r.clients).sum();
        let blocked: usize = reports.iter().map(|r| r.blocked_clients).sum();
        // Every shard holds the same replica of the tracking clients.
        let tracking = reports.first().map_or(0, |r| r.tracking.0);
        let body = format!(
            "connected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:{}\r\ntracking_clients:{}\r\nclients_in_timeout_table:0\r\n",
            clients, cfg.maxclients, blocked, tracking
        );
        section(&mut out, "Clients", body);
    }
    if want("memory", true) {
        let mem: Vec<_> = reports.iter().map(|r| r.mem.clone()).collect();
        let body = super::memory_family::info_section(sh, &mem);
        section(&mut out, "Memory", body);
    }
    if want("persistence", true) {
        let body = format!(
            "loading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\n{}{}",
            g.snapshot.info(g.lastsave.load(Ordering::Relaxed), unix_ms()),
            g.aof.info()
        );
        section(&mut out, "Persistence", body);
    }
    if want("stats", true) {
        let mem: Vec<_> = reports.iter().map(|r| r.mem.clone()).collect();
        let exceeded = super::memory_family::eviction_exceeded_ms(&mem);
        let total = |f: fn(&ShardStats) -> u64| reports.iter().map(|r| f(&r.stats)).sum::<u64>();
        let instant = reports
            .iter()
            .map(|r| r.stats.instantaneous())
            .fold([0u64; 3], |a, b| [a[0] + b[0], a[1] + b[1], a[2] + b[2]]);
        // Each shard's estimate, weighted by the keys with a deadline it holds.
        let volatile: Vec<u64> = reports
            .iter()
            .map(|r| r.keyspace.iter().map(|k| k.1 as u64).sum())
            .collect();
        let all_volatile: u64 = volatile.iter().sum();
        let stale_perc = if all_volatile > 0 {
            reports
                .iter()
                .zip(&volatile)
                .map(|(r, &v)| r.stats.expired_stale_perc * v as f64)
                .sum::<f64>()
                / all_volatile as f64
        } else {
            0.0
        };
        let mut body = String::with_capacity(2048);
        let mut line = |k: &str, v: String| info_line(&mut body, k, &v);
        line(
            "total_connections_received",
            sum.total_connections_received.to_string(),
        );
        line("total_commands_processed", sum.total_commands.to_string());
        line("instantaneous_ops_per_sec", instant[0].to_string());
        line("total_net_input_bytes", sum.net_input_bytes.to_string());
        line("total_net_output_bytes", sum.net_output_bytes.to_string());
        // No replication: its counters stay at zero, as on a Redis without replicas.
        line("total_net_repl_input_bytes", "0".into());
        line("total_net_repl_output_bytes", "0".into());
        line(
            "instantaneous_input_kbps",
            format!("{:.2}", instant[1] as f64 / 1024.0),
        );
        line(
            "instantaneous_output_kbps",
            format!("{:.2}", instant[2] as f64 / 1024.0),
        );
        line("instantaneous_input_repl_kbps", "0.00".into());
        line("instantaneous_output_repl_kbps", "0.00".into());
        line("rejected_connections", sum.rejected_connections.to_string());
        line("sync_full", "0".into());
        line("sync_partial_ok", "0".into());
        line("sync_partial_err", "0".into());
        line("expired_keys", expired.to_string());
        line("expired_stale_perc", format!("{:.2}", stale_perc * 100.0));
        line(
            "expired_time_cap_reached_count",
            total(|s| s.expire_time_cap_reached).to_string(),
        );
        line(
            "expire_cycle_cpu_milliseconds",
            (total(|s| s.expire_cycle_us) / 1000).to_string(),
        );
        line("evicted_keys", sum.evicted_keys.to_string());
        line("evicted_clients", sum.evicted_clients.to_string());
        line("total_eviction_exceeded_time", exceeded.0.to_string());
        line("current_eviction_exceeded_time", exceeded.1.to_string());
        line("keyspace_hits", sum.keyspace_hits.to_string());
        line("keyspace_misses", sum.keyspace_misses.to_string());
        line("pubsub_channels", pubsub_channels.to_string());
        line("pubsub_patterns", pubsub_patterns.to_string());
        line("pubsubshard_channels", pubsubshard_channels.to_string());
        // Snapshots and rewrites are written by the shards themselves: nothing forks.
        line("latest_fork_usec", "0".into());
        line("total_forks", "0".into());
        line("migrate_cached_sockets", "0".into());
        line("slave_expires_tracked_keys", "0".into());
        // No active defragmentation, no I/O threads.
        for k in [
            "active_defrag_hits",
            "active_defrag_misses",
            "active_defrag_key_hits",
            "active_defrag_key_misses",
            "total_active_defrag_time",
            "current_active_defrag_time",
        ] {
            line(k, "0".into());
        }
        // Tracked keys and items are each shard's own; prefixes are replicas.
        line(
            "tracking_total_keys",
            reports
                .iter()
                .map(|r| r.tracking.1)
                .sum::<usize>()
                .to_string(),
        );
        line(
            "tracking_total_items",
            reports
                .iter()
                .map(|r| r.tracking.2)
                .sum::<usize>()
                .to_string(),
        );
        line(
            "tracking_total_prefixes",
            reports.first().map_or(0, |r| r.tracking.3).to_string(),
        );
        line("unexpected_error_replies", "0".into());
        line("total_error_replies", sum.total_error_replies.to_string());
        line("dump_payload_sanitizations", "0".into());
        line(
            "total_reads_processed",
            total(|s| s.reads_processed).to_string(),
        );
        line(
            "total_writes_processed",
            total(|s| s.writes_processed).to_string(),
        );
        line("io_threaded_reads_processed", "0".into());
        line("io_threaded_writes_processed", "0".into());
        line("reply_buffer_shrinks", "0".into());
        line("reply_buffer_expands", "0".into());
        // Tessera's own: cross-shard traffic and transactions, script escalations.
        line("cross_shard_batches", sum.cross_shard_batches.to_string());
        line("cross_shard_commands", sum.cross_shard_commands.to_string());
        line("multi_shard_transactions", sum.tx_multi_shard.to_string());
        line("multi_shard_lock_waits", sum.tx_lock_waits.to_string());
        line("multi_shard_lock_retries", sum.tx_lock_retries.to_string());
        let body = body + &crate::scripting::info_fields(sh);
        section(&mut out, "Stats", body);
    }
    if want("replication", true) {
        let body = format!(
            "role:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
            g.replid.lock().unwrap_or_else(|e| e.into_inner())
        );
        section(&mut out, "Replication", body);
    }
    if want("cpu", true) {
        let (sys, user) = cpu_times(libc::RUSAGE_SELF);
        // Redis's main thread runs the commands: here that is every shard's thread.
        let (main_sys, main_user) = reports.iter().fold((0.0, 0.0), |a, r| {
            (a.0 + r.thread_cpu.0, a.1 + r.thread_cpu.1)
        });
        let body = format!(
            "used_cpu_sys:{:.6}\r\nused_cpu_user:{:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\nused_cpu_sys_main_thread:{:.6}\r\nused_cpu_user_main_thread:{:.6}\r\n",
            sys, user, main_sys, main_user
        );
        section(&mut out, "CPU", body);
    }
    if want("modules", true) {
        // No modules: the header alone, as Redis prints it without any.
        section(&mut out, "Modules", String::new());
    }
    if want("commandstats", false) {
        let mut body = String::new();
        for (i, name) in super::stat_names().iter().enumerate() {
            let mut t = CmdStat::default();
            for r in reports {
                let x = r.cmd_stats[i];
                t.calls += x.calls;
                t.usec += x.usec;
                t.rejected_calls += x.rejected_calls;
                t.failed_calls += x.failed_calls;
            }
            if t.calls == 0 && t.rejected_calls == 0 {
                continue;
            }
            let per = if t.calls > 0 {
                t.usec as f64 / t.calls as f64
            } else {
                0.0
            };
            body.push_str(&format!(
                "cmdstat_{}:calls={},usec={},usec_per_call={:.2},rejected_calls={},failed_calls={}\r\n",
                name, t.calls, t.usec, per, t.rejected_calls, t.failed_calls
            ));
        }
        section(&mut out, "Commandstats", body);
    }
    if want("errorstats", true) {
        let mut codes: std::collections::BTreeMap<&[u8], u64> = Default::default();
        for r in reports {
            for (code, n) in &r.stats.error_codes {
                *codes.entry(&code[..]).or_default() += n;
            }
        }
        let mut body = String::new();
        for (code, n) in codes {
            body.push_str(&format!(
                "errorstat_{}:count={}\r\n",
                String::from_utf8_lossy(code),
                n
            ));
        }
        section(&mut out, "Errorstats", body);
    }
    if want("latencystats", false) {
        // Like Redis, nothing but the header while latency-tracking is off (the histograms
        // are kept, and shown again once it is back on).
        let mut body = String::new();
        if cfg.latency_tracking {
            let by_slot = crate::shard::latency::merge_exports(
                super::stat_names().len(),
                reports.iter().map(|r| &r.latency),
            );
            // In the order of the Commandstats lines.
            for (name, merged) in super::stat_names().iter().zip(&by_slot) {
                let Some(m) = merged else { continue };
                body.push_str("latency_percentiles_usec_");
                body.push_str(name);
                body.push(':');
                crate::shard::latency::percentiles_line(
                    &mut body,
                    m,
                    &cfg.latency_tracking_info_percentiles,
                );
                body.push_str("\r\n");
            }
        }
        section(&mut out, "Latencystats", body);
    }
    if want("cluster", true) {
        section(&mut out, "Cluster", "cluster_enabled:0\r\n".into());
    }
    if want("keyspace", true) {
        let mut body = String::new();
        let ndb = reports.first().map(|r| r.keyspace.len()).unwrap_or(0);
        for db in 0..ndb {
            let keys: usize = reports.iter().map(|r| r.keyspace[db].0).sum();
            let expires: usize = reports.iter().map(|r| r.keyspace[db].1).sum();
            // Each shard estimates its own keys' average; weighted by how many it holds. A
            // shard whose expiry cycle has not sampled its keys yet has no estimate (0) and
            // must not pull the others' down.
            let sampled = reports.iter().filter(|r| r.keyspace[db].2 > 0);
            let weighted: u128 = sampled
                .clone()
                .map(|r| r.keyspace[db].1 as u128 * r.keyspace[db].2 as u128)
                .sum();
            let weight: u128 = sampled.map(|r| r.keyspace[db].1 as u128).sum();
            let avg_ttl = weighted.checked_div(weight).unwrap_or(0);
            if keys > 0 {
                body.push_str(&format!(
                    "db{}:keys={},expires={},avg_ttl={}\r\n",
                    db, keys, expires, avg_ttl
                ));
            }
        }
        section(&mut out, "Keyspace", body);
    }
    out
}

fn os_line() -> String {
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct we own.
    unsafe { libc::uname(&mut u) };
    let f = |b: &[libc::c_char]| {
        let bytes: Vec<u8> = b
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!("{} {} {}", f(&u.sysname), f(&u.release), f(&u.machine))
}

// ----- CONFIG -----

const CONFIG_HELP: &[&str] = &[
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
];

fn config(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let sub = text(&a[1]).to_ascii_lowercase();
        match sub.as_str() {
            "help" if a.len() == 2 => super::reply_help(&mut c.reply(), "config", CONFIG_HELP),
            "get" if a.len() >= 3 => {
                let pats: Vec<&[u8]> = a[2..].iter().map(|p| &p[..]).collect();
                let pairs = c.shard.state.borrow().config.get(&pats);
                let mut r = c.reply();
                r.map(pairs.len());
                for (k, v) in pairs {
                    r.bulk(k.as_bytes());
                    r.bulk(v.as_bytes());
                }
            }
            "set" if a.len() >= 4 && !a.len().is_multiple_of(2) => c.reply().error(ERR_SYNTAX),
            "set" if a.len() >= 4 => {
                let pairs: Vec<(Bytes, Bytes)> = a[2..]
                    .chunks(2)
                    .map(|p| (p[0].clone(), p[1].clone()))
                    .collect();
                let res = c
                    .shard
                    .run_task_on(0, move |sh| async move { config_set(&sh, &pairs).await })
                    .await;
                match res {
                    Some(Ok(())) => c.reply().ok(),
                    Some(Err(e)) => c.reply().error(&e),
                    None => c.reply().error(ERR_SHARD_GONE),
                }
            }
            "resetstat" if a.len() == 2 => {
                let res = c
                    .shard
                    .run_on_all(|sh| {
                        let mut st = sh.state.borrow_mut();
                        st.stats = ShardStats::default();
                        for s in st.cmd_stats.iter_mut() {
                            *s = CmdStat::default();
                        }
                        st.latency.reset();
                        for d in st.dbs.iter_mut() {
                            d.expired_keys = 0;
                        }
                        st.mem.reset_stats();
                        crate::shard::lazyfree::reset_stats();
                    })
                    .await;
                match res {
                    Ok(_) => c.reply().ok(),
                    Err(_) => c.reply().error(ERR_SHARD_GONE),
                }
            }
            "rewrite" if a.len() == 2 => {
                let users = super::acl_family::users_for_config_rewrite(c);
                let res = c.shard.state.borrow().config.rewrite(users.as_deref());
                match res {
                    Ok(()) => c.reply().ok(),
                    Err(e) => c.reply().error(&e),
                }
            }
            "get" | "set" | "resetstat" | "rewrite" | "help" => c
                .reply()
                .error(&super::arity_error(&format!("config|{}", sub))),
            _ => c
                .reply()
                .error(&super::unknown_subcommand_error(&a[1], "config")),
        }
    })
}

/// CONFIG SET on shard 0 (see `Shard::config_turn`): the new configuration is checked, the
/// listeners move if `port` or `bind` asks for it, and then every shard takes the
/// configuration. A failure anywhere leaves everything as it was. Errors are replies.
async fn config_set(sh: &Rc<Shard>, pairs: &[(Bytes, Bytes)]) -> Result<(), String> {
    let _turn = sh
        .config_turn
        .acquire_permit(1)
        .await
        .map_err(|_| ERR_SHARD_GONE.to_string())?;
    let refs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    let mut cfg = sh.state.borrow().config.clone();
    let changed = cfg.set(&refs)?;
    // The OOM score first: a failure there leaves nothing else to undo.
    let names: Vec<&str> = refs
        .iter()
        .filter_map(|(name, _)| crate::config::canonical_name(name))
        .collect();
    if names.contains(&"oom-score-adj-values") {
        crate::server::oom_score::warn_if_unordered(&cfg.oom_score_adj_values);
    }
    let oom_changed =
        changed.contains(&"oom-score-adj") || changed.contains(&"oom-score-adj-values");
    if oom_changed && crate::server::oom_score::apply(&cfg).is_err() {
        // The settings in force stay, and so does the score they gave (Redis rolls back and
        // applies the old values again).
        let _ = crate::server::oom_score::apply(&sh.state.borrow().config);
        let arg = names
            .iter()
            .find(|n| n.starts_with("oom-score-adj"))
            .unwrap_or(&"oom-score-adj");
        return Err(crate::config::set_failed(
            arg,
            crate::server::oom_score::ERR_FAILED,
        ));
    }
    // As in Redis, `bind` re-listens whenever it is given, `port` when its value changes, and
    // the first of them in the request names the failure.
    let relisten = refs
        .iter()
        .filter_map(|(name, _)| crate::config::canonical_name(name))
        .find(|&n| n == "bind" || (n == "port" && changed.contains(&"port")));
    if let Some(arg) = relisten {
        let moved = crate::server::listen::relisten(sh, &cfg.bind, cfg.port, cfg.tcp_backlog).await;
        if let Err(why) = moved {
            tracing::warn!("{why}");
            tracing::warn!(
                "CONFIG SET {arg}: cannot listen on the new addresses; the previous settings stay"
            );
            let why = if arg == "port" {
                "Unable to listen on this port. Check server logs."
            } else {
                "Failed to bind to specified addresses."
            };
            if oom_changed {
                let _ = crate::server::oom_score::apply(&sh.state.borrow().config);
            }
            return Err(crate::config::set_failed(arg, why));
        }
    }
    if changed.contains(&"requirepass") {
        // requirepass is the default user's password, as in Redis.
        sh.globals.acl.set_requirepass(cfg.requirepass.as_deref());
    }
    crate::pubsub::set_output_limit(cfg.output_limit(crate::config::OBUF_PUBSUB));
    // A new template, port or bind shows in the title at once, as in Redis.
    if changed.contains(&"proc-title-template") {
        crate::server::proc_title::set_from(&cfg);
    } else {
        crate::server::proc_title::apply(&cfg);
    }
    sh.run_on_all(move |sh| {
        let now = unix_ms();
        crate::shard::memory::apply_config(&mut sh.state.borrow_mut(), cfg.clone(), now)
    })
    .await
    .map(|_| ())
    .map_err(|_| ERR_SHARD_GONE.to_string())
}

// ----- SLOWLOG -----

const SLOWLOG_HELP: &[&str] = &[
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
];

fn slowlog(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        match SlowlogOp::parse(&a) {
            Err(e) => c.reply().error(&e),
            Ok(op) => {
                let parts = if op.needs_shards() {
                    let op2 = op.clone();
                    match c.shard.run_on_all(move |sh| op2.part(sh)).await {
                        Ok(p) => p,
                        Err(_) => return c.reply().error(ERR_SHARD_GONE),
                    }
                } else {
                    Vec::new()
                };
                op.reply(&mut c.reply(), parts);
            }
        }
    })
}

/// A parsed SLOWLOG call: what it asks each shard for (`part`) and how the parts make the
/// reply (`reply`), shared by the connection and scripts.
#[derive(Clone)]
pub(crate) enum SlowlogOp {
    Help,
    Len,
    Reset,
    Get(i64),
}

/// One shard's answer to a [`SlowlogOp`].
pub(crate) enum SlowlogPart {
    Len(usize),
    Entries(Vec<SlowEntry>),
    Done,
}

impl SlowlogOp {
    pub(crate) fn parse(a: &[Bytes]) -> Result<SlowlogOp, String> {
        let sub = text(&a[1]).to_ascii_lowercase();
        match sub.as_str() {
            "help" if a.len() == 2 => Ok(SlowlogOp::Help),
            "len" if a.len() == 2 => Ok(SlowlogOp::Len),
            "reset" if a.len() == 2 => Ok(SlowlogOp::Reset),
            "get" if a.len() > 3 => Err(super::subcommand_syntax_error(&a[1], "slowlog")),
            "get" if a.len() == 3 => match super::args::parse_i64(&a[2]) {
                Some(n) if n >= -1 => Ok(SlowlogOp::Get(n)),
                _ => Err("ERR count should be greater than or equal to -1".into()),
            },
            "get" => Ok(SlowlogOp::Get(10)),
            "len" | "reset" | "help" => Err(super::arity_error(&format!("slowlog|{}", sub))),
            _ => Err(super::unknown_subcommand_error(&a[1], "slowlog")),
        }
    }

    pub(crate) fn needs_shards(&self) -> bool {
        !matches!(self, SlowlogOp::Help)
    }

    pub(crate) fn part(&self, sh: &Shard) -> SlowlogPart {
        match self {
            SlowlogOp::Help => SlowlogPart::Done,
            SlowlogOp::Len => SlowlogPart::Len(sh.state.borrow().slowlog.len()),
            SlowlogOp::Reset => {
                sh.state.borrow_mut().slowlog.clear();
                SlowlogPart::Done
            }
            SlowlogOp::Get(_) => {
                SlowlogPart::Entries(sh.state.borrow().slowlog.iter().cloned().collect())
            }
        }
    }

    pub(crate) fn reply(&self, r: &mut Reply, parts: Vec<SlowlogPart>) {
        match self {
            SlowlogOp::Help => super::reply_help(r, "slowlog", SLOWLOG_HELP),
            SlowlogOp::Reset => r.ok(),
            SlowlogOp::Len => r.int(
                parts
                    .iter()
                    .map(|p| match p {
                        SlowlogPart::Len(n) => *n,
                        _ => 0,
                    })
                    .sum::<usize>() as i64,
            ),
            SlowlogOp::Get(count) => {
                let mut all: Vec<SlowEntry> = parts
                    .into_iter()
                    .flat_map(|p| match p {
                        SlowlogPart::Entries(e) => e,
                        _ => Vec::new(),
                    })
                    .collect();
                all.sort_by_key(|e| std::cmp::Reverse(e.id));
                if *count >= 0 {
                    all.truncate(*count as usize);
                }
                r.array(all.len());
                for e in all {
                    r.array(6);
                    r.int(e.id as i64);
                    r.int(e.time as i64);
                    r.int(e.usec as i64);
                    r.array(e.args.len());
                    for arg in &e.args {
                        r.bulk(arg);
                    }
                    r.bulk(e.addr.as_bytes());
                    r.bulk(e.name.as_bytes());
                }
            }
        }
    }
}

// ----- MONITOR and SHUTDOWN -----

fn monitor(c: &mut Conn, _a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        // Inside EXEC the client expects one reply per command, as Redis says it.
        if c.in_exec.is_some() {
            return c
                .reply()
                .error("ERR MONITOR isn't allowed for DENY BLOCKING client");
        }
        if c.info.monitor.get() {
            return c.reply().ok();
        }
        let (tx, rx) = futures::channel::mpsc::unbounded::<Bytes>();
        let id = c.info.id;
        let res = c
            .shard
            .run_on_all(move |sh| sh.monitors.borrow_mut().push((id, tx.clone())))
            .await;
        if res.is_err() {
            return c.reply().error(ERR_SHARD_GONE);
        }
        c.shard.globals.monitors.fetch_add(1, Ordering::Relaxed);
        c.info.monitor.set(true);
        c.monitor_rx = Some(rx);
        c.reply().ok();
    })
}

fn shutdown(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let (mut save, mut nosave, mut now, mut force, mut abort) =
            (false, false, false, false, false);
        for opt in &a[1..] {
            if eq_ic(opt, "nosave") {
                nosave = true;
            } else if eq_ic(opt, "save") {
                save = true;
            } else if eq_ic(opt, "now") {
                now = true;
            } else if eq_ic(opt, "force") {
                force = true;
            } else if eq_ic(opt, "abort") {
                abort = true;
            } else {
                return c.reply().error(ERR_SYNTAX);
            }
        }
        if (save && nosave) || (abort && (save || nosave || now || force)) {
            return c.reply().error(ERR_SYNTAX);
        }
        // Without replicas no shutdown ever waits (NOW has nothing to skip), so none is in
        // progress for ABORT to cancel.
        if abort {
            return c.reply().error("ERR No shutdown in progress.");
        }
        let mode = if nosave {
            crate::persistence::snapshot::ShutdownSave::No
        } else if save {
            crate::persistence::snapshot::ShutdownSave::Yes
        } else {
            crate::persistence::snapshot::ShutdownSave::IfRules
        };
        let shard = c.shard.clone();
        match crate::persistence::snapshot::prepare_shutdown(&shard, mode, force).await {
            Ok(()) => c.close_after_reply = true,
            Err(()) => c
                .reply()
                .error("ERR Errors trying to SHUTDOWN. Check logs."),
        }
    })
}

// ----- WAIT -----

/// WAIT numreplicas timeout: no replica ever acknowledges anything, so the answer is 0, at once
/// when 0 are asked for or inside EXEC, otherwise after the timeout (0: never), like Redis. The
/// client waits as a blocked client (CLIENT UNBLOCK ends the wait).
fn wait(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let started = std::time::Instant::now();
        let numreplicas = match super::args::int_arg(&a[1]) {
            Ok(n) => n,
            Err(e) => return c.reply().error(e),
        };
        let timeout_ms = match super::args::parse_i64(&a[2]) {
            None => {
                return c
                    .reply()
                    .error("ERR timeout is not an integer or out of range")
            }
            Some(t) if t < 0 => return c.reply().error("ERR timeout is negative"),
            Some(t) => t as u64,
        };
        if numreplicas <= 0 || c.in_exec.is_some() {
            return c.reply().int(0);
        }
        // A deadline past what the clock can hold never comes (Redis's overflows the same way).
        let deadline = (timeout_ms > 0)
            .then(|| {
                std::time::Instant::now().checked_add(std::time::Duration::from_millis(timeout_ms))
            })
            .flatten();
        // Nothing ever wakes the wait: only its deadline, CLIENT UNBLOCK or the client leaving.
        let (_never, mut woken) = futures::channel::mpsc::unbounded();
        use super::blocking_family::{BlockOutcome, ERR_UNBLOCKED};
        let usec = started.elapsed().as_micros() as u64;
        let outcome = c.wait_notified(&mut woken, deadline).await;
        c.blocked_call = Some(crate::server::conn::BlockedCall {
            usec,
            unblocked: matches!(outcome, BlockOutcome::Unblocked(_)),
        });
        match outcome {
            BlockOutcome::Unblocked(crate::server::client::Unblock::Error) => {
                c.reply().error(ERR_UNBLOCKED)
            }
            BlockOutcome::Gone => c.close_after_reply = true,
            _ => c.reply().int(0),
        }
    })
}

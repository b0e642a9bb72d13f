//! The command table and the command families.
//!
//! One declarative entry per command (`CommandSpec`: name, arity, flags, key positions, docs and
//! handler) drives arity checks, key routing, `COMMAND` and its subcommands, and per-command
//! statistics. Families live in their own modules (`string_family`, `keys_family`, ...), each
//! exporting its entries through `specs()`.
//!
//! Two kinds of handler exist:
//! - `Exec::Shard`: synchronous, runs on the shard that owns the command's keys with access to
//!   that shard's data only. Keyless data commands (PING, ECHO, TIME) run on the connection's
//!   shard. Multi-key commands whose keys span shards are split by `crate::tx`.
//! - `Exec::Conn`: asynchronous, runs on the connection's shard with access to the client state
//!   and to every shard through the router (SELECT, CLIENT, INFO, KEYS, FLUSHALL, ...).
//!   A connection-level command may also have a `keyed_body`: a shard handler that `crate::tx`
//!   runs like any keyed command when the connection handler finds that the declared keys are
//!   all the command touches (SORT without BY/GET patterns).
//!
//! Handlers never parse numbers or write replies by hand: they use `args` and `protocol::Reply`.

pub mod acl_family;
pub mod args;
pub mod bitmap_family;
pub mod blocking_family;
pub mod cluster_family;
pub mod connection_family;
pub mod debug_family;
pub mod docs;
pub mod dump_family;
pub mod geo_family;
pub mod hash_family;
pub mod hll_family;
pub mod keys_family;
pub mod latency_family;
pub mod list_family;
pub mod lolwut_family;
pub mod memory_family;
pub mod module_family;
pub mod server_family;
pub mod set_family;
pub mod sort_family;
pub mod stream_family;
pub mod stream_group_family;
pub mod string_family;
pub mod zset_family;

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;
use futures::future::LocalBoxFuture;

use crate::protocol::Reply;
pub use crate::pubsub::notify::class;
use crate::pubsub::notify::notify;
use crate::server::conn::Conn;
use crate::server::globals::Globals;
use crate::shard::db::Db;
use crate::shard::ShardState;
use crate::types::Entry;

/// Context of a shard-local command.
pub struct Ctx<'a> {
    pub st: &'a mut ShardState,
    pub db: usize,
    pub now_ms: u64,
    pub globals: &'a Globals,
}

impl Ctx<'_> {
    /// Counts `n` changes this command made (Redis's `server.dirty`: INFO's
    /// rdb_changes_since_last_save and the `save` rules). A write handler that never calls it
    /// counts as one change; one that calls it only with 0 changed nothing, and is not logged.
    #[inline]
    pub fn dirty(&mut self, n: u64) {
        *self.st.dirty.get_or_insert(0) += n;
    }

    #[inline]
    pub fn db(&mut self) -> &mut Db {
        &mut self.st.dbs[self.db]
    }

    /// Looks a key up for a read, counting keyspace hits and misses like Redis.
    #[inline]
    pub fn lookup_read(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let st = &mut *self.st;
        let found = st.dbs[self.db].lookup_mut(key, self.now_ms);
        counted_read(&mut st.stats, key, self.db, found)
    }

    /// Looks a key up for a read without recording an access (TYPE, TTL, EXISTS: Redis's
    /// LOOKUP_NOTOUCH), counting keyspace hits and misses.
    #[inline]
    pub fn lookup_read_notouch(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let st = &mut *self.st;
        let found = st.dbs[self.db].lookup_notouch(key, self.now_ms);
        counted_read(&mut st.stats, key, self.db, found)
    }

    /// Publishes a keyspace event about `key` in the command's database (see
    /// `crate::pubsub::notify`; one branch when notifications are off).
    #[inline]
    pub fn notify(&self, cls: u32, event: &'static str, key: &[u8]) {
        notify(cls, event, key, self.db);
    }

    /// Has the running command logged (AOF) as `args` instead of its own arguments: what it
    /// did, where its arguments leave a choice to the server (XADD's `*`, `~` trimming) or
    /// where replaying them would not do the same (XREADGROUP's deliveries become XCLAIMs).
    /// Called several times, the command is logged as those commands in order, as one unit
    /// (Redis wraps what one command propagates in MULTI/EXEC).
    #[inline]
    pub fn propagate_as(&mut self, args: Vec<Bytes>) {
        if self.st.aof.is_some() {
            self.st.rewritten.get_or_insert_with(Vec::new).push(args);
        }
    }

    /// Whether what the running command propagates is kept (the AOF is on): a handler that
    /// builds its records as it goes checks this first, so that without an AOF they cost
    /// nothing.
    #[inline]
    pub fn propagating(&self) -> bool {
        self.st.aof.is_some()
    }

    /// Looks a key up for a write (no hit/miss accounting).
    #[inline]
    pub fn lookup_write(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let now = self.now_ms;
        self.st.dbs[self.db].lookup_mut(key, now)
    }
}

pub type ShardFn = fn(&mut Ctx, &[Bytes], &mut Reply);

/// Key positions of a command whose keys move with its arguments (ZUNIONSTORE's numkeys,
/// LMPOP, EVAL...). Returns None when the arguments do not parse; the command then runs on one
/// shard and its handler reports the error.
pub type KeysFn = fn(&[Bytes]) -> Option<Vec<usize>>;

/// Where a command's keys are, as an iterator that allocates only for movable keys.
pub enum KeyPositions {
    Range(std::iter::StepBy<std::ops::Range<usize>>),
    List(std::vec::IntoIter<usize>),
}

impl Iterator for KeyPositions {
    type Item = usize;
    #[inline]
    fn next(&mut self) -> Option<usize> {
        match self {
            KeyPositions::Range(r) => r.next(),
            KeyPositions::List(l) => l.next(),
        }
    }
}

/// Keys counted by a `numkeys` argument at `numkeys_at`, starting right after it, plus `extra`
/// fixed positions before it (e.g. ZUNIONSTORE's destination). For KeysFn implementations.
///
/// As Redis 7.0 finds them: through the key specs when `numkeys` is a strict non-negative
/// integer (cast to an int) that fits (the fixed keys first), otherwise through the command's
/// getkeys callback, which reads `numkeys` with `atoi` and lists the fixed keys last. Either
/// way at least one key, all present.
pub fn numkeys_positions(args: &[Bytes], numkeys_at: usize, extra: &[usize]) -> Option<Vec<usize>> {
    let arg = args.get(numkeys_at)?;
    let avail = args.len().saturating_sub(numkeys_at + 1) as i64;
    let fits = |n: i64| n >= 1 && n <= avail;
    let by_spec = args::parse_i64(arg)
        .filter(|&n| n >= 0)
        .map(|n| n as i32 as i64)
        .filter(|&n| fits(n));
    let (n, fixed_last) = match by_spec {
        Some(n) => (n, false),
        None => (args::atoi(arg) as i64, true),
    };
    if !fits(n) {
        return None;
    }
    let counted = numkeys_at + 1..numkeys_at + 1 + n as usize;
    let mut v: Vec<usize> = Vec::with_capacity(extra.len() + n as usize);
    if fixed_last {
        v.extend(counted);
        v.extend_from_slice(extra);
    } else {
        v.extend_from_slice(extra);
        v.extend(counted);
    }
    Some(v)
}

/// Whether `argc` arguments (the name included) satisfy a Redis arity.
pub fn arity_ok(arity: i32, argc: usize) -> bool {
    (arity >= 0 && argc == arity as usize) || (arity < 0 && argc >= (-arity) as usize)
}

pub type ConnFn = for<'a> fn(&'a mut Conn, Vec<Bytes>) -> LocalBoxFuture<'a, ()>;

#[derive(Clone, Copy)]
pub enum Exec {
    Shard(ShardFn),
    Conn(ConnFn),
}

/// How a multi-key command runs when its keys span shards (see `crate::tx`): a command with a
/// kind is split by shard, each owner running it on its own keys, and the kind says how the
/// parts' replies combine. Commands without a kind run as one transaction on the coordinator
/// with copies of the foreign entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultiKind {
    /// DEL, UNLINK, EXISTS, TOUCH: each key is independent and values are never needed, so each
    /// shard runs the command on its own keys (under the transaction's locks) and the integer
    /// replies are summed. No value is copied.
    SumInt,
    /// MSET: each key with its value is independent, so each shard sets its own pairs (under
    /// the transaction's locks) and the reply is OK. No value is copied.
    SetPairs,
    /// MGET: each shard reads its own keys (under the transaction's locks) and the values are
    /// put back in argument order. No value is copied into another shard's keyspace.
    Gather,
}

pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const NOSCRIPT: u32 = 1 << 4;
    pub const LOADING: u32 = 1 << 5;
    pub const STALE: u32 = 1 << 6;
    pub const SKIP_MONITOR: u32 = 1 << 7;
    pub const SKIP_SLOWLOG: u32 = 1 << 8;
    pub const FAST: u32 = 1 << 9;
    pub const NO_AUTH: u32 = 1 << 10;
    pub const MAY_REPLICATE: u32 = 1 << 11;
    pub const NO_MULTI: u32 = 1 << 12;
    pub const ALLOW_BUSY: u32 = 1 << 13;
    pub const PUBSUB: u32 = 1 << 14;
    pub const BLOCKING: u32 = 1 << 15;
    /// Refused before it runs, or is queued, unless `enable-debug-command` allows the client
    /// (Redis's CMD_PROTECTED, which COMMAND INFO does not list).
    pub const PROTECTED: u32 = 1 << 16;
    /// May be called without keys (scripts): COMMAND GETKEYS answers an empty list rather than
    /// an error when there are none.
    pub const NO_MANDATORY_KEYS: u32 = 1 << 17;
    /// Refused while a replica loads its data in the background (Redis's
    /// CMD_NO_ASYNC_LOADING); listed by COMMAND INFO only, as Tessera has no replicas.
    pub const NO_ASYNC_LOADING: u32 = 1 << 18;
    /// The handler signals the keys it modifies itself (`Db::touch`), where Redis does: the
    /// shard does not compare watched values around it. For the stream group commands, whose
    /// changes Redis never signals to WATCH or client caching. Not listed by COMMAND INFO.
    pub const OWN_SIGNALS: u32 = 1 << 19;

    /// Names as COMMAND INFO prints them, in Redis's order.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// One command's declaration.
pub struct CommandSpec {
    /// Lower-case name, as Redis reports it.
    pub name: &'static str,
    /// Redis arity: exact count if positive, minimum count if negative (command name included).
    pub arity: i32,
    pub flags: u32,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub complexity: &'static str,
    pub exec: Exec,
    pub multi: Option<MultiKind>,
    /// Set for commands with movable keys (COMMAND INFO flag `movablekeys`).
    pub keys_fn: Option<KeysFn>,
    /// For an `Exec::Conn` command: its shard-local body, run through `crate::tx` (statistics
    /// are counted once, by the connection).
    pub keyed_body: Option<ShardFn>,
    /// Key specs as Redis declares them, for commands whose keys one index range cannot
    /// describe (COMMAND INFO); None: one spec derived from first/last/step.
    pub key_specs: Option<&'static [KeySpec]>,
    /// Flags of the one key spec that first/last/step describe, when `key_specs` is None.
    pub key_flags: &'static [&'static str],
    /// For a deprecated command (COMMAND DOCS): the version that deprecated it and what
    /// replaces it.
    pub deprecated: Option<(&'static str, &'static str)>,
    /// Hints for clients and proxies (COMMAND INFO's tips: `nondeterministic_output`,
    /// `request_policy:all_shards`...).
    pub tips: &'static [&'static str],
    /// For a container command (CONFIG, CLIENT, ...): its subcommands as Redis 7.0 declares
    /// them. An unknown subcommand or a subcommand's wrong arity is refused before the command
    /// runs or is queued, like any unknown command or arity error.
    pub subcommands: Option<&'static [SubCommand]>,
    index: u16,
}

/// One subcommand of a container command: Redis's full name (`container|sub`, which its errors
/// quote), arity (the container and subcommand names included), and what COMMAND INFO and
/// COMMAND DOCS report for it.
pub struct SubCommand {
    pub full_name: &'static str,
    pub arity: i32,
    pub flags: u32,
    /// (first, last, step) of its keys, counted from the container's name.
    pub keys: (i32, i32, i32),
    pub key_flags: &'static [&'static str],
    pub tips: &'static [&'static str],
    pub since: &'static str,
    pub complexity: &'static str,
    pub summary: &'static str,
    /// As `CommandSpec::deprecated` (CLUSTER SLAVES).
    pub deprecated: Option<(&'static str, &'static str)>,
}

/// Declares a subcommand, for the families' tables; the builders below add the rest.
pub const fn sub(full_name: &'static str, arity: i32) -> SubCommand {
    SubCommand {
        full_name,
        arity,
        flags: 0,
        keys: NO_KEYS,
        key_flags: &[],
        tips: &[],
        since: "",
        complexity: "",
        summary: "",
        deprecated: None,
    }
}

impl SubCommand {
    /// Declares the subcommand deprecated since `since`, in favour of `replaced_by`.
    pub const fn deprecated(
        mut self,
        since: &'static str,
        replaced_by: &'static str,
    ) -> SubCommand {
        self.deprecated = Some((since, replaced_by));
        self
    }

    pub const fn flags(mut self, flags: u32) -> SubCommand {
        self.flags = flags;
        self
    }

    /// Its key at argument `at` (the container's name is argument 0), with its spec's flags.
    pub const fn key_at(mut self, at: i32, key_flags: &'static [&'static str]) -> SubCommand {
        self.keys = (at, at, 1);
        self.key_flags = key_flags;
        self
    }

    pub const fn tips(mut self, tips: &'static [&'static str]) -> SubCommand {
        self.tips = tips;
        self
    }

    /// COMMAND DOCS: the version it appeared in, its complexity and a one-line summary.
    pub const fn docs(
        mut self,
        since: &'static str,
        complexity: &'static str,
        summary: &'static str,
    ) -> SubCommand {
        self.since = since;
        self.complexity = complexity;
        self.summary = summary;
        self
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// Its key specs: the one its key position describes, if it has a key.
    pub fn all_key_specs(&self) -> Vec<KeySpec> {
        if self.keys.0 > 0 {
            vec![range_spec(self.key_flags, self.keys)]
        } else {
            Vec::new()
        }
    }
}

/// A container command called with a subcommand it does not have.
#[derive(Debug)]
pub struct UnknownSubcommand;

impl SubCommand {
    /// The name after the container's (`set` of `config|set`).
    pub fn name(&self) -> &'static str {
        self.full_name
            .split_once('|')
            .map_or(self.full_name, |(_, s)| s)
    }
}

/// Where a key spec's search for keys begins (Redis 7's `begin_search`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeginSearch {
    /// At a fixed argument index.
    Index(i32),
    /// Right after the first argument equal to the keyword (case-insensitive), looked for from
    /// `startfrom` on; a negative `startfrom` counts from the end and searches backwards.
    Keyword(&'static str, i32),
    /// Cannot be told from the arguments.
    Unknown,
}

/// How a key spec finds its keys from where the search began (Redis 7's `find_keys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindKeys {
    /// (lastkey, keystep, limit): keys every `keystep` arguments up to `lastkey` (relative to
    /// the first key; negative: counted from the end). With `limit` > 0 and `lastkey` -1, only
    /// the first 1/limit of the remaining arguments.
    Range(i32, i32, i32),
    /// (keynumidx, firstkey, keystep): the key count is at `keynumidx` and the keys start at
    /// `firstkey`, both relative to where the search began.
    Keynum(i32, i32, i32),
    /// Cannot be told from the arguments.
    Unknown,
}

/// One key spec of COMMAND INFO (Redis 7's `keySpec`).
#[derive(Clone, Copy, Debug)]
pub struct KeySpec {
    pub notes: Option<&'static str>,
    /// Flags as Redis names them: "RO", "RW", "OW" or "RM", then what the command does with
    /// the key ("access", "update", "insert", "delete"), then "not_key", "incomplete" or
    /// "variable_flags" where they apply.
    pub flags: &'static [&'static str],
    pub begin: BeginSearch,
    pub find: FindKeys,
}

impl KeySpec {
    pub const fn new(flags: &'static [&'static str], begin: BeginSearch, find: FindKeys) -> Self {
        KeySpec {
            notes: None,
            flags,
            begin,
            find,
        }
    }

    /// Keys from `begin` to `last` (relative to it; negative from the end), every `step`.
    pub const fn range(flags: &'static [&'static str], begin: i32, last: i32, step: i32) -> Self {
        KeySpec::new(
            flags,
            BeginSearch::Index(begin),
            FindKeys::Range(last, step, 0),
        )
    }

    /// Keys counted by the argument at `begin`, right after it.
    pub const fn numkeys(flags: &'static [&'static str], begin: i32) -> Self {
        KeySpec::new(flags, BeginSearch::Index(begin), FindKeys::Keynum(0, 1, 1))
    }

    pub const fn notes(mut self, notes: &'static str) -> Self {
        self.notes = Some(notes);
        self
    }

    pub fn has(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }
}

/// The key spec that a (first, last, step) range describes.
fn range_spec(flags: &'static [&'static str], keys: (i32, i32, i32)) -> KeySpec {
    let (first, last, step) = keys;
    let lastkey = if last < 0 { last } else { last - first };
    KeySpec::range(flags, first, lastkey, step)
}

/// Keys of `args` (the command name included) as Redis 7.0 finds them through key specs
/// (`getKeysUsingKeySpecs`): spec by spec, each key with the index of the spec that found it.
/// None when a spec cannot be followed (unknown, a bad key count, out of bounds, incomplete):
/// Redis then asks the command's own key finder. `not_key` specs are skipped.
pub fn keys_by_specs(specs: &[KeySpec], args: &[Bytes]) -> Option<Vec<(usize, usize)>> {
    let argc = args.len() as i64;
    let mut keys = Vec::new();
    for (j, spec) in specs.iter().enumerate() {
        if spec.has("not_key") {
            continue;
        }
        let first: i64 = match spec.begin {
            BeginSearch::Index(i) => i as i64,
            BeginSearch::Keyword(kw, from) => {
                let found = if from > 0 {
                    (from as i64..argc).find(|&i| args::eq_ic(&args[i as usize], kw))
                } else {
                    let start = argc + from as i64;
                    (1..=start)
                        .rev()
                        .find(|&i| i < argc && args::eq_ic(&args[i as usize], kw))
                };
                match found {
                    Some(i) => i + 1,
                    None => continue,
                }
            }
            BeginSearch::Unknown => return None,
        };
        let (first, last, step) = match spec.find {
            FindKeys::Range(lastkey, keystep, limit) => {
                let last = if lastkey >= 0 {
                    first + lastkey as i64
                } else if limit == 0 {
                    argc + lastkey as i64
                } else {
                    first + ((argc - first) / limit as i64 + lastkey as i64)
                };
                (first, last, keystep as i64)
            }
            FindKeys::Keynum(keynumidx, firstkey, keystep) => {
                if keynumidx as i64 >= argc - first {
                    return None;
                }
                let n = args::parse_i64(&args[(first + keynumidx as i64) as usize])
                    .filter(|&n| n >= 0)?;
                let first = first + firstkey as i64;
                (first, first + (n as i32 as i64) - 1, keystep as i64)
            }
            FindKeys::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc {
            return None;
        }
        let mut i = first;
        while i <= last {
            keys.push((i as usize, j));
            i += step.max(1);
        }
        if spec.has("incomplete") {
            return None;
        }
    }
    Some(keys)
}

impl CommandSpec {
    pub fn index(&self) -> usize {
        self.index as usize
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    pub fn arity_ok(&self, argc: usize) -> bool {
        arity_ok(self.arity, argc)
    }

    /// The position of the subcommand named `name` (case-insensitive) among this container's.
    pub fn subcommand_position(&self, name: &[u8]) -> Option<usize> {
        self.subcommands?
            .iter()
            .position(|s| s.name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// The subcommand named `name` (case-insensitive), if this is a container that has it.
    pub fn subcommand_named(&self, name: &[u8]) -> Option<&'static SubCommand> {
        Some(&self.subcommands?[self.subcommand_position(name)?])
    }

    /// The subcommand `args` name, as Redis's `lookupCommand` finds it: None for a command
    /// without subcommands or a container called alone, Err for an unknown subcommand.
    pub fn subcommand(
        &self,
        args: &[Bytes],
    ) -> Result<Option<&'static SubCommand>, UnknownSubcommand> {
        match (self.subcommands, args.get(1)) {
            (Some(_), Some(name)) => self
                .subcommand_named(name)
                .map(Some)
                .ok_or(UnknownSubcommand),
            _ => Ok(None),
        }
    }

    /// The first key argument of `args` when the command declares a fixed first key position
    /// (no `keys_fn`): cheap enough for hints taken before a batch runs (`Db::prefetch_batch`).
    #[inline]
    pub fn first_key_arg<'a>(&self, args: &'a [Bytes]) -> Option<&'a [u8]> {
        if self.keys_fn.is_some() || self.first_key <= 0 {
            return None;
        }
        args.get(self.first_key as usize).map(|a| &a[..])
    }

    /// Positions of the key arguments of `args` (name included): the declared range, or what
    /// the command's `keys_fn` finds for commands with movable keys.
    #[inline]
    pub fn keys(&self, args: &[Bytes]) -> KeyPositions {
        match self.keys_fn {
            None => KeyPositions::Range(crate::shard::router::key_positions(
                self.first_key,
                self.last_key,
                self.step,
                args.len(),
            )),
            Some(f) => KeyPositions::List(f(args).unwrap_or_default().into_iter()),
        }
    }
}

/// Builder used by the families to declare their entries concisely.
#[allow(clippy::too_many_arguments)]
pub const fn cmd(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    group: &'static str,
    since: &'static str,
    complexity: &'static str,
    summary: &'static str,
    exec: Exec,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        group,
        since,
        summary,
        complexity,
        exec,
        multi: None,
        keys_fn: None,
        keyed_body: None,
        key_specs: None,
        key_flags: &[],
        deprecated: None,
        tips: &[],
        subcommands: None,
        index: 0,
    }
}

impl CommandSpec {
    pub const fn multi(mut self, kind: MultiKind) -> CommandSpec {
        self.multi = Some(kind);
        self
    }

    /// Declares movable keys, found by `f` in the arguments.
    pub const fn movable_keys(mut self, f: KeysFn) -> CommandSpec {
        self.keys_fn = Some(f);
        self
    }

    /// Gives a connection-level command a shard-local body for `crate::tx` to run.
    pub const fn keyed_body(mut self, f: ShardFn) -> CommandSpec {
        self.keyed_body = Some(f);
        self
    }

    /// Declares a container command's subcommands.
    pub const fn subcommands(mut self, subs: &'static [SubCommand]) -> CommandSpec {
        self.subcommands = Some(subs);
        self
    }

    /// Declares the command's key specs as Redis reports them.
    pub const fn key_specs(mut self, specs: &'static [KeySpec]) -> CommandSpec {
        self.key_specs = Some(specs);
        self
    }

    /// Declares the flags of the one key spec that the command's key range describes.
    pub const fn key_flags(mut self, flags: &'static [&'static str]) -> CommandSpec {
        self.key_flags = flags;
        self
    }

    /// Declares the command deprecated since `since`, in favour of `replaced_by`.
    pub const fn deprecated(
        mut self,
        since: &'static str,
        replaced_by: &'static str,
    ) -> CommandSpec {
        self.deprecated = Some((since, replaced_by));
        self
    }

    /// Declares the command's tips.
    pub const fn tips(mut self, tips: &'static [&'static str]) -> CommandSpec {
        self.tips = tips;
        self
    }

    /// The command's key specs: those declared, or the one its key range describes. A
    /// container has none of its own (its key range routes its subcommands' keys).
    pub fn all_key_specs(&self) -> Vec<KeySpec> {
        match self.key_specs {
            Some(specs) => specs.to_vec(),
            None if self.first_key > 0 && self.subcommands.is_none() => vec![range_spec(
                self.key_flags,
                (self.first_key, self.last_key, self.step),
            )],
            None => Vec::new(),
        }
    }
}

pub const NO_KEYS: (i32, i32, i32) = (0, 0, 0);
pub const KEY1: (i32, i32, i32) = (1, 1, 1);

struct Table {
    specs: Vec<CommandSpec>,
    by_name: HashMap<&'static str, u16, ahash::RandomState>,
    /// INFO commandstats keeps a container's calls per subcommand, as Redis does: the statistics
    /// slots past the commands' own are the subcommands', from `sub_base[spec]` on for a spec's.
    sub_base: Vec<usize>,
    /// The name of every statistics slot (`get`, `config|set`...).
    stat_names: Vec<&'static str>,
}

fn build() -> Table {
    let mut specs = Vec::new();
    specs.extend(connection_family::specs());
    specs.extend(server_family::specs());
    specs.extend(keys_family::specs());
    specs.extend(dump_family::specs());
    specs.extend(string_family::specs());
    specs.extend(bitmap_family::specs());
    specs.extend(hash_family::specs());
    specs.extend(list_family::specs());
    specs.extend(blocking_family::specs());
    specs.extend(crate::tx::multi::specs());
    specs.extend(crate::pubsub::specs());
    specs.extend(set_family::specs());
    specs.extend(zset_family::specs());
    specs.extend(geo_family::specs());
    specs.extend(hll_family::specs());
    specs.extend(stream_family::specs());
    specs.extend(stream_group_family::specs());
    specs.extend(crate::scripting::specs());
    specs.extend(sort_family::specs());
    specs.extend(memory_family::specs());
    specs.extend(latency_family::specs());
    specs.extend(module_family::specs());
    specs.extend(lolwut_family::specs());
    specs.extend(cluster_family::specs());
    specs.extend(acl_family::specs());
    let mut by_name = HashMap::with_hasher(ahash::RandomState::new());
    for (i, s) in specs.iter_mut().enumerate() {
        s.index = i as u16;
        let dup = by_name.insert(s.name, i as u16);
        assert!(dup.is_none(), "duplicate command {}", s.name);
    }
    let mut stat_names: Vec<&'static str> = specs.iter().map(|s| s.name).collect();
    let mut sub_base = vec![0; specs.len()];
    for s in &specs {
        if let Some(subs) = s.subcommands {
            sub_base[s.index()] = stat_names.len();
            stat_names.extend(subs.iter().map(|x| x.full_name));
        }
    }
    Table {
        specs,
        by_name,
        sub_base,
        stat_names,
    }
}

/// The statistics slot of a call (`ShardState::cmd_stats`): the command's own, or for a
/// container its subcommand's.
#[inline]
pub fn stat_index(spec: &CommandSpec, args: &[Bytes]) -> usize {
    if spec.subcommands.is_none() {
        return spec.index();
    }
    match args.get(1).and_then(|n| spec.subcommand_position(n)) {
        Some(i) => table_ref().sub_base[spec.index()] + i,
        None => spec.index(),
    }
}

/// Names of the statistics slots, in slot order.
pub fn stat_names() -> &'static [&'static str] {
    &table_ref().stat_names
}

fn table_ref() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(build)
}

/// Every command, in table order.
pub fn table() -> &'static [CommandSpec] {
    &table_ref().specs
}

pub fn spec(idx: u16) -> &'static CommandSpec {
    &table_ref().specs[idx as usize]
}

/// Case-insensitive lookup without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    if name.len() > 32 {
        return None;
    }
    let mut buf = [0u8; 32];
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&buf[..name.len()]).ok()?;
    let t = table_ref();
    t.by_name.get(lower).map(|&i| &t.specs[i as usize])
}

/// Redis's reply to an unknown command (raw bytes: arguments are echoed as sent).
pub fn unknown_command_error(args: &[Bytes]) -> Vec<u8> {
    let mut listed: Vec<u8> = Vec::new();
    for a in &args[1..] {
        if listed.len() >= 128 {
            break;
        }
        let room = 128 - listed.len();
        let t = args::c_str(a);
        listed.push(b'\'');
        listed.extend_from_slice(&t[..t.len().min(room)]);
        listed.extend_from_slice(b"' ");
    }
    let name = args::c_str(&args[0]);
    let mut msg = b"ERR unknown command '".to_vec();
    msg.extend_from_slice(&name[..name.len().min(128)]);
    msg.extend_from_slice(b"', with args beginning with: ");
    msg.extend_from_slice(&listed);
    msg
}

/// Why a command line was refused before anything else was looked at.
pub enum Unresolved {
    /// No such command, or no such subcommand of a container: Redis's error, raw bytes.
    Unknown(Vec<u8>),
    /// Wrong argument count (for the command or its subcommand): the command and its full
    /// name (see [`arity_error`]).
    Arity(&'static CommandSpec, &'static str),
}

/// Redis's `lookupCommand` plus its arity check: the command, and its full name (`config|set`
/// for a container's subcommand, as errors and CLIENT LIST name it).
pub fn resolve(args: &[Bytes]) -> Result<(&'static CommandSpec, &'static str), Unresolved> {
    resolve_found(None, args)
}

/// `resolve` for a command whose table entry the caller may already have looked up (`found`;
/// None: look it up here).
pub fn resolve_found(
    found: Option<&'static CommandSpec>,
    args: &[Bytes],
) -> Result<(&'static CommandSpec, &'static str), Unresolved> {
    let Some(spec) = found.or_else(|| lookup(&args[0])) else {
        return Err(Unresolved::Unknown(unknown_command_error(args)));
    };
    let (name, arity) = match spec.subcommand(args) {
        Ok(Some(sub)) => (sub.full_name, sub.arity),
        Ok(None) => (spec.name, spec.arity),
        Err(UnknownSubcommand) => {
            let msg = unknown_subcommand_error(&args[1], spec.name);
            return Err(Unresolved::Unknown(msg.into_bytes()));
        }
    };
    if !arity_ok(arity, args.len()) {
        return Err(Unresolved::Arity(spec, name));
    }
    Ok((spec, name))
}

/// Whether Redis runs a command while a script is busy: its `allow-busy` flag, which SCRIPT
/// and FUNCTION carry only for KILL (and FUNCTION STATS), and SHUTDOWN only with NOSAVE.
/// `name` is the full name (`script|kill`).
pub fn allowed_while_busy(spec: &CommandSpec, name: &str, args: &[Bytes]) -> bool {
    match name {
        "script|kill" | "function|kill" | "function|stats" => true,
        n if n.starts_with("script|") || n.starts_with("function|") => false,
        "shutdown" => args[1..].iter().any(|a| args::eq_ic(a, "nosave")),
        _ => spec.has(flags::ALLOW_BUSY),
    }
}

pub fn arity_error(name: &str) -> String {
    format!("ERR wrong number of arguments for '{}' command", name)
}

/// The error for an unknown subcommand of a container command (CLIENT, CONFIG, ...).
pub fn unknown_subcommand_error(sub: &[u8], cmd: &str) -> String {
    format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub)
            .chars()
            .take(128)
            .collect::<String>(),
        cmd.to_ascii_uppercase()
    )
}

/// The error a container command's handler gives for a subcommand it knows called with
/// arguments it does not take (Redis's `addReplySubcommandSyntaxError`).
pub fn subcommand_syntax_error(sub: &[u8], cmd: &str) -> String {
    format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(args::c_str(sub))
            .chars()
            .take(128)
            .collect::<String>(),
        cmd.to_ascii_uppercase()
    )
}

/// Replies with a HELP text the way Redis's `addReplyHelp` does: a status line per entry, then
/// HELP and "Prints this help.".
pub fn reply_help(r: &mut Reply, cmd: &str, lines: &[&str]) {
    r.array(lines.len() + 3);
    r.simple(&format!(
        "{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        cmd.to_ascii_uppercase()
    ));
    for l in lines {
        r.simple(l);
    }
    r.simple("HELP");
    r.simple("    Prints this help.");
}

/// Counts a read lookup in the keyspace hit/miss statistics and announces a miss (`keymiss`).
#[inline]
fn counted_read<'a>(
    stats: &mut crate::shard::ShardStats,
    key: &[u8],
    db: usize,
    found: Option<&'a mut Entry>,
) -> Option<&'a mut Entry> {
    if found.is_some() {
        stats.keyspace_hits += 1;
    } else {
        stats.keyspace_misses += 1;
        notify(class::KEY_MISS, "keymiss", key, db);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn first_key_arg_is_the_declared_first_key_only() {
        let get = lookup(b"get").unwrap();
        assert_eq!(get.first_key_arg(&args("GET k")), Some(&b"k"[..]));
        let mset = lookup(b"mset").unwrap();
        assert_eq!(mset.first_key_arg(&args("MSET a 1 b 2")), Some(&b"a"[..]));
        // No key at all, or keys that move with the arguments (a count decides): no hint.
        assert_eq!(lookup(b"ping").unwrap().first_key_arg(&args("PING")), None);
        let eval = lookup(b"eval").unwrap();
        assert_eq!(eval.first_key_arg(&args("EVAL s 1 k")), None);
        let zu = lookup(b"zunionstore").unwrap();
        assert_eq!(zu.first_key_arg(&args("ZUNIONSTORE d 1 s")), None);
    }

    #[test]
    fn every_key_spec_says_how_the_key_is_used() {
        for s in table() {
            for k in s.all_key_specs() {
                assert!(!k.flags.is_empty(), "{}: a key spec without flags", s.name);
            }
            for x in s.subcommands.unwrap_or(&[]) {
                for k in x.all_key_specs() {
                    assert!(
                        !k.flags.is_empty(),
                        "{}: a key spec without flags",
                        x.full_name
                    );
                }
            }
        }
    }

    #[test]
    fn key_specs_find_keys_like_redis() {
        let rename = lookup(b"rename").unwrap().all_key_specs();
        assert_eq!(
            keys_by_specs(&rename, &args("rename a b")),
            Some(vec![(1, 0), (2, 1)])
        );
        let zus = lookup(b"zunionstore").unwrap().all_key_specs();
        assert_eq!(
            keys_by_specs(&zus, &args("zunionstore d 2 a b weights 1 2")),
            Some(vec![(1, 0), (3, 1), (4, 1)])
        );
        // A count that is not a non-negative integer, or runs past the end: Redis falls back
        // to the command's own key finder.
        assert_eq!(keys_by_specs(&zus, &args("zunionstore d x a")), None);
        assert_eq!(keys_by_specs(&zus, &args("zunionstore d 5 a")), None);
        let mset = lookup(b"mset").unwrap().all_key_specs();
        assert_eq!(
            keys_by_specs(&mset, &args("mset a 1 b 2")),
            Some(vec![(1, 0), (3, 0)])
        );
        // Unknown specs (SORT's BY/GET and STORE) cannot be followed.
        let sort = lookup(b"sort").unwrap().all_key_specs();
        assert_eq!(keys_by_specs(&sort, &args("sort a")), None);
        // not_key specs are skipped.
        let spublish = lookup(b"spublish").unwrap().all_key_specs();
        assert_eq!(
            keys_by_specs(&spublish, &args("spublish c m")),
            Some(vec![])
        );
    }

    #[test]
    fn keyword_key_specs_search_forwards_and_backwards() {
        const STORE: &[KeySpec] = &[KeySpec::new(
            &["OW", "update"],
            BeginSearch::Keyword("store", -2),
            FindKeys::Range(0, 1, 0),
        )];
        assert_eq!(
            keys_by_specs(STORE, &args("cmd a STORE x STORE d")),
            Some(vec![(5, 0)])
        );
        // Not found: the spec contributes no key.
        assert_eq!(keys_by_specs(STORE, &args("cmd a b")), Some(vec![]));
        const STREAMS: &[KeySpec] = &[KeySpec::new(
            &["RO", "access"],
            BeginSearch::Keyword("streams", 1),
            FindKeys::Range(-1, 1, 2),
        )];
        // XREAD-like: half of what follows the keyword are keys.
        assert_eq!(
            keys_by_specs(STREAMS, &args("xread count 2 streams a b 0 0")),
            Some(vec![(4, 0), (5, 0)])
        );
    }
}

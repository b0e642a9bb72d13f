//! Server configuration in the style of `redis.conf`.
//!
//! This module owns:
//!
//! * the **directive table** (`DIRECTIVES`): one row per directive with its
//!   canonical name, aliases, value kind, default (written in config-file
//!   syntax), whether `CONFIG SET` may change it, and whether Tessera actually
//!   implements it or merely accepts it for compatibility;
//! * parsing of a config file and of `--name value` command-line flags
//!   ([`load`]), with Redis 7.0's tokenizer (`sdssplitargs`) and error texts;
//! * `CONFIG GET` ([`Config::get`]), `CONFIG SET` ([`Config::set`]) and
//!   `CONFIG REWRITE` ([`Config::rewrite`]) formatting and validation;
//! * the Redis glob matcher ([`glob_match`]) and memory-unit parser
//!   ([`parse_memory`]), which other commands reuse.
//!
//! Everything is driven by the table: parsing, validation, CONFIG GET
//! formatting and rewrite formatting are per *kind* of value, and each row
//! only contributes a field accessor. Adding a directive is adding a row.
//!
//! What this module must never do:
//!
//! * No I/O other than reading the config file in [`load`] and reading /
//!   atomically replacing it in [`Config::rewrite`]. In particular it does
//!   not open the log file, does not `chdir` into `dir` (Redis does; we only
//!   resolve the path lexically), and does not check that `dir` exists. The
//!   caller does those things at startup, where failing is cheap and the
//!   error can be reported properly.
//! * It does not apply settings to running shards. [`Config::set`] returns
//!   the names of the directives whose value changed; the caller propagates
//!   them (e.g. new `hz` to every shard, new listeners for `port` and `bind`)
//!   and keeps the old configuration when that fails. Directives the server
//!   cannot change while running (`shards`, `tcp-backlog`, ...) are marked
//!   immutable here so the caller never has to undo a change.
//! * It does not log. Parse-time notices (directives accepted but ignored) are
//!   returned in [`LoadOutcome::warnings`] for the caller to log.
//!
//! Intentional differences from Redis 7.0.15 are called out next to the code
//! they concern; the summary is:
//!
//! * `bind` defaults to `127.0.0.1` (Redis: `* -::*`).
//! * `set-max-listpack-entries` / `set-max-listpack-value` are Redis 7.2
//!   directives, accepted here with 7.2's defaults.
//! * Overflowing numbers in memory values, `save` and
//!   `client-output-buffer-limit` are rejected instead of wrapping/saturating.
//! * `CONFIG SET a 1 alias-of-a 2` is reported as a duplicate parameter
//!   (Redis 7.0 misses the duplicate when one of the two is an alias).
//! * `include`, `rename-command`, `user`, `loadmodule` and `sentinel` are not
//!   supported and are rejected as bad directives; reading the config from
//!   stdin (`-`) is not supported.
//! * Output order of CONFIG GET is table order (Redis uses hash order, which
//!   clients cannot rely on anyway).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// `loglevel`: Redis 7.0's four levels (7.2 added `nothing`, not accepted here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Verbose,
    Notice,
    Warning,
}

const LOGLEVEL_NAMES: &[&str] = &["debug", "verbose", "notice", "warning"];

impl LogLevel {
    const ALL: [LogLevel; 4] = [
        LogLevel::Debug,
        LogLevel::Verbose,
        LogLevel::Notice,
        LogLevel::Warning,
    ];

    /// The name as written in the config file and shown by CONFIG GET.
    pub fn as_str(self) -> &'static str {
        LOGLEVEL_NAMES[self as usize]
    }
}

/// `enable-debug-command` and `enable-module-command`: whether DEBUG (or
/// MODULE LOAD/LOADEX/UNLOAD) is allowed for everyone, nobody, or only
/// connections from loopback (`local`). The check itself is the caller's,
/// because it needs the client's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebugCommandPolicy {
    No,
    Yes,
    Local,
}

/// `oom-score-adj`: whether and how Tessera sets the process's Linux OOM-killer score (see
/// `server::oom_score`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OomScoreAdj {
    /// Leave the score alone (and put back the one found, if Tessera changed it).
    No,
    /// The configured value added to the score the process started with (`yes`, `relative`).
    Relative,
    /// The configured value itself.
    Absolute,
}

/// Order matches Redis's `oom_score_adj_enum`, which its error text lists; `yes` and `relative`
/// are one setting, shown as `yes`.
const OOM_SCORE_ADJ_NAMES: &[&str] = &["no", "yes", "relative", "absolute"];

/// `syslog-facility` names in Redis's order (its error text lists them; `crate::syslog` has
/// their codes).
pub const SYSLOG_FACILITIES: &[&str] = &[
    "user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

/// Order matches Redis's `protected_action_enum`, which its error text lists.
const DEBUG_POLICY_NAMES: &[&str] = &["no", "yes", "local"];

impl DebugCommandPolicy {
    const ALL: [DebugCommandPolicy; 3] = [
        DebugCommandPolicy::No,
        DebugCommandPolicy::Yes,
        DebugCommandPolicy::Local,
    ];

    pub fn as_str(self) -> &'static str {
        DEBUG_POLICY_NAMES[self as usize]
    }
}

/// `maxmemory-policy`, in the order Redis's error text lists the names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxmemoryPolicy {
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    NoEviction,
}

const MAXMEMORY_POLICY_NAMES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

impl MaxmemoryPolicy {
    const ALL: [MaxmemoryPolicy; 8] = [
        MaxmemoryPolicy::VolatileLru,
        MaxmemoryPolicy::VolatileLfu,
        MaxmemoryPolicy::VolatileRandom,
        MaxmemoryPolicy::VolatileTtl,
        MaxmemoryPolicy::AllkeysLru,
        MaxmemoryPolicy::AllkeysLfu,
        MaxmemoryPolicy::AllkeysRandom,
        MaxmemoryPolicy::NoEviction,
    ];

    pub fn as_str(self) -> &'static str {
        MAXMEMORY_POLICY_NAMES[self as usize]
    }

    /// Tracks access frequency (the entries' access field is an LFU counter).
    pub fn is_lfu(self) -> bool {
        matches!(
            self,
            MaxmemoryPolicy::VolatileLfu | MaxmemoryPolicy::AllkeysLfu
        )
    }

    /// Tracks the time of the last access (the entries' access field is an LRU clock).
    pub fn is_lru(self) -> bool {
        matches!(
            self,
            MaxmemoryPolicy::VolatileLru | MaxmemoryPolicy::AllkeysLru
        )
    }

    /// Evicts from every key rather than only from keys with a deadline.
    pub fn is_allkeys(self) -> bool {
        matches!(
            self,
            MaxmemoryPolicy::AllkeysLru
                | MaxmemoryPolicy::AllkeysLfu
                | MaxmemoryPolicy::AllkeysRandom
        )
    }

    pub fn is_random(self) -> bool {
        matches!(
            self,
            MaxmemoryPolicy::VolatileRandom | MaxmemoryPolicy::AllkeysRandom
        )
    }
}

/// The server configuration.
///
/// Directives that Tessera implements (or that callers are likely to need)
/// have typed public fields. The remaining, accepted-but-not-implemented
/// directives live in a private map keyed by canonical name, so that CONFIG
/// GET/SET/REWRITE round-trip them exactly like Redis without growing this
/// struct for features that do nothing yet.
///
/// `Debug` prints `requirepass` as `"<redacted>"` so that logging the
/// configuration does not leak the password.
#[derive(Clone)]
pub struct Config {
    /// TCP port. 0 means "do not listen on TCP" as in Redis (a startup
    /// error, since Tessera has no other listener; allowed by CONFIG SET).
    pub port: u16,
    /// Addresses to listen on. Empty means "listen nowhere"; the caller
    /// decides whether that is a startup error.
    pub bind: Vec<String>,
    /// Accepted and enforced by the caller the way Redis does it: when yes,
    /// no `requirepass` is set and the connection is not from loopback, the
    /// client gets the DENIED error. With the default `bind 127.0.0.1` it
    /// has no visible effect.
    pub protected_mode: bool,
    /// Pin each shard to its own core when there are no more shards than cores.
    pub shard_pinning: bool,
    /// Microseconds a pinned shard spins looking for work before it parks.
    pub shard_spin_us: u64,
    /// Run shard threads under the SCHED_BATCH scheduling policy.
    pub shard_sched_batch: bool,
    /// Working directory for persistence files; always absolute.
    pub dir: PathBuf,
    pub databases: usize,
    /// `None` when unset (Redis treats `requirepass ""` as unset too).
    pub requirepass: Option<Bytes>,
    pub loglevel: LogLevel,
    /// Empty means standard output.
    pub logfile: String,
    /// `syslog-enabled`: every log line also goes to the system log (see `crate::syslog`).
    pub syslog_enabled: bool,
    /// `syslog-ident`: the program name the system log shows.
    pub syslog_ident: String,
    /// `syslog-facility`: an index into [`SYSLOG_FACILITIES`].
    pub syslog_facility: usize,
    /// Only `no` is supported; [`load`] rejects `yes`.
    pub daemonize: bool,
    pub maxclients: u64,
    /// Idle client timeout in seconds, 0 = never.
    pub timeout: u64,
    pub tcp_backlog: u32,
    pub tcp_keepalive: u64,
    /// Already clamped to 1..=500 as Redis does.
    pub hz: u32,
    pub proto_max_bulk_len: u64,
    pub client_query_buffer_limit: u64,
    /// Microseconds; -1 disables the slow log, 0 logs everything.
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: u64,
    /// Milliseconds from which the latency monitor records an event (LATENCY LATEST...); 0
    /// turns it off.
    pub latency_monitor_threshold: u64,
    /// Most keys the client-side caching table remembers (0: no limit); past it, keys are
    /// dropped with an invalidation (`crate::pubsub::tracking`).
    pub tracking_table_max_keys: u64,
    /// Record each command's latency in a per-command histogram (INFO latencystats).
    pub latency_tracking: bool,
    /// The percentiles INFO latencystats reports, in order (each within 0..=100; may be
    /// empty).
    pub latency_tracking_info_percentiles: Vec<f64>,
    /// `busy-reply-threshold` (alias `lua-time-limit`), milliseconds; 0 disables the check.
    pub busy_reply_threshold: u64,
    pub enable_debug_command: DebugCommandPolicy,
    /// `enable-module-command`: who may run MODULE LOAD, LOADEX and UNLOAD (which always fail
    /// here, see `commands::module_family`).
    pub enable_module_command: DebugCommandPolicy,
    /// Number of shards (threads); 0 means one per online CPU.
    pub shards: usize,
    /// Bytes of io_uring registered buffer memory per shard.
    pub io_memory: usize,
    /// io_uring submission queue depth per shard.
    pub ring_depth: u32,
    /// Memory limit in bytes (0 = none), split evenly over the shards.
    pub maxmemory: u64,
    /// `maxmemory-clients`: bytes, or (negative) a percentage of `maxmemory`; 0 for no client
    /// eviction (see `server::client_eviction`).
    pub maxmemory_clients: i64,
    /// `oom-score-adj` and its values for a primary, a replica and a background child (Redis's
    /// classes; Tessera runs only the first: no replication, no child processes).
    pub oom_score_adj: OomScoreAdj,
    pub oom_score_adj_values: [i32; 3],
    pub maxmemory_policy: MaxmemoryPolicy,
    /// Keys sampled per database for each eviction.
    pub maxmemory_samples: u32,
    /// 0..=100: how long one command may spend evicting (see `shard::memory`).
    pub maxmemory_eviction_tenacity: u32,
    pub lfu_log_factor: u32,
    /// Minutes per decrement of an idle key's LFU counter (0 = never decays).
    pub lfu_decay_time: u32,
    pub lazyfree_lazy_eviction: bool,
    /// LZF-compress strings over 20 bytes in RDB data (files and DUMP payloads).
    pub rdbcompression: bool,
    /// Write a CRC64 trailer on RDB files (a zero trailer otherwise).
    pub rdbchecksum: bool,
    pub lazyfree_lazy_expire: bool,
    pub lazyfree_lazy_server_del: bool,
    pub lazyfree_lazy_user_del: bool,
    pub lazyfree_lazy_user_flush: bool,
    pub active_expire_effort: u32,
    /// A hash converts from listpack to hashtable past this many fields.
    pub hash_max_listpack_entries: u64,
    /// ... or when given a field or value longer than this many bytes.
    pub hash_max_listpack_value: u64,
    /// List node size: positive = max entries per node, negative = -1..-5 for 4k..64k bytes.
    pub list_max_listpack_size: i64,
    /// A set of integers stays an intset up to this many members.
    pub set_max_intset_entries: u64,
    /// A small set of strings stays a listpack up to this many members...
    pub set_max_listpack_entries: u64,
    /// ... each no longer than this many bytes.
    pub set_max_listpack_value: u64,
    /// A sorted set stays a listpack up to this many members...
    pub zset_max_listpack_entries: u64,
    /// ... each no longer than this many bytes.
    pub zset_max_listpack_value: u64,
    /// A sparse HyperLogLog turns dense rather than grow past this many bytes.
    pub hll_sparse_max_bytes: u64,
    /// A stream node takes entries up to this many listpack bytes (0: no limit)...
    pub stream_node_max_bytes: u64,
    /// ... and this many entries, deleted ones included (0: no limit).
    pub stream_node_max_entries: u64,
    /// `notify-keyspace-events` classes (see `crate::pubsub::notify::class`).
    pub notify_keyspace_events: u32,
    /// Absolute path of the config file given on the command line, if any.
    /// CONFIG REWRITE needs it.
    pub config_file: Option<PathBuf>,
    /// `user <name> <rules...>` lines of the config file and flags (name first), validated,
    /// created at startup (see `crate::server::acl`). Not a directive: CONFIG GET does not
    /// show them and CONFIG REWRITE writes the ACL users as they are then.
    pub users: Vec<Vec<Vec<u8>>>,
    /// Values of the directives without a typed field, by canonical name.
    extra: BTreeMap<&'static str, Value>,
}

/// Result of [`load`]: the configuration plus notices the caller should log.
#[derive(Clone, Debug)]
pub struct LoadOutcome {
    pub config: Config,
    pub warnings: Vec<String>,
}

// ---------------------------------------------------------------------------
// Values and kinds
// ---------------------------------------------------------------------------

/// A directive's value in a kind-independent form. This is the currency
/// between the generic machinery and the per-directive field accessors.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Bool(bool),
    /// All integer and memory directives. i128 covers both `u64` (maxmemory)
    /// and `i64` (slowlog-log-slower-than) ranges without special cases.
    Int(i128),
    Enum(usize),
    /// `None` is Redis's NULL string (for directives where "" means unset).
    Str(Option<Vec<u8>>),
    Path(PathBuf),
    List(Vec<String>),
    /// `save`: (seconds, changes) pairs.
    Save(Vec<(i64, i64)>),
    /// `client-output-buffer-limit` for normal, replica, pubsub.
    Obuf([ObufLimit; 3]),
    /// What parsing a `client-output-buffer-limit` produces: Redis only
    /// replaces the classes that are mentioned.
    ObufUpdate(Vec<(usize, ObufLimit)>),
    /// `notify-keyspace-events` bit set.
    Flags(u32),
    /// `latency-tracking-info-percentiles`: the doubles' bit patterns (so that values compare
    /// exactly, and `Value` stays `Eq`).
    Percentiles(Vec<u64>),
}

impl Value {
    fn int(&self) -> i128 {
        match self {
            Value::Int(i) => *i,
            other => unreachable!("expected an integer value, got {other:?}"),
        }
    }

    fn bool(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            other => unreachable!("expected a bool value, got {other:?}"),
        }
    }

    fn index(&self) -> usize {
        match self {
            Value::Enum(i) => *i,
            other => unreachable!("expected an enum value, got {other:?}"),
        }
    }

    fn into_str(self) -> Option<Vec<u8>> {
        match self {
            Value::Str(s) => s,
            other => unreachable!("expected a string value, got {other:?}"),
        }
    }

    fn into_list(self) -> Vec<String> {
        match self {
            Value::List(l) => l,
            other => unreachable!("expected a list value, got {other:?}"),
        }
    }

    fn into_path(self) -> PathBuf {
        match self {
            Value::Path(p) => p,
            other => unreachable!("expected a path value, got {other:?}"),
        }
    }
}

/// One class of `client-output-buffer-limit`: a client is disconnected when its pending output
/// reaches `hard` bytes, or stays at `soft` bytes or more for `soft_seconds`. 0 means no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObufLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_seconds: i64,
}

/// Index of the pub/sub class in `Config::output_limit`.
pub const OBUF_PUBSUB: usize = 2;

/// Client classes as CONFIG GET names them (index = Redis client type).
const OBUF_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// Validation hook for string directives; returns Redis's error text.
type StrCheck = fn(&[u8]) -> Result<(), &'static str>;

/// How a directive's arguments are parsed and its value formatted.
#[derive(Clone, Copy)]
enum Kind {
    /// yes/no.
    Bool,
    /// Plain integer (Redis `string2ll`), range-checked; `clamp` is applied
    /// after the range check, as Redis does for `hz`.
    Int {
        min: i128,
        max: i128,
        clamp: Option<(i128, i128)>,
    },
    /// Byte count with optional unit (Redis `memtoull`), range-checked.
    Mem { min: i128, max: i128 },
    /// A byte count as `Mem`, or a percentage `N%` up to `max_percent`, stored negative (Redis's
    /// PERCENT_CONFIG: `maxmemory-clients`).
    MemPercent { max_percent: i128 },
    /// One of a fixed set of names, case-insensitive.
    Enum(&'static [&'static str]),
    /// Arbitrary bytes. With `null_if_empty`, "" means unset (CONFIG GET
    /// still shows ""), and CONFIG REWRITE drops the directive.
    Str {
        null_if_empty: bool,
        check: Option<StrCheck>,
    },
    /// A directory; relative paths resolve against the previous `dir`, which
    /// is what Redis's repeated `chdir` amounts to.
    Dir,
    /// Multi-argument list of addresses.
    Bind,
    /// Multi-argument `seconds changes` pairs.
    Save,
    /// Multi-argument `class hard soft seconds` quadruples.
    Obuf,
    /// Class characters, e.g. "KEA".
    KeyspaceEvents,
    /// Any number of words, kept as given (directives without effect here whose values are
    /// lists: `replicaof host port`, `oom-score-adj-values`...).
    Words,
    /// Any number of percentiles, doubles in 0..=100 (`latency-tracking-info-percentiles`).
    Percentiles,
    /// Three integers in -2000..=2000 (`oom-score-adj-values`), read as C's `strtoll`.
    OomValues,
    /// An integer written in octal (`unixsocketperm`), as C's `strtoll(.., 8)` reads it: shown
    /// in octal, bounds in the range error too.
    Octal { max: i128 },
    /// `shutdown-on-sigint` / `shutdown-on-sigterm`: any of `default save nosave now force`,
    /// kept as the flags of [`SHUTDOWN_FLAGS`] (0: default).
    ShutdownFlags,
}

/// `supervised` values, in Redis's order.
pub const SUPERVISED_NAMES: &[&str] = &["upstart", "systemd", "auto", "no"];

/// The SHUTDOWN options a signal may imply, by flag bit (Redis's `SHUTDOWN_*` values), in the
/// order CONFIG GET lists them.
pub const SHUTDOWN_FLAGS: &[(&str, u32)] = &[("save", 1), ("nosave", 2), ("now", 4), ("force", 8)];

impl Kind {
    /// Multi-argument directives take any number of arguments in the file and
    /// have their CONFIG SET value split on spaces, as in Redis.
    fn multi(&self) -> bool {
        matches!(
            self,
            Kind::Bind
                | Kind::Save
                | Kind::Obuf
                | Kind::Words
                | Kind::Percentiles
                | Kind::ShutdownFlags
                | Kind::OomValues
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mutability {
    /// CONFIG SET allowed.
    Mutable,
    /// "can't set immutable config".
    Immutable,
    /// "can't set protected config". Redis 7 guards `dir` and `dbfilename`
    /// behind `enable-protected-configs`, which defaults to `no`; Tessera has
    /// no such switch, so they are simply never settable at runtime.
    Protected,
}

use Mutability::{Immutable, Mutable, Protected};

/// How the generic machinery reaches a directive's storage.
enum Field {
    /// A typed field of [`Config`]: getter and setter. The setter may assume
    /// the value passed parsing and range checks.
    Typed(fn(&Config) -> Value, fn(&mut Config, Value)),
    /// Stored in `Config::extra` under the canonical name.
    Extra,
}

/// One row of the directive table.
struct Directive {
    name: &'static str,
    aliases: &'static [&'static str],
    kind: Kind,
    /// Default in config-file syntax (tokenized like a config line), so the
    /// same parser produces defaults and user values: one source of truth.
    default: &'static str,
    mutability: Mutability,
    /// False: accepted for compatibility (parsed, validated, shown, saved by
    /// CONFIG REWRITE) but without effect; [`load`] warns when such a
    /// directive is set to a non-default value.
    implemented: bool,
    field: Field,
}

impl Directive {
    /// Canonical name first, then aliases.
    fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }

    fn name_at(&self, index: usize) -> &'static str {
        if index == 0 {
            self.name
        } else {
            self.aliases[index - 1]
        }
    }

    /// The default value, exactly as it is stored after loading.
    fn default_value(&self) -> Value {
        // An empty default is one empty argument (`pidfile ""`), not none.
        let tokens = if self.default.is_empty() {
            vec![Vec::new()]
        } else {
            split_args(self.default.as_bytes())
                .unwrap_or_else(|| panic!("bad default for {}", self.name))
        };
        let args: Vec<&[u8]> = tokens.iter().map(Vec::as_slice).collect();
        let parsed = parse_value(&self.kind, &args)
            .unwrap_or_else(|e| panic!("bad default for {}: {e}", self.name));
        finish_value(parsed, None, false)
    }
}

// ---------------------------------------------------------------------------
// The directive table
// ---------------------------------------------------------------------------

const INT_MIN: i128 = i32::MIN as i128;
const INT_MAX: i128 = i32::MAX as i128;
const UINT_MAX: i128 = u32::MAX as i128;
const LONG_MAX: i128 = i64::MAX as i128;
const ULLONG_MAX: i128 = u64::MAX as i128;
const MB: i128 = 1024 * 1024;

const fn int(min: i128, max: i128) -> Kind {
    Kind::Int {
        min,
        max,
        clamp: None,
    }
}

const fn mem(min: i128, max: i128) -> Kind {
    Kind::Mem { min, max }
}

const STR: Kind = Kind::Str {
    null_if_empty: false,
    check: None,
};

const NULLABLE_STR: Kind = Kind::Str {
    null_if_empty: true,
    check: None,
};

const fn row(
    name: &'static str,
    aliases: &'static [&'static str],
    kind: Kind,
    default: &'static str,
    mutability: Mutability,
    implemented: bool,
    field: Field,
) -> Directive {
    Directive {
        name,
        aliases,
        kind,
        default,
        mutability,
        implemented,
        field,
    }
}

/// Accessor for an integer field (Int or Mem kinds). The casts cannot
/// truncate: every row's range fits its field type.
macro_rules! num {
    ($f:ident: $t:ty) => {
        Field::Typed(|c| Value::Int(c.$f as i128), |c, v| c.$f = v.int() as $t)
    };
}

macro_rules! yes_no {
    ($f:ident) => {
        Field::Typed(|c| Value::Bool(c.$f), |c, v| c.$f = v.bool())
    };
}

fn is_base_name(v: &[u8]) -> bool {
    !v.contains(&b'/') && !v.contains(&b'\\')
}

fn check_dbfilename(v: &[u8]) -> Result<(), &'static str> {
    if is_base_name(v) {
        Ok(())
    } else {
        Err("dbfilename can't be a path, just a filename")
    }
}

fn check_appendfilename(v: &[u8]) -> Result<(), &'static str> {
    if v.is_empty() {
        Err("appendfilename can't be empty")
    } else if !is_base_name(v) {
        Err("appendfilename can't be a path, just a filename")
    } else {
        Ok(())
    }
}

fn check_appenddirname(v: &[u8]) -> Result<(), &'static str> {
    if v.is_empty() {
        Err("appenddirname can't be empty")
    } else if !is_base_name(v) {
        Err("appenddirname can't be a path, just a dirname")
    } else {
        Ok(())
    }
}

/// Every directive Tessera knows. Ranges, defaults and mutability follow
/// Redis 7.0.15's `configs[]` table unless a comment says otherwise; the row
/// order is the CONFIG GET output order. (Kept out of rustfmt so that each
/// directive stays one visual row.)
#[rustfmt::skip]
static DIRECTIVES: &[Directive] = &[
    // --- Network -----------------------------------------------------------
    // CONFIG SET of bind or port moves every shard's listeners
    // (`server::listen`), or none of them.
    row("bind", &[], Kind::Bind, "127.0.0.1", Mutable, true,
        Field::Typed(|c| Value::List(c.bind.clone()), |c, v| c.bind = v.into_list())),
    row("protected-mode", &[], Kind::Bool, "yes", Mutable, true, yes_no!(protected_mode)),
    row("port", &[], int(0, 65535), "6379", Mutable, true, num!(port: u16)),
    row("tcp-backlog", &[], int(0, INT_MAX), "511", Immutable, true, num!(tcp_backlog: u32)),
    // Read through `Config::unixsocket` (see `crate::server::listen::UnixSocket`).
    row("unixsocket", &[], NULLABLE_STR, "", Immutable, true, Field::Extra),
    row("unixsocketperm", &[], Kind::Octal { max: 0o777 }, "0", Immutable, true, Field::Extra),
    row("timeout", &[], int(0, INT_MAX), "0", Mutable, true, num!(timeout: u64)),
    row("tcp-keepalive", &[], int(0, INT_MAX), "300", Mutable, true, num!(tcp_keepalive: u64)),
    // --- General -----------------------------------------------------------
    row("daemonize", &[], Kind::Bool, "no", Immutable, true, yes_no!(daemonize)),
    // Read through `Config::pidfile` and `Config::supervised` (see `crate::server::supervise`).
    row("pidfile", &[], NULLABLE_STR, "", Immutable, true, Field::Extra),
    row("loglevel", &[], Kind::Enum(LOGLEVEL_NAMES), "notice", Mutable, true,
        Field::Typed(|c| Value::Enum(c.loglevel as usize),
                     |c, v| c.loglevel = LogLevel::ALL[v.index()])),
    row("logfile", &[], STR, "", Immutable, true,
        Field::Typed(|c| Value::Str(Some(c.logfile.as_bytes().to_vec())),
                     |c, v| c.logfile = lossy(&v.into_str().unwrap_or_default()))),
    row("syslog-enabled", &[], Kind::Bool, "no", Immutable, true, yes_no!(syslog_enabled)),
    row("syslog-facility", &[], Kind::Enum(SYSLOG_FACILITIES), "local0", Immutable, true,
        Field::Typed(|c| Value::Enum(c.syslog_facility), |c, v| c.syslog_facility = match v {
            Value::Enum(i) => i,
            _ => 1,
        })),
    row("syslog-ident", &[], STR, "redis", Immutable, true,
        Field::Typed(|c| Value::Str(Some(c.syslog_ident.as_bytes().to_vec())),
                     |c, v| c.syslog_ident = lossy(&v.into_str().unwrap_or_default()))),
    row("databases", &[], int(1, INT_MAX), "16", Immutable, true, num!(databases: usize)),
    row("enable-debug-command", &[], Kind::Enum(DEBUG_POLICY_NAMES), "no", Immutable, true,
        Field::Typed(|c| Value::Enum(c.enable_debug_command as usize),
                     |c, v| c.enable_debug_command = DebugCommandPolicy::ALL[v.index()])),
    // --- Snapshotting ------------------------------------------------------
    row("save", &[], Kind::Save, "3600 1 300 100 60 10000", Mutable, true, Field::Extra),
    row("stop-writes-on-bgsave-error", &[], Kind::Bool, "yes", Mutable, true, Field::Extra),
    row("rdbcompression", &[], Kind::Bool, "yes", Mutable, true, yes_no!(rdbcompression)),
    row("rdbchecksum", &[], Kind::Bool, "yes", Immutable, true, yes_no!(rdbchecksum)),
    row("snapshot-compression", &[], Kind::Enum(&["zstd", "none"]), "zstd", Mutable, true,
        Field::Extra),
    row("dbfilename", &[], Kind::Str { null_if_empty: false, check: Some(check_dbfilename) },
        "dump.rdb", Protected, true, Field::Extra),
    row("dir", &[], Kind::Dir, ".", Protected, true,
        Field::Typed(|c| Value::Path(c.dir.clone()),
                     |c, v| c.dir = resolve_dir(&c.dir, &v.into_path()))),
    // --- Security ----------------------------------------------------------
    row("requirepass", &[], NULLABLE_STR, "", Mutable, true,
        Field::Typed(|c| Value::Str(c.requirepass.as_ref().map(|p| p.to_vec())),
                     |c, v| c.requirepass = v.into_str().map(Bytes::from))),
    // --- Clients -----------------------------------------------------------
    row("maxclients", &[], int(1, UINT_MAX), "10000", Mutable, true, num!(maxclients: u64)),
    // --- Memory management -------------------------------------------------
    row("maxmemory", &[], mem(0, ULLONG_MAX), "0", Mutable, true, num!(maxmemory: u64)),
    row("maxmemory-policy", &[], Kind::Enum(MAXMEMORY_POLICY_NAMES), "noeviction", Mutable, true,
        Field::Typed(|c| Value::Enum(c.maxmemory_policy as usize),
                     |c, v| c.maxmemory_policy = MaxmemoryPolicy::ALL[v.index()])),
    row("maxmemory-samples", &[], int(1, INT_MAX), "5", Mutable, true, num!(maxmemory_samples: u32)),
    row("maxmemory-eviction-tenacity", &[], int(0, 100), "10", Mutable, true,
        num!(maxmemory_eviction_tenacity: u32)),
    // --- Lazy freeing ------------------------------------------------------
    row("lazyfree-lazy-eviction", &[], Kind::Bool, "no", Mutable, true, yes_no!(lazyfree_lazy_eviction)),
    row("lazyfree-lazy-expire", &[], Kind::Bool, "no", Mutable, true, yes_no!(lazyfree_lazy_expire)),
    row("lazyfree-lazy-server-del", &[], Kind::Bool, "no", Mutable, true,
        yes_no!(lazyfree_lazy_server_del)),
    row("lazyfree-lazy-user-del", &[], Kind::Bool, "no", Mutable, true, yes_no!(lazyfree_lazy_user_del)),
    row("lazyfree-lazy-user-flush", &[], Kind::Bool, "no", Mutable, true,
        yes_no!(lazyfree_lazy_user_flush)),
    // --- Append only mode --------------------------------------------------
    row("appendonly", &[], Kind::Bool, "no", Mutable, true, Field::Extra),
    row("appendfilename", &[], Kind::Str { null_if_empty: false, check: Some(check_appendfilename) },
        "appendonly.aof", Immutable, true, Field::Extra),
    row("appenddirname", &[], Kind::Str { null_if_empty: false, check: Some(check_appenddirname) },
        "appendonlydir", Immutable, true, Field::Extra),
    row("appendfsync", &[], Kind::Enum(&["everysec", "always", "no"]), "everysec", Mutable, true,
        Field::Extra),
    row("auto-aof-rewrite-percentage", &[], int(0, INT_MAX), "100", Mutable, true, Field::Extra),
    row("auto-aof-rewrite-min-size", &[], mem(0, LONG_MAX), "64mb", Mutable, true, Field::Extra),
    row("aof-load-truncated", &[], Kind::Bool, "yes", Mutable, true, Field::Extra),
    row("aof-use-rdb-preamble", &[], Kind::Bool, "yes", Mutable, true, Field::Extra),
    // --- Scripting ---------------------------------------------------------
    row("busy-reply-threshold", &["lua-time-limit"], int(0, LONG_MAX), "5000", Mutable, true,
        num!(busy_reply_threshold: u64)),
    // --- Slow log, latency, notifications ----------------------------------
    row("slowlog-log-slower-than", &[], int(-1, LONG_MAX), "10000", Mutable, true,
        num!(slowlog_log_slower_than: i64)),
    row("slowlog-max-len", &[], int(0, LONG_MAX), "128", Mutable, true, num!(slowlog_max_len: u64)),
    row("latency-monitor-threshold", &[], int(0, LONG_MAX), "0", Mutable, true,
        num!(latency_monitor_threshold: u64)),
    row("latency-tracking", &[], Kind::Bool, "yes", Mutable, true, yes_no!(latency_tracking)),
    row("latency-tracking-info-percentiles", &[], Kind::Percentiles, "50 99 99.9", Mutable, true,
        Field::Typed(|c| Value::Percentiles(
                         c.latency_tracking_info_percentiles.iter().map(|p| p.to_bits()).collect()),
                     |c, v| if let Value::Percentiles(p) = v {
                         c.latency_tracking_info_percentiles =
                             p.into_iter().map(f64::from_bits).collect() })),
    row("notify-keyspace-events", &[], Kind::KeyspaceEvents, "", Mutable, true,
        Field::Typed(|c| Value::Flags(c.notify_keyspace_events),
                     |c, v| if let Value::Flags(f) = v { c.notify_keyspace_events = f })),
    // --- Advanced config ---------------------------------------------------
    // Redis 7.0's default is 512 (redis.conf and `CONFIG GET` agree).
    row("hash-max-listpack-entries", &["hash-max-ziplist-entries"], int(0, LONG_MAX), "512",
        Mutable, true, num!(hash_max_listpack_entries: u64)),
    row("hash-max-listpack-value", &["hash-max-ziplist-value"], mem(0, LONG_MAX), "64", Mutable,
        true, num!(hash_max_listpack_value: u64)),
    row("list-max-listpack-size", &["list-max-ziplist-size"], int(INT_MIN, INT_MAX), "-2",
        Mutable, true, num!(list_max_listpack_size: i64)),
    row("set-max-intset-entries", &[], int(0, LONG_MAX), "512", Mutable, true,
        num!(set_max_intset_entries: u64)),
    // Redis 7.2 directives (7.0 does not know them); 7.2 types and defaults.
    row("set-max-listpack-entries", &[], int(0, LONG_MAX), "128", Mutable, true,
        num!(set_max_listpack_entries: u64)),
    row("set-max-listpack-value", &[], int(0, LONG_MAX), "64", Mutable, true,
        num!(set_max_listpack_value: u64)),
    row("zset-max-listpack-entries", &["zset-max-ziplist-entries"], int(0, LONG_MAX), "128",
        Mutable, true, num!(zset_max_listpack_entries: u64)),
    row("zset-max-listpack-value", &["zset-max-ziplist-value"], mem(0, LONG_MAX), "64", Mutable,
        true, num!(zset_max_listpack_value: u64)),
    // A HyperLogLog stays sparse up to this many bytes, header included.
    row("hll-sparse-max-bytes", &[], mem(0, LONG_MAX), "3000", Mutable, true,
        num!(hll_sparse_max_bytes: u64)),
    // Kept and reported like Redis's, without effect: quicklist nodes are never compressed.
    row("list-compress-depth", &[], int(0, INT_MAX), "0", Mutable, false, Field::Extra),
    row("activerehashing", &[], Kind::Bool, "yes", Mutable, false, Field::Extra),
    // Kept and reported like Redis's, without effect: there is no jemalloc to defragment with.
    row("activedefrag", &[], Kind::Bool, "no", Mutable, false, Field::Extra),
    row("active-defrag-ignore-bytes", &[], mem(1, LONG_MAX), "100mb", Mutable, false,
        Field::Extra),
    row("active-defrag-threshold-lower", &[], int(0, 1000), "10", Mutable, false, Field::Extra),
    row("active-defrag-threshold-upper", &[], int(0, 1000), "100", Mutable, false, Field::Extra),
    row("active-defrag-cycle-min", &[], int(1, 99), "1", Mutable, false, Field::Extra),
    row("active-defrag-cycle-max", &[], int(1, 99), "25", Mutable, false, Field::Extra),
    row("active-defrag-max-scan-fields", &[], int(1, LONG_MAX), "1000", Mutable, false,
        Field::Extra),
    row("client-output-buffer-limit", &[], Kind::Obuf,
        "normal 0 0 0 slave 256mb 64mb 60 pubsub 32mb 8mb 60", Mutable, true, Field::Extra),
    row("client-query-buffer-limit", &[], mem(MB, LONG_MAX), "1gb", Mutable, true,
        num!(client_query_buffer_limit: u64)),
    row("proto-max-bulk-len", &[], mem(MB, LONG_MAX), "512mb", Mutable, true,
        num!(proto_max_bulk_len: u64)),
    // Redis accepts 0..INT_MAX and then clamps into 1..500, silently.
    row("hz", &[], Kind::Int { min: 0, max: INT_MAX, clamp: Some((1, 500)) }, "10", Mutable, true,
        num!(hz: u32)),
    row("active-expire-effort", &[], int(1, 10), "1", Mutable, true, num!(active_expire_effort: u32)),
    row("lfu-log-factor", &[], int(0, INT_MAX), "10", Mutable, true, num!(lfu_log_factor: u32)),
    row("lfu-decay-time", &[], int(0, INT_MAX), "1", Mutable, true, num!(lfu_decay_time: u32)),
    // --- Redis 7.0 directives without effect in Tessera -------------------------
    // Replication, cluster, TLS, ACL files, I/O threads, client eviction...:
    // accepted so that a stock redis.conf starts Tessera, shown by CONFIG GET with Redis's
    // defaults, and logged at startup as not implemented when set to something else.
    row("acl-pubsub-default", &[], Kind::Enum(&["allchannels", "resetchannels"]), "resetchannels", Mutable, true, Field::Extra),
    row("aclfile", &[], STR, "", Immutable, true, Field::Extra),
    row("acllog-max-len", &[], int(0, LONG_MAX), "128", Mutable, true, Field::Extra),
    row("always-show-logo", &[], Kind::Bool, "no", Immutable, false, Field::Extra),
    row("aof-disable-auto-gc", &[], Kind::Bool, "no", Mutable, false, Field::Extra),
    row("aof-rewrite-incremental-fsync", &[], Kind::Bool, "yes", Mutable, false, Field::Extra),
    row("aof-timestamp-enabled", &[], Kind::Bool, "no", Mutable, false, Field::Extra),
    row("aof_rewrite_cpulist", &[], STR, "", Immutable, false, Field::Extra),
    row("bgsave_cpulist", &[], STR, "", Immutable, false, Field::Extra),
    row("bind-source-addr", &[], STR, "", Mutable, false, Field::Extra),
    row("bio_cpulist", &[], STR, "", Immutable, false, Field::Extra),
    row("cluster-allow-pubsubshard-when-down", &[], Kind::Bool, "yes", Mutable, false, Field::Extra),
    row("cluster-allow-reads-when-down", &[], Kind::Bool, "no", Mutable, false, Field::Extra),
    row("cluster-allow-replica-migration", &[], Kind::Bool, "yes", Mutable, false, Field::Extra),
    row("cluster-announce-bus-port", &[], int(0, LONG_MAX), "0", Mutable, false, Field::Extra),
    row("cluster-announce-hostname", &[], STR, "", Mutable, false, Field::Extra),
    row("cluster-announce-ip", &[], STR, "", Mutable, false, Field::Extra),
    row("cluster-announce-port", &[], int(0, LONG_MAX), "0", Mutable, false, Field::Extra),
    row("cluster-announce-tls-port", &[], int(0, LONG_MAX), "0", Mutable, false, Field::Extra),
    row("cluster-config-file", &[], STR, "nodes.conf", Immutable, false, Field::Extra),
    row("cluster-enabled", &[], Kind::Bool, "no", Immutable, false, Field::Extra),
    row("cluster-link-sendbuf-limit", &[], mem(0, LONG_MAX), "0", Mutable, false, Field::Extra),
    row("cluster-migration-barrier", &[], int(0, LONG_MAX), "1", Mutable, false, Field::Extra),
    row("cluster-node-timeout", &[], int(0, LONG_MAX), "15000", Mutable, false, Field::Extra),
    row("cluster-port", &[], int(0, LONG_MAX), "0", Immutable, false, Field::Extra),
    row("cluster-preferred-endpoint-type", &[], Kind::Enum(&["ip", "hostname", "unknown-endpoint"]), "ip", Mutable, false, Field::Extra),
    row("cluster-replica-no-failover", &["cluster-slave-no-failover"], Kind::Bool, "no", Mutable, false, Field::Extra),
    row("cluster-replica-validity-factor", &["cluster-slave-validity-factor"], int(0, LONG_MAX), "10", Mutable, false, Field::Extra),
    row("cluster-require-full-coverage", &[], Kind::Bool, "yes", Mutable, false, Field::Extra),
    row("crash-log-enabled", &[], Kind::Bool, "yes", Mutable, false, Field::Extra),
    row("crash-memcheck-enabled", &[], Kind::Bool, "yes", Mutable, false, Field::Extra),
    row("disable-thp", &[], Kind::Bool, "yes", Immutable, false, Field::Extra),
    row("dynamic-hz", &[], Kind::Bool, "yes", Mutable, false, Field::Extra),
    row("enable-module-command", &[], Kind::Enum(DEBUG_POLICY_NAMES), "no", Immutable, true,
        Field::Typed(|c| Value::Enum(c.enable_module_command as usize),
                     |c, v| c.enable_module_command = DebugCommandPolicy::ALL[v.index()])),
    row("enable-protected-configs", &[], Kind::Enum(&["no", "yes", "local"]), "no", Immutable, false, Field::Extra),
    row("ignore-warnings", &[], STR, "", Immutable, false, Field::Extra),
    row("io-threads", &[], int(1, 128), "1", Immutable, false, Field::Extra),
    row("io-threads-do-reads", &[], Kind::Bool, "no", Immutable, false, Field::Extra),
    row("jemalloc-bg-thread", &[], Kind::Bool, "yes", Mutable, false, Field::Extra),
    row("masterauth", &[], STR, "", Mutable, false, Field::Extra),
    row("masteruser", &[], STR, "", Mutable, false, Field::Extra),
    row("maxmemory-clients", &[], Kind::MemPercent { max_percent: 100 }, "0", Mutable, true, num!(maxmemory_clients: i64)),
    row("oom-score-adj", &[], Kind::Enum(OOM_SCORE_ADJ_NAMES), "no", Mutable, true,
        Field::Typed(|c| Value::Enum(match c.oom_score_adj {
            OomScoreAdj::No => 0,
            OomScoreAdj::Relative => 1,
            OomScoreAdj::Absolute => 3,
        }), |c, v| c.oom_score_adj = match v {
            Value::Enum(0) => OomScoreAdj::No,
            Value::Enum(3) => OomScoreAdj::Absolute,
            _ => OomScoreAdj::Relative,
        })),
    row("oom-score-adj-values", &[], Kind::OomValues, "0 200 800", Mutable, true,
        Field::Typed(|c| Value::List(c.oom_score_adj_values.iter().map(i32::to_string).collect()),
            |c, v| if let Value::List(l) = v {
                for (slot, n) in c.oom_score_adj_values.iter_mut().zip(l) {
                    *slot = n.parse().unwrap_or(0);
                }
            })),
    row("min-replicas-max-lag", &["min-slaves-max-lag"], int(0, LONG_MAX), "10", Mutable, false, Field::Extra),
    row("min-replicas-to-write", &["min-slaves-to-write"], int(0, LONG_MAX), "0", Mutable, false, Field::Extra),
    row("no-appendfsync-on-rewrite", &[], Kind::Bool, "no", Mutable, false, Field::Extra),
    row("proc-title-template", &[], STR, "\"{title} {listen-addr} {server-mode}\"", Mutable, true, Field::Extra),
    row("propagation-error-behavior", &[], Kind::Enum(&["ignore", "panic", "panic-on-replicas"]), "ignore", Mutable, false, Field::Extra),
    row("rdb-del-sync-files", &[], Kind::Bool, "no", Mutable, false, Field::Extra),
    row("rdb-save-incremental-fsync", &[], Kind::Bool, "yes", Mutable, false, Field::Extra),
    row("repl-backlog-size", &[], mem(0, LONG_MAX), "1048576", Mutable, false, Field::Extra),
    row("repl-backlog-ttl", &[], int(0, LONG_MAX), "3600", Mutable, false, Field::Extra),
    row("repl-disable-tcp-nodelay", &[], Kind::Bool, "no", Mutable, false, Field::Extra),
    row("repl-diskless-load", &[], Kind::Enum(&["disabled", "on-empty-db", "swapdb"]), "disabled", Mutable, false, Field::Extra),
    row("repl-diskless-sync", &[], Kind::Bool, "yes", Mutable, false, Field::Extra),
    row("repl-diskless-sync-delay", &[], int(0, LONG_MAX), "5", Mutable, false, Field::Extra),
    row("repl-diskless-sync-max-replicas", &[], int(0, LONG_MAX), "0", Mutable, false, Field::Extra),
    row("repl-ping-replica-period", &["repl-ping-slave-period"], int(0, LONG_MAX), "10", Mutable, false, Field::Extra),
    row("repl-timeout", &[], int(0, LONG_MAX), "60", Mutable, false, Field::Extra),
    row("replica-announce-ip", &["slave-announce-ip"], STR, "", Mutable, false, Field::Extra),
    row("replica-announce-port", &["slave-announce-port"], int(0, LONG_MAX), "0", Mutable, false, Field::Extra),
    row("replica-announced", &[], Kind::Bool, "yes", Mutable, false, Field::Extra),
    row("replica-ignore-disk-write-errors", &[], Kind::Bool, "no", Mutable, false, Field::Extra),
    row("replica-ignore-maxmemory", &["slave-ignore-maxmemory"], Kind::Bool, "yes", Mutable, false, Field::Extra),
    row("replica-lazy-flush", &["slave-lazy-flush"], Kind::Bool, "no", Mutable, false, Field::Extra),
    row("replica-priority", &["slave-priority"], int(0, LONG_MAX), "100", Mutable, false, Field::Extra),
    row("replica-read-only", &["slave-read-only"], Kind::Bool, "yes", Mutable, false, Field::Extra),
    row("replica-serve-stale-data", &["slave-serve-stale-data"], Kind::Bool, "yes", Mutable, false, Field::Extra),
    row("replicaof", &["slaveof"], Kind::Words, "", Mutable, false, Field::Extra),
    row("sanitize-dump-payload", &[], Kind::Enum(&["no", "yes", "clients"]), "no", Mutable, false, Field::Extra),
    row("server_cpulist", &[], STR, "", Immutable, false, Field::Extra),
    row("set-proc-title", &[], Kind::Bool, "yes", Immutable, true, Field::Extra),
    // Read through `Config::shutdown_on_signal`.
    row("shutdown-on-sigint", &[], Kind::ShutdownFlags, "default", Mutable, true, Field::Extra),
    row("shutdown-on-sigterm", &[], Kind::ShutdownFlags, "default", Mutable, true, Field::Extra),
    row("shutdown-timeout", &[], int(0, LONG_MAX), "10", Mutable, false, Field::Extra),
    row("socket-mark-id", &[], int(0, LONG_MAX), "0", Mutable, false, Field::Extra),
    // A stream node (listpack) takes entries up to this many bytes and this many entries.
    row("stream-node-max-bytes", &[], mem(0, LONG_MAX), "4096", Mutable, true,
        num!(stream_node_max_bytes: u64)),
    row("stream-node-max-entries", &[], int(0, LONG_MAX), "100", Mutable, true,
        num!(stream_node_max_entries: u64)),
    row("supervised", &[], Kind::Enum(SUPERVISED_NAMES), "no", Immutable, true, Field::Extra),
    row("tls-auth-clients", &[], Kind::Enum(&["no", "yes", "optional"]), "yes", Mutable, false, Field::Extra),
    row("tls-ca-cert-dir", &[], STR, "", Mutable, false, Field::Extra),
    row("tls-ca-cert-file", &[], STR, "", Mutable, false, Field::Extra),
    row("tls-cert-file", &[], STR, "", Mutable, false, Field::Extra),
    row("tls-ciphers", &[], STR, "", Mutable, false, Field::Extra),
    row("tls-ciphersuites", &[], STR, "", Mutable, false, Field::Extra),
    row("tls-client-cert-file", &[], STR, "", Mutable, false, Field::Extra),
    row("tls-client-key-file", &[], STR, "", Mutable, false, Field::Extra),
    row("tls-client-key-file-pass", &[], STR, "", Mutable, false, Field::Extra),
    row("tls-cluster", &[], Kind::Bool, "no", Immutable, false, Field::Extra),
    row("tls-dh-params-file", &[], STR, "", Mutable, false, Field::Extra),
    row("tls-key-file", &[], STR, "", Mutable, false, Field::Extra),
    row("tls-key-file-pass", &[], STR, "", Mutable, false, Field::Extra),
    row("tls-port", &[], int(0, LONG_MAX), "0", Mutable, false, Field::Extra),
    row("tls-prefer-server-ciphers", &[], Kind::Bool, "no", Mutable, false, Field::Extra),
    row("tls-protocols", &[], STR, "", Mutable, false, Field::Extra),
    row("tls-replication", &[], Kind::Bool, "no", Immutable, false, Field::Extra),
    row("tls-session-cache-size", &[], int(0, LONG_MAX), "20480", Mutable, false, Field::Extra),
    row("tls-session-cache-timeout", &[], int(0, LONG_MAX), "300", Mutable, false, Field::Extra),
    row("tls-session-caching", &[], Kind::Bool, "yes", Mutable, false, Field::Extra),
    row("tracking-table-max-keys", &[], int(0, LONG_MAX), "1000000", Mutable, true,
        num!(tracking_table_max_keys: u64)),
    // --- Tessera-only --------------------------------------------------------
    // Shard count and io_uring geometry are fixed when the shards start.
    row("shards", &[], int(0, 4096), "0", Immutable, true, num!(shards: usize)),
    // At least one page; io_uring registered buffers are page granular.
    row("io-memory", &[], mem(4096, LONG_MAX), "256kb", Immutable, true, num!(io_memory: usize)),
    // 32768 is the kernel's IORING_MAX_ENTRIES.
    row("ring-depth", &[], int(1, 32768), "128", Immutable, true, num!(ring_depth: u32)),
    // Pinning helps when shards own their cores; on hosts where the load shares the cores
    // (benchmarks on small machines), letting the scheduler move shards can be cheaper.
    row("shard-pinning", &[], Kind::Bool, "yes", Immutable, true, yes_no!(shard_pinning)),
    // Spinning trades idle CPU for cheaper cross-shard wake-ups; only pinned shards spin.
    row("shard-spin-us", &[], int(0, 1_000_000), "0", Immutable, true, num!(shard_spin_us: u64)),
    // A shard woken by another shard's message (or a socket) should not preempt the thread
    // running on its core: where shards share cores, each cross-shard message would otherwise
    // cost two context switches, and the woken shard would serve one message per switch.
    row("shard-sched-batch", &[], Kind::Bool, "yes", Immutable, true, yes_no!(shard_sched_batch)),
];

/// Directives Redis 7.0 still accepts in a config file and silently ignores.
/// (name, number of arguments including the name)
const DEPRECATED: &[(&str, usize)] = &[
    ("list-max-ziplist-entries", 2),
    ("list-max-ziplist-value", 2),
    ("lua-replicate-commands", 2),
];

/// Find a directive by canonical name or alias, case-insensitively.
/// Returns (row index, name index: 0 = canonical, n = n-th alias).
fn lookup(name: &[u8]) -> Option<(usize, usize)> {
    DIRECTIVES.iter().enumerate().find_map(|(i, d)| {
        d.names()
            .position(|n| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|ni| (i, ni))
    })
}

/// The canonical name of a directive given by name or alias (any case), or
/// `None` if the name is unknown.
pub fn canonical_name(name: &[u8]) -> Option<&'static str> {
    lookup(name).map(|(i, _)| DIRECTIVES[i].name)
}

/// The error reply of a CONFIG SET whose `name` argument failed because of
/// `why` (Redis's wording), for failures found here and by the caller that
/// applies the change.
pub fn set_failed(name: &str, why: &str) -> String {
    format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")
}

/// Whether a directive (canonical name or alias) is implemented by Tessera,
/// or `None` if the name is unknown. Lets the caller warn on CONFIG SET of a
/// directive that will have no effect.
pub fn is_implemented(name: &str) -> Option<bool> {
    lookup(name.as_bytes()).map(|(i, _)| DIRECTIVES[i].implemented)
}

// ---------------------------------------------------------------------------
// Parsing values
// ---------------------------------------------------------------------------

const ERR_WRONG_ARGS: &str = "wrong number of arguments";
const ERR_BAD_DIRECTIVE: &str = "Bad directive or wrong number of arguments";

/// Parse a directive's arguments (already tokenized) into a [`Value`], with
/// Redis's error text on failure.
fn parse_value(kind: &Kind, args: &[&[u8]]) -> Result<Value, String> {
    if !kind.multi() && args.len() != 1 {
        return Err(ERR_WRONG_ARGS.to_string());
    }
    match *kind {
        Kind::Bool => {
            let a = args[0];
            if a.eq_ignore_ascii_case(b"yes") {
                Ok(Value::Bool(true))
            } else if a.eq_ignore_ascii_case(b"no") {
                Ok(Value::Bool(false))
            } else {
                Err("argument must be 'yes' or 'no'".to_string())
            }
        }
        Kind::Int { min, max, clamp } => {
            let v = parse_ll(args[0])
                .ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?
                as i128;
            check_range(v, min, max)?;
            Ok(Value::Int(match clamp {
                Some((lo, hi)) => v.clamp(lo, hi),
                None => v,
            }))
        }
        Kind::Mem { min, max } => {
            let v = parse_memory(args[0])
                .ok_or_else(|| "argument must be a memory value".to_string())?
                as i128;
            check_range(v, min, max)?;
            Ok(Value::Int(v))
        }
        Kind::MemPercent { max_percent } => {
            let a = args[0];
            let percent = a
                .strip_suffix(b"%")
                .filter(|p| !p.is_empty())
                .and_then(parse_ll)
                .filter(|&p| p >= 0);
            if let Some(p) = percent {
                if p as i128 > max_percent {
                    return Err(format!(
                        "percentage argument must be less or equal to {max_percent}"
                    ));
                }
                return Ok(Value::Int(-(p as i128)));
            }
            let v = parse_memory(a)
                .ok_or_else(|| "argument must be a memory or percent value".to_string())?;
            // Redis stores the byte count in a signed size: past its range it reads as a
            // (negative) percentage, and is checked as one.
            let v = v as i64 as i128;
            if v < -max_percent {
                return Err(format!(
                    "percentage argument must be less or equal to {max_percent}"
                ));
            }
            Ok(Value::Int(v))
        }
        Kind::Enum(names) => names
            .iter()
            .position(|n| n.as_bytes().eq_ignore_ascii_case(args[0]))
            .map(Value::Enum)
            .ok_or_else(|| {
                format!(
                    "argument(s) must be one of the following: {}",
                    names.join(", ")
                )
            }),
        Kind::Str {
            null_if_empty,
            check,
        } => {
            if let Some(check) = check {
                check(args[0]).map_err(str::to_string)?;
            }
            if null_if_empty && args[0].is_empty() {
                Ok(Value::Str(None))
            } else {
                Ok(Value::Str(Some(args[0].to_vec())))
            }
        }
        Kind::Dir => {
            if args[0].is_empty() {
                // What chdir("") reports in Redis.
                return Err("No such file or directory".to_string());
            }
            Ok(Value::Path(PathBuf::from(OsString::from_vec(
                args[0].to_vec(),
            ))))
        }
        Kind::Bind => {
            // Redis's CONFIG_BINDADDR_MAX.
            if args.len() > 16 {
                return Err("Too many bind addresses specified.".to_string());
            }
            // `bind ""` means no addresses at all.
            let args = if args.len() == 1 && args[0].is_empty() {
                &[][..]
            } else {
                args
            };
            Ok(Value::List(args.iter().map(|a| lossy(a)).collect()))
        }
        // One string, so that `"a b"` in a file and `a b` compare alike.
        Kind::Words => Ok(Value::List(vec![args
            .iter()
            .map(|a| lossy(a))
            .collect::<Vec<_>>()
            .join(" ")])),
        Kind::Save => parse_save(args),
        Kind::Obuf => parse_obuf(args),
        Kind::Percentiles => parse_percentiles(args),
        Kind::ShutdownFlags => {
            if args.is_empty() {
                return Err(
                    "argument(s) must be one of the following: default, save, nosave, \
                            now, force"
                        .to_string(),
                );
            }
            let mut flags = 0;
            for a in args {
                if a.eq_ignore_ascii_case(b"default") {
                    continue;
                }
                match SHUTDOWN_FLAGS
                    .iter()
                    .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(a))
                {
                    Some((_, bit)) => flags |= bit,
                    None => {
                        return Err("argument(s) must be one of the following: default, save, \
                                    nosave, now, force"
                            .to_string())
                    }
                }
            }
            if flags & 3 == 3 {
                return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
            }
            Ok(Value::Int(i128::from(flags)))
        }
        Kind::OomValues => {
            if args.len() != 3 {
                return Err(ERR_WRONG_ARGS.to_string());
            }
            let values = args
                .iter()
                .map(|a| strtoll(a, 10).filter(|v| (-2000..=2000).contains(v)))
                .collect::<Option<Vec<i128>>>()
                .ok_or_else(|| {
                    "Invalid oom-score-adj-values, elements must be between -2000 and 2000."
                        .to_string()
                })?;
            Ok(Value::List(values.iter().map(i128::to_string).collect()))
        }
        Kind::Octal { max } => {
            let v = strtoll(args[0], 8)
                .ok_or_else(|| "argument couldn't be parsed as an octal number".to_string())?;
            if !(0..=max).contains(&v) {
                return Err(format!("argument must be between 0 and {max:o} inclusive"));
            }
            Ok(Value::Int(v))
        }
        Kind::KeyspaceEvents => crate::pubsub::notify::parse_flags(args[0])
            .map(Value::Flags)
            .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string()),
    }
}

/// C's `strtoll(s, &end, radix)` (radix up to 10) with nothing left over, as Redis checks it:
/// leading white space and a sign allowed, and the empty string reads as 0 (no digits leave
/// the end at the start, which is the terminator only there).
fn strtoll(s: &[u8], radix: u8) -> Option<i128> {
    if s.is_empty() {
        return Some(0);
    }
    let s = &s[s.iter().position(|c| !c.is_ascii_whitespace())?..];
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        // strtoll leaves the end at the sign: something is left over.
        return None;
    }
    let mut v: i128 = 0;
    for &c in digits {
        if !(b'0'..b'0' + radix).contains(&c) {
            return None;
        }
        // Saturating: C clamps to LLONG_MAX with ERANGE, out of range either way.
        v = (v * i128::from(radix) + i128::from(c - b'0')).min(i128::from(i64::MAX) + 1);
    }
    Some(if neg { -v } else { v })
}

fn check_range(v: i128, min: i128, max: i128) -> Result<(), String> {
    if v < min || v > max {
        Err(format!(
            "argument must be between {min} and {max} inclusive"
        ))
    } else {
        Ok(())
    }
}

/// `latency-tracking-info-percentiles`: each argument a double as Redis's `string2d` reads it
/// (the whole argument, no leading space, no NaN, no overflow), between 0 and 100; one empty
/// argument (or none) is the empty list. The first bad argument names the error.
fn parse_percentiles(args: &[&[u8]]) -> Result<Value, String> {
    let args = if args.len() == 1 && args[0].is_empty() {
        &[][..]
    } else {
        args
    };
    let mut values = Vec::with_capacity(args.len());
    for a in args {
        let p = crate::commands::args::string2d(a)
            .ok_or("Invalid latency-tracking-info-percentiles parameters")?;
        if !(0.0..=100.0).contains(&p) {
            return Err(
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                    .to_string(),
            );
        }
        values.push(p.to_bits());
    }
    Ok(Value::Percentiles(values))
}

fn parse_save(args: &[&[u8]]) -> Result<Value, String> {
    const ERR: &str = "Invalid save parameters";
    // `save ""` clears the list.
    let args = if args.len() == 1 && args[0].is_empty() {
        &[][..]
    } else {
        args
    };
    if !args.len().is_multiple_of(2) {
        return Err(ERR.to_string());
    }
    let mut points = Vec::with_capacity(args.len() / 2);
    for pair in args.chunks(2) {
        let seconds = parse_strtoll(pair[0]).ok_or(ERR)?;
        let changes = parse_strtoll(pair[1]).ok_or(ERR)?;
        if seconds < 1 || changes < 0 {
            return Err(ERR.to_string());
        }
        points.push((seconds, changes));
    }
    Ok(Value::Save(points))
}

fn parse_obuf(args: &[&[u8]]) -> Result<Value, String> {
    if !args.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".to_string());
    }
    let mut updates = Vec::with_capacity(args.len() / 4);
    for quad in args.chunks(4) {
        let class = obuf_class(quad[0]).ok_or_else(|| {
            "Invalid client class specified in buffer limit configuration.".to_string()
        })?;
        let hard = parse_memory(quad[1]);
        let soft = parse_memory(quad[2]);
        let seconds = parse_strtoll(quad[3]);
        match (hard, soft, seconds) {
            (Some(hard), Some(soft), Some(soft_seconds)) if soft_seconds >= 0 => {
                updates.push((
                    class,
                    ObufLimit {
                        hard,
                        soft,
                        soft_seconds,
                    },
                ));
            }
            _ => {
                return Err(
                    "Error in hard, soft or soft_seconds setting in buffer limit \
                            configuration."
                        .to_string(),
                )
            }
        }
    }
    Ok(Value::ObufUpdate(updates))
}

/// Client class names accepted by client-output-buffer-limit. `master` is a
/// real client type in Redis but has no limits, so it is rejected too.
fn obuf_class(name: &[u8]) -> Option<usize> {
    if name.eq_ignore_ascii_case(b"normal") {
        Some(0)
    } else if name.eq_ignore_ascii_case(b"slave") || name.eq_ignore_ascii_case(b"replica") {
        Some(1)
    } else if name.eq_ignore_ascii_case(b"pubsub") {
        Some(2)
    } else {
        None
    }
}

/// Turn a parsed value into the value to store. `current` is the stored
/// value for directives whose parse result is incremental:
/// `client-output-buffer-limit` replaces only the classes it names, and
/// `save` lines after the first one in a config load accumulate.
fn finish_value(parsed: Value, current: Option<Value>, append_save: bool) -> Value {
    match parsed {
        Value::ObufUpdate(updates) => {
            let mut limits = match current {
                Some(Value::Obuf(l)) => l,
                _ => [ObufLimit::default(); 3],
            };
            for (class, limit) in updates {
                limits[class] = limit;
            }
            Value::Obuf(limits)
        }
        Value::Save(points) if append_save => match current {
            Some(Value::Save(mut existing)) => {
                existing.extend(points);
                Value::Save(existing)
            }
            _ => Value::Save(points),
        },
        other => other,
    }
}

/// Redis's `string2ll`: optional '-', no '+', no spaces, no leading zeros
/// (so "010" and "-0" are rejected, exactly as CONFIG SET does).
fn parse_ll(s: &[u8]) -> Option<i64> {
    // LONG_STR_SIZE is 21 in Redis: anything that long cannot be an i64.
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if negative {
        i64::try_from(-(v as i128)).ok()
    } else {
        i64::try_from(v).ok()
    }
}

/// C `strtoll(s, &end, 10)` followed by Redis's `*end == '\0'` check, as used
/// for `save` and buffer-limit seconds: leading whitespace and a sign are
/// allowed, and an empty string reads as 0 (strtoll's "no digits" case leaves
/// `end` at the start, which is the terminator only for ""). Overflow is an
/// error here; C would saturate.
fn parse_strtoll(s: &[u8]) -> Option<i64> {
    if s.is_empty() {
        return Some(0);
    }
    let start = s.iter().position(|c| !is_c_space(*c))?;
    let s = &s[start..];
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i128 = 0;
    for &c in digits {
        v = v * 10 + i128::from(c - b'0');
        if v > i128::from(i64::MAX) + 1 {
            return None;
        }
    }
    i64::try_from(if negative { -v } else { v }).ok()
}

/// Parse a memory value like "1gb", "100mb", "5k", "1024" with Redis's
/// `memtoull` rules: an optional unit among b, k (1000), kb (1024), m, mb,
/// g, gb, case-insensitive, directly after the digits; no sign, no spaces,
/// no fractions. As in Redis, an empty digit string counts as 0 (so "" and
/// "kb" are 0) and leading zeros are fine. Unlike Redis, values that overflow
/// 64 bits are rejected instead of saturating or wrapping.
pub fn parse_memory(s: &[u8]) -> Option<u64> {
    let digits_end = s
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    let mul: u64 = match unit.to_ascii_lowercase().as_slice() {
        b"" | b"b" => 1,
        b"k" => 1000,
        b"kb" => 1024,
        b"m" => 1000 * 1000,
        b"mb" => 1024 * 1024,
        b"g" => 1000 * 1000 * 1000,
        b"gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    // Redis copies the digits into a 128-byte buffer and gives up beyond it.
    if digits.len() >= 128 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    v.checked_mul(mul)
}

// ---------------------------------------------------------------------------
// Formatting values
// ---------------------------------------------------------------------------

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn yes_no_str(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// CONFIG GET representation.
fn format_value(kind: &Kind, value: &Value) -> String {
    match (kind, value) {
        (_, Value::Bool(b)) => yes_no_str(*b).to_string(),
        (Kind::Octal { .. }, Value::Int(i)) => format!("{i:o}"),
        (Kind::MemPercent { .. }, Value::Int(i)) if *i < 0 => format!("{}%", -i),
        (Kind::ShutdownFlags, Value::Int(0)) => "default".to_string(),
        (Kind::ShutdownFlags, Value::Int(f)) => SHUTDOWN_FLAGS
            .iter()
            .filter(|(_, bit)| f & i128::from(*bit) != 0)
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(" "),
        (_, Value::Int(i)) => i.to_string(),
        (Kind::Enum(names), Value::Enum(i)) => names[*i].to_string(),
        (_, Value::Str(s)) => s.as_deref().map(lossy).unwrap_or_default(),
        (_, Value::Path(p)) => p.to_string_lossy().into_owned(),
        (_, Value::List(l)) => l.join(" "),
        (_, Value::Save(points)) => points
            .iter()
            .map(|(s, c)| format!("{s} {c}"))
            .collect::<Vec<_>>()
            .join(" "),
        (_, Value::Obuf(limits)) => OBUF_CLASSES
            .iter()
            .zip(limits)
            .map(|(class, l)| format!("{class} {} {} {}", l.hard, l.soft, l.soft_seconds))
            .collect::<Vec<_>>()
            .join(" "),
        (_, Value::Flags(f)) => crate::pubsub::notify::flags_to_string(*f),
        (_, Value::Percentiles(p)) => format_percentiles(p),
        (_, other) => unreachable!("unexpected stored value {other:?}"),
    }
}

/// Percentiles as CONFIG GET and CONFIG REWRITE write them: Redis's `%f` without trailing
/// zeros, separated by spaces.
fn format_percentiles(bits: &[u64]) -> String {
    bits.iter()
        .map(|&b| crate::shard::latency::format_percentile(f64::from_bits(b)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Redis's `rewriteConfigFormatMemory`: the largest exact binary unit.
fn format_memory(bytes: i128) -> String {
    const GB: i128 = 1024 * 1024 * 1024;
    const KB: i128 = 1024;
    if bytes != 0 && bytes % GB == 0 {
        format!("{}gb", bytes / GB)
    } else if bytes != 0 && bytes % MB == 0 {
        format!("{}mb", bytes / MB)
    } else if bytes != 0 && bytes % KB == 0 {
        format!("{}kb", bytes / KB)
    } else {
        bytes.to_string()
    }
}

/// Redis's `sdscatrepr`: a double-quoted string that `sdssplitargs` reads
/// back to the same bytes.
fn repr(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &c in bytes {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(c as char),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('"');
    out
}

/// One line CONFIG REWRITE wants for a directive.
struct RewriteLine {
    text: String,
    /// Write it even if the file did not mention the directive.
    force: bool,
    /// Only reuse an old line with the same key (see [`line_key`]).
    key: Option<usize>,
}

/// The lines CONFIG REWRITE should have for a directive. An empty list means
/// "the directive must not appear": its old lines are blanked. Mirrors the
/// per-type rewrite functions of Redis's config.c.
fn rewrite_lines(d: &Directive, value: &Value) -> Vec<RewriteLine> {
    let unkeyed = |lines: Vec<(String, bool)>| {
        lines
            .into_iter()
            .map(|(text, force)| RewriteLine {
                text,
                force,
                key: None,
            })
            .collect()
    };
    let default = d.default_value();
    if let (Value::Obuf(limits), Value::Obuf(defaults)) = (value, &default) {
        // One line per class; the file spells the replica class "replica".
        return ["normal", "replica", "pubsub"]
            .iter()
            .zip(limits.iter().zip(defaults.iter()))
            .enumerate()
            .map(|(class, (name, (l, def)))| RewriteLine {
                text: format!(
                    "{} {name} {} {} {}",
                    d.name,
                    format_memory(i128::from(l.hard)),
                    format_memory(i128::from(l.soft)),
                    l.soft_seconds
                ),
                force: l != def,
                key: Some(class),
            })
            .collect();
    }
    unkeyed(rewrite_unkeyed(d, value, &default))
}

/// Which old line a new line may replace. Redis reuses a directive's old
/// lines strictly in file order, so a file holding only
/// "client-output-buffer-limit pubsub ..." got that line overwritten with the
/// (default) normal-class line and the pubsub line re-appended at the end,
/// on every rewrite. Keying buffer-limit lines by client class makes
/// CONFIG REWRITE idempotent; an intentional difference.
fn line_key(kind: &Kind, argv: &[Vec<u8>]) -> Option<usize> {
    match kind {
        Kind::Obuf => argv.get(1).and_then(|class| obuf_class(class)),
        _ => None,
    }
}

fn rewrite_unkeyed(d: &Directive, value: &Value, default: &Value) -> Vec<(String, bool)> {
    let force = value != default;
    let name = d.name;
    match (&d.kind, value) {
        (_, Value::Bool(b)) => vec![(format!("{name} {}", yes_no_str(*b)), force)],
        (Kind::Mem { .. }, Value::Int(i)) => vec![(format!("{name} {}", format_memory(*i)), force)],
        (Kind::MemPercent { .. }, Value::Int(i)) if *i < 0 => {
            vec![(format!("{name} {}%", -i), force)]
        }
        (Kind::MemPercent { .. }, Value::Int(i)) => {
            vec![(format!("{name} {}", format_memory(*i)), force)]
        }
        // Written as CONFIG GET shows them: octal, or the flags' words.
        (Kind::Octal { .. } | Kind::ShutdownFlags, Value::Int(_)) => {
            vec![(format!("{name} {}", format_value(&d.kind, value)), force)]
        }
        (_, Value::Int(i)) => vec![(format!("{name} {i}"), force)],
        (Kind::Enum(names), Value::Enum(i)) => vec![(format!("{name} {}", names[*i]), force)],
        (_, Value::Str(None)) => Vec::new(),
        (_, Value::Str(Some(s))) => vec![(format!("{name} {}", repr(s)), force)],
        // Redis always writes dir (as an absolute path).
        (_, Value::Path(p)) => vec![(format!("{name} {}", repr(p.as_os_str().as_bytes())), true)],
        (_, Value::List(l)) if l.is_empty() => vec![(format!("{name} \"\""), force)],
        (_, Value::List(l)) => vec![(format!("{name} {}", l.join(" ")), force)],
        // Redis always writes save, so an empty list survives a restart
        // instead of silently turning back into the default.
        (_, Value::Save(points)) if points.is_empty() => vec![(format!("{name} \"\""), true)],
        (_, Value::Save(points)) => points
            .iter()
            .map(|(s, c)| (format!("{name} {s} {c}"), true))
            .collect(),
        (_, Value::Flags(f)) => vec![(
            format!(
                "{name} {}",
                repr(crate::pubsub::notify::flags_to_string(*f).as_bytes())
            ),
            *f != 0,
        )],
        // Redis always writes the percentiles, the defaults too, and `""` for none.
        (_, Value::Percentiles(p)) if p.is_empty() => vec![(format!("{name} \"\""), true)],
        (_, Value::Percentiles(p)) => vec![(format!("{name} {}", format_percentiles(p)), true)],
        (_, other) => unreachable!("unexpected stored value {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------

fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Redis's `sdssplitargs`: split a config line into arguments. Handles
/// "double quotes" with \n \r \t \b \a \xHH and \<any> escapes, 'single
/// quotes' with only \' as escape, and quotes starting mid-token. A closing
/// quote must be followed by whitespace or the end of the line. Returns None
/// on unbalanced quotes.
pub(crate) fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut out = Vec::new();
    let mut p = 0;
    loop {
        while p < line.len() && is_c_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Some(out);
        }
        let mut current = Vec::new();
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            let c = at(p);
            if in_dq {
                if c == b'\\' && at(p + 1) == b'x' {
                    if let (Some(hi), Some(lo)) = (hex_value(at(p + 2)), hex_value(at(p + 3))) {
                        current.push(hi * 16 + lo);
                        p += 4;
                        continue;
                    }
                }
                if c == b'\\' && p + 1 < line.len() {
                    p += 1;
                    current.push(match line[p] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if p + 1 < line.len() && !is_c_space(line[p + 1]) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if p >= line.len() {
                    return None;
                } else {
                    current.push(c);
                }
            } else if in_sq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    if p + 1 < line.len() && !is_c_space(line[p + 1]) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if p >= line.len() {
                    return None;
                } else {
                    current.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        p += 1;
                        break;
                    }
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    _ => current.push(c),
                }
            }
            p += 1;
        }
        out.push(current);
    }
}

// ---------------------------------------------------------------------------
// Glob matching
// ---------------------------------------------------------------------------

/// Redis-style glob match (`stringmatchlen` semantics), exposed because
/// KEYS/SCAN MATCH/PSUBSCRIBE reuse it.
///
/// `*` any run, `?` any byte, `[abc]` `[^abc]` `[a-z]` classes (a reversed
/// range like `[z-a]` works; a class missing its `]` extends to the end of
/// the pattern), `\x` matches `x` literally both outside and inside classes.
/// Byte-wise and binary-safe; `nocase` folds ASCII letters only. As in Redis,
/// an empty string matches only an empty pattern (`*` does not match ""), so
/// KEYS/SCAN should treat a lone `*` as "everything" before calling this.
/// Range bounds
/// compare as C `char`, which is signed on the platforms Redis ships for, so
/// that classes with bytes >= 0x80 behave the same as in Redis.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    glob_impl(pattern, string, nocase, &mut skip_longer, 0)
}

fn fold(c: i32, nocase: bool) -> i32 {
    if nocase && (i32::from(b'A')..=i32::from(b'Z')).contains(&c) {
        c + 32
    } else {
        c
    }
}

fn same_byte(a: u8, b: u8, nocase: bool) -> bool {
    a == b || (nocase && a.eq_ignore_ascii_case(&b))
}

fn glob_impl(
    mut p: &[u8],
    mut s: &[u8],
    nocase: bool,
    skip_longer: &mut bool,
    nesting: u32,
) -> bool {
    // Same protection against pathological patterns as Redis (CVE-2022-36021).
    if nesting > 1000 {
        return false;
    }
    while !p.is_empty() && !s.is_empty() {
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                while !s.is_empty() {
                    if glob_impl(&p[1..], s, nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    // The rest of the pattern matched nowhere in a suffix,
                    // so trying longer runs for earlier stars is pointless.
                    if *skip_longer {
                        return false;
                    }
                    s = &s[1..];
                }
                *skip_longer = true;
                return false;
            }
            b'?' => s = &s[1..],
            b'[' => {
                p = &p[1..];
                let negate = p.first() == Some(&b'^');
                if negate {
                    p = &p[1..];
                }
                let mut matched = false;
                loop {
                    if p.first() == Some(&b'\\') && p.len() >= 2 {
                        p = &p[1..];
                        if p[0] == s[0] {
                            matched = true;
                        }
                    } else if p.first() == Some(&b']') {
                        break;
                    } else if p.is_empty() {
                        // Unterminated class: Redis treats the end of the
                        // pattern as the closing bracket.
                        break;
                    } else if p.len() >= 3 && p[1] == b'-' {
                        let (mut start, mut end) = (i32::from(p[0] as i8), i32::from(p[2] as i8));
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        let c = fold(i32::from(s[0] as i8), nocase);
                        let (start, end) = (fold(start, nocase), fold(end, nocase));
                        p = &p[2..];
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if same_byte(p[0], s[0], nocase) {
                        matched = true;
                    }
                    p = &p[1..];
                }
                if negate {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s = &s[1..];
            }
            c => {
                let c = if c == b'\\' && p.len() >= 2 {
                    p = &p[1..];
                    p[0]
                } else {
                    c
                };
                if !same_byte(c, s[0], nocase) {
                    return false;
                }
                s = &s[1..];
            }
        }
        if !p.is_empty() {
            p = &p[1..];
        }
        if s.is_empty() {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

// ---------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------

/// Lexically normalize an absolute path ("." and ".." removed). No symlink
/// resolution: that would be I/O, and Redis's getcwd() after chdir differs
/// from this only when symlinks are involved.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn cwd() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"))
}

/// Resolve a `dir` value against the previous one, like successive chdir()s.
fn resolve_dir(previous: &Path, new: &Path) -> PathBuf {
    if new.is_absolute() {
        normalize(new)
    } else if previous.as_os_str().is_empty() {
        normalize(&cwd().join(new))
    } else {
        normalize(&previous.join(new))
    }
}

// ---------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------

impl Default for Config {
    /// Every directive at its table default; `dir` is the current directory.
    fn default() -> Config {
        let mut config = Config {
            port: 0,
            bind: Vec::new(),
            protected_mode: false,
            shard_pinning: false,
            shard_spin_us: 0,
            shard_sched_batch: false,
            dir: PathBuf::new(),
            databases: 0,
            requirepass: None,
            loglevel: LogLevel::Notice,
            logfile: String::new(),
            syslog_enabled: false,
            syslog_ident: String::new(),
            syslog_facility: 1,
            daemonize: false,
            maxclients: 0,
            timeout: 0,
            tcp_backlog: 0,
            tcp_keepalive: 0,
            hz: 0,
            proto_max_bulk_len: 0,
            client_query_buffer_limit: 0,
            slowlog_log_slower_than: 0,
            slowlog_max_len: 0,
            latency_monitor_threshold: 0,
            tracking_table_max_keys: 0,
            latency_tracking: false,
            latency_tracking_info_percentiles: Vec::new(),
            busy_reply_threshold: 0,
            enable_debug_command: DebugCommandPolicy::No,
            enable_module_command: DebugCommandPolicy::No,
            shards: 0,
            io_memory: 0,
            ring_depth: 0,
            maxmemory: 0,
            maxmemory_clients: 0,
            oom_score_adj: OomScoreAdj::No,
            oom_score_adj_values: [0, 200, 800],
            maxmemory_policy: MaxmemoryPolicy::NoEviction,
            maxmemory_samples: 0,
            maxmemory_eviction_tenacity: 0,
            lfu_log_factor: 0,
            lfu_decay_time: 0,
            lazyfree_lazy_eviction: false,
            rdbcompression: true,
            rdbchecksum: true,
            lazyfree_lazy_expire: false,
            lazyfree_lazy_server_del: false,
            lazyfree_lazy_user_del: false,
            lazyfree_lazy_user_flush: false,
            active_expire_effort: 0,
            hash_max_listpack_entries: 0,
            hash_max_listpack_value: 0,
            list_max_listpack_size: 0,
            set_max_intset_entries: 0,
            set_max_listpack_entries: 0,
            set_max_listpack_value: 0,
            zset_max_listpack_entries: 0,
            zset_max_listpack_value: 0,
            hll_sparse_max_bytes: 0,
            stream_node_max_bytes: 0,
            stream_node_max_entries: 0,
            notify_keyspace_events: 0,
            config_file: None,
            users: Vec::new(),
            extra: BTreeMap::new(),
        };
        // The placeholders above are all overwritten from the table here.
        for d in DIRECTIVES {
            config.store(d, d.default_value());
        }
        config
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("port", &self.port)
            .field("bind", &self.bind)
            .field("protected_mode", &self.protected_mode)
            .field("dir", &self.dir)
            .field("databases", &self.databases)
            .field(
                "requirepass",
                &self.requirepass.as_ref().map(|_| "<redacted>"),
            )
            .field("loglevel", &self.loglevel)
            .field("logfile", &self.logfile)
            .field("daemonize", &self.daemonize)
            .field("maxclients", &self.maxclients)
            .field("timeout", &self.timeout)
            .field("tcp_backlog", &self.tcp_backlog)
            .field("tcp_keepalive", &self.tcp_keepalive)
            .field("hz", &self.hz)
            .field("proto_max_bulk_len", &self.proto_max_bulk_len)
            .field("client_query_buffer_limit", &self.client_query_buffer_limit)
            .field("slowlog_log_slower_than", &self.slowlog_log_slower_than)
            .field("slowlog_max_len", &self.slowlog_max_len)
            .field("latency_monitor_threshold", &self.latency_monitor_threshold)
            .field("tracking_table_max_keys", &self.tracking_table_max_keys)
            .field("latency_tracking", &self.latency_tracking)
            .field(
                "latency_tracking_info_percentiles",
                &self.latency_tracking_info_percentiles,
            )
            .field("busy_reply_threshold", &self.busy_reply_threshold)
            .field("enable_debug_command", &self.enable_debug_command)
            .field("enable_module_command", &self.enable_module_command)
            .field("shards", &self.shards)
            .field("io_memory", &self.io_memory)
            .field("ring_depth", &self.ring_depth)
            .field("maxmemory", &self.maxmemory)
            .field("maxmemory_policy", &self.maxmemory_policy)
            .field("maxmemory_samples", &self.maxmemory_samples)
            .field(
                "maxmemory_eviction_tenacity",
                &self.maxmemory_eviction_tenacity,
            )
            .field("lfu_log_factor", &self.lfu_log_factor)
            .field("lfu_decay_time", &self.lfu_decay_time)
            .field("active_expire_effort", &self.active_expire_effort)
            .field("hash_max_listpack_entries", &self.hash_max_listpack_entries)
            .field("hash_max_listpack_value", &self.hash_max_listpack_value)
            .field("list_max_listpack_size", &self.list_max_listpack_size)
            .field("set_max_intset_entries", &self.set_max_intset_entries)
            .field("zset_max_listpack_entries", &self.zset_max_listpack_entries)
            .field("config_file", &self.config_file)
            .field("extra", &self.extra)
            .finish()
    }
}

impl Config {
    /// The `client-output-buffer-limit` of a client class (`OBUF_PUBSUB`, ...).
    pub fn output_limit(&self, class: usize) -> ObufLimit {
        let (i, _) = lookup(b"client-output-buffer-limit").expect("directive exists");
        match self.fetch(&DIRECTIVES[i]) {
            Value::Obuf(limits) => limits[class.min(2)],
            _ => ObufLimit::default(),
        }
    }

    /// `aclfile`: the ACL file's path, None when unset (ACL LOAD / SAVE then refuse).
    /// `unixsocket` and `unixsocketperm`: the path to listen on, as configured (a relative path
    /// is relative to `dir`, see `UnixSocket::open`), and the mode to give the socket file (0:
    /// as the umask makes it).
    pub fn unixsocket(&self) -> Option<(PathBuf, u32)> {
        let (i, _) = lookup(b"unixsocket").expect("directive exists");
        let path = match self.fetch(&DIRECTIVES[i]) {
            Value::Str(Some(p)) if !p.is_empty() => PathBuf::from(OsString::from_vec(p)),
            _ => return None,
        };
        let (j, _) = lookup(b"unixsocketperm").expect("directive exists");
        let perm = match self.fetch(&DIRECTIVES[j]) {
            Value::Int(m) => m as u32,
            _ => 0,
        };
        Some((path, perm))
    }

    /// `pidfile`, if set (a relative path is relative to `dir`).
    pub fn pidfile(&self) -> Option<PathBuf> {
        let (i, _) = lookup(b"pidfile").expect("directive exists");
        match self.fetch(&DIRECTIVES[i]) {
            // Relative to `dir`, as for Redis, which has moved there.
            Value::Str(Some(p)) if !p.is_empty() => Some(self.dir.join(OsString::from_vec(p))),
            _ => None,
        }
    }

    /// `supervised`: one of [`SUPERVISED_NAMES`].
    pub fn supervised(&self) -> &'static str {
        let (i, _) = lookup(b"supervised").expect("directive exists");
        match self.fetch(&DIRECTIVES[i]) {
            Value::Enum(e) => SUPERVISED_NAMES[e],
            _ => "no",
        }
    }

    /// The SHUTDOWN flags (see [`SHUTDOWN_FLAGS`]) that SIGINT (`sigint` true) or SIGTERM
    /// implies.
    pub fn shutdown_on_signal(&self, sigint: bool) -> u32 {
        let name: &[u8] = if sigint {
            b"shutdown-on-sigint"
        } else {
            b"shutdown-on-sigterm"
        };
        let (i, _) = lookup(name).expect("directive exists");
        match self.fetch(&DIRECTIVES[i]) {
            Value::Int(f) => f as u32,
            _ => 0,
        }
    }

    pub fn aclfile(&self) -> Option<String> {
        let (i, _) = lookup(b"aclfile").expect("directive exists");
        match self.fetch(&DIRECTIVES[i]) {
            Value::Str(Some(p)) if !p.is_empty() => Some(String::from_utf8_lossy(&p).into_owned()),
            _ => None,
        }
    }

    /// `acl-pubsub-default allchannels`: new users and selectors may use every channel.
    pub fn acl_pubsub_allchannels(&self) -> bool {
        let (i, _) = lookup(b"acl-pubsub-default").expect("directive exists");
        matches!(self.fetch(&DIRECTIVES[i]), Value::Enum(0))
    }

    /// `acllog-max-len`: how many entries the ACL log keeps.
    pub fn acllog_max_len(&self) -> usize {
        let (i, _) = lookup(b"acllog-max-len").expect("directive exists");
        match self.fetch(&DIRECTIVES[i]) {
            Value::Int(n) => n.clamp(0, usize::MAX as i128) as usize,
            _ => 128,
        }
    }

    fn fetch(&self, d: &Directive) -> Value {
        match d.field {
            Field::Typed(get, _) => get(self),
            Field::Extra => self
                .extra
                .get(d.name)
                .cloned()
                .unwrap_or_else(|| d.default_value()),
        }
    }

    fn store(&mut self, d: &Directive, value: Value) {
        match d.field {
            Field::Typed(_, set) => set(self, value),
            Field::Extra => {
                self.extra.insert(d.name, value);
            }
        }
    }

    /// Parse `args` for directive `d` and store the result.
    fn apply(&mut self, d: &Directive, args: &[&[u8]], append_save: bool) -> Result<(), String> {
        let parsed = parse_value(&d.kind, args)?;
        let current = match parsed {
            Value::ObufUpdate(_) | Value::Save(_) => Some(self.fetch(d)),
            _ => None,
        };
        let value = finish_value(parsed, current, append_save);
        self.store(d, value);
        if d.name == "proc-title-template" {
            crate::server::proc_title::validate(self)?;
        }
        Ok(())
    }

    /// CONFIG GET with glob patterns (case-insensitive). Returns (name,
    /// value) pairs in table order, canonical name before aliases.
    ///
    /// Like Redis 7.0: a pattern without `*`, `?` or `[` is an exact,
    /// case-insensitive lookup and is reported with the spelling the client
    /// used ("PORT" -> "PORT"); a glob is matched against canonical names and
    /// aliases separately, so `*` lists both `busy-reply-threshold` and
    /// `lua-time-limit`. A name is reported at most once (compared
    /// case-insensitively) however many patterns match it.
    /// One directive's value as CONFIG GET shows it ("" for an unknown name): for the
    /// directives kept untyped (`Field::Extra`), read by the modules that implement them.
    pub fn value(&self, name: &str) -> String {
        lookup(name.as_bytes())
            .map(|(i, _)| {
                let d = &DIRECTIVES[i];
                format_value(&d.kind, &self.fetch(d))
            })
            .unwrap_or_default()
    }

    pub fn get(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let mut hits: Vec<(usize, usize, String)> = Vec::new();
        let seen = |hits: &[(usize, usize, String)], name: &str| {
            hits.iter().any(|(_, _, n)| n.eq_ignore_ascii_case(name))
        };
        for pattern in patterns {
            if !pattern.iter().any(|c| matches!(c, b'*' | b'?' | b'[')) {
                let Ok(name) = std::str::from_utf8(pattern) else {
                    continue;
                };
                if seen(&hits, name) {
                    continue;
                }
                if let Some((i, ni)) = lookup(pattern) {
                    hits.push((i, ni, name.to_string()));
                }
                continue;
            }
            for (i, d) in DIRECTIVES.iter().enumerate() {
                for (ni, name) in d.names().enumerate() {
                    if !seen(&hits, name) && glob_match(pattern, name.as_bytes(), true) {
                        hits.push((i, ni, name.to_string()));
                    }
                }
            }
        }
        hits.sort_by_key(|(i, ni, _)| (*i, *ni));
        hits.into_iter()
            .map(|(i, _, name)| {
                let d = &DIRECTIVES[i];
                (name, format_value(&d.kind, &self.fetch(d)))
            })
            .collect()
    }

    /// CONFIG SET name value [name value ...], all or nothing.
    ///
    /// The caller checks the argument count (Redis replies "ERR wrong number
    /// of arguments for 'config|set' command" for none and "ERR syntax error"
    /// for an odd count). Checks run in Redis's order: first every name is
    /// resolved (unknown, immutable, protected, duplicate; the first problem
    /// wins), then values are parsed and applied in order to a copy, which
    /// replaces `self` only if all succeeded. Multi-argument directives
    /// (`save`, `bind`, `client-output-buffer-limit`) have their value split
    /// on single spaces, as Redis does.
    ///
    /// Returns the canonical names of the directives whose value actually
    /// changed, in request order; the caller applies them to the running
    /// server. Errors are complete RESP error strings ("ERR ...").
    pub fn set(&mut self, pairs: &[(&[u8], &[u8])]) -> Result<Vec<&'static str>, String> {
        let mut resolved: Vec<(&'static Directive, usize, &[u8])> = Vec::new();
        for (name, value) in pairs {
            let given = lossy(name);
            let Some((i, ni)) = lookup(name) else {
                return Err(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{given}'"
                ));
            };
            let d = &DIRECTIVES[i];
            match d.mutability {
                Mutable => {}
                Immutable => return Err(set_failed(&given, "can't set immutable config")),
                Protected => return Err(set_failed(&given, "can't set protected config")),
            }
            if resolved.iter().any(|(other, _, _)| std::ptr::eq(*other, d)) {
                return Err(set_failed(&given, "duplicate parameter"));
            }
            resolved.push((d, ni, value));
        }

        let mut next = self.clone();
        for (d, ni, value) in &resolved {
            let args: Vec<&[u8]> = if !d.kind.multi() {
                vec![value]
            } else if value.is_empty() {
                Vec::new()
            } else {
                value.split(|c| *c == b' ').collect()
            };
            next.apply(d, &args, false)
                .map_err(|why| set_failed(d.name_at(*ni), &why))?;
        }
        let changed = resolved
            .iter()
            .filter(|(d, _, _)| self.fetch(d) != next.fetch(d))
            .map(|(d, _, _)| d.name)
            .collect();
        *self = next;
        Ok(changed)
    }

    /// CONFIG REWRITE: rewrite the config file the server was started with,
    /// the way Redis does (see `Config::rewrite_content`), replacing it
    /// atomically (temporary file, fsync, rename, fsync of the directory).
    /// `users`: the ACL users' lines to write (`user <name> <rules>`), or None when an ACL
    /// file holds the users (the file's `user` lines are then dropped), as in Redis.
    pub fn rewrite(&self, users: Option<&[Vec<u8>]>) -> Result<(), String> {
        self.rewrite_file(false, users).map_err(|e| match e {
            RewriteError::NoFile => "ERR The server is running without a config file".to_string(),
            RewriteError::Io(e) => format!("ERR Rewriting config file: {}", strerror(&e)),
        })
    }

    /// DEBUG CONFIG-REWRITE-FORCE-ALL: like CONFIG REWRITE, but every directive is written,
    /// those at their default value too (except the ones without a value, as in Redis). Errors
    /// as Redis words them: without a config file, Redis's attempt to open none fails with
    /// EFAULT ("Bad address").
    pub fn rewrite_force_all(&self, users: Option<&[Vec<u8>]>) -> Result<(), String> {
        self.rewrite_file(true, users).map_err(|e| {
            let why = match e {
                RewriteError::NoFile => "Bad address".to_string(),
                RewriteError::Io(e) => strerror(&e),
            };
            format!("ERR CONFIG-REWRITE-FORCE-ALL failed: {why}")
        })
    }

    fn rewrite_file(&self, force_all: bool, users: Option<&[Vec<u8>]>) -> Result<(), RewriteError> {
        let Some(path) = &self.config_file else {
            return Err(RewriteError::NoFile);
        };
        let old = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(RewriteError::Io(e)),
        };
        write_atomically(path, &self.rewrite_content(&old, force_all, users))
            .map_err(RewriteError::Io)
    }

    /// The new config file content for CONFIG REWRITE given the old content.
    ///
    /// Follows Redis 7.0: lines are trimmed; comments and blank lines are
    /// kept; each directive reuses the lines where the file already set it
    /// (aliases are rewritten under the canonical name) and its extra old
    /// lines are blanked; directives not in the file are appended, after a
    /// "# Generated by CONFIG REWRITE" line, only when not at their default
    /// (`save` and `dir` are always written); lines with unknown directives
    /// are kept as "# ??? <line>"; runs of blank lines collapse into one. With `force_all`
    /// (DEBUG CONFIG-REWRITE-FORCE-ALL) directives at their default are appended too. The
    /// ACL users come last, each in the place of an old `user` line while there are some
    /// (`users` None: an ACL file holds them, and old `user` lines go).
    fn rewrite_content(&self, old: &[u8], force_all: bool, users: Option<&[Vec<u8>]>) -> Vec<u8> {
        const SIGNATURE: &[u8] = b"# Generated by CONFIG REWRITE";
        // Config-file-only directives Redis leaves alone; Tessera rejects
        // them at load, but a hand-edited file should not be damaged.
        const KEEP: &[&str] = &["include", "rename-command", "loadmodule", "sentinel"];

        let mut lines: Vec<Vec<u8>> = Vec::new();
        // directive index -> (line number, key) of its lines, in file order
        let mut option_lines: HashMap<usize, VecDeque<(usize, Option<usize>)>> = HashMap::new();
        let mut user_lines: VecDeque<usize> = VecDeque::new();
        let mut needs_signature = true;
        if !old.is_empty() {
            for raw in old.split(|c| *c == b'\n') {
                let line = trim(raw, b" \t\r\n");
                if line.is_empty() || line[0] == b'#' {
                    if line == SIGNATURE {
                        needs_signature = false;
                    }
                    lines.push(line.to_vec());
                    continue;
                }
                let args = split_args(line);
                let first = args.as_ref().and_then(|a| a.first());
                match first.and_then(|name| lookup(name)) {
                    Some((i, _)) => {
                        let key = line_key(&DIRECTIVES[i].kind, args.as_deref().unwrap_or(&[]));
                        option_lines
                            .entry(i)
                            .or_default()
                            .push_back((lines.len(), key));
                        lines.push(line.to_vec());
                    }
                    None if first.is_some_and(|n| n.eq_ignore_ascii_case(b"user")) => {
                        user_lines.push_back(lines.len());
                        lines.push(line.to_vec());
                    }
                    None if first.is_some_and(|n| {
                        KEEP.iter().any(|k| k.as_bytes().eq_ignore_ascii_case(n))
                    }) =>
                    {
                        lines.push(line.to_vec());
                    }
                    None => {
                        let mut commented = b"# ??? ".to_vec();
                        commented.extend_from_slice(line);
                        lines.push(commented);
                    }
                }
            }
        }

        for (i, d) in DIRECTIVES.iter().enumerate() {
            let mut reusable = option_lines.remove(&i).unwrap_or_default();
            for line in rewrite_lines(d, &self.fetch(d)) {
                let reuse = match line.key {
                    None => reusable.pop_front(),
                    Some(key) => reusable
                        .iter()
                        .position(|(_, k)| *k == Some(key))
                        .and_then(|at| reusable.remove(at)),
                };
                if let Some((n, _)) = reuse {
                    lines[n] = line.text.into_bytes();
                } else if line.force || force_all {
                    if needs_signature {
                        lines.push(SIGNATURE.to_vec());
                        needs_signature = false;
                    }
                    lines.push(line.text.into_bytes());
                }
            }
            // Old lines this directive no longer needs (e.g. extra `save`s).
            for (n, _) in reusable {
                lines[n].clear();
            }
        }
        for user in users.unwrap_or_default() {
            if let Some(n) = user_lines.pop_front() {
                lines[n] = user.clone();
            } else {
                if needs_signature {
                    lines.push(SIGNATURE.to_vec());
                    needs_signature = false;
                }
                lines.push(user.clone());
            }
        }
        for n in user_lines {
            lines[n].clear();
        }

        let mut out = Vec::new();
        let mut previous_blank = false;
        for line in &lines {
            if line.is_empty() {
                if previous_blank {
                    continue;
                }
                previous_blank = true;
            } else {
                previous_blank = false;
            }
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out
    }
}

/// Why a config file could not be rewritten.
enum RewriteError {
    NoFile,
    Io(std::io::Error),
}

fn trim<'a>(s: &'a [u8], set: &[u8]) -> &'a [u8] {
    let start = s.iter().position(|c| !set.contains(c)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|c| !set.contains(c))
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

/// The C strerror() text of an I/O error (Rust appends " (os error N)").
pub(crate) fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        file.write_all(content)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(parent)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

/// Why a single directive could not be applied.
enum LineError {
    Unknown,
    Invalid(String),
}

/// State of one configuration load (file, then flags).
struct Loader {
    config: Config,
    /// Redis resets the default save points at the first `save` of a load
    /// and appends every later one, so several `save` lines (and `--save`
    /// flags after the file) accumulate.
    save_seen: bool,
    warnings: Vec<String>,
}

impl Loader {
    fn apply(&mut self, argv: &[Vec<u8>]) -> Result<(), LineError> {
        let name = &argv[0];
        if name.eq_ignore_ascii_case(b"user") && argv.len() >= 2 {
            return self.add_user(argv).map_err(LineError::Invalid);
        }
        let args: Vec<&[u8]> = argv[1..].iter().map(Vec::as_slice).collect();
        if let Some((i, _)) = lookup(name) {
            let d = &DIRECTIVES[i];
            // Redis 7.0 reads a multi-argument directive's single non-empty argument as a line
            // of arguments (`latency-tracking-info-percentiles "50 99"`; unbalanced quotes give
            // none). Done here for the percentiles only; the other multi-argument directives
            // keep their own rules.
            let split;
            let args =
                if matches!(d.kind, Kind::Percentiles) && args.len() == 1 && !args[0].is_empty() {
                    split = split_args(args[0]).unwrap_or_default();
                    split.iter().map(Vec::as_slice).collect()
                } else {
                    args
                };
            let append = matches!(d.kind, Kind::Save) && self.save_seen;
            self.config
                .apply(d, &args, append)
                .map_err(LineError::Invalid)?;
            if matches!(d.kind, Kind::Save) {
                self.save_seen = true;
            }
            return Ok(());
        }
        if DEPRECATED
            .iter()
            .any(|(n, argc)| n.as_bytes().eq_ignore_ascii_case(name) && *argc == argv.len())
        {
            self.warnings.push(format!(
                "directive '{}' is deprecated and ignored",
                lossy(name).to_ascii_lowercase()
            ));
            return Ok(());
        }
        Err(LineError::Unknown)
    }

    /// A `user` line, checked as Redis's `ACLAppendUserForLoading` checks it: one line per
    /// user, rules that parse (unknown command or category names wait for startup, where
    /// they stop it, as in Redis).
    fn add_user(&mut self, argv: &[Vec<u8>]) -> Result<(), String> {
        use crate::server::acl_rules::{merge_selectors, RuleError, User};
        let declaration_error =
            |at: &[u8], why: &str| format!("Error in user declaration '{}': {why}", lossy(at));
        if self.config.users.iter().any(|u| u[0] == argv[1]) {
            return Err(declaration_error(
                &argv[1],
                "Duplicate user found. A user can only be defined once in config files",
            ));
        }
        let rules = merge_selectors(&argv[2..]).map_err(|j| {
            declaration_error(&argv[j + 2], "Unmatched parenthesis in acl selector")
        })?;
        let allchannels = self.config.acl_pubsub_allchannels();
        let mut probe = User::new(&argv[1], allchannels);
        for (j, rule) in rules.iter().enumerate() {
            match probe.apply(rule, allchannels) {
                Ok(()) | Err(RuleError::UnknownName) => {}
                // Redis names the argument at the rule's index counted from the line's start.
                Err(e) => return Err(declaration_error(&argv[j.min(argv.len() - 1)], e.message())),
            }
        }
        let mut line = vec![argv[1].clone()];
        line.extend(rules);
        self.config.users.push(line);
        Ok(())
    }

    /// "(name 'args')" or "('name')" context for error messages.
    fn context(argv: &[Vec<u8>], unknown: bool) -> String {
        let name = lossy(&argv[0]).to_ascii_lowercase();
        if unknown || argv.len() == 1 {
            format!("('{name}')")
        } else {
            let args: Vec<String> = argv[1..].iter().map(|a| lossy(a)).collect();
            format!("({name} '{}')", args.join(" "))
        }
    }

    fn load_file(&mut self, display: &str, content: &[u8]) -> Result<(), String> {
        for (n, raw) in content.split(|c| *c == b'\n').enumerate() {
            let line = trim(raw, b" \t\r\n");
            if line.is_empty() || line[0] == b'#' {
                continue;
            }
            let at = |why: &str, ctx: String| format!("{display}:{}: {why} {ctx}", n + 1);
            let Some(argv) = split_args(line) else {
                return Err(at(
                    "Unbalanced quotes in configuration line",
                    format!("('{}')", lossy(line)),
                ));
            };
            if argv.is_empty() {
                continue;
            }
            match self.apply(&argv) {
                Ok(()) => {}
                Err(LineError::Unknown) => {
                    return Err(at(ERR_BAD_DIRECTIVE, Self::context(&argv, true)))
                }
                Err(LineError::Invalid(why)) => return Err(at(&why, Self::context(&argv, false))),
            }
        }
        Ok(())
    }

    /// `--name value [value ...]` flags, as redis-server's main() turns them
    /// into config lines: a flag's first value is taken even if it starts
    /// with "--"; further values run until the next token starting with
    /// "--". `--save` with no value means `save ""`. A flag token may carry
    /// its values itself ("--port 7000" as one argument).
    fn load_flags(&mut self, flags: &[String]) -> Result<(), String> {
        let mut i = 0;
        while i < flags.len() {
            let token = &flags[i];
            let Some(spec) = token.strip_prefix("--") else {
                return Err(format!(
                    "unexpected argument '{token}': options must look like --name value"
                ));
            };
            i += 1;
            let mut argv = split_args(spec.as_bytes())
                .filter(|a| !a.is_empty())
                .ok_or_else(|| format!("{token}: Bad directive or wrong number of arguments"))?;
            if argv.len() == 1 {
                let next_is_flag = flags.get(i).is_none_or(|t| t.starts_with("--"));
                if next_is_flag && argv[0].eq_ignore_ascii_case(b"save") {
                    argv.push(Vec::new());
                } else if let Some(first) = flags.get(i) {
                    argv.push(first.as_bytes().to_vec());
                    i += 1;
                }
            }
            while let Some(value) = flags.get(i).filter(|t| !t.starts_with("--")) {
                argv.push(value.as_bytes().to_vec());
                i += 1;
            }
            // A single value for a multi-argument directive is split on
            // spaces, so `--save "900 1 300 10"` works like CONFIG SET.
            if argv.len() == 2 {
                if let Some((d, _)) = lookup(&argv[0]) {
                    let kind = &DIRECTIVES[d].kind;
                    // (The percentiles are split like a config line by `apply`.)
                    if kind.multi() && !matches!(kind, Kind::Percentiles) && argv[1].contains(&b' ')
                    {
                        let value = argv.pop().unwrap_or_default();
                        argv.extend(value.split(|c| *c == b' ').map(<[u8]>::to_vec));
                    }
                }
            }
            let flag = lossy(&argv[0]);
            match self.apply(&argv) {
                Ok(()) => {}
                Err(LineError::Unknown) => {
                    return Err(format!(
                        "--{flag}: {ERR_BAD_DIRECTIVE} {}",
                        Self::context(&argv, true)
                    ))
                }
                Err(LineError::Invalid(why)) => {
                    return Err(format!("--{flag}: {why} {}", Self::context(&argv, false)))
                }
            }
        }
        Ok(())
    }
}

/// Build the configuration from the command line (program name excluded).
///
/// Like redis-server: if `argv[0]` does not start with "--" it is the path
/// of a config file, read first; then `--name value` flags are applied in
/// order (see `Loader::load_flags`). Reading the config from stdin ("-")
/// is not supported.
///
/// Errors name the place and the reason, e.g.
/// `tessera.conf:12: Bad directive or wrong number of arguments ('foo')`,
/// `tessera.conf:3: argument couldn't be parsed into an integer (port 'abc')`
/// or `--port: argument couldn't be parsed into an integer (port 'abc')`.
///
/// Warnings list directives set to a non-default value that Tessera accepts
/// but does not implement, for the caller to log.
pub fn load(argv: &[String]) -> Result<LoadOutcome, String> {
    let mut loader = Loader {
        config: Config::default(),
        save_seen: false,
        warnings: Vec::new(),
    };
    let mut flags = argv;
    if let Some(first) = argv.first().filter(|a| !a.starts_with("--")) {
        if first == "-" {
            return Err("reading the configuration from stdin ('-') is not supported".to_string());
        }
        let content = std::fs::read(first).map_err(|e| {
            format!(
                "Fatal error, can't open config file '{first}': {}",
                strerror(&e)
            )
        })?;
        // Absolute now, relative to the directory we were started from, so
        // that CONFIG REWRITE finds the file whatever `dir` says.
        loader.config.config_file = Some(normalize(&cwd().join(first)));
        loader.load_file(first, &content)?;
        flags = &argv[1..];
    }
    loader.load_flags(flags)?;

    let Loader {
        config,
        mut warnings,
        ..
    } = loader;
    if config.daemonize {
        return Err("daemonize yes is not supported; use a service manager".to_string());
    }
    for d in DIRECTIVES.iter().filter(|d| !d.implemented) {
        if config.fetch(d) != d.default_value() {
            warnings.push(format!(
                "directive '{}' is accepted but not implemented yet; ignored",
                d.name
            ));
        }
    }
    Ok(LoadOutcome { config, warnings })
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A config file in a fresh temporary directory of its own (no tempfile crate); the
    /// directory and everything written into it go away when this is dropped.
    struct TempConf {
        dir: PathBuf,
        path: PathBuf,
        arg: String,
    }

    impl Drop for TempConf {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn write_conf(content: &str) -> TempConf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tessera-config-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tessera.conf");
        std::fs::write(&path, content).unwrap();
        let arg = path.to_str().unwrap().to_string();
        TempConf { dir, path, arg }
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn get1(c: &Config, name: &str) -> String {
        let r = c.get(&[name.as_bytes()]);
        assert_eq!(r.len(), 1, "{name}: {r:?}");
        r[0].1.clone()
    }

    fn set(c: &mut Config, pairs: &[(&str, &str)]) -> Result<Vec<&'static str>, String> {
        let pairs: Vec<(&[u8], &[u8])> = pairs
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        c.set(&pairs)
    }

    #[test]
    fn table_is_consistent() {
        let mut names = std::collections::HashSet::new();
        for d in DIRECTIVES {
            for n in d.names() {
                assert_eq!(n, n.to_ascii_lowercase());
                assert!(names.insert(n), "duplicate name {n}");
            }
            // Every default parses (default_value panics otherwise) and is
            // what the field holds in a default config.
            let v = d.default_value();
            if !matches!(d.kind, Kind::Dir) {
                assert_eq!(Config::default().fetch(d), v, "{}", d.name);
            }
        }
    }

    /// Values read from `redis-cli config get NAME` on a stock
    /// redis-server 7.0.15 (save was set back to its compiled default).
    #[test]
    fn defaults_format_like_redis() {
        let c = Config::default();
        let redis = [
            ("port", "6379"),
            ("protected-mode", "yes"),
            ("databases", "16"),
            ("requirepass", ""),
            ("loglevel", "notice"),
            ("logfile", ""),
            ("save", "3600 1 300 100 60 10000"),
            ("appendonly", "no"),
            ("appendfsync", "everysec"),
            ("appendfilename", "appendonly.aof"),
            ("appenddirname", "appendonlydir"),
            ("dbfilename", "dump.rdb"),
            ("maxmemory", "0"),
            ("maxmemory-policy", "noeviction"),
            ("maxmemory-samples", "5"),
            ("maxmemory-eviction-tenacity", "10"),
            ("maxclients", "10000"),
            ("timeout", "0"),
            ("tcp-keepalive", "300"),
            ("tcp-backlog", "511"),
            ("hz", "10"),
            ("proto-max-bulk-len", "536870912"),
            ("client-query-buffer-limit", "1073741824"),
            ("slowlog-log-slower-than", "10000"),
            ("slowlog-max-len", "128"),
            ("enable-debug-command", "no"),
            ("lazyfree-lazy-eviction", "no"),
            ("lazyfree-lazy-expire", "no"),
            ("lazyfree-lazy-server-del", "no"),
            ("lazyfree-lazy-user-del", "no"),
            ("lazyfree-lazy-user-flush", "no"),
            ("daemonize", "no"),
            ("pidfile", ""),
            ("activerehashing", "yes"),
            ("active-expire-effort", "1"),
            ("notify-keyspace-events", ""),
            ("latency-monitor-threshold", "0"),
            ("lua-time-limit", "5000"),
            ("busy-reply-threshold", "5000"),
            ("rdbcompression", "yes"),
            ("rdbchecksum", "yes"),
            ("stop-writes-on-bgsave-error", "yes"),
            ("aof-load-truncated", "yes"),
            ("aof-use-rdb-preamble", "yes"),
            ("auto-aof-rewrite-percentage", "100"),
            ("auto-aof-rewrite-min-size", "67108864"),
            ("hash-max-listpack-entries", "512"),
            ("hash-max-ziplist-entries", "512"),
            ("hash-max-listpack-value", "64"),
            ("list-max-listpack-size", "-2"),
            ("set-max-intset-entries", "512"),
            ("zset-max-listpack-entries", "128"),
            ("zset-max-listpack-value", "64"),
            ("lfu-log-factor", "10"),
            ("lfu-decay-time", "1"),
            (
                "client-output-buffer-limit",
                "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
            ),
        ];
        for (name, value) in redis {
            assert_eq!(get1(&c, name), value, "{name}");
        }
        // Intentional differences: Redis shows "* -::*" for bind; we listen on
        // loopback only by default. dir is the absolute current directory in
        // both. set-max-listpack-* exist only from Redis 7.2 (these are 7.2's
        // defaults).
        assert_eq!(get1(&c, "bind"), "127.0.0.1");
        assert_eq!(get1(&c, "dir"), cwd().to_string_lossy());
        assert_eq!(get1(&c, "set-max-listpack-entries"), "128");
        assert_eq!(get1(&c, "set-max-listpack-value"), "64");
        // Tessera-only.
        assert_eq!(get1(&c, "shards"), "0");
        assert_eq!(get1(&c, "io-memory"), "262144");
        assert_eq!(get1(&c, "ring-depth"), "128");
        assert_eq!(c.io_memory, 256 * 1024);
        assert_eq!(c.bind, vec!["127.0.0.1".to_string()]);
        assert_eq!(c.requirepass, None);
        assert_eq!(c.loglevel, LogLevel::Notice);
        assert_eq!(c.enable_debug_command, DebugCommandPolicy::No);
        assert!(c.dir.is_absolute());
    }

    #[test]
    fn load_file_with_comments_quotes_units_and_saves() {
        let conf = write_conf(
            "# Tessera test config\n\
             \n\
             \t  # indented comment\n\
             PORT 7000\n\
             bind 127.0.0.1 ::1\n\
             requirepass \"se cr\\\"et\\x41\\n\"\n\
             logfile 'it\\'s.log'\n\
             maxmemory 1GB\n\
             io-memory 1mb\n\
             save 900 1\n\
             save 300 10\n\
             latency-monitor-threshold 100\n\
             activedefrag yes\n\
             hash-max-ziplist-entries 100\n\
             LogLevel WARNING\n\
             enable-debug-command local\n\
             hz 1000\n\
             shards 4\r\n\
             dir /tmp/../tmp/./\n",
        );
        let (path, p) = (conf.path.clone(), conf.arg.clone());
        let out = load(&args(&[&p])).unwrap();
        let c = &out.config;
        assert_eq!(c.port, 7000);
        assert_eq!(c.bind, vec!["127.0.0.1", "::1"]);
        assert_eq!(c.requirepass.as_deref(), Some(&b"se cr\"etA\n"[..]));
        assert_eq!(c.logfile, "it's.log");
        assert_eq!(c.maxmemory, 1 << 30);
        assert_eq!(c.io_memory, 1 << 20);
        assert_eq!(get1(c, "save"), "900 1 300 10");
        assert_eq!(get1(c, "hash-max-listpack-entries"), "100");
        assert_eq!(c.hash_max_listpack_entries, 100);
        assert_eq!(c.loglevel, LogLevel::Warning);
        assert_eq!(c.enable_debug_command, DebugCommandPolicy::Local);
        assert_eq!(c.hz, 500, "hz is clamped like Redis");
        assert_eq!(c.shards, 4);
        assert_eq!(c.dir, PathBuf::from("/tmp"));
        assert_eq!(c.config_file.as_deref(), Some(path.as_path()));
        // Not implemented and not default -> one warning each.
        let mut warned: Vec<&str> = out
            .warnings
            .iter()
            .map(|w| w.split('\'').nth(1).unwrap())
            .collect();
        warned.sort_unstable();
        assert_eq!(warned, ["activedefrag"]);
        assert_eq!(c.latency_monitor_threshold, 100);
        assert_eq!(
            out.warnings[0].split('\'').nth(2).unwrap(),
            " is accepted but not implemented yet; ignored"
        );
    }

    /// `unixsocketperm` reads octal as C's strtoll does; `shutdown-on-sig*` takes Redis's
    /// words. Texts and displayed values checked on redis-server 7.0.
    #[test]
    fn octal_and_shutdown_flag_directives() {
        for (v, shown) in [
            ("", "0"),
            (" 7", "7"),
            ("+7", "7"),
            ("0777", "777"),
            ("700", "700"),
        ] {
            let c = load(&args(&["--unixsocketperm", v])).unwrap().config;
            assert_eq!(get1(&c, "unixsocketperm"), shown, "{v:?}");
        }
        for (v, err) in [
            ("999", "argument couldn't be parsed as an octal number"),
            ("0x1", "argument couldn't be parsed as an octal number"),
            ("abc", "argument couldn't be parsed as an octal number"),
            ("1000", "argument must be between 0 and 777 inclusive"),
            ("-1", "argument must be between 0 and 777 inclusive"),
        ] {
            let e = load(&args(&["--unixsocketperm", v])).unwrap_err();
            assert!(e.contains(err), "{v:?}: {e}");
        }
        let mut c = Config::default();
        for (v, shown) in [
            ("save", "save"),
            ("nosave now", "nosave now"),
            ("default save", "save"),
            ("now force nosave", "nosave now force"),
            ("SAVE", "save"),
            ("default", "default"),
        ] {
            c.set(&[(b"shutdown-on-sigterm", v.as_bytes())]).unwrap();
            assert_eq!(get1(&c, "shutdown-on-sigterm"), shown, "{v:?}");
        }
        assert_eq!(c.shutdown_on_signal(false), 0);
        c.set(&[(b"shutdown-on-sigint", b"nosave force")]).unwrap();
        assert_eq!(
            (c.shutdown_on_signal(true), c.shutdown_on_signal(false)),
            (10, 0)
        );
        for (v, err) in [
            (
                "save nosave",
                "shutdown options SAVE and NOSAVE can't be used simultaneously",
            ),
            (
                "bogus",
                "argument(s) must be one of the following: default, save, nosave, now, force",
            ),
            (
                "",
                "argument(s) must be one of the following: default, save, nosave, now, force",
            ),
        ] {
            let e = c
                .set(&[(b"shutdown-on-sigterm", v.as_bytes())])
                .unwrap_err();
            assert!(e.contains(err), "{v:?}: {e}");
        }
    }

    #[test]
    fn load_defaults_without_arguments() {
        let out = load(&[]).unwrap();
        assert!(out.warnings.is_empty());
        assert_eq!(out.config.port, 6379);
        assert_eq!(out.config.config_file, None);
    }

    #[test]
    fn save_lines_reset_then_accumulate() {
        let conf = write_conf("save \"\"\nsave 10 1\n");
        let p = conf.arg.clone();
        let c = load(&args(&[&p])).unwrap().config;
        assert_eq!(get1(&c, "save"), "10 1");
        // Flags continue the same load, as in redis-server.
        let c = load(&args(&[&p, "--save", "60", "5"])).unwrap().config;
        assert_eq!(get1(&c, "save"), "10 1 60 5");
        let conf = write_conf("save 10 1\nsave \"\"\n");
        let p = conf.arg.clone();
        let c = load(&args(&[&p])).unwrap().config;
        assert_eq!(get1(&c, "save"), "10 1");
        // A bare --save, or one followed by another flag, is `save ""`.
        let c = load(&args(&["--save", "--port", "1"])).unwrap().config;
        assert_eq!(get1(&c, "save"), "");
        assert_eq!(c.port, 1);
        let c = load(&args(&["--save"])).unwrap().config;
        assert_eq!(get1(&c, "save"), "");
    }

    #[test]
    fn flags_override_file_in_order() {
        let conf = write_conf("port 7000\nloglevel debug\n");
        let p = conf.arg.clone();
        let c = load(&args(&[
            &p,
            "--port",
            "7001",
            "--save",
            "900",
            "1",
            "--bind",
            "10.0.0.1",
            "10.0.0.2",
            "--port",
            "7002",
            "--requirepass",
            "--dash",
            "--slowlog-log-slower-than",
            "-1",
            "--timeout 30",
        ]))
        .unwrap()
        .config;
        assert_eq!(c.port, 7002);
        assert_eq!(c.loglevel, LogLevel::Debug);
        assert_eq!(get1(&c, "save"), "900 1");
        assert_eq!(c.bind, vec!["10.0.0.1", "10.0.0.2"]);
        // The first value after a flag name is a value even if it looks
        // like a flag, as in redis-server.
        assert_eq!(c.requirepass.as_deref(), Some(&b"--dash"[..]));
        assert_eq!(c.slowlog_log_slower_than, -1);
        assert_eq!(c.timeout, 30);
        // One token for a multi-argument directive is split on spaces.
        let c = load(&args(&["--save", "900 1 300 10"])).unwrap().config;
        assert_eq!(get1(&c, "save"), "900 1 300 10");
    }

    #[test]
    fn load_errors() {
        let err = |content: &str| {
            let conf = write_conf(content);
            let p = conf.arg.clone();
            let e = load(&args(&[&p])).unwrap_err();
            e.strip_prefix(&p).unwrap().to_string()
        };
        assert_eq!(
            err("# c\nport 1\n\nfoo bar\n"),
            ":4: Bad directive or wrong number of arguments ('foo')"
        );
        assert_eq!(
            err("port abc\n"),
            ":1: argument couldn't be parsed into an integer (port 'abc')"
        );
        assert_eq!(
            err("port 1 2\n"),
            ":1: wrong number of arguments (port '1 2')"
        );
        assert_eq!(
            err("port 70000\n"),
            ":1: argument must be between 0 and 65535 inclusive (port '70000')"
        );
        assert_eq!(
            err("port \"7801\n"),
            ":1: Unbalanced quotes in configuration line ('port \"7801')"
        );
        assert_eq!(
            err("port \"1\"x\n"),
            ":1: Unbalanced quotes in configuration line ('port \"1\"x')"
        );
        assert_eq!(
            err("loglevel loud\n"),
            ":1: argument(s) must be one of the following: debug, verbose, notice, warning \
             (loglevel 'loud')"
        );
        assert_eq!(
            err("enable-debug-command maybe\n"),
            ":1: argument(s) must be one of the following: no, yes, local \
             (enable-debug-command 'maybe')"
        );
        assert_eq!(
            err("protected-mode maybe\n"),
            ":1: argument must be 'yes' or 'no' (protected-mode 'maybe')"
        );
        assert_eq!(
            err("databases 0\n"),
            ":1: argument must be between 1 and 2147483647 inclusive (databases '0')"
        );
        assert_eq!(
            err("save 0 1\n"),
            ":1: Invalid save parameters (save '0 1')"
        );
        assert_eq!(
            err("maxmemory 1x\n"),
            ":1: argument must be a memory value (maxmemory '1x')"
        );
        assert_eq!(
            err("maxmemory -1\n"),
            ":1: argument must be a memory value (maxmemory '-1')"
        );
        assert_eq!(
            err("notify-keyspace-events\n"),
            ":1: wrong number of arguments ('notify-keyspace-events')"
        );
        assert_eq!(
            err("dbfilename a/b.rdb\n"),
            ":1: dbfilename can't be a path, just a filename (dbfilename 'a/b.rdb')"
        );
        assert_eq!(
            err("include other.conf\n"),
            ":1: Bad directive or wrong number of arguments ('include')"
        );
        assert_eq!(
            err("port 1 # trailing comment\n"),
            ":1: wrong number of arguments (port '1 # trailing comment')"
        );

        assert_eq!(
            load(&args(&["--port", "abc"])).unwrap_err(),
            "--port: argument couldn't be parsed into an integer (port 'abc')"
        );
        assert_eq!(
            load(&args(&["--foo", "1"])).unwrap_err(),
            "--foo: Bad directive or wrong number of arguments ('foo')"
        );
        assert_eq!(
            load(&args(&["--port"])).unwrap_err(),
            "--port: wrong number of arguments ('port')"
        );
        assert!(load(&args(&["-"])).unwrap_err().contains("stdin"));
        assert!(load(&args(&["/nonexistent/tessera.conf"]))
            .unwrap_err()
            .starts_with("Fatal error, can't open config file '/nonexistent/tessera.conf': "));
        let conf = write_conf("port 1\n");
        let p = conf.arg.clone();
        assert!(load(&args(&[&p, "stray"])).unwrap_err().contains("'stray'"));
    }

    #[test]
    fn daemonize_yes_is_a_startup_error() {
        let conf = write_conf("daemonize yes\n");
        let p = conf.arg.clone();
        assert_eq!(
            load(&args(&[&p])).unwrap_err(),
            "daemonize yes is not supported; use a service manager"
        );
        // ...unless a later flag turns it off again.
        assert!(
            !load(&args(&[&p, "--daemonize", "no"]))
                .unwrap()
                .config
                .daemonize
        );
    }

    #[test]
    fn deprecated_directives_are_ignored_with_a_warning() {
        let conf = write_conf("list-max-ziplist-entries 512\n");
        let p = conf.arg.clone();
        let out = load(&args(&[&p])).unwrap();
        assert_eq!(
            out.warnings,
            ["directive 'list-max-ziplist-entries' is deprecated and ignored"]
        );
    }

    #[test]
    fn no_warning_for_defaults_or_implemented() {
        let conf = write_conf("appendonly no\nsave 3600 1 300 100 60 10000\nport 1\ntimeout 5\n");
        let p = conf.arg.clone();
        assert!(load(&args(&[&p])).unwrap().warnings.is_empty());
    }

    #[test]
    fn config_get_patterns() {
        let c = Config::default();
        let names = |patterns: &[&str]| -> Vec<String> {
            let p: Vec<&[u8]> = patterns.iter().map(|s| s.as_bytes()).collect();
            c.get(&p).into_iter().map(|(n, _)| n).collect()
        };
        assert_eq!(
            names(&["*max*"]),
            [
                "maxclients",
                "maxmemory",
                "maxmemory-policy",
                "maxmemory-samples",
                "maxmemory-eviction-tenacity",
                "slowlog-max-len",
                "hash-max-listpack-entries",
                "hash-max-ziplist-entries",
                "hash-max-listpack-value",
                "hash-max-ziplist-value",
                "list-max-listpack-size",
                "list-max-ziplist-size",
                "set-max-intset-entries",
                "set-max-listpack-entries",
                "set-max-listpack-value",
                "zset-max-listpack-entries",
                "zset-max-ziplist-entries",
                "zset-max-listpack-value",
                "zset-max-ziplist-value",
                "hll-sparse-max-bytes",
                "active-defrag-cycle-max",
                "active-defrag-max-scan-fields",
                "proto-max-bulk-len",
                "acllog-max-len",
                "maxmemory-clients",
                "min-replicas-max-lag",
                "min-slaves-max-lag",
                "repl-diskless-sync-max-replicas",
                "replica-ignore-maxmemory",
                "slave-ignore-maxmemory",
                "stream-node-max-bytes",
                "stream-node-max-entries",
                "tracking-table-max-keys",
            ]
        );
        // Exact names keep the client's spelling; duplicates collapse
        // case-insensitively, whichever pattern came first.
        assert_eq!(names(&["PORT"]), ["PORT"]);
        assert_eq!(names(&["port", "PORT"]), ["port"]);
        assert_eq!(names(&["PORT", "p*t"]), ["PORT"]);
        assert_eq!(names(&["p*t", "PORT"]), ["port"]);
        assert_eq!(names(&["P[O]RT", "po?t"]), ["port"]);
        // Aliases are separate names.
        assert_eq!(names(&["lua-time-limit"]), ["lua-time-limit"]);
        assert_eq!(
            names(&["*time-limit*", "busy*"]),
            ["busy-reply-threshold", "lua-time-limit"]
        );
        assert_eq!(
            names(&["hash-max-ziplist-entries", "hash-max-*-entries"]),
            ["hash-max-listpack-entries", "hash-max-ziplist-entries"]
        );
        // Output is in table order, not pattern order.
        assert_eq!(
            names(&["timeout", "bind", "port"]),
            ["bind", "port", "timeout"]
        );
        // A backslash alone does not make a glob, so this is an exact miss.
        assert!(names(&["por\\t"]).is_empty());
        assert!(names(&["nosuch", "x*"]).is_empty());
        let all = names(&["*"]);
        assert_eq!(
            all.len(),
            DIRECTIVES
                .iter()
                .map(|d| 1 + d.aliases.len())
                .sum::<usize>()
        );
        assert_eq!(
            c.get(&[b"maxmemory", b"hz"]),
            [
                ("maxmemory".to_string(), "0".to_string()),
                ("hz".to_string(), "10".to_string())
            ]
        );
    }

    #[test]
    fn config_set_success() {
        let mut c = Config::default();
        let changed = set(
            &mut c,
            &[
                ("maxmemory", "1mb"),
                ("HZ", "0"),
                ("save", "900 1 300 10"),
                ("timeout", "0"),
            ],
        )
        .unwrap();
        // timeout was already 0: not reported as changed.
        assert_eq!(changed, ["maxmemory", "hz", "save"]);
        assert_eq!(c.maxmemory, 1024 * 1024);
        assert_eq!(c.hz, 1, "hz 0 is clamped to 1 like Redis");
        assert_eq!(get1(&c, "save"), "900 1 300 10");
        set(&mut c, &[("save", "")]).unwrap();
        assert_eq!(get1(&c, "save"), "");
        set(&mut c, &[("hz", "1000")]).unwrap();
        assert_eq!(c.hz, 500);

        assert_eq!(
            set(&mut c, &[("lua-time-limit", "7")]).unwrap(),
            ["busy-reply-threshold"]
        );
        assert_eq!(get1(&c, "busy-reply-threshold"), "7");
        set(
            &mut c,
            &[("maxmemory-policy", "ALLKEYS-LRU"), ("loglevel", "Debug")],
        )
        .unwrap();
        assert_eq!(get1(&c, "maxmemory-policy"), "allkeys-lru");
        assert_eq!(c.loglevel, LogLevel::Debug);

        set(&mut c, &[("requirepass", "pw")]).unwrap();
        assert_eq!(c.requirepass.as_deref(), Some(&b"pw"[..]));
        set(&mut c, &[("requirepass", "")]).unwrap();
        assert_eq!(c.requirepass, None);
        assert_eq!(get1(&c, "requirepass"), "");

        // Partial client-output-buffer-limit updates keep the other classes.
        set(
            &mut c,
            &[("client-output-buffer-limit", "normal 1mb 2mb 3")],
        )
        .unwrap();
        set(
            &mut c,
            &[("client-output-buffer-limit", "replica 1gb 1k 10")],
        )
        .unwrap();
        assert_eq!(
            get1(&c, "client-output-buffer-limit"),
            "normal 1048576 2097152 3 slave 1073741824 1000 10 pubsub 33554432 8388608 60"
        );

        for (input, shown) in [
            ("KEA", "AKE"),
            ("Kn", "nK"),
            ("KEAmn", "AKEm"),
            ("gE", "gE"),
            ("", ""),
        ] {
            set(&mut c, &[("notify-keyspace-events", input)]).unwrap();
            assert_eq!(get1(&c, "notify-keyspace-events"), shown, "{input}");
        }
        for (input, bytes) in [
            ("1k", "1000"),
            ("1KB", "1024"),
            ("2g", "2000000000"),
            ("010", "10"),
            ("", "0"),
        ] {
            set(&mut c, &[("maxmemory", input)]).unwrap();
            assert_eq!(get1(&c, "maxmemory"), bytes, "{input}");
        }
        set(
            &mut c,
            &[
                ("list-max-listpack-size", "-5"),
                ("slowlog-log-slower-than", "-1"),
            ],
        )
        .unwrap();
        assert_eq!(get1(&c, "list-max-listpack-size"), "-5");
        assert_eq!(c.slowlog_log_slower_than, -1);
    }

    #[test]
    fn config_set_errors_and_atomicity() {
        let mut c = Config::default();
        let before = format!("{:?}", c.get(&[b"*"]));
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("foo", "bar")], "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"),
            (&[("hz", "5"), ("Foo", "1")], "ERR Unknown option or number of arguments for CONFIG SET - 'Foo'"),
            // Name problems are found before any value is parsed.
            (&[("hz", "x"), ("foo", "1")], "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"),
            (&[("DAEMONIZE", "no"), ("foo", "1")],
             "ERR CONFIG SET failed (possibly related to argument 'DAEMONIZE') - can't set immutable config"),
            (&[("tcp-backlog", "7000")],
             "ERR CONFIG SET failed (possibly related to argument 'tcp-backlog') - can't set immutable config"),
            (&[("port", "65536")],
             "ERR CONFIG SET failed (possibly related to argument 'port') - argument must be between 0 and 65535 inclusive"),
            (&[("PORT", "017000")],
             "ERR CONFIG SET failed (possibly related to argument 'port') - argument couldn't be parsed into an integer"),
            (&[("bind", "a b c d e f g h i j k l m n o p q")],
             "ERR CONFIG SET failed (possibly related to argument 'bind') - Too many bind addresses specified."),
            (&[("shards", "2")],
             "ERR CONFIG SET failed (possibly related to argument 'shards') - can't set immutable config"),
            (&[("dir", "/tmp")],
             "ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config"),
            (&[("hz", "1"), ("HZ", "2")],
             "ERR CONFIG SET failed (possibly related to argument 'HZ') - duplicate parameter"),
            (&[("lua-time-limit", "1"), ("busy-reply-threshold", "2")],
             "ERR CONFIG SET failed (possibly related to argument 'busy-reply-threshold') - duplicate parameter"),
            (&[("hz", "7"), ("maxmemory", "x")],
             "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"),
            (&[("maxmemory", "-1")],
             "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"),
            (&[("HZ", "x")],
             "ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer"),
            (&[("hz", "-1")],
             "ERR CONFIG SET failed (possibly related to argument 'hz') - argument must be between 0 and 2147483647 inclusive"),
            (&[("LUA-TIME-LIMIT", "-1")],
             "ERR CONFIG SET failed (possibly related to argument 'lua-time-limit') - argument must be between 0 and 9223372036854775807 inclusive"),
            (&[("slowlog-max-len", "010")],
             "ERR CONFIG SET failed (possibly related to argument 'slowlog-max-len') - argument couldn't be parsed into an integer"),
            (&[("maxclients", "0")],
             "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 4294967295 inclusive"),
            (&[("proto-max-bulk-len", "1")],
             "ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be between 1048576 and 9223372036854775807 inclusive"),
            (&[("active-expire-effort", "11")],
             "ERR CONFIG SET failed (possibly related to argument 'active-expire-effort') - argument must be between 1 and 10 inclusive"),
            (&[("loglevel", "loud")],
             "ERR CONFIG SET failed (possibly related to argument 'loglevel') - argument(s) must be one of the following: debug, verbose, notice, warning"),
            (&[("maxmemory-policy", "x")],
             "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"),
            (&[("appendfsync", "x")],
             "ERR CONFIG SET failed (possibly related to argument 'appendfsync') - argument(s) must be one of the following: everysec, always, no"),
            (&[("protected-mode", "maybe")],
             "ERR CONFIG SET failed (possibly related to argument 'protected-mode') - argument must be 'yes' or 'no'"),
            (&[("save", "10  1")],
             "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters"),
            (&[("save", "0 1")],
             "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters"),
            (&[("client-output-buffer-limit", "master 1 2 3")],
             "ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Invalid client class specified in buffer limit configuration."),
            (&[("client-output-buffer-limit", "normal 1 2")],
             "ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Wrong number of arguments in buffer limit configuration."),
            (&[("client-output-buffer-limit", "normal 1 2 -1")],
             "ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Error in hard, soft or soft_seconds setting in buffer limit configuration."),
            (&[("notify-keyspace-events", "q")],
             "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'."),
        ];
        for (pairs, expected) in cases {
            assert_eq!(set(&mut c, pairs).unwrap_err(), *expected, "{pairs:?}");
        }
        // Nothing from any failed SET leaked in (e.g. hz 7 before maxmemory x).
        assert_eq!(format!("{:?}", c.get(&[b"*"])), before);
        assert_eq!(c.hz, 10);
    }

    #[test]
    fn rewrite_preserves_comments_and_round_trips() {
        let conf = write_conf(
            "# Top comment\n\
             port 7802\n   # indented comment\n\n\
             save 900 1\n\
             save 300 10\n\
             save 60 10000\n\
             hash-max-ziplist-entries 100\n\
             maxmemory 100mb\n\
             # policy below\n\
             maxmemory-policy noeviction\n\
             requirepass \"a b\\\"c\"\n\n\n\n\
             # end\n",
        );
        let (path, p) = (conf.path.clone(), conf.arg.clone());
        let mut c = load(&args(&[&p])).unwrap().config;
        set(
            &mut c,
            &[
                ("maxmemory", "1gb"),
                ("hz", "20"),
                ("save", "900 1 300 10"),
                ("client-output-buffer-limit", "pubsub 1mb 1000 5"),
                ("notify-keyspace-events", "KEA"),
                ("requirepass", "x'y"),
            ],
        )
        .unwrap();
        c.rewrite(None).unwrap();
        let dir = repr(c.dir.as_os_str().as_bytes());
        let expected = format!(
            "# Top comment\n\
             port 7802\n\
             # indented comment\n\
             \n\
             save 900 1\n\
             save 300 10\n\
             \n\
             hash-max-listpack-entries 100\n\
             maxmemory 1gb\n\
             # policy below\n\
             maxmemory-policy noeviction\n\
             requirepass \"x'y\"\n\
             \n\
             # end\n\
             \n\
             # Generated by CONFIG REWRITE\n\
             dir {dir}\n\
             latency-tracking-info-percentiles 50 99 99.9\n\
             notify-keyspace-events \"AKE\"\n\
             client-output-buffer-limit pubsub 1mb 1000 5\n\
             hz 20\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);

        // Reloading the rewritten file gives the same configuration.
        let again = load(&args(&[&p])).unwrap().config;
        assert_eq!(again.get(&[b"*"]), c.get(&[b"*"]));

        // A second rewrite adds no second signature and moves nothing. Like
        // Redis, the old file's final newline reads as one trailing blank
        // line, which then stays a single blank line on later rewrites.
        again.rewrite(None).unwrap();
        let second = std::fs::read_to_string(&path).unwrap();
        assert_eq!(second, format!("{expected}\n"));
        again.rewrite(None).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), second);
    }

    #[test]
    fn rewrite_content_details() {
        let mut c = Config::default();
        set(&mut c, &[("save", ""), ("appendonly", "yes")]).unwrap();
        let out = String::from_utf8(c.rewrite_content(
            b"pidfile /run/x.pid\nbogus line\nappendonly no\ninclude /etc/other.conf\n\
              # Generated by CONFIG REWRITE\nlogfile \"\"\n",
            false,
            None,
        ))
        .unwrap();
        let dir = repr(c.dir.as_os_str().as_bytes());
        // pidfile is now unset -> its line is dropped (blank); unknown lines
        // are commented out; include is left alone; the signature exists
        // already; logfile at its default stays where it was.
        assert_eq!(
            out,
            format!(
                "\n# ??? bogus line\nappendonly yes\ninclude /etc/other.conf\n\
                 # Generated by CONFIG REWRITE\nlogfile \"\"\n\nsave \"\"\ndir {dir}\n\
                 latency-tracking-info-percentiles 50 99 99.9\n"
            )
        );
        // An empty file gets the forced lines only.
        let out = String::from_utf8(Config::default().rewrite_content(b"", false, None)).unwrap();
        assert_eq!(
            out,
            format!(
                "# Generated by CONFIG REWRITE\nsave 3600 1\nsave 300 100\nsave 60 10000\n\
                 dir {dir}\nlatency-tracking-info-percentiles 50 99 99.9\n"
            )
        );
    }

    /// CONFIG SET / GET / REWRITE and config-file forms of `latency-tracking` and
    /// `latency-tracking-info-percentiles`, as redis-server 7.0.15 answered them.
    #[test]
    fn latency_tracking_directives_like_redis() {
        let mut c = Config::default();
        assert_eq!(get1(&c, "latency-tracking"), "yes");
        assert_eq!(get1(&c, "latency-tracking-info-percentiles"), "50 99 99.9");
        assert!(c.latency_tracking);
        assert_eq!(c.latency_tracking_info_percentiles, [50.0, 99.0, 99.9]);
        let invalid = "ERR CONFIG SET failed (possibly related to argument \
            'latency-tracking-info-percentiles') - Invalid latency-tracking-info-percentiles \
            parameters";
        let range = "ERR CONFIG SET failed (possibly related to argument \
            'latency-tracking-info-percentiles') - latency-tracking-info-percentiles parameters \
            should sit between [0.0,100.0]";
        for (value, err) in [
            ("abc", invalid),
            ("-1", range),
            ("101", range),
            ("inf", range),
            ("-inf", range),
            ("infinity", range),
            ("nan", invalid),
            ("-nan", invalid),
            ("50  99", invalid),
            (" 50", invalid),
            ("50 ", invalid),
            ("  ", invalid),
            ("5,6", invalid),
            ("50 abc", invalid),
            ("50 101", range),
            ("101 abc", range),
            ("1e400", invalid),
            ("1e-400", invalid),
            ("0x", invalid),
            ("1e", invalid),
            ("50\t99", invalid),
        ] {
            assert_eq!(
                set(&mut c, &[("latency-tracking-info-percentiles", value)]).unwrap_err(),
                err,
                "{value:?}"
            );
            assert_eq!(get1(&c, "latency-tracking-info-percentiles"), "50 99 99.9");
        }
        for (value, shown) in [
            ("", ""),
            ("50 99", "50 99"),
            ("1e1", "10"),
            ("0x10", "16"),
            ("0x1p3", "8"),
            ("-0", "-0"),
            ("100", "100"),
            ("0", "0"),
            ("99.99 12.5", "99.99 12.5"),
            ("12.50000001", "12.5"),
            ("1e-7", "0"),
            ("1e-310", "0"),
            ("99.9999999", "100"),
            ("+5", "5"),
            ("00012", "12"),
            ("3.0", "3"),
            (".5", "0.5"),
            ("5.", "5"),
            ("5e-1", "0.5"),
        ] {
            set(&mut c, &[("latency-tracking-info-percentiles", value)]).unwrap();
            assert_eq!(
                get1(&c, "latency-tracking-info-percentiles"),
                shown,
                "{value:?}"
            );
        }
        // The exact value is kept (INFO computes with it), not its rounded text.
        set(
            &mut c,
            &[("latency-tracking-info-percentiles", "12.50000001")],
        )
        .unwrap();
        assert_eq!(c.latency_tracking_info_percentiles, [12.50000001]);
        let long = format!("1.{}", "0".repeat(6000));
        set(&mut c, &[("latency-tracking-info-percentiles", &long)]).unwrap();
        assert_eq!(get1(&c, "latency-tracking-info-percentiles"), "1");
        for value in ["maybe", "", "1"] {
            assert_eq!(
                set(&mut c, &[("latency-tracking", value)]).unwrap_err(),
                "ERR CONFIG SET failed (possibly related to argument 'latency-tracking') - \
                 argument must be 'yes' or 'no'"
            );
        }
        set(&mut c, &[("latency-tracking", "No")]).unwrap();
        assert!(!c.latency_tracking);
        assert_eq!(get1(&c, "latency-tracking"), "no");

        // CONFIG REWRITE always writes the percentiles ("" for none); latency-tracking only
        // when it is off.
        let rewritten =
            |c: &Config| String::from_utf8(c.rewrite_content(b"", false, None)).unwrap();
        set(
            &mut c,
            &[("latency-tracking-info-percentiles", "12.5 -0 100")],
        )
        .unwrap();
        let out = rewritten(&c);
        assert!(out.contains("\nlatency-tracking no\n"), "{out}");
        assert!(
            out.contains("\nlatency-tracking-info-percentiles 12.5 -0 100\n"),
            "{out}"
        );
        set(&mut c, &[("latency-tracking-info-percentiles", "")]).unwrap();
        assert!(rewritten(&c).contains("\nlatency-tracking-info-percentiles \"\"\n"));
        assert!(!rewritten(&Config::default()).contains("latency-tracking "));

        // Config files: any number of arguments, none is the empty list, one with spaces is
        // read as a line of arguments.
        let loaded = |line: &str| {
            let conf = write_conf(&format!("{line}\n"));
            let c = load(&args(&[&conf.arg])).map(|o| o.config);
            c.map(|c| get1(&c, "latency-tracking-info-percentiles"))
        };
        assert_eq!(loaded("latency-tracking-info-percentiles").unwrap(), "");
        assert_eq!(
            loaded("latency-tracking-info-percentiles \"\"").unwrap(),
            ""
        );
        assert_eq!(
            loaded("latency-tracking-info-percentiles 1 2 3").unwrap(),
            "1 2 3"
        );
        assert_eq!(
            loaded("latency-tracking-info-percentiles \"1  2\"").unwrap(),
            "1 2"
        );
        assert_eq!(
            loaded("latency-tracking-info-percentiles \" 5\"").unwrap(),
            "5"
        );
        assert_eq!(
            loaded("latency-tracking-info-percentiles 0x10 -0 1e1").unwrap(),
            "16 -0 10"
        );
        for (line, why) in [
            (
                "latency-tracking-info-percentiles 50 abc",
                "Invalid latency-tracking-info-percentiles parameters",
            ),
            (
                "latency-tracking-info-percentiles 50 \"\"",
                "Invalid latency-tracking-info-percentiles parameters",
            ),
            (
                "latency-tracking-info-percentiles 101",
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]",
            ),
            ("latency-tracking maybe", "argument must be 'yes' or 'no'"),
        ] {
            let e = loaded(line).unwrap_err();
            assert!(e.contains(&format!(":1: {why} (")), "{line}: {e}");
        }
        let flags = load(&args(&["--latency-tracking-info-percentiles", "1  2"])).unwrap();
        assert_eq!(
            get1(&flags.config, "latency-tracking-info-percentiles"),
            "1 2"
        );
        let flags = load(&args(&["--latency-tracking-info-percentiles", "1", "2"])).unwrap();
        assert_eq!(
            get1(&flags.config, "latency-tracking-info-percentiles"),
            "1 2"
        );
    }

    #[test]
    fn rewrite_without_config_file() {
        assert_eq!(
            Config::default().rewrite(None).unwrap_err(),
            "ERR The server is running without a config file"
        );
        let c = Config {
            config_file: Some(PathBuf::from("/nonexistent-dir/tessera.conf")),
            ..Config::default()
        };
        assert_eq!(
            c.rewrite(None).unwrap_err(),
            "ERR Rewriting config file: No such file or directory"
        );
    }

    #[test]
    fn rewrite_force_all_writes_every_directive_with_a_value() {
        assert_eq!(
            Config::default().rewrite_force_all(None).unwrap_err(),
            "ERR CONFIG-REWRITE-FORCE-ALL failed: Bad address"
        );
        let c = Config {
            config_file: Some(PathBuf::from("/nonexistent-dir/tessera.conf")),
            ..Config::default()
        };
        assert_eq!(
            c.rewrite_force_all(None).unwrap_err(),
            "ERR CONFIG-REWRITE-FORCE-ALL failed: No such file or directory"
        );
        let c = Config::default();
        let plain = String::from_utf8(c.rewrite_content(b"hz 10\n", false, None)).unwrap();
        let all = String::from_utf8(c.rewrite_content(b"hz 10\n", true, None)).unwrap();
        // The directive already in the file keeps its line, written once.
        assert_eq!(all.lines().filter(|l| l.starts_with("hz ")).count(), 1);
        assert!(all.starts_with("hz 10\n"));
        for d in DIRECTIVES {
            let lines = rewrite_lines(d, &c.fetch(d));
            for l in &lines {
                assert!(all.lines().any(|x| x == l.text), "{} missing", l.text);
            }
            // Without FORCE-ALL, defaults stay out (save, dir and the percentiles are always
            // written).
            if lines.iter().all(|l| !l.force) {
                for l in &lines {
                    assert!(!plain.lines().any(|x| x == l.text) || l.text == "hz 10");
                }
            }
        }
        // What it writes loads back to the same configuration.
        let t = write_conf(&all);
        let loaded = load(&args(&[&t.arg])).unwrap().config;
        for d in DIRECTIVES {
            if !matches!(d.kind, Kind::Dir) {
                assert_eq!(loaded.fetch(d), c.fetch(d), "{}", d.name);
            }
        }
    }

    #[test]
    fn split_args_like_sdssplitargs() {
        let split = |s: &str| split_args(s.as_bytes());
        let v = |list: &[&str]| {
            Some(
                list.iter()
                    .map(|s| s.as_bytes().to_vec())
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(split("  a  b\tc "), v(&["a", "b", "c"]));
        assert_eq!(split(""), v(&[]));
        assert_eq!(split("\"a b\" 'c d'"), v(&["a b", "c d"]));
        assert_eq!(split(r#""\x41\x4a\n\t\q\"""#), v(&["AJ\n\tq\""]));
        assert_eq!(split(r#""\x4g""#), v(&["x4g"]));
        assert_eq!(split(r"'it\'s' '\n'"), v(&["it's", "\\n"]));
        assert_eq!(split(r#"foo"bar baz""#), v(&["foobar baz"]));
        assert_eq!(split("\"\""), v(&[""]));
        assert_eq!(split("\"a\"b"), None);
        assert_eq!(split("'a'b"), None);
        assert_eq!(split("\"abc"), None);
        assert_eq!(split("'abc"), None);
        // repr output reads back to the same bytes.
        let raw = b"a \"b\\ \x01\xff\n";
        assert_eq!(split_args(repr(raw).as_bytes()), Some(vec![raw.to_vec()]));
    }

    #[test]
    fn glob_match_cases() {
        let m = |p: &str, s: &str| glob_match(p.as_bytes(), s.as_bytes(), false);
        let mi = |p: &str, s: &str| glob_match(p.as_bytes(), s.as_bytes(), true);
        // Redis's matcher never matches an empty string, not even with "*"
        // (PUBLISH "" reaches no PSUBSCRIBE * client); KEYS/SCAN special-case
        // a lone "*" before matching.
        assert!(!m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(!m("a", ""));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h**l*o", "hello"));
        assert!(m("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!m("*a*b*c*", "xxaxxcxxbxx"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"), "reversed ranges work");
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("[a-]", "]"), "'a-]' is a range up to ']' in Redis");
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("a\\?", "a?"));
        assert!(m("[\\]]", "]"));
        assert!(m("[\\^a]", "^"));
        assert!(m("\\", "\\"), "a trailing backslash is literal");
        assert!(
            m("[abc", "c"),
            "an unterminated class ends with the pattern"
        );
        assert!(!m("[abc", "cd"));
        assert!(!m("[]", "a"));
        assert!(!m("Hello", "hello"));
        assert!(mi("Hello", "hELLO"));
        assert!(mi("H[A-Z]llo", "hello"));
        assert!(mi("h[E]llo", "hello"));
        assert!(!mi("h[^E]llo", "hello"));
        assert!(m("a*", "a"));
        assert!(m("a*?", "ab"));
        assert!(!m("a*?", "a"));
        assert!(glob_match(b"\xff*", b"\xff\x00x", false), "binary safe");
        assert!(glob_match(b"[\x80-\xff]", b"\x90", false));
        // Pathological pattern finishes quickly.
        let p = "a*".repeat(40) + "b";
        assert!(!m(&p, &"a".repeat(60)));
    }

    #[test]
    fn parse_memory_cases() {
        let pm = |s: &str| parse_memory(s.as_bytes());
        assert_eq!(pm("0"), Some(0));
        assert_eq!(pm("1024"), Some(1024));
        assert_eq!(pm("1b"), Some(1));
        assert_eq!(pm("1B"), Some(1));
        assert_eq!(pm("1k"), Some(1000));
        assert_eq!(pm("1K"), Some(1000));
        assert_eq!(pm("1kb"), Some(1024));
        assert_eq!(pm("1kB"), Some(1024));
        assert_eq!(pm("5m"), Some(5_000_000));
        assert_eq!(pm("100mb"), Some(100 << 20));
        assert_eq!(pm("1g"), Some(1_000_000_000));
        assert_eq!(pm("1gb"), Some(1 << 30));
        assert_eq!(pm("1GB"), Some(1 << 30));
        assert_eq!(pm("010"), Some(10));
        assert_eq!(pm(""), Some(0), "Redis reads an empty number as 0");
        assert_eq!(pm("kb"), Some(0));
        assert_eq!(pm("18446744073709551615"), Some(u64::MAX));
        assert_eq!(pm("18446744073709551616"), None);
        assert_eq!(pm("99999999999gb"), None);
        for bad in [
            "-1", "+1", " 1", "1 ", "1.5k", "0x10", "1t", "1tb", "1kbb", "k1",
        ] {
            assert_eq!(pm(bad), None, "{bad}");
        }
    }

    #[test]
    fn number_parsers() {
        assert_eq!(parse_ll(b"0"), Some(0));
        assert_eq!(parse_ll(b"-1"), Some(-1));
        assert_eq!(parse_ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_ll(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            "",
            "-",
            "-0",
            "01",
            "+1",
            " 1",
            "1 ",
            "1e3",
            "9223372036854775808",
        ] {
            assert_eq!(parse_ll(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(parse_strtoll(b""), Some(0));
        assert_eq!(parse_strtoll(b" +5"), Some(5));
        assert_eq!(parse_strtoll(b"-5"), Some(-5));
        assert_eq!(parse_strtoll(b" "), None);
        assert_eq!(parse_strtoll(b"5 "), None);
        assert_eq!(parse_strtoll(b"5x"), None);
    }

    #[test]
    fn implemented_lookup() {
        assert_eq!(is_implemented("port"), Some(true));
        assert_eq!(is_implemented("APPENDONLY"), Some(true));
        assert_eq!(is_implemented("latency-monitor-threshold"), Some(true));
        assert_eq!(is_implemented("activedefrag"), Some(false));
        assert_eq!(is_implemented("lua-time-limit"), Some(true));
        assert_eq!(is_implemented("nope"), None);
    }

    #[test]
    fn debug_redacts_requirepass() {
        let mut c = Config::default();
        set(&mut c, &[("requirepass", "hunter2")]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn config_is_send_and_clone() {
        fn assert_send<T: Send + Clone + std::fmt::Debug>() {}
        assert_send::<Config>();
        assert_send::<LoadOutcome>();
    }
}

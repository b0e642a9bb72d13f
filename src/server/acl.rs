//! ACL users and the permission check every command goes through.
//!
//! Owns the users table (behind a mutex in `Globals`, touched only by ACL, AUTH, HELLO, CONFIG
//! SET requirepass and startup: the control path), the ACL log, and the compiled form of a user
//! that connections hold ([`Perms`], an `Arc` each connection keeps). A change to any user bumps
//! a global generation counter; a connection re-reads its user only when that counter moved,
//! so the data path costs one relaxed atomic load per command, and a user with every
//! permission (the default user unless restricted) one more branch: no pattern matching, no
//! allocation.
//!
//! Never: take the table lock on the data path, or hold it across an `.await`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::acl_rules::{registry, Registry, Selector, User, KEY_READ, KEY_WRITE};
use crate::commands::{self, CommandSpec};

/// What a user may do, as connections check it.
pub struct Perms {
    pub name: Arc<str>,
    /// Some selector allows every command, key and channel: nothing to check.
    pub unrestricted: bool,
    selectors: Vec<Selector>,
}

/// Why a command was refused; the index is the refused key's or channel's argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    Command,
    Key(usize),
    Channel(usize),
}

impl Denied {
    /// How a script's refused call describes it, after "The user executing the script ".
    pub fn script_text(self) -> &'static str {
        match self {
            Denied::Command => "can't run this command or subcommand",
            Denied::Key(_) => {
                "can't access at least one of the keys mentioned in the command arguments"
            }
            Denied::Channel(_) => "can't publish to the channel mentioned in the command",
        }
    }
}

impl Denied {
    fn rank(self) -> (u8, usize) {
        // Redis's ACL_DENIED_CMD < KEY < CHANNEL: the most relevant error of the selectors.
        match self {
            Denied::Command => (1, 0),
            Denied::Key(i) => (2, i),
            Denied::Channel(i) => (4, i),
        }
    }
}

impl Perms {
    fn compile(u: &User) -> Perms {
        let unrestricted = u
            .selectors
            .iter()
            .any(|s| s.allcommands && s.allkeys && s.allchannels);
        Perms {
            name: Arc::from(String::from_utf8_lossy(&u.name).as_ref()),
            unrestricted,
            selectors: u.selectors.clone(),
        }
    }

    /// Checks a command line (Redis's ACLCheckAllUserCommandPerm). `spec` is resolved and its
    /// arity checked.
    pub fn check(&self, spec: &CommandSpec, args: &[Bytes]) -> Result<(), Denied> {
        if self.unrestricted {
            return Ok(());
        }
        let id = Registry::id_of(spec, args);
        let sub = spec.subcommand(args).ok().flatten();
        let mut keys: Option<Vec<(usize, u8)>> = None;
        let mut worst = Denied::Command;
        for s in &self.selectors {
            match check_selector(s, spec, sub.is_some(), id, args, &mut keys) {
                Ok(()) => return Ok(()),
                Err(d) => {
                    if d.rank() > worst.rank() {
                        worst = d;
                    }
                }
            }
        }
        Err(worst)
    }
}

/// The keys of a call with the permissions they need, as Redis finds them for ACLs.
fn keys_needing(spec: &CommandSpec, args: &[Bytes]) -> Vec<(usize, u8)> {
    let positions: Vec<usize> = spec.keys(args).collect();
    if positions.is_empty() {
        return Vec::new();
    }
    let sub = spec.subcommand(args).ok().flatten();
    commands::server_family::keys_and_flags(spec, sub, args, &positions)
        .into_iter()
        .map(|(k, flags)| {
            let mut need = 0;
            for f in flags {
                match *f {
                    "access" => need |= KEY_READ,
                    "insert" | "delete" | "update" => need |= KEY_WRITE,
                    _ => {}
                }
            }
            (k, need)
        })
        .collect()
}

/// Channels of a pub/sub call that ACLs check: (argument, is a pattern).
fn channels(spec: &CommandSpec, args: &[Bytes]) -> Vec<(usize, bool)> {
    match spec.name {
        "subscribe" | "ssubscribe" => (1..args.len()).map(|i| (i, false)).collect(),
        "psubscribe" => (1..args.len()).map(|i| (i, true)).collect(),
        "publish" | "spublish" => vec![(1, false)],
        _ => Vec::new(),
    }
}

fn check_selector(
    s: &Selector,
    spec: &CommandSpec,
    is_sub: bool,
    id: u32,
    args: &[Bytes],
    keys: &mut Option<Vec<(usize, u8)>>,
) -> Result<(), Denied> {
    if !s.allcommands && !spec.has(commands::flags::NO_AUTH) && !s.bit(id) {
        let idx = if is_sub { 2 } else { 1 };
        let allowed = args.len() >= 2
            && s.firstargs.get(&id).is_some_and(|list| {
                list.iter().any(|a| {
                    args.get(idx)
                        .is_some_and(|x| super::acl_rules::c_str(x).eq_ignore_ascii_case(a))
                })
            });
        if !allowed {
            return Err(Denied::Command);
        }
    }
    if !s.allkeys {
        let keys = keys.get_or_insert_with(|| keys_needing(spec, args));
        for &(pos, need) in keys.iter() {
            let ok = s
                .keys
                .iter()
                .any(|(p, f)| f & need == need && crate::config::glob_match(p, &args[pos], false));
            if !ok {
                return Err(Denied::Key(pos));
            }
        }
    }
    if !s.allchannels {
        for (pos, pattern) in channels(spec, args) {
            let ch = &args[pos];
            let ok = s.channels.iter().any(|p| {
                if pattern {
                    p == ch
                } else {
                    crate::config::glob_match(p, ch, false)
                }
            });
            if !ok {
                return Err(Denied::Channel(pos));
            }
        }
    }
    Ok(())
}

/// The users table.
pub struct Users {
    pub users: BTreeMap<Vec<u8>, User>,
    compiled: BTreeMap<Vec<u8>, Arc<Perms>>,
}

impl Users {
    fn new() -> Users {
        let mut t = Users {
            users: BTreeMap::new(),
            compiled: BTreeMap::new(),
        };
        t.put(User::new_default());
        t
    }

    pub fn get(&self, name: &[u8]) -> Option<&User> {
        self.users.get(name)
    }

    /// Adds or replaces a user (and its compiled form).
    pub fn put(&mut self, u: User) {
        self.compiled
            .insert(u.name.clone(), Arc::new(Perms::compile(&u)));
        self.users.insert(u.name.clone(), u);
    }

    pub fn remove(&mut self, name: &[u8]) -> bool {
        self.compiled.remove(name);
        self.users.remove(name).is_some()
    }

    pub fn perms(&self, name: &[u8]) -> Option<Arc<Perms>> {
        self.compiled.get(name).cloned()
    }

    /// Replaces every user (ACL LOAD); the default user is created if the new set lacks it.
    pub fn replace_all(&mut self, users: Vec<User>) {
        self.users.clear();
        self.compiled.clear();
        for u in users {
            self.put(u);
        }
        if !self.users.contains_key(&b"default"[..]) {
            self.put(User::new_default());
        }
    }
}

/// Why an entry entered the ACL log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogReason {
    Command,
    Key,
    Channel,
    Auth,
}

impl LogReason {
    pub fn name(self) -> &'static str {
        match self {
            LogReason::Command => "command",
            LogReason::Key => "key",
            LogReason::Channel => "channel",
            LogReason::Auth => "auth",
        }
    }
}

/// Where the refused command came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogContext {
    Toplevel,
    Multi,
    Lua,
}

impl LogContext {
    pub fn name(self) -> &'static str {
        match self {
            LogContext::Toplevel => "toplevel",
            LogContext::Multi => "multi",
            LogContext::Lua => "lua",
        }
    }
}

pub struct LogEntry {
    pub count: u64,
    pub reason: LogReason,
    pub context: LogContext,
    pub object: Vec<u8>,
    pub username: Vec<u8>,
    pub ctime_ms: u64,
    pub client_info: String,
}

/// Process-wide ACL state (in `Globals`).
pub struct Acl {
    users: Mutex<Users>,
    /// Bumped after every change of any user: connections re-read their user when it moved.
    generation: AtomicU64,
    /// The default user is on and needs no password: new connections start authenticated.
    default_open: AtomicBool,
    log: Mutex<VecDeque<LogEntry>>,
}

impl Default for Acl {
    fn default() -> Self {
        Acl::new()
    }
}

impl Acl {
    pub fn new() -> Acl {
        Acl {
            users: Mutex::new(Users::new()),
            generation: AtomicU64::new(1),
            default_open: AtomicBool::new(true),
            log: Mutex::new(VecDeque::new()),
        }
    }

    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    pub fn default_open(&self) -> bool {
        self.default_open.load(Ordering::Relaxed)
    }

    /// The table, for a change or a look: `changed` must follow a change.
    pub fn lock(&self) -> MutexGuard<'_, Users> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes a change made under `lock` (call with the guard still held).
    pub fn changed(&self, t: &Users) {
        let open = t.get(b"default").is_some_and(|d| d.enabled && d.nopass);
        self.default_open.store(open, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn perms(&self, name: &[u8]) -> Option<Arc<Perms>> {
        self.lock().perms(name)
    }

    /// `requirepass`: the default user's password (Redis's ACLUpdateDefaultUserPassword).
    pub fn set_requirepass(&self, pass: Option<&[u8]>) {
        let mut t = self.lock();
        let Some(mut d) = t.get(b"default").cloned() else {
            return;
        };
        let _ = d.apply(b"resetpass", false);
        match pass {
            Some(p) => {
                let mut op = b">".to_vec();
                op.extend_from_slice(p);
                let _ = d.apply(&op, false);
            }
            None => {
                let _ = d.apply(b"nopass", false);
            }
        }
        t.put(d);
        self.changed(&t);
    }

    /// Checks credentials: the user's permissions, None for an unknown or disabled user or a
    /// wrong password.
    pub fn authenticate(&self, user: &[u8], pass: &[u8]) -> Option<Arc<Perms>> {
        let t = self.lock();
        match t.get(user) {
            Some(u) if u.password_ok(pass) => t.perms(user),
            _ => None,
        }
    }

    /// Adds an entry to the ACL log, or counts it in a similar recent one (Redis's
    /// addACLLogEntry: same reason, context, object and user within 60 s, among the last 10).
    pub fn log(&self, mut e: LogEntry, max_len: usize) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let found = log.iter().take(10).position(|x| {
            x.reason == e.reason
                && x.context == e.context
                && x.ctime_ms.abs_diff(e.ctime_ms) <= 60_000
                && x.object == e.object
                && x.username == e.username
        });
        if let Some(i) = found {
            if let Some(mut m) = log.remove(i) {
                m.client_info = std::mem::take(&mut e.client_info);
                m.ctime_ms = e.ctime_ms;
                m.count += 1;
                log.push_front(m);
            }
            return;
        }
        log.push_front(e);
        while log.len() > max_len {
            log.pop_back();
        }
    }

    pub fn log_reset(&self) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Runs `f` over the log, newest first.
    pub fn with_log<R>(&self, f: impl FnOnce(&VecDeque<LogEntry>) -> R) -> R {
        f(&self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Checks `spec`/`args` for the user `name` (ACL DRYRUN): the registry is built.
/// What the ACL log records for a refusal: its reason and object (the command's full name, or
/// the refused key or channel).
pub fn log_reason_and_object(d: Denied, name: &str, args: &[Bytes]) -> (LogReason, Vec<u8>) {
    match d {
        Denied::Command => (LogReason::Command, name.as_bytes().to_vec()),
        Denied::Key(i) => (LogReason::Key, args[i].to_vec()),
        Denied::Channel(i) => (LogReason::Channel, args[i].to_vec()),
    }
}

/// The caller's CLIENT INFO line a script carries for ACL log entries of its refused calls;
/// None for a user with every permission (never refused), so scripts of such users pay
/// nothing.
pub fn caller_info_for_log(c: &crate::server::conn::Conn) -> Option<Arc<str>> {
    (!c.perms.unrestricted).then(|| Arc::from(c.info.describe(super::globals::unix_ms())))
}

/// The channel patterns a user's subscribed clients must be checked against after the user
/// changed from `old` to `new` (Redis's `getUpcomingChannelList`): None when nothing can have
/// been revoked (some new selector allows every channel, or every old pattern is still listed
/// and no old selector allowed every channel).
pub fn channels_to_recheck(old: &User, new: &User) -> Option<Vec<Vec<u8>>> {
    if new.selectors.iter().any(|s| s.allchannels) {
        return None;
    }
    let upcoming: Vec<Vec<u8>> = new
        .selectors
        .iter()
        .flat_map(|s| s.channels.iter().cloned())
        .collect();
    let still_allowed = old
        .selectors
        .iter()
        .all(|s| !s.allchannels && s.channels.iter().all(|c| upcoming.contains(c)));
    (!still_allowed).then_some(upcoming)
}

/// Whether a subscription may stay under `upcoming` (Redis's `ACLCheckChannelAgainstList`): a
/// pattern subscription must be listed literally, a channel must match a listed pattern.
pub fn subscription_allowed(upcoming: &[Vec<u8>], name: &[u8], is_pattern: bool) -> bool {
    upcoming.iter().any(|p| {
        if is_pattern {
            p == name
        } else {
            crate::config::glob_match(p, name, false)
        }
    })
}

pub fn dry_run(perms: &Perms, spec: &CommandSpec, args: &[Bytes]) -> Result<(), Denied> {
    let _ = registry();
    perms.check(spec, args)
}

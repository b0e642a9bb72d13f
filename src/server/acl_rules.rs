//! Redis 7.0's ACL rule language: users, selectors and the rules that change them (ACL SETUSER,
//! `user` directives, ACL files), and their description back as rules (ACL LIST, GETUSER).
//!
//! Owns the command id space the permission bitsets index (see [`registry`]): every command and
//! subcommand of the table, then the Redis 7.0 commands Tessera does not implement
//! (replication, MIGRATE, LOLWUT...). Those are listed so that rules
//! naming them are accepted, and category rules are counted over the same commands as in Redis,
//! which keeps ACL LIST and GETUSER identical to Redis's; they can never run here.
//!
//! Pure data and functions: nothing here touches connections, shards or locks. `super::acl`
//! keeps the users table and compiles users into what connections check.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use crate::commands::{self, CommandSpec};

/// Categories in Redis's order (ACL CAT, the describe algorithm's preference order).
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Redis 7.0 commands Tessera does not have, with their categories (COMMAND INFO of
/// redis-server 7.0.15). Containers come before their subcommands.
const NOT_IMPLEMENTED: &[(&str, &[&str])] = &[
    ("failover", &["admin", "slow", "dangerous"]),
    ("migrate", &["keyspace", "write", "slow", "dangerous"]),
    ("psync", &["admin", "slow", "dangerous"]),
    ("replconf", &["admin", "slow", "dangerous"]),
    ("replicaof", &["admin", "slow", "dangerous"]),
    (
        "restore-asking",
        &["keyspace", "write", "slow", "dangerous"],
    ),
    ("slaveof", &["admin", "slow", "dangerous"]),
    ("sync", &["admin", "slow", "dangerous"]),
];

/// One entry of the command id space.
pub struct CmdMeta {
    /// Full name (`config|get`), lower case.
    pub name: String,
    /// Bit `j` set: in category `CATEGORIES[j]`.
    pub cats: u32,
    pub children: Vec<u32>,
    pub is_sub: bool,
    /// A command of the table (not one of the Redis commands Tessera lacks).
    pub real: bool,
}

/// The command id space. Ids of the table's commands and subcommands are their statistics slots
/// (`commands::stat_index`), so a call's id costs nothing to find.
pub struct Registry {
    pub cmds: Vec<CmdMeta>,
    by_name: HashMap<String, u32>,
    /// Top-level commands in the order rules are described.
    top: Vec<u32>,
    /// Per category, the ids in it (commands and subcommands).
    pub in_cat: Vec<Vec<u32>>,
    /// The reserved bit that `+@all` sets: "may run commands added later".
    pub future: u32,
    pub words: usize,
}

pub fn category_bit(name: &[u8]) -> Option<u32> {
    CATEGORIES
        .iter()
        .position(|c| c.as_bytes().eq_ignore_ascii_case(name))
        .map(|j| 1 << j)
}

fn cat_mask(names: &[&str]) -> u32 {
    names
        .iter()
        .filter_map(|n| category_bit(n.trim_start_matches('@').as_bytes()))
        .fold(0, |a, b| a | b)
}

pub fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(build_registry)
}

fn build_registry() -> Registry {
    let names = commands::stat_names();
    let mut cmds: Vec<CmdMeta> = names
        .iter()
        .map(|n| CmdMeta {
            name: n.to_string(),
            cats: 0,
            children: Vec::new(),
            is_sub: n.contains('|'),
            real: true,
        })
        .collect();
    let mut top = Vec::new();
    for s in commands::table() {
        let id = s.index();
        cmds[id].cats = cat_mask(&commands::server_family::command_categories(s));
        top.push(id as u32);
        for x in s.subcommands.unwrap_or(&[]) {
            let sid = commands::stat_names()
                .iter()
                .position(|n| *n == x.full_name)
                .expect("subcommand slot");
            cmds[sid].cats = cat_mask(&commands::server_family::subcommand_categories(s, x));
            cmds[id].children.push(sid as u32);
        }
    }
    let mut by_name: HashMap<String, u32> = cmds
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), i as u32))
        .collect();
    for (name, cats) in NOT_IMPLEMENTED {
        // A command implemented since the list was written keeps its real id: a second entry
        // would take its name, and rules about it would then miss the command itself.
        if by_name.contains_key(*name) {
            continue;
        }
        let id = cmds.len() as u32;
        let is_sub = name.contains('|');
        cmds.push(CmdMeta {
            name: name.to_string(),
            cats: cat_mask(cats),
            children: Vec::new(),
            is_sub,
            real: false,
        });
        by_name.insert(name.to_string(), id);
        if is_sub {
            let parent = name.split('|').next().unwrap_or_default();
            if let Some(&p) = by_name.get(parent) {
                cmds[p as usize].children.push(id);
            }
        } else {
            top.push(id);
        }
    }
    let future = cmds.len() as u32;
    let words = (cmds.len() + 1).div_ceil(64);
    let in_cat = (0..CATEGORIES.len())
        .map(|j| {
            (0..cmds.len() as u32)
                .filter(|&i| cmds[i as usize].cats & (1 << j) != 0)
                .collect()
        })
        .collect();
    Registry {
        cmds,
        by_name,
        top,
        in_cat,
        future,
        words,
    }
}

impl Registry {
    /// A command by name as ACL rules name it (`get`, `config|get`), case-insensitive, the
    /// name up to a NUL byte (Redis reads it as a C string).
    pub fn lookup(&self, name: &[u8]) -> Option<u32> {
        let name = c_str(name);
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        if lower.matches('|').count() > 1 {
            return None;
        }
        self.by_name.get(&lower).copied()
    }

    /// The id of a call (the subcommand's for a container called with one).
    #[inline]
    pub fn id_of(spec: &CommandSpec, args: &[bytes::Bytes]) -> u32 {
        commands::stat_index(spec, args) as u32
    }
}

pub fn c_str(s: &[u8]) -> &[u8] {
    s.iter().position(|&b| b == 0).map_or(s, |i| &s[..i])
}

/// Compares a rule with a keyword the way Redis's `strcasecmp` does on a C string.
fn kw(op: &[u8], word: &str) -> bool {
    c_str(op).eq_ignore_ascii_case(word.as_bytes())
}

/// Why a rule was refused (Redis's errno values from ACLSetUser).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleError {
    UnknownName,
    Syntax,
    KeyAfterAll,
    ChannelAfterAll,
    NoSuchPassword,
    BadHash,
    FirstArgOfSub,
}

impl RuleError {
    pub fn message(self) -> &'static str {
        match self {
            RuleError::UnknownName => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeyAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::FirstArgOfSub => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

pub const KEY_READ: u8 = 1;
pub const KEY_WRITE: u8 = 2;
pub const KEY_ALL: u8 = 3;

/// One set of permissions: the root selector of a user, or one of its `(...)` selectors.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Selector {
    pub root: bool,
    /// Redis's ALLCOMMANDS flag: set by `+@all`, cleared by any rule that takes a command away.
    pub allcommands: bool,
    pub bits: Vec<u64>,
    /// Allowed first arguments of otherwise denied commands (`+select|0`), by command id.
    pub firstargs: BTreeMap<u32, Vec<Vec<u8>>>,
    pub allkeys: bool,
    /// Key patterns with their `KEY_READ`/`KEY_WRITE` permissions, in the order added.
    pub keys: Vec<(Vec<u8>, u8)>,
    pub allchannels: bool,
    pub channels: Vec<Vec<u8>>,
}

impl Selector {
    pub fn new(root: bool, allchannels: bool) -> Selector {
        Selector {
            root,
            allcommands: false,
            bits: vec![0; registry().words],
            firstargs: BTreeMap::new(),
            allkeys: false,
            keys: Vec::new(),
            allchannels,
            channels: Vec::new(),
        }
    }

    #[inline]
    pub fn bit(&self, id: u32) -> bool {
        self.bits
            .get(id as usize / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    fn set_bit(&mut self, id: u32, on: bool) {
        let (w, b) = (id as usize / 64, 1u64 << (id % 64));
        if on {
            self.bits[w] |= b;
        } else {
            self.bits[w] &= !b;
            self.allcommands = false;
        }
    }

    /// Allows or denies a command, and every subcommand of a container.
    fn change(&mut self, id: u32, allow: bool) {
        self.set_bit(id, allow);
        self.firstargs.remove(&id);
        for &c in &registry().cmds[id as usize].children {
            self.set_bit(c, allow);
        }
    }

    fn category(&mut self, bit: u32, allow: bool) {
        let r = registry();
        let j = bit.trailing_zeros() as usize;
        for &id in &r.in_cat[j] {
            self.change(id, allow);
        }
    }

    fn all_commands(&mut self, allow: bool) {
        let fill = if allow { u64::MAX } else { 0 };
        self.bits.iter_mut().for_each(|w| *w = fill);
        self.allcommands = allow;
        self.firstargs.clear();
    }

    /// Applies one selector rule (Redis's ACLSetSelector).
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let r = registry();
        if kw(op, "allkeys") || kw(op, "~*") {
            self.allkeys = true;
            self.keys.clear();
        } else if kw(op, "resetkeys") {
            self.allkeys = false;
            self.keys.clear();
        } else if kw(op, "allchannels") || kw(op, "&*") {
            self.allchannels = true;
            self.channels.clear();
        } else if kw(op, "resetchannels") {
            self.allchannels = false;
            self.channels.clear();
        } else if kw(op, "allcommands") || kw(op, "+@all") {
            self.all_commands(true);
        } else if kw(op, "nocommands") || kw(op, "-@all") {
            self.all_commands(false);
        } else if op[0] == b'~' || op[0] == b'%' {
            if self.allkeys {
                return Err(RuleError::KeyAfterAll);
            }
            let mut flags = 0u8;
            let mut offset = 1;
            if op[0] == b'%' {
                while offset < op.len() {
                    let c = op[offset];
                    if c.eq_ignore_ascii_case(&b'r') && flags & KEY_READ == 0 {
                        flags |= KEY_READ;
                    } else if c.eq_ignore_ascii_case(&b'w') && flags & KEY_WRITE == 0 {
                        flags |= KEY_WRITE;
                    } else if c == b'~' {
                        offset += 1;
                        break;
                    } else {
                        return Err(RuleError::Syntax);
                    }
                    offset += 1;
                }
                // A `%` rule must grant something (`%R` alone is a pattern "" that Redis takes).
                if flags == 0 {
                    return Err(RuleError::Syntax);
                }
            } else {
                flags = KEY_ALL;
            }
            let pat = &op[offset..];
            if has_spaces(pat) {
                return Err(RuleError::Syntax);
            }
            match self.keys.iter_mut().find(|(p, _)| p == pat) {
                Some((_, f)) => *f |= flags,
                None => self.keys.push((pat.to_vec(), flags)),
            }
            self.allkeys = false;
        } else if op[0] == b'&' {
            if self.allchannels {
                return Err(RuleError::ChannelAfterAll);
            }
            let pat = &op[1..];
            if has_spaces(pat) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|p| p == pat) {
                self.channels.push(pat.to_vec());
            }
            self.allchannels = false;
        } else if op[0] == b'+' && op.get(1) != Some(&b'@') {
            let name = c_str(&op[1..]);
            match name.iter().rposition(|&b| b == b'|') {
                None => {
                    let id = r.lookup(name).ok_or(RuleError::UnknownName)?;
                    self.change(id, true);
                }
                Some(bar) => {
                    let (base, sub) = (&name[..bar], &name[bar + 1..]);
                    let id = r.lookup(base).ok_or(RuleError::UnknownName)?;
                    if r.cmds[id as usize].is_sub {
                        return Err(RuleError::FirstArgOfSub);
                    }
                    if sub.is_empty() {
                        return Err(RuleError::Syntax);
                    }
                    if !r.cmds[id as usize].children.is_empty() {
                        let sid = r.lookup(name).ok_or(RuleError::UnknownName)?;
                        self.change(sid, true);
                    } else {
                        let list = self.firstargs.entry(id).or_default();
                        if !list.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                            list.push(sub.to_vec());
                        }
                    }
                }
            }
        } else if op[0] == b'-' && op.get(1) != Some(&b'@') {
            let id = r.lookup(&op[1..]).ok_or(RuleError::UnknownName)?;
            self.change(id, false);
        } else if (op[0] == b'+' || op[0] == b'-') && op.get(1) == Some(&b'@') {
            let bit = category_bit(c_str(&op[2..])).ok_or(RuleError::UnknownName)?;
            self.category(bit, op[0] == b'+');
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    fn count_cat(&self, j: usize) -> (usize, usize) {
        let on = registry().in_cat[j]
            .iter()
            .filter(|&&id| self.bit(id))
            .count();
        (on, registry().in_cat[j].len() - on)
    }

    /// The command rules that rebuild this selector's bitmap, as Redis 7.0 writes them
    /// (ACLDescribeSelectorCommandRules): `+@all` or `-@all`, the categories that fit best,
    /// then single commands. Single commands come in table order, where Redis's come in its
    /// hash table's order.
    pub fn describe_commands(&self) -> String {
        let r = registry();
        let additive = !self.bit(r.future);
        let mut rules = String::new();
        let mut fake = Selector::new(false, false);
        if additive {
            rules.push_str("-@all ");
            fake.all_commands(false);
        } else {
            rules.push_str("+@all ");
            fake.all_commands(true);
        }
        let mut temp = self.clone();
        let mut applied = [false; 21];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0);
            for (j, done) in applied.iter().enumerate() {
                if *done {
                    continue;
                }
                let (on, off) = temp.count_cat(j);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(j) = best else { break };
            fake.category(1 << j, additive);
            temp.category(1 << j, !additive);
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(CATEGORIES[j]);
            rules.push(' ');
            applied[j] = true;
        }
        for &id in &r.top {
            self.describe_single(&mut fake, id, &mut rules);
        }
        rules.pop();
        rules
    }

    fn describe_single(&self, fake: &mut Selector, id: u32, rules: &mut String) {
        let r = registry();
        let meta = &r.cmds[id as usize];
        let userbit = self.bit(id);
        if userbit != fake.bit(id) {
            rules.push(if userbit { '+' } else { '-' });
            rules.push_str(&meta.name);
            rules.push(' ');
            fake.change(id, userbit);
        }
        for &c in &meta.children {
            self.describe_single(fake, c, rules);
        }
        if !userbit {
            for a in self.firstargs.get(&id).into_iter().flatten() {
                rules.push('+');
                rules.push_str(&meta.name);
                rules.push('|');
                rules.push_str(&String::from_utf8_lossy(a));
                rules.push(' ');
            }
        }
    }

    /// A key pattern as a rule: `~p`, `%R~p` or `%W~p`.
    pub fn key_rule(p: &[u8], flags: u8) -> Vec<u8> {
        let mut v = match flags {
            KEY_READ => b"%R~".to_vec(),
            KEY_WRITE => b"%W~".to_vec(),
            _ => b"~".to_vec(),
        };
        v.extend_from_slice(p);
        v
    }

    /// Keys, channels and commands as ACL LIST shows them (ACLDescribeSelector).
    pub fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.allkeys {
            out.extend_from_slice(b"~* ");
        } else {
            for (p, f) in &self.keys {
                out.extend_from_slice(&Selector::key_rule(p, *f));
                out.push(b' ');
            }
        }
        if self.allchannels {
            out.extend_from_slice(b"&* ");
        } else {
            out.extend_from_slice(b"resetchannels ");
            for c in &self.channels {
                out.push(b'&');
                out.extend_from_slice(c);
                out.push(b' ');
            }
        }
        out.extend_from_slice(self.describe_commands().as_bytes());
        out
    }
}

/// Whether a name or pattern has a space or a NUL (Redis's ACLStringHasSpaces).
pub fn has_spaces(s: &[u8]) -> bool {
    s.iter()
        .any(|&b| b == 0 || b == b' ' || (b'\t'..=b'\r').contains(&b))
}

/// A user: flags, password hashes and selectors (the root one first).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct User {
    pub name: Vec<u8>,
    pub enabled: bool,
    pub nopass: bool,
    /// None, Some(true) for `sanitize-payload`, Some(false) for `skip-sanitize-payload`.
    pub sanitize: Option<bool>,
    /// SHA-256 hashes in lower-case hex.
    pub passwords: Vec<String>,
    pub selectors: Vec<Selector>,
}

impl User {
    /// A new user as ACL SETUSER creates it: off, no passwords, no permissions.
    pub fn new(name: &[u8], allchannels: bool) -> User {
        User {
            name: name.to_vec(),
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            selectors: vec![Selector::new(true, allchannels)],
        }
    }

    /// The `default` user as the server starts: everything, no password.
    pub fn new_default() -> User {
        let mut u = User::new(b"default", false);
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = u.apply(op.as_bytes(), false);
        }
        u
    }

    /// Applies one rule (Redis's ACLSetUser). `allchannels` is `acl-pubsub-default`.
    pub fn apply(&mut self, op: &[u8], allchannels: bool) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        if kw(op, "on") {
            self.enabled = true;
        } else if kw(op, "off") {
            self.enabled = false;
        } else if kw(op, "skip-sanitize-payload") {
            self.sanitize = Some(false);
        } else if kw(op, "sanitize-payload") {
            self.sanitize = Some(true);
        } else if kw(op, "nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if kw(op, "resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let hash = if op[0] == b'>' {
                sha256_hex(&op[1..])
            } else {
                check_hash(&op[1..])?
            };
            if !self.passwords.contains(&hash) {
                self.passwords.push(hash);
            }
            self.nopass = false;
        } else if op[0] == b'<' || op[0] == b'!' {
            let hash = if op[0] == b'<' {
                sha256_hex(&op[1..])
            } else {
                check_hash(&op[1..])?
            };
            match self.passwords.iter().position(|p| *p == hash) {
                Some(i) => {
                    self.passwords.remove(i);
                }
                None => return Err(RuleError::NoSuchPassword),
            }
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            let mut s = Selector::new(false, allchannels);
            let inner = String::from_utf8_lossy(&op[1..op.len() - 1]).into_owned();
            for part in split_args(inner.as_bytes()).ok_or(RuleError::Syntax)? {
                s.apply(&part)?;
            }
            self.selectors.push(s);
        } else if kw(op, "clearselectors") {
            self.selectors.truncate(1);
        } else if kw(op, "reset") {
            for o in ["resetpass", "resetkeys", "resetchannels"] {
                let _ = self.apply(o.as_bytes(), allchannels);
            }
            if allchannels {
                let _ = self.apply(b"allchannels", allchannels);
            }
            for o in ["off", "sanitize-payload", "clearselectors", "-@all"] {
                let _ = self.apply(o.as_bytes(), allchannels);
            }
        } else {
            self.selectors[0].apply(op)?;
        }
        Ok(())
    }

    /// Flags in Redis's order (ACL LIST, GETUSER).
    pub fn flags(&self) -> Vec<&'static str> {
        let mut v = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            v.push("nopass");
        }
        match self.sanitize {
            Some(false) => v.push("skip-sanitize-payload"),
            Some(true) => v.push("sanitize-payload"),
            None => {}
        }
        v
    }

    /// The user as ACL LIST and ACL SAVE write it, after `user <name> `.
    pub fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for f in self.flags() {
            out.extend_from_slice(f.as_bytes());
            out.push(b' ');
        }
        for p in &self.passwords {
            out.push(b'#');
            out.extend_from_slice(p.as_bytes());
            out.push(b' ');
        }
        for s in &self.selectors {
            if s.root {
                out.extend_from_slice(&s.describe());
            } else {
                out.extend_from_slice(b" (");
                out.extend_from_slice(&s.describe());
                out.push(b')');
            }
        }
        out
    }

    /// Whether `pass` authenticates this user (disabled users never authenticate).
    pub fn password_ok(&self, pass: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let h = sha256_hex(pass);
        let mut ok = false;
        for p in &self.passwords {
            // Compared in constant time, every hash, like Redis.
            ok |= p
                .bytes()
                .zip(h.bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                == 0;
        }
        ok
    }
}

fn check_hash(h: &[u8]) -> Result<String, RuleError> {
    if h.len() != 64
        || !h
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return Err(RuleError::BadHash);
    }
    Ok(String::from_utf8_lossy(h).into_owned())
}

/// Merges selector rules spread over several arguments (`(~a` `+get)`), as Redis does for
/// SETUSER and configuration lines. Err: the index of an unmatched opening parenthesis.
pub fn merge_selectors(args: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::new();
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (j, op) in args.iter().enumerate() {
        if open.is_none() && op.first() == Some(&b'(') && op.last() != Some(&b')') {
            open = Some((j, op.clone()));
            continue;
        }
        if let Some((_, sel)) = open.as_mut() {
            sel.push(b' ');
            sel.extend_from_slice(c_str(op));
            if op.last() == Some(&b')') {
                out.push(open.take().map(|(_, s)| s).unwrap_or_default());
            }
            continue;
        }
        out.push(op.clone());
    }
    match open {
        Some((j, _)) => Err(j),
        None => Ok(out),
    }
}

/// Splits a line into arguments like Redis's `sdssplitargs` (quotes and escapes). None on
/// unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    crate::config::split_args(line)
}

/// SHA-256 of `data` in lower-case hex (what Redis keeps of a password).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    use std::fmt::Write as _;
    let digest = sha2::Sha256::digest(data);
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_values() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"p1"),
            "f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a"
        );
        let long = vec![b'a'; 1000];
        assert_eq!(sha256_hex(&long).len(), 64);
    }

    #[test]
    fn describe_matches_redis_examples() {
        let mut u = User::new(b"u2", false);
        for op in [
            "on",
            "~a*",
            "%R~r*",
            "%W~w*",
            "&ch*",
            "+get",
            "+config|get",
            "-@all",
            "+@string",
            "-set",
        ] {
            u.apply(op.as_bytes(), false).unwrap();
        }
        assert_eq!(
            String::from_utf8_lossy(&u.describe()),
            "on ~a* %R~r* %W~w* resetchannels &ch* -@all +@string -set"
        );
        assert_eq!(
            String::from_utf8_lossy(&User::new_default().describe()),
            "on nopass ~* &* +@all"
        );
    }

    #[test]
    fn rule_errors() {
        let mut u = User::new(b"x", false);
        assert_eq!(u.apply(b"%~x", false), Err(RuleError::Syntax));
        assert_eq!(u.apply(b"%RR~x", false), Err(RuleError::Syntax));
        assert_eq!(u.apply(b"+nosuch", false), Err(RuleError::UnknownName));
        assert_eq!(
            u.apply(b"+config|get|x", false),
            Err(RuleError::FirstArgOfSub)
        );
        assert_eq!(u.apply(b"#abc", false), Err(RuleError::BadHash));
        assert_eq!(u.apply(b"<nope", false), Err(RuleError::NoSuchPassword));
        u.apply(b"allkeys", false).unwrap();
        assert_eq!(u.apply(b"~x", false), Err(RuleError::KeyAfterAll));
    }
}

//! COMMAND DOCS's argument trees and history, as Redis 7.0 reports them.
//!
//! Owns the per-command documentation that is too big for the command declarations themselves:
//! each command's and subcommand's arguments, written in a small language (one string per
//! command, in `table`), and the versions of its history. The table holds exactly the commands
//! and subcommands Tessera has (tested). The strings are parsed once, at the first COMMAND
//! DOCS, into one global tree that every shard shares. This module must never be consulted on
//! any other command's path, and never decides how a command parses its arguments (the
//! handlers do): the trees only describe them, as Redis's do.
//!
//! History versions are Redis's; the history sentences are Tessera's own words, as the
//! summaries are.
//!
//! # The argument language
//!
//! A spec is a list of arguments separated by spaces; an empty spec means the command has no
//! `arguments` field at all (Redis leaves it out, as for DBSIZE). Each argument is
//!
//! ```text
//! flags core modifiers [ '(' arguments ')' ]
//! ```
//!
//! - `flags`: any of `?` (optional), `*` (multiple) and `+` (multiple_token, which needs `*`),
//!   each at most once and in that order: `?*+pattern:pattern=GET#1`.
//! - `core`, one of
//!   - `name:type`, where `type` is `key`, `string`, `integer`, `double`, `pattern`,
//!     `unix-time`, `oneof` or `block` (the name may itself hold a `:`, as CLIENT KILL's
//!     `ip:port`: the type is what follows the last one);
//!   - `name=TOKEN`: a pure token whose name is not its token lower-cased (`change=CH`,
//!     `equal==`, `auto_id=*`; the token may be empty: `empty_string=`);
//!   - `TOKEN` (starting with an upper-case letter): a pure token named after its token in
//!     lower case (`NX` is the token `NX` named `nx`).
//! - `modifiers`, each at most once and in this order: `=TOKEN` (the token that introduces a
//!   typed argument, `seconds:integer=EX`), `#N` (its key spec index: required for a key,
//!   allowed on others, as SORT's patterns), `@VERSION` (since), `!VERSION` (deprecated since).
//! - `( ... )`: the arguments of a `oneof` or a `block`, which must have at least one; no other
//!   type may have them.
//!
//! Names are lower case (`a-z`, digits, `_`, `-`, `:`, `/`), versions are `X.Y.Z`. Anything
//! else is refused with the position of the fault: a unit test parses every spec, so a typo
//! fails `cargo test` rather than a client's COMMAND DOCS.
//!
//! Example, SET: `key:key#0 value:string ?condition:oneof@2.6.12(NX XX) ?GET@6.2.0
//! ?expiration:oneof(seconds:integer=EX@2.6.12 ... KEEPTTL@6.0.0)`.

mod table;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use crate::protocol::Reply;

/// One history entry: the version, and what changed then (in Tessera's words).
pub type History = (&'static str, &'static str);

/// One command's or subcommand's entry in the table, as written.
pub struct DocEntry {
    /// The full name (`get`, `config|set`).
    pub name: &'static str,
    /// Its arguments, in the language above.
    pub args: &'static str,
    pub history: &'static [History],
}

/// Declares an entry of the table (see `table`).
const fn d(name: &'static str, args: &'static str) -> DocEntry {
    DocEntry {
        name,
        args,
        history: &[],
    }
}

impl DocEntry {
    const fn history(mut self, history: &'static [History]) -> DocEntry {
        self.history = history;
        self
    }
}

/// An argument's type, as COMMAND DOCS names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgType {
    String,
    Integer,
    Double,
    Key,
    Pattern,
    UnixTime,
    PureToken,
    OneOf,
    Block,
}

impl ArgType {
    pub fn name(self) -> &'static str {
        match self {
            ArgType::String => "string",
            ArgType::Integer => "integer",
            ArgType::Double => "double",
            ArgType::Key => "key",
            ArgType::Pattern => "pattern",
            ArgType::UnixTime => "unix-time",
            ArgType::PureToken => "pure-token",
            ArgType::OneOf => "oneof",
            ArgType::Block => "block",
        }
    }

    /// A type written after `name:` (a pure token is never written that way).
    fn parse(s: &str) -> Option<ArgType> {
        Some(match s {
            "string" => ArgType::String,
            "integer" => ArgType::Integer,
            "double" => ArgType::Double,
            "key" => ArgType::Key,
            "pattern" => ArgType::Pattern,
            "unix-time" => ArgType::UnixTime,
            "oneof" => ArgType::OneOf,
            "block" => ArgType::Block,
            _ => return None,
        })
    }

    fn has_children(self) -> bool {
        matches!(self, ArgType::OneOf | ArgType::Block)
    }
}

pub const OPTIONAL: u8 = 1;
pub const MULTIPLE: u8 = 2;
pub const MULTIPLE_TOKEN: u8 = 4;

/// One argument of a command's tree.
#[derive(Debug, PartialEq, Eq)]
pub struct Arg {
    pub name: Cow<'static, str>,
    pub kind: ArgType,
    pub key_spec_index: Option<u32>,
    pub token: Option<&'static str>,
    pub since: Option<&'static str>,
    pub deprecated_since: Option<&'static str>,
    /// `OPTIONAL`, `MULTIPLE`, `MULTIPLE_TOKEN`.
    pub flags: u8,
    /// A oneof's or a block's arguments.
    pub args: Vec<Arg>,
}

/// A command's documentation beyond what its declaration holds.
pub struct CommandDocs {
    /// Empty: the command has no `arguments` field.
    pub args: Vec<Arg>,
    /// Empty: the command has no `history` field.
    pub history: &'static [History],
}

/// The documentation of a command or subcommand by its full name (`get`, `config|set`), parsed
/// at the first call. None for a name the table lacks (a unit test makes sure none does).
pub fn lookup(full_name: &str) -> Option<&'static CommandDocs> {
    static DOCS: OnceLock<HashMap<&'static str, CommandDocs>> = OnceLock::new();
    DOCS.get_or_init(|| {
        table::DOCS
            .iter()
            .map(|e| {
                // Every spec parses (tested), so this never fires in a build that passed.
                let args = parse(e.args).unwrap_or_else(|err| panic!("{}: {err}", e.name));
                (
                    e.name,
                    CommandDocs {
                        args,
                        history: e.history,
                    },
                )
            })
            .collect()
    })
    .get(full_name)
}

/// Writes COMMAND DOCS's `history` value: a set of (version, text) pairs.
pub fn reply_history(r: &mut Reply, history: &[History]) {
    r.set(history.len());
    for (version, text) in history {
        r.array(2);
        r.bulk(version.as_bytes());
        r.bulk(text.as_bytes());
    }
}

/// Writes COMMAND DOCS's `arguments` value: an array of maps, fields in Redis's order.
pub fn reply_args(r: &mut Reply, args: &[Arg]) {
    r.array(args.len());
    for a in args {
        let fields = 2
            + usize::from(a.key_spec_index.is_some())
            + usize::from(a.token.is_some())
            + usize::from(a.since.is_some())
            + usize::from(a.deprecated_since.is_some())
            + usize::from(a.flags != 0)
            + usize::from(a.kind.has_children());
        r.map(fields);
        r.bulk(b"name");
        r.bulk(a.name.as_bytes());
        r.bulk(b"type");
        r.bulk(a.kind.name().as_bytes());
        if let Some(i) = a.key_spec_index {
            r.bulk(b"key_spec_index");
            r.int(i as i64);
        }
        if let Some(token) = a.token {
            r.bulk(b"token");
            r.bulk(token.as_bytes());
        }
        if let Some(since) = a.since {
            r.bulk(b"since");
            r.bulk(since.as_bytes());
        }
        // After `since` and before `flags`, as Redis's writer has it (no Redis 7.0 argument
        // has all three to show the order on the wire).
        if let Some(since) = a.deprecated_since {
            r.bulk(b"deprecated_since");
            r.bulk(since.as_bytes());
        }
        if a.flags != 0 {
            const NAMES: [(u8, &str); 3] = [
                (OPTIONAL, "optional"),
                (MULTIPLE, "multiple"),
                (MULTIPLE_TOKEN, "multiple_token"),
            ];
            r.bulk(b"flags");
            r.set(a.flags.count_ones() as usize);
            for (flag, name) in NAMES {
                if a.flags & flag != 0 {
                    r.simple(name);
                }
            }
        }
        if a.kind.has_children() {
            r.bulk(b"arguments");
            reply_args(r, &a.args);
        }
    }
}

/// Parses a spec (see the module's documentation) into its arguments.
pub fn parse(spec: &'static str) -> Result<Vec<Arg>, String> {
    let mut p = Parser { s: spec, pos: 0 };
    let args = p.list(false)?;
    debug_assert_eq!(p.pos, spec.len());
    Ok(args)
}

struct Parser {
    s: &'static str,
    pos: usize,
}

/// Characters that end a name, a type or a token.
fn ends_word(c: u8) -> bool {
    matches!(c, b' ' | b'=' | b'#' | b'@' | b'!' | b'(' | b')')
}

impl Parser {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn fail<T>(&self, msg: &str) -> Result<T, String> {
        Err(format!("at byte {} of {:?}: {msg}", self.pos, self.s))
    }

    /// Arguments up to the end (top level) or up to the `)` that closes a group, which is
    /// left for the caller. One space between arguments, none around the list.
    fn list(&mut self, in_group: bool) -> Result<Vec<Arg>, String> {
        let mut args = Vec::new();
        if self.peek().is_none() && !in_group {
            return Ok(args);
        }
        loop {
            args.push(self.arg()?);
            match self.peek() {
                None if !in_group => return Ok(args),
                None => return self.fail("unclosed `(`"),
                Some(b')') if in_group => return Ok(args),
                Some(b')') => return self.fail("`)` without `(`"),
                Some(b' ') => {
                    self.pos += 1;
                    if matches!(self.peek(), None | Some(b' ') | Some(b')')) {
                        return self.fail("a space where an argument should be");
                    }
                }
                Some(_) => return self.fail("expected a space after an argument"),
            }
        }
    }

    /// The characters up to the next that ends a word.
    fn word(&mut self) -> &'static str {
        let start = self.pos;
        while self.peek().is_some_and(|c| !ends_word(c)) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    fn arg(&mut self) -> Result<Arg, String> {
        let mut flags = 0;
        for (c, flag) in [(b'?', OPTIONAL), (b'*', MULTIPLE), (b'+', MULTIPLE_TOKEN)] {
            if self.peek() == Some(c) {
                flags |= flag;
                self.pos += 1;
            }
        }
        if flags & MULTIPLE_TOKEN != 0 && flags & MULTIPLE == 0 {
            return self.fail("`+` (multiple_token) without `*` (multiple)");
        }
        let core_at = self.pos;
        let core = self.word();
        let (name, kind, mut token) = if let Some((name, ty)) = core.rsplit_once(':') {
            let Some(kind) = ArgType::parse(ty) else {
                return self.fail(&format!("unknown type {ty:?}"));
            };
            (Cow::Borrowed(name), kind, None)
        } else if core.starts_with(|c: char| c.is_ascii_uppercase()) {
            if !core
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
            {
                return self.fail(&format!("{core:?} is neither a name nor a token"));
            }
            (
                Cow::Owned(core.to_ascii_lowercase()),
                ArgType::PureToken,
                Some(core),
            )
        } else if self.peek() == Some(b'=') {
            self.pos += 1;
            (
                Cow::Borrowed(core),
                ArgType::PureToken,
                Some(self.token(true)?),
            )
        } else {
            return self.fail(&format!("{core:?} has neither a type nor a token"));
        };
        let name_ok = |c: u8| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b':' | b'/')
        };
        if name.is_empty() || !name.bytes().all(name_ok) {
            self.pos = core_at;
            return self.fail(&format!("bad argument name {name:?}"));
        }
        if self.peek() == Some(b'=') {
            if kind == ArgType::PureToken {
                return self.fail("a pure token has one token");
            }
            self.pos += 1;
            token = Some(self.token(false)?);
        }
        let mut key_spec_index = None;
        if self.peek() == Some(b'#') {
            self.pos += 1;
            let n = self.word();
            match n.parse::<u32>() {
                Ok(i) if !n.starts_with('+') => key_spec_index = Some(i),
                _ => return self.fail(&format!("bad key spec index {n:?}")),
            }
        }
        if kind == ArgType::Key && key_spec_index.is_none() {
            return self.fail(&format!("key {name:?} without its key spec index (`#N`)"));
        }
        let since = self.version(b'@')?;
        let deprecated_since = self.version(b'!')?;
        let mut args = Vec::new();
        if self.peek() == Some(b'(') {
            if !kind.has_children() {
                return self.fail(&format!("a {} has no arguments", kind.name()));
            }
            self.pos += 1;
            if self.peek() == Some(b')') {
                return self.fail("an empty group");
            }
            args = self.list(true)?;
            self.pos += 1;
        } else if kind.has_children() {
            return self.fail(&format!("{} {name:?} without its arguments", kind.name()));
        }
        Ok(Arg {
            name,
            kind,
            key_spec_index,
            token,
            since,
            deprecated_since,
            flags,
            args,
        })
    }

    /// A token after its `=`: upper-case letters, digits, `_` and `-`, or one symbol (XADD's
    /// `*`, `=` and `~`, XGROUP's `$`), or nothing where `empty` allows (MIGRATE's `""`).
    fn token(&mut self, empty: bool) -> Result<&'static str, String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| !matches!(c, b' ' | b'#' | b'@' | b'!' | b'(' | b')'))
        {
            self.pos += 1;
        }
        let t = &self.s[start..self.pos];
        let word = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_' || c == b'-';
        let ok = match t.as_bytes() {
            [] => empty,
            [c] if c.is_ascii_punctuation() => true,
            b => b.iter().all(|&c| word(c)),
        };
        if !ok {
            self.pos = start;
            return self.fail(&format!("bad token {t:?}"));
        }
        Ok(t)
    }

    /// An `X.Y.Z` version after `mark`, if the mark is there.
    fn version(&mut self, mark: u8) -> Result<Option<&'static str>, String> {
        if self.peek() != Some(mark) {
            return Ok(None);
        }
        self.pos += 1;
        let v = self.word();
        let parts: Vec<&str> = v.split('.').collect();
        let ok = parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()));
        if !ok {
            return self.fail(&format!("bad version {v:?}"));
        }
        Ok(Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::table;

    fn tree(spec: &'static str) -> String {
        fn show(args: &[Arg], out: &mut String) {
            for a in args {
                out.push_str(&format!(
                    "[{} {} {:?} {:?} {:?} {:?} {}",
                    a.name,
                    a.kind.name(),
                    a.key_spec_index,
                    a.token,
                    a.since,
                    a.deprecated_since,
                    a.flags
                ));
                show(&a.args, out);
                out.push(']');
            }
        }
        let mut out = String::new();
        show(&parse(spec).unwrap(), &mut out);
        out
    }

    #[test]
    fn every_spec_parses() {
        for e in table::DOCS {
            if let Err(err) = parse(e.args) {
                panic!("{}: {err}", e.name);
            }
        }
    }

    /// The table has one entry for each command and subcommand Tessera has, and no other; key
    /// spec indexes point at the command's key specs; history versions are well formed.
    #[test]
    fn the_table_covers_every_command_once() {
        let mut names: Vec<(&str, usize)> = Vec::new();
        for s in table() {
            names.push((s.name, s.all_key_specs().len()));
            for x in s.subcommands.unwrap_or(&[]) {
                names.push((x.full_name, x.all_key_specs().len()));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for e in table::DOCS {
            assert!(seen.insert(e.name), "{} is in the table twice", e.name);
            let Some(&(_, specs)) = names.iter().find(|(n, _)| *n == e.name) else {
                panic!("{} is not a Tessera command", e.name);
            };
            fn check(name: &str, args: &[Arg], specs: usize) {
                for a in args {
                    if let Some(i) = a.key_spec_index {
                        assert!((i as usize) < specs, "{name}: {} has key spec {i}", a.name);
                    }
                    check(name, &a.args, specs);
                }
            }
            check(e.name, &parse(e.args).unwrap(), specs);
            for (v, text) in e.history {
                assert_eq!(v.split('.').count(), 3, "{}: history version {v}", e.name);
                assert!(!text.is_empty(), "{}: history {v} says nothing", e.name);
            }
        }
        for (n, _) in &names {
            assert!(seen.contains(n), "{n} has no entry in the docs table");
        }
        for (n, _) in &names {
            assert!(lookup(n).is_some(), "{n}");
        }
    }

    #[test]
    fn the_language_reads_as_documented() {
        assert_eq!(tree(""), "");
        assert_eq!(
            tree("key:key#0 ?NX"),
            "[key key Some(0) None None None 0][nx pure-token None Some(\"NX\") None None 1]"
        );
        assert_eq!(
            tree("?*+pattern:pattern=GET#1 change=CH@3.0.2 equal== empty_string="),
            "[pattern pattern Some(1) Some(\"GET\") None None 7]\
             [change pure-token None Some(\"CH\") Some(\"3.0.2\") None 0]\
             [equal pure-token None Some(\"=\") None None 0]\
             [empty_string pure-token None Some(\"\") None None 0]"
        );
        assert_eq!(
            tree("f:oneof(ip:port:string!2.8.12 *n:block=ID@2.8.12(id:integer))"),
            "[f oneof None None None None 0\
             [ip:port string None None None Some(\"2.8.12\") 0]\
             [n block None Some(\"ID\") Some(\"2.8.12\") None 2\
             [id integer None None None None 0]]]"
        );
    }

    #[test]
    fn malformed_specs_are_refused() {
        for bad in [
            " key:key#0",
            "key:key#0 ",
            "key:key#0  v:string",
            "key:key",
            "key:keys#0",
            "v:pure-token",
            "value",
            "Value:string",
            "NX=NX",
            "nx=NX=NX",
            "Nx",
            "+*v:string",
            "+v:string",
            "??v:string",
            "v:string@7.0",
            "v:string@7.0.x",
            "v:string@7.0.0=TOKEN",
            "v:string#x",
            "v:string#-1",
            "v:string=",
            "o:oneof",
            "o:oneof()",
            "o:oneof(A B",
            "o:oneof(A B))",
            "o:oneof(A  B)",
            "o:oneof( A)",
            "b:block(A )",
            "v:string(A)",
            "v:string)",
            "a:string b:string(x:integer)",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn the_reply_follows_redis_field_order() {
        let mut buf = bytes::BytesMut::new();
        let args = parse("?*+pattern:pattern=GET#1@6.0.0").unwrap();
        reply_args(&mut Reply::new(&mut buf, true), &args);
        assert_eq!(
            &buf[..],
            &b"*1\r\n%6\r\n$4\r\nname\r\n$7\r\npattern\r\n$4\r\ntype\r\n$7\r\npattern\r\n\
               $14\r\nkey_spec_index\r\n:1\r\n$5\r\ntoken\r\n$3\r\nGET\r\n\
               $5\r\nsince\r\n$5\r\n6.0.0\r\n$5\r\nflags\r\n~3\r\n+optional\r\n\
               +multiple\r\n+multiple_token\r\n"[..]
        );
    }
}

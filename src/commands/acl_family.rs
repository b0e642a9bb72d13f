//! The ACL command: SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI, CAT, GENPASS, DRYRUN, LOG,
//! LOAD, SAVE and HELP, with Redis 7.0's replies and errors.
//!
//! Runs at connection level: it reads and changes the process-wide users table
//! (`crate::server::acl`, the control path) and reaches other shards' connections to close
//! those of deleted users. It never holds the table's lock across an `.await`.

use bytes::Bytes;
use futures::future::LocalBoxFuture;

use super::args::{parse_i64, ERR_NOT_INT};
use super::{cmd, flags::*, sub, CommandSpec, Exec, SubCommand, NO_KEYS};
use crate::protocol::Reply;
use crate::server::acl::{Denied, LogContext, LogEntry, LogReason};
use crate::server::acl_rules::{self, has_spaces, merge_selectors, registry, User, CATEGORIES};
use crate::server::client::ClientHandle;
use crate::server::conn::{Conn, ERR_SHARD_GONE};
use crate::server::globals::unix_ms;
use crate::shard::Shard;

pub fn specs() -> Vec<CommandSpec> {
    vec![cmd(
        "acl",
        -2,
        NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        "server",
        "6.0.0",
        "Depends on subcommand.",
        "Manages users and their permissions (ACL).",
        Exec::Conn(acl),
    )
    .subcommands(ACL_SUBCOMMANDS)]
}

const ADM: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

const ACL_SUBCOMMANDS: &[SubCommand] = &[
    sub("acl|load", 2).flags(ADM).docs(
        "6.0.0",
        "O(N). Where N is the number of configured users.",
        "Reloads the users from the ACL file.",
    ),
    sub("acl|deluser", -3).flags(ADM).docs(
        "6.0.0",
        "O(1) amortized time considering the typical user.",
        "Deletes users and closes their connections.",
    ),
    sub("acl|whoami", 2).flags(NOSCRIPT | LOADING | STALE).docs(
        "6.0.0",
        "O(1)",
        "Returns the connection's user name.",
    ),
    sub("acl|help", 2)
        .flags(LOADING | STALE)
        .docs("6.0.0", "O(1)", "Lists the ACL subcommands."),
    sub("acl|users", 2).flags(ADM).docs(
        "6.0.0",
        "O(N). Where N is the number of configured users.",
        "Lists the user names.",
    ),
    sub("acl|setuser", -3).flags(ADM).docs(
        "6.0.0",
        "O(N). Where N is the number of rules provided.",
        "Creates a user or changes its rules.",
    ),
    sub("acl|cat", -2).flags(NOSCRIPT | LOADING | STALE).docs(
        "6.0.0",
        "O(1) since the categories and commands are a fixed set.",
        "Lists the categories, or the commands of one.",
    ),
    sub("acl|save", 2).flags(ADM).docs(
        "6.0.0",
        "O(N). Where N is the number of configured users.",
        "Writes the users to the ACL file.",
    ),
    sub("acl|getuser", 3).flags(ADM).docs(
        "6.0.0",
        "O(N). Where N is the number of password, command and pattern rules that the user has.",
        "Describes one user.",
    ),
    sub("acl|log", -2).flags(ADM).docs(
        "6.0.0",
        "O(N) with N being the number of entries shown.",
        "Lists recent refusals and failed authentications.",
    ),
    sub("acl|list", 2).flags(ADM).docs(
        "6.0.0",
        "O(N). Where N is the number of configured users.",
        "Lists the users as configuration lines.",
    ),
    sub("acl|genpass", -2)
        .flags(NOSCRIPT | LOADING | STALE)
        .docs("6.0.0", "O(1)", "Returns a random password."),
    sub("acl|dryrun", -4).flags(ADM).docs(
        "7.0.0",
        "O(1).",
        "Tells whether a user may run a command, without running it.",
    ),
];

const ACL_HELP: &[&str] = &[
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
];

const ERR_NO_ACLFILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn acl(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let sub = String::from_utf8_lossy(&a[1]).to_ascii_lowercase();
        let argc = a.len();
        let aclfile = c.shard.state.borrow().config.aclfile();
        match sub.as_str() {
            "setuser" if argc >= 3 => setuser(c, &a).await,
            "deluser" if argc >= 3 => deluser(c, &a).await,
            "getuser" if argc == 3 => getuser(c, &a[2]),
            "list" | "users" if argc == 2 => {
                let t = c.shard.globals.acl.lock();
                let lines: Vec<Vec<u8>> = t
                    .users
                    .values()
                    .map(|u| {
                        if sub == "users" {
                            u.name.clone()
                        } else {
                            config_line(u)
                        }
                    })
                    .collect();
                drop(t);
                let mut r = c.reply();
                r.array(lines.len());
                for l in lines {
                    r.bulk(&l);
                }
            }
            "whoami" if argc == 2 => {
                let name = c.perms.name.clone();
                c.reply().bulk(name.as_bytes());
            }
            "load" | "save" if aclfile.is_none() => c.reply().error(ERR_NO_ACLFILE),
            "load" if argc == 2 => {
                let path = aclfile.unwrap_or_default();
                match load_file(c, &path) {
                    Ok(gone) => {
                        kill_users(c, gone).await;
                        c.reply().ok()
                    }
                    Err(e) => c.reply().error(&format!("ERR {e}")),
                }
            }
            "save" if argc == 2 => {
                let path = aclfile.unwrap_or_default();
                match save_file(c, &path) {
                    Ok(()) => c.reply().ok(),
                    Err(e) => {
                        tracing::warn!("ACL SAVE to {path}: {e}");
                        c.reply().error("ERR There was an error trying to save the ACLs. Please check the server logs for more information")
                    }
                }
            }
            "cat" if argc == 2 => {
                let mut r = c.reply();
                r.array(CATEGORIES.len());
                for cat in CATEGORIES {
                    r.bulk(cat.as_bytes());
                }
            }
            "cat" if argc == 3 => {
                let Some(bit) = acl_rules::category_bit(acl_rules::c_str(&a[2])) else {
                    let name: String = String::from_utf8_lossy(acl_rules::c_str(&a[2]))
                        .chars()
                        .take(128)
                        .collect();
                    return c.reply().error(&format!("ERR Unknown category '{name}'"));
                };
                // Commands Tessera has (the others exist only for rules' sake).
                let names: Vec<&str> = registry()
                    .cmds
                    .iter()
                    .filter(|m| m.real && m.cats & bit != 0)
                    .map(|m| m.name.as_str())
                    .collect();
                let mut r = c.reply();
                r.array(names.len());
                for n in names {
                    r.bulk(n.as_bytes());
                }
            }
            "genpass" if argc == 2 || argc == 3 => {
                let bits = if argc == 3 {
                    match parse_i64(&a[2]) {
                        Some(b) => b,
                        None => return c.reply().error(ERR_NOT_INT),
                    }
                } else {
                    256
                };
                if bits <= 0 || bits > 4096 {
                    return c.reply().error("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096");
                }
                let chars = ((bits + 3) / 4) as usize;
                let pass: String = (0..chars)
                    .map(|_| char::from_digit(rand::random::<u32>() % 16, 16).unwrap_or('0'))
                    .collect();
                c.reply().bulk(pass.as_bytes());
            }
            "log" if argc == 2 || argc == 3 => acl_log(c, &a),
            "dryrun" if argc >= 4 => dryrun(c, &a),
            "help" if argc == 2 => super::reply_help(&mut c.reply(), "acl", ACL_HELP),
            _ => c
                .reply()
                .error(&super::subcommand_syntax_error(&a[1], "acl")),
        }
    })
}

/// `user <name> <rules>`: ACL LIST's and the ACL file's line for a user.
pub fn config_line(u: &User) -> Vec<u8> {
    let mut l = b"user ".to_vec();
    l.extend_from_slice(&u.name);
    l.push(b' ');
    l.extend_from_slice(&u.describe());
    l
}

/// The `user` lines CONFIG REWRITE writes: every user as ACL LIST describes it, or None when
/// an ACL file holds the users (Redis's `rewriteConfigUserOption`).
pub fn users_for_config_rewrite(c: &Conn) -> Option<Vec<Vec<u8>>> {
    if c.shard.state.borrow().config.aclfile().is_some() {
        return None;
    }
    let t = c.shard.globals.acl.lock();
    Some(t.users.values().map(config_line).collect())
}

/// Creates the users of the configuration's `user` lines at startup (Redis's
/// `ACLLoadConfiguredUsers`): `default` starts from `reset`, the others from nothing. The
/// error stops the server.
pub fn create_configured_users(
    acl: &crate::server::acl::Acl,
    lines: &[Vec<Vec<u8>>],
    allchannels: bool,
) -> Result<(), String> {
    let mut t = acl.lock();
    for line in lines {
        let name = &line[0];
        let mut u = if name.as_slice() == b"default" {
            let mut d = User::new_default();
            d.apply(b"reset", allchannels)
                .map_err(|e| e.message().to_string())?;
            d
        } else {
            User::new(name, allchannels)
        };
        for rule in &line[1..] {
            if let Err(e) = u.apply(rule, allchannels) {
                return Err(format!(
                    "Error loading ACL rule '{}' for the user named '{}': {}",
                    String::from_utf8_lossy(rule),
                    String::from_utf8_lossy(name),
                    e.message()
                ));
            }
        }
        t.put(u);
    }
    acl.changed(&t);
    Ok(())
}

async fn setuser(c: &mut Conn, a: &[Bytes]) {
    let name = &a[2];
    if has_spaces(name) {
        return c
            .reply()
            .error("ERR Usernames can't contain spaces or null characters");
    }
    let rules: Vec<Vec<u8>> = a[3..].iter().map(|x| x.to_vec()).collect();
    let merged = match merge_selectors(&rules) {
        Ok(m) => m,
        Err(j) => {
            let at = String::from_utf8_lossy(acl_rules::c_str(&a[j + 3])).into_owned();
            return c.reply().error(&format!(
                "ERR Unmatched parenthesis in acl selector starting at '{at}'."
            ));
        }
    };
    let allchannels = c.shard.state.borrow().config.acl_pubsub_allchannels();
    // Applied under the table lock, all rules or none; the lock is gone before any await.
    let applied = {
        let acl = &c.shard.globals.acl;
        let mut t = acl.lock();
        let mut u = t
            .get(name)
            .cloned()
            .unwrap_or_else(|| User::new(name, allchannels));
        match merged.iter().try_for_each(|op| {
            u.apply(op, allchannels).map_err(|e| {
                let op = String::from_utf8_lossy(acl_rules::c_str(op)).into_owned();
                format!("ERR Error in ACL SETUSER modifier '{op}': {}", e.message())
            })
        }) {
            Err(e) => Err(e),
            Ok(()) => {
                // Subscribed clients of the user lose their connection when a channel they
                // listen to is no longer allowed, as in Redis 7.0.
                let recheck = t
                    .get(name)
                    .and_then(|old| crate::server::acl::channels_to_recheck(old, &u));
                t.put(u);
                acl.changed(&t);
                Ok(recheck)
            }
        }
    };
    let recheck = match applied {
        Ok(r) => r,
        Err(e) => return c.reply().error(&e),
    };
    if let Some(upcoming) = recheck {
        close_revoked_subscribers(c, String::from_utf8_lossy(name).into_owned(), upcoming).await;
    }
    c.reply().ok();
}

/// Closes the connections of `user` subscribed to a channel, pattern or shard channel that
/// `upcoming` no longer allows.
async fn close_revoked_subscribers(c: &mut Conn, user: String, upcoming: Vec<Vec<u8>>) {
    use crate::server::acl::subscription_allowed;
    close_clients(c, move |sh, cl| {
        if *cl.user.borrow().as_ref() != *user || !cl.is_pubsub() {
            return false;
        }
        let (channels, patterns, shard_channels) = sh.pubsub.borrow().subscriptions_of(cl.id);
        patterns
            .iter()
            .any(|p| !subscription_allowed(&upcoming, p, true))
            || channels
                .iter()
                .chain(&shard_channels)
                .any(|ch| !subscription_allowed(&upcoming, ch, false))
    })
    .await;
}

/// Closes the connections on every shard that `doomed` picks; the calling connection closes
/// after its reply.
async fn close_clients<F>(c: &mut Conn, doomed: F)
where
    F: Fn(&Shard, &ClientHandle) -> bool + Send + Clone + 'static,
{
    let me = c.info.id;
    let done = c
        .shard
        .run_on_all(move |sh| {
            for cl in sh.clients.borrow().clients.values() {
                if doomed(sh, cl) {
                    if cl.id == me {
                        cl.killed.set(true);
                    } else {
                        cl.kill();
                    }
                }
            }
        })
        .await;
    if done.is_err() {
        tracing::warn!("{ERR_SHARD_GONE}");
    }
    if c.info.killed.get() {
        c.close_after_reply = true;
    }
}

async fn deluser(c: &mut Conn, a: &[Bytes]) {
    if a[2..].iter().any(|n| &n[..] == b"default") {
        return c.reply().error("ERR The 'default' user cannot be removed");
    }
    let mut deleted: Vec<String> = Vec::new();
    {
        let acl = &c.shard.globals.acl;
        let mut t = acl.lock();
        for n in &a[2..] {
            if t.remove(n) {
                deleted.push(String::from_utf8_lossy(n).into_owned());
            }
        }
        if !deleted.is_empty() {
            acl.changed(&t);
        }
    }
    if !deleted.is_empty() {
        kill_users(c, deleted.clone()).await;
    }
    c.reply().int(deleted.len() as i64);
}

/// Closes every connection authenticated as one of `users` (deleted, or replaced by ACL LOAD);
/// the calling connection closes after its reply.
pub async fn kill_users(c: &mut Conn, users: Vec<String>) {
    close_clients(c, move |_, cl| {
        let u = cl.user.borrow().clone();
        users.iter().any(|x| **x == *u)
    })
    .await;
}

fn getuser(c: &mut Conn, name: &[u8]) {
    let u = c.shard.globals.acl.lock().get(name).cloned();
    let Some(u) = u else {
        return c.reply().null();
    };
    let mut r = c.reply();
    r.map(6);
    r.bulk(b"flags");
    let flags = u.flags();
    r.set(flags.len());
    for f in flags {
        r.bulk(f.as_bytes());
    }
    r.bulk(b"passwords");
    r.array(u.passwords.len());
    for p in &u.passwords {
        r.bulk(p.as_bytes());
    }
    reply_selector(&mut r, &u.selectors[0]);
    r.bulk(b"selectors");
    r.array(u.selectors.len() - 1);
    for s in &u.selectors[1..] {
        r.map(3);
        reply_selector(&mut r, s);
    }
}

fn reply_selector(r: &mut Reply, s: &acl_rules::Selector) {
    r.bulk(b"commands");
    r.bulk(s.describe_commands().as_bytes());
    r.bulk(b"keys");
    if s.allkeys {
        r.bulk(b"~*");
    } else {
        let v: Vec<Vec<u8>> = s
            .keys
            .iter()
            .map(|(p, f)| acl_rules::Selector::key_rule(p, *f))
            .collect();
        r.bulk(&v.join(&b' '));
    }
    r.bulk(b"channels");
    if s.allchannels {
        r.bulk(b"&*");
    } else {
        let v: Vec<Vec<u8>> = s
            .channels
            .iter()
            .map(|ch| [&b"&"[..], ch].concat())
            .collect();
        r.bulk(&v.join(&b' '));
    }
}

fn acl_log(c: &mut Conn, a: &[Bytes]) {
    let mut count: i64 = 10;
    if a.len() == 3 {
        if super::args::eq_ic(&a[2], "reset") {
            c.shard.globals.acl.log_reset();
            return c.reply().ok();
        }
        match parse_i64(&a[2]) {
            Some(n) => count = n.max(0),
            None => return c.reply().error(ERR_NOT_INT),
        }
    }
    let now = unix_ms();
    let globals = c.shard.globals.clone();
    let mut out = bytes::BytesMut::new();
    let resp3 = c.resp3;
    globals.acl.with_log(|log| {
        let n = (count as usize).min(log.len());
        let mut r = Reply::new(&mut out, resp3);
        r.array(n);
        for e in log.iter().take(n) {
            r.map(7);
            r.bulk(b"count");
            r.int(e.count as i64);
            r.bulk(b"reason");
            r.bulk(e.reason.name().as_bytes());
            r.bulk(b"context");
            r.bulk(e.context.name().as_bytes());
            r.bulk(b"object");
            r.bulk(&e.object);
            r.bulk(b"username");
            r.bulk(&e.username);
            r.bulk(b"age-seconds");
            r.double(now.saturating_sub(e.ctime_ms) as f64 / 1000.0);
            r.bulk(b"client-info");
            r.bulk(e.client_info.as_bytes());
        }
    });
    c.out.extend_from_slice(&out);
}

fn dryrun(c: &mut Conn, a: &[Bytes]) {
    let Some(perms) = c.shard.globals.acl.perms(&a[2]) else {
        let n = String::from_utf8_lossy(acl_rules::c_str(&a[2])).into_owned();
        return c.reply().error(&format!("ERR User '{n}' not found"));
    };
    let args = &a[3..];
    let (spec, name) = match super::resolve(args) {
        Ok(x) => x,
        Err(super::Unresolved::Arity(_, name)) => {
            return c.reply().error(&format!(
                "ERR wrong number of arguments for '{name}' command"
            ))
        }
        Err(super::Unresolved::Unknown(_)) => {
            let n = String::from_utf8_lossy(acl_rules::c_str(&a[3])).into_owned();
            return c.reply().error(&format!("ERR Command '{n}' not found"));
        }
    };
    match crate::server::acl::dry_run(&perms, spec, args) {
        Ok(()) => c.reply().ok(),
        Err(d) => {
            let msg = match d {
                Denied::Command => {
                    format!("This user has no permissions to run the '{name}' command")
                }
                Denied::Key(i) => format!(
                    "This user has no permissions to access the '{}' key",
                    String::from_utf8_lossy(acl_rules::c_str(&args[i]))
                ),
                Denied::Channel(i) => format!(
                    "This user has no permissions to access the '{}' channel",
                    String::from_utf8_lossy(acl_rules::c_str(&args[i]))
                ),
            };
            c.reply().bulk(msg.as_bytes());
        }
    }
}

/// Records a refusal or a failed authentication in the ACL log.
pub fn log_denied(
    c: &Conn,
    reason: LogReason,
    context: LogContext,
    object: &[u8],
    username: &[u8],
) {
    let max = c.shard.state.borrow().config.acllog_max_len();
    c.shard.globals.acl.log(
        LogEntry {
            count: 1,
            reason,
            context,
            object: object.to_vec(),
            username: username.to_vec(),
            ctime_ms: unix_ms(),
            client_info: c.info.describe(unix_ms()),
        },
        max,
    );
}

/// Parses the users of an ACL file (Redis's ACLLoadFromFile): all of them, or the errors found,
/// as one line.
pub fn parse_acl_file(path: &str, text: &str, allchannels: bool) -> Result<Vec<User>, String> {
    let mut errors = String::new();
    let mut users: Vec<User> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
        let linenum = i + 1;
        if line.is_empty() {
            continue;
        }
        let argv: Vec<&str> = line.split(' ').collect();
        if argv[0] != "user" || argv.len() < 2 {
            errors.push_str(&format!(
                "{path}:{linenum} should start with user keyword followed by the username. "
            ));
            continue;
        }
        if has_spaces(argv[1].as_bytes()) {
            errors.push_str(&format!(
                "'{path}:{linenum}: username '{}' contains invalid characters. ",
                argv[1]
            ));
            continue;
        }
        if users.iter().any(|u| u.name == argv[1].as_bytes()) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {linenum}. ",
                argv[1]
            ));
            continue;
        }
        let mut u = User::new(argv[1].as_bytes(), allchannels);
        let rules: Vec<Vec<u8>> = argv[2..].iter().map(|s| s.as_bytes().to_vec()).collect();
        let merged = match merge_selectors(&rules) {
            Ok(m) => m,
            Err(_) => {
                errors.push_str(&format!(
                    "{path}:{linenum}: Unmatched parenthesis in selector definition."
                ));
                Vec::new()
            }
        };
        let mut syntax_error = false;
        for op in merged {
            let op: Vec<u8> = String::from_utf8_lossy(&op)
                .trim_matches(|c| matches!(c, '\t' | '\r' | '\n'))
                .as_bytes()
                .to_vec();
            if let Err(e) = u.apply(&op, allchannels) {
                if e == acl_rules::RuleError::UnknownName {
                    errors.push_str(&format!(
                        "{path}:{linenum}: Error in applying operation '{}': {}. ",
                        String::from_utf8_lossy(&op),
                        e.message()
                    ));
                } else if !syntax_error {
                    errors.push_str(&format!("{path}:{linenum}: {}. ", e.message()));
                    syntax_error = true;
                }
            }
        }
        users.push(u);
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        errors.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
        );
        Err(errors)
    }
}

fn load_file(c: &mut Conn, path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read(path).map_err(|e| {
        format!(
            "Error loading ACLs, opening file '{path}': {}",
            crate::config::strerror(&e)
        )
    })?;
    let allchannels = c.shard.state.borrow().config.acl_pubsub_allchannels();
    let users = parse_acl_file(path, &String::from_utf8_lossy(&text), allchannels)?;
    let acl = &c.shard.globals.acl;
    let mut t = acl.lock();
    let old: Vec<Vec<u8>> = t.users.keys().cloned().collect();
    t.replace_all(users);
    acl.changed(&t);
    drop(t);
    // Redis frees every old user but the default one, closing their connections.
    Ok(old
        .into_iter()
        .filter(|n| n != b"default")
        .map(|n| String::from_utf8_lossy(&n).into_owned())
        .collect())
}

fn save_file(c: &mut Conn, path: &str) -> std::io::Result<()> {
    let mut text = Vec::new();
    {
        let t = c.shard.globals.acl.lock();
        for u in t.users.values() {
            text.extend_from_slice(&config_line(u));
            text.push(b'\n');
        }
    }
    let tmp = format!("{path}.tmp-{}-{}", std::process::id(), unix_ms());
    let res = std::fs::write(&tmp, &text).and_then(|_| std::fs::rename(&tmp, path));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

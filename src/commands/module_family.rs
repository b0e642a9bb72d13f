//! MODULE: Redis modules, which Tessera cannot load.
//!
//! A Redis module is a shared library written against Redis's C module API (its data
//! structures, its event loop, its RDB callbacks); nothing of that exists in Tessera, so no
//! module can ever be loaded. Tools still ask which modules a server has (MODULE LIST, an empty
//! list here), and a LOAD is refused as Redis refuses it: with the `enable-module-command`
//! error when that config forbids the command (the check is the connection's, as for DEBUG's
//! `enable-debug-command`, because it needs the client's address), otherwise with Redis's
//! "could not load" error and the reason in the log. This module must never pretend a load
//! worked.

use bytes::Bytes;

use super::flags::*;
use super::{cmd, sub, CommandSpec, Ctx, Exec, SubCommand, NO_KEYS};
use crate::protocol::Reply;

/// Refused when `enable-module-command` does not allow the client (see `Conn::protected`).
pub const ERR_MODULE_NOT_ALLOWED: &str = "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

pub fn specs() -> Vec<CommandSpec> {
    vec![cmd(
        "module",
        -2,
        // The container's flags are not reported (its subcommands' are); PROTECTED sends the
        // connection to the subcommand's own flag, NOSCRIPT keeps scripts out as for every
        // subcommand but HELP.
        NOSCRIPT | PROTECTED,
        NO_KEYS,
        "server",
        "4.0.0",
        "Depends on subcommand.",
        "Lists, loads and unloads Redis modules (none can be loaded into Tessera).",
        Exec::Shard(module),
    )
    .subcommands(MODULE_SUBCOMMANDS)]
}

/// Flags of the subcommands that would change the server's code.
const LOADS: u32 = ADMIN | NOSCRIPT | NO_ASYNC_LOADING | PROTECTED;

/// In the order Redis 7.0 lists them.
const MODULE_SUBCOMMANDS: &[SubCommand] = &[
    sub("module|unload", 3)
        .flags(LOADS)
        .docs("4.0.0", "O(1)", "Unloads a module."),
    sub("module|help", 2).flags(LOADING | STALE).docs(
        "5.0.0",
        "O(1)",
        "Lists the MODULE subcommands.",
    ),
    sub("module|loadex", -3).flags(LOADS).docs(
        "7.0.0",
        "O(1)",
        "Loads a module with configuration values and arguments.",
    ),
    sub("module|load", -3)
        .flags(LOADS)
        .docs("4.0.0", "O(1)", "Loads a module."),
    sub("module|list", 2)
        .flags(ADMIN | NOSCRIPT)
        .tips(&["nondeterministic_output_order"])
        .docs(
            "4.0.0",
            "O(N) where N is the number of loaded modules.",
            "Lists the loaded modules.",
        ),
];

const MODULE_HELP: &[&str] = &[
    "LIST",
    "    Return a list of loaded modules.",
    "LOAD <path> [<arg> ...]",
    "    Load a module library from <path>, passing to it any optional arguments.",
    "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
    "    Load a module library from <path>, while passing it module configurations and optional arguments.",
    "UNLOAD <name>",
    "    Unload a module.",
];

fn module(_ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    // The subcommand and its arity were checked before it ran.
    let sub = String::from_utf8_lossy(&a[1]).to_ascii_lowercase();
    match sub.as_str() {
        "help" => super::reply_help(r, "module", MODULE_HELP),
        "list" => r.array(0),
        "load" | "loadex" => {
            tracing::warn!(
                "Module {} failed to load: Tessera cannot load Redis modules",
                String::from_utf8_lossy(&a[2])
            );
            r.error("ERR Error loading the extension. Please check the server logs.")
        }
        _ => r.error("ERR Error unloading module: no such module with that name"),
    }
}

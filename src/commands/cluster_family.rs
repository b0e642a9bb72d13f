//! The Redis Cluster commands (CLUSTER and its subcommands, READONLY, READWRITE, ASKING) as a
//! standalone server answers them.
//!
//! Tessera runs standalone: its shards split the keyspace by hash slot inside one process, but
//! it takes no part in a Redis Cluster. Redis 7.0 started without `cluster-enabled` still knows
//! these commands (COMMAND lists them, with their subcommands, arities and flags) and refuses
//! each with one error, and cluster-aware clients and tools probe with them to tell a cluster
//! from a standalone server. So this module declares them exactly as Redis does and refuses them
//! the same way; it must never answer as if a cluster existed (a client that believed it would
//! start following slot maps and redirections that are not there).

use bytes::Bytes;

use super::flags::*;
use super::{cmd, sub, CommandSpec, Ctx, Exec, SubCommand, NO_KEYS};
use crate::protocol::Reply;

/// What Redis answers to every cluster command when cluster mode is off.
const ERR_CLUSTER_DISABLED: &str = "ERR This instance has cluster support disabled";

pub fn specs() -> Vec<CommandSpec> {
    let g = "cluster";
    vec![
        cmd(
            "cluster",
            -2,
            0,
            NO_KEYS,
            g,
            "3.0.0",
            "Depends on subcommand.",
            "Inspects and changes the node's Redis Cluster state (refused: Tessera runs standalone).",
            Exec::Shard(refuse),
        )
        .subcommands(CLUSTER_SUBCOMMANDS),
        cmd(
            "readonly",
            1,
            LOADING | STALE | FAST,
            NO_KEYS,
            g,
            "3.0.0",
            "O(1)",
            "Lets a connection to a cluster replica run read commands (refused: standalone).",
            Exec::Shard(refuse),
        ),
        cmd(
            "readwrite",
            1,
            LOADING | STALE | FAST,
            NO_KEYS,
            g,
            "3.0.0",
            "O(1)",
            "Ends READONLY on a connection to a cluster replica (refused: standalone).",
            Exec::Shard(refuse),
        ),
        cmd(
            "asking",
            1,
            FAST,
            NO_KEYS,
            g,
            "3.0.0",
            "O(1)",
            "Marks the next command as following an -ASK redirection (refused: standalone).",
            Exec::Shard(refuse),
        ),
    ]
}

fn refuse(_ctx: &mut Ctx, _a: &[Bytes], r: &mut Reply) {
    r.error(ERR_CLUSTER_DISABLED);
}

/// Flags of the subcommands that change the cluster's configuration.
const CONFIGURES: u32 = ADMIN | STALE | NO_ASYNC_LOADING;
/// Tips of the subcommands whose answer depends on the cluster's state.
const NONDETERMINISTIC: &[&str] = &["nondeterministic_output"];

/// In the order Redis 7.0 lists them (COMMAND INFO is compared with it as is).
const CLUSTER_SUBCOMMANDS: &[SubCommand] = &[
    sub("cluster|countkeysinslot", 3).flags(STALE).docs(
        "3.0.0",
        "O(1)",
        "Counts this node's keys in a hash slot.",
    ),
    sub("cluster|forget", 3)
        .flags(CONFIGURES)
        .docs("3.0.0", "O(1)", "Drops a node from this node's table."),
    sub("cluster|addslotsrange", -4).flags(CONFIGURES).docs(
        "7.0.0",
        "O(N) where N is the total number of the slots between the start slot and end slot arguments.",
        "Assigns ranges of hash slots to this node.",
    ),
    sub("cluster|set-config-epoch", 3).flags(CONFIGURES).docs(
        "3.0.0",
        "O(1)",
        "Sets a new node's configuration epoch.",
    ),
    sub("cluster|setslot", -4).flags(CONFIGURES).docs(
        "3.0.0",
        "O(1)",
        "Binds a hash slot to a node, or marks it importing, migrating or stable.",
    ),
    sub("cluster|addslots", -3).flags(CONFIGURES).docs(
        "3.0.0",
        "O(N) where N is the total number of hash slot arguments",
        "Assigns hash slots to this node.",
    ),
    sub("cluster|count-failure-reports", 3)
        .flags(ADMIN | STALE)
        .tips(NONDETERMINISTIC)
        .docs(
            "3.0.0",
            "O(N) where N is the number of failure reports",
            "Counts the live failure reports about a node.",
        ),
    sub("cluster|failover", -2).flags(CONFIGURES).docs(
        "3.0.0",
        "O(1)",
        "Makes a replica take over from its master by hand.",
    ),
    sub("cluster|bumpepoch", 2)
        .flags(CONFIGURES)
        .tips(NONDETERMINISTIC)
        .docs("3.0.0", "O(1)", "Moves this node's configuration epoch forward."),
    sub("cluster|delslots", -3).flags(CONFIGURES).docs(
        "3.0.0",
        "O(N) where N is the total number of hash slot arguments",
        "Unassigns hash slots from this node.",
    ),
    sub("cluster|info", 2)
        .flags(STALE)
        .tips(NONDETERMINISTIC)
        .docs("3.0.0", "O(1)", "Reports the cluster's state as this node sees it."),
    sub("cluster|keyslot", 3).flags(STALE).docs(
        "3.0.0",
        "O(N) where N is the number of bytes in the key",
        "Computes a key's hash slot.",
    ),
    sub("cluster|links", 2)
        .flags(STALE)
        .tips(NONDETERMINISTIC)
        .docs(
            "7.0.0",
            "O(N) where N is the total number of Cluster nodes",
            "Lists this node's links to its peers.",
        ),
    sub("cluster|slots", 2)
        .flags(STALE)
        .tips(NONDETERMINISTIC)
        .docs(
            "3.0.0",
            "O(N) where N is the total number of Cluster nodes",
            "Maps slot ranges to nodes.",
        )
        .deprecated("7.0.0", "`CLUSTER SHARDS`"),
    sub("cluster|replicate", 3).flags(CONFIGURES).docs(
        "3.0.0",
        "O(1)",
        "Turns this node into a replica of a master.",
    ),
    sub("cluster|help", 2).flags(LOADING | STALE).docs(
        "5.0.0",
        "O(1)",
        "Lists the CLUSTER subcommands.",
    ),
    sub("cluster|nodes", 2)
        .flags(STALE)
        .tips(NONDETERMINISTIC)
        .docs(
            "3.0.0",
            "O(N) where N is the total number of Cluster nodes",
            "Reports the cluster's configuration as this node sees it.",
        ),
    sub("cluster|meet", -4).flags(CONFIGURES).docs(
        "3.0.0",
        "O(1)",
        "Makes this node handshake with another one.",
    ),
    sub("cluster|getkeysinslot", 4)
        .flags(STALE)
        .tips(NONDETERMINISTIC)
        .docs(
            "3.0.0",
            "O(log(N)) where N is the number of requested keys",
            "Lists this node's keys in a hash slot.",
        ),
    sub("cluster|slaves", 3)
        .flags(ADMIN | STALE)
        .tips(NONDETERMINISTIC)
        .docs(
            "3.0.0",
            "O(1)",
            "Lists a master's replicas.",
        )
        .deprecated("5.0.0", "`CLUSTER REPLICAS`"),
    sub("cluster|reset", -2)
        .flags(ADMIN | NOSCRIPT | STALE)
        .docs(
            "3.0.0",
            "O(N) where N is the number of known nodes. The command may execute a FLUSHALL as a side effect.",
            "Resets this node's cluster state.",
        ),
    sub("cluster|delslotsrange", -4).flags(CONFIGURES).docs(
        "7.0.0",
        "O(N) where N is the total number of the slots between the start slot and end slot arguments.",
        "Unassigns ranges of hash slots from this node.",
    ),
    sub("cluster|flushslots", 2).flags(CONFIGURES).docs(
        "3.0.0",
        "O(1)",
        "Forgets every slot assigned to this node.",
    ),
    sub("cluster|shards", 2)
        .flags(STALE)
        .tips(NONDETERMINISTIC)
        .docs(
            "7.0.0",
            "O(N) where N is the total number of cluster nodes",
            "Lists the cluster's shards with their slots and nodes.",
        ),
    sub("cluster|saveconfig", 2).flags(CONFIGURES).docs(
        "3.0.0",
        "O(1)",
        "Writes the node's cluster configuration file.",
    ),
    sub("cluster|replicas", 3)
        .flags(ADMIN | STALE)
        .tips(NONDETERMINISTIC)
        .docs("5.0.0", "O(1)", "Lists a master's replicas."),
    sub("cluster|myid", 2)
        .flags(STALE)
        .docs("3.0.0", "O(1)", "Returns this node's id."),
];

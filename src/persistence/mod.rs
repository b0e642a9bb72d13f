//! Persistence: what survives a restart, and the formats it is written in.
//!
//! * `rdb`: Redis's RDB encoding (values, DUMP payloads, whole files), shared by snapshots,
//!   DUMP/RESTORE and interchange with stock Redis.
//! * `aof`: the per-shard append-only files (recording every write as a command, replaying them
//!   at startup, rewriting them).
//! * `snapshot`: point-in-time snapshots (SAVE/BGSAVE), one RDB stream per shard and a manifest.
//! * `check`, `export`: the offline `tessera check` and `tessera export-rdb` subcommands (plain
//!   processes, never part of a running server).
//!
//! Nothing here may block a shard's event loop once it serves clients: file I/O goes through
//! glommio's io_uring file API from tasks of their own. The codecs never touch the keyspace.

pub mod aof;
pub mod check;
pub mod export;
pub mod rdb;
pub mod snapshot;

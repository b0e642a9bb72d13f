//! Point-in-time snapshots of the whole keyspace, one RDB stream per shard (see `manifest` for
//! the files).
//!
//! Owns: the snapshot manifest and shard file naming (`manifest`).

pub mod manifest;

//! Tessera: a Redis-compatible, thread-per-core in-memory data server.
//!
//! Layout: `protocol` (RESP on the wire), `server` (startup, connections, client state),
//! `shard` (per-core keyspace, expiry, router), `tx` (multi-shard coordination), `commands`
//! (the command table and one module per family), `types` (values and their encodings),
//! `config` (redis.conf-style configuration), `alloc` (the counting allocator behind INFO
//! memory) and `cpu` (prefetch hints).

pub mod alloc;
pub mod commands;
pub mod config;
pub mod cpu;
pub mod persistence;
pub mod protocol;
pub mod pubsub;
pub mod scripting;
pub mod server;
pub mod shard;
pub mod syslog;
pub mod tx;
pub mod types;

/// The Redis version we are compatible with, reported by HELLO and INFO so that clients that
/// gate features on the server version treat us as Redis 7.0.
pub const REDIS_VERSION: &str = "7.0.15";

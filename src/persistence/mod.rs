//! Persistence: what survives a restart. `aof` owns the per-shard append-only files (recording
//! every write as a command, replaying them at startup, rewriting them).
//!
//! Nothing here may block a shard's event loop once it serves clients: file I/O goes through
//! glommio's io_uring file API from tasks of their own.

pub mod aof;

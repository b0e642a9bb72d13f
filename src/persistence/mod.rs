//! Persistence: the on-disk and on-the-wire formats of the dataset.
//!
//! `rdb` is Redis's RDB encoding (values, DUMP payloads, whole files). Snapshot scheduling,
//! AOF and startup loading build on it and live beside it; this module never touches the
//! keyspace or the event loop by itself.

pub mod rdb;

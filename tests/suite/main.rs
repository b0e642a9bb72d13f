//! Tessera's integration tests, one module per area, built as one test binary.
//!
//! Why one binary: every file directly under `tests/` is its own crate, and with the release
//! profile's thin LTO each of them is a separate whole-program link and optimisation of std,
//! the `redis` client and whatever it uses of `tessera` (25-50 s of CPU each, 32 of them). One
//! binary pays that once, and its test harness spreads all the tests over the cores instead of
//! running the files one after another.
//!
//! Run one area with `cargo test --release --test suite diff_sets::`, one test with its path
//! (`cargo test --release --test suite diff_sets::set_basics`).
//!
//! `notify_alloc` installs a counting global allocator for this whole binary. It counts per
//! thread, so the other tests (which talk to server processes over TCP) are unaffected by it.

#[macro_use]
mod common;

mod aof;
mod check_tool;
mod diff_acl;
mod diff_bitmaps;
mod diff_blocking;
mod diff_debug;
mod diff_dump;
mod diff_geo;
mod diff_hll;
mod diff_latency;
mod diff_lists;
mod diff_memory;
mod diff_multi;
mod diff_notify;
mod diff_pubsub;
mod diff_scripting;
mod diff_sets;
mod diff_sort;
mod diff_stream_groups;
mod diff_streams;
mod diff_tracking;
mod diff_zsets;
mod differential;
mod memory;
mod notify_alloc;
mod presets;
mod protocol;
mod rdb_files;
mod real_clients;
mod server;
mod snapshot;
mod transactions;

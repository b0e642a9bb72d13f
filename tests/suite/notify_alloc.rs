//! Keyspace notifications cost no allocation when they are off (the default), nor when they
//! are on but nobody subscribed: GET and SET through the shard's command path are counted
//! allocation by allocation with a counting global allocator. With a subscriber the same SET
//! allocates more (the channel names), which shows the count would see a regression.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use tessera::commands;
use tessera::config::Config;
use tessera::pubsub::notify;
use tessera::pubsub::Kind;
use tessera::server::globals::Globals;
use tessera::shard::{execute_keyed, ClientLabel, ShardState};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

struct Shard {
    st: ShardState,
    globals: Globals,
    who: ClientLabel,
    out: BytesMut,
}

impl Shard {
    fn new() -> Shard {
        Shard {
            st: ShardState::new(0, Config::default()),
            globals: Globals::new(0, 1, String::new()),
            who: ClientLabel::default(),
            out: BytesMut::with_capacity(1 << 16),
        }
    }

    /// Runs one command and returns how many allocations it made.
    fn run(&mut self, args: &[Bytes]) -> u64 {
        let spec = commands::lookup(&args[0]).expect("known command");
        self.out.clear();
        let before = allocs();
        execute_keyed(
            &mut self.st,
            &self.globals,
            spec,
            args,
            0,
            false,
            &self.who,
            &mut self.out,
        );
        allocs() - before
    }
}

fn args(line: &str) -> Vec<Bytes> {
    line.split(' ')
        .map(|s| Bytes::copy_from_slice(s.as_bytes()))
        .collect()
}

/// Allocations of a warm GET and SET-overwrite (the minimum of a few runs, so that one-time
/// growth of a table does not count).
fn get_set_allocs(sh: &mut Shard) -> (u64, u64) {
    let (get, set) = (args("GET key"), args("SET key value"));
    sh.run(&set);
    let mut best = (u64::MAX, u64::MAX);
    for _ in 0..20 {
        best.0 = best.0.min(sh.run(&get));
        best.1 = best.1.min(sh.run(&set));
    }
    best
}

#[test]
fn notifications_off_allocate_nothing_on_get_and_set() {
    let mut sh = Shard::new();
    notify::set_flags(0);
    let (get_off, set_off) = get_set_allocs(&mut sh);
    eprintln!("allocations with notifications off: GET {get_off}, SET {set_off}");
    assert_eq!(get_off, 0, "GET of an existing key allocates nothing");

    // On, but nobody can receive them: still nothing more.
    notify::set_flags(notify::parse_flags(b"KEA").unwrap());
    let (get_on, set_on) = get_set_allocs(&mut sh);
    assert_eq!((get_on, set_on), (get_off, set_off));

    // With a subscriber the SET publishes, and the count sees it.
    let (tx, rx) = futures::channel::mpsc::unbounded();
    notify::replica_add(
        Kind::Pattern,
        Bytes::from_static(b"*"),
        1,
        tessera::pubsub::PushSender::new(tx),
    );
    let (_, set_sub) = get_set_allocs(&mut sh);
    assert!(set_sub > set_off, "{set_sub} vs {set_off}");
    notify::replica_remove(Kind::Pattern, &[bytes::Bytes::from_static(b"*")], 1);
    drop(rx);
    notify::set_flags(0);
}

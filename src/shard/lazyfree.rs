//! Lazy freeing (Redis's lazyfree.c without the thread): values with many allocations that are
//! deleted by UNLINK, FLUSHALL ASYNC or the `lazyfree-lazy-*` switches are detached from the
//! keyspace at once and dropped later, a bounded chunk at a time, by the shard's low-priority
//! background task, so a huge delete never stalls the shard's clients.
//!
//! What it owns: the shard's queue of detached values and flushed databases (one queue per
//! shard thread; values are always freed on the thread that detached them), its counters
//! (`lazyfree_pending_objects`, `lazyfreed_objects`), and the waker of the background task.
//!
//! What it must never do: free more than a bounded chunk per step, await while the queue is
//! borrowed, or hand anything to another thread.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::task::{Poll, Waker};

use super::memory::LAZYFREE_THRESHOLD;
use crate::types::dict::Dict;
use crate::types::key::Key;
use crate::types::{Entry, Value};

/// Elements freed per step of the background task before it yields.
pub const CHUNK: usize = 1024;

enum Item {
    /// One detached value and the bytes it was charged for.
    Value { value: Value, charged: u64 },
    /// A whole flushed database (boxed: queue slots stay the size of a value).
    Keyspace(Box<(Dict<Entry, Key>, Dict<u64, Key>)>),
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    pending_objects: u64,
    pending_bytes: u64,
    freed_objects: u64,
    waker: Option<Waker>,
}

thread_local! {
    static QUEUE: RefCell<Queue> = RefCell::new(Queue::default());
}

fn with<R>(f: impl FnOnce(&mut Queue) -> R) -> R {
    QUEUE.with(|q| f(&mut q.borrow_mut()))
}

/// Wakes the shard's background task (new lazy-free work, or eviction to continue).
pub fn wake() {
    if let Some(w) = with(|q| q.waker.take()) {
        w.wake();
    }
}

/// Frees `value` now if it is cheap to free, otherwise queues it for the background task.
/// `charged` is what the keyspace counted it for (for the pending-bytes estimate).
pub fn free_value(value: Value, charged: u64) {
    if value.free_effort() <= LAZYFREE_THRESHOLD {
        drop(value);
        return;
    }
    with(|q| {
        q.pending_objects += 1;
        q.pending_bytes += charged;
        q.items.push_back(Item::Value { value, charged });
    });
    wake();
}

/// Queues a whole flushed database (its key table and expiry index) for the background task.
/// `bytes` is the database's memory total at the time.
pub fn free_keyspace(keys: Dict<Entry, Key>, expires: Dict<u64, Key>, bytes: u64) {
    if keys.is_empty() && expires.is_empty() {
        return;
    }
    with(|q| {
        q.pending_objects += keys.len() as u64;
        q.pending_bytes += bytes;
        q.items.push_back(Item::Keyspace(Box::new((keys, expires))));
    });
    wake();
}

/// Objects waiting to be freed (INFO `lazyfree_pending_objects`).
pub fn pending_objects() -> u64 {
    with(|q| q.pending_objects)
}

/// Estimated bytes waiting to be freed.
pub fn pending_bytes() -> u64 {
    with(|q| q.pending_bytes)
}

/// Objects freed lazily so far (INFO `lazyfreed_objects`).
pub fn freed_objects() -> u64 {
    with(|q| q.freed_objects)
}

pub fn reset_stats() {
    with(|q| q.freed_objects = 0);
}

pub fn has_work() -> bool {
    with(|q| !q.items.is_empty())
}

/// Frees up to about `budget` elements from the front of the queue. Returns whether work is
/// left. The dropped memory is released inside this call; nothing here awaits.
pub fn free_step(budget: usize) -> bool {
    // Take the front item out, so that dropping never happens with the queue borrowed (a
    // value's drop never comes back here, but keeping the borrow short costs nothing).
    let Some(mut item) = with(|q| q.items.pop_front()) else {
        return false;
    };
    let done = match &mut item {
        Item::Value { value, charged } => {
            let done = value.free_some(budget);
            if done {
                let charged = *charged;
                with(|q| {
                    q.pending_objects = q.pending_objects.saturating_sub(1);
                    q.pending_bytes = q.pending_bytes.saturating_sub(charged);
                    q.freed_objects += 1;
                });
            }
            done
        }
        Item::Keyspace(tables) => {
            let (keys, expires) = &mut **tables;
            expires.drain_some(budget, |_, _| {});
            let mut big: Vec<(Value, u64)> = Vec::new();
            let mut freed = 0u64;
            let mut bytes = 0u64;
            let mut done_objects = 0u64;
            keys.drain_some(budget, |_k: Key, e: Entry| {
                let charged = e.charged as u64;
                if e.value.free_effort() > LAZYFREE_THRESHOLD {
                    // Huge values get their own queue slot, freed in chunks too.
                    big.push((e.value, charged));
                } else {
                    freed += 1;
                    bytes += charged;
                }
                done_objects += 1;
            });
            let requeued = big.len() as u64;
            with(|q| {
                // A key handed on as its own item stays pending (it was counted once, as part
                // of the database, and is counted once more as an item until freed).
                q.pending_objects = q.pending_objects.saturating_sub(done_objects) + requeued;
                q.pending_bytes = q.pending_bytes.saturating_sub(bytes);
                q.freed_objects += freed;
                for (value, charged) in big {
                    q.items.push_back(Item::Value { value, charged });
                }
            });
            keys.is_empty() && expires.is_empty()
        }
    };
    if done {
        drop(item);
    } else {
        with(|q| q.items.push_front(item));
    }
    has_work()
}

/// Frees everything queued, synchronously (tests, and shutdown paths that want it gone).
pub fn drain_all() {
    while free_step(usize::MAX) {}
}

/// Waits until there is lazy-free work or someone calls `wake`.
pub async fn wait_for_work() {
    let mut first = true;
    futures::future::poll_fn(move |cx| {
        if has_work() || !std::mem::take(&mut first) {
            return Poll::Ready(());
        }
        with(|q| q.waker = Some(cx.waker().clone()));
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ListValue;

    fn big_list(n: usize) -> Value {
        let mut l = ListValue::new(1);
        for i in 0..n {
            l.push(crate::types::list::End::Tail, i.to_string().as_bytes());
        }
        Value::List(Box::new(l))
    }

    #[test]
    fn small_values_are_freed_at_once_big_ones_in_chunks() {
        drain_all();
        let freed_before = freed_objects();
        free_value(Value::Str(crate::types::StrValue::from_bytes(b"x")), 10);
        assert_eq!(pending_objects(), 0);
        free_value(big_list(5000), 1234);
        assert_eq!(pending_objects(), 1);
        assert_eq!(pending_bytes(), 1234);
        // 5000 one-element nodes take five 1024-node steps.
        let mut steps = 0;
        while free_step(CHUNK) {
            steps += 1;
        }
        assert_eq!(steps, 4);
        assert_eq!(pending_objects(), 0);
        assert_eq!(pending_bytes(), 0);
        assert_eq!(freed_objects() - freed_before, 1);
    }

    #[test]
    fn a_flushed_database_is_freed_key_by_key() {
        drain_all();
        let mut keys: Dict<Entry, Key> = Dict::new();
        let mut expires: Dict<u64, Key> = Dict::new();
        for i in 0..3000 {
            let k = Key::new(format!("k{i}").as_bytes());
            if i % 2 == 0 {
                expires.insert(k.clone(), 1_000);
            }
            keys.insert(k, {
                let mut e = Entry::new(Value::Str(crate::types::StrValue::from_bytes(b"v")), 0);
                e.set_has_deadline(i % 2 == 0);
                e.charged = 100;
                e
            });
        }
        keys.insert(Key::new(b"big"), {
            let mut e = Entry::new(big_list(3000), 0);
            e.charged = 5000;
            e
        });
        free_keyspace(keys, expires, 3000 * 100 + 5000);
        assert_eq!(pending_objects(), 3001);
        assert!(free_step(CHUNK));
        assert!(pending_objects() < 3001);
        drain_all();
        assert_eq!(pending_objects(), 0);
        assert_eq!(pending_bytes(), 0);
    }
}

//! Consumer groups of one stream: each group's last-delivered ID and entries-read counter, its
//! consumers, and its pending entries list (PEL).
//!
//! Owns the group state and the rules that change it the way Redis 7.0's `t_stream.c` does:
//! delivering a new entry (PEL insert, or re-assignment when a SETID moved the group back),
//! acknowledging, claiming, deleting consumers, and the lag estimate of XINFO
//! (`streamEstimateDistanceFromFirstEverEntry` / `streamRangeHasTombstones`), which reads the
//! stream's counters through [`StreamMeta`] rather than the stream itself.
//!
//! It must never read or reply with the stream's entries, parse command arguments or write
//! replies: the command family (`commands::stream_group_family`) does that. Times are passed in
//! (milliseconds), never read from a clock here, so that the same operations replay
//! identically from the AOF and in tests.
//!
//! Groups and consumers are kept in byte order of their names, the order Redis's radix trees
//! list them in (XINFO GROUPS, XINFO CONSUMERS, XPENDING's summary, RDB files). A PEL entry
//! names its consumer; the consumer keeps the set of IDs it owns, so every operation that moves
//! an entry updates both sides (the invariant [`StreamGroups::check`] verifies).
//!
//! Redis's DEBUG DIGEST of a stream covers its entries only, not its groups: nothing here feeds a
//! digest.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::stream_id::StreamId;

/// Redis's `SCG_INVALID_ENTRIES_READ`: the group's entries-read counter is unknown.
pub const ENTRIES_READ_INVALID: i64 = -1;

/// One pending entry of a group: who owns it, when it was last delivered (ms), how often.
///
/// Redis keeps these as signed 64-bit numbers on the wire (RETRYCOUNT may be negative, an RDB
/// file may hold anything): stored as i64 and changed with wrapping arithmetic, they print as
/// Redis prints them and never panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nack {
    pub consumer: Bytes,
    pub delivery_time: i64,
    pub delivery_count: i64,
}

/// One consumer: when it was last seen (ms) and the IDs of the group PEL entries it owns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consumer {
    pub seen_time: i64,
    pub pel: BTreeSet<StreamId>,
}

/// One consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub last_id: StreamId,
    /// Entries read by the group (logical position), or [`ENTRIES_READ_INVALID`].
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

/// The counters of a stream that the lag estimate reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamMeta {
    /// Entries in the stream now.
    pub length: u64,
    /// Entries ever added (XADD count, XSETID ENTRIESADDED).
    pub entries_added: u64,
    /// The largest ID ever deleted (0-0 if none).
    pub max_deleted: StreamId,
    /// The first entry's ID (0-0 when empty).
    pub first_id: StreamId,
    /// The last ID the stream handed out.
    pub last_id: StreamId,
}

impl StreamMeta {
    /// Redis's `streamRangeHasTombstones(s, start, NULL)`: whether a deleted entry may lie at or
    /// after `start` inside the stream.
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.length == 0 || self.max_deleted == StreamId::MIN {
            return false;
        }
        if self.first_id > self.max_deleted {
            return false;
        }
        start <= self.max_deleted
    }

    /// Redis's `streamEstimateDistanceFromFirstEverEntry`: the entries-read counter that a
    /// group positioned at `id` has, when it can be known; [`ENTRIES_READ_INVALID`] otherwise.
    pub fn estimate_entries_read(&self, id: StreamId) -> i64 {
        let added = self.entries_added as i64;
        if self.entries_added == 0 {
            return 0;
        }
        if self.length == 0 && id <= self.last_id {
            return added;
        }
        if id == self.last_id {
            return added;
        }
        if id > self.last_id {
            return ENTRIES_READ_INVALID;
        }
        if self.max_deleted == StreamId::MIN || self.max_deleted < self.first_id {
            if id < self.first_id {
                return added.wrapping_sub(self.length as i64);
            }
            if id == self.first_id {
                return added.wrapping_sub(self.length as i64).wrapping_add(1);
            }
        }
        ENTRIES_READ_INVALID
    }
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// The lag XINFO reports (Redis's `streamReplyWithCGLag`), None when it cannot be known.
    pub fn lag(&self, s: &StreamMeta) -> Option<i64> {
        let added = s.entries_added as i64;
        if s.entries_added == 0 {
            return Some(0);
        }
        if self.entries_read != ENTRIES_READ_INVALID && !s.has_tombstones_from(self.last_id) {
            return Some(added.wrapping_sub(self.entries_read));
        }
        match s.estimate_entries_read(self.last_id) {
            ENTRIES_READ_INVALID => None,
            read => Some(added.wrapping_sub(read)),
        }
    }

    /// Moves the group past `id` when it is beyond its last-delivered ID, keeping entries-read
    /// as Redis does while serving `>`; true if the group moved.
    pub fn advance(&mut self, id: StreamId, s: &StreamMeta) -> bool {
        if id <= self.last_id {
            return false;
        }
        if self.entries_read != ENTRIES_READ_INVALID && !s.has_tombstones_from(id) {
            self.entries_read = self.entries_read.wrapping_add(1);
        } else if s.entries_added != 0 {
            self.entries_read = s.estimate_entries_read(id);
        }
        self.last_id = id;
        true
    }

    /// Looks a consumer up, creating it if needed (seen now), and refreshes its seen-time when
    /// `refresh`. Returns whether it was created.
    pub fn touch_consumer(&mut self, name: &Bytes, now: i64, refresh: bool) -> bool {
        match self.consumers.get_mut(name) {
            Some(c) => {
                if refresh {
                    c.seen_time = now;
                }
                false
            }
            None => {
                self.consumers.insert(
                    name.clone(),
                    Consumer {
                        seen_time: now,
                        pel: BTreeSet::new(),
                    },
                );
                true
            }
        }
    }

    /// Creates a consumer (XGROUP CREATECONSUMER); false if it exists.
    pub fn create_consumer(&mut self, name: &Bytes, now: i64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.touch_consumer(name, now, false)
    }

    /// Deletes a consumer and its pending entries; None if it does not exist, else how many
    /// entries it had pending.
    pub fn del_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }

    /// Records the delivery of `id` to `consumer` (which must exist) at `now` with count 1,
    /// taking the entry from its former owner if it was pending already (a SETID moved the
    /// group back).
    pub fn deliver(&mut self, id: StreamId, consumer: &Bytes, now: i64) {
        let nack = Nack {
            consumer: consumer.clone(),
            delivery_time: now,
            delivery_count: 1,
        };
        if let Some(old) = self.pel.insert(id, nack) {
            if let Some(c) = self.consumers.get_mut(&old.consumer) {
                c.pel.remove(&id);
            }
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }

    /// Acknowledges `id`; true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(n) => {
                if let Some(c) = self.consumers.get_mut(&n.consumer) {
                    c.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    /// Gives pending entry `id` (which must be in the PEL) to `consumer` (which must exist),
    /// setting its delivery time and count as XCLAIM does.
    pub fn assign(&mut self, id: StreamId, consumer: &Bytes, delivery_time: i64, count: i64) {
        let Some(n) = self.pel.get_mut(&id) else {
            return;
        };
        n.delivery_time = delivery_time;
        n.delivery_count = count;
        if n.consumer != *consumer {
            let old = std::mem::replace(&mut n.consumer, consumer.clone());
            if let Some(c) = self.consumers.get_mut(&old) {
                c.pel.remove(&id);
            }
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }

    /// Approximate heap bytes (for memory accounting; not Redis's MEMORY USAGE), from the
    /// sizes alone: it runs after every write to the stream, so it must not walk the consumers.
    /// Each pending entry sits in the group PEL and in one consumer's set.
    pub fn mem_bytes(&self) -> usize {
        self.pel.len() * (16 + std::mem::size_of::<Nack>() + 16 + 24)
            + self.consumers.len() * (std::mem::size_of::<Consumer>() + 32 + 32)
    }
}

/// The consumer groups of one stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamGroups {
    groups: BTreeMap<Bytes, Group>,
}

impl StreamGroups {
    /// How many groups the stream has.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn get(&self, name: &[u8]) -> Option<&Group> {
        self.groups.get(name)
    }

    pub fn get_mut(&mut self, name: &[u8]) -> Option<&mut Group> {
        self.groups.get_mut(name)
    }

    /// Creates a group; false if one of that name exists.
    pub fn create(&mut self, name: &Bytes, last_id: StreamId, entries_read: i64) -> bool {
        if self.groups.contains_key(name) {
            return false;
        }
        self.groups
            .insert(name.clone(), Group::new(last_id, entries_read));
        true
    }

    /// Inserts a group as loaded (RDB); replaces any of the same name.
    pub fn insert(&mut self, name: Bytes, g: Group) {
        self.groups.insert(name, g);
    }

    pub fn destroy(&mut self, name: &[u8]) -> bool {
        self.groups.remove(name).is_some()
    }

    /// Groups in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Group)> {
        self.groups.iter()
    }

    /// Approximate heap bytes of every group.
    pub fn mem_bytes(&self) -> usize {
        self.groups
            .iter()
            .map(|(k, g)| k.len() + 64 + g.mem_bytes())
            .sum()
    }

    /// Whether every PEL entry's consumer exists and owns it, and every consumer's entries are
    /// in the group PEL: what an RDB load must verify before trusting a file.
    pub fn check(&self) -> bool {
        self.groups.values().all(|g| {
            g.pel.iter().all(|(id, n)| {
                g.consumers
                    .get(&n.consumer)
                    .is_some_and(|c| c.pel.contains(id))
            }) && g.consumers.iter().all(|(name, c)| {
                c.pel
                    .iter()
                    .all(|id| g.pel.get(id).is_some_and(|n| n.consumer == *name))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId::new(ms, seq)
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn groups_are_listed_in_name_byte_order() {
        let mut g = StreamGroups::default();
        assert!(g.create(&b("zz"), id(0, 0), ENTRIES_READ_INVALID));
        assert!(g.create(&b("aa"), id(0, 0), ENTRIES_READ_INVALID));
        assert!(g.create(&b("b"), id(0, 0), ENTRIES_READ_INVALID));
        assert!(!g.create(&b("b"), id(1, 0), 3));
        let names: Vec<_> = g.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(names, vec![b("aa"), b("b"), b("zz")]);
        assert_eq!(g.len(), 3);
        assert!(g.destroy(b"b"));
        assert!(!g.destroy(b"b"));
        assert_eq!(g.len(), 2);
    }

    #[test]
    fn delivery_ack_claim_and_consumer_deletion_keep_both_pels_in_step() {
        let mut gs = StreamGroups::default();
        gs.create(&b("g"), id(0, 0), 0);
        let g = gs.get_mut(b"g").unwrap();
        assert!(g.touch_consumer(&b("alice"), 5, true));
        assert!(!g.create_consumer(&b("alice"), 9));
        assert!(g.create_consumer(&b("bob"), 9));
        g.deliver(id(1, 0), &b("alice"), 10);
        g.deliver(id(2, 0), &b("alice"), 10);
        // Delivered again after a SETID: bob takes it over, count back to 1.
        g.deliver(id(1, 0), &b("bob"), 20);
        assert_eq!(g.pel[&id(1, 0)].consumer, b("bob"));
        assert_eq!(g.consumers[&b("alice")].pel.len(), 1);
        g.assign(id(2, 0), &b("bob"), 30, 7);
        assert_eq!(g.pel[&id(2, 0)].delivery_count, 7);
        assert!(g.consumers[&b("alice")].pel.is_empty());
        assert!(gs.check());
        let g = gs.get_mut(b"g").unwrap();
        assert!(g.ack(id(1, 0)));
        assert!(!g.ack(id(1, 0)));
        assert_eq!(g.del_consumer(b"bob"), Some(1));
        assert_eq!(g.del_consumer(b"bob"), None);
        assert!(g.pel.is_empty());
        assert!(gs.check());
    }

    #[test]
    fn lag_and_entries_read_follow_redis_7_0() {
        // A new stream: lag 0 whatever the counter.
        let empty = StreamMeta::default();
        let g = Group::new(id(0, 0), ENTRIES_READ_INVALID);
        assert_eq!(g.lag(&empty), Some(0));
        // Entries 1-0..5-0, nothing deleted.
        let s = StreamMeta {
            length: 5,
            entries_added: 5,
            max_deleted: id(0, 0),
            first_id: id(1, 0),
            last_id: id(5, 0),
        };
        assert_eq!(s.estimate_entries_read(id(0, 0)), 0);
        assert_eq!(s.estimate_entries_read(id(1, 0)), 1);
        assert_eq!(s.estimate_entries_read(id(5, 0)), 5);
        assert_eq!(s.estimate_entries_read(id(3, 0)), ENTRIES_READ_INVALID);
        assert_eq!(s.estimate_entries_read(id(6, 0)), ENTRIES_READ_INVALID);
        // A group created at 0 with an unknown counter: estimated as 0, so lag 5.
        let mut g = Group::new(id(0, 0), ENTRIES_READ_INVALID);
        assert_eq!(g.lag(&s), Some(5));
        // Reading the first entry gives it an exact counter, then it counts.
        assert!(g.advance(id(1, 0), &s));
        assert_eq!(g.entries_read, 1);
        assert!(g.advance(id(2, 0), &s));
        assert_eq!(g.entries_read, 2);
        assert!(!g.advance(id(2, 0), &s));
        assert_eq!(g.lag(&s), Some(3));
        // A group in the middle with an unknown counter: no lag.
        let g = Group::new(id(3, 0), ENTRIES_READ_INVALID);
        assert_eq!(g.lag(&s), None);
        // A deletion at 4-0 ahead of the group makes its counter unusable.
        let t = StreamMeta {
            length: 4,
            max_deleted: id(4, 0),
            ..s
        };
        let g = Group::new(id(2, 0), 2);
        assert!(t.has_tombstones_from(id(2, 0)));
        assert!(!t.has_tombstones_from(id(5, 0)));
        assert_eq!(g.lag(&t), None);
        // A deletion before the first entry does not.
        let u = StreamMeta {
            length: 4,
            first_id: id(2, 0),
            max_deleted: id(1, 0),
            ..s
        };
        assert_eq!(g.lag(&u), Some(3));
        // An emptied stream: any ID up to the last one has read everything.
        let v = StreamMeta {
            length: 0,
            first_id: id(0, 0),
            ..s
        };
        assert_eq!(v.estimate_entries_read(id(2, 0)), 5);
    }

    #[test]
    fn check_finds_a_broken_pel() {
        let mut gs = StreamGroups::default();
        let mut g = Group::new(id(0, 0), 0);
        g.pel.insert(
            id(1, 0),
            Nack {
                consumer: b("ghost"),
                delivery_time: 0,
                delivery_count: 1,
            },
        );
        gs.insert(b("g"), g);
        assert!(!gs.check());
    }
}

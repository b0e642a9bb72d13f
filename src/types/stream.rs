//! The stream value: entries (an ID and field-value pairs) in ID order, laid out in nodes the
//! way Redis lays them out in its radix tree of listpacks.
//!
//! Owns the entries and the stream's counters (length, last generated ID, first live ID,
//! entries added, largest deleted ID) and the node bookkeeping that makes a stream observable
//! exactly as in Redis: which entries share a node (`stream-node-max-bytes`, counted in
//! listpack bytes as Redis counts them, and `stream-node-max-entries`), each node's master
//! fields (its first entry's), the SAMEFIELDS and deleted flags, and the live/deleted counters.
//! XINFO STREAM's `radix-tree-keys`, DUMP payloads and RDB files depend on that layout, and
//! approximate trimming removes whole nodes only. A node is kept as decoded entries rather than
//! as listpack bytes; [`Node::to_listpack`] produces Redis's bytes on demand (persistence only).
//!
//! Consumer groups live in [`StreamGroups`] (`groups`), which this module only carries.
//! Nothing here parses command arguments, replies, or knows about keys and shards; nothing here
//! may panic on any ID (IDs at `u64::MAX`, deltas that wrap) or any loaded node.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::stream_groups::StreamGroups;
use super::stream_id::StreamId;
use crate::persistence::rdb::packed::{lp_int_size, lp_str_size, Elem, LP_EMPTY_BYTES};

/// The entry flag of a deleted entry (Redis's `STREAM_ITEM_FLAG_DELETED`).
pub const FLAG_DELETED: i64 = 1;
/// The entry flag of an entry whose fields are its node's master fields
/// (`STREAM_ITEM_FLAG_SAMEFIELDS`): only its values are stored.
pub const FLAG_SAMEFIELDS: i64 = 2;

/// Largest listpack Redis lets a node grow to whatever the config says
/// (`STREAM_LISTPACK_MAX_SIZE`).
const LISTPACK_MAX_SIZE: usize = 1 << 30;

/// The node size limits (`stream-node-max-bytes`, `stream-node-max-entries`; 0 = no limit).
#[derive(Clone, Copy, Debug)]
pub struct StreamLimits {
    pub max_bytes: usize,
    pub max_entries: u64,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_bytes: 4096,
            max_entries: 100,
        }
    }
}

/// One entry inside a node, deleted or not (a deleted entry keeps its place and its bytes until
/// its whole node goes, as in Redis).
#[derive(Clone, Debug, PartialEq)]
pub struct NodeEntry {
    pub id: StreamId,
    pub flags: i64,
    /// Field, value, field, value...
    pub pairs: Vec<Bytes>,
}

impl NodeEntry {
    pub fn deleted(&self) -> bool {
        self.flags & FLAG_DELETED != 0
    }

    fn same_fields(&self) -> bool {
        self.flags & FLAG_SAMEFIELDS != 0
    }
}

/// One radix-tree node: a listpack holding a master entry and entries.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The master entry's fields (the node's first entry's, when it was created).
    pub master_fields: Vec<Bytes>,
    pub entries: Vec<NodeEntry>,
    /// Live entries (the master entry's `count`).
    pub live: u64,
    /// Entries flagged deleted (the master entry's `deleted`).
    pub deleted: u64,
    /// The listpack's total bytes (`lpBytes`), kept up to date.
    pub bytes: usize,
}

fn int_size(v: u64) -> usize {
    lp_int_size(v as i64)
}

impl Node {
    /// A node whose first entry is `id` with `pairs` (which give the master fields).
    fn new(id: StreamId, pairs: &[Bytes]) -> Node {
        let master_fields: Vec<Bytes> = pairs.iter().step_by(2).cloned().collect();
        let mut bytes = LP_EMPTY_BYTES
            + int_size(0) // count, 0 until the entry is added
            + int_size(0) // deleted
            + int_size(master_fields.len() as u64)
            + master_fields.iter().map(|f| lp_str_size(f)).sum::<usize>()
            + int_size(0); // master terminator
        bytes -= int_size(0);
        bytes += int_size(1);
        let mut n = Node {
            master_fields,
            entries: Vec::new(),
            live: 1,
            deleted: 0,
            bytes,
        };
        n.push_entry(id, id, pairs);
        n
    }

    /// Appends an entry's pieces (the counters are the caller's).
    fn push_entry(&mut self, master: StreamId, id: StreamId, pairs: &[Bytes]) {
        let same = pairs.len() / 2 == self.master_fields.len()
            && pairs
                .iter()
                .step_by(2)
                .zip(&self.master_fields)
                .all(|(a, b)| a == b);
        let flags = if same { FLAG_SAMEFIELDS } else { 0 };
        let mut add = lp_int_size(flags)
            + lp_int_size(id.ms.wrapping_sub(master.ms) as i64)
            + lp_int_size(id.seq.wrapping_sub(master.seq) as i64);
        let n = (pairs.len() / 2) as i64;
        let lp_count = if same {
            add += pairs
                .iter()
                .skip(1)
                .step_by(2)
                .map(|v| lp_str_size(v))
                .sum::<usize>();
            n + 3
        } else {
            add += lp_int_size(n) + pairs.iter().map(|v| lp_str_size(v)).sum::<usize>();
            2 * n + 4
        };
        add += lp_int_size(lp_count);
        self.bytes += add;
        self.entries.push(NodeEntry {
            id,
            flags,
            pairs: pairs.to_vec(),
        });
    }

    /// Sets the live and deleted counters, keeping `bytes` in step.
    fn set_counts(&mut self, live: u64, deleted: u64) {
        self.bytes = self.bytes + int_size(live) + int_size(deleted)
            - int_size(self.live)
            - int_size(self.deleted);
        self.live = live;
        self.deleted = deleted;
    }

    /// The ID of the last entry, deleted or not (Redis's `lpGetEdgeStreamID`).
    fn last_id(&self) -> Option<StreamId> {
        self.entries.last().map(|e| e.id)
    }

    /// Redis's listpack for this node, whose radix-tree key is `master`.
    pub fn to_listpack(&self, master: StreamId) -> Vec<u8> {
        let mut w = crate::persistence::rdb::packed::ListpackWriter::new();
        w.push_int(self.live as i64);
        w.push_int(self.deleted as i64);
        w.push_int(self.master_fields.len() as i64);
        for f in &self.master_fields {
            w.push_str(f);
        }
        w.push_int(0);
        for e in &self.entries {
            w.push_int(e.flags);
            w.push_int(e.id.ms.wrapping_sub(master.ms) as i64);
            w.push_int(e.id.seq.wrapping_sub(master.seq) as i64);
            let n = (e.pairs.len() / 2) as i64;
            if e.same_fields() {
                for v in e.pairs.iter().skip(1).step_by(2) {
                    w.push_str(v);
                }
                w.push_int(n + 3);
            } else {
                w.push_int(n);
                for v in &e.pairs {
                    w.push_str(v);
                }
                w.push_int(2 * n + 4);
            }
        }
        w.finish()
    }

    /// Reads a node from its listpack elements, checking what Redis's deep sanitisation of a
    /// stream listpack checks (master entry, every entry's shape and lp-count, counters, IDs
    /// in order above `master`). Err with a reason otherwise.
    pub fn from_listpack(master: StreamId, elems: &[Elem]) -> Result<Node, &'static str> {
        let mut it = elems.iter().copied();
        let int = |it: &mut dyn Iterator<Item = Elem>| -> Result<i64, &'static str> {
            match it.next() {
                Some(Elem::Int(n)) => Ok(n),
                Some(Elem::Str(s)) => crate::commands::args::parse_i64(s).ok_or("not an integer"),
                None => Err("stream listpack ends early"),
            }
        };
        let bytes_of = |e: Elem| -> Bytes { Bytes::from(e.to_vec()) };
        let live = int(&mut it)?;
        let deleted = int(&mut it)?;
        let nfields = int(&mut it)?;
        if live < 0 || deleted < 0 || nfields < 0 || nfields as usize > elems.len() {
            return Err("bad stream master entry");
        }
        let mut master_fields = Vec::with_capacity(nfields as usize);
        for _ in 0..nfields {
            master_fields.push(bytes_of(it.next().ok_or("stream listpack ends early")?));
        }
        if int(&mut it)? != 0 {
            return Err("bad stream master entry terminator");
        }
        let mut node = Node {
            master_fields,
            entries: Vec::new(),
            live: 0,
            deleted: 0,
            bytes: 0,
        };
        let (mut seen_live, mut seen_deleted) = (0u64, 0u64);
        let mut prev: Option<StreamId> = None;
        while let Some(first) = it.next() {
            let flags = match first {
                Elem::Int(n) => n,
                Elem::Str(s) => crate::commands::args::parse_i64(s).ok_or("bad entry flags")?,
            };
            if !(0..=3).contains(&flags) {
                return Err("bad stream entry flags");
            }
            let ms = master.ms.wrapping_add(int(&mut it)? as u64);
            let seq = master.seq.wrapping_add(int(&mut it)? as u64);
            let id = StreamId::new(ms, seq);
            if id < master || prev.is_some_and(|p| id <= p) {
                return Err("stream entry IDs out of order");
            }
            prev = Some(id);
            let same = flags & FLAG_SAMEFIELDS != 0;
            let mut pairs = Vec::new();
            let n;
            if same {
                n = node.master_fields.len() as i64;
                for f in node.master_fields.clone() {
                    pairs.push(f);
                    pairs.push(bytes_of(it.next().ok_or("stream listpack ends early")?));
                }
            } else {
                n = int(&mut it)?;
                if n < 0 || n as usize > elems.len() {
                    return Err("bad stream entry field count");
                }
                for _ in 0..2 * n {
                    pairs.push(bytes_of(it.next().ok_or("stream listpack ends early")?));
                }
            }
            let want = if same { n + 3 } else { 2 * n + 4 };
            if int(&mut it)? != want {
                return Err("bad stream entry lp-count");
            }
            if flags & FLAG_DELETED != 0 {
                seen_deleted += 1;
            } else {
                seen_live += 1;
            }
            node.entries.push(NodeEntry { id, flags, pairs });
        }
        if seen_live != live as u64 || seen_deleted != deleted as u64 {
            return Err("stream node counters do not match its entries");
        }
        if node.entries.is_empty() {
            return Err("empty stream node");
        }
        node.live = seen_live;
        node.deleted = seen_deleted;
        node.bytes = node.to_listpack(master).len();
        Ok(node)
    }
}

/// A stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamValue {
    /// Nodes by their key: the ID of the node's first entry (the master ID).
    pub nodes: BTreeMap<StreamId, Node>,
    /// Live entries.
    pub length: u64,
    /// The last ID added or set by XSETID.
    pub last_id: StreamId,
    /// The first live entry's ID (0-0 when empty).
    pub first_id: StreamId,
    /// The largest ID ever deleted by XDEL (or set by XSETID/loaded).
    pub max_deleted_id: StreamId,
    /// Entries ever added (XADD count, or as set by XSETID/loaded).
    pub entries_added: u64,
    pub groups: StreamGroups,
    /// The nodes' listpack bytes summed, kept by this module's methods (MEMORY USAGE and the
    /// memory charge after every write must not walk the nodes); `recount_bytes` after
    /// changing `nodes` directly.
    pub lp_bytes: usize,
}

/// Why XADD could not add an entry.
#[derive(Debug, PartialEq, Eq)]
pub enum AddError {
    /// The ID is not above the last ID (or `<ms>-*` would overflow the sequence).
    NotAbove,
    /// The fields and values are too large for one listpack.
    TooLarge,
}

/// The trimming of XADD and XTRIM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

impl StreamValue {
    pub fn new() -> StreamValue {
        StreamValue::default()
    }

    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Adds an entry (Redis's `streamAppendItem`). `id`: None for `*` (`now_ms` based), or the
    /// given ID with `seq_given` false for `<ms>-*`. Returns the ID added.
    pub fn add(
        &mut self,
        id: Option<StreamId>,
        seq_given: bool,
        pairs: &[Bytes],
        now_ms: u64,
        limits: StreamLimits,
    ) -> Result<StreamId, AddError> {
        let total: usize = pairs.iter().map(|p| p.len()).sum();
        if total > LISTPACK_MAX_SIZE {
            return Err(AddError::TooLarge);
        }
        let id = match id {
            None => {
                if now_ms > self.last_id.ms {
                    StreamId::new(now_ms, 0)
                } else {
                    self.last_id.next().ok_or(AddError::NotAbove)?
                }
            }
            Some(given) if !seq_given => {
                if given.ms == self.last_id.ms {
                    // Redis 7.0 reports this overflow as "too large" (its errno is not EDOM).
                    if self.last_id.seq == u64::MAX {
                        return Err(AddError::TooLarge);
                    }
                    StreamId::new(given.ms, self.last_id.seq + 1)
                } else {
                    given
                }
            }
            Some(given) => given,
        };
        if id <= self.last_id {
            return Err(AddError::NotAbove);
        }
        let max_bytes = match limits.max_bytes {
            0 => LISTPACK_MAX_SIZE,
            b => b.min(LISTPACK_MAX_SIZE),
        };
        let tail_fits = match self.nodes.last_key_value() {
            None => false,
            Some((_, n)) => {
                if n.bytes + total >= max_bytes {
                    false
                } else {
                    limits.max_entries == 0 || n.live + n.deleted < limits.max_entries
                }
            }
        };
        if tail_fits {
            let mut last = self.nodes.last_entry().expect("tail exists");
            let master = *last.key();
            let node = last.get_mut();
            let before = node.bytes;
            node.set_counts(node.live + 1, node.deleted);
            node.push_entry(master, id, pairs);
            self.lp_bytes = self.lp_bytes + node.bytes - before;
        } else {
            let node = Node::new(id, pairs);
            self.lp_bytes += node.bytes;
            self.nodes.insert(id, node);
        }
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
        Ok(id)
    }

    /// The first (`first`) or last live entry's ID, if any (Redis's `streamGetEdgeID` skipping
    /// deleted entries).
    pub fn edge_id(&self, first: bool) -> Option<StreamId> {
        if first {
            self.nodes
                .values()
                .flat_map(|n| n.entries.iter())
                .find(|e| !e.deleted())
                .map(|e| e.id)
        } else {
            self.nodes
                .values()
                .rev()
                .flat_map(|n| n.entries.iter().rev())
                .find(|e| !e.deleted())
                .map(|e| e.id)
        }
    }

    /// The first entry's ID, deleted entries included, or the largest ID for a stream without
    /// nodes (Redis's `streamGetEdgeID` without skipping tombstones): what an approximate MINID
    /// trim is logged with.
    pub fn first_entry_id_any(&self) -> StreamId {
        self.nodes
            .values()
            .flat_map(|n| n.entries.first())
            .map(|e| e.id)
            .next()
            .unwrap_or(StreamId::MAX)
    }

    /// The last live entry's ID, or 0-0 (Redis's `streamLastValidID`).
    pub fn last_valid_id(&self) -> StreamId {
        self.edge_id(false).unwrap_or_default()
    }

    /// Recomputes `first_id` after entries went away.
    fn refresh_first_id(&mut self) {
        self.first_id = if self.length == 0 {
            StreamId::MIN
        } else {
            self.edge_id(true).unwrap_or_default()
        };
    }

    /// Calls `f` with each live entry from `start` to `end` inclusive, in order (or reversed),
    /// up to `count` entries (0: all). `f` returns false to stop early.
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: u64,
        mut f: impl FnMut(StreamId, &[Bytes]) -> bool,
    ) -> u64 {
        let mut sent = 0u64;
        if start > end {
            return 0;
        }
        if !rev {
            let from = self
                .nodes
                .range(..=start)
                .next_back()
                .map(|(k, _)| *k)
                .unwrap_or(StreamId::MIN);
            for node in self.nodes.range(from..).map(|(_, n)| n) {
                for e in &node.entries {
                    if e.deleted() || e.id < start {
                        continue;
                    }
                    if e.id > end || (count != 0 && sent == count) {
                        return sent;
                    }
                    sent += 1;
                    if !f(e.id, &e.pairs) {
                        return sent;
                    }
                }
            }
        } else {
            let to = self.nodes.range(..=end).next_back().map(|(k, _)| *k);
            let Some(to) = to else { return 0 };
            for node in self.nodes.range(..=to).rev().map(|(_, n)| n) {
                for e in node.entries.iter().rev() {
                    if e.deleted() || e.id > end {
                        continue;
                    }
                    if e.id < start || (count != 0 && sent == count) {
                        return sent;
                    }
                    sent += 1;
                    if !f(e.id, &e.pairs) {
                        return sent;
                    }
                }
            }
        }
        sent
    }

    /// Deletes the live entry `id` (Redis's `streamDeleteItem`): the entry is flagged deleted,
    /// or its node goes when it was the node's last live entry. Does not touch `first_id` or
    /// `max_deleted_id` (XDEL's business). True if there was such an entry.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&key, node)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let Ok(pos) = node.entries.binary_search_by(|e| e.id.cmp(&id)) else {
            return false;
        };
        if node.entries[pos].deleted() {
            return false;
        }
        if node.live == 1 {
            self.lp_bytes -= node.bytes;
            self.nodes.remove(&key);
        } else {
            let before = node.bytes;
            node.entries[pos].flags |= FLAG_DELETED;
            node.set_counts(node.live - 1, node.deleted + 1);
            self.lp_bytes = self.lp_bytes + node.bytes - before;
        }
        self.length -= 1;
        true
    }

    /// XDEL of several IDs: (entries deleted), updating `first_id` and `max_deleted_id`.
    pub fn delete_ids(&mut self, ids: &[StreamId]) -> u64 {
        let mut deleted = 0;
        let mut first = false;
        for &id in ids {
            if self.delete(id) {
                if id == self.first_id {
                    first = true;
                }
                if id > self.max_deleted_id {
                    self.max_deleted_id = id;
                }
                deleted += 1;
            }
        }
        if deleted > 0 && (self.length == 0 || first) {
            self.refresh_first_id();
        }
        deleted
    }

    /// Trims (Redis's `streamTrim`): whole nodes from the head while they can go; then, unless
    /// `approx`, entries inside the next node. `limit` (0: none) caps the entries removed,
    /// counted by whole nodes. Returns the entries removed.
    pub fn trim(&mut self, trim: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        loop {
            if let Trim::MaxLen(max) = trim {
                if self.length <= max {
                    break;
                }
            }
            let Some(mut first) = self.nodes.first_entry() else {
                break;
            };
            let node = first.get();
            let entries = node.live;
            if limit != 0 && deleted + entries > limit {
                break;
            }
            let remove = match trim {
                Trim::MaxLen(max) => self.length - entries >= max,
                Trim::MinId(min) => node.last_id().is_some_and(|l| l < min),
            };
            if remove {
                self.lp_bytes -= first.remove().bytes;
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            let node = first.get_mut();
            let mut removed_here = 0u64;
            for e in node.entries.iter_mut() {
                let stop = match trim {
                    Trim::MaxLen(max) => self.length <= max,
                    Trim::MinId(min) => e.id >= min,
                };
                if stop {
                    break;
                }
                if !e.deleted() {
                    e.flags |= FLAG_DELETED;
                    removed_here += 1;
                    self.length -= 1;
                }
            }
            let (live, dead, before) = (node.live, node.deleted, node.bytes);
            node.set_counts(live - removed_here, dead + removed_here);
            self.lp_bytes = self.lp_bytes + node.bytes - before;
            deleted += removed_here;
            break;
        }
        self.refresh_first_id();
        deleted
    }

    /// Every node with its key, in order (persistence, XINFO).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Recomputes `lp_bytes` after `nodes` was filled directly (loading).
    pub fn recount_bytes(&mut self) {
        self.lp_bytes = self.nodes.values().map(|n| n.bytes).sum();
    }

    /// Approximate heap bytes, O(1): the nodes' listpack bytes plus a per-node overhead for the
    /// tree (Redis's radix tree node and listpack allocation).
    pub fn mem_bytes(&self) -> usize {
        std::mem::size_of::<StreamValue>()
            + self.lp_bytes
            + 64 * self.nodes.len()
            + self.groups.mem_bytes()
    }

    /// Allocations dropping the stream frees (Redis counts the nodes).
    pub fn free_effort(&self) -> usize {
        self.nodes.len().max(1)
    }

    /// Frees up to `budget` nodes; true once (almost) nothing is left.
    pub fn free_some(&mut self, budget: usize) -> bool {
        for _ in 0..budget {
            match self.nodes.pop_first() {
                Some((_, n)) => self.lp_bytes -= n.bytes,
                None => break,
            }
        }
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn ids(s: &StreamValue) -> Vec<StreamId> {
        let mut v = Vec::new();
        s.range(StreamId::MIN, StreamId::MAX, false, 0, |id, _| {
            v.push(id);
            true
        });
        v
    }

    #[test]
    fn nodes_split_by_entries_and_bytes() {
        let mut s = StreamValue::new();
        let lim = StreamLimits {
            max_bytes: 4096,
            max_entries: 3,
        };
        for i in 1..=7 {
            s.add(Some(StreamId::new(i, 0)), true, &[b("f"), b("v")], 0, lim)
                .unwrap();
        }
        assert_eq!(s.node_count(), 3);
        assert_eq!(s.len(), 7);
        // Node bytes track the listpack exactly, and their sum is kept.
        for (k, n) in &s.nodes {
            assert_eq!(n.bytes, n.to_listpack(*k).len());
        }
        let kept = s.lp_bytes;
        s.recount_bytes();
        assert_eq!(kept, s.lp_bytes);
        s.delete_ids(&[
            StreamId::new(2, 0),
            StreamId::new(4, 0),
            StreamId::new(5, 0),
        ]);
        s.trim(Trim::MaxLen(2), false, 0);
        let kept = s.lp_bytes;
        s.recount_bytes();
        assert_eq!(kept, s.lp_bytes);
        let lim = StreamLimits {
            max_bytes: 100,
            max_entries: 0,
        };
        let mut s = StreamValue::new();
        for i in 1..=10 {
            s.add(
                Some(StreamId::new(i, 0)),
                true,
                &[b("field"), b(&"x".repeat(30))],
                0,
                lim,
            )
            .unwrap();
        }
        assert!(s.node_count() > 1);
        for (k, n) in &s.nodes {
            assert_eq!(n.bytes, n.to_listpack(*k).len());
            assert!(n.bytes < 100 + 60);
        }
    }

    #[test]
    fn ids_errors_and_star_forms() {
        let mut s = StreamValue::new();
        let lim = StreamLimits::default();
        assert_eq!(
            s.add(None, true, &[b("a"), b("1")], 5, lim),
            Ok(StreamId::new(5, 0))
        );
        assert_eq!(
            s.add(None, true, &[b("a"), b("1")], 3, lim),
            Ok(StreamId::new(5, 1))
        );
        assert_eq!(
            s.add(Some(StreamId::new(5, 0)), false, &[b("a"), b("1")], 3, lim),
            Ok(StreamId::new(5, 2))
        );
        assert_eq!(
            s.add(Some(StreamId::new(5, 2)), true, &[b("a"), b("1")], 3, lim),
            Err(AddError::NotAbove)
        );
        s.last_id = StreamId::new(7, u64::MAX);
        assert_eq!(
            s.add(Some(StreamId::new(7, 0)), false, &[b("a"), b("1")], 3, lim),
            Err(AddError::TooLarge)
        );
        s.last_id = StreamId::MAX;
        assert_eq!(
            s.add(None, true, &[b("a"), b("1")], 3, lim),
            Err(AddError::NotAbove)
        );
    }

    #[test]
    fn deletion_bookkeeping() {
        let mut s = StreamValue::new();
        let lim = StreamLimits {
            max_bytes: 4096,
            max_entries: 2,
        };
        for i in 1..=5 {
            s.add(Some(StreamId::new(i, 0)), true, &[b("f"), b("v")], 0, lim)
                .unwrap();
        }
        assert_eq!(s.delete_ids(&[StreamId::new(1, 0), StreamId::new(9, 0)]), 1);
        assert_eq!(s.first_id, StreamId::new(2, 0));
        assert_eq!(s.max_deleted_id, StreamId::new(1, 0));
        let n = &s.nodes[&StreamId::new(1, 0)];
        assert_eq!((n.live, n.deleted), (1, 1));
        // Deleting a node's last live entry removes the node.
        assert_eq!(s.delete_ids(&[StreamId::new(2, 0)]), 1);
        assert_eq!(s.node_count(), 2);
        assert_eq!(
            ids(&s),
            vec![
                StreamId::new(3, 0),
                StreamId::new(4, 0),
                StreamId::new(5, 0)
            ]
        );
        // Exact trimming flags entries inside the head node; approximate removes whole nodes.
        assert_eq!(s.trim(Trim::MaxLen(2), false, 0), 1);
        assert_eq!(s.first_id, StreamId::new(4, 0));
        assert_eq!(s.trim(Trim::MaxLen(0), true, 0), 2);
        assert!(s.is_empty());
        assert_eq!(s.first_id, StreamId::MIN);
    }

    #[test]
    fn listpack_round_trip() {
        let mut s = StreamValue::new();
        let lim = StreamLimits::default();
        s.add(
            Some(StreamId::new(1, 1)),
            true,
            &[b("a"), b("1"), b("b"), b("x")],
            0,
            lim,
        )
        .unwrap();
        s.add(Some(StreamId::new(2, 0)), true, &[b("a"), b("-5")], 0, lim)
            .unwrap();
        s.add(
            Some(StreamId::new(3, 0)),
            true,
            &[b("a"), b("7"), b("b"), b("y")],
            0,
            lim,
        )
        .unwrap();
        s.delete(StreamId::new(2, 0));
        let (k, n) = s.nodes.iter().next().unwrap();
        let lp = n.to_listpack(*k);
        let elems = crate::persistence::rdb::packed::listpack_elems(&lp).unwrap();
        let back = Node::from_listpack(*k, &elems).unwrap();
        assert_eq!(&back, n);
    }
}

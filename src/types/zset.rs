//! The sorted set value (member -> score, kept ordered by (score, member)) with Redis's two
//! encodings.
//!
//! A small sorted set is a `listpack`: one packed byte buffer of entries in (score, member)
//! order, each entry being the score (8 bytes), the member length (varint) and the member bytes.
//! Every operation on it is a linear walk, which is what Redis's listpack costs too and is cheap
//! at the default 128 entries. It becomes a `skiplist` as soon as a new member would make it
//! hold more than `zset-max-listpack-entries` members or a member longer than
//! `zset-max-listpack-value` bytes is added, exactly like Redis's `zsetAdd`. The skiplist
//! encoding is an index-arena skiplist with spans (O(log n) insert, delete, rank and
//! select-by-rank) plus a member -> score [`Dict`] (O(1) ZSCORE, ZSCAN cursors). Nothing converts
//! back, except that STORE results are built with [`ZSetValue::from_sorted`], which picks the
//! listpack when the result is small (Redis's `zsetConvertToListpackIfNeeded`).
//!
//! Ranks are 0-based and always counted from the lowest entry; callers translate reverse ranks.
//! Scores are never NaN: callers reject NaN before it gets here. Ties between equal scores
//! (including -0 and 0, which compare equal) are broken by comparing member bytes.
//!
//! This module only stores data: it never parses arguments or writes replies.

use std::cmp::Ordering;

use bytes::Bytes;
use rand::Rng;

use ahash::RandomState;

use super::dict::{hash_key, random_bucket, scan_buckets};
use super::key::Key;
use super::packed::{PackedRun, Records};

/// The two conversion thresholds (`zset-max-listpack-entries`, `zset-max-listpack-value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZsetLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Default for ZsetLimits {
    /// Redis 7.0's defaults.
    fn default() -> Self {
        ZsetLimits {
            max_entries: 128,
            max_value: 64,
        }
    }
}

/// The order of a sorted set: by score, then by member bytes (memcmp, shorter first on a tie).
#[inline]
pub fn cmp_entries(a_score: f64, a: &[u8], b_score: f64, b: &[u8]) -> Ordering {
    match a_score.partial_cmp(&b_score) {
        Some(Ordering::Equal) | None => a.cmp(b),
        Some(o) => o,
    }
}

// ---------------------------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------------------------

/// A range of entries as Redis's range commands describe them: a lower bound and an upper bound,
/// each a predicate on an entry. For score ranges both are monotone along the set's order; for
/// lexicographic ranges they are only monotone when all scores are equal, which is why the
/// listpack searches below walk linearly exactly like Redis's listpack code does.
pub trait ZRange {
    /// True when the range can never hold anything (min above max, or equal and open).
    fn is_empty(&self) -> bool;
    fn gte_min(&self, score: f64, member: &[u8]) -> bool;
    fn lte_max(&self, score: f64, member: &[u8]) -> bool;
}

/// A score interval (`ZRANGEBYSCORE min max`, `(` for an open end).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub min_ex: bool,
    pub max: f64,
    pub max_ex: bool,
}

impl ZRange for ScoreRange {
    fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.min_ex || self.max_ex))
    }

    #[inline]
    fn gte_min(&self, score: f64, _: &[u8]) -> bool {
        if self.min_ex {
            score > self.min
        } else {
            score >= self.min
        }
    }

    #[inline]
    fn lte_max(&self, score: f64, _: &[u8]) -> bool {
        if self.max_ex {
            score < self.max
        } else {
            score <= self.max
        }
    }
}

/// One end of a lexicographic range: `-`, `+`, `[member` or `(member`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexBound {
    /// `-`: below every member.
    Min,
    /// `+`: above every member.
    Max,
    Incl(Bytes),
    Excl(Bytes),
}

impl LexBound {
    /// Position on the line `-` < every string < `+` (Redis's `sdscmplex`).
    fn cmp_bound(&self, other: &LexBound) -> Ordering {
        fn key(b: &LexBound) -> (u8, &[u8]) {
            match b {
                LexBound::Min => (0, b""),
                LexBound::Incl(s) | LexBound::Excl(s) => (1, s),
                LexBound::Max => (2, b""),
            }
        }
        key(self).cmp(&key(other))
    }

    /// Redis treats `-` and `+` as exclusive bounds.
    fn exclusive(&self) -> bool {
        !matches!(self, LexBound::Incl(_))
    }
}

/// A lexicographic member range (`ZRANGEBYLEX min max`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl ZRange for LexRange {
    fn is_empty(&self) -> bool {
        match self.min.cmp_bound(&self.max) {
            Ordering::Greater => true,
            Ordering::Equal => self.min.exclusive() || self.max.exclusive(),
            Ordering::Less => false,
        }
    }

    #[inline]
    fn gte_min(&self, _: f64, member: &[u8]) -> bool {
        match &self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Incl(b) => member >= &b[..],
            LexBound::Excl(b) => member > &b[..],
        }
    }

    #[inline]
    fn lte_max(&self, _: f64, member: &[u8]) -> bool {
        match &self.max {
            LexBound::Max => true,
            LexBound::Min => false,
            LexBound::Incl(b) => member <= &b[..],
            LexBound::Excl(b) => member < &b[..],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Listpack encoding
// ---------------------------------------------------------------------------------------------

/// A score as a packed item: its IEEE bits big-endian with the trailing zero bytes dropped, so
/// that integral and other short scores (1 -> `3F F0`, 0 -> nothing) take a few bytes where a
/// full double takes eight, much as Redis's listpack stores integral scores as integers.
/// Adding 0.0 turns -0 into 0, which Redis's listpack also reads back as 0 (a skiplist keeps
/// the sign).
#[inline]
fn score_item(score: f64, out: &mut [u8; 8]) -> usize {
    *out = (score + 0.0).to_bits().to_be_bytes();
    8 - out.iter().rev().take_while(|&&b| b == 0).count()
}

#[inline]
fn score_from_item(item: &[u8]) -> f64 {
    let mut raw = [0u8; 8];
    let n = item.len().min(8);
    raw[..n].copy_from_slice(&item[..n]);
    f64::from_bits(u64::from_be_bytes(raw))
}

/// Entries in (score, member) order, packed as two-item records (score, member) of a
/// [`PackedRun`]: one allocation for the whole set, like Redis's listpack.
#[derive(Clone, Default, PartialEq)]
pub struct Listpack {
    run: PackedRun<2>,
}

/// Forward iterator over a listpack: (byte offset, score, member).
pub struct LpIter<'a> {
    records: Records<'a, 2>,
}

impl<'a> Iterator for LpIter<'a> {
    type Item = (usize, f64, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.records
            .next()
            .map(|(at, [s, m])| (at, score_from_item(s), m))
    }
}

impl Listpack {
    #[inline]
    fn len(&self) -> usize {
        self.run.len()
    }

    /// Appends an entry that sorts after every other.
    fn push(&mut self, score: f64, member: &[u8]) {
        let mut raw = [0u8; 8];
        let n = score_item(score, &mut raw);
        self.run.push([&raw[..n], member]);
    }

    /// The entry at byte offset `off`: (score, member, offset of the next entry).
    #[inline]
    fn decode(&self, off: usize) -> (f64, &[u8], usize) {
        match self.run.record_at(off) {
            Some(([s, m], next)) => (score_from_item(s), m, next),
            None => (0.0, &[], self.run.end()),
        }
    }

    fn iter(&self) -> LpIter<'_> {
        self.iter_from(0)
    }

    fn iter_from(&self, off: usize) -> LpIter<'_> {
        LpIter {
            records: self.run.iter_from(off),
        }
    }

    /// Byte offset of every entry, in order (for reverse walks and random access).
    fn offsets(&self) -> Vec<usize> {
        self.run.positions()
    }

    /// (rank, byte offset, score) of `member`.
    fn find(&self, member: &[u8]) -> Option<(usize, usize, f64)> {
        self.run
            .find(|[_, m]| *m == member)
            .map(|f| (f.index, f.pos, score_from_item(f.items[0])))
    }

    fn insert(&mut self, member: &[u8], score: f64) {
        let at = self
            .iter()
            .find(|(_, s, m)| cmp_entries(*s, m, score, member) == Ordering::Greater)
            .map_or(self.run.end(), |(off, _, _)| off);
        let mut raw = [0u8; 8];
        let n = score_item(score, &mut raw);
        self.run.insert_at(at, [&raw[..n], member]);
    }

    /// Removes `count` entries starting with the one at byte offset `off`.
    fn remove_entries(&mut self, off: usize, count: usize) {
        self.run.remove_at(off, count);
    }

    fn offset_of_rank(&self, rank: usize) -> Option<usize> {
        self.run.position_of(rank)
    }
}

// ---------------------------------------------------------------------------------------------
// Skiplist encoding
// ---------------------------------------------------------------------------------------------

const MAX_LEVEL: usize = 32;
/// Bits of a node id that hold its slot within its level class (the top 5 hold the class).
const SLOT_BITS: u32 = 27;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
/// Slots per class: one less than the mask, so that no real node id equals NIL.
const SLOTS_PER_CLASS: usize = SLOT_MASK as usize;
const NIL: u32 = u32::MAX;
/// The header: the first slot of the top class (it has every level).
const HEAD: u32 = ((MAX_LEVEL as u32) - 1) << SLOT_BITS;

/// One forward link of a node: the next node at this level, how many entries it skips (the rank
/// difference; a link to NIL spans the rest of the list, as in Redis) and the next node's score.
/// With the score beside the link a search step reads only the link: the node it points to is
/// loaded only when the scores tie and members must be compared.
#[derive(Clone, Copy, Debug)]
struct Link {
    next: u32,
    span: u32,
    /// Score of `next` (unused when `next` is NIL); kept equal by insert, unlink and
    /// update_score.
    score: f64,
}

const NIL_LINK: Link = Link {
    next: NIL,
    span: 0,
    score: 0.0,
};

/// A node's entry; its links live in its class's link array.
#[derive(Clone, Debug)]
struct Meta {
    score: f64,
    /// Inline when short (no allocation of its own), like the keyspace's keys.
    member: Key,
    /// The previous node at level 0 (NIL for the first node).
    prev: u32,
    /// The next node in this member's chain of the member index (`MemberIndex`): the index
    /// stores no entries of its own, only bucket heads, so a member is stored once.
    hnext: u32,
}

/// The nodes that have `c + 1` levels: node `k` owns `links[k*(c+1) .. (k+1)*(c+1)]` and
/// `metas[k]`. All of a node's links are contiguous, so a search step costs one cache miss
/// at any level, as with Redis's single-allocation nodes, and no node is a separate
/// allocation.
#[derive(Clone, Debug, Default)]
struct Class {
    links: Vec<Link>,
    metas: Vec<Meta>,
    free: Vec<u32>,
}

/// A skiplist whose nodes live in per-level-count arenas (`Class`); a node id is its class
/// (top 5 bits) and slot. Freed slots are reused, and the arenas are compacted once more than
/// half of their slots are free, so their size stays proportional to the live entries.
#[derive(Clone, Debug)]
pub struct SkipList {
    classes: Vec<Class>,
    /// Free slots over all classes.
    free_slots: usize,
    level: usize,
    len: usize,
    tail: u32,
    rng: u64,
    /// The member bytes (for DEBUG OBJECT's payload size), and for `mem_bytes` the heap of the
    /// members too long to be inline.
    member_bytes: usize,
    member_heap: usize,
}

impl Default for SkipList {
    fn default() -> Self {
        SkipList::new()
    }
}

/// A top-down skiplist search in progress (`SkipList::find_two_paths`), and the path it has
/// recorded: at each level below `levels_left`, the last node before the target and its rank.
struct SearchPath {
    update: [u32; MAX_LEVEL],
    rank: [u32; MAX_LEVEL],
    /// The node the search stands on and its rank (the header's is 0).
    at: u32,
    at_rank: u32,
    /// Levels still to search; 0 when done.
    levels_left: usize,
}

impl SearchPath {
    fn new(levels: usize) -> SearchPath {
        SearchPath {
            update: [HEAD; MAX_LEVEL],
            rank: [0; MAX_LEVEL],
            at: HEAD,
            at_rank: 0,
            levels_left: levels,
        }
    }
}

#[inline]
fn class_of(x: u32) -> usize {
    (x >> SLOT_BITS) as usize
}

#[inline]
fn slot_of(x: u32) -> usize {
    (x & SLOT_MASK) as usize
}

impl SkipList {
    pub fn new() -> SkipList {
        let mut classes = vec![Class::default(); MAX_LEVEL];
        let top = &mut classes[MAX_LEVEL - 1];
        top.links = vec![NIL_LINK; MAX_LEVEL];
        top.metas.push(Meta {
            score: 0.0,
            member: Key::new(b""),
            prev: NIL,
            hnext: NIL,
        });
        SkipList {
            classes,
            free_slots: 0,
            level: 1,
            len: 0,
            tail: NIL,
            rng: rand::random::<u64>() | 1,
            member_bytes: 0,
            member_heap: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Redis's level distribution: each extra level with probability 1/4.
    fn random_level(&mut self) -> usize {
        let mut lvl = 1;
        while lvl < MAX_LEVEL {
            // xorshift64*
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 48;
            if r >= 0x4000 {
                break;
            }
            lvl += 1;
        }
        lvl
    }

    #[inline]
    fn link(&self, x: u32, i: usize) -> Link {
        let c = class_of(x);
        self.classes[c].links[slot_of(x) * (c + 1) + i]
    }

    #[inline]
    fn link_mut(&mut self, x: u32, i: usize) -> &mut Link {
        let c = class_of(x);
        &mut self.classes[c].links[slot_of(x) * (c + 1) + i]
    }

    #[inline]
    fn node(&self, x: u32) -> &Meta {
        &self.classes[class_of(x)].metas[slot_of(x)]
    }

    #[inline]
    fn node_mut(&mut self, x: u32) -> &mut Meta {
        &mut self.classes[class_of(x)].metas[slot_of(x)]
    }

    /// How many levels node `x` has.
    #[inline]
    fn levels_of(x: u32) -> usize {
        class_of(x) + 1
    }

    /// The entry of node `x`.
    #[inline]
    pub fn entry(&self, x: u32) -> (f64, &Key) {
        let n = self.node(x);
        (n.score, &n.member)
    }

    #[inline]
    fn before(&self, x: u32, score: f64, member: &[u8]) -> bool {
        let n = self.node(x);
        cmp_entries(n.score, &n.member, score, member) == Ordering::Less
    }

    /// Whether link `l` leads to an entry ordered before (score, member).
    #[inline]
    fn link_before(&self, l: Link, score: f64, member: &[u8]) -> bool {
        if l.next == NIL {
            return false;
        }
        match l.score.partial_cmp(&score) {
            Some(Ordering::Less) => true,
            Some(Ordering::Greater) => false,
            _ => &self.node(l.next).member[..] < member,
        }
    }

    /// A slot for a node of `levels` levels (more when that class is full: extra levels never
    /// break the list), with its links cleared.
    fn alloc(&mut self, levels: usize, meta: Meta) -> u32 {
        let mut c = levels - 1;
        while self.classes[c].free.is_empty() && self.classes[c].metas.len() >= SLOTS_PER_CLASS {
            c += 1;
            assert!(c < MAX_LEVEL, "sorted set skiplist is full");
        }
        let class = &mut self.classes[c];
        let k = match class.free.pop() {
            Some(k) => {
                self.free_slots -= 1;
                class.metas[k as usize] = meta;
                let at = k as usize * (c + 1);
                class.links[at..at + c + 1].fill(NIL_LINK);
                k
            }
            None => {
                // Arenas grow by half at a time (Vec doubles): less room paid for and never
                // touched in a big set, for a few more (amortised) copies.
                if class.metas.len() == class.metas.capacity() {
                    class.metas.reserve_exact((class.metas.len() / 2).max(4));
                    let links = class.links.len();
                    class.links.reserve_exact((links / 2).max(4 * (c + 1)));
                }
                class.metas.push(meta);
                class.links.extend(std::iter::repeat_n(NIL_LINK, c + 1));
                (class.metas.len() - 1) as u32
            }
        };
        ((c as u32) << SLOT_BITS) | k
    }

    /// Frees an unlinked node's slot, returning its entry.
    fn release(&mut self, x: u32) -> (Key, f64) {
        let class = &mut self.classes[class_of(x)];
        let meta = &mut class.metas[slot_of(x)];
        let member = std::mem::replace(&mut meta.member, Key::new(b""));
        self.member_bytes -= member.len();
        self.member_heap -= Key::heap_bytes(member.len());
        class.free.push(slot_of(x) as u32);
        self.free_slots += 1;
        (member, meta.score)
    }

    /// Slots held by the arenas, live or free (tests only).
    #[cfg(test)]
    fn slots(&self) -> usize {
        self.classes.iter().map(|c| c.metas.len()).sum()
    }

    /// Where (score, member) goes: the last node before it at every level, and the rank of
    /// each of those nodes.
    fn insert_position(&self, score: f64, member: &[u8]) -> ([u32; MAX_LEVEL], [u32; MAX_LEVEL]) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            rank[i] = if i + 1 == self.level { 0 } else { rank[i + 1] };
            loop {
                let l = self.link(x, i);
                if self.link_before(l, score, member) {
                    rank[i] += l.span;
                    x = l.next;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        (update, rank)
    }

    /// Inserts an entry whose member is not in the list yet; returns its node id, which stays
    /// the entry's until it is removed or the arena is compacted.
    pub fn insert(&mut self, score: f64, member: Key) -> u32 {
        let (update, rank) = self.insert_position(score, &member);
        self.member_bytes += member.len();
        self.member_heap += Key::heap_bytes(member.len());
        let drawn = self.random_level();
        let id = self.alloc(
            drawn,
            Meta {
                score,
                member,
                prev: NIL,
                hnext: NIL,
            },
        );
        self.link_in(id, score, update, rank);
        id
    }

    /// Links the unlinked node `id` (whose entry has `score`) in after `update` (at the ranks
    /// `rank`), as `insert_position` found them.
    fn link_in(
        &mut self,
        id: u32,
        score: f64,
        mut update: [u32; MAX_LEVEL],
        mut rank: [u32; MAX_LEVEL],
    ) {
        self.node_mut(id).prev = if update[0] == HEAD { NIL } else { update[0] };
        // A full class may have given the node more levels than drawn.
        let lvl = Self::levels_of(id);
        if lvl > self.level {
            for i in self.level..lvl {
                rank[i] = 0;
                update[i] = HEAD;
                self.link_mut(HEAD, i).span = self.len as u32;
            }
            self.level = lvl;
        }
        for i in 0..lvl {
            let u = self.link(update[i], i);
            let dist = rank[0] - rank[i];
            *self.link_mut(id, i) = Link {
                next: u.next,
                span: u.span - dist,
                score: u.score,
            };
            *self.link_mut(update[i], i) = Link {
                next: id,
                span: dist + 1,
                score,
            };
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(lvl) {
            self.link_mut(u, i).span += 1;
        }
        let next0 = self.link(id, 0).next;
        if next0 != NIL {
            self.node_mut(next0).prev = id;
        } else {
            self.tail = id;
        }
        self.len += 1;
    }

    /// Unlinks node `x`, given the last node before it at every level.
    fn unlink(&mut self, x: u32, update: &[u32; MAX_LEVEL]) {
        for (i, &u) in update.iter().enumerate().take(self.level) {
            let ul = self.link(u, i);
            if ul.next == x {
                let xl = self.link(x, i);
                *self.link_mut(u, i) = Link {
                    next: xl.next,
                    span: ul.span + xl.span - 1,
                    score: xl.score,
                };
            } else {
                self.link_mut(u, i).span -= 1;
            }
        }
        let next0 = self.link(x, 0).next;
        let prev = self.node(x).prev;
        if next0 != NIL {
            self.node_mut(next0).prev = prev;
        } else {
            self.tail = prev;
        }
        while self.level > 1 && self.link(HEAD, self.level - 1).next == NIL {
            self.level -= 1;
        }
        self.len -= 1;
    }

    /// The last node before (score, member) at every level, and the node after that at level 0
    /// (the entry itself when present).
    fn find_update(&self, score: f64, member: &[u8]) -> ([u32; MAX_LEVEL], u32) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if self.link_before(l, score, member) {
                    x = l.next;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        (update, self.link(x, 0).next)
    }

    fn is_entry(&self, x: u32, score: f64, member: &[u8]) -> bool {
        x != NIL && self.node(x).score == score && &self.node(x).member[..] == member
    }

    /// Removes the entry (score, member); returns its member if it was there. The arena is
    /// not compacted here: the caller decides when (`maybe_compact`), since compaction
    /// renumbers nodes.
    pub fn remove(&mut self, score: f64, member: &[u8]) -> Option<Key> {
        let (update, x) = self.find_update(score, member);
        if !self.is_entry(x, score, member) {
            return None;
        }
        self.unlink(x, &update);
        let (m, _) = self.release(x);
        Some(m)
    }

    /// Changes the score of entry `x` (whose score is `old`), in place when its position does
    /// not change; otherwise the same node moves (its id does not change, as with Redis's
    /// `zslUpdateScore`, so the member index needs no update).
    ///
    /// The caller found `x` through the member index, so unlike Redis no search is needed to
    /// decide whether the node can stay. A move searches for the old and the new position in
    /// one interleaved pass (`find_two_paths`): the two searches are independent pointer
    /// chases, and interleaving them lets their cache misses overlap.
    pub fn update_score(&mut self, x: u32, old: f64, new: f64) {
        debug_assert!(x != NIL && self.node(x).score == old);
        let prev = self.node(x).prev;
        let next = self.link(x, 0).next;
        let member = &self.node(x).member;
        let prev_ok = prev == NIL || self.before(prev, new, member);
        let next_ok = next == NIL || {
            let n = self.node(next);
            cmp_entries(n.score, &n.member, new, member) == Ordering::Greater
        };
        if prev_ok && next_ok {
            // The links into x carry its score: at level 0 that is prev's (or the header's);
            // a taller node needs its predecessors at every level.
            if Self::levels_of(x) == 1 {
                let p = if prev == NIL { HEAD } else { prev };
                self.link_mut(p, 0).score = new;
            } else {
                let (update, _) = self.find_update(old, &self.node(x).member);
                for (i, &u) in update.iter().enumerate().take(Self::levels_of(x)) {
                    self.link_mut(u, i).score = new;
                }
            }
            self.node_mut(x).score = new;
            return;
        }
        let (from, mut to) = self.find_two_paths(old, new, &self.node(x).member);
        // `to` was searched with x still linked: where it stands on x, x's own predecessor
        // takes its place, and every node after x moves down one rank.
        let rank_x = from.rank[0] + 1;
        for i in 0..self.level {
            if to.update[i] == x {
                to.update[i] = from.update[i];
                to.rank[i] = from.rank[i];
            } else if to.rank[i] > rank_x {
                to.rank[i] -= 1;
            }
        }
        self.unlink(x, &from.update);
        self.node_mut(x).score = new;
        self.link_in(x, new, to.update, to.rank);
    }

    /// The search paths to (`a`, member) and (`b`, member): at every level the last node before
    /// each and its rank, as `insert_position` returns them. The two searches advance one step
    /// each in turn; neither depends on the other's loads, so the CPU overlaps their misses.
    fn find_two_paths(&self, a: f64, b: f64, member: &[u8]) -> (SearchPath, SearchPath) {
        let mut pa = SearchPath::new(self.level);
        let mut pb = SearchPath::new(self.level);
        while pa.levels_left > 0 || pb.levels_left > 0 {
            if pa.levels_left > 0 {
                self.search_step(&mut pa, a, member);
            }
            if pb.levels_left > 0 {
                self.search_step(&mut pb, b, member);
            }
        }
        (pa, pb)
    }

    /// One step of a top-down search for (score, member): along the current level while the
    /// next node is before it, else record the level and go down one.
    #[inline(always)]
    fn search_step(&self, p: &mut SearchPath, score: f64, member: &[u8]) {
        let i = p.levels_left - 1;
        let l = self.link(p.at, i);
        if self.link_before(l, score, member) {
            p.at_rank += l.span;
            p.at = l.next;
        } else {
            p.update[i] = p.at;
            p.rank[i] = p.at_rank;
            p.levels_left = i;
            if i == 0 {
                return;
            }
        }
        // The link this search reads next, loading while the other search takes its step.
        let c = class_of(p.at);
        let at = slot_of(p.at) * (c + 1) + p.levels_left - 1;
        if let Some(next) = self.classes[c].links.get(at) {
            crate::cpu::prefetch(next);
        }
    }

    /// How many leading entries satisfy `pred` (which must hold for a prefix of the list).
    pub fn count_while(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut x = HEAD;
        let mut rank = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.next != NIL && {
                    let n = self.node(l.next);
                    pred(n.score, &n.member)
                } {
                    rank += l.span as usize;
                    x = l.next;
                } else {
                    break;
                }
            }
        }
        rank
    }

    /// 0-based rank of (score, member), if present.
    pub fn rank_of(&self, score: f64, member: &[u8]) -> Option<usize> {
        let mut x = HEAD;
        let mut rank = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.next != NIL
                    && match l.score.partial_cmp(&score) {
                        Some(Ordering::Less) => true,
                        Some(Ordering::Greater) => false,
                        _ => &self.node(l.next).member[..] <= member,
                    }
                {
                    rank += l.span as usize;
                    x = l.next;
                } else {
                    break;
                }
            }
            if x != HEAD && &self.node(x).member[..] == member {
                return Some(rank - 1);
            }
        }
        None
    }

    /// The node at 0-based `rank` (NIL when out of range).
    pub fn select(&self, rank: usize) -> u32 {
        let target = rank + 1;
        let mut traversed = 0usize;
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.next != NIL && traversed + l.span as usize <= target {
                    traversed += l.span as usize;
                    x = l.next;
                } else {
                    break;
                }
            }
            if traversed == target {
                return x;
            }
        }
        NIL
    }

    /// Removes up to `count` entries starting at 0-based `start`, passing each to `f`. Like
    /// `remove`, it leaves compaction to the caller.
    pub fn remove_rank_range(&mut self, start: usize, count: usize, mut f: impl FnMut(Key, f64)) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut traversed = 0usize;
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let l = self.link(x, i);
                if l.next != NIL && traversed + (l.span as usize) < start + 1 {
                    traversed += l.span as usize;
                    x = l.next;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let mut x = self.link(x, 0).next;
        let mut removed = 0;
        while x != NIL && removed < count {
            let next = self.link(x, 0).next;
            self.unlink(x, &update);
            let (m, s) = self.release(x);
            f(m, s);
            removed += 1;
            x = next;
        }
    }

    pub fn first(&self) -> u32 {
        self.link(HEAD, 0).next
    }

    pub fn last(&self) -> u32 {
        self.tail
    }

    #[inline]
    pub fn next_of(&self, x: u32) -> u32 {
        self.link(x, 0).next
    }

    #[inline]
    pub fn prev_of(&self, x: u32) -> u32 {
        self.node(x).prev
    }

    /// Renumbers the live nodes densely (in list order within each class) once most of the
    /// arena slots are free; true when it did (every node id changed, and the member chains
    /// through `hnext` must be rebuilt).
    fn maybe_compact(&mut self) -> bool {
        let slots = self.len + 1 + self.free_slots;
        if slots < 64 || self.free_slots * 2 < slots {
            return false;
        }
        // New slot of every live node, by walking level 0 from the header.
        let mut remap: Vec<Vec<u32>> = self
            .classes
            .iter()
            .map(|c| vec![NIL; c.metas.len()])
            .collect();
        let mut fresh = vec![Class::default(); MAX_LEVEL];
        let mut x = HEAD;
        while x != NIL {
            let c = class_of(x);
            remap[c][slot_of(x)] = ((c as u32) << SLOT_BITS) | fresh[c].metas.len() as u32;
            fresh[c].metas.push(Meta {
                score: 0.0,
                member: Key::new(b""),
                prev: NIL,
                hnext: NIL,
            });
            x = self.link(x, 0).next;
        }
        let new_id = |remap: &Vec<Vec<u32>>, x: u32| {
            if x == NIL {
                NIL
            } else {
                remap[class_of(x)][slot_of(x)]
            }
        };
        let mut x = HEAD;
        while x != NIL {
            let next = self.link(x, 0).next;
            let c = class_of(x);
            let id = new_id(&remap, x);
            let meta = std::mem::replace(
                self.node_mut(x),
                Meta {
                    score: 0.0,
                    member: Key::new(b""),
                    prev: NIL,
                    hnext: NIL,
                },
            );
            fresh[c].metas[slot_of(id)] = Meta {
                prev: new_id(&remap, meta.prev),
                ..meta
            };
            for i in 0..=c {
                let l = self.link(x, i);
                fresh[c].links.push(Link {
                    next: new_id(&remap, l.next),
                    ..l
                });
            }
            x = next;
        }
        self.classes = fresh;
        self.tail = new_id(&remap, self.tail);
        self.free_slots = 0;
        true
    }

    /// Drops up to `budget` arena nodes; true once none is left. Leaves the links dangling:
    /// only for lazy freeing, after which the list is only dropped.
    fn free_some(&mut self, mut budget: usize) -> bool {
        for (c, class) in self.classes.iter_mut().enumerate() {
            if budget == 0 {
                break;
            }
            let keep = class.metas.len().saturating_sub(budget);
            budget -= class.metas.len() - keep;
            class.metas.truncate(keep);
            class.links.truncate(keep * (c + 1));
            if keep == 0 {
                *class = Class::default();
            }
        }
        if self.classes.iter().all(|c| c.metas.is_empty()) {
            self.len = 0;
            self.free_slots = 0;
            return true;
        }
        false
    }

    /// Approximate heap bytes: the arenas and the heap of members too long to be inline.
    fn mem_bytes(&self) -> usize {
        self.classes.capacity() * std::mem::size_of::<Class>()
            + self
                .classes
                .iter()
                .map(|c| {
                    c.links.capacity() * std::mem::size_of::<Link>()
                        + c.metas.capacity() * std::mem::size_of::<Meta>()
                        + c.free.capacity() * 4
                })
                .sum::<usize>()
            + self.member_heap
    }

    /// Checks every structural invariant (tests only).
    #[cfg(test)]
    fn check(&self) {
        // Level 0 is the ordered list, prev links mirror it, tail is its end.
        let mut x = self.first();
        let mut prev = NIL;
        let mut count = 0;
        let mut pos_of = std::collections::HashMap::new();
        while x != NIL {
            count += 1;
            pos_of.insert(x, count);
            assert_eq!(self.node(x).prev, prev);
            if prev != NIL {
                let (ps, pm) = self.entry(prev);
                let (s, m) = self.entry(x);
                assert_eq!(cmp_entries(ps, pm, s, m), Ordering::Less);
            }
            prev = x;
            x = self.next_of(x);
        }
        assert_eq!(count, self.len);
        assert_eq!(self.tail, prev);
        // Spans equal rank differences at every level.
        for i in 0..self.level {
            let mut x = HEAD;
            let mut rank = 0usize;
            loop {
                let l = self.link(x, i);
                if l.next == NIL {
                    assert_eq!(l.span as usize, self.len - rank, "nil span at level {i}");
                    break;
                }
                let r = pos_of[&l.next];
                assert_eq!(l.span as usize, r - rank, "span at level {i}");
                assert_eq!(
                    l.score,
                    self.node(l.next).score,
                    "cached score at level {i}"
                );
                rank = r;
                x = l.next;
            }
        }
    }
}

/// Smallest bucket array of a non-empty member index.
const INDEX_MIN_BUCKETS: usize = 4;
/// Empty buckets one rehash step may skip before it gives up (bounded work per call).
const INDEX_EMPTY_VISITS: usize = 10;

/// member -> node id for a skiplist, as a chained hash table whose chains run through the
/// nodes' `hnext` field: the index owns only bucket arrays (4 bytes per bucket), so a member
/// is stored once, in its skiplist node, where Redis's zset pays a dict entry per member.
///
/// It resizes like [`Dict`] (grow at load 1, shrink below 1/8, incrementally: each mutation
/// moves one bucket from the old array to the new one, lookups check both), and gives ZSCAN
/// the same cursor guarantee through the shared [`scan_buckets`]. When the skiplist compacts
/// its arena every node id changes, and the index is rebuilt (compaction is O(n) already).
///
/// It never allocates per entry and never holds a member; every method takes the list whose
/// nodes carry its chains.
#[derive(Clone, Default)]
struct MemberIndex {
    /// `tables[0]` is the live bucket array; `tables[1]` is the resize target, only while
    /// rehashing. Lengths are 0 or powers of two.
    tables: [Vec<u32>; 2],
    /// Entries chained from each table.
    used: [usize; 2],
    /// While rehashing: every bucket of `tables[0]` below it is empty (moved).
    rehash_idx: Option<usize>,
    /// Per-set seed, so that collisions cannot be precomputed.
    hasher: RandomState,
}

impl MemberIndex {
    #[inline]
    fn hash(&self, member: &[u8]) -> usize {
        hash_key(&self.hasher, member) as usize
    }

    /// The bucket of table `t` for hash `h`, if that bucket is in use.
    #[inline]
    fn bucket(&self, t: usize, h: usize) -> Option<usize> {
        let size = self.tables[t].len();
        if size == 0 || (t == 1 && self.rehash_idx.is_none()) {
            return None;
        }
        let b = h & (size - 1);
        if t == 0 && self.rehash_idx.is_some_and(|r| b < r) {
            return None;
        }
        Some(b)
    }

    /// The node holding `member`, or NIL.
    fn find(&self, list: &SkipList, member: &[u8]) -> u32 {
        if list.is_empty() {
            return NIL;
        }
        let h = self.hash(member);
        for t in 0..2 {
            let Some(b) = self.bucket(t, h) else {
                continue;
            };
            let mut x = self.tables[t][b];
            while x != NIL {
                let n = list.node(x);
                if &n.member[..] == member {
                    return x;
                }
                x = n.hnext;
            }
        }
        NIL
    }

    /// Chains node `id`, whose member is not in the index yet.
    fn add(&mut self, list: &mut SkipList, id: u32) {
        self.rehash_step(list);
        if self.rehash_idx.is_none() && self.used[0] >= self.tables[0].len() {
            let size = (self.used[0] + 1)
                .next_power_of_two()
                .max(INDEX_MIN_BUCKETS);
            self.start_resize(size);
        }
        let h = self.hash(&list.node(id).member);
        let t = usize::from(self.rehash_idx.is_some());
        let b = h & (self.tables[t].len() - 1);
        list.node_mut(id).hnext = self.tables[t][b];
        self.tables[t][b] = id;
        self.used[t] += 1;
    }

    /// Unchains the node holding `member`; returns it, or NIL when there is none.
    fn remove(&mut self, list: &mut SkipList, member: &[u8]) -> u32 {
        if list.is_empty() {
            return NIL;
        }
        let h = self.hash(member);
        self.unchain(list, h, |_, n| &n.member[..] == member)
    }

    /// Unchains node `id` (which must be chained).
    fn remove_node(&mut self, list: &mut SkipList, id: u32) {
        let h = self.hash(&list.node(id).member);
        self.unchain(list, h, |x, _| x == id);
    }

    /// Unchains the first node of hash `h`'s chains that `is_it`; returns it (or NIL).
    fn unchain(
        &mut self,
        list: &mut SkipList,
        h: usize,
        is_it: impl Fn(u32, &Meta) -> bool,
    ) -> u32 {
        self.rehash_step(list);
        for t in 0..2 {
            let Some(b) = self.bucket(t, h) else {
                continue;
            };
            let mut prev = NIL;
            let mut x = self.tables[t][b];
            while x != NIL {
                let n = list.node(x);
                let next = n.hnext;
                if is_it(x, n) {
                    if prev == NIL {
                        self.tables[t][b] = next;
                    } else {
                        list.node_mut(prev).hnext = next;
                    }
                    self.used[t] -= 1;
                    if self.rehash_idx.is_some() && self.used[0] == 0 {
                        self.finish_rehash();
                    }
                    return x;
                }
                prev = x;
                x = next;
            }
        }
        NIL
    }

    /// After removals: starts a shrink once the load is below 1/8.
    fn shrink_if_needed(&mut self) {
        let size = self.tables[0].len();
        if self.rehash_idx.is_none() && size > INDEX_MIN_BUCKETS && self.used[0] < size / 8 {
            let want = (self.used[0] * 2)
                .next_power_of_two()
                .max(INDEX_MIN_BUCKETS);
            if want < size {
                self.start_resize(want);
            }
        }
    }

    fn start_resize(&mut self, size: usize) {
        let mut buckets = Vec::new();
        if buckets.try_reserve_exact(size).is_err() {
            return; // out of memory: keep the current array, chains just grow longer
        }
        buckets.resize(size, NIL);
        if self.used[0] == 0 {
            self.tables[0] = buckets;
            return;
        }
        self.tables[1] = buckets;
        self.used[1] = 0;
        self.rehash_idx = Some(0);
    }

    fn finish_rehash(&mut self) {
        self.tables[0] = std::mem::take(&mut self.tables[1]);
        self.used = [self.used[1], 0];
        self.rehash_idx = None;
    }

    /// Moves one non-empty bucket of the old array to the new one (skipping a bounded number
    /// of empty ones).
    fn rehash_step(&mut self, list: &mut SkipList) {
        let Some(mut idx) = self.rehash_idx else {
            return;
        };
        let shrinking = self.tables[1].len() < self.tables[0].len();
        let mask1 = self.tables[1].len() - 1;
        let mut empty = INDEX_EMPTY_VISITS;
        while self.tables[0].get(idx) == Some(&NIL) {
            idx += 1;
            empty -= 1;
            if empty == 0 {
                self.rehash_idx = Some(idx);
                return;
            }
        }
        let Some(head) = self.tables[0].get_mut(idx) else {
            return; // unreachable: a non-empty bucket remains while used[0] > 0
        };
        let mut x = std::mem::replace(head, NIL);
        while x != NIL {
            let next = list.node(x).hnext;
            let b = if shrinking {
                idx & mask1
            } else {
                self.hash(&list.node(x).member) & mask1
            };
            list.node_mut(x).hnext = self.tables[1][b];
            self.tables[1][b] = x;
            self.used[0] -= 1;
            self.used[1] += 1;
            x = next;
        }
        self.rehash_idx = Some(idx + 1);
        if self.used[0] == 0 {
            self.finish_rehash();
        }
    }

    /// Chains every node of `list` afresh (after its arena was compacted).
    fn rebuild(&mut self, list: &mut SkipList) {
        let size = list.len().next_power_of_two().max(INDEX_MIN_BUCKETS);
        self.tables = [vec![NIL; size], Vec::new()];
        self.used = [0, 0];
        self.rehash_idx = None;
        let mask = size - 1;
        let mut x = list.first();
        while x != NIL {
            let next = list.next_of(x);
            let b = self.hash(&list.node(x).member) & mask;
            list.node_mut(x).hnext = self.tables[0][b];
            self.tables[0][b] = x;
            self.used[0] += 1;
            x = next;
        }
    }

    /// A roughly uniform random node in O(1), as Redis draws from its zset dict: a random
    /// non-empty bucket, then a random node of its chain. NIL when empty.
    fn random(&self, list: &SkipList, rng: &mut impl Rng) -> u32 {
        if list.is_empty() {
            return NIL;
        }
        let sizes = [self.tables[0].len(), self.tables[1].len()];
        let Some(head) = random_bucket(sizes, self.rehash_idx, rng, |t, b| self.tables[t][b])
        else {
            return NIL;
        };
        let mut chain = 0;
        let mut x = head;
        while x != NIL {
            chain += 1;
            x = list.node(x).hnext;
        }
        let mut x = head;
        for _ in 0..rng.gen_range(0..chain) {
            x = list.node(x).hnext;
        }
        x
    }

    /// One ZSCAN step: calls `f` with every node of the buckets `cursor` addresses.
    fn scan(&self, list: &SkipList, cursor: u64, mut f: impl FnMut(u32)) -> u64 {
        if list.is_empty() {
            return 0;
        }
        let sizes = [self.tables[0].len(), self.tables[1].len()];
        scan_buckets(sizes, self.rehash_idx.is_some(), cursor, |t, b| {
            let mut x = self.tables[t].get(b as usize).copied().unwrap_or(NIL);
            while x != NIL {
                f(x);
                x = list.node(x).hnext;
            }
        })
    }

    /// Checks that every node of `list` is chained exactly once, in the bucket its member
    /// hashes to, and that the counts agree (tests only).
    #[cfg(test)]
    fn check(&self, list: &SkipList) {
        let mut seen = std::collections::HashSet::new();
        for t in 0..2 {
            let mut chained = 0;
            for (b, &head) in self.tables[t].iter().enumerate() {
                let mut x = head;
                if x != NIL {
                    assert_eq!(self.bucket(t, self.hash(&list.node(x).member)), Some(b));
                }
                while x != NIL {
                    let m = &list.node(x).member;
                    assert_eq!(self.hash(m) & (self.tables[t].len() - 1), b);
                    assert!(seen.insert(x), "node {x} chained twice");
                    chained += 1;
                    x = list.node(x).hnext;
                }
            }
            assert_eq!(chained, self.used[t], "table {t} count");
        }
        assert_eq!(seen.len(), list.len());
        let mut x = list.first();
        while x != NIL {
            assert!(seen.contains(&x), "node {x} not chained");
            x = list.next_of(x);
        }
    }

    fn heap_bytes(&self) -> usize {
        (self.tables[0].capacity() + self.tables[1].capacity()) * std::mem::size_of::<u32>()
    }
}

/// The `skiplist` encoding: the ordered list, whose nodes hold the members and scores, plus
/// the member index over those nodes (O(1) ZSCORE, ZSCAN cursors).
#[derive(Clone)]
pub struct SkipZset {
    list: SkipList,
    index: MemberIndex,
}

impl SkipZset {
    /// The member index's shape (DEBUG HTSTATS-KEY): Redis reports its zset's dict.
    fn table_stats(&self) -> super::dict::DictStats {
        let ix = &self.index;
        let table = |t: usize| {
            let chains = ix.tables[t].iter().map(|&head| {
                let mut len = 0;
                let mut x = head;
                while x != NIL {
                    len += 1;
                    x = self.list.node(x).hnext;
                }
                len
            });
            super::dict::TableStats::from_chains(ix.tables[t].len(), ix.used[t], chains)
        };
        super::dict::DictStats {
            main: table(0),
            rehashing: ix.rehash_idx.is_some().then(|| table(1)),
        }
    }

    fn new() -> SkipZset {
        SkipZset {
            list: SkipList::new(),
            index: MemberIndex::default(),
        }
    }

    /// The node holding `member`, or NIL.
    fn find(&self, member: &[u8]) -> u32 {
        self.index.find(&self.list, member)
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        let x = self.find(member);
        (x != NIL).then(|| self.list.node(x).score)
    }

    /// Adds a member that is not in the set.
    fn insert(&mut self, member: Key, score: f64) {
        let id = self.list.insert(score, member);
        self.index.add(&mut self.list, id);
    }

    /// Removes `member`; returns its score if it was there.
    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let x = self.index.remove(&mut self.list, member);
        if x == NIL {
            return None;
        }
        let score = self.list.node(x).score;
        self.list.remove(score, member);
        self.after_removal();
        Some(score)
    }

    /// A random entry in O(1), roughly uniform (see `MemberIndex::random`).
    fn random(&self, rng: &mut impl Rng) -> Option<(&[u8], f64)> {
        let x = self.index.random(&self.list, rng);
        if x == NIL {
            return None;
        }
        let (s, m) = self.list.entry(x);
        Some((&m[..], s))
    }

    /// Removes up to `count` entries from 0-based rank `start`, passing each to `f`.
    fn remove_rank_range(&mut self, start: usize, count: usize, f: impl FnMut(Key, f64)) {
        // Unchain them first: the index walks chains through live nodes.
        let mut x = self.list.select(start);
        for _ in 0..count {
            if x == NIL {
                break;
            }
            let next = self.list.next_of(x);
            self.index.remove_node(&mut self.list, x);
            x = next;
        }
        self.list.remove_rank_range(start, count, f);
        self.after_removal();
    }

    fn after_removal(&mut self) {
        if self.list.maybe_compact() {
            self.index.rebuild(&mut self.list);
        } else {
            self.index.shrink_if_needed();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The value
// ---------------------------------------------------------------------------------------------

/// Where a member is in a sorted set (a listpack byte offset or a skiplist node), as
/// `ZSetValue::locate` found it; valid only until the set changes.
#[derive(Clone, Copy, Debug)]
pub struct MemberAt(usize);

/// A sorted set in one of its two encodings.
#[derive(Clone)]
pub enum ZSetValue {
    Listpack(Listpack),
    Skiplist(Box<SkipZset>),
}

impl Default for ZSetValue {
    fn default() -> Self {
        ZSetValue::new()
    }
}

impl ZSetValue {
    /// The member table's statistics; None for a listpack (no hash table).
    pub fn table_stats(&self) -> Option<super::dict::DictStats> {
        match self {
            ZSetValue::Listpack(_) => None,
            ZSetValue::Skiplist(z) => Some(z.table_stats()),
        }
    }

    /// The listpack's layout, for DEBUG LISTPACK; None for a skiplist.
    pub fn listpack_repr(&self) -> Option<String> {
        match self {
            ZSetValue::Listpack(lp) => Some(lp.run.repr()),
            ZSetValue::Skiplist(_) => None,
        }
    }
}

impl PartialEq for ZSetValue {
    /// Same encoding and the same entries.
    fn eq(&self, other: &Self) -> bool {
        self.encoding() == other.encoding()
            && self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|((m1, s1), (m2, s2))| m1 == m2 && s1 == s2)
    }
}

impl std::fmt::Debug for ZSetValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.iter()
                    .map(|(m, s)| (String::from_utf8_lossy(m).into_owned(), s)),
            )
            .finish()
    }
}

/// Entries of a rank range, walked forward or backward: (member, score).
pub struct RangeIter<'a> {
    cur: Cur<'a>,
    remaining: usize,
}

enum Cur<'a> {
    Empty,
    LpFwd(LpIter<'a>),
    LpRev(&'a Listpack, Vec<usize>),
    Sl {
        list: &'a SkipList,
        node: u32,
        rev: bool,
    },
}

impl<'a> Iterator for RangeIter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        match &mut self.cur {
            Cur::Empty => None,
            Cur::LpFwd(it) => it.next().map(|(_, s, m)| (m, s)),
            Cur::LpRev(lp, offs) => {
                let off = offs.pop()?;
                let (s, m, _) = lp.decode(off);
                Some((m, s))
            }
            Cur::Sl { list, node, rev } => {
                if *node == NIL {
                    return None;
                }
                let x = *node;
                *node = if *rev {
                    list.prev_of(x)
                } else {
                    list.next_of(x)
                };
                let (s, m) = list.entry(x);
                Some((&m[..], s))
            }
        }
    }
}

/// Random access: by rank, O(1) per lookup on a listpack (after one O(n) pass) and O(log n) on a
/// skiplist; random entries in O(1) on both.
pub struct Ranked<'a> {
    z: &'a ZSetValue,
    offsets: Vec<usize>,
}

impl<'a> Ranked<'a> {
    /// A random entry: uniform on a listpack; on a skiplist drawn from the member index, which
    /// is O(1) and roughly uniform (Redis draws from its dict too).
    pub fn random(&self, rng: &mut impl Rng) -> Option<(&'a [u8], f64)> {
        match self.z {
            ZSetValue::Listpack(lp) => {
                if self.offsets.is_empty() {
                    return None;
                }
                let (s, m, _) = lp.decode(self.offsets[rng.gen_range(0..self.offsets.len())]);
                Some((m, s))
            }
            ZSetValue::Skiplist(z) => z.random(rng),
        }
    }

    /// The entry at 0-based `rank` (`rank < len`).
    pub fn get(&self, rank: usize) -> Option<(&'a [u8], f64)> {
        match self.z {
            ZSetValue::Listpack(lp) => {
                let (s, m, _) = lp.decode(*self.offsets.get(rank)?);
                Some((m, s))
            }
            ZSetValue::Skiplist(z) => {
                let x = z.list.select(rank);
                if x == NIL {
                    return None;
                }
                let (s, m) = z.list.entry(x);
                Some((&m[..], s))
            }
        }
    }
}

impl ZSetValue {
    /// An empty sorted set (Redis creates small sets as listpacks).
    pub fn new() -> ZSetValue {
        ZSetValue::Listpack(Listpack::default())
    }

    /// An empty set that starts in the skiplist encoding.
    pub fn new_skiplist() -> ZSetValue {
        ZSetValue::Skiplist(Box::new(SkipZset::new()))
    }

    /// Builds a set from entries sorted by (score, member) with distinct members: a listpack
    /// when it fits both thresholds, else a skiplist (STORE results, like Redis's
    /// `zsetConvertToListpackIfNeeded`).
    pub fn from_sorted(entries: Vec<(Bytes, f64)>, lim: ZsetLimits) -> ZSetValue {
        let fits = entries.len() <= lim.max_entries
            && entries.iter().all(|(m, _)| m.len() <= lim.max_value);
        if fits {
            let mut lp = Listpack::default();
            for (m, s) in &entries {
                lp.push(*s, m);
            }
            ZSetValue::Listpack(lp)
        } else {
            let mut z = SkipZset::new();
            for (m, s) in entries {
                z.insert(Key::new(&m), s);
            }
            ZSetValue::Skiplist(Box::new(z))
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ZSetValue::Listpack(lp) => lp.len(),
            ZSetValue::Skiplist(z) => z.list.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            ZSetValue::Listpack(_) => "listpack",
            ZSetValue::Skiplist(_) => "skiplist",
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZSetValue::Listpack(lp) => lp.find(member).map(|(_, _, s)| s),
            ZSetValue::Skiplist(z) => z.score(member),
        }
    }

    /// Switches a listpack to the skiplist encoding (no-op for a skiplist).
    pub fn convert_to_skiplist(&mut self) {
        if let ZSetValue::Listpack(lp) = self {
            let mut z = SkipZset::new();
            for (_, s, m) in lp.iter() {
                z.insert(Key::new(m), s);
            }
            *self = ZSetValue::Skiplist(Box::new(z));
        }
    }

    /// Adds a member that is not in the set. A listpack converts first when the member is too
    /// long or the set would hold too many entries (Redis's `zsetAdd`).
    pub fn insert(&mut self, member: &[u8], score: f64, lim: ZsetLimits) {
        if let ZSetValue::Listpack(lp) = self {
            if lp.len() + 1 > lim.max_entries || member.len() > lim.max_value {
                self.convert_to_skiplist();
            }
        }
        match self {
            ZSetValue::Listpack(lp) => lp.insert(member, score),
            ZSetValue::Skiplist(z) => z.insert(Key::new(member), score),
        }
    }

    /// The score of `member` and where it is, for a following `update_at`: one member lookup
    /// for a read-modify-write such as ZADD's (Redis's `zsetAdd` also finds the member once).
    pub fn locate(&self, member: &[u8]) -> Option<(f64, MemberAt)> {
        match self {
            ZSetValue::Listpack(lp) => lp.find(member).map(|(_, off, s)| (s, MemberAt(off))),
            ZSetValue::Skiplist(z) => {
                let x = z.find(member);
                (x != NIL).then(|| (z.list.node(x).score, MemberAt(x as usize)))
            }
        }
    }

    /// Changes the score of `member`, found by `locate` (with score `old`) in this set, which
    /// has not changed since.
    pub fn update_at(&mut self, at: MemberAt, member: &[u8], old: f64, new: f64) {
        match self {
            ZSetValue::Listpack(lp) => {
                lp.remove_entries(at.0, 1);
                lp.insert(member, new);
            }
            ZSetValue::Skiplist(z) => z.list.update_score(at.0 as u32, old, new),
        }
    }

    /// Changes the score of a member that is in the set with score `old` (tests; commands go
    /// through `locate` and `update_at`).
    #[cfg(test)]
    pub fn update(&mut self, member: &[u8], old: f64, new: f64) {
        if let Some((_, at)) = self.locate(member) {
            self.update_at(at, member, old, new);
        }
    }

    /// Removes a member; returns its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match self {
            ZSetValue::Listpack(lp) => {
                let (_, off, s) = lp.find(member)?;
                lp.remove_entries(off, 1);
                Some(s)
            }
            ZSetValue::Skiplist(z) => z.remove(member),
        }
    }

    /// 0-based rank of a member from the lowest entry.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match self {
            ZSetValue::Listpack(lp) => lp.find(member).map(|(r, _, _)| r),
            ZSetValue::Skiplist(z) => {
                let s = z.score(member)?;
                z.list.rank_of(s, member)
            }
        }
    }

    /// The entry at 0-based `rank`.
    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        match self {
            ZSetValue::Listpack(lp) => {
                let (s, m, _) = lp.decode(lp.offset_of_rank(rank)?);
                Some((m, s))
            }
            ZSetValue::Skiplist(z) => {
                let x = z.list.select(rank);
                if x == NIL {
                    return None;
                }
                let (s, m) = z.list.entry(x);
                Some((&m[..], s))
            }
        }
    }

    /// Every entry, lowest first.
    pub fn iter(&self) -> RangeIter<'_> {
        self.range(0, self.len(), false)
    }

    /// Up to `count` entries starting at 0-based `start`, walking up (or down when `rev`).
    pub fn range(&self, start: usize, count: usize, rev: bool) -> RangeIter<'_> {
        let len = self.len();
        if start >= len {
            return RangeIter {
                cur: Cur::Empty,
                remaining: 0,
            };
        }
        let count = if rev {
            count.min(start + 1)
        } else {
            count.min(len - start)
        };
        let cur = match self {
            ZSetValue::Listpack(lp) => {
                if rev {
                    let mut offs = lp.offsets();
                    offs.truncate(start + 1);
                    Cur::LpRev(lp, offs)
                } else {
                    let off = lp.offset_of_rank(start).unwrap_or(lp.run.end());
                    Cur::LpFwd(lp.iter_from(off))
                }
            }
            ZSetValue::Skiplist(z) => Cur::Sl {
                list: &z.list,
                node: z.list.select(start),
                rev,
            },
        };
        RangeIter {
            cur,
            remaining: count,
        }
    }

    /// Random access by rank (for ZRANDMEMBER).
    pub fn ranked(&self) -> Ranked<'_> {
        Ranked {
            z: self,
            offsets: match self {
                ZSetValue::Listpack(lp) => lp.offsets(),
                ZSetValue::Skiplist(_) => Vec::new(),
            },
        }
    }

    /// Redis's `zzlIsInRange` / `zslIsInRange` pre-check: the range is not empty, the last
    /// entry is not below it and the first is not above it.
    fn may_intersect(&self, range: &impl ZRange) -> bool {
        if range.is_empty() || self.is_empty() {
            return false;
        }
        let (Some((lm, ls)), Some((fm, fs))) = (self.last_entry(), self.get(0)) else {
            return false;
        };
        range.gte_min(ls, lm) && range.lte_max(fs, fm)
    }

    fn last_entry(&self) -> Option<(&[u8], f64)> {
        match self {
            ZSetValue::Listpack(lp) => lp.iter().last().map(|(_, s, m)| (m, s)),
            ZSetValue::Skiplist(z) => {
                let x = z.list.last();
                if x == NIL {
                    return None;
                }
                let (s, m) = z.list.entry(x);
                Some((&m[..], s))
            }
        }
    }

    /// Rank of the first entry in `range` (Redis's `zzlFirstInRange` / `zslFirstInRange` and
    /// their lex twins): on a listpack the first entry not below the minimum found by a
    /// forward walk, on a skiplist by descent; None unless that entry is also within the maximum.
    pub fn first_in(&self, range: &impl ZRange) -> Option<usize> {
        if !self.may_intersect(range) {
            return None;
        }
        let (rank, (m, s)) = match self {
            ZSetValue::Listpack(lp) => lp
                .iter()
                .enumerate()
                .find(|(_, (_, s, m))| range.gte_min(*s, m))
                .map(|(r, (_, s, m))| (r, (m, s)))?,
            ZSetValue::Skiplist(z) => {
                let r = z.list.count_while(|s, m| !range.gte_min(s, m));
                (r, self.get(r)?)
            }
        };
        range.lte_max(s, m).then_some(rank)
    }

    /// Rank of the last entry in `range`: the mirror image of [`ZSetValue::first_in`].
    pub fn last_in(&self, range: &impl ZRange) -> Option<usize> {
        if !self.may_intersect(range) {
            return None;
        }
        let (rank, (m, s)) = match self {
            ZSetValue::Listpack(lp) => {
                let offs = lp.offsets();
                let (r, off) = offs.iter().enumerate().rev().find(|(_, &off)| {
                    let (s, m, _) = lp.decode(off);
                    range.lte_max(s, m)
                })?;
                let (s, m, _) = lp.decode(*off);
                (r, (m, s))
            }
            ZSetValue::Skiplist(z) => {
                let r = z
                    .list
                    .count_while(|s, m| range.lte_max(s, m))
                    .checked_sub(1)?;
                (r, self.get(r)?)
            }
        };
        range.gte_min(s, m).then_some(rank)
    }

    /// Number of entries in `range` (ZCOUNT / ZLEXCOUNT): a walk on a listpack, a difference of
    /// two ranks on a skiplist.
    pub fn count_in(&self, range: &impl ZRange) -> usize {
        let Some(first) = self.first_in(range) else {
            return 0;
        };
        match self {
            ZSetValue::Listpack(_) => self
                .range(first, usize::MAX, false)
                .take_while(|(m, s)| range.lte_max(*s, m))
                .count(),
            ZSetValue::Skiplist(_) => match self.last_in(range) {
                Some(last) if last >= first => last - first + 1,
                _ => 0,
            },
        }
    }

    /// Removes `count` entries starting at 0-based `start`; returns how many were removed.
    pub fn remove_range(&mut self, start: usize, count: usize) -> usize {
        let count = count.min(self.len().saturating_sub(start));
        if count == 0 {
            return 0;
        }
        match self {
            ZSetValue::Listpack(lp) => {
                if let Some(off) = lp.offset_of_rank(start) {
                    lp.remove_entries(off, count);
                }
            }
            ZSetValue::Skiplist(z) => {
                z.remove_rank_range(start, count, |_, _| {});
            }
        }
        count
    }

    /// Removes and returns the lowest (or highest, when `max`) entry.
    pub fn pop(&mut self, max: bool) -> Option<(Bytes, f64)> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        let rank = if max { len - 1 } else { 0 };
        match self {
            ZSetValue::Listpack(lp) => {
                let off = lp.offset_of_rank(rank)?;
                let (s, m, _) = lp.decode(off);
                let out = (Bytes::copy_from_slice(m), s);
                lp.remove_entries(off, 1);
                Some(out)
            }
            ZSetValue::Skiplist(z) => {
                let mut out = None;
                z.remove_rank_range(rank, 1, |m, s| {
                    out = Some((Bytes::copy_from_slice(&m), s));
                });
                out
            }
        }
    }

    /// A random entry (None when empty): see [`Ranked::random`].
    pub fn random_entry(&self, rng: &mut impl Rng) -> Option<(&[u8], f64)> {
        match self {
            ZSetValue::Listpack(_) if self.is_empty() => None,
            ZSetValue::Listpack(_) => self.get(rng.gen_range(0..self.len())),
            ZSetValue::Skiplist(z) => z.random(rng),
        }
    }

    /// One ZSCAN step over a skiplist's member table: calls `f` for the entries of the buckets
    /// visited and returns the next cursor. A listpack reports everything and returns 0.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(Bytes, f64)) -> u64 {
        match self {
            ZSetValue::Listpack(lp) => {
                for (_, s, m) in lp.iter() {
                    f(Bytes::copy_from_slice(m), s);
                }
                0
            }
            ZSetValue::Skiplist(z) => z.index.scan(&z.list, cursor, |x| {
                let (s, m) = z.list.entry(x);
                f(Bytes::copy_from_slice(m), s)
            }),
        }
    }

    /// How many allocations dropping the sorted set frees (Redis's lazy-free "effort").
    pub fn free_effort(&self) -> usize {
        match self {
            ZSetValue::Listpack(_) => 1,
            ZSetValue::Skiplist(z) => z.list.len(),
        }
    }

    /// Frees up to about `budget` members (the member index, a few bucket arrays, goes first;
    /// then the skiplist arena); true once nothing is left. For lazy freeing: the value must not be used for anything but
    /// further calls and dropping afterwards.
    pub fn free_some(&mut self, budget: usize) -> bool {
        match self {
            ZSetValue::Listpack(_) => true,
            ZSetValue::Skiplist(z) => {
                z.index = MemberIndex::default();
                z.list.free_some(budget)
            }
        }
    }

    /// Approximate heap bytes owned by the value.
    pub fn mem_bytes(&self) -> usize {
        match self {
            ZSetValue::Listpack(lp) => lp.run.mem_bytes(),
            ZSetValue::Skiplist(z) => {
                std::mem::size_of::<SkipZset>() + z.list.mem_bytes() + z.index.heap_bytes()
            }
        }
    }

    /// Bytes held by members and scores (a rough size, for DEBUG OBJECT).
    pub fn payload_len(&self) -> usize {
        match self {
            ZSetValue::Listpack(lp) => lp.run.byte_len(),
            ZSetValue::Skiplist(z) => z.list.member_bytes + 8 * z.list.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use std::collections::{BTreeSet, HashMap};

    fn lim(e: usize, v: usize) -> ZsetLimits {
        ZsetLimits {
            max_entries: e,
            max_value: v,
        }
    }

    fn members(z: &ZSetValue) -> Vec<(String, f64)> {
        z.iter()
            .map(|(m, s)| (String::from_utf8_lossy(m).into_owned(), s))
            .collect()
    }

    #[test]
    fn listpack_orders_by_score_then_member() {
        let mut z = ZSetValue::new();
        let l = ZsetLimits::default();
        z.insert(b"b", 1.0, l);
        z.insert(b"a", 1.0, l);
        z.insert(b"c", 0.5, l);
        z.insert(b"z", -0.0, l);
        z.insert(b"y", 0.0, l);
        z.insert(b"inf", f64::INFINITY, l);
        assert_eq!(z.encoding(), "listpack");
        let names: Vec<String> = members(&z).into_iter().map(|(m, _)| m).collect();
        assert_eq!(names, ["y", "z", "c", "a", "b", "inf"]);
        assert_eq!(z.rank(b"a"), Some(3));
        // A listpack keeps -0 as 0 (Redis stores integral scores as integers)...
        assert_eq!(z.score(b"z").map(|s| s.is_sign_negative()), Some(false));
        // ... a skiplist keeps the sign.
        let mut sl = z.clone();
        sl.convert_to_skiplist();
        sl.remove(b"z");
        sl.insert(b"z", -0.0, l);
        assert_eq!(sl.score(b"z").map(|s| s.is_sign_negative()), Some(true));
        z.update(b"a", 1.0, 2.0);
        assert_eq!(z.rank(b"a"), Some(4));
        assert_eq!(z.remove(b"c"), Some(0.5));
        assert_eq!(z.remove(b"c"), None);
        assert_eq!(z.len(), 5);
        assert_eq!(
            z.pop(true).map(|(m, _)| m),
            Some(Bytes::from_static(b"inf"))
        );
        assert_eq!(z.pop(false).map(|(m, _)| m), Some(Bytes::from_static(b"y")));
    }

    #[test]
    fn converts_past_the_entry_threshold_only() {
        let l = lim(3, 64);
        let mut z = ZSetValue::new();
        for (i, m) in [b"a", b"b", b"c"].iter().enumerate() {
            z.insert(&m[..], i as f64, l);
        }
        assert_eq!(z.encoding(), "listpack");
        z.update(b"a", 0.0, 10.0);
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"d", 3.0, l);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(members(&z).len(), 4);
        // Never converts back by itself.
        z.remove(b"d");
        z.remove(b"b");
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(z.score(b"a"), Some(10.0));
        // Zero entries allowed: the first member converts.
        let mut zero = ZSetValue::new();
        zero.insert(b"a", 1.0, lim(0, 64));
        assert_eq!(zero.encoding(), "skiplist");
    }

    #[test]
    fn converts_past_the_value_length_threshold() {
        let l = lim(128, 3);
        let mut z = ZSetValue::new();
        z.insert(b"abc", 1.0, l);
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"abcd", 2.0, l);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(members(&z), [("abc".into(), 1.0), ("abcd".into(), 2.0)]);
    }

    #[test]
    fn store_results_pick_the_small_encoding() {
        let l = lim(2, 3);
        let small = vec![
            (Bytes::from_static(b"a"), 1.0),
            (Bytes::from_static(b"b"), 2.0),
        ];
        assert_eq!(
            ZSetValue::from_sorted(small.clone(), l).encoding(),
            "listpack"
        );
        let mut three = small.clone();
        three.push((Bytes::from_static(b"c"), 3.0));
        let big = ZSetValue::from_sorted(three, l);
        assert_eq!(big.encoding(), "skiplist");
        assert_eq!(big.len(), 3);
        let long = vec![(Bytes::from_static(b"abcd"), 1.0)];
        assert_eq!(ZSetValue::from_sorted(long, l).encoding(), "skiplist");
        // Equality includes the encoding.
        let mut lp = ZSetValue::from_sorted(small.clone(), l);
        let mut sl = ZSetValue::from_sorted(small, l);
        sl.convert_to_skiplist();
        assert_ne!(lp, sl);
        lp.convert_to_skiplist();
        assert_eq!(lp, sl);
        assert_eq!(sl.clone(), sl);
    }

    #[test]
    fn lex_ranges_follow_redis_listpack_walks_on_unsorted_members() {
        // Scores differ, so members are not in lex order: Redis's listpack walks decide.
        let l = ZsetLimits::default();
        let mut z = ZSetValue::new();
        z.insert(b"b", 1.0, l);
        z.insert(b"a", 2.0, l);
        z.insert(b"c", 3.0, l);
        let r = LexRange {
            min: LexBound::Incl(Bytes::from_static(b"b")),
            max: LexBound::Max,
        };
        assert_eq!(z.first_in(&r), Some(0));
        assert_eq!(z.count_in(&r), 3);
        let r2 = LexRange {
            min: LexBound::Incl(Bytes::from_static(b"b")),
            max: LexBound::Incl(Bytes::from_static(b"b")),
        };
        // Redis 7.0 agrees: ZLEXCOUNT 2, ZRANGEBYLEX b a, ZREVRANGEBYLEX nothing.
        assert_eq!(z.first_in(&r2), Some(0));
        assert_eq!(z.count_in(&r2), 2);
        assert_eq!(z.last_in(&r2), None);
        assert!(LexRange {
            min: LexBound::Max,
            max: LexBound::Max
        }
        .is_empty());
        assert!(LexRange {
            min: LexBound::Incl(Bytes::from_static(b"a")),
            max: LexBound::Excl(Bytes::from_static(b"a"))
        }
        .is_empty());
        assert!(!LexRange {
            min: LexBound::Min,
            max: LexBound::Max
        }
        .is_empty());
    }

    #[test]
    fn skiplist_compacts_its_arena() {
        let mut z = ZSetValue::new();
        let l = lim(0, 64);
        for i in 0..1000 {
            z.insert(format!("m{i:04}").as_bytes(), i as f64, l);
        }
        for i in 0..990 {
            z.remove(format!("m{i:04}").as_bytes());
        }
        let ZSetValue::Skiplist(sz) = &z else {
            panic!("expected a skiplist")
        };
        sz.list.check();
        assert!(sz.list.slots() < 100, "arena {}", sz.list.slots());
        assert_eq!(z.get(0).map(|(m, _)| m.to_vec()), Some(b"m0990".to_vec()));
        assert_eq!(z.rank(b"m0999"), Some(9));
    }

    #[test]
    fn score_changes_keep_spans_ranks_and_cached_scores() {
        use rand::Rng;
        let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
        let l = lim(0, 64);
        let mut z = ZSetValue::new_skiplist();
        let mut model = std::collections::BTreeMap::new();
        for i in 0..3000u32 {
            let m = format!("member:{i}");
            let s = f64::from(rng.gen_range(0..500u32));
            z.insert(m.as_bytes(), s, l);
            model.insert(m, s);
        }
        for round in 0..20_000u32 {
            let m = format!("member:{}", rng.gen_range(0..3000u32));
            let old = model[&m];
            // Small steps mostly stay in place (taller nodes included); big ones move the node
            // before or after where it was, and ties with other members' scores are common.
            let new = match round % 4 {
                0 => old + 0.5,
                1 => old - 0.25,
                2 => f64::from(rng.gen_range(0..500u32)),
                _ => f64::from(rng.gen_range(0..500u32)) + 0.5,
            };
            if new == old {
                continue;
            }
            z.update(m.as_bytes(), old, new);
            model.insert(m, new);
            if round % 1000 == 0 {
                let ZSetValue::Skiplist(sz) = &z else {
                    panic!("expected a skiplist")
                };
                sz.list.check();
                sz.index.check(&sz.list);
            }
        }
        let ZSetValue::Skiplist(sz) = &z else {
            panic!("expected a skiplist")
        };
        sz.list.check();
        let mut want: Vec<(f64, &String)> = model.iter().map(|(m, s)| (*s, m)).collect();
        want.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        for (rank, (s, m)) in want.iter().enumerate() {
            assert_eq!(z.rank(m.as_bytes()), Some(rank));
            assert_eq!(z.score(m.as_bytes()), Some(*s));
        }
    }

    #[test]
    fn member_index_follows_growth_shrinking_and_compaction() {
        use rand::seq::SliceRandom;
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let mut z = ZSetValue::new_skiplist();
        let l = lim(0, 64);
        let check = |z: &ZSetValue| {
            let ZSetValue::Skiplist(sz) = z else {
                panic!("expected a skiplist")
            };
            sz.list.check();
            sz.index.check(&sz.list);
        };
        let mut names: Vec<String> = (0..5000).map(|i| format!("member:{i}")).collect();
        for (i, n) in names.iter().enumerate() {
            z.insert(n.as_bytes(), (i % 97) as f64, l);
            if i % 499 == 0 {
                check(&z);
            }
        }
        check(&z);
        // Score changes keep the member where the index finds it.
        for (i, n) in names.iter().enumerate().step_by(7) {
            let old = z.score(n.as_bytes()).unwrap();
            z.update(n.as_bytes(), old, -(i as f64));
            assert_eq!(z.score(n.as_bytes()), Some(-(i as f64)));
        }
        check(&z);
        names.shuffle(&mut rng);
        // Remove most of them (the arena compacts and the index shrinks on the way), with pops
        // and range removals mixed in.
        while z.len() > 20 {
            let n = names.pop().unwrap();
            z.remove(n.as_bytes());
            if z.len().is_multiple_of(301) {
                z.pop(true);
                z.remove_range(3, 5);
                check(&z);
            }
        }
        check(&z);
        let ZSetValue::Skiplist(sz) = &z else {
            panic!("expected a skiplist")
        };
        assert!(sz.index.heap_bytes() <= 64 * 4, "{}", sz.index.heap_bytes());
        for (m, s) in z.iter() {
            assert_eq!(z.score(m), Some(s));
        }
    }

    #[test]
    fn zscan_reports_every_member_present_throughout_while_the_index_resizes() {
        let l = lim(0, 64);
        let mut z = ZSetValue::new_skiplist();
        for i in 0..300 {
            z.insert(format!("stay:{i}").as_bytes(), i as f64, l);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            cursor = z.scan(cursor, |m, _| {
                seen.insert(m);
            });
            // Grow by a lot, then shrink again, between scan calls.
            step += 1;
            if step < 20 {
                for i in 0..200 {
                    z.insert(format!("tmp:{step}:{i}").as_bytes(), 0.5, l);
                }
            } else if step < 40 {
                for i in 0..200 {
                    z.remove(format!("tmp:{}:{i}", step - 19).as_bytes());
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..300 {
            assert!(
                seen.contains(format!("stay:{i}").as_bytes()),
                "stay:{i} missed"
            );
        }
    }

    #[test]
    fn skiplist_random_entries_cover_the_set() {
        let l = lim(0, 64);
        let mut z = ZSetValue::new_skiplist();
        for i in 0..50 {
            z.insert(format!("m{i}").as_bytes(), i as f64, l);
        }
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let mut hits = HashMap::new();
        for _ in 0..20_000 {
            let (m, s) = z.random_entry(&mut rng).unwrap();
            assert_eq!(z.score(m), Some(s));
            *hits.entry(m.to_vec()).or_insert(0) += 1;
        }
        assert_eq!(hits.len(), 50);
        // Roughly uniform: members sharing a bucket are drawn less often (as with Redis's
        // dict), but never rarely (400 draws each on average).
        assert!(hits.values().all(|&n| n > 20), "{hits:?}");
    }

    // ----- model test --------------------------------------------------------------------

    /// A score with a total order consistent with `cmp_entries` (no NaN; -0 == 0).
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Score(f64);
    impl Eq for Score {}
    impl PartialOrd for Score {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for Score {
        fn cmp(&self, o: &Self) -> Ordering {
            self.0.partial_cmp(&o.0).unwrap_or(Ordering::Equal)
        }
    }

    #[derive(Default)]
    struct Model {
        order: BTreeSet<(Score, Vec<u8>)>,
        scores: HashMap<Vec<u8>, f64>,
    }

    impl Model {
        fn entries(&self) -> Vec<(Vec<u8>, f64)> {
            self.order.iter().map(|(s, m)| (m.clone(), s.0)).collect()
        }
        fn remove(&mut self, m: &[u8]) -> Option<f64> {
            let s = self.scores.remove(m)?;
            self.order.remove(&(Score(s), m.to_vec()));
            Some(s)
        }
        fn insert(&mut self, m: &[u8], s: f64) {
            self.remove(m);
            self.scores.insert(m.to_vec(), s);
            self.order.insert((Score(s), m.to_vec()));
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Add(u8, f64),
        Remove(u8),
        RemoveRange(usize, usize),
        Pop(bool),
        Store,
    }

    fn score_strategy() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            (-20i32..20).prop_map(|i| i as f64),
            (-20i32..20).prop_map(|i| i as f64 / 4.0),
        ]
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (any::<u8>(), score_strategy()).prop_map(|(m, s)| Op::Add(m, s)),
            2 => any::<u8>().prop_map(Op::Remove),
            1 => (0usize..40, 0usize..6).prop_map(|(a, b)| Op::RemoveRange(a, b)),
            1 => any::<bool>().prop_map(Op::Pop),
            1 => Just(Op::Store),
        ]
    }

    /// Members: 0..=255 mapped to names of varying length so the value threshold matters.
    fn name(m: u8) -> Vec<u8> {
        let mut v = format!("m{m}").into_bytes();
        if m.is_multiple_of(37) {
            v.extend(std::iter::repeat_n(b'x', 10));
        }
        v
    }

    fn check_against(z: &ZSetValue, model: &Model) {
        let expect = model.entries();
        let got: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
        assert_eq!(got.len(), expect.len());
        for (g, e) in got.iter().zip(&expect) {
            assert_eq!(g.0, e.0);
            // -0 and 0 are equal here: a listpack stores -0 as 0, like Redis's.
            assert_eq!(g.1, e.1);
        }
        assert_eq!(z.len(), expect.len());
        let ranked = z.ranked();
        for (i, (m, s)) in expect.iter().enumerate() {
            assert_eq!(z.rank(m), Some(i));
            assert_eq!(z.score(m), Some(*s));
            assert_eq!(z.get(i).map(|(m, _)| m.to_vec()), Some(m.clone()));
            assert_eq!(ranked.get(i).map(|(m, _)| m.to_vec()), Some(m.clone()));
        }
        // Reverse walks from every start.
        for start in [0, expect.len() / 2, expect.len().saturating_sub(1)] {
            let rev: Vec<Vec<u8>> = z.range(start, 3, true).map(|(m, _)| m.to_vec()).collect();
            let want: Vec<Vec<u8>> = expect
                .iter()
                .take(start + 1)
                .rev()
                .take(if expect.is_empty() { 0 } else { 3 })
                .map(|(m, _)| m.clone())
                .collect();
            assert_eq!(rev, want);
        }
        // Score ranges: first/last/count against the model.
        for (lo, hi, lo_ex, hi_ex) in [
            (-5.0, 5.0, false, false),
            (-5.0, 5.0, true, true),
            (0.0, 0.0, false, false),
            (f64::NEG_INFINITY, f64::INFINITY, false, false),
            (2.5, 1.0, false, false),
        ] {
            let r = ScoreRange {
                min: lo,
                min_ex: lo_ex,
                max: hi,
                max_ex: hi_ex,
            };
            let inside: Vec<usize> = expect
                .iter()
                .enumerate()
                .filter(|(_, (m, s))| !r.is_empty() && r.gte_min(*s, m) && r.lte_max(*s, m))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(z.first_in(&r), inside.first().copied());
            assert_eq!(z.last_in(&r), inside.last().copied());
            assert_eq!(z.count_in(&r), inside.len());
        }
        if let ZSetValue::Skiplist(sz) = z {
            sz.list.check();
            sz.index.check(&sz.list);
        }
    }

    fn lex_bound_strategy() -> impl Strategy<Value = LexBound> {
        prop_oneof![
            Just(LexBound::Min),
            Just(LexBound::Max),
            (0u8..40).prop_map(|m| LexBound::Incl(Bytes::from(name(m)))),
            (0u8..40).prop_map(|m| LexBound::Excl(Bytes::from(name(m)))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// With equal scores the order is the member order, and both encodings answer lex
        /// ranges exactly like a filter over that order.
        #[test]
        fn lex_ranges_match_a_filter_when_scores_are_equal(
            names in proptest::collection::btree_set(0u8..40, 0..40),
            bounds in proptest::collection::vec((lex_bound_strategy(), lex_bound_strategy()), 1..20),
            max_entries in prop_oneof![Just(0usize), Just(8), Just(128)],
        ) {
            let l = lim(max_entries, 64);
            let mut z = ZSetValue::new();
            for &m in &names {
                z.insert(&name(m), 0.0, l);
            }
            let all: Vec<Vec<u8>> = z.iter().map(|(m, _)| m.to_vec()).collect();
            for (min, max) in bounds {
                let r = LexRange { min, max };
                let inside: Vec<usize> = all
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| !r.is_empty() && r.gte_min(0.0, m) && r.lte_max(0.0, m))
                    .map(|(i, _)| i)
                    .collect();
                prop_assert_eq!(z.first_in(&r), inside.first().copied());
                prop_assert_eq!(z.last_in(&r), inside.last().copied());
                prop_assert_eq!(z.count_in(&r), inside.len());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn matches_a_btreeset_model(
            ops in proptest::collection::vec(op_strategy(), 1..300),
            max_entries in prop_oneof![Just(0usize), Just(4), Just(16), Just(128)],
        ) {
            let l = lim(max_entries, 12);
            let mut z = ZSetValue::new();
            let mut model = Model::default();
            for op in ops {
                match op {
                    Op::Add(m, s) => {
                        let m = name(m);
                        match z.score(&m) {
                            Some(old) => {
                                prop_assert_eq!(model.scores.get(&m).copied(), Some(old));
                                if old != s {
                                    z.update(&m, old, s);
                                    model.insert(&m, s);
                                }
                            }
                            None => {
                                prop_assert!(!model.scores.contains_key(&m));
                                let before = z.len();
                                let lp = z.encoding() == "listpack";
                                z.insert(&m, s, l);
                                model.insert(&m, s);
                                if lp {
                                    let must = before + 1 > max_entries || m.len() > 12;
                                    prop_assert_eq!(z.encoding() == "skiplist", must);
                                }
                            }
                        }
                    }
                    Op::Remove(m) => {
                        let m = name(m);
                        prop_assert_eq!(z.remove(&m), model.remove(&m));
                    }
                    Op::RemoveRange(start, count) => {
                        let victims: Vec<Vec<u8>> = model
                            .entries()
                            .into_iter()
                            .skip(start)
                            .take(count)
                            .map(|(m, _)| m)
                            .collect();
                        prop_assert_eq!(z.remove_range(start, count), victims.len());
                        for v in victims {
                            model.remove(&v);
                        }
                    }
                    Op::Pop(max) => {
                        let want = if max { model.entries().pop() } else { model.entries().into_iter().next() };
                        let got = z.pop(max).map(|(m, s)| (m.to_vec(), s));
                        if let Some((m, _)) = &want {
                            model.remove(m);
                        }
                        prop_assert_eq!(got.map(|(m, _)| m), want.map(|(m, _)| m));
                    }
                    Op::Store => {
                        let entries: Vec<(Bytes, f64)> =
                            z.iter().map(|(m, s)| (Bytes::copy_from_slice(m), s)).collect();
                        let fits = entries.len() <= max_entries
                            && entries.iter().all(|(m, _)| m.len() <= 12);
                        z = ZSetValue::from_sorted(entries, l);
                        prop_assert_eq!(z.encoding() == "listpack", fits);
                    }
                }
                check_against(&z, &model);
            }
        }
    }
}

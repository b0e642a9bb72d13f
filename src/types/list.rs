//! The list value, laid out like Redis's quicklist: a deque of nodes, each node one packed byte
//! buffer holding a run of consecutive elements.
//!
//! An element costs a one-byte header and its payload; canonical decimal integers are stored as
//! integers (0..=125 in the header byte alone). Unlike Redis's listpack there is no per-element
//! back-length: a node walks backwards from *marks*, a short side table of (byte offset, index)
//! pairs of entry starts about every `MARK_GAP` bytes, so finding the entry before a position,
//! or entry `i`, decodes at most a mark's gap of entries forward. That costs about 4 bytes per
//! `MARK_GAP` bytes of elements instead of one byte per element. Node size follows `list-max-listpack-size` as captured when the list was
//! created (like Redis, which stores the fill in the quicklist): a positive value caps the entries
//! per node (and the node at 8 KiB), -1..-5 cap the node at 4..64 KiB. A node holding a single
//! element may exceed the cap.
//!
//! Pushes and pops at either end touch only the end node. Positional access skips whole nodes by
//! their counts, from the nearer end of the list, then walks entries from the nearer end of the
//! node. Writes in the middle split a node that outgrows the cap and merge neighbours that fit
//! together again after removals.
//!
//! This module only stores data: it never parses arguments or writes replies. Element equality is
//! by bytes: a string is stored as an integer only in its canonical form, so comparing encoded
//! items is comparing bytes.

use std::collections::VecDeque;

use super::packed::{self, varint_len, write_varint};
use crate::commands::args::parse_i64;

/// Node byte caps for `list-max-listpack-size` -1..-5.
const NODE_BYTES: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// A node capped by entry count still never grows past this many bytes (Redis's
/// `SIZE_SAFETY_LIMIT`), unless it holds a single element.
const SAFETY_BYTES: usize = 8192;
/// Largest entry count per node: Redis clamps `list-max-listpack-size` to this.
const FILL_MAX: i64 = 1 << 15;

/// Which end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The left end, index 0 (LPUSH, LPOP, LEFT).
    Head,
    /// The right end, index -1 (RPUSH, RPOP, RIGHT).
    Tail,
}

/// One element as stored: a canonical integer or bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl<'a> Item<'a> {
    /// The stored form of `b`: an integer when `b` is the canonical decimal form of an i64.
    pub fn new(b: &'a [u8]) -> Item<'a> {
        if b.len() <= 20 {
            if let Some(n) = parse_i64(b) {
                return Item::Int(n);
            }
        }
        Item::Str(b)
    }

    /// Calls `f` with the element's bytes without allocating.
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Item::Int(n) => f(itoa::Buffer::new().format(n).as_bytes()),
            Item::Str(s) => f(s),
        }
    }

    pub fn to_vec(self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
    }
}

// ----- entry encoding -----
//
// header byte t:
//   0x00..=0x7F  string of t bytes follows
//   0x80         string: LEB128 length, then the bytes
//   0x81         integer: zigzag LEB128
//   0x82..=0xFF  integer t - 0x82 (0..=125)

const STR_LONG: u8 = 0x80;
const INT_VAR: u8 = 0x81;
const SMALL_INT_BASE: u8 = 0x82;
const SMALL_INT_MAX: i64 = (0xFF - SMALL_INT_BASE) as i64;

/// The LEB128 number at `pos` of a node this module wrote: (value, position after it). A
/// truncated number (which a node never holds) reads as what was there, ending at the buffer.
#[inline]
fn read_varint(buf: &[u8], pos: usize) -> (u64, usize) {
    packed::read_varint(buf, pos).unwrap_or((0, buf.len()))
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Encoded size of an item (header and payload).
fn entry_len(item: Item) -> usize {
    match item {
        Item::Int(n) if (0..=SMALL_INT_MAX).contains(&n) => 1,
        Item::Int(n) => 1 + varint_len(zigzag(n)),
        Item::Str(s) if s.len() < 0x80 => 1 + s.len(),
        Item::Str(s) => 1 + varint_len(s.len() as u64) + s.len(),
    }
}

/// Encodes `item` into `out`, which is exactly `entry_len(item)` bytes.
fn encode_into(item: Item, out: &mut [u8]) {
    match item {
        Item::Int(n) if (0..=SMALL_INT_MAX).contains(&n) => out[0] = SMALL_INT_BASE + n as u8,
        Item::Int(n) => {
            out[0] = INT_VAR;
            write_varint(&mut out[1..], zigzag(n));
        }
        Item::Str(s) if s.len() < 0x80 => {
            out[0] = s.len() as u8;
            out[1..1 + s.len()].copy_from_slice(s);
        }
        Item::Str(s) => {
            out[0] = STR_LONG;
            let p = 1 + write_varint(&mut out[1..], s.len() as u64);
            out[p..p + s.len()].copy_from_slice(s);
        }
    }
}

/// The item starting at `pos` and the position just after its entry.
fn decode(buf: &[u8], pos: usize) -> (Item<'_>, usize) {
    let t = buf[pos];
    match t {
        0..=0x7F => {
            let s = pos + 1;
            let e = s + t as usize;
            (Item::Str(&buf[s..e]), e)
        }
        STR_LONG => {
            let (len, s) = read_varint(buf, pos + 1);
            let e = s + len as usize;
            (Item::Str(&buf[s..e]), e)
        }
        INT_VAR => {
            let (v, e) = read_varint(buf, pos + 1);
            (Item::Int(unzigzag(v)), e)
        }
        _ => (Item::Int((t - SMALL_INT_BASE) as i64), pos + 1),
    }
}

/// End of the entry that starts at `pos`.
#[inline]
fn skip(buf: &[u8], pos: usize) -> usize {
    // The common headers carry the whole size; only long strings and big integers read on.
    match buf[pos] {
        t @ 0..=0x7F => pos + 1 + t as usize,
        STR_LONG => {
            let (len, s) = read_varint(buf, pos + 1);
            s + len as usize
        }
        INT_VAR => read_varint(buf, pos + 1).1,
        _ => pos + 1,
    }
}

/// Makes room for `n` bytes at `pos` (or swaps `range` for `n` bytes) and encodes `item` there.
fn put_entry(buf: &mut NodeBuf, range: std::ops::Range<usize>, item: Item, n: usize) {
    let start = range.start;
    if range.len() != n {
        buf.replace(range, n);
    }
    encode_into(item, &mut buf[start..start + n]);
}

/// A node's packed bytes, `raw[head..]`: room freed or reserved at the front stays in the
/// allocation, so that pushing or popping at a node's front moves no bytes (a list fed with
/// LPUSH would otherwise move its whole head node, up to 8 KiB, per push, as Redis's
/// listpack does).
#[derive(Default)]
struct NodeBuf {
    raw: Vec<u8>,
    head: usize,
}

impl Clone for NodeBuf {
    fn clone(&self) -> NodeBuf {
        NodeBuf::from(self.to_vec())
    }
}

impl From<Vec<u8>> for NodeBuf {
    fn from(raw: Vec<u8>) -> NodeBuf {
        NodeBuf { raw, head: 0 }
    }
}

impl std::ops::Deref for NodeBuf {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        &self.raw[self.head..]
    }
}

impl std::ops::DerefMut for NodeBuf {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.head..]
    }
}

impl NodeBuf {
    fn with_capacity(n: usize) -> NodeBuf {
        NodeBuf::from(Vec::with_capacity(n))
    }

    /// Swaps the bytes in `range` for `n` zero bytes.
    fn replace(&mut self, range: std::ops::Range<usize>, n: usize) {
        if range.start == 0 && range.end == 0 {
            self.reserve_front(n);
            self.head -= n;
            self.raw[self.head..self.head + n].fill(0);
        } else if range.start == self.len() {
            self.raw.resize(self.raw.len() + n, 0);
        } else {
            let at = self.head + range.start..self.head + range.end;
            self.raw.splice(at, std::iter::repeat_n(0, n));
        }
    }

    /// At least `n` bytes of room before the first byte: when it is missing, the contents move
    /// once to a new allocation with as much room in front as they take (so a run of front
    /// pushes moves each byte a bounded number of times, like `Vec`'s doubling).
    fn reserve_front(&mut self, n: usize) {
        if self.head >= n {
            return;
        }
        let len = self.len();
        let room = n.max(len).max(16);
        let mut raw = Vec::with_capacity(room + len);
        raw.resize(room, 0);
        raw.extend_from_slice(&self.raw[self.head..]);
        self.raw = raw;
        self.head = room;
    }

    /// Removes the first `cut` bytes (their room stays, for the next front pushes).
    fn drain_front(&mut self, cut: usize) {
        self.head += cut;
        if self.head == self.raw.len() {
            self.raw.clear();
            self.head = 0;
        }
    }

    fn truncate(&mut self, len: usize) {
        self.raw.truncate(self.head + len);
    }

    fn extend_from_slice(&mut self, b: &[u8]) {
        self.raw.extend_from_slice(b);
    }

    /// The bytes from `at` on, moved out.
    fn split_off(&mut self, at: usize) -> NodeBuf {
        NodeBuf::from(self.raw.split_off(self.head + at))
    }

    /// Gives back the spare room at both ends.
    fn shrink_to_fit(&mut self) {
        if self.head > 0 {
            self.raw.drain(..self.head);
            self.head = 0;
        }
        self.raw.shrink_to_fit();
    }
}

// ----- nodes -----

/// Bytes of entries between two marks of a node (fewer in tests, to exercise the marks).
#[cfg(not(test))]
const MARK_GAP: usize = 256;
#[cfg(test)]
const MARK_GAP: usize = 16;

/// A known entry start of a node other than its first: (byte offset, entry index).
type Mark = (u16, u16);

#[derive(Clone, Default)]
struct Node {
    buf: NodeBuf,
    count: usize,
    /// Some entry starts, ascending, none at 0 (see the module docs). Only speed depends on how
    /// dense they are: any subset of the true starts is correct, so an edit that cannot keep
    /// them cheaply drops the ones it cannot vouch for or recomputes them (`remark`). Offsets or
    /// indices past `u16::MAX` (only in a node that holds one oversized element) are not marked.
    marks: Vec<Mark>,
}

impl Node {
    fn with_capacity(n: usize) -> Node {
        Node {
            buf: NodeBuf::with_capacity(n),
            count: 0,
            marks: Vec::new(),
        }
    }

    /// Byte offset of entry `i` (`i == count` gives the end): from the last mark at or before
    /// it, walking forward.
    fn offset_of(&self, i: usize) -> usize {
        if i >= self.count {
            return self.buf.len();
        }
        let k = self.marks.partition_point(|&(_, idx)| idx as usize <= i);
        let (mut p, from) = match k.checked_sub(1) {
            Some(k) => (self.marks[k].0 as usize, self.marks[k].1 as usize),
            None => (0, 0),
        };
        for _ in from..i {
            p = skip(&self.buf, p);
        }
        p
    }

    /// The last known entry start before `end` (a mark, or 0).
    fn mark_before(&self, end: usize) -> usize {
        let k = self.marks.partition_point(|&(off, _)| (off as usize) < end);
        k.checked_sub(1).map_or(0, |k| self.marks[k].0 as usize)
    }

    /// Start of the entry that ends at `end` (an entry boundary above 0).
    fn start_before(&self, end: usize) -> usize {
        let mut p = self.mark_before(end);
        loop {
            let next = skip(&self.buf, p);
            if next >= end {
                return p;
            }
            p = next;
        }
    }

    /// Moves the marks from `marks[first..]` by `bytes` and `entries`, dropping those that would
    /// no longer fit a mark. Callers only move marks down when the results stay above 0.
    fn shift_marks(&mut self, first: usize, bytes: isize, entries: isize) {
        // Offsets and indices ascend, so only the last marks can overflow.
        while self.marks.len() > first {
            let (off, idx) = self.marks[self.marks.len() - 1];
            if off as isize + bytes <= u16::MAX as isize
                && idx as isize + entries <= u16::MAX as isize
            {
                break;
            }
            self.marks.pop();
        }
        let (db, de) = (bytes as u16, entries as u16);
        for m in self.marks.iter_mut().skip(first) {
            // Two's complement: a wrapping add of the truncated delta is the exact result.
            *m = (m.0.wrapping_add(db), m.1.wrapping_add(de));
        }
    }

    /// Recomputes the marks by walking the node.
    fn remark(&mut self) {
        self.marks.clear();
        let (mut p, mut i, mut last) = (0, 0, 0);
        while p < self.buf.len() {
            if p - last >= MARK_GAP {
                let (Ok(off), Ok(idx)) = (u16::try_from(p), u16::try_from(i)) else {
                    break;
                };
                self.marks.push((off, idx));
                last = p;
            }
            p = skip(&self.buf, p);
            i += 1;
        }
    }

    /// Appends an entry of `n` encoded bytes.
    fn push_back(&mut self, item: Item, n: usize) {
        let at = self.buf.len();
        put_entry(&mut self.buf, at..at, item, n);
        let last = self.marks.last().map_or(0, |m| m.0 as usize);
        if at - last >= MARK_GAP {
            if let (Ok(off), Ok(idx)) = (u16::try_from(at), u16::try_from(self.count)) {
                self.marks.push((off, idx));
            }
        }
        self.count += 1;
    }

    /// Prepends an entry of `n` encoded bytes.
    fn push_front(&mut self, item: Item, n: usize) {
        put_entry(&mut self.buf, 0..0, item, n);
        self.shift_marks(0, n as isize, 1);
        let first = self.marks.first().map_or(self.buf.len(), |m| m.0 as usize);
        if self.count > 0 && first - n >= MARK_GAP {
            // Mark the old first entry, which now starts at n.
            if let Ok(off) = u16::try_from(n) {
                self.marks.insert(0, (off, 1));
            }
        }
        self.count += 1;
    }

    /// Inserts an entry of `n` encoded bytes at entry start `pos` (not at 0 or the end, which
    /// are `push_front` and `push_back`).
    fn insert_entry(&mut self, pos: usize, item: Item, n: usize) {
        put_entry(&mut self.buf, pos..pos, item, n);
        let k = self.marks.partition_point(|&(off, _)| (off as usize) < pos);
        self.shift_marks(k, n as isize, 1);
        self.count += 1;
    }

    /// Replaces the entry at `start..stop` with one of `n` encoded bytes.
    fn replace_entry(&mut self, start: usize, stop: usize, item: Item, n: usize) {
        put_entry(&mut self.buf, start..stop, item, n);
        let k = self
            .marks
            .partition_point(|&(off, _)| (off as usize) <= start);
        self.shift_marks(k, n as isize - (stop - start) as isize, 0);
    }

    /// Removes the first `k` entries, which end at byte `cut`.
    fn drop_front(&mut self, cut: usize, k: usize) {
        self.buf.drain_front(cut);
        self.count -= k;
        let gone = self
            .marks
            .partition_point(|&(off, _)| (off as usize) <= cut);
        self.marks.drain(..gone);
        self.shift_marks(0, -(cut as isize), -(k as isize));
    }

    /// Removes the entries from byte `cut` (an entry start) on, `k` of them.
    fn drop_back(&mut self, cut: usize, k: usize) {
        self.buf.truncate(cut);
        self.count -= k;
        let keep = self.marks.partition_point(|&(off, _)| (off as usize) < cut);
        self.marks.truncate(keep);
    }

    /// Gives back spare capacity (a node that stopped growing).
    fn shrink_to_fit(&mut self) {
        self.buf.shrink_to_fit();
        self.marks.shrink_to_fit();
    }
}

/// A list value.
#[derive(Clone)]
pub struct ListValue {
    nodes: VecDeque<Node>,
    len: usize,
    /// Sum of the node buffers' lengths.
    bytes: usize,
    /// `list-max-listpack-size` when the list was created, clamped like Redis.
    fill: i32,
}

/// Elements from one index towards the tail.
pub struct Iter<'a> {
    nodes: &'a VecDeque<Node>,
    node: usize,
    pos: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        while let Some(n) = self.nodes.get(self.node) {
            if self.pos < n.buf.len() {
                let (item, next) = decode(&n.buf, self.pos);
                self.pos = next;
                return Some(item);
            }
            self.node += 1;
            self.pos = 0;
        }
        None
    }
}

/// Elements from the tail towards the head.
pub struct RevIter<'a> {
    nodes: &'a VecDeque<Node>,
    /// Nodes not finished yet: the current one is `nodes[left - 1]`.
    left: usize,
    /// Where the part of the current node not decoded yet ends.
    end: usize,
    /// Entry starts of the stretch of the current node decoded last, yielded back to front:
    /// a stretch runs from a mark to `end`, so each entry is decoded once.
    starts: Vec<usize>,
}

impl<'a> Iterator for RevIter<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        while self.left > 0 {
            let n = &self.nodes[self.left - 1];
            if let Some(start) = self.starts.pop() {
                return Some(decode(&n.buf, start).0);
            }
            if self.end > 0 {
                let from = n.mark_before(self.end);
                let mut p = from;
                while p < self.end {
                    self.starts.push(p);
                    p = skip(&n.buf, p);
                }
                self.end = from;
                continue;
            }
            self.left -= 1;
            if self.left > 0 {
                self.end = self.nodes[self.left - 1].buf.len();
            }
        }
        None
    }
}

impl ListValue {
    /// An empty list whose nodes follow `list-max-listpack-size` = `fill`.
    pub fn new(fill: i64) -> ListValue {
        ListValue {
            nodes: VecDeque::new(),
            len: 0,
            bytes: 0,
            fill: fill.clamp(-5, FILL_MAX) as i32,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The node size setting in effect for this list (DEBUG OBJECT's `ql_listpack_max`).
    pub fn fill(&self) -> i32 {
        self.fill
    }

    /// Number of nodes (DEBUG OBJECT's `ql_nodes`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// A human-readable layout of the list: its totals, then every node (entries, bytes,
    /// allocation, room kept in front, marks) and, with `full`, every entry of every node
    /// (offset, stored size, integer or string). For DEBUG QUICKLIST, which prints it.
    pub fn repr(&self, full: bool) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{{quicklist}} {{count {}}} {{nodes {}}} {{fill {}}} {{bytes {}}} {{compress 0}}",
            self.len,
            self.nodes.len(),
            self.fill,
            self.bytes
        );
        for (i, n) in self.nodes.iter().enumerate() {
            let _ = writeln!(
                out,
                "{{node {i}}} {{entries {}}} {{bytes {}}} {{allocated {}}} {{front room {}}} {{marks {}}}",
                n.count,
                n.buf.len(),
                n.buf.raw.capacity(),
                n.buf.head,
                n.marks.len()
            );
            if !full {
                continue;
            }
            let mut pos = 0;
            let mut index = 0;
            while pos < n.buf.len() {
                let (item, next) = decode(&n.buf, pos);
                let _ = match item {
                    Item::Int(v) => writeln!(
                        out,
                        "\t{{entry {index}}} {{offset {pos}}} {{size {}}} int {v}",
                        next - pos
                    ),
                    Item::Str(b) => writeln!(
                        out,
                        "\t{{entry {index}}} {{offset {pos}}} {{size {}}} str \"{}\"",
                        next - pos,
                        b.escape_ascii()
                    ),
                };
                pos = next;
                index += 1;
            }
        }
        out.push_str("{end}\n");
        out
    }

    /// Bytes of one node's bookkeeping (its buffer handle, count and marks handle), for DEBUG
    /// STRUCTSIZE.
    pub const fn node_struct_bytes() -> usize {
        std::mem::size_of::<Node>()
    }

    /// Bytes of packed entries (DEBUG OBJECT's `ql_uncompressed_size`).
    pub fn packed_bytes(&self) -> usize {
        self.bytes
    }

    /// Approximate heap bytes owned (the marks estimated from their spacing).
    pub fn mem_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.bytes
            + self.bytes / MARK_GAP * std::mem::size_of::<Mark>()
            + self.nodes.len() * std::mem::size_of::<Node>()
    }

    /// How many allocations dropping the list frees (Redis's lazy-free "effort": its nodes).
    pub fn free_effort(&self) -> usize {
        self.nodes.len()
    }

    /// Frees up to `budget` nodes from the tail; true once the list is empty. For lazy freeing.
    pub fn free_some(&mut self, budget: usize) -> bool {
        for _ in 0..budget {
            let Some(n) = self.nodes.pop_back() else {
                break;
            };
            self.len -= n.count;
            self.bytes -= n.buf.len();
        }
        if self.nodes.is_empty() {
            self.nodes = VecDeque::new();
            return true;
        }
        false
    }

    /// Whether a node of `bytes` bytes and `count` entries respects the size setting.
    fn fits(&self, bytes: usize, count: usize) -> bool {
        if self.fill < 0 {
            bytes <= NODE_BYTES[(-self.fill - 1) as usize]
        } else {
            bytes <= SAFETY_BYTES && count <= self.fill as usize
        }
    }

    /// Adds an element at one end.
    pub fn push(&mut self, end: End, v: &[u8]) {
        let item = Item::new(v);
        let n = entry_len(item);
        let edge = match end {
            End::Head => self.nodes.front(),
            End::Tail => self.nodes.back(),
        };
        let room = edge.is_some_and(|e| self.fits(e.buf.len() + n, e.count + 1));
        if !room {
            // The old edge node is complete: give back its spare capacity.
            let node = Node::with_capacity(n);
            match end {
                End::Head => {
                    if let Some(e) = self.nodes.front_mut() {
                        e.shrink_to_fit();
                    }
                    self.nodes.push_front(node);
                }
                End::Tail => {
                    if let Some(e) = self.nodes.back_mut() {
                        e.shrink_to_fit();
                    }
                    self.nodes.push_back(node);
                }
            }
        }
        let node = match end {
            End::Head => self.nodes.front_mut(),
            End::Tail => self.nodes.back_mut(),
        };
        let Some(node) = node else { return };
        match end {
            End::Head => node.push_front(item, n),
            End::Tail => node.push_back(item, n),
        }
        self.len += 1;
        self.bytes += n;
    }

    /// Removes the element at one end, handing it to `f` first. None when empty.
    pub fn pop_with<R>(&mut self, end: End, f: impl FnOnce(Item<'_>) -> R) -> Option<R> {
        let ni = match end {
            End::Head => 0,
            End::Tail => self.nodes.len().checked_sub(1)?,
        };
        let node = self.nodes.get_mut(ni)?;
        let (start, stop) = match end {
            End::Head => (0, skip(&node.buf, 0)),
            End::Tail => (node.start_before(node.buf.len()), node.buf.len()),
        };
        let out = f(decode(&node.buf, start).0);
        match end {
            End::Head => node.drop_front(stop, 1),
            End::Tail => node.drop_back(start, 1),
        }
        let emptied = node.count == 0;
        self.len -= 1;
        self.bytes -= stop - start;
        if emptied {
            self.nodes.remove(ni);
        }
        Some(out)
    }

    /// Removes and returns the element at one end.
    pub fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        self.pop_with(end, |item| item.to_vec())
    }

    /// (node, entry within the node) of element `index` (< len), counting from the nearer end.
    fn locate(&self, index: usize) -> (usize, usize) {
        if index < self.len / 2 {
            let mut rem = index;
            for (i, n) in self.nodes.iter().enumerate() {
                if rem < n.count {
                    return (i, rem);
                }
                rem -= n.count;
            }
        } else {
            let mut rem = self.len - 1 - index;
            for (i, n) in self.nodes.iter().enumerate().rev() {
                if rem < n.count {
                    return (i, n.count - 1 - rem);
                }
                rem -= n.count;
            }
        }
        unreachable!("index {index} within a list of {}", self.len)
    }

    /// The element at `index` (0-based from the head).
    pub fn get(&self, index: usize) -> Option<Item<'_>> {
        if index >= self.len {
            return None;
        }
        let (ni, ei) = self.locate(index);
        let node = &self.nodes[ni];
        Some(decode(&node.buf, node.offset_of(ei)).0)
    }

    /// Replaces the element at `index`; false when out of range.
    pub fn set(&mut self, index: usize, v: &[u8]) -> bool {
        if index >= self.len {
            return false;
        }
        let (ni, ei) = self.locate(index);
        let item = Item::new(v);
        let n = entry_len(item);
        let node = &mut self.nodes[ni];
        let start = node.offset_of(ei);
        let stop = skip(&node.buf, start);
        node.replace_entry(start, stop, item, n);
        self.bytes = self.bytes + n - (stop - start);
        if n > stop - start {
            self.split_to_fit(ni);
        } else {
            self.compact(ni, ni);
        }
        true
    }

    /// Inserts `v` before or after the first element equal to `pivot`; false if there is none.
    pub fn insert_near(&mut self, pivot: &[u8], v: &[u8], after: bool) -> bool {
        let target = Item::new(pivot);
        for ni in 0..self.nodes.len() {
            let buf = &self.nodes[ni].buf;
            let mut p = 0;
            while p < buf.len() {
                let (item, next) = decode(buf, p);
                if item == target {
                    self.insert_at(ni, if after { next } else { p }, v);
                    return true;
                }
                p = next;
            }
        }
        false
    }

    /// Inserts `v` at byte position `pos` of node `ni`, spilling into a neighbour when the
    /// position is at a full node's edge, else splitting the node if it outgrows the cap.
    fn insert_at(&mut self, ni: usize, pos: usize, v: &[u8]) {
        let item = Item::new(v);
        let n = entry_len(item);
        let node = &self.nodes[ni];
        let fits_here = self.fits(node.buf.len() + n, node.count + 1);
        let (mut ni, mut pos) = (ni, pos);
        if !fits_here {
            let next_fits = self
                .nodes
                .get(ni + 1)
                .is_some_and(|m| self.fits(m.buf.len() + n, m.count + 1));
            let prev_fits = ni > 0 && {
                let m = &self.nodes[ni - 1];
                self.fits(m.buf.len() + n, m.count + 1)
            };
            if pos == node.buf.len() && next_fits {
                (ni, pos) = (ni + 1, 0);
            } else if pos == 0 && prev_fits {
                ni -= 1;
                pos = self.nodes[ni].buf.len();
            }
        }
        let node = &mut self.nodes[ni];
        if pos == 0 {
            node.push_front(item, n);
        } else if pos == node.buf.len() {
            node.push_back(item, n);
        } else {
            node.insert_entry(pos, item, n);
        }
        self.len += 1;
        self.bytes += n;
        self.split_to_fit(ni);
    }

    /// Splits node `ni` in halves (recursively) until every part fits or holds one element.
    fn split_to_fit(&mut self, ni: usize) {
        let node = &self.nodes[ni];
        if node.count <= 1 || self.fits(node.buf.len(), node.count) {
            return;
        }
        let half = node.count / 2;
        let cut = node.offset_of(half);
        let node = &mut self.nodes[ni];
        let mut tail = Node {
            buf: node.buf.split_off(cut),
            count: node.count - half,
            marks: Vec::new(),
        };
        tail.remark();
        node.count = half;
        node.remark();
        node.shrink_to_fit();
        self.nodes.insert(ni + 1, tail);
        self.split_to_fit(ni + 1);
        self.split_to_fit(ni);
    }

    /// Drops emptied nodes among `lo..=hi` and merges neighbours (including the nodes just
    /// outside that range) whose contents fit in one node. Only that window is touched.
    fn compact(&mut self, lo: usize, hi: usize) {
        let a = lo.saturating_sub(1);
        let b = (hi + 2).min(self.nodes.len());
        if a >= b {
            return;
        }
        // nodes[a..w] is the compacted prefix of the window; slots in w..=r are spent.
        let mut w = a;
        for r in a..b {
            if self.nodes[r].count == 0 {
                continue;
            }
            if w > a {
                let (last, cur) = (&self.nodes[w - 1], &self.nodes[r]);
                if self.fits(last.buf.len() + cur.buf.len(), last.count + cur.count) {
                    let cur = std::mem::take(&mut self.nodes[r]);
                    let last = &mut self.nodes[w - 1];
                    last.buf.extend_from_slice(&cur.buf);
                    last.count += cur.count;
                    last.remark();
                    continue;
                }
            }
            self.nodes.swap(w, r);
            w += 1;
        }
        self.nodes.drain(w..b);
    }

    /// Removes up to `limit` elements equal to `v` (every one when `limit` is 0), scanning from
    /// `from`. Returns how many were removed.
    pub fn remove_eq(&mut self, v: &[u8], limit: usize, from: End) -> usize {
        let target = Item::new(v);
        let mut removed = 0;
        let (mut lo, mut hi) = (usize::MAX, 0);
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let total = self.nodes.len();
        for k in 0..total {
            if limit != 0 && removed == limit {
                break;
            }
            let ni = match from {
                End::Head => k,
                End::Tail => total - 1 - k,
            };
            let node = &mut self.nodes[ni];
            spans.clear();
            let mut p = 0;
            while p < node.buf.len() {
                let (item, next) = decode(&node.buf, p);
                if item == target {
                    spans.push((p, next));
                }
                p = next;
            }
            if spans.is_empty() {
                continue;
            }
            let want = if limit == 0 {
                spans.len()
            } else {
                (limit - removed).min(spans.len())
            };
            let chosen = match from {
                End::Head => &spans[..want],
                End::Tail => &spans[spans.len() - want..],
            };
            // Slide the kept runs left over the removed entries.
            let mut w = chosen[0].0;
            for (i, &(_, stop)) in chosen.iter().enumerate() {
                let run_end = chosen.get(i + 1).map_or(node.buf.len(), |c| c.0);
                node.buf.copy_within(stop..run_end, w);
                w += run_end - stop;
            }
            let freed = node.buf.len() - w;
            node.buf.truncate(w);
            node.count -= want;
            node.remark();
            self.len -= want;
            self.bytes -= freed;
            removed += want;
            lo = lo.min(ni);
            hi = hi.max(ni);
        }
        if removed > 0 {
            self.compact(lo, hi);
        }
        removed
    }

    /// Removes `n` elements from one end (all of them when `n >= len`).
    pub fn remove_end(&mut self, end: End, mut n: usize) {
        while n > 0 {
            let node = match end {
                End::Head => self.nodes.front_mut(),
                End::Tail => self.nodes.back_mut(),
            };
            let Some(node) = node else { return };
            if node.count <= n {
                n -= node.count;
                self.len -= node.count;
                self.bytes -= node.buf.len();
                match end {
                    End::Head => self.nodes.pop_front(),
                    End::Tail => self.nodes.pop_back(),
                };
                continue;
            }
            let before = node.buf.len();
            match end {
                End::Head => {
                    let cut = node.offset_of(n);
                    node.drop_front(cut, n);
                }
                End::Tail => {
                    let cut = node.offset_of(node.count - n);
                    node.drop_back(cut, n);
                }
            }
            self.len -= n;
            self.bytes -= before - node.buf.len();
            return;
        }
    }

    /// Every element, head to tail.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            nodes: &self.nodes,
            node: 0,
            pos: 0,
        }
    }

    /// Elements from `index` to the tail (empty when `index >= len`).
    pub fn iter_from(&self, index: usize) -> Iter<'_> {
        if index >= self.len {
            return Iter {
                nodes: &self.nodes,
                node: self.nodes.len(),
                pos: 0,
            };
        }
        let (ni, ei) = self.locate(index);
        Iter {
            nodes: &self.nodes,
            node: ni,
            pos: self.nodes[ni].offset_of(ei),
        }
    }

    /// Every element, tail to head.
    pub fn iter_rev(&self) -> RevIter<'_> {
        RevIter {
            nodes: &self.nodes,
            left: self.nodes.len(),
            end: self.nodes.back().map_or(0, |n| n.buf.len()),
            starts: Vec::new(),
        }
    }

    /// Checks the internal bookkeeping (tests).
    #[cfg(test)]
    fn check_invariants(&self) {
        let mut len = 0;
        let mut bytes = 0;
        for (i, n) in self.nodes.iter().enumerate() {
            assert!(n.count > 0, "node {i} is empty");
            let mut p = 0;
            let mut c = 0;
            while p < n.buf.len() {
                p = skip(&n.buf, p);
                c += 1;
            }
            assert_eq!(p, n.buf.len(), "node {i} ends mid-entry");
            assert_eq!(c, n.count, "node {i} count");
            // Every mark is a true (offset, index) of an entry start, ascending, none at 0.
            let (mut p, mut idx) = (0, 0);
            let mut prev = 0;
            for &(off, at) in &n.marks {
                assert!(off as usize > prev, "node {i} marks not ascending");
                prev = off as usize;
                while idx < at as usize {
                    p = skip(&n.buf, p);
                    idx += 1;
                }
                assert_eq!(p, off as usize, "node {i} mark at entry {at}");
            }
            assert!(
                n.count == 1 || self.fits(n.buf.len(), n.count),
                "node {i} too big: {} bytes, {} entries, fill {}",
                n.buf.len(),
                n.count,
                self.fill
            );
            len += c;
            bytes += n.buf.len();
        }
        assert_eq!(len, self.len);
        assert_eq!(bytes, self.bytes);
    }
}

impl PartialEq for ListValue {
    /// Same elements in the same order (node layout does not matter).
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for ListValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.iter()
                    .map(|i| String::from_utf8_lossy(&i.to_vec()).into_owned()),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn items(l: &ListValue) -> Vec<Vec<u8>> {
        l.iter().map(Item::to_vec).collect()
    }

    #[test]
    fn node_front_room_is_reused_and_bounded() {
        let mut b = NodeBuf::default();
        for i in 0..1000u32 {
            let n = 1 + (i % 7) as usize;
            b.replace(0..0, n);
            b[..n].fill(i as u8);
        }
        let total: usize = (0..1000u32).map(|i| 1 + (i % 7) as usize).sum();
        assert_eq!(b.len(), total);
        // Doubling room: a bounded number of moves, and at most twice the bytes allocated.
        assert!(b.raw.capacity() <= 2 * total + 16, "{}", b.raw.capacity());
        assert_eq!(b[0], 999u32 as u8);
        assert_eq!(b[b.len() - 1], 0);
        // Popped front bytes leave room that the next front push takes without moving.
        let cap = b.raw.capacity();
        b.drain_front(100);
        let raw_ptr = b.raw.as_ptr();
        b.replace(0..0, 100);
        assert_eq!(b.raw.as_ptr(), raw_ptr);
        assert_eq!(b.raw.capacity(), cap);
        assert_eq!(b.len(), total);
        // Middle edits, a split and a shrink keep the logical bytes.
        b[..4].copy_from_slice(b"abcd");
        b.replace(2..3, 3);
        assert_eq!(&b[..6], b"ab\0\0\0d");
        let tail = b.split_off(4);
        assert_eq!(b.len() + tail.len(), total + 2);
        b.shrink_to_fit();
        assert_eq!(&b[..], b"ab\0\0");
        assert_eq!(b.head, 0);
        assert_eq!(&b.clone()[..], &b[..]);
    }

    #[test]
    fn encoding_round_trips_every_size_class() {
        let long = vec![b'x'; 300];
        let huge = vec![b'y'; 20_000];
        let cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"a".to_vec(),
            vec![b'z'; 127],
            vec![b'z'; 128],
            long,
            huge,
            b"0".to_vec(),
            b"125".to_vec(),
            b"126".to_vec(),
            b"-1".to_vec(),
            b"9223372036854775807".to_vec(),
            b"-9223372036854775808".to_vec(),
            b"01".to_vec(),
            b"-0".to_vec(),
            b"1.5".to_vec(),
        ];
        let mut buf = Vec::new();
        for c in &cases {
            let item = Item::new(c);
            let n = entry_len(item);
            let at = buf.len();
            buf.resize(at + n, 0);
            encode_into(item, &mut buf[at..]);
        }
        let mut p = 0;
        for c in &cases {
            let (item, next) = decode(&buf, p);
            assert_eq!(&item.to_vec(), c);
            p = next;
        }
        assert_eq!(p, buf.len());
        assert_eq!(Item::new(b"12"), Item::Int(12));
        assert_eq!(Item::new(b"012"), Item::Str(b"012"));
        assert_eq!(entry_len(Item::new(b"7")), 1);
        assert_eq!(entry_len(Item::new(b"item:1")), 7);
    }

    #[test]
    fn node_size_follows_the_fill() {
        let mut l = ListValue::new(3);
        for i in 0..10 {
            l.push(End::Tail, i.to_string().as_bytes());
        }
        assert_eq!(l.node_count(), 4);
        l.check_invariants();
        // Byte-capped: -1 is 4 KiB per node.
        let mut l = ListValue::new(-1);
        let v = vec![b'v'; 1000];
        for _ in 0..10 {
            l.push(End::Head, &v);
        }
        assert_eq!(l.node_count(), 3);
        l.check_invariants();
        // A single oversized element gets a node of its own.
        l.push(End::Tail, &vec![b'w'; 10_000]);
        assert_eq!(l.node_count(), 4);
        l.check_invariants();
        // Clamped like Redis.
        assert_eq!(ListValue::new(-10).fill(), -5);
        assert_eq!(ListValue::new(1 << 20).fill(), 1 << 15);
        // A count cap still stops at 8 KiB.
        let mut l = ListValue::new(1000);
        for _ in 0..20 {
            l.push(End::Tail, &v);
        }
        assert!(l.node_count() >= 3);
        l.check_invariants();
        // Fill 0: one element per node.
        let mut l = ListValue::new(0);
        for _ in 0..5 {
            l.push(End::Tail, b"x");
        }
        assert_eq!(l.node_count(), 5);
    }

    #[test]
    fn memory_per_small_element_is_a_few_bytes() {
        let mut l = ListValue::new(-2);
        for i in 0..100_000 {
            l.push(End::Tail, format!("item:{i}").as_bytes());
        }
        // "item:NNNNN" is 10 bytes; a Vec<Bytes> would spend 32 + a heap block per element.
        assert!(l.mem_bytes() < 100_000 * 14, "{}", l.mem_bytes());
        let mut ints = ListValue::new(-2);
        for i in 0..100_000 {
            ints.push(End::Tail, (i % 100).to_string().as_bytes());
        }
        assert!(ints.mem_bytes() < 100_000 * 3, "{}", ints.mem_bytes());
    }

    #[test]
    fn insert_splits_and_remove_merges() {
        let mut l = ListValue::new(4);
        for i in 0..8 {
            l.push(End::Tail, i.to_string().as_bytes());
        }
        assert_eq!(l.node_count(), 2);
        assert!(l.insert_near(b"1", b"x", true));
        assert!(l.insert_near(b"7", b"y", true));
        assert!(!l.insert_near(b"nope", b"z", false));
        l.check_invariants();
        // Both full nodes split: [0 1] [x 2 3] [4 5] [6 7 y].
        assert_eq!(l.node_count(), 4);
        assert_eq!(
            items(&l),
            ["0", "1", "x", "2", "3", "4", "5", "6", "7", "y"]
                .map(|s| s.as_bytes().to_vec())
                .to_vec()
        );
        assert_eq!(l.remove_eq(b"x", 0, End::Head), 1);
        assert_eq!(l.remove_eq(b"3", 0, End::Head), 1);
        assert_eq!(l.remove_eq(b"4", 0, End::Head), 1);
        l.check_invariants();
        // Neighbours that fit together merged again: [0 1 2 5] [6 7 y].
        assert_eq!(l.node_count(), 2);
        assert_eq!(l.get(0), Some(Item::Int(0)));
        assert_eq!(l.get(6), Some(Item::Str(b"y")));
        assert_eq!(l.get(7), None);
    }

    #[test]
    fn marks_keep_positional_access_exact_through_pushes_and_pops_at_both_ends() {
        for fill in [-1i64, -2, -5, 1000] {
            let mut l = ListValue::new(fill);
            let mut m: std::collections::VecDeque<Vec<u8>> = Default::default();
            for i in 0..3000u32 {
                let v = if i % 7 == 0 {
                    (i % 200).to_string().into_bytes()
                } else {
                    format!("item:{i}").into_bytes()
                };
                if i % 3 == 0 {
                    l.push(End::Head, &v);
                    m.push_front(v);
                } else {
                    l.push(End::Tail, &v);
                    m.push_back(v);
                }
                if i % 5 == 4 {
                    assert_eq!(l.pop(End::Tail), m.pop_back());
                }
                if i % 11 == 10 {
                    assert_eq!(l.pop(End::Head), m.pop_front());
                }
            }
            l.check_invariants();
            assert!(l.nodes.iter().any(|n| n.marks.len() > 3), "marks in use");
            for (i, want) in m.iter().enumerate() {
                assert_eq!(&l.get(i).unwrap().to_vec(), want);
            }
            let rev: Vec<Vec<u8>> = l.iter_rev().map(Item::to_vec).collect();
            assert_eq!(rev, m.iter().rev().cloned().collect::<Vec<_>>());
            l.remove_end(End::Head, 17);
            l.remove_end(End::Tail, 23);
            m.drain(..17);
            m.truncate(m.len() - 23);
            l.check_invariants();
            assert_eq!(items(&l), m.iter().cloned().collect::<Vec<_>>());
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(bool, u8),
        PushBig(bool, u16),
        Pop(bool),
        Get(u16),
        Set(u16, u8),
        Insert(u8, u8, bool),
        Remove(u8, i8),
        Trim(u16, u16),
        Range(u16, u16),
        Rev,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            30 => (any::<bool>(), 0u8..12).prop_map(|(h, v)| Op::Push(h, v)),
            3 => (any::<bool>(), 100u16..3000).prop_map(|(h, n)| Op::PushBig(h, n)),
            12 => any::<bool>().prop_map(Op::Pop),
            6 => any::<u16>().prop_map(Op::Get),
            6 => (any::<u16>(), 0u8..12).prop_map(|(i, v)| Op::Set(i, v)),
            8 => (0u8..12, 0u8..12, any::<bool>()).prop_map(|(p, v, a)| Op::Insert(p, v, a)),
            5 => (0u8..12, -3i8..4).prop_map(|(v, c)| Op::Remove(v, c)),
            2 => (any::<u16>(), any::<u16>()).prop_map(|(a, b)| Op::Trim(a, b)),
            4 => (any::<u16>(), any::<u16>()).prop_map(|(a, b)| Op::Range(a, b)),
            2 => Just(Op::Rev),
        ]
    }

    /// Small values: some integers (stored packed), some strings, some long enough for the
    /// multi-byte length and back-length forms.
    fn val(v: u8) -> Vec<u8> {
        match v {
            0..=3 => v.to_string().into_bytes(),
            4 => b"-77777".to_vec(),
            5 => b"01".to_vec(),
            6 => vec![b'L'; 200],
            _ => format!("s{v}").into_bytes(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn model_check(
            fill in prop_oneof![Just(0i64), Just(1), Just(2), Just(3), Just(5), Just(-1), Just(-2)],
            ops in proptest::collection::vec(op(), 1..300),
        ) {
            let mut l = ListValue::new(fill);
            let mut m: std::collections::VecDeque<Vec<u8>> = Default::default();
            let end = |h: bool| if h { End::Head } else { End::Tail };
            for op in ops {
                match op {
                    Op::Push(h, v) => {
                        l.push(end(h), &val(v));
                        if h { m.push_front(val(v)) } else { m.push_back(val(v)) }
                    }
                    Op::PushBig(h, n) => {
                        let v = vec![b'B'; n as usize];
                        l.push(end(h), &v);
                        if h { m.push_front(v) } else { m.push_back(v) }
                    }
                    Op::Pop(h) => {
                        let want = if h { m.pop_front() } else { m.pop_back() };
                        prop_assert_eq!(l.pop(end(h)), want);
                    }
                    Op::Get(i) => {
                        let i = i as usize % (m.len() + 2);
                        prop_assert_eq!(l.get(i).map(Item::to_vec), m.get(i).cloned());
                    }
                    Op::Set(i, v) => {
                        let i = i as usize % (m.len() + 2);
                        let ok = i < m.len();
                        prop_assert_eq!(l.set(i, &val(v)), ok);
                        if ok { m[i] = val(v); }
                    }
                    Op::Insert(p, v, after) => {
                        let pos = m.iter().position(|e| *e == val(p));
                        prop_assert_eq!(l.insert_near(&val(p), &val(v), after), pos.is_some());
                        if let Some(i) = pos { m.insert(if after { i + 1 } else { i }, val(v)); }
                    }
                    Op::Remove(v, c) => {
                        let target = val(v);
                        let limit = c.unsigned_abs() as usize;
                        let mut want = 0;
                        if c >= 0 {
                            let mut i = 0;
                            while i < m.len() && (limit == 0 || want < limit) {
                                if m[i] == target { m.remove(i); want += 1; } else { i += 1; }
                            }
                        } else {
                            let mut i = m.len();
                            while i > 0 && want < limit {
                                i -= 1;
                                if m[i] == target { m.remove(i); want += 1; }
                            }
                        }
                        let from = if c >= 0 { End::Head } else { End::Tail };
                        prop_assert_eq!(l.remove_eq(&target, limit, from), want);
                    }
                    Op::Trim(a, b) => {
                        let a = a as usize % (m.len() + 2);
                        let b = b as usize % (m.len() + 2);
                        l.remove_end(End::Head, a);
                        l.remove_end(End::Tail, b);
                        for _ in 0..a { m.pop_front(); }
                        for _ in 0..b { m.pop_back(); }
                    }
                    Op::Range(a, n) => {
                        let a = a as usize % (m.len() + 2);
                        let n = n as usize % (m.len() + 2);
                        let got: Vec<Vec<u8>> = l.iter_from(a).take(n).map(Item::to_vec).collect();
                        let want: Vec<Vec<u8>> = m.iter().skip(a).take(n).cloned().collect();
                        prop_assert_eq!(got, want);
                    }
                    Op::Rev => {
                        let got: Vec<Vec<u8>> = l.iter_rev().map(Item::to_vec).collect();
                        let want: Vec<Vec<u8>> = m.iter().rev().cloned().collect();
                        prop_assert_eq!(got, want);
                    }
                }
                l.check_invariants();
                prop_assert_eq!(l.len(), m.len());
            }
            prop_assert_eq!(items(&l), m.iter().cloned().collect::<Vec<_>>());
            let c = l.clone();
            prop_assert_eq!(c, l);
        }
    }
}

//! Packed runs: the one byte-buffer format behind the small encodings (the role of Redis's
//! listpack).
//!
//! What this module owns: a [`PackedRun<N>`] is a sequence of records laid back to back in one
//! buffer (behind a small header), each record `N` items, each item a LEB128 length followed by its bytes. A set member
//! is a one-item record, a hash's (field, value) pair and a sorted set's (score, member) entry
//! are two-item records. The run knows how to walk records, find one, insert, replace and remove
//! records at byte positions, and keeps no spare capacity beyond the allocator's rounding (grow to
//! fit, shrink after removals): these encodings exist to save memory, and every write to them
//! is O(n) anyway. The
//! LEB128 helpers are shared with the list's nodes, whose entries carry their own headers.
//!
//! What it must never do: interpret items (order, uniqueness, thresholds and what an item means
//! are the caller's business), allocate anything but its own buffer, or panic on a position it
//! did not hand out (a position that is not a record start ends a walk or is ignored).
//!
//! Positions are byte offsets of record starts, as returned by the iterators and `find`; the
//! end of the run (`end()`) is a valid position for insertion.

/// Bytes LEB128 needs for `v`.
#[inline]
pub fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Writes `v` as LEB128 at the start of `out` (which must have room) and returns its length.
#[inline]
pub fn write_varint(out: &mut [u8], mut v: u64) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        out[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    out[i] = v as u8;
    i + 1
}

/// Reads a LEB128 number at `pos`: (value, position after it); None when the buffer ends first
/// or the number does not fit in 64 bits.
#[inline]
pub fn read_varint(buf: &[u8], mut pos: usize) -> Option<(u64, usize)> {
    let mut v = 0u64;
    let mut shift = 0u32;
    loop {
        let b = *buf.get(pos)?;
        pos += 1;
        if shift > 63 {
            return None;
        }
        v |= ((b & 0x7F) as u64) << shift;
        if b & 0x80 == 0 {
            return Some((v, pos));
        }
        shift += 7;
    }
}

/// The item at `pos`: (its bytes, position after it).
#[inline]
fn item_at(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let (n, start) = read_varint(buf, pos)?;
    let end = start.checked_add(usize::try_from(n).ok()?)?;
    Some((buf.get(start..end)?, end))
}

/// The record at `pos`: (its items, position after it).
#[inline]
fn record_at<const N: usize>(buf: &[u8], pos: usize) -> Option<([&[u8]; N], usize)> {
    let mut items: [&[u8]; N] = [&[]; N];
    let mut p = pos;
    for slot in items.iter_mut() {
        let (item, next) = item_at(buf, p)?;
        *slot = item;
        p = next;
    }
    Some((items, p))
}

/// Encoded size of a record.
#[inline]
fn encoded_len<const N: usize>(items: &[&[u8]; N]) -> usize {
    items
        .iter()
        .map(|i| varint_len(i.len() as u64) + i.len())
        .sum()
}

/// Encodes a record into `out`, which is exactly `encoded_len(items)` bytes.
#[inline]
fn encode_into<const N: usize>(out: &mut [u8], items: &[&[u8]; N]) {
    let mut p = 0;
    for item in items {
        p += write_varint(&mut out[p..], item.len() as u64);
        out[p..p + item.len()].copy_from_slice(item);
        p += item.len();
    }
}

/// Spare bytes past which removals shrink the buffer: glibc's chunks come in 16-byte steps,
/// so less than this may not be returnable at all.
const SHRINK_SLACK: usize = 32;

/// Bytes of the header at the start of a non-empty run's buffer: the payload length and the
/// record count, each a little-endian `u32` (the role of Redis's listpack header).
const HEADER: usize = 8;

/// Records of `N` length-prefixed items packed in one buffer (see the module docs).
///
/// One boxed slice and nothing else, so that the run is two words and a keyspace `Value`
/// holding one (or a set's intset beside it) stays four words: the buffer is empty for an
/// empty run, and otherwise holds the header (`HEADER`), the payload, and spare bytes up to
/// the allocator's chunk (the slice's length is the capacity). A run is limited to 4 GiB of
/// payload, like Redis's listpack.
#[derive(Clone, Default)]
pub struct PackedRun<const N: usize> {
    buf: Box<[u8]>,
}

impl<const N: usize> PartialEq for PackedRun<N> {
    /// Same records (spare capacity does not count).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.payload() == other.payload()
    }
}

impl<const N: usize> Eq for PackedRun<N> {}

impl<const N: usize> std::fmt::Debug for PackedRun<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedRun")
            .field("len", &self.len())
            .field("payload", &self.payload())
            .finish()
    }
}

/// A record found by [`PackedRun::find`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found<'a, const N: usize> {
    /// 0-based index of the record.
    pub index: usize,
    /// Its position (byte offset).
    pub pos: usize,
    pub items: [&'a [u8]; N],
}

/// Forward walk over records: (position, items).
#[derive(Clone)]
pub struct Records<'a, const N: usize> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a, const N: usize> Records<'a, N> {
    /// Position of the next record (the run's end once exhausted).
    pub fn pos(&self) -> usize {
        self.pos
    }
}

impl<'a, const N: usize> Iterator for Records<'a, N> {
    type Item = (usize, [&'a [u8]; N]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let at = self.pos;
        match record_at::<N>(self.buf, at) {
            Some((items, next)) => {
                self.pos = next;
                Some((at, items))
            }
            None => {
                self.pos = self.buf.len();
                None
            }
        }
    }
}

#[inline]
fn read_u32(buf: &[u8], at: usize) -> usize {
    u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize
}

impl<const N: usize> PackedRun<N> {
    pub fn new() -> Self {
        PackedRun {
            buf: Box::default(),
        }
    }

    /// Payload bytes in use (0 for an empty run, which has no buffer).
    #[inline]
    fn used(&self) -> usize {
        if self.buf.is_empty() {
            0
        } else {
            read_u32(&self.buf, 0)
        }
    }

    /// Records the payload length and record count in the header (the buffer exists).
    #[inline]
    fn set_header(&mut self, used: usize, len: usize) {
        debug_assert!(self.buf.len() >= HEADER + used);
        self.buf[..4].copy_from_slice(&(used as u32).to_le_bytes());
        self.buf[4..HEADER].copy_from_slice(&(len as u32).to_le_bytes());
    }

    /// The packed records.
    #[inline]
    fn payload(&self) -> &[u8] {
        let used = self.used();
        if used == 0 {
            &[]
        } else {
            &self.buf[HEADER..HEADER + used]
        }
    }

    /// Payload capacity (the buffer past its header).
    #[inline]
    fn capacity(&self) -> usize {
        self.buf.len().saturating_sub(HEADER)
    }

    /// Number of records.
    #[inline]
    pub fn len(&self) -> usize {
        if self.buf.is_empty() {
            0
        } else {
            read_u32(&self.buf, 4)
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Encoded bytes (the payload as packed).
    #[inline]
    pub fn byte_len(&self) -> usize {
        self.used()
    }

    /// Heap bytes owned: the buffer's malloc chunk (the buffer is sized to the chunk, so this
    /// is its length plus the chunk header).
    #[inline]
    pub fn mem_bytes(&self) -> usize {
        crate::alloc::chunk_size(self.buf.len())
    }

    /// The position just past the last record (where `push` appends).
    #[inline]
    pub fn end(&self) -> usize {
        self.used()
    }

    /// A human-readable layout of the run: its buffer, then every record with its position,
    /// size and items (each with its length prefix). For DEBUG LISTPACK, which prints it.
    pub fn repr(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{{total bytes {}}} {{header bytes {}}} {{payload bytes {}}} {{num entries {}}} {{items per entry {}}}",
            self.buf.len(),
            if self.buf.is_empty() { 0 } else { HEADER },
            self.used(),
            self.len(),
            N
        );
        out.push_str("{\n");
        for (index, (pos, items)) in self.iter().enumerate() {
            let end = self.record_at(pos).map_or(pos, |(_, next)| next);
            let _ = writeln!(
                out,
                "\t{{index {index}}} {{offset {pos}}} {{entry bytes {}}}",
                end - pos
            );
            for (i, item) in items.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "\t\t{{item {i}}} {{header bytes {}}} {{len {}}} \"{}\"",
                    varint_len(item.len() as u64),
                    item.len(),
                    item.escape_ascii()
                );
            }
        }
        out.push_str("}\n{end}\n");
        out
    }

    /// Every record, first to last.
    #[inline]
    pub fn iter(&self) -> Records<'_, N> {
        self.iter_from(0)
    }

    /// The records from position `pos` on.
    #[inline]
    pub fn iter_from(&self, pos: usize) -> Records<'_, N> {
        Records {
            buf: self.payload(),
            pos,
        }
    }

    /// The record at `pos` and the position after it.
    #[inline]
    pub fn record_at(&self, pos: usize) -> Option<([&[u8]; N], usize)> {
        record_at::<N>(self.payload(), pos)
    }

    /// Position of the `index`-th record (O(index)).
    pub fn position_of(&self, index: usize) -> Option<usize> {
        self.iter().nth(index).map(|(pos, _)| pos)
    }

    /// The `index`-th record (O(index)).
    pub fn get(&self, index: usize) -> Option<[&[u8]; N]> {
        self.iter().nth(index).map(|(_, items)| items)
    }

    /// Every record's position, in order (for backward walks and repeated random access).
    pub fn positions(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.len());
        out.extend(self.iter().map(|(pos, _)| pos));
        out
    }

    /// The first record `pred` accepts.
    #[inline]
    pub fn find(&self, mut pred: impl FnMut(&[&[u8]; N]) -> bool) -> Option<Found<'_, N>> {
        self.iter()
            .enumerate()
            .find(|(_, (_, items))| pred(items))
            .map(|(index, (pos, items))| Found { index, pos, items })
    }

    /// Resizes the buffer to `size` bytes (header included), keeping its start: one realloc.
    fn resize_buf(&mut self, size: usize) {
        let mut v = std::mem::take(&mut self.buf).into_vec();
        if size > v.len() {
            v.reserve_exact(size - v.len());
            v.resize(size, 0);
        } else {
            v.truncate(size);
        }
        // Exact capacity already when growing; shrinks the allocation when shrinking.
        self.buf = v.into_boxed_slice();
    }

    /// Makes room for `extra` more payload bytes, sized to the allocator's chunk for the new
    /// length and no more (like Redis's listpack, which reallocates on every write): a packed
    /// run exists to save memory, and every write to it is O(n) already, the copy of a
    /// reallocation included. Returns the payload length in use.
    fn reserve(&mut self, extra: usize) -> usize {
        let used = self.used();
        if self.capacity() - used < extra {
            let need = HEADER + used + extra;
            assert!(need - HEADER <= u32::MAX as usize, "packed run over 4 GiB");
            let was_empty = self.buf.is_empty();
            self.resize_buf(crate::alloc::usable_size(need));
            if was_empty {
                self.set_header(0, 0);
            }
        }
        used
    }

    /// Gives back spare capacity once a smaller allocator chunk would hold the payload, and the
    /// whole buffer once the run is empty.
    fn trim(&mut self) {
        let used = self.used();
        if used == 0 {
            self.buf = Box::default();
        } else if self.capacity() - used >= SHRINK_SLACK {
            self.resize_buf(crate::alloc::usable_size(HEADER + used));
        }
    }

    /// Appends a record.
    pub fn push(&mut self, items: [&[u8]; N]) {
        let n = encoded_len(&items);
        let used = self.reserve(n);
        let len = self.len();
        encode_into(&mut self.buf[HEADER + used..HEADER + used + n], &items);
        self.set_header(used + n, len + 1);
    }

    /// Inserts a record before the one at `pos` (at the end when `pos >= end()`).
    pub fn insert_at(&mut self, pos: usize, items: [&[u8]; N]) {
        let n = encoded_len(&items);
        let old = self.reserve(n);
        let len = self.len();
        let pos = pos.min(old);
        self.buf
            .copy_within(HEADER + pos..HEADER + old, HEADER + pos + n);
        encode_into(&mut self.buf[HEADER + pos..HEADER + pos + n], &items);
        self.set_header(old + n, len + 1);
    }

    /// Replaces the record at `pos`, keeping its place; false if there is no record there.
    pub fn replace_at(&mut self, pos: usize, items: [&[u8]; N]) -> bool {
        let Some((_, end)) = self.record_at(pos) else {
            return false;
        };
        let (old_n, new_n) = (end - pos, encoded_len(&items));
        let total = self.used();
        let len = self.len();
        if new_n > old_n {
            self.reserve(new_n - old_n);
        }
        self.buf
            .copy_within(HEADER + end..HEADER + total, HEADER + pos + new_n);
        encode_into(&mut self.buf[HEADER + pos..HEADER + pos + new_n], &items);
        self.set_header(total + new_n - old_n, len);
        if new_n < old_n {
            self.trim();
        }
        true
    }

    /// Removes up to `count` records starting with the one at `pos`; returns how many.
    pub fn remove_at(&mut self, pos: usize, count: usize) -> usize {
        let mut end = pos;
        let mut removed = 0;
        while removed < count {
            match self.record_at(end) {
                Some((_, next)) => {
                    end = next;
                    removed += 1;
                }
                None => break,
            }
        }
        if removed > 0 {
            let (used, len) = (self.used(), self.len());
            self.buf
                .copy_within(HEADER + end..HEADER + used, HEADER + pos);
            self.set_header(used - (end - pos), len - removed);
            self.trim();
        }
        removed
    }

    /// Keeps the records `keep` accepts (given their index and items), in order, in one pass.
    pub fn retain(&mut self, mut keep: impl FnMut(usize, [&[u8]; N]) -> bool) {
        if self.buf.is_empty() {
            return;
        }
        let used = self.used();
        let (mut read, mut write, mut index, mut kept) = (0, 0, 0, 0);
        let payload = &mut self.buf[HEADER..HEADER + used];
        while let Some((items, next)) = record_at::<N>(payload, read) {
            if keep(index, items) {
                if write != read {
                    payload.copy_within(read..next, write);
                }
                write += next - read;
                kept += 1;
            }
            read = next;
            index += 1;
        }
        self.set_header(write, kept);
        self.trim();
    }

    /// Removes every record and frees the buffer.
    pub fn clear(&mut self) {
        self.buf = Box::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn varints_round_trip_at_every_width() {
        let mut buf = [0u8; 10];
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16383,
            16384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let n = write_varint(&mut buf, v);
            assert_eq!(n, varint_len(v));
            assert_eq!(read_varint(&buf[..n], 0), Some((v, n)));
            // Cut short: no value, no panic.
            assert_eq!(read_varint(&buf[..n - 1], 0), None);
        }
        // Eleven continuation bytes do not fit in 64 bits.
        assert_eq!(read_varint(&[0xFF; 11], 0), None);
    }

    #[test]
    fn records_pack_back_to_back() {
        let mut r: PackedRun<2> = PackedRun::new();
        let long = vec![b'x'; 200]; // two-byte length
        r.push([b"f1", b"v1"]);
        r.push([b"", &long]);
        r.push([b"f3", b""]);
        assert_eq!(r.len(), 3);
        assert_eq!(r.byte_len(), (1 + 2 + 1 + 2) + (1 + 2 + 200) + (1 + 2 + 1));
        let all: Vec<[&[u8]; 2]> = r.iter().map(|(_, i)| i).collect();
        assert_eq!(all, [[&b"f1"[..], b"v1"], [b"", &long], [b"f3", b""]]);
        let f = r.find(|i| i[0] == b"f3").unwrap();
        assert_eq!((f.index, f.pos), (2, 6 + 203));
        assert_eq!(r.position_of(2), Some(f.pos));
        assert_eq!(r.positions(), [0, 6, 209]);
        assert_eq!(r.get(1), Some([&b""[..], &long]));
        assert!(r.find(|i| i[0] == b"zz").is_none());
        // Replace with longer, shorter and equal sizes keeps the place.
        assert!(r.replace_at(6, [b"mid", b"short"]));
        assert!(r.replace_at(0, [b"first-longer", b"v"]));
        let p = r.position_of(2).unwrap();
        assert!(r.replace_at(p, [b"f3", b"z"]));
        assert!(!r.replace_at(r.end(), [b"a", b"b"]));
        let all: Vec<[&[u8]; 2]> = r.iter().map(|(_, i)| i).collect();
        assert_eq!(
            all,
            [
                [&b"first-longer"[..], b"v"],
                [b"mid", b"short"],
                [b"f3", b"z"]
            ]
        );
        // Insert in the middle and at the end; remove a run.
        let p = r.position_of(1).unwrap();
        r.insert_at(p, [b"new", b"1"]);
        r.insert_at(usize::MAX, [b"last", b"2"]);
        let keys: Vec<&[u8]> = r.iter().map(|(_, i)| i[0]).collect();
        assert_eq!(keys, [&b"first-longer"[..], b"new", b"mid", b"f3", b"last"]);
        assert_eq!(r.remove_at(r.position_of(1).unwrap(), 2), 2);
        assert_eq!(r.remove_at(r.position_of(2).unwrap(), 10), 1);
        let keys: Vec<&[u8]> = r.iter().map(|(_, i)| i[0]).collect();
        assert_eq!(keys, [&b"first-longer"[..], b"f3"]);
        assert_eq!(r.len(), 2);
        r.clear();
        assert!(r.is_empty() && r.mem_bytes() == 0 && r.iter().next().is_none());
    }

    #[test]
    fn spare_capacity_stays_small() {
        let mut r: PackedRun<1> = PackedRun::new();
        for i in 0..1000u32 {
            r.push([format!("member:{i}").as_bytes()]);
            assert!(r.capacity() < r.byte_len() + SHRINK_SLACK);
        }
        r.retain(|i, _| i % 10 == 0);
        assert_eq!(r.len(), 100);
        assert!(r.capacity() < r.byte_len() + SHRINK_SLACK);
        while !r.is_empty() {
            r.remove_at(0, 1);
            assert!(r.capacity() < r.byte_len() + SHRINK_SLACK);
        }
        assert_eq!(r.mem_bytes(), 0);
    }

    #[test]
    fn bad_positions_are_harmless() {
        let mut r: PackedRun<1> = PackedRun::new();
        r.push([&[7u8; 130][..]]); // two-byte length: position 1 is mid-varint
        assert_eq!(r.remove_at(r.end(), 1), 0);
        assert!(r.record_at(500).is_none());
        assert!(r.iter_from(500).next().is_none());
        assert_eq!(r.len(), 1);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(Vec<u8>, Vec<u8>),
        Insert(usize, Vec<u8>, Vec<u8>),
        Replace(usize, Vec<u8>, Vec<u8>),
        Remove(usize, usize),
        Retain(u8),
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..6),
            proptest::collection::vec(any::<u8>(), 120..140),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (bytes(), bytes()).prop_map(|(a, b)| Op::Push(a, b)),
            2 => (any::<usize>(), bytes(), bytes()).prop_map(|(i, a, b)| Op::Insert(i, a, b)),
            2 => (any::<usize>(), bytes(), bytes()).prop_map(|(i, a, b)| Op::Replace(i, a, b)),
            2 => (any::<usize>(), 0usize..4).prop_map(|(i, n)| Op::Remove(i, n)),
            1 => any::<u8>().prop_map(Op::Retain),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Against a Vec of pairs: every operation, then the whole content, the positions and
        /// lookups by index and by predicate.
        #[test]
        fn model_check(ops in proptest::collection::vec(op(), 1..120)) {
            let mut run: PackedRun<2> = PackedRun::new();
            let mut model: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            for op in ops {
                match op {
                    Op::Push(a, b) => {
                        run.push([&a, &b]);
                        model.push((a, b));
                    }
                    Op::Insert(i, a, b) => {
                        let i = i % (model.len() + 1);
                        let pos = run.position_of(i).unwrap_or(run.end());
                        run.insert_at(pos, [&a, &b]);
                        model.insert(i, (a, b));
                    }
                    Op::Replace(i, a, b) => {
                        if model.is_empty() {
                            prop_assert!(!run.replace_at(0, [&a, &b]));
                            continue;
                        }
                        let i = i % model.len();
                        let pos = run.position_of(i).unwrap();
                        prop_assert!(run.replace_at(pos, [&a, &b]));
                        model[i] = (a, b);
                    }
                    Op::Remove(i, n) => {
                        let i = i % (model.len() + 1);
                        let pos = run.position_of(i).unwrap_or(run.end());
                        let want = n.min(model.len() - i);
                        prop_assert_eq!(run.remove_at(pos, n), want);
                        model.drain(i..i + want);
                    }
                    Op::Retain(m) => {
                        let m = (m % 4) as usize + 1;
                        run.retain(|i, _| i % m != 0);
                        let mut i = 0;
                        model.retain(|_| {
                            i += 1;
                            (i - 1) % m != 0
                        });
                    }
                }
                prop_assert_eq!(run.len(), model.len());
                let got: Vec<(Vec<u8>, Vec<u8>)> =
                    run.iter().map(|(_, [a, b])| (a.to_vec(), b.to_vec())).collect();
                prop_assert_eq!(&got, &model);
                let expected_bytes: usize = model
                    .iter()
                    .map(|(a, b)| {
                        varint_len(a.len() as u64) + a.len() + varint_len(b.len() as u64) + b.len()
                    })
                    .sum();
                prop_assert_eq!(run.byte_len(), expected_bytes);
                prop_assert!(run.capacity() < run.byte_len() + SHRINK_SLACK);
            }
            let positions = run.positions();
            prop_assert_eq!(positions.len(), model.len());
            for (i, (a, b)) in model.iter().enumerate() {
                let (items, _) = run.record_at(positions[i]).unwrap();
                prop_assert_eq!(items, [&a[..], &b[..]]);
                let f = run.find(|it| it[0] == &a[..]).unwrap();
                let first = model.iter().position(|(x, _)| x == a).unwrap();
                prop_assert_eq!(f.index, first);
                prop_assert_eq!(f.pos, positions[first]);
            }
        }
    }
}

//! The set value with Redis 7.2's three encodings.
//!
//! * `intset`: sorted, packed integers (16-, 32- or 64-bit wide, upgraded as a wider value
//!   arrives and never narrowed, like Redis's `intset.c`), searched by bisection. A set starts
//!   as an intset when its first member is a canonical decimal integer.
//! * `listpack`: small string sets, members packed back to back in insertion order (a varint
//!   length, then the bytes), searched linearly. At most `set-max-listpack-entries` members of
//!   at most `set-max-listpack-value` bytes.
//! * `hashtable`: the keyspace's [`Dict`] (incremental rehash, reverse-binary SSCAN cursor).
//!
//! Conversions follow Redis 7.2: an intset becomes a listpack when a non-integer arrives and the
//! listpack limits allow it (a hashtable otherwise), and a hashtable once it holds more than
//! `set-max-intset-entries` integers; a listpack becomes a hashtable past its limits. Nothing
//! ever converts back. Redis 7.0 has no listpack sets (an intset goes straight to a hashtable);
//! the listpack is kept deliberately for memory, and is the only observable difference (OBJECT
//! ENCODING of small string sets, and their iteration order).
//!
//! This module only stores data: it never parses arguments, writes replies or reads the config
//! (limits are passed in by the caller).

use std::collections::HashSet;

use bytes::Bytes;
use rand::seq::index;
use rand::Rng;

use super::dict::Dict;
use super::key::Key;
use super::packed::{PackedRun, Records};
use crate::commands::args::parse_i64;

/// The conversion thresholds (`set-max-intset-entries`, `set-max-listpack-entries`,
/// `set-max-listpack-value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetLimits {
    pub max_intset_entries: usize,
    pub max_listpack_entries: usize,
    pub max_listpack_value: usize,
}

impl Default for SetLimits {
    /// Redis 7.2's defaults.
    fn default() -> Self {
        SetLimits {
            max_intset_entries: 512,
            max_listpack_entries: 128,
            max_listpack_value: 64,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// intset
// ---------------------------------------------------------------------------------------------

/// Sorted distinct integers stored at the narrowest width that fits all of them (like Redis's
/// intset, which never narrows again after a removal). A small set lives inline in the value
/// (up to 11 16-bit, 5 32-bit or 2 64-bit elements: the room of the three words the boxed form
/// takes anyway), a bigger one in one exact-size allocation that each change replaces (each
/// change is O(n) anyway, as Redis reallocates too). Always in the inline form when it fits, so
/// equal sets have equal representations.
#[derive(Clone)]
pub enum IntSet {
    I16 { len: u8, vals: [i16; INLINE16] },
    I32 { len: u8, vals: [i32; INLINE32] },
    I64 { len: u8, vals: [i64; INLINE64] },
    W16(Box<[i16]>),
    W32(Box<[i32]>),
    W64(Box<[i64]>),
}

const INLINE16: usize = 11;
const INLINE32: usize = 5;
const INLINE64: usize = 2;

/// The elements of an [`IntSet`] at their stored width.
#[derive(Clone, Copy)]
enum Ints<'a> {
    W16(&'a [i16]),
    W32(&'a [i32]),
    W64(&'a [i64]),
}

/// An element type of an intset: packs a sorted slice into the right representation.
trait IntWidth: Copy + Ord + Into<i64> + TryFrom<i64> {
    fn pack(vals: &[Self]) -> IntSet;
}

macro_rules! int_width {
    ($t:ty, $inline:ident, $boxed:ident, $max:expr) => {
        impl IntWidth for $t {
            fn pack(vals: &[$t]) -> IntSet {
                if vals.len() <= $max {
                    let mut buf = [0; $max];
                    buf[..vals.len()].copy_from_slice(vals);
                    IntSet::$inline {
                        len: vals.len() as u8,
                        vals: buf,
                    }
                } else {
                    IntSet::$boxed(vals.into())
                }
            }
        }
    };
}
int_width!(i16, I16, W16, INLINE16);
int_width!(i32, I32, W32, INLINE32);
int_width!(i64, I64, W64, INLINE64);

/// Bytes per element needed to store `v`.
fn width_of(v: i64) -> usize {
    if i16::try_from(v).is_ok() {
        2
    } else if i32::try_from(v).is_ok() {
        4
    } else {
        8
    }
}

/// `a` with `x` added in order, or None if it is there already.
fn insert_sorted<T: IntWidth>(a: &[T], x: T) -> Option<IntSet> {
    let pos = a.binary_search(&x).err()?;
    let mut v = Vec::with_capacity(a.len() + 1);
    v.extend_from_slice(&a[..pos]);
    v.push(x);
    v.extend_from_slice(&a[pos..]);
    Some(T::pack(&v))
}

/// `a` without `x`, or None if it is not there.
fn remove_sorted<T: IntWidth>(a: &[T], x: T) -> Option<IntSet> {
    let pos = a.binary_search(&x).ok()?;
    let mut v = Vec::with_capacity(a.len() - 1);
    v.extend_from_slice(&a[..pos]);
    v.extend_from_slice(&a[pos + 1..]);
    Some(T::pack(&v))
}

/// The elements whose index is not marked in `drop`.
fn retain_unmarked<T: IntWidth>(a: &[T], drop: &[bool]) -> IntSet {
    let kept: Vec<T> = a
        .iter()
        .zip(drop)
        .filter(|(_, &d)| !d)
        .map(|(&x, _)| x)
        .collect();
    T::pack(&kept)
}

/// Converts every element to `T` (the caller checked that they fit).
fn narrow<T: IntWidth>(vals: &[i64]) -> IntSet {
    let v: Vec<T> = vals.iter().filter_map(|&x| T::try_from(x).ok()).collect();
    T::pack(&v)
}

impl Default for IntSet {
    fn default() -> Self {
        IntSet::new()
    }
}

impl PartialEq for IntSet {
    /// Same width and the same elements.
    fn eq(&self, other: &Self) -> bool {
        self.width() == other.width() && self.iter().eq(other.iter())
    }
}

impl Eq for IntSet {}

impl std::fmt::Debug for IntSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IntSet{}", self.width() * 8)?;
        f.debug_list().entries(self.iter()).finish()
    }
}

impl IntSet {
    pub fn new() -> IntSet {
        i16::pack(&[])
    }

    /// An intset of `width` bytes per element (2, 4 or anything else for 8) holding `vals`,
    /// which must be sorted, distinct and fit the width (as a loaded RDB intset is).
    pub fn from_sorted(width: usize, vals: &[i64]) -> IntSet {
        match width {
            2 => narrow::<i16>(vals),
            4 => narrow::<i32>(vals),
            _ => i64::pack(vals),
        }
    }

    #[inline]
    fn ints(&self) -> Ints<'_> {
        match self {
            IntSet::I16 { len, vals } => Ints::W16(&vals[..*len as usize]),
            IntSet::I32 { len, vals } => Ints::W32(&vals[..*len as usize]),
            IntSet::I64 { len, vals } => Ints::W64(&vals[..*len as usize]),
            IntSet::W16(a) => Ints::W16(a),
            IntSet::W32(a) => Ints::W32(a),
            IntSet::W64(a) => Ints::W64(a),
        }
    }

    pub fn len(&self) -> usize {
        match self.ints() {
            Ints::W16(a) => a.len(),
            Ints::W32(a) => a.len(),
            Ints::W64(a) => a.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per element of the current encoding.
    pub fn width(&self) -> usize {
        match self.ints() {
            Ints::W16(_) => 2,
            Ints::W32(_) => 4,
            Ints::W64(_) => 8,
        }
    }

    pub fn get(&self, i: usize) -> Option<i64> {
        match self.ints() {
            Ints::W16(a) => a.get(i).map(|&x| x as i64),
            Ints::W32(a) => a.get(i).map(|&x| x as i64),
            Ints::W64(a) => a.get(i).copied(),
        }
    }

    pub fn contains(&self, v: i64) -> bool {
        match self.ints() {
            Ints::W16(a) => i16::try_from(v).is_ok_and(|x| a.binary_search(&x).is_ok()),
            Ints::W32(a) => i32::try_from(v).is_ok_and(|x| a.binary_search(&x).is_ok()),
            Ints::W64(a) => a.binary_search(&v).is_ok(),
        }
    }

    /// Re-encodes every element at `width` bytes (only ever wider).
    fn upgrade(&mut self, width: usize) {
        let all: Vec<i64> = self.iter().collect();
        *self = IntSet::from_sorted(width, &all);
    }

    /// Replaces the set with `new` if there is one; whether it changed.
    fn replace(&mut self, new: Option<IntSet>) -> bool {
        match new {
            Some(n) => {
                *self = n;
                true
            }
            None => false,
        }
    }

    /// Adds `v`; false if it was already there.
    pub fn insert(&mut self, v: i64) -> bool {
        let w = width_of(v);
        if w > self.width() {
            // A value that needs a wider encoding is outside the current range, so it is new.
            self.upgrade(w);
        }
        let new = match self.ints() {
            Ints::W16(a) => insert_sorted(a, v as i16),
            Ints::W32(a) => insert_sorted(a, v as i32),
            Ints::W64(a) => insert_sorted(a, v),
        };
        self.replace(new)
    }

    pub fn remove(&mut self, v: i64) -> bool {
        let new = match self.ints() {
            Ints::W16(a) => i16::try_from(v).ok().and_then(|x| remove_sorted(a, x)),
            Ints::W32(a) => i32::try_from(v).ok().and_then(|x| remove_sorted(a, x)),
            Ints::W64(a) => remove_sorted(a, v),
        };
        self.replace(new)
    }

    fn retain_unmarked(&mut self, drop: &[bool]) {
        *self = match self.ints() {
            Ints::W16(a) => retain_unmarked(a, drop),
            Ints::W32(a) => retain_unmarked(a, drop),
            Ints::W64(a) => retain_unmarked(a, drop),
        };
    }

    pub fn min(&self) -> Option<i64> {
        self.get(0)
    }

    pub fn max(&self) -> Option<i64> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// The elements in ascending order.
    pub fn iter(&self) -> IntSetIter<'_> {
        match self.ints() {
            Ints::W16(a) => IntSetIter::W16(a.iter()),
            Ints::W32(a) => IntSetIter::W32(a.iter()),
            Ints::W64(a) => IntSetIter::W64(a.iter()),
        }
    }

    /// Heap bytes: none when inline, else the allocation (whole malloc chunk).
    pub fn mem_bytes(&self) -> usize {
        match self {
            IntSet::I16 { .. } | IntSet::I32 { .. } | IntSet::I64 { .. } => 0,
            _ => crate::alloc::chunk_size(self.len() * self.width()),
        }
    }
}

pub enum IntSetIter<'a> {
    W16(std::slice::Iter<'a, i16>),
    W32(std::slice::Iter<'a, i32>),
    W64(std::slice::Iter<'a, i64>),
}

impl Iterator for IntSetIter<'_> {
    type Item = i64;

    fn next(&mut self) -> Option<i64> {
        match self {
            IntSetIter::W16(it) => it.next().map(|&x| x as i64),
            IntSetIter::W32(it) => it.next().map(|&x| x as i64),
            IntSetIter::W64(it) => it.next().copied(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// listpack
// ---------------------------------------------------------------------------------------------

/// Members in insertion order, packed as one-item records of a [`PackedRun`] (a LEB128
/// length, then the bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listpack {
    run: PackedRun<1>,
}

/// A listpack's members in insertion order.
pub struct ListpackIter<'a> {
    records: Records<'a, 1>,
}

impl<'a> Iterator for ListpackIter<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        self.records.next().map(|(_, [m])| m)
    }
}

impl Listpack {
    pub fn new() -> Listpack {
        Listpack::default()
    }

    pub fn len(&self) -> usize {
        self.run.len()
    }

    pub fn is_empty(&self) -> bool {
        self.run.is_empty()
    }

    pub fn iter(&self) -> ListpackIter<'_> {
        ListpackIter {
            records: self.run.iter(),
        }
    }

    /// The members as slices, for random access.
    fn slices(&self) -> Vec<&[u8]> {
        self.iter().collect()
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        self.run.find(|[x]| *x == m).is_some()
    }

    /// Appends `m`; the caller has checked that it is absent.
    pub fn push(&mut self, m: &[u8]) {
        self.run.push([m]);
    }

    /// Removes `m`, keeping the others in order.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self.run.find(|[x]| *x == m).map(|f| f.pos) {
            Some(pos) => self.run.remove_at(pos, 1) == 1,
            None => false,
        }
    }

    /// The `i`-th member (O(i)).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.run.get(i).map(|[m]| m)
    }

    /// Removes the `i`-th member and returns it.
    fn remove_at(&mut self, i: usize) -> Option<Bytes> {
        let pos = self.run.position_of(i)?;
        let [m] = self.run.record_at(pos)?.0;
        let out = Bytes::copy_from_slice(m);
        self.run.remove_at(pos, 1);
        Some(out)
    }

    /// Removes the members whose index is marked in `drop`, in one pass.
    fn retain_unmarked(&mut self, drop: &[bool]) {
        self.run
            .retain(|i, _| !drop.get(i).copied().unwrap_or(false));
    }

    pub fn mem_bytes(&self) -> usize {
        self.run.mem_bytes()
    }
}

// ---------------------------------------------------------------------------------------------
// hashtable
// ---------------------------------------------------------------------------------------------

/// A [`Dict`] of members, with the member bytes counted as they come and go. Members are
/// [`Key`]s, inline in the table node up to 22 bytes, for the reason the hash table's fields are
/// (see `FieldTable`): no pointer chase to compare a member, no allocation to add a short one.
#[derive(Default)]
pub struct SetTable {
    dict: Dict<(), Key>,
    /// Sum of the members' lengths.
    member_bytes: usize,
    /// Heap bytes of the members too long to be inline.
    heap_bytes: usize,
}

impl SetTable {
    pub fn len(&self) -> usize {
        self.dict.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dict.is_empty()
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        self.dict.contains_key(m)
    }

    pub fn insert(&mut self, m: &[u8]) -> bool {
        if self.dict.contains_key(m) {
            return false;
        }
        self.insert_new(Key::new(m));
        true
    }

    /// Adds a member known to be absent.
    fn insert_new(&mut self, m: Key) {
        self.member_bytes += m.len();
        self.heap_bytes += Key::heap_bytes(m.len());
        self.dict.insert(m, ());
    }

    pub fn remove(&mut self, m: &[u8]) -> Option<Key> {
        let (k, ()) = self.dict.remove(m)?;
        self.member_bytes -= k.len();
        self.heap_bytes -= Key::heap_bytes(k.len());
        Some(k)
    }

    pub fn iter(&self) -> super::dict::Iter<'_, (), Key> {
        self.dict.iter()
    }

    pub fn mem_bytes(&self) -> usize {
        self.dict.table_overhead_bytes() + self.heap_bytes
    }
}

// ---------------------------------------------------------------------------------------------
// the set value
// ---------------------------------------------------------------------------------------------

/// One member as stored: intsets hold numbers, which are formatted only when needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Member<'_> {
    /// Calls `f` with the member's bytes without allocating.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Member::Int(n) => f(itoa::Buffer::new().format(*n).as_bytes()),
            Member::Str(s) => f(s),
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        self.with_bytes(Bytes::copy_from_slice)
    }

    pub fn to_item(&self) -> Item {
        match self {
            Member::Int(n) => Item::Int(*n),
            Member::Str(s) => Item::Bytes(Bytes::copy_from_slice(s)),
        }
    }
}

/// An owned member, as popped from a set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Int(i64),
    Bytes(Bytes),
}

impl Item {
    pub fn as_member(&self) -> Member<'_> {
        match self {
            Item::Int(n) => Member::Int(*n),
            Item::Bytes(b) => Member::Str(b),
        }
    }
}

/// A set value in one of its three encodings.
pub enum SetValue {
    /// Three words, inline: its tag gives `SetValue` its own (the other encodings fit beside it),
    /// so that `SetValue` is three words and every keyspace `Value` four.
    Intset(IntSet),
    Listpack(Listpack),
    Table(Box<SetTable>),
}

impl Clone for SetValue {
    fn clone(&self) -> Self {
        match self {
            SetValue::Intset(i) => SetValue::Intset(i.clone()),
            SetValue::Listpack(l) => SetValue::Listpack(l.clone()),
            SetValue::Table(t) => {
                let mut n = SetTable::default();
                for (k, ()) in t.iter() {
                    n.insert_new(k.clone());
                }
                SetValue::Table(Box::new(n))
            }
        }
    }
}

impl PartialEq for SetValue {
    /// Same encoding and same members (a listpack's order matters, as it is observable).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SetValue::Intset(a), SetValue::Intset(b)) => a == b,
            (SetValue::Listpack(a), SetValue::Listpack(b)) => a == b,
            (SetValue::Table(a), SetValue::Table(b)) => {
                a.len() == b.len() && a.iter().all(|(k, _)| b.contains(k))
            }
            _ => false,
        }
    }
}

impl std::fmt::Debug for SetValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.encoding())?;
        f.debug_set()
            .entries(self.iter().map(|m| m.to_bytes()))
            .finish()
    }
}

/// A set's members in the encoding's order (ascending for an intset, insertion order for a
/// listpack, table order for a hashtable).
pub enum SetIter<'a> {
    Intset(IntSetIter<'a>),
    Listpack(ListpackIter<'a>),
    Table(super::dict::Iter<'a, (), Key>),
}

impl<'a> Iterator for SetIter<'a> {
    type Item = Member<'a>;

    fn next(&mut self) -> Option<Member<'a>> {
        match self {
            SetIter::Intset(it) => it.next().map(Member::Int),
            SetIter::Listpack(it) => it.next().map(Member::Str),
            SetIter::Table(it) => it.next().map(|(k, _)| Member::Str(&k[..])),
        }
    }
}

/// Redis's `sdigits10`: characters needed to print `v` (sign included).
fn digits(v: i64) -> usize {
    itoa::Buffer::new().format(v).len()
}

impl SetValue {
    /// An empty intset: where Redis starts the result of SINTERSTORE, SUNIONSTORE, SDIFFSTORE.
    pub fn new() -> SetValue {
        SetValue::Intset(IntSet::default())
    }

    /// The empty set a write creates for `first` (Redis's `setTypeCreate`): an intset when the
    /// first member is an integer (as in Redis 7.0, whatever the number of members to come), a
    /// listpack when the `size_hint` members may fit one, a hashtable otherwise.
    pub fn new_for(first: &[u8], size_hint: usize, lim: SetLimits) -> SetValue {
        if parse_i64(first).is_some() {
            SetValue::new()
        } else if size_hint <= lim.max_listpack_entries {
            SetValue::Listpack(Listpack::new())
        } else {
            SetValue::Table(Box::default())
        }
    }

    /// A set holding `items`, created for the first one and filled in order, so it gets the
    /// encoding the same sequence of SADDs would give it.
    pub fn from_items(items: &[Item], lim: SetLimits) -> SetValue {
        let mut s = match items.first() {
            Some(Item::Int(_)) | None => SetValue::new(),
            Some(Item::Bytes(b)) => SetValue::new_for(b, items.len(), lim),
        };
        for it in items {
            s.insert_member(it.as_member(), lim);
        }
        s
    }

    pub fn len(&self) -> usize {
        match self {
            SetValue::Intset(i) => i.len(),
            SetValue::Listpack(l) => l.len(),
            SetValue::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            SetValue::Intset(_) => "intset",
            SetValue::Listpack(_) => "listpack",
            SetValue::Table(_) => "hashtable",
        }
    }

    /// The member table's statistics (DEBUG HTSTATS-KEY); None for the packed encodings.
    pub fn table_stats(&self) -> Option<super::dict::DictStats> {
        match self {
            SetValue::Table(t) => Some(t.dict.stats()),
            _ => None,
        }
    }

    /// The listpack's layout, for DEBUG LISTPACK; None for the other encodings.
    pub fn listpack_repr(&self) -> Option<String> {
        match self {
            SetValue::Listpack(l) => Some(l.run.repr()),
            _ => None,
        }
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            // Only canonical integers can be in an intset ("01" is not "1").
            SetValue::Intset(i) => parse_i64(m).is_some_and(|v| i.contains(v)),
            SetValue::Listpack(l) => l.contains(m),
            SetValue::Table(t) => t.contains(m),
        }
    }

    /// Membership of a member of another set, without formatting integers for intsets.
    pub fn contains_member(&self, m: Member) -> bool {
        match (self, m) {
            (SetValue::Intset(i), Member::Int(v)) => i.contains(v),
            (_, m) => m.with_bytes(|b| self.contains(b)),
        }
    }

    /// Switches to the hashtable encoding (no-op for a table).
    pub fn convert_to_table(&mut self) {
        if matches!(self, SetValue::Table(_)) {
            return;
        }
        let mut t = SetTable::default();
        for m in self.iter() {
            t.insert_new(m.with_bytes(Key::new));
        }
        *self = SetValue::Table(Box::new(t));
    }

    /// An intset turned into a listpack (ascending order), for a first non-integer member.
    fn intset_to_listpack(&mut self) {
        if let SetValue::Intset(i) = self {
            let mut l = Listpack::new();
            for v in i.iter() {
                l.push(itoa::Buffer::new().format(v).as_bytes());
            }
            *self = SetValue::Listpack(l);
        }
    }

    /// Adds `m`; returns true if it is new. Converts as Redis 7.2's `setTypeAdd` does.
    pub fn insert(&mut self, m: &[u8], lim: SetLimits) -> bool {
        match self {
            SetValue::Intset(i) => {
                if let Some(v) = parse_i64(m) {
                    if !i.insert(v) {
                        return false;
                    }
                    if i.len() > lim.max_intset_entries {
                        self.convert_to_table();
                    }
                    return true;
                }
                // The intset's members would become strings of up to this many bytes.
                let widest = match (i.min(), i.max()) {
                    (Some(lo), Some(hi)) => digits(lo).max(digits(hi)),
                    _ => 0,
                };
                if i.len() < lim.max_listpack_entries
                    && m.len() <= lim.max_listpack_value
                    && widest <= lim.max_listpack_value
                {
                    self.intset_to_listpack();
                } else {
                    self.convert_to_table();
                }
                self.insert(m, lim)
            }
            SetValue::Listpack(l) => {
                if l.contains(m) {
                    return false;
                }
                if l.len() < lim.max_listpack_entries && m.len() <= lim.max_listpack_value {
                    l.push(m);
                } else {
                    self.convert_to_table();
                    if let SetValue::Table(t) = self {
                        t.insert_new(Key::new(m));
                    }
                }
                true
            }
            SetValue::Table(t) => t.insert(m),
        }
    }

    /// [`SetValue::insert`] for a member taken from another set.
    pub fn insert_member(&mut self, m: Member, lim: SetLimits) -> bool {
        match (&mut *self, m) {
            (SetValue::Intset(i), Member::Int(v)) => {
                if !i.insert(v) {
                    return false;
                }
                if i.len() > lim.max_intset_entries {
                    self.convert_to_table();
                }
                true
            }
            (_, m) => m.with_bytes(|b| self.insert(b, lim)),
        }
    }

    /// Removes `m`; returns true if it was present. Never changes the encoding.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            SetValue::Intset(i) => parse_i64(m).is_some_and(|v| i.remove(v)),
            SetValue::Listpack(l) => l.remove(m),
            SetValue::Table(t) => t.remove(m).is_some(),
        }
    }

    /// [`SetValue::remove`] for a member taken from another set.
    pub fn remove_member(&mut self, m: Member) -> bool {
        match (&mut *self, m) {
            (SetValue::Intset(i), Member::Int(v)) => i.remove(v),
            (_, m) => m.with_bytes(|b| self.remove(b)),
        }
    }

    pub fn iter(&self) -> SetIter<'_> {
        match self {
            SetValue::Intset(i) => SetIter::Intset(i.iter()),
            SetValue::Listpack(l) => SetIter::Listpack(l.iter()),
            SetValue::Table(t) => SetIter::Table(t.iter()),
        }
    }

    /// A uniformly random member for the packed encodings, a roughly uniform one (a random
    /// bucket, then a random chain element, as Redis does) for a table. None when empty.
    pub fn random_member(&self, rng: &mut impl Rng) -> Option<Member<'_>> {
        if self.is_empty() {
            return None;
        }
        match self {
            SetValue::Intset(i) => i.get(rng.gen_range(0..i.len())).map(Member::Int),
            SetValue::Listpack(l) => l.get(rng.gen_range(0..l.len())).map(Member::Str),
            SetValue::Table(t) => t.dict.random_entry(rng).map(|(k, _)| Member::Str(&k[..])),
        }
    }

    /// Calls `f` with `count` random members, each drawn from the whole set (repeats allowed:
    /// SRANDMEMBER with a negative count). Nothing when empty.
    pub fn random_with_repeats(&self, rng: &mut impl Rng, count: usize, mut f: impl FnMut(Member)) {
        if self.is_empty() {
            return;
        }
        match self {
            SetValue::Intset(i) => {
                for _ in 0..count {
                    if let Some(v) = i.get(rng.gen_range(0..i.len())) {
                        f(Member::Int(v));
                    }
                }
            }
            SetValue::Listpack(l) => {
                let all = l.slices();
                for _ in 0..count {
                    f(Member::Str(all[rng.gen_range(0..all.len())]));
                }
            }
            SetValue::Table(t) => {
                for _ in 0..count {
                    if let Some((k, _)) = t.dict.random_entry(rng) {
                        f(Member::Str(k));
                    }
                }
            }
        }
    }

    /// Calls `f` with `count` distinct random members in random order (all of them, in set
    /// order, when `count >= len`). O(count): a table is sampled directly unless `count` is
    /// close to its size (then a copy is shuffled, which is still O(count)).
    pub fn random_distinct(&self, rng: &mut impl Rng, count: usize, mut f: impl FnMut(Member)) {
        let len = self.len();
        if count >= len {
            self.iter().for_each(f);
            return;
        }
        match self {
            SetValue::Intset(i) => {
                for idx in index::sample(rng, len, count) {
                    if let Some(v) = i.get(idx) {
                        f(Member::Int(v));
                    }
                }
            }
            SetValue::Listpack(l) => {
                let all = l.slices();
                for idx in index::sample(rng, len, count) {
                    f(Member::Str(all[idx]));
                }
            }
            SetValue::Table(t) => {
                if count.saturating_mul(3) > len {
                    let mut all: Vec<&Key> = t.iter().map(|(k, _)| k).collect();
                    for i in 0..count {
                        let j = rng.gen_range(i..all.len());
                        all.swap(i, j);
                        f(Member::Str(all[i]));
                    }
                } else {
                    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(count);
                    while seen.len() < count {
                        if let Some((k, _)) = t.dict.random_entry(rng) {
                            if seen.insert(&k[..]) {
                                f(Member::Str(k));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Removes and returns one random member.
    pub fn pop_random(&mut self, rng: &mut impl Rng) -> Option<Item> {
        if self.is_empty() {
            return None;
        }
        match self {
            SetValue::Intset(i) => {
                let v = i.get(rng.gen_range(0..i.len()))?;
                i.remove(v);
                Some(Item::Int(v))
            }
            SetValue::Listpack(l) => {
                let idx = rng.gen_range(0..l.len());
                l.remove_at(idx).map(Item::Bytes)
            }
            SetValue::Table(t) => {
                let k = t.dict.random_entry(rng).map(|(k, _)| k.clone())?;
                t.remove(&k)
                    .map(|k| Item::Bytes(Bytes::copy_from_slice(&k)))
            }
        }
    }

    /// Removes `count` random members (`count < len`) and returns them. When few members stay
    /// (at most a fifth of those popped, Redis's SPOP threshold) the survivors are moved into a
    /// fresh set instead, which gets the encoding a new set of them would get, as in Redis.
    pub fn pop_many(&mut self, rng: &mut impl Rng, count: usize, lim: SetLimits) -> Vec<Item> {
        let len = self.len();
        if count >= len {
            let all: Vec<Item> = self.iter().map(|m| m.to_item()).collect();
            *self = SetValue::new();
            return all;
        }
        let remaining = len - count;
        if remaining.saturating_mul(5) <= count {
            // Few survivors: shuffle the survivors to the front, rebuild from them.
            let mut all: Vec<Item> = self.iter().map(|m| m.to_item()).collect();
            for i in 0..remaining {
                let j = rng.gen_range(i..all.len());
                all.swap(i, j);
            }
            let popped = all.split_off(remaining);
            *self = SetValue::from_items(&all, lim);
            return popped;
        }
        match self {
            SetValue::Intset(i) => {
                let mut drop = vec![false; len];
                let mut out = Vec::with_capacity(count);
                for idx in index::sample(rng, len, count) {
                    drop[idx] = true;
                    if let Some(v) = i.get(idx) {
                        out.push(Item::Int(v));
                    }
                }
                i.retain_unmarked(&drop);
                out
            }
            SetValue::Listpack(l) => {
                let mut drop = vec![false; len];
                let mut out = Vec::with_capacity(count);
                {
                    let all = l.slices();
                    for idx in index::sample(rng, len, count) {
                        drop[idx] = true;
                        out.push(Item::Bytes(Bytes::copy_from_slice(all[idx])));
                    }
                }
                l.retain_unmarked(&drop);
                out
            }
            SetValue::Table(_) => (0..count).filter_map(|_| self.pop_random(rng)).collect(),
        }
    }

    /// One SSCAN step: the packed encodings report everything and return cursor 0; a table
    /// reports the bucket(s) at `cursor` and returns the next cursor.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(Member)) -> u64 {
        match self {
            SetValue::Table(t) => t.dict.scan(cursor, |k, _| f(Member::Str(k))),
            _ => {
                self.iter().for_each(f);
                0
            }
        }
    }

    /// Approximate heap bytes owned by the value.
    pub fn mem_bytes(&self) -> usize {
        match self {
            SetValue::Intset(i) => i.mem_bytes(),
            SetValue::Listpack(l) => l.mem_bytes(),
            SetValue::Table(t) => std::mem::size_of::<SetTable>() + t.mem_bytes(),
        }
    }

    /// How many allocations dropping the set frees (Redis's lazy-free "effort").
    pub fn free_effort(&self) -> usize {
        match self {
            SetValue::Table(t) => t.len(),
            _ => 1,
        }
    }

    /// Frees up to about `budget` members; true once nothing is left. For lazy freeing: the
    /// value must not be used for anything but further calls and dropping afterwards.
    pub fn free_some(&mut self, budget: usize) -> bool {
        match self {
            SetValue::Table(t) => {
                t.dict.drain_some(budget, |_, _| {});
                t.member_bytes = 0;
                t.heap_bytes = 0;
                t.dict.is_empty()
            }
            _ => true,
        }
    }

    /// Bytes of all members as strings (a rough serialized size, for DEBUG OBJECT).
    pub fn payload_len(&self) -> usize {
        match self {
            SetValue::Intset(i) => i.iter().map(digits).sum(),
            SetValue::Listpack(l) => l.iter().map(|m| m.len()).sum(),
            SetValue::Table(t) => t.member_bytes,
        }
    }
}

impl Default for SetValue {
    fn default() -> Self {
        SetValue::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use std::collections::BTreeSet;

    fn lim(i: usize, e: usize, v: usize) -> SetLimits {
        SetLimits {
            max_intset_entries: i,
            max_listpack_entries: e,
            max_listpack_value: v,
        }
    }

    fn members(s: &SetValue) -> Vec<Vec<u8>> {
        s.iter().map(|m| m.to_bytes().to_vec()).collect()
    }

    fn sorted(s: &SetValue) -> BTreeSet<Vec<u8>> {
        members(s).into_iter().collect()
    }

    #[test]
    fn values_can_move_between_shards() {
        fn assert_send<T: Send>() {}
        assert_send::<SetValue>();
        assert_send::<crate::types::Value>();
    }

    #[test]
    fn small_intsets_live_inline_and_move_out_and_back() {
        assert_eq!(std::mem::size_of::<IntSet>(), 24);
        let mut i = IntSet::new();
        for v in 0..11 {
            assert!(i.insert(v * 7 - 30));
        }
        assert!(matches!(i, IntSet::I16 { len: 11, .. }));
        assert_eq!(i.mem_bytes(), 0);
        assert!(i.insert(1000));
        assert!(matches!(i, IntSet::W16(_)));
        assert_eq!(i.mem_bytes(), crate::alloc::chunk_size(24));
        assert!(i.remove(1000));
        assert!(matches!(i, IntSet::I16 { len: 11, .. }));
        // Equal sets compare equal whatever path built them; the width is part of the value.
        let mut j = IntSet::new();
        for v in (0..11).rev() {
            j.insert(v * 7 - 30);
        }
        assert_eq!(i, j);
        assert!(!i.insert(40) && !i.remove(6));
        // 32-bit: five inline, then boxed; never narrower again after removals (like Redis).
        let mut w = IntSet::new();
        w.insert(1);
        w.insert(100_000);
        assert!(matches!(w, IntSet::I32 { len: 2, .. }));
        for v in 2..5 {
            w.insert(v);
        }
        assert!(matches!(w, IntSet::I32 { len: 5, .. }));
        w.insert(5);
        assert!(matches!(w, IntSet::W32(_)));
        w.remove(100_000);
        assert_eq!(w.width(), 4);
        assert_eq!(w.iter().collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        assert_ne!(w, IntSet::from_sorted(2, &[1, 2, 3, 4, 5]));
        // 64-bit: two inline.
        let mut l = IntSet::from_sorted(8, &[-(1 << 40), 1 << 40]);
        assert!(matches!(l, IntSet::I64 { len: 2, .. }));
        assert_eq!(l.min(), Some(-(1 << 40)));
        assert_eq!(l.max(), Some(1 << 40));
        l.insert(0);
        assert!(matches!(l, IntSet::W64(_)));
        assert!(l.contains(0) && !l.contains(1));
    }

    #[test]
    fn intset_upgrades_width_and_stays_sorted() {
        let mut i = IntSet::new();
        assert!(i.insert(5));
        assert!(i.insert(-3));
        assert!(!i.insert(5));
        assert_eq!(i.width(), 2);
        assert!(i.insert(70_000));
        assert_eq!(i.width(), 4);
        assert!(i.insert(-5_000_000_000));
        assert_eq!(i.width(), 8);
        assert!(i.insert(i64::MAX) && i.insert(i64::MIN));
        assert_eq!(
            i.iter().collect::<Vec<_>>(),
            [i64::MIN, -5_000_000_000, -3, 5, 70_000, i64::MAX]
        );
        assert!(i.contains(70_000) && !i.contains(70_001));
        assert!(i.remove(-5_000_000_000) && !i.remove(-5_000_000_000));
        // Never narrowed again.
        assert_eq!(i.width(), 8);
        let mut small = IntSet::new();
        small.insert(1);
        assert!(!small.contains(1 << 40) && !small.remove(1 << 40));
    }

    #[test]
    fn listpack_packs_in_insertion_order() {
        let mut l = Listpack::new();
        let long = vec![b'x'; 300]; // two-byte length prefix
        for m in [&b"b"[..], b"", &long, b"a"] {
            l.push(m);
        }
        assert_eq!(l.len(), 4);
        assert_eq!(l.iter().collect::<Vec<_>>(), [&b"b"[..], b"", &long, b"a"]);
        assert!(l.contains(b"") && l.contains(&long) && !l.contains(b"c"));
        assert!(l.remove(&long) && !l.remove(&long));
        assert_eq!(l.iter().collect::<Vec<_>>(), [&b"b"[..], b"", b"a"]);
        assert_eq!(l.get(2), Some(&b"a"[..]));
        assert_eq!(l.remove_at(0), Some(Bytes::from_static(b"b")));
        assert_eq!(l.iter().collect::<Vec<_>>(), [&b""[..], b"a"]);
        assert_eq!(l.mem_bytes(), l.run.mem_bytes());
    }

    #[test]
    fn creation_picks_the_encoding_for_the_first_member() {
        let l = SetLimits::default();
        assert_eq!(SetValue::new_for(b"12", 1000, l).encoding(), "intset");
        assert_eq!(SetValue::new_for(b"012", 1, l).encoding(), "listpack");
        assert_eq!(SetValue::new_for(b"a", 128, l).encoding(), "listpack");
        assert_eq!(SetValue::new_for(b"a", 129, l).encoding(), "hashtable");
    }

    #[test]
    fn intset_converts_past_its_entry_limit_to_a_table() {
        let l = lim(3, 128, 64);
        let mut s = SetValue::new();
        for m in ["1", "2", "3", "3"] {
            s.insert(m.as_bytes(), l);
        }
        assert_eq!(s.encoding(), "intset");
        assert!(s.insert(b"4", l));
        assert_eq!(s.encoding(), "hashtable");
        // Never back, even when shrinking.
        for m in ["1", "2", "3"] {
            assert!(s.remove(m.as_bytes()));
        }
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(members(&s), [b"4".to_vec()]);
        // Zero entries allowed: the first integer converts.
        let mut z = SetValue::new();
        z.insert(b"1", lim(0, 128, 64));
        assert_eq!(z.encoding(), "hashtable");
    }

    #[test]
    fn intset_takes_a_string_as_listpack_when_it_fits() {
        let l = lim(512, 4, 5);
        let mut s = SetValue::new();
        for m in ["30", "-1", "2"] {
            s.insert(m.as_bytes(), l);
        }
        let mut a = s.clone();
        assert!(a.insert(b"x", l));
        assert_eq!(a.encoding(), "listpack");
        // Sorted integers first, then the new member.
        assert_eq!(members(&a), [&b"-1"[..], b"2", b"30", b"x"]);
        // Full listpack: the next member makes it a table.
        assert!(a.insert(b"99", l));
        assert_eq!(a.encoding(), "hashtable");
        // A member longer than the value limit goes to a table.
        let mut b = s.clone();
        b.insert(b"abcdef", l);
        assert_eq!(b.encoding(), "hashtable");
        // Too many integers for a listpack already: table.
        let mut c = s.clone();
        c.insert(b"7", l);
        assert_eq!(c.len(), 4);
        c.insert(b"x", l);
        assert_eq!(c.encoding(), "hashtable");
        // Integers that print wider than the value limit: table.
        let mut d = SetValue::new();
        d.insert(b"-100000", l);
        d.insert(b"x", l);
        assert_eq!(d.encoding(), "hashtable");
        assert_eq!(sorted(&d), [b"-100000".to_vec(), b"x".to_vec()].into());
    }

    #[test]
    fn listpack_converts_past_its_limits_only() {
        let l = lim(512, 3, 4);
        let mut s = SetValue::new_for(b"a", 1, l);
        for m in ["a", "b", "c", "c", "1"] {
            s.insert(m.as_bytes(), l);
        }
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), 4);
        let mut t = SetValue::new_for(b"a", 1, l);
        for m in ["a", "b", "c"] {
            t.insert(m.as_bytes(), l);
        }
        assert_eq!(t.encoding(), "listpack");
        assert!(!t.insert(b"b", l));
        assert_eq!(t.encoding(), "listpack");
        let mut u = t.clone();
        u.remove(b"a");
        u.insert(b"abcd", l);
        assert_eq!(u.encoding(), "listpack");
        u.insert(b"abcde", l);
        assert_eq!(u.encoding(), "hashtable");
        assert_eq!(u.len(), 4);
        // Removing everything keeps the encoding.
        for m in ["b", "c", "abcd", "abcde"] {
            assert!(u.remove(m.as_bytes()));
        }
        assert!(u.is_empty());
        assert_eq!(u.encoding(), "hashtable");
    }

    #[test]
    fn membership_is_by_bytes_not_by_value() {
        let l = SetLimits::default();
        let mut s = SetValue::new();
        s.insert(b"1", l);
        assert!(!s.contains(b"01") && !s.contains(b"+1") && !s.contains(b"1.0"));
        assert!(s.insert(b"01", l));
        assert_eq!(s.encoding(), "listpack");
        assert!(s.contains(b"1") && s.contains(b"01"));
        assert!(s.contains_member(Member::Int(1)));
        assert!(!s.contains_member(Member::Int(2)));
    }

    #[test]
    fn from_items_gets_the_encoding_of_its_content() {
        let l = SetLimits::default();
        let ints: Vec<Item> = (0..512).map(Item::Int).collect();
        assert_eq!(SetValue::from_items(&ints, l).encoding(), "intset");
        let ints: Vec<Item> = (0..513).map(Item::Int).collect();
        assert_eq!(SetValue::from_items(&ints, l).encoding(), "hashtable");
        let strs: Vec<Item> = (0..128)
            .map(|i| Item::Bytes(format!("m{i}").into()))
            .collect();
        assert_eq!(SetValue::from_items(&strs, l).encoding(), "listpack");
        let strs: Vec<Item> = (0..129)
            .map(|i| Item::Bytes(format!("m{i}").into()))
            .collect();
        assert_eq!(SetValue::from_items(&strs, l).encoding(), "hashtable");
        let mixed = [Item::Int(3), Item::Bytes("x".into())];
        assert_eq!(SetValue::from_items(&mixed, l).encoding(), "listpack");
        assert!(SetValue::from_items(&[], l).is_empty());
    }

    #[test]
    fn random_members_and_pops() {
        let mut rng = SmallRng::seed_from_u64(7);
        let l = SetLimits::default();
        for n in [5usize, 100, 600] {
            for kind in ["int", "str"] {
                let mut s = SetValue::new();
                for i in 0..n {
                    let m = if kind == "int" {
                        format!("{i}")
                    } else {
                        format!("m{i}")
                    };
                    s.insert(m.as_bytes(), l);
                }
                let all = sorted(&s);
                let m = s.random_member(&mut rng).unwrap().to_bytes().to_vec();
                assert!(all.contains(&m));
                let mut got = Vec::new();
                s.random_distinct(&mut rng, n / 2, |m| got.push(m.to_bytes().to_vec()));
                let distinct: BTreeSet<_> = got.iter().cloned().collect();
                assert_eq!(distinct.len(), n / 2);
                assert!(distinct.is_subset(&all));
                let mut all_back = Vec::new();
                s.random_distinct(&mut rng, n + 1, |m| all_back.push(m.to_bytes().to_vec()));
                assert_eq!(all_back, members(&s));
                let mut reps = 0;
                s.random_with_repeats(&mut rng, 3 * n, |m| {
                    assert!(all.contains(&m.to_bytes().to_vec()));
                    reps += 1;
                });
                assert_eq!(reps, 3 * n);
                // Case 2 (many stay) and case 3 (few stay).
                for count in [n / 3, n - n / 10 - 1] {
                    let mut p = s.clone();
                    let popped = p.pop_many(&mut rng, count, l);
                    assert_eq!(popped.len(), count);
                    let popped: BTreeSet<Vec<u8>> = popped
                        .iter()
                        .map(|i| i.as_member().to_bytes().to_vec())
                        .collect();
                    assert_eq!(popped.len(), count);
                    let rest = sorted(&p);
                    assert!(popped.is_disjoint(&rest));
                    assert_eq!(popped.union(&rest).cloned().collect::<BTreeSet<_>>(), all);
                }
                let mut p = s.clone();
                let one = p.pop_random(&mut rng).unwrap();
                assert!(!p.contains_member(one.as_member()));
                assert_eq!(p.len(), n - 1);
            }
        }
        let e = SetValue::new();
        assert!(e.random_member(&mut rng).is_none());
        e.random_with_repeats(&mut rng, 5, |_| panic!("empty"));
    }

    #[test]
    fn few_survivors_get_a_fresh_encoding() {
        let mut rng = SmallRng::seed_from_u64(3);
        let l = SetLimits::default();
        // A table of integers that keeps 2 of them becomes an intset, as in Redis.
        let mut s = SetValue::new();
        for i in 0..600 {
            s.insert(i.to_string().as_bytes(), l);
        }
        assert_eq!(s.encoding(), "hashtable");
        s.pop_many(&mut rng, 598, l);
        assert_eq!(s.len(), 2);
        assert_eq!(s.encoding(), "intset");
    }

    #[test]
    fn scan_covers_every_encoding() {
        let l = SetLimits::default();
        for n in [3usize, 50, 1000] {
            let mut s = SetValue::new_for(b"a", 1, l);
            for i in 0..n {
                s.insert(format!("m{i}").as_bytes(), l);
            }
            let mut seen = BTreeSet::new();
            let mut cur = 0;
            loop {
                cur = s.scan(cur, |m| {
                    seen.insert(m.to_bytes().to_vec());
                });
                if cur == 0 {
                    break;
                }
            }
            assert_eq!(seen, sorted(&s));
        }
    }

    #[test]
    fn mem_bytes_tracks_the_encoding() {
        let l = SetLimits::default();
        let mut s = SetValue::new();
        for i in 0..100 {
            s.insert(i.to_string().as_bytes(), l);
        }
        let packed = s.mem_bytes();
        assert!((200..=400).contains(&packed), "{packed}");
        let mut t = s.clone();
        t.convert_to_table();
        assert!(t.mem_bytes() > packed * 4);
        assert_eq!(t.payload_len(), s.payload_len());
        assert_eq!(sorted(&t), sorted(&s));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(Vec<u8>),
        Rem(Vec<u8>),
        Pop,
        PopMany(usize),
    }

    fn member() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (-40i64..40).prop_map(|i| i.to_string().into_bytes()),
            prop::sample::select(vec![
                i64::MIN.to_string().into_bytes(),
                i64::MAX.to_string().into_bytes(),
                b"70000".to_vec(),
                b"-3000000000".to_vec(),
                b"01".to_vec(),
                b"".to_vec(),
            ]),
            "[a-e]{1,3}".prop_map(String::into_bytes),
            "[a-z]{7,12}".prop_map(String::into_bytes),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => member().prop_map(Op::Add),
            3 => member().prop_map(Op::Rem),
            1 => Just(Op::Pop),
            1 => (1usize..20).prop_map(Op::PopMany),
        ]
    }

    /// The encoding a Redis 7.2-like set must have given its history: `grew_*` record whether
    /// it ever left the intset / listpack.
    fn check_encoding(s: &SetValue, model: &BTreeSet<Vec<u8>>, l: SetLimits) {
        let all_int = model.iter().all(|m| parse_i64(m).is_some());
        match s.encoding() {
            "intset" => assert!(all_int && model.len() <= l.max_intset_entries),
            "listpack" => {
                assert!(model.len() <= l.max_listpack_entries);
                assert!(model.iter().all(|m| m.len() <= l.max_listpack_value));
            }
            _ => {}
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn model_check(
            ops in proptest::collection::vec(op(), 1..300),
            seed in any::<u64>(),
            li in 0usize..20,
            le in 0usize..20,
            lv in 0usize..12,
        ) {
            let l = lim(li, le, lv);
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut s: Option<SetValue> = None;
            let mut model: BTreeSet<Vec<u8>> = BTreeSet::new();
            // Once a set leaves an encoding it never comes back, whatever is removed.
            let mut left_intset = false;
            let mut left_listpack = false;
            for op in ops {
                match op {
                    Op::Add(m) => {
                        let set = s.get_or_insert_with(|| SetValue::new_for(&m, 1, l));
                        prop_assert_eq!(set.insert(&m, l), model.insert(m.clone()));
                    }
                    Op::Rem(m) => {
                        let had = model.remove(&m);
                        prop_assert_eq!(s.as_mut().is_some_and(|s| s.remove(&m)), had);
                    }
                    Op::Pop => {
                        if let Some(set) = s.as_mut() {
                            let it = set.pop_random(&mut rng).unwrap();
                            let b = it.as_member().to_bytes().to_vec();
                            prop_assert!(model.remove(&b));
                        }
                    }
                    Op::PopMany(n) => {
                        if let Some(set) = s.as_mut() {
                            let len = set.len();
                            let got = set.pop_many(&mut rng, n.min(len), l);
                            prop_assert_eq!(got.len(), n.min(len));
                            for it in got {
                                let b = it.as_member().to_bytes().to_vec();
                                prop_assert!(model.remove(&b), "popped twice or absent");
                            }
                            // A rebuilt set starts over.
                            left_intset = set.encoding() != "intset";
                            left_listpack = set.encoding() == "hashtable";
                        }
                    }
                }
                if let Some(set) = &s {
                    prop_assert_eq!(set.len(), model.len());
                    let got: BTreeSet<Vec<u8>> = set.iter().map(|m| m.to_bytes().to_vec()).collect();
                    prop_assert_eq!(&got, &model);
                    for m in &model {
                        prop_assert!(set.contains(m));
                    }
                    check_encoding(set, &model, l);
                    match set.encoding() {
                        "intset" => {
                            prop_assert!(!left_intset);
                            let v: Vec<i64> = got.iter().map(|m| parse_i64(m).unwrap()).collect();
                            let order: Vec<i64> = set.iter().map(|m| match m {
                                Member::Int(n) => n,
                                Member::Str(_) => unreachable!(),
                            }).collect();
                            let mut sorted_v = v.clone();
                            sorted_v.sort();
                            prop_assert_eq!(order, sorted_v);
                        }
                        "listpack" => {
                            prop_assert!(!left_listpack);
                            left_intset = true;
                        }
                        _ => {
                            left_intset = true;
                            left_listpack = true;
                        }
                    }
                    if set.is_empty() {
                        // The command layer deletes empty sets.
                        s = None;
                        left_intset = false;
                        left_listpack = false;
                    }
                }
            }
        }
    }
}

//! List commands (Redis's t_list.c): pushes and pops at both ends, positional reads and writes,
//! LINSERT, LREM, LTRIM, LPOS, LMOVE / RPOPLPUSH and LMPOP.
//!
//! Every handler runs on the shard that owns its keys and touches only that shard's data; the
//! multi-key commands (LMOVE, RPOPLPUSH, LMPOP) are written as if all keys were local and rely on
//! routing (or the cross-shard transaction path) for that. The node layout is the value's
//! business (`types::list`): handlers pass `list-max-listpack-size` when they create a list and
//! never reshape one. A list left without elements is deleted, so an empty list is never visible.
//!
//! The blocking variants (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) are not here; the blocking
//! framework serves a woken client through the pub cores `pop_reply`, `mpop_reply` and
//! `move_reply`, which never block and never reply when there is nothing to serve.

use bytes::Bytes;

use super::args::{self, eq_ic, int_arg, ERR_SYNTAX, ERR_WRONGTYPE};
use super::class;
use super::{cmd, flags::*, numkeys_positions, CommandSpec, Ctx, Exec, KeySpec, KEY1};
use crate::protocol::Reply;
use crate::types::list::{End, Item, ListValue};
use crate::types::Value;

pub fn specs() -> Vec<CommandSpec> {
    let g = "list";
    const PUSH: &str = "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.";
    vec![
        cmd(
            "lpush",
            -3,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "1.0.0",
            PUSH,
            "Prepends one or more elements to a list, creating it if needed.",
            Exec::Shard(lpush),
        )
.key_flags(&["RW", "insert"]),
        cmd(
            "rpush",
            -3,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "1.0.0",
            PUSH,
            "Appends one or more elements to a list, creating it if needed.",
            Exec::Shard(rpush),
        )
.key_flags(&["RW", "insert"]),
        cmd(
            "lpushx",
            -3,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "2.2.0",
            PUSH,
            "Prepends elements to a list only if the list exists.",
            Exec::Shard(lpushx),
        )
.key_flags(&["RW", "insert"]),
        cmd(
            "rpushx",
            -3,
            WRITE | DENYOOM | FAST,
            KEY1,
            g,
            "2.2.0",
            PUSH,
            "Appends elements to a list only if the list exists.",
            Exec::Shard(rpushx),
        )
.key_flags(&["RW", "insert"]),
        cmd(
            "lpop",
            -2,
            WRITE | FAST,
            KEY1,
            g,
            "1.0.0",
            "O(N) where N is the number of elements returned",
            "Removes and returns the first elements of a list; deletes the key with its last element.",
            Exec::Shard(lpop),
        )
.key_flags(&["RW", "access", "delete"]),
        cmd(
            "rpop",
            -2,
            WRITE | FAST,
            KEY1,
            g,
            "1.0.0",
            "O(N) where N is the number of elements returned",
            "Removes and returns the last elements of a list; deletes the key with its last element.",
            Exec::Shard(rpop),
        )
.key_flags(&["RW", "access", "delete"]),
        cmd(
            "llen",
            2,
            READONLY | FAST,
            KEY1,
            g,
            "1.0.0",
            "O(1)",
            "Returns the length of a list.",
            Exec::Shard(llen),
        )
.key_flags(&["RO"]),
        cmd(
            "lrange",
            4,
            READONLY,
            KEY1,
            g,
            "1.0.0",
            "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range.",
            "Returns a range of elements of a list.",
            Exec::Shard(lrange),
        )
.key_flags(&["RO", "access"]),
        cmd(
            "lindex",
            3,
            READONLY,
            KEY1,
            g,
            "1.0.0",
            "O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1).",
            "Returns the element at an index of a list.",
            Exec::Shard(lindex),
        )
.key_flags(&["RO", "access"]),
        cmd(
            "lset",
            4,
            WRITE | DENYOOM,
            KEY1,
            g,
            "1.0.0",
            "O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1).",
            "Sets the element at an index of a list.",
            Exec::Shard(lset),
        )
.key_flags(&["RW", "update"]),
        cmd(
            "linsert",
            5,
            WRITE | DENYOOM,
            KEY1,
            g,
            "2.2.0",
            "O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N).",
            "Inserts an element before or after another element of a list.",
            Exec::Shard(linsert),
        )
.key_flags(&["RW", "insert"]),
        cmd(
            "lrem",
            4,
            WRITE,
            KEY1,
            g,
            "1.0.0",
            "O(N+M) where N is the length of the list and M is the number of elements removed.",
            "Removes elements equal to a value from a list.",
            Exec::Shard(lrem),
        )
.key_flags(&["RW", "delete"]),
        cmd(
            "ltrim",
            4,
            WRITE,
            KEY1,
            g,
            "1.0.0",
            "O(N) where N is the number of elements to be removed by the operation.",
            "Keeps only a range of elements of a list.",
            Exec::Shard(ltrim),
        )
.key_flags(&["RW", "delete"]),
        cmd(
            "lpos",
            -3,
            READONLY,
            KEY1,
            g,
            "6.0.6",
            "O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time.",
            "Returns the indexes of elements equal to a value in a list.",
            Exec::Shard(lpos),
        )
.key_flags(&["RO", "access"]),
        cmd(
            "lmove",
            5,
            WRITE | DENYOOM,
            (1, 2, 1),
            g,
            "6.2.0",
            "O(1)",
            "Pops an element from one end of a list and pushes it to an end of another list.",
            Exec::Shard(lmove),
        )
.key_specs(const { &[KeySpec::range(&["RW", "access", "delete"], 1, 0, 1), KeySpec::range(&["RW", "insert"], 2, 0, 1)] }),
        cmd(
            "rpoplpush",
            3,
            WRITE | DENYOOM,
            (1, 2, 1),
            g,
            "1.2.0",
            "O(1)",
            "Pops the last element of a list and pushes it to the head of another list.",
            Exec::Shard(rpoplpush),
        )
.deprecated("6.2.0", "LMOVE source destination RIGHT LEFT")
.key_specs(const { &[KeySpec::range(&["RW", "access", "delete"], 1, 0, 1), KeySpec::range(&["RW", "insert"], 2, 0, 1)] }),
        cmd(
            "lmpop",
            -4,
            WRITE,
            (0, 0, 0),
            g,
            "7.0.0",
            "O(N+M) where N is the number of provided keys and M is the number of elements returned.",
            "Pops elements from the first non-empty list of several.",
            Exec::Shard(lmpop),
        )
.key_specs(const { &[KeySpec::numkeys(&["RW", "access", "delete"], 1)] })
        .movable_keys(lmpop_keys),
    ]
}

fn lmpop_keys(a: &[Bytes]) -> Option<Vec<usize>> {
    numkeys_positions(a, 1, &[])
}

/// Reads a key as a list (counting hits and misses): Ok(None) if missing, Err if another type.
fn read_list<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a ListValue>, &'static str> {
    match ctx.lookup_read(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::List(l) => Ok(Some(l)),
            _ => Err(ERR_WRONGTYPE),
        },
    }
}

/// Looks a key up for a write: Ok(None) if missing, Err if another type.
fn write_list<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut ListValue>, &'static str> {
    match ctx.lookup_write(key) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::List(l) => Ok(Some(l)),
            _ => Err(ERR_WRONGTYPE),
        },
    }
}

/// A new list holding `elements` pushed at `end`, stored at `key` (which must be free).
fn create(ctx: &mut Ctx, key: &[u8], end: End, elements: &[&[u8]]) -> usize {
    let mut l = ListValue::new(ctx.st.config.list_max_listpack_size);
    for v in elements {
        l.push(end, v);
    }
    let n = l.len();
    let now = ctx.now_ms;
    ctx.db().insert(key, Value::List(Box::new(l)), 0, now);
    n
}

/// Deletes `key` if it holds an emptied list (announced as `del`, like Redis).
fn delete_if_empty(ctx: &mut Ctx, key: &[u8]) {
    if matches!(write_list(ctx, key), Ok(Some(l)) if l.is_empty()) {
        ctx.db().remove(key);
        ctx.notify(class::GENERIC, "del", key);
    }
}

fn push_event(end: End) -> &'static str {
    match end {
        End::Head => "lpush",
        End::Tail => "rpush",
    }
}

fn pop_event(end: End) -> &'static str {
    match end {
        End::Head => "lpop",
        End::Tail => "rpop",
    }
}

fn reply_item(r: &mut Reply, item: Item) {
    match item {
        Item::Int(n) => r.bulk_int(n),
        Item::Str(s) => r.bulk(s),
    }
}

/// LEFT / RIGHT.
pub fn parse_end(arg: &[u8]) -> Option<End> {
    if eq_ic(arg, "left") {
        Some(End::Head)
    } else if eq_ic(arg, "right") {
        Some(End::Tail)
    } else {
        None
    }
}

/// A list index as Redis resolves it (negative counts from the tail); None when out of range.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let i = if index < 0 { len as i64 + index } else { index };
    (0..len as i64).contains(&i).then_some(i as usize)
}

// ----- pushes -----

fn push_generic(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply, end: End, only_existing: bool) {
    match write_list(ctx, &a[1]) {
        Err(e) => r.error(e),
        Ok(Some(l)) => {
            for v in &a[2..] {
                l.push(end, v);
            }
            r.int(l.len() as i64);
            ctx.notify(class::LIST, push_event(end), &a[1]);
            ctx.dirty(a.len() as u64 - 2);
        }
        Ok(None) if only_existing => {
            ctx.dirty(0);
            r.int(0)
        }
        Ok(None) => {
            let elements: Vec<&[u8]> = a[2..].iter().map(|b| &b[..]).collect();
            let n = create(ctx, &a[1], end, &elements);
            ctx.notify(class::LIST, push_event(end), &a[1]);
            ctx.dirty(a.len() as u64 - 2);
            r.int(n as i64);
        }
    }
}

fn lpush(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    push_generic(ctx, a, r, End::Head, false)
}

fn rpush(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    push_generic(ctx, a, r, End::Tail, false)
}

fn lpushx(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    push_generic(ctx, a, r, End::Head, true)
}

fn rpushx(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    push_generic(ctx, a, r, End::Tail, true)
}

// ----- pops: the cores shared with the blocking framework -----

/// The reply form of a pop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PopShape {
    /// One element as a bulk string (LPOP key).
    One,
    /// Up to n elements as an array (LPOP key count).
    Many(usize),
    /// `[key, element]` (BLPOP, BRPOP).
    KeyOne,
    /// `[key, [element, ...]]` with up to n elements (LMPOP, BLMPOP).
    KeyMany(usize),
}

/// Pops from the list at `key` and writes the reply in `shape`, deleting the key once it is
/// empty. Returns false, writing nothing, when `key` holds no list (missing or of another type):
/// the caller decides whether that is a null reply, a WRONGTYPE error or a reason to block.
///
/// This is the core BLPOP / BRPOP serve a waiting client with.
pub fn pop_reply(ctx: &mut Ctx, key: &[u8], end: End, shape: PopShape, r: &mut Reply) -> bool {
    let Ok(Some(list)) = write_list(ctx, key) else {
        ctx.dirty(0);
        return false;
    };
    if list.is_empty() {
        ctx.dirty(0);
        return false;
    }
    // One change per element popped (Redis).
    let popped = match shape {
        PopShape::One | PopShape::KeyOne => 1,
        PopShape::Many(n) | PopShape::KeyMany(n) => n.min(list.len()),
    };
    if matches!(shape, PopShape::KeyOne | PopShape::KeyMany(_)) {
        r.array(2);
        r.bulk(key);
    }
    match shape {
        PopShape::One | PopShape::KeyOne => {
            list.pop_with(end, |item| reply_item(r, item));
        }
        PopShape::Many(n) | PopShape::KeyMany(n) => {
            let n = n.min(list.len());
            r.array(n);
            for _ in 0..n {
                list.pop_with(end, |item| reply_item(r, item));
            }
        }
    }
    let emptied = list.is_empty();
    ctx.dirty(popped as u64);
    ctx.notify(class::LIST, pop_event(end), key);
    if emptied {
        ctx.db().remove(key);
        ctx.notify(class::GENERIC, "del", key);
    }
    true
}

/// LMPOP's core: pops up to `count` elements from the first non-empty list among `keys` and
/// replies `[key, [elements]]`. Ok(false), writing nothing, when every key is missing; a key of
/// another type met before a non-empty list is an error, as in Redis.
///
/// BLMPOP serves a waiting client with this.
pub fn mpop_reply(
    ctx: &mut Ctx,
    keys: &[Bytes],
    end: End,
    count: usize,
    r: &mut Reply,
) -> Result<bool, &'static str> {
    first_list_pop(ctx, keys, end, PopShape::KeyMany(count), r)
}

/// Pops from the first non-empty list among `keys` in `shape` (BLPOP/BRPOP: `KeyOne`). Ok(false),
/// writing nothing, when every key is missing; a key of another type met before a non-empty list
/// is an error, as in Redis.
pub fn first_list_pop(
    ctx: &mut Ctx,
    keys: &[Bytes],
    end: End,
    shape: PopShape,
    r: &mut Reply,
) -> Result<bool, &'static str> {
    for key in keys {
        match write_list(ctx, key)? {
            Some(l) if !l.is_empty() => return Ok(pop_reply(ctx, key, end, shape, r)),
            _ => continue,
        }
    }
    ctx.dirty(0);
    Ok(false)
}

/// LMOVE's core: pops from `from` of `src`, pushes onto `to` of `dst` (created if missing) and
/// replies with the element. Ok(false), writing nothing, when `src` is missing; Err when `src`,
/// or `dst` while `src` has data, holds another type. `src == dst` rotates the list.
///
/// BLMOVE / BRPOPLPUSH serve a waiting client with this.
pub fn move_reply(
    ctx: &mut Ctx,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
    r: &mut Reply,
) -> Result<bool, &'static str> {
    match write_list(ctx, src)? {
        Some(l) if !l.is_empty() => {}
        _ => {
            ctx.dirty(0);
            return Ok(false);
        }
    }
    write_list(ctx, dst)?;
    let Some(value) = write_list(ctx, src)?.and_then(|l| l.pop(from)) else {
        ctx.dirty(0);
        return Ok(false);
    };
    ctx.dirty(1);
    match write_list(ctx, dst)? {
        // For src == dst this is the list just popped from, possibly empty for a moment.
        Some(l) => l.push(to, &value),
        None => {
            create(ctx, dst, to, &[&value]);
        }
    }
    ctx.notify(class::LIST, push_event(to), dst);
    ctx.notify(class::LIST, pop_event(from), src);
    delete_if_empty(ctx, src);
    r.bulk(&value);
    Ok(true)
}

fn pop_generic(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply, end: End) {
    if a.len() > 3 {
        return r.error(&super::arity_error(if end == End::Head {
            "lpop"
        } else {
            "rpop"
        }));
    }
    let count = match a.get(2) {
        None => None,
        Some(c) => match args::parse_i64(c) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return r.error("ERR value is out of range, must be positive"),
        },
    };
    match write_list(ctx, &a[1]) {
        Err(e) => return r.error(e),
        Ok(None) => {
            ctx.dirty(0);
            return if count.is_some() {
                r.null_array()
            } else {
                r.null()
            };
        }
        Ok(Some(_)) => {}
    }
    // `pop_reply` counts the elements popped.
    match count {
        Some(0) => {
            ctx.dirty(0);
            r.array(0)
        }
        Some(n) => {
            pop_reply(ctx, &a[1], end, PopShape::Many(n), r);
        }
        None => {
            pop_reply(ctx, &a[1], end, PopShape::One, r);
        }
    }
}

fn lpop(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    pop_generic(ctx, a, r, End::Head)
}

fn rpop(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    pop_generic(ctx, a, r, End::Tail)
}

fn lmpop(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let numkeys = match args::parse_i64(&a[1]) {
        Some(n) if n >= 1 => n as usize,
        _ => return r.error("ERR numkeys should be greater than 0"),
    };
    let where_at = match numkeys.checked_add(2) {
        Some(i) if i < a.len() => i,
        _ => return r.error(ERR_SYNTAX),
    };
    let Some(end) = parse_end(&a[where_at]) else {
        return r.error(ERR_SYNTAX);
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < a.len() {
        if count.is_none() && eq_ic(&a[j], "count") && j + 1 < a.len() {
            match args::parse_i64(&a[j + 1]) {
                Some(n) if n >= 1 => count = Some(n as usize),
                _ => return r.error("ERR count should be greater than 0"),
            }
            j += 2;
        } else {
            return r.error(ERR_SYNTAX);
        }
    }
    match mpop_reply(ctx, &a[2..where_at], end, count.unwrap_or(1), r) {
        Ok(true) => {}
        Ok(false) => r.null_array(),
        Err(e) => r.error(e),
    }
}

fn lmove_generic(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply, from: End, to: End) {
    match move_reply(ctx, &a[1], &a[2], from, to, r) {
        Ok(true) => {}
        Ok(false) => r.null(),
        Err(e) => r.error(e),
    }
}

fn lmove(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let (Some(from), Some(to)) = (parse_end(&a[3]), parse_end(&a[4])) else {
        return r.error(ERR_SYNTAX);
    };
    lmove_generic(ctx, a, r, from, to)
}

fn rpoplpush(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    lmove_generic(ctx, a, r, End::Tail, End::Head)
}

// ----- reads -----

fn llen(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    match read_list(ctx, &a[1]) {
        Ok(l) => r.int(l.map_or(0, |l| l.len()) as i64),
        Err(e) => r.error(e),
    }
}

fn lindex(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let l = match read_list(ctx, &a[1]) {
        Err(e) => return r.error(e),
        Ok(None) => return r.null(),
        Ok(Some(l)) => l,
    };
    let index = match int_arg(&a[2]) {
        Ok(i) => i,
        Err(e) => return r.error(e),
    };
    match resolve_index(index, l.len()).and_then(|i| l.get(i)) {
        Some(item) => reply_item(r, item),
        None => r.null(),
    }
}

/// Redis's range clamping for LRANGE and LTRIM: Some((start, end)) inclusive, None if empty.
fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as usize, end as usize))
}

fn lrange(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let (start, end) = match (int_arg(&a[2]), int_arg(&a[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return r.error(e),
    };
    let l = match read_list(ctx, &a[1]) {
        Err(e) => return r.error(e),
        Ok(None) => return r.array(0),
        Ok(Some(l)) => l,
    };
    let Some((start, end)) = clamp_range(start, end, l.len()) else {
        return r.array(0);
    };
    let n = end - start + 1;
    r.array(n);
    for item in l.iter_from(start).take(n) {
        reply_item(r, item);
    }
}

fn lpos(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let mut rank: i64 = 1;
    let mut count: Option<i64> = None;
    let mut maxlen: i64 = 0;
    let mut j = 3;
    while j < a.len() {
        let more = j + 1 < a.len();
        if eq_ic(&a[j], "rank") && more {
            rank =
                match int_arg(&a[j + 1]) {
                    Ok(0) => return r.error(
                        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the \
                         second ... or use negative to start from the end of the list",
                    ),
                    Ok(n) => n,
                    Err(e) => return r.error(e),
                };
        } else if eq_ic(&a[j], "count") && more {
            match args::parse_i64(&a[j + 1]) {
                Some(n) if n >= 0 => count = Some(n),
                _ => return r.error("ERR COUNT can't be negative"),
            }
        } else if eq_ic(&a[j], "maxlen") && more {
            match args::parse_i64(&a[j + 1]) {
                Some(n) if n >= 0 => maxlen = n,
                _ => return r.error("ERR MAXLEN can't be negative"),
            }
        } else {
            return r.error(ERR_SYNTAX);
        }
        j += 2;
    }
    // A negative rank searches from the tail. Redis 7.0 negates in C `long`, so RANK
    // -9223372036854775808 stays negative: every match then counts and COUNT never stops the
    // scan. The wrapping arithmetic below keeps that behaviour.
    let from_tail = rank < 0;
    if from_tail {
        rank = rank.wrapping_neg();
    }
    let l = match read_list(ctx, &a[1]) {
        Err(e) => return r.error(e),
        Ok(None) if count.is_some() => return r.array(0),
        Ok(None) => return r.null(),
        Ok(Some(l)) => l,
    };
    let target = Item::new(&a[2]);
    let len = l.len() as i64;
    let mut found: Vec<i64> = Vec::new();
    let mut scan = |iter: &mut dyn Iterator<Item = Item>| {
        let mut matches: i64 = 0;
        for (index, item) in iter.enumerate() {
            let index = index as i64;
            if maxlen != 0 && index >= maxlen {
                break;
            }
            if item != target {
                continue;
            }
            matches += 1;
            if matches < rank {
                continue;
            }
            found.push(if from_tail { len - index - 1 } else { index });
            match count {
                None => break,
                Some(c) if c != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= c => break,
                Some(_) => {}
            }
        }
    };
    if from_tail {
        scan(&mut l.iter_rev());
    } else {
        scan(&mut l.iter());
    }
    match count {
        Some(_) => {
            r.array(found.len());
            for i in found {
                r.int(i);
            }
        }
        None => match found.first() {
            Some(&i) => r.int(i),
            None => r.null(),
        },
    }
}

// ----- writes in place -----

fn lset(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let l = match write_list(ctx, &a[1]) {
        Err(e) => return r.error(e),
        Ok(None) => return r.error("ERR no such key"),
        Ok(Some(l)) => l,
    };
    let index = match int_arg(&a[2]) {
        Ok(i) => i,
        Err(e) => return r.error(e),
    };
    match resolve_index(index, l.len()) {
        Some(i) if l.set(i, &a[3]) => {
            ctx.notify(class::LIST, "lset", &a[1]);
            r.ok()
        }
        _ => r.error("ERR index out of range"),
    }
}

fn linsert(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let after = if eq_ic(&a[2], "after") {
        true
    } else if eq_ic(&a[2], "before") {
        false
    } else {
        return r.error(ERR_SYNTAX);
    };
    let l = match write_list(ctx, &a[1]) {
        Err(e) => return r.error(e),
        Ok(None) => {
            ctx.dirty(0);
            return r.int(0);
        }
        Ok(Some(l)) => l,
    };
    if l.insert_near(&a[3], &a[4], after) {
        r.int(l.len() as i64);
        ctx.notify(class::LIST, "linsert", &a[1]);
    } else {
        ctx.dirty(0);
        r.int(-1);
    }
}

fn lrem(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let count = match int_arg(&a[2]) {
        Ok(c) => c,
        Err(e) => return r.error(e),
    };
    let l = match write_list(ctx, &a[1]) {
        Err(e) => return r.error(e),
        Ok(None) => {
            ctx.dirty(0);
            return r.int(0);
        }
        Ok(Some(l)) => l,
    };
    let from = if count < 0 { End::Tail } else { End::Head };
    let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    let removed = l.remove_eq(&a[3], limit, from);
    let emptied = l.is_empty();
    ctx.dirty(removed as u64);
    if removed > 0 {
        ctx.notify(class::LIST, "lrem", &a[1]);
    }
    if emptied {
        ctx.db().remove(&a[1]);
        ctx.notify(class::GENERIC, "del", &a[1]);
    }
    r.int(removed as i64);
}

fn ltrim(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    let (start, end) = match (int_arg(&a[2]), int_arg(&a[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return r.error(e),
    };
    let l = match write_list(ctx, &a[1]) {
        Err(e) => return r.error(e),
        Ok(None) => {
            ctx.dirty(0);
            return r.ok();
        }
        Ok(Some(l)) => l,
    };
    let len = l.len();
    match clamp_range(start, end, len) {
        None => l.remove_end(End::Head, len),
        Some((start, end)) => {
            l.remove_end(End::Head, start);
            l.remove_end(End::Tail, len - end - 1);
        }
    }
    let emptied = l.is_empty();
    // One change per element trimmed; Redis signals the key even when that is none, so a
    // WATCH on it fails all the same.
    let trimmed = len - l.len();
    ctx.dirty(trimmed as u64);
    if trimmed == 0 {
        ctx.db().touch(&a[1]);
    }
    ctx.notify(class::LIST, "ltrim", &a[1]);
    if emptied {
        ctx.db().remove(&a[1]);
        ctx.notify(class::GENERIC, "del", &a[1]);
    }
    r.ok();
}

//! SORT and SORT_RO: option parsing, loading the elements of a list, set or sorted set, BY/GET
//! pattern lookups, Redis's ordering rules, the reply and STORE.
//!
//! Two execution paths, chosen by the connection handler after parsing:
//! - Keyed: when no BY or GET pattern names other keys (or the server has one shard), the
//!   command touches only the source and the STORE destination, which `sort_keys` declares. It
//!   then runs through `crate::tx` like any keyed command (`sort_keyed` is the spec's
//!   `keyed_body`): inline on the owning shard, or as a multi-shard transaction when source and
//!   destination live on different shards.
//! - Global: BY/GET patterns name keys that are only known once the source is read, and those
//!   keys may live on any shard. The handler takes whole-shard locks on every shard
//!   (`tx::lock_all_shards`; inside an EXEC block the block already holds them) and does each
//!   step as a job on the shard that owns the data: read the source, look up the BY keys (one
//!   job per shard), sort on the connection's shard, look up the GET keys, write the
//!   destination. No other command runs anywhere in between, so SORT stays atomic as in Redis.
//!
//! Both paths share the pure steps below (`parse`, `load_source`, `order`, `substitute`), so
//! they answer identically. This module never touches another shard's data except through jobs
//! under those locks, and never holds a shard-state borrow across an `.await`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::Bytes;
use futures::future::LocalBoxFuture;

use super::args::{c_str, eq_ic, int_arg, strtod_c_string, ERR_SYNTAX, ERR_WRONGTYPE};
use super::class;
use super::{cmd, flags::*, BeginSearch, CommandSpec, Ctx, Exec, FindKeys, KeySpec};
use crate::protocol::Reply;
use crate::server::conn::{Conn, ERR_SHARD_GONE};
use crate::shard::Shard;
use crate::types::list::End;
use crate::types::{ListValue, Value};

const ERR_SCORES: &str = "ERR One or more scores can't be converted into double";

const COMPLEXITY: &str = "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N).";

const SOURCE_SPEC: KeySpec = KeySpec::range(&["RO", "access"], 1, 0, 1);

const PATTERN_SPEC: KeySpec =
    KeySpec::new(&["RO", "access"], BeginSearch::Unknown, FindKeys::Unknown).notes("For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort");

const STORE_SPEC: KeySpec =
    KeySpec::new(&["OW", "update"], BeginSearch::Unknown, FindKeys::Unknown).notes("For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the argument array");

pub fn specs() -> Vec<CommandSpec> {
    let g = "generic";
    vec![
        cmd(
            "sort",
            -2,
            WRITE | DENYOOM,
            (1, 1, 1),
            g,
            "1.0.0",
            COMPLEXITY,
            "Sort the elements in a list, set or sorted set",
            Exec::Conn(sort),
        )
        .movable_keys(sort_keys)
        .keyed_body(sort_keyed)
        .key_specs(const { &[SOURCE_SPEC, PATTERN_SPEC, STORE_SPEC] }),
        cmd(
            "sort_ro",
            -2,
            READONLY,
            (1, 1, 1),
            g,
            "7.0.0",
            COMPLEXITY,
            "Sort the elements in a list, set or sorted set. Read-only variant of SORT.",
            Exec::Conn(sort_ro),
        )
        .movable_keys(sort_ro_keys)
        .keyed_body(sort_ro_keyed)
        .key_specs(const { &[SOURCE_SPEC, PATTERN_SPEC] }),
    ]
}

/// SORT's declared keys, as Redis's `sortGetKeys` finds them: the source, and the argument after
/// the last STORE, skipping the arguments of LIMIT (2), GET and BY (1) on the way. Keys named
/// through patterns cannot be declared (see the module comment).
fn sort_keys(a: &[Bytes]) -> Option<Vec<usize>> {
    let mut keys = vec![1];
    let mut store = None;
    let mut i = 2;
    while i < a.len() {
        if eq_ic(&a[i], "limit") {
            i += 2;
        } else if eq_ic(&a[i], "get") || eq_ic(&a[i], "by") {
            i += 1;
        } else if eq_ic(&a[i], "store") && i + 1 < a.len() {
            // The destination is not skipped: Redis looks at it as an option name next.
            store = Some(i + 1);
        }
        i += 1;
    }
    keys.extend(store);
    Some(keys)
}

/// SORT_RO's declared key: the source only.
fn sort_ro_keys(_a: &[Bytes]) -> Option<Vec<usize>> {
    Some(vec![1])
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct SortOpts {
    desc: bool,
    alpha: bool,
    /// LIMIT offset and count as given (count < 0: no limit).
    offset: i64,
    count: i64,
    store: Option<Bytes>,
    /// The last BY pattern.
    by: Option<Bytes>,
    /// Set by any BY pattern without `*` (`nosort`), and it stays set, as in Redis.
    dontsort: bool,
    gets: Vec<Bytes>,
}

fn parse(a: &[Bytes], readonly: bool) -> Result<SortOpts, &'static str> {
    let mut o = SortOpts {
        desc: false,
        alpha: false,
        offset: 0,
        count: -1,
        store: None,
        by: None,
        dontsort: false,
        gets: Vec::new(),
    };
    let mut j = 2;
    while j < a.len() {
        let left = a.len() - j - 1;
        let opt = &a[j];
        if eq_ic(opt, "asc") {
            o.desc = false;
        } else if eq_ic(opt, "desc") {
            o.desc = true;
        } else if eq_ic(opt, "alpha") {
            o.alpha = true;
        } else if eq_ic(opt, "limit") && left >= 2 {
            o.offset = int_arg(&a[j + 1])?;
            o.count = int_arg(&a[j + 2])?;
            j += 2;
        } else if !readonly && eq_ic(opt, "store") && left >= 1 {
            o.store = Some(a[j + 1].clone());
            j += 1;
        } else if eq_ic(opt, "by") && left >= 1 {
            let pattern = &a[j + 1];
            if !c_str(pattern).contains(&b'*') {
                o.dontsort = true;
            }
            o.by = Some(pattern.clone());
            j += 1;
        } else if eq_ic(opt, "get") && left >= 1 {
            o.gets.push(a[j + 1].clone());
            j += 1;
        } else {
            return Err(ERR_SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

impl SortOpts {
    /// Whether BY or GET patterns make the command read keys other than the source.
    fn reads_other_keys(&self) -> bool {
        let by = !self.dontsort && self.by.is_some();
        by || self
            .gets
            .iter()
            .any(|g| matches!(substitute(g, b""), Target::Key(..)))
    }
}

// ---------------------------------------------------------------------------------------------
// Patterns
// ---------------------------------------------------------------------------------------------

/// What a BY/GET pattern refers to for one element (Redis's `lookupKeyByPattern`).
#[derive(Debug)]
enum Target {
    /// `#`: the element itself.
    Itself(Bytes),
    /// A pattern without `*`: nothing (a fixed key is never looked up).
    Nothing,
    /// A key, read as a string, or a field of a hash (`key->field`).
    Key(Bytes, Option<Bytes>),
}

/// Substitutes `elem` for the first `*` of `pattern`. A `->` after the `*` followed by at least
/// one byte makes the rest a hash field. The searches stop at a NUL, as in C, but the parts
/// keep every byte.
fn substitute(pattern: &[u8], elem: &[u8]) -> Target {
    let text = c_str(pattern);
    if text == b"#" {
        return Target::Itself(Bytes::copy_from_slice(elem));
    }
    let Some(star) = text.iter().position(|&b| b == b'*') else {
        return Target::Nothing;
    };
    let arrow = text[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|p| star + 1 + p)
        .filter(|&f| f + 2 < text.len());
    let (post_end, field) = match arrow {
        Some(f) => (f, Some(Bytes::copy_from_slice(&pattern[f + 2..]))),
        None => (pattern.len(), None),
    };
    let mut key = Vec::with_capacity(star + elem.len() + (post_end - star - 1));
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(&pattern[star + 1..post_end]);
    Target::Key(Bytes::from(key), field)
}

/// Reads a pattern's target on the shard that owns it (counting keyspace hits and misses, and
/// expiring the key if its time has come, like Redis's `lookupKeyRead`).
fn resolve(ctx: &mut Ctx, t: &Target) -> Option<Bytes> {
    match t {
        Target::Itself(b) => Some(b.clone()),
        Target::Nothing => None,
        Target::Key(key, field) => {
            let e = ctx.lookup_read(key)?;
            match (&e.value, field) {
                (Value::Str(s), None) => Some(s.to_bytes()),
                (Value::Hash(h), Some(f)) => h.get(f).map(Bytes::copy_from_slice),
                _ => None,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Loading and ordering
// ---------------------------------------------------------------------------------------------

/// The elements to sort and what to do with them.
#[derive(Debug)]
struct Loaded {
    elems: Vec<Bytes>,
    /// The part of `elems` (after ordering) that is output.
    start: usize,
    end: usize,
    /// Whether to sort at all (false for `BY nosort`, except a set being stored).
    sort: bool,
    alpha: bool,
    /// Whether the BY pattern gives the sort keys.
    by: bool,
}

thread_local! {
    /// Set while a script's SORT runs on this thread (`from_script`).
    static FROM_SCRIPT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (a command a script called) as Redis runs commands from scripts: SORT of a set
/// sorts even with `BY nosort`.
pub(crate) fn from_script<R>(f: impl FnOnce() -> R) -> R {
    /// Clears the flag however `f` ends, a panic included.
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            FROM_SCRIPT.set(false);
        }
    }
    FROM_SCRIPT.set(true);
    let _reset = Reset;
    f()
}

/// Whether the running command was called by a script (on whichever shard runs it): XREAD
/// refuses BLOCK there.
pub(crate) fn running_from_script() -> bool {
    FROM_SCRIPT.get()
}

/// Reads the source key and computes the output range (Redis's LIMIT clamping). A list or
/// sorted set that is not sorted is read in its own order, already cut to the range; a sorted
/// set is converted to a skiplist first, as Redis 7.0 does.
fn load_source(ctx: &mut Ctx, key: &[u8], o: &SortOpts) -> Result<Loaded, &'static str> {
    let value = match ctx.lookup_read(key) {
        None => None,
        Some(e) => match &mut e.value {
            v @ (Value::List(_) | Value::Set(_) | Value::ZSet(_)) => Some(v),
            _ => return Err(ERR_WRONGTYPE),
        },
    };
    let mut sort = !o.dontsort;
    let mut alpha = o.alpha;
    let mut by = o.by.is_some();
    if !sort && matches!(value, Some(Value::Set(_))) && (o.store.is_some() || FROM_SCRIPT.get()) {
        // A set has no order of its own: a stored result, or one a script sees, is sorted so
        // that it is the same everywhere (Redis does this for replication and scripts).
        sort = true;
        alpha = true;
        by = false;
    }
    let len = match &value {
        Some(Value::List(l)) => l.len(),
        Some(Value::Set(s)) => s.len(),
        Some(Value::ZSet(z)) => z.len(),
        _ => 0,
    } as i64;
    let mut start = o.offset.max(0);
    let mut end = if o.count < 0 {
        len - 1
    } else {
        start.saturating_add(o.count - 1)
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    end = end.min(len - 1);
    let count = if end >= start {
        (end - start + 1) as usize
    } else {
        0
    };
    let start = start.max(0) as usize;
    let mut loaded = Loaded {
        elems: Vec::new(),
        start,
        end: start + count,
        sort,
        alpha,
        by,
    };
    let cut = |loaded: &mut Loaded, elems: Vec<Bytes>| {
        loaded.start = 0;
        loaded.end = elems.len();
        loaded.elems = elems;
    };
    match value {
        None => {}
        Some(Value::List(l)) if !sort => {
            let elems: Vec<Bytes> = if o.desc {
                l.iter_rev()
                    .skip(start)
                    .take(count)
                    .map(|i| i.with_bytes(Bytes::copy_from_slice))
                    .collect()
            } else {
                l.iter_from(start)
                    .take(count)
                    .map(|i| i.with_bytes(Bytes::copy_from_slice))
                    .collect()
            };
            cut(&mut loaded, elems);
        }
        Some(Value::List(l)) => {
            loaded.elems = l
                .iter()
                .map(|i| i.with_bytes(Bytes::copy_from_slice))
                .collect();
        }
        Some(Value::Set(s)) => {
            loaded.elems = s
                .iter()
                .map(|m| m.with_bytes(Bytes::copy_from_slice))
                .collect();
        }
        Some(Value::ZSet(z)) => {
            z.convert_to_skiplist();
            if sort {
                loaded.elems = z.iter().map(|(m, _)| Bytes::copy_from_slice(m)).collect();
            } else {
                let elems: Vec<Bytes> = if count == 0 {
                    Vec::new()
                } else if o.desc {
                    z.range(z.len() - 1 - start, count, true)
                        .map(|(m, _)| Bytes::copy_from_slice(m))
                        .collect()
                } else {
                    z.range(start, count, false)
                        .map(|(m, _)| Bytes::copy_from_slice(m))
                        .collect()
                };
                cut(&mut loaded, elems);
            }
        }
        Some(_) => unreachable!("checked above"),
    }
    Ok(loaded)
}

/// The BY pattern's target for every element, when the sort keys come from other keys.
fn by_targets(loaded: &Loaded, o: &SortOpts) -> Option<Vec<Target>> {
    let pattern = o.by.as_ref().filter(|_| loaded.sort && loaded.by)?;
    Some(
        loaded
            .elems
            .iter()
            .map(|e| substitute(pattern, e))
            .collect(),
    )
}

/// Compares strings like C's `strcmp` (Redis's `strcoll` in the C locale): up to the first NUL.
fn cmp_c_strings(a: &[u8], b: &[u8]) -> Ordering {
    c_str(a).cmp(c_str(b))
}

struct SortItem {
    elem: Bytes,
    /// Position in the source: the last tie-breaker, which makes the order total and equal to
    /// a stable sort's.
    pos: usize,
    score: f64,
    /// The BY value for ALPHA sorting (None: the BY key is missing).
    by: Option<Bytes>,
}

/// Orders the elements as Redis's `sortCompare` does. `by_values` holds the BY pattern's value
/// for each element when BY is used. Err when a numeric sort meets a value that is not a double
/// (nothing is reordered then: the command answers the error).
fn order(
    loaded: &mut Loaded,
    by_values: Option<Vec<Option<Bytes>>>,
    o: &SortOpts,
) -> Result<(), ()> {
    if !loaded.sort {
        return Ok(());
    }
    let storing = o.store.is_some();
    let mut items: Vec<SortItem> = Vec::with_capacity(loaded.elems.len());
    let mut bad_score = false;
    let mut by_values = by_values.map(|v| v.into_iter());
    for (pos, elem) in std::mem::take(&mut loaded.elems).into_iter().enumerate() {
        let by_value = by_values.as_mut().map(|v| v.next().flatten());
        let mut item = SortItem {
            elem,
            pos,
            score: 0.0,
            by: None,
        };
        let key: Option<&[u8]> = match &by_value {
            // A missing BY key leaves score 0 and no ALPHA value.
            Some(None) => None,
            Some(Some(v)) => Some(v),
            None => Some(&item.elem),
        };
        if let Some(key) = key {
            if loaded.alpha {
                if loaded.by {
                    item.by = by_value.clone().flatten();
                }
            } else {
                match strtod_c_string(key) {
                    Some((v, false)) if !v.is_nan() => item.score = v,
                    _ => bad_score = true,
                }
            }
        }
        items.push(item);
    }
    if bad_score {
        loaded.elems = items.into_iter().map(|i| i.elem).collect();
        return Err(());
    }
    let binary = |a: &[u8], b: &[u8]| a.cmp(b);
    let strings = |a: &[u8], b: &[u8]| {
        if storing {
            binary(a, b)
        } else {
            cmp_c_strings(a, b)
        }
    };
    let compare = |a: &SortItem, b: &SortItem| -> Ordering {
        if !loaded.alpha {
            a.score
                .partial_cmp(&b.score)
                .unwrap_or(Ordering::Equal)
                .then_with(|| binary(&a.elem, &b.elem))
        } else if loaded.by {
            match (&a.by, &b.by) {
                (Some(x), Some(y)) => strings(x, y),
                (x, y) => x.is_some().cmp(&y.is_some()),
            }
        } else {
            strings(&a.elem, &b.elem)
        }
    };
    // Equal keys keep the source's order, as under glibc's qsort (a merge sort), DESC included.
    let total = |a: &SortItem, b: &SortItem| {
        let by_key = if o.desc { compare(b, a) } else { compare(a, b) };
        by_key.then(a.pos.cmp(&b.pos))
    };
    let (start, end) = (loaded.start, loaded.end);
    if loaded.by && (start, end) != (0, items.len()) {
        // Like Redis's partial quicksort for BY with LIMIT: only the output range is put in
        // order, O(N + M log M).
        if end > start {
            if end < items.len() {
                items.select_nth_unstable_by(end, total);
            }
            if start > 0 {
                items[..end].select_nth_unstable_by(start, total);
            }
            items[start..end].sort_unstable_by(total);
        }
    } else {
        items.sort_unstable_by(total);
    }
    loaded.elems = items.into_iter().map(|i| i.elem).collect();
    Ok(())
}

/// The GET patterns' targets for every output element, in output order.
fn get_targets(loaded: &Loaded, o: &SortOpts) -> Vec<Target> {
    let mut out = Vec::with_capacity((loaded.end - loaded.start) * o.gets.len());
    for e in &loaded.elems[loaded.start..loaded.end] {
        for g in &o.gets {
            out.push(substitute(g, e));
        }
    }
    out
}

/// The output values: the elements in range, or the GET values.
fn outputs(loaded: &Loaded, gets: Option<Vec<Option<Bytes>>>) -> Vec<Option<Bytes>> {
    match gets {
        Some(v) => v,
        None => loaded.elems[loaded.start..loaded.end]
            .iter()
            .map(|e| Some(e.clone()))
            .collect(),
    }
}

fn reply_outputs(r: &mut Reply, out: &[Option<Bytes>]) {
    r.array(out.len());
    for v in out {
        match v {
            Some(b) => r.bulk(b),
            None => r.null(),
        }
    }
}

/// STORE: the output becomes a list (missing GET values as empty strings) replacing whatever
/// the destination held, TTL included; an empty output deletes the destination.
fn store(ctx: &mut Ctx, dest: &[u8], out: Vec<Option<Bytes>>) -> i64 {
    let n = out.len() as i64;
    let now = ctx.now_ms;
    // Redis counts a change per element stored, one for a destination an empty result
    // deleted, none when there was nothing to delete.
    if out.is_empty() {
        if ctx.db().remove(dest).is_some() {
            ctx.notify(class::GENERIC, "del", dest);
        } else {
            ctx.dirty(0);
        }
        return 0;
    }
    ctx.dirty(out.len() as u64);
    let mut list = ListValue::new(ctx.st.config.list_max_listpack_size);
    for v in &out {
        list.push(End::Tail, v.as_deref().unwrap_or_default());
    }
    ctx.db().insert(dest, Value::List(Box::new(list)), 0, now);
    ctx.notify(class::LIST, "sortstore", dest);
    n
}

// ---------------------------------------------------------------------------------------------
// Keyed path
// ---------------------------------------------------------------------------------------------

fn sort_keyed(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    run_keyed(ctx, a, r, false)
}

fn sort_ro_keyed(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    run_keyed(ctx, a, r, true)
}

/// The whole command on one shard: the source, the destination and any pattern keys are local.
fn run_keyed(ctx: &mut Ctx, a: &[Bytes], r: &mut Reply, readonly: bool) {
    let o = match parse(a, readonly) {
        Ok(o) => o,
        Err(e) => return r.error(e),
    };
    let mut loaded = match load_source(ctx, &a[1], &o) {
        Ok(l) => l,
        Err(e) => return r.error(e),
    };
    let by_values = by_targets(&loaded, &o).map(|ts| ts.iter().map(|t| resolve(ctx, t)).collect());
    if order(&mut loaded, by_values, &o).is_err() {
        return r.error(ERR_SCORES);
    }
    let gets = (!o.gets.is_empty()).then(|| {
        get_targets(&loaded, &o)
            .iter()
            .map(|t| resolve(ctx, t))
            .collect()
    });
    let out = outputs(&loaded, gets);
    match &o.store {
        Some(dest) => {
            let n = store(ctx, dest, out);
            r.int(n);
        }
        None => reply_outputs(r, &out),
    }
}

/// The keys SORT's (or SORT_RO's) BY and GET patterns may read, given the elements the source
/// holds on `sh` now: a superset of what the command reads. A script learns from them whether it
/// can run the command where it is (`crate::scripting`). Reads the source without touching it.
pub(crate) fn pattern_keys(sh: &Shard, db: usize, a: &[Bytes], readonly: bool) -> Vec<Bytes> {
    let Ok(o) = parse(a, readonly) else {
        return Vec::new();
    };
    if !o.reads_other_keys() {
        return Vec::new();
    }
    let st = sh.state.borrow();
    let Some((e, _)) = st.dbs[db].peek(&a[1]) else {
        return Vec::new();
    };
    let elems: Vec<Bytes> = match &e.value {
        Value::List(l) => l
            .iter()
            .map(|i| i.with_bytes(Bytes::copy_from_slice))
            .collect(),
        Value::Set(s) => s
            .iter()
            .map(|m| m.with_bytes(Bytes::copy_from_slice))
            .collect(),
        Value::ZSet(z) => z.iter().map(|(m, _)| Bytes::copy_from_slice(m)).collect(),
        _ => return Vec::new(),
    };
    let patterns: Vec<&Bytes> =
        o.by.iter()
            .filter(|_| !o.dontsort)
            .chain(o.gets.iter())
            .collect();
    let mut keys = Vec::new();
    for e in &elems {
        for p in &patterns {
            if let Target::Key(k, _) = substitute(p, e) {
                keys.push(k);
            }
        }
    }
    keys
}

// ---------------------------------------------------------------------------------------------
// Connection handler and global path
// ---------------------------------------------------------------------------------------------

fn sort(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(sort_command(c, a, false))
}

fn sort_ro(c: &mut Conn, a: Vec<Bytes>) -> LocalBoxFuture<'_, ()> {
    Box::pin(sort_command(c, a, true))
}

async fn sort_command(c: &mut Conn, a: Vec<Bytes>, readonly: bool) {
    let o = match parse(&a, readonly) {
        Ok(o) => o,
        Err(e) => return c.reply().error(e),
    };
    if !o.reads_other_keys() || c.shard.nshards() == 1 {
        return keyed_via_tx(c, a, readonly).await;
    }
    let shard = c.shard.clone();
    let held = match crate::tx::lock_all_shards_unless_in_exec(c).await {
        Ok(h) => h,
        Err(e) => return c.reply().error(e),
    };
    let result = run_global(&shard, c.db, a[1].clone(), o).await;
    if let Some(h) = held {
        h.release_all().await;
    }
    let mut r = c.reply();
    match result {
        Ok(Outcome::Values(out)) => reply_outputs(&mut r, &out),
        Ok(Outcome::Stored(n)) => r.int(n),
        Err(e) => r.error(e),
    }
}

/// The keyed path: the declared keys (source, destination) go through the transaction layer.
async fn keyed_via_tx(c: &mut Conn, a: Vec<Bytes>, readonly: bool) {
    let name: &[u8] = if readonly { b"sort_ro" } else { b"sort" };
    let spec = super::lookup(name).expect("SORT is in the command table");
    let cmd = crate::tx::TxCmd::new(spec, a, c.db);
    let shard = c.shard.clone();
    let label = c.label.clone();
    let res = if c.in_exec.is_some() {
        crate::tx::run_under_global_lock(&shard, cmd, c.resp3, &label).await
    } else {
        crate::tx::run_atomic(&shard, vec![cmd], c.resp3, &label).await
    };
    match res {
        Ok(r) => c.out.extend_from_slice(&r.buf),
        Err(e) => c.reply().error(e),
    }
}

enum Outcome {
    Values(Vec<Option<Bytes>>),
    Stored(i64),
}

/// The global path's steps, each on the shard that owns the data; the caller holds every shard.
async fn run_global(
    shard: &Rc<Shard>,
    db: usize,
    key: Bytes,
    o: SortOpts,
) -> Result<Outcome, &'static str> {
    let owner = shard.shard_of(&key);
    let opts = o.clone();
    let mut loaded = shard
        .run_on(owner, move |sh| {
            crate::tx::with_ctx(sh, db, |ctx| load_source(ctx, &key, &opts))
        })
        .await
        .map_err(|_| ERR_SHARD_GONE)??;
    let by_values = match by_targets(&loaded, &o) {
        Some(ts) => Some(resolve_everywhere(shard, db, ts).await?),
        None => None,
    };
    if order(&mut loaded, by_values, &o).is_err() {
        return Err(ERR_SCORES);
    }
    let gets = if o.gets.is_empty() {
        None
    } else {
        Some(resolve_everywhere(shard, db, get_targets(&loaded, &o)).await?)
    };
    let out = outputs(&loaded, gets);
    let Some(dest) = o.store else {
        return Ok(Outcome::Values(out));
    };
    let owner = shard.shard_of(&dest);
    let n = shard
        .run_on(owner, move |sh| {
            crate::tx::with_ctx(sh, db, |ctx| store(ctx, &dest, out))
        })
        .await
        .map_err(|_| ERR_SHARD_GONE)?;
    Ok(Outcome::Stored(n))
}

/// Resolves targets on the shards that own their keys: one job per shard, all at once.
async fn resolve_everywhere(
    shard: &Rc<Shard>,
    db: usize,
    targets: Vec<Target>,
) -> Result<Vec<Option<Bytes>>, &'static str> {
    let mut out: Vec<Option<Bytes>> = Vec::with_capacity(targets.len());
    let mut by_shard: BTreeMap<usize, (Vec<usize>, Vec<Target>)> = BTreeMap::new();
    for (i, t) in targets.into_iter().enumerate() {
        match t {
            Target::Key(ref k, _) => {
                let slot = by_shard.entry(shard.shard_of(k)).or_default();
                slot.0.push(i);
                slot.1.push(t);
                out.push(None);
            }
            Target::Itself(b) => out.push(Some(b)),
            Target::Nothing => out.push(None),
        }
    }
    let mut jobs = Vec::with_capacity(by_shard.len());
    let mut positions = Vec::with_capacity(by_shard.len());
    for (s, (idx, ts)) in by_shard {
        positions.push(idx);
        jobs.push(shard.run_on(s, move |sh| {
            crate::tx::with_ctx(sh, db, |ctx| {
                ts.iter().map(|t| resolve(ctx, t)).collect::<Vec<_>>()
            })
        }));
    }
    for (idx, res) in positions
        .into_iter()
        .zip(futures::future::join_all(jobs).await)
    {
        let values = res.map_err(|_| ERR_SHARD_GONE)?;
        for (i, v) in idx.into_iter().zip(values) {
            out[i] = v;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    fn keys(line: &str) -> Vec<usize> {
        sort_keys(&args(line)).unwrap()
    }

    #[test]
    fn declared_keys_follow_sort_get_keys() {
        assert_eq!(keys("SORT k"), vec![1]);
        assert_eq!(keys("SORT k STORE d"), vec![1, 3]);
        assert_eq!(keys("SORT k STORE d STORE e"), vec![1, 5]);
        assert_eq!(keys("SORT k STORE by"), vec![1, 3]);
        assert_eq!(keys("SORT k LIMIT 0 1 STORE d"), vec![1, 6]);
        assert_eq!(keys("SORT k LIMIT 1 STORE x"), vec![1]);
        assert_eq!(keys("SORT k GET STORE d"), vec![1]);
        assert_eq!(keys("SORT k STORE"), vec![1]);
    }

    fn key_of(t: Target) -> (Vec<u8>, Option<Vec<u8>>) {
        match t {
            Target::Key(k, f) => (k.to_vec(), f.map(|f| f.to_vec())),
            other => panic!("not a key: {other:?}"),
        }
    }

    #[test]
    fn patterns_substitute_the_first_star_and_split_hash_fields() {
        assert_eq!(key_of(substitute(b"w_*", b"3")), (b"w_3".to_vec(), None));
        assert_eq!(
            key_of(substitute(b"h_*->f*", b"a")),
            (b"h_a".to_vec(), Some(b"f*".to_vec()))
        );
        assert_eq!(key_of(substitute(b"*->", b"a")), (b"a->".to_vec(), None));
        assert_eq!(
            key_of(substitute(b"a->b*c", b"x")),
            (b"a->bxc".to_vec(), None)
        );
        assert_eq!(key_of(substitute(b"*_*", b"x")), (b"x_*".to_vec(), None));
        assert!(matches!(substitute(b"#", b"e"), Target::Itself(b) if &b[..] == b"e"));
        assert!(matches!(substitute(b"#\0x", b"e"), Target::Itself(_)));
        assert!(matches!(substitute(b"nosort", b"e"), Target::Nothing));
        // A '*' after a NUL is invisible to C.
        assert!(matches!(substitute(b"a\0*", b"e"), Target::Nothing));
    }

    fn loaded(elems: &[&str], alpha: bool, by: bool) -> Loaded {
        Loaded {
            elems: elems
                .iter()
                .map(|e| Bytes::copy_from_slice(e.as_bytes()))
                .collect(),
            start: 0,
            end: elems.len(),
            sort: true,
            alpha,
            by,
        }
    }

    fn opts(line: &str) -> SortOpts {
        parse(&args(line), false).unwrap()
    }

    fn names(l: &Loaded) -> Vec<&str> {
        l.elems
            .iter()
            .map(|e| std::str::from_utf8(e).unwrap())
            .collect()
    }

    #[test]
    fn numeric_ties_fall_back_to_the_bytes_and_errors_leave_the_order() {
        let mut l = loaded(&["1.0", "01", "1", "-inf", " 2"], false, false);
        order(&mut l, None, &opts("SORT k")).unwrap();
        assert_eq!(names(&l), ["-inf", "01", "1", "1.0", " 2"]);
        let mut l = loaded(&["1", "x", "2"], false, false);
        assert!(order(&mut l, None, &opts("SORT k")).is_err());
        assert_eq!(names(&l), ["1", "x", "2"]);
    }

    #[test]
    fn alpha_by_puts_missing_values_first_and_keeps_ties_stable() {
        let mut l = loaded(&["a", "b", "c", "d"], true, true);
        let by = vec![
            Some(Bytes::from_static(b"y")),
            None,
            Some(Bytes::from_static(b"x")),
            None,
        ];
        order(&mut l, Some(by), &opts("SORT k BY w_* ALPHA")).unwrap();
        assert_eq!(names(&l), ["b", "d", "c", "a"]);
    }

    /// BY with LIMIT orders only the output range; it must hold what a full stable sort puts
    /// there, ties (equal or missing BY values) included.
    #[test]
    fn a_partial_sort_agrees_with_the_full_sort_on_the_range() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for round in 0..500 {
            let n = rng.gen_range(0..40);
            let elems: Vec<String> = (0..n).map(|i| format!("e{}", i % 17)).collect();
            let refs: Vec<&str> = elems.iter().map(|s| s.as_str()).collect();
            let by: Vec<Option<Bytes>> = (0..n)
                .map(|_| {
                    rng.gen_bool(0.8)
                        .then(|| Bytes::from(rng.gen_range(0..6).to_string()))
                })
                .collect();
            let alpha = rng.gen_bool(0.5);
            let desc = if rng.gen_bool(0.5) { " DESC" } else { "" };
            let o = opts(&format!("SORT k BY w_*{desc}"));
            let mut full = loaded(&refs, alpha, true);
            order(&mut full, Some(by.clone()), &o).unwrap();
            let start = rng.gen_range(0..=n);
            let end = rng.gen_range(start..=n);
            let mut part = loaded(&refs, alpha, true);
            part.start = start;
            part.end = end;
            order(&mut part, Some(by), &o).unwrap();
            assert_eq!(
                part.elems[start..end],
                full.elems[start..end],
                "round {round}: {start}..{end} of {n}"
            );
        }
    }

    #[test]
    fn alpha_compares_c_strings_unless_storing() {
        let mut l = loaded(&["a\0z", "a\0b", "a"], true, false);
        order(&mut l, None, &opts("SORT k ALPHA")).unwrap();
        assert_eq!(l.elems, ["a\0z", "a\0b", "a"]);
        let mut l = loaded(&["a\0z", "a\0b", "a"], true, false);
        order(&mut l, None, &opts("SORT k ALPHA STORE d")).unwrap();
        assert_eq!(l.elems, ["a", "a\0b", "a\0z"]);
    }
}

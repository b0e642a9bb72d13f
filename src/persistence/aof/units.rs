//! All-or-nothing brackets for the units that do not go through the multi-shard write-back
//! (`tx::execute_with_copies` brackets those itself):
//! - a single-shard unit (EXEC block or script on one shard) runs in one synchronous step, so
//!   its records are contiguous in the shard's pending log: `mark` before, `seal_single` after
//!   brackets them as a unit of one part (only when there is more than one record);
//! - an optimistic script run that escalates has its writes undone, so `discard` drops its
//!   records again (the global re-run logs the writes that stand);
//! - a unit run under the global lock (escalated script, EXEC block with connection-level
//!   commands) writes on any shard at any moment while it holds every shard: each shard holds
//!   its records aside from `open` until `seal`, and the shards that wrote log their parts as
//!   brackets with the same id and the number of parts (`global_begin` / `global_end`).
//!
//! - a single command whose effect takes several records (a recreated key, a served blocking
//!   pop) is a unit of one part of its own (`bracket_command`), with ids of its own; a step
//!   that brackets its records as a whole removes those inner brackets first (`flatten_since`).
//!
//! Must never: nest brackets (the loader understands one level; inside a global unit the
//! tx_begin/tx_wrap/tx_end of inner multi-shard steps are no-ops), or hold records aside
//! outside a global unit (they would never reach the file).

use std::rc::Rc;
use std::sync::atomic::Ordering;

use super::records;
use super::{TX_BEGIN, TX_END};
use crate::shard::{Shard, ShardState};

/// A shard's records of an open global unit.
pub struct OpenUnit {
    id: u64,
    pub(super) buf: Vec<u8>,
}

/// Where a shard's pending log stood before a synchronous step.
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    pub(super) len: usize,
    appended: u64,
    cur_db: usize,
    command_units: u64,
}

/// Where this shard's pending log stands now (None while the AOF is off or a global unit is
/// open here: that unit's bracket covers the step).
pub fn mark(st: &ShardState) -> Option<Mark> {
    let log = st.aof.as_ref().filter(|l| l.unit.is_none())?;
    Some(Mark {
        len: log.buf.len(),
        appended: log.appended,
        cur_db: log.cur_db,
        command_units: log.command_units,
    })
}

/// Marks the ids of one-command brackets: disjoint from the unit ids `Shard::new_tx_id` hands
/// out (shard << 48 | n), and unique across shards since the shard is part of the id too (the
/// loader matches parts by id over every shard's log).
const COMMAND_UNIT: u64 = 1 << 62;

fn is_command_unit(args: &[bytes::Bytes]) -> bool {
    std::str::from_utf8(args.get(1).map_or(&b""[..], |a| &a[..]))
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .is_some_and(|id| id & COMMAND_UNIT != 0)
}

/// Makes the records one command wrote (`rec`, not yet in the log) one unit of one part when
/// they are more than one record, so that a crash between them replays none of them. Inside
/// a global unit its bracket already covers them.
pub(super) fn bracket_command(log: &mut super::AofLog, rec: &mut Vec<u8>) {
    if log.unit.is_some() || records::count_records(rec, 2) < 2 {
        return;
    }
    log.command_units += 1;
    let id = COMMAND_UNIT | ((log.id as u64) << 48) | (log.command_units & ((1 << 48) - 1));
    let mut out = bracket_begin(id, 1);
    out.extend_from_slice(rec);
    out.extend_from_slice(&bracket_end(id));
    *rec = out;
}

/// Removes the one-command brackets a step wrote since `mark`, before the step's own bracket
/// goes around its records (the loader understands one level of brackets).
pub(super) fn flatten_since(log: &mut super::AofLog, mark: &Mark) {
    if log.command_units == mark.command_units || log.buf.len() < mark.len {
        return;
    }
    let region = log.buf.split_off(mark.len);
    let mut at = 0;
    while at < region.len() {
        let records::Read::Record(args, next) = records::read_record(&region, at) else {
            // Never happens (the log holds whole records); keep the rest as it is.
            log.buf.extend_from_slice(&region[at..]);
            break;
        };
        let marker = args[0][..] == *TX_BEGIN || args[0][..] == *TX_END;
        if !(marker && is_command_unit(&args)) {
            log.buf.extend_from_slice(&region[at..next]);
        }
        at = next;
    }
    log.appended -= (region.len() - (log.buf.len() - mark.len)) as u64;
}

/// The record opening a unit's part (`TESSERA.TXBEGIN id participants`).
pub(super) fn bracket_begin(id: u64, participants: usize) -> Vec<u8> {
    let mut rec = Vec::new();
    records::push_cmd(
        &mut rec,
        &[
            TX_BEGIN,
            id.to_string().as_bytes(),
            participants.to_string().as_bytes(),
        ],
    );
    rec
}

fn bracket_end(id: u64) -> Vec<u8> {
    let mut rec = Vec::new();
    records::push_cmd(&mut rec, &[TX_END, id.to_string().as_bytes()]);
    rec
}

/// Brackets what this synchronous step appended since `mark` as unit `id` with one part, when
/// that is more than one record (a single record is atomic by itself).
pub fn seal_single(st: &mut ShardState, mark: Option<Mark>, id: u64) {
    let (Some(mark), Some(log)) = (mark, st.aof.as_mut()) else {
        return;
    };
    if log.unit.is_some() || log.buf.len() < mark.len {
        return;
    }
    flatten_since(log, &mark);
    if records::count_records(&log.buf[mark.len..], 2) < 2 {
        return;
    }
    let begin = bracket_begin(id, 1);
    let end = bracket_end(id);
    log.appended += (begin.len() + end.len()) as u64;
    log.buf.splice(mark.len..mark.len, begin);
    log.buf.extend_from_slice(&end);
}

/// Drops what this synchronous step appended since `mark` (its effects were undone).
pub fn discard(st: &mut ShardState, mark: Option<Mark>) {
    let (Some(mark), Some(log)) = (mark, st.aof.as_mut()) else {
        return;
    };
    if log.unit.is_some() || log.buf.len() < mark.len {
        return;
    }
    log.buf.truncate(mark.len);
    log.appended = mark.appended;
    log.cur_db = mark.cur_db;
    log.command_units = mark.command_units;
}

/// Starts holding this shard's records aside as its part of global unit `id`.
pub fn open_part(st: &mut ShardState, id: u64) {
    if let Some(log) = st.aof.as_mut() {
        if log.unit.is_none() {
            // The part names its database itself: the log may switch files before it is sealed.
            log.cur_db = usize::MAX;
            log.unit = Some(OpenUnit {
                id,
                buf: Vec::new(),
            });
        }
    }
}

/// Whether this shard holds records of global unit `id`.
pub fn wrote(st: &ShardState, id: u64) -> bool {
    st.aof
        .as_ref()
        .and_then(|l| l.unit.as_ref())
        .is_some_and(|u| u.id == id && !u.buf.is_empty())
}

/// Ends this shard's part of global unit `id`: with `participants` (this shard counted among
/// them) the records go to the log as one bracket; otherwise as they are (records that came
/// after the count, e.g. an eviction, belong to no part).
pub fn seal(st: &mut ShardState, id: u64, participants: Option<usize>) {
    let Some(log) = st.aof.as_mut() else {
        return;
    };
    if log.unit.as_ref().is_none_or(|u| u.id != id) {
        return;
    }
    let part = log.unit.take().map(|u| u.buf).unwrap_or_default();
    if part.is_empty() {
        return;
    }
    let mut rec = Vec::with_capacity(part.len() + 64);
    match participants {
        Some(n) => {
            rec.extend_from_slice(&bracket_begin(id, n));
            rec.extend_from_slice(&part);
            rec.extend_from_slice(&bracket_end(id));
        }
        None => rec = part,
    }
    log.push_raw(&rec);
}

/// An open global unit; `end` seals it. Dropped without `end` (the coordinator went away), it
/// is sealed from a task of its own, so that no shard keeps holding records aside.
pub struct GlobalUnit {
    sh: Rc<Shard>,
    id: u64,
    open: bool,
}

impl GlobalUnit {
    /// Seals the unit everywhere: the shards that wrote log one bracket each, all naming how
    /// many did. Called before the global locks are released.
    pub async fn end(mut self) {
        self.open = false;
        global_end(&self.sh, self.id).await;
    }
}

impl Drop for GlobalUnit {
    fn drop(&mut self) {
        if self.open {
            let (sh, id) = (self.sh.clone(), self.id);
            glommio::spawn_local(async move { global_end(&sh, id).await }).detach();
        }
    }
}

/// Opens global unit `id` on every shard. The caller holds every shard whole.
pub async fn global_begin(sh: &Rc<Shard>, id: u64) -> GlobalUnit {
    let open = sh.globals.aof.enabled.load(Ordering::Relaxed);
    if open {
        let _ = sh
            .run_on_all(move |s| open_part(&mut s.state.borrow_mut(), id))
            .await;
    }
    GlobalUnit {
        sh: sh.clone(),
        id,
        open,
    }
}

async fn global_end(sh: &Rc<Shard>, id: u64) {
    let wrote = sh
        .run_on_all(move |s| wrote(&s.state.borrow(), id))
        .await
        .unwrap_or_default();
    let n = wrote.iter().filter(|&&w| w).count();
    let wrote = std::sync::Arc::new(wrote);
    let _ = sh
        .run_on_all(move |s| {
            let counted = wrote.get(s.id).copied().unwrap_or(false);
            seal(&mut s.state.borrow_mut(), id, counted.then_some(n));
        })
        .await;
}

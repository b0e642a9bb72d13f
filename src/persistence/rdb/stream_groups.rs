//! The consumer-group part of a stream in RDB files and DUMP payloads, as Redis 7.0 writes it
//! (`rdbSaveObject` / `rdbLoadObject` for `RDB_TYPE_STREAM_LISTPACKS_2`): the group count, then
//! per group (in name order) its name, last-delivered ID, entries-read counter, its PEL (raw
//! 16-byte IDs with delivery time and count) and its consumers (name, seen-time, and the raw IDs
//! of the PEL entries each owns).
//!
//! Owns only these bytes; `rdb::value` writes and reads the rest of the stream and calls in
//! here. Reading never trusts the input: duplicated groups, consumers or PEL entries, a
//! consumer entry missing from the group PEL, and (unlike Redis without deep sanitization) a
//! group PEL entry no consumer owns are refused as corrupt, never a panic.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::io::{read_len, read_string, write_len, write_string, Source};
use super::RdbError;
use crate::types::stream_groups::{Consumer, Group, Nack, StreamGroups, StreamMeta};
use crate::types::stream_id::StreamId;

fn corrupt(why: &str) -> RdbError {
    RdbError::corrupt(why)
}

/// Appends the groups (`rdbSaveObject`'s consumer-group section).
pub fn write_groups(out: &mut Vec<u8>, groups: &StreamGroups, compress: bool) {
    write_len(out, groups.len() as u64);
    for (name, g) in groups.iter() {
        write_string(out, name, compress);
        write_len(out, g.last_id.ms);
        write_len(out, g.last_id.seq);
        // -1 (unknown) is written as the 64-bit length 2^64-1, as Redis's rdbSaveLen does.
        write_len(out, g.entries_read as u64);
        write_len(out, g.pel.len() as u64);
        for (id, n) in &g.pel {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&n.delivery_time.to_le_bytes());
            write_len(out, n.delivery_count as u64);
        }
        write_len(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            write_string(out, cname, compress);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            write_len(out, c.pel.len() as u64);
            for id in &c.pel {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
    }
}

fn read_id(src: &mut impl Source) -> Result<StreamId, RdbError> {
    let mut raw = [0u8; 16];
    src.read_exact(&mut raw)?;
    StreamId::from_be_bytes(&raw).ok_or_else(|| corrupt("bad stream ID"))
}

fn read_ms(src: &mut impl Source) -> Result<i64, RdbError> {
    let mut raw = [0u8; 8];
    src.read_exact(&mut raw)?;
    Ok(i64::from_le_bytes(raw))
}

/// Reads the groups of a stream whose entries are already loaded (`meta`): `v2` for
/// `STREAM_LISTPACKS_2` (entries-read stored), else the counter is estimated as Redis does.
pub fn read_groups(
    src: &mut impl Source,
    v2: bool,
    meta: &StreamMeta,
) -> Result<StreamGroups, RdbError> {
    let mut groups = StreamGroups::default();
    let count = read_len(src)?;
    for _ in 0..count {
        let name = Bytes::from(read_string(src)?);
        let last_id = StreamId::new(read_len(src)?, read_len(src)?);
        let entries_read = if v2 {
            read_len(src)? as i64
        } else {
            meta.estimate_entries_read(last_id)
        };
        if groups.get(&name).is_some() {
            return Err(corrupt("Duplicated consumer group name"));
        }
        let mut pel: BTreeMap<StreamId, Nack> = BTreeMap::new();
        let mut owned: BTreeMap<StreamId, Option<Bytes>> = BTreeMap::new();
        let pel_size = read_len(src)?;
        for _ in 0..pel_size {
            let id = read_id(src)?;
            let delivery_time = read_ms(src)?;
            let delivery_count = read_len(src)? as i64;
            if pel
                .insert(
                    id,
                    Nack {
                        consumer: Bytes::new(),
                        delivery_time,
                        delivery_count,
                    },
                )
                .is_some()
            {
                return Err(corrupt(
                    "Duplicated global PEL entry loading stream consumer group",
                ));
            }
            owned.insert(id, None);
        }
        let mut consumers: BTreeMap<Bytes, Consumer> = BTreeMap::new();
        let consumer_count = read_len(src)?;
        for _ in 0..consumer_count {
            let cname = Bytes::from(read_string(src)?);
            if consumers.contains_key(&cname) {
                return Err(corrupt("Duplicate stream consumer detected."));
            }
            let seen_time = read_ms(src)?;
            let mut cpel = BTreeSet::new();
            let n = read_len(src)?;
            for _ in 0..n {
                let id = read_id(src)?;
                let Some(nack) = pel.get_mut(&id) else {
                    return Err(corrupt("Consumer entry not found in group global PEL"));
                };
                if !cpel.insert(id) {
                    return Err(corrupt(
                        "Duplicated consumer PEL entry loading a stream consumer group",
                    ));
                }
                // One owner per entry: a second claim on it is refused (Redis would leave a
                // dangling reference in the first owner's PEL).
                match owned.get_mut(&id) {
                    Some(slot @ None) => *slot = Some(cname.clone()),
                    _ => return Err(corrupt("stream PEL entry owned by two consumers")),
                }
                nack.consumer = cname.clone();
            }
            consumers.insert(
                cname,
                Consumer {
                    seen_time,
                    pel: cpel,
                },
            );
        }
        if owned.values().any(Option::is_none) {
            return Err(corrupt("Stream CG PEL entry without consumer"));
        }
        let mut g = Group::new(last_id, entries_read);
        g.pel = pel;
        g.consumers = consumers;
        groups.insert(name, g);
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::rdb::io::SliceSource;
    use crate::types::stream_groups::ENTRIES_READ_INVALID;

    #[test]
    fn groups_round_trip_and_bad_input_is_refused() {
        let mut gs = StreamGroups::default();
        gs.create(&Bytes::from_static(b"g"), StreamId::new(5, 0), 3);
        gs.create(
            &Bytes::from_static(b"h"),
            StreamId::new(1, 0),
            ENTRIES_READ_INVALID,
        );
        let g = gs.get_mut(b"g").unwrap();
        let alice = Bytes::from_static(b"alice");
        g.touch_consumer(&alice, 1_700_000_000_000, true);
        g.touch_consumer(&Bytes::from_static(b"bob"), 7, true);
        g.deliver(StreamId::new(1, 0), &alice, 42);
        g.deliver(StreamId::new(2, 0), &alice, 43);
        let mut out = Vec::new();
        write_groups(&mut out, &gs, true);
        let back = read_groups(&mut SliceSource::new(&out), true, &StreamMeta::default()).unwrap();
        assert_eq!(back, gs);
        // Every truncation fails cleanly.
        for cut in 0..out.len() {
            assert!(read_groups(
                &mut SliceSource::new(&out[..cut]),
                true,
                &StreamMeta::default()
            )
            .is_err());
        }
        // Flipped bytes never panic.
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x5a;
            let _ = read_groups(&mut SliceSource::new(&bad), true, &StreamMeta::default());
        }
    }
}

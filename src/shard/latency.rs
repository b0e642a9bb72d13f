//! Per-command latency histograms, for INFO's `latencystats` section and LATENCY HISTOGRAM
//! (Redis 7.0's `latency-tracking`), and the latency monitor's event series (LATENCY LATEST,
//! HISTORY, GRAPH, DOCTOR; `latency-monitor-threshold`).
//!
//! Redis keeps one HDR histogram per command (subcommands apart) and records each call's
//! duration in it: whole microseconds, as nanoseconds (`usec * 1000`), clamped into the
//! histogram's range of 1 ns to 1 s with 2 significant figures. A shard here keeps one
//! [`Histogram`] per statistics slot (`crate::commands::stat_index`), created by the slot's
//! first recorded call; INFO adds the shards' counts together ([`Merged`]) and reads the
//! configured percentiles off the sum the way Redis's HDR library does.
//!
//! The layout is HDR's: values below 256 ns each have a counter of their own (bucket 0); above,
//! bucket `b` covers `[2^(7+b), 2^(8+b))` in 128 sub-buckets `2^b` ns wide. A value's counter is
//! `b * 128 + (value >> b)`, where `b` comes from the value's leading zeros: recording is a
//! leading-zero count, a shift and an increment into a fixed array.
//!
//! Memory: a shard holds one histogram per command it ran, so a command can have one on every
//! shard (Redis has one). Two things keep them small, 10 KB instead of HDR's 24 KB: the array
//! holds only the counters a whole number of microseconds can reach (1 ns, for a call under a
//! microsecond, then 1000 ns and up: HDR counters 1 and 506 to 3054), and the counters are 32
//! bits, a counter that wraps around being remembered in a side list (which stays empty until a
//! command ran 4 billion times in one counter's range on one shard).

/// Smallest value a histogram records, in nanoseconds (smaller ones count as this).
pub const LOWEST_NS: u64 = 1;
/// Largest value a histogram records, in nanoseconds (larger ones count as this).
pub const HIGHEST_NS: u64 = 1_000_000_000;

/// Bits of a sub-bucket index: 2 significant figures need 200 distinct steps, and the next
/// power of two is 256.
const SUB_BITS: u32 = 8;
/// Sub-buckets in the upper half of a bucket (the lower half overlaps the previous bucket).
const HALF: usize = 1 << (SUB_BITS - 1);

/// Buckets needed until one reaches past `HIGHEST_NS`, as HDR counts them.
const fn bucket_count() -> usize {
    let mut reach: u64 = 1 << SUB_BITS;
    let mut n = 1;
    while reach <= HIGHEST_NS {
        reach <<= 1;
        n += 1;
    }
    n
}

/// Counters of an HDR histogram of Redis's parameters (its `counts_len`: 3072).
pub const COUNTS: usize = (bucket_count() + 1) * HALF;

/// The HDR counter of a value in `LOWEST_NS..=HIGHEST_NS`.
#[inline]
const fn index_of(ns: u64) -> usize {
    let bucket = (u64::BITS - (ns | ((1 << SUB_BITS) - 1)).leading_zeros()) - SUB_BITS;
    ((bucket as usize) << (SUB_BITS - 1)) + (ns >> bucket) as usize
}

/// The HDR counter of one microsecond, the first one a call of a microsecond or more reaches.
const FIRST_US: usize = index_of(1000);
/// A histogram's own counters: the 1 ns one (calls under a microsecond), then HDR's from
/// `FIRST_US` up to the one of `HIGHEST_NS`.
const SLOTS: usize = index_of(HIGHEST_NS) - FIRST_US + 2;

/// A histogram's counter of a call that took `usec` microseconds.
#[inline]
fn slot_of_us(usec: u64) -> usize {
    let ns = usec.saturating_mul(1000).clamp(LOWEST_NS, HIGHEST_NS);
    // 1 ns is HDR counter 1, which lands on slot 0; the others move down by `FIRST_US - 1`.
    index_of(ns).saturating_sub(FIRST_US - 1)
}

/// The HDR counter of a histogram's counter.
fn hdr_index(slot: usize) -> usize {
    if slot == 0 {
        index_of(LOWEST_NS)
    } else {
        slot + FIRST_US - 1
    }
}

/// The values counter `i` stands for: (the lowest, how many).
fn range_of(i: usize) -> (u64, u64) {
    let bucket = (i >> (SUB_BITS - 1)).saturating_sub(1);
    let sub = (i - (bucket << (SUB_BITS - 1))) as u64;
    (sub << bucket, 1 << bucket)
}

/// One command's latencies on one shard.
pub struct Histogram(Box<Counters>);

struct Counters {
    counts: [u32; SLOTS],
    /// Counters that wrapped around: (slot, 2^32 times how often).
    wrapped: Vec<(u16, u64)>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram(Box::new(Counters {
            counts: [0; SLOTS],
            wrapped: Vec::new(),
        }))
    }

    /// Records a call that took `usec` microseconds (as `usec * 1000` ns, within the range).
    #[inline]
    pub fn record_us(&mut self, usec: u64) {
        let slot = slot_of_us(usec);
        let c = &mut self.0.counts[slot];
        *c = c.wrapping_add(1);
        if *c == 0 {
            self.wrapped(slot);
        }
    }

    /// Takes back one `record_us(usec)`.
    pub fn unrecord_us(&mut self, usec: u64) {
        let slot = slot_of_us(usec);
        let c = &mut self.0.counts[slot];
        if *c == 0 {
            // The low 32 bits wrapped when it was recorded: borrow from the high part.
            if let Some(i) = self.0.wrapped.iter().position(|(s, _)| *s as usize == slot) {
                self.0.wrapped[i].1 = self.0.wrapped[i].1.saturating_sub(1 << 32);
                if self.0.wrapped[i].1 == 0 {
                    self.0.wrapped.remove(i);
                }
                *c = u32::MAX;
            }
            return;
        }
        *c -= 1;
    }

    #[cold]
    fn wrapped(&mut self, slot: usize) {
        let w = &mut self.0.wrapped;
        match w.iter_mut().find(|(s, _)| *s as usize == slot) {
            Some((_, n)) => *n += 1 << 32,
            None => w.push((slot as u16, 1 << 32)),
        }
    }

    /// The HDR counters that are not zero, as (HDR counter, count).
    pub fn nonzero(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        let c = &self.0;
        c.counts.iter().enumerate().filter_map(move |(slot, &n)| {
            let high: u64 = c
                .wrapped
                .iter()
                .filter(|(s, _)| *s as usize == slot)
                .map(|(_, h)| h)
                .sum();
            let n = n as u64 + high;
            (n != 0).then_some((hdr_index(slot), n))
        })
    }
}

/// A shard's histograms, one per statistics slot, each created by its slot's first call.
#[derive(Default)]
pub struct LatencyStats {
    slots: Vec<Option<Histogram>>,
}

impl LatencyStats {
    pub fn new(slots: usize) -> LatencyStats {
        LatencyStats {
            slots: (0..slots).map(|_| None).collect(),
        }
    }

    /// Records a call of statistics slot `slot` that took `usec` microseconds.
    #[inline]
    pub fn record(&mut self, slot: usize, usec: u64) {
        self.slots[slot]
            .get_or_insert_with(Histogram::new)
            .record_us(usec);
    }

    /// Takes back one `record(slot, usec)`.
    pub fn unrecord(&mut self, slot: usize, usec: u64) {
        if let Some(h) = self.slots[slot].as_mut() {
            h.unrecord_us(usec);
        }
    }

    pub fn get(&self, slot: usize) -> Option<&Histogram> {
        self.slots.get(slot)?.as_ref()
    }

    /// CONFIG RESETSTAT: every histogram goes, as in Redis.
    pub fn reset(&mut self) {
        self.slots.iter_mut().for_each(|h| *h = None);
    }

    /// The non-zero counters of every slot that has a histogram, for INFO to merge.
    pub fn export(&self) -> Exported {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, h)| {
                let h = h.as_ref()?;
                Some((slot, h.nonzero().map(|(i, c)| (i as u16, c)).collect()))
            })
            .collect()
    }
}

/// What `LatencyStats::export` gives for one shard: (slot, non-zero counters) per histogram.
pub type Exported = Vec<(usize, Vec<(u16, u64)>)>;

/// The shards' exported histograms added together, one per statistics slot (`slots` of them);
/// None for a slot no shard has a histogram for.
pub fn merge_exports<'a>(
    slots: usize,
    parts: impl IntoIterator<Item = &'a Exported>,
) -> Vec<Option<Merged>> {
    let mut by_slot: Vec<Option<Merged>> = (0..slots).map(|_| None).collect();
    for part in parts {
        for (slot, counters) in part {
            let m = by_slot[*slot].get_or_insert_with(Default::default);
            for &(i, n) in counters {
                m.add(i as usize, n);
            }
        }
    }
    by_slot
}

/// Several shards' histograms of one slot, added counter by counter.
pub struct Merged {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Merged {
    fn default() -> Self {
        Merged {
            counts: vec![0; COUNTS],
            total: 0,
        }
    }
}

impl Merged {
    pub fn add(&mut self, counter: usize, count: u64) {
        self.counts[counter] += count;
        self.total += count;
    }

    pub fn add_histogram(&mut self, h: &Histogram) {
        for (i, c) in h.nonzero() {
            self.add(i, c);
        }
    }

    /// The value at `percentile` (0 to 100), in nanoseconds, as HDR's `value_at_percentile`
    /// finds it: the first counter where the running count reaches `percentile` of the total
    /// (rounded to the nearest count, at least 1), answered with the highest value the counter
    /// stands for; for percentile 0, the lowest. 0 for an empty histogram.
    pub fn value_at_percentile(&self, percentile: f64) -> u64 {
        let p = if percentile < 100.0 {
            percentile
        } else {
            100.0
        };
        // The float-to-integer conversion truncates toward zero, like C's cast.
        let wanted = ((p / 100.0) * self.total as f64 + 0.5) as i64;
        let wanted = wanted.max(1) as u64;
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= wanted {
                let (lowest, width) = range_of(i);
                return if percentile == 0.0 {
                    lowest
                } else {
                    lowest + width - 1
                };
            }
        }
        0
    }
}

impl Merged {
    /// The cumulative distribution LATENCY HISTOGRAM replies with: walking the counters with
    /// HDR's logarithmic iterator (first bucket 1024 ns, base 2), as Redis 7.0 does, each
    /// reporting step whose cumulative count grew gives (the highest value of the counter the
    /// step stopped at, in whole microseconds; the calls up to and including that counter).
    pub fn cumulative_distribution(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut level: u64 = 1024;
        let mut cumulative = 0u64;
        let mut previous = 0u64;
        // The iterator starts before the first counter, at value 0.
        let mut index: isize = -1;
        let mut value = 0u64;
        let mut highest = 0u64;
        let value_at = |i: usize| range_of(i).0;
        loop {
            let more_counts = cumulative < self.total;
            let next_value = value_at((index + 1) as usize);
            if !(more_counts || (index + 1 < COUNTS as isize && next_value > level)) {
                break;
            }
            // One reporting step: move until a counter's value reaches the level.
            loop {
                if value >= level {
                    level *= 2;
                    break;
                }
                if index + 1 >= COUNTS as isize {
                    // Past the last counter: HDR reports what it has.
                    level *= 2;
                    break;
                }
                index += 1;
                cumulative += self.counts[index as usize];
                let (lowest, width) = range_of(index as usize);
                value = lowest;
                highest = lowest + width - 1;
            }
            if cumulative > previous {
                out.push((highest / 1000, cumulative));
            }
            previous = cumulative;
            if index + 1 >= COUNTS as isize && cumulative >= self.total {
                break;
            }
        }
        out
    }

    /// Calls recorded.
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// Samples an event series keeps (Redis's `LATENCY_TS_LEN`).
pub const SERIES_LEN: usize = 160;

/// One second's worst latency of an event.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Unix time, seconds.
    pub time: u64,
    /// Milliseconds.
    pub latency: u64,
}

/// The latency monitor's record of one event on one shard: the worst latency of each of the
/// last `SERIES_LEN` seconds in which the event passed the threshold, and the worst ever.
#[derive(Clone)]
struct Series {
    samples: [Sample; SERIES_LEN],
    /// Where the next second's sample goes.
    next: usize,
    max: u64,
}

impl Series {
    fn new() -> Series {
        Series {
            samples: [Sample::default(); SERIES_LEN],
            next: 0,
            max: 0,
        }
    }

    fn add(&mut self, time: u64, latency: u64) {
        self.max = self.max.max(latency);
        let prev = (self.next + SERIES_LEN - 1) % SERIES_LEN;
        if self.samples[prev].time == time {
            let s = &mut self.samples[prev];
            s.latency = s.latency.max(latency);
            return;
        }
        self.samples[self.next] = Sample { time, latency };
        self.next = (self.next + 1) % SERIES_LEN;
    }

    /// The samples, oldest first.
    fn samples(&self) -> Vec<Sample> {
        (0..SERIES_LEN)
            .map(|j| self.samples[(self.next + j) % SERIES_LEN])
            .filter(|s| s.time != 0)
            .collect()
    }
}

/// A shard's latency monitor: one series per event that passed `latency-monitor-threshold`.
#[derive(Default)]
pub struct LatencyMonitor {
    events: Vec<(&'static str, Box<Series>)>,
}

/// One event as the shards report it, or as LATENCY shows it once merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    pub name: String,
    /// Oldest first, at most one per second.
    pub samples: Vec<Sample>,
    /// The worst latency ever recorded (milliseconds).
    pub max: u64,
}

impl LatencyMonitor {
    /// Records that `event` took `latency_ms` at unix second `time`.
    pub fn add(&mut self, event: &'static str, latency_ms: u64, time: u64) {
        match self.events.iter_mut().find(|(n, _)| *n == event) {
            Some((_, s)) => s.add(time, latency_ms),
            None => {
                let mut s = Box::new(Series::new());
                s.add(time, latency_ms);
                self.events.push((event, s));
            }
        }
    }

    pub fn export(&self) -> Vec<EventRecord> {
        self.events
            .iter()
            .map(|(n, s)| EventRecord {
                name: n.to_string(),
                samples: s.samples(),
                max: s.max,
            })
            .collect()
    }

    /// LATENCY RESET: forgets `event` (every event with None); returns the names forgotten.
    pub fn reset(&mut self, event: Option<&[u8]>) -> Vec<&'static str> {
        let mut gone = Vec::new();
        self.events.retain(|(n, _)| {
            let hit = event.is_none_or(|e| e == n.as_bytes());
            if hit {
                gone.push(*n);
            }
            !hit
        });
        gone
    }
}

/// The shards' records merged into one per event, by name: per second the worst latency of
/// any shard, the last `SERIES_LEN` seconds, and the worst ever of any shard.
pub fn merge_events(parts: Vec<Vec<EventRecord>>) -> Vec<EventRecord> {
    let mut merged: Vec<EventRecord> = Vec::new();
    for rec in parts.into_iter().flatten() {
        match merged.iter_mut().find(|m| m.name == rec.name) {
            Some(m) => {
                m.max = m.max.max(rec.max);
                m.samples.extend(rec.samples);
            }
            None => merged.push(rec),
        }
    }
    for m in &mut merged {
        m.samples
            .sort_by_key(|s| (s.time, std::cmp::Reverse(s.latency)));
        m.samples.dedup_by_key(|s| s.time);
        let extra = m.samples.len().saturating_sub(SERIES_LEN);
        m.samples.drain(..extra);
    }
    merged.sort_by(|a, b| a.name.cmp(&b.name));
    merged
}

/// A percentile as Redis writes it (in INFO's labels and CONFIG GET): `%f` with its trailing
/// zeros, and then a trailing point, taken off.
pub fn format_percentile(p: f64) -> String {
    let s = format!("{p:.6}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// One INFO latencystats line's values: `p50=6.015,p99=...` (microseconds, three decimals).
pub fn percentiles_line(out: &mut String, merged: &Merged, percentiles: &[f64]) {
    for (j, &p) in percentiles.iter().enumerate() {
        if j > 0 {
            out.push(',');
        }
        let us = merged.value_at_percentile(p) as f64 / 1000.0;
        out.push_str(&format!("p{}={:.3}", format_percentile(p), us));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged_of(us: &[u64]) -> Merged {
        let mut h = Histogram::new();
        for &u in us {
            h.record_us(u);
        }
        let mut m = Merged::default();
        m.add_histogram(&h);
        m
    }

    #[test]
    fn cumulative_distribution_steps_like_hdr_log_iteration() {
        // Redis 7.0, LATENCY HISTOGRAM after calls of 0, 1, 1, 2 and 30 microseconds: the
        // steps at 1024 ns (1 us), 2048 ns (2 us) and 32768 ns (33 us: the highest value of
        // that counter, 33023 ns) grew; 4, 8 and 16 did not and are left out.
        let m = merged_of(&[0, 1, 1, 2, 30]);
        assert_eq!(m.cumulative_distribution(), vec![(1, 3), (2, 4), (33, 5)]);
        assert_eq!(m.total(), 5);
        // A call over a second counts as a second; the step that would include it (2^30 ns)
        // lies past the last counter, where the iterator stops and reports the last counter's
        // highest value (1073741823 ns).
        let m = merged_of(&[2_000_000]);
        assert_eq!(m.cumulative_distribution(), vec![(1_073_741, 1)]);
        assert!(Merged::default().cumulative_distribution().is_empty());
    }

    #[test]
    fn monitor_keeps_each_seconds_worst_and_merges_shards() {
        let mut a = LatencyMonitor::default();
        a.add("command", 12, 100);
        a.add("command", 30, 100);
        a.add("command", 5, 101);
        let mut b = LatencyMonitor::default();
        b.add("command", 20, 101);
        b.add("expire-cycle", 3, 90);
        let merged = merge_events(vec![a.export(), b.export()]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].name, "command");
        assert_eq!(
            merged[0].samples,
            vec![
                Sample {
                    time: 100,
                    latency: 30
                },
                Sample {
                    time: 101,
                    latency: 20
                }
            ]
        );
        assert_eq!(merged[0].max, 30);
        assert_eq!(merged[1].name, "expire-cycle");
        // A series keeps the last 160 seconds.
        let mut c = LatencyMonitor::default();
        for t in 1..=200 {
            c.add("command", t, t);
        }
        let e = &c.export()[0];
        assert_eq!(e.samples.len(), SERIES_LEN);
        assert_eq!(e.samples[0].time, 41);
        assert_eq!(e.max, 200);
        assert_eq!(c.reset(Some(b"nosuch")), Vec::<&str>::new());
        assert_eq!(c.reset(None), vec!["command"]);
        assert!(c.export().is_empty());
    }

    #[test]
    fn unrecording_takes_back_a_record_even_across_a_wrapped_counter() {
        let mut h = Histogram::new();
        h.record_us(6);
        h.record_us(40);
        h.unrecord_us(6);
        assert_eq!(h.nonzero().map(|(_, n)| n).collect::<Vec<_>>(), vec![1]);
        h.unrecord_us(40);
        assert_eq!(h.nonzero().count(), 0);
        // A counter whose low 32 bits wrapped: 2^32 records, then one taken back.
        let slot = slot_of_us(7);
        h.0.counts[slot] = u32::MAX;
        h.record_us(7);
        assert_eq!(h.nonzero().next().map(|(_, n)| n), Some(1 << 32));
        h.unrecord_us(7);
        assert_eq!(h.nonzero().next().map(|(_, n)| n), Some(u32::MAX as u64));
        assert!(h.0.wrapped.is_empty());
    }

    fn merged(samples_us: &[u64]) -> Merged {
        let mut h = Histogram::new();
        for &us in samples_us {
            h.record_us(us);
        }
        let mut m = Merged::default();
        m.add_histogram(&h);
        m
    }

    fn line(samples_us: &[u64], percentiles: &[f64]) -> String {
        let mut s = String::new();
        percentiles_line(&mut s, &merged(samples_us), percentiles);
        s
    }

    #[test]
    fn layout_matches_redis_parameters() {
        // 1 ns .. 1 s with 2 significant figures: 23 buckets of 128 sub-buckets past the first.
        assert_eq!(bucket_count(), 23);
        assert_eq!(COUNTS, 3072);
        assert_eq!(index_of(1), 1);
        assert_eq!(index_of(255), 255);
        assert_eq!(index_of(256), 256);
        assert_eq!(index_of(1000), 506);
        assert_eq!(index_of(HIGHEST_NS), 3054);
        // A histogram's own counters: 0 us, then 1 us up to the 1 s one.
        assert_eq!(SLOTS, 2550);
        assert_eq!(std::mem::size_of::<Counters>(), 4 * 2550 + 24);
        assert_eq!((slot_of_us(0), hdr_index(0)), (0, 1));
        assert_eq!((slot_of_us(1), hdr_index(1)), (1, 506));
        assert_eq!(slot_of_us(1_000_000), SLOTS - 1);
        assert_eq!(slot_of_us(u64::MAX), SLOTS - 1);
        assert_eq!(hdr_index(SLOTS - 1), 3054);
        for us in [
            0, 1, 2, 3, 63, 64, 65, 127, 128, 200, 255, 256, 999, 12_345, 999_999,
        ] {
            assert_eq!(
                hdr_index(slot_of_us(us)),
                index_of((us * 1000).max(1)),
                "{us} us"
            );
        }
        for i in [1, 200, 255, 256, 300, 506, 1000, 3054, COUNTS - 1] {
            let (lo, w) = range_of(i);
            assert_eq!(index_of(lo), i, "counter {i}");
            assert_eq!(index_of(lo + w - 1), i, "counter {i}");
            if i + 1 < COUNTS {
                assert_eq!(index_of(lo + w), i + 1, "counter {i}");
            }
        }
    }

    #[test]
    fn single_calls_read_like_redis() {
        // Values seen on redis-server 7.0.15 (INFO latencystats after one call each).
        let p = [50.0, 99.0, 99.9];
        assert_eq!(line(&[1], &p), "p50=1.003,p99=1.003,p99.9=1.003");
        assert_eq!(line(&[6], &p), "p50=6.015,p99=6.015,p99.9=6.015");
        // A call under a microsecond is recorded as 1 ns (Redis's lowest value).
        assert_eq!(line(&[0], &p), "p50=0.001,p99=0.001,p99.9=0.001");
        // Percentile 0 gives the lowest value of the counter, any other the highest.
        assert_eq!(line(&[6], &[0.0, 1e-7]), "p0=5.984,p0=6.015");
        assert_eq!(line(&[1], &[0.0]), "p0=1.000");
        assert_eq!(line(&[0], &[0.0]), "p0=0.001");
        // Past a second: clamped to 1 s (DEBUG SLEEP 1.5 on Redis).
        assert_eq!(line(&[1_500_000], &[50.0]), "p50=1002438.655");
        assert_eq!(line(&[u64::MAX], &[50.0]), "p50=1002438.655");
    }

    #[test]
    fn many_calls_of_zero_or_one_microsecond() {
        // 5 calls of 0 us and 3 of 1 us. The rank is the percentile's share of the count
        // rounded to the nearest (at least 1): 62.5% of 8 is the 5th value (a 0), 68.75% is
        // 5.5, the 6th (a 1), 68.74% still the 5th.
        let mut samples = vec![0; 5];
        samples.extend([1; 3]);
        assert_eq!(
            line(&samples, &[50.0, 62.5, 68.74, 68.75, 99.0, 100.0, 0.0]),
            "p50=0.001,p62.5=0.001,p68.74=0.001,p68.75=1.003,p99=1.003,p100=1.003,p0=0.001"
        );
        // A thousand of each: the median is the 1000th value, a 0.
        let mut samples = vec![0; 1000];
        samples.extend([1; 1000]);
        assert_eq!(
            line(&samples, &[50.0, 50.05, 99.9]),
            "p50=0.001,p50.05=1.003,p99.9=1.003"
        );
    }

    #[test]
    fn rank_rounding_matches_redis() {
        // Four calls a bucket apart, as DEBUG SLEEP 0.001/0.002/0.004/0.008 gave on Redis
        // 7.0.15: 12.4% and 37.4% give the first, 37.5% the second, 62.5% the third, 87.5%
        // the fourth.
        let m = merged(&[1125, 2125, 4125, 8125]);
        let ranks: Vec<u64> = [12.4, 12.5, 37.4, 37.5, 62.4, 62.5, 87.4, 87.5, 100.0]
            .iter()
            .map(|&p| m.value_at_percentile(p))
            .collect();
        let v = |us: u64| merged(&[us]).value_at_percentile(50.0);
        assert_eq!(
            ranks,
            [
                v(1125),
                v(1125),
                v(1125),
                v(2125),
                v(2125),
                v(4125),
                v(4125),
                v(8125),
                v(8125)
            ]
        );
        // An empty histogram (never printed) reads 0.
        assert_eq!(Merged::default().value_at_percentile(50.0), 0);
    }

    #[test]
    fn shards_merge_count_by_count() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for _ in 0..3 {
            a.record_us(1);
        }
        for _ in 0..5 {
            b.record_us(100);
        }
        let mut m = Merged::default();
        m.add_histogram(&a);
        m.add_histogram(&b);
        // 8 values: the 4th (50%) is one of b's.
        assert_eq!(m.value_at_percentile(50.0), 100_351);
        assert_eq!(m.value_at_percentile(37.5), 1003);
    }

    #[test]
    fn percentile_labels_like_redis() {
        let labels: Vec<String> = [50.0, 99.9, 0.0, 100.0, 99.99, 12.5, -0.0, 1e-7, 99.9999999]
            .iter()
            .map(|&p| format_percentile(p))
            .collect();
        assert_eq!(
            labels,
            ["50", "99.9", "0", "100", "99.99", "12.5", "-0", "0", "100"]
        );
        assert_eq!(format_percentile(100.0 / 3.0), "33.333333");
        assert_eq!(format_percentile(0.0001), "0.0001");
        // %f rounds halves to even, like glibc.
        assert_eq!(format_percentile(0.0078125), "0.007812");
    }

    #[test]
    fn counters_that_wrap_around_are_kept() {
        let mut h = Histogram::new();
        let slot = slot_of_us(6);
        h.0.counts[slot] = u32::MAX - 1;
        for _ in 0..3 {
            h.record_us(6);
        }
        h.record_us(0);
        assert_eq!(h.0.wrapped, [(slot as u16, 1 << 32)]);
        assert_eq!(
            h.nonzero().collect::<Vec<_>>(),
            [(1, 1), (index_of(6000), u32::MAX as u64 + 2)]
        );
        h.0.counts[slot] = u32::MAX;
        h.record_us(6);
        assert_eq!(h.0.wrapped, [(slot as u16, 2 << 32)]);
    }

    #[test]
    fn slots_are_created_by_their_first_call_and_reset() {
        let mut s = LatencyStats::new(4);
        assert!(s.get(2).is_none());
        s.record(2, 6);
        s.record(2, 6);
        assert_eq!(s.export(), vec![(2, vec![(index_of(6000) as u16, 2)])]);
        s.reset();
        assert!(s.get(2).is_none());
        assert!(s.export().is_empty());
    }
}

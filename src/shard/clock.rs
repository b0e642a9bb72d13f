//! The command clock: wall-clock microseconds for a shard's per-command timing and its notion
//! of "now" (expiry), read from the CPU's time-stamp counter instead of `clock_gettime`.
//!
//! Every keyed command reads the clock twice (its start, which is also the expiry "now", and
//! its end, for INFO commandstats and the slow log). Through the vDSO that is about 26 ns a
//! read on our VMs, 7% of a shard's time for a light pipelined command such as RPOP; `rdtsc`
//! is about 8 ns.
//!
//! The counter is only trusted where the kernel itself keeps time with it (clocksource `tsc`,
//! which the kernel only selects when the counter is invariant and synchronized across cores);
//! anywhere else, and on other architectures, this is `SystemTime::now()`. Each shard keeps its
//! own calibration: an anchor (counter, wall clock) from its first reading, a rate measured
//! over at least `CALIBRATE_US`, and a fresh wall-clock reading every `RESYNC_US`, so NTP
//! slewing and clock steps show up within that period (a step restarts the calibration).
//! Between steps, readings never go backwards on a shard.
//!
//! Code that must see a wall-clock step at once (TIME, LASTSAVE, persistence timestamps) reads
//! `SystemTime` instead.

#[cfg(target_arch = "x86_64")]
use std::sync::OnceLock;

/// Wall-clock span over which the counter's rate is first measured; until then readings come
/// straight from the system clock.
const CALIBRATE_US: u64 = 20_000;
/// At most this long between two system-clock readings on a shard.
const RESYNC_US: u64 = 50_000;

#[derive(Clone, Copy)]
struct Calibration {
    /// First reading of the shard: the base of the rate measurement.
    first_tsc: u64,
    first_us: u64,
    /// Latest system-clock reading and the counter at that moment.
    sync_tsc: u64,
    sync_us: u64,
    /// Microseconds per counter tick, as a 32.32 fixed-point number; 0 = not calibrated yet.
    us_per_tick_q32: u64,
    /// Counter ticks in `RESYNC_US` (when the next system-clock reading is due).
    resync_ticks: u64,
    /// The latest value returned, so that readings never go backwards.
    last_us: u64,
}

/// One shard's command clock (each shard keeps its own calibration; nothing is shared).
#[derive(Default)]
pub struct CommandClock {
    calibration: Option<Calibration>,
}

impl CommandClock {
    /// Microseconds since the Unix epoch, for command timing and expiry.
    #[inline]
    pub fn now_us(&mut self) -> u64 {
        let Some(tsc) = read_counter() else {
            return crate::server::globals::unix_us();
        };
        match &mut self.calibration {
            Some(c) if c.us_per_tick_q32 != 0 && tsc.wrapping_sub(c.sync_tsc) < c.resync_ticks => {
                let us = extrapolate(c, tsc);
                if us > c.last_us {
                    c.last_us = us;
                }
                c.last_us
            }
            state => {
                let c = resync(*state, tsc, crate::server::globals::unix_us());
                *state = Some(c);
                c.last_us
            }
        }
    }
}

/// The wall clock at counter `tsc` (not before the anchor), by the calibrated rate.
#[inline]
fn extrapolate(c: &Calibration, tsc: u64) -> u64 {
    c.sync_us + (((tsc - c.sync_tsc) as u128 * c.us_per_tick_q32 as u128) >> 32) as u64
}

/// Off by more than this between extrapolation and system clock: the clock was stepped.
const STEP_US: u64 = 1_000;

/// A system-clock reading `us` taken at counter `tsc`: the new anchor of the extrapolation,
/// and (once the shard has watched the clock for `CALIBRATE_US`) a new rate.
fn resync(state: Option<Calibration>, tsc: u64, us: u64) -> Calibration {
    let steady = |c: &Calibration| {
        tsc > c.sync_tsc
            && us >= c.sync_us
            && (c.us_per_tick_q32 == 0 || us.abs_diff(extrapolate(c, tsc)) <= STEP_US)
    };
    let Some(mut c) = state.filter(steady) else {
        // First reading, or the counter or the clock jumped: start over.
        return Calibration {
            first_tsc: tsc,
            first_us: us,
            sync_tsc: tsc,
            sync_us: us,
            us_per_tick_q32: 0,
            resync_ticks: 0,
            last_us: us,
        };
    };
    let span_us = us - c.first_us;
    if span_us >= CALIBRATE_US {
        let ticks = tsc - c.first_tsc;
        c.us_per_tick_q32 = ((span_us as u128) << 32).div_ceil(ticks as u128).max(1) as u64;
        c.resync_ticks = ((RESYNC_US as u128) << 32).div_ceil(c.us_per_tick_q32 as u128) as u64;
    }
    c.sync_tsc = tsc;
    c.sync_us = us;
    c.last_us = c.last_us.max(us);
    c
}

/// The time-stamp counter, where the kernel keeps time with it.
#[inline]
fn read_counter() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        if counter_trusted() {
            // SAFETY: `rdtsc` has no preconditions on x86_64.
            return Some(unsafe { core::arch::x86_64::_rdtsc() });
        }
    }
    None
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn counter_trusted() -> bool {
    static TRUSTED: OnceLock<bool> = OnceLock::new();
    *TRUSTED.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .map(|s| s.trim() == "tsc")
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibrated_readings_follow_the_system_clock() {
        // A fake counter at 3 ticks per microsecond.
        let mut c = resync(None, 1_000, 5_000_000);
        assert_eq!(c.us_per_tick_q32, 0);
        c = resync(Some(c), 1_000 + 3 * 30_000, 5_030_000);
        let rate = c.us_per_tick_q32 as f64 / (1u64 << 32) as f64;
        assert!((rate - 1.0 / 3.0).abs() < 1e-6, "{rate}");
        assert_eq!(c.resync_ticks, 3 * RESYNC_US);
        // Extrapolating 1 ms past the anchor.
        assert_eq!(extrapolate(&c, c.sync_tsc + 3_000), 5_031_000);
        // The next reading 40 ms on keeps the rate; one 5 ms off is a clock step.
        let d = resync(Some(c), c.sync_tsc + 3 * 40_000, 5_070_000);
        assert_ne!(d.us_per_tick_q32, 0);
        let e = resync(Some(d), d.sync_tsc + 3 * 40_000, 5_115_000);
        assert_eq!(e.us_per_tick_q32, 0);
    }

    #[test]
    fn a_backwards_clock_restarts_calibration_and_readings_do_not_go_back() {
        let c = resync(None, 1_000, 5_000_000);
        let c = resync(Some(c), 1_000 + 3 * 30_000, 5_030_000);
        assert_ne!(c.us_per_tick_q32, 0);
        // The system clock was stepped back: start over from the new reading.
        let d = resync(Some(c), c.sync_tsc + 3_000, 4_000_000);
        assert_eq!(d.us_per_tick_q32, 0);
        assert_eq!(d.first_us, 4_000_000);
        // A resync slightly behind what was already returned keeps the latest value.
        let mut e = c;
        e.last_us = 5_040_010;
        let e = resync(Some(e), c.sync_tsc + 3 * 10_000, 5_040_000);
        assert_eq!(e.last_us, 5_040_010);
        assert_ne!(e.us_per_tick_q32, 0);
    }

    #[test]
    fn now_tracks_the_system_clock() {
        let mut clock = CommandClock::default();
        for _ in 0..3 {
            let before = crate::server::globals::unix_us();
            let t = clock.now_us();
            let after = crate::server::globals::unix_us();
            assert!(
                t + 1_000 >= before && t <= after + 1_000,
                "{before} {t} {after}"
            );
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        let a = clock.now_us();
        let b = clock.now_us();
        assert!(b >= a);
    }
}

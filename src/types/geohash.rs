//! Geohash arithmetic for the geo commands (Redis's geohash.c and geohash_helper.c, same
//! arithmetic in the same order so that every score, coordinate, distance and candidate box is
//! bit-for-bit Redis's).
//!
//! A geo set is a sorted set whose scores are 52-bit interleaved geohashes (26 bits of
//! longitude on the odd bit positions, 26 of latitude on the even ones, over Web Mercator's
//! latitude range ±85.05112878). This module owns the encoding and decoding of those scores,
//! the neighbour boxes and step estimation of a search, the great-circle distance and the
//! shape tests, and the number formats of the replies. It never touches a keyspace or a reply:
//! the command family (`commands::geo_family`) does that.
//!
//! Floating-point results must match Redis's exactly: no operation here may be reordered or
//! fused, and the trigonometric functions are the platform's libm, as Redis's are.

use std::f64::consts::PI;

pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
/// 26 steps of 2 bits each: the 52 bits that a double holds exactly.
pub const STEP_MAX: u8 = 26;

const D_R: f64 = PI / 180.0;
const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;

#[inline]
fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

#[inline]
fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

/// A geohash prefix: `step` pairs of bits. Both zero stands for "no box" (a neighbour that a
/// search leaves out).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HashBits {
    pub bits: u64,
    pub step: u8,
}

impl HashBits {
    fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Range {
    min: f64,
    max: f64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Area {
    lon: Range,
    lat: Range,
}

const WGS84_LON: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
const WGS84_LAT: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// Spreads the low 32 bits of `v` over the even bit positions of a word.
#[inline]
fn spread(v: u32) -> u64 {
    let mut x = v as u64;
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Gathers the even bit positions of `v` into a 32-bit value.
#[inline]
fn gather(v: u64) -> u64 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF
}

/// Latitude bits on the even positions, longitude bits on the odd ones.
#[inline]
fn interleave(lat: u32, lon: u32) -> u64 {
    spread(lat) | (spread(lon) << 1)
}

/// (latitude bits, longitude bits) of an interleaved word, all 64 bits of it.
#[inline]
fn deinterleave(v: u64) -> (u32, u32) {
    (gather(v) as u32, gather(v >> 1) as u32)
}

/// C's conversion of a double to `uint64_t` as gcc emits it for x86-64 (Redis's
/// `(uint64_t)score`): values below 2^63 go through the signed conversion (negative ones wrap,
/// those below -2^63 give the "integer indefinite" 2^63), larger ones are reduced by 2^63
/// first (so +inf gives 0).
pub fn score_bits(score: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    fn cvtt(x: f64) -> u64 {
        if (-TWO63..TWO63).contains(&x) {
            x as i64 as u64
        } else {
            1 << 63
        }
    }
    if score < TWO63 {
        cvtt(score)
    } else {
        cvtt(score - TWO63) ^ (1 << 63)
    }
}

fn encode(lon_r: Range, lat_r: Range, lon: f64, lat: f64, step: u8) -> Option<HashBits> {
    if step > 32 || step == 0 {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_r.min || lat > lat_r.max || lon < lon_r.min || lon > lon_r.max {
        return None;
    }
    let mut lat_offset = (lat - lat_r.min) / (lat_r.max - lat_r.min);
    let mut lon_offset = (lon - lon_r.min) / (lon_r.max - lon_r.min);
    let scale = (1u64 << step) as f64;
    lat_offset *= scale;
    lon_offset *= scale;
    // C truncates toward zero when it converts to uint32_t; the offsets are in [0, 2^step].
    Some(HashBits {
        bits: interleave(lat_offset as u32, lon_offset as u32),
        step,
    })
}

/// The score GEOADD stores for a position (already checked to be within the limits).
pub fn encode_score(lon: f64, lat: f64) -> u64 {
    encode(WGS84_LON, WGS84_LAT, lon, lat, STEP_MAX).map_or(0, align52)
}

fn decode(lon_r: Range, lat_r: Range, h: HashBits) -> Option<Area> {
    if h.is_zero() {
        return None;
    }
    let (ilat, ilon) = deinterleave(h.bits);
    let lat_scale = lat_r.max - lat_r.min;
    let lon_scale = lon_r.max - lon_r.min;
    let div = (1u64 << h.step) as f64;
    // `ilato + 1` is 32-bit unsigned arithmetic in C: it wraps.
    Some(Area {
        lat: Range {
            min: lat_r.min + (ilat as f64 * 1.0 / div) * lat_scale,
            max: lat_r.min + (ilat.wrapping_add(1) as f64 * 1.0 / div) * lat_scale,
        },
        lon: Range {
            min: lon_r.min + (ilon as f64 * 1.0 / div) * lon_scale,
            max: lon_r.min + (ilon.wrapping_add(1) as f64 * 1.0 / div) * lon_scale,
        },
    })
}

/// The position a score stands for: the centre of its 52-bit box, clamped to the limits
/// (Redis's `decodeGeohash`; any score decodes, even one ZADD put there).
pub fn decode_score(score: f64) -> (f64, f64) {
    let h = HashBits {
        bits: score_bits(score),
        step: STEP_MAX,
    };
    let a = decode(WGS84_LON, WGS84_LAT, h).unwrap_or_default();
    let lon = ((a.lon.min + a.lon.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((a.lat.min + a.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// The 11-character standard geohash (latitude over ±90) of a score, as GEOHASH replies.
pub fn geohash_string(score: f64) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode_score(score);
    let bits = encode(
        WGS84_LON,
        Range {
            min: -90.0,
            max: 90.0,
        },
        lon,
        lat,
        STEP_MAX,
    )
    .map_or(0, |h| h.bits);
    let mut out = [b'0'; 11];
    // 52 bits make ten characters; Redis pads the eleventh with '0'.
    for (i, c) in out.iter_mut().take(10).enumerate() {
        *c = ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize];
    }
    out
}

fn align52(h: HashBits) -> u64 {
    h.bits << (52 - h.step as u32 * 2)
}

fn move_x(h: &mut HashBits, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - h.step as u32 * 2;
    let mut x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = h.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> shift;
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xaaaa_aaaa_aaaa_aaaau64 >> shift;
    h.bits = x | y;
}

fn move_y(h: &mut HashBits, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - h.step as u32 * 2;
    let x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let mut y = h.bits & 0x5555_5555_5555_5555;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> shift;
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555_5555_5555_5555u64 >> shift;
    h.bits = x | y;
}

fn moved(h: HashBits, dx: i8, dy: i8) -> HashBits {
    let mut n = h;
    move_x(&mut n, dx);
    move_y(&mut n, dy);
    n
}

/// Great-circle distance in meters (haversine, on Redis's Earth radius).
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let lat1r = deg_rad(lat1);
    let lon1r = deg_rad(lon1);
    let lat2r = deg_rad(lat2);
    let lon2r = deg_rad(lon2);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let v = ((lon2r - lon1r) / 2.0).sin();
    2.0 * EARTH_RADIUS_IN_METERS * (u * u + lat1r.cos() * lat2r.cos() * v * v).sqrt().asin()
}

/// How many steps (box size) the nine boxes of a search around `lat` need for `range_meters`.
fn estimate_steps(mut range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    // Keep the search area inside the boxes in most cases.
    step -= 2;
    // Meridians converge towards the poles: wider boxes there.
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// What a search covers: a circle or an axis-aligned box around a centre, in the unit given by
/// `conversion` (meters per unit).
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub lon: f64,
    pub lat: f64,
    pub conversion: f64,
    pub kind: ShapeKind,
}

#[derive(Clone, Copy, Debug)]
pub enum ShapeKind {
    Radius(f64),
    Box { width: f64, height: f64 },
}

impl Shape {
    /// (min lon, min lat, max lon, max lat) of the area the shape spans.
    fn bounding_box(&self) -> [f64; 4] {
        let (h, w) = match self.kind {
            ShapeKind::Radius(r) => (self.conversion * r, self.conversion * r),
            ShapeKind::Box { width, height } => (
                self.conversion * (height / 2.0),
                self.conversion * (width / 2.0),
            ),
        };
        let lat_delta = rad_deg(h / EARTH_RADIUS_IN_METERS);
        let long_delta_top =
            rad_deg(w / EARTH_RADIUS_IN_METERS / deg_rad(self.lat + lat_delta).cos());
        let long_delta_bottom =
            rad_deg(w / EARTH_RADIUS_IN_METERS / deg_rad(self.lat - lat_delta).cos());
        // The box is a trapezoid whose wide side faces the equator.
        let south = self.lat < 0.0;
        let d = if south {
            long_delta_bottom
        } else {
            long_delta_top
        };
        [
            self.lon - d,
            self.lat - lat_delta,
            self.lon + d,
            self.lat + lat_delta,
        ]
    }

    /// The boxes to scan, in Redis's order (centre, N, S, E, W, NE, NW, SE, SW); a zero entry
    /// is a box the search leaves out.
    pub fn boxes(&self) -> [HashBits; 9] {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounding_box();
        let radius_meters = match self.kind {
            ShapeKind::Radius(r) => r,
            ShapeKind::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
        } * self.conversion;
        let mut steps = estimate_steps(radius_meters, self.lat);
        let around = |steps: u8| {
            let hash = encode(WGS84_LON, WGS84_LAT, self.lon, self.lat, steps).unwrap_or_default();
            let area = decode(WGS84_LON, WGS84_LAT, hash).unwrap_or_default();
            (hash, area)
        };
        let (mut hash, mut area) = around(steps);
        // A neighbour that ends inside the bounding box cannot cover it: use bigger boxes.
        let side = |dx, dy| decode(WGS84_LON, WGS84_LAT, moved(hash, dx, dy)).unwrap_or_default();
        let decrease = side(0, 1).lat.max < max_lat
            || side(0, -1).lat.min > min_lat
            || side(1, 0).lon.max < max_lon
            || side(-1, 0).lon.min > min_lon;
        if steps > 1 && decrease {
            steps -= 1;
            (hash, area) = around(steps);
        }
        let mut n = [
            hash,
            moved(hash, 0, 1),
            moved(hash, 0, -1),
            moved(hash, 1, 0),
            moved(hash, -1, 0),
            moved(hash, 1, 1),
            moved(hash, -1, 1),
            moved(hash, 1, -1),
            moved(hash, -1, -1),
        ];
        // Neighbours on a side the shape does not reach are useless.
        const N: usize = 1;
        const S: usize = 2;
        const E: usize = 3;
        const W: usize = 4;
        const NE: usize = 5;
        const NW: usize = 6;
        const SE: usize = 7;
        const SW: usize = 8;
        if steps >= 2 {
            let zero = HashBits::default();
            if area.lat.min < min_lat {
                for i in [S, SW, SE] {
                    n[i] = zero;
                }
            }
            if area.lat.max > max_lat {
                for i in [N, NE, NW] {
                    n[i] = zero;
                }
            }
            if area.lon.min < min_lon {
                for i in [W, SW, NW] {
                    n[i] = zero;
                }
            }
            if area.lon.max > max_lon {
                for i in [E, SE, NE] {
                    n[i] = zero;
                }
            }
        }
        n
    }

    /// The distance from the centre to a point, in meters, if the point is within the shape.
    pub fn contains(&self, lon: f64, lat: f64) -> Option<f64> {
        match self.kind {
            ShapeKind::Radius(r) => {
                let d = distance(self.lon, self.lat, lon, lat);
                (d <= r * self.conversion).then_some(d)
            }
            ShapeKind::Box { width, height } => {
                let (w, h) = (width * self.conversion, height * self.conversion);
                let lon_distance = distance(lon, lat, self.lon, lat);
                let lat_distance = distance(lon, lat, lon, self.lat);
                if lon_distance > w / 2.0 || lat_distance > h / 2.0 {
                    return None;
                }
                Some(distance(self.lon, self.lat, lon, lat))
            }
        }
    }
}

/// The score range [min, max) of the members inside a box.
pub fn box_scores(h: HashBits) -> (f64, f64) {
    let min = align52(h);
    let max = align52(HashBits {
        bits: h.bits.wrapping_add(1),
        step: h.step,
    });
    (min as f64, max as f64)
}

/// Whether two boxes are the same one.
pub fn same_box(a: HashBits, b: HashBits) -> bool {
    a == b
}

/// Whether the search leaves this box out.
pub fn is_zero_box(h: HashBits) -> bool {
    h.is_zero()
}

/// A coordinate as Redis replies it (`%.17Lf` of the value, trailing zeros and point removed).
pub fn format_coord(v: f64) -> String {
    if v.is_infinite() {
        return if v < 0.0 { "-inf".into() } else { "inf".into() };
    }
    let mut s = format!("{:.17}", v);
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(t);
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}

/// A distance as Redis 7.0.15 replies it (`fixedpoint_d2string` with four decimals): the
/// value times 10^4 rounded to an integer by `llrint` (ties to even, after the product was
/// rounded to a double), then printed with the point put back. This is not `%.4f`: a product
/// that lands on a tie rounds differently.
pub fn format_distance(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".into();
    }
    let r = (d * 10000.0).round_ties_even();
    // llrint on x86-64 gives the "integer indefinite" for NaN and values out of range.
    let sv: i64 = if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&r) {
        r as i64
    } else {
        i64::MIN
    };
    let mut digits = sv.unsigned_abs().to_string();
    while digits.len() < 5 {
        digits.insert(0, '0');
    }
    digits.insert(digits.len() - 4, '.');
    if sv < 0 {
        digits.insert(0, '-');
    }
    digits
}

/// C's `%.Nf` (Rust prints the exact decimal expansion, rounded, like glibc).
pub fn fixed(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf".into() } else { "inf".into() };
    }
    format!("{:.*}", decimals, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_round_trips() {
        for (a, b) in [
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (0x3ff_ffff, 0x155_5555),
            (u32::MAX, 7),
        ] {
            assert_eq!(deinterleave(interleave(a, b)), (a, b));
        }
        assert_eq!(interleave(1, 0), 1);
        assert_eq!(interleave(0, 1), 2);
    }

    #[test]
    fn palermo_like_redis() {
        // GEOADD Sicily 13.361389 38.115556 "Palermo": ZSCORE is 3479099956230698.
        assert_eq!(encode_score(13.361389, 38.115556), 3479099956230698);
        let (lon, lat) = decode_score(3479099956230698.0);
        assert_eq!(format_coord(lon), "13.36138933897018433");
        assert_eq!(format_coord(lat), "38.11555639549629859");
        assert_eq!(&geohash_string(3479099956230698.0), b"sqc8b49rny0");
        // GEODIST measures between the decoded positions.
        let (lon2, lat2) = decode_score(encode_score(15.087269, 37.502669) as f64);
        let d = distance(lon, lat, lon2, lat2);
        assert_eq!(format_distance(d / 1000.0), "166.2742");
    }

    #[test]
    fn odd_scores_decode_without_panicking() {
        for s in [
            -1.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
            -1e300,
            9.3e18,
            2f64.powi(52),
        ] {
            let (lon, lat) = decode_score(s);
            assert!((LONG_MIN..=LONG_MAX).contains(&lon) && (LAT_MIN..=LAT_MAX).contains(&lat));
            let _ = geohash_string(s);
        }
        assert_eq!(score_bits(f64::INFINITY), 0);
        assert_eq!(score_bits(f64::NEG_INFINITY), 1 << 63);
        assert_eq!(score_bits(-1.0), u64::MAX);
    }

    #[test]
    fn coords_format_like_redis() {
        assert_eq!(format_coord(-0.0), "0");
        assert_eq!(format_coord(1.5), "1.5");
        assert_eq!(format_coord(180.0), "180");
        assert_eq!(fixed(-0.0, 6), "-0.000000");
        assert_eq!(format_distance(0.5), "0.5000");
        assert_eq!(format_distance(0.00004), "0.0000");
        // The product rounds to a tie, which llrint sends to the even neighbour.
        assert_eq!(format_distance(14422071.322250001), "14422071.3222");
        assert_eq!(format_distance(f64::NAN), "-922337203685477.5808");
    }
}

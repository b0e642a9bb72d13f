//! LOLWUT: a piece of computer art and the server's version, as Redis 7.0 draws them.
//!
//! `LOLWUT` alone answers with the version line only, as Redis 7.0.15 does (its own version has
//! no drawing). `LOLWUT VERSION 5 [columns [squares-per-row [squares-per-column]]]` draws Georg
//! Nees's "Schotter" (a grid of squares, rotated and shifted more at random down the rows) in
//! Braille characters, four canvas rows and two canvas columns per character; `LOLWUT VERSION 6
//! [columns [rows]]` draws a city skyline in terminal colours. Arguments are clamped to Redis's
//! limits, and the geometry follows Redis's arithmetic (single-precision sizes, rounding, the
//! Bresenham line), so the drawing matches Redis's byte for byte wherever Redis's takes no random
//! numbers (the first two rows of squares). The art never touches the keyspace.

use bytes::Bytes;
use rand::Rng;

use super::args::parse_i64;
use super::flags::*;
use super::{cmd, CommandSpec, Ctx, Exec, NO_KEYS};
use crate::protocol::Reply;

pub fn specs() -> Vec<CommandSpec> {
    vec![cmd(
        "lolwut",
        -1,
        READONLY | FAST,
        NO_KEYS,
        "server",
        "5.0.0",
        "",
        "Display some computer art and the Redis version",
        Exec::Shard(lolwut),
    )]
}

const ERR_NOT_INTEGER: &str = "ERR value is not an integer or out of range";

fn lolwut(_ctx: &mut Ctx, a: &[Bytes], r: &mut Reply) {
    // `VERSION n` picks the drawing; the drawing's own arguments follow it. Redis prints the
    // number as an unsigned 32-bit version string and looks at its first characters, so only
    // 5 and 6 (modulo 2^32) draw anything.
    let (version, rest) = if a.len() >= 3 && a[1].eq_ignore_ascii_case(b"version") {
        match parse_i64(&a[2]) {
            Some(v) => (Some(v as u32), &a[3..]),
            None => return r.error(ERR_NOT_INTEGER),
        }
    } else {
        (None, &a[1..])
    };
    let mut numbers = Vec::with_capacity(rest.len().min(3));
    if matches!(version, Some(5 | 6)) {
        let wanted = if version == Some(5) { 3 } else { 2 };
        for arg in rest.iter().take(wanted) {
            match parse_i64(arg) {
                Some(n) => numbers.push(n),
                None => return r.error(ERR_NOT_INTEGER),
            }
        }
    }
    let arg =
        |i: usize, default: i64, max: i64| numbers.get(i).copied().unwrap_or(default).clamp(1, max);
    let mut text = match version {
        Some(5) => {
            let canvas = schotter(arg(0, 66, 1000), arg(1, 8, 200), arg(2, 12, 200));
            let mut t = canvas.braille();
            t.push_str("\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. ");
            t
        }
        Some(6) => {
            let mut canvas = Canvas::new(arg(0, 80, 1000), arg(1, 20, 1000), WHITE);
            skyline(&mut canvas);
            let mut t = canvas.colours();
            t.push_str(
                "\nDedicated to the 8 bit game developers of past and present.\n\
                 Original 8 bit image from Plaguemon by hikikomori. Redis ver. ",
            );
            t
        }
        _ => "Redis ver. ".to_string(),
    };
    text.push_str(crate::REDIS_VERSION);
    text.push('\n');
    r.verbatim("txt", text.as_bytes());
}

const BLACK: u8 = 0;
const GRAY: u8 = 1;
const LIGHT_GRAY: u8 = 2;
const WHITE: u8 = 3;

/// A grid of pixels, each a colour (0-3); drawing outside it is ignored.
struct Canvas {
    width: i64,
    height: i64,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: i64, height: i64, background: u8) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![background; (width * height) as usize],
        }
    }

    fn set(&mut self, x: i64, y: i64, colour: u8) {
        if (0..self.width).contains(&x) && (0..self.height).contains(&y) {
            self.pixels[(x + y * self.width) as usize] = colour;
        }
    }

    fn get(&self, x: i64, y: i64) -> u8 {
        if (0..self.width).contains(&x) && (0..self.height).contains(&y) {
            self.pixels[(x + y * self.width) as usize]
        } else {
            0
        }
    }

    /// Bresenham's line from (x1, y1) to (x2, y2), both ends included.
    fn line(&mut self, (mut x1, mut y1): (i64, i64), (x2, y2): (i64, i64), colour: u8) {
        let (dx, dy) = ((x2 - x1).abs(), (y2 - y1).abs());
        let (sx, sy) = (if x1 < x2 { 1 } else { -1 }, if y1 < y2 { 1 } else { -1 });
        let mut err = dx - dy;
        loop {
            self.set(x1, y1, colour);
            if x1 == x2 && y1 == y2 {
                return;
            }
            let e2 = err * 2;
            if e2 > -dy {
                err -= dy;
                x1 += sx;
            }
            if e2 < dx {
                err += dx;
                y1 += sy;
            }
        }
    }

    /// A square centred on (x, y) whose corners lie on a circle fitting a side of `size`,
    /// rotated by `angle` radians. The single-precision steps are Redis's.
    fn square(&mut self, x: i64, y: i64, size: f32, angle: f32) {
        let size = ((size as f64 / std::f64::consts::SQRT_2) as f32).round();
        let mut k = (std::f64::consts::FRAC_PI_4 + angle as f64) as f32;
        let mut corners = [(0i64, 0i64); 4];
        for c in corners.iter_mut() {
            let kd = k as f64;
            *c = (
                (kd.sin() * size as f64 + x as f64).round() as i64,
                (kd.cos() * size as f64 + y as f64).round() as i64,
            );
            k = (k as f64 + std::f64::consts::FRAC_PI_2) as f32;
        }
        for j in 0..4 {
            self.line(corners[j], corners[(j + 1) % 4], 1);
        }
    }

    /// Braille characters, one per 2x4 block of pixels, a line per four pixel rows.
    fn braille(&self) -> String {
        // Dot order of the Braille block (U+2800 + bits): the left column's top three, the right
        // column's top three, then the bottom dot of each.
        const DOTS: [(i64, i64); 8] = [
            (0, 0),
            (0, 1),
            (0, 2),
            (1, 0),
            (1, 1),
            (1, 2),
            (0, 3),
            (1, 3),
        ];
        let mut text = String::new();
        for y in (0..self.height).step_by(4) {
            for x in (0..self.width).step_by(2) {
                let bits = DOTS
                    .iter()
                    .enumerate()
                    .filter(|(_, (dx, dy))| self.get(x + dx, y + dy) != 0)
                    .fold(0u32, |b, (i, _)| b | 1 << i);
                text.push(char::from_u32(0x2800 + bits).unwrap_or(' '));
            }
            if y != self.height - 1 {
                text.push('\n');
            }
        }
        text
    }

    /// One coloured space per pixel (foreground and background set alike), a line per row.
    fn colours(&self) -> String {
        let mut text = String::new();
        for y in 0..self.height {
            for x in 0..self.width {
                let escape = match self.get(x, y) {
                    GRAY => "0;90;100m",
                    LIGHT_GRAY => "0;37;47m",
                    WHITE => "0;97;107m",
                    _ => "0;30;40m",
                };
                text.push_str("\x1b[");
                text.push_str(escape);
                text.push_str(" \x1b[0m");
            }
            if y != self.height - 1 {
                text.push('\n');
            }
        }
        text
    }
}

/// Georg Nees's "Schotter" on a canvas `columns` characters wide: squares that turn and move
/// more at random the further down their row is (the first two rows stay in place).
fn schotter(columns: i64, per_row: i64, per_column: i64) -> Canvas {
    let width = columns * 2;
    let padding = if width > 4 { 2 } else { 0 };
    let side = (width - padding * 2) as f32 / per_row as f32;
    let height = (side * per_column as f32 + (padding * 2) as f32) as i64;
    let mut canvas = Canvas::new(width, height, 0);
    let mut rng = rand::thread_rng();
    for y in 0..per_column {
        for x in 0..per_row {
            let mut sx = (x as f32 * side + side / 2.0 + padding as f32) as i64;
            let mut sy = (y as f32 * side + side / 2.0 + padding as f32) as i64;
            let mut angle = 0.0f32;
            if y > 1 {
                let mut jitter = || {
                    let r = rng.gen::<f32>() / per_column as f32 * y as f32;
                    if rng.gen::<bool>() {
                        -r
                    } else {
                        r
                    }
                };
                angle = jitter();
                sx = (sx as f32 + jitter() * side / 3.0) as i64;
                sy = (sy as f32 + jitter() * side / 3.0) as i64;
            }
            canvas.square(sx, sy, side, angle);
        }
    }
    canvas
}

/// A building standing on the canvas's bottom row.
struct Building {
    x: i64,
    width: i64,
    height: i64,
    colour: u8,
    windows: bool,
}

/// Two rows of window-less buildings in grays (the lighter behind), then black buildings with
/// lit windows in front, each row left to right at random spacing, widths and heights.
fn skyline(canvas: &mut Canvas) {
    let mut rng = rand::thread_rng();
    let h = canvas.height;
    for colour in [LIGHT_GRAY, GRAY] {
        let mut x = -10;
        while x < canvas.width {
            x += rng.gen_range(0..8);
            let width = 10 + rng.gen_range(0..9);
            let height = if colour == LIGHT_GRAY {
                h / 2 + rng.gen_range(0..h) / 2
            } else {
                h / 2 + rng.gen_range(0..h) / 3
            };
            let b = Building {
                x,
                width,
                height,
                colour,
                windows: false,
            };
            building(canvas, &b, &mut rng);
            x += if colour == LIGHT_GRAY {
                width / 2
            } else {
                width + 1
            };
        }
    }
    let mut x = -10;
    while x < canvas.width {
        x += rng.gen_range(0..8);
        let mut width = 5 + rng.gen_range(0..14);
        if width % 4 != 0 {
            width += width % 3;
        }
        let height = h / 3 + rng.gen_range(0..h) / 2;
        let b = Building {
            x,
            width,
            height,
            colour: BLACK,
            windows: true,
        };
        building(canvas, &b, &mut rng);
        x += width + 5;
    }
}

/// Draws one building: its roof two pixels narrower on each side, and, for a building with
/// windows, two-pixel-wide windows on every other row inside its walls, each lit gray or light
/// gray at random.
fn building(canvas: &mut Canvas, b: &Building, rng: &mut impl Rng) {
    let bottom = canvas.height - 1;
    let top = bottom - b.height + 1;
    for y in (top..=bottom).rev() {
        let mut window = b.colour;
        for x in b.x..b.x + b.width {
            if y == top && (x <= b.x + 1 || x >= b.x + b.width - 2) {
                continue;
            }
            let inside = x > b.x + 1 && x < b.x + b.width - 2 && y > top + 1 && y < bottom - 1;
            let mut colour = b.colour;
            if b.windows && inside {
                let (relx, rely) = (x - (b.x + 1), y - (top + 1));
                if (relx / 2) % 2 == 1 && rely % 2 == 1 {
                    // A window's two pixels share its colour.
                    if relx % 2 == 0 {
                        window = if rng.gen::<bool>() { GRAY } else { LIGHT_GRAY };
                    }
                    colour = window;
                }
            }
            canvas.set(x, y, colour);
        }
    }
}

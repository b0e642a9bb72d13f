//! lua-cjson 2.1 as Redis embeds it: `cjson.encode`, `cjson.decode`, `cjson.null`, `cjson.new`
//! and the configuration functions. Each module table has its own settings, which its functions
//! reach through an upvalue, as in lua-cjson. Redis runs every script in one Lua state, so a
//! script's `cjson.encode_number_precision(3)` holds for later scripts until SCRIPT FLUSH:
//! the global `cjson` module of every shard's Lua state therefore uses one server-wide set of
//! settings (`SHARED`), while each `cjson.new()` table keeps its own.

use std::sync::atomic::{AtomicI32, Ordering};

use std::ffi::{c_int, CStr};

use mlua::ffi::{self, lua_State};

use super::{run, LibErr};
use crate::scripting::lua::{push_bytes, to_bytes};

/// A module's settings (lua-cjson's `json_config_t`, its defaults in `DEFAULTS`).
#[derive(Clone, Copy)]
struct Config {
    /// Encode excessively sparse arrays as objects instead of failing.
    sparse_convert: c_int,
    /// An array is excessively sparse when its largest index is over `ratio` times its items
    /// (0: never) and over `safe`.
    sparse_ratio: c_int,
    sparse_safe: c_int,
    encode_max_depth: c_int,
    decode_max_depth: c_int,
    /// 0: refuse NaN and Inf; 1: write them (`nan`, `inf`); 2: write them as `null`.
    encode_invalid_numbers: c_int,
    /// Accept NaN, Inf, hexadecimal numbers and leading zeros when decoding.
    decode_invalid_numbers: c_int,
    /// Kept for its getter only: it changes no output.
    encode_keep_buffer: c_int,
    encode_number_precision: c_int,
}

const DEFAULTS: Config = Config {
    sparse_convert: 0,
    sparse_ratio: 2,
    sparse_safe: 10,
    encode_max_depth: 1000,
    decode_max_depth: 1000,
    encode_invalid_numbers: 0,
    decode_invalid_numbers: 1,
    encode_keep_buffer: 1,
    encode_number_precision: 14,
};

impl Config {
    fn to_array(self) -> [c_int; 9] {
        [
            self.sparse_convert,
            self.sparse_ratio,
            self.sparse_safe,
            self.encode_max_depth,
            self.decode_max_depth,
            self.encode_invalid_numbers,
            self.decode_invalid_numbers,
            self.encode_keep_buffer,
            self.encode_number_precision,
        ]
    }

    fn from_array(a: [c_int; 9]) -> Config {
        Config {
            sparse_convert: a[0],
            sparse_ratio: a[1],
            sparse_safe: a[2],
            encode_max_depth: a[3],
            decode_max_depth: a[4],
            encode_invalid_numbers: a[5],
            decode_invalid_numbers: a[6],
            encode_keep_buffer: a[7],
            encode_number_precision: a[8],
        }
    }
}

/// The settings of the global `cjson` module, shared by every shard's Lua state.
static SHARED: [AtomicI32; 9] = {
    let d = DEFAULTS;
    [
        AtomicI32::new(d.sparse_convert),
        AtomicI32::new(d.sparse_ratio),
        AtomicI32::new(d.sparse_safe),
        AtomicI32::new(d.encode_max_depth),
        AtomicI32::new(d.decode_max_depth),
        AtomicI32::new(d.encode_invalid_numbers),
        AtomicI32::new(d.decode_invalid_numbers),
        AtomicI32::new(d.encode_keep_buffer),
        AtomicI32::new(d.encode_number_precision),
    ]
};

/// SCRIPT FLUSH: Redis starts a new Lua state, whose cjson has the default settings.
pub fn reset_shared() {
    for (slot, v) in SHARED.iter().zip(DEFAULTS.to_array()) {
        slot.store(v, Ordering::Relaxed);
    }
}

/// A module's upvalue: its own settings, or a mark that it uses `SHARED`.
struct Settings {
    shared: bool,
    own: Config,
}

unsafe fn settings<'a>(l: *mut lua_State) -> &'a mut Settings {
    &mut *(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *mut Settings)
}

/// The settings of the module the running function belongs to.
unsafe fn config(l: *mut lua_State) -> Config {
    let s = settings(l);
    if s.shared {
        Config::from_array(std::array::from_fn(|i| SHARED[i].load(Ordering::Relaxed)))
    } else {
        s.own
    }
}

/// Runs a configuration function's body on a copy of its module's settings and keeps what it
/// set, even when a later argument fails (lua-cjson sets options one by one).
unsafe fn configure(
    l: *mut lua_State,
    f: impl FnOnce(&mut Config) -> Result<c_int, LibErr>,
) -> c_int {
    run(l, || {
        let mut cfg = config(l);
        let r = f(&mut cfg);
        let s = settings(l);
        if s.shared {
            for (slot, v) in SHARED.iter().zip(cfg.to_array()) {
                slot.store(v, Ordering::Relaxed);
            }
        } else {
            s.own = cfg;
        }
        r
    })
}

/// C's `%.<prec>g`.
pub fn format_g(d: f64, prec: usize) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{:.*e}", prec - 1, d);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= prec as i32 {
        let e = exp.unsigned_abs();
        format!(
            "{}e{}{}{}",
            trim(mant),
            if exp < 0 { '-' } else { '+' },
            if e < 10 { "0" } else { "" },
            e
        )
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{:.*}", decimals, d))
    }
}

unsafe fn type_name(l: *mut lua_State, idx: c_int) -> String {
    let p = ffi::lua_typename(l, ffi::lua_type(l, idx));
    std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
}

fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            8 => out.extend_from_slice(b"\\b"),
            12 => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\u{:04x}", c).as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

fn encode_err(what: String, reason: &str) -> LibErr {
    LibErr::Where(format!("Cannot serialise {}: {}", what, reason))
}

unsafe fn encode_number(
    l: *mut lua_State,
    idx: c_int,
    out: &mut Vec<u8>,
    cfg: &Config,
) -> Result<(), LibErr> {
    let n = ffi::lua_tonumber(l, idx);
    if n.is_nan() || n.is_infinite() {
        match cfg.encode_invalid_numbers {
            0 => return Err(encode_err(type_name(l, idx), "must not be NaN or Inf")),
            1 if n.is_nan() => out.extend_from_slice(b"nan"),
            1 if n > 0.0 => out.extend_from_slice(b"inf"),
            1 => out.extend_from_slice(b"-inf"),
            _ => out.extend_from_slice(b"null"),
        }
        return Ok(());
    }
    out.extend_from_slice(format_g(n, cfg.encode_number_precision as usize).as_bytes());
    Ok(())
}

/// Array length of the table on top, None when it is an object (or an excessively sparse array
/// the settings convert). Err on an excessively sparse array otherwise.
unsafe fn array_length(l: *mut lua_State, cfg: &Config) -> Result<Option<usize>, LibErr> {
    let (mut max, mut items) = (0f64, 0usize);
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, -2) != 0 {
        let k = ffi::lua_tonumber(l, -2);
        if ffi::lua_type(l, -2) == ffi::LUA_TNUMBER && k != 0.0 && k.floor() == k && k >= 1.0 {
            if k > max {
                max = k;
            }
            items += 1;
            ffi::lua_pop(l, 1);
            continue;
        }
        ffi::lua_pop(l, 2);
        return Ok(None);
    }
    if cfg.sparse_ratio > 0
        && max > items as f64 * cfg.sparse_ratio as f64
        && max > cfg.sparse_safe as f64
    {
        if cfg.sparse_convert == 0 {
            return Err(encode_err("table".into(), "excessively sparse array"));
        }
        return Ok(None);
    }
    Ok(Some(max as usize))
}

/// Encodes the value on top of the stack (left in place).
unsafe fn encode(
    l: *mut lua_State,
    out: &mut Vec<u8>,
    depth: usize,
    cfg: &Config,
) -> Result<(), LibErr> {
    match ffi::lua_type(l, -1) {
        ffi::LUA_TSTRING => escape_into(out, to_bytes(l, -1).unwrap_or_default()),
        ffi::LUA_TNUMBER => encode_number(l, -1, out, cfg)?,
        ffi::LUA_TBOOLEAN => out.extend_from_slice(if ffi::lua_toboolean(l, -1) != 0 {
            b"true"
        } else {
            b"false"
        }),
        ffi::LUA_TNIL => out.extend_from_slice(b"null"),
        ffi::LUA_TLIGHTUSERDATA if ffi::lua_touserdata(l, -1).is_null() => {
            out.extend_from_slice(b"null")
        }
        ffi::LUA_TTABLE => {
            let depth = depth + 1;
            if depth > cfg.encode_max_depth as usize {
                return Err(LibErr::Where(format!(
                    "Cannot serialise, excessive nesting ({})",
                    depth
                )));
            }
            ffi::lua_checkstack(l, 4);
            match array_length(l, cfg)? {
                Some(len) if len > 0 => {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        ffi::lua_rawgeti(l, -1, i as ffi::lua_Integer);
                        let r = encode(l, out, depth, cfg);
                        ffi::lua_pop(l, 1);
                        r?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    let mut first = true;
                    ffi::lua_pushnil(l);
                    while ffi::lua_next(l, -2) != 0 {
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match ffi::lua_type(l, -2) {
                            ffi::LUA_TSTRING => {
                                escape_into(out, to_bytes(l, -2).unwrap_or_default())
                            }
                            ffi::LUA_TNUMBER => {
                                out.push(b'"');
                                if let Err(e) = encode_number(l, -2, out, cfg) {
                                    ffi::lua_pop(l, 2);
                                    return Err(e);
                                }
                                out.push(b'"');
                            }
                            _ => {
                                let e = encode_err(
                                    type_name(l, -2),
                                    "table key must be a number or string",
                                );
                                ffi::lua_pop(l, 2);
                                return Err(e);
                            }
                        }
                        out.push(b':');
                        if let Err(e) = encode(l, out, depth, cfg) {
                            ffi::lua_pop(l, 2);
                            return Err(e);
                        }
                        ffi::lua_pop(l, 1);
                    }
                    out.push(b'}');
                }
            }
        }
        _ => return Err(encode_err(type_name(l, -1), "type not supported")),
    }
    Ok(())
}

unsafe extern "C-unwind" fn json_encode(l: *mut lua_State) -> c_int {
    run(l, || {
        if ffi::lua_gettop(l) != 1 {
            return Err(LibErr::Arg(1, "expected 1 argument".into()));
        }
        let cfg = config(l);
        let mut out = Vec::new();
        encode(l, &mut out, 0, &cfg)?;
        push_bytes(l, &out);
        Ok(1)
    })
}

// ----- decoding -----

#[derive(Clone, Copy, PartialEq, Debug)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Num,
    Bool,
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Tok {
    fn name(self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str => "T_STRING",
            Tok::Num => "T_NUMBER",
            Tok::Bool => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(s) => s,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    p: usize,
    cfg: Config,
    // Value of the last token.
    text: Vec<u8>,
    num: f64,
    boolean: bool,
    index: usize,
}

fn hexval(c: u8) -> Option<u32> {
    (c as char).to_digit(16)
}

impl Parser<'_> {
    fn next(&mut self) -> Tok {
        while self.p < self.s.len() && matches!(self.s[self.p], b' ' | b'\t' | b'\n' | b'\r') {
            self.p += 1;
        }
        self.index = self.p;
        let Some(&c) = self.s.get(self.p) else {
            return Tok::End;
        };
        match c {
            b'{' => {
                self.p += 1;
                Tok::ObjBegin
            }
            b'}' => {
                self.p += 1;
                Tok::ObjEnd
            }
            b'[' => {
                self.p += 1;
                Tok::ArrBegin
            }
            b']' => {
                self.p += 1;
                Tok::ArrEnd
            }
            b':' => {
                self.p += 1;
                Tok::Colon
            }
            b',' => {
                self.p += 1;
                Tok::Comma
            }
            b'"' => self.string(),
            b'-' | b'0'..=b'9' => {
                if self.cfg.decode_invalid_numbers == 0 && self.invalid_number() {
                    return Tok::Error("invalid number");
                }
                self.number()
            }
            _ => {
                let rest = &self.s[self.p..];
                if rest.starts_with(b"true") {
                    self.p += 4;
                    self.boolean = true;
                    Tok::Bool
                } else if rest.starts_with(b"false") {
                    self.p += 5;
                    self.boolean = false;
                    Tok::Bool
                } else if rest.starts_with(b"null") {
                    self.p += 4;
                    Tok::Null
                } else if self.cfg.decode_invalid_numbers != 0 && self.invalid_number() {
                    self.number()
                } else {
                    Tok::Error("invalid token")
                }
            }
        }
    }

    /// lua-cjson's `json_is_invalid_number`: numbers JSON does not allow (a leading `+`, hex,
    /// leading zeros, Inf, NaN).
    fn invalid_number(&self) -> bool {
        let rest = &self.s[self.p..];
        let mut i = 0;
        match rest.first() {
            Some(b'+') => return true,
            Some(b'-') => i = 1,
            _ => {}
        }
        match rest.get(i) {
            Some(b'0') => {
                matches!(rest.get(i + 1), Some(c) if (c | 0x20) == b'x' || c.is_ascii_digit())
            }
            Some(c) if *c <= b'9' => false,
            _ => {
                let word = &rest[i..rest.len().min(i + 3)];
                word.eq_ignore_ascii_case(b"inf") || word.eq_ignore_ascii_case(b"nan")
            }
        }
    }

    fn number(&mut self) -> Tok {
        let rest = &self.s[self.p..];
        // JSON forbids a leading zero followed by digits; cjson accepts it like strtod would.
        let mut end = 0;
        let is_hex = rest.len() > 2 && rest[0] == b'0' && (rest[1] == b'x' || rest[1] == b'X')
            || rest.len() > 3
                && rest[0] == b'-'
                && rest[1] == b'0'
                && (rest[2] == b'x' || rest[2] == b'X');
        if is_hex {
            let neg = rest[0] == b'-';
            let start = if neg { 3 } else { 2 };
            end = start;
            let mut v: f64 = 0.0;
            while end < rest.len() && rest[end].is_ascii_hexdigit() {
                v = v * 16.0 + hexval(rest[end]).unwrap_or(0) as f64;
                end += 1;
            }
            if end == start {
                return Tok::Error("invalid number");
            }
            self.num = if neg { -v } else { v };
            self.p += end;
            return Tok::Num;
        }
        let lower: Vec<u8> = rest
            .iter()
            .take(9)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        for (word, val) in [
            (&b"-infinity"[..], f64::NEG_INFINITY),
            (b"infinity", f64::INFINITY),
            (b"-inf", f64::NEG_INFINITY),
            (b"inf", f64::INFINITY),
            (b"-nan", f64::NAN),
            (b"nan", f64::NAN),
        ] {
            if lower.starts_with(word) {
                self.num = val;
                self.p += word.len();
                return Tok::Num;
            }
        }
        if end < rest.len() && (rest[end] == b'-' || rest[end] == b'+') {
            end += 1;
        }
        while end < rest.len() && rest[end].is_ascii_digit() {
            end += 1;
        }
        if end < rest.len() && rest[end] == b'.' {
            end += 1;
            while end < rest.len() && rest[end].is_ascii_digit() {
                end += 1;
            }
        }
        if end < rest.len() && (rest[end] == b'e' || rest[end] == b'E') {
            let mut e = end + 1;
            if e < rest.len() && (rest[e] == b'-' || rest[e] == b'+') {
                e += 1;
            }
            if e < rest.len() && rest[e].is_ascii_digit() {
                while e < rest.len() && rest[e].is_ascii_digit() {
                    e += 1;
                }
                end = e;
            }
        }
        match std::str::from_utf8(&rest[..end])
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
        {
            Some(v) => {
                self.num = v;
                self.p += end;
                Tok::Num
            }
            None => Tok::Error("invalid number"),
        }
    }

    fn string(&mut self) -> Tok {
        self.text.clear();
        let mut i = self.p + 1;
        loop {
            let Some(&c) = self.s.get(i) else {
                self.index = self.s.len();
                return Tok::Error("unexpected end of string");
            };
            match c {
                b'"' => {
                    self.p = i + 1;
                    return Tok::Str;
                }
                b'\\' => {
                    let Some(&e) = self.s.get(i + 1) else {
                        self.index = self.s.len();
                        return Tok::Error("unexpected end of string");
                    };
                    match e {
                        b'"' | b'\\' | b'/' => self.text.push(e),
                        b'b' => self.text.push(8),
                        b'f' => self.text.push(12),
                        b'n' => self.text.push(b'\n'),
                        b'r' => self.text.push(b'\r'),
                        b't' => self.text.push(b'\t'),
                        b'u' => match self.unicode(i) {
                            Some(n) => {
                                i += n;
                                continue;
                            }
                            None => {
                                self.index = i;
                                return Tok::Error("invalid unicode escape code");
                            }
                        },
                        _ => {
                            self.index = i;
                            return Tok::Error("invalid escape code");
                        }
                    }
                    i += 2;
                }
                c => {
                    self.text.push(c);
                    i += 1;
                }
            }
        }
    }

    /// Decodes `\uXXXX` (and a following low surrogate) at `i`; returns the bytes consumed.
    fn unicode(&mut self, i: usize) -> Option<usize> {
        let hex4 = |at: usize| -> Option<u32> {
            let h = self.s.get(at..at + 4)?;
            h.iter().try_fold(0u32, |a, &c| Some(a * 16 + hexval(c)?))
        };
        let mut cp = hex4(i + 2)?;
        let mut used = 6;
        if (0xD800..0xDC00).contains(&cp) {
            if self.s.get(i + 6) != Some(&b'\\') || self.s.get(i + 7) != Some(&b'u') {
                return None;
            }
            let lo = hex4(i + 8)?;
            if !(0xDC00..0xE000).contains(&lo) {
                return None;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            used = 12;
        } else if (0xDC00..0xE000).contains(&cp) {
            return None;
        }
        let ch = char::from_u32(cp)?;
        let mut buf = [0u8; 4];
        self.text
            .extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        Some(used)
    }
}

fn parse_error(exp: &str, tok: Tok, index: usize) -> LibErr {
    LibErr::Where(format!(
        "Expected {} but found {} at character {}",
        exp,
        tok.name(),
        index + 1
    ))
}

/// Pushes the value starting with token `tok`.
unsafe fn value(l: *mut lua_State, p: &mut Parser, tok: Tok, depth: usize) -> Result<(), LibErr> {
    ffi::lua_checkstack(l, 4);
    match tok {
        Tok::Str => push_bytes(l, &p.text),
        Tok::Num => ffi::lua_pushnumber(l, p.num),
        Tok::Bool => ffi::lua_pushboolean(l, p.boolean as c_int),
        Tok::Null => ffi::lua_pushlightuserdata(l, std::ptr::null_mut()),
        Tok::ObjBegin => {
            let depth = depth + 1;
            if depth > p.cfg.decode_max_depth as usize {
                return Err(LibErr::Where(format!(
                    "Found too many nested data structures ({}) at character {}",
                    depth,
                    p.index + 1
                )));
            }
            ffi::lua_newtable(l);
            let mut t = p.next();
            if t == Tok::ObjEnd {
                return Ok(());
            }
            loop {
                if t != Tok::Str {
                    return Err(parse_error("object key string", t, p.index));
                }
                push_bytes(l, &p.text);
                let c = p.next();
                if c != Tok::Colon {
                    return Err(parse_error("colon", c, p.index));
                }
                let v = p.next();
                value(l, p, v, depth)?;
                ffi::lua_rawset(l, -3);
                let c = p.next();
                if c == Tok::ObjEnd {
                    return Ok(());
                }
                if c != Tok::Comma {
                    return Err(parse_error("comma or object end", c, p.index));
                }
                t = p.next();
            }
        }
        Tok::ArrBegin => {
            let depth = depth + 1;
            if depth > p.cfg.decode_max_depth as usize {
                return Err(LibErr::Where(format!(
                    "Found too many nested data structures ({}) at character {}",
                    depth,
                    p.index + 1
                )));
            }
            ffi::lua_newtable(l);
            let mut t = p.next();
            if t == Tok::ArrEnd {
                return Ok(());
            }
            let mut i = 1;
            loop {
                value(l, p, t, depth)?;
                ffi::lua_rawseti(l, -2, i);
                i += 1;
                let c = p.next();
                if c == Tok::ArrEnd {
                    return Ok(());
                }
                if c != Tok::Comma {
                    return Err(parse_error("comma or array end", c, p.index));
                }
                t = p.next();
            }
        }
        t => return Err(parse_error("value", t, p.index)),
    }
    Ok(())
}

unsafe extern "C-unwind" fn json_decode(l: *mut lua_State) -> c_int {
    run(l, || {
        if ffi::lua_gettop(l) != 1 {
            return Err(LibErr::Arg(1, "expected 1 argument".into()));
        }
        let s = super::check_bytes(l, 1)?;
        let mut p = Parser {
            s,
            p: 0,
            cfg: config(l),
            text: Vec::new(),
            num: 0.0,
            boolean: false,
            index: 0,
        };
        let t = p.next();
        value(l, &mut p, t, 0)?;
        let t = p.next();
        if t != Tok::End {
            return Err(parse_error("the end", t, p.index));
        }
        Ok(1)
    })
}

/// lua-cjson's `json_arg_init`: at most `n` arguments, missing ones read as nil.
unsafe fn config_args(l: *mut lua_State, n: c_int) -> Result<(), LibErr> {
    if ffi::lua_gettop(l) > n {
        return Err(LibErr::Arg(n + 1, "found too many arguments".into()));
    }
    ffi::lua_settop(l, n);
    Ok(())
}

/// lua-cjson's `json_integer_option`: sets `*setting` from argument `idx` unless it is nil, and
/// pushes the value in force. (Its range error names argument 1 whatever `idx` is, as there.)
unsafe fn integer_option(
    l: *mut lua_State,
    idx: c_int,
    setting: &mut c_int,
    min: c_int,
    max: c_int,
) -> Result<(), LibErr> {
    if ffi::lua_isnil(l, idx) == 0 {
        if ffi::lua_isnumber(l, idx) == 0 {
            return Err(LibErr::Type(idx, c"number"));
        }
        let v = ffi::lua_tointeger_(l, idx);
        if v < min as ffi::lua_Integer || v > max as ffi::lua_Integer {
            return Err(LibErr::Arg(
                1,
                format!("expected integer between {} and {}", min, max),
            ));
        }
        *setting = v as c_int;
    }
    ffi::lua_pushinteger(l, *setting as ffi::lua_Integer);
    Ok(())
}

/// lua-cjson's `json_enum_option` (with `bool_true` 1): sets `*setting` from argument `idx`
/// (a boolean, or one of `options` by name) unless it is nil, and pushes the value in force as a
/// boolean when it is 0 or 1, else as its name.
unsafe fn enum_option(
    l: *mut lua_State,
    idx: c_int,
    setting: &mut c_int,
    options: &[&str],
) -> Result<(), LibErr> {
    if ffi::lua_isnil(l, idx) == 0 {
        if ffi::lua_type(l, idx) == ffi::LUA_TBOOLEAN {
            *setting = ffi::lua_toboolean(l, idx);
        } else {
            let t = ffi::lua_type(l, idx);
            if t != ffi::LUA_TSTRING && t != ffi::LUA_TNUMBER {
                return Err(LibErr::Type(idx, c"string"));
            }
            let name = to_bytes(l, idx).unwrap_or_default();
            match options.iter().position(|o| o.as_bytes() == name) {
                Some(i) => *setting = i as c_int,
                None => {
                    return Err(LibErr::Arg(
                        idx,
                        format!("invalid option '{}'", String::from_utf8_lossy(name)),
                    ))
                }
            }
        }
    }
    match *setting {
        0 | 1 => ffi::lua_pushboolean(l, *setting),
        n => push_bytes(l, options[n as usize].as_bytes()),
    }
    Ok(())
}

const ON_OFF: &[&str] = &["off", "on"];

unsafe extern "C-unwind" fn json_cfg_encode_sparse_array(l: *mut lua_State) -> c_int {
    configure(l, |cfg| {
        config_args(l, 3)?;
        enum_option(l, 1, &mut cfg.sparse_convert, ON_OFF)?;
        integer_option(l, 2, &mut cfg.sparse_ratio, 0, c_int::MAX)?;
        integer_option(l, 3, &mut cfg.sparse_safe, 0, c_int::MAX)?;
        Ok(3)
    })
}

unsafe extern "C-unwind" fn json_cfg_encode_max_depth(l: *mut lua_State) -> c_int {
    configure(l, |cfg| {
        config_args(l, 1)?;
        integer_option(l, 1, &mut cfg.encode_max_depth, 1, c_int::MAX)?;
        Ok(1)
    })
}

unsafe extern "C-unwind" fn json_cfg_decode_max_depth(l: *mut lua_State) -> c_int {
    configure(l, |cfg| {
        config_args(l, 1)?;
        integer_option(l, 1, &mut cfg.decode_max_depth, 1, c_int::MAX)?;
        Ok(1)
    })
}

unsafe extern "C-unwind" fn json_cfg_encode_number_precision(l: *mut lua_State) -> c_int {
    configure(l, |cfg| {
        config_args(l, 1)?;
        integer_option(l, 1, &mut cfg.encode_number_precision, 1, 14)?;
        Ok(1)
    })
}

unsafe extern "C-unwind" fn json_cfg_encode_keep_buffer(l: *mut lua_State) -> c_int {
    configure(l, |cfg| {
        config_args(l, 1)?;
        enum_option(l, 1, &mut cfg.encode_keep_buffer, ON_OFF)?;
        Ok(1)
    })
}

unsafe extern "C-unwind" fn json_cfg_encode_invalid_numbers(l: *mut lua_State) -> c_int {
    configure(l, |cfg| {
        config_args(l, 1)?;
        enum_option(
            l,
            1,
            &mut cfg.encode_invalid_numbers,
            &["off", "on", "null"],
        )?;
        Ok(1)
    })
}

unsafe extern "C-unwind" fn json_cfg_decode_invalid_numbers(l: *mut lua_State) -> c_int {
    configure(l, |cfg| {
        config_args(l, 1)?;
        enum_option(l, 1, &mut cfg.decode_invalid_numbers, ON_OFF)?;
        Ok(1)
    })
}

/// The functions of a cjson module table.
const FUNCTIONS: &[(&CStr, ffi::lua_CFunction)] = &[
    (c"encode", json_encode),
    (c"decode", json_decode),
    (c"encode_max_depth", json_cfg_encode_max_depth),
    (c"decode_max_depth", json_cfg_decode_max_depth),
    (c"encode_number_precision", json_cfg_encode_number_precision),
    (c"encode_keep_buffer", json_cfg_encode_keep_buffer),
    (c"encode_invalid_numbers", json_cfg_encode_invalid_numbers),
    (c"decode_invalid_numbers", json_cfg_decode_invalid_numbers),
    (c"encode_sparse_array", json_cfg_encode_sparse_array),
    (c"new", json_new),
];

/// Pushes a new cjson module table (lua-cjson's `lua_cjson_new`).
unsafe fn push_module(l: *mut lua_State, shared: bool) {
    ffi::lua_createtable(l, 0, FUNCTIONS.len() as c_int + 3);
    // The module's settings: a plain userdata every function holds as its upvalue.
    let cfg = ffi::lua_newuserdata(l, std::mem::size_of::<Settings>()) as *mut Settings;
    cfg.write(Settings {
        shared,
        own: DEFAULTS,
    });
    for (n, f) in FUNCTIONS {
        ffi::lua_pushvalue(l, -1);
        ffi::lua_pushcclosure(l, *f, 1);
        ffi::lua_setfield(l, -3, n.as_ptr());
    }
    ffi::lua_pop(l, 1);
    ffi::lua_pushlightuserdata(l, std::ptr::null_mut());
    ffi::lua_setfield(l, -2, c"null".as_ptr());
    push_bytes(l, b"cjson");
    ffi::lua_setfield(l, -2, c"_NAME".as_ptr());
    push_bytes(l, b"2.1.0");
    ffi::lua_setfield(l, -2, c"_VERSION".as_ptr());
}

/// `cjson.new()`: a fresh module table.
unsafe extern "C-unwind" fn json_new(l: *mut lua_State) -> c_int {
    push_module(l, false);
    1
}

pub unsafe fn open(l: *mut lua_State) {
    push_module(l, true);
    ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"cjson".as_ptr());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g14() {
        assert_eq!(format_g(0.1, 14), "0.1");
        assert_eq!(format_g(1e20, 14), "1e+20");
        assert_eq!(format_g(100.0, 14), "100");
        assert_eq!(format_g(1.5, 14), "1.5");
        assert_eq!(format_g(123456789012345.0, 14), "1.2345678901234e+14");
    }
}

//! lua-cjson 2.1 as Redis embeds it: `cjson.encode`, `cjson.decode`, `cjson.null` and the
//! configuration functions (accepted; encoding uses the library defaults: 14 significant digits,
//! sparse arrays refused past ratio 2 / safe 10, depth 1000).

use std::ffi::{c_int, CStr};

use mlua::ffi::{self, lua_State};

use super::{run, LibErr};
use crate::scripting::lua::{push_bytes, to_bytes};

const MAX_DEPTH: usize = 1000;

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

unsafe fn encode_number(l: *mut lua_State, idx: c_int, out: &mut Vec<u8>) -> Result<(), LibErr> {
    let n = ffi::lua_tonumber(l, idx);
    if n.is_nan() || n.is_infinite() {
        return Err(encode_err(type_name(l, idx), "must not be NaN or Inf"));
    }
    out.extend_from_slice(format_g(n, 14).as_bytes());
    Ok(())
}

/// Array length of the table on top, None when it is an object. Err on excessive sparseness.
unsafe fn array_length(l: *mut lua_State) -> Result<Option<usize>, LibErr> {
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
    if max > (items * 2) as f64 && max > 10.0 {
        return Err(encode_err("table".into(), "excessively sparse array"));
    }
    Ok(Some(max as usize))
}

/// Encodes the value on top of the stack (left in place).
unsafe fn encode(l: *mut lua_State, out: &mut Vec<u8>, depth: usize) -> Result<(), LibErr> {
    match ffi::lua_type(l, -1) {
        ffi::LUA_TSTRING => escape_into(out, to_bytes(l, -1).unwrap_or_default()),
        ffi::LUA_TNUMBER => encode_number(l, -1, out)?,
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
            if depth > MAX_DEPTH {
                return Err(LibErr::Where(format!(
                    "Cannot serialise, excessive nesting ({})",
                    depth
                )));
            }
            ffi::lua_checkstack(l, 4);
            match array_length(l)? {
                Some(len) if len > 0 => {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        ffi::lua_rawgeti(l, -1, i as ffi::lua_Integer);
                        let r = encode(l, out, depth);
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
                                if let Err(e) = encode_number(l, -2, out) {
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
                        if let Err(e) = encode(l, out, depth) {
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
        let mut out = Vec::new();
        encode(l, &mut out, 0)?;
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
            b'-' | b'0'..=b'9' => self.number(),
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
                } else if rest.len() >= 3
                    && (rest[..3].eq_ignore_ascii_case(b"inf")
                        || rest[..3].eq_ignore_ascii_case(b"nan"))
                {
                    self.number()
                } else {
                    Tok::Error("invalid token")
                }
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
            if depth > MAX_DEPTH {
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
            if depth > MAX_DEPTH {
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

/// Configuration functions: accepted, reporting the defaults.
unsafe extern "C-unwind" fn json_config(l: *mut lua_State) -> c_int {
    ffi::lua_settop(l, 0);
    ffi::lua_pushnumber(l, 1000.0);
    1
}

/// The functions of a cjson module table.
const FUNCTIONS: &[(&CStr, ffi::lua_CFunction)] = &[
    (c"encode", json_encode),
    (c"decode", json_decode),
    (c"encode_max_depth", json_config),
    (c"decode_max_depth", json_config),
    (c"encode_number_precision", json_config),
    (c"encode_keep_buffer", json_config),
    (c"encode_invalid_numbers", json_config),
    (c"decode_invalid_numbers", json_config),
    (c"encode_sparse_array", json_config),
    (c"new", json_new),
];

/// Pushes a new cjson module table (lua-cjson's `lua_cjson_new`).
unsafe fn push_module(l: *mut lua_State) {
    ffi::lua_createtable(l, 0, FUNCTIONS.len() as c_int + 3);
    for (n, f) in FUNCTIONS {
        ffi::lua_pushcfunction(l, *f);
        ffi::lua_setfield(l, -2, n.as_ptr());
    }
    ffi::lua_pushlightuserdata(l, std::ptr::null_mut());
    ffi::lua_setfield(l, -2, c"null".as_ptr());
    push_bytes(l, b"cjson");
    ffi::lua_setfield(l, -2, c"_NAME".as_ptr());
    push_bytes(l, b"2.1.0");
    ffi::lua_setfield(l, -2, c"_VERSION".as_ptr());
}

/// `cjson.new()`: a fresh module table.
unsafe extern "C-unwind" fn json_new(l: *mut lua_State) -> c_int {
    push_module(l);
    1
}

pub unsafe fn open(l: *mut lua_State) {
    push_module(l);
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

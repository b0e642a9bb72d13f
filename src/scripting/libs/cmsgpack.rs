//! lua-cmsgpack: MessagePack encoding of Lua values (`cmsgpack.pack`, `unpack`, `unpack_one`,
//! `unpack_limit`).

use std::ffi::c_int;

use mlua::ffi::{self, lua_State};

use super::{check_bytes, check_number, opt_integer, register, run, LibErr};
use crate::scripting::lua::{push_bytes, to_bytes};

const MAX_NESTING: usize = 16;

fn is_int64_equivalent(x: f64) -> bool {
    !x.is_infinite() && !x.is_nan() && (x as i64) as f64 == x
}

fn encode_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        let u = n as u64;
        if u <= 127 {
            out.push(u as u8);
        } else if u <= 0xff {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_bytes(out: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

unsafe fn table_is_array(l: *mut lua_State) -> Option<usize> {
    let top = ffi::lua_gettop(l);
    let (mut count, mut max) = (0usize, 0f64);
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, -2) != 0 {
        ffi::lua_pop(l, 1);
        let n = ffi::lua_tonumber(l, -1);
        if ffi::lua_type(l, -1) != ffi::LUA_TNUMBER || n <= 0.0 || !is_int64_equivalent(n) {
            ffi::lua_settop(l, top);
            return None;
        }
        if n > max {
            max = n;
        }
        count += 1;
    }
    ffi::lua_settop(l, top);
    (max == count as f64).then_some(count)
}

/// Encodes the value on top of the stack and pops it.
unsafe fn encode(l: *mut lua_State, out: &mut Vec<u8>, level: usize) {
    ffi::lua_checkstack(l, 4);
    let mut t = ffi::lua_type(l, -1);
    if t == ffi::LUA_TTABLE && level == MAX_NESTING {
        t = ffi::LUA_TNIL;
    }
    match t {
        ffi::LUA_TSTRING => encode_bytes(out, to_bytes(l, -1).unwrap_or_default()),
        ffi::LUA_TBOOLEAN => out.push(if ffi::lua_toboolean(l, -1) != 0 {
            0xc3
        } else {
            0xc2
        }),
        ffi::LUA_TNUMBER => {
            let n = ffi::lua_tonumber(l, -1);
            if is_int64_equivalent(n) {
                encode_int(out, n as i64);
            } else {
                let f = n as f32;
                if f as f64 == n {
                    out.push(0xca);
                    out.extend_from_slice(&f.to_be_bytes());
                } else {
                    out.push(0xcb);
                    out.extend_from_slice(&n.to_be_bytes());
                }
            }
        }
        ffi::LUA_TTABLE => match table_is_array(l) {
            Some(len) => {
                if len <= 15 {
                    out.push(0x90 | len as u8);
                } else if len <= 0xffff {
                    out.push(0xdc);
                    out.extend_from_slice(&(len as u16).to_be_bytes());
                } else {
                    out.push(0xdd);
                    out.extend_from_slice(&(len as u32).to_be_bytes());
                }
                for j in 1..=len {
                    ffi::lua_rawgeti(l, -1, j as ffi::lua_Integer);
                    encode(l, out, level + 1);
                }
            }
            None => {
                let mut len = 0usize;
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, -2) != 0 {
                    ffi::lua_pop(l, 1);
                    len += 1;
                }
                if len <= 15 {
                    out.push(0x80 | len as u8);
                } else if len <= 0xffff {
                    out.push(0xde);
                    out.extend_from_slice(&(len as u16).to_be_bytes());
                } else {
                    out.push(0xdf);
                    out.extend_from_slice(&(len as u32).to_be_bytes());
                }
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, -2) != 0 {
                    ffi::lua_pushvalue(l, -2);
                    encode(l, out, level + 1);
                    encode(l, out, level + 1);
                }
            }
        },
        _ => out.push(0xc0),
    }
    ffi::lua_pop(l, 1);
}

unsafe extern "C-unwind" fn pack(l: *mut lua_State) -> c_int {
    run(l, || {
        let n = ffi::lua_gettop(l);
        if n == 0 {
            return Err(LibErr::Arg(0, "MessagePack pack needs input.".into()));
        }
        let mut out = Vec::new();
        for i in 1..=n {
            ffi::lua_pushvalue(l, i);
            encode(l, &mut out, 0);
        }
        push_bytes(l, &out);
        Ok(1)
    })
}

enum DecErr {
    Eof,
    Bad,
}

struct Cur<'a> {
    b: &'a [u8],
    p: usize,
}

impl Cur<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecErr> {
        if self.b.len() - self.p < n {
            return Err(DecErr::Eof);
        }
        let s = &self.b[self.p..self.p + n];
        self.p += n;
        Ok(s)
    }
    fn be(&mut self, n: usize) -> Result<u64, DecErr> {
        Ok(self.take(n)?.iter().fold(0u64, |a, &b| (a << 8) | b as u64))
    }
}

/// Decodes one object and pushes it.
unsafe fn decode(l: *mut lua_State, c: &mut Cur) -> Result<(), DecErr> {
    ffi::lua_checkstack(l, 4);
    let t = c.take(1)?[0];
    match t {
        0x00..=0x7f => ffi::lua_pushnumber(l, t as f64),
        0xe0..=0xff => ffi::lua_pushnumber(l, t as i8 as f64),
        0xc0 => ffi::lua_pushnil(l),
        0xc2 => ffi::lua_pushboolean(l, 0),
        0xc3 => ffi::lua_pushboolean(l, 1),
        0xcc => ffi::lua_pushnumber(l, c.be(1)? as f64),
        0xcd => ffi::lua_pushnumber(l, c.be(2)? as f64),
        0xce => ffi::lua_pushnumber(l, c.be(4)? as f64),
        // Redis's lua_cmsgpack pushes it as a Lua integer (int64): above i64::MAX it wraps.
        0xcf => ffi::lua_pushnumber(l, c.be(8)? as i64 as f64),
        0xd0 => ffi::lua_pushnumber(l, c.be(1)? as u8 as i8 as f64),
        0xd1 => ffi::lua_pushnumber(l, c.be(2)? as u16 as i16 as f64),
        0xd2 => ffi::lua_pushnumber(l, c.be(4)? as u32 as i32 as f64),
        0xd3 => ffi::lua_pushnumber(l, c.be(8)? as i64 as f64),
        0xca => ffi::lua_pushnumber(l, f32::from_bits(c.be(4)? as u32) as f64),
        0xcb => ffi::lua_pushnumber(l, f64::from_bits(c.be(8)?)),
        0xa0..=0xbf => {
            let s = c.take((t & 0x1f) as usize)?;
            push_bytes(l, s);
        }
        0xd9 | 0xc4 => {
            let n = c.be(1)? as usize;
            push_bytes(l, c.take(n)?);
        }
        0xda | 0xc5 => {
            let n = c.be(2)? as usize;
            push_bytes(l, c.take(n)?);
        }
        0xdb | 0xc6 => {
            let n = c.be(4)? as usize;
            push_bytes(l, c.take(n)?);
        }
        0x90..=0x9f | 0xdc | 0xdd => {
            let n = match t {
                0xdc => c.be(2)? as usize,
                0xdd => c.be(4)? as usize,
                _ => (t & 0x0f) as usize,
            };
            ffi::lua_newtable(l);
            for j in 0..n {
                ffi::lua_pushnumber(l, (j + 1) as f64);
                if let Err(e) = decode(l, c) {
                    ffi::lua_pop(l, 2);
                    return Err(e);
                }
                ffi::lua_settable(l, -3);
            }
        }
        0x80..=0x8f | 0xde | 0xdf => {
            let n = match t {
                0xde => c.be(2)? as usize,
                0xdf => c.be(4)? as usize,
                _ => (t & 0x0f) as usize,
            };
            ffi::lua_newtable(l);
            for _ in 0..n {
                if let Err(e) = decode(l, c) {
                    ffi::lua_pop(l, 1);
                    return Err(e);
                }
                if let Err(e) = decode(l, c) {
                    ffi::lua_pop(l, 2);
                    return Err(e);
                }
                ffi::lua_settable(l, -3);
            }
        }
        _ => return Err(DecErr::Bad),
    }
    Ok(())
}

unsafe fn unpack_full(l: *mut lua_State, limit: i64, offset: i64) -> Result<c_int, LibErr> {
    let s = check_bytes(l, 1)?;
    let len = s.len() as i64;
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        return Err(LibErr::Where(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32, len as i32
        )));
    } else if offset > len {
        return Err(LibErr::Where(format!(
            "Start offset {} greater than input length {}.",
            offset as i32, len as i32
        )));
    }
    let limit = if decode_all { i32::MAX as i64 } else { limit };
    let mut c = Cur {
        b: &s[offset as usize..],
        p: 0,
    };
    let mut cnt: c_int = 0;
    while c.p < c.b.len() && (cnt as i64) < limit {
        match decode(l, &mut c) {
            Ok(()) => cnt += 1,
            Err(DecErr::Eof) => return Err(LibErr::Where("Missing bytes in input.".into())),
            Err(DecErr::Bad) => return Err(LibErr::Where("Bad data format in input.".into())),
        }
    }
    if !decode_all {
        let left = c.b.len() - c.p;
        ffi::lua_checkstack(l, 1);
        ffi::lua_pushinteger(
            l,
            if left == 0 {
                -1
            } else {
                (len - left as i64) as ffi::lua_Integer
            },
        );
        ffi::lua_insert(l, 2);
        cnt += 1;
    }
    Ok(cnt)
}

unsafe extern "C-unwind" fn unpack(l: *mut lua_State) -> c_int {
    run(l, || unpack_full(l, 0, 0))
}

unsafe extern "C-unwind" fn unpack_one(l: *mut lua_State) -> c_int {
    run(l, || {
        let offset = opt_integer(l, 2, 0)?;
        ffi::lua_settop(l, 1);
        unpack_full(l, 1, offset)
    })
}

unsafe extern "C-unwind" fn unpack_limit(l: *mut lua_State) -> c_int {
    run(l, || {
        let limit = check_number(l, 2)? as i64;
        let offset = opt_integer(l, 3, 0)?;
        ffi::lua_settop(l, 1);
        unpack_full(l, limit, offset)
    })
}

pub unsafe fn open(l: *mut lua_State) {
    register(
        l,
        c"cmsgpack",
        &[
            (c"pack", pack),
            (c"unpack", unpack),
            (c"unpack_one", unpack_one),
            (c"unpack_limit", unpack_limit),
        ],
    );
}

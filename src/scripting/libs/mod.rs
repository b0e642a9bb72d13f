//! The Lua libraries Redis ships to scripts, implemented in Rust over the Lua C API: `bit`
//! (LuaBitOp), `cjson` (lua-cjson as Redis patches it), `cmsgpack` (lua-cmsgpack) and `struct`
//! (Roberto Ierusalimschy's struct). Behaviour and error texts follow the C libraries Redis 7.0
//! embeds.
//!
//! Every library function computes its result (or the error to raise) first and raises only
//! from its outermost frame, with no Rust value alive: `lua_error` jumps over the frames between.

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod structlib;

use std::ffi::{c_int, CStr, CString};

use mlua::ffi::{self, lua_State};

use super::lua::push_bytes;

/// An error a library function raises once its own data is gone.
pub enum LibErr {
    /// `luaL_error`: the caller's position, then the message.
    Where(String),
    /// `luaL_argerror(narg, msg)`.
    Arg(c_int, String),
    /// `luaL_typerror(narg, tname)`.
    Type(c_int, &'static CStr),
}

/// Raises `e` (never returns normally).
pub unsafe fn raise(l: *mut lua_State, e: LibErr) -> c_int {
    match e {
        LibErr::Where(msg) => {
            ffi::luaL_where(l, 1);
            push_bytes(l, msg.as_bytes());
            drop(msg);
            ffi::lua_concat(l, 2);
            ffi::lua_error(l)
        }
        LibErr::Arg(n, msg) => {
            let c = CString::new(msg.replace('\0', "")).unwrap_or_default();
            // luaL_argerror copies the message with lua_pushfstring before raising, but the
            // CString would be skipped: hand Lua its own copy first.
            push_bytes(l, c.as_bytes());
            drop(c);
            let p = ffi::lua_tostring(l, -1);
            ffi::luaL_argerror(l, n, p)
        }
        LibErr::Type(n, t) => ffi::luaL_typerror(l, n, t.as_ptr()),
    }
}

/// Runs a library body and raises its error from this (destructor-free) frame.
pub unsafe fn run(l: *mut lua_State, f: impl FnOnce() -> Result<c_int, LibErr>) -> c_int {
    let r = f();
    match r {
        Ok(n) => n,
        Err(e) => raise(l, e),
    }
}

pub unsafe fn register(l: *mut lua_State, name: &CStr, funcs: &[(&CStr, ffi::lua_CFunction)]) {
    ffi::lua_createtable(l, 0, funcs.len() as c_int);
    for (n, f) in funcs {
        ffi::lua_pushcfunction(l, *f);
        ffi::lua_setfield(l, -2, n.as_ptr());
    }
    ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, name.as_ptr());
}

/// Opens every library as a global.
pub unsafe fn open_all(l: *mut lua_State) {
    bit::open(l);
    cjson::open(l);
    cmsgpack::open(l);
    structlib::open(l);
}

/// `luaL_checknumber` without raising.
pub unsafe fn check_number(l: *mut lua_State, idx: c_int) -> Result<f64, LibErr> {
    let n = ffi::lua_tonumber(l, idx);
    if n == 0.0 && ffi::lua_isnumber(l, idx) == 0 {
        return Err(LibErr::Type(idx, c"number"));
    }
    Ok(n)
}

/// `luaL_checklstring` without raising (numbers are converted in place, like Lua does).
pub unsafe fn check_bytes<'a>(l: *mut lua_State, idx: c_int) -> Result<&'a [u8], LibErr> {
    match super::lua::to_bytes(l, idx) {
        Some(b) => Ok(b),
        None => Err(LibErr::Type(idx, c"string")),
    }
}

/// `luaL_optinteger` without raising.
pub unsafe fn opt_integer(l: *mut lua_State, idx: c_int, def: i64) -> Result<i64, LibErr> {
    if ffi::lua_type(l, idx) <= ffi::LUA_TNIL {
        return Ok(def);
    }
    Ok(check_number(l, idx)? as i64)
}

//! LuaBitOp 1.0: 32-bit bit operations on Lua numbers.

use std::ffi::c_int;

use mlua::ffi::{self, lua_State};

use super::{register, run, LibErr};

/// LuaBitOp's argument normalisation: the number's low 32 bits after adding 2^52+2^51, which
/// rounds to an integer and wraps modulo 2^32.
unsafe fn barg(l: *mut lua_State, idx: c_int) -> Result<u32, LibErr> {
    let n = ffi::lua_tonumber(l, idx);
    let b = (n + 6_755_399_441_055_744.0).to_bits() as u32;
    if b == 0 && ffi::lua_isnumber(l, idx) == 0 {
        return Err(LibErr::Type(idx, c"number"));
    }
    Ok(b)
}

unsafe fn ret(l: *mut lua_State, b: u32) -> c_int {
    ffi::lua_pushnumber(l, b as i32 as f64);
    1
}

macro_rules! bitfn {
    ($name:ident, |$l:ident| $body:expr) => {
        unsafe extern "C-unwind" fn $name($l: *mut lua_State) -> c_int {
            run($l, || -> Result<c_int, LibErr> { Ok(ret($l, $body?)) })
        }
    };
}

bitfn!(tobit, |l| barg(l, 1));
bitfn!(bnot, |l| barg(l, 1).map(|b| !b));
bitfn!(bswap, |l| barg(l, 1).map(|b| b.swap_bytes()));

unsafe fn fold(l: *mut lua_State, f: fn(u32, u32) -> u32) -> Result<u32, LibErr> {
    let mut b = barg(l, 1)?;
    let mut i = ffi::lua_gettop(l);
    while i > 1 {
        b = f(b, barg(l, i)?);
        i -= 1;
    }
    Ok(b)
}

bitfn!(band, |l| fold(l, |a, b| a & b));
bitfn!(bor, |l| fold(l, |a, b| a | b));
bitfn!(bxor, |l| fold(l, |a, b| a ^ b));

unsafe fn shift(l: *mut lua_State, f: fn(u32, u32) -> u32) -> Result<u32, LibErr> {
    let b = barg(l, 1)?;
    let n = barg(l, 2)? & 31;
    Ok(f(b, n))
}

bitfn!(lshift, |l| shift(l, |b, n| b << n));
bitfn!(rshift, |l| shift(l, |b, n| b >> n));
bitfn!(arshift, |l| shift(l, |b, n| ((b as i32) >> n) as u32));
bitfn!(rol, |l| shift(l, |b, n| b.rotate_left(n)));
bitfn!(ror, |l| shift(l, |b, n| b.rotate_right(n)));

unsafe extern "C-unwind" fn tohex(l: *mut lua_State) -> c_int {
    run(l, || {
        let mut b = barg(l, 1)?;
        let mut n: i32 = if ffi::lua_type(l, 2) == ffi::LUA_TNONE {
            8
        } else {
            barg(l, 2)? as i32
        };
        let digits: &[u8; 16] = if n < 0 {
            n = n.wrapping_neg();
            b"0123456789ABCDEF"
        } else {
            b"0123456789abcdef"
        };
        let n = n.clamp(0, 8) as usize;
        let mut buf = [0u8; 8];
        for i in (0..n).rev() {
            buf[i] = digits[(b & 15) as usize];
            b >>= 4;
        }
        super::push_bytes(l, &buf[..n]);
        Ok(1)
    })
}

pub unsafe fn open(l: *mut lua_State) {
    register(
        l,
        c"bit",
        &[
            (c"tobit", tobit),
            (c"bnot", bnot),
            (c"band", band),
            (c"bor", bor),
            (c"bxor", bxor),
            (c"lshift", lshift),
            (c"rshift", rshift),
            (c"arshift", arshift),
            (c"rol", rol),
            (c"ror", ror),
            (c"bswap", bswap),
            (c"tohex", tohex),
        ],
    );
}

//! The `struct` library: pack/unpack binary data (`struct.pack`, `struct.unpack`,
//! `struct.size`), with Redis's bounds checks.

use std::ffi::c_int;

use mlua::ffi::{self, lua_State};

use super::{check_bytes, check_number, opt_integer, register, run, LibErr};

const MAXINTSIZE: usize = 32;
const MAXALIGN: usize = 8;

#[derive(Clone, Copy)]
struct Header {
    big: bool,
    align: usize,
}

fn getnum(fmt: &[u8], i: &mut usize, df: usize) -> Result<usize, LibErr> {
    if *i >= fmt.len() || !fmt[*i].is_ascii_digit() {
        return Ok(df);
    }
    let mut a: i64 = 0;
    while *i < fmt.len() && fmt[*i].is_ascii_digit() {
        let d = (fmt[*i] - b'0') as i64;
        if a > (i32::MAX as i64 / 10) || a * 10 > (i32::MAX as i64 - d) {
            return Err(LibErr::Where("integral size overflow".into()));
        }
        a = a * 10 + d;
        *i += 1;
    }
    Ok(a as usize)
}

fn optsize(opt: u8, fmt: &[u8], i: &mut usize) -> Result<usize, LibErr> {
    Ok(match opt {
        b'B' | b'b' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' => 8,
        b'f' => 4,
        b'd' => 8,
        b'x' => 1,
        b'c' => getnum(fmt, i, 1)?,
        b'i' | b'I' => {
            let sz = getnum(fmt, i, 4)?;
            if sz > MAXINTSIZE {
                return Err(LibErr::Where(format!(
                    "integral size {} is larger than limit of {}",
                    sz, MAXINTSIZE
                )));
            }
            sz
        }
        _ => 0,
    })
}

fn gettoalign(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    if size == 0 {
        return 0;
    }
    (size - (len & (size - 1))) & (size - 1)
}

fn controloptions(opt: u8, fmt: &[u8], i: &mut usize, h: &mut Header) -> Result<(), LibErr> {
    match opt {
        b' ' => Ok(()),
        b'>' => {
            h.big = true;
            Ok(())
        }
        b'<' => {
            h.big = false;
            Ok(())
        }
        b'!' => {
            let a = getnum(fmt, i, MAXALIGN)?;
            if a & a.wrapping_sub(1) != 0 {
                return Err(LibErr::Where(format!(
                    "alignment {} is not a power of 2",
                    a
                )));
            }
            h.align = a;
            Ok(())
        }
        _ => Err(LibErr::Arg(
            1,
            format!("invalid format option '{}'", opt as char),
        )),
    }
}

fn default_header() -> Header {
    Header {
        big: false,
        align: 1,
    }
}

unsafe extern "C-unwind" fn pack(l: *mut lua_State) -> c_int {
    run(l, || {
        let fmt = check_bytes(l, 1)?.to_vec();
        let mut h = default_header();
        let mut out: Vec<u8> = Vec::new();
        let mut arg = 2;
        let mut i = 0;
        while i < fmt.len() {
            let opt = fmt[i];
            i += 1;
            let mut size = optsize(opt, &fmt, &mut i)?;
            let toalign = gettoalign(out.len(), &h, opt, size);
            out.resize(out.len() + toalign, 0);
            match opt {
                b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                    let n = check_number(l, arg)?;
                    arg += 1;
                    let mut v: u64 = if n < 0.0 { n as i64 as u64 } else { n as u64 };
                    let mut buf = [0u8; MAXINTSIZE];
                    for b in buf.iter_mut().take(size) {
                        *b = (v & 0xff) as u8;
                        v = v.checked_shr(8).unwrap_or(0);
                    }
                    if h.big {
                        buf[..size].reverse();
                    }
                    out.extend_from_slice(&buf[..size]);
                }
                b'x' => out.push(0),
                b'f' => {
                    let f = check_number(l, arg)? as f32;
                    arg += 1;
                    out.extend_from_slice(&if h.big {
                        f.to_be_bytes()
                    } else {
                        f.to_le_bytes()
                    });
                }
                b'd' => {
                    let d = check_number(l, arg)?;
                    arg += 1;
                    out.extend_from_slice(&if h.big {
                        d.to_be_bytes()
                    } else {
                        d.to_le_bytes()
                    });
                }
                b'c' | b's' => {
                    let s = check_bytes(l, arg)?;
                    arg += 1;
                    if size == 0 {
                        size = s.len();
                    }
                    if s.len() < size {
                        return Err(LibErr::Arg(arg, "string too short".into()));
                    }
                    out.extend_from_slice(&s[..size]);
                    if opt == b's' {
                        out.push(0);
                    }
                }
                _ => controloptions(opt, &fmt, &mut i, &mut h)?,
            }
        }
        super::push_bytes(l, &out);
        Ok(1)
    })
}

fn getinteger(data: &[u8], big: bool, signed: bool) -> f64 {
    let mut v: u64 = 0;
    let size = data.len();
    if big {
        for &b in data {
            v = (v << 8) | b as u64;
        }
    } else {
        for &b in data.iter().rev() {
            v = (v << 8) | b as u64;
        }
    }
    if !signed {
        return v as f64;
    }
    let bits = (size * 8).min(64);
    if bits == 0 {
        return 0.0;
    }
    let mask: u64 = u64::MAX.checked_shl(bits as u32 - 1).unwrap_or(0);
    if v & mask != 0 {
        v |= mask;
    }
    v as i64 as f64
}

unsafe extern "C-unwind" fn unpack(l: *mut lua_State) -> c_int {
    run(l, || {
        let fmt = check_bytes(l, 1)?.to_vec();
        let data = check_bytes(l, 2)?;
        let ld = data.len();
        let pos0 = opt_integer(l, 3, 1)?;
        if pos0 <= 0 {
            return Err(LibErr::Arg(3, "offset must be 1 or greater".into()));
        }
        let mut pos = (pos0 - 1) as usize;
        let mut h = default_header();
        let mut n: c_int = 0;
        let mut i = 0;
        while i < fmt.len() {
            let opt = fmt[i];
            i += 1;
            let mut size = optsize(opt, &fmt, &mut i)?;
            pos += gettoalign(pos, &h, opt, size);
            if !(size <= ld && pos <= ld - size) {
                return Err(LibErr::Arg(2, "data string too short".into()));
            }
            ffi::lua_checkstack(l, 2);
            match opt {
                b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                    let v = getinteger(&data[pos..pos + size], h.big, opt.is_ascii_lowercase());
                    ffi::lua_pushnumber(l, v);
                    n += 1;
                }
                b'x' => {}
                b'f' => {
                    let mut b = [0u8; 4];
                    b.copy_from_slice(&data[pos..pos + 4]);
                    let f = if h.big {
                        f32::from_be_bytes(b)
                    } else {
                        f32::from_le_bytes(b)
                    };
                    ffi::lua_pushnumber(l, f as f64);
                    n += 1;
                }
                b'd' => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&data[pos..pos + 8]);
                    let d = if h.big {
                        f64::from_be_bytes(b)
                    } else {
                        f64::from_le_bytes(b)
                    };
                    ffi::lua_pushnumber(l, d);
                    n += 1;
                }
                b'c' => {
                    if size == 0 {
                        if n == 0 || ffi::lua_isnumber(l, -1) == 0 {
                            return Err(LibErr::Where("format 'c0' needs a previous size".into()));
                        }
                        size = ffi::lua_tonumber(l, -1) as usize;
                        ffi::lua_pop(l, 1);
                        n -= 1;
                        if !(size <= ld && pos <= ld - size) {
                            return Err(LibErr::Arg(2, "data string too short".into()));
                        }
                    }
                    super::push_bytes(l, &data[pos..pos + size]);
                    n += 1;
                }
                b's' => {
                    let Some(e) = data[pos..].iter().position(|&b| b == 0) else {
                        return Err(LibErr::Where("unfinished string in data".into()));
                    };
                    size = e + 1;
                    super::push_bytes(l, &data[pos..pos + e]);
                    n += 1;
                }
                _ => controloptions(opt, &fmt, &mut i, &mut h)?,
            }
            pos += size;
        }
        ffi::lua_pushinteger(l, (pos + 1) as ffi::lua_Integer);
        Ok(n + 1)
    })
}

unsafe extern "C-unwind" fn size(l: *mut lua_State) -> c_int {
    run(l, || {
        let fmt = check_bytes(l, 1)?.to_vec();
        let mut h = default_header();
        let mut pos = 0usize;
        let mut i = 0;
        while i < fmt.len() {
            let opt = fmt[i];
            i += 1;
            let size = optsize(opt, &fmt, &mut i)?;
            pos += gettoalign(pos, &h, opt, size);
            if opt == b's' {
                return Err(LibErr::Arg(1, "option 's' has no fixed size".into()));
            } else if opt == b'c' && size == 0 {
                return Err(LibErr::Arg(1, "option 'c0' has no fixed size".into()));
            }
            if !opt.is_ascii_alphanumeric() {
                controloptions(opt, &fmt, &mut i, &mut h)?;
            }
            pos += size;
        }
        ffi::lua_pushinteger(l, pos as ffi::lua_Integer);
        Ok(1)
    })
}

pub unsafe fn open(l: *mut lua_State) {
    register(
        l,
        c"struct",
        &[(c"pack", pack), (c"unpack", unpack), (c"size", size)],
    );
}

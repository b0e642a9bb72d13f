//! LZF compression in the format Redis uses for RDB strings (liblzf 3.6 as built into Redis:
//! `HLOG` 16, `VERY_FAST`, offsets into the input for the hash table).
//!
//! The compressor makes the same choices as Redis's: the same hash of three bytes, the same
//! one-slot table, the same rule that a match never starts at the first input byte, the same
//! unrolled match extension and the same "does not fit" verdicts, so that a payload Redis
//! compresses gets the same bytes from us (Redis's table starts uninitialised; ours starts
//! empty, which is what its bounds checks make of most garbage).
//!
//! Format: a control byte `c`; `c < 32` is a literal run of `c + 1` bytes; otherwise `c >> 5`
//! is the match length minus 2 (7 means "plus the next byte"), and the low 5 bits with the byte
//! after form the back offset minus 1.
//!
//! Never panics on any input and never writes or allocates beyond the sizes it is given.

use std::cell::RefCell;

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

thread_local! {
    /// The hash table, reused between calls. Each slot holds (generation << 32 | offset + 1);
    /// a slot from another call reads as empty, like a freshly cleared table, without clearing
    /// 512 KiB per string.
    static TABLE: RefCell<(Vec<u64>, u32)> = RefCell::new((vec![0; HSIZE], 0));
}

#[inline]
fn idx(h: u32) -> usize {
    // VERY_FAST: ((h >> (3*8 - HLOG)) - h*5) & (HSIZE - 1)
    ((h >> (24 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// Compresses `input` into at most `out_limit` bytes; None when it does not fit (Redis then
/// stores the string uncompressed) or when either is empty.
pub fn compress(input: &[u8], out_limit: usize) -> Option<Vec<u8>> {
    if input.is_empty() || out_limit == 0 || input.len() > u32::MAX as usize - 1 {
        return None;
    }
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let (table, gen) = &mut *t;
        *gen = gen.wrapping_add(1);
        if *gen == 0 {
            table.iter_mut().for_each(|s| *s = 0);
            *gen = 1;
        }
        compress_with(input, out_limit, table, *gen)
    })
}

fn compress_with(input: &[u8], out_limit: usize, table: &mut [u64], gen: u32) -> Option<Vec<u8>> {
    let n = input.len();
    let mut out: Vec<u8> = Vec::with_capacity(out_limit.min(n + n / 16 + 64));
    // Positions in `out` are tracked as in the C code: `op` is the next write position and the
    // byte at `op - lit - 1` is the control byte of the current literal run.
    let mut op: usize = 0;
    let put = |out: &mut Vec<u8>, at: usize, b: u8| {
        if at >= out.len() {
            out.resize(at + 1, 0);
        }
        out[at] = b;
    };
    let get_slot = |table: &[u64], h: usize| -> Option<usize> {
        let s = table[h];
        ((s >> 32) as u32 == gen && s as u32 != 0).then(|| (s as u32 - 1) as usize)
    };
    let set_slot = |table: &mut [u64], h: usize, pos: usize| {
        table[h] = ((gen as u64) << 32) | (pos as u64 + 1);
    };
    // Appends one literal byte, closing the run (its control byte) when it is full.
    let push_literal = |out: &mut Vec<u8>, op: &mut usize, lit: &mut usize, b: u8| {
        *lit += 1;
        put(out, *op, b);
        *op += 1;
        if *lit == MAX_LIT {
            put(out, *op - *lit - 1, (*lit - 1) as u8);
            *lit = 0;
            *op += 1;
        }
    };
    let mut lit: usize = 0;
    op += 1; // start run
    let mut ip: usize = 0;
    let frst = |p: usize| ((input[p] as u32) << 8) | input[p + 1] as u32;
    let mut hval: u32 = if n >= 2 { frst(0) } else { 0 };
    while n >= 3 && ip < n - 2 {
        hval = (hval << 8) | input[ip + 2] as u32;
        let h = idx(hval);
        let reference = get_slot(table, h);
        set_slot(table, h, ip);
        let matched = reference.filter(|&r| {
            r < ip
                && ip - r - 1 < MAX_OFF
                && r > 0
                && input[r + 2] == input[ip + 2]
                && input[r] == input[ip]
                && input[r + 1] == input[ip + 1]
        });
        if let Some(r) = matched {
            let off = ip - r - 1;
            let mut len: usize = 2;
            let maxlen = (n - ip - len).min(MAX_REF);
            if op + 3 + 1 >= out_limit && op - usize::from(lit == 0) + 3 + 1 >= out_limit {
                return None;
            }
            put(&mut out, op - lit - 1, (lit as u8).wrapping_sub(1));
            op -= usize::from(lit == 0);
            let mut done = false;
            if maxlen > 16 {
                // The C code checks 16 more bytes without looking at maxlen (it is > 16).
                for _ in 0..16 {
                    len += 1;
                    if input[r + len] != input[ip + len] {
                        done = true;
                        break;
                    }
                }
            }
            if !done {
                loop {
                    len += 1;
                    if !(len < maxlen && input[r + len] == input[ip + len]) {
                        break;
                    }
                }
            }
            len -= 2;
            ip += 1;
            if len < 7 {
                put(&mut out, op, ((off >> 8) + (len << 5)) as u8);
                op += 1;
            } else {
                put(&mut out, op, ((off >> 8) + (7 << 5)) as u8);
                put(&mut out, op + 1, (len - 7) as u8);
                op += 2;
            }
            put(&mut out, op, off as u8);
            op += 1;
            lit = 0;
            op += 1; // start run
            ip += len + 1;
            if ip >= n - 2 {
                break;
            }
            ip -= 2;
            hval = frst(ip);
            hval = (hval << 8) | input[ip + 2] as u32;
            set_slot(table, idx(hval), ip);
            ip += 1;
            hval = (hval << 8) | input[ip + 2] as u32;
            set_slot(table, idx(hval), ip);
            ip += 1;
        } else {
            if op >= out_limit {
                return None;
            }
            push_literal(&mut out, &mut op, &mut lit, input[ip]);
            ip += 1;
        }
    }
    if op + 3 > out_limit {
        return None;
    }
    while ip < n {
        push_literal(&mut out, &mut op, &mut lit, input[ip]);
        ip += 1;
    }
    put(&mut out, op - lit - 1, (lit as u8).wrapping_sub(1));
    op -= usize::from(lit == 0);
    out.truncate(op);
    Some(out)
}

/// Why a compressed block was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LzfError {
    /// A literal run or back reference goes past the end of the input.
    Truncated,
    /// A back reference points before the start of the output.
    BadReference,
    /// The output would be longer, or ends up shorter, than announced.
    WrongLength,
}

/// Decompresses `input`, which must expand to exactly `out_len` bytes.
pub fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, LzfError> {
    let mut out: Vec<u8> = Vec::with_capacity(out_len);
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            if out.len() + run > out_len {
                return Err(LzfError::WrongLength);
            }
            let lits = input.get(ip..ip + run).ok_or(LzfError::Truncated)?;
            out.extend_from_slice(lits);
            ip += run;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(ip).ok_or(LzfError::Truncated)? as usize;
                ip += 1;
            }
            let low = *input.get(ip).ok_or(LzfError::Truncated)? as usize;
            ip += 1;
            let back = ((ctrl & 0x1f) << 8) + low + 1;
            len += 2;
            if out.len() + len > out_len {
                return Err(LzfError::WrongLength);
            }
            if back > out.len() {
                return Err(LzfError::BadReference);
            }
            let start = out.len() - back;
            for k in 0..len {
                let b = out[start + k];
                out.push(b);
            }
        }
    }
    if out.len() != out_len {
        return Err(LzfError::WrongLength);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn redis_vector_for_a_run_of_one_byte() {
        // redis-cli --no-raw DUMP of SET s <100 x 'a'>: LZF block "\x01aa\xe0W\x00\x01aa".
        let input = vec![b'a'; 100];
        let c = compress(&input, input.len() - 4).unwrap();
        assert_eq!(c, b"\x01aa\xe0W\x00\x01aa");
        assert_eq!(decompress(&c, 100).unwrap(), input);
    }

    #[test]
    fn incompressible_input_does_not_fit() {
        let input: Vec<u8> = (0u8..=255).collect();
        assert_eq!(compress(&input, input.len() - 4), None);
        assert_eq!(compress(b"", 10), None);
    }

    #[test]
    fn decompress_rejects_bad_blocks() {
        assert_eq!(decompress(b"\x05ab", 6), Err(LzfError::Truncated));
        assert_eq!(decompress(b"\x20\x05", 3), Err(LzfError::BadReference));
        assert_eq!(decompress(b"\x00a\x20\x00", 2), Err(LzfError::WrongLength));
        assert_eq!(decompress(b"\x00a\x20\x05", 4), Err(LzfError::BadReference));
        assert_eq!(decompress(b"\x01ab", 3), Err(LzfError::WrongLength));
        assert_eq!(decompress(b"\x01ab", 1), Err(LzfError::WrongLength));
        assert_eq!(decompress(b"\x00a\xe0", 20), Err(LzfError::Truncated));
    }

    proptest! {
        #[test]
        fn round_trips(data in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 1..3000)) {
            if let Some(c) = compress(&data, data.len() + 64) {
                prop_assert_eq!(decompress(&c, data.len()).unwrap(), data.clone());
            }
            // Repetitive input compresses (given room for the literal runs of tiny inputs).
            let mut rep = data.clone();
            rep.extend_from_slice(&data);
            rep.extend_from_slice(&data);
            let c = compress(&rep, rep.len() + rep.len() / 16 + 16).unwrap();
            prop_assert_eq!(decompress(&c, rep.len()).unwrap(), rep);
        }

        #[test]
        fn decompress_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), len in 0usize..1000) {
            let _ = decompress(&data, len);
        }
    }
}

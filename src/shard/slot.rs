//! Key -> hash slot -> shard, exactly like Redis Cluster: CRC16/XMODEM of the key (or of its
//! `{hash tag}`) mod 16384, then a slot table. Keys that share a tag always share a shard.

/// Number of hash slots, as in Redis Cluster.
pub const SLOTS: usize = 16384;

/// CRC16/XMODEM lookup tables for eight bytes at a time ("slicing-by-8"). `TABLES[0]` is the
/// classic byte-at-a-time table; `TABLES[k][x]` is the CRC of byte `x` followed by `k` zero
/// bytes, so the eight bytes of a block are looked up independently and XORed, instead of
/// eight lookups each waiting for the one before. Every request on a multi-shard server hashes
/// its key: byte at a time, that was 5% of a shard's time in GET at P=16 with two shards.
const fn crc16_tables() -> [[u16; 256]; 8] {
    let mut t = [[0u16; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut j = 0;
        while j < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            j += 1;
        }
        t[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev << 8) ^ t[0][(prev >> 8) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

static CRC16: [[u16; 256]; 8] = crc16_tables();

/// CRC16/XMODEM (poly 0x1021, init 0, no reflection).
pub fn crc16(data: &[u8]) -> u16 {
    let t = &CRC16;
    let mut crc: u16 = 0;
    let mut blocks = data.chunks_exact(8);
    for b in &mut blocks {
        crc = t[7][((crc >> 8) as u8 ^ b[0]) as usize]
            ^ t[6][(crc as u8 ^ b[1]) as usize]
            ^ t[5][b[2] as usize]
            ^ t[4][b[3] as usize]
            ^ t[3][b[4] as usize]
            ^ t[2][b[5] as usize]
            ^ t[1][b[6] as usize]
            ^ t[0][b[7] as usize];
    }
    for &b in blocks.remainder() {
        crc = (crc << 8) ^ t[0][(((crc >> 8) as u8) ^ b) as usize];
    }
    crc
}

/// The hash slot of a key, honouring the first non-empty `{...}` hash tag.
pub fn key_slot(key: &[u8]) -> u16 {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(close_off) = key[open + 1..].iter().position(|&b| b == b'}') {
            if close_off > 0 {
                return crc16(&key[open + 1..open + 1 + close_off]) & (SLOTS as u16 - 1);
            }
        }
    }
    crc16(key) & (SLOTS as u16 - 1)
}

/// The slot -> shard table. Slots are split into contiguous ranges, one per shard, so a later
/// cluster mode can hand whole ranges to other nodes.
#[derive(Clone)]
pub struct SlotMap {
    owner: Box<[u16]>,
    shards: usize,
}

impl SlotMap {
    pub fn new(shards: usize) -> SlotMap {
        let shards = shards.max(1);
        let owner = (0..SLOTS)
            .map(|s| (s * shards / SLOTS) as u16)
            .collect::<Vec<_>>()
            .into_boxed_slice();
        SlotMap { owner, shards }
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    #[inline]
    pub fn shard_of_slot(&self, slot: u16) -> usize {
        self.owner[slot as usize] as usize
    }

    #[inline]
    pub fn shard_of_key(&self, key: &[u8]) -> usize {
        if self.shards == 1 {
            return 0;
        }
        self.shard_of_slot(key_slot(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_check_value() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    /// The sliced CRC equals the bitwise definition for every length around the block size.
    #[test]
    fn sliced_crc16_matches_the_bitwise_definition() {
        fn bitwise(data: &[u8]) -> u16 {
            let mut crc: u16 = 0;
            for &b in data {
                crc ^= (b as u16) << 8;
                for _ in 0..8 {
                    crc = if crc & 0x8000 != 0 {
                        (crc << 1) ^ 0x1021
                    } else {
                        crc << 1
                    };
                }
            }
            crc
        }
        let mut x: u32 = 0x9e37_79b9;
        let data: Vec<u8> = (0..300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for len in 0..data.len() {
            for start in [0, 1, 3, 7] {
                let d = &data[start..(start + len).min(data.len())];
                assert_eq!(crc16(d), bitwise(d), "len {} at {start}", d.len());
            }
        }
    }

    #[test]
    fn slots_match_redis_cluster() {
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), 3443);
        assert_eq!(key_slot(b"foo{}{bar}"), 8363);
        assert_eq!(key_slot(b"foo{{bar}}zap"), 4015);
        assert_eq!(key_slot(b"foo{bar}{zap}"), 5061);
    }

    #[test]
    fn slot_map_covers_all_shards() {
        let m = SlotMap::new(4);
        let mut seen = [false; 4];
        for s in 0..SLOTS as u16 {
            seen[m.shard_of_slot(s)] = true;
        }
        assert!(seen.iter().all(|&x| x));
    }
}

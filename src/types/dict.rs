//! TEMPORARY stand-in for the keyspace table while the real one is written.
use bytes::Bytes;
use std::collections::HashMap;

pub struct Dict<V> {
    map: HashMap<Bytes, V>,
}
impl<V> Default for Dict<V> {
    fn default() -> Self {
        Self::new()
    }
}
impl<V> Dict<V> {
    pub fn new() -> Self {
        Dict {
            map: HashMap::new(),
        }
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.map.get(key)
    }
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        self.map.get_mut(key)
    }
    pub fn get_key_value(&self, key: &[u8]) -> Option<(&Bytes, &V)> {
        self.map.get_key_value(key)
    }
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.map.contains_key(key)
    }
    pub fn insert(&mut self, key: Bytes, value: V) -> Option<V> {
        self.map.insert(key, value)
    }
    pub fn remove(&mut self, key: &[u8]) -> Option<(Bytes, V)> {
        self.map.remove_entry(key)
    }
    pub fn clear(&mut self) {
        self.map.clear()
    }
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&Bytes, &V)) -> u64 {
        if cursor == 0 {
            for (k, v) in &self.map {
                f(k, v)
            }
        }
        0
    }
    pub fn random_entry(&self, rng: &mut impl rand::Rng) -> Option<(&Bytes, &V)> {
        if self.map.is_empty() {
            return None;
        }
        let i = rng.gen_range(0..self.map.len());
        self.map.iter().nth(i)
    }
    pub fn sample_keys(&self, rng: &mut impl rand::Rng, count: usize, out: &mut Vec<Bytes>) {
        let _ = rng;
        out.extend(self.map.keys().take(count).cloned());
    }
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &V)> {
        self.map.iter()
    }
    pub fn retain(&mut self, mut f: impl FnMut(&Bytes, &mut V) -> bool) {
        self.map.retain(|k, v| f(k, v))
    }
    pub fn rehash_step(&mut self, _n: usize) {}
    pub fn table_overhead_bytes(&self) -> usize {
        self.map.capacity() * 48
    }
}

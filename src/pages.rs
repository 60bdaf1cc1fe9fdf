//! A fixed-capacity vector for large arrays read at random for a long time: the near-duplicate
//! signatures (hundreds of megabytes, read in an order unrelated to memory for every candidate
//! pair) and the slots of the de-duplication, linking and interning tables. Its memory is an
//! anonymous map the kernel is asked to back with 2 MB pages (`MADV_HUGEPAGE`; on by request only
//! on most Linux systems): with 4 KB pages nearly every read is also an address-translation miss,
//! and in a virtual machine each of those walks two sets of page tables.
//!
//! Owns: that memory. Must not: know what it stores.

/// Plain-data values (`bytemuck::Pod`) up to a capacity fixed at creation, in 2 MB-page memory
/// where the system grants it and in an ordinary heap vector where it does not. Room no value
/// fills is never touched, so it is not resident.
pub struct PageVec<T: bytemuck::Pod> {
    store: Store<T>,
    len: usize,
}

enum Store<T> {
    Mapped(memmap2::MmapMut),
    Heap(Vec<T>),
}

impl<T: bytemuck::Pod> PageVec<T> {
    /// Room for `capacity` values.
    pub fn with_capacity(capacity: usize) -> Self {
        let bytes = capacity.max(1) * std::mem::size_of::<T>();
        let store = match memmap2::MmapOptions::new().len(bytes).map_anon() {
            // A map starts on a page boundary, so any value's alignment holds. The advice is a
            // request: refused, the pages stay 4 KB and everything else is the same.
            Ok(map) if std::mem::size_of::<T>() > 0 => {
                let _ = map.advise(memmap2::Advice::HugePage);
                Store::Mapped(map)
            }
            _ => Store::Heap(Vec::with_capacity(capacity)),
        };
        PageVec { store, len: 0 }
    }

    /// `len` copies of `value` (the whole room filled).
    pub fn filled(len: usize, value: T) -> Self {
        let mut v = Self::with_capacity(len);
        match &mut v.store {
            Store::Heap(h) => h.resize(len, value),
            Store::Mapped(_) => v.room()[..len].fill(value),
        }
        v.len = len;
        v
    }

    /// Every value the room holds (filled or not).
    fn room(&mut self) -> &mut [T] {
        match &mut self.store {
            Store::Mapped(map) => bytemuck::cast_slice_mut(&mut map[..]),
            Store::Heap(v) => v.as_mut_slice(),
        }
    }

    /// Append `values`. Past the capacity is a bug of the caller (it sized the room).
    pub fn extend_from_slice(&mut self, values: &[T]) {
        let len = self.len;
        match &mut self.store {
            Store::Heap(v) => v.extend_from_slice(values),
            Store::Mapped(_) => self.room()[len..len + values.len()].copy_from_slice(values),
        }
        self.len += values.len();
    }

    pub fn as_slice(&self) -> &[T] {
        match &self.store {
            Store::Mapped(map) => &bytemuck::cast_slice(&map[..])[..self.len],
            Store::Heap(v) => v.as_slice(),
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        let len = self.len;
        &mut self.room()[..len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values come back as pushed, in place edits stick, and the room is what was asked.
    #[test]
    fn holds_what_is_pushed() {
        let mut v: PageVec<[u8; 64]> = PageVec::with_capacity(1000);
        assert!(v.is_empty());
        for k in 0..10u8 {
            v.extend_from_slice(&[[k; 64], [k + 100; 64]]);
        }
        assert_eq!(v.len(), 20);
        v.as_mut_slice().swap(0, 19);
        assert_eq!(v.as_slice()[0], [109; 64]);
        assert_eq!(v.as_slice()[19], [0; 64]);
        assert_eq!(v.as_slice()[2], [1; 64]);
        let mut empty: PageVec<u64> = PageVec::with_capacity(0);
        assert!(empty.as_slice().is_empty() && empty.as_mut_slice().is_empty());
        let full: PageVec<u64> = PageVec::filled(5000, u64::MAX);
        assert_eq!(full.len(), 5000);
        assert!(full.as_slice().iter().all(|&x| x == u64::MAX));
    }
}

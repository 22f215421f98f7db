//! A tournament tree: the minimum of a changing array in O(1), each update in O(log n).
//!
//! The event loop keeps two: the next event time of every replica, and the load of every replica that can
//! take a request. Scanning all replicas per event cost O(replicas) per request; with this tree a request
//! costs O(log replicas) however large the fleet.

/// Minimum over slots `0..len` of keys `K`; ties go to the lowest slot.
#[derive(Debug, Clone)]
pub struct MinTree<K> {
    /// Leaves start at `cap`; node `i` holds the (key, slot) minimum of its children.
    nodes: Vec<(K, u32)>,
    cap: usize,
    len: usize,
    empty: K,
}

impl<K: Copy + PartialOrd> MinTree<K> {
    /// An empty tree; `empty` is the key of unused slots (it must compare greater than every real key).
    pub fn new(empty: K) -> Self {
        MinTree {
            nodes: vec![(empty, 0); 2],
            cap: 1,
            len: 0,
            empty,
        }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Add a slot at the end with key `k`.
    pub fn push(&mut self, k: K) {
        if self.len == self.cap {
            let old: Vec<K> = (0..self.len).map(|i| self.nodes[self.cap + i].0).collect();
            self.cap *= 2;
            self.nodes = vec![(self.empty, 0); 2 * self.cap];
            for (i, key) in old.into_iter().enumerate() {
                self.nodes[self.cap + i] = (key, i as u32);
            }
            for i in (1..self.cap).rev() {
                self.nodes[i] = Self::better(self.nodes[2 * i], self.nodes[2 * i + 1]);
            }
        }
        self.len += 1;
        self.set(self.len - 1, k);
    }

    /// Remove the last slot.
    pub fn pop(&mut self) {
        assert!(self.len > 0, "pop on an empty MinTree");
        self.set(self.len - 1, self.empty);
        self.len -= 1;
    }

    #[inline]
    fn better(a: (K, u32), b: (K, u32)) -> (K, u32) {
        if b.0 < a.0 { b } else { a }
    }

    /// Set the key of slot `i`.
    #[inline]
    pub fn set(&mut self, i: usize, k: K) {
        let mut p = self.cap + i;
        self.nodes[p] = (k, i as u32);
        while p > 1 {
            p /= 2;
            self.nodes[p] = Self::better(self.nodes[2 * p], self.nodes[2 * p + 1]);
        }
    }

    /// The key of slot `i`.
    pub fn get(&self, i: usize) -> K {
        self.nodes[self.cap + i].0
    }

    /// The smallest key and its slot (the lowest slot on ties); `(empty, _)` when there is none.
    #[inline]
    pub fn min(&self) -> (K, usize) {
        let (k, i) = self.nodes[1];
        (k, i as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_the_minimum_through_updates_growth_and_pops() {
        let mut t = MinTree::new(f64::INFINITY);
        assert_eq!(t.min().0, f64::INFINITY);
        let keys = [5.0, 3.0, 8.0, 3.0, 9.0, 1.0, 7.0];
        for k in keys {
            t.push(k);
        }
        assert_eq!(t.min(), (1.0, 5));
        t.set(5, 10.0);
        assert_eq!(t.min(), (3.0, 1), "ties go to the lowest slot");
        t.set(1, 4.0);
        assert_eq!(t.min(), (3.0, 3));
        t.pop(); // removes slot 6 (7.0)
        t.pop(); // removes slot 5 (10.0)
        assert_eq!(t.len(), 5);
        t.set(3, 100.0);
        assert_eq!(t.min(), (4.0, 1));
        // Compare with a brute-force minimum over many pseudo-random updates.
        let mut x = 12345u64;
        let mut shadow: Vec<f64> = (0..t.len()).map(|i| t.get(i)).collect();
        for _ in 0..10_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = (x >> 33) as usize % shadow.len();
            let k = ((x >> 11) % 1000) as f64;
            t.set(i, k);
            shadow[i] = k;
            let best = shadow.iter().cloned().fold(f64::INFINITY, f64::min);
            let first = shadow.iter().position(|v| *v == best).unwrap();
            assert_eq!(t.min(), (best, first));
            if x.is_multiple_of(7) {
                t.push(500.0);
                shadow.push(500.0);
            }
        }
    }
}

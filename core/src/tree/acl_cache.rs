//! The reference-counted ACL table (`ReferenceCountedACLCache`): each distinct ACL list is stored once and
//! nodes hold a small `i64` reference, so a million nodes with the same ACL cost one list.
//!
//! References are server-local numbers (1, 2, 3, … in order of first use); `-1` is the implicit
//! `world:anyone ALL` list the built-in nodes use without a table entry. The snapshot encoding is Java's
//! (references as `i64`); in memory they are `i32` (smaller nodes), and a loaded table is renumbered
//! densely, which is allowed because references only need to be consistent within one snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::jute::{DecodeError, JuteReader, JuteWriter};
use crate::proto::Acl;

/// `ReferenceCountedACLCache.OPEN_UNSAFE_ACL_ID`.
pub const OPEN_UNSAFE_ACL_REF: AclRef = -1;

/// An ACL reference as nodes hold it.
pub type AclRef = i32;

#[derive(Debug, Clone)]
struct Entry {
    acl: Arc<[Acl]>,
    refs: u64,
}

/// The ACL table.
#[derive(Debug, Clone)]
pub struct AclCache {
    by_ref: BTreeMap<AclRef, Entry>,
    by_list: BTreeMap<Arc<[Acl]>, AclRef>,
    last_ref: AclRef,
    open: Arc<[Acl]>,
}

impl Default for AclCache {
    fn default() -> Self {
        AclCache {
            by_ref: BTreeMap::new(),
            by_list: BTreeMap::new(),
            last_ref: 0,
            open: Acl::open_unsafe().into(),
        }
    }
}

impl AclCache {
    /// `convertAcls`: the reference for `acl` (allocated on first use), with its use count incremented.
    pub fn intern(&mut self, acl: &[Acl]) -> AclRef {
        let r = match self.by_list.get(acl) {
            Some(&r) => r,
            None => {
                self.last_ref = self
                    .last_ref
                    .checked_add(1)
                    .expect("2^31 distinct ACL lists interned without a restart");
                let r = self.last_ref;
                let list: Arc<[Acl]> = acl.into();
                self.by_list.insert(Arc::clone(&list), r);
                self.by_ref.insert(r, Entry { acl: list, refs: 0 });
                r
            }
        };
        self.add_usage(r);
        r
    }

    /// `addUsage`: ignored for -1 and unknown references, as in Java.
    pub fn add_usage(&mut self, r: AclRef) {
        if let Some(e) = self.by_ref.get_mut(&r) {
            e.refs += 1;
        }
    }

    /// `removeUsage`: the entry disappears when its count reaches zero.
    pub fn remove_usage(&mut self, r: AclRef) {
        let Some(e) = self.by_ref.get_mut(&r) else {
            return;
        };
        e.refs = e.refs.saturating_sub(1);
        if e.refs == 0 {
            if let Some(e) = self.by_ref.remove(&r) {
                self.by_list.remove(&e.acl);
            }
        }
    }

    /// `convertLong`: the list for a reference; `None` for an unknown one (a bug or a corrupt snapshot).
    pub fn get(&self, r: AclRef) -> Option<&Arc<[Acl]>> {
        if r == OPEN_UNSAFE_ACL_REF {
            return Some(&self.open);
        }
        self.by_ref.get(&r).map(|e| &e.acl)
    }

    /// Number of table entries (`aclCacheSize`).
    pub fn len(&self) -> usize {
        self.by_ref.len()
    }

    /// True when the table is empty.
    pub fn is_empty(&self) -> bool {
        self.by_ref.is_empty()
    }

    /// Whether `r` can be resolved.
    pub fn contains(&self, r: AclRef) -> bool {
        r == OPEN_UNSAFE_ACL_REF || self.by_ref.contains_key(&r)
    }

    /// Java's `serialize`: `i32 count`, then per entry `i64 ref, vector<ACL>` (in reference order).
    pub fn write(&self, w: &mut JuteWriter) {
        w.write_i32(i32::try_from(self.by_ref.len()).expect("ACL table size fits i32"));
        for (r, e) in &self.by_ref {
            w.write_i64(i64::from(*r));
            w.write_vec(&e.acl);
        }
    }

    /// Java's `deserialize`: entries start with zero uses. The references found (any `i64`) are renumbered
    /// 1, 2, … in their order; the returned map translates the snapshot's node references.
    pub fn read(r: &mut JuteReader<'_>) -> Result<(AclCache, BTreeMap<i64, AclRef>), DecodeError> {
        let n = r.read_i32()?;
        if n < 0 {
            return Err(DecodeError::malformed(format!("negative ACL map size {n}")));
        }
        // A later duplicate key replaces the earlier entry, as Java's map put does.
        let mut found: BTreeMap<i64, Arc<[Acl]>> = BTreeMap::new();
        for _ in 0..n {
            let key = r.read_i64()?;
            let Some(list) = r.read_vec_opt::<Acl>()? else {
                return Err(DecodeError::malformed("null ACL list in ACL map"));
            };
            found.insert(key, list.into());
        }
        let mut cache = AclCache::default();
        let mut remap = BTreeMap::new();
        for (key, list) in found {
            cache.last_ref += 1;
            let r = cache.last_ref;
            remap.insert(key, r);
            cache.by_list.insert(Arc::clone(&list), r);
            cache.by_ref.insert(r, Entry { acl: list, refs: 0 });
        }
        remap.insert(-1, OPEN_UNSAFE_ACL_REF);
        Ok((cache, remap))
    }

    /// `purgeUnused`: drops entries no node uses (after a snapshot load).
    pub fn purge_unused(&mut self) {
        let unused: Vec<AclRef> = self
            .by_ref
            .iter()
            .filter(|(_, e)| e.refs == 0)
            .map(|(r, _)| *r)
            .collect();
        for r in unused {
            if let Some(e) = self.by_ref.remove(&r) {
                self.by_list.remove(&e.acl);
            }
        }
    }

    /// Use count of a reference (tests and `validate`).
    pub fn refs(&self, r: AclRef) -> u64 {
        self.by_ref.get(&r).map_or(0, |e| e.refs)
    }

    /// Every reference with its count (for consistency checks).
    pub fn counts(&self) -> BTreeMap<AclRef, u64> {
        self.by_ref.iter().map(|(r, e)| (*r, e.refs)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Identical lists share a reference; an entry disappears with its last use and references are not
    /// reused.
    #[test]
    fn interning_and_counts() {
        let mut c = AclCache::default();
        let a = c.intern(&Acl::read_unsafe());
        let b = c.intern(&Acl::open_unsafe());
        assert_eq!((a, b), (1, 2));
        assert_eq!(c.intern(&Acl::read_unsafe()), 1);
        assert_eq!(c.refs(1), 2);
        c.remove_usage(2);
        assert!(c.get(2).is_none());
        assert_eq!(c.intern(&Acl::open_unsafe()), 3);
        assert_eq!(c.get(-1).map(|l| l.len()), Some(1));
    }

    /// The table round-trips through Java's encoding and continues numbering after the largest ref.
    #[test]
    fn encoding_round_trip() {
        let mut c = AclCache::default();
        c.intern(&Acl::read_unsafe());
        c.intern(&Acl::open_unsafe());
        let mut w = JuteWriter::new();
        c.write(&mut w);
        let bytes = w.into_inner();
        let (mut d, remap) = AclCache::read(&mut JuteReader::new(&bytes)).expect("decode");
        assert_eq!(remap.get(&2), Some(&2));
        assert_eq!(d.len(), 2);
        assert_eq!(d.intern(&Acl::read_unsafe()), 1);
        assert_eq!(d.intern(&[]), 3);
        d.purge_unused();
        assert_eq!(d.len(), 2);
    }
}

//! The tree's snapshot encoding, byte-compatible with Java's `DataTree.serialize`/`deserialize` (the part of
//! a `snapshot.<zxid>` file, and of a learner SNAP stream, after the session list): the ACL table, then
//! every node in pre-order as `path, DataNode{data, aclRef, StatPersisted}` with the root as `""`, then the
//! terminator `"/"`. Helpers for the session list that precedes it (`SerializeUtils.serializeSnapshot`)
//! are here too; file headers, checksums and the digest record belong to the storage layer.
//!
//! Decoding never panics: missing parents, duplicate paths, unknown ACL references and truncated input are
//! `DecodeError`s.

use crate::ids::SessionId;
use crate::jute::{DecodeError, JuteReader, JuteWriter, Record};
use crate::proto::StatPersisted;

use super::{AclCache, DataTree, Node, OPEN_UNSAFE_ACL_REF};

impl DataTree {
    /// Java's `DataTree.serialize` bytes.
    pub fn serialize(&self) -> Vec<u8> {
        let mut w = JuteWriter::new();
        self.write_to(&mut w);
        w.into_inner()
    }

    /// Appends Java's `DataTree.serialize` bytes to `w`.
    pub fn write_to(&self, w: &mut JuteWriter) {
        self.acls.write(w);
        self.walk(|path, node| {
            w.write_string(path);
            w.write_buffer_opt(node.data.as_deref());
            w.write_i64(i64::from(node.acl));
            node.stat.write(w);
        });
        w.write_string("/");
    }

    /// Decodes bytes written by [`DataTree::serialize`] or by Java; the whole input must be consumed.
    /// `extended_types` is `zookeeper.extendedTypesEnabled`, which decides how owners are classified.
    pub fn deserialize(bytes: &[u8], extended_types: bool) -> Result<DataTree, DecodeError> {
        let mut r = JuteReader::new(bytes);
        let t = DataTree::read_from(&mut r, extended_types)?;
        r.finish()?;
        Ok(t)
    }

    /// Reads a tree from `r`, stopping after the `"/"` terminator.
    pub fn read_from(
        r: &mut JuteReader<'_>,
        extended_types: bool,
    ) -> Result<DataTree, DecodeError> {
        let (acls, remap) = AclCache::read(r)?;
        let mut t = DataTree::empty(extended_types);
        t.acls = acls;
        let mut saw_root = false;
        loop {
            let path = r.read_string()?;
            if path == "/" {
                break;
            }
            let data = r.read_buffer_opt()?;
            let java_acl = r.read_i64()?;
            let stat = StatPersisted::read(r)?;
            let Some(&acl) = remap.get(&java_acl) else {
                return Err(DecodeError::malformed(format!(
                    "node {path:?} refers to unknown ACL {java_acl}"
                )));
            };
            let node = Node::new(data.map(Vec::into_boxed_slice), acl, stat);
            if path.is_empty() {
                if saw_root {
                    return Err(DecodeError::malformed("root node appears twice"));
                }
                saw_root = true;
                t.data_size += node.data_len() as i64;
                t.digest = t.digest.wrapping_add(super::digest::node_digest(
                    "",
                    node.data.as_deref(),
                    &node.stat,
                ));
                t.root = node;
                t.acls.add_usage(acl);
                continue;
            }
            if !saw_root {
                return Err(DecodeError::malformed(format!(
                    "node {path:?} before the root"
                )));
            }
            if !path.starts_with('/') {
                return Err(DecodeError::malformed(format!(
                    "invalid node path {path:?}"
                )));
            }
            match t.insert_raw(&path, node) {
                Ok(()) => t.acls.add_usage(acl),
                Err(e) => {
                    return Err(DecodeError::malformed(format!(
                        "invalid data tree: cannot insert {path:?}: {e}"
                    )))
                }
            }
        }
        if !saw_root {
            return Err(DecodeError::malformed("data tree without a root"));
        }
        t.acls.purge_unused();
        t.setup_quota();
        Ok(t)
    }
}

/// Appends the session list of a snapshot: `i32 count`, then `i64 id, i32 timeout` per session.
pub fn write_sessions(w: &mut JuteWriter, sessions: &[(SessionId, i32)]) {
    w.write_i32(i32::try_from(sessions.len()).expect("session count fits i32"));
    for (id, timeout) in sessions {
        w.write_i64(id.0);
        w.write_i32(*timeout);
    }
}

/// Reads the session list of a snapshot.
pub fn read_sessions(r: &mut JuteReader<'_>) -> Result<Vec<(SessionId, i32)>, DecodeError> {
    let n = r.read_i32()?;
    if n < 0 {
        return Err(DecodeError::malformed(format!(
            "negative session count {n}"
        )));
    }
    let n = n as usize;
    if n.saturating_mul(12) > r.remaining() {
        return Err(DecodeError::Incomplete {
            needed: n * 12 - r.remaining(),
        });
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push((SessionId(r.read_i64()?), r.read_i32()?));
    }
    Ok(out)
}

/// Whether a node uses the implicit open ACL (only the built-in nodes do).
pub fn uses_implicit_open_acl(node: &Node) -> bool {
    node.acl == OPEN_UNSAFE_ACL_REF
}

//! The fuzzy, incremental snapshot writer: serializes the tree a bounded number of nodes at a time while
//! txns keep being applied between the turns, as ZooKeeper's snapshot thread does (§8.5, §8.7).
//!
//! The output is the blob [`crate::server::standalone::snapshot_blob`] makes (session list, ACL table,
//! nodes in pre-order, `"/"`), named by the zxid the tree had applied when the snapshot *started*.
//! Recovery loads it and replays every txn after that zxid; `apply_txn` tolerates the NODEEXISTS and
//! NONODE results that replaying over later state gives (§8.8).
//!
//! The walk is a pre-order DFS whose state between turns is a stack of frames: a written node's path,
//! the last applied zxid when it was written, and the last child visited under it. A turn resumes each
//! frame with a range query strictly after that child, so:
//! - a path is never written twice (the cursor only moves forward in pre-order) and a node is written
//!   only after its parent path (it is found as a child of a frame), so the blob always decodes, for
//!   Java's reader too, even when parents are deleted between turns;
//! - a child whose `czxid` is above the zxid at which its parent was written is skipped with its
//!   subtree, because Java's snapshot copies a node's child set when it serializes the node: the parent's
//!   written cversion/pzxid never predate a child that is in the snapshot, and replaying the child's
//!   create (which comes after the snapshot's zxid) re-creates it and moves the parent's stat.
//!
//! ACL references in the tree can be freed and allocated between turns, so the writer gives each
//! distinct ACL list a snapshot-local reference (1, 2, …, by content) as it meets it, and writes the ACL
//! table in front of the node bytes when the walk ends.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

use crate::ids::SessionId;
use crate::jute::{JuteWriter, Record};
use crate::proto::Acl;

use super::snapshot::write_sessions;
use super::{child_bounds, depth, is_root, AclRef, DataTree, Node, OPEN_UNSAFE_ACL_REF};

#[derive(Debug)]
struct Frame {
    /// The written node whose children are being visited (`""` for the root).
    path: String,
    /// The tree's last applied zxid when the node was written: later-created children are skipped.
    written_at: i64,
    /// The last child visited under it; the next one is strictly after.
    after: Option<String>,
}

/// A snapshot in progress (see the module doc).
#[derive(Debug)]
pub struct SnapshotWriter {
    zxid: i64,
    sessions: Vec<(SessionId, i32)>,
    started: bool,
    stack: Vec<Frame>,
    nodes: JuteWriter,
    written: u64,
    /// Cache: tree reference → (its list, snapshot reference); checked by pointer, since a reference
    /// that was freed is not reused but this must not depend on it.
    by_ref: HashMap<AclRef, (Arc<[Acl]>, i64)>,
    by_list: HashMap<Arc<[Acl]>, i64>,
    table: Vec<(i64, Arc<[Acl]>)>,
}

impl SnapshotWriter {
    /// Starts a snapshot of `tree` at its last applied zxid, with the session list as it is now.
    pub fn new(tree: &DataTree, sessions: Vec<(SessionId, i32)>) -> SnapshotWriter {
        SnapshotWriter {
            zxid: tree.last_processed_zxid(),
            sessions,
            started: false,
            stack: Vec::new(),
            nodes: JuteWriter::new(),
            written: 0,
            by_ref: HashMap::new(),
            by_list: HashMap::new(),
            table: Vec::new(),
        }
    }

    /// The zxid the snapshot is named by: recovery replays every txn after it.
    pub fn zxid(&self) -> i64 {
        self.zxid
    }

    /// Whether every node has been visited ([`SnapshotWriter::finish`] may be called).
    pub fn is_done(&self) -> bool {
        self.started && self.stack.is_empty()
    }

    /// Nodes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Visits at most `max_nodes` nodes (at least 1), continuing where the previous turn stopped, and
    /// returns how many it visited (written or skipped). `tree` must be the tree the writer started on,
    /// with any txns applied since.
    pub fn step(&mut self, tree: &DataTree, max_nodes: usize) -> usize {
        let budget = max_nodes.max(1);
        let mut visited = 0;
        if !self.started {
            self.started = true;
            self.write_node(tree, "", &tree.root);
            self.stack.push(Frame {
                path: String::new(),
                written_at: tree.last_processed_zxid(),
                after: None,
            });
            visited += 1;
        }
        while visited < budget {
            let Some(top) = self.stack.last() else {
                break;
            };
            let written_at = top.written_at;
            match tree.next_child(&top.path, top.after.as_deref()) {
                None => {
                    let done = self.stack.pop().expect("top exists");
                    if let Some(parent) = self.stack.last_mut() {
                        parent.after = Some(done.path);
                    }
                }
                Some((path, node)) => {
                    visited += 1;
                    let path = path.to_owned();
                    if node.stat.czxid > written_at {
                        // Created after its parent was written: not in this snapshot (see module doc).
                        self.stack.last_mut().expect("top exists").after = Some(path);
                        continue;
                    }
                    self.write_node(tree, &path, node);
                    self.stack.push(Frame {
                        path,
                        written_at: tree.last_processed_zxid(),
                        after: None,
                    });
                }
            }
        }
        visited
    }

    /// The blob: session list, ACL table, the nodes, `"/"`. Call once [`SnapshotWriter::is_done`].
    pub fn finish(self) -> Vec<u8> {
        debug_assert!(self.is_done(), "snapshot finished before the walk ended");
        let nodes = self.nodes.into_inner();
        let mut w = JuteWriter::from_vec(Vec::with_capacity(nodes.len() + 1024));
        write_sessions(&mut w, &self.sessions);
        w.write_i32(i32::try_from(self.table.len()).expect("ACL table size fits i32"));
        for (r, list) in &self.table {
            w.write_i64(*r);
            w.write_vec(list);
        }
        w.write_raw(&nodes);
        w.write_string("/");
        w.into_inner()
    }

    fn write_node(&mut self, tree: &DataTree, path: &str, node: &Node) {
        let acl = self.local_acl(tree, node.acl);
        self.nodes.write_string(path);
        self.nodes.write_buffer_opt(node.data.as_deref());
        self.nodes.write_i64(acl);
        node.stat.write(&mut self.nodes);
        self.written += 1;
    }

    fn local_acl(&mut self, tree: &DataTree, r: AclRef) -> i64 {
        if r == OPEN_UNSAFE_ACL_REF {
            return -1;
        }
        let list = tree.acl_by_ref(r);
        if let Some((cached, id)) = self.by_ref.get(&r) {
            if Arc::ptr_eq(cached, &list) {
                return *id;
            }
        }
        let next = self.table.len() as i64 + 1;
        let id = *self.by_list.entry(Arc::clone(&list)).or_insert(next);
        if id == next {
            self.table.push((id, Arc::clone(&list)));
        }
        self.by_ref.insert(r, (list, id));
        id
    }
}

impl DataTree {
    /// The first child of `parent` (in name order) strictly after the path `after`, if any.
    pub(super) fn next_child<'a>(
        &'a self,
        parent: &str,
        after: Option<&str>,
    ) -> Option<(&'a str, &'a Node)> {
        let level = if is_root(parent) {
            1
        } else {
            depth(parent) + 1
        };
        let (lo, hi) = child_bounds(parent);
        let lo = match after {
            Some(a) => Bound::Excluded(a.as_bytes()),
            None => Bound::Included(lo.as_bytes()),
        };
        self.levels
            .get(level)?
            .range::<[u8], _>((lo, Bound::Excluded(hi.as_bytes())))
            .next()
            .map(|(k, v)| (k.as_str(), &**v))
    }
}

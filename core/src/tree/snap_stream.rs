//! The streaming snapshot writer, for disk snapshots and SNAP syncs alike: the body produced in bounded
//! chunks while txns keep being applied between them. A leader (or observer master) sends it after a SNAP
//! packet, as Java's `LearnerHandler` serializes `ZKDatabase.serializeSnapshot` straight onto the
//! learner's socket while the leader keeps committing; a server's periodic snapshot hands each chunk to
//! its snapshot thread, which compresses and writes it as it comes (`storage::SnapshotFile`), as Java's
//! snapshot thread streams the tree to the file. Neither ever holds the whole serialized tree.
//!
//! The bytes are Java's snapshot layout, the same as [`crate::server::standalone::snapshot_blob`]:
//! the session list, the ACL table, the nodes in pre-order, `"/"`. For a tree that does not change
//! while it is streamed, the concatenated chunks equal that blob byte for byte (a test checks it).
//!
//! A stream cannot go back, so the ACL table is written first, as the tree's table at the start
//! (`ReferenceCountedACLCache.serialize` is also the first thing Java writes). Two rules keep the result
//! exact once every txn after the start zxid is replayed over it (a learner gets them on the same stream
//! after the snapshot; recovery reads them from the txn log):
//! - a node created after the start (`czxid` above the start zxid) is skipped with its subtree. Its
//!   create is replayed; the parent's cversion and pzxid only ever move up on replay (`createNode` takes
//!   the larger cversion, `deleteNode` the larger pzxid), so a parent written after that create stays
//!   as it was written;
//! - every written node existed at the start, so its ACL list then was in the table. If its list
//!   changed since to one the table does not hold, a `setACL` after the start zxid did it and its replay
//!   sets it again; the node is written with the implicit open list (`-1`, always resolvable) meanwhile.
//!
//! References are never reused by [`super::acl_cache::AclCache`], so a reference that was in the table
//! at the start still names the same list.

use std::collections::BTreeSet;
use std::ops::Bound;

use crate::ids::SessionId;
use crate::jute::{JuteWriter, Record};

use super::acl_cache::{AclRef, OPEN_UNSAFE_ACL_REF};
use super::snapshot::write_sessions;
use super::{child_bounds, depth, is_root, DataTree, Node};

/// One level of the pre-order walk: a written node and the last child visited under it.
#[derive(Debug)]
struct Frame {
    path: String,
    after: Option<String>,
}

/// A snapshot body being streamed (see the module doc).
#[derive(Debug)]
pub struct SnapStream {
    zxid: i64,
    /// The ACL references in the table written at the start.
    start_refs: BTreeSet<AclRef>,
    /// Sessions and ACL table, handed out with the first chunk.
    header: Option<Vec<u8>>,
    started: bool,
    finished: bool,
    stack: Vec<Frame>,
    nodes: u64,
    bytes: u64,
}

impl SnapStream {
    /// Starts streaming `tree` as of its last applied zxid, with the session list as it is now.
    pub fn new(tree: &DataTree, sessions: &[(SessionId, i32)]) -> SnapStream {
        let mut w = JuteWriter::new();
        write_sessions(&mut w, sessions);
        tree.acls.write(&mut w);
        SnapStream {
            zxid: tree.last_processed_zxid(),
            start_refs: tree.acls.counts().into_keys().collect(),
            header: Some(w.into_inner()),
            started: false,
            finished: false,
            stack: Vec::new(),
            nodes: 0,
            bytes: 0,
        }
    }

    /// The zxid the snapshot stands for (the SNAP packet's): the learner replays every txn after it.
    pub fn zxid(&self) -> i64 {
        self.zxid
    }

    /// Whether the last chunk (ending with `"/"`) has been handed out.
    pub fn is_done(&self) -> bool {
        self.finished
    }

    /// Nodes written so far.
    pub fn nodes(&self) -> u64 {
        self.nodes
    }

    /// Bytes handed out so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The next chunk: at least one node (or the header), then nodes while the chunk is under
    /// `max_bytes`; the last chunk ends with the `"/"` terminator. `tree` must be the tree the stream
    /// started on, with any txns applied since. Empty once [`SnapStream::is_done`].
    pub fn next_chunk(&mut self, tree: &DataTree, max_bytes: usize) -> Vec<u8> {
        if self.finished {
            return Vec::new();
        }
        let mut w = JuteWriter::from_vec(self.header.take().unwrap_or_default());
        if !self.started {
            self.started = true;
            write_node(&mut w, &self.start_refs, "", &tree.root);
            self.nodes += 1;
            self.stack.push(Frame {
                path: String::new(),
                after: None,
            });
        }
        let max_bytes = max_bytes.max(1);
        while w.len() < max_bytes {
            let Some(top) = self.stack.last() else {
                w.write_string("/");
                self.finished = true;
                break;
            };
            // One range scan over the top node's children, writing leaves as it goes: each node costs
            // a step of the scan, not a search of its level (and one of the level below for its own,
            // absent, children). The scan stops to descend into a node with children, at the end of
            // the chunk, or when the children run out.
            // The scan borrows the tree only, so the frame is not copied for it.
            let children = tree.children_after(&top.path, top.after.as_deref());
            let mut progress: Option<&str> = None;
            let mut descend: Option<&str> = None;
            let mut exhausted = true;
            for (path, node) in children {
                if w.len() >= max_bytes {
                    exhausted = false;
                    break;
                }
                progress = Some(path);
                if node.stat.czxid > self.zxid {
                    // Created after the start: replayed, not written (see the module doc).
                    continue;
                }
                write_node(&mut w, &self.start_refs, path, node);
                self.nodes += 1;
                if node.num_children > 0 {
                    descend = Some(path);
                    exhausted = false;
                    break;
                }
            }
            let top = self.stack.last_mut().expect("top exists");
            if let Some(path) = descend {
                // The parent resumes after this child once its subtree is done (set when it pops).
                self.stack.push(Frame {
                    path: path.to_owned(),
                    after: None,
                });
            } else if exhausted {
                let done = self.stack.pop().expect("top exists");
                if let Some(parent) = self.stack.last_mut() {
                    parent.after = Some(done.path);
                }
            } else if let Some(path) = progress {
                top.after = Some(path.to_owned());
            }
        }
        let chunk = w.into_inner();
        self.bytes += chunk.len() as u64;
        chunk
    }
}

/// Writes one node as `DataTree.serializeNode` does, with its ACL reference as the stream's table
/// resolves it (see the module doc).
fn write_node(w: &mut JuteWriter, start_refs: &BTreeSet<AclRef>, path: &str, node: &Node) {
    let acl = if node.acl == OPEN_UNSAFE_ACL_REF || start_refs.contains(&node.acl) {
        node.acl
    } else {
        OPEN_UNSAFE_ACL_REF
    };
    w.write_string(path);
    w.write_buffer_opt(node.data.as_deref());
    w.write_i64(i64::from(acl));
    node.stat.write(w);
}

impl DataTree {
    /// The children of `parent` (in name order) strictly after the path `after`, or all of them.
    pub(super) fn children_after<'a>(
        &'a self,
        parent: &str,
        after: Option<&str>,
    ) -> impl Iterator<Item = (&'a str, &'a Node)> + 'a {
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
        // The range is searched here; the iterator borrows the tree, not the bounds.
        let range = self
            .levels
            .get(level)
            .map(|map| map.range::<[u8], _>((lo, Bound::Excluded(hi.as_bytes()))));
        range.into_iter().flatten().map(|(k, v)| (k.as_str(), &**v))
    }
}

//! Proptest strategies and a tree dump shared by the tree's property tests (pipelined prep, fuzzy
//! snapshots): a small path space so operations collide, ACLs that exercise fix-up and checks, and the
//! write requests the server sends to prep.

use proptest::prelude::*;

use super::prep::WriteRequest;
use super::DataTree;
use crate::proto::{perms, Acl, Id, OpCode, StatPersisted};

/// Paths of one to three components from {a, b, c}, so creates, deletes and sets collide often.
pub(super) fn path_strategy() -> impl Strategy<Value = String> {
    let comp = prop_oneof![Just("a"), Just("b"), Just("c")];
    proptest::collection::vec(comp, 1..4).prop_map(|v| format!("/{}", v.join("/")))
}

/// ACLs: open, read-only, `auth` (fixed up or refused), empty (INVALIDACL) and partial grants.
pub(super) fn acl_strategy() -> impl Strategy<Value = Vec<Acl>> {
    prop_oneof![
        4 => Just(Acl::open_unsafe()),
        1 => Just(Acl::read_unsafe()),
        1 => Just(vec![Acl { perms: perms::ALL, id: Id::new("auth", "") }]),
        1 => Just(vec![]),
        1 => Just(vec![Acl { perms: perms::READ | perms::WRITE, id: Id::anyone() }]),
        1 => Just(vec![Acl { perms: perms::ALL ^ perms::ADMIN, id: Id::anyone() }]),
    ]
}

/// One create (every create opcode and flag 0..4), delete, setData or setACL.
pub(super) fn simple_op() -> impl Strategy<Value = WriteRequest> {
    let version = prop_oneof![3 => Just(-1), 1 => 0..3i32];
    prop_oneof![
        5 => (path_strategy(), 0..5i32, acl_strategy(), any::<bool>()).prop_map(|(path, flags, acl, create2)| {
            let op = if flags == 4 { OpCode::CreateContainer } else if create2 { OpCode::Create2 } else { OpCode::Create };
            WriteRequest::Create { op, path, data: Some(vec![flags as u8]), acl, flags, ttl: -1 }
        }),
        3 => (path_strategy(), version.clone()).prop_map(|(path, version)| WriteRequest::Delete { path, version }),
        3 => (path_strategy(), version.clone(), any::<u8>())
            .prop_map(|(path, version, b)| WriteRequest::SetData { path, data: Some(vec![b]), version }),
        1 => (path_strategy(), acl_strategy(), version.clone())
            .prop_map(|(path, acl, version)| WriteRequest::SetAcl { path, acl, version }),
    ]
}

/// Everything observable about the tree, with ACL lists instead of the server-local ACL references
/// (which legitimately differ after a restart, as in Java).
pub(super) type Dump = Vec<(String, Option<Vec<u8>>, StatPersisted, Vec<Acl>)>;

/// Dumps the tree in walk order.
pub(super) fn dump(tree: &DataTree) -> Dump {
    let mut out = Vec::new();
    tree.walk(|p, n| {
        out.push((
            p.to_string(),
            n.data.as_ref().map(|d| d.to_vec()),
            n.stat,
            tree.acl_of_node(n).to_vec(),
        ));
    });
    out
}

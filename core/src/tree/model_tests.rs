//! Model-based property test of the data tree (sled's fuzz_model shape): random operation sequences are
//! applied to [`DataTree`] and to a naive `BTreeMap` model, with a "restart" step that serializes and
//! decodes the tree; after every step the two must agree on every node, stat, ACL and child list.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::proto::perms;

#[derive(Clone, Debug)]
struct ModelNode {
    data: Option<Vec<u8>>,
    acl: Vec<Acl>,
    stat: StatPersisted,
}

#[derive(Clone, Debug, Default)]
struct Model {
    nodes: BTreeMap<String, ModelNode>,
}

impl Model {
    fn children(&self, path: &str) -> Vec<String> {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        self.nodes
            .keys()
            .filter(|k| {
                k.starts_with(&prefix) && k.len() > prefix.len() && !k[prefix.len()..].contains('/')
            })
            .map(|k| k[prefix.len()..].to_string())
            .collect()
    }
}

#[derive(Clone, Debug)]
enum Op {
    Create {
        parent: usize,
        name: u8,
        data: Option<Vec<u8>>,
        owner: u8,
        acl: u8,
    },
    Delete {
        target: usize,
    },
    SetData {
        target: usize,
        data: Option<Vec<u8>>,
    },
    SetAcl {
        target: usize,
        acl: u8,
    },
    Kill {
        owner: u8,
    },
    Restart,
}

fn acl_choice(c: u8) -> Vec<Acl> {
    match c % 3 {
        0 => Acl::open_unsafe(),
        1 => Acl::read_unsafe(),
        _ => vec![
            Acl {
                perms: perms::ALL,
                id: crate::proto::Id::new("digest", "u:h"),
            },
            Acl {
                perms: perms::READ,
                id: crate::proto::Id::anyone(),
            },
        ],
    }
}

fn owner_choice(c: u8) -> i64 {
    match c % 5 {
        0 | 1 => 0,
        2 => 0x0100_0000_0000_0001,
        3 => 0x0100_0000_0000_0002,
        _ => CONTAINER_OWNER,
    }
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let data = proptest::option::of(proptest::collection::vec(any::<u8>(), 0..4));
    prop_oneof![
        4 => (any::<usize>(), 0u8..6, data.clone(), any::<u8>(), any::<u8>())
            .prop_map(|(parent, name, data, owner, acl)| Op::Create { parent, name, data, owner, acl }),
        2 => any::<usize>().prop_map(|target| Op::Delete { target }),
        2 => (any::<usize>(), data).prop_map(|(target, data)| Op::SetData { target, data }),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(target, acl)| Op::SetAcl { target, acl }),
        1 => any::<u8>().prop_map(|owner| Op::Kill { owner }),
        1 => Just(Op::Restart),
    ]
}

fn fresh_model() -> Model {
    let mut m = Model::default();
    let t = DataTree::new(false);
    t.walk(|p, n| {
        let path = if p.is_empty() {
            "/".to_string()
        } else {
            p.to_string()
        };
        m.nodes.insert(
            path,
            ModelNode {
                data: n.data.as_ref().map(|d| d.to_vec()),
                acl: t.acl_of_node(n).to_vec(),
                stat: n.stat,
            },
        );
    });
    m
}

fn check(t: &DataTree, m: &Model) {
    assert_eq!(t.validate(), Ok(()));
    assert_eq!(t.len(), m.nodes.len());
    for (path, mn) in &m.nodes {
        let n = t.node(path).unwrap_or_else(|| panic!("missing {path}"));
        assert_eq!(n.data.as_deref(), mn.data.as_deref(), "{path} data");
        assert_eq!(n.stat, mn.stat, "{path} stat");
        assert_eq!(&*t.acl_of_node(n), &mn.acl[..], "{path} acl");
        assert_eq!(
            t.get_children(path),
            Some(m.children(path)),
            "{path} children"
        );
        let st = t.stat(path).expect("stat");
        assert_eq!(st.num_children as usize, m.children(path).len());
        assert_eq!(st.cversion, mn.stat.cversion * 2 - st.num_children);
    }
}

fn run(ops: Vec<Op>) {
    let mut t = DataTree::new(false);
    let mut m = fresh_model();
    let mut zxid = 100i64;
    for op in ops {
        zxid += 1;
        let paths: Vec<String> = m.nodes.keys().cloned().collect();
        let pick = |i: usize| paths[i % paths.len()].clone();
        match op {
            Op::Create {
                parent,
                name,
                data,
                owner,
                acl,
            } => {
                let parent = pick(parent);
                let path = crate::path::join(&parent, &format!("n{name}"));
                let acl = acl_choice(acl);
                let owner = owner_choice(owner);
                let r = t.create_node(&path, data.as_deref(), &acl, owner, -1, zxid, zxid * 10);
                if m.nodes.contains_key(&path) {
                    assert_eq!(r.err(), Some(ErrorCode::NodeExists));
                    m.nodes.get_mut(&path).expect("exists").acl = acl;
                } else {
                    assert!(r.is_ok(), "{path}: {r:?}");
                    let pn = m.nodes.get_mut(&parent).expect("parent");
                    pn.stat.cversion += 1;
                    pn.stat.pzxid = zxid;
                    m.nodes.insert(
                        path,
                        ModelNode {
                            data,
                            acl,
                            stat: create_stat(zxid, zxid * 10, owner),
                        },
                    );
                }
            }
            Op::Delete { target } => {
                let path = pick(target);
                let has_children = !m.children(&path).is_empty();
                if path == "/" || has_children {
                    continue; // prep refuses these; the tree is never asked
                }
                t.delete_node(&path, zxid).expect("delete");
                m.nodes.remove(&path);
                let parent = crate::path::parent_display(&path)
                    .expect("parent")
                    .to_string();
                let pn = m.nodes.get_mut(&parent).expect("parent");
                pn.stat.pzxid = pn.stat.pzxid.max(zxid);
            }
            Op::SetData { target, data } => {
                let path = pick(target);
                let mn = m.nodes.get_mut(&path).expect("node");
                let v = mn.stat.version + 1;
                t.set_data(&path, data.as_deref(), v, zxid, zxid * 10)
                    .expect("set");
                mn.data = data;
                mn.stat.version = v;
                mn.stat.mzxid = zxid;
                mn.stat.mtime = zxid * 10;
            }
            Op::SetAcl { target, acl } => {
                let path = pick(target);
                let mn = m.nodes.get_mut(&path).expect("node");
                let acl = acl_choice(acl);
                let v = mn.stat.aversion + 1;
                t.set_acl(&path, &acl, v).expect("setacl");
                mn.acl = acl;
                mn.stat.aversion = v;
            }
            Op::Kill { owner } => {
                let owner = owner_choice(owner);
                if owner == 0 || owner == CONTAINER_OWNER {
                    continue;
                }
                let doomed: Vec<String> = m
                    .nodes
                    .iter()
                    .filter(|(_, n)| n.stat.ephemeral_owner == owner)
                    .map(|(p, _)| p.clone())
                    .collect();
                assert_eq!(t.ephemerals(SessionId(owner)), doomed);
                // Ephemerals cannot have children in real use; here they might, so only kill leaves.
                if doomed.iter().any(|p| !m.children(p).is_empty()) {
                    continue;
                }
                t.kill_session(SessionId(owner), zxid, None);
                for p in doomed {
                    m.nodes.remove(&p);
                    let parent = crate::path::parent_display(&p).expect("parent").to_string();
                    let pn = m.nodes.get_mut(&parent).expect("parent");
                    pn.stat.pzxid = pn.stat.pzxid.max(zxid);
                }
            }
            Op::Restart => {
                // References are renumbered densely on load, so the bytes are a fixpoint from the
                // second round on; the content is compared by `check` below.
                t = DataTree::deserialize(&t.serialize(), false).expect("decode");
                let bytes = t.serialize();
                let again = DataTree::deserialize(&bytes, false).expect("decode");
                assert_eq!(again.serialize(), bytes);
            }
        }
        check(&t, &m);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Random create/delete/setData/setACL/killSession/restart sequences leave the tree equal to the model.
    #[test]
    fn tree_matches_model(ops in proptest::collection::vec(op_strategy(), 1..60)) {
        run(ops);
    }
}

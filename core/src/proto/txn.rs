//! Transaction records (`org.apache.zookeeper.txn`): the header, every txn body, the optional digest,
//! and [`TxnEntry`], the unit that PROPOSAL/INFORM packets carry and txn logs store.
//!
//! A txn body has no type tag of its own: its layout is chosen by `TxnHeader.type` (guide §8.4), so
//! [`Txn::decode`] takes the type and [`Txn::encode`] writes only the body. Decoding follows
//! `SerializeUtils.deserializeTxn`: a `create` body one int short is a pre-3.3 `CreateTxnV0`
//! (parentCVersion -1), and a `closeSession` body that is absent (old logs, or a writer with
//! `closeSessionTxn.enabled=false`) decodes as `CloseSession { paths2delete: None }`.
//!
//! ZooKeeper 3.8 has no opcode for the legacy `SetMaxChildrenTxn`, so it is a record here but not a
//! [`Txn`] variant: no log or proposal can carry it.

use crate::jute::{DecodeError, JuteReader, JuteWriter, Record};
use crate::proto::codes::{ErrorCode, OpCode};
use crate::proto::data::Acl;

/// `TxnHeader { i64 clientId; i32 cxid; i64 zxid; i64 time; i32 type }`: 28 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TxnHeader {
    /// The session that issued the request (0 for some server-internal txns).
    pub client_id: i64,
    /// The client's xid (0 for createSession, server-generated closeSession and deleteContainer).
    pub cxid: i32,
    /// The txn's zxid.
    pub zxid: i64,
    /// The leader's wall clock in ms; every server uses it for ctime/mtime.
    pub time: i64,
    /// The txn type, an [`OpCode`] number.
    pub ty: i32,
}

impl Record for TxnHeader {
    const MIN_ENCODED_LEN: usize = 28;

    fn write(&self, w: &mut JuteWriter) {
        w.write_i64(self.client_id);
        w.write_i32(self.cxid);
        w.write_i64(self.zxid);
        w.write_i64(self.time);
        w.write_i32(self.ty);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(TxnHeader {
            client_id: r.read_i64()?,
            cxid: r.read_i32()?,
            zxid: r.read_i64()?,
            time: r.read_i64()?,
            ty: r.read_i32()?,
        })
    }
}

/// `TxnDigest { i32 version; i64 treeDigest }`: 12 bytes, optionally trailing a txn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TxnDigest {
    /// Digest algorithm version (2 in ZooKeeper 3.8).
    pub version: i32,
    /// The tree digest after applying the txn.
    pub tree_digest: i64,
}

impl TxnDigest {
    /// The digest version ZooKeeper 3.8 writes.
    pub const VERSION: i32 = 2;
}

impl Record for TxnDigest {
    const MIN_ENCODED_LEN: usize = 12;

    fn write(&self, w: &mut JuteWriter) {
        w.write_i32(self.version);
        w.write_i64(self.tree_digest);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(TxnDigest {
            version: r.read_i32()?,
            tree_digest: r.read_i64()?,
        })
    }
}

/// `CreateTxn { str path; buf data; vec<ACL> acl; bool ephemeral; i32 parentCVersion }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CreateTxn {
    /// Full path of the new node (sequence suffix already applied).
    pub path: String,
    /// Initial data; `None` is the null buffer (a Java client's `create` with null data), kept so the
    /// node reads back as null and the record re-encodes byte for byte.
    pub data: Option<Vec<u8>>,
    /// The node's ACL.
    pub acl: Vec<Acl>,
    /// True for an ephemeral node (owner = the header's client id).
    pub ephemeral: bool,
    /// The parent's new persisted cversion; -1 asks the applier to use parent.cversion + 1.
    pub parent_cversion: i32,
}

impl Record for CreateTxn {
    const MIN_ENCODED_LEN: usize = 17;

    fn write(&self, w: &mut JuteWriter) {
        w.write_string(&self.path);
        w.write_buffer_opt(self.data.as_deref());
        w.write_vec(&self.acl);
        w.write_bool(self.ephemeral);
        w.write_i32(self.parent_cversion);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(CreateTxn {
            path: r.read_string()?,
            data: r.read_buffer_opt()?,
            acl: r.read_vec()?,
            ephemeral: r.read_bool()?,
            parent_cversion: r.read_i32()?,
        })
    }
}

impl CreateTxn {
    /// Reads the pre-3.3 `CreateTxnV0 { str path; buf data; vec<ACL> acl; bool ephemeral }`, as a
    /// `CreateTxn` with parentCVersion -1 (what ZooKeeper does).
    pub fn read_v0(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(CreateTxn {
            path: r.read_string()?,
            data: r.read_buffer_opt()?,
            acl: r.read_vec()?,
            ephemeral: r.read_bool()?,
            parent_cversion: -1,
        })
    }
}

/// `CreateTTLTxn { str path; buf data; vec<ACL> acl; i32 parentCVersion; i64 ttl }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CreateTtlTxn {
    /// Full path of the new node.
    pub path: String,
    /// Initial data; `None` is the null buffer (a Java client's `create` with null data), kept so the
    /// node reads back as null and the record re-encodes byte for byte.
    pub data: Option<Vec<u8>>,
    /// The node's ACL.
    pub acl: Vec<Acl>,
    /// The parent's new persisted cversion.
    pub parent_cversion: i32,
    /// Time to live in ms.
    pub ttl: i64,
}

impl Record for CreateTtlTxn {
    const MIN_ENCODED_LEN: usize = 24;

    fn write(&self, w: &mut JuteWriter) {
        w.write_string(&self.path);
        w.write_buffer_opt(self.data.as_deref());
        w.write_vec(&self.acl);
        w.write_i32(self.parent_cversion);
        w.write_i64(self.ttl);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(CreateTtlTxn {
            path: r.read_string()?,
            data: r.read_buffer_opt()?,
            acl: r.read_vec()?,
            parent_cversion: r.read_i32()?,
            ttl: r.read_i64()?,
        })
    }
}

/// `CreateContainerTxn { str path; buf data; vec<ACL> acl; i32 parentCVersion }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CreateContainerTxn {
    /// Full path of the new node.
    pub path: String,
    /// Initial data; `None` is the null buffer (a Java client's `create` with null data), kept so the
    /// node reads back as null and the record re-encodes byte for byte.
    pub data: Option<Vec<u8>>,
    /// The node's ACL.
    pub acl: Vec<Acl>,
    /// The parent's new persisted cversion.
    pub parent_cversion: i32,
}

impl Record for CreateContainerTxn {
    const MIN_ENCODED_LEN: usize = 16;

    fn write(&self, w: &mut JuteWriter) {
        w.write_string(&self.path);
        w.write_buffer_opt(self.data.as_deref());
        w.write_vec(&self.acl);
        w.write_i32(self.parent_cversion);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(CreateContainerTxn {
            path: r.read_string()?,
            data: r.read_buffer_opt()?,
            acl: r.read_vec()?,
            parent_cversion: r.read_i32()?,
        })
    }
}

/// `DeleteTxn { str path }` (also the body of deleteContainer).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DeleteTxn {
    /// Path of the node to delete.
    pub path: String,
}

impl Record for DeleteTxn {
    const MIN_ENCODED_LEN: usize = 4;

    fn write(&self, w: &mut JuteWriter) {
        w.write_string(&self.path);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(DeleteTxn {
            path: r.read_string()?,
        })
    }
}

/// `SetDataTxn { str path; buf data; i32 version }` (also the body of reconfig).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SetDataTxn {
    /// Path of the node.
    pub path: String,
    /// New data; `None` is the null buffer.
    pub data: Option<Vec<u8>>,
    /// The node's new data version.
    pub version: i32,
}

impl Record for SetDataTxn {
    const MIN_ENCODED_LEN: usize = 12;

    fn write(&self, w: &mut JuteWriter) {
        w.write_string(&self.path);
        w.write_buffer_opt(self.data.as_deref());
        w.write_i32(self.version);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(SetDataTxn {
            path: r.read_string()?,
            data: r.read_buffer_opt()?,
            version: r.read_i32()?,
        })
    }
}

/// `CheckVersionTxn { str path; i32 version }` (only inside a multi).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CheckVersionTxn {
    /// Path of the node.
    pub path: String,
    /// The version that was checked.
    pub version: i32,
}

impl Record for CheckVersionTxn {
    const MIN_ENCODED_LEN: usize = 8;

    fn write(&self, w: &mut JuteWriter) {
        w.write_string(&self.path);
        w.write_i32(self.version);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(CheckVersionTxn {
            path: r.read_string()?,
            version: r.read_i32()?,
        })
    }
}

/// `SetACLTxn { str path; vec<ACL> acl; i32 version }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SetAclTxn {
    /// Path of the node.
    pub path: String,
    /// The new ACL.
    pub acl: Vec<Acl>,
    /// The node's new ACL version.
    pub version: i32,
}

impl Record for SetAclTxn {
    const MIN_ENCODED_LEN: usize = 12;

    fn write(&self, w: &mut JuteWriter) {
        w.write_string(&self.path);
        w.write_vec(&self.acl);
        w.write_i32(self.version);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(SetAclTxn {
            path: r.read_string()?,
            acl: r.read_vec()?,
            version: r.read_i32()?,
        })
    }
}

/// `SetMaxChildrenTxn { str path; i32 max }`: legacy, no opcode produces it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SetMaxChildrenTxn {
    /// Path of the node.
    pub path: String,
    /// The child limit.
    pub max: i32,
}

impl Record for SetMaxChildrenTxn {
    const MIN_ENCODED_LEN: usize = 8;

    fn write(&self, w: &mut JuteWriter) {
        w.write_string(&self.path);
        w.write_i32(self.max);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(SetMaxChildrenTxn {
            path: r.read_string()?,
            max: r.read_i32()?,
        })
    }
}

/// One element of `MultiTxn`: `Txn { i32 type; buf data }`, `data` being the serialized sub-record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawTxn {
    /// The sub-txn type.
    pub ty: i32,
    /// The sub-txn body.
    pub data: Vec<u8>,
}

impl Record for RawTxn {
    const MIN_ENCODED_LEN: usize = 8;

    fn write(&self, w: &mut JuteWriter) {
        w.write_i32(self.ty);
        w.write_buffer(&self.data);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(RawTxn {
            ty: r.read_i32()?,
            data: r.read_buffer()?,
        })
    }
}

/// A txn body, typed by `TxnHeader.type`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Txn {
    /// Type 1, `CreateTxn`.
    Create(CreateTxn),
    /// Type 15 (create2 requests log their own type), `CreateTxn`.
    Create2(CreateTxn),
    /// Type 19, `CreateContainerTxn`.
    CreateContainer(CreateContainerTxn),
    /// Type 21, `CreateTTLTxn`.
    CreateTtl(CreateTtlTxn),
    /// Type 2, `DeleteTxn`.
    Delete(DeleteTxn),
    /// Type 20, `DeleteTxn` (issued by the container reaper).
    DeleteContainer(DeleteTxn),
    /// Type 5, `SetDataTxn`.
    SetData(SetDataTxn),
    /// Type 16, `SetDataTxn` on `/zookeeper/config` (data = the new config text, version -1).
    Reconfig(SetDataTxn),
    /// Type 7, `SetACLTxn`.
    SetAcl(SetAclTxn),
    /// Type 13, `CheckVersionTxn`; only inside a multi.
    CheckVersion(CheckVersionTxn),
    /// Type -10, `CreateSessionTxn { i32 timeOut }`.
    CreateSession {
        /// Negotiated session timeout in ms.
        timeout: i32,
    },
    /// Type -11, `CloseSessionTxn { vec<str> paths2Delete }`; `None` when the body is absent.
    CloseSession {
        /// Ephemerals to delete; `None` encodes no body at all (closeSessionTxn.enabled=false).
        paths2delete: Option<Vec<String>>,
    },
    /// Type -1, `ErrorTxn { i32 err }`: a failed write (or a failed multi's sub-results).
    Error {
        /// The error the write failed with.
        err: ErrorCode,
    },
    /// Type 14, `MultiTxn { vec<Txn{i32 type; buf data}> }`.
    Multi(Vec<Txn>),
}

impl Txn {
    /// The `TxnHeader.type` (or multi sub-txn type) of this body.
    pub fn type_code(&self) -> i32 {
        self.op_code().code()
    }

    /// The opcode of this body's type.
    pub fn op_code(&self) -> OpCode {
        match self {
            Txn::Create(_) => OpCode::Create,
            Txn::Create2(_) => OpCode::Create2,
            Txn::CreateContainer(_) => OpCode::CreateContainer,
            Txn::CreateTtl(_) => OpCode::CreateTtl,
            Txn::Delete(_) => OpCode::Delete,
            Txn::DeleteContainer(_) => OpCode::DeleteContainer,
            Txn::SetData(_) => OpCode::SetData,
            Txn::Reconfig(_) => OpCode::Reconfig,
            Txn::SetAcl(_) => OpCode::SetAcl,
            Txn::CheckVersion(_) => OpCode::Check,
            Txn::CreateSession { .. } => OpCode::CreateSession,
            Txn::CloseSession { .. } => OpCode::CloseSession,
            Txn::Error { .. } => OpCode::Error,
            Txn::Multi(_) => OpCode::Multi,
        }
    }

    /// Appends the body (no type tag).
    pub fn encode(&self, w: &mut JuteWriter) {
        match self {
            Txn::Create(t) | Txn::Create2(t) => t.write(w),
            Txn::CreateContainer(t) => t.write(w),
            Txn::CreateTtl(t) => t.write(w),
            Txn::Delete(t) | Txn::DeleteContainer(t) => t.write(w),
            Txn::SetData(t) | Txn::Reconfig(t) => t.write(w),
            Txn::SetAcl(t) => t.write(w),
            Txn::CheckVersion(t) => t.write(w),
            Txn::CreateSession { timeout } => w.write_i32(*timeout),
            Txn::CloseSession { paths2delete } => {
                if let Some(paths) = paths2delete {
                    w.write_string_vec(paths);
                }
            }
            Txn::Error { err } => w.write_i32(err.code()),
            Txn::Multi(txns) => {
                let raws: Vec<RawTxn> = txns
                    .iter()
                    .map(|t| RawTxn {
                        ty: t.type_code(),
                        data: t.to_body_bytes(),
                    })
                    .collect();
                w.write_vec(&raws);
            }
        }
    }

    /// The body as a fresh vector.
    pub fn to_body_bytes(&self) -> Vec<u8> {
        let mut w = JuteWriter::new();
        self.encode(&mut w);
        w.into_inner()
    }

    /// Reads the body of a txn of type `ty`, consuming only that body (a digest may follow).
    pub fn decode(ty: i32, r: &mut JuteReader<'_>) -> Result<Txn, DecodeError> {
        let op = OpCode::from_code(ty)
            .ok_or_else(|| DecodeError::malformed(format!("unsupported txn type {ty}")))?;
        Ok(match op {
            OpCode::Create => {
                let saved = r.clone();
                match CreateTxn::read(r) {
                    Ok(t) => Txn::Create(t),
                    Err(DecodeError::Incomplete { .. }) => {
                        // A pre-3.3 CreateTxnV0: same fields without parentCVersion.
                        *r = saved;
                        Txn::Create(CreateTxn::read_v0(r)?)
                    }
                    Err(e) => return Err(e),
                }
            }
            OpCode::Create2 => Txn::Create2(CreateTxn::read(r)?),
            OpCode::CreateContainer => Txn::CreateContainer(CreateContainerTxn::read(r)?),
            OpCode::CreateTtl => Txn::CreateTtl(CreateTtlTxn::read(r)?),
            OpCode::Delete => Txn::Delete(DeleteTxn::read(r)?),
            OpCode::DeleteContainer => Txn::DeleteContainer(DeleteTxn::read(r)?),
            OpCode::SetData => Txn::SetData(SetDataTxn::read(r)?),
            OpCode::Reconfig => Txn::Reconfig(SetDataTxn::read(r)?),
            OpCode::SetAcl => Txn::SetAcl(SetAclTxn::read(r)?),
            OpCode::Check => Txn::CheckVersion(CheckVersionTxn::read(r)?),
            OpCode::CreateSession => Txn::CreateSession {
                timeout: r.read_i32()?,
            },
            OpCode::CloseSession => {
                let saved = r.clone();
                match r.read_string_vec() {
                    Ok(paths) => Txn::CloseSession {
                        paths2delete: Some(paths),
                    },
                    Err(_) => {
                        // No CloseSessionTxn body (pre-3.6 writer or closeSessionTxn.enabled=false):
                        // ZooKeeper treats the EOF as "no body"; whatever follows is the digest.
                        *r = saved;
                        Txn::CloseSession { paths2delete: None }
                    }
                }
            }
            OpCode::Error => Txn::Error {
                err: ErrorCode::from_code(r.read_i32()?),
            },
            OpCode::Multi => {
                let raws: Vec<RawTxn> = r.read_vec()?;
                let mut txns = Vec::with_capacity(raws.len());
                for raw in raws {
                    txns.push(Txn::decode_sub(&raw)?);
                }
                Txn::Multi(txns)
            }
            other => {
                return Err(DecodeError::malformed(format!(
                    "unsupported txn type {}",
                    other.code()
                )))
            }
        })
    }

    /// Decodes one multi sub-txn; its buffer must be consumed exactly, and it may not be a multi or a
    /// session txn.
    pub fn decode_sub(raw: &RawTxn) -> Result<Txn, DecodeError> {
        if matches!(
            OpCode::from_code(raw.ty),
            Some(OpCode::Multi | OpCode::CreateSession | OpCode::CloseSession)
        ) {
            return Err(DecodeError::malformed(format!(
                "txn type {} inside a multi",
                raw.ty
            )));
        }
        let mut r = JuteReader::new(&raw.data);
        let txn = Txn::decode(raw.ty, &mut r)?;
        // A failed multi's sub-txns are ErrorTxns, but Java rewrites only the type in place
        // (DataTree.processTxn) and serializes afterwards, so a leader's committed log (and so its
        // DIFF) carries the original body behind the error code. Java's reader ignores the rest;
        // so does this one, for error sub-txns only.
        if raw.ty != OpCode::Error.code() {
            r.finish()?;
        }
        Ok(txn)
    }
}

/// A full txn as PROPOSAL/INFORM packets carry it and the log stores it: header, body, optional digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TxnEntry {
    /// The header; `header.ty` must equal `txn.type_code()`.
    pub header: TxnHeader,
    /// The body.
    pub txn: Txn,
    /// The tree digest after applying, when the writer computed one.
    pub digest: Option<TxnDigest>,
}

impl TxnEntry {
    /// Builds an entry, setting `header.ty` from the body.
    pub fn new(mut header: TxnHeader, txn: Txn, digest: Option<TxnDigest>) -> TxnEntry {
        header.ty = txn.type_code();
        TxnEntry {
            header,
            txn,
            digest,
        }
    }

    /// Appends header, body and digest. The header's type is written as stored.
    pub fn encode(&self, w: &mut JuteWriter) {
        TxnEntry::encode_parts(&self.header, &self.txn, self.digest.as_ref(), w);
    }

    /// Encodes an entry from borrowed parts, so a caller that keeps the txn need not clone it to log it.
    /// `header.ty` must already be the txn's type.
    pub fn encode_parts(
        header: &TxnHeader,
        txn: &Txn,
        digest: Option<&TxnDigest>,
        w: &mut JuteWriter,
    ) {
        debug_assert_eq!(
            header.ty,
            txn.type_code(),
            "header type must match the body"
        );
        header.write(w);
        txn.encode(w);
        if let Some(d) = digest {
            d.write(w);
        }
    }

    /// The entry as a fresh vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = JuteWriter::new();
        self.encode(&mut w);
        w.into_inner()
    }

    /// Decodes an entry that fills `bytes` exactly: header, the body its type selects, then nothing
    /// or a 12-byte digest. A closeSession body is expected (ZooKeeper's default
    /// `closeSessionTxn.enabled=true`); if the entry does not parse that way it is read as having none.
    pub fn decode(bytes: &[u8]) -> Result<TxnEntry, DecodeError> {
        TxnEntry::decode_with(bytes, true)
    }

    /// Like [`TxnEntry::decode`], with the reader's `closeSessionTxn.enabled` setting: when false, a
    /// closeSession txn never has a body (ZooKeeper decides by configuration, not by content).
    pub fn decode_with(bytes: &[u8], close_session_txn: bool) -> Result<TxnEntry, DecodeError> {
        let mut r = JuteReader::new(bytes);
        let header = TxnHeader::read(&mut r)?;
        let body_start = r.clone();
        let closing = header.ty == OpCode::CloseSession.code();
        if closing && !close_session_txn {
            return TxnEntry::finish_entry(header, Txn::CloseSession { paths2delete: None }, r);
        }
        let txn = Txn::decode(header.ty, &mut r)?;
        match TxnEntry::finish_entry(header, txn, r) {
            Err(_) if closing => {
                TxnEntry::finish_entry(header, Txn::CloseSession { paths2delete: None }, body_start)
            }
            other => other,
        }
    }

    fn finish_entry(
        header: TxnHeader,
        txn: Txn,
        mut r: JuteReader<'_>,
    ) -> Result<TxnEntry, DecodeError> {
        let digest = if r.remaining() == 0 {
            None
        } else {
            Some(TxnDigest::read(&mut r)?)
        };
        r.finish()?;
        Ok(TxnEntry {
            header,
            txn,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::test_hex::hex;

    const A3: &str = "0100000000000000 00000001 0000000100000001 0000018bcfe56800 00000001
        00000002 2f61  00000001 78  00000001 0000001f 00000005 776f726c64
        00000006 616e796f6e65  00  00000001
        00000002 00000001c16a8c28";

    /// A failed multi's sub-txn as a Java leader's committed log holds it (type -1, the error code, then
    /// the original CreateTxn body Java never cleared) decodes to the error; any other sub-txn with
    /// trailing bytes is still malformed.
    #[test]
    fn error_sub_txn_with_java_leftover_body() {
        let mut data = (-101i32).to_be_bytes().to_vec();
        data.extend_from_slice(&[0, 0, 0, 2, b'/', b'a', 0, 0, 0, 0]);
        let raw = RawTxn { ty: -1, data };
        assert!(matches!(Txn::decode_sub(&raw), Ok(Txn::Error { .. })));
        let mut set = SetDataTxn {
            path: "/a".into(),
            data: Some(vec![1]),
            version: 1,
        }
        .to_bytes();
        set.push(0);
        let raw = RawTxn { ty: 5, data: set };
        assert!(Txn::decode_sub(&raw).is_err());
    }

    /// Appendix A.3's 87 bytes decode to the documented create and re-encode byte for byte.
    #[test]
    fn golden_a3_create_with_digest() {
        let bytes = hex(A3);
        assert_eq!(bytes.len(), 87);
        let entry = TxnEntry::decode(&bytes).unwrap();
        let expected = TxnEntry {
            header: TxnHeader {
                client_id: 0x0100000000000000,
                cxid: 1,
                zxid: 0x100000001,
                time: 1700000000000,
                ty: 1,
            },
            txn: Txn::Create(CreateTxn {
                path: "/a".into(),
                data: Some(b"x".to_vec()),
                acl: Acl::open_unsafe(),
                ephemeral: false,
                parent_cversion: 1,
            }),
            digest: Some(TxnDigest {
                version: 2,
                tree_digest: 0x1c16a8c28,
            }),
        };
        assert_eq!(entry, expected);
        assert_eq!(entry.to_bytes(), bytes);
    }

    /// A create body one int short is read as CreateTxnV0 with parentCVersion -1.
    #[test]
    fn create_v0_is_accepted() {
        let mut bytes = hex(A3);
        bytes.truncate(87 - 12 - 4);
        let entry = TxnEntry::decode(&bytes).unwrap();
        match entry.txn {
            Txn::Create(c) => assert_eq!(c.parent_cversion, -1),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(entry.digest, None);
    }

    /// closeSession with no body (with or without a digest) decodes as `paths2delete: None` and
    /// re-encodes identically; with a body it keeps the paths.
    #[test]
    fn close_session_bodies() {
        let header = TxnHeader {
            client_id: 7,
            cxid: 0,
            zxid: 0x200000003,
            time: 5,
            ty: -11,
        };
        for txn in [
            Txn::CloseSession { paths2delete: None },
            Txn::CloseSession {
                paths2delete: Some(vec!["/e1".into(), "/e2".into()]),
            },
            Txn::CloseSession {
                paths2delete: Some(vec![]),
            },
        ] {
            for digest in [
                None,
                Some(TxnDigest {
                    version: 2,
                    tree_digest: 0x1234_5678_9abc,
                }),
            ] {
                let e = TxnEntry::new(header, txn.clone(), digest);
                let bytes = e.to_bytes();
                assert_eq!(TxnEntry::decode(&bytes).unwrap(), e);
            }
        }
    }

    /// A multi's sub-txns are `{type, buf}` pairs and round-trip, including a failed multi's error
    /// sub-results.
    #[test]
    fn multi_round_trips() {
        let txn = Txn::Multi(vec![
            Txn::Create2(CreateTxn {
                path: "/t1".into(),
                data: Some(b"a".to_vec()),
                acl: Acl::open_unsafe(),
                ephemeral: true,
                parent_cversion: 3,
            }),
            Txn::CheckVersion(CheckVersionTxn {
                path: "/t1".into(),
                version: 0,
            }),
            Txn::Error {
                err: ErrorCode::BadVersion,
            },
            Txn::Delete(DeleteTxn { path: "/x".into() }),
        ]);
        let e = TxnEntry::new(TxnHeader::default(), txn, None);
        assert_eq!(e.header.ty, 14);
        assert_eq!(TxnEntry::decode(&e.to_bytes()).unwrap(), e);
    }

    /// Unknown txn types and trailing garbage are refused, not panicked on.
    #[test]
    fn bad_entries_are_refused() {
        let mut bytes = TxnHeader {
            ty: 99,
            ..TxnHeader::default()
        }
        .to_bytes();
        assert!(TxnEntry::decode(&bytes).is_err());
        bytes = hex(A3);
        bytes.push(0);
        assert!(TxnEntry::decode(&bytes).is_err());
        assert!(TxnEntry::decode(&[]).is_err());
    }
}

//! The data records of `org.apache.zookeeper.data`: `Id`, `ACL`, `Stat`, `StatPersisted`, and the
//! permission bits.

use crate::jute::{DecodeError, JuteReader, JuteWriter, Record};

/// Permission bits (`ZooDefs.Perms`).
pub mod perms {
    /// READ = 1
    pub const READ: i32 = 1;
    /// WRITE = 2
    pub const WRITE: i32 = 2;
    /// CREATE = 4
    pub const CREATE: i32 = 4;
    /// DELETE = 8
    pub const DELETE: i32 = 8;
    /// ADMIN = 16
    pub const ADMIN: i32 = 16;
    /// ALL = 31
    pub const ALL: i32 = 31;
}

/// An identity: `scheme:id` (`world:anyone`, `digest:user:hash`, `ip:10.0.0.0/8`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    /// The auth scheme.
    pub scheme: String,
    /// The scheme-specific id.
    pub id: String,
}

impl Id {
    /// Builds an id.
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Id {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    /// `world:anyone`.
    pub fn anyone() -> Id {
        Id::new("world", "anyone")
    }
}

impl Record for Id {
    const MIN_ENCODED_LEN: usize = 8;

    fn write(&self, w: &mut JuteWriter) {
        w.write_string(&self.scheme);
        w.write_string(&self.id);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(Id {
            scheme: r.read_string()?,
            id: r.read_string()?,
        })
    }
}

/// One ACL entry: permission bits granted to an identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Acl {
    /// Bit set of [`perms`].
    pub perms: i32,
    /// Who the bits are granted to.
    pub id: Id,
}

impl Acl {
    /// `world:anyone` with all permissions (`ZooDefs.Ids.OPEN_ACL_UNSAFE`).
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: perms::ALL,
            id: Id::anyone(),
        }]
    }

    /// `world:anyone` with READ only (`ZooDefs.Ids.READ_ACL_UNSAFE`).
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: perms::READ,
            id: Id::anyone(),
        }]
    }
}

impl Record for Acl {
    const MIN_ENCODED_LEN: usize = 12;

    fn write(&self, w: &mut JuteWriter) {
        w.write_i32(self.perms);
        self.id.write(w);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(Acl {
            perms: r.read_i32()?,
            id: Id::read(r)?,
        })
    }
}

/// The client-visible node metadata (68 bytes on the wire).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stat {
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last setData.
    pub mzxid: i64,
    /// Create time, ms since the epoch (leader's clock, from the txn header).
    pub ctime: i64,
    /// Last setData time.
    pub mtime: i64,
    /// Data version.
    pub version: i32,
    /// Child version as clients see it (`2 * persisted - numChildren`).
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// Owning session of an ephemeral, else 0.
    pub ephemeral_owner: i64,
    /// Length of the data.
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
    /// zxid of the last child create/delete.
    pub pzxid: i64,
}

impl Record for Stat {
    const MIN_ENCODED_LEN: usize = 68;

    fn write(&self, w: &mut JuteWriter) {
        w.write_i64(self.czxid);
        w.write_i64(self.mzxid);
        w.write_i64(self.ctime);
        w.write_i64(self.mtime);
        w.write_i32(self.version);
        w.write_i32(self.cversion);
        w.write_i32(self.aversion);
        w.write_i64(self.ephemeral_owner);
        w.write_i32(self.data_length);
        w.write_i32(self.num_children);
        w.write_i64(self.pzxid);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(Stat {
            czxid: r.read_i64()?,
            mzxid: r.read_i64()?,
            ctime: r.read_i64()?,
            mtime: r.read_i64()?,
            version: r.read_i32()?,
            cversion: r.read_i32()?,
            aversion: r.read_i32()?,
            ephemeral_owner: r.read_i64()?,
            data_length: r.read_i32()?,
            num_children: r.read_i32()?,
            pzxid: r.read_i64()?,
        })
    }
}

/// The node metadata as stored (60 bytes): no dataLength/numChildren, and the persisted cversion counts
/// child creations only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StatPersisted {
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last setData.
    pub mzxid: i64,
    /// Create time.
    pub ctime: i64,
    /// Last setData time.
    pub mtime: i64,
    /// Data version.
    pub version: i32,
    /// Child creations (the sequence counter for sequential children).
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// Raw owner: session id, 0, container or TTL marker (see `EphemeralType` in the tree module).
    pub ephemeral_owner: i64,
    /// zxid of the last child create/delete.
    pub pzxid: i64,
}

impl Record for StatPersisted {
    const MIN_ENCODED_LEN: usize = 60;

    fn write(&self, w: &mut JuteWriter) {
        w.write_i64(self.czxid);
        w.write_i64(self.mzxid);
        w.write_i64(self.ctime);
        w.write_i64(self.mtime);
        w.write_i32(self.version);
        w.write_i32(self.cversion);
        w.write_i32(self.aversion);
        w.write_i64(self.ephemeral_owner);
        w.write_i64(self.pzxid);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(StatPersisted {
            czxid: r.read_i64()?,
            mzxid: r.read_i64()?,
            ctime: r.read_i64()?,
            mtime: r.read_i64()?,
            version: r.read_i32()?,
            cversion: r.read_i32()?,
            aversion: r.read_i32()?,
            ephemeral_owner: r.read_i64()?,
            pzxid: r.read_i64()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ACL encodes as perms then the id's two strings, matching A.6's `world:anyone ALL` bytes.
    #[test]
    fn acl_matches_zookeeper_bytes() {
        let acl = &Acl::open_unsafe()[0];
        let hex: String = acl.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "0000001f00000005776f726c6400000006616e796f6e65");
        assert_eq!(Acl::from_bytes(&acl.to_bytes()).as_ref(), Ok(acl));
    }

    /// Stat is 68 bytes and StatPersisted 60, as in zookeeper.jute.
    #[test]
    fn stat_sizes() {
        assert_eq!(Stat::default().to_bytes().len(), 68);
        assert_eq!(StatPersisted::default().to_bytes().len(), 60);
    }
}

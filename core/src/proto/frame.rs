//! Length-prefixed framing (`i32 len` then `len` bytes) as used by client connections and, after the
//! handshake header, by election connections; and recognition of four-letter words, which replace the
//! first length prefix of a client connection.
//!
//! Plain functions over byte slices: the tokio shell keeps a `BytesMut`, calls [`decode_frame`] on it,
//! and splits off `consumed` bytes when a frame is complete. Nothing here panics on any input.

use std::fmt;
use std::ops::Range;

/// The outcome of looking for one frame at the start of a buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameResult {
    /// A whole frame: `buf[payload]` is its body and `consumed` bytes (prefix included) can be dropped.
    Complete {
        /// Where the payload lies in the buffer.
        payload: Range<usize>,
        /// Bytes to drop: 4 + payload length.
        consumed: usize,
    },
    /// The buffer holds a valid prefix; at least `needed` more bytes are required.
    Incomplete {
        /// How many more bytes are needed at least.
        needed: usize,
    },
    /// The length prefix exceeds the limit; ZooKeeper closes the connection.
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The length prefix is negative; ZooKeeper closes the connection.
    Malformed {
        /// The announced length.
        len: i32,
    },
}

/// Looks for one frame at the start of `buf`, whose payload may be at most `max_len` bytes
/// (`jute.maxbuffer` for clients, 524288 for election messages).
pub fn decode_frame(buf: &[u8], max_len: usize) -> FrameResult {
    let Some(prefix) = buf.get(..4) else {
        return FrameResult::Incomplete {
            needed: 4 - buf.len(),
        };
    };
    let len = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    if len < 0 {
        return FrameResult::Malformed { len };
    }
    let len = len as usize;
    if len > max_len {
        return FrameResult::TooLarge { len, max: max_len };
    }
    let total = 4 + len;
    if buf.len() < total {
        return FrameResult::Incomplete {
            needed: total - buf.len(),
        };
    }
    FrameResult::Complete {
        payload: 4..total,
        consumed: total,
    }
}

/// Prefixes `payload` with its length.
pub fn encode_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + payload.len());
    let len = i32::try_from(payload.len()).expect("frame payload exceeds i32::MAX");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Appends `payload` with its length prefix to `out`.
pub fn encode_frame_into(out: &mut Vec<u8>, payload: &[u8]) {
    let len = i32::try_from(payload.len()).expect("frame payload exceeds i32::MAX");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
}

/// A four-letter word (guide §3.1): a command sent as the first 4 bytes of a client connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FourLetterWord {
    /// `conf`
    Conf,
    /// `cons`
    Cons,
    /// `crst`
    Crst,
    /// `dirs`
    Dirs,
    /// `dump`
    Dump,
    /// `envi`
    Envi,
    /// `gtmk`
    Gtmk,
    /// `ruok`
    Ruok,
    /// `stmk` (followed by an 8-byte trace mask)
    Stmk,
    /// `srvr`
    Srvr,
    /// `srst`
    Srst,
    /// `stat`
    Stat,
    /// `wchc`
    Wchc,
    /// `wchp`
    Wchp,
    /// `wchs`
    Wchs,
    /// `mntr`
    Mntr,
    /// `isro`
    Isro,
    /// `hash`
    Hash,
    /// `0xfff4fffd`, telnet's interrupt-process sequence: recognised and ignored.
    TelnetClose,
}

impl FourLetterWord {
    /// Every word.
    pub const ALL: [FourLetterWord; 19] = [
        FourLetterWord::Conf,
        FourLetterWord::Cons,
        FourLetterWord::Crst,
        FourLetterWord::Dirs,
        FourLetterWord::Dump,
        FourLetterWord::Envi,
        FourLetterWord::Gtmk,
        FourLetterWord::Ruok,
        FourLetterWord::Stmk,
        FourLetterWord::Srvr,
        FourLetterWord::Srst,
        FourLetterWord::Stat,
        FourLetterWord::Wchc,
        FourLetterWord::Wchp,
        FourLetterWord::Wchs,
        FourLetterWord::Mntr,
        FourLetterWord::Isro,
        FourLetterWord::Hash,
        FourLetterWord::TelnetClose,
    ];

    /// The four bytes on the wire.
    pub fn bytes(self) -> [u8; 4] {
        match self {
            FourLetterWord::Conf => *b"conf",
            FourLetterWord::Cons => *b"cons",
            FourLetterWord::Crst => *b"crst",
            FourLetterWord::Dirs => *b"dirs",
            FourLetterWord::Dump => *b"dump",
            FourLetterWord::Envi => *b"envi",
            FourLetterWord::Gtmk => *b"gtmk",
            FourLetterWord::Ruok => *b"ruok",
            FourLetterWord::Stmk => *b"stmk",
            FourLetterWord::Srvr => *b"srvr",
            FourLetterWord::Srst => *b"srst",
            FourLetterWord::Stat => *b"stat",
            FourLetterWord::Wchc => *b"wchc",
            FourLetterWord::Wchp => *b"wchp",
            FourLetterWord::Wchs => *b"wchs",
            FourLetterWord::Mntr => *b"mntr",
            FourLetterWord::Isro => *b"isro",
            FourLetterWord::Hash => *b"hash",
            FourLetterWord::TelnetClose => [0xff, 0xf4, 0xff, 0xfd],
        }
    }

    /// The word as text (`"ruok"`); the telnet sequence has no text and yields `""`.
    pub fn as_str(self) -> &'static str {
        match self {
            FourLetterWord::Conf => "conf",
            FourLetterWord::Cons => "cons",
            FourLetterWord::Crst => "crst",
            FourLetterWord::Dirs => "dirs",
            FourLetterWord::Dump => "dump",
            FourLetterWord::Envi => "envi",
            FourLetterWord::Gtmk => "gtmk",
            FourLetterWord::Ruok => "ruok",
            FourLetterWord::Stmk => "stmk",
            FourLetterWord::Srvr => "srvr",
            FourLetterWord::Srst => "srst",
            FourLetterWord::Stat => "stat",
            FourLetterWord::Wchc => "wchc",
            FourLetterWord::Wchp => "wchp",
            FourLetterWord::Wchs => "wchs",
            FourLetterWord::Mntr => "mntr",
            FourLetterWord::Isro => "isro",
            FourLetterWord::Hash => "hash",
            FourLetterWord::TelnetClose => "",
        }
    }

    /// The word as ZooKeeper compares it: the four bytes read as a big-endian i32.
    pub fn code(self) -> i32 {
        i32::from_be_bytes(self.bytes())
    }

    /// The word for a text such as `"ruok"` (whitelist parsing).
    pub fn from_name(name: &str) -> Option<FourLetterWord> {
        FourLetterWord::ALL
            .iter()
            .copied()
            .find(|w| !w.as_str().is_empty() && w.as_str() == name)
    }
}

impl fmt::Display for FourLetterWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The four-letter word spelled by the first 4 bytes of a connection, if any. Only the very first
/// bytes of a connection may be a word; later frames are never checked.
pub fn four_letter_word(first4: &[u8; 4]) -> Option<FourLetterWord> {
    FourLetterWord::ALL
        .iter()
        .copied()
        .find(|w| &w.bytes() == first4)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each outcome of `decode_frame`: short prefix, short body, complete, too large, negative.
    #[test]
    fn frame_outcomes() {
        assert_eq!(
            decode_frame(&[0, 0], 10),
            FrameResult::Incomplete { needed: 2 }
        );
        assert_eq!(
            decode_frame(&[0, 0, 0, 3, 1], 10),
            FrameResult::Incomplete { needed: 2 }
        );
        assert_eq!(
            decode_frame(&[0, 0, 0, 2, 1, 2, 3], 10),
            FrameResult::Complete {
                payload: 4..6,
                consumed: 6
            }
        );
        assert_eq!(
            decode_frame(&[0, 0, 0, 11], 10),
            FrameResult::TooLarge { len: 11, max: 10 }
        );
        assert_eq!(
            decode_frame(&[0xff, 0xff, 0xff, 0xfe], 10),
            FrameResult::Malformed { len: -2 }
        );
        assert_eq!(encode_frame(&[7, 8]), vec![0, 0, 0, 2, 7, 8]);
    }

    /// The words of §3.1 are recognised with their documented i32 codes; other bytes are not.
    #[test]
    fn four_letter_words() {
        assert_eq!(four_letter_word(b"ruok"), Some(FourLetterWord::Ruok));
        assert_eq!(FourLetterWord::Conf.code(), 0x636f6e66);
        assert_eq!(FourLetterWord::Mntr.code(), 0x6d6e7472);
        assert_eq!(FourLetterWord::TelnetClose.code() as u32, 0xfff4fffd);
        assert_eq!(four_letter_word(&[0, 0, 0, 45]), None);
        for w in FourLetterWord::ALL {
            assert_eq!(four_letter_word(&w.bytes()), Some(w));
        }
        assert_eq!(
            FourLetterWord::from_name("wchs"),
            Some(FourLetterWord::Wchs)
        );
        assert_eq!(FourLetterWord::from_name(""), None);
    }
}

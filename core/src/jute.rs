//! Jute, ZooKeeper's serialization: big-endian primitives, length-prefixed buffers and strings (length -1
//! means null), counted vectors, and records as their fields back to back.
//!
//! This module holds only the primitives and the [`Record`] trait; the record catalogue lives in `proto`.
//! Decoding never panics and never allocates more than the input can back: every length is checked
//! against the bytes that remain and against the configured `jute.maxbuffer` limit.

use thiserror::Error;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// More bytes are needed; the input is a valid prefix so far.
    #[error("incomplete: {needed} more bytes needed")]
    Incomplete {
        /// How many more bytes the decoder needs at least.
        needed: usize,
    },
    /// A length or count is larger than the configured limit (`jute.maxbuffer`).
    #[error("length {len} exceeds the limit {max} (jute.maxbuffer)")]
    TooLarge {
        /// The length found.
        len: i64,
        /// The limit in force.
        max: usize,
    },
    /// The bytes cannot be a valid encoding.
    #[error("malformed: {what}")]
    Malformed {
        /// What was wrong, for the log.
        what: String,
    },
}

impl DecodeError {
    /// Shorthand for a [`DecodeError::Malformed`].
    pub fn malformed(what: impl Into<String>) -> DecodeError {
        DecodeError::Malformed { what: what.into() }
    }
}

/// ZooKeeper's default `jute.maxbuffer`: 0xfffff bytes.
pub const DEFAULT_MAX_BUFFER: usize = 0xfffff;

/// A cursor over a byte slice that reads jute primitives.
#[derive(Debug, Clone)]
pub struct JuteReader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Largest accepted buffer/string length (ZooKeeper: `jute.maxbuffer` + extrasize).
    max_len: usize,
}

impl<'a> JuteReader<'a> {
    /// A reader with ZooKeeper's default in-record limit (`jute.maxbuffer` plus an equal extrasize).
    pub fn new(buf: &'a [u8]) -> JuteReader<'a> {
        JuteReader::with_limit(buf, DEFAULT_MAX_BUFFER * 2)
    }

    /// A reader whose buffers and strings may be at most `max_len` bytes.
    pub fn with_limit(buf: &'a [u8], max_len: usize) -> JuteReader<'a> {
        JuteReader {
            buf,
            pos: 0,
            max_len,
        }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Reads exactly `n` raw bytes.
    pub fn read_raw(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Incomplete {
                needed: n - self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn read_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.read_raw(N)?);
        Ok(out)
    }

    /// Reads a jute `byte`.
    pub fn read_u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.read_array::<1>()?[0])
    }

    /// Reads a jute `boolean`: any non-zero byte is true, as Java reads it.
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.read_u8()? != 0)
    }

    /// Reads a jute `int`.
    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.read_array()?))
    }

    /// Reads a jute `long`.
    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.read_array()?))
    }

    /// Reads a length prefix: `None` for -1 (null), an error for other negatives or values over the limit.
    fn read_len(&mut self, what: &str) -> Result<Option<usize>, DecodeError> {
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(DecodeError::malformed(format!(
                "negative {what} length {len}"
            )));
        }
        let len = len as usize;
        if len > self.max_len {
            return Err(DecodeError::TooLarge {
                len: len as i64,
                max: self.max_len,
            });
        }
        Ok(Some(len))
    }

    /// Reads a jute `buffer`; `None` is the null buffer (length -1).
    pub fn read_buffer_opt(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        match self.read_len("buffer")? {
            None => Ok(None),
            Some(n) => Ok(Some(self.read_raw(n)?.to_vec())),
        }
    }

    /// Reads a jute `buffer`, mapping null to empty (what every ZooKeeper reader of these fields tolerates).
    pub fn read_buffer(&mut self) -> Result<Vec<u8>, DecodeError> {
        Ok(self.read_buffer_opt()?.unwrap_or_default())
    }

    /// Reads a jute `ustring`; `None` is the null string.
    pub fn read_string_opt(&mut self) -> Result<Option<String>, DecodeError> {
        match self.read_len("string")? {
            None => Ok(None),
            Some(n) => {
                let bytes = self.read_raw(n)?;
                match std::str::from_utf8(bytes) {
                    Ok(s) => Ok(Some(s.to_owned())),
                    // Java decodes leniently (replacement characters); we do the same rather than refuse.
                    Err(_) => Ok(Some(String::from_utf8_lossy(bytes).into_owned())),
                }
            }
        }
    }

    /// Reads a jute `ustring`, mapping null to empty.
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        Ok(self.read_string_opt()?.unwrap_or_default())
    }

    /// Reads a vector count: `None` for null. Each element needs at least `min_elem` bytes, so a count the
    /// remaining input cannot back is refused before anything is allocated.
    pub fn read_count(&mut self, min_elem: usize) -> Result<Option<usize>, DecodeError> {
        let count = self.read_i32()?;
        if count == -1 {
            return Ok(None);
        }
        if count < 0 {
            return Err(DecodeError::malformed(format!(
                "negative vector count {count}"
            )));
        }
        let count = count as usize;
        if count.saturating_mul(min_elem.max(1)) > self.remaining().max(self.max_len) {
            return Err(DecodeError::TooLarge {
                len: count as i64,
                max: self.max_len,
            });
        }
        Ok(Some(count))
    }

    /// Reads a vector of records; null becomes empty.
    pub fn read_vec<T: Record>(&mut self) -> Result<Vec<T>, DecodeError> {
        Ok(self.read_vec_opt()?.unwrap_or_default())
    }

    /// Reads a vector of records; `None` is the null vector.
    pub fn read_vec_opt<T: Record>(&mut self) -> Result<Option<Vec<T>>, DecodeError> {
        let Some(count) = self.read_count(T::MIN_ENCODED_LEN)? else {
            return Ok(None);
        };
        // Capacity is bounded by what the remaining bytes can hold.
        let mut out =
            Vec::with_capacity(count.min(self.remaining() / T::MIN_ENCODED_LEN.max(1) + 1));
        for _ in 0..count {
            out.push(T::read(self)?);
        }
        Ok(Some(out))
    }

    /// Reads a vector of strings; null becomes empty.
    pub fn read_string_vec(&mut self) -> Result<Vec<String>, DecodeError> {
        let Some(count) = self.read_count(4)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(count.min(self.remaining() / 4 + 1));
        for _ in 0..count {
            out.push(self.read_string()?);
        }
        Ok(out)
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() != 0 {
            return Err(DecodeError::malformed(format!(
                "{} trailing bytes",
                self.remaining()
            )));
        }
        Ok(())
    }
}

/// Appends jute primitives to a byte vector.
#[derive(Debug, Default, Clone)]
pub struct JuteWriter {
    buf: Vec<u8>,
}

impl JuteWriter {
    /// An empty writer.
    pub fn new() -> JuteWriter {
        JuteWriter::default()
    }

    /// A writer that appends to `buf`.
    pub fn from_vec(buf: Vec<u8>) -> JuteWriter {
        JuteWriter { buf }
    }

    /// The bytes written.
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// Number of bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends raw bytes.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Writes a jute `byte`.
    pub fn write_u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Writes a jute `boolean` as 0 or 1.
    pub fn write_bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    /// Writes a jute `int`.
    pub fn write_i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Writes a jute `long`.
    pub fn write_i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Writes a jute `buffer`.
    pub fn write_buffer(&mut self, v: &[u8]) {
        self.write_i32(len_i32(v.len()));
        self.buf.extend_from_slice(v);
    }

    /// Writes a jute `buffer`, or the null buffer for `None`.
    pub fn write_buffer_opt(&mut self, v: Option<&[u8]>) {
        match v {
            Some(v) => self.write_buffer(v),
            None => self.write_i32(-1),
        }
    }

    /// Writes a jute `ustring`.
    pub fn write_string(&mut self, v: &str) {
        self.write_buffer(v.as_bytes());
    }

    /// Writes a jute `ustring`, or the null string for `None`.
    pub fn write_string_opt(&mut self, v: Option<&str>) {
        self.write_buffer_opt(v.map(str::as_bytes));
    }

    /// Writes a vector of records.
    pub fn write_vec<T: Record>(&mut self, v: &[T]) {
        self.write_i32(len_i32(v.len()));
        for item in v {
            item.write(self);
        }
    }

    /// Writes a vector of records, or the null vector for `None`.
    pub fn write_vec_opt<T: Record>(&mut self, v: Option<&[T]>) {
        match v {
            Some(v) => self.write_vec(v),
            None => self.write_i32(-1),
        }
    }

    /// Writes a vector of strings.
    pub fn write_string_vec<S: AsRef<str>>(&mut self, v: &[S]) {
        self.write_i32(len_i32(v.len()));
        for s in v {
            self.write_string(s.as_ref());
        }
    }

    /// Writes a record.
    pub fn write_record<T: Record>(&mut self, r: &T) {
        r.write(self);
    }
}

fn len_i32(len: usize) -> i32 {
    // Everything we encode is bounded by jute.maxbuffer long before 2 GiB; a larger value is a bug.
    i32::try_from(len).expect("jute length exceeds i32::MAX")
}

/// A jute record: its fields back to back in declaration order.
pub trait Record: Sized {
    /// The fewest bytes one encoded value can take; used to refuse vector counts the input cannot back.
    const MIN_ENCODED_LEN: usize;

    /// Appends the encoding of `self`.
    fn write(&self, w: &mut JuteWriter);

    /// Reads one value.
    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError>;

    /// Encodes `self` into a fresh vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = JuteWriter::new();
        self.write(&mut w);
        w.into_inner()
    }

    /// Decodes a value that must fill `bytes` exactly.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = JuteReader::new(bytes);
        let v = Self::read(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Primitives encode big-endian, and null buffers/strings use length -1 as Java's archive does.
    #[test]
    fn primitives_match_java_layout() {
        let mut w = JuteWriter::new();
        w.write_i32(1);
        w.write_i64(-2);
        w.write_bool(true);
        w.write_buffer_opt(None);
        w.write_string("ab");
        assert_eq!(
            w.as_slice(),
            &[
                0, 0, 0, 1, 255, 255, 255, 255, 255, 255, 255, 254, 1, 255, 255, 255, 255, 0, 0, 0,
                2, b'a', b'b'
            ]
        );
        let bytes = w.into_inner();
        let mut r = JuteReader::new(&bytes);
        assert_eq!(r.read_i32(), Ok(1));
        assert_eq!(r.read_i64(), Ok(-2));
        assert_eq!(r.read_bool(), Ok(true));
        assert_eq!(r.read_buffer_opt(), Ok(None));
        assert_eq!(r.read_string(), Ok("ab".to_string()));
        assert_eq!(r.finish(), Ok(()));
    }

    /// A length beyond the limit or beyond the input is refused without allocating it.
    #[test]
    fn hostile_lengths_are_refused() {
        let bytes = [0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(
            JuteReader::new(&bytes).read_buffer(),
            Err(DecodeError::TooLarge { .. })
        ));
        let bytes = [0, 0, 0, 10, 1, 2];
        assert_eq!(
            JuteReader::new(&bytes).read_buffer(),
            Err(DecodeError::Incomplete { needed: 8 })
        );
        let bytes = [0xff, 0xff, 0xff, 0xfe];
        assert!(matches!(
            JuteReader::new(&bytes).read_string(),
            Err(DecodeError::Malformed { .. })
        ));
    }
}

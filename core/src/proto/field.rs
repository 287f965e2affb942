//! The field-level plumbing behind the record catalogue: a [`Field`] trait for every jute field type and
//! the `jute_record!` macro that turns a field list into a struct with a [`Record`] implementation.
//!
//! Records whose layout is not "fields back to back" (connect packets with their optional trailing
//! byte, multi, notifications) are written by hand in their modules.

use crate::jute::{DecodeError, JuteReader, JuteWriter, Record};

/// One jute field type: how it is written, read, and the fewest bytes it takes.
pub trait Field: Sized {
    /// The fewest bytes one encoded value takes.
    const MIN_LEN: usize;
    /// Appends the value.
    fn put(&self, w: &mut JuteWriter);
    /// Reads one value.
    fn get(r: &mut JuteReader<'_>) -> Result<Self, DecodeError>;
}

impl Field for i32 {
    const MIN_LEN: usize = 4;
    fn put(&self, w: &mut JuteWriter) {
        w.write_i32(*self);
    }
    fn get(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        r.read_i32()
    }
}

impl Field for i64 {
    const MIN_LEN: usize = 8;
    fn put(&self, w: &mut JuteWriter) {
        w.write_i64(*self);
    }
    fn get(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        r.read_i64()
    }
}

impl Field for bool {
    const MIN_LEN: usize = 1;
    fn put(&self, w: &mut JuteWriter) {
        w.write_bool(*self);
    }
    fn get(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        r.read_bool()
    }
}

/// A jute `buffer` whose null is read as empty.
impl Field for Vec<u8> {
    const MIN_LEN: usize = 4;
    fn put(&self, w: &mut JuteWriter) {
        w.write_buffer(self);
    }
    fn get(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        r.read_buffer()
    }
}

/// A jute `buffer` that keeps null (`None`, length -1) apart from empty.
impl Field for Option<Vec<u8>> {
    const MIN_LEN: usize = 4;
    fn put(&self, w: &mut JuteWriter) {
        w.write_buffer_opt(self.as_deref());
    }
    fn get(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        r.read_buffer_opt()
    }
}

/// A jute `ustring` whose null is read as empty.
impl Field for String {
    const MIN_LEN: usize = 4;
    fn put(&self, w: &mut JuteWriter) {
        w.write_string(self);
    }
    fn get(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        r.read_string()
    }
}

/// A jute `ustring` that keeps null apart from empty.
impl Field for Option<String> {
    const MIN_LEN: usize = 4;
    fn put(&self, w: &mut JuteWriter) {
        w.write_string_opt(self.as_deref());
    }
    fn get(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        r.read_string_opt()
    }
}

/// A `vector<ustring>` whose null is read as empty.
impl Field for Vec<String> {
    const MIN_LEN: usize = 4;
    fn put(&self, w: &mut JuteWriter) {
        w.write_string_vec(self);
    }
    fn get(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        r.read_string_vec()
    }
}

/// A nested record.
impl<T: Record> Field for T {
    const MIN_LEN: usize = T::MIN_ENCODED_LEN;
    fn put(&self, w: &mut JuteWriter) {
        self.write(w);
    }
    fn get(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        T::read(r)
    }
}

/// A vector of records whose null is read as empty.
impl<T: Record> Field for Vec<T> {
    const MIN_LEN: usize = 4;
    fn put(&self, w: &mut JuteWriter) {
        w.write_vec(self);
    }
    fn get(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        r.read_vec()
    }
}

/// A vector of records that keeps null apart from empty.
impl<T: Record> Field for Option<Vec<T>> {
    const MIN_LEN: usize = 4;
    fn put(&self, w: &mut JuteWriter) {
        w.write_vec_opt(self.as_deref());
    }
    fn get(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        r.read_vec_opt()
    }
}

/// Declares a jute record: a struct whose fields are encoded back to back in declaration order.
macro_rules! jute_record {
    ($(#[$m:meta])* pub struct $name:ident { $( $(#[$fm:meta])* pub $field:ident : $ty:ty ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
        pub struct $name {
            $( $(#[$fm])* pub $field: $ty ),*
        }

        impl $crate::jute::Record for $name {
            const MIN_ENCODED_LEN: usize = 0 $( + <$ty as $crate::proto::field::Field>::MIN_LEN )*;

            fn write(&self, w: &mut $crate::jute::JuteWriter) {
                $( $crate::proto::field::Field::put(&self.$field, w); )*
            }

            fn read(r: &mut $crate::jute::JuteReader<'_>) -> Result<Self, $crate::jute::DecodeError> {
                Ok($name {
                    $( $field: <$ty as $crate::proto::field::Field>::get(r)? ),*
                })
            }
        }
    };
}

pub(crate) use jute_record;

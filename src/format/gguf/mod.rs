//! GGUF (ggml's `docs/gguf.md`), both directions: the header reader ([`read`], as ggml's
//! `gguf.cpp` reads it) and the streaming writer ([`write`]), over one set of value types and
//! limits.

pub mod read;
pub mod write;

pub(crate) use read::check;
pub use read::{chat_templates, read_header, validate, Header, HeaderError};
pub use write::{Array, GgufError, GgufWriter, TensorInfo, Value};

/// File magic.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// Format version written.
pub const GGUF_VERSION: u32 = 3;
/// Alignment used when `general.alignment` is not set.
pub const DEFAULT_ALIGNMENT: u32 = 32;
/// Longest tensor name ggml accepts, in bytes (`GGML_MAX_NAME` is 64 with the NUL).
pub const MAX_TENSOR_NAME_BYTES: usize = 63;
/// Most dimensions a ggml tensor can have (`GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;
/// Value of `general.quantization_version` for the block formats written here.
pub const QUANTIZATION_VERSION: u32 = 2;

/// Metadata value type ids (`gguf_metadata_value_type`).
#[allow(missing_docs)] // variants and fields are named after what they hold (GGUF/ggml names)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    /// The type with this id, as the file spells it.
    pub fn from_id(id: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// Bytes of one value of a fixed-size type (`None` for strings and arrays).
    pub fn scalar_size(self) -> Option<u64> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ValueType;

    #[test]
    fn value_type_ids_read_back_as_written() {
        for id in 0..=12u32 {
            let t = ValueType::from_id(id).expect("ids 0..=12 are GGUF value types");
            assert_eq!(t as u32, id);
            let fixed = !matches!(t, ValueType::String | ValueType::Array);
            assert_eq!(t.scalar_size().is_some(), fixed, "{t:?}");
        }
        assert_eq!(ValueType::from_id(13), None);
        assert_eq!(ValueType::U16.scalar_size(), Some(2));
        assert_eq!(ValueType::F64.scalar_size(), Some(8));
    }
}

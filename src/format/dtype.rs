//! Element types, defined once: the dtypes the output formats hold (with their safetensors
//! names), and what each source type (torch dtypes, legacy storage classes, numpy kinds) maps
//! to. Readers (`container/`) and extraction (`extract/`) both use these tables.

/// Element types that the output formats hold, in the safetensors declaration order (which is the
/// order its writer sorts by, descending). Each variant's name is its safetensors name
/// (`DType::iter()` lists them in order, `DType::from_str("F32")` parses one).
#[allow(non_camel_case_types)]
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::EnumIter,
    strum::IntoStaticStr,
    strum::EnumString,
)]
pub enum DType {
    /// bool, one byte.
    BOOL,
    /// uint8.
    U8,
    /// int8.
    I8,
    /// float8 e5m2.
    F8_E5M2,
    /// float8 e4m3fn.
    F8_E4M3,
    /// float8 e8m0fnu.
    F8_E8M0,
    /// float8 e4m3fnuz.
    F8_E4M3FNUZ,
    /// float8 e5m2fnuz.
    F8_E5M2FNUZ,
    /// int16.
    I16,
    /// uint16.
    U16,
    /// float16.
    F16,
    /// bfloat16.
    BF16,
    /// int32.
    I32,
    /// uint32.
    U32,
    /// float32.
    F32,
    /// float64.
    F64,
    /// int64.
    I64,
    /// uint64.
    U64,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        use DType::*;
        match self {
            BOOL | U8 | I8 | F8_E5M2 | F8_E4M3 | F8_E8M0 | F8_E4M3FNUZ | F8_E5M2FNUZ => 1,
            I16 | U16 | F16 | BF16 => 2,
            I32 | U32 | F32 => 4,
            F64 | I64 | U64 => 8,
        }
    }

    /// The safetensors name (`F32`, `BF16`, …).
    pub fn safetensors_name(self) -> &'static str {
        self.into()
    }
}

/// What a source element type maps to: an output dtype, or a reason it cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElemType {
    /// Written as this dtype.
    Supported(DType),
    /// Numeric but not representable (complex, quantized, sub-byte): refused or skipped.
    Unsupported {
        /// The source's name for it (`complex64`, `qint8`).
        name: String,
        /// Bytes per element in the source.
        size: usize,
    },
}

impl ElemType {
    /// Bytes per element.
    pub fn size(&self) -> usize {
        match self {
            ElemType::Supported(d) => d.size(),
            ElemType::Unsupported { size, .. } => *size,
        }
    }

    fn unsupported(name: &str, size: usize) -> Self {
        ElemType::Unsupported {
            name: name.to_string(),
            size,
        }
    }

    /// A torch dtype by its attribute name in `torch` (`float32`, `bfloat16`, `float8_e4m3fn`).
    pub fn from_torch_dtype(name: &str) -> Option<ElemType> {
        use DType::*;
        let s = |d| Some(ElemType::Supported(d));
        match name {
            "float64" | "double" => s(F64),
            "float32" | "float" => s(F32),
            "float16" | "half" => s(F16),
            "bfloat16" => s(BF16),
            "int64" | "long" => s(I64),
            "int32" | "int" => s(I32),
            "int16" | "short" => s(I16),
            "int8" => s(I8),
            "uint8" => s(U8),
            "uint16" => s(U16),
            "uint32" => s(U32),
            "uint64" => s(U64),
            "bool" => s(BOOL),
            "float8_e5m2" => s(F8_E5M2),
            "float8_e4m3fn" => s(F8_E4M3),
            "float8_e8m0fnu" => s(F8_E8M0),
            "float8_e4m3fnuz" => s(F8_E4M3FNUZ),
            "float8_e5m2fnuz" => s(F8_E5M2FNUZ),
            "complex32" | "chalf" | "bcomplex32" => Some(Self::unsupported(name, 4)),
            "complex64" | "cfloat" => Some(Self::unsupported(name, 8)),
            "complex128" | "cdouble" => Some(Self::unsupported(name, 16)),
            "qint8" | "quint8" | "quint4x2" | "quint2x4" | "float4_e2m1fn_x2" | "bits8"
            | "bits1x8" | "bits2x4" | "bits4x2" => Some(Self::unsupported(name, 1)),
            "bits16" => Some(Self::unsupported(name, 2)),
            "qint32" => Some(Self::unsupported(name, 4)),
            _ => None,
        }
    }

    /// A legacy typed storage class by name (`FloatStorage`), as torch maps it: the module is
    /// ignored. `UntypedStorage` and `TypedStorage` are bytes.
    pub fn from_storage_class(name: &str) -> Option<ElemType> {
        let dtype = match name {
            "DoubleStorage" => "float64",
            "FloatStorage" => "float32",
            "HalfStorage" => "float16",
            "BFloat16Storage" => "bfloat16",
            "LongStorage" => "int64",
            "IntStorage" => "int32",
            "ShortStorage" => "int16",
            "CharStorage" => "int8",
            "ByteStorage" | "UntypedStorage" | "TypedStorage" => "uint8",
            "BoolStorage" => "bool",
            "ComplexFloatStorage" => "complex64",
            "ComplexDoubleStorage" => "complex128",
            "QInt8Storage" => "qint8",
            "QUInt8Storage" => "quint8",
            "QInt32Storage" => "qint32",
            "QUInt4x2Storage" => "quint4x2",
            "QUInt2x4Storage" => "quint2x4",
            _ => return None,
        };
        Self::from_torch_dtype(dtype)
    }

    /// A numpy type string without byte order: kind letter and item size (`f4`, `i8`, `b1`).
    /// `None` for non-numeric kinds (objects, strings, dates, records).
    pub fn from_numpy_kind(kind: char, size: usize) -> Option<ElemType> {
        use DType::*;
        let s = |d| Some(ElemType::Supported(d));
        match (kind, size) {
            ('f', 2) => s(F16),
            ('f', 4) => s(F32),
            ('f', 8) => s(F64),
            ('i', 1) => s(I8),
            ('i', 2) => s(I16),
            ('i', 4) => s(I32),
            ('i', 8) => s(I64),
            ('u', 1) => s(U8),
            ('u', 2) => s(U16),
            ('u', 4) => s(U32),
            ('u', 8) => s(U64),
            ('b', 1) => s(BOOL),
            ('c', 8) => Some(Self::unsupported("complex64", 8)),
            ('c', 16) => Some(Self::unsupported("complex128", 16)),
            ('f', 16) | ('f', 12) => Some(Self::unsupported("longdouble", size)),
            ('c', 32) | ('c', 24) => Some(Self::unsupported("clongdouble", size)),
            _ => None,
        }
    }
}

/// Bits per element of a safetensors dtype name: the [`DType`]s, and the sub-byte and complex
/// types safetensors declares that no output here holds (`F4`, `F6_E2M3`, `F6_E3M2`, `C64`).
pub fn safetensors_bits(name: &str) -> Option<u64> {
    if let Ok(d) = name.parse::<DType>() {
        return Some(d.size() as u64 * 8);
    }
    Some(match name {
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        "C64" => 64,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::DType;
    use strum::IntoEnumIterator;

    #[test]
    fn names_are_the_safetensors_names_and_parse_back() {
        let names: Vec<&str> = DType::iter().map(DType::safetensors_name).collect();
        assert_eq!(names.len(), 18);
        assert_eq!(names[..3], ["BOOL", "U8", "I8"]);
        assert_eq!(names[names.len() - 1], "U64");
        for d in DType::iter() {
            assert_eq!(d.safetensors_name().parse::<DType>(), Ok(d));
        }
        assert!("f32".parse::<DType>().is_err());
        assert!("F4".parse::<DType>().is_err());
    }
}

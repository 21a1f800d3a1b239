//! A bounded protobuf wire-format reader: keys, varints, fixed and length-delimited fields, no
//! schema. Used for ONNX. Groups (wire types 3 and 4) are rejected; varints longer than ten
//! bytes and lengths past the end of the message are errors, never panics.

/// Why a message does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A varint longer than ten bytes, or one that runs past the end.
    #[error("bad varint at offset {0}")]
    Varint(usize),
    /// A field whose bytes run past the end of its message.
    #[error("field {field} at offset {at} runs past the end of its message")]
    Truncated {
        /// Field number.
        field: u32,
        /// Offset of the key.
        at: usize,
    },
    /// Wire type 3/4 (groups, unused since proto2) or 6/7 (undefined).
    #[error("field {field} at offset {at} has unsupported wire type {wire}")]
    WireType {
        /// Field number.
        field: u32,
        /// Offset of the key.
        at: usize,
        /// The wire type.
        wire: u8,
    },
    /// Field number 0.
    #[error("field number 0 at offset {0}")]
    FieldZero(usize),
}

/// One field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: bytes, string, sub-message or packed repeated scalars.
    Len(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

/// Iterates over the fields of one message. `base` is the message's offset in the file, so
/// offsets in errors are file offsets.
pub struct Fields<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
    failed: bool,
}

impl<'a> Fields<'a> {
    /// Fields of `data`, which starts at file offset `base`.
    pub fn new(data: &'a [u8], base: usize) -> Self {
        Fields {
            data,
            pos: 0,
            base,
            failed: false,
        }
    }

    /// File offset of the next field.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let start = self.base + self.pos;
        let mut v = 0u64;
        for i in 0..10 {
            let b = *self.data.get(self.pos).ok_or(WireError::Varint(start))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(WireError::Varint(start))
    }

    fn take(&mut self, n: u64, field: u32, at: usize) -> Result<&'a [u8], WireError> {
        let n = usize::try_from(n).map_err(|_| WireError::Truncated { field, at })?;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(WireError::Truncated { field, at })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn field(&mut self) -> Result<(u32, Value<'a>, usize), WireError> {
        let at = self.base + self.pos;
        let key = self.varint()?;
        let wire = (key & 7) as u8;
        let field = u32::try_from(key >> 3).map_err(|_| WireError::FieldZero(at))?;
        if field == 0 {
            return Err(WireError::FieldZero(at));
        }
        let value = match wire {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(
                self.take(8, field, at)?.try_into().expect("8 bytes"),
            )),
            2 => {
                let n = self.varint()?;
                let start = self.base + self.pos;
                return Ok((field, Value::Len(self.take(n, field, at)?), start));
            }
            5 => Value::Fixed32(u32::from_le_bytes(
                self.take(4, field, at)?.try_into().expect("4 bytes"),
            )),
            w => return Err(WireError::WireType { field, at, wire: w }),
        };
        Ok((field, value, at))
    }
}

impl<'a> Fields<'a> {
    /// The varints of a packed repeated field (`[packed = true]`, the proto3 default).
    pub fn packed_varints(
        data: &'a [u8],
        base: usize,
    ) -> impl Iterator<Item = Result<u64, WireError>> + 'a {
        let mut f = Fields::new(data, base);
        std::iter::from_fn(move || {
            if f.failed || f.pos >= f.data.len() {
                return None;
            }
            let r = f.varint();
            if r.is_err() {
                f.failed = true;
            }
            Some(r)
        })
    }
}

impl<'a> Iterator for Fields<'a> {
    /// `(field number, value, file offset of the value's bytes for LEN fields, else of the key)`.
    type Item = Result<(u32, Value<'a>, usize), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let r = self.field();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_errors() {
        // ir_version = 14, graph = {name = "g"}
        let msg = [0x08, 0x0e, 0x3a, 0x03, 0x12, 0x01, b'g'];
        let f: Vec<_> = Fields::new(&msg, 0).collect::<Result<_, _>>().unwrap();
        assert_eq!(f[0], (1, Value::Varint(14), 0));
        assert_eq!(f[1], (7, Value::Len(&[0x12, 0x01, b'g']), 4));
        assert!(matches!(
            Fields::new(&[0x3a, 0x05, 0x00], 0).next(),
            Some(Err(WireError::Truncated { field: 7, .. }))
        ));
        assert!(matches!(
            Fields::new(&[0x0b], 0).next(),
            Some(Err(WireError::WireType { wire: 3, .. }))
        ));
        let ok: Vec<_> = Fields::new(&[0x08; 12], 0).collect();
        assert_eq!(ok.len(), 6);
        assert!(ok.iter().all(|f| matches!(f, Ok((1, Value::Varint(8), _)))));
        assert!(matches!(
            Fields::new(
                &[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                0
            )
            .next(),
            Some(Err(WireError::Varint(_)))
        ));
    }
}

//! numpy dtypes as pickles and `.npy` headers spell them: the type string (`<f4`, `|b1`, `>i8`,
//! `U3`, `M8[ns]`), read once for the scan (how many bytes an array takes, whether it holds
//! objects) and for extraction (which element type it is, and its byte order).

use crate::format::dtype::ElemType;

/// A numpy dtype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpDtype {
    /// Kind letter (`b` bool, `i`, `u`, `f`, `c`, `m`, `M`, `O`, `S`, `U`, `V`).
    pub kind: char,
    /// Bytes per item (`U` counts four bytes per character).
    pub itemsize: u64,
    /// Big-endian data.
    pub big_endian: bool,
    /// What numpy calls it, for messages.
    pub text: String,
}

impl NpDtype {
    /// Parse a type string: an optional byte order (`<`, `>`, `|`, `=`), a kind letter and a
    /// size (which `?`, `b` and `O` may leave out); `a` is the old name of `S`. As numpy reads
    /// them: `b1` is bool, a bare `b` a signed byte.
    pub fn parse(s: &str) -> Option<NpDtype> {
        let (order, rest) = match s.chars().next()? {
            c @ ('<' | '>' | '|' | '=') => (c, &s[1..]),
            _ => ('=', s),
        };
        let mut chars = rest.chars();
        let kind = chars.next()?;
        if !"biufcmMOSUVa?".contains(kind) {
            return None;
        }
        let digits: String = chars.take_while(|c| c.is_ascii_digit()).collect();
        let (kind, n) = if digits.is_empty() {
            match kind {
                '?' => ('b', 1),
                'b' => ('i', 1),
                'O' => ('O', 8),
                _ => return None,
            }
        } else {
            (kind, digits.parse::<u64>().ok()?)
        };
        let kind = match kind {
            '?' => 'b',
            'a' => 'S',
            k => k,
        };
        let itemsize = if kind == 'U' { n.checked_mul(4)? } else { n };
        Some(NpDtype {
            kind,
            itemsize,
            big_endian: order == '>',
            text: s.to_string(),
        })
    }

    /// Whether the array holds Python objects (stored as a pickle).
    pub fn has_object(&self) -> bool {
        self.kind == 'O'
    }

    /// The element type, `None` for non-numeric kinds.
    pub fn elem(&self) -> Option<ElemType> {
        ElemType::from_numpy_kind(self.kind, usize::try_from(self.itemsize).ok()?)
    }

    /// Whether elements must be byte-swapped to little-endian.
    pub fn swap(&self) -> bool {
        self.big_endian && self.itemsize > 1 && !matches!(self.kind, 'U' | 'S' | 'V' | 'O' | 'b')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::dtype::DType;

    #[test]
    fn type_strings_read_as_numpy_reads_them() {
        let d = NpDtype::parse("<f4").unwrap();
        assert_eq!((d.kind, d.itemsize, d.swap()), ('f', 4, false));
        assert!(NpDtype::parse(">i8").unwrap().swap());
        assert_eq!(NpDtype::parse("U3").unwrap().itemsize, 12);
        assert_eq!(
            NpDtype::parse("|b1").unwrap().elem(),
            Some(ElemType::Supported(DType::BOOL))
        );
        assert_eq!(
            NpDtype::parse("b").unwrap().elem(),
            Some(ElemType::Supported(DType::I8))
        );
        assert_eq!(NpDtype::parse("?").unwrap().kind, 'b');
        assert_eq!(NpDtype::parse("a5").unwrap().kind, 'S');
        assert_eq!(NpDtype::parse("M8[ns]").unwrap().itemsize, 8);
        let o = NpDtype::parse("O8").unwrap();
        assert!(o.has_object() && o.elem().is_none());
        assert_eq!(NpDtype::parse("O").unwrap().itemsize, 8);
        for bad in ["", "<", "x4", "f", "U99999999999999999999", "e"] {
            assert_eq!(NpDtype::parse(bad), None, "{bad}");
        }
    }
}

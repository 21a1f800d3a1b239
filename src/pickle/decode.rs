//! Opcode decoder: turns pickle bytes into a sequence of opcodes with their offsets and arguments.
//!
//! It decodes arguments exactly as CPython's C unpickler (`Modules/_pickle.c`) reads them; it does
//! not interpret anything (that is the VM's job). Arguments borrow from the input: a multi-GB
//! `BINBYTES8` costs nothing, and no allocation is ever sized by a length read from the file
//! before the bytes are known to exist.

use super::opcode::{ArgKind, Opcode};
use std::borrow::Cow;

/// The decoded inline argument of an opcode.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<'a> {
    /// No argument.
    None,
    /// A fixed-width integer (U1, U2, I4, U4).
    Int(i64),
    /// A 64-bit unsigned integer (FRAME length).
    U64(u64),
    /// A little-endian two's-complement integer of any size (LONG1/LONG4).
    Long(&'a [u8]),
    /// A float (BINFLOAT).
    Float(f64),
    /// Raw bytes (BINBYTES*, BINSTRING, SHORT_BINSTRING, BINUNICODE* before decoding).
    Bytes(&'a [u8]),
    /// A raw text line without its `\n` (INT, LONG, FLOAT, GET, PUT, PERSID).
    Line(&'a [u8]),
    /// Decoded text (STRING after unquoting, UNICODE after unescaping).
    Text(Cow<'a, str>),
    /// Module and name lines of GLOBAL/INST.
    Pair(Cow<'a, str>, Cow<'a, str>),
}

/// One decoded opcode.
#[derive(Debug, Clone, PartialEq)]
pub struct Op<'a> {
    /// Byte offset of the opcode within the stream (plus the decoder's base offset).
    pub offset: u64,
    /// The opcode.
    pub code: Opcode,
    /// Its argument.
    pub arg: Arg<'a>,
}

/// Why decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A byte that is not an opcode.
    #[error("invalid opcode byte 0x{byte:02x} at offset {offset}")]
    InvalidOpcode {
        /// The byte.
        byte: u8,
        /// Where it is.
        offset: u64,
    },
    /// The stream ends inside an opcode or its argument.
    #[error("truncated {op} at offset {offset}: {detail}")]
    Truncated {
        /// The opcode.
        op: &'static str,
        /// Where it starts.
        offset: u64,
        /// What was missing.
        detail: String,
        /// Absolute offset the opcode's bytes run to, when its length is known.
        need: Option<u64>,
    },
    /// An argument the unpickler rejects (negative length, unquoted STRING, bad escape).
    #[error("bad argument to {op} at offset {offset}: {detail}")]
    BadArgument {
        /// The opcode.
        op: &'static str,
        /// Where it starts.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
}

impl DecodeError {
    /// True if the input simply ended too early.
    pub fn is_truncation(&self) -> bool {
        matches!(self, DecodeError::Truncated { .. })
    }

    /// For a truncation: the absolute offset the cut opcode's bytes run to, when known.
    pub fn need(&self) -> Option<u64> {
        match self {
            DecodeError::Truncated { need, .. } => *need,
            _ => None,
        }
    }

    /// Offset of the offending opcode.
    pub fn offset(&self) -> u64 {
        match self {
            DecodeError::InvalidOpcode { offset, .. }
            | DecodeError::Truncated { offset, .. }
            | DecodeError::BadArgument { offset, .. } => *offset,
        }
    }
}

/// Iterates over the opcodes of one byte slice.
pub struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Decoder<'a> {
    /// Decode `data`; reported offsets are `base + position in data`.
    pub fn new(data: &'a [u8], base: u64) -> Self {
        Decoder { data, pos: 0, base }
    }

    /// Position of the next opcode within `data`.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Continue decoding at `pos` (clamped to the end of the data).
    pub fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.data.len());
    }

    /// Decode the next opcode. `None` at the end of input.
    #[inline]
    pub fn next_op(&mut self) -> Option<Result<Op<'a>, DecodeError>> {
        if self.pos >= self.data.len() {
            return None;
        }
        let start = self.pos;
        let offset = self.base + start as u64;
        let byte = self.data[start];
        let Some(code) = Opcode::from_byte(byte) else {
            // Decoding cannot go on past a byte that is no opcode.
            self.pos = self.data.len();
            return Some(Err(DecodeError::InvalidOpcode { byte, offset }));
        };
        self.pos += 1;
        match self.arg(code, offset) {
            Ok(arg) => Some(Ok(Op { offset, code, arg })),
            Err(e) => {
                // Leave the position at the end so iteration stops.
                self.pos = self.data.len();
                Some(Err(e))
            }
        }
    }

    #[inline]
    /// Absolute offset `n` bytes past the current position.
    fn end_after(&self, n: u64) -> Option<u64> {
        (self.base + self.pos as u64).checked_add(n)
    }

    fn take(&mut self, n: usize, code: Opcode, offset: u64) -> Result<&'a [u8], DecodeError> {
        let available = self.data.len() - self.pos;
        if n > available {
            return Err(DecodeError::Truncated {
                op: code.name(),
                offset,
                detail: format!("needs {n} bytes, {available} left"),
                need: self.end_after(n as u64),
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn line(&mut self, code: Opcode, offset: u64) -> Result<&'a [u8], DecodeError> {
        let rest = &self.data[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(n) => {
                self.pos += n + 1;
                Ok(&rest[..n])
            }
            None => Err(DecodeError::Truncated {
                op: code.name(),
                offset,
                detail: "missing end of line".into(),
                need: None,
            }),
        }
    }

    #[inline]
    fn fixed<const N: usize>(&mut self, code: Opcode, offset: u64) -> Result<[u8; N], DecodeError> {
        let s = self.take(N, code, offset)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn length(&mut self, n: u64, code: Opcode, offset: u64) -> Result<usize, DecodeError> {
        let available = (self.data.len() - self.pos) as u64;
        if n > available {
            return Err(DecodeError::Truncated {
                op: code.name(),
                offset,
                detail: format!("declares {n} bytes, {available} left"),
                need: self.end_after(n),
            });
        }
        Ok(n as usize)
    }

    #[inline]
    fn arg(&mut self, code: Opcode, offset: u64) -> Result<Arg<'a>, DecodeError> {
        let bad = |detail: String| DecodeError::BadArgument {
            op: code.name(),
            offset,
            detail,
        };
        Ok(match code.arg_kind() {
            ArgKind::None => Arg::None,
            ArgKind::U1 => Arg::Int(self.fixed::<1>(code, offset)?[0] as i64),
            ArgKind::U2 => Arg::Int(u16::from_le_bytes(self.fixed(code, offset)?) as i64),
            ArgKind::I4 => Arg::Int(i32::from_le_bytes(self.fixed(code, offset)?) as i64),
            ArgKind::U4 => Arg::Int(u32::from_le_bytes(self.fixed(code, offset)?) as i64),
            ArgKind::U8 => Arg::U64(u64::from_le_bytes(self.fixed(code, offset)?)),
            ArgKind::Float8 => Arg::Float(f64::from_be_bytes(self.fixed(code, offset)?)),
            ArgKind::Long1 => {
                let n = self.fixed::<1>(code, offset)?[0] as u64;
                let n = self.length(n, code, offset)?;
                Arg::Long(self.take(n, code, offset)?)
            }
            ArgKind::Long4 => {
                let n = i32::from_le_bytes(self.fixed(code, offset)?);
                if n < 0 {
                    return Err(bad("negative byte count".into()));
                }
                let n = self.length(n as u64, code, offset)?;
                Arg::Long(self.take(n, code, offset)?)
            }
            ArgKind::Bytes1 => {
                let n = self.fixed::<1>(code, offset)?[0] as u64;
                let n = self.length(n, code, offset)?;
                Arg::Bytes(self.take(n, code, offset)?)
            }
            ArgKind::SignedBytes4 => {
                let n = i32::from_le_bytes(self.fixed(code, offset)?);
                if n < 0 {
                    return Err(bad("negative byte count".into()));
                }
                let n = self.length(n as u64, code, offset)?;
                Arg::Bytes(self.take(n, code, offset)?)
            }
            ArgKind::Bytes4 => {
                let n = u32::from_le_bytes(self.fixed(code, offset)?) as u64;
                let n = self.length(n, code, offset)?;
                Arg::Bytes(self.take(n, code, offset)?)
            }
            ArgKind::Bytes8 => {
                let n = u64::from_le_bytes(self.fixed(code, offset)?);
                let n = self.length(n, code, offset)?;
                Arg::Bytes(self.take(n, code, offset)?)
            }
            ArgKind::Line => Arg::Line(self.line(code, offset)?),
            ArgKind::QuotedLine => {
                let line = self.line(code, offset)?;
                let body =
                    unquote(line).ok_or_else(|| bad("STRING argument must be quoted".into()))?;
                let bytes = escape_decode(body).map_err(bad)?;
                Arg::Text(bytes_to_text(bytes))
            }
            ArgKind::UnicodeLine => {
                let line = self.line(code, offset)?;
                Arg::Text(raw_unicode_escape_decode(line).map_err(bad)?)
            }
            ArgKind::LinePair => {
                let module = self.line(code, offset)?;
                let name = self.line(code, offset)?;
                Arg::Pair(
                    String::from_utf8_lossy(module),
                    String::from_utf8_lossy(name),
                )
            }
        })
    }
}

impl<'a> Iterator for Decoder<'a> {
    type Item = Result<Op<'a>, DecodeError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_op()
    }
}

/// Text of a byte string as the unpickler would decode it: UTF-8 if valid, else latin-1
/// (the `encoding='latin1'` numpy and torch use for Python 2 data).
pub fn bytes_to_text(bytes: Cow<'_, [u8]>) -> Cow<'_, str> {
    match bytes {
        Cow::Borrowed(b) => match std::str::from_utf8(b) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => Cow::Owned(b.iter().map(|&c| c as char).collect()),
        },
        Cow::Owned(v) => match String::from_utf8(v) {
            Ok(s) => Cow::Owned(s),
            Err(e) => Cow::Owned(e.into_bytes().iter().map(|&c| c as char).collect()),
        },
    }
}

/// Strip the matching outer quotes of a protocol-0 STRING argument, as `_pickle.c load_string`.
fn unquote(line: &[u8]) -> Option<&[u8]> {
    let n = line.len();
    if n >= 2 && line[0] == line[n - 1] && (line[0] == b'\'' || line[0] == b'"') {
        Some(&line[1..n - 1])
    } else {
        None
    }
}

/// Python's `codecs.escape_decode` (used for protocol-0 STRING).
fn escape_decode(s: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    if !s.contains(&b'\\') {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = s.get(i) else {
            return Err("trailing \\ in string".into());
        };
        i += 1;
        match e {
            b'\n' => {}
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = (e - b'0') as u32;
                for _ in 0..2 {
                    match s.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let hex = s.get(i..i + 2).ok_or("invalid \\x escape")?;
                let h = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                out.push(h.ok_or("invalid \\x escape")?);
                i += 2;
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Ok(Cow::Owned(out))
}

/// Python's `raw-unicode-escape` decoding (used for protocol-0 UNICODE): only `\uXXXX` and
/// `\UXXXXXXXX` are escapes, every other byte is a latin-1 character.
fn raw_unicode_escape_decode(s: &[u8]) -> Result<Cow<'_, str>, String> {
    if s.is_ascii() && !s.contains(&b'\\') {
        // ASCII without escapes decodes to itself.
        return Ok(Cow::Borrowed(
            std::str::from_utf8(s).expect("ASCII is UTF-8"),
        ));
    }
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c != b'\\' {
            out.push(c as char);
            i += 1;
            continue;
        }
        // A run of backslashes: only an odd-length run before u/U starts an escape.
        let run = s[i..].iter().take_while(|&&b| b == b'\\').count();
        let next = s.get(i + run).copied();
        let escape = run % 2 == 1 && matches!(next, Some(b'u') | Some(b'U'));
        let literal = if escape { run - 1 } else { run };
        out.extend(std::iter::repeat_n('\\', literal));
        i += run;
        if escape {
            let width = if next == Some(b'u') { 4 } else { 8 };
            let hex = s
                .get(i + 1..i + 1 + width)
                .ok_or("truncated \\uXXXX escape")?;
            let v = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .ok_or("truncated \\uXXXX escape")?;
            if v > 0x10FFFF {
                return Err("\\Uxxxxxxxx out of range".into());
            }
            out.push(char::from_u32(v).unwrap_or('\u{FFFD}'));
            i += 1 + width;
        }
    }
    Ok(Cow::Owned(out))
}

/// UTF-8 text as the unpickler decodes it (`surrogatepass`): invalid sequences become U+FFFD.
pub fn utf8_text(b: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(data: &[u8]) -> Vec<Result<Op<'_>, DecodeError>> {
        Decoder::new(data, 0).collect()
    }

    #[test]
    fn decodes_protocol_2_ints_and_offsets() {
        let got = ops(b"\x80\x02K\x05J\xff\xff\xff\xff.");
        let got: Vec<_> = got.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(got[0].arg, Arg::Int(2));
        assert_eq!(got[1].arg, Arg::Int(5));
        assert_eq!(got[2].arg, Arg::Int(-1));
        assert_eq!(got[2].offset, 4);
        assert_eq!(got[3].code, Opcode::STOP);
    }

    #[test]
    fn huge_declared_length_is_truncation_not_allocation() {
        let got = ops(b"\x8e\xff\xff\xff\xff\xff\xff\xff\x7fabc");
        let err = got.into_iter().next().unwrap().unwrap_err();
        assert!(err.is_truncation(), "{err}");
    }

    #[test]
    fn protocol_0_string_escapes() {
        let got = ops(b"S'a\\x41\\n\\'b\\101'\n");
        assert_eq!(got[0].as_ref().unwrap().arg, Arg::Text("aA\n'bA".into()));
        let got = ops(b"Sunquoted\n");
        assert!(matches!(got[0], Err(DecodeError::BadArgument { .. })));
    }

    #[test]
    fn raw_unicode_escapes() {
        let got = ops(b"Vos\\u002esystem\\\\u0041\n");
        assert_eq!(
            got[0].as_ref().unwrap().arg,
            Arg::Text("os.system\\\\u0041".into())
        );
    }

    #[test]
    fn global_pair_and_invalid_opcode() {
        let got = ops(b"cos\nsystem\n\xff");
        assert_eq!(
            got[0].as_ref().unwrap().arg,
            Arg::Pair("os".into(), "system".into())
        );
        assert!(matches!(
            got[1],
            Err(DecodeError::InvalidOpcode {
                byte: 0xff,
                offset: 11
            })
        ));
    }
}

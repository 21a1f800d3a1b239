//! The pickle opcode table: every opcode of protocols 0–5, as listed by CPython's
//! `Lib/pickletools.py`, with the encoding of its inline argument.

/// How an opcode's inline argument is encoded (pickletools' `ArgumentDescriptor`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// No argument.
    None,
    /// Unsigned byte.
    U1,
    /// Unsigned 16-bit little-endian.
    U2,
    /// Signed 32-bit little-endian.
    I4,
    /// Unsigned 32-bit little-endian.
    U4,
    /// Unsigned 64-bit little-endian.
    U8,
    /// IEEE-754 double, big-endian.
    Float8,
    /// 1-byte length, then a little-endian two's-complement integer.
    Long1,
    /// Signed 4-byte length, then a little-endian two's-complement integer.
    Long4,
    /// 1-byte length, then bytes.
    Bytes1,
    /// Signed 4-byte length (BINSTRING) then bytes.
    SignedBytes4,
    /// Unsigned 4-byte length then bytes.
    Bytes4,
    /// Unsigned 8-byte length then bytes.
    Bytes8,
    /// A text line ending in `\n` (decimal, float, raw ASCII).
    Line,
    /// A Python-2 quoted string literal ending in `\n`.
    QuotedLine,
    /// A `raw-unicode-escape` line ending in `\n`.
    UnicodeLine,
    /// Two text lines: module and name.
    LinePair,
}

macro_rules! opcodes {
    ($($name:ident = $byte:literal, $arg:ident, $proto:literal;)*) => {
        /// A pickle opcode.
        #[allow(non_camel_case_types, missing_docs)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Opcode { $($name = $byte,)* }

        impl Opcode {
            /// The opcode for a byte, if the byte is one.
            pub fn from_byte(b: u8) -> Option<Opcode> {
                match b { $($byte => Some(Opcode::$name),)* _ => None }
            }
            /// The encoding of the inline argument.
            pub fn arg_kind(self) -> ArgKind {
                match self { $(Opcode::$name => ArgKind::$arg,)* }
            }
            /// The protocol that introduced the opcode.
            pub fn protocol(self) -> u8 {
                match self { $(Opcode::$name => $proto,)* }
            }
            /// The name pickletools gives the opcode.
            pub fn name(self) -> &'static str {
                match self { $(Opcode::$name => stringify!($name),)* }
            }
            /// Every opcode.
            pub const ALL: &'static [Opcode] = &[$(Opcode::$name,)*];
        }
    };
}

opcodes! {
    MARK = 0x28, None, 0;
    STOP = 0x2E, None, 0;
    POP = 0x30, None, 0;
    POP_MARK = 0x31, None, 1;
    DUP = 0x32, None, 0;
    FLOAT = 0x46, Line, 0;
    INT = 0x49, Line, 0;
    BININT = 0x4A, I4, 1;
    BININT1 = 0x4B, U1, 1;
    LONG = 0x4C, Line, 0;
    BININT2 = 0x4D, U2, 1;
    NONE = 0x4E, None, 0;
    PERSID = 0x50, Line, 0;
    BINPERSID = 0x51, None, 1;
    REDUCE = 0x52, None, 0;
    STRING = 0x53, QuotedLine, 0;
    BINSTRING = 0x54, SignedBytes4, 1;
    SHORT_BINSTRING = 0x55, Bytes1, 1;
    UNICODE = 0x56, UnicodeLine, 0;
    BINUNICODE = 0x58, Bytes4, 1;
    APPEND = 0x61, None, 0;
    BUILD = 0x62, None, 0;
    GLOBAL = 0x63, LinePair, 0;
    DICT = 0x64, None, 0;
    APPENDS = 0x65, None, 1;
    GET = 0x67, Line, 0;
    BINGET = 0x68, U1, 1;
    INST = 0x69, LinePair, 0;
    LONG_BINGET = 0x6A, U4, 1;
    LIST = 0x6C, None, 0;
    OBJ = 0x6F, None, 1;
    PUT = 0x70, Line, 0;
    BINPUT = 0x71, U1, 1;
    LONG_BINPUT = 0x72, U4, 1;
    SETITEM = 0x73, None, 0;
    TUPLE = 0x74, None, 0;
    SETITEMS = 0x75, None, 1;
    EMPTY_TUPLE = 0x29, None, 1;
    EMPTY_LIST = 0x5D, None, 1;
    EMPTY_DICT = 0x7D, None, 1;
    BINFLOAT = 0x47, Float8, 1;
    PROTO = 0x80, U1, 2;
    NEWOBJ = 0x81, None, 2;
    EXT1 = 0x82, U1, 2;
    EXT2 = 0x83, U2, 2;
    EXT4 = 0x84, I4, 2;
    TUPLE1 = 0x85, None, 2;
    TUPLE2 = 0x86, None, 2;
    TUPLE3 = 0x87, None, 2;
    NEWTRUE = 0x88, None, 2;
    NEWFALSE = 0x89, None, 2;
    LONG1 = 0x8A, Long1, 2;
    LONG4 = 0x8B, Long4, 2;
    BINBYTES = 0x42, Bytes4, 3;
    SHORT_BINBYTES = 0x43, Bytes1, 3;
    SHORT_BINUNICODE = 0x8C, Bytes1, 4;
    BINUNICODE8 = 0x8D, Bytes8, 4;
    BINBYTES8 = 0x8E, Bytes8, 4;
    EMPTY_SET = 0x8F, None, 4;
    ADDITEMS = 0x90, None, 4;
    FROZENSET = 0x91, None, 4;
    NEWOBJ_EX = 0x92, None, 4;
    STACK_GLOBAL = 0x93, None, 4;
    MEMOIZE = 0x94, None, 4;
    FRAME = 0x95, U8, 4;
    BYTEARRAY8 = 0x96, Bytes8, 5;
    NEXT_BUFFER = 0x97, None, 5;
    READONLY_BUFFER = 0x98, None, 5;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_all_68_opcodes_with_unique_bytes() {
        assert_eq!(Opcode::ALL.len(), 68);
        for &op in Opcode::ALL {
            assert_eq!(Opcode::from_byte(op as u8), Some(op));
        }
        let known = (0u8..=255)
            .filter(|&b| Opcode::from_byte(b).is_some())
            .count();
        assert_eq!(known, 68);
    }
}

//! Symbolic values: what the stack, the memo and every container hold.
//!
//! Values live in an arena and refer to each other by [`Id`], so a memo entry fetched a million
//! times, or a list appended to itself, costs one index each time. Nothing here is ever executed:
//! an object produced by a call is a record of the call.

use std::borrow::Cow;

/// Index of a value in the arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub u32);

/// How an object came to be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// REDUCE: `callable(*args)`.
    Reduce,
    /// INST: `klass(*args)` with the class named inline.
    Inst,
    /// OBJ: `klass(*args)` with the class from the stack.
    Obj,
    /// NEWOBJ: `cls.__new__(cls, *args)`.
    NewObj,
    /// NEWOBJ_EX: `cls.__new__(cls, *args, **kwargs)`.
    NewObjEx,
}

impl CallKind {
    /// True for the opcodes that create an instance of a class rather than call a function.
    pub fn is_instantiation(self) -> bool {
        !matches!(self, CallKind::Reduce)
    }
}

/// An object produced by calling something, and everything done to it afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// How it was created.
    pub kind: CallKind,
    /// The callable or class.
    pub func: Id,
    /// The positional arguments (a tuple value).
    pub args: Id,
    /// Keyword arguments (NEWOBJ_EX only; a dict value).
    pub kwargs: Option<Id>,
    /// Offset of the creating opcode.
    pub offset: u64,
    /// State given by BUILD, if any (the last one wins, as `__setstate__` would see it).
    pub state: Option<Id>,
    /// Items added by APPEND/APPENDS/ADDITEMS.
    pub items: Vec<Id>,
    /// Pairs added by SETITEM/SETITEMS.
    pub pairs: Vec<(Id, Id)>,
}

/// A global reference as the unpickler would resolve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// Module after Python-2 name mapping.
    pub module: String,
    /// Attribute name (dotted at protocol ≥ 4 means an attribute walk).
    pub name: String,
    /// Offset of the importing opcode.
    pub offset: u64,
    /// How the name reached the unpickler (GLOBAL, STACK_GLOBAL, INST, EXT*).
    pub via: &'static str,
}

impl Global {
    /// `module.name`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

/// One symbolic value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// `None`.
    None,
    /// `True`/`False`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A larger integer: little-endian two's complement bytes.
    BigInt(&'a [u8]),
    /// An integer given as text too large for 64 bits (protocol 0).
    BigText(Box<str>),
    /// A float.
    Float(f64),
    /// A text string.
    Str(Cow<'a, str>),
    /// A bytes object (a slice of the input).
    Bytes(&'a [u8]),
    /// A bytearray (a slice of the input).
    ByteArray(&'a [u8]),
    /// A tuple.
    Tuple(Vec<Id>),
    /// A list built by pickle opcodes.
    List(Vec<Id>),
    /// A dict built by pickle opcodes.
    Dict(Vec<(Id, Id)>),
    /// A set built by pickle opcodes.
    Set(Vec<Id>),
    /// A frozenset.
    FrozenSet(Vec<Id>),
    /// An imported global (index into the VM's globals table).
    Global(u32),
    /// The result of a call.
    Object(Box<Object>),
    /// The result of `persistent_load(pid)`.
    Persistent {
        /// The persistent id.
        pid: Id,
        /// Offset of the PERSID/BINPERSID opcode.
        offset: u64,
    },
    /// An out-of-band buffer (NEXT_BUFFER).
    Buffer,
}

impl<'a> Value<'a> {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one that fits in 64 bits.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    /// The Python type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) | Value::BigText(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::ByteArray(_) => "bytearray",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Set(_) => "set",
            Value::FrozenSet(_) => "frozenset",
            Value::Global(_) => "global",
            Value::Object(_) => "object",
            Value::Persistent { .. } => "persistent object",
            Value::Buffer => "buffer",
        }
    }

    /// The elements, if this is a tuple or list.
    pub fn as_seq(&self) -> Option<&[Id]> {
        match self {
            Value::Tuple(v) | Value::List(v) => Some(v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_stay_small() {
        // The arena holds millions of these on large pickles.
        assert!(std::mem::size_of::<super::Value<'static>>() <= 32);
    }
}

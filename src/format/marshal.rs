//! Python's `marshal` format as CPython 3.8–3.13 write code objects (Keras Lambda layers keep
//! `marshal.dumps(function.__code__)` in their configs), read without Python: every type code of
//! `Python/marshal.c` (`w_object`/`r_object`), the reference table (`FLAG_REF`, `TYPE_REF`), and
//! code objects in both layouts:
//!
//! * 3.8–3.10: argcount, posonlyargcount, kwonlyargcount, nlocals, stacksize, flags, code,
//!   consts, names, varnames, freevars, cellvars, filename, name, firstlineno, lnotab;
//! * 3.11–3.13: argcount, posonlyargcount, kwonlyargcount, stacksize, flags, code, consts,
//!   names, localsplusnames, localspluskinds, filename, name, qualname, firstlineno, linetable,
//!   exceptiontable.
//!
//! The data does not say which Python wrote it: both layouts are tried, and the one that reads
//! the whole input wins. Nothing is executed or imported; sizes are checked against the bytes
//! left before anything is allocated; nesting and object counts are limited.

/// Deepest nesting read.
pub const MAX_DEPTH: usize = 200;
/// Most objects read.
pub const MAX_OBJECTS: usize = 1_000_000;

/// Why the data could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarshalError {
    /// The data ends inside an object.
    #[error("the data ends inside an object at offset {0}")]
    Truncated(usize),
    /// A type code marshal does not write.
    #[error("unknown type code {code:#04x} at offset {at}")]
    UnknownType {
        /// The code.
        code: u8,
        /// Its offset.
        at: usize,
    },
    /// A reference to an object not read yet.
    #[error("reference {0} to an object not read")]
    BadRef(u32),
    /// A size that cannot be right (negative, or more than the bytes left).
    #[error("bad size {size} at offset {at}")]
    BadSize {
        /// The size.
        size: i64,
        /// Its offset.
        at: usize,
    },
    /// Bytes after the top-level object.
    #[error("{0} bytes after the object")]
    Trailing(usize),
    /// Nesting or object count over the limits.
    #[error("{0}")]
    Limit(String),
    /// The top-level object is not a code object.
    #[error("not a code object")]
    NotCode,
}

/// A marshalled value, as far as judging code needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`, `Ellipsis`, `StopIteration` and the internal null.
    Singleton(&'static str),
    /// `True` / `False`.
    Bool(bool),
    /// An integer (`None` when it does not fit 64 bits).
    Int(Option<i64>),
    /// A float (complex numbers keep their real part).
    Float(f64),
    /// `bytes` (a code object's bytecode among them).
    Bytes(Vec<u8>),
    /// `str`.
    Str(String),
    /// tuple, list, set or frozenset.
    Seq(Vec<Value>),
    /// dict.
    Dict(Vec<(Value, Value)>),
    /// A code object.
    Code(Box<Code>),
}

/// A code object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Code {
    /// `co_name`.
    pub name: String,
    /// `co_qualname` (3.11+; `co_name` before).
    pub qualname: String,
    /// `co_filename`.
    pub filename: String,
    /// `co_names`: globals, attributes and modules the bytecode refers to.
    pub names: Vec<String>,
    /// Local, cell and free variable names.
    pub locals: Vec<String>,
    /// `co_consts`, nested code objects included.
    pub consts: Vec<Value>,
    /// The bytecode.
    pub bytecode: Vec<u8>,
}

impl Code {
    /// This code object and every code object nested in its constants, depth first.
    pub fn all(&self) -> Vec<&Code> {
        let mut out = vec![self];
        let mut i = 0;
        while i < out.len() {
            let c = out[i];
            for v in &c.consts {
                collect_code(v, &mut out);
            }
            i += 1;
        }
        out
    }
}

fn collect_code<'a>(v: &'a Value, out: &mut Vec<&'a Code>) {
    match v {
        Value::Code(c) => out.push(c),
        Value::Seq(items) => items.iter().for_each(|x| collect_code(x, out)),
        Value::Dict(items) => items.iter().for_each(|(k, x)| {
            collect_code(k, out);
            collect_code(x, out);
        }),
        _ => {}
    }
}

/// Which code-object layout the data has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// CPython 3.8–3.10.
    Py38,
    /// CPython 3.11–3.13.
    Py311,
}

impl Layout {
    /// The Python versions that write it.
    pub fn versions(self) -> &'static str {
        match self {
            Layout::Py38 => "3.8–3.10",
            Layout::Py311 => "3.11–3.13",
        }
    }
}

/// Read a marshalled code object (the whole of `data`), trying both layouts.
pub fn read_code(data: &[u8]) -> Result<(Code, Layout), MarshalError> {
    let mut first_err = None;
    for layout in [Layout::Py311, Layout::Py38] {
        match read_with(data, layout) {
            Ok(Value::Code(c)) => return Ok((*c, layout)),
            Ok(_) => return Err(MarshalError::NotCode),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or(MarshalError::NotCode))
}

fn read_with(data: &[u8], layout: Layout) -> Result<Value, MarshalError> {
    let mut r = Reader {
        data,
        pos: 0,
        refs: Vec::new(),
        objects: 0,
        layout,
    };
    let v = r.object(0)?;
    if r.pos != data.len() {
        return Err(MarshalError::Trailing(data.len() - r.pos));
    }
    Ok(v)
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Objects flagged for reference, in order; `None` while a container is being read.
    refs: Vec<Option<Value>>,
    objects: usize,
    layout: Layout,
}

const FLAG_REF: u8 = 0x80;

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> Result<&[u8], MarshalError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(MarshalError::Truncated(self.pos))?;
        let b = &self.data[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn u8(&mut self) -> Result<u8, MarshalError> {
        Ok(self.bytes(1)?[0])
    }

    fn i32(&mut self) -> Result<i32, MarshalError> {
        let b = self.bytes(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A length or count: not negative, and each item needs at least `min_item` bytes.
    fn size(&mut self, min_item: usize) -> Result<usize, MarshalError> {
        let at = self.pos;
        let n = self.i32()?;
        let left = self.data.len() - self.pos;
        if n < 0 || (n as usize).saturating_mul(min_item) > left {
            return Err(MarshalError::BadSize { size: n as i64, at });
        }
        Ok(n as usize)
    }

    fn text(&mut self, n: usize) -> Result<String, MarshalError> {
        Ok(String::from_utf8_lossy(self.bytes(n)?).into_owned())
    }

    fn object(&mut self, depth: usize) -> Result<Value, MarshalError> {
        if depth > MAX_DEPTH {
            return Err(MarshalError::Limit(format!(
                "nested deeper than {MAX_DEPTH}"
            )));
        }
        self.objects += 1;
        if self.objects > MAX_OBJECTS {
            return Err(MarshalError::Limit(format!(
                "more than {MAX_OBJECTS} objects"
            )));
        }
        let at = self.pos;
        let raw = self.u8()?;
        let flagged = raw & FLAG_REF != 0;
        let code = raw & !FLAG_REF;
        // Containers and code take their reference slot before their contents (r_ref_reserve).
        let slot = if flagged {
            self.refs.push(None);
            Some(self.refs.len() - 1)
        } else {
            None
        };
        let v = match code {
            b'0' => Value::Singleton("NULL"),
            b'N' => Value::Singleton("None"),
            b'.' => Value::Singleton("Ellipsis"),
            b'S' => Value::Singleton("StopIteration"),
            b'F' => Value::Bool(false),
            b'T' => Value::Bool(true),
            b'i' => Value::Int(Some(self.i32()? as i64)),
            b'I' => {
                let b = self.bytes(8)?;
                Value::Int(Some(i64::from_le_bytes(b.try_into().expect("8 bytes"))))
            }
            b'l' => self.long()?,
            b'f' => {
                let n = self.u8()? as usize;
                Value::Float(self.text(n)?.parse().unwrap_or(f64::NAN))
            }
            b'g' => {
                let b = self.bytes(8)?;
                Value::Float(f64::from_le_bytes(b.try_into().expect("8 bytes")))
            }
            b'x' => {
                let n = self.u8()? as usize;
                let re = self.text(n)?.parse().unwrap_or(f64::NAN);
                let n = self.u8()? as usize;
                self.bytes(n)?;
                Value::Float(re)
            }
            b'y' => {
                let b = self.bytes(16)?;
                Value::Float(f64::from_le_bytes(b[..8].try_into().expect("8 bytes")))
            }
            b's' => {
                let n = self.size(1)?;
                Value::Bytes(self.bytes(n)?.to_vec())
            }
            b't' | b'u' | b'a' | b'A' => {
                let n = self.size(1)?;
                Value::Str(self.text(n)?)
            }
            b'z' | b'Z' => {
                let n = self.u8()? as usize;
                Value::Str(self.text(n)?)
            }
            b'r' => {
                let i = self.i32()? as u32;
                return match self.refs.get(i as usize) {
                    Some(Some(v)) => Ok(v.clone()),
                    // A reference into a container still being read (a cycle): its contents
                    // are judged where they are read.
                    Some(None) => Ok(Value::Singleton("cycle")),
                    None => Err(MarshalError::BadRef(i)),
                };
            }
            b'(' | b'[' | b'<' | b'>' => {
                let n = self.size(1)?;
                self.seq(n, depth)?
            }
            b')' => {
                let n = self.u8()? as usize;
                self.seq(n, depth)?
            }
            b'{' => {
                let mut items = Vec::new();
                loop {
                    let k = self.object(depth + 1)?;
                    if k == Value::Singleton("NULL") {
                        break;
                    }
                    let v = self.object(depth + 1)?;
                    items.push((k, v));
                }
                Value::Dict(items)
            }
            b'c' => self.code(depth)?,
            other => return Err(MarshalError::UnknownType { code: other, at }),
        };
        if let Some(i) = slot {
            self.refs[i] = Some(v.clone());
        }
        Ok(v)
    }

    fn seq(&mut self, n: usize, depth: usize) -> Result<Value, MarshalError> {
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.object(depth + 1)?);
        }
        Ok(Value::Seq(items))
    }

    /// `TYPE_LONG`: a signed digit count, then 15-bit digits, least significant first.
    fn long(&mut self) -> Result<Value, MarshalError> {
        let at = self.pos;
        let n = self.i32()?;
        let digits = n.unsigned_abs() as usize;
        if digits.saturating_mul(2) > self.data.len() - self.pos {
            return Err(MarshalError::BadSize { size: n as i64, at });
        }
        let mut v: Option<i64> = Some(0);
        for i in 0..digits {
            let b = self.bytes(2)?;
            let d = u16::from_le_bytes([b[0], b[1]]) as i64;
            v = v.and_then(|acc| {
                let shift = 15 * i as u32;
                if shift >= 63 {
                    if d == 0 {
                        Some(acc)
                    } else {
                        None
                    }
                } else {
                    d.checked_shl(shift).and_then(|x| acc.checked_add(x))
                }
            });
        }
        Ok(Value::Int(v.map(|x| if n < 0 { -x } else { x })))
    }

    fn code(&mut self, depth: usize) -> Result<Value, MarshalError> {
        let ints = match self.layout {
            Layout::Py38 => 6,
            Layout::Py311 => 5,
        };
        for _ in 0..ints {
            self.i32()?;
        }
        let mut c = Code::default();
        let obj = |r: &mut Self| r.object(depth + 1);
        c.bytecode = match obj(self)? {
            Value::Bytes(b) => b,
            _ => return Err(MarshalError::NotCode),
        };
        c.consts = seq_of(obj(self)?)?;
        c.names = strings(obj(self)?)?;
        match self.layout {
            Layout::Py38 => {
                for _ in 0..3 {
                    c.locals.extend(strings(obj(self)?)?); // varnames, freevars, cellvars
                }
                c.filename = string(obj(self)?)?;
                c.name = string(obj(self)?)?;
                c.qualname = c.name.clone();
                self.i32()?; // firstlineno
                obj(self)?; // lnotab / linetable
            }
            Layout::Py311 => {
                c.locals = strings(obj(self)?)?; // localsplusnames
                obj(self)?; // localspluskinds
                c.filename = string(obj(self)?)?;
                c.name = string(obj(self)?)?;
                c.qualname = string(obj(self)?)?;
                self.i32()?; // firstlineno
                obj(self)?; // linetable
                obj(self)?; // exceptiontable
            }
        }
        Ok(Value::Code(Box::new(c)))
    }
}

fn seq_of(v: Value) -> Result<Vec<Value>, MarshalError> {
    match v {
        Value::Seq(items) => Ok(items),
        _ => Err(MarshalError::NotCode),
    }
}

fn string(v: Value) -> Result<String, MarshalError> {
    match v {
        Value::Str(s) => Ok(s),
        _ => Err(MarshalError::NotCode),
    }
}

fn strings(v: Value) -> Result<Vec<String>, MarshalError> {
    seq_of(v)?.into_iter().map(string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3.11-layout code object for `lambda: os` written by hand: names ('os',), no consts.
    fn code_311(names: &[&str]) -> Vec<u8> {
        let mut v = vec![b'c' | FLAG_REF];
        for _ in 0..5 {
            v.extend_from_slice(&0i32.to_le_bytes());
        }
        v.push(b's');
        v.extend_from_slice(&2i32.to_le_bytes());
        v.extend_from_slice(&[0x97, 0x00]);
        v.extend_from_slice(&[b')', 1, b'N']); // consts (None,)
        v.extend_from_slice(&[b')', names.len() as u8]);
        for n in names {
            v.push(b'Z');
            v.push(n.len() as u8);
            v.extend_from_slice(n.as_bytes());
        }
        v.extend_from_slice(&[b')', 0]); // localsplusnames
        v.extend_from_slice(&[b's', 0, 0, 0, 0]); // localspluskinds
        for s in ["<f>", "<lambda>", "<lambda>"] {
            v.push(b'z');
            v.push(s.len() as u8);
            v.extend_from_slice(s.as_bytes());
        }
        v.extend_from_slice(&1i32.to_le_bytes());
        v.extend_from_slice(&[b's', 0, 0, 0, 0]); // linetable
        v.extend_from_slice(&[b'r', 0, 0, 0, 0]); // exceptiontable: a reference (to the code)
        v
    }

    /// The same in the 3.8–3.10 layout: six counts, varnames/freevars/cellvars, no qualname,
    /// lnotab last.
    fn code_38(names: &[&str]) -> Vec<u8> {
        let mut v = vec![b'c'];
        for _ in 0..6 {
            v.extend_from_slice(&0i32.to_le_bytes());
        }
        v.push(b's');
        v.extend_from_slice(&2i32.to_le_bytes());
        v.extend_from_slice(&[0x64, 0x00]);
        v.extend_from_slice(&[b')', 1, b'N']);
        v.extend_from_slice(&[b')', names.len() as u8]);
        for n in names {
            v.push(b'Z');
            v.push(n.len() as u8);
            v.extend_from_slice(n.as_bytes());
        }
        v.extend_from_slice(&[b')', 1, b'Z', 1, b'x']); // varnames ('x',)
        v.extend_from_slice(&[b')', 0, b')', 0]); // freevars, cellvars
        for s in ["<f>", "<lambda>"] {
            v.push(b'z');
            v.push(s.len() as u8);
            v.extend_from_slice(s.as_bytes());
        }
        v.extend_from_slice(&1i32.to_le_bytes());
        v.extend_from_slice(&[b's', 0, 0, 0, 0]); // lnotab
        v
    }

    #[test]
    fn reads_a_38_code_object() {
        let (c, layout) = read_code(&code_38(&["eval"])).unwrap();
        assert_eq!(layout, Layout::Py38);
        assert_eq!(c.names, vec!["eval"]);
        assert_eq!(c.locals, vec!["x"]);
        assert_eq!(c.qualname, "<lambda>");
    }

    #[test]
    fn reads_a_311_code_object() {
        let (c, layout) = read_code(&code_311(&["os", "system"])).unwrap();
        assert_eq!(layout, Layout::Py311);
        assert_eq!(c.names, vec!["os", "system"]);
        assert_eq!(c.name, "<lambda>");
    }

    #[test]
    fn damaged_data_is_an_error() {
        let good = code_311(&["x"]);
        for cut in 0..good.len() {
            assert!(read_code(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = vec![b'('];
        huge.extend_from_slice(&i32::MAX.to_le_bytes());
        assert!(matches!(
            read_code(&huge),
            Err(MarshalError::BadSize { .. })
        ));
        assert!(matches!(
            read_code(&[b'r', 5, 0, 0, 0]),
            Err(MarshalError::BadRef(5))
        ));
    }

    #[test]
    fn deep_nesting_is_limited() {
        let data: Vec<u8> = std::iter::repeat_n([b')', 1], 10_000).flatten().collect();
        assert!(matches!(read_code(&data), Err(MarshalError::Limit(_))));
    }
}

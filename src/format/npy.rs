//! numpy `.npy`: the magic, a version, and a header that is a Python literal (a dict of
//! `descr`, `fortran_order`, `shape`), read with a small literal reader, never evaluated.

use super::numpy::NpDtype;

/// Why a `.npy` header cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NpyError {
    /// No `.npy` magic, or fewer bytes than the fixed part.
    #[error("not a .npy header")]
    NotNpy,
    /// A version numpy does not write.
    #[error("unsupported .npy version {0}.{1}")]
    Version(u8, u8),
    /// A header longer than [`MAX_HEADER`].
    #[error("header of {0} bytes is larger than {MAX_HEADER}")]
    HeaderTooLong(usize),
    /// The header literal does not parse.
    #[error("{what} at header character {at}")]
    Literal {
        /// What is wrong.
        what: &'static str,
        /// Where, in characters of the header.
        at: usize,
    },
    /// A dtype string numpy does not know.
    #[error("unknown dtype '{0}'")]
    UnknownDtype(String),
    /// The header is cut off, or not the dict numpy writes.
    #[error("{0}")]
    Header(&'static str),
}

/// Headers longer than this are not parsed (numpy itself refuses more than 10 000 characters
/// unless `allow_pickle=True`).
pub const MAX_HEADER: usize = 1 << 20;

/// A Python literal as found in `.npy` headers.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// `'…'` or `"…"`.
    Str(String),
    /// An integer.
    Int(i128),
    /// `True`/`False`.
    Bool(bool),
    /// `None`.
    None,
    /// `( … )`.
    Tuple(Vec<Lit>),
    /// `[ … ]`.
    List(Vec<Lit>),
    /// `{ … }`.
    Dict(Vec<(Lit, Lit)>),
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }
    fn err<T>(&self, what: &'static str) -> Result<T, NpyError> {
        Err(NpyError::Literal { what, at: self.i })
    }
    fn value(&mut self) -> Result<Lit, NpyError> {
        self.depth += 1;
        if self.depth > 64 {
            return self.err("header nested too deeply");
        }
        let v = match self.peek() {
            Some(b'\'') | Some(b'"') => self.string(),
            Some(b'(') => self.seq(b')').map(Lit::Tuple),
            Some(b'[') => self.seq(b']').map(Lit::List),
            Some(b'{') => self.dict(),
            Some(c) if c == b'-' || c.is_ascii_digit() => self.int(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i].is_ascii_alphanumeric() {
                    self.i += 1;
                }
                match &self.s[start..self.i] {
                    b"True" => Ok(Lit::Bool(true)),
                    b"False" => Ok(Lit::Bool(false)),
                    b"None" => Ok(Lit::None),
                    _ => self.err("unexpected name"),
                }
            }
            _ => self.err("unexpected character"),
        };
        self.depth -= 1;
        v
    }
    fn string(&mut self) -> Result<Lit, NpyError> {
        let q = self.s[self.i];
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.i) {
            self.i += 1;
            if c == q {
                return Ok(Lit::Str(String::from_utf8_lossy(&out).into_owned()));
            }
            if c == b'\\' {
                let Some(&e) = self.s.get(self.i) else { break };
                self.i += 1;
                out.push(match e {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'0' => 0,
                    other => other,
                });
            } else {
                out.push(c);
            }
        }
        self.err("unterminated string")
    }
    fn int(&mut self) -> Result<Lit, NpyError> {
        let start = self.i;
        if self.s[self.i] == b'-' {
            self.i += 1;
        }
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        // Python 2 long suffix.
        if matches!(self.s.get(self.i), Some(b'L') | Some(b'l')) {
            self.i += 1;
        }
        text.parse::<i128>()
            .map(Lit::Int)
            .or_else(|_| self.err("bad integer"))
    }
    fn seq(&mut self, close: u8) -> Result<Vec<Lit>, NpyError> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok(items);
            }
            items.push(self.value()?);
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(c) if c == close => {}
                _ => return self.err("expected ',' or closing bracket"),
            }
        }
    }
    fn dict(&mut self) -> Result<Lit, NpyError> {
        self.i += 1;
        let mut pairs = Vec::new();
        loop {
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Ok(Lit::Dict(pairs));
            }
            let k = self.value()?;
            if self.peek() != Some(b':') {
                return self.err("expected ':'");
            }
            self.i += 1;
            let v = self.value()?;
            pairs.push((k, v));
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return self.err("expected ',' or '}'"),
            }
        }
    }
}

/// Parse one Python literal (the whole text, trailing whitespace allowed).
pub fn parse_literal(text: &[u8]) -> Result<Lit, NpyError> {
    let mut p = P {
        s: text,
        i: 0,
        depth: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.i != text.len() {
        return p.err("trailing characters");
    }
    Ok(v)
}

/// Item size and object-ness of a `descr` (typestr or structured list).
pub fn descr_info(d: &Lit) -> Result<(u64, bool), NpyError> {
    use NpyError::Header as bad;
    match d {
        Lit::Str(s) => {
            let d = NpDtype::parse(s).ok_or_else(|| NpyError::UnknownDtype(s.clone()))?;
            Ok((d.itemsize, d.has_object()))
        }
        Lit::List(fields) => {
            let mut total: u64 = 0;
            let mut obj = false;
            for f in fields {
                let Lit::Tuple(parts) = f else {
                    return Err(bad("structured dtype field is not a tuple"));
                };
                let (size, o) = descr_info(parts.get(1).ok_or(bad("field without dtype"))?)?;
                let mut count: u64 = 1;
                match parts.get(2) {
                    None => {}
                    Some(Lit::Int(n)) => {
                        count = u64::try_from(*n).map_err(|_| bad("bad field shape"))?
                    }
                    Some(Lit::Tuple(dims)) => {
                        for d in dims {
                            let Lit::Int(n) = d else {
                                return Err(bad("bad field shape"));
                            };
                            let n = u64::try_from(*n).map_err(|_| bad("bad field shape"))?;
                            count = count.checked_mul(n).ok_or(bad("field shape overflows"))?;
                        }
                    }
                    Some(_) => return Err(bad("bad field shape")),
                }
                total = size
                    .checked_mul(count)
                    .and_then(|b| total.checked_add(b))
                    .ok_or(bad("structured dtype size overflows"))?;
                obj |= o;
            }
            Ok((total, obj))
        }
        _ => Err(bad("descr is neither a string nor a list")),
    }
}

/// The parsed header of a `.npy`.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Format version (1, 2 or 3).
    pub major: u8,
    /// Offset of the data.
    pub data_start: usize,
    /// Item size in bytes.
    pub itemsize: u64,
    /// True when the data are a pickle.
    pub has_object: bool,
    /// The shape.
    pub shape: Vec<u64>,
    /// Column-major data.
    pub fortran_order: bool,
}

/// Parse the header of a `.npy`.
pub fn parse_header(data: &[u8]) -> Result<Header, NpyError> {
    use NpyError::Header as bad;
    if !data.starts_with(b"\x93NUMPY") || data.len() < 10 {
        return Err(NpyError::NotNpy);
    }
    let major = data[6];
    let (len, start) = match major {
        1 => (u16::from_le_bytes([data[8], data[9]]) as usize, 10),
        2 | 3 => {
            let b = data.get(8..12).ok_or(bad("header length cut off"))?;
            (
                u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize,
                12,
            )
        }
        v => return Err(NpyError::Version(v, data[7])),
    };
    if len > MAX_HEADER {
        return Err(NpyError::HeaderTooLong(len));
    }
    let text = data
        .get(start..start + len)
        .ok_or(bad("header runs past the end of the file"))?;
    let Lit::Dict(pairs) = parse_literal(text)? else {
        return Err(bad("header is not a dict"));
    };
    let get = |k: &str| {
        pairs
            .iter()
            .rev()
            .find(|(key, _)| *key == Lit::Str(k.into()))
            .map(|(_, v)| v)
    };
    if pairs.len() != 3 {
        return Err(bad(
            "header does not contain exactly the keys descr, fortran_order, shape",
        ));
    }
    let descr = get("descr").ok_or(bad("header without descr"))?;
    let fortran_order = match get("fortran_order") {
        Some(Lit::Bool(b)) => *b,
        _ => return Err(bad("fortran_order is not a bool")),
    };
    let shape = match get("shape") {
        Some(Lit::Tuple(dims)) => dims
            .iter()
            .map(|d| match d {
                Lit::Int(n) => u64::try_from(*n).map_err(|_| bad("negative dimension")),
                _ => Err(bad("shape holds a non-integer")),
            })
            .collect::<Result<Vec<u64>, NpyError>>()?,
        _ => return Err(bad("shape is not a tuple")),
    };
    let (itemsize, has_object) = descr_info(descr)?;
    Ok(Header {
        major,
        data_start: start + len,
        itemsize,
        has_object,
        shape,
        fortran_order,
    })
}

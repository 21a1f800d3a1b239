//! A minimal zero-copy tar reader (v7, ustar, GNU long names, pax headers), as lenient as
//! Python's `tarfile`, which `torch.load` tries on every non-zip file.

/// One regular-file member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member<'a> {
    /// Member name (pax `path` or GNU long name when present).
    pub name: String,
    /// File offset of the data.
    pub offset: u64,
    /// The data.
    pub data: &'a [u8],
}

/// The members of a tar archive, and a problem that stopped the walk if any.
#[derive(Debug, Clone, Default)]
pub struct Listing<'a> {
    /// Regular files in order.
    pub members: Vec<Member<'a>>,
    /// Why the walk stopped before the end-of-archive blocks, if it did.
    pub error: Option<String>,
}

fn checksum_ok(h: &[u8]) -> bool {
    let Some(stored) = octal(&h[148..156]) else {
        return false;
    };
    // The checksum field itself counts as eight spaces.
    let (mut sum, mut high) = (8 * 32u64, 0u64);
    for (i, &b) in h.iter().enumerate() {
        if !(148..156).contains(&i) {
            sum += u64::from(b);
            high += u64::from(b >> 7);
        }
    }
    // Some old writers summed signed chars: each byte of 0x80 and above counts 256 less.
    let signed = sum as i64 - 256 * high as i64;
    stored == sum || stored as i64 == signed
}

/// True when `data` starts with a tar header (ustar magic, or a v7 header with a valid checksum).
pub fn looks_like(data: &[u8]) -> bool {
    if data.len() < 512 {
        return false;
    }
    let h = &data[..512];
    if &h[257..262] == b"ustar" {
        return true;
    }
    h.iter().any(|&b| b != 0) && h[0] != 0 && checksum_ok(h)
}

fn octal(field: &[u8]) -> Option<u64> {
    // GNU base-256 for large values.
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let s: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let s = s.trim();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// One header of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Type flag.
    pub typeflag: u8,
    /// Name in the header (with its ustar prefix).
    pub name: String,
    /// Declared size of the data, which follow the header's 512 bytes.
    pub size: u64,
}

/// What the walk finds at a header position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An end-of-archive block (all zeros): the walk ends.
    End,
    /// A header.
    Header(Header),
    /// Not a header: why the walk stops.
    Bad(String),
}

/// Read the 512-byte header at `pos` (`pos + 512 <= data.len()`).
pub fn step(data: &[u8], pos: usize) -> Step {
    let h = &data[pos..pos + 512];
    if h.iter().all(|&b| b == 0) {
        return Step::End;
    }
    if !checksum_ok(h) {
        return Step::Bad(format!("bad tar header checksum at offset {pos}"));
    }
    let Some(size) = octal(&h[124..136]) else {
        return Step::Bad(format!("bad size field at offset {pos}"));
    };
    let mut name = cstr(&h[0..100]);
    if &h[257..262] == b"ustar" {
        let prefix = cstr(&h[345..500]);
        if !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
    }
    Step::Header(Header {
        typeflag: h[156],
        name,
        size,
    })
}

/// True for the type flags of regular files.
pub fn is_member(typeflag: u8) -> bool {
    matches!(typeflag, b'0' | 0 | b'7')
}

/// Offset of the header after one at `pos` whose data are `size` bytes (`None` past `u64`).
pub fn next_header(pos: u64, size: u64) -> Option<u64> {
    size.div_ceil(512)
        .checked_mul(512)
        .and_then(|n| n.checked_add(pos + 512))
}

/// A name carried from a GNU long-name or pax record to the next regular member.
#[derive(Debug, Clone, Default)]
pub struct LongName(Option<String>);

impl LongName {
    /// Take in a record that is not a regular member, with its data.
    pub fn record(&mut self, typeflag: u8, body: &[u8]) {
        match typeflag {
            b'L' => self.0 = Some(cstr(body)),
            b'x' => {
                // pax extended header: "len key=value\n" records.
                let text = String::from_utf8_lossy(body);
                for rec in text.split('\n') {
                    if let Some((_, kv)) = rec.split_once(' ') {
                        if let Some(p) = kv.strip_prefix("path=") {
                            self.0 = Some(p.to_string());
                        }
                    }
                }
            }
            _ => self.0 = None,
        }
    }

    /// The name of a regular member whose header says `name`.
    pub fn member(&mut self, name: String) -> String {
        self.0.take().unwrap_or(name)
    }
}

/// True when the archive has the members of torch's oldest format (`storages`, `tensors`,
/// `pickle`): its scanner then reads them as torch does.
pub fn is_torch(listing: &Listing<'_>) -> bool {
    ["storages", "tensors", "pickle"]
        .iter()
        .all(|n| listing.members.iter().any(|m| m.name == *n))
}

/// Walk the archive. At most `max_members` regular files are listed.
pub fn list(data: &[u8], max_members: usize) -> Listing<'_> {
    let mut out = Listing::default();
    let mut pos = 0usize;
    let mut long = LongName::default();
    while pos + 512 <= data.len() {
        let h = match step(data, pos) {
            Step::End => return out,
            Step::Bad(e) => {
                out.error = Some(e);
                return out;
            }
            Step::Header(h) => h,
        };
        let start = pos + 512;
        let Some(end) = usize::try_from(h.size)
            .ok()
            .and_then(|s| start.checked_add(s))
        else {
            out.error = Some(format!("member at offset {pos} is too large"));
            return out;
        };
        if end > data.len() {
            out.error = Some(format!(
                "member at offset {pos} ({} bytes) runs past the end of the file",
                h.size
            ));
            return out;
        }
        let body = &data[start..end];
        if is_member(h.typeflag) {
            if out.members.len() >= max_members {
                out.error = Some(format!("more than {max_members} members"));
                return out;
            }
            out.members.push(Member {
                name: long.member(h.name),
                offset: start as u64,
                data: body,
            });
        } else {
            long.record(h.typeflag, body);
        }
        pos = start + h.size.div_ceil(512) as usize * 512;
    }
    if pos < data.len() {
        out.error = Some("archive ends inside a header (no end-of-archive blocks)".into());
    }
    out
}

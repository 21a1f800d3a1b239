//! Shared test helpers: a tiny pickle assembler so tests say which opcodes they emit.
#![allow(dead_code)]

/// Builds a pickle byte stream opcode by opcode.
#[derive(Default, Clone)]
pub struct Asm(pub Vec<u8>);

impl Asm {
    pub fn new() -> Self {
        Asm(Vec::new())
    }
    pub fn proto(mut self, p: u8) -> Self {
        self.0.extend([0x80, p]);
        self
    }
    pub fn op(mut self, byte: u8) -> Self {
        self.0.push(byte);
        self
    }
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }
    pub fn global(mut self, module: &str, name: &str) -> Self {
        self.0.push(b'c');
        self.0
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        self
    }
    pub fn inst(mut self, module: &str, name: &str) -> Self {
        self.0.push(b'i');
        self.0
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        self
    }
    pub fn unicode(mut self, s: &str) -> Self {
        if s.len() < 256 {
            self.0.push(0x8c);
            self.0.push(s.len() as u8);
        } else {
            self.0.push(b'X');
            self.0.extend((s.len() as u32).to_le_bytes());
        }
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    pub fn string0(mut self, s: &str) -> Self {
        self.0.extend_from_slice(format!("S'{s}'\n").as_bytes());
        self
    }
    pub fn int(mut self, i: i32) -> Self {
        self.0.push(b'J');
        self.0.extend(i.to_le_bytes());
        self
    }
    pub fn binput(mut self, k: u8) -> Self {
        self.0.extend([b'q', k]);
        self
    }
    pub fn binget(mut self, k: u8) -> Self {
        self.0.extend([b'h', k]);
        self
    }
    pub fn mark(self) -> Self {
        self.op(b'(')
    }
    pub fn tuple(self) -> Self {
        self.op(b't')
    }
    pub fn tuple1(self) -> Self {
        self.op(0x85)
    }
    pub fn reduce(self) -> Self {
        self.op(b'R')
    }
    pub fn stack_global(self) -> Self {
        self.op(0x93)
    }
    pub fn memoize(self) -> Self {
        self.op(0x94)
    }
    pub fn stop(self) -> Self {
        self.op(b'.')
    }
    pub fn build(self) -> Vec<u8> {
        self.0
    }
}

/// `data` compressed with `codec` (joblib's names: zlib, gzip, bz2, lz4, xz, lzma) by the same
/// libraries the scanner decompresses with.
pub fn compress(codec: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    match codec {
        "zlib" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "bz2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "lz4" => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "xz" => {
            let mut out = Vec::new();
            lzma_rs::xz_compress(&mut &data[..], &mut out).unwrap();
            out
        }
        "lzma" => {
            let mut out = Vec::new();
            lzma_rs::lzma_compress(&mut &data[..], &mut out).unwrap();
            out
        }
        other => panic!("no compressor named {other}"),
    }
}

/// `posix.system('echo pwned')` at protocol 2: the smallest dangerous pickle.
pub fn evil_pickle() -> Vec<u8> {
    Asm::new()
        .proto(2)
        .global("posix", "system")
        .unicode("echo pwned")
        .tuple1()
        .reduce()
        .stop()
        .build()
}

/// `{'a': 1}` at protocol 2: the smallest clean pickle.
pub fn benign_pickle() -> Vec<u8> {
    Asm::new()
        .proto(2)
        .op(b'}')
        .unicode("a")
        .int(1)
        .op(b's')
        .stop()
        .build()
}

/// The engine the command line builds without configuration: built-in rules, default limits,
/// default policy.
pub fn default_engine() -> picklescan_rs::engine::Engine {
    picklescan_rs::engine::Engine::new(
        picklescan_rs::Scanner::default(),
        picklescan_rs::policy::Policy::new(picklescan_rs::policy::Mode::Default),
    )
}

/// Damaged copies of fixtures for the never-panic tests, from a fixed xorshift sequence (a
/// failure repeats).
pub struct Damage(u64);

impl Damage {
    /// A sequence from a non-zero seed.
    pub fn new(seed: u64) -> Self {
        Damage(seed)
    }

    /// The next number of the sequence.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A copy of `data` (longer than `keep`) damaged past its first `keep` bytes: cut short
    /// there when `cut`, otherwise with one to eight bytes overwritten.
    pub fn copy(&mut self, data: &[u8], keep: usize, cut: bool) -> Vec<u8> {
        let mut d = data.to_vec();
        let span = (d.len() - keep) as u64;
        if cut {
            let at = keep + (self.next() % span) as usize;
            d.truncate(at);
        } else {
            for _ in 0..1 + self.next() % 8 {
                let at = keep + (self.next() % span) as usize;
                d[at] = self.next() as u8;
            }
        }
        d
    }
}

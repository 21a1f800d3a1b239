//! Pickle: the opcode table, the decoder, symbolic values, the symbolic machine and rendering.

pub mod decode;
pub mod opcode;
pub mod render;
pub mod resolve;
pub mod value;
pub mod vm;

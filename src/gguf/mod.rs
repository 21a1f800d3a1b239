//! GGUF output.

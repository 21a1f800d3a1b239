//! SentencePiece models (`tokenizer.model`): the vocabulary of a `ModelProto`
//! (`sentencepiece_model.proto`), read from the protobuf wire format.
//!
//! `ModelProto.pieces` (field 1) are `SentencePiece` messages: `piece` (1, string), `score`
//! (2, float), `type` (3, enum: NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5,
//! BYTE 6; NORMAL when absent). The trainer and normalizer specs are not needed to convert a
//! model and are skipped.

use super::protobuf::{Fields, Value, WireError};

/// Most pieces accepted (the largest published vocabularies hold about 256 K).
pub const MAX_PIECES: usize = 4 << 20;
/// Longest piece accepted, in bytes.
pub const MAX_PIECE_LEN: usize = 64 << 10;

/// What kind of piece a vocabulary entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceType {
    /// An ordinary piece.
    Normal,
    /// The unknown-token piece.
    Unknown,
    /// A control symbol (`<s>`, `</s>`).
    Control,
    /// A user-defined symbol.
    UserDefined,
    /// Reserved, never produced.
    Unused,
    /// A byte-fallback piece (`<0x41>`).
    Byte,
}

/// One vocabulary entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// Text of the piece (`▁the`).
    pub piece: String,
    /// Log-probability score.
    pub score: f32,
    /// Kind.
    pub kind: PieceType,
}

/// Why a model could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SentencePieceError {
    /// The protobuf does not decode.
    #[error("{0}")]
    Wire(#[from] WireError),
    /// A field has the wrong wire type or an out-of-range value.
    #[error("piece {index}: {what}")]
    Piece {
        /// Index of the piece.
        index: usize,
        /// What is wrong.
        what: String,
    },
    /// More than [`MAX_PIECES`] pieces.
    #[error("more than {MAX_PIECES} pieces")]
    TooMany,
    /// No pieces at all.
    #[error("no vocabulary pieces: not a SentencePiece model")]
    Empty,
}

/// Read the vocabulary of a SentencePiece model.
pub fn read(data: &[u8]) -> Result<Vec<Piece>, SentencePieceError> {
    let mut pieces = Vec::new();
    for field in Fields::new(data, 0) {
        let (number, value, _) = field?;
        if number != 1 {
            continue;
        }
        let Value::Len(msg) = value else {
            return Err(SentencePieceError::Piece {
                index: pieces.len(),
                what: "not a message".into(),
            });
        };
        if pieces.len() == MAX_PIECES {
            return Err(SentencePieceError::TooMany);
        }
        pieces.push(piece(msg, pieces.len())?);
    }
    if pieces.is_empty() {
        return Err(SentencePieceError::Empty);
    }
    Ok(pieces)
}

fn piece(msg: &[u8], index: usize) -> Result<Piece, SentencePieceError> {
    let bad = |what: &str| SentencePieceError::Piece {
        index,
        what: what.to_string(),
    };
    let mut out = Piece {
        piece: String::new(),
        score: 0.0,
        kind: PieceType::Normal,
    };
    for field in Fields::new(msg, 0) {
        match field? {
            (1, Value::Len(s), _) => {
                if s.len() > MAX_PIECE_LEN {
                    return Err(bad("piece longer than the limit"));
                }
                out.piece = String::from_utf8(s.to_vec()).map_err(|_| bad("piece is not UTF-8"))?;
            }
            (2, Value::Fixed32(bits), _) => out.score = f32::from_bits(bits),
            (3, Value::Varint(v), _) => {
                out.kind = match v {
                    1 => PieceType::Normal,
                    2 => PieceType::Unknown,
                    3 => PieceType::Control,
                    4 => PieceType::UserDefined,
                    5 => PieceType::Unused,
                    6 => PieceType::Byte,
                    _ => return Err(bad("unknown piece type")),
                }
            }
            (1..=3, _, _) => return Err(bad("field with the wrong wire type")),
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece_msg(text: &str, score: f32, kind: Option<u8>) -> Vec<u8> {
        let mut m = vec![0x0a, text.len() as u8];
        m.extend_from_slice(text.as_bytes());
        m.push(0x15);
        m.extend_from_slice(&score.to_le_bytes());
        if let Some(k) = kind {
            m.extend_from_slice(&[0x18, k]);
        }
        m
    }

    fn model(pieces: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in pieces {
            out.push(0x0a);
            out.push(p.len() as u8);
            out.extend_from_slice(p);
        }
        // A trainer spec (field 2) is skipped.
        out.extend_from_slice(&[0x12, 0x02, 0x08, 0x01]);
        out
    }

    #[test]
    fn reads_pieces_scores_and_types() {
        let data = model(&[
            piece_msg("<unk>", 0.0, Some(2)),
            piece_msg("<s>", 0.0, Some(3)),
            piece_msg("▁the", -3.5, None),
            piece_msg("<0x41>", 0.0, Some(6)),
        ]);
        let p = read(&data).unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p[0].kind, PieceType::Unknown);
        assert_eq!(p[1].kind, PieceType::Control);
        assert_eq!(p[2].piece, "▁the");
        assert_eq!(p[2].score, -3.5);
        assert_eq!(p[2].kind, PieceType::Normal);
        assert_eq!(p[3].kind, PieceType::Byte);
    }

    #[test]
    fn refuses_broken_models() {
        assert_eq!(read(&[0x12, 0x00]), Err(SentencePieceError::Empty));
        assert!(read(&[0x0a, 0x05, 0x0a]).is_err());
        let bad_type = model(&[piece_msg("x", 0.0, Some(9))]);
        assert!(matches!(
            read(&bad_type),
            Err(SentencePieceError::Piece { .. })
        ));
    }
}

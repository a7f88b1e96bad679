//! Inspection: reading a file's labels and encryption status from a bounded prefix of its bytes.
//!
//! Every function here is pure over byte slices the caller has already read with a size cap, so
//! none can read unbounded input, and all can be fuzzed. Inspection never writes to a file.

pub mod marking;

use infoledger_policies::{EncryptionStatus, EncryptionVerdict};

/// How many bytes of a file's start inspection reads.
pub const HEAD_BYTES: usize = 4096;

/// Whether a file's first bytes look like text: no NUL byte and valid UTF-8, allowing a
/// multi-byte character cut off by the read limit.
pub fn looks_like_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        // A character cut by the read limit leaves an incomplete sequence at the very end.
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

/// The encryption verdict that a file's first bytes alone support.
///
/// Text is plaintext and an empty file holds nothing to protect; anything else is `unknown`
/// until a format-specific detector decides.
pub fn encryption_from_head(head: &[u8], file_size: u64) -> EncryptionVerdict {
    if file_size == 0 {
        return EncryptionVerdict::new(EncryptionStatus::Plaintext, "empty");
    }
    if looks_like_text(head) {
        return EncryptionVerdict::new(EncryptionStatus::Plaintext, "text");
    }
    EncryptionVerdict::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_detection_tolerates_a_cut_character_but_not_binary() {
        assert!(looks_like_text(b"hello\nworld"));
        assert!(looks_like_text("çà".as_bytes()));
        let cut = &"é".as_bytes()[..1];
        assert!(looks_like_text(cut));
        assert!(!looks_like_text(b"PK\x03\x04\x00\x00"));
        assert!(!looks_like_text(&[
            0xff, 0xfe, b'a', b'b', b'c', b'd', b'e'
        ]));
    }

    #[test]
    fn verdicts_from_head() {
        assert_eq!(
            encryption_from_head(b"", 0).status,
            EncryptionStatus::Plaintext
        );
        assert_eq!(
            encryption_from_head(b"CONFIDENTIAL\n", 13).status,
            EncryptionStatus::Plaintext
        );
        assert_eq!(
            encryption_from_head(b"\x00\x01\x02", 3).status,
            EncryptionStatus::Unknown
        );
    }
}

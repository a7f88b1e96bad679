//! Inspection: reading a file's embedded labels and telling whether it is encrypted, from a
//! bounded amount of its bytes.
//!
//! Every parser here works over a [`source::Bounded`] reader (a file or a byte slice with a read
//! budget) or over byte slices, so none can read unbounded input, all can be fuzzed, and none
//! writes anything. A parser that meets malformed data returns an error or a partial result with
//! notes; it never panics.

pub mod archive;
pub mod cfb;
pub mod crypto;
pub mod email;
pub mod marking;
pub mod msip;
pub mod office;
pub mod ooxml;
pub mod pdf;
pub mod sniff;
pub mod source;
pub mod zip;

use infoledger_policies::{DetectedLabel, EncryptionStatus, EncryptionVerdict};

pub use sniff::{sniff, FileFormat};
pub use source::{Bounded, InspectError, ReadAt};

/// How many bytes of a file's start are read first (format sniffing, markings).
pub const HEAD_BYTES: usize = 4096;

/// What one format inspector found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Labels embedded in the file, each with its source and raw identity.
    pub labels: Vec<DetectedLabel>,
    /// The encryption verdict, when the inspector could decide one.
    pub encryption: Option<EncryptionVerdict>,
    /// A more specific format name (`docx`, `xlsx`, `doc`), when known.
    pub format: Option<&'static str>,
    /// Non-fatal problems met on the way (a part too large to read, a malformed property).
    pub notes: Vec<String>,
}

/// Everything inspection found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The format family the sniffer chose.
    pub kind: FileFormat,
    /// The detected format (`docx`, `pdf`, `zip`, `text`, …).
    pub format: String,
    /// Embedded labels (not xattrs or markings, which the caller adds).
    pub labels: Vec<DetectedLabel>,
    /// Encryption verdict with the scheme that decided it.
    pub encryption: EncryptionVerdict,
    /// Why inspection could not finish (malformed structure, exhausted budget): the verdict is
    /// then `unknown` and only what was read before counts.
    pub errors: Vec<String>,
    /// Remarks that did not stop inspection (a part too large to read, a flag that lied).
    pub notes: Vec<String>,
}

/// Inspects a file given its first bytes, its name and bounded access to all of it.
pub fn inspect(src: &Bounded<'_>, head: &[u8], name: &str) -> Inspection {
    let format = sniff(head, name);
    let result: Result<Evidence, InspectError> = match format {
        FileFormat::Empty => Ok(plain("empty")),
        FileFormat::Zip => zip::inspect_zip(src, name),
        FileFormat::Cfb => office::inspect_ole(src),
        FileFormat::Pdf => pdf::inspect_pdf(src),
        FileFormat::SevenZip => archive::inspect_7z(src),
        FileFormat::Rar5 => archive::inspect_rar5(src),
        FileFormat::Rar4 => archive::inspect_rar4(src),
        FileFormat::PgpArmored => crypto::inspect_pgp_armored(head, src),
        FileFormat::PgpBinary => crypto::inspect_pgp_binary(src),
        FileFormat::Age | FileFormat::AgeArmored => crypto::inspect_age(src),
        FileFormat::Luks => crypto::inspect_luks(src),
        FileFormat::AnsibleVault => Ok(encrypted("ansible-vault")),
        FileFormat::Pfile => crypto::inspect_pfile(src),
        FileFormat::Email => email::inspect_email(src),
        FileFormat::Text => crypto::inspect_text(src, name),
        FileFormat::Unknown => Ok(Evidence::default()),
    };
    let (evidence, errors) = match result {
        Ok(e) => (e, Vec::new()),
        Err(err) => (Evidence::default(), vec![err.to_string()]),
    };
    Inspection {
        kind: format,
        format: evidence.format.unwrap_or(format.as_str()).to_string(),
        labels: evidence.labels,
        encryption: evidence.encryption.unwrap_or_default(),
        errors,
        notes: evidence.notes,
    }
}

/// Evidence that the content is readable plaintext, decided by `scheme`.
pub fn plain(scheme: &str) -> Evidence {
    Evidence {
        encryption: Some(EncryptionVerdict::new(EncryptionStatus::Plaintext, scheme)),
        ..Evidence::default()
    }
}

/// Evidence that the content is encrypted, decided by `scheme`.
pub fn encrypted(scheme: &str) -> Evidence {
    Evidence {
        encryption: Some(EncryptionVerdict::new(EncryptionStatus::Encrypted, scheme)),
        ..Evidence::default()
    }
}

/// Whether a file's first bytes look like text: no NUL byte and valid UTF-8, allowing a
/// multi-byte character cut off by the read limit.
pub fn looks_like_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

/// The encryption verdict that a file's first bytes alone support: text is plaintext and an empty
/// file holds nothing to protect; anything else is `unknown`.
pub fn encryption_from_head(head: &[u8], file_size: u64) -> EncryptionVerdict {
    if file_size == 0 {
        return EncryptionVerdict::new(EncryptionStatus::Plaintext, "empty");
    }
    if looks_like_text(head) {
        return EncryptionVerdict::new(EncryptionStatus::Plaintext, "text");
    }
    EncryptionVerdict::default()
}

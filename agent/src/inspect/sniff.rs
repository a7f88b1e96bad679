//! Telling formats apart from a file's first bytes and its name, cheaply, before any parsing.

use std::fmt;

/// A file format as inspection understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// Zero bytes.
    Empty,
    /// A ZIP archive (OOXML documents are ZIPs; told apart after reading the directory).
    Zip,
    /// An OLE compound file (legacy Office, password-encrypted or IRM-protected Office).
    Cfb,
    /// A PDF document.
    Pdf,
    /// A 7-Zip archive.
    SevenZip,
    /// A RAR 5 archive.
    Rar5,
    /// A RAR 1.5–4 archive.
    Rar4,
    /// An ASCII-armored OpenPGP block.
    PgpArmored,
    /// Binary OpenPGP packets (only with a `.gpg`/`.pgp`/`.asc` name).
    PgpBinary,
    /// An age file, binary header.
    Age,
    /// An age file, ASCII armor.
    AgeArmored,
    /// A LUKS1 or LUKS2 volume header.
    Luks,
    /// A whole-file Ansible Vault.
    AnsibleVault,
    /// A Microsoft Purview protected file (`.pfile`).
    Pfile,
    /// An e-mail message (RFC 5322).
    Email,
    /// Other text.
    Text,
    /// Anything else.
    Unknown,
}

impl FileFormat {
    /// The name shown by `inspect`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Empty => "empty",
            FileFormat::Zip => "zip",
            FileFormat::Cfb => "cfb",
            FileFormat::Pdf => "pdf",
            FileFormat::SevenZip => "7z",
            FileFormat::Rar5 => "rar5",
            FileFormat::Rar4 => "rar4",
            FileFormat::PgpArmored => "openpgp-armored",
            FileFormat::PgpBinary => "openpgp",
            FileFormat::Age => "age",
            FileFormat::AgeArmored => "age-armored",
            FileFormat::Luks => "luks",
            FileFormat::AnsibleVault => "ansible-vault",
            FileFormat::Pfile => "pfile",
            FileFormat::Email => "email",
            FileFormat::Text => "text",
            FileFormat::Unknown => "unknown",
        }
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lowercase extension of a file name, if any.
pub fn extension(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty() && ext.len() <= 8).then(|| ext.to_ascii_lowercase())
}

fn starts_with_skipping_bom(head: &[u8], prefix: &[u8]) -> bool {
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    body.starts_with(prefix)
}

/// Whether the first bytes look like RFC 5322 header fields (`Name: value` lines).
fn looks_like_email(head: &[u8]) -> bool {
    // Cheap rejection first: the first line must be `Name: value` with a field name of
    // printable characters and no space (RFC 5322 2.2), which most text files fail at once.
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    match first.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 && first[..colon].iter().all(|b| b.is_ascii_graphic()) => {}
        _ => return false,
    }
    const FIELDS: &[&str] = &[
        "received:",
        "from:",
        "to:",
        "subject:",
        "date:",
        "message-id:",
        "mime-version:",
        "return-path:",
        "delivered-to:",
        "msip_labels:",
        "x-",
        "content-type:",
        "reply-to:",
    ];
    let text = String::from_utf8_lossy(&head[..head.len().min(1024)]).to_ascii_lowercase();
    let mut fields = 0;
    for line in text.lines().take(8) {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        if line.is_empty() {
            break;
        }
        if FIELDS.iter().any(|f| line.starts_with(f)) {
            fields += 1;
        } else if !line.contains(':') {
            return false;
        }
    }
    fields >= 2
}

/// Decides the format from the first bytes (up to 4 KiB) and the file name.
pub fn sniff(head: &[u8], name: &str) -> FileFormat {
    let ext = extension(name);
    let ext = ext.as_deref();
    if head.is_empty() {
        return FileFormat::Empty;
    }
    if head.starts_with(b"PK\x03\x04")
        || head.starts_with(b"PK\x05\x06")
        || head.starts_with(b"PK\x07\x08")
    {
        return FileFormat::Zip;
    }
    if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return FileFormat::Cfb;
    }
    if head.starts_with(b"7z\xBC\xAF\x27\x1C") {
        return FileFormat::SevenZip;
    }
    if head.starts_with(b"Rar!\x1A\x07\x01\x00") {
        return FileFormat::Rar5;
    }
    if head.starts_with(b"Rar!\x1A\x07\x00") {
        return FileFormat::Rar4;
    }
    if head.starts_with(b"LUKS\xBA\xBE") {
        return FileFormat::Luks;
    }
    if head.starts_with(b"age-encryption.org/v1\n") {
        return FileFormat::Age;
    }
    // Microsoft's RMS SDK writes the preamble in lower case; accept either.
    if head
        .get(..6)
        .is_some_and(|m| m.eq_ignore_ascii_case(b".pfile"))
        || ext == Some("pfile")
    {
        return FileFormat::Pfile;
    }
    // PDF readers accept the header anywhere in the first 1024 bytes.
    if memfind(&head[..head.len().min(1024)], b"%PDF-").is_some() {
        return FileFormat::Pdf;
    }
    if starts_with_skipping_bom(head, b"$ANSIBLE_VAULT;") {
        return FileFormat::AnsibleVault;
    }
    let trimmed = trim_ascii_start(head);
    if trimmed.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----") {
        return FileFormat::AgeArmored;
    }
    if trimmed.starts_with(b"-----BEGIN PGP ") {
        return FileFormat::PgpArmored;
    }
    if matches!(ext, Some("gpg" | "pgp" | "asc" | "sig")) && head[0] & 0x80 != 0 {
        return FileFormat::PgpBinary;
    }
    if super::looks_like_text(head) {
        if ext == Some("eml") || looks_like_email(head) {
            return FileFormat::Email;
        }
        return FileFormat::Text;
    }
    FileFormat::Unknown
}

fn trim_ascii_start(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    &b[start..]
}

/// The offset of `needle` in `hay` (`None` for an empty needle).
pub fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(hay, needle)
}

/// The offset of the last occurrence of `needle` in `hay` (`None` for an empty needle).
pub fn memrfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::rfind(hay, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_decide_before_names() {
        let cases: &[(&[u8], &str, FileFormat)] = &[
            (b"", "a.docx", FileFormat::Empty),
            (b"PK\x03\x04rest", "a.docx", FileFormat::Zip),
            (
                b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest",
                "a.docx",
                FileFormat::Cfb,
            ),
            (b"%PDF-1.7\n", "a.bin", FileFormat::Pdf),
            (b"junk\n%PDF-2.0\n", "a.pdf", FileFormat::Pdf),
            (b"7z\xBC\xAF\x27\x1C\x00\x04", "a.7z", FileFormat::SevenZip),
            (b"Rar!\x1A\x07\x01\x00", "a.rar", FileFormat::Rar5),
            (b"Rar!\x1A\x07\x00", "a.rar", FileFormat::Rar4),
            (b"LUKS\xBA\xBE\x00\x02", "disk.img", FileFormat::Luks),
            (
                b"age-encryption.org/v1\n-> X25519 abc\n",
                "a.age",
                FileFormat::Age,
            ),
            (
                b"-----BEGIN AGE ENCRYPTED FILE-----\n",
                "a",
                FileFormat::AgeArmored,
            ),
            (
                b"\n-----BEGIN PGP MESSAGE-----\n",
                "a.asc",
                FileFormat::PgpArmored,
            ),
            (b"\x85\x01\x0c\x03", "a.gpg", FileFormat::PgpBinary),
            (b"\x85\x01\x0c\x03", "a.bin", FileFormat::Unknown),
            (
                b"$ANSIBLE_VAULT;1.1;AES256\n3033",
                "vars.yml",
                FileFormat::AnsibleVault,
            ),
            (
                b"From: a@example.com\nTo: b@example.com\nSubject: x\n\nbody",
                "m",
                FileFormat::Email,
            ),
            (b"hello: world\nfoo: bar\n", "config.yml", FileFormat::Text),
            (b"plain words", "notes.txt", FileFormat::Text),
            (b"\x00\x01\x02\x03", "blob", FileFormat::Unknown),
        ];
        for (head, name, expected) in cases {
            assert_eq!(sniff(head, name), *expected, "{name}: {head:?}");
        }
    }

    #[test]
    fn extensions_are_lowercased_and_need_a_stem() {
        assert_eq!(extension("Report.DOCX").as_deref(), Some("docx"));
        assert_eq!(extension(".bashrc"), None);
        assert_eq!(extension("noext"), None);
    }
}

//! ZIP archives: the central directory, per-entry encryption and bounded extraction of small entries.
//!
//! Section numbers refer to PKWARE's APPNOTE.TXT 6.3.10 (4.3 records, 4.4 fields, 4.5 extra
//! fields, 6.1 traditional encryption, 7 strong encryption and central directory encryption) and to
//! WinZip's "AES Encryption Information: Encryption Specification AE-1 and AE-2".
//!
//! Only the end of the file (end-of-central-directory records), the central directory (capped at
//! [`MAX_DIRECTORY_BYTES`] and [`MAX_ENTRIES`]), a few local headers and a few small entries are
//! read. Entry data is decompressed only by [`read_entry`], whose output is capped by the caller and
//! by the entry's declared size, and which refuses encrypted entries and implausible ratios.

use std::collections::BTreeSet;
use std::io::Read;

use infoledger_policies::{EncryptionStatus, EncryptionVerdict};

use super::source::le;
use super::{ooxml, Bounded, Evidence, InspectError};

const SIG_LOCAL: u32 = 0x0403_4b50;
const SIG_CENTRAL: u32 = 0x0201_4b50;
const SIG_EOCD: u32 = 0x0605_4b50;
const SIG_ZIP64_EOCD: u32 = 0x0606_4b50;
const SIG_ZIP64_LOCATOR: u32 = 0x0706_4b50;
const SIG_ARCHIVE_EXTRA: u32 = 0x0806_4b50;

/// Fixed part of the end-of-central-directory record (4.3.16).
const EOCD_LEN: usize = 22;
/// The Zip64 end-of-central-directory locator (4.3.15).
const LOCATOR_LEN: usize = 20;
/// Fixed part of the Zip64 end-of-central-directory record, version 1 (4.3.14).
const ZIP64_EOCD_LEN: usize = 56;
/// Fixed part of a version 2 Zip64 record: the central directory encryption fields (7.3.4).
const ZIP64_V2_LEN: usize = ZIP64_EOCD_LEN + 28;
/// Fixed part of a central directory file header (4.3.12).
const CENTRAL_LEN: usize = 46;
/// Fixed part of a local file header (4.3.7).
const LOCAL_LEN: usize = 30;
/// Largest archive comment: its length field is 16 bits.
const MAX_COMMENT: usize = 0xFFFF;
/// Extensible data read from a Zip64 record beyond its fixed part.
const MAX_ZIP64_EXTENSIBLE: usize = 1024;

/// Most central directory entries read from one archive.
pub const MAX_ENTRIES: usize = 100_000;
/// Most central directory bytes read from one archive.
pub const MAX_DIRECTORY_BYTES: usize = 2 * 1024 * 1024;
/// Output cap for XML parts extracted from a package.
pub const MAX_PART_BYTES: usize = 1024 * 1024;
/// Expansion above this ratio is refused once an entry is larger than [`RATIO_FLOOR`]: real XML
/// parts compress 5–30:1, while deflate bombs reach 1000:1.
pub const MAX_RATIO: u64 = 100;
/// Entries smaller than this are never refused for their ratio (a few KiB of repeated text
/// legitimately compresses very well).
pub const RATIO_FLOOR: u64 = 64 * 1024;

/// Local headers compared with their central directory entries (besides those of probed
/// entries): a few, since each is a separate small read.
const MAX_LOCAL_CHECKS: usize = 8;
/// Entries flagged as encrypted whose data is checked for readable plaintext.
const MAX_PLAIN_PROBES: usize = 16;
/// Largest entry (compressed) checked for readable plaintext.
const MAX_PROBE_BYTES: u64 = 64 * 1024;
/// Most stored bytes an empty entry needs (encryption headers around nothing).
const EMPTY_ENTRY_MAX: u64 = 1024;
/// Contradiction notes kept per archive; the rest are counted.
const MAX_ENTRY_NOTES: usize = 5;

const FLAG_ENCRYPTED: u16 = 1;
const FLAG_STRONG: u16 = 1 << 6;
const FLAG_MASKED: u16 = 1 << 13;
const METHOD_STORED: u16 = 0;
const METHOD_DEFLATE: u16 = 8;
const METHOD_AES: u16 = 99;
const EXTRA_ZIP64: u16 = 0x0001;
const EXTRA_STRONG: u16 = 0x0017;
const EXTRA_AES: u16 = 0x9901;
/// The 12-byte header that precedes traditionally encrypted data (6.1.3).
const TRADITIONAL_HEADER: u64 = 12;
/// AES password verifier and authentication code around AES-encrypted data (AE-1/AE-2).
const AES_VERIFIER: u64 = 2;
const AES_AUTH_CODE: u64 = 10;

/// The WinZip AES extra field (0x9901).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AesExtra {
    /// Vendor version: 1 for AE-1, 2 for AE-2.
    pub version: u16,
    /// Key strength: 1, 2, 3 for AES-128, -192, -256.
    pub strength: u8,
    /// The compression method of the data before encryption.
    pub method: u16,
}

impl AesExtra {
    /// Key length in bits, when the strength is valid.
    pub fn key_bits(self) -> Option<u16> {
        match self.strength {
            1 => Some(128),
            2 => Some(192),
            3 => Some(256),
            _ => None,
        }
    }

    fn is_valid(self) -> bool {
        matches!(self.version, 1 | 2) && self.key_bits().is_some()
    }

    /// Salt length in bytes: half the key length.
    fn salt_len(self) -> u64 {
        self.key_bits().map_or(0, |b| u64::from(b) / 16)
    }

    fn describe(self) -> String {
        match self.key_bits() {
            Some(bits) => format!("AE-{} AES-{bits}", self.version),
            None => format!("AE-{} unknown strength {}", self.version, self.strength),
        }
    }
}

/// The strong encryption header extra field (0x0017, 4.5.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrongExtra {
    /// Format of the record.
    pub format: u16,
    /// Encryption algorithm identifier (7.2.3.2).
    pub alg_id: u16,
    /// Key length in bits.
    pub bit_len: u16,
    /// Processing flags.
    pub flags: u16,
}

/// The name of a strong encryption algorithm identifier (APPNOTE 7.2.3.2).
pub fn strong_algorithm(alg_id: u16) -> &'static str {
    match alg_id {
        0x6601 => "DES",
        0x6602 => "RC2",
        0x6603 => "3DES-168",
        0x6609 => "3DES-112",
        0x660E => "AES-128",
        0x660F => "AES-192",
        0x6610 => "AES-256",
        0x6702 => "RC2",
        0x6720 => "Blowfish",
        0x6721 => "Twofish",
        0x6801 => "RC4",
        _ => "unknown algorithm",
    }
}

/// How an entry says its data is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheme {
    /// Traditional PKWARE encryption (ZipCrypto, APPNOTE 6.1).
    Traditional,
    /// WinZip AES (method 99 with extra field 0x9901).
    Aes,
    /// PKWARE strong encryption (flag bit 6, extra field 0x0017, APPNOTE 7.2).
    Strong,
}

impl Scheme {
    /// The scheme name used in verdicts.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Traditional => "zip-traditional",
            Scheme::Aes => "zip-aes",
            Scheme::Strong => "zip-strong",
        }
    }
}

/// One central directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry name (lossily decoded).
    pub name: String,
    /// General-purpose bit flag (4.4.4).
    pub flags: u16,
    /// Compression method (4.4.5); 99 for AES.
    pub method: u16,
    /// CRC-32 of the uncompressed data (0 for AE-2).
    pub crc32: u32,
    /// Stored size, including any encryption header.
    pub compressed_size: u64,
    /// Original size.
    pub uncompressed_size: u64,
    /// Offset of the local header as written (before [`Archive::base`] is applied).
    pub local_header_offset: u64,
    /// The AES extra field, when present.
    pub aes: Option<AesExtra>,
    /// The strong encryption extra field, when present.
    pub strong: Option<StrongExtra>,
}

impl Entry {
    /// Whether the entry is a directory.
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/') || self.name.ends_with('\\')
    }

    /// Whether the entry's flags or method say it is encrypted.
    pub fn is_flagged_encrypted(&self) -> bool {
        self.flags & FLAG_ENCRYPTED != 0 || self.method == METHOD_AES
    }

    /// Whether the entry holds content that counts for the verdict. Directories and empty files
    /// hold nothing to protect; an entry that says it is empty but stores more data than any
    /// encryption of nothing needs (a strong-encryption decryption header stays well under
    /// 1 KiB) is counted, so a zeroed size field cannot hide an entry.
    fn holds_content(&self) -> bool {
        self.uncompressed_size > 0 || self.compressed_size > EMPTY_ENTRY_MAX
    }
}

/// A readable central directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Archive {
    /// Entries in directory order.
    pub entries: Vec<Entry>,
    /// The entry count the end records declare.
    pub declared_entries: u64,
    /// Whether Zip64 end records were used.
    pub zip64: bool,
    /// Bytes before the archive proper (a self-extractor stub), added to every stored offset.
    pub base: i64,
    /// Whether every declared entry was read.
    pub complete: bool,
    /// Problems met while reading the directory.
    pub notes: Vec<String>,
}

/// Normalises an entry or part name for lookup: forward slashes, no leading slash.
fn normalise_name(name: &str) -> String {
    name.replace('\\', "/").trim_start_matches('/').to_string()
}

impl Archive {
    /// The first entry called `name`, compared ASCII case-insensitively as OPC part names are
    /// (ECMA-376 Part 2, 6.2.2.3).
    pub fn find(&self, name: &str) -> Option<&Entry> {
        let wanted = normalise_name(name);
        self.entries
            .iter()
            .find(|e| normalise_name(&e.name).eq_ignore_ascii_case(&wanted))
    }

    fn absolute(&self, offset: u64) -> Option<u64> {
        offset.checked_add_signed(self.base)
    }
}

/// What the end of a ZIP file says about its central directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directory {
    /// The central directory could be read.
    Readable(Archive),
    /// The central directory is encrypted (APPNOTE 7.3): not even entry names are readable.
    Encrypted {
        /// How it was recognised.
        detail: String,
    },
}

/// Finds the end-of-central-directory record in the last bytes of a file: the last signature
/// whose comment ends exactly at the end of the data, or else the last one whose comment fits
/// (some writers leave padding after the archive).
fn find_eocd(tail: &[u8], exact_only: bool) -> Option<usize> {
    let last = tail.len().checked_sub(EOCD_LEN)?;
    let mut fallback = None;
    // At most `tail.len()` iterations: the tail is at most 64 KiB plus the fixed records.
    for pos in (0..=last).rev() {
        if le::u32(tail, pos).ok() != Some(SIG_EOCD) {
            continue;
        }
        let Ok(comment) = le::u16(tail, pos + 20) else {
            continue;
        };
        let end = pos + EOCD_LEN + usize::from(comment);
        if end == tail.len() {
            return Some(pos);
        }
        if end < tail.len() && fallback.is_none() {
            fallback = Some(pos);
        }
    }
    if exact_only {
        None
    } else {
        fallback
    }
}

/// The fields of the end records that locate the central directory.
#[derive(Debug, Default)]
struct EndRecords {
    total: u64,
    cd_size: u64,
    cd_offset: u64,
    /// Where the central directory should end: the Zip64 record or the EOCD record.
    cd_end: u64,
    zip64: bool,
    /// Central directory encryption algorithm from a version 2 Zip64 record (7.3.4).
    cd_alg: Option<u16>,
    /// Central directory compression method from a version 2 Zip64 record.
    cd_method: Option<u16>,
}

fn read_end_records(src: &Bounded<'_>) -> Result<EndRecords, InspectError> {
    // Most archives have no comment: try a small tail first, then the largest possible one.
    let small = EOCD_LEN + LOCATOR_LEN + 4096;
    let (mut tail_start, mut tail) = src.tail(small)?;
    let mut found = find_eocd(&tail, true).filter(|&p| p >= LOCATOR_LEN || tail_start == 0);
    if found.is_none() && tail_start > 0 {
        (tail_start, tail) = src.tail(EOCD_LEN + MAX_COMMENT + LOCATOR_LEN)?;
        found = find_eocd(&tail, false);
    }
    let at =
        found.ok_or_else(|| InspectError::malformed("zip: no end-of-central-directory record"))?;
    let eocd = tail
        .get(at..)
        .ok_or(InspectError::Truncated("zip end record"))?;
    let this_disk = le::u16(eocd, 4)?;
    let cd_disk = le::u16(eocd, 6)?;
    let mut end = EndRecords {
        total: u64::from(le::u16(eocd, 10)?),
        cd_size: u64::from(le::u32(eocd, 12)?),
        cd_offset: u64::from(le::u32(eocd, 16)?),
        cd_end: tail_start + at as u64,
        ..EndRecords::default()
    };
    if this_disk != cd_disk {
        return Err(InspectError::malformed(
            "zip: split archive whose central directory is on another part",
        ));
    }
    let Some(locator_at) = at.checked_sub(LOCATOR_LEN) else {
        return Ok(end);
    };
    if le::u32(&tail, locator_at)? != SIG_ZIP64_LOCATOR {
        return Ok(end);
    }
    if le::u32(&tail, locator_at + 16)? > 1 {
        return Err(InspectError::malformed("zip: split Zip64 archive"));
    }
    let locator_pos = tail_start + locator_at as u64;
    let declared = le::u64(&tail, locator_at + 8)?;
    // The record is where the locator says, unless bytes were prepended to the archive; then it
    // is the last record signature before the locator.
    let mut record_pos = declared;
    if src.read_up_to(declared, 4)?.get(..4) != Some(&SIG_ZIP64_EOCD.to_le_bytes()[..]) {
        let before = tail.get(..locator_at).unwrap_or_default();
        let found = super::sniff::memrfind(before, &SIG_ZIP64_EOCD.to_le_bytes());
        record_pos = found
            .map(|p| tail_start + p as u64)
            .ok_or_else(|| InspectError::malformed("zip: Zip64 end record not found"))?;
    }
    let head = src.read_exact(record_pos, ZIP64_EOCD_LEN, "zip64 end record")?;
    let record_size = le::u64(&head, 4)?;
    let extensible = usize::try_from(record_size.saturating_sub(44))
        .unwrap_or(usize::MAX)
        .min(MAX_ZIP64_EXTENSIBLE)
        .min(usize::try_from(locator_pos.saturating_sub(record_pos)).unwrap_or(0));
    let record = if extensible > 0 {
        src.read_up_to(record_pos, ZIP64_EOCD_LEN.saturating_add(extensible))?
    } else {
        head
    };
    let version_needed = le::u16(&record, 14)?;
    if le::u32(&record, 16)? != le::u32(&record, 20)? {
        return Err(InspectError::malformed(
            "zip: split archive whose central directory is on another part",
        ));
    }
    end.total = le::u64(&record, 32)?;
    end.cd_size = le::u64(&record, 40)?;
    end.cd_offset = le::u64(&record, 48)?;
    end.cd_end = record_pos;
    end.zip64 = true;
    // Version 2 of the record (7.3.4) is announced by version 6.2 and carries the central
    // directory's compression method and encryption algorithm after the version 1 fields.
    if version_needed & 0xFF >= 62 && record.len() >= ZIP64_V2_LEN {
        end.cd_method = Some(le::u16(&record, 56)?);
        end.cd_alg = Some(le::u16(&record, 74)?).filter(|&a| a != 0);
    }
    Ok(end)
}

fn signature_at(src: &Bounded<'_>, pos: u64) -> Result<Option<u32>, InspectError> {
    let b = src.read_up_to(pos, 4)?;
    Ok(le::u32(&b, 0).ok())
}

/// Reads the end records and the central directory (capped at [`MAX_DIRECTORY_BYTES`] and
/// [`MAX_ENTRIES`]).
pub fn read_directory(src: &Bounded<'_>) -> Result<Directory, InspectError> {
    let end = read_end_records(src)?;
    let mut archive = Archive {
        declared_entries: end.total,
        zip64: end.zip64,
        ..Archive::default()
    };
    if end.total == 0 && end.cd_size == 0 {
        archive.complete = true;
        return Ok(Directory::Readable(archive));
    }
    // The directory is where the end record says, or, when a stub was prepended (self-extracting
    // archives), right before the end records; the difference shifts every stored offset.
    let mut start = None;
    if signature_at(src, end.cd_offset)? == Some(SIG_CENTRAL) {
        start = Some((end.cd_offset, 0i64));
    } else if let Some(actual) = end.cd_end.checked_sub(end.cd_size) {
        if actual != end.cd_offset && signature_at(src, actual)? == Some(SIG_CENTRAL) {
            let base = i64::try_from(actual)
                .ok()
                .zip(i64::try_from(end.cd_offset).ok())
                .and_then(|(a, d)| a.checked_sub(d));
            start = base.map(|b| (actual, b));
        }
    }
    let Some((cd_start, base)) = start else {
        return directory_not_found(src, &end);
    };
    archive.base = base;
    if base != 0 {
        archive
            .notes
            .push(format!("zip: {base} bytes precede the archive"));
    }
    let want = usize::try_from(end.cd_size).unwrap_or(usize::MAX);
    let capped = want > MAX_DIRECTORY_BYTES;
    let bytes = src.read_up_to(cd_start, want.min(MAX_DIRECTORY_BYTES))?;
    if capped {
        archive.notes.push(format!(
            "zip: central directory of {} bytes read only up to {MAX_DIRECTORY_BYTES} bytes",
            end.cd_size
        ));
    } else if bytes.len() < want {
        archive
            .notes
            .push("zip: central directory cut off by the end of the file".to_string());
    }
    let mut pos = 0usize;
    while archive.entries.len() < MAX_ENTRIES {
        match parse_central_entry(&bytes, pos) {
            Some((entry, next)) => {
                archive.entries.push(entry);
                pos = next;
            }
            None => break,
        }
    }
    let read = archive.entries.len() as u64;
    archive.complete = read >= end.total && archive.entries.len() < MAX_ENTRIES;
    if !archive.complete {
        archive.notes.push(format!(
            "zip: central directory lists {} entries, {read} read",
            end.total
        ));
    }
    Ok(Directory::Readable(archive))
}

/// No central directory header where the end records point: either the directory is encrypted
/// (APPNOTE 7.3) or the archive is damaged.
fn directory_not_found(src: &Bounded<'_>, end: &EndRecords) -> Result<Directory, InspectError> {
    if let Some(alg) = end.cd_alg {
        return Ok(Directory::Encrypted {
            detail: format!("central directory encrypted with {}", strong_algorithm(alg)),
        });
    }
    // The archive extra data record (4.3.11) exists only for central directory encryption and
    // sits right before the (encrypted) directory, after the archive decryption header (4.3.10).
    let window = src.read_up_to(end.cd_offset, 4096)?;
    if super::sniff::memfind(&window, &SIG_ARCHIVE_EXTRA.to_le_bytes()).is_some() {
        return Ok(Directory::Encrypted {
            detail: "archive extra data record before an unreadable central directory".to_string(),
        });
    }
    // With central directory encryption, local headers have bit 13 set and their values masked
    // (4.4.4, 7.3.3).
    let first = src.read_up_to(0, LOCAL_LEN)?;
    if le::u32(&first, 0).ok() == Some(SIG_LOCAL)
        && le::u16(&first, 6).is_ok_and(|f| f & FLAG_MASKED != 0)
    {
        return Ok(Directory::Encrypted {
            detail: "local headers masked (flag bit 13) and central directory unreadable"
                .to_string(),
        });
    }
    if end.cd_method.is_some_and(|m| m != 0) {
        return Err(InspectError::malformed(
            "zip: compressed central directory is not supported",
        ));
    }
    Err(InspectError::malformed(format!(
        "zip: no central directory at offset {}",
        end.cd_offset
    )))
}

/// Parses the central directory header at `pos`; returns it with the offset of the next one.
fn parse_central_entry(cd: &[u8], pos: usize) -> Option<(Entry, usize)> {
    let h = cd.get(pos..pos.checked_add(CENTRAL_LEN)?)?;
    if le::u32(h, 0).ok()? != SIG_CENTRAL {
        return None;
    }
    let name_len = usize::from(le::u16(h, 28).ok()?);
    let extra_len = usize::from(le::u16(h, 30).ok()?);
    let comment_len = usize::from(le::u16(h, 32).ok()?);
    let name_start = pos + CENTRAL_LEN;
    let extra_start = name_start + name_len;
    let next = extra_start + extra_len + comment_len;
    let name = cd.get(name_start..extra_start)?;
    let extra = cd.get(extra_start..extra_start + extra_len)?;
    cd.get(..next)?;
    let mut entry = Entry {
        name: String::from_utf8_lossy(name).into_owned(),
        flags: le::u16(h, 8).ok()?,
        method: le::u16(h, 10).ok()?,
        crc32: le::u32(h, 16).ok()?,
        compressed_size: u64::from(le::u32(h, 20).ok()?),
        uncompressed_size: u64::from(le::u32(h, 24).ok()?),
        local_header_offset: u64::from(le::u32(h, 42).ok()?),
        aes: None,
        strong: None,
    };
    apply_extra_fields(&mut entry, extra);
    Some((entry, next))
}

/// Reads the extra fields that matter here: Zip64 sizes and offset (4.5.3), strong encryption
/// (4.5.12) and WinZip AES (0x9901).
fn apply_extra_fields(entry: &mut Entry, extra: &[u8]) {
    let mut pos = 0usize;
    // Every field takes at least four bytes, so there are at most `len / 4` of them.
    for _ in 0..=extra.len() / 4 {
        let (Ok(id), Ok(len)) = (le::u16(extra, pos), le::u16(extra, pos + 2)) else {
            break;
        };
        let start = pos + 4;
        let Some(data) = extra.get(start..start + usize::from(len)) else {
            break;
        };
        match id {
            EXTRA_ZIP64 => apply_zip64(entry, data),
            EXTRA_STRONG if data.len() >= 8 => {
                entry.strong = Some(StrongExtra {
                    format: le::u16(data, 0).unwrap_or(0),
                    alg_id: le::u16(data, 2).unwrap_or(0),
                    bit_len: le::u16(data, 4).unwrap_or(0),
                    flags: le::u16(data, 6).unwrap_or(0),
                });
            }
            EXTRA_AES if data.len() >= 7 && data.get(2..4) == Some(b"AE") => {
                entry.aes = Some(AesExtra {
                    version: le::u16(data, 0).unwrap_or(0),
                    strength: data.get(4).copied().unwrap_or(0),
                    method: le::u16(data, 5).unwrap_or(0),
                });
            }
            _ => {}
        }
        pos = start + usize::from(len);
    }
}

/// The Zip64 extended information field holds, in order, only the values whose 32-bit (or
/// 16-bit disk) fields are saturated (4.5.3). The disk number would come last; a single-part
/// archive does not need it.
fn apply_zip64(entry: &mut Entry, data: &[u8]) {
    let mut at = 0usize;
    let mut next = || {
        let v = le::u64(data, at).ok();
        at += 8;
        v
    };
    if entry.uncompressed_size == 0xFFFF_FFFF {
        if let Some(v) = next() {
            entry.uncompressed_size = v;
        }
    }
    if entry.compressed_size == 0xFFFF_FFFF {
        if let Some(v) = next() {
            entry.compressed_size = v;
        }
    }
    if entry.local_header_offset == 0xFFFF_FFFF {
        if let Some(v) = next() {
            entry.local_header_offset = v;
        }
    }
}

/// What the central directory claims about an entry's encryption, and whether its own fields
/// contradict the claim.
///
/// The rules, all from fields already in memory:
/// - traditional encryption prefixes the data with a 12-byte header (6.1.3), so its stored size
///   is at least 12;
/// - AES needs method 99 *and* a well-formed 0x9901 extra field, and stores a salt, a 2-byte
///   verifier and a 10-byte authentication code around the data; the method or the extra field
///   without the encryption flag is a contradiction too;
/// - strong encryption (bit 6) only exists together with bit 0 (4.4.4).
fn claim(entry: &Entry) -> (Option<Scheme>, Option<String>) {
    let flagged = entry.flags & FLAG_ENCRYPTED != 0;
    if !flagged {
        if entry.method == METHOD_AES || entry.aes.is_some() {
            return (
                None,
                Some("AES method or extra field without the encryption flag".to_string()),
            );
        }
        if entry.flags & FLAG_STRONG != 0 {
            return (
                None,
                Some("strong-encryption flag without the encryption flag".to_string()),
            );
        }
        return (None, None);
    }
    if entry.method == METHOD_AES {
        return match entry.aes {
            Some(aes) if aes.is_valid() => {
                let least = aes.salt_len() + AES_VERIFIER + AES_AUTH_CODE;
                let doubt = (entry.compressed_size < least).then(|| {
                    format!(
                        "{} bytes of data cannot hold the AES salt, verifier and authentication code",
                        entry.compressed_size
                    )
                });
                (Some(Scheme::Aes), doubt)
            }
            _ => (
                Some(Scheme::Aes),
                Some("method 99 (AES) without a valid 0x9901 extra field".to_string()),
            ),
        };
    }
    if entry.aes.is_some() {
        return (
            Some(Scheme::Aes),
            Some(format!(
                "AES extra field with compression method {} instead of 99",
                entry.method
            )),
        );
    }
    if entry.flags & FLAG_STRONG != 0 {
        return (Some(Scheme::Strong), None);
    }
    let doubt = (entry.compressed_size < TRADITIONAL_HEADER).then(|| {
        format!(
            "{} bytes of data cannot hold the 12-byte encryption header",
            entry.compressed_size
        )
    });
    (Some(Scheme::Traditional), doubt)
}

/// The local header of an entry: its flags, method and where its data starts.
#[derive(Debug, Clone, Copy)]
struct Local {
    flags: u16,
    method: u16,
    data_start: u64,
}

fn read_local(src: &Bounded<'_>, archive: &Archive, entry: &Entry) -> Result<Local, InspectError> {
    let at = archive
        .absolute(entry.local_header_offset)
        .ok_or(InspectError::Truncated("local header"))?;
    let h = src.read_exact(at, LOCAL_LEN, "local header")?;
    if le::u32(&h, 0)? != SIG_LOCAL {
        return Err(InspectError::malformed("local header: bad signature"));
    }
    let name_len = u64::from(le::u16(&h, 26)?);
    let extra_len = u64::from(le::u16(&h, 28)?);
    let data_start = at
        .checked_add(LOCAL_LEN as u64 + name_len + extra_len)
        .ok_or(InspectError::Truncated("local header"))?;
    Ok(Local {
        flags: le::u16(&h, 6)?,
        method: le::u16(&h, 8)?,
        data_start,
    })
}

/// Whether the local header disagrees with the central directory about encryption. Masked local
/// headers (bit 13) carry placeholder values and are not compared.
fn local_contradiction(entry: &Entry, local: Local) -> Option<String> {
    if local.flags & FLAG_MASKED != 0 {
        return None;
    }
    let central = entry.flags & FLAG_ENCRYPTED != 0;
    let here = local.flags & FLAG_ENCRYPTED != 0;
    if central != here {
        return Some(format!(
            "the central directory says {}, the local header says {}",
            if central {
                "encrypted"
            } else {
                "not encrypted"
            },
            if here { "encrypted" } else { "not encrypted" }
        ));
    }
    if (entry.method == METHOD_AES) != (local.method == METHOD_AES) {
        return Some(format!(
            "compression method {} in the central directory, {} in the local header",
            entry.method, local.method
        ));
    }
    None
}

/// Whether an entry flagged as encrypted is in fact readable: its raw data decompresses (or is
/// stored) to its declared size with its declared CRC-32. Encrypted data matches by chance with
/// probability 2^-32, so a match proves the flag wrong.
fn is_readable_plaintext(src: &Bounded<'_>, entry: &Entry, local: Local) -> bool {
    let method = if entry.method == METHOD_AES {
        match entry.aes {
            Some(a) => a.method,
            None => return false,
        }
    } else {
        entry.method
    };
    // AE-2 stores no CRC: nothing to prove with.
    if entry.crc32 == 0 && entry.uncompressed_size > 0 {
        return false;
    }
    if entry.compressed_size > MAX_PROBE_BYTES
        || entry.uncompressed_size > MAX_PART_BYTES as u64
        || !matches!(method, METHOD_STORED | METHOD_DEFLATE)
    {
        return false;
    }
    let Ok(len) = usize::try_from(entry.compressed_size) else {
        return false;
    };
    let Ok(data) = src.read_exact(local.data_start, len, "entry data") else {
        return false;
    };
    let Ok(size) = usize::try_from(entry.uncompressed_size) else {
        return false;
    };
    let out = if method == METHOD_STORED {
        data
    } else {
        match inflate(&data, size) {
            Ok((out, _)) => out,
            Err(_) => return false,
        }
    };
    out.len() == size && crc32(&out) == entry.crc32
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(data);
    crc.sum()
}

/// Inflates raw deflate data to at most `limit + 1` bytes (one more than allowed, so the caller
/// sees an overrun); returns the output and the input consumed.
fn inflate(data: &[u8], limit: usize) -> std::io::Result<(Vec<u8>, u64)> {
    let mut decoder = flate2::read::DeflateDecoder::new(data);
    let mut out = Vec::new();
    (&mut decoder)
        .take((limit as u64).saturating_add(1))
        .read_to_end(&mut out)?;
    Ok((out, decoder.total_in()))
}

/// How one entry was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Judgement {
    Plain,
    Encrypted(Scheme),
    /// The entry's metadata contradicts itself and its data did not settle it.
    Doubtful,
}

/// Counts of judged entries, and what describes the encrypted ones.
#[derive(Debug, Default)]
struct Tally {
    files: usize,
    plain: usize,
    doubtful: usize,
    /// Entries flagged as encrypted whose data proved readable.
    flag_lies: usize,
    schemes: BTreeSet<Scheme>,
    encrypted: usize,
    kinds: BTreeSet<String>,
}

fn describe_kind(entry: &Entry, scheme: Scheme) -> Option<String> {
    match scheme {
        Scheme::Aes => entry.aes.filter(|a| a.is_valid()).map(AesExtra::describe),
        Scheme::Strong => Some(match entry.strong {
            Some(s) => strong_algorithm(s.alg_id).to_string(),
            None => "algorithm in the decryption header".to_string(),
        }),
        Scheme::Traditional => None,
    }
}

/// Judges every entry that holds content and turns the counts into a verdict.
fn judge(src: &Bounded<'_>, archive: &Archive, notes: &mut Vec<String>) -> EncryptionVerdict {
    let mut tally = Tally::default();
    let mut local_checks = 0usize;
    let mut probes = 0usize;
    let mut entry_notes = 0usize;
    let mut note = |notes: &mut Vec<String>, text: String| {
        entry_notes += 1;
        if entry_notes <= MAX_ENTRY_NOTES {
            notes.push(text);
        }
    };
    for entry in archive.entries.iter().filter(|e| e.holds_content()) {
        tally.files += 1;
        let (scheme, mut doubt) = claim(entry);
        // The data of small entries that claim encryption (or contradict themselves) is probed
        // for readable plaintext; that needs the local header anyway.
        let probe_wanted = (scheme.is_some() || doubt.is_some())
            && probes < MAX_PLAIN_PROBES
            && entry.compressed_size <= MAX_PROBE_BYTES;
        let mut local = None;
        if local_checks < MAX_LOCAL_CHECKS || probe_wanted {
            local_checks += 1;
            match read_local(src, archive, entry) {
                Ok(l) => {
                    local = Some(l);
                    if doubt.is_none() {
                        doubt = local_contradiction(entry, l);
                    }
                }
                Err(e) => note(notes, format!("zip: {}: {e}", entry.name)),
            }
        }
        let suspect = scheme.is_some() || doubt.is_some();
        let mut proven_plain = false;
        if let (true, Some(l)) = (suspect, local) {
            if probes < MAX_PLAIN_PROBES && entry.compressed_size <= MAX_PROBE_BYTES {
                probes += 1;
                proven_plain = is_readable_plaintext(src, entry, l);
            }
        }
        let judgement = if proven_plain {
            if scheme.is_some() || entry.is_flagged_encrypted() {
                tally.flag_lies += 1;
                note(
                    notes,
                    format!(
                        "zip: {}: encryption flag set but the data is readable (CRC-32 matches)",
                        entry.name
                    ),
                );
            }
            Judgement::Plain
        } else if let Some(d) = doubt {
            note(notes, format!("zip: {}: {d}", entry.name));
            Judgement::Doubtful
        } else {
            match scheme {
                Some(s) => Judgement::Encrypted(s),
                None => Judgement::Plain,
            }
        };
        match judgement {
            Judgement::Plain => tally.plain += 1,
            Judgement::Doubtful => tally.doubtful += 1,
            Judgement::Encrypted(s) => {
                tally.encrypted += 1;
                tally.schemes.insert(s);
                if let Some(k) = describe_kind(entry, s) {
                    tally.kinds.insert(k);
                }
            }
        }
    }
    if entry_notes > MAX_ENTRY_NOTES {
        notes.push(format!(
            "zip: {} more entry problems not listed",
            entry_notes - MAX_ENTRY_NOTES
        ));
    }
    verdict(&tally, archive)
}

/// Decides only what the counts support: doubtful entries and unread entries could change an
/// `encrypted` or `plaintext` outcome, so either one makes the verdict `unknown` unless the archive
/// is already known to mix encrypted and plain entries.
fn verdict(t: &Tally, archive: &Archive) -> EncryptionVerdict {
    use EncryptionStatus::{Encrypted, Partial, Plaintext, Unknown};
    let scheme = match (t.schemes.len(), t.schemes.iter().next()) {
        (1, Some(s)) => s.as_str(),
        _ => "zip",
    };
    let mut counts = format!("{} of {} entries encrypted", t.encrypted, t.files);
    if t.schemes.len() > 1 {
        let names: Vec<&str> = t.schemes.iter().map(|s| s.as_str()).collect();
        counts.push_str(&format!(" ({})", names.join(", ")));
    }
    if !t.kinds.is_empty() {
        let kinds: Vec<&str> = t.kinds.iter().map(String::as_str).collect();
        counts.push_str(&format!("; {}", kinds.join(", ")));
    }
    if t.encrypted > 0 && t.plain > 0 {
        if !archive.complete {
            counts.push_str("; central directory read in part");
        }
        return EncryptionVerdict::new(Partial, scheme).with_detail(counts);
    }
    if !archive.complete {
        return EncryptionVerdict::new(Unknown, "zip").with_detail(format!(
            "central directory read in part: {} of {} entries, {counts}",
            archive.entries.len(),
            archive.declared_entries
        ));
    }
    if t.doubtful > 0 {
        return EncryptionVerdict::new(Unknown, "zip").with_detail(format!(
            "{} of {} entries carry contradictory encryption metadata",
            t.doubtful, t.files
        ));
    }
    if t.files == 0 {
        return EncryptionVerdict::new(Plaintext, "zip").with_detail("no file content");
    }
    if t.encrypted == t.files {
        return EncryptionVerdict::new(Encrypted, scheme).with_detail(counts);
    }
    let v = EncryptionVerdict::new(Plaintext, "zip");
    if t.flag_lies > 0 {
        return v.with_detail(format!(
            "encryption flag on {} of {} entries contradicted by readable data",
            t.flag_lies, t.files
        ));
    }
    v
}

/// Why an entry could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The entry is encrypted; it is never decrypted.
    #[error("{0} is encrypted")]
    Encrypted(String),
    /// The entry is (or says it is) larger than allowed.
    #[error("{name} is larger than {limit} bytes")]
    TooLarge {
        /// Entry name.
        name: String,
        /// The output cap.
        limit: usize,
    },
    /// The entry expands implausibly.
    #[error("{name} expands more than {MAX_RATIO}:1")]
    Ratio {
        /// Entry name.
        name: String,
    },
    /// The entry inflates past the size its header declares.
    #[error("{0} inflates past its declared size")]
    Overrun(String),
    /// The entry's compression method is not read.
    #[error("{name} uses unsupported compression method {method}")]
    Unsupported {
        /// Entry name.
        name: String,
        /// The method.
        method: u16,
    },
    /// The entry's data is damaged.
    #[error("{name} is damaged: {why}")]
    Corrupt {
        /// Entry name.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// Reading the entry's header or data failed.
    #[error("{name}: {source}")]
    Read {
        /// Entry name.
        name: String,
        /// What went wrong.
        source: InspectError,
    },
}

/// Extracts one entry (stored or deflated), at most `max_output` bytes and never more than its
/// declared size; refuses encrypted entries and ratios above [`MAX_RATIO`] for entries above
/// [`RATIO_FLOOR`], and checks the CRC-32.
pub fn read_entry(
    src: &Bounded<'_>,
    archive: &Archive,
    entry: &Entry,
    max_output: usize,
) -> Result<Vec<u8>, ExtractError> {
    let name = || entry.name.clone();
    if entry.is_flagged_encrypted() || entry.flags & FLAG_STRONG != 0 {
        return Err(ExtractError::Encrypted(name()));
    }
    if !matches!(entry.method, METHOD_STORED | METHOD_DEFLATE) {
        return Err(ExtractError::Unsupported {
            name: name(),
            method: entry.method,
        });
    }
    let too_large = || ExtractError::TooLarge {
        name: name(),
        limit: max_output,
    };
    let size = usize::try_from(entry.uncompressed_size)
        .ok()
        .filter(|&s| s <= max_output)
        .ok_or_else(too_large)?;
    let ratio_refused =
        |out: u64, input: u64| out > RATIO_FLOOR && out > input.saturating_mul(MAX_RATIO);
    if ratio_refused(entry.uncompressed_size, entry.compressed_size) {
        return Err(ExtractError::Ratio { name: name() });
    }
    // Deflate never grows data by more than a few bytes per 16 KiB block, so more input than
    // this cannot inflate to an allowed size.
    let max_input = max_output
        .saturating_add(max_output / 8)
        .saturating_add(1024);
    let input_len = usize::try_from(entry.compressed_size)
        .ok()
        .filter(|&c| c <= max_input)
        .ok_or_else(too_large)?;
    let read_failed = |source| ExtractError::Read {
        name: name(),
        source,
    };
    let local = read_local(src, archive, entry).map_err(read_failed)?;
    if local.flags & FLAG_ENCRYPTED != 0 {
        return Err(ExtractError::Encrypted(name()));
    }
    let data = src
        .read_exact(local.data_start, input_len, "entry data")
        .map_err(read_failed)?;
    let out = if entry.method == METHOD_STORED {
        if data.len() != size {
            return Err(ExtractError::Corrupt {
                name: name(),
                why: "stored size differs from declared size".to_string(),
            });
        }
        data
    } else {
        let (out, consumed) = inflate(&data, size).map_err(|e| ExtractError::Corrupt {
            name: name(),
            why: e.to_string(),
        })?;
        if out.len() > size {
            return Err(ExtractError::Overrun(name()));
        }
        if ratio_refused(out.len() as u64, consumed) {
            return Err(ExtractError::Ratio { name: name() });
        }
        out
    };
    if out.len() != size || crc32(&out) != entry.crc32 {
        return Err(ExtractError::Corrupt {
            name: name(),
            why: "size or CRC-32 mismatch".to_string(),
        });
    }
    Ok(out)
}

/// Inspects a ZIP archive: per-entry encryption, and for OOXML packages the format and labels.
pub fn inspect_zip(src: &Bounded<'_>, name: &str) -> Result<Evidence, InspectError> {
    let archive = match read_directory(src)? {
        Directory::Encrypted { detail } => {
            return Ok(Evidence {
                encryption: Some(
                    EncryptionVerdict::new(EncryptionStatus::Encrypted, "zip-encrypted-directory")
                        .with_detail(detail),
                ),
                ..Evidence::default()
            });
        }
        Directory::Readable(archive) => archive,
    };
    let mut notes = archive.notes.clone();
    let mut verdict = judge(src, &archive, &mut notes);
    let mut evidence = Evidence::default();
    if ooxml::is_package(&archive) {
        let package = ooxml::inspect_package(src, &archive, name);
        evidence.format = Some(package.format);
        evidence.labels = package.labels;
        notes.extend(package.notes);
        // A package whose entries are readable is a plain document; password-protected Office
        // documents are OLE files, not ZIPs.
        if verdict.status == EncryptionStatus::Plaintext {
            verdict.scheme = Some("ooxml".to_string());
        }
    }
    evidence.encryption = Some(verdict);
    evidence.notes = notes;
    Ok(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A central directory header with the given fields and extra data.
    fn central(
        name: &str,
        flags: u16,
        method: u16,
        csize: u32,
        usize_: u32,
        extra: &[u8],
    ) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&SIG_CENTRAL.to_le_bytes());
        h.extend_from_slice(&[20, 3, 20, 0]);
        h.extend_from_slice(&flags.to_le_bytes());
        h.extend_from_slice(&method.to_le_bytes());
        h.extend_from_slice(&[0; 4]); // time, date
        h.extend_from_slice(&0x1234_5678u32.to_le_bytes());
        h.extend_from_slice(&csize.to_le_bytes());
        h.extend_from_slice(&usize_.to_le_bytes());
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        h.extend_from_slice(&[0; 10]); // comment length, disk, attributes
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        h.extend_from_slice(extra);
        h
    }

    fn eocd(entries: u16, cd_size: u32, cd_offset: u32, comment: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        e.extend_from_slice(&SIG_EOCD.to_le_bytes());
        e.extend_from_slice(&[0; 4]);
        e.extend_from_slice(&entries.to_le_bytes());
        e.extend_from_slice(&entries.to_le_bytes());
        e.extend_from_slice(&cd_size.to_le_bytes());
        e.extend_from_slice(&cd_offset.to_le_bytes());
        e.extend_from_slice(&(comment.len() as u16).to_le_bytes());
        e.extend_from_slice(comment);
        e
    }

    fn entry(flags: u16, method: u16, csize: u64) -> Entry {
        Entry {
            name: "a.txt".into(),
            flags,
            method,
            crc32: 1,
            compressed_size: csize,
            uncompressed_size: 100,
            local_header_offset: 0,
            aes: None,
            strong: None,
        }
    }

    #[test]
    fn end_record_is_found_behind_a_comment_that_contains_its_signature() {
        let mut comment = b"see PK".to_vec();
        comment.extend_from_slice(&SIG_EOCD.to_le_bytes());
        comment.extend_from_slice(&[0u8; 30]);
        let data = eocd(0, 0, 0, &comment);
        assert_eq!(find_eocd(&data, true), Some(0));
        // Padding after the record: only the fallback finds it.
        let mut padded = eocd(0, 0, 0, b"");
        padded.extend_from_slice(&[0; 10]);
        assert_eq!(find_eocd(&padded, true), None);
        assert_eq!(find_eocd(&padded, false), Some(0));
        assert_eq!(find_eocd(b"PK\x05\x06", false), None);
    }

    #[test]
    fn empty_archive_is_plaintext_with_no_content() {
        let data = eocd(0, 0, 0, b"");
        let src = Bounded::from_bytes(&data, 1 << 20);
        let Directory::Readable(a) = read_directory(&src).unwrap() else {
            panic!("expected a readable directory")
        };
        assert!(a.entries.is_empty() && a.complete);
        let v = judge(&src, &a, &mut Vec::new());
        assert_eq!(v.status, EncryptionStatus::Plaintext);
    }

    #[test]
    fn central_entries_read_zip64_aes_and_strong_extra_fields() {
        let mut zip64 = vec![0x01, 0x00, 16, 0];
        zip64.extend_from_slice(&5_000_000_000u64.to_le_bytes());
        zip64.extend_from_slice(&4_000_000_000u64.to_le_bytes());
        let mut aes = vec![0x01, 0x99, 7, 0, 2, 0, b'A', b'E', 3, 8, 0];
        aes.extend_from_slice(&zip64);
        let cd = central("big.bin", 1, 99, u32::MAX, u32::MAX, &aes);
        let (e, next) = parse_central_entry(&cd, 0).unwrap();
        assert_eq!(next, cd.len());
        assert_eq!(e.uncompressed_size, 5_000_000_000);
        assert_eq!(e.compressed_size, 4_000_000_000);
        assert_eq!(
            e.aes,
            Some(AesExtra {
                version: 2,
                strength: 3,
                method: 8
            })
        );
        assert_eq!(claim(&e), (Some(Scheme::Aes), None));

        let strong = [0x17, 0x00, 8, 0, 2, 0, 0x10, 0x66, 0, 1, 1, 0];
        let cd = central("s", 0x41, 8, 100, 90, &strong);
        let (e, _) = parse_central_entry(&cd, 0).unwrap();
        assert_eq!(e.strong.map(|s| s.alg_id), Some(0x6610));
        assert_eq!(
            describe_kind(&e, Scheme::Strong).as_deref(),
            Some("AES-256")
        );

        // A field whose length runs past the extra data is ignored, not read out of bounds.
        let cd = central("t", 0, 0, 1, 1, &[0x01, 0x99, 200, 0, 1]);
        assert_eq!(parse_central_entry(&cd, 0).unwrap().0.aes, None);
        assert!(parse_central_entry(&cd[..50], 0).is_none());
    }

    #[test]
    fn claims_are_cross_checked_against_the_entry_fields() {
        let cases: &[(Entry, Option<Scheme>, bool)] = &[
            (entry(0, 8, 50), None, false),
            (entry(1, 8, 50), Some(Scheme::Traditional), false),
            (entry(1, 8, 11), Some(Scheme::Traditional), true),
            (entry(1, 99, 50), Some(Scheme::Aes), true),
            (entry(0, 99, 50), None, true),
            (entry(0x40, 8, 50), None, true),
            (entry(0x41, 8, 50), Some(Scheme::Strong), false),
            (
                Entry {
                    aes: Some(AesExtra {
                        version: 1,
                        strength: 1,
                        method: 0,
                    }),
                    ..entry(1, 99, 19)
                },
                Some(Scheme::Aes),
                true,
            ),
            (
                Entry {
                    aes: Some(AesExtra {
                        version: 1,
                        strength: 1,
                        method: 0,
                    }),
                    ..entry(1, 99, 20)
                },
                Some(Scheme::Aes),
                false,
            ),
            (
                Entry {
                    aes: Some(AesExtra {
                        version: 3,
                        strength: 1,
                        method: 0,
                    }),
                    ..entry(1, 99, 200)
                },
                Some(Scheme::Aes),
                true,
            ),
        ];
        for (e, scheme, doubtful) in cases {
            let (s, d) = claim(e);
            assert_eq!(s, *scheme, "{e:?}");
            assert_eq!(d.is_some(), *doubtful, "{e:?}: {d:?}");
        }
    }

    #[test]
    fn verdicts_follow_the_counts_and_never_guess() {
        let complete = Archive {
            complete: true,
            ..Archive::default()
        };
        let tally = |plain, encrypted, doubtful| Tally {
            files: plain + encrypted + doubtful,
            plain,
            encrypted,
            doubtful,
            schemes: if encrypted > 0 {
                [Scheme::Traditional].into()
            } else {
                BTreeSet::new()
            },
            ..Tally::default()
        };
        let status = |t: &Tally, a: &Archive| verdict(t, a).status;
        use EncryptionStatus::*;
        assert_eq!(status(&tally(3, 0, 0), &complete), Plaintext);
        assert_eq!(status(&tally(0, 3, 0), &complete), Encrypted);
        let partial = verdict(&tally(1, 2, 0), &complete);
        assert_eq!(partial.status, Partial);
        assert_eq!(partial.detail.as_deref(), Some("2 of 3 entries encrypted"));
        assert_eq!(status(&tally(0, 2, 1), &complete), Unknown);
        assert_eq!(status(&tally(2, 0, 1), &complete), Unknown);
        assert_eq!(status(&tally(1, 1, 1), &complete), Partial);
        let incomplete = Archive::default();
        assert_eq!(status(&tally(3, 0, 0), &incomplete), Unknown);
        assert_eq!(status(&tally(0, 3, 0), &incomplete), Unknown);
        assert_eq!(status(&tally(1, 3, 0), &incomplete), Partial);
    }

    #[test]
    fn directories_and_empty_files_hold_no_content_but_oversized_empties_do() {
        let mut d = entry(0, 0, 0);
        d.name = "dir/".into();
        d.uncompressed_size = 0;
        assert!(d.is_dir() && !d.holds_content());
        let mut empty = entry(1, 8, 14);
        empty.uncompressed_size = 0;
        assert!(!empty.holds_content());
        empty.compressed_size = 5000;
        assert!(empty.holds_content());
    }

    #[test]
    fn inflate_stops_one_byte_past_the_limit() {
        use std::io::Write;
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&[b' '; 100_000]).unwrap();
        let data = enc.finish().unwrap();
        let (out, _) = inflate(&data, 1000).unwrap();
        assert_eq!(out.len(), 1001);
        assert!(inflate(&data[..data.len() / 2], 1 << 20).is_err() || data.len() < 4);
    }
}

//! Legacy and protected Office documents inside OLE: properties, labels and encryption.
//!
//! An OLE compound file is a container, and being one says nothing about encryption: a plain
//! `.doc` is OLE, and so is a password-encrypted `.docx`. So the verdict comes from the streams
//! that each kind of document defines, in this order:
//!
//! 1. IRM/Purview protection ([MS-OFFCRYPTO] 2.1, 2.2): `\x06DataSpaces` maps a stream to a data
//!    space whose transform is the DRM transform `{C73DFACD-061F-43B0-8B64-0C620D2A8B50}`.
//! 2. Password-encrypted OOXML ([MS-OFFCRYPTO] 2.3.4): an `EncryptedPackage` stream, with the
//!    `EncryptionInfo` version telling Standard (2.3.4.5), Extensible (2.3.4.6) and Agile
//!    (2.3.4.10) encryption apart.
//! 3. Word ([MS-DOC] 2.5.2 FibBase, 2.2.6): `fEncrypted`/`fObfuscated`, and for RC4 the
//!    EncryptionHeader at the start of the table stream.
//! 4. Excel ([MS-XLS] 2.4.117 FilePass): a FILEPASS record in the workbook globals.
//! 5. PowerPoint ([MS-PPT] 2.3.2 CurrentUserAtom, 2.3.3 UserEditAtom, 2.3.7
//!    CryptSession10Container): the Current User header token, checked against the edit atom.
//!
//! Anything else (Outlook `.msg`, `Thumbs.db`, installer databases) is `unknown`, with a note.
//! Labels come from the user-defined property section of `\x05DocumentSummaryInformation`
//! ([MS-OLEPS] 2.20, 2.21) and from the LabelInfo stream of protected files ([MS-OFFCRYPTO]
//! 2.6.2), combined with [`msip::merge`].

use std::borrow::Cow;

use infoledger_policies::{EncryptionStatus, EncryptionVerdict, LabelSource};
use quick_xml::events::Event;

use super::cfb::{names_equal, CompoundFile, EntryId, EntryKind};
use super::source::le;
use super::{msip, Bounded, Evidence, InspectError};

/// The property set stream that holds user-defined (custom) document properties.
const DOC_SUMMARY: &str = "\u{5}DocumentSummaryInformation";
/// The storage of data-space (IRM and encryption) definitions.
const DATA_SPACES: &str = "\u{6}DataSpaces";
/// TransformID of the IRM (DRM) transform, [MS-OFFCRYPTO] 2.2.1/2.2.6.
pub const IRM_TRANSFORM_ID: &str = "{C73DFACD-061F-43B0-8B64-0C620D2A8B50}";
/// FMTID_UserDefinedProperties {D5CDD505-2E9C-101B-9397-08002B2CF9AE} as stored on disk.
const FMTID_USER_DEFINED: [u8; 16] = [
    0x05, 0xD5, 0xCD, 0xD5, 0x9C, 0x2E, 0x1B, 0x10, 0x93, 0x97, 0x08, 0x00, 0x2B, 0x2C, 0xF9, 0xAE,
];

/// Largest `EncryptionInfo` stream read (an Agile descriptor is a few KiB; certificates add more).
const MAX_ENCRYPTION_INFO: usize = 256 * 1024;
/// How much of a workbook stream is scanned for FILEPASS; it precedes every sheet record.
const MAX_WORKBOOK_SCAN: usize = 64 * 1024;
/// Most BIFF records looked at while searching for FILEPASS.
const MAX_BIFF_RECORDS: usize = 4096;
/// Largest data-space definition stream read (they hold a few names each).
const MAX_DATA_SPACE_STREAM: usize = 64 * 1024;
/// Most data-space map entries, transforms or references considered.
const MAX_DATA_SPACE_ITEMS: usize = 64;
/// Most properties read from one property set section.
const MAX_PROPERTIES: usize = 1024;
/// Longest property name or string value kept, in bytes.
const MAX_PROPERTY_STRING: usize = 64 * 1024;
/// Largest PersistDirectoryAtom read from a PowerPoint document.
const MAX_PERSIST_DIRECTORY: usize = 64 * 1024;

/// Inspects an OLE compound file: embedded labels, kind of document and encryption verdict.
pub fn inspect_ole(src: &Bounded<'_>) -> Result<Evidence, InspectError> {
    let mut cf = CompoundFile::open(src)?;
    let mut notes = Vec::new();
    let properties = user_property_labels(&mut cf, &mut notes);
    let label_info = label_info(&mut cf, &mut notes);
    let labels = msip::merge(label_info, properties);
    let (format, verdict) = classify(&mut cf, &mut notes);
    Ok(Evidence {
        labels,
        encryption: Some(verdict),
        format,
        notes,
    })
}

fn verdict(status: EncryptionStatus, scheme: &str, detail: impl Into<String>) -> EncryptionVerdict {
    EncryptionVerdict::new(status, scheme).with_detail(detail)
}

fn plain(scheme: &str) -> EncryptionVerdict {
    EncryptionVerdict::new(EncryptionStatus::Plaintext, scheme)
}

fn encrypted(scheme: &str, detail: impl Into<String>) -> EncryptionVerdict {
    verdict(EncryptionStatus::Encrypted, scheme, detail)
}

/// A structure that does not allow a verdict: `unknown`, with the reason as detail and note.
fn undecided(notes: &mut Vec<String>, why: impl Into<String>) -> EncryptionVerdict {
    let why = why.into();
    notes.push(why.clone());
    EncryptionVerdict {
        status: EncryptionStatus::Unknown,
        scheme: None,
        detail: Some(why),
    }
}

/// A stream name for people: OLE names may start with control characters (`\x06DataSpaces`).
fn printable(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).collect()
}

/// The kinds of legacy binary document, by their main stream.
#[derive(Debug, Clone, Copy)]
enum Binary {
    Word(EntryId),
    Excel(EntryId),
    PowerPoint {
        current_user: Option<EntryId>,
        document: Option<EntryId>,
    },
}

impl Binary {
    fn format(self) -> &'static str {
        match self {
            Binary::Word(_) => "doc",
            Binary::Excel(_) => "xls",
            Binary::PowerPoint { .. } => "ppt",
        }
    }
}

fn binary_kind(cf: &CompoundFile<'_, '_>) -> Option<Binary> {
    if let Some(id) = cf.find_stream(&["WordDocument"]) {
        return Some(Binary::Word(id));
    }
    // BIFF8 names the stream `Workbook`; BIFF5 (Excel 5/95) named it `Book`.
    if let Some(id) = cf
        .find_stream(&["Workbook"])
        .or_else(|| cf.find_stream(&["Book"]))
    {
        return Some(Binary::Excel(id));
    }
    let current_user = cf.find_stream(&["Current User"]);
    let document = cf.find_stream(&["PowerPoint Document"]);
    if current_user.is_some() || document.is_some() {
        return Some(Binary::PowerPoint {
            current_user,
            document,
        });
    }
    None
}

/// Decides the document kind and the encryption verdict.
fn classify(
    cf: &mut CompoundFile<'_, '_>,
    notes: &mut Vec<String>,
) -> (Option<&'static str>, EncryptionVerdict) {
    let binary = binary_kind(cf);
    let package = cf.find_stream(&["EncryptedPackage"]);
    let data_spaces = cf.find(&[DATA_SPACES]);
    if let Some(ds) = data_spaces {
        if let Some(detail) = irm_protection(cf, ds, notes) {
            let format = match (package, binary) {
                (Some(_), _) => Some("ooxml-encrypted"),
                (None, Some(b)) => Some(b.format()),
                (None, None) => None,
            };
            return (format, encrypted("irm", detail));
        }
    }
    if package.is_some() {
        let v = match ooxml_verdict(cf) {
            Ok(Some(v)) => v,
            Ok(None) => undecided(
                notes,
                "EncryptedPackage stream without an EncryptionInfo stream or an IRM data space",
            ),
            Err(e) => undecided(notes, format!("EncryptionInfo stream: {e}")),
        };
        return (Some("ooxml-encrypted"), v);
    }
    let Some(binary) = binary else {
        return other_kind(cf, data_spaces.is_some(), notes);
    };
    let result = match binary {
        Binary::Word(id) => word_verdict(cf, id, notes),
        Binary::Excel(id) => excel_verdict(cf, id, notes),
        Binary::PowerPoint {
            current_user,
            document,
        } => powerpoint_verdict(cf, current_user, document, notes),
    };
    let v = result.unwrap_or_else(|e| {
        undecided(
            notes,
            format!("{} document streams unreadable: {e}", binary.format()),
        )
    });
    (Some(binary.format()), v)
}

/// OLE files that are not Office documents: named where cheap, never judged.
fn other_kind(
    cf: &CompoundFile<'_, '_>,
    data_spaces: bool,
    notes: &mut Vec<String>,
) -> (Option<&'static str>, EncryptionVerdict) {
    let is_msg = cf.children(0).into_iter().any(|c| {
        cf.entry(c).is_some_and(|e| {
            e.name.starts_with("__substg1.0_") || e.name == "__properties_version1.0"
        })
    });
    if is_msg {
        return (
            Some("msg"),
            undecided(
                notes,
                "Outlook message: encryption of its body is not judged",
            ),
        );
    }
    if data_spaces {
        return (
            None,
            undecided(
                notes,
                "compound file with data spaces but no IRM transform, encrypted package or Office document stream",
            ),
        );
    }
    (
        None,
        undecided(
            notes,
            "compound file of unknown kind: no Word, Excel, PowerPoint or encrypted-package stream",
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// IRM data spaces ([MS-OFFCRYPTO] 2.1.5–2.1.8, 2.2)

/// A UNICODE-LP-P4 string ([MS-OFFCRYPTO] 2.1.2) at `at`: its text and the offset after it.
fn lp_p4(b: &[u8], at: usize) -> Result<(String, usize), InspectError> {
    let len = le::u32(b, at)? as usize;
    if len > 4096 {
        return Err(InspectError::malformed("data-space string too long"));
    }
    let start = at.checked_add(4).ok_or(InspectError::Truncated("field"))?;
    let text = start
        .checked_add(len)
        .and_then(|end| b.get(start..end))
        .ok_or(InspectError::Truncated("data-space string"))?;
    Ok((utf16_lossy(text), start + len.div_ceil(4) * 4))
}

/// The (first reference component, data space name) pairs of a DataSpaceMap stream (2.1.6).
pub fn parse_data_space_map(b: &[u8]) -> Result<Vec<(String, String)>, InspectError> {
    let header = le::u32(b, 0)? as usize;
    let count = (le::u32(b, 4)? as usize).min(MAX_DATA_SPACE_ITEMS);
    let mut at = header.max(8);
    let mut out = Vec::new();
    for _ in 0..count {
        let entry_len = le::u32(b, at)? as usize;
        let components = (le::u32(b, at.saturating_add(4))? as usize).min(MAX_DATA_SPACE_ITEMS);
        let mut p = at.saturating_add(8);
        let mut first = None;
        for _ in 0..components {
            // ReferenceComponentType (stream 0 / storage 1), then the component's name.
            let (name, next) = lp_p4(b, p.saturating_add(4))?;
            first.get_or_insert(name);
            p = next;
        }
        let (space, _) = lp_p4(b, p)?;
        out.push((first.unwrap_or_default(), space));
        if entry_len < 8 {
            break;
        }
        at = at
            .checked_add(entry_len)
            .ok_or(InspectError::Truncated("field"))?;
    }
    Ok(out)
}

/// The transform names a DataSpaceDefinition stream (2.1.7) references.
pub fn parse_data_space_definition(b: &[u8]) -> Result<Vec<String>, InspectError> {
    let header = le::u32(b, 0)? as usize;
    let count = (le::u32(b, 4)? as usize).min(MAX_DATA_SPACE_ITEMS);
    let mut at = header.max(8);
    let mut out = Vec::new();
    for _ in 0..count {
        let (name, next) = lp_p4(b, at)?;
        out.push(name);
        at = next;
    }
    Ok(out)
}

/// The TransformID of a TransformInfoHeader (2.1.8), found at the start of a `\x06Primary` stream.
pub fn parse_transform_id(b: &[u8]) -> Result<String, InspectError> {
    Ok(lp_p4(b, 8)?.0)
}

/// Whether the data spaces protect content with the IRM transform; `Some(how)` if they do.
fn irm_protection(
    cf: &mut CompoundFile<'_, '_>,
    ds: EntryId,
    notes: &mut Vec<String>,
) -> Option<String> {
    // Transform storages, and which of them carry the IRM transform id.
    let mut irm_transforms = Vec::new();
    let mut transform_ids_read = 0;
    let mut drm_names = Vec::new();
    if let Some(ti) = cf.child(ds, "TransformInfo") {
        for t in cf.children(ti).into_iter().take(MAX_DATA_SPACE_ITEMS) {
            let Some(entry) = cf.entry(t).filter(|e| e.kind == Some(EntryKind::Storage)) else {
                continue;
            };
            let name = entry.name.clone();
            if name.to_ascii_uppercase().contains("DRM") {
                drm_names.push(name.clone());
            }
            let Some(primary) = cf.child(t, "\u{6}Primary").filter(|&p| cf.is_stream(p)) else {
                continue;
            };
            match cf
                .read_stream(primary, 4096)
                .and_then(|b| parse_transform_id(&b))
            {
                Ok(id) => {
                    transform_ids_read += 1;
                    if id.trim().eq_ignore_ascii_case(IRM_TRANSFORM_ID) {
                        irm_transforms.push(name);
                    }
                }
                Err(e) => notes.push(format!("data-space transform {}: {e}", printable(&name))),
            }
        }
    }
    // Which stream each data space protects, and through which transforms.
    let map = match cf.child(ds, "DataSpaceMap").filter(|&m| cf.is_stream(m)) {
        Some(m) => match cf
            .read_stream(m, MAX_DATA_SPACE_STREAM)
            .and_then(|b| parse_data_space_map(&b))
        {
            Ok(map) => map,
            Err(e) => {
                notes.push(format!("DataSpaceMap stream: {e}"));
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let info = cf.child(ds, "DataSpaceInfo");
    for (stream, space) in &map {
        if space.to_ascii_uppercase().contains("DRM") {
            drm_names.push(space.clone());
        }
        let Some(def) = info
            .and_then(|i| cf.child(i, space))
            .filter(|&d| cf.is_stream(d))
        else {
            continue;
        };
        let refs = match cf
            .read_stream(def, MAX_DATA_SPACE_STREAM)
            .and_then(|b| parse_data_space_definition(&b))
        {
            Ok(refs) => refs,
            Err(e) => {
                notes.push(format!("data-space definition {}: {e}", printable(space)));
                continue;
            }
        };
        if refs
            .iter()
            .any(|r| irm_transforms.iter().any(|t| names_equal(r, t)))
        {
            return Some(format!(
                "stream {} protected by data space {} with the IRM transform",
                printable(stream),
                printable(space)
            ));
        }
    }
    if let Some(t) = irm_transforms.first() {
        return Some(format!("IRM transform {}", printable(t)));
    }
    // Only when no transform header could be read at all do the Microsoft-defined names
    // (DRMEncryptedDataSpace, DRMEncryptedTransform, \x09DRMDataSpace) decide.
    if transform_ids_read == 0 {
        if let Some(name) = drm_names.first() {
            return Some(format!("IRM data space {}", printable(name)));
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Password-encrypted OOXML ([MS-OFFCRYPTO] 2.3.4)

fn ooxml_verdict(cf: &mut CompoundFile<'_, '_>) -> Result<Option<EncryptionVerdict>, InspectError> {
    let Some(info) = cf.find_stream(&["EncryptionInfo"]) else {
        return Ok(None);
    };
    let bytes = cf.read_stream(info, MAX_ENCRYPTION_INFO)?;
    Ok(Some(encryption_info_verdict(&bytes)?))
}

/// The verdict an `EncryptionInfo` stream supports: its version decides the scheme.
pub fn encryption_info_verdict(b: &[u8]) -> Result<EncryptionVerdict, InspectError> {
    let major = le::u16(b, 0)?;
    let minor = le::u16(b, 2)?;
    Ok(match (major, minor) {
        (4, 4) => {
            let detail = b
                .get(8..)
                .map(agile_detail)
                .unwrap_or_else(|| "Agile encryption".into());
            encrypted("ooxml-agile", detail)
        }
        (2..=4, 2) => {
            // EncryptionInfo.Flags, then the EncryptionHeader (2.3.2) after its size field.
            let flags = le::u32(b, 4).unwrap_or(0);
            let header_flags = le::u32(b, 12).unwrap_or(0);
            if (flags | header_flags) & 0x10 != 0 {
                encrypted("ooxml-extensible", "fExternal set")
            } else {
                let alg = le::u32(b, 20).unwrap_or(0);
                encrypted("ooxml-standard", cipher_name(alg, flags | header_flags))
            }
        }
        (3 | 4, 3) => encrypted("ooxml-extensible", "Extensible encryption"),
        _ => encrypted(
            "ooxml-encrypted",
            format!("EncryptionInfo version {major}.{minor} not recognised"),
        ),
    })
}

/// The cipher an EncryptionHeader's AlgID names ([MS-OFFCRYPTO] 2.3.2).
fn cipher_name(alg: u32, flags: u32) -> String {
    match alg {
        0x6801 => "RC4".into(),
        0x660E => "AES-128".into(),
        0x660F => "AES-192".into(),
        0x6610 => "AES-256".into(),
        // 0 means "decided by the flags": fAES (0x20) gives AES-128, else RC4.
        0 if flags & 0x20 != 0 => "AES-128".into(),
        0 => "RC4".into(),
        other => format!("algorithm {other:#06x}"),
    }
}

/// The cipher and key encryptor of an Agile XML descriptor (2.3.4.10), for the detail.
fn agile_detail(xml: &[u8]) -> String {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut cipher = None;
    let mut encryptors = Vec::new();
    // A descriptor has a handful of elements; the bound stops pathological inputs.
    for _ in 0..10_000 {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => match e.local_name().as_ref() {
                b"keyData" if cipher.is_none() => {
                    let mut alg = String::new();
                    let mut bits = String::new();
                    for a in e.attributes().with_checks(false).flatten() {
                        let v = String::from_utf8_lossy(&a.value).into_owned();
                        match a.key.local_name().as_ref() {
                            b"cipherAlgorithm" => alg = v,
                            b"keyBits" => bits = v,
                            _ => {}
                        }
                    }
                    if !alg.is_empty() {
                        cipher = Some(if bits.is_empty() {
                            alg
                        } else {
                            format!("{alg}-{bits}")
                        });
                    }
                }
                b"keyEncryptor" => {
                    for a in e.attributes().with_checks(false).flatten() {
                        if a.key.local_name().as_ref() == b"uri" {
                            let uri = String::from_utf8_lossy(&a.value).into_owned();
                            let kind = uri.rsplit('/').next().unwrap_or_default().to_string();
                            if !kind.is_empty() && !encryptors.contains(&kind) {
                                encryptors.push(kind);
                            }
                        }
                    }
                }
                _ => {}
            },
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
        buf.clear();
    }
    let mut parts: Vec<String> = cipher.into_iter().collect();
    parts.extend(encryptors);
    if parts.is_empty() {
        "Agile encryption".into()
    } else {
        parts.join(", ")
    }
}

/// The cipher family that an RC4 EncryptionVersionInfo ([MS-OFFCRYPTO] 2.3.5.1, 2.3.6.1)
/// announces: `Some("rc4")` for 1.1, `Some("cryptoapi")` for 2/3/4.2.
fn rc4_family(major: u16, minor: u16) -> Option<&'static str> {
    match (major, minor) {
        (1, 1) => Some("rc4"),
        (2..=4, 2) => Some("cryptoapi"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Word ([MS-DOC] 2.5.2, 2.2.6)

/// The verdict of a Word FibBase (at least its first 0x12 bytes) and, for RC4, the first bytes of
/// the table stream it names.
pub fn word_fib_verdict(
    fib: &[u8],
    table_header: Option<&[u8]>,
) -> Result<EncryptionVerdict, InspectError> {
    let flags = le::u16(fib, 0x0A)?;
    let encrypted_flag = flags & 0x0100 != 0;
    let obfuscated = flags & 0x8000 != 0;
    if !encrypted_flag {
        // fObfuscated only counts when fEncrypted is set (2.5.2).
        return Ok(plain("doc"));
    }
    if obfuscated {
        return Ok(encrypted(
            "doc-xor",
            "XOR obfuscation (FibBase.fObfuscated)",
        ));
    }
    let table = if flags & 0x0200 != 0 {
        "1Table"
    } else {
        "0Table"
    };
    let Some(header) = table_header else {
        return Ok(encrypted(
            "doc",
            format!("FibBase.fEncrypted set; table stream {table} missing"),
        ));
    };
    let version = (le::u16(header, 0), le::u16(header, 2));
    Ok(match version {
        (Ok(major), Ok(minor)) => match rc4_family(major, minor) {
            Some("rc4") => encrypted("doc-rc4", "RC4 encryption header 1.1"),
            Some(_) => encrypted(
                "doc-cryptoapi",
                format!("RC4 CryptoAPI encryption header {major}.{minor}"),
            ),
            None => encrypted(
                "doc",
                format!("FibBase.fEncrypted set; encryption header version {major}.{minor} not recognised"),
            ),
        },
        _ => encrypted("doc", "FibBase.fEncrypted set; encryption header truncated"),
    })
}

fn word_verdict(
    cf: &mut CompoundFile<'_, '_>,
    id: EntryId,
    notes: &mut Vec<String>,
) -> Result<EncryptionVerdict, InspectError> {
    let fib = cf.read_stream(id, 32)?;
    if le::u16(&fib, 0).ok() != Some(0xA5EC) || fib.len() < 0x12 {
        return Ok(undecided(
            notes,
            "WordDocument stream without a Word FIB (wIdent 0xA5EC)",
        ));
    }
    let flags = le::u16(&fib, 0x0A)?;
    let table_header = if flags & 0x0100 != 0 && flags & 0x8000 == 0 {
        let table = if flags & 0x0200 != 0 {
            "1Table"
        } else {
            "0Table"
        };
        match cf.find_stream(&[table]) {
            Some(t) => Some(cf.read_stream(t, 4)?),
            None => None,
        }
    } else {
        None
    };
    word_fib_verdict(&fib, table_header.as_deref())
}

// ---------------------------------------------------------------------------------------------
// Excel ([MS-XLS] 2.4.21 BOF, 2.4.117 FilePass)

/// The verdict of a workbook stream's first records: a FILEPASS record before the first sheet.
pub fn workbook_verdict(data: &[u8]) -> Result<Option<EncryptionVerdict>, InspectError> {
    let mut at = 0usize;
    let mut biff5 = false;
    for index in 0..MAX_BIFF_RECORDS {
        let (Ok(kind), Ok(len)) = (le::u16(data, at), le::u16(data, at + 2)) else {
            break;
        };
        let body_start = at + 4;
        let body_end = (body_start + usize::from(len)).min(data.len());
        let body = data.get(body_start..body_end).unwrap_or(&[]);
        if index == 0 {
            if kind != 0x0809 {
                return Err(InspectError::malformed(
                    "workbook stream does not start with a BOF record",
                ));
            }
            biff5 = le::u16(body, 0).ok() == Some(0x0500);
        } else {
            match kind {
                0x002F => return Ok(Some(filepass_verdict(body, biff5))),
                // BoundSheet8, EOF, InterfaceHdr, WriteAccess, CodePage: records that follow
                // FilePass in the globals substream (2.1.7.20.3), so none is coming.
                0x0085 | 0x000A | 0x00E1 | 0x005C | 0x0042 => return Ok(Some(plain("xls"))),
                _ => {}
            }
        }
        at = body_start + usize::from(len);
    }
    Ok(None)
}

/// What a FILEPASS record's body says.
fn filepass_verdict(body: &[u8], biff5: bool) -> EncryptionVerdict {
    // BIFF5 knows only XOR obfuscation, with no encryption type field.
    if biff5 || body.len() == 4 {
        return encrypted("xls-xor", "FILEPASS XOR obfuscation");
    }
    match le::u16(body, 0) {
        Ok(0) => encrypted("xls-xor", "FILEPASS XOR obfuscation"),
        Ok(1) => match (le::u16(body, 2), le::u16(body, 4)) {
            (Ok(major), Ok(minor)) => match rc4_family(major, minor) {
                Some("rc4") => encrypted("xls-rc4", "FILEPASS RC4 encryption header 1.1"),
                Some(_) => encrypted(
                    "xls-cryptoapi",
                    format!("FILEPASS RC4 CryptoAPI encryption header {major}.{minor}"),
                ),
                None => encrypted(
                    "xls",
                    format!("FILEPASS RC4 header version {major}.{minor} not recognised"),
                ),
            },
            _ => encrypted("xls", "FILEPASS RC4 header truncated"),
        },
        Ok(other) => encrypted(
            "xls",
            format!("FILEPASS encryption type {other} not recognised"),
        ),
        Err(_) => encrypted("xls", "FILEPASS record truncated"),
    }
}

fn excel_verdict(
    cf: &mut CompoundFile<'_, '_>,
    id: EntryId,
    notes: &mut Vec<String>,
) -> Result<EncryptionVerdict, InspectError> {
    let data = cf.read_stream(id, MAX_WORKBOOK_SCAN)?;
    Ok(match workbook_verdict(&data) {
        Ok(Some(v)) => v,
        Ok(None) => undecided(
            notes,
            "workbook stream: no FILEPASS or sheet record in its first records",
        ),
        Err(e) => undecided(notes, e.to_string()),
    })
}

// ---------------------------------------------------------------------------------------------
// PowerPoint ([MS-PPT] 2.3.2, 2.3.3, 2.3.4, 2.3.7)

const TOKEN_PLAIN: u32 = 0xE391_C05F;
const TOKEN_ENCRYPTED: u32 = 0xF3D1_C4DF;

/// What the edit atom that the Current User stream points to says about encryption.
#[derive(Debug, PartialEq, Eq)]
enum CryptSession {
    /// No encryptSessionPersistIdRef: the document is not encrypted.
    Absent,
    /// The reference resolves to a CryptSession10Container with this encryption header version.
    Found(u16, u16),
    /// A reference is there but could not be followed; the reason.
    Unresolved(String),
}

fn crypt_session(
    cf: &mut CompoundFile<'_, '_>,
    document: Option<EntryId>,
    edit_offset: u32,
) -> Result<CryptSession, InspectError> {
    let Some(doc) = document else {
        return Ok(CryptSession::Unresolved(
            "PowerPoint Document stream missing".into(),
        ));
    };
    let edit = cf.read_range(doc, u64::from(edit_offset), 40)?;
    if le::u16(&edit, 2).ok() != Some(0x0FF5) {
        return Ok(CryptSession::Unresolved("UserEditAtom not found".into()));
    }
    // recLen 0x1C without encryptSessionPersistIdRef, 0x20 with it.
    if le::u32(&edit, 4)? < 0x20 {
        return Ok(CryptSession::Absent);
    }
    let persist_ref = le::u32(&edit, 36)?;
    let dir_offset = le::u32(&edit, 20)?;
    let head = cf.read_range(doc, u64::from(dir_offset), 8)?;
    if le::u16(&head, 2).ok() != Some(0x1772) {
        return Ok(CryptSession::Unresolved(
            "PersistDirectoryAtom not found".into(),
        ));
    }
    let len = (le::u32(&head, 4)? as usize).min(MAX_PERSIST_DIRECTORY);
    let dir = cf.read_range(doc, u64::from(dir_offset) + 8, len)?;
    // PersistDirectoryEntry: persistId (20 bits), cPersist (12 bits), then cPersist offsets.
    let mut at = 0usize;
    let mut target = None;
    for _ in 0..dir.len() / 4 {
        let Ok(head) = le::u32(&dir, at) else { break };
        let first = head & 0x000F_FFFF;
        let count = head >> 20;
        if persist_ref >= first && persist_ref - first < count {
            let slot = at + 4 + 4 * (persist_ref - first) as usize;
            target = le::u32(&dir, slot).ok();
            break;
        }
        at = at + 4 + 4 * count as usize;
    }
    let Some(offset) = target else {
        return Ok(CryptSession::Unresolved(
            "encryptSessionPersistIdRef not in the persist directory".into(),
        ));
    };
    let container = cf.read_range(doc, u64::from(offset), 12)?;
    if le::u16(&container, 2).ok() != Some(0x2F14) {
        return Ok(CryptSession::Unresolved(
            "CryptSession10Container not found".into(),
        ));
    }
    Ok(CryptSession::Found(
        le::u16(&container, 8)?,
        le::u16(&container, 10)?,
    ))
}

fn powerpoint_verdict(
    cf: &mut CompoundFile<'_, '_>,
    current_user: Option<EntryId>,
    document: Option<EntryId>,
    notes: &mut Vec<String>,
) -> Result<EncryptionVerdict, InspectError> {
    let Some(cu) = current_user else {
        return Ok(undecided(
            notes,
            "PowerPoint document without a Current User stream",
        ));
    };
    let atom = cf.read_stream(cu, 64)?;
    if le::u16(&atom, 2).ok() != Some(0x0FF6) {
        return Ok(undecided(
            notes,
            "Current User stream without a CurrentUserAtom",
        ));
    }
    let token = le::u32(&atom, 12)?;
    let edit_offset = le::u32(&atom, 16)?;
    let session = crypt_session(cf, document, edit_offset)
        .unwrap_or_else(|e| CryptSession::Unresolved(e.to_string()));
    Ok(match (token, session) {
        (TOKEN_PLAIN, CryptSession::Absent) => plain("ppt"),
        (TOKEN_PLAIN, CryptSession::Found(major, minor)) => encrypted(
            "ppt-cryptoapi",
            format!("CryptSession10Container {major}.{minor}, although the Current User token says unencrypted"),
        ),
        (TOKEN_PLAIN, CryptSession::Unresolved(why)) => {
            notes.push(format!("PowerPoint edit atom: {why}"));
            plain("ppt")
        }
        (TOKEN_ENCRYPTED, CryptSession::Found(major, minor)) => encrypted(
            "ppt-cryptoapi",
            format!("CryptSession10Container with RC4 CryptoAPI header {major}.{minor}"),
        ),
        (TOKEN_ENCRYPTED, CryptSession::Absent) => encrypted(
            "ppt-cryptoapi",
            "Current User token says encrypted; the edit atom names no CryptSession10Container",
        ),
        (TOKEN_ENCRYPTED, CryptSession::Unresolved(why)) => encrypted(
            "ppt-cryptoapi",
            format!("Current User token says encrypted; {why}"),
        ),
        (other, _) => undecided(
            notes,
            format!("Current User header token {other:#010x} not recognised"),
        ),
    })
}

// ---------------------------------------------------------------------------------------------
// Labels: user-defined properties ([MS-OLEPS]) and the LabelInfo stream ([MS-OFFCRYPTO] 2.6)

fn user_property_labels(
    cf: &mut CompoundFile<'_, '_>,
    notes: &mut Vec<String>,
) -> Vec<infoledger_policies::DetectedLabel> {
    let Some(id) = cf.find_stream(&[DOC_SUMMARY]) else {
        return Vec::new();
    };
    let pairs = match cf
        .read_stream(id, msip::MAX_LABEL_XML)
        .and_then(|b| user_defined_properties(&b, notes))
    {
        Ok(pairs) => pairs,
        Err(e) => {
            notes.push(format!("DocumentSummaryInformation stream: {e}"));
            return Vec::new();
        }
    };
    // Every name that can carry a label (`MSIP_Label_*`, `Sensitivity`,
    // `bjDocumentSecurityLabel`) is ASCII; other names are left out before matching.
    msip::labels_from_properties(
        pairs
            .iter()
            .filter(|(k, _)| k.is_ascii())
            .map(|(k, v)| (k.as_str(), v.as_str())),
        LabelSource::CustomProperties,
    )
}

/// The user-defined properties (name, value as text) of a DocumentSummaryInformation property
/// set stream ([MS-OLEPS] 2.21): the section with FMTID_UserDefinedProperties, names from its
/// dictionary (property 0, 2.17), strings decoded with its CodePage (property 1).
pub fn user_defined_properties(
    b: &[u8],
    notes: &mut Vec<String>,
) -> Result<Vec<(String, String)>, InspectError> {
    if le::u16(b, 0)? != 0xFFFE {
        return Err(InspectError::malformed("property set byte order"));
    }
    let sets = (le::u32(b, 24)? as usize).min(4);
    let mut section = None;
    for i in 0..sets {
        let at = 28 + 20 * i;
        let fmtid = b
            .get(at..at + 16)
            .ok_or(InspectError::Truncated("property set header"))?;
        let offset = le::u32(b, at + 16)? as usize;
        // The user-defined section is the second one; its FMTID says so.
        if fmtid == FMTID_USER_DEFINED {
            section = Some(offset);
        }
    }
    match section {
        Some(offset) => parse_section(b, offset, notes),
        None => Ok(Vec::new()),
    }
}

fn parse_section(
    b: &[u8],
    start: usize,
    notes: &mut Vec<String>,
) -> Result<Vec<(String, String)>, InspectError> {
    let size = le::u32(b, start)? as usize;
    let end = start.saturating_add(size);
    if end > b.len() {
        notes.push("user-defined property section truncated".into());
    }
    let s = b
        .get(start..end.min(b.len()))
        .ok_or(InspectError::Truncated("property section"))?;
    let count = le::u32(s, 4)? as usize;
    if count > MAX_PROPERTIES {
        return Err(InspectError::malformed("too many properties in a section"));
    }
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        ids.push((le::u32(s, 8 + 8 * i)?, le::u32(s, 12 + 8 * i)? as usize));
    }
    // CodePage (property 1) is a VT_I2; the code page is its value read as unsigned.
    let code_page = ids
        .iter()
        .find(|(id, _)| *id == 1)
        .and_then(|&(_, at)| {
            (le::u16(s, at).ok() == Some(0x0002))
                .then(|| le::u16(s, at.saturating_add(4)).ok())
                .flatten()
        })
        .unwrap_or(1252);
    let Some(&(_, dict_at)) = ids.iter().find(|(id, _)| *id == 0) else {
        return Ok(Vec::new());
    };
    let names = parse_dictionary(s, dict_at, code_page)?;
    let mut out = Vec::new();
    let mut unreadable = 0;
    for (id, at) in ids {
        // 0 is the dictionary, 1 the code page; ids from 0x80000000 on are reserved (locale,
        // behavior) and carry no user property.
        if !(2..0x8000_0000).contains(&id) {
            continue;
        }
        let Some((_, name)) = names.iter().find(|(n, _)| *n == id) else {
            continue;
        };
        match property_value(s, at, code_page) {
            Ok(Some(value)) => out.push((name.clone(), value)),
            Ok(None) => {}
            Err(_) => unreadable += 1,
        }
    }
    if unreadable > 0 {
        notes.push(format!("{unreadable} user-defined properties unreadable"));
    }
    Ok(out)
}

/// A property set dictionary ([MS-OLEPS] 2.17): property ids and their names.
fn parse_dictionary(
    s: &[u8],
    at: usize,
    code_page: u16,
) -> Result<Vec<(u32, String)>, InspectError> {
    let count = le::u32(s, at)? as usize;
    if count > MAX_PROPERTIES {
        return Err(InspectError::malformed("too many dictionary entries"));
    }
    let mut p = at.saturating_add(4);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let id = le::u32(s, p)?;
        let chars = le::u32(s, p.saturating_add(4))? as usize;
        p = p.saturating_add(8);
        // Unicode names are 16-bit characters padded to 4 bytes; 8-bit names are not padded.
        let (len, padded) = if code_page == 1200 {
            let len = chars
                .checked_mul(2)
                .ok_or(InspectError::malformed("name"))?;
            (len, len.div_ceil(4) * 4)
        } else {
            (chars, chars)
        };
        if len > MAX_PROPERTY_STRING {
            return Err(InspectError::malformed("dictionary name too long"));
        }
        let raw = s
            .get(p..p.saturating_add(len))
            .ok_or(InspectError::Truncated("dictionary entry"))?;
        out.push((id, decode_string(raw, code_page)));
        p = p.saturating_add(padded);
    }
    Ok(out)
}

/// A TypedPropertyValue ([MS-OLEPS] 2.15) as text, for the types labels use; `None` for others.
fn property_value(s: &[u8], at: usize, code_page: u16) -> Result<Option<String>, InspectError> {
    let kind = le::u16(s, at)?;
    let v = at.saturating_add(4);
    Ok(Some(match kind {
        0x0002 => (le::u16(s, v)? as i16).to_string(),
        0x0003 | 0x0016 => (le::u32(s, v)? as i32).to_string(),
        0x0012 => le::u16(s, v)?.to_string(),
        0x0013 | 0x0017 => le::u32(s, v)?.to_string(),
        0x0014 => (le::u64(s, v)? as i64).to_string(),
        0x0015 => le::u64(s, v)?.to_string(),
        0x0010 => (*s.get(v).ok_or(InspectError::Truncated("field"))? as i8).to_string(),
        0x0011 => s
            .get(v)
            .ok_or(InspectError::Truncated("field"))?
            .to_string(),
        // VARIANT_BOOL: 0xFFFF is true, 0 false.
        0x000B => (le::u16(s, v)? != 0).to_string(),
        // VT_LPSTR: a CodePageString, bytes in the section's code page (UTF-16 for 1200).
        0x001E => {
            let len = le::u32(s, v)? as usize;
            decode_string(property_bytes(s, v.saturating_add(4), len)?, code_page)
        }
        // VT_LPWSTR: a UnicodeString, length in characters.
        0x001F => {
            let chars = le::u32(s, v)? as usize;
            let len = chars
                .checked_mul(2)
                .ok_or(InspectError::malformed("string"))?;
            utf16_lossy(property_bytes(s, v.saturating_add(4), len)?)
                .trim_end_matches('\0')
                .to_string()
        }
        _ => return Ok(None),
    }))
}

fn property_bytes(s: &[u8], at: usize, len: usize) -> Result<&[u8], InspectError> {
    if len > MAX_PROPERTY_STRING {
        return Err(InspectError::malformed("property value too long"));
    }
    s.get(at..at.saturating_add(len))
        .ok_or(InspectError::Truncated("property value"))
}

fn utf16_lossy(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// Windows-1252 characters 0x80–0x9F; the rest of the code page is Latin-1. The five unassigned
/// positions map to the C1 controls, as Windows itself does.
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{2C6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}', '\u{8F}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{2DC}', '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}', '\u{17E}', '\u{178}',
];

/// Decodes a null-terminated string in a Windows code page. UTF-16 (1200), UTF-8 (65001),
/// Windows-1252 and Latin-1 (28591) are decoded exactly; other code pages keep their ASCII
/// characters and replace the rest, which is enough for `MSIP_Label_*` keys and GUIDs.
pub fn decode_string(raw: &[u8], code_page: u16) -> String {
    let text = match code_page {
        1200 => utf16_lossy(raw),
        65001 => String::from_utf8_lossy(raw).into_owned(),
        1252 => raw
            .iter()
            .map(|&c| match c {
                0x80..=0x9F => CP1252_HIGH[usize::from(c - 0x80)],
                _ => char::from(c),
            })
            .collect(),
        28591 => raw.iter().map(|&c| char::from(c)).collect(),
        _ => raw
            .iter()
            .map(|&c| {
                if c.is_ascii() {
                    char::from(c)
                } else {
                    '\u{FFFD}'
                }
            })
            .collect(),
    };
    match text.find('\0') {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

/// Whether a stream name is the LabelInfo stream's, ignoring a leading control character.
fn is_label_info_name(name: &str) -> bool {
    name.trim_start_matches(|c: char| c.is_control())
        .eq_ignore_ascii_case("LabelInfo")
}

/// Finds the LabelInfo stream of a protected file: in `\x06DataSpaces\TransformInfo` (2.6.2),
/// tolerating writers that put it one level deeper or directly in `\x06DataSpaces`.
fn find_label_info(cf: &CompoundFile<'_, '_>) -> Option<EntryId> {
    let ds = cf.find(&[DATA_SPACES])?;
    let streams_in = |storage: EntryId| {
        cf.children(storage)
            .into_iter()
            .find(|&c| cf.is_stream(c) && cf.entry(c).is_some_and(|e| is_label_info_name(&e.name)))
    };
    if let Some(ti) = cf.child(ds, "TransformInfo") {
        if let Some(found) = streams_in(ti) {
            return Some(found);
        }
        let nested = cf.children(ti).into_iter().take(MAX_DATA_SPACE_ITEMS);
        for t in nested {
            if let Some(found) = streams_in(t) {
                return Some(found);
            }
        }
    }
    streams_in(ds)
}

fn label_info(cf: &mut CompoundFile<'_, '_>, notes: &mut Vec<String>) -> Option<msip::LabelInfo> {
    let id = find_label_info(cf)?;
    let too_big = cf
        .entry(id)
        .is_some_and(|e| e.size > (msip::MAX_LABEL_XML + 4) as u64);
    if too_big {
        notes.push("LabelInfo stream larger than 1 MiB: not read".into());
        return None;
    }
    let raw = match cf.read_stream(id, msip::MAX_LABEL_XML + 4) {
        Ok(raw) => raw,
        Err(e) => {
            notes.push(format!("LabelInfo stream: {e}"));
            return None;
        }
    };
    match msip::parse_label_info(&label_info_xml(&raw), LabelSource::LabelInfo) {
        Ok(info) => Some(info),
        Err(e) => {
            notes.push(format!("LabelInfo stream: {e}"));
            None
        }
    }
}

/// The XML text of a LabelInfo stream. The stream is specified as the label-information XML
/// (2.6.4); this also accepts a 32-bit length prefix, a byte-order mark and UTF-16, so that a
/// writer's variation does not lose the label.
pub fn label_info_xml(raw: &[u8]) -> Cow<'_, [u8]> {
    let mut b = raw;
    if let Ok(n) = le::u32(b, 0) {
        let rest = b.get(4..).unwrap_or(&[]);
        let starts_xml = |r: &[u8]| {
            r.starts_with(b"<") || r.starts_with(b"\xEF\xBB\xBF") || r.starts_with(b"\xFF\xFE")
        };
        if !starts_xml(b) && starts_xml(rest) && n as usize <= rest.len() {
            b = rest.get(..n as usize).unwrap_or(rest);
        }
    }
    let utf16 = b.starts_with(b"\xFF\xFE") || (b.len() >= 2 && b[0] == b'<' && b[1] == 0);
    if utf16 {
        let text = utf16_lossy(b.strip_prefix(b"\xFF\xFE").unwrap_or(b));
        return Cow::Owned(text.trim_end_matches('\0').as_bytes().to_vec());
    }
    let b = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
    let end = b.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    Cow::Borrowed(b.get(..end).unwrap_or(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const G1: &str = "3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d";
    const T1: &str = "0b1c2d3e-0000-4000-8000-000000000001";

    /// A typed property value for the test section builder.
    enum Val<'a> {
        Lpstr(&'a [u8]),
        Lpwstr(&'a str),
        Bool(bool),
        I4(i32),
        Filetime(u64),
    }

    fn utf16z(s: &str) -> Vec<u8> {
        s.encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect()
    }

    fn pad4(v: &mut Vec<u8>) {
        while v.len() % 4 != 0 {
            v.push(0);
        }
    }

    /// A DocumentSummaryInformation stream whose user-defined section holds `props`.
    fn property_set(code_page: u16, props: &[(&str, Val<'_>)]) -> Vec<u8> {
        let mut values: Vec<(u32, Vec<u8>)> = Vec::new();
        let mut cp = vec![0x02, 0x00, 0, 0];
        cp.extend(code_page.to_le_bytes());
        cp.extend([0, 0]);
        values.push((1, cp));
        let mut dict = (props.len() as u32).to_le_bytes().to_vec();
        for (i, (name, _)) in props.iter().enumerate() {
            dict.extend((i as u32 + 2).to_le_bytes());
            if code_page == 1200 {
                let n = utf16z(name);
                dict.extend((n.len() as u32 / 2).to_le_bytes());
                dict.extend(n);
                pad4(&mut dict);
            } else {
                dict.extend((name.len() as u32 + 1).to_le_bytes());
                dict.extend(name.as_bytes());
                dict.push(0);
            }
        }
        pad4(&mut dict);
        values.push((0, dict));
        for (i, (_, val)) in props.iter().enumerate() {
            let mut v = Vec::new();
            match val {
                Val::Lpstr(bytes) => {
                    v.extend([0x1E, 0, 0, 0]);
                    v.extend((bytes.len() as u32 + 1).to_le_bytes());
                    v.extend(*bytes);
                    v.push(0);
                }
                Val::Lpwstr(s) => {
                    v.extend([0x1F, 0, 0, 0]);
                    let u = utf16z(s);
                    v.extend((u.len() as u32 / 2).to_le_bytes());
                    v.extend(u);
                }
                Val::Bool(b) => {
                    v.extend([0x0B, 0, 0, 0]);
                    v.extend(if *b { [0xFF, 0xFF] } else { [0, 0] });
                }
                Val::I4(n) => {
                    v.extend([0x03, 0, 0, 0]);
                    v.extend(n.to_le_bytes());
                }
                Val::Filetime(t) => {
                    v.extend([0x40, 0, 0, 0]);
                    v.extend(t.to_le_bytes());
                }
            }
            pad4(&mut v);
            values.push((i as u32 + 2, v));
        }
        let mut section = Vec::new();
        let header = 8 + 8 * values.len();
        let mut offset = header;
        let mut table = Vec::new();
        let mut body: Vec<u8> = Vec::new();
        for (id, v) in &values {
            table.extend(id.to_le_bytes());
            table.extend((offset as u32).to_le_bytes());
            offset += v.len();
            body.extend(v);
        }
        section.extend((offset as u32).to_le_bytes());
        section.extend((values.len() as u32).to_le_bytes());
        section.extend(table);
        section.extend(body);

        let first = {
            // An empty first section (DocSummaryInformation), as Office writes it.
            let mut s = 8u32.to_le_bytes().to_vec();
            s.extend(0u32.to_le_bytes());
            s
        };
        let mut out = vec![0xFE, 0xFF, 0, 0, 0x0A, 0x00, 0x02, 0x00];
        out.extend([0u8; 16]);
        out.extend(2u32.to_le_bytes());
        let fmtid0 = [
            0x02, 0xD5, 0xCD, 0xD5, 0x9C, 0x2E, 0x1B, 0x10, 0x93, 0x97, 0x08, 0x00, 0x2B, 0x2C,
            0xF9, 0xAE,
        ];
        let off0 = 28 + 40;
        out.extend(fmtid0);
        out.extend((off0 as u32).to_le_bytes());
        out.extend(FMTID_USER_DEFINED);
        out.extend(((off0 + first.len()) as u32).to_le_bytes());
        out.extend(first);
        out.extend(section);
        out
    }

    #[test]
    fn user_defined_properties_decode_every_string_kind() {
        let enabled = format!("MSIP_Label_{G1}_Enabled");
        let site = format!("MSIP_Label_{G1}_SiteId");
        let name = format!("MSIP_Label_{G1}_Name");
        for cp in [1252u16, 1200] {
            let stream = property_set(
                cp,
                &[
                    (&enabled, Val::Lpstr(b"true")),
                    (&site, Val::Lpwstr(T1)),
                    (&name, Val::Lpstr(b"Vertraulich \x80 Caf\xE9")),
                    ("Reviewed", Val::Bool(true)),
                    ("Count", Val::I4(-7)),
                    ("When", Val::Filetime(1)),
                ],
            );
            let mut notes = Vec::new();
            let pairs = user_defined_properties(&stream, &mut notes).unwrap();
            assert!(notes.is_empty(), "{notes:?}");
            let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            if cp == 1252 {
                assert_eq!(get(&name), Some("Vertraulich € Café"));
                assert_eq!(get(&enabled), Some("true"));
            }
            assert_eq!(get(&site), Some(T1));
            assert_eq!(get("Reviewed"), Some("true"));
            assert_eq!(get("Count"), Some("-7"));
            assert_eq!(get("When"), None, "FILETIME values are not needed");
        }
    }

    #[test]
    fn property_sets_without_a_user_section_or_malformed_are_handled() {
        let mut notes = Vec::new();
        // Only the first section.
        let mut one = property_set(1252, &[("A", Val::I4(1))]);
        one[24] = 1;
        assert!(user_defined_properties(&one, &mut notes)
            .unwrap()
            .is_empty());
        // Wrong byte order.
        let mut bad = one.clone();
        bad[0] = 0;
        assert!(user_defined_properties(&bad, &mut notes).is_err());
        // Every truncation and a huge count stay errors or partial results.
        let full = property_set(1252, &[("Sensitivity", Val::Lpstr(b"Secret"))]);
        for cut in 0..full.len() {
            let _ = user_defined_properties(&full[..cut], &mut notes);
        }
        let mut huge = full.clone();
        let section = u32::from_le_bytes(full[64..68].try_into().unwrap()) as usize;
        huge[section + 4..section + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(user_defined_properties(&huge, &mut notes).is_err());
    }

    #[test]
    fn code_pages_decode_to_unicode() {
        assert_eq!(decode_string(b"\x80\x93x\x94\0junk", 1252), "€“x”");
        assert_eq!(decode_string(b"\xE9", 28591), "é");
        assert_eq!(decode_string("é".as_bytes(), 65001), "é");
        assert_eq!(decode_string(&utf16z("Ωmega"), 1200), "Ωmega");
        assert_eq!(decode_string(b"ab\xE9", 932), "ab\u{FFFD}");
    }

    #[test]
    fn label_info_xml_tolerates_prefixes_and_encodings() {
        let xml = r#"<clbl:labelList xmlns:clbl="x"/>"#;
        let mut prefixed = (xml.len() as u32).to_le_bytes().to_vec();
        prefixed.extend(xml.as_bytes());
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend(xml.as_bytes());
        bom.extend([0, 0]);
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(xml.encode_utf16().flat_map(u16::to_le_bytes));
        for raw in [xml.as_bytes().to_vec(), prefixed, bom, utf16] {
            assert_eq!(&*label_info_xml(&raw), xml.as_bytes(), "{raw:?}");
        }
        assert_eq!(&*label_info_xml(b"\x01\0\0\0"), b"\x01");
        assert!(label_info_xml(b"").is_empty());
    }

    fn encryption_info(major: u16, minor: u16, flags: u32, alg: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(major.to_le_bytes());
        b.extend(minor.to_le_bytes());
        b.extend(flags.to_le_bytes());
        b.extend(32u32.to_le_bytes());
        b.extend(flags.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(alg.to_le_bytes());
        b.extend(0x8004u32.to_le_bytes());
        b.extend(128u32.to_le_bytes());
        b
    }

    #[test]
    fn encryption_info_versions_decide_the_scheme() {
        let cases = [
            (
                encryption_info(4, 2, 0x24, 0x660E),
                "ooxml-standard",
                "AES-128",
            ),
            (
                encryption_info(3, 2, 0x24, 0x6610),
                "ooxml-standard",
                "AES-256",
            ),
            (encryption_info(4, 2, 0x24, 0), "ooxml-standard", "AES-128"),
            (
                encryption_info(4, 2, 0x34, 0x660E),
                "ooxml-extensible",
                "fExternal set",
            ),
            (
                encryption_info(4, 3, 0x10, 0),
                "ooxml-extensible",
                "Extensible encryption",
            ),
            (
                encryption_info(9, 9, 0, 0),
                "ooxml-encrypted",
                "EncryptionInfo version 9.9 not recognised",
            ),
        ];
        for (bytes, scheme, detail) in cases {
            let v = encryption_info_verdict(&bytes).unwrap();
            assert_eq!(v.status, EncryptionStatus::Encrypted);
            assert_eq!(v.scheme.as_deref(), Some(scheme));
            assert_eq!(v.detail.as_deref(), Some(detail));
        }
        let mut agile = vec![4, 0, 4, 0, 0x40, 0, 0, 0];
        agile.extend(
            br#"<?xml version="1.0"?><encryption xmlns="http://schemas.microsoft.com/office/2006/encryption"><keyData saltSize="16" cipherAlgorithm="AES" keyBits="256"/><keyEncryptors><keyEncryptor uri="http://schemas.microsoft.com/office/2006/keyEncryptor/password"/></keyEncryptors></encryption>"#,
        );
        let v = encryption_info_verdict(&agile).unwrap();
        assert_eq!(v.scheme.as_deref(), Some("ooxml-agile"));
        assert_eq!(v.detail.as_deref(), Some("AES-256, password"));
        assert!(encryption_info_verdict(&[4, 0]).is_err());
    }

    fn fib(flags: u16) -> Vec<u8> {
        let mut b = vec![0u8; 32];
        b[0..2].copy_from_slice(&0xA5ECu16.to_le_bytes());
        b[2..4].copy_from_slice(&0x00C1u16.to_le_bytes());
        b[0x0A..0x0C].copy_from_slice(&flags.to_le_bytes());
        b
    }

    #[test]
    fn word_fib_flags_and_table_header_decide() {
        let scheme = |flags: u16, table: Option<&[u8]>| {
            let v = word_fib_verdict(&fib(flags), table).unwrap();
            (v.status, v.scheme.unwrap_or_default())
        };
        use EncryptionStatus::*;
        assert_eq!(scheme(0x0000, None), (Plaintext, "doc".into()));
        assert_eq!(scheme(0x8200, None), (Plaintext, "doc".into()));
        assert_eq!(scheme(0x8100, None), (Encrypted, "doc-xor".into()));
        assert_eq!(
            scheme(0x0300, Some(&[1, 0, 1, 0])),
            (Encrypted, "doc-rc4".into())
        );
        assert_eq!(
            scheme(0x0100, Some(&[4, 0, 2, 0])),
            (Encrypted, "doc-cryptoapi".into())
        );
        assert_eq!(
            scheme(0x0100, Some(&[7, 0, 7, 0])),
            (Encrypted, "doc".into())
        );
        assert_eq!(scheme(0x0100, None), (Encrypted, "doc".into()));
        assert!(word_fib_verdict(&[0xEC, 0xA5], None).is_err());
    }

    fn record(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut r = kind.to_le_bytes().to_vec();
        r.extend((body.len() as u16).to_le_bytes());
        r.extend(body);
        r
    }

    fn workbook(version: u16, filepass: Option<&[u8]>) -> Vec<u8> {
        let mut bof = version.to_le_bytes().to_vec();
        bof.extend([0x05, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut w = record(0x0809, &bof);
        if let Some(body) = filepass {
            w.extend(record(0x002F, body));
        }
        w.extend(record(0x00E1, &[0xB0, 0x04]));
        w.extend(record(0x0085, &[0; 8]));
        w.extend(record(0x000A, &[]));
        w
    }

    #[test]
    fn filepass_records_decide_the_excel_scheme() {
        let scheme = |w: Vec<u8>| {
            let v = workbook_verdict(&w).unwrap().unwrap();
            (v.status, v.scheme.unwrap_or_default())
        };
        use EncryptionStatus::*;
        assert_eq!(scheme(workbook(0x0600, None)), (Plaintext, "xls".into()));
        assert_eq!(
            scheme(workbook(0x0600, Some(&[0, 0, 0x12, 0x34, 0x56, 0x78]))),
            (Encrypted, "xls-xor".into())
        );
        assert_eq!(
            scheme(workbook(0x0500, Some(&[0x12, 0x34, 0x56, 0x78]))),
            (Encrypted, "xls-xor".into())
        );
        let mut rc4 = vec![1, 0, 1, 0, 1, 0];
        rc4.extend([0xAB; 48]);
        assert_eq!(
            scheme(workbook(0x0600, Some(&rc4))),
            (Encrypted, "xls-rc4".into())
        );
        let mut capi = vec![1, 0, 4, 0, 2, 0];
        capi.extend([0; 40]);
        assert_eq!(
            scheme(workbook(0x0600, Some(&capi))),
            (Encrypted, "xls-cryptoapi".into())
        );
        assert!(workbook_verdict(&record(0x0001, &[0; 4])).is_err());
        assert_eq!(
            workbook_verdict(&workbook(0x0600, None)[..20]).unwrap(),
            None
        );
    }

    fn lp(s: &str) -> Vec<u8> {
        let u: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut v = (u.len() as u32).to_le_bytes().to_vec();
        v.extend(u);
        pad4(&mut v);
        v
    }

    #[test]
    fn data_space_structures_parse() {
        let mut entry = Vec::new();
        entry.extend(1u32.to_le_bytes());
        entry.extend(0u32.to_le_bytes());
        entry.extend(lp("EncryptedPackage"));
        entry.extend(lp("DRMEncryptedDataSpace"));
        let mut map = 8u32.to_le_bytes().to_vec();
        map.extend(1u32.to_le_bytes());
        map.extend((entry.len() as u32 + 4).to_le_bytes());
        map.extend(entry);
        assert_eq!(
            parse_data_space_map(&map).unwrap(),
            vec![(
                "EncryptedPackage".to_string(),
                "DRMEncryptedDataSpace".to_string()
            )]
        );
        let mut def = 8u32.to_le_bytes().to_vec();
        def.extend(1u32.to_le_bytes());
        def.extend(lp("DRMEncryptedTransform"));
        assert_eq!(
            parse_data_space_definition(&def).unwrap(),
            vec!["DRMEncryptedTransform".to_string()]
        );
        let mut primary = 0x58u32.to_le_bytes().to_vec();
        primary.extend(1u32.to_le_bytes());
        primary.extend(lp(IRM_TRANSFORM_ID));
        primary.extend(lp("Microsoft.Metadata.DRMTransform"));
        assert_eq!(parse_transform_id(&primary).unwrap(), IRM_TRANSFORM_ID);
        // Every cut before the last name's final character (the rest is padding) is an error.
        for cut in 0..map.len() - 2 {
            assert!(parse_data_space_map(&map[..cut]).is_err(), "{cut}");
        }
        let mut long = 8u32.to_le_bytes().to_vec();
        long.extend(1u32.to_le_bytes());
        long.extend(u32::MAX.to_le_bytes());
        assert!(parse_data_space_definition(&long).is_err());
    }
}

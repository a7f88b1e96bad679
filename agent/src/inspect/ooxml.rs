//! OOXML documents (docx, xlsx, pptx): label-information parts and custom properties.
//!
//! A package (ECMA-376 Part 2, Open Packaging Conventions) is a ZIP holding `[Content_Types].xml`
//! (10.1.2). The main part's content type names the document kind; the package relationships in
//! `_rels/.rels` (9.3) point at the Microsoft Purview label-information part
//! ([`msip::LABEL_INFO_REL`], usually `docMetadata/LabelInfo.xml`) and at the custom properties
//! part (`docProps/custom.xml`, ECMA-376 Part 1, 22.3). Every part is extracted with a 1 MiB cap
//! and parsed by a streaming reader that never expands entities declared in a DTD.

use std::borrow::Cow;

use infoledger_policies::{DetectedLabel, LabelSource};
use quick_xml::events::{BytesStart, Event};

use super::msip::{self, LabelInfo};
use super::zip::{self, Archive};
use super::{Bounded, InspectError};

/// The part that makes a ZIP an OPC package.
pub const CONTENT_TYPES_PART: &str = "[Content_Types].xml";
/// The package relationships part.
pub const PACKAGE_RELS_PART: &str = "_rels/.rels";
/// Where Office writes custom properties when no relationship says otherwise.
pub const DEFAULT_CUSTOM_PART: &str = "docProps/custom.xml";
/// Relationship type of the custom properties part (ECMA-376 Part 1, 15.2.12.2).
pub const CUSTOM_PROPERTIES_REL: &str =
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties";

/// Most relationships or properties read from one part.
const MAX_ITEMS: usize = 10_000;
/// Longest property value kept, in characters.
const MAX_VALUE_CHARS: usize = 4096;
/// Deepest `..` resolution and most path segments in a relationship target.
const MAX_SEGMENTS: usize = 64;

/// Main-part content types and the format they make (ECMA-376 Part 1, 11.3.10, 12.3.23, 13.3.6
/// and the macro-enabled and template variants Office registers).
const MAIN_CONTENT_TYPES: &[(&str, &str)] = &[
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        "docx",
    ),
    (
        "application/vnd.ms-word.document.macroEnabled.main+xml",
        "docm",
    ),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml",
        "dotx",
    ),
    (
        "application/vnd.ms-word.template.macroEnabledTemplate.main+xml",
        "dotm",
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
        "xlsx",
    ),
    (
        "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
        "xlsm",
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml",
        "xltx",
    ),
    (
        "application/vnd.ms-excel.template.macroEnabled.main+xml",
        "xltm",
    ),
    (
        "application/vnd.ms-excel.sheet.binary.macroEnabled.main",
        "xlsb",
    ),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
        "pptx",
    ),
    (
        "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml",
        "pptm",
    ),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.template.main+xml",
        "potx",
    ),
    (
        "application/vnd.ms-powerpoint.template.macroEnabled.main+xml",
        "potm",
    ),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml",
        "ppsx",
    ),
    (
        "application/vnd.ms-powerpoint.slideshow.macroEnabled.main+xml",
        "ppsm",
    ),
];

/// Format names recognised from a file extension when the content types do not decide.
const EXTENSIONS: &[&str] = &[
    "docx", "docm", "dotx", "dotm", "xlsx", "xlsm", "xltx", "xltm", "xlsb", "pptx", "pptm", "potx",
    "potm", "ppsx", "ppsm",
];

/// Whether a ZIP is an OPC package.
pub fn is_package(archive: &Archive) -> bool {
    archive.find(CONTENT_TYPES_PART).is_some()
}

/// What a package says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// `docx`, `xlsx`, …, or `ooxml` when neither the content types nor the name tell.
    pub format: &'static str,
    /// Labels from the label-information part and custom properties, merged.
    pub labels: Vec<DetectedLabel>,
    /// Parts that could not be read, and why.
    pub notes: Vec<String>,
}

/// Reads a package's format and labels.
pub(crate) fn inspect_package(src: &Bounded<'_>, archive: &Archive, name: &str) -> Package {
    let mut notes = Vec::new();
    let format = read_part(src, archive, CONTENT_TYPES_PART, &mut notes)
        .and_then(|xml| format_from_content_types(&xml))
        .or_else(|| format_from_name(name))
        .unwrap_or("ooxml");
    let relationships = match read_part(src, archive, PACKAGE_RELS_PART, &mut notes) {
        Some(xml) => parse_relationships(&xml).unwrap_or_else(|e| {
            notes.push(format!("{PACKAGE_RELS_PART}: {e}"));
            Vec::new()
        }),
        None => Vec::new(),
    };
    let target_of = |kind: &str| {
        relationships
            .iter()
            .find(|r| !r.external && r.kind.trim() == kind)
            .and_then(|r| resolve_target(&r.target))
    };

    let mut label_info: Option<LabelInfo> = None;
    if let Some(part) = target_of(msip::LABEL_INFO_REL) {
        if let Some(xml) = read_part(src, archive, &part, &mut notes) {
            match msip::parse_label_info(&utf8_xml(&xml), LabelSource::LabelInfo) {
                Ok(mut info) => {
                    for label in &mut info.labels {
                        label.detail = Some(part.clone());
                    }
                    label_info = Some(info);
                }
                Err(e) => notes.push(format!("{part}: {e}")),
            }
        } else if archive.find(&part).is_none() {
            notes.push(format!(
                "{part}: referenced from {PACKAGE_RELS_PART} but missing"
            ));
        }
    }

    let custom_part =
        target_of(CUSTOM_PROPERTIES_REL).unwrap_or_else(|| DEFAULT_CUSTOM_PART.to_string());
    let mut property_labels = Vec::new();
    if let Some(xml) = read_part(src, archive, &custom_part, &mut notes) {
        let props = parse_custom_properties(&xml);
        if let Some(e) = &props.error {
            notes.push(format!("{custom_part}: {e}"));
        }
        property_labels = msip::labels_from_properties(
            props.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            LabelSource::CustomProperties,
        );
        for label in &mut property_labels {
            label.detail = Some(match label.detail.take() {
                Some(d) => format!("{custom_part}: {d}"),
                None => custom_part.clone(),
            });
        }
    }

    Package {
        format,
        labels: msip::merge(label_info, property_labels),
        notes,
    }
}

/// Extracts a part, at most [`zip::MAX_PART_BYTES`]; a missing part is `None` without a note.
fn read_part(
    src: &Bounded<'_>,
    archive: &Archive,
    part: &str,
    notes: &mut Vec<String>,
) -> Option<Vec<u8>> {
    let entry = archive.find(part)?;
    // Extraction errors name the entry themselves.
    match zip::read_entry(src, archive, entry, zip::MAX_PART_BYTES) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            notes.push(e.to_string());
            None
        }
    }
}

/// The format named by the main part's content type (an `Override` in `[Content_Types].xml`).
pub fn format_from_content_types(xml: &[u8]) -> Option<&'static str> {
    let xml = utf8_xml(xml);
    let mut reader = quick_xml::Reader::from_reader(xml.as_ref());
    let mut buf = Vec::new();
    for _ in 0..event_bound(&xml) {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e) | Event::Empty(e)) if e.local_name().as_ref() == b"Override" => {
                if let Some(ct) = attribute(&e, &reader, b"ContentType") {
                    let ct = ct.trim();
                    if let Some((_, format)) = MAIN_CONTENT_TYPES
                        .iter()
                        .find(|(t, _)| t.eq_ignore_ascii_case(ct))
                    {
                        return Some(format);
                    }
                }
            }
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
        buf.clear();
    }
    None
}

/// The format named by a file's extension, when it is an OOXML one.
pub fn format_from_name(name: &str) -> Option<&'static str> {
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() || stem.ends_with('/') {
        return None;
    }
    EXTENSIONS
        .iter()
        .find(|e| e.eq_ignore_ascii_case(ext))
        .copied()
}

/// One package relationship (ECMA-376 Part 2, 9.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relationship {
    /// The relationship type URI.
    pub kind: String,
    /// The target as written.
    pub target: String,
    /// Whether the target is outside the package (`TargetMode="External"`).
    pub external: bool,
}

/// Parses a relationships part.
pub fn parse_relationships(xml: &[u8]) -> Result<Vec<Relationship>, InspectError> {
    let xml = utf8_xml(xml);
    let mut reader = quick_xml::Reader::from_reader(xml.as_ref());
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for _ in 0..event_bound(&xml) {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| InspectError::malformed(format!("relationships XML: {e}")))?;
        match event {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"Relationship" => {
                if out.len() >= MAX_ITEMS {
                    return Err(InspectError::malformed("more than 10000 relationships"));
                }
                out.push(Relationship {
                    kind: attribute(&e, &reader, b"Type").unwrap_or_default(),
                    target: attribute(&e, &reader, b"Target").unwrap_or_default(),
                    external: attribute(&e, &reader, b"TargetMode")
                        .is_some_and(|m| m.trim().eq_ignore_ascii_case("External")),
                });
            }
            Event::Eof => return Ok(out),
            _ => {}
        }
        buf.clear();
    }
    Ok(out)
}

/// Resolves a package relationship target to a part name: package relationships are relative to
/// the package root (ECMA-376 Part 2, 9.3.4), a leading `/` is dropped, `.` and `..` segments are
/// resolved and `%XX` escapes of ASCII characters decoded. Targets that leave the package or
/// carry a scheme are not parts.
pub fn resolve_target(target: &str) -> Option<String> {
    let target = target.trim();
    if target.contains("://") || target.is_empty() {
        return None;
    }
    let target = target.split(['#', '?']).next().unwrap_or_default();
    let decoded = percent_decode(target)?;
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split(['/', '\\']).take(MAX_SEGMENTS) {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop()?;
            }
            s => segments.push(s),
        }
    }
    (!segments.is_empty()).then(|| segments.join("/"))
}

fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    // Each step consumes at least one byte.
    for _ in 0..bytes.len() {
        let Some(&b) = bytes.get(i) else {
            break;
        };
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(v);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Name/value pairs read from a custom properties part, with the error that stopped reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomProperties {
    /// `(name, value)` in document order; values are the text of the typed value element
    /// (`vt:lpwstr`, `vt:bool`, …), trimmed.
    pub pairs: Vec<(String, String)>,
    /// Why reading stopped early, if it did.
    pub error: Option<String>,
}

/// Parses `docProps/custom.xml`: `<property name="…"><vt:lpwstr>value</vt:lpwstr></property>`.
/// Predefined and character references are decoded; entities declared in a DTD are dropped,
/// never expanded.
pub fn parse_custom_properties(xml: &[u8]) -> CustomProperties {
    let xml = utf8_xml(xml);
    let mut reader = quick_xml::Reader::from_reader(xml.as_ref());
    let mut buf = Vec::new();
    let mut out = CustomProperties::default();
    let mut current: Option<(String, String)> = None;
    for _ in 0..event_bound(&xml) {
        let event = match reader.read_event_into(&mut buf) {
            Ok(e) => e,
            Err(e) => {
                out.error = Some(format!("custom properties XML: {e}"));
                break;
            }
        };
        match event {
            Event::Start(e) if e.local_name().as_ref() == b"property" => {
                current = attribute(&e, &reader, b"name").map(|n| (n, String::new()));
            }
            Event::End(e) if e.local_name().as_ref() == b"property" => {
                if let Some((name, value)) = current.take() {
                    if out.pairs.len() >= MAX_ITEMS {
                        out.error = Some("more than 10000 custom properties".to_string());
                        break;
                    }
                    out.pairs.push((name, value.trim().to_string()));
                }
            }
            Event::Text(t) => {
                if let (Some((_, value)), Ok(text)) = (current.as_mut(), t.decode()) {
                    push_capped(value, &text);
                }
            }
            Event::CData(t) => {
                if let (Some((_, value)), Ok(text)) = (current.as_mut(), t.decode()) {
                    push_capped(value, &text);
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, value)) = current.as_mut() {
                    let c = match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(c),
                        _ => r.decode().ok().and_then(|n| predefined_entity(&n)),
                    };
                    if let Some(c) = c {
                        push_capped(value, c.encode_utf8(&mut [0; 4]));
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    out
}

fn predefined_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => None,
    }
}

fn push_capped(value: &mut String, text: &str) {
    let room = MAX_VALUE_CHARS.saturating_sub(value.chars().count());
    value.extend(text.chars().take(room));
}

/// An attribute's value by local name, with predefined and character references decoded; a
/// value with any other reference is taken as written.
fn attribute(e: &BytesStart<'_>, reader: &quick_xml::Reader<&[u8]>, name: &[u8]) -> Option<String> {
    e.attributes()
        .with_checks(false)
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .map(|a| match a.decode_and_unescape_value(reader.decoder()) {
            Ok(v) => v.into_owned(),
            Err(_) => String::from_utf8_lossy(&a.value).into_owned(),
        })
}

/// An upper bound on the events a document of this size can produce: every event consumes at
/// least one byte, and the final `Eof` comes last.
fn event_bound(xml: &[u8]) -> usize {
    xml.len().saturating_add(2)
}

/// XML parts are UTF-8 or UTF-16 (ECMA-376 Part 2, 8.1.4); the reader wants UTF-8 without a
/// byte order mark.
pub fn utf8_xml(xml: &[u8]) -> Cow<'_, [u8]> {
    let utf16 = |bytes: &[u8], big_endian: bool| {
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| {
                let pair = [c[0], c[1]];
                if big_endian {
                    u16::from_be_bytes(pair)
                } else {
                    u16::from_le_bytes(pair)
                }
            })
            .collect();
        // The declaration still names UTF-16; the reader ignores it without its `encoding`
        // feature, and the text is UTF-8 now.
        Cow::Owned(String::from_utf16_lossy(&units).into_bytes())
    };
    if let Some(rest) = xml.strip_prefix(b"\xFF\xFE") {
        utf16(rest, false)
    } else if let Some(rest) = xml.strip_prefix(b"\xFE\xFF") {
        utf16(rest, true)
    } else if let Some(rest) = xml.strip_prefix(b"\xEF\xBB\xBF") {
        Cow::Borrowed(rest)
    } else {
        Cow::Borrowed(xml)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_name_the_main_part_format() {
        let xml = |ct: &str| {
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/><Override PartName="/x/main.xml" ContentType="{ct}"/></Types>"#
            )
        };
        for (ct, format) in MAIN_CONTENT_TYPES {
            assert_eq!(
                format_from_content_types(xml(ct).as_bytes()),
                Some(*format),
                "{ct}"
            );
        }
        assert_eq!(
            format_from_content_types(
                xml("application/vnd.ms-excel.sheet.macroenabled.main+xml").as_bytes()
            ),
            Some("xlsm")
        );
        assert_eq!(
            format_from_content_types(xml("text/plain").as_bytes()),
            None
        );
        assert_eq!(format_from_content_types(b"<Types><Override"), None);
    }

    #[test]
    fn names_give_the_format_only_for_ooxml_extensions() {
        assert_eq!(format_from_name("Report.DOCX"), Some("docx"));
        assert_eq!(format_from_name("deck.ppsm"), Some("ppsm"));
        assert_eq!(format_from_name("a.zip"), None);
        assert_eq!(format_from_name(".docx"), None);
        assert_eq!(format_from_name("noext"), None);
    }

    #[test]
    fn targets_resolve_against_the_package_root() {
        let cases = [
            (
                "docMetadata/LabelInfo.xml",
                Some("docMetadata/LabelInfo.xml"),
            ),
            (
                "/docMetadata/LabelInfo.xml",
                Some("docMetadata/LabelInfo.xml"),
            ),
            (
                "./docProps/../docMetadata/LabelInfo.xml",
                Some("docMetadata/LabelInfo.xml"),
            ),
            (
                "docMetadata/Label%20Info.xml",
                Some("docMetadata/Label Info.xml"),
            ),
            ("../outside.xml", None),
            ("https://example.com/x.xml", None),
            ("", None),
            ("/", None),
            ("bad%zz", None),
        ];
        for (target, expected) in cases {
            assert_eq!(resolve_target(target).as_deref(), expected, "{target}");
        }
    }

    #[test]
    fn relationships_keep_type_target_and_mode() {
        let xml = format!(
            r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{}" Target="docMetadata/LabelInfo.xml"/><Relationship Id="rId2" Type="http://x/hyperlink" Target="https://example.com/?a=1&amp;b=2" TargetMode="External"/></Relationships>"#,
            msip::LABEL_INFO_REL
        );
        let rels = parse_relationships(xml.as_bytes()).unwrap();
        assert_eq!(rels.len(), 2);
        assert_eq!(rels[0].kind, msip::LABEL_INFO_REL);
        assert!(!rels[0].external);
        assert_eq!(rels[1].target, "https://example.com/?a=1&b=2");
        assert!(rels[1].external);
        assert!(parse_relationships(b"<Relationships><Relationship></Other>").is_err());
    }

    #[test]
    fn custom_properties_read_typed_values_and_references() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">
  <property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="2" name="MSIP_Label_a_Enabled"><vt:lpwstr>TRUE</vt:lpwstr></property>
  <property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="3" name="Flag"><vt:bool>true</vt:bool></property>
  <property pid="4" name="Dept &amp; Co"><vt:lpwstr> R&amp;D &#x41;<![CDATA[<x>]]> </vt:lpwstr></property>
  <property pid="5"><vt:lpwstr>nameless</vt:lpwstr></property>
</Properties>"#;
        let props = parse_custom_properties(xml);
        assert_eq!(props.error, None);
        assert_eq!(
            props.pairs,
            vec![
                ("MSIP_Label_a_Enabled".to_string(), "TRUE".to_string()),
                ("Flag".to_string(), "true".to_string()),
                ("Dept & Co".to_string(), "R&D A<x>".to_string()),
            ]
        );
    }

    #[test]
    fn dtd_entities_are_never_expanded() {
        let xml = br#"<?xml version="1.0"?>
<!DOCTYPE Properties [
  <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]>
<Properties><property name="Sensitivity"><vt:lpwstr>x&c;y</vt:lpwstr></property><property name="&c;"><vt:lpwstr>v</vt:lpwstr></property></Properties>"#;
        let props = parse_custom_properties(xml);
        assert_eq!(
            props.pairs[0],
            ("Sensitivity".to_string(), "xy".to_string())
        );
        assert_eq!(props.pairs[1], ("&c;".to_string(), "v".to_string()));
    }

    #[test]
    fn long_values_are_capped_and_broken_xml_keeps_what_was_read() {
        let long = "x".repeat(10_000);
        let xml = format!(
            r#"<Properties><property name="A"><vt:lpwstr>{long}</vt:lpwstr></property><property name="B"><vt:lpwstr>b</vt:wrong></property></Properties>"#
        );
        let props = parse_custom_properties(xml.as_bytes());
        assert_eq!(props.pairs.len(), 1);
        assert_eq!(props.pairs[0].1.len(), MAX_VALUE_CHARS);
        assert!(props.error.is_some());
    }

    #[test]
    fn utf16_parts_are_read() {
        let text = r#"<?xml version="1.0" encoding="UTF-16"?><Properties><property name="Sensitivity"><vt:lpwstr>Geheim</vt:lpwstr></property></Properties>"#;
        let mut le = vec![0xFF, 0xFE];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let mut be = vec![0xFE, 0xFF];
        be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        for bytes in [le, be] {
            let props = parse_custom_properties(&bytes);
            assert_eq!(
                props.pairs,
                vec![("Sensitivity".to_string(), "Geheim".to_string())]
            );
        }
        assert_eq!(utf8_xml(b"\xEF\xBB\xBF<a/>").as_ref(), b"<a/>");
        // An odd trailing byte is dropped, not read out of bounds.
        assert_eq!(utf8_xml(b"\xFF\xFEa\x00b").as_ref(), b"a");
    }
}

//! E-mail messages (.eml, RFC 5322 / RFC 2045): the `msip_labels` header and whether the content
//! is encrypted (S/MIME enveloped data, PGP/MIME, Purview-protected `message.rpmsg`).
//!
//! Only the header block (up to [`HEADER_CAP`]) and a bounded prefix of the body are read: the
//! top-level `Content-Type` decides S/MIME and PGP/MIME, a peek at the start of an S/MIME body
//! confirms the CMS content type, and the body prefix is searched for a Purview `message.rpmsg`
//! attachment and for inline OpenPGP messages.

use base64::Engine;
use infoledger_policies::{EncryptionStatus, EncryptionVerdict};

use super::{msip, Bounded, Evidence, InspectError};

/// The most header bytes read; a header block longer than this is cut (with a note).
pub const HEADER_CAP: usize = 256 * 1024;
/// The most body bytes searched for attachments' part headers and inline armor.
const BODY_SCAN: usize = 1024 * 1024;
/// Upper bound on header lines examined.
const MAX_HEADER_LINES: usize = 16 * 1024;
/// Base64 characters of an S/MIME body decoded to find its CMS content type.
const CMS_PEEK_CHARS: usize = 256;

fn verdict(status: EncryptionStatus, scheme: &str, detail: Option<&str>) -> EncryptionVerdict {
    let v = EncryptionVerdict::new(status, scheme);
    match detail {
        Some(d) => v.with_detail(d),
        None => v,
    }
}

/// Splits a message into its header block and the offset where the body starts (after the
/// first empty line), if the block ends within `bytes`.
fn split_header(bytes: &[u8]) -> (&[u8], Option<usize>) {
    let mut pos = 0usize;
    for line in bytes
        .split_inclusive(|&c| c == b'\n')
        .take(MAX_HEADER_LINES)
    {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.is_empty() && line.ends_with(b"\n") {
            let header = bytes.get(..pos).unwrap_or_default();
            return (header, Some(pos.saturating_add(line.len())));
        }
        pos = pos.saturating_add(line.len());
    }
    (bytes.get(..pos).unwrap_or(bytes), None)
}

/// Header fields with folded lines unfolded (RFC 5322 §2.2.3): names lowercased, values trimmed.
fn header_fields(header: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in header.lines().take(MAX_HEADER_LINES) {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push_str(line);
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_ascii_lowercase(), value.to_string()));
        }
    }
    for (_, value) in &mut fields {
        *value = value.trim().to_string();
    }
    fields
}

fn field<'f>(fields: &'f [(String, String)], name: &str) -> Option<&'f str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A MIME `Content-Type` (or `Content-Disposition`) value: the lowercased type and its
/// parameters (names lowercased, quotes removed; RFC 2231 `name*=charset''value` decoded only as
/// far as dropping the charset).
fn parse_mime_value(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in value.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ';' if !quoted => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    let mut parts = parts.into_iter();
    let kind = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let k = k.trim().to_ascii_lowercase();
            let mut v = v.trim().trim_matches('"').to_string();
            let k = match k.strip_suffix('*') {
                Some(base) => {
                    if let Some((_, rest)) = v.split_once("''") {
                        v = rest.to_string();
                    }
                    base.to_string()
                }
                None => k,
            };
            Some((k, v))
        })
        .collect();
    (kind, params)
}

fn param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// CMS content types (RFC 5652, RFC 5083, RFC 3274) as DER-encoded OIDs.
const OID_SIGNED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02];
const OID_ENVELOPED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03];
const OID_ENCRYPTED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x06];
const OID_AUTH_ENVELOPED_DATA: &[u8] = &[
    0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x01, 0x17,
];
const OID_COMPRESSED_DATA: &[u8] = &[
    0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x01, 0x09,
];

/// What the start of a CMS `ContentInfo` says its content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmsKind {
    Enveloped,
    AuthEnveloped,
    Encrypted,
    Signed,
    Compressed,
}

/// Reads the content type OID at the start of a DER/BER `ContentInfo`
/// (`SEQUENCE { contentType OBJECT IDENTIFIER, … }`).
fn cms_kind(der: &[u8]) -> Option<CmsKind> {
    if *der.first()? != 0x30 {
        return None;
    }
    let len_octet = *der.get(1)?;
    // Short form, indefinite (BER, 0x80) or long form with up to 4 length octets.
    let skip = match len_octet {
        0..=0x80 => 0,
        0x81..=0x84 => usize::from(len_octet & 0x7f),
        _ => return None,
    };
    let at = 2 + skip;
    if *der.get(at)? != 0x06 {
        return None;
    }
    let oid_len = usize::from(*der.get(at + 1)?);
    let oid = der.get(at + 2..at + 2 + oid_len)?;
    match oid {
        OID_ENVELOPED_DATA => Some(CmsKind::Enveloped),
        OID_AUTH_ENVELOPED_DATA => Some(CmsKind::AuthEnveloped),
        OID_ENCRYPTED_DATA => Some(CmsKind::Encrypted),
        OID_SIGNED_DATA => Some(CmsKind::Signed),
        OID_COMPRESSED_DATA => Some(CmsKind::Compressed),
        _ => None,
    }
}

/// Decodes the start of an S/MIME body (base64 or binary) and reads its CMS content type.
fn peek_cms(body: &[u8], transfer_encoding: &str) -> Option<CmsKind> {
    if transfer_encoding.eq_ignore_ascii_case("base64") {
        let chars: Vec<u8> = body
            .iter()
            .copied()
            .filter(|c| !c.is_ascii_whitespace())
            .take(CMS_PEEK_CHARS)
            .collect();
        let whole = chars.len() - chars.len() % 4;
        let prefix = chars.get(..whole)?;
        // Padding can only appear at the very end; a short body decodes whole.
        let der = base64::engine::general_purpose::STANDARD
            .decode(prefix)
            .ok()?;
        cms_kind(&der)
    } else {
        cms_kind(body)
    }
}

/// Whether the body holds a Purview-protected message attachment: a MIME part header naming
/// `message.rpmsg` or the `application/x-microsoft-rpmsg-message` type.
fn has_rpmsg_part(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.lines().take(MAX_HEADER_LINES * 4).any(|line| {
        let l = line.trim_start().to_ascii_lowercase();
        let part_header = l.starts_with("content-type:")
            || l.starts_with("content-disposition:")
            || ((line.starts_with([' ', '\t']))
                && (l.starts_with("name") || l.starts_with("filename")));
        part_header && (l.contains("x-microsoft-rpmsg-message") || l.contains("message.rpmsg"))
    })
}

/// Decides the encryption verdict from the top-level content type and the body prefix.
fn decide(
    fields: &[(String, String)],
    body: &[u8],
    notes: &mut Vec<String>,
) -> Option<EncryptionVerdict> {
    use EncryptionStatus::{Encrypted, Partial, Plaintext};

    if field(fields, "content-class").is_some_and(|c| c.eq_ignore_ascii_case("rpmsg.message")) {
        return Some(verdict(
            Encrypted,
            "rpmsg",
            Some("purview-protected message"),
        ));
    }
    let (kind, params) = field(fields, "content-type")
        .map(parse_mime_value)
        .unwrap_or_else(|| ("text/plain".to_string(), Vec::new()));
    match kind.as_str() {
        "application/pkcs7-mime" | "application/x-pkcs7-mime" => {
            let cte = field(fields, "content-transfer-encoding").unwrap_or("7bit");
            let smime_type = param(&params, "smime-type").map(str::to_ascii_lowercase);
            // The CMS content type in the body is the truth; the smime-type parameter and the
            // file name are what the sender claimed.
            let decided = match peek_cms(body, cte) {
                Some(CmsKind::Enveloped) => Some("enveloped-data"),
                Some(CmsKind::AuthEnveloped) => Some("authenveloped-data"),
                Some(CmsKind::Encrypted) => Some("encrypted-data"),
                Some(CmsKind::Signed) => Some("signed-data"),
                Some(CmsKind::Compressed) => Some("compressed-data"),
                None => None,
            };
            let name = param(&params, "name")
                .map(str::to_string)
                .or_else(|| {
                    field(fields, "content-disposition")
                        .map(parse_mime_value)
                        .and_then(|(_, p)| param(&p, "filename").map(str::to_string))
                })
                .unwrap_or_default()
                .to_ascii_lowercase();
            let claimed = smime_type
                .as_deref()
                .or(name.ends_with(".p7m").then_some("p7m"));
            match decided.or(claimed) {
                Some("enveloped-data" | "authenveloped-data" | "encrypted-data") => {
                    Some(verdict(Encrypted, "smime", decided.or(claimed)))
                }
                Some("p7m") => Some(verdict(
                    Encrypted,
                    "smime",
                    Some("p7m attachment without smime-type"),
                )),
                Some("signed-data" | "certs-only") => Some(verdict(
                    Plaintext,
                    "smime-signed",
                    Some("opaque signed-data"),
                )),
                Some("compressed-data") => {
                    Some(verdict(Plaintext, "smime", Some("compressed-data")))
                }
                Some(other) => {
                    notes.push(format!("s/mime message of unknown smime-type {other:?}"));
                    None
                }
                None => {
                    notes.push("s/mime message whose content type could not be read".to_string());
                    None
                }
            }
        }
        "multipart/encrypted" => {
            let protocol = param(&params, "protocol")
                .unwrap_or("")
                .to_ascii_lowercase();
            if protocol == "application/pgp-encrypted" {
                Some(verdict(Encrypted, "pgp-mime", None))
            } else {
                notes.push(format!("multipart/encrypted with protocol {protocol:?}"));
                None
            }
        }
        _ => {
            if has_rpmsg_part(body) {
                return Some(verdict(
                    Encrypted,
                    "rpmsg",
                    Some("purview-protected message.rpmsg attachment"),
                ));
            }
            if kind == "multipart/signed" {
                let protocol = param(&params, "protocol")
                    .unwrap_or("")
                    .to_ascii_lowercase();
                let scheme = if protocol.contains("pkcs7-signature") {
                    "smime-signed"
                } else if protocol == "application/pgp-signature" {
                    "pgp-mime-signed"
                } else {
                    "email"
                };
                return Some(verdict(Plaintext, scheme, None));
            }
            let (pgp, _) = super::crypto::armored_blocks(body, notes);
            if pgp > 0 {
                return Some(verdict(
                    Partial,
                    "pgp-inline",
                    Some(&format!(
                        "{pgp} inline openpgp message{} in a readable message",
                        if pgp == 1 { "" } else { "s" }
                    )),
                ));
            }
            Some(verdict(Plaintext, "email", None))
        }
    }
}

/// Inspects an e-mail message: labels from `msip_labels` header fields and the encryption
/// verdict of its content.
pub fn inspect_email(src: &Bounded<'_>) -> Result<Evidence, InspectError> {
    let head = src.read_up_to(0, HEADER_CAP)?;
    let (header, body_start) = split_header(&head);
    let mut notes = Vec::new();
    if body_start.is_none() && src.size() > head.len() as u64 {
        notes.push(format!(
            "header block longer than {} KiB: the rest was not read",
            HEADER_CAP / 1024
        ));
    }
    let fields = header_fields(&String::from_utf8_lossy(header));
    let labels_value: Vec<&str> = fields
        .iter()
        .filter(|(n, _)| n == "msip_labels")
        .map(|(_, v)| v.as_str())
        .collect();
    let labels = msip::labels_from_header(&labels_value.join(";"));

    let body = match body_start {
        Some(start) => src.read_up_to(start as u64, BODY_SCAN)?,
        None => Vec::new(),
    };
    let encryption = decide(&fields, &body, &mut notes);
    Ok(Evidence {
        labels,
        encryption,
        format: Some("eml"),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(msg: &[u8]) -> Evidence {
        inspect_email(&Bounded::from_bytes(msg, 1 << 22)).unwrap()
    }

    fn scheme(ev: &Evidence) -> (EncryptionStatus, String) {
        let v = ev.encryption.clone().unwrap_or_default();
        (v.status, v.scheme.unwrap_or_default())
    }

    #[test]
    fn folded_headers_are_unfolded() {
        let fields =
            header_fields("Subject: a\r\n  b\r\nmsip_labels: X=1;\r\n\tY=2\r\nbad line\r\n");
        assert_eq!(
            fields,
            vec![
                ("subject".to_string(), "a  b".to_string()),
                ("msip_labels".to_string(), "X=1;\tY=2".to_string()),
            ]
        );
    }

    #[test]
    fn header_block_ends_at_the_first_empty_line() {
        assert_eq!(
            split_header(b"A: 1\r\nB: 2\r\n\r\nbody"),
            (&b"A: 1\r\nB: 2\r\n"[..], Some(14))
        );
        assert_eq!(split_header(b"A: 1\n\nbody"), (&b"A: 1\n"[..], Some(6)));
        assert_eq!(split_header(b"A: 1\nB: 2"), (&b"A: 1\nB: 2"[..], None));
    }

    #[test]
    fn mime_parameters_are_parsed() {
        let (kind, params) = parse_mime_value(
            "Application/PKCS7-MIME; smime-type=enveloped-data; name=\"smime;x.p7m\"; filename*=utf-8''a.p7m",
        );
        assert_eq!(kind, "application/pkcs7-mime");
        assert_eq!(param(&params, "smime-type"), Some("enveloped-data"));
        assert_eq!(param(&params, "name"), Some("smime;x.p7m"));
        assert_eq!(param(&params, "filename"), Some("a.p7m"));
    }

    #[test]
    fn cms_content_types_are_read_from_der() {
        let mut enveloped = vec![0x30, 0x82, 0x01, 0x00, 0x06, 0x09];
        enveloped.extend_from_slice(OID_ENVELOPED_DATA);
        assert_eq!(cms_kind(&enveloped), Some(CmsKind::Enveloped));
        let mut signed = vec![0x30, 0x80, 0x06, 0x09];
        signed.extend_from_slice(OID_SIGNED_DATA);
        assert_eq!(cms_kind(&signed), Some(CmsKind::Signed));
        assert_eq!(cms_kind(&[0x30, 0x85]), None);
        assert_eq!(cms_kind(&[0x30, 0x03, 0x06, 0x09, 0x2A]), None);
    }

    #[test]
    fn content_type_decides() {
        let cases: &[(&str, EncryptionStatus, &str)] = &[
            (
                "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\n\nnot base64 at all",
                EncryptionStatus::Encrypted,
                "smime",
            ),
            (
                "Content-Type: application/x-pkcs7-mime; name=\"smime.p7m\"\n\n",
                EncryptionStatus::Encrypted,
                "smime",
            ),
            (
                "Content-Type: application/pkcs7-mime; smime-type=signed-data\n\n",
                EncryptionStatus::Plaintext,
                "smime-signed",
            ),
            (
                "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=x\n\n",
                EncryptionStatus::Encrypted,
                "pgp-mime",
            ),
            (
                "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=x\n\n",
                EncryptionStatus::Plaintext,
                "smime-signed",
            ),
            (
                "Content-Class: rpmsg.message\nContent-Type: multipart/mixed; boundary=b\n\n",
                EncryptionStatus::Encrypted,
                "rpmsg",
            ),
            (
                "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/x-microsoft-rpmsg-message;\n\tname=\"message.rpmsg\"\n\n",
                EncryptionStatus::Encrypted,
                "rpmsg",
            ),
            (
                "Subject: mentions message.rpmsg in passing\n\nplease open message.rpmsg\n",
                EncryptionStatus::Plaintext,
                "email",
            ),
        ];
        for (msg, status, expected) in cases {
            let msg = format!("From: a@example.com\nTo: b@example.com\n{msg}");
            let ev = run(msg.as_bytes());
            assert_eq!(scheme(&ev), (*status, expected.to_string()), "{msg}");
            assert_eq!(ev.format, Some("eml"));
        }
    }

    #[test]
    fn a_body_that_contradicts_smime_type_wins() {
        let mut der = vec![0x30, 0x80, 0x06, 0x09];
        der.extend_from_slice(OID_SIGNED_DATA);
        der.extend_from_slice(&[0xA0, 0x80, 0, 0]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let msg = format!(
            "From: a@example.com\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\nContent-Transfer-Encoding: base64\n\n{b64}\n"
        );
        assert_eq!(
            scheme(&run(msg.as_bytes())),
            (EncryptionStatus::Plaintext, "smime-signed".to_string())
        );
    }

    #[test]
    fn msip_labels_are_read_from_folded_headers() {
        let msg = "From: a@example.com\r\nmsip_labels: MSIP_Label_3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d_Enabled=True;\r\n MSIP_Label_3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d_SiteId=0b1c2d3e-0000-4000-8000-000000000001;\r\n MSIP_Label_3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d_Name=Confidential\r\n\r\nhello\r\n";
        let ev = run(msg.as_bytes());
        assert_eq!(ev.labels.len(), 1, "{ev:?}");
        assert_eq!(
            ev.labels[0].id.as_deref(),
            Some("3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d")
        );
        assert_eq!(ev.labels[0].name.as_deref(), Some("Confidential"));
    }
}

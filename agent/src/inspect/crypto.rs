//! Containers that are encrypted by design (OpenPGP, age, LUKS, Purview .pfile) and text formats
//! with encrypted values (Ansible Vault inline values, SOPS, armored blocks embedded in text).
//!
//! Every inspector reads a bounded prefix (and for text, also a bounded tail) and decides from
//! structure, never from entropy: an OpenPGP message is encrypted when session key packets are
//! followed by an encrypted data packet, a LUKS volume when its data segment names a real cipher,
//! a SOPS file by counting `ENC[…]` leaves against leaves left in clear.

use base64::Engine;
use infoledger_policies::{EncryptionStatus, EncryptionVerdict};

use super::sniff::memfind;
use super::{Bounded, Evidence, InspectError};

/// Builds evidence with a verdict and an optional detail.
fn verdict(status: EncryptionStatus, scheme: &str, detail: Option<String>) -> Evidence {
    let mut v = EncryptionVerdict::new(status, scheme);
    if let Some(d) = detail {
        v = v.with_detail(d);
    }
    Evidence {
        encryption: Some(v),
        ..Evidence::default()
    }
}

/// Evidence that cannot be judged, with the reason as a note.
fn undecided(note: impl Into<String>) -> Evidence {
    Evidence {
        notes: vec![note.into()],
        ..Evidence::default()
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

fn be_u16(b: &[u8], at: usize) -> Result<u16, InspectError> {
    b.get(at..at.wrapping_add(2))
        .and_then(|s| s.try_into().ok())
        .map(u16::from_be_bytes)
        .ok_or(InspectError::Truncated("field"))
}

fn be_u32(b: &[u8], at: usize) -> Result<u32, InspectError> {
    b.get(at..at.wrapping_add(4))
        .and_then(|s| s.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or(InspectError::Truncated("field"))
}

fn be_u64(b: &[u8], at: usize) -> Result<u64, InspectError> {
    b.get(at..at.wrapping_add(8))
        .and_then(|s| s.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or(InspectError::Truncated("field"))
}

// ---------------------------------------------------------------------------------------------
// OpenPGP (RFC 9580 §4.2 packet headers, §5 packet tags, §6 armor; RFC 4880 §4.2 old format)
// ---------------------------------------------------------------------------------------------

/// How many bytes of OpenPGP data (binary, or decoded from armor) are examined. The decision
/// needs only the first packets: session key packets are a few hundred bytes each, so this
/// covers messages to well over a hundred recipients.
const PGP_PREFIX: usize = 64 * 1024;
/// How many armor characters are read: decodes to a little more than [`PGP_PREFIX`].
const ARMOR_PREFIX: usize = 96 * 1024;
/// Upper bound on packets examined in one message.
const MAX_PACKETS: usize = 1024;
/// Upper bound on the chunks of one partial-length body that are followed.
const MAX_PARTIAL_CHUNKS: usize = PGP_PREFIX;
/// How deep compressed packets are opened (a compressed packet holds a whole message).
const MAX_PGP_NESTING: u8 = 2;
/// How many decompressed bytes of a compressed packet are looked at: enough for the first
/// packet header of the inner message.
const MAX_INFLATED: usize = 4096;

/// Packet tags (RFC 9580 §5).
mod tag {
    pub(super) const PKESK: u8 = 1;
    pub(super) const SIGNATURE: u8 = 2;
    pub(super) const SKESK: u8 = 3;
    pub(super) const ONE_PASS_SIGNATURE: u8 = 4;
    pub(super) const SECRET_KEY: u8 = 5;
    pub(super) const PUBLIC_KEY: u8 = 6;
    pub(super) const SECRET_SUBKEY: u8 = 7;
    pub(super) const COMPRESSED: u8 = 8;
    pub(super) const SED: u8 = 9;
    pub(super) const MARKER: u8 = 10;
    pub(super) const LITERAL: u8 = 11;
    pub(super) const PUBLIC_SUBKEY: u8 = 14;
    pub(super) const SEIPD: u8 = 18;
    pub(super) const AEAD: u8 = 20;
    pub(super) const PADDING: u8 = 21;
}

/// The length of a packet body as its header announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyLen {
    /// The whole body, in bytes.
    Fixed(u64),
    /// The first chunk of a partial-length body; more length headers follow it.
    Partial(u64),
    /// Old-format length type 3: the body runs to the end of the data.
    Indeterminate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PacketHeader {
    tag: u8,
    /// Bytes taken by the tag and length octets.
    len: usize,
    body: BodyLen,
}

/// Parses a new-format body length (RFC 9580 §4.2.1) at the start of `b`; returns the length and
/// how many octets it took.
fn new_format_length(b: &[u8]) -> Result<(BodyLen, usize), InspectError> {
    let truncated = InspectError::Truncated("openpgp packet length");
    let first = *b
        .first()
        .ok_or(InspectError::Truncated("openpgp packet length"))?;
    Ok(match first {
        0..=191 => (BodyLen::Fixed(u64::from(first)), 1),
        192..=223 => {
            let second = *b.get(1).ok_or(truncated)?;
            let len = ((u64::from(first) - 192) << 8) + u64::from(second) + 192;
            (BodyLen::Fixed(len), 2)
        }
        224..=254 => (BodyLen::Partial(1u64 << (first & 0x1f)), 1),
        255 => (BodyLen::Fixed(u64::from(be_u32(b, 1)?)), 5),
    })
}

/// Parses the packet header at the start of `b` (RFC 9580 §4.2; old format RFC 4880 §4.2.1).
fn packet_header(b: &[u8]) -> Result<PacketHeader, InspectError> {
    let first = *b
        .first()
        .ok_or(InspectError::Truncated("openpgp packet header"))?;
    if first & 0x80 == 0 {
        return Err(InspectError::malformed(format!(
            "openpgp packet header (first octet {first:#04x} lacks the always-one bit)"
        )));
    }
    if first & 0x40 != 0 {
        let (body, n) = new_format_length(b.get(1..).unwrap_or_default())?;
        return Ok(PacketHeader {
            tag: first & 0x3f,
            len: 1 + n,
            body,
        });
    }
    let tag = (first >> 2) & 0x0f;
    let (body, n) = match first & 0x03 {
        0 => (
            BodyLen::Fixed(u64::from(
                *b.get(1)
                    .ok_or(InspectError::Truncated("openpgp packet length"))?,
            )),
            1,
        ),
        1 => (BodyLen::Fixed(u64::from(be_u16(b, 1)?)), 2),
        2 => (BodyLen::Fixed(u64::from(be_u32(b, 1)?)), 4),
        _ => (BodyLen::Indeterminate, 0),
    };
    Ok(PacketHeader {
        tag,
        len: 1 + n,
        body,
    })
}

/// A packet body as far as `data` holds it.
struct Body {
    /// Up to the requested number of body bytes (chunks of a partial body joined).
    prefix: Vec<u8>,
    /// Where the next packet starts, when that is inside `data`.
    end: Option<usize>,
}

/// Follows the body of the packet whose header `h` starts at `at`, collecting at most `cap`
/// body bytes. Partial-length chains are followed chunk by chunk with an explicit bound; a chain
/// that runs past the data simply has no `end`.
fn packet_body(data: &[u8], at: usize, h: PacketHeader, cap: usize) -> Result<Body, InspectError> {
    let mut prefix = Vec::new();
    let take = |from: usize, len: u64, prefix: &mut Vec<u8>| {
        let want = usize::try_from(len)
            .unwrap_or(usize::MAX)
            .min(cap.saturating_sub(prefix.len()));
        let end = from.saturating_add(want).min(data.len());
        if let Some(s) = data.get(from..end) {
            prefix.extend_from_slice(s);
        }
    };
    let mut pos = at.saturating_add(h.len);
    let mut len = h.body;
    for _ in 0..MAX_PARTIAL_CHUNKS {
        match len {
            BodyLen::Indeterminate => {
                take(pos, u64::MAX, &mut prefix);
                return Ok(Body { prefix, end: None });
            }
            BodyLen::Fixed(n) => {
                take(pos, n, &mut prefix);
                let end = usize::try_from(n)
                    .ok()
                    .and_then(|n| pos.checked_add(n))
                    .filter(|&e| e <= data.len());
                return Ok(Body { prefix, end });
            }
            BodyLen::Partial(n) => {
                take(pos, n, &mut prefix);
                let next = usize::try_from(n).ok().and_then(|n| pos.checked_add(n));
                let Some(next) = next.filter(|&p| p < data.len()) else {
                    return Ok(Body { prefix, end: None });
                };
                let Some(rest) = data.get(next..) else {
                    return Ok(Body { prefix, end: None });
                };
                let (l, n) = match new_format_length(rest) {
                    Ok(v) => v,
                    Err(InspectError::Truncated(_)) => return Ok(Body { prefix, end: None }),
                    Err(e) => return Err(e),
                };
                pos = next.saturating_add(n);
                len = l;
            }
        }
    }
    Err(InspectError::malformed(
        "openpgp partial-length chain longer than the inspected data allows",
    ))
}

/// What the first packets of an OpenPGP message show.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PgpMessage {
    /// Session key packets (or none) followed by an encrypted data packet.
    Encrypted {
        public_key: usize,
        passphrase: usize,
        data_tag: u8,
    },
    /// Session key packets that run to the end of the inspected prefix.
    SessionKeysOnly {
        public_key: usize,
        passphrase: usize,
    },
    /// One-pass signature or signature first: a signed (or detached signature) message.
    Signed(&'static str),
    /// Literal data: readable content.
    Literal(&'static str),
    /// A transferable key.
    Key(&'static str),
    /// Not decidable; the reason.
    Undecided(String),
}

fn recipients_detail(public_key: usize, passphrase: usize) -> String {
    match (public_key, passphrase) {
        (0, 0) => "passphrase (no session key packet)".to_string(),
        (p, 0) => format!("public-key, {}", plural(p, "recipient", "recipients")),
        (0, s) => format!(
            "passphrase, {}",
            plural(s, "session key packet", "session key packets")
        ),
        (p, s) => format!(
            "public-key and passphrase, {} and {}",
            plural(p, "recipient", "recipients"),
            plural(s, "passphrase packet", "passphrase packets")
        ),
    }
}

fn data_packet_name(tag: u8) -> &'static str {
    match tag {
        tag::SED => "SED",
        tag::SEIPD => "SEIPD",
        _ => "AEAD",
    }
}

/// Classifies an OpenPGP message from its first packets. `complete` says whether `data` is the
/// whole message; when it is only a prefix, a packet cut off at its end is not an error.
fn classify_packets(data: &[u8], complete: bool, depth: u8) -> Result<PgpMessage, InspectError> {
    let mut pos = 0usize;
    let mut public_key = 0usize;
    let mut passphrase = 0usize;
    for _ in 0..MAX_PACKETS {
        let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) else {
            break;
        };
        let h = match packet_header(rest) {
            Ok(h) => h,
            Err(InspectError::Truncated(_)) if !complete => break,
            Err(e) => return Err(e),
        };
        let esk_seen = public_key + passphrase > 0;
        match h.tag {
            tag::PKESK | tag::SKESK | tag::MARKER | tag::PADDING => {
                if h.tag == tag::PKESK {
                    public_key += 1;
                } else if h.tag == tag::SKESK {
                    passphrase += 1;
                }
                if !matches!(h.body, BodyLen::Fixed(_)) {
                    return Err(InspectError::malformed(format!(
                        "openpgp packet {} with a partial or indeterminate length",
                        h.tag
                    )));
                }
                let body = packet_body(data, pos, h, 0)?;
                match body.end {
                    Some(end) => pos = end,
                    None if complete => {
                        return Err(InspectError::Truncated("openpgp packet"));
                    }
                    None => break,
                }
            }
            tag::SED | tag::SEIPD | tag::AEAD => {
                return Ok(PgpMessage::Encrypted {
                    public_key,
                    passphrase,
                    data_tag: h.tag,
                })
            }
            other if esk_seen => {
                return Ok(PgpMessage::Undecided(format!(
                    "openpgp session key packets followed by packet {other}, not encrypted data"
                )))
            }
            tag::ONE_PASS_SIGNATURE => return Ok(PgpMessage::Signed("signed message")),
            tag::SIGNATURE => return Ok(PgpMessage::Signed("signature")),
            tag::LITERAL => return Ok(PgpMessage::Literal("literal data")),
            tag::PUBLIC_KEY | tag::PUBLIC_SUBKEY => return Ok(PgpMessage::Key("public key")),
            tag::SECRET_KEY | tag::SECRET_SUBKEY => return Ok(PgpMessage::Key("secret key")),
            tag::COMPRESSED => return classify_compressed(data, pos, h, depth),
            other => {
                return Ok(PgpMessage::Undecided(format!(
                    "openpgp message starts with packet {other}"
                )))
            }
        }
    }
    if public_key + passphrase > 0 {
        if complete && pos >= data.len() {
            return Ok(PgpMessage::Undecided(
                "openpgp session key packets without encrypted data".to_string(),
            ));
        }
        return Ok(PgpMessage::SessionKeysOnly {
            public_key,
            passphrase,
        });
    }
    if data.is_empty() {
        return Err(InspectError::Truncated("openpgp message"));
    }
    Ok(PgpMessage::Undecided(
        "no openpgp packet could be read in the inspected prefix".to_string(),
    ))
}

/// A compressed data packet holds a whole message (RFC 9580 §5.6): decompress a few KiB and
/// classify the inner message, so that a compressed encrypted message is not called plaintext.
fn classify_compressed(
    data: &[u8],
    at: usize,
    h: PacketHeader,
    depth: u8,
) -> Result<PgpMessage, InspectError> {
    if depth >= MAX_PGP_NESTING {
        return Ok(PgpMessage::Undecided(
            "openpgp compressed packets nested too deeply".to_string(),
        ));
    }
    let body = packet_body(data, at, h, PGP_PREFIX)?;
    let Some((&algorithm, compressed)) = body.prefix.split_first() else {
        return Err(InspectError::Truncated("openpgp compressed packet"));
    };
    let inner = match algorithm {
        0 => compressed
            .get(..MAX_INFLATED)
            .unwrap_or(compressed)
            .to_vec(),
        1 | 2 => {
            // Output is capped at a few KiB, so a compression bomb costs nothing.
            let mut out = vec![0u8; MAX_INFLATED];
            let mut z = flate2::Decompress::new(algorithm == 2);
            match z.decompress(compressed, &mut out, flate2::FlushDecompress::None) {
                Ok(_) => {
                    let n = usize::try_from(z.total_out()).unwrap_or(0).min(out.len());
                    out.truncate(n);
                    out
                }
                Err(e) => {
                    return Ok(PgpMessage::Undecided(format!(
                        "openpgp compressed packet does not inflate: {e}"
                    )))
                }
            }
        }
        other => {
            return Ok(PgpMessage::Undecided(format!(
                "openpgp compressed packet uses algorithm {other}, which is not opened"
            )))
        }
    };
    Ok(match classify_packets(&inner, false, depth + 1)? {
        PgpMessage::Signed(_) => PgpMessage::Signed("compressed signed message"),
        PgpMessage::Literal(_) => PgpMessage::Literal("compressed literal data"),
        other => other,
    })
}

fn pgp_evidence(message: PgpMessage, notes: Vec<String>) -> Evidence {
    let mut ev = match message {
        PgpMessage::Encrypted {
            public_key,
            passphrase,
            data_tag,
        } => verdict(
            EncryptionStatus::Encrypted,
            "openpgp",
            Some(format!(
                "{} ({} packet)",
                recipients_detail(public_key, passphrase),
                data_packet_name(data_tag)
            )),
        ),
        PgpMessage::SessionKeysOnly {
            public_key,
            passphrase,
        } => {
            let mut ev = verdict(
                EncryptionStatus::Encrypted,
                "openpgp",
                Some(recipients_detail(public_key, passphrase)),
            );
            ev.notes
                .push("the encrypted data packet lies beyond the inspected prefix".to_string());
            ev
        }
        PgpMessage::Signed(d) => verdict(
            EncryptionStatus::Plaintext,
            "openpgp-signed",
            Some(d.to_string()),
        ),
        PgpMessage::Literal(d) => verdict(
            EncryptionStatus::Plaintext,
            "openpgp-literal",
            Some(d.to_string()),
        ),
        PgpMessage::Key(d) => verdict(
            EncryptionStatus::Plaintext,
            "openpgp-key",
            Some(d.to_string()),
        ),
        PgpMessage::Undecided(why) => undecided(why),
    };
    ev.notes.extend(notes);
    ev
}

/// Inspects binary OpenPGP packets (a `.gpg`/`.pgp`/`.sig` file).
pub fn inspect_pgp_binary(src: &Bounded<'_>) -> Result<Evidence, InspectError> {
    let data = src.read_up_to(0, PGP_PREFIX)?;
    let complete = data.len() as u64 >= src.size();
    let message = classify_packets(&data, complete, 0)?;
    Ok(pgp_evidence(message, Vec::new()))
}

/// An armor block's kind, from its `-----BEGIN PGP …-----` line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ArmorKind {
    /// `PGP MESSAGE` (also `PGP MESSAGE, PART x/y`), `PGP SIGNATURE`, key blocks: packets decide.
    Packets,
    /// `PGP SIGNED MESSAGE`: a cleartext signature (RFC 9580 §7), readable text.
    CleartextSigned,
    /// Something else.
    Other(String),
}

/// Base64 decoded from an armor body.
struct Dearmored {
    bytes: Vec<u8>,
    /// The END line was reached (not cut off by the prefix or the file's end).
    complete: bool,
    notes: Vec<String>,
}

/// The label of the first `-----BEGIN <label>-----` line and the offset just after that line.
fn begin_line<'t>(text: &'t [u8], prefix: &[u8]) -> Option<(&'t [u8], usize)> {
    let start = memfind(text, prefix)?;
    let label_start = start.checked_add(prefix.len())?;
    let rest = text.get(label_start..)?;
    let line_end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
    let line = rest.get(..line_end)?;
    let label_len = memfind(line, b"-----")?;
    let label = line.get(..label_len)?;
    Some((
        label,
        label_start.saturating_add(line_end).saturating_add(1),
    ))
}

/// Decodes the body of an armor block that starts at `body` (just after the BEGIN line): armor
/// headers up to the blank line are skipped, base64 is collected until the checksum or END line,
/// at most `max_chars` characters of it.
fn dearmor(text: &[u8], body: usize, max_chars: usize) -> Result<Dearmored, InspectError> {
    let mut b64 = Vec::new();
    let mut notes = Vec::new();
    let mut in_headers = true;
    let mut complete = false;
    let mut capped = false;
    let rest = text.get(body..).unwrap_or_default();
    // Each iteration consumes one line, so the line count bounds the loop.
    for raw in rest.split(|&c| c == b'\n') {
        let line = raw.trim_ascii_end();
        if line.starts_with(b"-----END ") {
            complete = true;
            break;
        }
        if in_headers {
            if line.is_empty() {
                in_headers = false;
                continue;
            }
            // A header is `Key: value`; base64 never contains a colon, so a line without one is
            // data from an encoder that omitted the blank line.
            if line.contains(&b':') {
                continue;
            }
            in_headers = false;
        }
        if line.is_empty() {
            continue;
        }
        // The optional CRC-24 checksum line (`=XXXX`) ends the data.
        if line.len() == 5 && line.first() == Some(&b'=') {
            continue;
        }
        if let Some(bad) = line
            .iter()
            .find(|&&c| !(c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'='))
        {
            return Err(InspectError::malformed(format!(
                "armor base64 (byte {bad:#04x})"
            )));
        }
        let room = max_chars.saturating_sub(b64.len());
        if line.len() > room {
            b64.extend_from_slice(line.get(..room).unwrap_or_default());
            capped = true;
            break;
        }
        b64.extend_from_slice(line);
    }
    if !complete && !capped {
        notes.push("armor ends without an END line".to_string());
    }
    if !complete {
        // Decode whole quantums only: the rest is cut off by the prefix or the file's end.
        let whole = b64.len() - b64.len() % 4;
        b64.truncate(whole);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .map_err(|e| InspectError::malformed(format!("armor base64: {e}")))?;
    Ok(Dearmored {
        bytes,
        complete,
        notes,
    })
}

/// Classifies the first OpenPGP armor block in `text`.
fn classify_pgp_armor(text: &[u8]) -> Result<Evidence, InspectError> {
    let Some((label, body)) = begin_line(text, b"-----BEGIN PGP ") else {
        return Err(InspectError::malformed(
            "openpgp armor without a BEGIN line",
        ));
    };
    let kind = match label {
        b"SIGNED MESSAGE" => ArmorKind::CleartextSigned,
        b"MESSAGE" | b"SIGNATURE" | b"PUBLIC KEY BLOCK" | b"PRIVATE KEY BLOCK" => {
            ArmorKind::Packets
        }
        l if l.starts_with(b"MESSAGE, PART ") => ArmorKind::Packets,
        l => ArmorKind::Other(String::from_utf8_lossy(l).into_owned()),
    };
    match kind {
        ArmorKind::CleartextSigned => Ok(verdict(
            EncryptionStatus::Plaintext,
            "openpgp-cleartext-signed",
            None,
        )),
        ArmorKind::Other(l) => Ok(undecided(format!("openpgp armor of unknown kind {l:?}"))),
        ArmorKind::Packets => {
            let d = dearmor(text, body, ARMOR_PREFIX)?;
            let message = classify_packets(&d.bytes, d.complete, 0)?;
            Ok(pgp_evidence(message, d.notes))
        }
    }
}

/// Inspects an ASCII-armored OpenPGP file: decodes a bounded prefix of the armor and classifies
/// the packets; a cleartext-signed message is readable text.
pub fn inspect_pgp_armored(_head: &[u8], src: &Bounded<'_>) -> Result<Evidence, InspectError> {
    // Armor lines are at most 76 characters, so the armor headers and ARMOR_PREFIX characters of
    // base64 fit in this read.
    let text = src.read_up_to(0, ARMOR_PREFIX + 16 * 1024)?;
    classify_pgp_armor(&text)
}

// ---------------------------------------------------------------------------------------------
// age (age-encryption.org/v1 specification: header, recipient stanzas, ASCII armor)
// ---------------------------------------------------------------------------------------------

const AGE_MAGIC: &[u8] = b"age-encryption.org/v1";
/// Bytes of an age file (or decoded armor) searched for the end of the header.
const AGE_PREFIX: usize = 64 * 1024;
/// Upper bound on header lines examined.
const MAX_AGE_LINES: usize = 8192;

/// Parses an age header (`age-encryption.org/v1`, stanzas `-> type args` with base64 bodies,
/// `--- mac`) and describes its recipients. `complete` says whether `data` is the whole file.
fn parse_age_header(data: &[u8], complete: bool) -> Result<Evidence, InspectError> {
    let mut lines = data.split(|&c| c == b'\n');
    if lines.next() != Some(AGE_MAGIC) {
        return Err(InspectError::malformed("age header version line"));
    }
    let mut types: Vec<String> = Vec::new();
    let mut recipients = 0usize;
    let mut in_body = false;
    let mut consumed = AGE_MAGIC.len() + 1;
    for line in lines.take(MAX_AGE_LINES) {
        consumed = consumed.saturating_add(line.len() + 1);
        if consumed > data.len() && !complete {
            // The line was cut off by the inspected prefix.
            break;
        }
        if let Some(args) = line.strip_prefix(b"-> ") {
            let kind = args
                .split(|&c| c == b' ')
                .next()
                .filter(|k| !k.is_empty())
                .ok_or_else(|| InspectError::malformed("age stanza without a type"))?;
            let kind = String::from_utf8_lossy(kind).into_owned();
            // Grease stanzas (random types ending in "-grease") exercise parsers; they are not
            // recipients.
            if !kind.ends_with("-grease") {
                recipients += 1;
                if !types.contains(&kind) {
                    types.push(kind);
                }
            }
            in_body = true;
            continue;
        }
        if line.starts_with(b"---") {
            if recipients == 0 && types.is_empty() && !in_body {
                return Err(InspectError::malformed(
                    "age header without recipient stanzas",
                ));
            }
            let detail = if types.iter().any(|t| t == "scrypt") {
                "passphrase (scrypt)".to_string()
            } else {
                format!(
                    "{}: {}",
                    plural(recipients, "recipient", "recipients"),
                    types.join(", ")
                )
            };
            return Ok(verdict(EncryptionStatus::Encrypted, "age", Some(detail)));
        }
        // Stanza bodies are unpadded base64 wrapped at 64 columns; a short line ends the body.
        let is_b64 = line
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/');
        if !in_body || !is_b64 || line.len() > 64 {
            return Err(InspectError::malformed("age header line"));
        }
        if line.len() < 64 {
            in_body = false;
        }
    }
    if complete {
        return Err(InspectError::Truncated("age header"));
    }
    Ok(undecided(format!(
        "age header longer than the inspected {} KiB",
        AGE_PREFIX / 1024
    )))
}

/// Inspects an age file, binary or ASCII-armored: validates the header and names the recipient
/// types (`X25519`, `scrypt` for a passphrase, `ssh-ed25519`, …).
pub fn inspect_age(src: &Bounded<'_>) -> Result<Evidence, InspectError> {
    let head = src.read_up_to(0, AGE_PREFIX * 4 / 3 + 4096)?;
    let whole = head.len() as u64 >= src.size();
    if head.starts_with(AGE_MAGIC) {
        let data = head.get(..AGE_PREFIX).unwrap_or(&head);
        return parse_age_header(data, whole && data.len() == head.len());
    }
    let Some((label, body)) = begin_line(&head, b"-----BEGIN ") else {
        return Err(InspectError::malformed("age file without header or armor"));
    };
    if label != b"AGE ENCRYPTED FILE" {
        return Err(InspectError::malformed("age armor label"));
    }
    let d = dearmor(&head, body, AGE_PREFIX * 4 / 3)?;
    let mut ev = parse_age_header(&d.bytes, d.complete)?;
    ev.notes.extend(d.notes);
    Ok(ev)
}

// ---------------------------------------------------------------------------------------------
// LUKS (LUKS1 On-Disk Format Specification 1.2.3; LUKS2 On-Disk Format Specification 1.1.x)
// ---------------------------------------------------------------------------------------------

const LUKS1_HEADER: usize = 592;
const LUKS2_BINARY_HEADER: usize = 4096;
/// The largest JSON area read (the specification allows up to 4 MiB; cryptsetup writes 12 KiB
/// by default).
const MAX_LUKS2_JSON: usize = 256 * 1024;
const LUKS1_KEY_ACTIVE: u32 = 0x00AC_71F3;

/// A NUL-terminated ASCII field of a LUKS header.
fn luks_string(b: &[u8], at: usize, len: usize) -> Result<String, InspectError> {
    let field = b
        .get(at..at.saturating_add(len))
        .ok_or(InspectError::Truncated("luks header"))?;
    let end = field.iter().position(|&c| c == 0).unwrap_or(field.len());
    let s = field.get(..end).unwrap_or_default();
    if s.is_empty() || !s.iter().all(|c| c.is_ascii_graphic()) {
        return Err(InspectError::malformed("luks header string field"));
    }
    Ok(String::from_utf8_lossy(s).into_owned())
}

/// `cipher_null` is cryptsetup's identity cipher: a volume "encrypted" with it is plaintext.
fn is_null_cipher(cipher: &str) -> bool {
    cipher.starts_with("cipher_null")
}

fn inspect_luks1(h: &[u8]) -> Result<Evidence, InspectError> {
    let cipher = luks_string(h, 8, 32)?;
    let mode = luks_string(h, 40, 32)?;
    let mut active = 0usize;
    for slot in 0..8usize {
        if be_u32(h, 208 + slot * 48)? == LUKS1_KEY_ACTIVE {
            active += 1;
        }
    }
    let detail = format!("{cipher}-{mode}, {} of 8 key slots active", active);
    if is_null_cipher(&cipher) {
        return Ok(verdict(EncryptionStatus::Plaintext, "luks1", Some(detail)));
    }
    Ok(verdict(EncryptionStatus::Encrypted, "luks1", Some(detail)))
}

fn inspect_luks2(src: &Bounded<'_>, h: &[u8]) -> Result<Evidence, InspectError> {
    let hdr_size = be_u64(h, 8)?;
    // The header size (binary header plus JSON area) is one of 16 KiB … 4 MiB.
    if !(16 * 1024..=4 * 1024 * 1024).contains(&hdr_size) || !hdr_size.is_power_of_two() {
        return Err(InspectError::malformed(format!(
            "luks2 header size {hdr_size}"
        )));
    }
    let json_len = usize::try_from(hdr_size)
        .unwrap_or(MAX_LUKS2_JSON)
        .saturating_sub(LUKS2_BINARY_HEADER)
        .min(MAX_LUKS2_JSON);
    let area = src.read_up_to(LUKS2_BINARY_HEADER as u64, json_len)?;
    let end = area.iter().position(|&c| c == 0).unwrap_or(area.len());
    let json = area.get(..end).unwrap_or_default();
    // serde_json limits nesting depth itself (128), and the input is bounded above.
    let meta: serde_json::Value = match serde_json::from_slice(json) {
        Ok(v) => v,
        Err(e) => {
            return Ok(undecided(format!(
                "luks2 metadata is not readable json: {e}"
            )))
        }
    };
    let Some(segments) = meta.get("segments").and_then(|s| s.as_object()) else {
        return Ok(undecided("luks2 metadata without segments"));
    };
    let keyslots = meta
        .get("keyslots")
        .and_then(|k| k.as_object())
        .map_or(0, |k| k.len());
    let mut ciphers: Vec<String> = Vec::new();
    let mut plain_segments = 0usize;
    let mut crypt_segments = 0usize;
    for seg in segments.values().take(64) {
        let kind = seg.get("type").and_then(|t| t.as_str()).unwrap_or("");
        let cipher = seg.get("encryption").and_then(|t| t.as_str()).unwrap_or("");
        match kind {
            "crypt" if !cipher.is_empty() && !is_null_cipher(cipher) => {
                crypt_segments += 1;
                if !ciphers.iter().any(|c| c == cipher) {
                    ciphers.push(cipher.to_string());
                }
            }
            // A linear segment or a null cipher maps the data as it is: during online
            // encryption (or decryption) part of the device is still in clear.
            "crypt" | "linear" => plain_segments += 1,
            _ => {}
        }
    }
    let slots = plural(keyslots, "keyslot", "keyslots");
    match (crypt_segments, plain_segments) {
        (0, 0) => Ok(undecided("luks2 metadata without a data segment")),
        (_, 0) => Ok(verdict(
            EncryptionStatus::Encrypted,
            "luks2",
            Some(format!("{}, {slots}", ciphers.join(", "))),
        )),
        (0, _) => Ok(verdict(
            EncryptionStatus::Plaintext,
            "luks2",
            Some(format!("no encrypted segment, {slots}")),
        )),
        (c, p) => Ok(verdict(
            EncryptionStatus::Partial,
            "luks2",
            Some(format!(
                "{c} of {} segments encrypted ({}), reencryption in progress",
                c + p,
                ciphers.join(", ")
            )),
        )),
    }
}

/// Inspects a LUKS volume header: LUKS1 names its cipher at fixed offsets; LUKS2 keeps it in the
/// JSON metadata that follows the 4 KiB binary header.
pub fn inspect_luks(src: &Bounded<'_>) -> Result<Evidence, InspectError> {
    let h = src.read_up_to(0, LUKS2_BINARY_HEADER)?;
    if !h.starts_with(b"LUKS\xBA\xBE") {
        return Err(InspectError::malformed("luks magic"));
    }
    match be_u16(&h, 6)? {
        1 => {
            if h.len() < LUKS1_HEADER {
                return Err(InspectError::Truncated("luks1 header"));
            }
            inspect_luks1(&h)
        }
        2 => {
            if h.len() < LUKS2_BINARY_HEADER {
                return Err(InspectError::Truncated("luks2 header"));
            }
            inspect_luks2(src, &h)
        }
        v => Ok(undecided(format!("luks version {v} is not known"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Purview / AD RMS protected file (.pfile)
// ---------------------------------------------------------------------------------------------

/// Bytes read for the PFile header (the cleartext redirection text is a few hundred bytes).
const PFILE_HEAD: usize = 64 * 1024;

/// Inspects a Purview (AD RMS) protected file. The layout follows Microsoft's open-source RMS SDK
/// (`rms-sdk-for-cpp`, `PfileHeaderReader`/`PfileHeaderWriter`): the preamble `.pfile`, `u32`
/// major and minor version (major 2 or 3), a length-prefixed cleartext redirection text, then a
/// header of little-endian `u32` fields — header size, extension offset and length, publishing
/// license offset and length, content offset — and, when the header is 40 bytes long, a `u64`
/// original size and the metadata offset and length. The content after the publishing license is
/// encrypted with the content key the license protects, so a consistent header means the file is
/// encrypted.
pub fn inspect_pfile(src: &Bounded<'_>) -> Result<Evidence, InspectError> {
    let h = src.read_up_to(0, PFILE_HEAD)?;
    let size = src.size();
    let Some(preamble) = h.get(..6) else {
        return Ok(undecided("pfile too short for a header"));
    };
    if !preamble.eq_ignore_ascii_case(b".pfile") {
        return Ok(undecided(
            "named .pfile but without the .pfile preamble: not judged",
        ));
    }
    let le = super::source::le::u32;
    let major = le(&h, 6)?;
    let minor = le(&h, 10)?;
    if !(2..=3).contains(&major) || minor >= 256 {
        return Ok(undecided(format!(
            "pfile version {major}.{minor} is not known"
        )));
    }
    let redirect_len = usize::try_from(le(&h, 14)?).unwrap_or(usize::MAX);
    let fields = 18usize
        .checked_add(redirect_len)
        .filter(|&f| f < PFILE_HEAD)
        .ok_or_else(|| InspectError::malformed("pfile redirection text length"))?;
    let header_size = le(&h, fields)?;
    let ext_offset = u64::from(le(&h, fields + 4)?);
    let ext_len = u64::from(le(&h, fields + 8)?);
    let pl_offset = u64::from(le(&h, fields + 12)?);
    let pl_len = u64::from(le(&h, fields + 16)?);
    let content_offset = u64::from(le(&h, fields + 20)?);
    let mut end_of_header = pl_offset + pl_len;
    if header_size >= 40 {
        let meta_offset = u64::from(le(&h, fields + 32)?);
        let meta_len = u64::from(le(&h, fields + 36)?);
        end_of_header = end_of_header.max(meta_offset + meta_len);
    }
    if pl_len == 0
        || content_offset < end_of_header
        || content_offset > size
        || ext_offset + ext_len > size
        || ext_len > 256
    {
        return Err(InspectError::malformed("pfile header offsets"));
    }
    let extension = usize::try_from(ext_offset)
        .ok()
        .and_then(|o| h.get(o..o.saturating_add(ext_len as usize)))
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .filter(|e| !e.is_empty() && e.chars().all(|c| c.is_ascii_graphic()));
    let detail = match extension {
        Some(ext) => format!("rms protected file (v{major}.{minor}), original extension {ext}"),
        None => format!("rms protected file (v{major}.{minor})"),
    };
    Ok(verdict(EncryptionStatus::Encrypted, "pfile", Some(detail)))
}

// ---------------------------------------------------------------------------------------------
// Text: SOPS, Ansible Vault inline values, armored blocks
// ---------------------------------------------------------------------------------------------

/// How much of a text file is read. Values beyond it are not counted (a note says so); the last
/// [`TEXT_TAIL`] bytes are read as well, because SOPS writes its metadata at the end.
pub const TEXT_CAP: usize = 1024 * 1024;
/// Bytes read from the end of a text file longer than [`TEXT_CAP`].
const TEXT_TAIL: usize = 64 * 1024;
/// Upper bound on embedded armor blocks examined.
const MAX_ARMOR_BLOCKS: usize = 64;
/// Nesting bound for walking SOPS JSON documents.
const MAX_JSON_DEPTH: usize = 64;

/// Whether a scalar is a SOPS-encrypted value `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`.
fn is_sops_value(v: &str) -> bool {
    let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
    v.starts_with("ENC[AES256_GCM,data:")
        && v.ends_with(']')
        && v.contains(",iv:")
        && v.contains(",tag:")
        && v.contains(",type:")
}

/// SOPS's text encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SopsFormat {
    Yaml,
    Json,
    Dotenv,
    Ini,
}

/// Leaf values counted in a SOPS document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Leaves {
    encrypted: usize,
    plain: usize,
}

impl Leaves {
    fn count(&mut self, value: &str) {
        if is_sops_value(value) {
            self.encrypted += 1;
        } else {
            self.plain += 1;
        }
    }
}

fn sops_format(text: &str, name: &str) -> SopsFormat {
    match super::sniff::extension(name).as_deref() {
        Some("json") => return SopsFormat::Json,
        Some("env") => return SopsFormat::Dotenv,
        Some("ini") => return SopsFormat::Ini,
        Some("yaml" | "yml") => return SopsFormat::Yaml,
        _ => {}
    }
    if text.trim_start().starts_with('{') {
        SopsFormat::Json
    } else if text.lines().any(|l| l.starts_with("sops_mac=")) {
        SopsFormat::Dotenv
    } else if text.lines().any(|l| l.trim() == "[sops]") {
        SopsFormat::Ini
    } else {
        SopsFormat::Yaml
    }
}

/// Splits a YAML `key: value` line (block style, as SOPS writes it) into its value; `None` when
/// the line is a bare scalar.
fn yaml_value(line: &str) -> Option<&str> {
    let key_end = if let Some(q) = line.chars().next().filter(|c| *c == '"' || *c == '\'') {
        line.get(1..)?.find(q)? + 2
    } else {
        0
    };
    let rest = line.get(key_end..)?;
    if let Some(i) = rest.find(": ") {
        return rest.get(i + 2..);
    }
    rest.ends_with(':').then_some("")
}

/// The `sops:` section of a YAML text: lines after a top-level `sops:` up to the next top-level
/// key.
fn yaml_sops_section(text: &str) -> Option<Vec<&str>> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with("sops:"));
    lines.next()?;
    Some(
        lines
            .take_while(|l| l.is_empty() || l.starts_with([' ', '\t', '#']))
            .collect(),
    )
}

fn yaml_has_metadata(text: &str) -> bool {
    let Some(section) = yaml_sops_section(text) else {
        return false;
    };
    ["mac:", "lastmodified:", "version:"]
        .iter()
        .all(|k| section.iter().any(|l| l.trim_start().starts_with(k)))
}

/// Counts leaves of a block-style YAML document, skipping the top-level `sops` section.
fn yaml_leaves(text: &str) -> Leaves {
    let mut leaves = Leaves::default();
    let mut in_sops = false;
    let mut block_scalar: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        let t = line.trim();
        if let Some(at) = block_scalar {
            if t.is_empty() || indent > at {
                continue;
            }
            block_scalar = None;
        }
        if t.is_empty() || t.starts_with('#') || t == "---" || t == "..." {
            continue;
        }
        if indent == 0 {
            in_sops = t == "sops:" || t.starts_with("sops: ");
        }
        if in_sops {
            continue;
        }
        let mut item = t;
        while let Some(rest) = item.strip_prefix("- ") {
            item = rest.trim_start();
        }
        if item == "-" {
            continue;
        }
        let value = yaml_value(item).unwrap_or(item).trim();
        if value.is_empty() || value == "{}" || value == "[]" {
            continue;
        }
        if value.starts_with('|') || value.starts_with('>') {
            // A block scalar's text follows on more indented lines; SOPS would have encrypted
            // it into one ENC[…] scalar, so it is one value left in clear.
            leaves.plain += 1;
            block_scalar = Some(indent);
            continue;
        }
        leaves.count(value);
    }
    leaves
}

fn dotenv_pairs(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().trim_start_matches("export ").trim(), v))
}

fn dotenv_has_metadata(text: &str) -> bool {
    ["sops_mac", "sops_lastmodified", "sops_version"]
        .iter()
        .all(|k| dotenv_pairs(text).any(|(key, _)| key == *k))
}

fn dotenv_leaves(text: &str) -> Leaves {
    let mut leaves = Leaves::default();
    for (key, value) in dotenv_pairs(text) {
        if !key.starts_with("sops_") {
            leaves.count(value);
        }
    }
    leaves
}

/// `(section, key, value)` for each INI entry.
fn ini_entries(text: &str) -> Vec<(&str, &str, &str)> {
    let mut section = "";
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with([';', '#']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.push((section, k.trim(), v.trim()));
        }
    }
    out
}

fn ini_has_metadata(text: &str) -> bool {
    let entries = ini_entries(text);
    ["mac", "lastmodified", "version"]
        .iter()
        .all(|k| entries.iter().any(|(s, key, _)| *s == "sops" && key == k))
}

fn ini_leaves(text: &str) -> Leaves {
    let mut leaves = Leaves::default();
    for (section, _, value) in ini_entries(text) {
        if section != "sops" {
            leaves.count(value);
        }
    }
    leaves
}

fn json_leaves(v: &serde_json::Value, depth: usize, leaves: &mut Leaves) {
    if depth > MAX_JSON_DEPTH {
        return;
    }
    match v {
        serde_json::Value::Null => {}
        serde_json::Value::String(s) => leaves.count(s),
        serde_json::Value::Bool(_) | serde_json::Value::Number(_) => leaves.plain += 1,
        serde_json::Value::Array(items) => {
            for item in items {
                json_leaves(item, depth + 1, leaves);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map {
                if depth == 0 && k == "sops" {
                    continue;
                }
                json_leaves(item, depth + 1, leaves);
            }
        }
    }
}

/// What a SOPS check found.
enum Sops {
    /// Not a SOPS file.
    No,
    /// SOPS metadata (`mac`, `lastmodified`, `version`) and the leaf counts.
    Counted(Leaves),
    /// Looks like SOPS but cannot be judged; why.
    Undecided(String),
}

/// Checks for SOPS metadata (in the head or, for long files, the tail) and counts leaves.
fn sops_check(head: &str, tail: &str, name: &str) -> Sops {
    let has_enc = head.contains("ENC[AES256_GCM,data:") || tail.contains("ENC[AES256_GCM,data:");
    let format = sops_format(head, name);
    let (metadata, leaves) = match format {
        SopsFormat::Json => {
            if !has_enc && !head.contains("\"sops\"") {
                return Sops::No;
            }
            match serde_json::from_str::<serde_json::Value>(head) {
                Ok(v) => {
                    let meta = v.get("sops").is_some_and(|s| {
                        ["mac", "lastmodified", "version"]
                            .iter()
                            .all(|k| s.get(k).is_some())
                    });
                    let mut leaves = Leaves::default();
                    json_leaves(&v, 0, &mut leaves);
                    (meta, leaves)
                }
                Err(_) if has_enc => {
                    return Sops::Undecided(
                        "json with ENC[…] values that could not be parsed whole".to_string(),
                    )
                }
                Err(_) => return Sops::No,
            }
        }
        SopsFormat::Yaml => (
            yaml_has_metadata(head) || yaml_has_metadata(tail),
            yaml_leaves(head),
        ),
        SopsFormat::Dotenv => (
            dotenv_has_metadata(head) || dotenv_has_metadata(tail),
            dotenv_leaves(head),
        ),
        SopsFormat::Ini => (
            ini_has_metadata(head) || ini_has_metadata(tail),
            ini_leaves(head),
        ),
    };
    match (metadata, has_enc) {
        (true, _) => Sops::Counted(leaves),
        (false, true) => Sops::Undecided(
            "ENC[…] values without sops metadata (mac, lastmodified, version)".to_string(),
        ),
        (false, false) => Sops::No,
    }
}

fn sops_evidence(leaves: Leaves) -> Evidence {
    let total = leaves.encrypted + leaves.plain;
    if total == 0 {
        return verdict(
            EncryptionStatus::Plaintext,
            "sops",
            Some("no values".to_string()),
        );
    }
    if leaves.encrypted == total {
        return verdict(
            EncryptionStatus::Encrypted,
            "sops",
            Some(format!("{} encrypted", plural(total, "value", "values"))),
        );
    }
    let status = if leaves.encrypted == 0 {
        EncryptionStatus::Plaintext
    } else {
        EncryptionStatus::Partial
    };
    verdict(
        status,
        "sops",
        Some(format!("{} of {total} values encrypted", leaves.encrypted)),
    )
}

/// Counts inline Ansible Vault values: a `!vault |` tag whose next non-empty line is an indented
/// `$ANSIBLE_VAULT;1.1;AES256` (or `1.2;AES256;<vault-id>`) envelope.
fn ansible_inline_values(text: &str) -> (usize, usize) {
    let mut found = 0usize;
    let mut broken = 0usize;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim();
        let t = t.strip_prefix("- ").unwrap_or(t);
        let value = yaml_value(t).unwrap_or(t).trim();
        if !value.starts_with("!vault") {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let mut next = None;
        while let Some(l) = lines.peek() {
            if l.trim().is_empty() {
                lines.next();
                continue;
            }
            next = Some(*l);
            break;
        }
        let is_envelope = next.is_some_and(|l| {
            let ni = l.len() - l.trim_start().len();
            let body = l.trim();
            ni > indent
                && (body.starts_with("$ANSIBLE_VAULT;1.1;AES256")
                    || body.starts_with("$ANSIBLE_VAULT;1.2;AES256;"))
        });
        if is_envelope {
            found += 1;
        } else {
            broken += 1;
        }
    }
    (found, broken)
}

/// Counts armored OpenPGP messages and age files embedded in text that really are encrypted.
pub(crate) fn armored_blocks(text: &[u8], notes: &mut Vec<String>) -> (usize, usize) {
    const PGP: &[u8] = b"-----BEGIN PGP MESSAGE-----";
    const AGE: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
    let find = |needle: &[u8], from: usize| {
        text.get(from..)
            .and_then(|rest| memfind(rest, needle))
            .map(|at| at + from)
    };
    let mut pgp = 0usize;
    let mut age = 0usize;
    // Each search runs once per block found, not once per iteration for both kinds.
    let mut next_pgp = find(PGP, 0);
    let mut next_age = find(AGE, 0);
    for _ in 0..MAX_ARMOR_BLOCKS {
        let (at, is_pgp) = match (next_pgp, next_age) {
            (Some(p), Some(a)) if a < p => (a, false),
            (Some(p), _) => (p, true),
            (None, Some(a)) => (a, false),
            (None, None) => break,
        };
        let block = text.get(at..).unwrap_or_default();
        let result = if is_pgp {
            next_pgp = find(PGP, at + PGP.len());
            classify_pgp_armor(block)
        } else {
            next_age = find(AGE, at + AGE.len());
            let src = Bounded::from_bytes(block, (AGE_PREFIX * 2) as u64);
            inspect_age(&src)
        };
        match result {
            Ok(ev)
                if ev
                    .encryption
                    .as_ref()
                    .is_some_and(|v| v.status == EncryptionStatus::Encrypted) =>
            {
                if is_pgp {
                    pgp += 1;
                } else {
                    age += 1;
                }
            }
            Ok(_) => {}
            Err(e) => notes.push(format!("embedded armor block: {e}")),
        }
    }
    (pgp, age)
}

/// Inspects a text file for encrypted values: SOPS documents (YAML, JSON, dotenv, INI), inline
/// Ansible Vault values, and armored OpenPGP messages or age files embedded in plain text.
///
/// Only the first [`TEXT_CAP`] bytes are examined (plus the last 64 KiB for SOPS metadata):
/// values beyond are not counted, and a note says so.
pub fn inspect_text(src: &Bounded<'_>, name: &str) -> Result<Evidence, InspectError> {
    let mut head_bytes = src.read_up_to(0, TEXT_CAP)?;
    let size = src.size();
    let mut notes = Vec::new();
    let tail_bytes = if size > head_bytes.len() as u64 {
        // The cap cuts a line (and a value) in two: count complete lines only.
        if let Some(last_newline) = head_bytes.iter().rposition(|&c| c == b'\n') {
            head_bytes.truncate(last_newline + 1);
        }
        notes.push(format!(
            "only the first {} KiB of {size} bytes were examined for encrypted values",
            TEXT_CAP / 1024
        ));
        src.tail(TEXT_TAIL)?.1
    } else {
        Vec::new()
    };
    // Most text holds none of the constructs below; find that out with a few substring searches
    // before decoding and parsing it.
    const SIGNS: &[&[u8]] = &[
        b"ENC[",
        b"sops",
        b"$ANSIBLE_VAULT",
        b"!vault",
        b"-----BEGIN",
    ];
    let any_sign = |b: &[u8]| SIGNS.iter().any(|s| memchr::memmem::find(b, s).is_some());
    if !any_sign(&head_bytes) && !any_sign(&tail_bytes) {
        let mut ev = super::plain("text");
        ev.notes = notes;
        return Ok(ev);
    }
    let head = String::from_utf8_lossy(&head_bytes);
    let tail = String::from_utf8_lossy(&tail_bytes);

    let mut ev = match sops_check(&head, &tail, name) {
        Sops::Counted(leaves) => sops_evidence(leaves),
        Sops::Undecided(why) => {
            notes.push(why);
            Evidence::default()
        }
        Sops::No => {
            let (vault, broken) = ansible_inline_values(&head);
            if broken > 0 {
                notes.push(format!(
                    "{} without a vault envelope",
                    plural(broken, "!vault tag", "!vault tags")
                ));
            }
            let (pgp, age) = armored_blocks(&head_bytes, &mut notes);
            let mut parts = Vec::new();
            if vault > 0 {
                parts.push(format!("{} encrypted", plural(vault, "value", "values")));
            }
            if pgp > 0 {
                parts.push(plural(pgp, "openpgp message", "openpgp messages"));
            }
            if age > 0 {
                parts.push(plural(age, "age file", "age files"));
            }
            let scheme = if vault > 0 {
                "ansible-vault-inline"
            } else if pgp > 0 {
                "openpgp-inline"
            } else if age > 0 {
                "age-inline"
            } else {
                "text"
            };
            if parts.is_empty() {
                super::plain("text")
            } else {
                verdict(EncryptionStatus::Partial, scheme, Some(parts.join(", ")))
            }
        }
    };
    ev.notes.extend(notes);
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(ev: &Evidence) -> Option<(EncryptionStatus, &str)> {
        ev.encryption
            .as_ref()
            .map(|v| (v.status, v.scheme.as_deref().unwrap_or("")))
    }

    fn bytes(b: &[u8]) -> Bounded<'_> {
        Bounded::from_bytes(b, 1 << 22)
    }

    #[test]
    fn packet_headers_in_both_formats() {
        // New format, one-octet, two-octet, five-octet and partial lengths.
        let h = packet_header(&[0xC1, 100]).unwrap();
        assert_eq!((h.tag, h.len, h.body), (1, 2, BodyLen::Fixed(100)));
        let h = packet_header(&[0xD2, 0xC5, 0xFB]).unwrap();
        assert_eq!(h.body, BodyLen::Fixed(((0xC5 - 192) << 8) + 0xFB + 192));
        assert_eq!((h.tag, h.len), (18, 3));
        let h = packet_header(&[0xCB, 0xFF, 0, 1, 0, 0]).unwrap();
        assert_eq!((h.tag, h.len, h.body), (11, 6, BodyLen::Fixed(65536)));
        let h = packet_header(&[0xD2, 0xE9]).unwrap();
        assert_eq!(h.body, BodyLen::Partial(512));
        // Old format: tag in bits 5..2, length type in bits 1..0.
        let h = packet_header(&[0x85, 0x01, 0x0C]).unwrap();
        assert_eq!((h.tag, h.len, h.body), (1, 3, BodyLen::Fixed(0x010C)));
        let h = packet_header(&[0x8C, 7]).unwrap();
        assert_eq!((h.tag, h.body), (3, BodyLen::Fixed(7)));
        let h = packet_header(&[0xA3]).unwrap();
        assert_eq!((h.tag, h.body), (8, BodyLen::Indeterminate));
        assert!(packet_header(&[0x41]).is_err());
        assert!(matches!(
            packet_header(&[0xC1]),
            Err(InspectError::Truncated(_))
        ));
        assert!(packet_header(&[0x86, 0x01]).is_err());
    }

    #[test]
    fn the_first_packets_decide() {
        // SKESK (4 bytes) then SEIPD.
        let skesk_seipd = [0xC3, 4, 4, 9, 3, 0, 0xD2, 3, 1, 0xAA, 0xBB];
        assert_eq!(
            classify_packets(&skesk_seipd, true, 0).unwrap(),
            PgpMessage::Encrypted {
                public_key: 0,
                passphrase: 1,
                data_tag: 18
            }
        );
        // Marker packet first, two PKESKs, then AEAD.
        let msg = [
            0xCA, 3, b'P', b'G', b'P', 0xC1, 1, 3, 0xC1, 1, 3, 0xD4, 1, 0,
        ];
        assert_eq!(
            classify_packets(&msg, true, 0).unwrap(),
            PgpMessage::Encrypted {
                public_key: 2,
                passphrase: 0,
                data_tag: 20
            }
        );
        assert_eq!(
            classify_packets(&[0xC4, 1, 3], true, 0).unwrap(),
            PgpMessage::Signed("signed message")
        );
        assert_eq!(
            classify_packets(&[0xC6, 1, 4], true, 0).unwrap(),
            PgpMessage::Key("public key")
        );
        assert_eq!(
            classify_packets(&[0xCB, 2, b'b', 0], true, 0).unwrap(),
            PgpMessage::Literal("literal data")
        );
        assert!(matches!(
            classify_packets(&[0xCD, 1, 0], true, 0).unwrap(),
            PgpMessage::Undecided(_)
        ));
        // Session keys and nothing after them: not enough to call it encrypted.
        assert!(matches!(
            classify_packets(&[0xC1, 1, 3], true, 0).unwrap(),
            PgpMessage::Undecided(_)
        ));
        // The same, cut off by the prefix: the data packet lies beyond it.
        assert!(matches!(
            classify_packets(&[0xC1, 1, 3, 0xC1, 9], false, 0).unwrap(),
            PgpMessage::SessionKeysOnly { .. }
        ));
        // A session key packet truncated in a complete file is an error.
        assert!(classify_packets(&[0xC1, 9, 3], true, 0).is_err());
        // Session key packets may not use partial lengths.
        assert!(classify_packets(&[0xC1, 0xE1, 3, 3, 0], true, 0).is_err());
    }

    #[test]
    fn compressed_packets_are_opened_a_little() {
        use std::io::Write;
        let inner_signed = [0xC4, 13, 3, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1];
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&inner_signed).unwrap();
        let compressed = z.finish().unwrap();
        let mut msg = vec![0xC8, u8::try_from(compressed.len() + 1).unwrap(), 2];
        msg.extend_from_slice(&compressed);
        assert_eq!(
            classify_packets(&msg, true, 0).unwrap(),
            PgpMessage::Signed("compressed signed message")
        );
        // Uncompressed "compression" holding an encrypted message is still encrypted.
        let msg = [0xC8, 7, 0, 0xC3, 1, 4, 0xD2, 1, 1];
        assert!(matches!(
            classify_packets(&msg, true, 0).unwrap(),
            PgpMessage::Encrypted { passphrase: 1, .. }
        ));
        // BZip2 is not opened: undecided, not a guess.
        let msg = [0xC8, 3, 3, 0x42, 0x5A];
        assert!(matches!(
            classify_packets(&msg, true, 0).unwrap(),
            PgpMessage::Undecided(_)
        ));
        // Nesting is bounded.
        let nested = [0xC8, 6, 0, 0xC8, 3, 0, 0xC8, 0];
        assert!(matches!(
            classify_packets(&nested, true, 0).unwrap(),
            PgpMessage::Undecided(_)
        ));
    }

    #[test]
    fn partial_length_chains_are_bounded() {
        // A compressed packet whose partial chunks (1 byte each) never end.
        let mut msg = vec![0xC8, 0xE0, 0];
        for _ in 0..100_000 {
            msg.extend_from_slice(&[0xE0, 0]);
        }
        let r = classify_packets(&msg, true, 0);
        assert!(
            r.is_err() || matches!(r, Ok(PgpMessage::Undecided(_))),
            "{r:?}"
        );
    }

    #[test]
    fn armor_headers_are_skipped_and_bad_base64_is_an_error() {
        let armored = b"-----BEGIN PGP MESSAGE-----\nVersion: x\nComment: y\n\nwwQECQMA0gMBqrs=\n=AAAA\n-----END PGP MESSAGE-----\n";
        let ev = classify_pgp_armor(armored).unwrap();
        assert_eq!(status(&ev), Some((EncryptionStatus::Encrypted, "openpgp")));
        let bad = b"-----BEGIN PGP MESSAGE-----\n\nwwQE*QMA0gMBqrs=\n-----END PGP MESSAGE-----\n";
        assert!(classify_pgp_armor(bad).is_err());
        let cleartext = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nhello\n";
        assert_eq!(
            status(&classify_pgp_armor(cleartext).unwrap()),
            Some((EncryptionStatus::Plaintext, "openpgp-cleartext-signed"))
        );
        let odd = b"-----BEGIN PGP SOMETHING-----\n\nAAAA\n-----END PGP SOMETHING-----\n";
        assert_eq!(status(&classify_pgp_armor(odd).unwrap()), None);
    }

    #[test]
    fn age_headers_name_their_recipients() {
        let x25519 =
            b"age-encryption.org/v1\n-> X25519 abc\nAAAA\n-> X25519 def\nAAAA\n--- mac\n\x00\x01";
        let ev = parse_age_header(x25519, true).unwrap();
        assert_eq!(status(&ev), Some((EncryptionStatus::Encrypted, "age")));
        assert_eq!(
            ev.encryption.unwrap().detail.as_deref(),
            Some("2 recipients: X25519")
        );
        let scrypt = b"age-encryption.org/v1\n-> scrypt salt 18\nAAAA\n--- mac\n";
        assert_eq!(
            parse_age_header(scrypt, true)
                .unwrap()
                .encryption
                .unwrap()
                .detail
                .as_deref(),
            Some("passphrase (scrypt)")
        );
        assert!(parse_age_header(b"age-encryption.org/v1\n--- mac\n", true).is_err());
        assert!(parse_age_header(b"age-encryption.org/v1\n-> X25519 a\n", true).is_err());
        assert!(parse_age_header(b"age-encryption.org/v1\nnot a stanza\n", true).is_err());
    }

    fn luks1_header(cipher: &str, mode: &str) -> Vec<u8> {
        let mut h = vec![0u8; 4096];
        h[..6].copy_from_slice(b"LUKS\xBA\xBE");
        h[6..8].copy_from_slice(&1u16.to_be_bytes());
        h[8..8 + cipher.len()].copy_from_slice(cipher.as_bytes());
        h[40..40 + mode.len()].copy_from_slice(mode.as_bytes());
        h[208..212].copy_from_slice(&LUKS1_KEY_ACTIVE.to_be_bytes());
        h
    }

    #[test]
    fn luks1_cipher_decides() {
        let h = luks1_header("aes", "xts-plain64");
        let ev = inspect_luks(&bytes(&h)).unwrap();
        assert_eq!(status(&ev), Some((EncryptionStatus::Encrypted, "luks1")));
        assert_eq!(
            ev.encryption.unwrap().detail.as_deref(),
            Some("aes-xts-plain64, 1 of 8 key slots active")
        );
        let h = luks1_header("cipher_null", "ecb");
        assert_eq!(
            status(&inspect_luks(&bytes(&h)).unwrap()),
            Some((EncryptionStatus::Plaintext, "luks1"))
        );
        let mut garbage = luks1_header("aes", "xts-plain64");
        garbage[8..40].fill(0xFF);
        assert!(inspect_luks(&bytes(&garbage)).is_err());
    }

    fn luks2_header(json: &str) -> Vec<u8> {
        let mut h = vec![0u8; 16384];
        h[..6].copy_from_slice(b"LUKS\xBA\xBE");
        h[6..8].copy_from_slice(&2u16.to_be_bytes());
        h[8..16].copy_from_slice(&16384u64.to_be_bytes());
        h[4096..4096 + json.len()].copy_from_slice(json.as_bytes());
        h
    }

    #[test]
    fn luks2_segments_decide() {
        let enc = r#"{"keyslots":{"0":{}},"segments":{"0":{"type":"crypt","encryption":"aes-xts-plain64"}}}"#;
        let ev = inspect_luks(&bytes(&luks2_header(enc))).unwrap();
        assert_eq!(status(&ev), Some((EncryptionStatus::Encrypted, "luks2")));
        assert_eq!(
            ev.encryption.unwrap().detail.as_deref(),
            Some("aes-xts-plain64, 1 keyslot")
        );
        let half = r#"{"keyslots":{},"segments":{"0":{"type":"crypt","encryption":"aes-xts-plain64"},"1":{"type":"linear"}}}"#;
        assert_eq!(
            status(&inspect_luks(&bytes(&luks2_header(half))).unwrap()),
            Some((EncryptionStatus::Partial, "luks2"))
        );
        let null = r#"{"segments":{"0":{"type":"crypt","encryption":"cipher_null-ecb"}}}"#;
        assert_eq!(
            status(&inspect_luks(&bytes(&luks2_header(null))).unwrap()),
            Some((EncryptionStatus::Plaintext, "luks2"))
        );
        let ev = inspect_luks(&bytes(&luks2_header("{not json"))).unwrap();
        assert!(ev.encryption.is_none() && !ev.notes.is_empty());
        let mut bad_size = luks2_header(enc);
        bad_size[8..16].copy_from_slice(&12345u64.to_be_bytes());
        assert!(inspect_luks(&bytes(&bad_size)).is_err());
    }

    /// A PFile header as the RMS SDK's `PfileHeaderWriter` lays it out (version 3.0).
    fn pfile(ext: &str, license: &[u8], content: &[u8]) -> Vec<u8> {
        let redirect =
            b"\r\n\r\n\r\nThis file uses Microsoft Information Protection solutions.\r\n";
        let mut f = b".pfile".to_vec();
        f.extend_from_slice(&3u32.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&(redirect.len() as u32).to_le_bytes());
        f.extend_from_slice(redirect);
        let header_offset = f.len() as u32;
        let ext_offset = header_offset + 40;
        let pl_offset = ext_offset + ext.len() as u32;
        let meta_offset = pl_offset + license.len() as u32;
        for v in [
            40,
            ext_offset,
            ext.len() as u32,
            pl_offset,
            license.len() as u32,
            meta_offset,
        ] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(&(content.len() as u64).to_le_bytes());
        f.extend_from_slice(&meta_offset.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(ext.as_bytes());
        f.extend_from_slice(license);
        f.extend_from_slice(content);
        f
    }

    #[test]
    fn pfile_headers_are_checked_before_calling_them_encrypted() {
        let f = pfile(".txt", b"<XrML>license</XrML>", &[0x5A; 64]);
        let ev = inspect_pfile(&bytes(&f)).unwrap();
        assert_eq!(status(&ev), Some((EncryptionStatus::Encrypted, "pfile")));
        assert!(ev
            .encryption
            .unwrap()
            .detail
            .unwrap()
            .contains("original extension .txt"));
        // No preamble: not judged.
        let ev = inspect_pfile(&bytes(b"just some bytes named .pfile")).unwrap();
        assert!(ev.encryption.is_none() && !ev.notes.is_empty());
        // Offsets pointing past the end.
        let mut bad = f.clone();
        let at = 18 + u32::from_le_bytes(bad[14..18].try_into().unwrap()) as usize + 20;
        bad[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(inspect_pfile(&bytes(&bad)).is_err());
    }

    #[test]
    fn sops_values_are_recognised() {
        let enc = "ENC[AES256_GCM,data:Zm9v,iv:aXY=,tag:dGFn,type:str]";
        assert!(is_sops_value(enc));
        assert!(is_sops_value(&format!("\"{enc}\"")));
        assert!(!is_sops_value("ENC[AES256_GCM,data:Zm9v]"));
        assert!(!is_sops_value("plain"));
    }

    #[test]
    fn yaml_leaves_skip_structure_and_the_sops_section() {
        let enc = "ENC[AES256_GCM,data:Zm9v,iv:aXY=,tag:dGFn,type:str]";
        let doc = format!(
            "db:\n    user: {enc}\n    hosts:\n        - {enc}\n        - plain.example\n    note: |\n        line one\n        line two\n#ENC[AES256_GCM,data:x,iv:y,tag:z,type:comment]\nempty: {{}}\nsops:\n    mac: {enc}\n    lastmodified: \"2024-01-01T00:00:00Z\"\n    version: 3.8.1\n"
        );
        assert_eq!(
            yaml_leaves(&doc),
            Leaves {
                encrypted: 2,
                plain: 2
            }
        );
        assert!(yaml_has_metadata(&doc));
        assert!(!yaml_has_metadata("sops:\n    mac: x\n"));
    }

    #[test]
    fn ansible_inline_values_need_an_envelope() {
        let doc = "user: admin\npassword: !vault |\n    $ANSIBLE_VAULT;1.1;AES256\n    6162\nkey: !vault |\n\n          $ANSIBLE_VAULT;1.2;AES256;prod\n          6162\nbroken: !vault |\nnext: x\n";
        assert_eq!(ansible_inline_values(doc), (2, 1));
    }

    #[test]
    fn plain_text_is_plaintext() {
        let ev = inspect_text(&bytes(b"hello: world\n"), "a.yml").unwrap();
        assert_eq!(status(&ev), Some((EncryptionStatus::Plaintext, "text")));
    }
}

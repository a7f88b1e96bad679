//! PDF: MSIP label keys in the Info dictionary and XMP, /Encrypt, and Purview-protected wrappers.
//!
//! This is a bounded reader for the handful of objects that decide a verdict, not a PDF library:
//! general-purpose crates load the whole file and every object. It reads the file's tail for
//! `startxref` (ISO 32000-1 7.5.5), the cross-reference sections (classic tables, 7.5.4, and
//! cross-reference streams, 7.5.8, including hybrid files' /XRefStm) along the /Prev chain of
//! incremental updates (7.5.6), and then fetches only the trailer's /Encrypt, /Root and /Info
//! objects, the catalog's /Metadata, /AF and embedded-file name tree, from their byte offsets or
//! from object streams (7.5.7). Every offset, chain, window, decompression and nesting level has
//! an explicit bound (the constants below); malformed input ends in an error or a note.
//!
//! Verdicts:
//! - `/Encrypt` in the trailer (or cross-reference stream dictionary) → `encrypted`, with the
//!   scheme from the encryption dictionary (7.6.2 Table 20, 7.6.5 crypt filters): the standard
//!   security handler as `pdf-standard-rc4-40`, `-rc4-128`, `-aes-128`, `-aes-256`; the public-key
//!   handler as `pdf-pubsec`; others as `pdf-custom-handler` (Microsoft's own IRM handler as
//!   `pdf-microsoft-irm`). For the standard handler the empty user password is tried with the
//!   specification's algorithms (ISO 32000-1 7.6.3.3 algorithms 2, 4, 5 and 6; ISO 32000-2
//!   7.6.4.3.3-4 algorithms 2.A, 2.B and 11): a file that opens without a password is still
//!   `encrypted`, and the detail says so. /P (the permission flags) cannot tell this.
//! - A plain PDF 2.0 "unencrypted wrapper document" (ISO 32000-2 7.6.7) — what Microsoft Purview
//!   writes — carries the real document as an embedded file with /AFRelationship
//!   /EncryptedPayload and an encrypted payload dictionary (/EP, Table 28). It has no /Encrypt
//!   but counts as `encrypted`, scheme `pdf-encrypted-payload`, with the cryptographic filter
//!   named in the detail. The older Microsoft IRM v1 wrapper (/Wrapper in the trailer) counts
//!   the same way.
//! - Neither → `plaintext`, scheme `pdf`.
//! - When the cross-reference cannot be read, a linear scan of the first and last
//!   [`SCAN_LEN`] bytes looks for `/Encrypt` in a trailer and for `/EncryptedPayload`; finding
//!   neither gives `unknown`, never a guess.
//!
//! Labels: `MSIP_Label_<guid>_<Field>` keys of the Info dictionary ([`LabelSource::PdfInfo`]) and
//! of the XMP metadata packet, in any namespace and as elements or attributes
//! ([`LabelSource::PdfXmp`]). Office writes the same label to both; each label id is reported
//! once: the Info dictionary's entry wins and fields it lacks are filled in from XMP. In an
//! encrypted file the Info values are encrypted strings, so only the label ids in the keys are
//! reported (nothing is decrypted); XMP is read only when the file leaves metadata unencrypted.

use std::rc::Rc;

use infoledger_policies::{DetectedLabel, EncryptionStatus, EncryptionVerdict, LabelSource};
use md5::Md5;
use quick_xml::events::Event;
use sha2::{Digest, Sha256};

use super::sniff::{memfind, memrfind};
use super::{msip, Bounded, Evidence, InspectError};
use syntax::{text_string, Dict, Object, Parser, Ref};

/// How much of the file's end is searched for `startxref` (junk after `%%EOF` is common).
const TAIL_LEN: usize = 64 * 1024;
/// The first, cheaper read of the tail; most files end with `startxref` within it.
const TAIL_FIRST: usize = 4 * 1024;
/// How far into the file the `%PDF-` header may start (7.5.2 allows junk before it).
const HEADER_SEARCH: usize = 1024;
/// Cross-reference sections followed through /Prev and /XRefStm.
const MAX_SECTIONS: usize = 32;
/// Subsections in one classic cross-reference table.
const MAX_SUBSECTIONS: usize = 4096;
/// Nesting of arrays and dictionaries.
const MAX_DEPTH: usize = 32;
/// Objects of any kind created while parsing one object.
const MAX_ITEMS: usize = 100_000;
/// Largest window read to parse one indirect object.
const MAX_OBJECT_LEN: usize = 1024 * 1024;
/// Largest decoded object stream or XMP packet.
const MAX_STREAM_LEN: usize = 1024 * 1024;
/// Largest raw (still compressed) stream read.
const MAX_RAW_STREAM_LEN: usize = 1024 * 1024;
/// Largest decoded cross-reference stream.
const MAX_XREF_STREAM_LEN: usize = 4 * 1024 * 1024;
/// All decoded cross-reference streams of one file together.
const MAX_XREF_TOTAL: usize = 8 * 1024 * 1024;
/// Indirect objects fetched per file.
const MAX_FETCHES: usize = 256;
/// Decoded object streams kept at a time.
const OBJSTM_CACHE: usize = 4;
/// Objects read from one object stream's header, whatever its /N claims.
const MAX_OBJSTM_OBJECTS: usize = 100_000;
/// Nested fetches (a stream's /Length inside an object stream, references to references).
const MAX_FETCH_DEPTH: usize = 8;
/// File specifications examined in /AF arrays and embedded-file name trees.
const MAX_ATTACHMENTS: usize = 64;
/// Nodes of an embedded-file name tree visited.
const MAX_NAME_TREE_NODES: usize = 64;
/// Largest object number a conforming file uses (ISO 32000-1 Annex C).
const MAX_OBJECT_NUMBER: u64 = 8_388_607;
/// Window at each end of a file searched when its cross-reference is unreadable.
const SCAN_LEN: usize = 256 * 1024;
/// Keyword occurrences examined per scan window.
const MAX_SCAN_HITS: usize = 64;
/// Reads smaller than this are not kept in the read cache (single xref entries).
const CACHE_MIN: usize = 1024;
/// Read windows kept.
const CACHE_CHUNKS: usize = 4;

/// Inspects a PDF: encryption verdict and MSIP labels.
pub fn inspect_pdf(src: &Bounded<'_>) -> Result<Evidence, InspectError> {
    match Document::open(src) {
        Ok(mut doc) => doc.inspect(),
        Err(e @ (InspectError::Budget(_) | InspectError::Io(_))) => Err(e),
        Err(e) => {
            // A scan that finds something is a partial result with notes; one that finds
            // nothing leaves the file malformed, which is the error to report.
            let scan = linear_scan(src, &format!("cross-reference unreadable ({e})"))?;
            let decided = scan
                .encryption
                .as_ref()
                .is_some_and(|v| v.status != EncryptionStatus::Unknown);
            if decided || !scan.labels.is_empty() {
                Ok(scan)
            } else {
                Err(e)
            }
        }
    }
}

fn malformed(what: impl Into<String>) -> InspectError {
    InspectError::malformed(what)
}

/// PDF object syntax (ISO 32000-1 7.2–7.3): a tokenizer and parser over byte slices.
mod syntax {
    use super::{malformed, InspectError, MAX_DEPTH, MAX_ITEMS};

    /// An object reference `num gen R`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) struct Ref {
        pub(super) num: u32,
        pub(super) gen: u16,
    }

    /// A direct object.
    #[derive(Debug, Clone, PartialEq)]
    pub(super) enum Object {
        Null,
        Bool(bool),
        Int(i64),
        Real(f64),
        /// A name with its `#xx` escapes decoded, without the slash.
        Name(Vec<u8>),
        /// A literal or hexadecimal string, escapes decoded.
        Str(Vec<u8>),
        Array(Vec<Object>),
        Dict(Dict),
        Ref(Ref),
    }

    /// A dictionary; keys are decoded names.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub(super) struct Dict(pub(super) Vec<(Vec<u8>, Object)>);

    impl Dict {
        /// The value of `key`; with duplicate keys, the last one.
        pub(super) fn get(&self, key: &[u8]) -> Option<&Object> {
            self.0
                .iter()
                .rev()
                .find(|(k, _)| k.as_slice() == key)
                .map(|(_, v)| v)
        }
        pub(super) fn name(&self, key: &[u8]) -> Option<&[u8]> {
            self.get(key).and_then(Object::as_name)
        }
        pub(super) fn int(&self, key: &[u8]) -> Option<i64> {
            self.get(key).and_then(Object::as_int)
        }
        pub(super) fn dict(&self, key: &[u8]) -> Option<&Dict> {
            self.get(key).and_then(Object::as_dict)
        }
        pub(super) fn string(&self, key: &[u8]) -> Option<&[u8]> {
            self.get(key).and_then(Object::as_str)
        }
        pub(super) fn contains(&self, key: &[u8]) -> bool {
            self.get(key).is_some()
        }
    }

    impl Object {
        pub(super) fn as_int(&self) -> Option<i64> {
            match self {
                Object::Int(n) => Some(*n),
                _ => None,
            }
        }
        pub(super) fn as_name(&self) -> Option<&[u8]> {
            match self {
                Object::Name(n) => Some(n),
                _ => None,
            }
        }
        pub(super) fn as_dict(&self) -> Option<&Dict> {
            match self {
                Object::Dict(d) => Some(d),
                _ => None,
            }
        }
        pub(super) fn as_array(&self) -> Option<&[Object]> {
            match self {
                Object::Array(a) => Some(a),
                _ => None,
            }
        }
        pub(super) fn as_str(&self) -> Option<&[u8]> {
            match self {
                Object::Str(s) => Some(s),
                _ => None,
            }
        }
    }

    pub(super) fn is_white(b: u8) -> bool {
        matches!(b, 0 | 9 | 10 | 12 | 13 | 32)
    }

    pub(super) fn is_delimiter(b: u8) -> bool {
        matches!(
            b,
            b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
        )
    }

    pub(super) fn is_regular(b: u8) -> bool {
        !is_white(b) && !is_delimiter(b)
    }

    fn hex_value(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }

    fn eof() -> InspectError {
        InspectError::Truncated("pdf object")
    }

    /// A parser over a buffer that is either the complete data (a decoded stream, the whole
    /// file) or a window of it; in a window, running into its end is [`InspectError::Truncated`]
    /// so the caller can read a larger window.
    #[derive(Debug)]
    pub(super) struct Parser<'a> {
        buf: &'a [u8],
        pub(super) pos: usize,
        complete: bool,
        items: usize,
    }

    impl<'a> Parser<'a> {
        pub(super) fn new(buf: &'a [u8], complete: bool) -> Self {
            Parser {
                buf,
                pos: 0,
                complete,
                items: MAX_ITEMS,
            }
        }

        pub(super) fn rest(&self) -> &'a [u8] {
            self.buf.get(self.pos..).unwrap_or(&[])
        }

        fn peek(&self) -> Option<u8> {
            self.buf.get(self.pos).copied()
        }

        fn peek_at(&self, ahead: usize) -> Option<u8> {
            self.buf.get(self.pos.saturating_add(ahead)).copied()
        }

        /// Fails when a token ran into the end of an incomplete window.
        fn check_end(&self) -> Result<(), InspectError> {
            if !self.complete && self.pos >= self.buf.len() {
                return Err(eof());
            }
            Ok(())
        }

        /// Skips white space and comments.
        pub(super) fn skip_ws(&mut self) {
            while let Some(b) = self.peek() {
                if is_white(b) {
                    self.pos += 1;
                } else if b == b'%' {
                    while let Some(c) = self.peek() {
                        if c == b'\r' || c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                } else {
                    break;
                }
            }
        }

        fn regular_token(&mut self) -> &'a [u8] {
            let start = self.pos;
            while self.peek().is_some_and(is_regular) {
                self.pos += 1;
            }
            self.buf.get(start..self.pos).unwrap_or(&[])
        }

        /// Consumes the keyword `kw` if it comes next (after white space).
        pub(super) fn keyword(&mut self, kw: &[u8]) -> bool {
            let save = self.pos;
            self.skip_ws();
            if self.regular_token() == kw {
                return true;
            }
            self.pos = save;
            false
        }

        /// Consumes an unsigned integer if one comes next (after white space).
        pub(super) fn uint(&mut self) -> Option<u64> {
            let save = self.pos;
            self.skip_ws();
            let tok = self.regular_token();
            let parsed = (!tok.is_empty() && tok.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(tok).ok()?.parse().ok())
                .flatten();
            if parsed.is_none() {
                self.pos = save;
            }
            parsed
        }

        /// `num gen obj`.
        pub(super) fn indirect_header(&mut self) -> Result<Ref, InspectError> {
            let num = self.uint();
            let gen = self.uint();
            let obj = self.keyword(b"obj");
            match (num, gen, obj) {
                (Some(num), Some(gen), true) => Ok(Ref {
                    num: u32::try_from(num).map_err(|_| malformed("pdf object number"))?,
                    gen: u16::try_from(gen).unwrap_or(u16::MAX),
                }),
                _ => {
                    self.check_end()?;
                    Err(malformed("pdf indirect object header"))
                }
            }
        }

        /// An indirect object: its header, its value and, for a stream, the position where the
        /// stream's data starts (after `stream` and its end-of-line).
        pub(super) fn indirect(&mut self) -> Result<(Ref, Object, Option<usize>), InspectError> {
            let r = self.indirect_header()?;
            let obj = self.object(0)?;
            self.skip_ws();
            let rest = self.rest();
            if !self.complete && rest.len() < 8 {
                return Err(eof());
            }
            if rest.starts_with(b"stream") {
                self.pos += 6;
                match (self.peek(), self.peek_at(1)) {
                    (Some(b'\r'), Some(b'\n')) => self.pos += 2,
                    (Some(b'\n' | b'\r'), _) => self.pos += 1,
                    _ => {}
                }
                return Ok((r, obj, Some(self.pos)));
            }
            Ok((r, obj, None))
        }

        /// One direct object (a reference counts as one).
        pub(super) fn object(&mut self, depth: usize) -> Result<Object, InspectError> {
            if depth > MAX_DEPTH {
                return Err(malformed(format!(
                    "pdf objects nested deeper than {MAX_DEPTH}"
                )));
            }
            self.items = self
                .items
                .checked_sub(1)
                .ok_or_else(|| malformed("pdf object with too many elements"))?;
            self.skip_ws();
            let Some(b) = self.peek() else {
                return Err(eof());
            };
            match b {
                b'/' => {
                    self.pos += 1;
                    let name = self.name_body();
                    self.check_end()?;
                    Ok(Object::Name(name))
                }
                b'(' => {
                    self.pos += 1;
                    self.literal_string().map(Object::Str)
                }
                b'<' if self.peek_at(1) == Some(b'<') => {
                    self.pos += 2;
                    self.dict(depth).map(Object::Dict)
                }
                b'<' => {
                    self.pos += 1;
                    self.hex_string().map(Object::Str)
                }
                b'[' => {
                    self.pos += 1;
                    self.array(depth).map(Object::Array)
                }
                b'+' | b'-' | b'.' | b'0'..=b'9' => self.number(),
                _ => {
                    let tok = self.regular_token();
                    self.check_end()?;
                    match tok {
                        b"true" => Ok(Object::Bool(true)),
                        b"false" => Ok(Object::Bool(false)),
                        b"null" => Ok(Object::Null),
                        b"" => Err(malformed(format!(
                            "unexpected byte 0x{b:02x} in pdf object"
                        ))),
                        other => Err(malformed(format!(
                            "unexpected keyword {:?} in pdf object",
                            String::from_utf8_lossy(other.get(..16).unwrap_or(other))
                        ))),
                    }
                }
            }
        }

        fn number(&mut self) -> Result<Object, InspectError> {
            let tok = self.regular_token();
            self.check_end()?;
            let text = std::str::from_utf8(tok).map_err(|_| malformed("pdf number"))?;
            if text.contains('.') {
                return text
                    .parse::<f64>()
                    .map(Object::Real)
                    .map_err(|_| malformed("pdf number"));
            }
            let n: i64 = text.parse().map_err(|_| malformed("pdf number"))?;
            if let (Ok(num), true) = (u32::try_from(n), text.bytes().all(|c| c.is_ascii_digit())) {
                // `num gen R` is a reference; anything else leaves the integer alone.
                let save = self.pos;
                let gen = self.uint();
                if let Some(gen) = gen {
                    self.skip_ws();
                    let r = self.regular_token();
                    if r == b"R" {
                        self.check_end()?;
                        return Ok(Object::Ref(Ref {
                            num,
                            gen: u16::try_from(gen).unwrap_or(u16::MAX),
                        }));
                    }
                }
                // A window that ends right after `12 0` cannot tell `12 0 R` from two numbers.
                self.check_end()?;
                self.pos = save;
            }
            Ok(Object::Int(n))
        }

        fn name_body(&mut self) -> Vec<u8> {
            let mut out = Vec::new();
            while let Some(b) = self.peek().filter(|&b| is_regular(b)) {
                let escaped = (b == b'#')
                    .then(|| Some(hex_value(self.peek_at(1)?)? << 4 | hex_value(self.peek_at(2)?)?))
                    .flatten();
                match escaped {
                    Some(v) => {
                        out.push(v);
                        self.pos += 3;
                    }
                    None => {
                        out.push(b);
                        self.pos += 1;
                    }
                }
            }
            out
        }

        fn literal_string(&mut self) -> Result<Vec<u8>, InspectError> {
            let mut out = Vec::new();
            let mut depth = 1usize;
            loop {
                let Some(b) = self.peek() else {
                    return Err(eof());
                };
                self.pos += 1;
                match b {
                    b'(' => {
                        depth += 1;
                        out.push(b);
                    }
                    b')' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(out);
                        }
                        out.push(b);
                    }
                    b'\\' => {
                        let Some(e) = self.peek() else {
                            return Err(eof());
                        };
                        self.pos += 1;
                        match e {
                            b'n' => out.push(b'\n'),
                            b'r' => out.push(b'\r'),
                            b't' => out.push(b'\t'),
                            b'b' => out.push(8),
                            b'f' => out.push(12),
                            // A backslash before an end-of-line continues the string.
                            b'\r' => {
                                if self.peek() == Some(b'\n') {
                                    self.pos += 1;
                                }
                            }
                            b'\n' => {}
                            b'0'..=b'7' => {
                                let mut v = u32::from(e - b'0');
                                for _ in 0..2 {
                                    match self.peek() {
                                        Some(d @ b'0'..=b'7') => {
                                            v = v * 8 + u32::from(d - b'0');
                                            self.pos += 1;
                                        }
                                        _ => break,
                                    }
                                }
                                out.push((v & 0xff) as u8);
                            }
                            // `\(`, `\)`, `\\`, and any other escaped byte stand for themselves.
                            other => out.push(other),
                        }
                    }
                    // An unescaped end-of-line is read as a line feed.
                    b'\r' => {
                        if self.peek() == Some(b'\n') {
                            self.pos += 1;
                        }
                        out.push(b'\n');
                    }
                    _ => out.push(b),
                }
            }
        }

        fn hex_string(&mut self) -> Result<Vec<u8>, InspectError> {
            let mut out = Vec::new();
            let mut high: Option<u8> = None;
            loop {
                let Some(b) = self.peek() else {
                    return Err(eof());
                };
                self.pos += 1;
                if b == b'>' {
                    if let Some(h) = high {
                        out.push(h << 4);
                    }
                    return Ok(out);
                }
                if is_white(b) {
                    continue;
                }
                let v = hex_value(b).ok_or_else(|| malformed("pdf hexadecimal string"))?;
                match high.take() {
                    Some(h) => out.push(h << 4 | v),
                    None => high = Some(v),
                }
            }
        }

        fn array(&mut self, depth: usize) -> Result<Vec<Object>, InspectError> {
            let mut items = Vec::new();
            loop {
                self.skip_ws();
                match self.peek() {
                    None => return Err(eof()),
                    Some(b']') => {
                        self.pos += 1;
                        return Ok(items);
                    }
                    Some(_) => items.push(self.object(depth + 1)?),
                }
            }
        }

        fn dict(&mut self, depth: usize) -> Result<Dict, InspectError> {
            let mut entries = Vec::new();
            loop {
                self.skip_ws();
                match self.peek() {
                    None => return Err(eof()),
                    Some(b'>') => {
                        if self.peek_at(1) == Some(b'>') {
                            self.pos += 2;
                            return Ok(Dict(entries));
                        }
                        if self.peek_at(1).is_none() {
                            return Err(eof());
                        }
                        return Err(malformed("pdf dictionary end"));
                    }
                    Some(b'/') => {
                        self.pos += 1;
                        let key = self.name_body();
                        self.check_end()?;
                        let value = self.object(depth + 1)?;
                        entries.push((key, value));
                    }
                    Some(_) => return Err(malformed("pdf dictionary key is not a name")),
                }
            }
        }
    }

    /// PDFDocEncoding (ISO 32000-1 Annex D.2) where it differs from Latin-1.
    fn pdf_doc_char(b: u8) -> char {
        const LOW: [char; 8] = ['˘', 'ˇ', 'ˆ', '˙', '˝', '˛', '˚', '˜'];
        const HIGH: [char; 33] = [
            '•', '†', '‡', '…', '—', '–', 'ƒ', '⁄', '‹', '›', '−', '‰', '„', '“', '”', '‘', '’',
            '‚', '™', 'ﬁ', 'ﬂ', 'Ł', 'Œ', 'Š', 'Ÿ', 'Ž', 'ı', 'ł', 'œ', 'š', 'ž', '\u{fffd}', '€',
        ];
        match b {
            0x18..=0x1f => LOW
                .get(usize::from(b - 0x18))
                .copied()
                .unwrap_or('\u{fffd}'),
            0x80..=0xa0 => HIGH
                .get(usize::from(b - 0x80))
                .copied()
                .unwrap_or('\u{fffd}'),
            0xad => '\u{fffd}',
            _ => char::from(b),
        }
    }

    /// Decodes a text string (ISO 32000-2 7.9.2.2): UTF-16BE or UTF-8 with a byte-order mark,
    /// else PDFDocEncoding. UTF-16LE with its mark is not allowed but seen; it is read too.
    pub(super) fn text_string(b: &[u8]) -> String {
        let utf16 = |rest: &[u8], be: bool| {
            let units = rest.chunks_exact(2).map(|c| {
                let pair = [
                    c.first().copied().unwrap_or(0),
                    c.get(1).copied().unwrap_or(0),
                ];
                if be {
                    u16::from_be_bytes(pair)
                } else {
                    u16::from_le_bytes(pair)
                }
            });
            char::decode_utf16(units)
                .map(|c| c.unwrap_or('\u{fffd}'))
                .collect()
        };
        if let Some(rest) = b.strip_prefix(&[0xfe, 0xff]) {
            utf16(rest, true)
        } else if let Some(rest) = b.strip_prefix(&[0xff, 0xfe]) {
            utf16(rest, false)
        } else if let Some(rest) = b.strip_prefix(&[0xef, 0xbb, 0xbf]) {
            String::from_utf8_lossy(rest).into_owned()
        } else {
            b.iter().map(|&c| pdf_doc_char(c)).collect()
        }
    }
}

/// Stream filters (ISO 32000-1 7.4): FlateDecode with PNG and TIFF predictors, ASCIIHexDecode
/// and the Identity crypt filter; output capped.
mod filters {
    use std::io::Read;

    use super::syntax::{Dict, Object};
    use super::{malformed, InspectError};

    /// Decodes a stream's data as its /Filter and /DecodeParms say, to at most `cap` bytes.
    pub(super) fn decode(dict: &Dict, raw: &[u8], cap: usize) -> Result<Vec<u8>, InspectError> {
        let filters: Vec<&Object> = match dict.get(b"Filter") {
            None | Some(Object::Null) => Vec::new(),
            Some(Object::Array(a)) => a.iter().collect(),
            Some(other) => vec![other],
        };
        if filters.len() > 4 {
            return Err(malformed("pdf stream with more than 4 filters"));
        }
        let params: Vec<Option<&Dict>> = match dict.get(b"DecodeParms") {
            Some(Object::Array(a)) => a.iter().map(Object::as_dict).collect(),
            Some(Object::Dict(d)) => vec![Some(d)],
            _ => Vec::new(),
        };
        let mut data = raw.to_vec();
        for (i, filter) in filters.iter().enumerate() {
            let name = filter
                .as_name()
                .ok_or_else(|| malformed("pdf stream filter is not a name"))?;
            let parms = params.get(i).copied().flatten();
            data = match name {
                b"FlateDecode" | b"Fl" => predict(inflate(&data, cap)?, parms)?,
                b"ASCIIHexDecode" | b"AHx" => ascii_hex(&data)?,
                b"Crypt" => {
                    let identity = parms
                        .and_then(|p| p.name(b"Name"))
                        .is_none_or(|n| n == b"Identity");
                    if !identity {
                        return Err(malformed("pdf stream encrypted with a crypt filter"));
                    }
                    data
                }
                other => {
                    return Err(malformed(format!(
                        "unsupported pdf stream filter {}",
                        String::from_utf8_lossy(other)
                    )))
                }
            };
        }
        if data.len() > cap {
            return Err(malformed(format!("pdf stream longer than {cap} bytes")));
        }
        Ok(data)
    }

    /// Inflates zlib data to at most `cap` bytes; more is an error, not a truncation.
    pub(super) fn inflate(data: &[u8], cap: usize) -> Result<Vec<u8>, InspectError> {
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(data)
            .take(cap as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| malformed(format!("pdf flate data: {e}")))?;
        if out.len() > cap {
            return Err(malformed(format!(
                "pdf stream inflates to more than {cap} bytes"
            )));
        }
        Ok(out)
    }

    fn ascii_hex(data: &[u8]) -> Result<Vec<u8>, InspectError> {
        let mut out = Vec::with_capacity(data.len() / 2);
        let mut high: Option<u8> = None;
        for &b in data {
            if b == b'>' {
                break;
            }
            if super::syntax::is_white(b) {
                continue;
            }
            let v = (b as char)
                .to_digit(16)
                .ok_or_else(|| malformed("pdf ASCIIHex data"))? as u8;
            match high.take() {
                Some(h) => out.push(h << 4 | v),
                None => high = Some(v),
            }
        }
        if let Some(h) = high {
            out.push(h << 4);
        }
        Ok(out)
    }

    /// Undoes a predictor (ISO 32000-1 7.4.4.4, Table 10): PNG (10–15) for any bit depth and
    /// TIFF 2 for 8-bit components.
    pub(super) fn predict(data: Vec<u8>, parms: Option<&Dict>) -> Result<Vec<u8>, InspectError> {
        let Some(parms) = parms else {
            return Ok(data);
        };
        let get = |key: &[u8], default: i64| parms.int(key).unwrap_or(default);
        let predictor = get(b"Predictor", 1);
        if predictor == 1 {
            return Ok(data);
        }
        let colors = get(b"Colors", 1);
        let bits = get(b"BitsPerComponent", 8);
        let columns = get(b"Columns", 1);
        if !(1..=32).contains(&colors)
            || ![1, 2, 4, 8, 16].contains(&bits)
            || !(1..=1 << 20).contains(&columns)
        {
            return Err(malformed("pdf predictor parameters"));
        }
        // Bounded by the ranges just checked: at most 32 * 16 * 2^20 bits.
        let bits_per_pixel = (colors * bits) as usize;
        let row_len = (bits_per_pixel * columns as usize).div_ceil(8);
        let bpp = bits_per_pixel.div_ceil(8).max(1);
        match predictor {
            2 if bits == 8 => {
                let mut out = data;
                for row in out.chunks_mut(row_len) {
                    for i in bpp..row.len() {
                        row[i] = row[i].wrapping_add(row[i - bpp]);
                    }
                }
                Ok(out)
            }
            10..=15 => png(&data, row_len, bpp),
            _ => Err(malformed(format!("unsupported pdf predictor {predictor}"))),
        }
    }

    fn png(data: &[u8], row_len: usize, bpp: usize) -> Result<Vec<u8>, InspectError> {
        let mut out = Vec::with_capacity(data.len());
        let mut prev = vec![0u8; row_len];
        for chunk in data.chunks(row_len + 1) {
            let Some((&kind, row)) = chunk.split_first() else {
                break;
            };
            let mut cur = row.to_vec();
            for i in 0..cur.len() {
                let left = if i >= bpp { cur[i - bpp] } else { 0 };
                let up = prev[i];
                let up_left = if i >= bpp { prev[i - bpp] } else { 0 };
                let add = match kind {
                    0 => 0,
                    1 => left,
                    2 => up,
                    3 => ((u16::from(left) + u16::from(up)) / 2) as u8,
                    4 => paeth(left, up, up_left),
                    _ => return Err(malformed(format!("pdf png predictor row type {kind}"))),
                };
                cur[i] = cur[i].wrapping_add(add);
            }
            prev[..cur.len()].copy_from_slice(&cur);
            out.extend_from_slice(&cur);
        }
        Ok(out)
    }

    fn paeth(a: u8, b: u8, c: u8) -> u8 {
        let p = i16::from(a) + i16::from(b) - i16::from(c);
        let (pa, pb, pc) = (
            (p - i16::from(a)).abs(),
            (p - i16::from(b)).abs(),
            (p - i16::from(c)).abs(),
        );
        if pa <= pb && pa <= pc {
            a
        } else if pb <= pc {
            b
        } else {
            c
        }
    }
}

/// The standard security handler's password algorithms over the RustCrypto primitives. Only
/// used to test the empty user password against /U; nothing is decrypted.
mod crypt {
    use aes::Aes128;
    use cbc::cipher::{BlockEncryptMut, KeyIvInit};
    use rc4::consts::{U10, U11, U12, U13, U14, U15, U16, U5, U6, U7, U8, U9};
    use rc4::{KeyInit, Rc4, StreamCipher};
    use sha2::{Digest, Sha256, Sha384, Sha512};

    /// The password padding string (ISO 32000-1 7.6.3.3, algorithm 2 step a).
    pub(super) const PAD: [u8; 32] = [
        0x28, 0xbf, 0x4e, 0x5e, 0x4e, 0x75, 0x8a, 0x41, 0x64, 0x00, 0x4e, 0x56, 0xff, 0xfa, 0x01,
        0x08, 0x2e, 0x2e, 0x00, 0xb6, 0xd0, 0x68, 0x3e, 0x80, 0x2f, 0x0c, 0xa9, 0xfe, 0x64, 0x53,
        0x69, 0x7a,
    ];

    /// RC4 over `data` in place with a 40- to 128-bit key, the sizes the standard handler
    /// allows; `None` for any other key length. The crate fixes the key size in the type, so
    /// each allowed length gets its own instance.
    pub(super) fn rc4(key: &[u8], data: &mut [u8]) -> Option<()> {
        fn apply<N: rc4::cipher::generic_array::ArrayLength<u8>>(
            key: &[u8],
            data: &mut [u8],
        ) -> Option<()> {
            Rc4::<N>::new_from_slice(key).ok()?.apply_keystream(data);
            Some(())
        }
        match key.len() {
            5 => apply::<U5>(key, data),
            6 => apply::<U6>(key, data),
            7 => apply::<U7>(key, data),
            8 => apply::<U8>(key, data),
            9 => apply::<U9>(key, data),
            10 => apply::<U10>(key, data),
            11 => apply::<U11>(key, data),
            12 => apply::<U12>(key, data),
            13 => apply::<U13>(key, data),
            14 => apply::<U14>(key, data),
            15 => apply::<U15>(key, data),
            16 => apply::<U16>(key, data),
            _ => None,
        }
    }

    /// The revision 6 password hash (ISO 32000-2 7.6.4.3.4, algorithm 2.B).
    pub(super) fn hash_r6(password: &[u8], salt: &[u8], udata: &[u8]) -> [u8; 32] {
        let mut k: Vec<u8> = Sha256::new()
            .chain_update(password)
            .chain_update(salt)
            .chain_update(udata)
            .finalize()
            .to_vec();
        // The loop ends after round 64 at the latest once the last byte of E is small enough;
        // the hard stop is a safety net (real files end within a few rounds after 64).
        for round in 1..=1024u32 {
            let mut e = Vec::with_capacity(64 * (password.len() + k.len() + udata.len()));
            for _ in 0..64 {
                e.extend_from_slice(password);
                e.extend_from_slice(&k);
                e.extend_from_slice(udata);
            }
            // K is a SHA-2 digest, so at least 32 bytes: the AES key and the IV.
            let mut cbc = cbc::Encryptor::<Aes128>::new(k[..16].into(), k[16..32].into());
            // E is a multiple of 16 bytes: 64 copies of the input, no padding.
            for block in e.chunks_exact_mut(16) {
                cbc.encrypt_block_mut(block.into());
            }
            let sum: u32 = e.iter().take(16).map(|&b| u32::from(b)).sum();
            k = match sum % 3 {
                0 => Sha256::digest(&e).to_vec(),
                1 => Sha384::digest(&e).to_vec(),
                _ => Sha512::digest(&e).to_vec(),
            };
            let last = u32::from(e.last().copied().unwrap_or(0));
            if round >= 64 && last + 32 <= round {
                break;
            }
        }
        std::array::from_fn(|i| k.get(i).copied().unwrap_or(0))
    }
}

/// Whether the standard security handler's document opens with the empty user password
/// (ISO 32000-1 7.6.3.4 algorithm 6; ISO 32000-2 7.6.4.4.10 algorithm 11 for revision 6;
/// revision 5 is Adobe's deprecated extension level 3 scheme). `None` when it cannot be told.
fn opens_without_password(enc: &Dict, id0: Option<&[u8]>) -> Option<bool> {
    let r = enc.int(b"R")?;
    let u = enc.string(b"U")?;
    match r {
        2..=4 => {
            let o = enc.string(b"O")?.get(..32)?;
            let p = enc.int(b"P")?;
            let id0 = id0?;
            // /Length defaults to 40 bits; revision 4's AES-128 needs a 128-bit key.
            let bits = match r {
                2 => 40,
                3 => enc.int(b"Length").unwrap_or(40),
                _ => enc.int(b"Length").unwrap_or(128),
            };
            if !(40..=128).contains(&bits) || bits % 8 != 0 {
                return None;
            }
            let n = (bits / 8) as usize;
            let encrypt_metadata =
                !matches!(enc.get(b"EncryptMetadata"), Some(Object::Bool(false)));
            // Algorithm 2: the file key from the padded (here empty) password.
            let mut md5 = Md5::new()
                .chain_update(crypt::PAD)
                .chain_update(o)
                .chain_update((p as u32).to_le_bytes())
                .chain_update(id0);
            if r >= 4 && !encrypt_metadata {
                md5.update([0xff; 4]);
            }
            let mut hash = md5.finalize();
            if r >= 3 {
                for _ in 0..50 {
                    hash = Md5::digest(hash.get(..n)?);
                }
            }
            let key = hash.get(..n)?;
            if r == 2 {
                // Algorithm 4.
                let mut x = crypt::PAD;
                crypt::rc4(key, &mut x)?;
                Some(x[..] == *u.get(..32)?)
            } else {
                // Algorithm 5.
                let mut x = Md5::new()
                    .chain_update(crypt::PAD)
                    .chain_update(id0)
                    .finalize();
                crypt::rc4(key, &mut x)?;
                for i in 1..=19u8 {
                    let k: Vec<u8> = key.iter().map(|b| b ^ i).collect();
                    crypt::rc4(&k, &mut x)?;
                }
                Some(x[..] == *u.get(..16)?)
            }
        }
        5 => {
            let salt = u.get(32..40)?;
            Some(Sha256::digest(salt)[..] == *u.get(..32)?)
        }
        6 => {
            let salt = u.get(32..40)?;
            Some(crypt::hash_r6(b"", salt, &[]) == *u.get(..32)?)
        }
        _ => None,
    }
}

/// The cipher a crypt filter uses (ISO 32000-1 7.6.5, Table 25), `None` for Identity.
fn crypt_filter_cipher(enc: &Dict, filter: &[u8]) -> Option<String> {
    if filter == b"Identity" {
        return None;
    }
    let cf = enc.dict(b"CF").and_then(|cf| cf.dict(filter));
    let method = cf.and_then(|d| d.name(b"CFM")).unwrap_or(b"None");
    Some(match method {
        b"AESV2" => "aes-128".to_string(),
        b"AESV3" => "aes-256".to_string(),
        b"V2" => {
            // The crypt filter's /Length is in bytes for the standard handler in practice
            // (qpdf, Acrobat write 16), sometimes in bits.
            let len = cf
                .and_then(|d| d.int(b"Length"))
                .or_else(|| enc.int(b"Length").map(|b| b / 8));
            match len {
                Some(n @ 5..=16) => format!("rc4-{}", n * 8),
                Some(n @ 40..=128) if n % 8 == 0 => format!("rc4-{n}"),
                _ => "rc4".to_string(),
            }
        }
        b"None" => "none".to_string(),
        other => String::from_utf8_lossy(other).to_ascii_lowercase(),
    })
}

/// What an encryption dictionary says: the status, the cipher (for the scheme name) and facts
/// for the detail.
struct Cipher {
    status: EncryptionStatus,
    cipher: Option<String>,
    facts: Vec<String>,
}

/// The cipher of an encryption dictionary (ISO 32000-1 7.6.2 Table 20: /V, /Length; 7.6.5
/// crypt filters /StmF, /StrF, /EFF; ISO 32000-2 for /V 5).
fn cipher_of(enc: &Dict) -> Cipher {
    let v = enc.int(b"V").unwrap_or(0);
    let mut facts = Vec::new();
    let (status, cipher) = match v {
        1 => (EncryptionStatus::Encrypted, Some("rc4-40".to_string())),
        2 => {
            let bits = enc.int(b"Length").unwrap_or(40);
            let cipher = if (40..=128).contains(&bits) && bits % 8 == 0 {
                format!("rc4-{bits}")
            } else {
                "rc4".to_string()
            };
            (EncryptionStatus::Encrypted, Some(cipher))
        }
        4 | 5 => {
            let stm = enc.name(b"StmF").unwrap_or(b"Identity");
            let str_ = enc.name(b"StrF").unwrap_or(b"Identity");
            let eff = enc.name(b"EFF").unwrap_or(stm);
            let stm_cipher = crypt_filter_cipher(enc, stm);
            let str_cipher = crypt_filter_cipher(enc, str_);
            let eff_cipher = crypt_filter_cipher(enc, eff);
            match (stm_cipher, str_cipher, eff_cipher) {
                (Some(c), _, _) => (EncryptionStatus::Encrypted, Some(c)),
                (None, Some(c), _) => {
                    facts.push("streams are not encrypted (StmF Identity), strings are".into());
                    (EncryptionStatus::Partial, Some(c))
                }
                (None, None, Some(c)) => {
                    facts.push("only embedded files are encrypted (StmF and StrF Identity)".into());
                    (EncryptionStatus::Partial, Some(c))
                }
                (None, None, None) => {
                    facts.push("every crypt filter is Identity: nothing is encrypted".into());
                    (EncryptionStatus::Plaintext, None)
                }
            }
        }
        // V 0 and 3 are undocumented or unpublished algorithms: encrypted, cipher unknown.
        _ => (EncryptionStatus::Encrypted, None),
    };
    Cipher {
        status,
        cipher,
        facts,
    }
}

/// The verdict an encryption dictionary supports; `id0` is the first element of the trailer's
/// /ID, which the standard handler's key derivation uses.
fn classify_encryption(enc: &Dict, id0: Option<&[u8]>) -> EncryptionVerdict {
    let filter = enc.name(b"Filter");
    let v = enc.int(b"V").unwrap_or(0);
    let r = enc.int(b"R");
    let Cipher {
        status,
        cipher,
        mut facts,
    } = cipher_of(enc);
    let sub_filter = enc
        .name(b"SubFilter")
        .map(|s| String::from_utf8_lossy(s).into_owned());
    let scheme = match filter {
        Some(b"Standard") => {
            facts.insert(
                0,
                match r {
                    Some(r) => format!("standard security handler V {v} R {r}"),
                    None => format!("standard security handler V {v}"),
                },
            );
            if r == Some(5) {
                facts.push("revision 5 is a deprecated Adobe extension".into());
            }
            match opens_without_password(enc, id0) {
                Some(true) => facts.push(
                    "opens without a password (empty user password): the content is \
                     encrypted but anyone can open it"
                        .into(),
                ),
                Some(false) => facts.push("a user password is needed to open it".into()),
                None => facts.push("whether it opens without a password is unknown".into()),
            }
            match &cipher {
                Some(c) => format!("pdf-standard-{c}"),
                None => "pdf-standard".to_string(),
            }
        }
        Some(b"Adobe.PubSec") => {
            facts.insert(
                0,
                format!(
                    "public-key security handler{}",
                    sub_filter
                        .as_deref()
                        .map(|s| format!(" {s}"))
                        .unwrap_or_default()
                ),
            );
            if let Some(c) = &cipher {
                facts.push(format!("cipher {c}"));
            }
            "pdf-pubsec".to_string()
        }
        Some(b"MicrosoftIRMServices") => {
            facts.insert(0, "Microsoft IRM security handler (protected PDF)".into());
            "pdf-microsoft-irm".to_string()
        }
        Some(other) => {
            facts.insert(
                0,
                format!("security handler /{}", String::from_utf8_lossy(other)),
            );
            if let Some(c) = &cipher {
                facts.push(format!("cipher {c}"));
            }
            "pdf-custom-handler".to_string()
        }
        None => {
            facts.insert(0, "encryption dictionary without /Filter".into());
            "pdf-encrypt".to_string()
        }
    };
    EncryptionVerdict::new(status, scheme).with_detail(facts.join("; "))
}

/// Whether an encryption dictionary leaves strings, or the metadata stream, in clear.
fn strings_in_clear(enc: &Dict) -> bool {
    matches!(enc.int(b"V"), Some(4 | 5)) && enc.name(b"StrF").unwrap_or(b"Identity") == b"Identity"
}

fn metadata_in_clear(enc: &Dict) -> bool {
    matches!(enc.get(b"EncryptMetadata"), Some(Object::Bool(false)))
        || (matches!(enc.int(b"V"), Some(4 | 5))
            && enc.name(b"StmF").unwrap_or(b"Identity") == b"Identity")
}

/// An encrypted payload found in a wrapper document.
#[derive(Debug, Default)]
struct Payload {
    /// The cryptographic filter (/EP /Subtype), e.g. `MicrosoftIRMServices`.
    filter: Option<String>,
    /// /EP /Version.
    version: Option<String>,
    /// Where it was found.
    place: &'static str,
}

impl Payload {
    fn verdict(&self) -> EncryptionVerdict {
        let mut detail = match self.place {
            "irm-v1" => "Microsoft IRM v1 wrapper (/Wrapper in the trailer) around an encrypted \
                         document"
                .to_string(),
            _ => format!(
                "unencrypted PDF 2.0 wrapper around an encrypted payload ({})",
                self.place
            ),
        };
        if let Some(f) = &self.filter {
            detail.push_str(&format!("; cryptographic filter {f}"));
        }
        if let Some(v) = &self.version {
            detail.push_str(&format!(" version {v}"));
        }
        EncryptionVerdict::new(EncryptionStatus::Encrypted, "pdf-encrypted-payload")
            .with_detail(detail)
    }
}

/// A printable form of an object used as a version or name: a text string, name or number.
fn object_text(o: &Object) -> Option<String> {
    let s = match o {
        Object::Str(s) => text_string(s),
        Object::Name(n) => String::from_utf8_lossy(n).into_owned(),
        Object::Int(n) => n.to_string(),
        Object::Real(r) => r.to_string(),
        _ => return None,
    };
    let s: String = s.chars().filter(|c| !c.is_control()).take(64).collect();
    (!s.is_empty()).then_some(s)
}

/// Where an object lives, from a cross-reference entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Free,
    Offset(u64),
    InStream { stream: u32, index: u32 },
}

/// One subsection of a classic cross-reference table, its entries left on disk.
#[derive(Debug, Clone, Copy)]
struct Subsection {
    first: u32,
    count: u32,
    entries_at: u64,
    entry_len: u64,
}

/// One cross-reference section.
#[derive(Debug)]
enum Section {
    /// A classic table: entries are fixed-size lines read on demand.
    Table(Vec<Subsection>),
    /// A decoded cross-reference stream (ISO 32000-1 7.5.8).
    Stream {
        data: Vec<u8>,
        widths: [usize; 3],
        index: Vec<(u32, u32)>,
    },
}

fn be_field(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b))
}

impl Section {
    /// The entry of a cross-reference stream for object `num`, if the stream covers it.
    fn stream_entry(
        data: &[u8],
        widths: [usize; 3],
        index: &[(u32, u32)],
        num: u32,
    ) -> Option<Entry> {
        let [w0, w1, w2] = widths;
        let row_len = (w0 + w1 + w2) as u64;
        let mut base = 0u64;
        for &(first, count) in index {
            if num >= first && u64::from(num) < u64::from(first) + u64::from(count) {
                let at = (base + u64::from(num - first)).checked_mul(row_len)?;
                let at = usize::try_from(at).ok()?;
                let row = data.get(at..at.checked_add(row_len as usize)?)?;
                let kind = if w0 == 0 { 1 } else { be_field(row.get(..w0)?) };
                let f2 = be_field(row.get(w0..w0 + w1)?);
                let f3 = be_field(row.get(w0 + w1..)?);
                return Some(match kind {
                    0 => Entry::Free,
                    1 => Entry::Offset(f2),
                    2 => match (u32::try_from(f2), u32::try_from(f3)) {
                        (Ok(stream), Ok(index)) => Entry::InStream { stream, index },
                        _ => Entry::Free,
                    },
                    // Unknown entry types are references to the null object (7.5.8.3).
                    _ => Entry::Free,
                });
            }
            base += u64::from(count);
        }
        None
    }
}

/// An indirect object as found: its value and, for a stream, where its data starts.
#[derive(Debug)]
struct Indirect {
    obj: Object,
    stream_at: Option<u64>,
}

/// A decoded object stream (ISO 32000-1 7.5.7).
#[derive(Debug)]
struct ObjStm {
    data: Vec<u8>,
    first: usize,
    entries: Vec<(u32, usize)>,
}

/// A PDF opened through its cross-reference sections.
struct Document<'s, 'b> {
    src: &'s Bounded<'b>,
    size: u64,
    /// Added to every offset: junk before `%PDF-` shifts all offsets of some writers' files.
    shift: u64,
    cache: Vec<(u64, Vec<u8>)>,
    /// Newest first.
    sections: Vec<Section>,
    xref_bytes: usize,
    /// The newest trailer, with /Root, /Info, /Encrypt and /ID filled in from older ones.
    trailer: Dict,
    fetches_left: usize,
    objstms: Vec<(u32, Rc<ObjStm>)>,
    /// Whether object streams are encrypted (so they cannot be read).
    streams_encrypted: bool,
    notes: Vec<String>,
}

impl<'s, 'b> Document<'s, 'b> {
    fn open(src: &'s Bounded<'b>) -> Result<Self, InspectError> {
        let mut doc = Document {
            src,
            size: src.size(),
            shift: 0,
            cache: Vec::new(),
            sections: Vec::new(),
            xref_bytes: 0,
            trailer: Dict::default(),
            fetches_left: MAX_FETCHES,
            objstms: Vec::new(),
            streams_encrypted: false,
            notes: Vec::new(),
        };
        let start = doc.startxref()?;
        let head = doc.read(0, HEADER_SEARCH)?;
        let header_at = memfind(&head, b"%PDF-").unwrap_or(0) as u64;
        let (section, trailer) = match doc.section(start) {
            Ok(found) => found,
            Err(first) if header_at > 0 => {
                let shifted = doc
                    .section(start.saturating_add(header_at))
                    .map_err(|_| first)?;
                doc.shift = header_at;
                shifted
            }
            Err(e) => return Err(e),
        };
        doc.add_section(section, trailer.clone());
        doc.trailer = trailer.clone();
        doc.follow_chain(start, &trailer);
        Ok(doc)
    }

    /// Reads up to `len` bytes at `offset`, from the cache when a kept window covers them.
    fn read(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, InspectError> {
        let end = offset.saturating_add(len as u64).min(self.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        for (start, bytes) in &self.cache {
            let covers_end = start.saturating_add(bytes.len() as u64) >= end;
            if *start <= offset && covers_end {
                let (a, b) = ((offset - start) as usize, (end - start) as usize);
                return Ok(bytes.get(a..b).map(<[u8]>::to_vec).unwrap_or_default());
            }
        }
        let bytes = self.src.read_up_to(offset, len)?;
        if bytes.len() >= CACHE_MIN {
            if self.cache.len() >= CACHE_CHUNKS {
                self.cache.remove(0);
            }
            self.cache.push((offset, bytes.clone()));
        }
        Ok(bytes)
    }

    /// The offset after the last `startxref` in the file's tail (ISO 32000-1 7.5.5).
    fn startxref(&mut self) -> Result<u64, InspectError> {
        for len in [TAIL_FIRST, TAIL_LEN] {
            let (start, tail) = self.src.tail(len)?;
            if tail.len() >= CACHE_MIN {
                self.cache.push((start, tail.clone()));
            }
            let mut search = tail.as_slice();
            // The last `startxref` followed by a number counts; a later one may be cut off.
            while let Some(at) = memrfind(search, b"startxref") {
                let after = tail.get(at + 9..).unwrap_or(&[]);
                if let Some(offset) = Parser::new(after, true).uint() {
                    return Ok(offset);
                }
                search = search.get(..at).unwrap_or(&[]);
            }
            if (tail.len() as u64) >= self.size {
                break;
            }
        }
        Err(malformed("pdf without startxref near its end"))
    }

    fn add_section(&mut self, section: Section, trailer: Dict) {
        self.sections.push(section);
        // An update's trailer repeats the previous one's entries (7.5.6); fill in what a
        // careless writer left out.
        for key in [&b"Root"[..], b"Info", b"Encrypt", b"ID"] {
            if !self.trailer.contains(key) {
                if let Some(v) = trailer.get(key) {
                    self.trailer.0.push((key.to_vec(), v.clone()));
                }
            }
        }
    }

    /// Follows /XRefStm and /Prev from the newest section, at most [`MAX_SECTIONS`] sections,
    /// refusing to visit an offset twice.
    fn follow_chain(&mut self, start: u64, newest: &Dict) {
        let mut visited = vec![start];
        let mut pending: Vec<u64> = Vec::new();
        let push_links = |pending: &mut Vec<u64>, t: &Dict| {
            // Stack order: the hybrid file's /XRefStm is consulted before /Prev (7.5.8.4).
            for key in [&b"Prev"[..], b"XRefStm"] {
                if let Some(off) = t.int(key).and_then(|o| u64::try_from(o).ok()) {
                    pending.push(off);
                }
            }
        };
        push_links(&mut pending, newest);
        while let Some(off) = pending.pop() {
            if visited.contains(&off) {
                self.notes.push(format!(
                    "pdf cross-reference chain loops back to offset {off}"
                ));
                continue;
            }
            if self.sections.len() >= MAX_SECTIONS {
                self.notes.push(format!(
                    "pdf has more than {MAX_SECTIONS} cross-reference sections; older ones were not read"
                ));
                break;
            }
            visited.push(off);
            match self.section(off.saturating_add(self.shift)) {
                Ok((section, trailer)) => {
                    push_links(&mut pending, &trailer);
                    self.add_section(section, trailer);
                }
                Err(InspectError::Budget(n)) => {
                    self.notes
                        .push(format!("read budget of {n} bytes exhausted"));
                    break;
                }
                Err(e) => self
                    .notes
                    .push(format!("pdf cross-reference section at offset {off}: {e}")),
            }
        }
    }

    /// The cross-reference section at `offset` and its trailer dictionary.
    fn section(&mut self, offset: u64) -> Result<(Section, Dict), InspectError> {
        let head = self.read(offset, 32)?;
        let mut p = Parser::new(&head, true);
        p.skip_ws();
        if p.rest().starts_with(b"xref") {
            return self.table(offset + p.pos as u64 + 4);
        }
        self.xref_stream(offset)
    }

    /// A classic cross-reference table (ISO 32000-1 7.5.4): subsection headers are read and
    /// the entries skipped, so a large table costs a few small reads.
    fn table(&mut self, mut cursor: u64) -> Result<(Section, Dict), InspectError> {
        let mut subsections = Vec::new();
        for _ in 0..=MAX_SUBSECTIONS {
            let line = self.read(cursor, 64)?;
            let mut p = Parser::new(&line, true);
            p.skip_ws();
            if p.rest().starts_with(b"trailer") {
                let at = cursor + p.pos as u64 + 7;
                let trailer = self.value_at(at)?;
                let Object::Dict(trailer) = trailer else {
                    return Err(malformed("pdf trailer is not a dictionary"));
                };
                return Ok((Section::Table(subsections), trailer));
            }
            if subsections.len() >= MAX_SUBSECTIONS {
                break;
            }
            let (Some(first), Some(count)) = (p.uint(), p.uint()) else {
                return Err(malformed("pdf cross-reference subsection header"));
            };
            // The header line ends with an end-of-line; spaces before it are tolerated.
            while matches!(p.rest().first(), Some(b' ' | b'\t')) {
                p.pos += 1;
            }
            match p.rest() {
                [b'\r', b'\n', ..] => p.pos += 2,
                [b'\r' | b'\n', ..] => p.pos += 1,
                _ => {}
            }
            let entries_at = cursor + p.pos as u64;
            if first.saturating_add(count) > MAX_OBJECT_NUMBER + 1 {
                return Err(malformed("pdf cross-reference subsection out of range"));
            }
            let entry_len = if count == 0 {
                20
            } else {
                self.entry_len(entries_at)?
            };
            let end = entries_at.saturating_add(count.saturating_mul(entry_len));
            if end > self.size {
                return Err(InspectError::Truncated("pdf cross-reference table"));
            }
            subsections.push(Subsection {
                first: first as u32,
                count: count as u32,
                entries_at,
                entry_len,
            });
            cursor = end;
        }
        Err(malformed(format!(
            "pdf cross-reference table with more than {MAX_SUBSECTIONS} subsections"
        )))
    }

    /// The length of a table's entries: 20 bytes by the specification, 19 or 21 in the wild.
    fn entry_len(&mut self, at: u64) -> Result<u64, InspectError> {
        let e = self.read(at, 21)?;
        let digits =
            |r: std::ops::Range<usize>| e.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
        if !(digits(0..10) && digits(11..16) && matches!(e.get(17), Some(b'n' | b'f'))) {
            return Err(malformed("pdf cross-reference entry"));
        }
        let eol = e
            .get(18..)
            .unwrap_or(&[])
            .iter()
            .take_while(|&&b| matches!(b, b' ' | b'\r' | b'\n'))
            .count();
        match eol {
            1..=3 => Ok(18 + eol as u64),
            _ => Err(malformed("pdf cross-reference entry")),
        }
    }

    /// A cross-reference stream (ISO 32000-1 7.5.8).
    fn xref_stream(&mut self, offset: u64) -> Result<(Section, Dict), InspectError> {
        let ind = self.indirect_at(offset)?;
        let (Object::Dict(dict), Some(start)) = (ind.obj, ind.stream_at) else {
            return Err(malformed(
                "pdf startxref points at neither a table nor a cross-reference stream",
            ));
        };
        if dict.name(b"Type") != Some(b"XRef") {
            return Err(malformed("pdf cross-reference stream without /Type /XRef"));
        }
        let w: Vec<i64> = dict
            .get(b"W")
            .and_then(Object::as_array)
            .map(|a| a.iter().filter_map(Object::as_int).collect())
            .unwrap_or_default();
        let widths: [usize; 3] = match w.as_slice() {
            [a, b, c] if [a, b, c].iter().all(|&&x| (0..=8).contains(&x)) && a + b + c > 0 => {
                [*a as usize, *b as usize, *c as usize]
            }
            _ => return Err(malformed("pdf cross-reference stream /W")),
        };
        let size = dict
            .int(b"Size")
            .filter(|&s| (0..=MAX_OBJECT_NUMBER as i64 + 1).contains(&s))
            .ok_or_else(|| malformed("pdf cross-reference stream /Size"))?;
        let index = match dict.get(b"Index").and_then(Object::as_array) {
            None => vec![(0, size as u32)],
            Some(a) if a.len() % 2 == 0 && a.len() <= 2 * MAX_SUBSECTIONS => {
                let mut index = Vec::with_capacity(a.len() / 2);
                for pair in a.chunks_exact(2) {
                    match (pair[0].as_int(), pair[1].as_int()) {
                        (Some(f), Some(c))
                            if f >= 0
                                && c >= 0
                                && f.saturating_add(c) <= MAX_OBJECT_NUMBER as i64 + 1 =>
                        {
                            index.push((f as u32, c as u32))
                        }
                        _ => return Err(malformed("pdf cross-reference stream /Index")),
                    }
                }
                index
            }
            Some(_) => return Err(malformed("pdf cross-reference stream /Index")),
        };
        // Values in a cross-reference stream's dictionary are direct (7.5.8.2), so its /Length
        // is not resolved: the sections needed to resolve it are what is being read.
        let raw = self.stream_raw(&dict, start, MAX_RAW_STREAM_LEN, None)?;
        let data = filters::decode(&dict, &raw, MAX_XREF_STREAM_LEN)?;
        self.xref_bytes = self.xref_bytes.saturating_add(data.len());
        if self.xref_bytes > MAX_XREF_TOTAL {
            return Err(malformed(
                "pdf cross-reference streams larger than 8 MiB together",
            ));
        }
        Ok((
            Section::Stream {
                data,
                widths,
                index,
            },
            dict,
        ))
    }

    /// Parses the indirect object at `offset`, reading a larger window while it runs past it.
    fn indirect_at(&mut self, offset: u64) -> Result<Indirect, InspectError> {
        self.parse_window(offset, |p| {
            let (_, obj, at) = p.indirect()?;
            Ok((obj, at))
        })
        .map(|(obj, at)| Indirect {
            obj,
            stream_at: at.map(|a| offset.saturating_add(a as u64)),
        })
    }

    /// Parses a direct object at `offset` (a trailer dictionary).
    fn value_at(&mut self, offset: u64) -> Result<Object, InspectError> {
        self.parse_window(offset, |p| p.object(0))
    }

    fn parse_window<T>(
        &mut self,
        offset: u64,
        parse: impl Fn(&mut Parser<'_>) -> Result<T, InspectError>,
    ) -> Result<T, InspectError> {
        let mut len = 4096usize;
        loop {
            let buf = self.read(offset, len)?;
            let complete = offset.saturating_add(buf.len() as u64) >= self.size;
            match parse(&mut Parser::new(&buf, complete)) {
                Err(InspectError::Truncated(_)) if !complete && len < MAX_OBJECT_LEN => {
                    len = (len * 4).min(MAX_OBJECT_LEN);
                }
                Err(InspectError::Truncated(_)) if !complete => {
                    return Err(malformed(format!(
                        "pdf object at offset {offset} larger than {MAX_OBJECT_LEN} bytes"
                    )))
                }
                other => return other,
            }
        }
    }

    /// A stream's raw data: /Length bytes when they end at `endstream`, else up to the next
    /// `endstream`; at most `cap` bytes either way. `depth` allows resolving an indirect
    /// /Length (none for cross-reference streams).
    fn stream_raw(
        &mut self,
        dict: &Dict,
        start: u64,
        cap: usize,
        depth: Option<usize>,
    ) -> Result<Vec<u8>, InspectError> {
        let declared = match (dict.get(b"Length"), depth) {
            (Some(Object::Int(n)), _) => u64::try_from(*n).ok(),
            (Some(Object::Ref(r)), Some(depth)) => self
                .fetch(*r, depth + 1)
                .ok()
                .flatten()
                .and_then(|i| i.obj.as_int())
                .and_then(|n| u64::try_from(n).ok()),
            _ => None,
        };
        if let Some(len) = declared {
            if len > cap as u64 {
                return Err(malformed(format!(
                    "pdf stream of {len} bytes is over the {cap}-byte limit"
                )));
            }
            let len = len as usize;
            if start.saturating_add(len as u64) <= self.size {
                let buf = self.read(start, len + 32)?;
                let mut after = Parser::new(buf.get(len..).unwrap_or(&[]), true);
                after.skip_ws();
                if after.rest().starts_with(b"endstream") {
                    return Ok(buf.get(..len).map(<[u8]>::to_vec).unwrap_or_default());
                }
            }
        }
        // A wrong or missing /Length is common; the data ends before `endstream`.
        let buf = self.read(start, cap + 32)?;
        let end = memfind(&buf, b"endstream").ok_or_else(|| {
            if buf.len() > cap {
                malformed(format!("pdf stream over the {cap}-byte limit"))
            } else {
                InspectError::Truncated("pdf stream")
            }
        })?;
        let mut data = buf.get(..end.min(cap)).unwrap_or(&[]);
        if let Some(d) = data.strip_suffix(b"\n") {
            data = d.strip_suffix(b"\r").unwrap_or(d);
        } else if let Some(d) = data.strip_suffix(b"\r") {
            data = d;
        }
        Ok(data.to_vec())
    }

    /// The cross-reference entry of object `num` in the newest section that lists it.
    fn lookup(&mut self, num: u32) -> Result<Option<Entry>, InspectError> {
        if num == 0 {
            return Ok(Some(Entry::Free));
        }
        for i in 0..self.sections.len() {
            let sub = match self.sections.get(i) {
                Some(Section::Table(subs)) => subs
                    .iter()
                    .find(|s| {
                        num >= s.first && u64::from(num) < u64::from(s.first) + u64::from(s.count)
                    })
                    .copied(),
                Some(Section::Stream {
                    data,
                    widths,
                    index,
                }) => {
                    if let Some(e) = Section::stream_entry(data, *widths, index, num) {
                        return Ok(Some(e));
                    }
                    None
                }
                None => None,
            };
            if let Some(sub) = sub {
                let at = sub.entries_at + u64::from(num - sub.first) * sub.entry_len;
                let line = self.read(at, 18)?;
                let mut p = Parser::new(&line, true);
                let (Some(offset), Some(_gen)) = (p.uint(), p.uint()) else {
                    return Err(malformed(format!(
                        "pdf cross-reference entry of object {num}"
                    )));
                };
                return Ok(Some(if p.keyword(b"n") {
                    Entry::Offset(offset)
                } else {
                    Entry::Free
                }));
            }
        }
        Ok(None)
    }

    /// Fetches object `r`; `None` for a free or unlisted object (which reads as null).
    fn fetch(&mut self, r: Ref, depth: usize) -> Result<Option<Indirect>, InspectError> {
        if depth > MAX_FETCH_DEPTH {
            return Err(malformed("pdf objects refer to each other too deeply"));
        }
        self.fetches_left = self.fetches_left.checked_sub(1).ok_or_else(|| {
            malformed(format!("pdf needs more than {MAX_FETCHES} object lookups"))
        })?;
        match self.lookup(r.num)? {
            None | Some(Entry::Free) => Ok(None),
            Some(Entry::Offset(offset)) => {
                let at = offset.saturating_add(self.shift);
                let (found, obj, stream) = self.parse_window(at, |p| p.indirect())?;
                if found.num != r.num {
                    return Err(malformed(format!(
                        "pdf cross-reference points object {} at object {}",
                        r.num, found.num
                    )));
                }
                Ok(Some(Indirect {
                    obj,
                    stream_at: stream.map(|s| at.saturating_add(s as u64)),
                }))
            }
            Some(Entry::InStream { stream, index }) => {
                let obj = self.object_in_stream(stream, index, r.num, depth)?;
                Ok(Some(Indirect {
                    obj,
                    stream_at: None,
                }))
            }
        }
    }

    fn object_in_stream(
        &mut self,
        stream: u32,
        index: u32,
        num: u32,
        depth: usize,
    ) -> Result<Object, InspectError> {
        let s = self.object_stream(stream, depth)?;
        let listed = s
            .entries
            .get(index as usize)
            .copied()
            .filter(|(n, _)| *n == num)
            .or_else(|| s.entries.iter().find(|(n, _)| *n == num).copied());
        let (_, offset) = listed.ok_or_else(|| {
            malformed(format!(
                "pdf object {num} missing from object stream {stream}"
            ))
        })?;
        let body = s
            .first
            .checked_add(offset)
            .and_then(|at| s.data.get(at..))
            .ok_or_else(|| malformed(format!("pdf object {num} outside object stream {stream}")))?;
        Parser::new(body, true).object(0)
    }

    fn object_stream(&mut self, num: u32, depth: usize) -> Result<Rc<ObjStm>, InspectError> {
        if let Some((_, s)) = self.objstms.iter().find(|(n, _)| *n == num) {
            return Ok(Rc::clone(s));
        }
        if self.streams_encrypted {
            return Err(malformed(format!(
                "pdf object stream {num} is encrypted and cannot be read"
            )));
        }
        if matches!(self.lookup(num)?, Some(Entry::InStream { .. })) {
            return Err(malformed(format!(
                "pdf object stream {num} is itself inside an object stream"
            )));
        }
        let ind = self
            .fetch(Ref { num, gen: 0 }, depth + 1)?
            .ok_or_else(|| malformed(format!("pdf object stream {num} missing")))?;
        let (Object::Dict(dict), Some(start)) = (ind.obj, ind.stream_at) else {
            return Err(malformed(format!(
                "pdf object {num} is not an object stream"
            )));
        };
        let n = dict
            .int(b"N")
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| malformed("pdf object stream /N"))?;
        let first = dict
            .int(b"First")
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| malformed("pdf object stream /First"))?;
        let raw = self.stream_raw(&dict, start, MAX_RAW_STREAM_LEN, Some(depth + 1))?;
        let data = filters::decode(&dict, &raw, MAX_STREAM_LEN)?;
        let header = data
            .get(..first)
            .ok_or_else(|| malformed("pdf object stream /First beyond its data"))?;
        // /N only bounds the loop; the header itself says how many pairs there really are.
        let mut p = Parser::new(header, true);
        let mut entries = Vec::new();
        for _ in 0..n.min(MAX_OBJSTM_OBJECTS) {
            match (p.uint(), p.uint()) {
                (Some(obj), Some(off)) => match (u32::try_from(obj), usize::try_from(off)) {
                    (Ok(obj), Ok(off)) => entries.push((obj, off)),
                    _ => break,
                },
                _ => break,
            }
        }
        let s = Rc::new(ObjStm {
            data,
            first,
            entries,
        });
        if self.objstms.len() >= OBJSTM_CACHE {
            self.objstms.remove(0);
        }
        self.objstms.push((num, Rc::clone(&s)));
        Ok(s)
    }

    /// The value of `obj` with references followed.
    fn resolve(&mut self, obj: &Object) -> Result<Object, InspectError> {
        let mut cur = obj.clone();
        for _ in 0..MAX_FETCH_DEPTH {
            match cur {
                Object::Ref(r) => cur = self.fetch(r, 0)?.map_or(Object::Null, |i| i.obj),
                other => return Ok(other),
            }
        }
        Err(malformed("pdf chain of references too long"))
    }

    fn resolve_dict(&mut self, obj: &Object) -> Result<Option<Dict>, InspectError> {
        Ok(match self.resolve(obj)? {
            Object::Dict(d) => Some(d),
            _ => None,
        })
    }

    /// `dict` with indirect values (and those of nested dictionaries, `levels` deep) resolved.
    fn resolve_values(&mut self, dict: &Dict, levels: usize) -> Dict {
        let mut out = Dict::default();
        for (k, v) in &dict.0 {
            let mut v = match v {
                Object::Ref(_) => self.resolve(v).unwrap_or(Object::Null),
                other => other.clone(),
            };
            if let (Object::Dict(d), true) = (&v, levels > 0) {
                v = Object::Dict(self.resolve_values(d, levels - 1));
            }
            out.0.push((k.clone(), v));
        }
        out
    }

    fn inspect(&mut self) -> Result<Evidence, InspectError> {
        let mut ev = Evidence::default();
        let id0 = self
            .trailer
            .get(b"ID")
            .and_then(Object::as_array)
            .and_then(|a| a.first())
            .and_then(Object::as_str)
            .map(<[u8]>::to_vec);
        let mut strings_encrypted = false;
        let mut metadata_encrypted = false;
        if let Some(enc_ref) = self.trailer.get(b"Encrypt").cloned() {
            // The encryption dictionary and its strings are never encrypted (7.6.1).
            let verdict = match self.resolve_dict(&enc_ref) {
                Ok(Some(enc)) => {
                    let enc = self.resolve_values(&enc, 2);
                    strings_encrypted = !strings_in_clear(&enc);
                    metadata_encrypted = !metadata_in_clear(&enc);
                    self.streams_encrypted = metadata_encrypted;
                    classify_encryption(&enc, id0.as_deref())
                }
                Ok(None) => {
                    strings_encrypted = true;
                    metadata_encrypted = true;
                    self.streams_encrypted = true;
                    EncryptionVerdict::new(EncryptionStatus::Encrypted, "pdf-encrypt")
                        .with_detail("/Encrypt in the trailer, encryption dictionary missing")
                }
                Err(e) => {
                    strings_encrypted = true;
                    metadata_encrypted = true;
                    self.streams_encrypted = true;
                    EncryptionVerdict::new(EncryptionStatus::Encrypted, "pdf-encrypt").with_detail(
                        format!("/Encrypt in the trailer, encryption dictionary unreadable: {e}"),
                    )
                }
            };
            ev.encryption = Some(verdict);
        }

        let catalog = match self.trailer.get(b"Root").cloned() {
            Some(root) => match self.resolve_dict(&root) {
                Ok(Some(c)) => Some(c),
                Ok(None) => {
                    self.notes
                        .push("pdf catalog (/Root) is not a dictionary".into());
                    None
                }
                Err(e) => {
                    self.notes
                        .push(format!("pdf catalog (/Root) unreadable: {e}"));
                    None
                }
            },
            None => {
                self.notes.push("pdf trailer without /Root".into());
                None
            }
        };

        if ev.encryption.is_none() {
            let payload = match &catalog {
                Some(c) => self.wrapper_payload(c),
                None => Err("catalog unreadable".to_string()),
            };
            ev.encryption = Some(match payload {
                Ok(Some(payload)) => payload.verdict(),
                Ok(None) => EncryptionVerdict::new(EncryptionStatus::Plaintext, "pdf"),
                // A wrapper's payload cannot be ruled out: only a linear scan may still find it.
                Err(reason) => {
                    let scan = linear_scan(self.src, &reason)?;
                    self.notes.extend(scan.notes);
                    scan.encryption.unwrap_or_default()
                }
            });
        }

        let info = self.info_labels(strings_encrypted);
        let xmp = match &catalog {
            Some(c) => self.xmp_labels(c, metadata_encrypted),
            None => Vec::new(),
        };
        ev.labels = merge_info_xmp(info, xmp);
        ev.notes = std::mem::take(&mut self.notes);
        Ok(ev)
    }

    /// The encrypted payload of an unencrypted wrapper document (ISO 32000-2 7.6.7): a file
    /// specification in the catalog's /AF array or embedded-file name tree with /EP or
    /// /AFRelationship /EncryptedPayload; or Microsoft's IRM v1 /Wrapper trailer entry.
    ///
    /// The catalog's /AF array is where a wrapper lists its payload, so failing to read it (or
    /// a file specification in it) is an error: no payload could be ruled out. The name tree is
    /// searched as well, for wrappers that skip /AF; problems there are only noted.
    fn wrapper_payload(&mut self, catalog: &Dict) -> Result<Option<Payload>, String> {
        if let Some(w) = self.trailer.get(b"Wrapper").cloned() {
            let wrapper = self.resolve_dict(&w).ok().flatten().unwrap_or_default();
            return Ok(Some(Payload {
                filter: wrapper.get(b"Type").and_then(object_text),
                version: wrapper.get(b"Version").and_then(object_text),
                place: "irm-v1",
            }));
        }
        if let Some(af) = catalog.get(b"AF").cloned() {
            let specs = match self.resolve(&af) {
                Ok(Object::Array(specs)) => specs,
                Ok(_) => Vec::new(),
                Err(e) => return Err(format!("catalog /AF unreadable ({e})")),
            };
            for spec in specs.iter().take(MAX_ATTACHMENTS) {
                match self.payload_of(spec, "catalog /AF") {
                    Ok(Some(p)) => return Ok(Some(p)),
                    Ok(None) => {}
                    Err(e) => {
                        return Err(format!(
                            "file specification in catalog /AF unreadable ({e})"
                        ))
                    }
                }
            }
        }
        let tree = catalog
            .get(b"Names")
            .cloned()
            .and_then(|n| self.resolve_dict(&n).ok().flatten())
            .and_then(|names| names.get(b"EmbeddedFiles").cloned());
        Ok(tree.and_then(|t| self.embedded_files_payload(t)))
    }

    /// Walks an embedded-file name tree (ISO 32000-1 7.9.6), at most [`MAX_NAME_TREE_NODES`]
    /// nodes and [`MAX_ATTACHMENTS`] file specifications.
    fn embedded_files_payload(&mut self, root: Object) -> Option<Payload> {
        let mut stack = vec![root];
        let mut nodes = 0;
        let mut specs = 0;
        while let Some(node) = stack.pop() {
            nodes += 1;
            if nodes > MAX_NAME_TREE_NODES || specs > MAX_ATTACHMENTS {
                self.notes.push(format!(
                    "pdf embedded-file tree larger than {MAX_NAME_TREE_NODES} nodes; the rest was not examined"
                ));
                return None;
            }
            let Ok(Some(node)) = self.resolve_dict(&node) else {
                continue;
            };
            if let Some(names) = node.get(b"Names").and_then(Object::as_array) {
                for pair in names.chunks(2).take(MAX_ATTACHMENTS) {
                    specs += 1;
                    let Some(spec) = pair.get(1) else {
                        continue;
                    };
                    match self.payload_of(spec, "embedded file") {
                        Ok(Some(p)) => return Some(p),
                        Ok(None) => {}
                        Err(e) => self
                            .notes
                            .push(format!("pdf embedded file specification unreadable: {e}")),
                    }
                }
            }
            if let Some(kids) = node.get(b"Kids").and_then(Object::as_array) {
                stack.extend(kids.iter().take(MAX_NAME_TREE_NODES).cloned());
            }
        }
        None
    }

    fn payload_of(
        &mut self,
        spec: &Object,
        place: &'static str,
    ) -> Result<Option<Payload>, InspectError> {
        let Some(spec) = self.resolve_dict(spec)? else {
            return Ok(None);
        };
        let ep = match spec.get(b"EP") {
            Some(ep) => self.resolve_dict(ep)?,
            None => None,
        };
        let related = spec.name(b"AFRelationship") == Some(b"EncryptedPayload");
        if ep.is_none() && !related {
            return Ok(None);
        }
        let ep = ep.unwrap_or_default();
        Ok(Some(Payload {
            filter: ep.get(b"Subtype").and_then(object_text),
            version: ep.get(b"Version").and_then(object_text),
            place,
        }))
    }

    /// Labels from the Info dictionary's `MSIP_Label_*` entries (ISO 32000-1 14.3.3).
    fn info_labels(&mut self, values_encrypted: bool) -> Vec<DetectedLabel> {
        let Some(info) = self.trailer.get(b"Info").cloned() else {
            return Vec::new();
        };
        let info = match self.resolve_dict(&info) {
            Ok(Some(d)) => d,
            Ok(None) => return Vec::new(),
            Err(e) => {
                self.notes
                    .push(format!("pdf Info dictionary unreadable: {e}"));
                return Vec::new();
            }
        };
        let mut pairs = Vec::new();
        for (key, value) in info.0.iter().take(1024) {
            let key = String::from_utf8_lossy(key).into_owned();
            let relevant = key.to_ascii_lowercase().starts_with("msip_label_")
                || key.eq_ignore_ascii_case("Sensitivity")
                || key.eq_ignore_ascii_case("bjDocumentSecurityLabel");
            if !relevant {
                continue;
            }
            let value = if values_encrypted {
                // Encrypted strings: the key still names the label id.
                String::new()
            } else {
                let value = match value {
                    Object::Ref(_) => self.resolve(value).unwrap_or(Object::Null),
                    other => other.clone(),
                };
                match value {
                    Object::Str(s) => text_string(&s),
                    Object::Name(n) => String::from_utf8_lossy(&n).into_owned(),
                    Object::Bool(b) => b.to_string(),
                    Object::Int(n) => n.to_string(),
                    _ => String::new(),
                }
            };
            pairs.push((key, value));
        }
        let mut labels = msip::labels_from_properties(
            pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            LabelSource::PdfInfo,
        );
        if values_encrypted {
            for l in &mut labels {
                l.detail = Some("Info dictionary; values encrypted, label id from the key".into());
            }
        }
        labels
    }

    /// Labels from the catalog's XMP metadata stream (ISO 32000-1 14.3.2).
    fn xmp_labels(&mut self, catalog: &Dict, encrypted: bool) -> Vec<DetectedLabel> {
        let Some(Object::Ref(r)) = catalog.get(b"Metadata").cloned() else {
            return Vec::new();
        };
        if encrypted {
            self.notes
                .push("pdf XMP metadata is encrypted; labels in it were not read".into());
            return Vec::new();
        }
        let packet = self.fetch(r, 0).and_then(|ind| {
            let ind = ind.ok_or_else(|| malformed("pdf metadata stream missing"))?;
            let (Object::Dict(dict), Some(start)) = (ind.obj, ind.stream_at) else {
                return Err(malformed("pdf /Metadata is not a stream"));
            };
            let raw = self.stream_raw(&dict, start, MAX_RAW_STREAM_LEN, Some(0))?;
            filters::decode(&dict, &raw, MAX_STREAM_LEN)
        });
        match packet {
            Ok(xml) => {
                let (labels, note) = xmp_labels(&xml);
                self.notes.extend(note);
                labels
            }
            Err(e) => {
                self.notes.push(format!("pdf XMP metadata unreadable: {e}"));
                Vec::new()
            }
        }
    }
}

/// `MSIP_Label_*` properties of an XMP packet, as elements (`<pdfx:MSIP_Label_…_Enabled>true<…>`)
/// or attributes (`pdfx:MSIP_Label_…_Enabled="true"`) in any namespace; with a note when the
/// XML breaks off (what was read before it counts).
fn xmp_labels(xml: &[u8]) -> (Vec<DetectedLabel>, Option<String>) {
    let xml = xml.get(..msip::MAX_LABEL_XML).unwrap_or(xml);
    let is_msip = |name: &[u8]| {
        name.get(..11)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"MSIP_Label_"))
    };
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut pairs: Vec<(String, String)> = Vec::new();
    // The MSIP element being read: its name, its text so far, and the nesting inside it.
    let mut open: Option<(String, String, usize)> = None;
    let mut note = None;
    loop {
        let event = match reader.read_event_into(&mut buf) {
            Ok(e) => e,
            Err(e) => {
                note = Some(format!("pdf XMP metadata: {e}"));
                break;
            }
        };
        let element = match &event {
            Event::Start(e) => Some((e, false)),
            Event::Empty(e) => Some((e, true)),
            _ => None,
        };
        if let Some((e, empty)) = element {
            match &mut open {
                Some((_, _, depth)) => {
                    if !empty {
                        *depth += 1;
                    }
                }
                None => {
                    for a in e.attributes().with_checks(false).flatten() {
                        let local = a.key.local_name();
                        if is_msip(local.as_ref()) {
                            let value = a.unescape_value().map_or_else(
                                |_| String::from_utf8_lossy(&a.value).into_owned(),
                                |v| v.into_owned(),
                            );
                            pairs.push((
                                String::from_utf8_lossy(local.as_ref()).into_owned(),
                                value,
                            ));
                        }
                    }
                    let local = e.local_name();
                    if is_msip(local.as_ref()) {
                        let key = String::from_utf8_lossy(local.as_ref()).into_owned();
                        if empty {
                            pairs.push((key, String::new()));
                        } else {
                            open = Some((key, String::new(), 0));
                        }
                    }
                }
            }
        }
        match event {
            Event::End(_) => {
                if let Some((key, text, depth)) = open.take() {
                    if depth == 0 {
                        pairs.push((key, text));
                    } else {
                        open = Some((key, text, depth - 1));
                    }
                }
            }
            Event::Text(t) => {
                if let (Some((_, text, _)), Ok(s)) = (&mut open, t.decode()) {
                    text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some((_, text, _)) = &mut open {
                    text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, text, _)) = &mut open {
                    if let Ok(Some(c)) = r.resolve_char_ref() {
                        text.push(c);
                    } else if let Ok(name) = r.decode() {
                        if let Some(s) = quick_xml::escape::resolve_predefined_entity(&name) {
                            text.push_str(s);
                        }
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let labels = msip::labels_from_properties(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        LabelSource::PdfXmp,
    );
    (labels, note)
}

/// One label per id: Office writes the same MSIP properties to the Info dictionary and to XMP.
/// The Info entry wins; fields it lacks (values encrypted, or fewer keys) come from XMP.
fn merge_info_xmp(info: Vec<DetectedLabel>, xmp: Vec<DetectedLabel>) -> Vec<DetectedLabel> {
    let mut out = info;
    for x in xmp {
        let twin = x.id.as_ref().and_then(|id| {
            out.iter_mut()
                .find(|l| l.source == LabelSource::PdfInfo && l.id.as_ref() == Some(id))
        });
        match twin {
            Some(l) => {
                l.name = l.name.take().or(x.name);
                l.tenant = l.tenant.take().or(x.tenant);
                l.method = l.method.take().or(x.method);
                l.set_date = l.set_date.take().or(x.set_date);
                l.enabled = l.enabled.or(x.enabled);
            }
            None => out.push(x),
        }
    }
    out
}

/// Keyword positions in `hay`, at most [`MAX_SCAN_HITS`].
fn positions(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut from = 0;
    while out.len() < MAX_SCAN_HITS {
        match hay.get(from..).and_then(|h| memfind(h, needle)) {
            Some(i) => {
                out.push(from + i);
                from += i + needle.len();
            }
            None => break,
        }
    }
    out
}

/// Whether `hay` holds the name `needle` (with its slash) as a whole token.
fn has_name_token(hay: &[u8], needle: &[u8]) -> bool {
    positions(hay, needle).into_iter().any(|at| {
        hay.get(at + needle.len())
            .is_none_or(|&b| !syntax::is_regular(b))
    })
}

/// Trailer dictionaries found in a window: after `trailer` keywords and cross-reference stream
/// dictionaries (an `obj` shortly before a `/XRef`), with their offset in the window.
fn scan_trailers(win: &[u8]) -> Vec<(usize, Dict)> {
    let mut out = Vec::new();
    for at in positions(win, b"trailer") {
        let body = win.get(at + 7..).unwrap_or(&[]);
        if let Ok(Object::Dict(d)) = Parser::new(body, true).object(0) {
            out.push((at, d));
        }
    }
    for at in positions(win, b"/XRef") {
        let from = at.saturating_sub(1024);
        let Some(obj) = win.get(from..at).and_then(|w| memrfind(w, b"obj")) else {
            continue;
        };
        let start = from + obj + 3;
        if let Ok(Object::Dict(d)) = Parser::new(win.get(start..).unwrap_or(&[]), true).object(0) {
            if d.name(b"Type") == Some(b"XRef") {
                out.push((start, d));
            }
        }
    }
    out
}

/// The newest definition of object `num` found in the windows (`num gen obj …`).
fn scan_object(windows: &[(u64, Vec<u8>)], num: u32) -> Option<Object> {
    // Generation 0 is what nearly every object has; others are not searched for.
    let needle = format!("{num} 0 obj");
    for (_, win) in windows.iter().rev() {
        let mut hits = positions(win, needle.as_bytes());
        hits.reverse();
        for at in hits {
            if at > 0 && win.get(at - 1).is_some_and(|b| b.is_ascii_digit()) {
                continue;
            }
            let mut p = Parser::new(win.get(at..).unwrap_or(&[]), true);
            if let Ok((r, obj, _)) = p.indirect() {
                if r.num == num {
                    return Some(obj);
                }
            }
        }
    }
    None
}

/// The verdict and labels a linear scan supports when the cross-reference is unreadable: the
/// first and last [`SCAN_LEN`] bytes are searched for trailers with /Encrypt, for
/// `/EncryptedPayload` and for the Info dictionary and XMP packet the trailers lead to.
fn linear_scan(src: &Bounded<'_>, reason: &str) -> Result<Evidence, InspectError> {
    let size = src.size();
    let mut windows: Vec<(u64, Vec<u8>)> = Vec::new();
    let scope = if size <= 2 * SCAN_LEN as u64 {
        windows.push((0, src.read_up_to(0, size as usize)?));
        "the whole file".to_string()
    } else {
        windows.push((0, src.read_up_to(0, SCAN_LEN)?));
        windows.push((
            size - SCAN_LEN as u64,
            src.read_up_to(size - SCAN_LEN as u64, SCAN_LEN)?,
        ));
        format!("the first and last {} KiB", SCAN_LEN / 1024)
    };
    let mut ev = Evidence::default();
    ev.notes.push(format!(
        "pdf {reason}; fell back to a linear scan of {scope}"
    ));
    let mut trailers: Vec<(u64, Dict)> = windows
        .iter()
        .flat_map(|(base, win)| {
            scan_trailers(win)
                .into_iter()
                .map(move |(at, d)| (base + at as u64, d))
        })
        .collect();
    // Newest (latest in the file) first.
    trailers.sort_by_key(|t| std::cmp::Reverse(t.0));
    let found_by_scan = format!("found by a linear scan ({reason})");

    let encrypt = trailers.iter().find_map(|(_, t)| {
        let id0 = t
            .get(b"ID")
            .and_then(Object::as_array)
            .and_then(|a| a.first())
            .and_then(Object::as_str);
        t.get(b"Encrypt")
            .map(|e| (e.clone(), id0.map(<[u8]>::to_vec)))
    });
    let mut strings_encrypted = false;
    if let Some((enc, id0)) = encrypt {
        strings_encrypted = true;
        let dict = match enc {
            Object::Dict(d) => Some(d),
            Object::Ref(r) => scan_object(&windows, r.num).and_then(|o| match o {
                Object::Dict(d) => Some(d),
                _ => None,
            }),
            _ => None,
        };
        let verdict = match dict {
            Some(d) => {
                strings_encrypted = !strings_in_clear(&d);
                let v = classify_encryption(&d, id0.as_deref());
                let detail = v.detail.clone().unwrap_or_default();
                v.with_detail(format!("{detail}; {found_by_scan}"))
            }
            None => EncryptionVerdict::new(EncryptionStatus::Encrypted, "pdf-encrypt")
                .with_detail(format!("/Encrypt in a trailer, {found_by_scan}")),
        };
        ev.encryption = Some(verdict);
    } else if windows
        .iter()
        .any(|(_, w)| has_name_token(w, b"/EncryptedPayload"))
        || trailers.iter().any(|(_, t)| t.contains(b"Wrapper"))
    {
        ev.encryption = Some(
            EncryptionVerdict::new(EncryptionStatus::Encrypted, "pdf-encrypted-payload")
                .with_detail(format!("encrypted-payload wrapper markers {found_by_scan}")),
        );
    } else {
        ev.encryption = Some(
            EncryptionVerdict::new(EncryptionStatus::Unknown, "pdf").with_detail(format!(
                "{reason}; no /Encrypt or /EncryptedPayload in {scope}"
            )),
        );
    }

    // Labels: the Info dictionary the newest trailer names, and an XMP packet in clear.
    let info = trailers.iter().find_map(|(_, t)| match t.get(b"Info") {
        Some(Object::Ref(r)) => scan_object(&windows, r.num),
        Some(Object::Dict(d)) => Some(Object::Dict(d.clone())),
        _ => None,
    });
    let mut labels = Vec::new();
    if let Some(Object::Dict(info)) = info {
        let pairs: Vec<(String, String)> = info
            .0
            .iter()
            .take(1024)
            .map(|(k, v)| {
                let value = match (v, strings_encrypted) {
                    (Object::Str(s), false) => text_string(s),
                    (Object::Name(n), false) => String::from_utf8_lossy(n).into_owned(),
                    (Object::Bool(b), false) => b.to_string(),
                    _ => String::new(),
                };
                (String::from_utf8_lossy(k).into_owned(), value)
            })
            .collect();
        labels = msip::labels_from_properties(
            pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            LabelSource::PdfInfo,
        );
    }
    let mut xmp = Vec::new();
    if !strings_encrypted {
        for (_, win) in &windows {
            let Some(start) = memfind(win, b"<x:xmpmeta") else {
                continue;
            };
            let Some(len) = win.get(start..).and_then(|w| memfind(w, b"</x:xmpmeta>")) else {
                continue;
            };
            if let Some(packet) = win.get(start..start + len + 12) {
                let (found, _) = xmp_labels(packet);
                xmp.extend(found);
            }
        }
    }
    ev.labels = merge_info_xmp(labels, xmp);
    for l in &mut ev.labels {
        l.detail = Some(format!(
            "{} ({found_by_scan})",
            match l.source {
                LabelSource::PdfXmp => "XMP metadata",
                _ => "Info dictionary",
            }
        ));
    }
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Object, InspectError> {
        Parser::new(src.as_bytes(), true).object(0)
    }

    fn dict(src: &str) -> Dict {
        match parse(src) {
            Ok(Object::Dict(d)) => d,
            other => panic!("{src}: {other:?}"),
        }
    }

    #[test]
    fn rc4_takes_exactly_the_key_lengths_the_standard_handler_allows() {
        let key: Vec<u8> = (1..=17).collect();
        for n in 0..=17 {
            let mut data = crypt::PAD;
            let done = crypt::rc4(&key[..n], &mut data);
            assert_eq!(done.is_some(), (5..=16).contains(&n), "{n}-byte key");
            if done.is_some() {
                assert_ne!(data, crypt::PAD, "{n}-byte key");
            }
        }
    }

    #[test]
    fn names_strings_and_references_parse_per_the_syntax() {
        assert_eq!(
            parse("/MSIP#5fLabel").unwrap(),
            Object::Name(b"MSIP_Label".to_vec())
        );
        assert_eq!(parse("/A#2").unwrap(), Object::Name(b"A#2".to_vec()));
        assert_eq!(
            parse(
                r"(a (nested) \(x\) \\ \101\60\0061 line\
cont)"
            )
            .unwrap(),
            Object::Str(b"a (nested) (x) \\ A0\x061 linecont".to_vec())
        );
        assert_eq!(parse("(a\r\nb)").unwrap(), Object::Str(b"a\nb".to_vec()));
        assert_eq!(
            parse("<48 65 6c6C 6>").unwrap(),
            Object::Str(b"Hell`".to_vec())
        );
        assert_eq!(
            parse("12 0 R").unwrap(),
            Object::Ref(Ref { num: 12, gen: 0 })
        );
        assert_eq!(
            parse("[1 2 R 3 4 5 -6 7.5 true null]").unwrap(),
            Object::Array(vec![
                Object::Ref(Ref { num: 1, gen: 2 }),
                Object::Int(3),
                Object::Int(4),
                Object::Int(5),
                Object::Int(-6),
                Object::Real(7.5),
                Object::Bool(true),
                Object::Null,
            ])
        );
        let d = dict("<</Type/Catalog/Pages 2 0 R % comment\n/Kids[<</A(b)>>]>>");
        assert_eq!(d.name(b"Type"), Some(&b"Catalog"[..]));
        assert_eq!(d.get(b"Pages"), Some(&Object::Ref(Ref { num: 2, gen: 0 })));
        for bad in [
            "<</A>>",
            "<<1 2>>",
            "(unterminated",
            "<zz>",
            "[1 2",
            ">>",
            "{",
            "truex",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_window_that_ends_mid_object_asks_for_more() {
        for partial in ["<</A 1", "<</A 12 0", "(abc", "<</A/Na", "[1 2 3"] {
            let err = Parser::new(partial.as_bytes(), false)
                .object(0)
                .unwrap_err();
            assert!(
                matches!(err, InspectError::Truncated(_)),
                "{partial}: {err}"
            );
        }
        // The same bytes as complete data: a number at the very end is fine.
        assert_eq!(
            Parser::new(b"12 0", true).object(0).unwrap(),
            Object::Int(12)
        );
    }

    #[test]
    fn nesting_and_size_are_bounded_without_recursion_overflow() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse(&deep).unwrap_err();
        assert!(err.to_string().contains("nested deeper"), "{err}");
        let deep_dicts = "<</A ".repeat(50) + &">>".repeat(50);
        assert!(parse(&deep_dicts).is_err());
        let ok = "<</A ".repeat(20) + "1" + &">>".repeat(20);
        assert!(parse(&ok).is_ok());
        let wide = format!("[{}]", "1 ".repeat(MAX_ITEMS + 10));
        assert!(parse(&wide).unwrap_err().to_string().contains("too many"));
    }

    #[test]
    fn text_strings_decode_utf16_utf8_and_pdfdocencoding() {
        let utf16: Vec<u8> = [0xfe, 0xff]
            .into_iter()
            .chain(
                "Vertraulich – ü 😀"
                    .encode_utf16()
                    .flat_map(u16::to_be_bytes),
            )
            .collect();
        assert_eq!(text_string(&utf16), "Vertraulich – ü 😀");
        assert_eq!(text_string(b"\xef\xbb\xbfgr\xc3\xbcn"), "grün");
        assert_eq!(text_string(b"a\x80b\xa0c\xe9\x18"), "a•b€cé˘");
    }

    #[test]
    fn png_predictors_and_filters_decode() {
        // Two rows of three bytes: row 1 with Sub, row 2 with Up.
        let data = vec![1, 1, 1, 1, 2, 1, 2, 3];
        let parms = dict("<</Predictor 12/Columns 3>>");
        assert_eq!(
            filters::predict(data, Some(&parms)).unwrap(),
            vec![1, 2, 3, 2, 4, 6]
        );
        // Paeth on a first row (all zeros above) adds the left byte, like Sub; on the second
        // row the byte above is the nearest predictor.
        let paeth = filters::predict(vec![4, 10, 20, 30, 4, 1, 1, 1], Some(&parms)).unwrap();
        assert_eq!(paeth, vec![10, 30, 60, 11, 31, 61]);
        assert!(filters::predict(vec![9, 0, 0, 0], Some(&parms)).is_err());
        assert!(filters::predict(vec![0], Some(&dict("<</Predictor 12/Columns -1>>"))).is_err());

        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut z, &[0u8; 100_000]).unwrap();
        let bomb = z.finish().unwrap();
        let d = dict("<</Filter/FlateDecode>>");
        assert_eq!(filters::decode(&d, &bomb, 200_000).unwrap().len(), 100_000);
        let err = filters::decode(&d, &bomb, 1000).unwrap_err();
        assert!(err.to_string().contains("more than 1000"), "{err}");
        let hexd = dict("<</Filter[/AHx]>>");
        assert_eq!(filters::decode(&hexd, b"41 42 4>", 10).unwrap(), b"AB@");
        assert!(filters::decode(&dict("<</Filter/LZWDecode>>"), b"", 10).is_err());
    }

    #[test]
    fn cross_reference_stream_rows_decode_by_their_widths() {
        // W [1 2 1], Index [10 2 20 1]: object 10 in use at 0x0102, 11 in object stream 5
        // index 3, 20 free.
        let data = vec![1, 1, 2, 0, 2, 0, 5, 3, 0, 0, 0, 0];
        let index = vec![(10, 2), (20, 1)];
        let e = |n| Section::stream_entry(&data, [1, 2, 1], &index, n);
        assert_eq!(e(10), Some(Entry::Offset(0x0102)));
        assert_eq!(
            e(11),
            Some(Entry::InStream {
                stream: 5,
                index: 3
            })
        );
        assert_eq!(e(20), Some(Entry::Free));
        assert_eq!(e(12), None);
        // A zero-width type field means type 1.
        assert_eq!(
            Section::stream_entry(&[0, 9, 0], [0, 2, 1], &[(0, 1)], 0),
            Some(Entry::Offset(9))
        );
        // Rows missing from short data are not invented.
        assert_eq!(Section::stream_entry(&[1], [1, 2, 1], &[(0, 5)], 3), None);
    }

    #[test]
    fn encryption_dictionaries_name_their_scheme() {
        let cases = [
            ("<</Filter/Standard/V 1/R 2>>", "pdf-standard-rc4-40", EncryptionStatus::Encrypted),
            ("<</Filter/Standard/V 2/R 3/Length 128>>", "pdf-standard-rc4-128", EncryptionStatus::Encrypted),
            (
                "<</Filter/Standard/V 4/R 4/CF<</StdCF<</CFM/AESV2/Length 16>>>>/StmF/StdCF/StrF/StdCF>>",
                "pdf-standard-aes-128",
                EncryptionStatus::Encrypted,
            ),
            (
                "<</Filter/Standard/V 4/R 4/CF<</StdCF<</CFM/V2/Length 16>>>>/StmF/StdCF/StrF/StdCF>>",
                "pdf-standard-rc4-128",
                EncryptionStatus::Encrypted,
            ),
            (
                "<</Filter/Standard/V 5/R 6/CF<</StdCF<</CFM/AESV3>>>>/StmF/StdCF/StrF/StdCF>>",
                "pdf-standard-aes-256",
                EncryptionStatus::Encrypted,
            ),
            (
                "<</Filter/Standard/V 4/R 4/CF<</StdCF<</CFM/AESV2>>>>/StmF/Identity/StrF/Identity/EFF/StdCF>>",
                "pdf-standard-aes-128",
                EncryptionStatus::Partial,
            ),
            (
                "<</Filter/Adobe.PubSec/SubFilter/adbe.pkcs7.s5/V 4/CF<</DefaultCryptFilter<</CFM/AESV2>>>>/StmF/DefaultCryptFilter>>",
                "pdf-pubsec",
                EncryptionStatus::Encrypted,
            ),
            ("<</Filter/MicrosoftIRMServices/V 2>>", "pdf-microsoft-irm", EncryptionStatus::Encrypted),
            ("<</Filter/FOPN_foweb/V 1>>", "pdf-custom-handler", EncryptionStatus::Encrypted),
            ("<</V 1>>", "pdf-encrypt", EncryptionStatus::Encrypted),
        ];
        for (src, scheme, status) in cases {
            let v = classify_encryption(&dict(src), None);
            assert_eq!(v.scheme.as_deref(), Some(scheme), "{src}");
            assert_eq!(v.status, status, "{src}");
        }
        let pubsec = classify_encryption(&dict(cases[6].0), None);
        assert!(pubsec.detail.unwrap().contains("adbe.pkcs7.s5"));
        // Without /O, /U and /ID the password question stays open, and the detail says so.
        let v = classify_encryption(&dict(cases[0].0), None);
        assert!(v.detail.unwrap().contains("unknown"));
    }

    #[test]
    fn xmp_labels_are_read_from_elements_and_attributes_in_any_namespace() {
        let g1 = "3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d";
        let g2 = "9a7c1f30-2b4d-4e8f-a1c2-5d6e7f809112";
        let t = "0b1c2d3e-0000-4000-8000-000000000001";
        let xml = format!(
            r#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:pdfx="http://ns.adobe.com/pdfx/1.3/">
<pdfx:MSIP_Label_{g1}_Enabled>true</pdfx:MSIP_Label_{g1}_Enabled>
<pdfx:MSIP_Label_{g1}_SiteId>{t}</pdfx:MSIP_Label_{g1}_SiteId>
<pdfx:MSIP_Label_{g1}_Name>R&amp;D &#x2013; secret</pdfx:MSIP_Label_{g1}_Name>
<pdfx:MSIP_Label_{g1}_Method><rdf:Alt><rdf:li xml:lang="x-default">Privileged</rdf:li></rdf:Alt></pdfx:MSIP_Label_{g1}_Method>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:o="urn:other" o:MSIP_Label_{g2}_Enabled="True" o:MSIP_Label_{g2}_SiteId="{t}"/>
</rdf:RDF></x:xmpmeta><?xpacket end="w"?>"#
        );
        let (labels, note) = xmp_labels(xml.as_bytes());
        assert_eq!(note, None);
        assert_eq!(labels.len(), 2, "{labels:#?}");
        let a = &labels[0];
        assert_eq!(a.source, LabelSource::PdfXmp);
        assert_eq!(a.id.as_deref(), Some(g1));
        assert_eq!(a.enabled, Some(true));
        assert_eq!(a.tenant.as_deref(), Some(t));
        assert_eq!(a.name.as_deref(), Some("R&D – secret"));
        assert_eq!(a.method.as_deref(), Some("Privileged"));
        assert_eq!(labels[1].id.as_deref(), Some(g2));
        assert_eq!(labels[1].enabled, Some(true));

        // Broken XML keeps what was read before the break, with a note.
        let cut = &xml[..xml.find("<rdf:Description rdf:about=\"\" xmlns:o").unwrap()];
        let broken = format!("{cut}</x:wrong>");
        let (labels, note) = xmp_labels(broken.as_bytes());
        assert_eq!(labels.len(), 1);
        assert!(note.is_some());
    }

    #[test]
    fn info_wins_over_xmp_for_the_same_label_and_fills_its_gaps() {
        let label = |source, id: &str, tenant: Option<&str>, name: Option<&str>| DetectedLabel {
            id: Some(id.into()),
            tenant: tenant.map(Into::into),
            name: name.map(Into::into),
            ..DetectedLabel::new(source)
        };
        let info = vec![label(LabelSource::PdfInfo, "a", None, Some("Info name"))];
        let xmp = vec![
            label(LabelSource::PdfXmp, "a", Some("t"), Some("XMP name")),
            label(LabelSource::PdfXmp, "b", Some("t"), None),
        ];
        let merged = merge_info_xmp(info, xmp);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].source, LabelSource::PdfInfo);
        assert_eq!(merged[0].name.as_deref(), Some("Info name"));
        assert_eq!(merged[0].tenant.as_deref(), Some("t"));
        assert_eq!(merged[1].source, LabelSource::PdfXmp);
    }

    /// A minimal PDF with a classic table; `entry_eol` is the two bytes ending each entry.
    fn tiny_pdf(extra_trailer: &str, entry_eol: &str) -> Vec<u8> {
        let objs = [
            "<</Type/Catalog/Pages 2 0 R>>",
            "<</Type/Pages/Kids[]/Count 0>>",
            "<</Title(t)>>",
        ];
        let mut out = b"%PDF-1.7\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in objs.iter().enumerate() {
            offsets.push(out.len());
            out.extend(format!("{} 0 obj\n{o}\nendobj\n", i + 1).bytes());
        }
        let xref = out.len();
        out.extend(format!("xref\n0 {}\n0000000000 65535 f{entry_eol}", objs.len() + 1).bytes());
        for o in offsets {
            out.extend(format!("{o:010} 00000 n{entry_eol}").bytes());
        }
        out.extend(
            format!(
                "trailer\n<</Size {}/Root 1 0 R/Info 3 0 R{extra_trailer}>>\nstartxref\n{xref}\n%%EOF\n",
                objs.len() + 1
            )
            .bytes(),
        );
        out
    }

    fn verdict(bytes: &[u8]) -> (EncryptionVerdict, Vec<String>) {
        let src = Bounded::from_bytes(bytes, 4 << 20);
        let ev = inspect_pdf(&src).unwrap();
        (ev.encryption.unwrap(), ev.notes)
    }

    #[test]
    fn tables_with_19_or_21_byte_entries_and_junk_around_still_read() {
        for eol in [" \n", "\n", " \r\n"] {
            let pdf = tiny_pdf("", eol);
            let (v, notes) = verdict(&pdf);
            assert_eq!(v.status, EncryptionStatus::Plaintext, "{eol:?} {notes:?}");
            assert!(notes.is_empty(), "{notes:?}");
        }
        // Junk after %%EOF beyond the first tail read, and junk before the header that shifts
        // every offset.
        let mut pdf = tiny_pdf("", " \n");
        pdf.extend(vec![b'x'; 10_000]);
        assert_eq!(verdict(&pdf).0.status, EncryptionStatus::Plaintext);
        let mut shifted = b"JUNK-JUNK\n".to_vec();
        shifted.extend(tiny_pdf("", " \n"));
        let (v, notes) = verdict(&shifted);
        assert_eq!(v.status, EncryptionStatus::Plaintext, "{notes:?}");
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn a_prev_loop_is_noticed_and_stops() {
        let base = tiny_pdf("", " \n");
        let xref = memrfind(&base, b"xref\n0").unwrap();
        let looped = tiny_pdf(&format!("/Prev {xref}"), " \n");
        let (v, notes) = verdict(&looped);
        assert_eq!(v.status, EncryptionStatus::Plaintext);
        assert!(notes.iter().any(|n| n.contains("loops")), "{notes:?}");
    }

    #[test]
    fn a_broken_cross_reference_falls_back_to_a_linear_scan() {
        let enc = tiny_pdf("/Encrypt<</Filter/Standard/V 2/R 3/Length 128>>", " \n");
        let broken: Vec<u8> = String::from_utf8(enc)
            .unwrap()
            .replace("startxref\n", "startxref\n9")
            .into_bytes();
        let (v, notes) = verdict(&broken);
        assert_eq!(v.status, EncryptionStatus::Encrypted);
        assert_eq!(v.scheme.as_deref(), Some("pdf-standard-rc4-128"));
        assert!(v.detail.unwrap().contains("linear scan"));
        assert!(notes.iter().any(|n| n.contains("linear scan")), "{notes:?}");

        // Nothing found: the file is reported malformed, not guessed plaintext.
        let plain = String::from_utf8(tiny_pdf("", " \n"))
            .unwrap()
            .replace("startxref\n", "startxref\n9")
            .into_bytes();
        let err = inspect_pdf(&Bounded::from_bytes(&plain, 1 << 20)).unwrap_err();
        assert!(err.to_string().contains("malformed"), "{err}");

        let payload = [
            plain.as_slice(),
            b"9 0 obj <</EP<</Type/EncryptedPayload>>>> endobj",
        ]
        .concat();
        let (v, _) = verdict(&payload);
        assert_eq!(v.status, EncryptionStatus::Encrypted);
        assert_eq!(v.scheme.as_deref(), Some("pdf-encrypted-payload"));
    }

    /// Objects at computed offsets and a classic table listing `listed` of them, then
    /// `trailer`; `{N}` in a body or the trailer is replaced by the offset of object N.
    fn build(objects: &[(u32, &str)], listed: &[u32], trailer: &str) -> Vec<u8> {
        let mut out = b"%PDF-1.5\n".to_vec();
        let mut offsets = std::collections::BTreeMap::new();
        for (num, body) in objects {
            offsets.insert(*num, out.len());
            out.extend(format!("{num} 0 obj\n{body}\nendobj\n").bytes());
        }
        let fill = |t: &str| {
            let mut t = t.to_string();
            for (n, o) in &offsets {
                t = t.replace(&format!("{{{n}}}"), &o.to_string());
            }
            t
        };
        let xref = out.len();
        out.extend(b"xref\n0 1\n0000000000 65535 f \n");
        for n in listed {
            out.extend(format!("{n} 1\n{:010} 00000 n \n", offsets[n]).bytes());
        }
        out.extend(format!("trailer\n{}\nstartxref\n{xref}\n%%EOF\n", fill(trailer)).bytes());
        out
    }

    #[test]
    fn hybrid_files_consult_their_xrefstm_before_prev() {
        let g = "3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d";
        let info = format!("<</MSIP_Label_{g}_Enabled(true)>>");
        let objstm = format!(
            "<</Type/ObjStm/N 1/First 4/Length {}>>stream\n3 0 {info}\nendstream",
            info.len() + 4
        );
        // The cross-reference stream lists object 3 in object stream 4, index 0.
        let xrefstm =
            "<</Type/XRef/W[1 1 1]/Size 6/Index[3 1]/Length 3>>stream\n\x02\x04\x00\nendstream";
        let pdf = build(
            &[
                (1, "<</Type/Catalog/Pages 2 0 R>>"),
                (2, "<</Type/Pages/Kids[]/Count 0>>"),
                (4, &objstm),
                (5, xrefstm),
            ],
            &[1, 2, 4],
            "<</Size 6/Root 1 0 R/Info 3 0 R/XRefStm {5}>>",
        );
        let src = Bounded::from_bytes(&pdf, 1 << 20);
        let ev = inspect_pdf(&src).unwrap();
        assert!(ev.notes.is_empty(), "{:?}", ev.notes);
        assert_eq!(ev.encryption.unwrap().status, EncryptionStatus::Plaintext);
        assert_eq!(ev.labels.len(), 1);
        assert_eq!(ev.labels[0].id.as_deref(), Some(g));
        assert_eq!(ev.labels[0].source, LabelSource::PdfInfo);
    }

    #[test]
    fn an_unreadable_af_array_rules_nothing_out() {
        // /AF names object 9, listed at an offset that holds object 2.
        let pdf = build(
            &[
                (1, "<</Type/Catalog/Pages 2 0 R/AF 9 0 R>>"),
                (2, "<</Type/Pages/Kids[]/Count 0>>"),
            ],
            &[1, 2],
            "<</Size 3/Root 1 0 R>>",
        );
        let broken = String::from_utf8(pdf)
            .unwrap()
            .replacen("2 1\n", "9 1\n", 1)
            .into_bytes();
        let (v, notes) = verdict(&broken);
        assert_eq!(v.status, EncryptionStatus::Unknown, "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("/AF")), "{notes:?}");
    }

    #[test]
    fn an_irm_v1_wrapper_trailer_counts_as_an_encrypted_payload() {
        // Microsoft's first protected-PDF format: a plain cover document whose trailer carries
        // /Wrapper (Type = the cryptographic filter) with the encrypted document appended.
        let pdf = tiny_pdf(
            "/Wrapper<</Type(MicrosoftIRMServices)/Version 1/WrapperOffset 512>>",
            " \n",
        );
        let (v, notes) = verdict(&pdf);
        assert_eq!(v.status, EncryptionStatus::Encrypted, "{notes:?}");
        assert_eq!(v.scheme.as_deref(), Some("pdf-encrypted-payload"));
        let detail = v.detail.unwrap();
        assert!(
            detail.contains("IRM v1") && detail.contains("MicrosoftIRMServices"),
            "{detail}"
        );
        assert_eq!(
            verdict(&tiny_pdf("", " \n")).0.status,
            EncryptionStatus::Plaintext
        );
    }

    #[test]
    fn garbage_never_panics() {
        for junk in [
            &b""[..],
            b"%PDF-1.7",
            b"%PDF-1.7\nstartxref\n0\n%%EOF",
            b"%PDF-1.7\nstartxref\n99999999999999999999\n%%EOF",
            b"%PDF-1.7\nxref\n0 4294967295\nstartxref\n9\n%%EOF",
            b"%PDF-1.7\n1 0 obj<</Type/XRef/W[1 9 1]/Size 1>>stream\nendstream\nstartxref\n9\n%%EOF",
        ] {
            let src = Bounded::from_bytes(junk, 1 << 20);
            let _ = inspect_pdf(&src);
        }
    }
}

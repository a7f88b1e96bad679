//! 7z, RAR 5 and RAR 4 archives: encryption of the archive, its headers and its entries.
//!
//! All three formats describe their content in headers that can be read without touching the
//! packed data. A 7z archive keeps one header at its end that lists the folders (coder chains) of
//! the packed streams; that header is usually LZMA-compressed (`kEncodedHeader`) and, with
//! `-mhe=on`, AES-encrypted. RAR archives are a chain of blocks, each with its own header, whose
//! data areas are skipped by their declared size. The verdict counts the units that hold data
//! (7z folders, RAR files) and how many of them are encrypted.
//!
//! Sources: 7-Zip's `DOC/7zFormat.txt` and `DOC/Methods.txt` (reading order as in `7zIn.cpp`),
//! rarlab's "RAR 5.0 archive format" and the RAR 1.5–4.x technical note (`technote.txt`).

use std::io::{self, Read, Write};

use infoledger_policies::{EncryptionStatus, EncryptionVerdict};

use super::source::le;
use super::{Bounded, Evidence, InspectError};

/// CRC-32 (IEEE) as used by 7z and RAR headers.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

/// Why a walk stopped early: a real error, or a structure this inspector does not judge.
#[derive(Debug)]
enum Stop {
    Error(InspectError),
    Unsupported(String),
}

impl From<InspectError> for Stop {
    fn from(e: InspectError) -> Self {
        Stop::Error(e)
    }
}

fn malformed(what: impl Into<String>) -> Stop {
    Stop::Error(InspectError::malformed(what))
}

/// Units that hold data (7z folders, RAR files) and how many of them are encrypted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    units: u64,
    encrypted: u64,
}

impl Tally {
    fn add(&mut self, encrypted: bool) {
        self.units = self.units.saturating_add(1);
        if encrypted {
            self.encrypted = self.encrypted.saturating_add(1);
        }
    }

    fn is_mixed(self) -> bool {
        self.encrypted > 0 && self.encrypted < self.units
    }

    /// The verdict for a completely read archive: `encrypted_scheme` names the cipher when any
    /// unit is encrypted, `plain_scheme` the format otherwise.
    fn verdict(self, noun: &str, encrypted_scheme: &str, plain_scheme: &str) -> EncryptionVerdict {
        if self.units == 0 {
            return EncryptionVerdict::new(EncryptionStatus::Plaintext, plain_scheme)
                .with_detail("no stored data");
        }
        if self.encrypted == 0 {
            return EncryptionVerdict::new(EncryptionStatus::Plaintext, plain_scheme);
        }
        if self.encrypted == self.units {
            return EncryptionVerdict::new(EncryptionStatus::Encrypted, encrypted_scheme)
                .with_detail(format!(
                    "{} encrypted, file names visible",
                    plural(self.units, noun)
                ));
        }
        EncryptionVerdict::new(EncryptionStatus::Partial, encrypted_scheme).with_detail(format!(
            "{} of {} encrypted",
            self.encrypted,
            plural(self.units, noun)
        ))
    }

    /// The verdict for an archive whose walk stopped before its end (`why`): a mix already seen
    /// is certain; anything else could change with the entries not read, so it stays `unknown`.
    fn verdict_incomplete(
        self,
        noun: &str,
        encrypted_scheme: &str,
        plain_scheme: &str,
        why: &str,
    ) -> EncryptionVerdict {
        if self.is_mixed() {
            let v = self.verdict(noun, encrypted_scheme, plain_scheme);
            let detail = v.detail.clone().unwrap_or_default();
            return v.with_detail(format!("{detail} before the walk stopped ({why})"));
        }
        let seen = if self.units == 0 {
            "none read".to_string()
        } else if self.encrypted == 0 {
            format!("the first {} plain", plural(self.units, noun))
        } else {
            format!("the first {} encrypted", plural(self.units, noun))
        };
        EncryptionVerdict::new(EncryptionStatus::Unknown, plain_scheme)
            .with_detail(format!("walk stopped ({why}); {seen}"))
    }
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn evidence(verdict: EncryptionVerdict, notes: Vec<String>) -> Evidence {
    Evidence {
        encryption: Some(verdict),
        notes,
        ..Evidence::default()
    }
}

/// Turns a walk's outcome into evidence. Unsupported structures become `unknown` with a note; an
/// error after earlier notes (a CRC mismatch explains a later parse error) keeps those notes.
fn finish(
    result: Result<EncryptionVerdict, Stop>,
    mut notes: Vec<String>,
    scheme: &str,
) -> Result<Evidence, InspectError> {
    match result {
        Ok(verdict) => Ok(evidence(verdict, notes)),
        Err(Stop::Unsupported(why)) => {
            notes.push(why.clone());
            let verdict =
                EncryptionVerdict::new(EncryptionStatus::Unknown, scheme).with_detail(why);
            Ok(evidence(verdict, notes))
        }
        Err(Stop::Error(e)) if notes.is_empty() => Err(e),
        Err(Stop::Error(e)) => {
            notes.push(e.to_string());
            Ok(evidence(
                EncryptionVerdict::new(EncryptionStatus::Unknown, scheme),
                notes,
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 7z
// ---------------------------------------------------------------------------------------------

const SEVENZ_SIGNATURE: &[u8] = b"7z\xBC\xAF\x27\x1C";
/// Signature header: signature, version, start header CRC, next header offset/size/CRC.
const SEVENZ_SIGNATURE_HEADER_LEN: u64 = 32;
/// The most bytes of a stored (uncompressed) header that are read. The folder list comes before
/// the file list, so a prefix of a huge header usually still decides the verdict.
const SEVENZ_MAX_RAW_HEADER: u64 = 2 * 1024 * 1024;
/// The most bytes of a packed (compressed) header that are read.
const SEVENZ_MAX_PACKED_HEADER: u64 = 2 * 1024 * 1024;
/// The most bytes a packed header may decompress to.
const SEVENZ_MAX_DECODED_HEADER: u64 = 4 * 1024 * 1024;
/// Real headers compress maybe 10–50×; beyond this ratio (plus slack for tiny headers) the
/// declared size is a bomb or garbage, not a header.
const SEVENZ_MAX_RATIO: u64 = 1000;
const SEVENZ_RATIO_SLACK: u64 = 64 * 1024;
/// 7-Zip's own limits on coders per folder and streams per coder.
const SEVENZ_MAX_CODERS: u64 = 64;
const SEVENZ_MAX_CODER_STREAMS: u64 = 64;
/// Bound on the sized attributes skipped in one property list.
const SEVENZ_MAX_PROPERTIES: usize = 1024;

/// Property ids of 7zFormat.txt.
mod nid {
    pub(super) const END: u64 = 0x00;
    pub(super) const HEADER: u64 = 0x01;
    pub(super) const ARCHIVE_PROPERTIES: u64 = 0x02;
    pub(super) const ADDITIONAL_STREAMS_INFO: u64 = 0x03;
    pub(super) const MAIN_STREAMS_INFO: u64 = 0x04;
    pub(super) const FILES_INFO: u64 = 0x05;
    pub(super) const PACK_INFO: u64 = 0x06;
    pub(super) const UNPACK_INFO: u64 = 0x07;
    pub(super) const SUBSTREAMS_INFO: u64 = 0x08;
    pub(super) const SIZE: u64 = 0x09;
    pub(super) const CRC: u64 = 0x0A;
    pub(super) const FOLDER: u64 = 0x0B;
    pub(super) const CODERS_UNPACK_SIZE: u64 = 0x0C;
    pub(super) const NUM_UNPACK_STREAM: u64 = 0x0D;
    pub(super) const ENCODED_HEADER: u64 = 0x17;
}

/// Coder ids of Methods.txt.
const CODER_COPY: &[u8] = &[0x00];
const CODER_LZMA: &[u8] = &[0x03, 0x01, 0x01];
const CODER_LZMA2: &[u8] = &[0x21];
const CODER_DEFLATE: &[u8] = &[0x04, 0x01, 0x08];
const CODER_7Z_AES: &[u8] = &[0x06, 0xF1, 0x07, 0x01];
/// Every coder id in the `06` range is a cipher ("Crypto" in Methods.txt).
const CODER_CRYPTO_PREFIX: u8 = 0x06;

/// A cursor over a 7z header that fails instead of reading past its end.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn byte(&mut self) -> Result<u8, InspectError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(InspectError::Truncated("7z header"))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], InspectError> {
        let len = usize::try_from(len).map_err(|_| InspectError::Truncated("7z header"))?;
        let end = self
            .pos
            .checked_add(len)
            .ok_or(InspectError::Truncated("7z header"))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(InspectError::Truncated("7z header"))?;
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, InspectError> {
        le::u32(self.take(4)?, 0)
    }

    /// A 7z `UINT64`: the count of leading one bits in the first byte is the number of extra
    /// little-endian bytes; the first byte's remaining low bits are the value's high part.
    fn number(&mut self) -> Result<u64, InspectError> {
        let first = self.byte()?;
        let mut mask = 0x80u8;
        let mut value = 0u64;
        for i in 0..8u32 {
            if first & mask == 0 {
                let high = u64::from(first & mask.wrapping_sub(1));
                return Ok(value | (high << (8 * i)));
            }
            value |= u64::from(self.byte()?) << (8 * i);
            mask >>= 1;
        }
        Ok(value)
    }

    /// A number used as an item count, refused when the rest of the header cannot hold that many
    /// items of at least `min_item_bytes` bytes each (so no loop or allocation follows a lie).
    fn count(&mut self, min_item_bytes: usize, what: &str) -> Result<usize, Stop> {
        let n = self.number()?;
        let limit = self.remaining() / min_item_bytes.max(1);
        match usize::try_from(n) {
            Ok(n) if n <= limit => Ok(n),
            _ => Err(malformed(format!("7z {what} count {n}"))),
        }
    }

    /// Skips an attribute whose size precedes it (the format's rule for ids a reader does not know).
    fn skip_data(&mut self) -> Result<(), InspectError> {
        let size = self.number()?;
        self.take(size).map(|_| ())
    }

    /// Skips sized attributes until `id`; `kEnd` first is an error (7-Zip's `WaitId`).
    fn wait_id(&mut self, id: u64, what: &str) -> Result<(), Stop> {
        for _ in 0..SEVENZ_MAX_PROPERTIES {
            let t = self.number()?;
            if t == id {
                return Ok(());
            }
            if t == nid::END {
                return Err(malformed(format!("7z {what}: missing property {id:#x}")));
            }
            self.skip_data()?;
        }
        Err(malformed(format!("7z {what}: too many properties")))
    }

    /// A bit vector of `n` bits, most significant bit first.
    fn bits(&mut self, n: usize) -> Result<Vec<bool>, InspectError> {
        let bytes = self.take(n.div_ceil(8) as u64)?;
        Ok((0..n)
            .map(|i| bytes.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0))
            .collect())
    }

    /// `n` digests (CRCs), `None` where undefined. `n` must already be bounded by the caller.
    fn digests(&mut self, n: usize) -> Result<Vec<Option<u32>>, InspectError> {
        let all_defined = self.byte()? != 0;
        let defined = if all_defined {
            vec![true; n]
        } else {
            self.bits(n)?
        };
        defined
            .into_iter()
            .map(|d| if d { self.u32().map(Some) } else { Ok(None) })
            .collect()
    }

    /// Skips `n` digests without allocating per digest (`n` may be large for sub-streams).
    fn skip_digests(&mut self, n: u64) -> Result<(), InspectError> {
        let all_defined = self.byte()? != 0;
        let defined = if all_defined {
            n
        } else {
            let bytes = self.take(n.div_ceil(8))?;
            let full = usize::try_from(n / 8).unwrap_or(usize::MAX);
            let mut count: u64 = bytes
                .iter()
                .take(full)
                .map(|b| u64::from(b.count_ones()))
                .sum();
            let rest = (n % 8) as u32;
            if let Some(last) = bytes.get(full).filter(|_| rest > 0) {
                count += u64::from((last >> (8 - rest)).count_ones());
            }
            count
        };
        self.take(defined.saturating_mul(4)).map(|_| ())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Coder {
    id: Vec<u8>,
    props: Vec<u8>,
}

impl Coder {
    fn is_crypto(&self) -> bool {
        self.id.first() == Some(&CODER_CRYPTO_PREFIX)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Folder {
    coders: Vec<Coder>,
    /// Number of coder output streams; one unpack size is stored for each.
    out_streams: usize,
    /// The output stream not bound to another coder's input: the folder's result.
    main_out: usize,
    unpack_sizes: Vec<u64>,
    crc: Option<u32>,
}

impl Folder {
    fn is_encrypted(&self) -> bool {
        self.coders.iter().any(Coder::is_crypto)
    }

    fn has_aes(&self) -> bool {
        self.coders.iter().any(|c| c.id == CODER_7Z_AES)
    }

    fn unpack_size(&self) -> Option<u64> {
        self.unpack_sizes.get(self.main_out).copied()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct StreamsInfo {
    pack_pos: u64,
    pack_sizes: Vec<u64>,
    folders: Vec<Folder>,
}

fn read_folder(c: &mut Cursor<'_>) -> Result<Folder, Stop> {
    let num_coders = c.number()?;
    if num_coders == 0 || num_coders > SEVENZ_MAX_CODERS {
        return Err(malformed(format!("7z folder with {num_coders} coders")));
    }
    let mut coders = Vec::new();
    let (mut total_in, mut total_out) = (0u64, 0u64);
    for _ in 0..num_coders {
        let flags = c.byte()?;
        if flags & 0x80 != 0 {
            // "There are more alternative methods": reserved, never written by 7-Zip.
            return Err(Stop::Unsupported(
                "7z coder with alternative methods is not supported".into(),
            ));
        }
        let id = c.take(u64::from(flags & 0x0F))?.to_vec();
        let (ins, outs) = if flags & 0x10 != 0 {
            (c.number()?, c.number()?)
        } else {
            (1, 1)
        };
        if ins > SEVENZ_MAX_CODER_STREAMS || outs == 0 || outs > SEVENZ_MAX_CODER_STREAMS {
            return Err(malformed(format!(
                "7z coder with {ins} in and {outs} out streams"
            )));
        }
        let props = if flags & 0x20 != 0 {
            let n = c.number()?;
            c.take(n)?.to_vec()
        } else {
            Vec::new()
        };
        total_in += ins;
        total_out += outs;
        coders.push(Coder { id, props });
    }
    // Bounded by 64 coders × 64 streams, so these loops and vectors are small.
    let bind_pairs = total_out - 1;
    let mut bound_out = vec![false; usize::try_from(total_out).unwrap_or(0)];
    for _ in 0..bind_pairs {
        let in_index = c.number()?;
        let out_index = c.number()?;
        if in_index >= total_in {
            return Err(malformed("7z bind pair in-index out of range"));
        }
        let slot = usize::try_from(out_index)
            .ok()
            .and_then(|i| bound_out.get_mut(i))
            .ok_or_else(|| malformed("7z bind pair out-index out of range"))?;
        *slot = true;
    }
    let packed = total_in
        .checked_sub(bind_pairs)
        .filter(|&p| p > 0)
        .ok_or_else(|| malformed("7z folder without packed streams"))?;
    if packed > 1 {
        for _ in 0..packed {
            c.number()?;
        }
    }
    let main_out = bound_out
        .iter()
        .position(|b| !b)
        .ok_or_else(|| malformed("7z folder without a main output stream"))?;
    Ok(Folder {
        coders,
        out_streams: bound_out.len(),
        main_out,
        unpack_sizes: Vec::new(),
        crc: None,
    })
}

/// `PackInfo` after its `kPackInfo` id and `PackPos`: the sizes of the packed streams.
fn read_pack_info(c: &mut Cursor<'_>) -> Result<Vec<u64>, Stop> {
    let n = c.count(1, "pack stream")?;
    c.wait_id(nid::SIZE, "pack info")?;
    let sizes = (0..n).map(|_| c.number()).collect::<Result<Vec<_>, _>>()?;
    for _ in 0..SEVENZ_MAX_PROPERTIES {
        match c.number()? {
            nid::END => return Ok(sizes),
            nid::CRC => c.skip_digests(n as u64)?,
            _ => c.skip_data()?,
        }
    }
    Err(malformed("7z pack info: too many properties"))
}

/// `CodersInfo` after its `kUnPackInfo` id: the folders with their unpack sizes and CRCs.
fn read_unpack_info(c: &mut Cursor<'_>) -> Result<Vec<Folder>, Stop> {
    c.wait_id(nid::FOLDER, "unpack info")?;
    // A folder takes at least two bytes (coder count and coder flags).
    let n = c.count(2, "folder")?;
    if c.byte()? != 0 {
        return Err(Stop::Unsupported(
            "7z folder list stored outside the header is not supported".into(),
        ));
    }
    let mut folders = (0..n)
        .map(|_| read_folder(c))
        .collect::<Result<Vec<_>, _>>()?;
    c.wait_id(nid::CODERS_UNPACK_SIZE, "unpack info")?;
    for folder in &mut folders {
        for _ in 0..folder.out_streams {
            folder.unpack_sizes.push(c.number()?);
        }
    }
    for _ in 0..SEVENZ_MAX_PROPERTIES {
        match c.number()? {
            nid::END => return Ok(folders),
            nid::CRC => {
                for (folder, crc) in folders.iter_mut().zip(c.digests(n)?) {
                    folder.crc = crc;
                }
            }
            _ => c.skip_data()?,
        }
    }
    Err(malformed("7z unpack info: too many properties"))
}

/// `SubStreamsInfo` after its id: how folders split into files. Read only to get past it.
fn skip_substreams_info(c: &mut Cursor<'_>, folders: &[Folder]) -> Result<(), Stop> {
    let mut streams = vec![1u64; folders.len()];
    let mut id = nid::END;
    for _ in 0..SEVENZ_MAX_PROPERTIES {
        id = c.number()?;
        if id == nid::NUM_UNPACK_STREAM {
            for s in &mut streams {
                *s = c.number()?;
            }
            continue;
        }
        if id == nid::CRC || id == nid::SIZE || id == nid::END {
            break;
        }
        c.skip_data()?;
    }
    // Every sub-stream beyond a folder's first has a size of at least one byte, so the header
    // bounds their number; refuse counts it cannot hold before looping over them.
    let total = streams.iter().try_fold(0u64, |acc, &s| acc.checked_add(s));
    let extra_limit = (c.remaining() as u64).saturating_add(folders.len() as u64);
    let total = total
        .filter(|&t| t <= extra_limit.saturating_mul(8))
        .ok_or_else(|| malformed("7z sub-stream count"))?;
    if id == nid::SIZE {
        for &s in &streams {
            for _ in 1..s {
                c.number()?;
            }
        }
        id = c.number()?;
    }
    let digests = folders
        .iter()
        .zip(&streams)
        .filter(|(f, &s)| s != 1 || f.crc.is_none())
        .map(|(_, &s)| s)
        .sum::<u64>()
        .min(total);
    for _ in 0..SEVENZ_MAX_PROPERTIES {
        match id {
            nid::END => return Ok(()),
            nid::CRC => c.skip_digests(digests)?,
            _ => c.skip_data()?,
        }
        id = c.number()?;
    }
    Err(malformed("7z sub-streams info: too many properties"))
}

/// `StreamsInfo` (after its id): pack info, folders, sub-streams, `kEnd`.
fn read_streams_info(c: &mut Cursor<'_>) -> Result<StreamsInfo, Stop> {
    let mut info = StreamsInfo::default();
    let mut id = c.number()?;
    if id == nid::PACK_INFO {
        info.pack_pos = c.number()?;
        info.pack_sizes = read_pack_info(c)?;
        id = c.number()?;
    }
    if id == nid::UNPACK_INFO {
        info.folders = read_unpack_info(c)?;
        id = c.number()?;
    }
    if id == nid::SUBSTREAMS_INFO {
        skip_substreams_info(c, &info.folders)?;
        id = c.number()?;
    }
    if id != nid::END {
        return Err(malformed(format!(
            "7z streams info: unexpected property {id:#x}"
        )));
    }
    Ok(info)
}

/// `FilesInfo` after its id. Every file property carries its size (names, times, attributes,
/// `kDummy` padding, ids added later), so all are skipped; only the structure is checked.
fn skip_files_info(c: &mut Cursor<'_>) -> Result<(), Stop> {
    c.number()?;
    for _ in 0..SEVENZ_MAX_PROPERTIES {
        if c.number()? == nid::END {
            return Ok(());
        }
        c.skip_data()?;
    }
    Err(malformed("7z files info: too many properties"))
}

/// What a `Header` (after its `kHeader` id) says: the main streams, plus a problem met inside
/// the file list after them, which does not change the verdict.
fn read_header(c: &mut Cursor<'_>) -> Result<(Option<StreamsInfo>, Option<Stop>), Stop> {
    let mut id = c.number()?;
    if id == nid::ARCHIVE_PROPERTIES {
        skip_archive_properties(c)?;
        id = c.number()?;
    }
    if id == nid::ADDITIONAL_STREAMS_INFO {
        // Streams referenced by external folder lists; none of this reader's business.
        read_streams_info(c)?;
        id = c.number()?;
    }
    let main = if id == nid::MAIN_STREAMS_INFO {
        let info = read_streams_info(c)?;
        id = c.number()?;
        Some(info)
    } else {
        None
    };
    // The top level has no sizes: an id out of place means a layout this reader does not know,
    // which could hide folders, so it is fatal.
    if id != nid::FILES_INFO && id != nid::END {
        return Err(malformed(format!("7z header: unexpected property {id:#x}")));
    }
    if id == nid::FILES_INFO {
        let files = skip_files_info(c).and_then(|()| match c.number()? {
            nid::END => Ok(()),
            other => Err(malformed(format!(
                "7z header: unexpected property {other:#x} after the file list"
            ))),
        });
        return Ok((main, files.err()));
    }
    Ok((main, None))
}

fn skip_archive_properties(c: &mut Cursor<'_>) -> Result<(), Stop> {
    for _ in 0..SEVENZ_MAX_PROPERTIES {
        if c.number()? == nid::END {
            return Ok(());
        }
        c.skip_data()?;
    }
    Err(malformed("7z archive properties: too many properties"))
}

/// A `Write` sink that refuses to grow beyond `cap` bytes.
struct CappedSink {
    buf: Vec<u8>,
    cap: usize,
}

impl Write for CappedSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.cap.saturating_sub(self.buf.len());
        if room == 0 && !data.is_empty() {
            return Err(io::Error::other("output cap reached"));
        }
        let n = room.min(data.len());
        self.buf
            .extend_from_slice(data.get(..n).unwrap_or_default());
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sums the unpacked sizes of an LZMA2 stream's chunks (a cheap walk of the chunk headers), so
/// that the decoder, which keeps all output in memory, only runs on streams of known size.
fn lzma2_unpacked_size(packed: &[u8]) -> Result<u64, Stop> {
    let mut pos = 0usize;
    let mut total = 0u64;
    // Every chunk takes at least three bytes, so this bound is never the one that ends a
    // well-formed stream.
    for _ in 0..=packed.len() / 3 + 1 {
        let status = *packed
            .get(pos)
            .ok_or_else(|| malformed("7z lzma2 header stream: missing end marker"))?;
        let be16 = |at: usize| -> Result<u64, Stop> {
            match packed.get(at..at.saturating_add(2)) {
                Some([hi, lo]) => Ok((u64::from(*hi) << 8) | u64::from(*lo)),
                _ => Err(malformed("7z lzma2 header stream: truncated chunk")),
            }
        };
        let (unpacked, header, data) = match status {
            0x00 => return Ok(total),
            0x01 | 0x02 => {
                let n = be16(pos + 1)? + 1;
                (n, 3, n)
            }
            0x80..=0xFF => {
                let unpacked = ((u64::from(status & 0x1F) << 16) | be16(pos + 1)?) + 1;
                let packed_len = be16(pos + 3)? + 1;
                let props = if (status >> 5) & 0x03 >= 2 { 1 } else { 0 };
                (unpacked, 5 + props, packed_len)
            }
            _ => return Err(malformed("7z lzma2 header stream: bad chunk status")),
        };
        total = total.saturating_add(unpacked);
        pos = usize::try_from(data)
            .ok()
            .and_then(|d| pos.checked_add(header)?.checked_add(d))
            .filter(|&p| p <= packed.len())
            .ok_or_else(|| malformed("7z lzma2 header stream: truncated chunk"))?;
    }
    Err(malformed("7z lzma2 header stream: too many chunks"))
}

/// Decodes a packed header stream with a single coder into exactly `size` bytes, where `size`
/// was already checked against the cap and the compression ratio.
fn decode_header_stream(coder: &Coder, packed: &[u8], size: u64) -> Result<Vec<u8>, Stop> {
    let want = usize::try_from(size).map_err(|_| malformed("7z header size"))?;
    let mut sink = CappedSink {
        buf: Vec::new(),
        cap: want,
    };
    match coder.id.as_slice() {
        CODER_COPY => {
            sink.buf = packed.get(..want).unwrap_or(packed).to_vec();
        }
        CODER_LZMA => {
            // 7z stores LZMA's five property bytes (lc/lp/pb, dictionary size) as the coder's
            // properties and no size field; the size comes from the folder instead.
            if coder.props.len() != 5 {
                return Err(malformed("7z lzma coder properties"));
            }
            let options = lzma_rs::decompress::Options {
                unpacked_size: lzma_rs::decompress::UnpackedSize::UseProvided(Some(size)),
                // The dictionary buffer never needs to exceed the output it holds.
                memlimit: Some(want.max(1)),
                allow_incomplete: false,
            };
            let mut input = coder.props.as_slice().chain(packed);
            lzma_rs::lzma_decompress_with_options(&mut input, &mut sink, &options)
                .map_err(|e| malformed(format!("7z lzma header stream: {e}")))?;
        }
        CODER_LZMA2 => {
            if lzma2_unpacked_size(packed)? > size {
                return Err(malformed("7z lzma2 header stream larger than declared"));
            }
            let mut input = packed;
            lzma_rs::lzma2_decompress(&mut input, &mut sink)
                .map_err(|e| malformed(format!("7z lzma2 header stream: {e}")))?;
        }
        CODER_DEFLATE => {
            flate2::read::DeflateDecoder::new(packed)
                .take(size)
                .read_to_end(&mut sink.buf)
                .map_err(|e| malformed(format!("7z deflate header stream: {e}")))?;
        }
        id => {
            return Err(Stop::Unsupported(format!(
                "7z header coder {} is not supported",
                hex(id)
            )))
        }
    }
    if sink.buf.len() != want {
        return Err(malformed(format!(
            "7z header stream of {} bytes, {want} declared",
            sink.buf.len()
        )));
    }
    Ok(sink.buf)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads and decodes the header that a `kEncodedHeader` describes.
fn decode_encoded_header(
    src: &Bounded<'_>,
    streams: &StreamsInfo,
    notes: &mut Vec<String>,
) -> Result<Vec<u8>, Stop> {
    let [folder] = streams.folders.as_slice() else {
        return Err(Stop::Unsupported(format!(
            "7z encoded header with {} folders is not supported",
            streams.folders.len()
        )));
    };
    let [coder] = folder.coders.as_slice() else {
        return Err(Stop::Unsupported(format!(
            "7z header coder chain of {} coders is not supported",
            folder.coders.len()
        )));
    };
    let packed_size = *streams
        .pack_sizes
        .first()
        .ok_or_else(|| malformed("7z encoded header without a packed stream"))?;
    let size = folder
        .unpack_size()
        .ok_or_else(|| malformed("7z encoded header without an unpack size"))?;
    if packed_size > SEVENZ_MAX_PACKED_HEADER {
        return Err(Stop::Unsupported(format!(
            "7z packed header of {packed_size} bytes exceeds the {SEVENZ_MAX_PACKED_HEADER}-byte cap"
        )));
    }
    if size > SEVENZ_MAX_DECODED_HEADER {
        return Err(Stop::Unsupported(format!(
            "7z header of {size} bytes exceeds the {SEVENZ_MAX_DECODED_HEADER}-byte cap"
        )));
    }
    if size > packed_size.saturating_mul(SEVENZ_MAX_RATIO) + SEVENZ_RATIO_SLACK {
        return Err(malformed(format!(
            "7z header claims {size} bytes from {packed_size} packed bytes"
        )));
    }
    let offset = SEVENZ_SIGNATURE_HEADER_LEN
        .checked_add(streams.pack_pos)
        .ok_or(InspectError::Truncated("7z packed header"))?;
    // Bounded by the cap above.
    let packed = src.read_exact(offset, packed_size as usize, "7z packed header")?;
    let header = decode_header_stream(coder, &packed, size)?;
    if folder.crc.is_some_and(|crc| crc != crc32(&header)) {
        notes.push("7z decoded header crc mismatch".into());
    }
    Ok(header)
}

/// The verdict from a header (`Header` with its `kHeader` id); `complete` is false when only a
/// capped prefix of it was read.
fn judge_header(
    header: &[u8],
    complete: bool,
    notes: &mut Vec<String>,
) -> Result<EncryptionVerdict, Stop> {
    let mut c = Cursor::new(header);
    if c.number()? != nid::HEADER {
        return Err(malformed("7z header: missing kHeader"));
    }
    let (main, rest) = match read_header(&mut c) {
        Ok(parsed) => parsed,
        Err(Stop::Error(InspectError::Truncated(_))) if !complete => {
            return Err(Stop::Unsupported(format!(
                "7z header exceeds the {SEVENZ_MAX_RAW_HEADER}-byte cap before its folder list ends"
            )))
        }
        Err(e) => return Err(e),
    };
    match rest {
        None => {}
        Some(_) if !complete => notes.push(format!(
            "7z file list beyond the {SEVENZ_MAX_RAW_HEADER}-byte header cap not read"
        )),
        Some(Stop::Error(e)) => notes.push(e.to_string()),
        Some(Stop::Unsupported(why)) => notes.push(why),
    }
    let folders = main.map(|m| m.folders).unwrap_or_default();
    let mut tally = Tally::default();
    for folder in &folders {
        tally.add(folder.is_encrypted());
    }
    let scheme = if folders.iter().any(Folder::has_aes) {
        "7z-aes"
    } else {
        "7z-crypto"
    };
    Ok(tally.verdict("folder", scheme, "7z"))
}

fn sevenz(src: &Bounded<'_>, notes: &mut Vec<String>) -> Result<EncryptionVerdict, Stop> {
    let sig = src.read_exact(
        0,
        SEVENZ_SIGNATURE_HEADER_LEN as usize,
        "7z signature header",
    )?;
    if sig.get(..6) != Some(SEVENZ_SIGNATURE) {
        return Err(malformed("7z signature"));
    }
    // Every 7z archive so far has major version 0; a new major version may mean a new layout.
    if sig.get(6) != Some(&0) {
        return Err(Stop::Unsupported(format!(
            "7z format version {}.{} is not supported",
            sig.get(6).copied().unwrap_or(0),
            sig.get(7).copied().unwrap_or(0)
        )));
    }
    let start_crc_ok = Some(crc32(sig.get(12..32).unwrap_or_default())) == le::u32(&sig, 8).ok();
    if !start_crc_ok {
        notes.push("7z start header crc mismatch".into());
    }
    let next_offset = le::u64(&sig, 12)?;
    let next_size = le::u64(&sig, 20)?;
    let next_crc = le::u32(&sig, 28)?;
    if next_size == 0 {
        // What `7z a` writes when there is nothing to add: 32 bytes, no header at all. Anything
        // else claiming "no header" (a damaged start header, trailing data) is not judged.
        if !start_crc_ok || src.size() != SEVENZ_SIGNATURE_HEADER_LEN {
            return Err(malformed(
                "7z start header (no next header, but its crc or the file size does not fit)",
            ));
        }
        return Ok(
            EncryptionVerdict::new(EncryptionStatus::Plaintext, "7z").with_detail("empty archive")
        );
    }
    let start = SEVENZ_SIGNATURE_HEADER_LEN
        .checked_add(next_offset)
        .filter(|s| {
            s.checked_add(next_size)
                .is_some_and(|end| end <= src.size())
        })
        .ok_or(InspectError::Truncated("7z next header"))?;
    let len = next_size.min(SEVENZ_MAX_RAW_HEADER);
    let complete = len == next_size;
    // Bounded by the cap above.
    let raw = src.read_exact(start, len as usize, "7z next header")?;
    if complete && crc32(&raw) != next_crc {
        notes.push("7z next header crc mismatch".into());
    }
    match raw.first().map(|&b| u64::from(b)) {
        Some(nid::HEADER) => judge_header(&raw, complete, notes),
        Some(nid::ENCODED_HEADER) => {
            let mut c = Cursor::new(raw.get(1..).unwrap_or_default());
            let streams = match read_streams_info(&mut c) {
                Err(Stop::Error(InspectError::Truncated(_))) if !complete => {
                    return Err(Stop::Unsupported(format!(
                        "7z encoded header exceeds the {SEVENZ_MAX_RAW_HEADER}-byte cap"
                    )))
                }
                other => other?,
            };
            if let Some(folder) = streams.folders.iter().find(|f| f.is_encrypted()) {
                let scheme = if folder.has_aes() {
                    "7z-aes"
                } else {
                    "7z-crypto"
                };
                return Ok(EncryptionVerdict::new(EncryptionStatus::Encrypted, scheme)
                    .with_detail("headers encrypted"));
            }
            let header = decode_encoded_header(src, &streams, notes)?;
            judge_header(&header, true, notes)
        }
        other => Err(malformed(format!(
            "7z next header type {:#x}",
            other.unwrap_or_default()
        ))),
    }
}

/// Inspects a 7z archive: an AES coder in the encoded header's folder means encrypted headers;
/// otherwise the (decoded) header's folders are counted: all, some or none encrypted.
pub fn inspect_7z(src: &Bounded<'_>) -> Result<Evidence, InspectError> {
    let mut notes = Vec::new();
    let result = sevenz(src, &mut notes);
    finish(result, notes, "7z")
}

// ---------------------------------------------------------------------------------------------
// RAR 5
// ---------------------------------------------------------------------------------------------

const RAR5_SIGNATURE: &[u8] = b"Rar!\x1A\x07\x01\x00";
/// "Header size … must not exceed 2 MB" (RAR 5.0 format, general archive layout).
const RAR5_MAX_HEADER: u64 = 2 * 1024 * 1024;
/// Bound on blocks walked in one archive; the read budget usually ends a walk sooner.
const RAR_MAX_BLOCKS: usize = 200_000;
/// Bound on records in one extra area.
const RAR5_MAX_EXTRA_RECORDS: usize = 256;

const RAR5_HEAD_MAIN: u64 = 1;
const RAR5_HEAD_FILE: u64 = 2;
const RAR5_HEAD_CRYPT: u64 = 4;
const RAR5_HEAD_END: u64 = 5;
const RAR5_FLAG_EXTRA: u64 = 0x0001;
const RAR5_FLAG_DATA: u64 = 0x0002;
const RAR5_FILE_DIRECTORY: u64 = 0x0001;
const RAR5_FILE_MTIME: u64 = 0x0002;
const RAR5_FILE_CRC: u64 = 0x0004;
const RAR5_EXTRA_CRYPT: u64 = 0x01;

/// A RAR 5 `vint`: seven bits per byte, least significant first, high bit set on all but the
/// last byte; at most ten bytes for a 64-bit value.
fn rar_vint(buf: &[u8], pos: &mut usize) -> Result<u64, InspectError> {
    let mut value = 0u64;
    for i in 0..10u32 {
        let b = *buf
            .get(*pos)
            .ok_or(InspectError::Truncated("rar5 header field"))?;
        *pos += 1;
        value |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(InspectError::malformed("rar5 vint longer than 10 bytes"))
}

/// What one RAR 5 block header says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rar5Block {
    kind: u64,
    crc_ok: bool,
    /// Offset of the next block.
    next: u64,
    /// For file headers: whether the file is encrypted, or `None` when it holds no data
    /// (a directory, or an empty plain file, neither of which has content to protect).
    file: Option<Option<bool>>,
}

fn read_rar5_block(src: &Bounded<'_>, offset: u64) -> Result<Rar5Block, InspectError> {
    // CRC32, then the header size as a vint of at most four bytes (2 MiB fits in three).
    let prefix = src.read_up_to(offset, 8)?;
    let stored_crc =
        le::u32(&prefix, 0).map_err(|_| InspectError::Truncated("rar5 block header"))?;
    let size_field = prefix.get(4..).unwrap_or_default();
    let mut pos = 0;
    let header_size = match rar_vint(size_field, &mut pos) {
        Err(InspectError::Truncated(_)) if size_field.len() >= 4 => {
            return Err(InspectError::malformed("rar5 header size field"))
        }
        other => other?,
    };
    if header_size == 0 || header_size > RAR5_MAX_HEADER {
        return Err(InspectError::malformed(format!(
            "rar5 header size {header_size}"
        )));
    }
    // The CRC covers the size field and the header; bounded by the 2 MiB check above.
    let covered = src.read_exact(
        offset.saturating_add(4),
        pos + header_size as usize,
        "rar5 block header",
    )?;
    let crc_ok = crc32(&covered) == stored_crc;
    let h = covered.get(pos..).unwrap_or_default();
    let mut p = 0;
    let kind = rar_vint(h, &mut p)?;
    let flags = rar_vint(h, &mut p)?;
    let extra_size = if flags & RAR5_FLAG_EXTRA != 0 {
        rar_vint(h, &mut p)?
    } else {
        0
    };
    let data_size = if flags & RAR5_FLAG_DATA != 0 {
        rar_vint(h, &mut p)?
    } else {
        0
    };
    // The extra area ends the header.
    let extra_start = usize::try_from(header_size.saturating_sub(extra_size))
        .ok()
        .filter(|&s| extra_size <= header_size && s >= p)
        .ok_or_else(|| InspectError::malformed("rar5 extra area size"))?;
    let file = if kind == RAR5_HEAD_FILE {
        let fields = h.get(p..extra_start).unwrap_or_default();
        let extra = h.get(extra_start..).unwrap_or_default();
        Some(read_rar5_file(fields, extra, data_size)?)
    } else {
        None
    };
    let next = offset
        .checked_add(4 + pos as u64 + header_size)
        .and_then(|end| end.checked_add(data_size))
        .ok_or_else(|| InspectError::malformed("rar5 data size"))?;
    Ok(Rar5Block {
        kind,
        crc_ok,
        next,
        file,
    })
}

/// A file header's fields (after the common ones) and its extra area: is the file encrypted?
fn read_rar5_file(
    fields: &[u8],
    extra: &[u8],
    data_size: u64,
) -> Result<Option<bool>, InspectError> {
    let mut p = 0;
    let file_flags = rar_vint(fields, &mut p)?;
    let unpacked_size = rar_vint(fields, &mut p)?;
    let _attributes = rar_vint(fields, &mut p)?;
    if file_flags & RAR5_FILE_MTIME != 0 {
        p += 4;
    }
    if file_flags & RAR5_FILE_CRC != 0 {
        p += 4;
    }
    let _compression = rar_vint(fields, &mut p)?;
    let _host_os = rar_vint(fields, &mut p)?;
    let name_len = rar_vint(fields, &mut p)?;
    if (p as u64)
        .checked_add(name_len)
        .is_none_or(|end| end > fields.len() as u64)
    {
        return Err(InspectError::malformed("rar5 file name length"));
    }
    let mut encrypted = false;
    let mut q = 0;
    for _ in 0..RAR5_MAX_EXTRA_RECORDS {
        if q >= extra.len() {
            break;
        }
        let size = rar_vint(extra, &mut q)?;
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| q.checked_add(s))
            .filter(|&e| size > 0 && e <= extra.len())
            .ok_or_else(|| InspectError::malformed("rar5 extra record size"))?;
        let record = extra.get(q..end).unwrap_or_default();
        if rar_vint(record, &mut 0)? == RAR5_EXTRA_CRYPT {
            encrypted = true;
        }
        q = end;
    }
    if q < extra.len() {
        return Err(InspectError::malformed("rar5 extra area: too many records"));
    }
    if file_flags & RAR5_FILE_DIRECTORY != 0 || (!encrypted && unpacked_size == 0 && data_size == 0)
    {
        return Ok(None);
    }
    Ok(Some(encrypted))
}

fn rar5(src: &Bounded<'_>, notes: &mut Vec<String>) -> Result<EncryptionVerdict, Stop> {
    let sig = src.read_exact(0, RAR5_SIGNATURE.len(), "rar5 signature")?;
    if sig != RAR5_SIGNATURE {
        return Err(malformed("rar5 signature"));
    }
    let mut offset = RAR5_SIGNATURE.len() as u64;
    let mut tally = Tally::default();
    let mut crc_mismatches = 0u64;
    let mut stopped: Option<String> = Some(format!("more than {RAR_MAX_BLOCKS} blocks"));
    for index in 0..RAR_MAX_BLOCKS {
        if offset > src.size() {
            stopped = Some("a data area runs past the end of the file".into());
            break;
        }
        if offset == src.size() && index > 0 {
            stopped = Some("archive ends without an end-of-archive header".into());
            break;
        }
        let block = match read_rar5_block(src, offset) {
            Ok(b) => b,
            // Nothing read yet: the file is not a RAR 5 archive we can walk at all.
            Err(e) if index == 0 => return Err(e.into()),
            Err(e) => {
                stopped = Some(e.to_string());
                break;
            }
        };
        if !block.crc_ok {
            crc_mismatches += 1;
        }
        if index == 0 && block.kind != RAR5_HEAD_MAIN && block.kind != RAR5_HEAD_CRYPT {
            return Err(malformed(format!(
                "rar5 first block of type {}",
                block.kind
            )));
        }
        match block.kind {
            // Every header after this one is encrypted: no file names, no per-file flags.
            RAR5_HEAD_CRYPT => {
                push_crc_note(notes, "rar5", crc_mismatches);
                return Ok(
                    EncryptionVerdict::new(EncryptionStatus::Encrypted, "rar5-aes")
                        .with_detail("headers encrypted"),
                );
            }
            RAR5_HEAD_END => {
                stopped = None;
                break;
            }
            _ => {}
        }
        if let Some(Some(encrypted)) = block.file {
            tally.add(encrypted);
        }
        offset = block.next;
    }
    push_crc_note(notes, "rar5", crc_mismatches);
    Ok(match stopped {
        None => tally.verdict("file", "rar5-aes", "rar5"),
        Some(why) => {
            notes.push(format!("rar5 walk stopped: {why}"));
            tally.verdict_incomplete("file", "rar5-aes", "rar5", &why)
        }
    })
}

fn push_crc_note(notes: &mut Vec<String>, format: &str, mismatches: u64) {
    if mismatches > 0 {
        notes.push(format!(
            "{format}: {} with a crc mismatch",
            plural(mismatches, "header")
        ));
    }
}

/// Inspects a RAR 5 archive: an archive encryption header means encrypted headers; otherwise
/// file headers with a file encryption record are counted against all files that hold data.
pub fn inspect_rar5(src: &Bounded<'_>) -> Result<Evidence, InspectError> {
    let mut notes = Vec::new();
    let result = rar5(src, &mut notes);
    finish(result, notes, "rar5")
}

// ---------------------------------------------------------------------------------------------
// RAR 1.5–4
// ---------------------------------------------------------------------------------------------

/// The marker block, which is also the signature.
const RAR4_SIGNATURE: &[u8] = b"Rar!\x1A\x07\x00";
/// `HEAD_CRC`, `HEAD_TYPE`, `HEAD_FLAGS`, `HEAD_SIZE`.
const RAR4_BASE_HEADER: usize = 7;
const RAR4_MAIN_HEAD: u8 = 0x73;
const RAR4_FILE_HEAD: u8 = 0x74;
const RAR4_NEWSUB_HEAD: u8 = 0x7A;
const RAR4_END_HEAD: u8 = 0x7B;
/// `ADD_SIZE` (for file headers `PACK_SIZE`) follows the base header.
const RAR4_LONG_BLOCK: u16 = 0x8000;
/// Main header: "block headers are encrypted".
const RAR4_MHD_PASSWORD: u16 = 0x0080;
/// File header: "file encrypted with password".
const RAR4_LHD_PASSWORD: u16 = 0x0004;
const RAR4_LHD_DIRECTORY: u16 = 0x00E0;
/// File header: `HIGH_PACK_SIZE` and `HIGH_UNP_SIZE` present.
const RAR4_LHD_LARGE: u16 = 0x0100;

fn rar4(src: &Bounded<'_>, notes: &mut Vec<String>) -> Result<EncryptionVerdict, Stop> {
    let sig = src.read_exact(0, RAR4_SIGNATURE.len(), "rar4 signature")?;
    if sig != RAR4_SIGNATURE {
        return Err(malformed("rar4 signature"));
    }
    let mut offset = RAR4_SIGNATURE.len() as u64;
    let mut tally = Tally::default();
    let mut crc_mismatches = 0u64;
    let mut stopped: Option<String> = Some(format!("more than {RAR_MAX_BLOCKS} blocks"));
    for index in 0..RAR_MAX_BLOCKS {
        if offset == src.size() && index > 0 {
            // Archives written before RAR 3.0 end without an end-of-archive block.
            stopped = None;
            break;
        }
        let header = match read_rar4_header(src, offset) {
            Ok(h) => h,
            Err(e) if index == 0 => return Err(e.into()),
            Err(e) => {
                stopped = Some(e.to_string());
                break;
            }
        };
        let stored_crc = le::u16(&header, 0)?;
        let kind = header.get(2).copied().unwrap_or_default();
        let flags = le::u16(&header, 3)?;
        // HEAD_CRC is the low half of the CRC32 of the header after the CRC field.
        if (crc32(header.get(2..).unwrap_or_default()) & 0xFFFF) as u16 != stored_crc {
            crc_mismatches += 1;
        }
        if index == 0 && kind != RAR4_MAIN_HEAD {
            return Err(malformed(format!("rar4 first block of type {kind:#x}")));
        }
        let mut data_size = if flags & RAR4_LONG_BLOCK != 0 {
            u64::from(le::u32(&header, 7)?)
        } else {
            0
        };
        match kind {
            RAR4_MAIN_HEAD if flags & RAR4_MHD_PASSWORD != 0 => {
                push_crc_note(notes, "rar4", crc_mismatches);
                return Ok(EncryptionVerdict::new(EncryptionStatus::Encrypted, "rar4")
                    .with_detail("headers encrypted"));
            }
            RAR4_FILE_HEAD | RAR4_NEWSUB_HEAD => {
                // PACK_SIZE 4, UNP_SIZE 4, HOST_OS 1, FILE_CRC 4, FTIME 4, UNP_VER 1, METHOD 1,
                // NAME_SIZE 2, ATTR 4, then HIGH_PACK_SIZE 4 and HIGH_UNP_SIZE 4 when large.
                let mut unpacked = u64::from(le::u32(&header, 11)?);
                if flags & RAR4_LHD_LARGE != 0 {
                    data_size |= u64::from(le::u32(&header, 32)?) << 32;
                    unpacked |= u64::from(le::u32(&header, 36)?) << 32;
                }
                let encrypted = flags & RAR4_LHD_PASSWORD != 0;
                let directory = flags & RAR4_LHD_DIRECTORY == RAR4_LHD_DIRECTORY;
                let empty = unpacked == 0 && data_size == 0;
                if kind == RAR4_FILE_HEAD && !directory && (encrypted || !empty) {
                    tally.add(encrypted);
                }
            }
            RAR4_END_HEAD => {
                stopped = None;
                break;
            }
            _ => {}
        }
        offset = offset
            .checked_add(header.len() as u64)
            .and_then(|o| o.checked_add(data_size))
            .ok_or_else(|| malformed("rar4 data size"))?;
        if offset > src.size() {
            stopped = Some("a data area runs past the end of the file".into());
            break;
        }
    }
    push_crc_note(notes, "rar4", crc_mismatches);
    Ok(match stopped {
        None => tally.verdict("file", "rar4", "rar4"),
        Some(why) => {
            notes.push(format!("rar4 walk stopped: {why}"));
            tally.verdict_incomplete("file", "rar4", "rar4", &why)
        }
    })
}

/// Reads one RAR 1.5–4 block header (`HEAD_SIZE` bytes, at most 64 KiB).
fn read_rar4_header(src: &Bounded<'_>, offset: u64) -> Result<Vec<u8>, InspectError> {
    let base = src.read_exact(offset, RAR4_BASE_HEADER, "rar4 block header")?;
    let flags = le::u16(&base, 3)?;
    let size = usize::from(le::u16(&base, 5)?);
    let min = if flags & RAR4_LONG_BLOCK != 0 {
        RAR4_BASE_HEADER + 4
    } else {
        RAR4_BASE_HEADER
    };
    if size < min {
        return Err(InspectError::malformed(format!("rar4 header size {size}")));
    }
    src.read_exact(offset, size, "rar4 block header")
}

/// Inspects a RAR 1.5–4 archive: the main header's encrypted-headers flag, else the file
/// headers' password flags.
pub fn inspect_rar4(src: &Bounded<'_>) -> Result<Evidence, InspectError> {
    let mut notes = Vec::new();
    let result = rar4(src, &mut notes);
    finish(result, notes, "rar4")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(e: &Evidence) -> EncryptionStatus {
        e.encryption.as_ref().map(|v| v.status).unwrap_or_default()
    }

    fn scheme(e: &Evidence) -> Option<&str> {
        e.encryption.as_ref().and_then(|v| v.scheme.as_deref())
    }

    fn detail(e: &Evidence) -> Option<&str> {
        e.encryption.as_ref().and_then(|v| v.detail.as_deref())
    }

    fn src(bytes: &[u8]) -> Bounded<'_> {
        Bounded::from_bytes(bytes, 4 * 1024 * 1024)
    }

    // --- 7z builders (7zFormat.txt) ---

    /// A 7z `UINT64` in its shortest form.
    fn number(v: u64) -> Vec<u8> {
        for extra in 0..8u32 {
            // With `extra` bytes after the first, the first byte keeps 7 - extra value bits.
            let value_bits = 8 * extra + 7 - extra;
            if v < 1u64 << value_bits {
                let prefix = !(0xFFu8 >> extra);
                let mut out = vec![prefix | (v >> (8 * extra)) as u8];
                out.extend_from_slice(&v.to_le_bytes()[..extra as usize]);
                return out;
            }
        }
        let mut out = vec![0xFF];
        out.extend_from_slice(&v.to_le_bytes());
        out
    }

    fn coder(id: &[u8], props: &[u8]) -> Vec<u8> {
        let mut out = vec![id.len() as u8 | if props.is_empty() { 0 } else { 0x20 }];
        out.extend_from_slice(id);
        if !props.is_empty() {
            out.extend(number(props.len() as u64));
            out.extend_from_slice(props);
        }
        out
    }

    /// One folder: its bytes and its unpack sizes (one per coder output).
    struct TestFolder {
        bytes: Vec<u8>,
        unpack: Vec<u64>,
    }

    fn single(id: &[u8], props: &[u8], unpack: u64) -> TestFolder {
        let mut bytes = vec![1];
        bytes.extend(coder(id, props));
        TestFolder {
            bytes,
            unpack: vec![unpack],
        }
    }

    /// AES over LZMA2, as 7-Zip writes it: the AES output feeds the LZMA2 input.
    fn aes_lzma2(unpack: u64) -> TestFolder {
        let mut bytes = vec![2];
        bytes.extend(coder(CODER_LZMA2, &[0x10]));
        bytes.extend(coder(CODER_7Z_AES, &[0x13, 0x0F, 0x00, 0x01, 0x02]));
        bytes.extend([1, 0]); // bind pair: in 1 <- out 0
        TestFolder {
            bytes,
            unpack: vec![unpack, unpack + 16],
        }
    }

    fn plain_lzma2(unpack: u64) -> TestFolder {
        single(CODER_LZMA2, &[0x10], unpack)
    }

    /// `StreamsInfo` (without its id) for packed streams of `pack_sizes` at `pack_pos`.
    fn streams_info(
        pack_pos: u64,
        pack_sizes: &[u64],
        folders: &[TestFolder],
        crcs: Option<&[u32]>,
    ) -> Vec<u8> {
        let mut out = vec![0x06];
        out.extend(number(pack_pos));
        out.extend(number(pack_sizes.len() as u64));
        out.push(0x09);
        for &s in pack_sizes {
            out.extend(number(s));
        }
        out.push(0x00);
        out.extend([0x07, 0x0B]);
        out.extend(number(folders.len() as u64));
        out.push(0x00);
        for f in folders {
            out.extend_from_slice(&f.bytes);
        }
        out.push(0x0C);
        for f in folders {
            for &u in &f.unpack {
                out.extend(number(u));
            }
        }
        if let Some(crcs) = crcs {
            out.extend([0x0A, 0x01]);
            for c in crcs {
                out.extend_from_slice(&c.to_le_bytes());
            }
        }
        out.push(0x00);
        out.push(0x00);
        out
    }

    /// A plain `Header` with main streams and a file list that uses `kDummy` and an id from a
    /// future version (both sized, so a reader skips them).
    fn header(folders: &[TestFolder]) -> Vec<u8> {
        let mut out = vec![0x01, 0x04];
        let sizes: Vec<u64> = folders.iter().map(|_| 10).collect();
        out.extend(streams_info(0, &sizes, folders, None));
        out.push(0x05);
        out.extend(number(folders.len() as u64));
        out.extend([0x19, 0x02, 0x00, 0x00]); // kDummy, 2 bytes
        out.extend([0x3F, 0x03, 0xAA, 0xBB, 0xCC]); // unknown id, 3 bytes
        out.push(0x00);
        out.push(0x00);
        out
    }

    fn archive(packed: &[u8], next: &[u8]) -> Vec<u8> {
        let mut start = (packed.len() as u64).to_le_bytes().to_vec();
        start.extend((next.len() as u64).to_le_bytes());
        start.extend(crc32(next).to_le_bytes());
        let mut out = SEVENZ_SIGNATURE.to_vec();
        out.extend([0, 4]);
        out.extend(crc32(&start).to_le_bytes());
        out.extend(start);
        out.extend_from_slice(packed);
        out.extend_from_slice(next);
        out
    }

    /// An archive whose header is packed by `coder` into `packed_header`.
    fn encoded(plain_header: &[u8], id: &[u8], props: &[u8], packed_header: &[u8]) -> Vec<u8> {
        let mut packed = vec![0xEE; 20]; // the folders' packed data
        let pos = packed.len() as u64;
        packed.extend_from_slice(packed_header);
        let folder = single(id, props, plain_header.len() as u64);
        let mut next = vec![0x17];
        next.extend(streams_info(
            pos,
            &[packed_header.len() as u64],
            &[folder],
            Some(&[crc32(plain_header)]),
        ));
        archive(&packed, &next)
    }

    fn partial_header() -> Vec<u8> {
        header(&[plain_lzma2(5), aes_lzma2(5)])
    }

    fn lzma_packed(data: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut out = Vec::new();
        lzma_rs::lzma_compress(&mut &data[..], &mut out).unwrap();
        // lzma-rs writes the .lzma header: 5 property bytes, then an 8-byte size 7z omits.
        (out[..5].to_vec(), out[13..].to_vec())
    }

    #[test]
    fn sevenz_numbers_decode_every_length() {
        let cases: &[(&[u8], u64)] = &[
            (&[0x00], 0),
            (&[0x7F], 127),
            (&[0x80, 0x80], 128),
            (&[0xBF, 0xFF], 0x3FFF),
            (&[0xC0, 0x00, 0x40], 0x4000),
            (&[0xE1, 0x02, 0x03, 0x04], 0x0104_0302),
            (&[0xFE, 1, 2, 3, 4, 5, 6, 7], 0x0007_0605_0403_0201),
            (&[0xFF, 1, 2, 3, 4, 5, 6, 7, 8], 0x0807_0605_0403_0201),
        ];
        for (bytes, want) in cases {
            let mut c = Cursor::new(bytes);
            assert_eq!(c.number().unwrap(), *want, "{bytes:02x?}");
            assert_eq!(c.remaining(), 0);
        }
        for v in [0, 1, 127, 128, 300, 1 << 20, 1 << 40, u64::MAX] {
            assert_eq!(Cursor::new(&number(v)).number().unwrap(), v);
        }
        assert!(Cursor::new(&[0x80]).number().is_err());
        assert!(Cursor::new(&[0xFF, 1, 2]).number().is_err());
    }

    #[test]
    fn sevenz_counts_beyond_the_header_are_refused() {
        let mut c = Cursor::new(&[0xFF, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(c.count(1, "folder").is_err());
        let mut c = Cursor::new(&[0x03, 0, 0]);
        assert!(c.count(1, "pack stream").is_err());
        let mut c = Cursor::new(&[0x02, 0, 0]);
        assert_eq!(c.count(1, "pack stream").unwrap(), 2);
    }

    #[test]
    fn sevenz_digests_and_bit_vectors() {
        // Not all defined: bits 1 0 1, then two CRCs.
        let mut c = Cursor::new(&[0x00, 0b1010_0000, 1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(c.digests(3).unwrap(), vec![Some(1), None, Some(2)]);
        let mut c = Cursor::new(&[0x00, 0b1010_0000, 1, 0, 0, 0, 2, 0, 0, 0]);
        c.skip_digests(3).unwrap();
        assert_eq!(c.remaining(), 0);
        let mut c = Cursor::new(&[0x01, 1, 0, 0, 0]);
        assert!(c.skip_digests(2).is_err());
    }

    #[test]
    fn sevenz_stored_headers_count_folders() {
        let cases: Vec<(Vec<TestFolder>, EncryptionStatus, &str, Option<&str>)> = vec![
            (
                vec![plain_lzma2(5)],
                EncryptionStatus::Plaintext,
                "7z",
                None,
            ),
            (
                vec![aes_lzma2(5)],
                EncryptionStatus::Encrypted,
                "7z-aes",
                Some("1 folder encrypted, file names visible"),
            ),
            (
                vec![plain_lzma2(5), aes_lzma2(5), aes_lzma2(7)],
                EncryptionStatus::Partial,
                "7z-aes",
                Some("2 of 3 folders encrypted"),
            ),
            (
                vec![single(&[0x06, 0xF1, 0x01, 0x01], &[], 5)],
                EncryptionStatus::Encrypted,
                "7z-crypto",
                None,
            ),
            (
                vec![],
                EncryptionStatus::Plaintext,
                "7z",
                Some("no stored data"),
            ),
        ];
        for (folders, want, want_scheme, want_detail) in cases {
            let bytes = archive(&[0xEE; 30], &header(&folders));
            let e = inspect_7z(&src(&bytes)).unwrap();
            assert_eq!(status(&e), want, "{e:?}");
            assert_eq!(scheme(&e), Some(want_scheme), "{e:?}");
            if want_detail.is_some() {
                assert_eq!(detail(&e), want_detail, "{e:?}");
            }
            assert!(e.notes.is_empty(), "{e:?}");
        }
    }

    #[test]
    fn sevenz_encoded_headers_decode_with_every_supported_coder() {
        let plain = partial_header();
        let (props, lzma) = lzma_packed(&plain);
        let mut lzma2 = Vec::new();
        lzma_rs::lzma2_compress(&mut &plain[..], &mut lzma2).unwrap();
        let mut deflate =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        deflate.write_all(&plain).unwrap();
        let deflate = deflate.finish().unwrap();
        let archives = [
            ("lzma", encoded(&plain, CODER_LZMA, &props, &lzma)),
            ("lzma2", encoded(&plain, CODER_LZMA2, &[0x10], &lzma2)),
            ("deflate", encoded(&plain, CODER_DEFLATE, &[], &deflate)),
            ("copy", encoded(&plain, CODER_COPY, &[], &plain)),
        ];
        for (what, bytes) in archives {
            let e = inspect_7z(&src(&bytes)).unwrap();
            assert_eq!(status(&e), EncryptionStatus::Partial, "{what}: {e:?}");
            assert_eq!(detail(&e), Some("1 of 2 folders encrypted"), "{what}");
            assert!(e.notes.is_empty(), "{what}: {e:?}");
        }
    }

    #[test]
    fn sevenz_encrypted_header_is_judged_without_decoding() {
        let mut packed = vec![0xEE; 48];
        let pos = packed.len() as u64;
        packed.extend([0x5A; 64]);
        let mut next = vec![0x17];
        next.extend(streams_info(pos, &[64], &[aes_lzma2(300)], None));
        let bytes = archive(&packed, &next);
        let e = inspect_7z(&src(&bytes)).unwrap();
        assert_eq!(status(&e), EncryptionStatus::Encrypted);
        assert_eq!(scheme(&e), Some("7z-aes"));
        assert_eq!(detail(&e), Some("headers encrypted"));
    }

    #[test]
    fn sevenz_header_coder_it_cannot_decode_is_unknown() {
        let plain = partial_header();
        let bytes = encoded(&plain, &[0x04, 0x02, 0x02], &[], &[0x42; 40]);
        let e = inspect_7z(&src(&bytes)).unwrap();
        assert_eq!(status(&e), EncryptionStatus::Unknown);
        assert_eq!(scheme(&e), Some("7z"));
        assert!(e.notes.iter().any(|n| n.contains("040202")), "{e:?}");
    }

    #[test]
    fn sevenz_header_bombs_and_lies_are_refused() {
        // 2 MiB claimed from 40 packed bytes.
        let mut next = vec![0x17];
        next.extend(streams_info(
            0,
            &[40],
            &[single(CODER_COPY, &[], 2 << 20)],
            None,
        ));
        let bytes = archive(&[0; 40], &next);
        let err = inspect_7z(&src(&bytes)).unwrap_err();
        assert!(err.to_string().contains("claims"), "{err}");
        // Beyond the decoded-header cap.
        let mut next = vec![0x17];
        next.extend(streams_info(
            0,
            &[1 << 20],
            &[single(CODER_LZMA, &[0; 5], 8 << 20)],
            None,
        ));
        let bytes = archive(&[], &next);
        let e = inspect_7z(&src(&bytes)).unwrap();
        assert_eq!(status(&e), EncryptionStatus::Unknown);
        // An LZMA2 stream whose chunks add up to more than declared.
        let plain = partial_header();
        let mut lzma2 = Vec::new();
        lzma_rs::lzma2_compress(&mut &plain[..], &mut lzma2).unwrap();
        let mut next = vec![0x17];
        next.extend(streams_info(
            0,
            &[lzma2.len() as u64],
            &[single(CODER_LZMA2, &[0x10], plain.len() as u64 - 1)],
            None,
        ));
        assert!(inspect_7z(&src(&archive(&lzma2, &next))).is_err());
    }

    #[test]
    fn sevenz_crc_mismatches_are_noted() {
        let plain = partial_header();
        let mut bytes = encoded(&plain, CODER_COPY, &[], &plain);
        // Corrupt the stored folder CRC of the encoded header (the last four bytes before the
        // two end markers) and the start header CRC.
        let at = bytes.len() - 6;
        bytes[at] ^= 0xFF;
        bytes[8] ^= 0xFF;
        let e = inspect_7z(&src(&bytes)).unwrap();
        assert!(
            e.notes.iter().any(|n| n.contains("start header crc")),
            "{e:?}"
        );
        assert!(
            e.notes.iter().any(|n| n.contains("next header crc")),
            "{e:?}"
        );
        assert!(
            e.notes.iter().any(|n| n.contains("decoded header crc")),
            "{e:?}"
        );
        assert_eq!(status(&e), EncryptionStatus::Partial);
    }

    #[test]
    fn sevenz_unknown_properties_are_skipped_only_where_sized() {
        // A sized attribute in pack info is skipped.
        let mut next = vec![
            0x01, 0x04, 0x06, 0x00, 0x01, 0x25, 0x01, 0xAA, 0x09, 0x05, 0x00,
        ];
        next.extend([0x07, 0x0B, 0x01, 0x00]);
        next.extend(plain_lzma2(5).bytes);
        next.extend([0x0C, 0x05, 0x00, 0x00, 0x00]);
        let e = inspect_7z(&src(&archive(&[0; 5], &next))).unwrap();
        assert_eq!(status(&e), EncryptionStatus::Plaintext, "{e:?}");
        // An unknown id where the format has no sizes (the header's top level) is an error.
        let next = [0x01, 0x2A, 0x00];
        assert!(inspect_7z(&src(&archive(&[], &next))).is_err());
        // Folders stored outside the header: not judged.
        let next = [0x01, 0x04, 0x07, 0x0B, 0x01, 0x01, 0x00, 0x00, 0x00];
        let e = inspect_7z(&src(&archive(&[], &next))).unwrap();
        assert_eq!(status(&e), EncryptionStatus::Unknown);
        assert!(!e.notes.is_empty());
    }

    #[test]
    fn sevenz_file_list_problems_do_not_change_the_verdict() {
        let mut h = header(&[aes_lzma2(5)]);
        // Make the file list's last property claim more bytes than remain.
        let len = h.len();
        h[len - 6] = 0x7F;
        let e = inspect_7z(&src(&archive(&[0; 10], &h))).unwrap();
        assert_eq!(status(&e), EncryptionStatus::Encrypted, "{e:?}");
        assert_eq!(e.notes.len(), 1, "{e:?}");
    }

    #[test]
    fn sevenz_empty_and_broken_signature_headers() {
        let mut empty = SEVENZ_SIGNATURE.to_vec();
        empty.extend([0, 4]);
        empty.extend(crc32(&[0; 20]).to_le_bytes());
        empty.extend([0; 20]);
        let e = inspect_7z(&src(&empty)).unwrap();
        assert_eq!(detail(&e), Some("empty archive"));
        assert!(e.notes.is_empty());
        assert!(inspect_7z(&src(&empty[..20])).is_err());
        // "No header" is only believed of an intact 32-byte archive.
        let mut bad_crc = empty.clone();
        bad_crc[8] ^= 0xFF;
        let mut trailing = empty.clone();
        trailing.extend([0; 1000]);
        for broken in [&bad_crc, &trailing] {
            if let Ok(e) = inspect_7z(&src(broken)) {
                assert_eq!(status(&e), EncryptionStatus::Unknown, "{e:?}");
            }
        }
        let mut future = empty.clone();
        future[6] = 1;
        let e = inspect_7z(&src(&future)).unwrap();
        assert_eq!(status(&e), EncryptionStatus::Unknown);
    }

    #[test]
    fn lzma2_chunk_walk() {
        // Uncompressed chunk of 3 bytes, LZMA chunk (props reset) of 0x10000 + 1 bytes, end.
        let mut s = vec![0x01, 0x00, 0x02, b'a', b'b', b'c'];
        s.extend([0xE1, 0x00, 0x00, 0x00, 0x01, 0x5D, 0xAA, 0xBB]);
        s.push(0x00);
        assert_eq!(lzma2_unpacked_size(&s).unwrap(), 3 + 0x1_0001);
        assert!(lzma2_unpacked_size(&s[..s.len() - 1]).is_err());
        assert!(lzma2_unpacked_size(&[0x03]).is_err());
        assert!(lzma2_unpacked_size(&[0x01, 0xFF, 0xFF, 0x00]).is_err());
    }

    #[test]
    fn capped_sink_refuses_to_grow() {
        let mut sink = CappedSink {
            buf: Vec::new(),
            cap: 4,
        };
        assert!(sink.write_all(b"abcdef").is_err());
        assert_eq!(sink.buf, b"abcd");
    }

    // --- RAR 5 ---

    fn vint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (v & 0x7F) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }

    fn record(kind: u64, body: &[u8]) -> Vec<u8> {
        let mut r = vint(kind);
        r.extend_from_slice(body);
        let mut out = vint(r.len() as u64);
        out.extend(r);
        out
    }

    /// File header fields after the common ones: flags, sizes, attributes, no time or CRC.
    fn file_fields(directory: bool, unpacked: u64) -> Vec<u8> {
        let mut f = vint(u64::from(directory));
        f.extend(vint(unpacked));
        f.extend(vint(0x20));
        f.extend(vint(0));
        f.extend(vint(1));
        f.extend(vint(3));
        f.extend_from_slice(b"a.b");
        f
    }

    #[test]
    fn rar_vints() {
        let cases: &[(&[u8], u64)] = &[
            (&[0x00], 0),
            (&[0x7F], 127),
            (&[0x80, 0x01], 128),
            (&[0xFF, 0xFF, 0x7F], (1 << 21) - 1),
            (&[0x80, 0x80, 0x80, 0x00], 0),
        ];
        for (bytes, want) in cases {
            let mut p = 0;
            assert_eq!(rar_vint(bytes, &mut p).unwrap(), *want);
            assert_eq!(p, bytes.len());
        }
        let mut p = 0;
        assert!(rar_vint(&[0x80; 11], &mut p).is_err());
        let mut p = 0;
        assert!(matches!(
            rar_vint(&[0x80, 0x80], &mut p),
            Err(InspectError::Truncated(_))
        ));
        let mut p = 5;
        assert!(rar_vint(&[0x00], &mut p).is_err());
    }

    #[test]
    fn rar5_file_extra_records() {
        let hash = record(0x02, &[0x00; 33]);
        let crypt = record(0x01, &[0x00, 0x00, 0x0F]);
        let both: Vec<u8> = hash.iter().chain(&crypt).copied().collect();
        assert_eq!(
            read_rar5_file(&file_fields(false, 9), &both, 16).unwrap(),
            Some(true)
        );
        assert_eq!(
            read_rar5_file(&file_fields(false, 9), &hash, 9).unwrap(),
            Some(false)
        );
        assert_eq!(
            read_rar5_file(&file_fields(false, 0), &[], 0).unwrap(),
            None
        );
        assert_eq!(
            read_rar5_file(&file_fields(true, 0), &crypt, 0).unwrap(),
            None
        );
        assert_eq!(
            read_rar5_file(&file_fields(false, 0), &crypt, 16).unwrap(),
            Some(true)
        );
        // A zero-sized record, a record past the area, a name past the fields.
        assert!(read_rar5_file(&file_fields(false, 9), &[0x00], 9).is_err());
        assert!(read_rar5_file(&file_fields(false, 9), &[0x05, 0x01], 9).is_err());
        let mut short = file_fields(false, 9);
        short.pop();
        assert!(read_rar5_file(&short, &[], 9).is_err());
    }

    fn rar5_block(header: &[u8], data: &[u8]) -> Vec<u8> {
        let mut covered = vint(header.len() as u64);
        covered.extend_from_slice(header);
        let mut out = crc32(&covered).to_le_bytes().to_vec();
        out.extend(covered);
        out.extend_from_slice(data);
        out
    }

    fn rar5(blocks: &[Vec<u8>]) -> Vec<u8> {
        let mut out = RAR5_SIGNATURE.to_vec();
        out.extend(rar5_block(&[1, 0, 0], &[]));
        for b in blocks {
            out.extend_from_slice(b);
        }
        out
    }

    fn rar5_file(encrypted: bool, data: &[u8]) -> Vec<u8> {
        let extra = if encrypted {
            record(0x01, &[0x00, 0x00, 0x0F])
        } else {
            Vec::new()
        };
        let mut h = vint(2);
        h.extend(vint(0x02 | u64::from(encrypted)));
        if encrypted {
            h.extend(vint(extra.len() as u64));
        }
        h.extend(vint(data.len() as u64));
        h.extend(file_fields(false, data.len() as u64));
        h.extend(extra);
        rar5_block(&h, data)
    }

    #[test]
    fn rar5_walks_files_and_skips_data_areas() {
        let end = rar5_block(&[5, 0, 0], &[]);
        // A service header (type 3) and a data area that contains a fake block signature.
        let mut service = vec![3, 0x02, 0x04];
        service.extend(file_fields(false, 4));
        let service = rar5_block(&service, b"Rar!");
        let bytes = rar5(&[
            rar5_file(true, &[0x11; 16]),
            service,
            rar5_file(false, b"hello"),
            end.clone(),
        ]);
        let e = inspect_rar5(&src(&bytes)).unwrap();
        assert_eq!(status(&e), EncryptionStatus::Partial, "{e:?}");
        assert_eq!(detail(&e), Some("1 of 2 files encrypted"));
        assert!(e.notes.is_empty(), "{e:?}");
        // No end header: the archive may have been cut at a block boundary.
        let bytes = rar5(&[rar5_file(true, &[0x11; 16])]);
        let e = inspect_rar5(&src(&bytes)).unwrap();
        assert_eq!(status(&e), EncryptionStatus::Unknown, "{e:?}");
        assert!(
            detail(&e).is_some_and(|d| d.contains("first 1 file encrypted")),
            "{e:?}"
        );
        // The signature alone is a truncated archive, not an empty one.
        assert!(inspect_rar5(&src(RAR5_SIGNATURE)).is_err());
        // The first block must be the main or the encryption header.
        let mut bytes = RAR5_SIGNATURE.to_vec();
        bytes.extend(rar5_file(false, b"x"));
        assert!(inspect_rar5(&src(&bytes)).is_err());
    }

    #[test]
    fn rar5_header_sizes_are_bounded() {
        // 2 MiB + 1 in a four-byte vint.
        let mut bytes = RAR5_SIGNATURE.to_vec();
        bytes.extend([0, 0, 0, 0]);
        bytes.extend(vint(RAR5_MAX_HEADER + 1));
        bytes.extend([0; 16]);
        let err = inspect_rar5(&src(&bytes)).unwrap_err();
        assert!(err.to_string().contains("header size"), "{err}");
        // A header size of zero.
        let mut bytes = RAR5_SIGNATURE.to_vec();
        bytes.extend([0, 0, 0, 0, 0]);
        assert!(inspect_rar5(&src(&bytes)).is_err());
        // An extra area larger than the header.
        let mut bytes = RAR5_SIGNATURE.to_vec();
        bytes.extend(rar5_block(&[1, 0x01, 0x40, 0], &[]));
        assert!(inspect_rar5(&src(&bytes)).is_err());
        // A data size that overflows the offset.
        let mut h = vec![2];
        h.extend(vint(0x02));
        h.extend(vint(u64::MAX));
        h.extend(file_fields(false, 1));
        let bytes = rar5(&[rar5_block(&h, &[])]);
        let e = inspect_rar5(&src(&bytes)).unwrap();
        assert_eq!(status(&e), EncryptionStatus::Unknown, "{e:?}");
    }

    #[test]
    fn rar5_block_count_is_bounded() {
        let filler = rar5_block(&[9, 0x04], &[]);
        let blocks: Vec<Vec<u8>> = (0..RAR_MAX_BLOCKS + 5).map(|_| filler.clone()).collect();
        let bytes = rar5(&blocks);
        let big = Bounded::from_bytes(&bytes, 64 * 1024 * 1024);
        let e = inspect_rar5(&big).unwrap();
        assert_eq!(status(&e), EncryptionStatus::Unknown);
        assert!(
            e.notes
                .iter()
                .any(|n| n.contains(&format!("more than {RAR_MAX_BLOCKS} blocks"))),
            "{:?}",
            e.notes
        );
    }

    // --- RAR 1.5–4 ---

    fn rar4_block(kind: u8, flags: u16, fields: &[u8]) -> Vec<u8> {
        let mut h = vec![kind];
        h.extend(flags.to_le_bytes());
        h.extend(((7 + fields.len()) as u16).to_le_bytes());
        h.extend_from_slice(fields);
        let mut out = ((crc32(&h) & 0xFFFF) as u16).to_le_bytes().to_vec();
        out.extend(h);
        out
    }

    fn rar4_file(flags: u16, pack: u32, unpacked: u32, high: Option<(u32, u32)>) -> Vec<u8> {
        let mut f = pack.to_le_bytes().to_vec();
        f.extend(unpacked.to_le_bytes());
        f.push(3);
        f.extend([0; 8]);
        f.extend([29, 0x30]);
        f.extend(1u16.to_le_bytes());
        f.extend([0; 4]);
        if let Some((hp, hu)) = high {
            f.extend(hp.to_le_bytes());
            f.extend(hu.to_le_bytes());
        }
        f.push(b'x');
        rar4_block(0x74, flags | 0x8000, &f)
    }

    fn rar4(blocks: &[Vec<u8>]) -> Vec<u8> {
        let mut out = RAR4_SIGNATURE.to_vec();
        out.extend(rar4_block(0x73, 0, &[0; 6]));
        for b in blocks {
            out.extend_from_slice(b);
        }
        out
    }

    #[test]
    fn rar4_flags_and_sizes() {
        let mut enc = rar4_file(0x0004, 16, 5, None);
        enc.extend([0xAB; 16]);
        let mut plain = rar4_file(0, 5, 5, None);
        plain.extend(b"hello");
        let dir = rar4_file(0x00E0, 0, 0, None);
        let empty = rar4_file(0, 0, 0, None);
        // An old-style block with ADD_SIZE whose data is skipped.
        let mut sub = rar4_block(0x77, 0x8000, &3u32.to_le_bytes());
        sub.extend([1, 2, 3]);
        // Pre-3.0 archives have no end block.
        let bytes = rar4(&[enc.clone(), dir, sub, empty, plain]);
        let e = inspect_rar4(&src(&bytes)).unwrap();
        assert_eq!(status(&e), EncryptionStatus::Partial, "{e:?}");
        assert_eq!(detail(&e), Some("1 of 2 files encrypted"));
        assert!(e.notes.is_empty(), "{e:?}");
        // HIGH_PACK_SIZE moves the next block past the end of the file.
        let large = rar4_file(0x0104, 16, 5, Some((1, 0)));
        let e = inspect_rar4(&src(&rar4(&[enc, large]))).unwrap();
        assert_eq!(status(&e), EncryptionStatus::Unknown, "{e:?}");
        // The marker alone is a truncated archive, not an empty one.
        assert!(inspect_rar4(&src(RAR4_SIGNATURE)).is_err());
        // The main header must come first.
        let mut bytes = RAR4_SIGNATURE.to_vec();
        bytes.extend(rar4_file(0, 0, 0, None));
        assert!(inspect_rar4(&src(&bytes)).is_err());
        // A long block whose header is too short for ADD_SIZE.
        let mut bytes = rar4(&[]);
        bytes.extend([0, 0, 0x74, 0x00, 0x80, 0x08, 0x00, 0, 0, 0, 0]);
        let e = inspect_rar4(&src(&bytes)).unwrap();
        assert_eq!(status(&e), EncryptionStatus::Unknown, "{e:?}");
    }

    #[test]
    fn tally_verdicts() {
        let t = |units, encrypted| Tally { units, encrypted };
        assert_eq!(
            t(0, 0).verdict("file", "x-aes", "x").status,
            EncryptionStatus::Plaintext
        );
        assert_eq!(
            t(3, 0).verdict("file", "x-aes", "x").scheme.as_deref(),
            Some("x")
        );
        assert_eq!(
            t(3, 3).verdict("file", "x-aes", "x").status,
            EncryptionStatus::Encrypted
        );
        assert_eq!(
            t(3, 1).verdict("file", "x-aes", "x").status,
            EncryptionStatus::Partial
        );
        let v = t(3, 1).verdict_incomplete("file", "x-aes", "x", "budget");
        assert_eq!(v.status, EncryptionStatus::Partial);
        let v = t(3, 3).verdict_incomplete("file", "x-aes", "x", "budget");
        assert_eq!(v.status, EncryptionStatus::Unknown);
        assert_eq!(
            v.detail.as_deref(),
            Some("walk stopped (budget); the first 3 files encrypted")
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        #[test]
        fn entry_points_never_panic(
            which in 0usize..3,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..1024),
        ) {
            let magic: &[u8] = [SEVENZ_SIGNATURE, RAR5_SIGNATURE, RAR4_SIGNATURE][which];
            let mut bytes = magic.to_vec();
            bytes.extend(body);
            let s = src(&bytes);
            let _ = [inspect_7z, inspect_rar5, inspect_rar4][which](&s);
        }

        #[test]
        fn encoded_headers_survive_edits(
            edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 1..6),
        ) {
            let plain = partial_header();
            let (props, lzma) = lzma_packed(&plain);
            let mut bytes = encoded(&plain, CODER_LZMA, &props, &lzma);
            for (at, v) in edits {
                let len = bytes.len();
                bytes[at % len] = v;
            }
            let _ = inspect_7z(&src(&bytes));
        }
    }
}

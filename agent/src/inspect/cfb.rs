//! OLE compound files (CFB): a bounded reader of sectors, directory and streams.
//!
//! Follows [MS-CFB]: the header (2.2), the DIFAT that lists the FAT sectors (2.5), FAT and
//! MiniFAT chains (2.3, 2.4), and the directory (2.6). The file is untrusted, so every number in
//! it is checked before use: sector indices against the file's real size; chains against loops
//! (a revisited sector is an error, and no walk takes more steps than the file has sectors);
//! the directory against cycles (it must be a tree); stream sizes against the file's size, and
//! reads against what the caller asked for. FAT, DIFAT and MiniFAT sectors are read lazily and
//! cached, so opening a large file reads only the header, the directory and the few FAT sectors
//! that describe them. Every read, cached ones included, goes through the caller's [`Bounded`]
//! budget, which therefore also bounds the memory the caches hold.

use std::collections::{HashMap, HashSet};

use super::source::le;
use super::{Bounded, InspectError};

/// The eight bytes every compound file starts with.
pub const SIGNATURE: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
/// Most directory entries read (128 bytes each): 1 MiB of directory. Real documents hold tens to
/// a few hundred; more than this is either corrupt or not worth reading in full.
pub const MAX_DIR_ENTRIES: usize = 8192;

const HEADER_LEN: usize = 512;
const HEADER_DIFAT: usize = 109;
const MAXREGSECT: u32 = 0xFFFF_FFFA;
const ENDOFCHAIN: u32 = 0xFFFF_FFFE;
const NOSTREAM: u32 = 0xFFFF_FFFF;
const DIR_ENTRY_LEN: usize = 128;
const MINI_SECTOR_SHIFT: u32 = 6;
const MINI_SECTOR_LEN: u64 = 1 << MINI_SECTOR_SHIFT;
/// Streams smaller than this live in the mini stream ([MS-CFB] 2.2: the cutoff MUST be 4096).
const MINI_STREAM_CUTOFF: u64 = 4096;

/// Index of a directory entry.
pub type EntryId = usize;

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A storage (folder).
    Storage,
    /// A stream (file).
    Stream,
    /// The root storage (entry 0), which also owns the mini stream.
    Root,
}

/// One directory entry ([MS-CFB] 2.6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name, decoded from UTF-16 (lossily).
    pub name: String,
    /// `None` for unallocated or invalid entries.
    pub kind: Option<EntryKind>,
    left: u32,
    right: u32,
    child: u32,
    /// First sector of the stream (regular or mini, by size).
    pub start: u32,
    /// Declared stream size in bytes (not trusted: reads are capped by the caller).
    pub size: u64,
}

/// Whether two entry names are equal the way CFB compares them (case-insensitively).
pub fn names_equal(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_uppercase)
        .eq(b.chars().flat_map(char::to_uppercase))
}

/// Which allocation table a chain lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Fat,
    MiniFat,
}

/// A chain materialised on demand (the MiniFAT's own sectors, the mini stream's sectors).
#[derive(Debug)]
struct LazyChain {
    start: u32,
    sectors: Vec<u32>,
    seen: HashSet<u32>,
    ended: bool,
}

impl LazyChain {
    fn new(start: u32) -> Self {
        LazyChain {
            start,
            sectors: Vec::new(),
            seen: HashSet::new(),
            ended: start == ENDOFCHAIN,
        }
    }
}

/// A compound file opened over a bounded source: header and directory read, the rest on demand.
pub struct CompoundFile<'s, 'b> {
    src: &'s Bounded<'b>,
    sector_shift: u32,
    /// Sectors that exist in the file after the header; no valid index reaches this.
    sector_count: u32,
    num_fat_sectors: u32,
    /// FAT sector locations known so far: the header's 109, then DIFAT sectors as needed.
    difat: Vec<u32>,
    next_difat_sector: u32,
    difat_sectors_left: u32,
    difat_seen: HashSet<u32>,
    fat_cache: HashMap<u32, Vec<u32>>,
    minifat: LazyChain,
    num_minifat_sectors: u32,
    minifat_cache: HashMap<u32, Vec<u32>>,
    ministream: LazyChain,
    ministream_size: u64,
    entries: Vec<DirEntry>,
}

impl std::fmt::Debug for CompoundFile<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompoundFile")
            .field("sector_size", &(1u32 << self.sector_shift))
            .field("sector_count", &self.sector_count)
            .field("entries", &self.entries.len())
            .finish()
    }
}

fn malformed(what: &str) -> InspectError {
    InspectError::malformed(what)
}

fn decode_utf16(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

impl<'s, 'b> CompoundFile<'s, 'b> {
    /// Reads and checks the header and the directory.
    pub fn open(src: &'s Bounded<'b>) -> Result<Self, InspectError> {
        let h = src.read_exact(0, HEADER_LEN, "compound file header")?;
        if h.get(..8) != Some(&SIGNATURE[..]) {
            return Err(malformed("compound file signature"));
        }
        if le::u16(&h, 28)? != 0xFFFE {
            return Err(malformed("compound file byte order mark"));
        }
        // Version 3 files use 512-byte sectors and version 4 files 4096-byte ones; some writers
        // get the version field wrong, so the sector shift alone decides, within those two.
        let sector_shift = u32::from(le::u16(&h, 30)?);
        if sector_shift != 9 && sector_shift != 12 {
            return Err(malformed("compound file sector size"));
        }
        if u32::from(le::u16(&h, 32)?) != MINI_SECTOR_SHIFT {
            return Err(malformed("compound file mini sector size"));
        }
        if u64::from(le::u32(&h, 56)?) != MINI_STREAM_CUTOFF {
            return Err(malformed("compound file mini stream cutoff"));
        }
        let major = le::u16(&h, 26)?;
        let num_fat_sectors = le::u32(&h, 44)?;
        let first_dir_sector = le::u32(&h, 48)?;
        let first_minifat_sector = le::u32(&h, 60)?;
        let num_minifat_sectors = le::u32(&h, 64)?;
        let first_difat_sector = le::u32(&h, 68)?;
        let num_difat_sectors = le::u32(&h, 72)?;

        let sector_len = 1u64 << sector_shift;
        let body = src.size().saturating_sub(sector_len);
        let sector_count = u32::try_from(body.div_ceil(sector_len))
            .unwrap_or(MAXREGSECT)
            .min(MAXREGSECT);
        if num_fat_sectors == 0 || num_fat_sectors > sector_count {
            return Err(malformed("compound file FAT size"));
        }
        let in_header = (num_fat_sectors as usize).min(HEADER_DIFAT);
        let mut difat = Vec::with_capacity(in_header);
        for i in 0..in_header {
            difat.push(le::u32(&h, 76 + 4 * i)?);
        }
        let mut cf = CompoundFile {
            src,
            sector_shift,
            sector_count,
            num_fat_sectors,
            difat,
            next_difat_sector: first_difat_sector,
            difat_sectors_left: num_difat_sectors.min(sector_count),
            difat_seen: HashSet::new(),
            fat_cache: HashMap::new(),
            minifat: LazyChain::new(first_minifat_sector),
            num_minifat_sectors: num_minifat_sectors.min(sector_count),
            minifat_cache: HashMap::new(),
            ministream: LazyChain::new(ENDOFCHAIN),
            ministream_size: 0,
            entries: Vec::new(),
        };
        cf.entries = cf.read_directory(first_dir_sector, major)?;
        check_tree(&cf.entries)?;
        let root = cf
            .entries
            .first()
            .filter(|e| e.kind == Some(EntryKind::Root))
            .ok_or_else(|| malformed("compound file root entry"))?;
        cf.ministream = LazyChain::new(if root.size == 0 {
            ENDOFCHAIN
        } else {
            root.start
        });
        cf.ministream_size = root.size;
        Ok(cf)
    }

    fn sector_len(&self) -> u64 {
        1u64 << self.sector_shift
    }

    fn sector_offset(&self, sector: u32) -> u64 {
        (u64::from(sector) + 1) << self.sector_shift
    }

    fn check_sector(&self, sector: u32) -> Result<(), InspectError> {
        if sector > MAXREGSECT || sector >= self.sector_count {
            return Err(malformed("sector index out of range"));
        }
        Ok(())
    }

    /// Reads a whole sector as little-endian `u32`s (FAT, DIFAT and MiniFAT sectors).
    fn read_u32_sector(&self, sector: u32, what: &'static str) -> Result<Vec<u32>, InspectError> {
        self.check_sector(sector)?;
        let len = 1usize << self.sector_shift;
        let bytes = self.src.read_exact(self.sector_offset(sector), len, what)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// The location of the `index`-th FAT sector, reading DIFAT sectors as far as needed.
    fn fat_sector_location(&mut self, index: u32) -> Result<u32, InspectError> {
        if index >= self.num_fat_sectors {
            return Err(malformed("sector beyond the FAT"));
        }
        let per = (1usize << (self.sector_shift - 2)) - 1;
        // Each pass adds one DIFAT sector; `difat_sectors_left` bounds the passes.
        while self.difat.len() <= index as usize {
            if self.difat_sectors_left == 0 {
                return Err(InspectError::Truncated("DIFAT"));
            }
            let sector = self.next_difat_sector;
            if !self.difat_seen.insert(sector) {
                return Err(malformed("DIFAT chain loops"));
            }
            let words = self.read_u32_sector(sector, "DIFAT sector")?;
            self.difat.extend(words.iter().take(per));
            self.next_difat_sector = words.get(per).copied().unwrap_or(ENDOFCHAIN);
            self.difat_sectors_left -= 1;
        }
        self.difat
            .get(index as usize)
            .copied()
            .ok_or(InspectError::Truncated("DIFAT"))
    }

    /// The FAT entry of `sector`: the next sector of its chain.
    fn fat_next(&mut self, sector: u32) -> Result<u32, InspectError> {
        self.check_sector(sector)?;
        let per_shift = self.sector_shift - 2;
        let index = sector >> per_shift;
        if !self.fat_cache.contains_key(&index) {
            let location = self.fat_sector_location(index)?;
            let words = self.read_u32_sector(location, "FAT sector")?;
            self.fat_cache.insert(index, words);
        }
        let slot = (sector & ((1 << per_shift) - 1)) as usize;
        self.fat_cache
            .get(&index)
            .and_then(|w| w.get(slot))
            .copied()
            .ok_or(InspectError::Truncated("FAT sector"))
    }

    /// The `index`-th sector of a lazily followed chain of regular sectors.
    fn lazy_sector(
        &mut self,
        which: fn(&mut Self) -> &mut LazyChain,
        index: usize,
    ) -> Result<Option<u32>, InspectError> {
        // Each pass appends one distinct valid sector, so at most `sector_count` passes run.
        while which(self).sectors.len() <= index {
            let chain = which(self);
            if chain.ended {
                return Ok(None);
            }
            let next = match chain.sectors.last() {
                None => chain.start,
                Some(&last) => self.fat_next(last)?,
            };
            if next == ENDOFCHAIN {
                which(self).ended = true;
                return Ok(None);
            }
            self.check_sector(next)?;
            let chain = which(self);
            if !chain.seen.insert(next) {
                return Err(malformed("sector chain loops"));
            }
            chain.sectors.push(next);
        }
        Ok(which(self).sectors.get(index).copied())
    }

    fn number_of_mini_sectors(&self) -> u64 {
        let cap = (u64::from(self.sector_count) << self.sector_shift) >> MINI_SECTOR_SHIFT;
        self.ministream_size.div_ceil(MINI_SECTOR_LEN).min(cap)
    }

    /// The MiniFAT entry of `mini`: the next mini sector of its chain.
    fn minifat_next(&mut self, mini: u32) -> Result<u32, InspectError> {
        let per_shift = self.sector_shift - 2;
        let index = mini >> per_shift;
        if index >= self.num_minifat_sectors {
            return Err(malformed("mini sector beyond the MiniFAT"));
        }
        if !self.minifat_cache.contains_key(&index) {
            let sector = self
                .lazy_sector(|cf| &mut cf.minifat, index as usize)?
                .ok_or(InspectError::Truncated("MiniFAT"))?;
            let words = self.read_u32_sector(sector, "MiniFAT sector")?;
            self.minifat_cache.insert(index, words);
        }
        let slot = (mini & ((1 << per_shift) - 1)) as usize;
        self.minifat_cache
            .get(&index)
            .and_then(|w| w.get(slot))
            .copied()
            .ok_or(InspectError::Truncated("MiniFAT sector"))
    }

    fn check_in(&self, table: Table, sector: u32) -> Result<(), InspectError> {
        match table {
            Table::Fat => self.check_sector(sector),
            Table::MiniFat if u64::from(sector) < self.number_of_mini_sectors() => Ok(()),
            Table::MiniFat => Err(malformed("mini sector index out of range")),
        }
    }

    fn next_in(&mut self, table: Table, sector: u32) -> Result<u32, InspectError> {
        match table {
            Table::Fat => self.fat_next(sector),
            Table::MiniFat => self.minifat_next(sector),
        }
    }

    /// Sectors `skip..skip + take` of the chain that starts at `start`; fewer if the chain ends.
    ///
    /// Loops are caught three ways: the sectors returned must be distinct, the sector after the
    /// last one returned must be a fresh one (or the end), and the walk as a whole runs Brent's
    /// cycle check (constant memory, so skipping far into a long chain stays cheap) under a hard
    /// bound of one step per sector in the file.
    fn walk(
        &mut self,
        table: Table,
        start: u32,
        skip: u64,
        take: usize,
    ) -> Result<Vec<u32>, InspectError> {
        let limit = match table {
            Table::Fat => u64::from(self.sector_count),
            Table::MiniFat => self.number_of_mini_sectors(),
        };
        let mut out = Vec::with_capacity(take.min(4096));
        let mut seen = HashSet::new();
        let mut sector = start;
        let mut index = 0u64;
        let mut tortoise = start;
        let mut power = 1u64;
        let mut lambda = 0u64;
        while sector != ENDOFCHAIN {
            self.check_in(table, sector)?;
            if index >= skip {
                if !seen.insert(sector) {
                    return Err(malformed("sector chain loops"));
                }
                out.push(sector);
            }
            let next = self.next_in(table, sector)?;
            if out.len() == take {
                // One look past the end of what was asked for: a chain that turns back on
                // itself right there is as corrupt as one that loops inside the range.
                if next != ENDOFCHAIN
                    && (seen.contains(&next) || self.check_in(table, next).is_err())
                {
                    return Err(malformed("sector chain loops"));
                }
                break;
            }
            sector = next;
            index += 1;
            if index > limit || sector == tortoise {
                return Err(malformed("sector chain loops"));
            }
            lambda += 1;
            if lambda == power {
                tortoise = sector;
                power = power.saturating_mul(2);
                lambda = 0;
            }
        }
        Ok(out)
    }

    fn read_directory(&mut self, first: u32, major: u16) -> Result<Vec<DirEntry>, InspectError> {
        let per_sector = (1usize << self.sector_shift) / DIR_ENTRY_LEN;
        let max_sectors = MAX_DIR_ENTRIES.div_ceil(per_sector);
        let sectors = self.walk(Table::Fat, first, 0, max_sectors + 1)?;
        if sectors.is_empty() {
            return Err(malformed("compound file without a directory"));
        }
        if sectors.len() > max_sectors {
            return Err(malformed("compound file directory too large"));
        }
        let mut entries = Vec::new();
        for sector in sectors {
            let bytes = self.src.read_exact(
                self.sector_offset(sector),
                1usize << self.sector_shift,
                "directory sector",
            )?;
            for raw in bytes.chunks_exact(DIR_ENTRY_LEN) {
                entries.push(parse_dir_entry(raw, major)?);
            }
        }
        Ok(entries)
    }

    /// All directory entries, in directory order (entry 0 is the root).
    pub fn entries(&self) -> &[DirEntry] {
        &self.entries
    }

    /// One directory entry.
    pub fn entry(&self, id: EntryId) -> Option<&DirEntry> {
        self.entries.get(id)
    }

    /// The streams and storages directly inside storage `id`, in no particular order.
    ///
    /// The sibling tree is walked with an explicit stack and each entry is visited at most
    /// once, so a cyclic tree ends instead of looping.
    pub fn children(&self, id: EntryId) -> Vec<EntryId> {
        let mut out = Vec::new();
        let Some(parent) = self.entries.get(id) else {
            return out;
        };
        if !matches!(parent.kind, Some(EntryKind::Storage | EntryKind::Root)) {
            return out;
        }
        let mut visited = vec![false; self.entries.len()];
        let mut stack = vec![parent.child];
        while let Some(next) = stack.pop() {
            if next == NOSTREAM {
                continue;
            }
            let i = next as usize;
            let Some(entry) = self.entries.get(i) else {
                continue;
            };
            if visited.get(i).copied().unwrap_or(true) || i == id {
                continue;
            }
            if let Some(v) = visited.get_mut(i) {
                *v = true;
            }
            if matches!(entry.kind, Some(EntryKind::Storage | EntryKind::Stream)) {
                out.push(i);
            }
            stack.push(entry.left);
            stack.push(entry.right);
        }
        out
    }

    /// The child of storage `parent` called `name` (compared case-insensitively).
    pub fn child(&self, parent: EntryId, name: &str) -> Option<EntryId> {
        self.children(parent).into_iter().find(|&c| {
            self.entries
                .get(c)
                .is_some_and(|e| names_equal(&e.name, name))
        })
    }

    /// The entry at `path` below the root (`["\u{6}DataSpaces", "DataSpaceMap"]`).
    pub fn find(&self, path: &[&str]) -> Option<EntryId> {
        let mut at = 0;
        for part in path {
            at = self.child(at, part)?;
        }
        Some(at)
    }

    /// Whether entry `id` is a stream.
    pub fn is_stream(&self, id: EntryId) -> bool {
        self.entries
            .get(id)
            .is_some_and(|e| e.kind == Some(EntryKind::Stream))
    }

    /// The stream at `path`, if there is one.
    pub fn find_stream(&self, path: &[&str]) -> Option<EntryId> {
        self.find(path).filter(|&id| self.is_stream(id))
    }

    /// The first `max` bytes of stream `id` (all of it if it is shorter).
    pub fn read_stream(&mut self, id: EntryId, max: usize) -> Result<Vec<u8>, InspectError> {
        self.read_range(id, 0, max)
    }

    /// Up to `len` bytes of stream `id` from `offset`; fewer past the stream's end.
    pub fn read_range(
        &mut self,
        id: EntryId,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, InspectError> {
        let entry = self
            .entries
            .get(id)
            .filter(|e| e.kind == Some(EntryKind::Stream))
            .ok_or_else(|| malformed("not a stream"))?;
        let (start, size) = (entry.start, entry.size);
        if size >= MINI_STREAM_CUTOFF && size > u64::from(self.sector_count) << self.sector_shift {
            return Err(malformed("stream larger than the file"));
        }
        let end = offset.saturating_add(len as u64).min(size);
        if offset >= end {
            return Ok(Vec::new());
        }
        if size < MINI_STREAM_CUTOFF {
            self.read_mini(start, offset, end)
        } else {
            self.read_regular(start, offset, end)
        }
    }

    fn read_regular(&mut self, start: u32, offset: u64, end: u64) -> Result<Vec<u8>, InspectError> {
        let shift = self.sector_shift;
        let sector_len = self.sector_len();
        let first = offset >> shift;
        let count = usize::try_from(((end - 1) >> shift) - first + 1)
            .map_err(|_| malformed("stream range"))?;
        let sectors = self.walk(Table::Fat, start, first, count)?;
        if sectors.len() < count {
            return Err(InspectError::Truncated("stream sector chain"));
        }
        let mut out = Vec::with_capacity(usize::try_from(end - offset).unwrap_or(0));
        // Runs of consecutive sectors are read with one call each.
        let mut i = 0;
        while i < sectors.len() {
            let mut j = i + 1;
            while j < sectors.len() && u64::from(sectors[j]) == u64::from(sectors[j - 1]) + 1 {
                j += 1;
            }
            let run_start = (first + i as u64) * sector_len;
            let run_end = (first + j as u64) * sector_len;
            let lo = run_start.max(offset);
            let hi = run_end.min(end);
            let file_offset = self.sector_offset(sectors[i]) + (lo - run_start);
            let len = usize::try_from(hi - lo).map_err(|_| malformed("stream range"))?;
            out.extend(self.src.read_exact(file_offset, len, "stream sector")?);
            i = j;
        }
        Ok(out)
    }

    fn read_mini(&mut self, start: u32, offset: u64, end: u64) -> Result<Vec<u8>, InspectError> {
        let first = offset >> MINI_SECTOR_SHIFT;
        let count = usize::try_from(((end - 1) >> MINI_SECTOR_SHIFT) - first + 1)
            .map_err(|_| malformed("stream range"))?;
        let minis = self.walk(Table::MiniFat, start, first, count)?;
        if minis.len() < count {
            return Err(InspectError::Truncated("mini stream sector chain"));
        }
        let mut out = Vec::with_capacity(usize::try_from(end - offset).unwrap_or(0));
        for (i, mini) in minis.into_iter().enumerate() {
            let piece_start = (first + i as u64) * MINI_SECTOR_LEN;
            let lo = piece_start.max(offset);
            let hi = (piece_start + MINI_SECTOR_LEN).min(end);
            // Where this mini sector sits inside the mini stream, and so in the file.
            let in_ministream = u64::from(mini) * MINI_SECTOR_LEN + (lo - piece_start);
            let index = usize::try_from(in_ministream >> self.sector_shift)
                .map_err(|_| malformed("mini stream offset"))?;
            let sector = self
                .lazy_sector(|cf| &mut cf.ministream, index)?
                .ok_or(InspectError::Truncated("mini stream"))?;
            let file_offset =
                self.sector_offset(sector) + (in_ministream & (self.sector_len() - 1));
            let len = usize::try_from(hi - lo).map_err(|_| malformed("stream range"))?;
            out.extend(
                self.src
                    .read_exact(file_offset, len, "mini stream sector")?,
            );
        }
        Ok(out)
    }
}

/// Checks that the directory is a tree: no entry is reachable twice from the root, so sibling
/// and child links hold no cycle. Links to entries that do not exist are left to lookups, which
/// ignore them.
fn check_tree(entries: &[DirEntry]) -> Result<(), InspectError> {
    let Some(root) = entries.first() else {
        return Ok(());
    };
    let mut visited = vec![false; entries.len()];
    if let Some(v) = visited.first_mut() {
        *v = true;
    }
    let mut stack = vec![root.child];
    // Every entry is expanded at most once and pushes three links, so this ends.
    while let Some(next) = stack.pop() {
        let i = next as usize;
        let (Some(entry), Some(seen)) = (entries.get(i), visited.get_mut(i)) else {
            continue;
        };
        if *seen {
            return Err(malformed("compound file directory has a cycle"));
        }
        *seen = true;
        stack.push(entry.left);
        stack.push(entry.right);
        if entry.kind == Some(EntryKind::Storage) {
            stack.push(entry.child);
        }
    }
    Ok(())
}

fn parse_dir_entry(raw: &[u8], major: u16) -> Result<DirEntry, InspectError> {
    let name_len = usize::from(le::u16(raw, 64)?).min(64);
    let name_bytes = raw.get(..name_len.saturating_sub(2)).unwrap_or(&[]);
    let name = decode_utf16(name_bytes).trim_end_matches('\0').to_string();
    let kind = match raw.get(66) {
        Some(1) => Some(EntryKind::Storage),
        Some(2) => Some(EntryKind::Stream),
        Some(5) => Some(EntryKind::Root),
        _ => None,
    };
    let mut size = le::u64(raw, 120)?;
    // Version 3 files carry a 32-bit size; some writers leave garbage in the high half.
    if major != 4 {
        size &= 0xFFFF_FFFF;
    }
    Ok(DirEntry {
        name,
        kind,
        left: le::u32(raw, 68)?,
        right: le::u32(raw, 72)?,
        child: le::u32(raw, 76)?,
        start: le::u32(raw, 116)?,
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    /// A compound file written by the `cfb` crate with the given streams.
    fn build(version: cfb::Version, streams: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut comp = cfb::CompoundFile::create_with_version(version, Cursor::new(Vec::new()))
            .expect("create");
        for (path, data) in streams {
            if let Some((parent, _)) = path.rsplit_once('/') {
                comp.create_storage_all(parent).expect("storage");
            }
            let mut s = comp.create_stream(path).expect("stream");
            s.write_all(data).expect("write");
        }
        comp.flush().expect("flush");
        comp.into_inner().into_inner()
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn put_u32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Byte offset of directory entry `name` in a version 3 file whose directory fits one sector.
    fn dir_entry_offset(bytes: &[u8], name: &str) -> usize {
        let dir = (u32_at(bytes, 48) as usize + 1) * 512;
        (0..4)
            .map(|i| dir + i * 128)
            .find(|&at| {
                let len = u16::from_le_bytes([bytes[at + 64], bytes[at + 65]]) as usize;
                decode_utf16(&bytes[at..at + len.saturating_sub(2)]) == name
            })
            .expect("entry")
    }

    fn fat_entry_offset(bytes: &[u8], sector: u32) -> usize {
        let fat0 = u32_at(bytes, 76) as usize;
        (fat0 + 1) * 512 + 4 * sector as usize
    }

    #[test]
    fn reads_regular_and_mini_streams_in_both_versions() {
        for version in [cfb::Version::V3, cfb::Version::V4] {
            let big = pattern(70_000, 3);
            let small = pattern(1000, 9);
            let bytes = build(
                version,
                &[
                    ("Big", big.clone()),
                    ("Dir/Small", small.clone()),
                    ("\u{5}Props", b"abc".to_vec()),
                ],
            );
            let src = Bounded::from_bytes(&bytes, 1 << 22);
            let mut cf = CompoundFile::open(&src).unwrap();
            let id = cf.find_stream(&["big"]).unwrap();
            assert_eq!(cf.read_stream(id, usize::MAX).unwrap(), big);
            assert_eq!(cf.read_stream(id, 10).unwrap(), big[..10]);
            assert_eq!(
                cf.read_range(id, 60_001, 5000).unwrap(),
                big[60_001..65_001]
            );
            assert_eq!(cf.read_range(id, 69_990, 100).unwrap(), big[69_990..]);
            assert!(cf.read_range(id, 80_000, 10).unwrap().is_empty());
            let id = cf.find_stream(&["dir", "SMALL"]).unwrap();
            assert_eq!(cf.read_stream(id, usize::MAX).unwrap(), small);
            assert_eq!(cf.read_range(id, 63, 70).unwrap(), small[63..133]);
            let id = cf.find_stream(&["\u{5}props"]).unwrap();
            assert_eq!(cf.read_stream(id, 100).unwrap(), b"abc");
            assert!(cf.find_stream(&["Dir"]).is_none());
            assert!(cf.find(&["Dir"]).is_some());
            assert!(cf.find(&["nothing"]).is_none());
            assert_eq!(cf.children(0).len(), 3);
        }
    }

    #[test]
    fn opening_reads_little_of_a_large_file() {
        let bytes = build(cfb::Version::V3, &[("Big", pattern(3_000_000, 1))]);
        let src = Bounded::from_bytes(&bytes, 1 << 22);
        let mut cf = CompoundFile::open(&src).unwrap();
        assert!(src.spent() < 4096, "{}", src.spent());
        let id = cf.find_stream(&["Big"]).unwrap();
        cf.read_stream(id, 100).unwrap();
        assert!(src.spent() < 8192, "{}", src.spent());
        // Far into the stream: the FAT sectors on the way are read, the data sectors are not.
        cf.read_range(id, 2_999_000, 100).unwrap();
        assert!(src.spent() < 64 * 1024, "{}", src.spent());
    }

    #[test]
    fn large_files_use_difat_sectors() {
        // More than 109 FAT sectors (109 * 128 * 512 bytes ≈ 7 MiB) need DIFAT sectors.
        let big = pattern(8 * 1024 * 1024, 5);
        let bytes = build(cfb::Version::V3, &[("Big", big.clone())]);
        assert!(u32_at(&bytes, 72) >= 1, "fixture needs a DIFAT sector");
        let src = Bounded::from_bytes(&bytes, 1 << 22);
        let mut cf = CompoundFile::open(&src).unwrap();
        let id = cf.find_stream(&["Big"]).unwrap();
        let tail = cf.read_range(id, big.len() as u64 - 1000, 1000).unwrap();
        assert_eq!(tail, big[big.len() - 1000..]);
    }

    #[test]
    fn fat_chain_loop_is_an_error() {
        let mut bytes = build(cfb::Version::V3, &[("Big", pattern(10_000, 2))]);
        let at = dir_entry_offset(&bytes, "Big");
        let start = u32_at(&bytes, at + 116);
        // The stream's third sector points back to its second.
        let third = u32_at(&bytes, fat_entry_offset(&bytes, start + 1));
        let at = fat_entry_offset(&bytes, third);
        put_u32(&mut bytes, at, start + 1);
        let src = Bounded::from_bytes(&bytes, 1 << 22);
        let mut cf = CompoundFile::open(&src).unwrap();
        let id = cf.find_stream(&["Big"]).unwrap();
        let err = cf.read_stream(id, usize::MAX).unwrap_err();
        assert!(err.to_string().contains("loops"), "{err}");
    }

    #[test]
    fn directory_chain_loop_is_an_error() {
        let mut bytes = build(cfb::Version::V3, &[("A", vec![1; 10])]);
        let dir = u32_at(&bytes, 48);
        let at = fat_entry_offset(&bytes, dir);
        put_u32(&mut bytes, at, dir);
        let src = Bounded::from_bytes(&bytes, 1 << 22);
        let err = CompoundFile::open(&src).unwrap_err();
        assert!(err.to_string().contains("loops"), "{err}");
    }

    #[test]
    fn out_of_range_sectors_and_huge_sizes_are_errors() {
        let bytes = build(cfb::Version::V3, &[("Big", pattern(10_000, 2))]);
        let at = dir_entry_offset(&bytes, "Big");

        let mut far = bytes.clone();
        put_u32(&mut far, at + 116, 0x00FF_FFFF);
        let src = Bounded::from_bytes(&far, 1 << 22);
        let mut cf = CompoundFile::open(&src).unwrap();
        let id = cf.find_stream(&["Big"]).unwrap();
        let err = cf.read_stream(id, 100).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");

        let mut huge = bytes.clone();
        put_u32(&mut huge, at + 120, 0xFFFF_FFF0);
        let src = Bounded::from_bytes(&huge, 1 << 22);
        let mut cf = CompoundFile::open(&src).unwrap();
        let id = cf.find_stream(&["Big"]).unwrap();
        let err = cf.read_stream(id, 100).unwrap_err();
        assert!(err.to_string().contains("larger than the file"), "{err}");

        // Longer than its chain but within the file: a capped read works, a full one does not.
        let mut long = bytes.clone();
        let body = bytes.len() as u32 - 512;
        assert!(
            body > 10_240,
            "the file must hold more than the stream's 20 sectors"
        );
        put_u32(&mut long, at + 120, body);
        let src = Bounded::from_bytes(&long, 1 << 22);
        let mut cf = CompoundFile::open(&src).unwrap();
        let id = cf.find_stream(&["Big"]).unwrap();
        assert_eq!(cf.read_stream(id, 100).unwrap().len(), 100);
        assert!(cf.read_stream(id, usize::MAX).is_err());
    }

    #[test]
    fn directory_cycles_are_errors() {
        let bytes = build(
            cfb::Version::V3,
            &[("A", vec![1; 10]), ("B", vec![2; 10]), ("C", vec![3; 10])],
        );
        let dir = (u32_at(&bytes, 48) as usize + 1) * 512;
        let child = u32_at(&bytes, dir + 76);
        // The root's child names itself as its own left sibling; then a link back to the root.
        for target in [child, 0] {
            let mut cyclic = bytes.clone();
            put_u32(&mut cyclic, dir + 128 * child as usize + 68, target);
            let src = Bounded::from_bytes(&cyclic, 1 << 22);
            let err = CompoundFile::open(&src).unwrap_err();
            assert!(err.to_string().contains("cycle"), "{err}");
        }
        // A dangling link is not a cycle: lookups skip it.
        let mut dangling = bytes.clone();
        put_u32(&mut dangling, dir + 128 * child as usize + 68, 999);
        let src = Bounded::from_bytes(&dangling, 1 << 22);
        let cf = CompoundFile::open(&src).unwrap();
        assert!(cf.children(0).len() <= 3);
    }

    #[test]
    fn a_chain_that_turns_back_right_after_the_range_read_is_an_error() {
        let mut bytes = build(cfb::Version::V3, &[("Big", pattern(10_000, 2))]);
        let at = dir_entry_offset(&bytes, "Big");
        let start = u32_at(&bytes, at + 116);
        let fat = fat_entry_offset(&bytes, start);
        put_u32(&mut bytes, fat, start);
        let src = Bounded::from_bytes(&bytes, 1 << 22);
        let mut cf = CompoundFile::open(&src).unwrap();
        let id = cf.find_stream(&["Big"]).unwrap();
        assert!(cf.read_stream(id, 32).is_err());
    }

    #[test]
    fn bad_headers_are_errors() {
        let good = build(cfb::Version::V3, &[("A", vec![1; 10])]);
        let cases: &[(usize, &[u8])] = &[
            (0, b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE0"),
            (28, &[0xFF, 0xFE]),
            (30, &[10, 0]),
            (32, &[7, 0]),
            (44, &[0, 0, 0, 0]),
            (44, &[0, 0, 0, 1]),
            (48, &[0x00, 0x00, 0x00, 0x10]),
            (56, &[0, 0x20, 0, 0]),
        ];
        for (at, patch) in cases {
            let mut bytes = good.clone();
            bytes[*at..*at + patch.len()].copy_from_slice(patch);
            let src = Bounded::from_bytes(&bytes, 1 << 22);
            assert!(CompoundFile::open(&src).is_err(), "patch at {at}");
        }
        let src = Bounded::from_bytes(&good[..300], 1 << 22);
        assert!(CompoundFile::open(&src).is_err());
    }

    #[test]
    fn the_budget_bounds_everything() {
        let bytes = build(cfb::Version::V3, &[("Big", pattern(100_000, 4))]);
        let src = Bounded::from_bytes(&bytes, 5000);
        let mut cf = CompoundFile::open(&src).unwrap();
        let id = cf.find_stream(&["Big"]).unwrap();
        assert!(matches!(
            cf.read_stream(id, usize::MAX),
            Err(InspectError::Budget(5000))
        ));
    }

    #[test]
    fn names_compare_case_insensitively() {
        assert!(names_equal("WordDocument", "worddocument"));
        assert!(names_equal(
            "\u{5}SummaryInformation",
            "\u{5}summaryinformation"
        ));
        assert!(!names_equal("Workbook", "Book"));
    }
}

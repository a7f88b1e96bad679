//! Bounded random access to a file's bytes: every parser reads through a [`Bounded`] source that
//! charges each read against a per-file budget, so no malformed offset, loop or length field can
//! make inspection read (or allocate) more than the budget, whatever the file says.

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Random-access bytes: a file (read with `pread`, which leaves the file offset alone) or a slice.
pub trait ReadAt {
    /// Total size in bytes.
    fn size(&self) -> u64;
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at the end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

impl ReadAt for &[u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        let Some(rest) = self.get(start..) else {
            return Ok(0);
        };
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
}

/// A file together with the size it had when it was opened.
#[derive(Debug)]
pub struct FileSource<'f> {
    file: &'f File,
    size: u64,
}

impl<'f> FileSource<'f> {
    /// Wraps an open file whose size is `size`.
    pub fn new(file: &'f File, size: u64) -> Self {
        FileSource { file, size }
    }
}

impl ReadAt for FileSource<'_> {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

/// Why a parser stopped.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The structure ends before the data it announces.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// The per-file read budget is spent.
    #[error("read budget of {0} bytes exhausted")]
    Budget(u64),
    /// The structure is invalid.
    #[error("malformed {0}")]
    Malformed(String),
    /// Reading failed.
    #[error("read error: {0}")]
    Io(#[from] io::Error),
}

impl InspectError {
    /// A malformed-structure error with a description.
    pub fn malformed(what: impl Into<String>) -> Self {
        InspectError::Malformed(what.into())
    }
}

/// Default number of bytes inspection may read from one file.
pub const DEFAULT_BUDGET: u64 = 4 * 1024 * 1024;

/// A source whose reads are charged against a budget.
pub struct Bounded<'a> {
    inner: Inner<'a>,
    budget: u64,
    left: Cell<u64>,
    /// The first bytes of the data, already read: reads inside them need no system call.
    head: &'a [u8],
}

enum Inner<'a> {
    Dyn(&'a dyn ReadAt),
    Bytes(&'a [u8]),
}

impl Inner<'_> {
    fn get(&self) -> &dyn ReadAt {
        match self {
            Inner::Dyn(r) => *r,
            Inner::Bytes(b) => b,
        }
    }
}

impl std::fmt::Debug for Bounded<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bounded")
            .field("size", &self.size())
            .field("left", &self.left.get())
            .finish()
    }
}

impl<'a> Bounded<'a> {
    /// A source that may read at most `budget` bytes in all.
    pub fn new(inner: &'a dyn ReadAt, budget: u64) -> Self {
        Bounded {
            inner: Inner::Dyn(inner),
            budget,
            left: Cell::new(budget),
            head: &[],
        }
    }

    /// Like [`Bounded::new`], with the data's first bytes already read (`head` must be exactly
    /// the bytes at offset 0): reads that fall inside them are served from memory, so a small
    /// file is read from disk once however many parsers look at it.
    pub fn with_head(inner: &'a dyn ReadAt, budget: u64, head: &'a [u8]) -> Self {
        Bounded {
            head,
            ..Bounded::new(inner, budget)
        }
    }

    /// A source over bytes in memory (tests, fuzzing, parts already extracted).
    pub fn from_bytes(bytes: &'a [u8], budget: u64) -> Self {
        Bounded {
            inner: Inner::Bytes(bytes),
            budget,
            left: Cell::new(budget),
            head: &[],
        }
    }

    /// Total size of the underlying bytes.
    pub fn size(&self) -> u64 {
        self.inner.get().size()
    }

    /// Bytes read so far.
    pub fn spent(&self) -> u64 {
        self.budget - self.left.get()
    }

    fn charge(&self, len: usize) -> Result<(), InspectError> {
        let len = len as u64;
        let left = self.left.get();
        if len > left {
            self.left.set(0);
            return Err(InspectError::Budget(self.budget));
        }
        self.left.set(left - len);
        Ok(())
    }

    /// Reads up to `len` bytes at `offset`; fewer at the end of the data.
    pub fn read_up_to(&self, offset: u64, len: usize) -> Result<Vec<u8>, InspectError> {
        let size = self.size();
        if offset >= size {
            return Ok(Vec::new());
        }
        let len = usize::try_from((size - offset).min(len as u64)).unwrap_or(len);
        self.charge(len)?;
        if let Some(cached) = usize::try_from(offset)
            .ok()
            .and_then(|start| self.head.get(start..start.checked_add(len)?))
        {
            return Ok(cached.to_vec());
        }
        let mut buf = vec![0; len];
        let n = self.inner.get().read_at(offset, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Reads exactly `len` bytes at `offset`, or fails with `Truncated(what)`.
    pub fn read_exact(
        &self,
        offset: u64,
        len: usize,
        what: &'static str,
    ) -> Result<Vec<u8>, InspectError> {
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > self.size())
        {
            return Err(InspectError::Truncated(what));
        }
        let buf = self.read_up_to(offset, len)?;
        if buf.len() < len {
            return Err(InspectError::Truncated(what));
        }
        Ok(buf)
    }

    /// The last `len` bytes (fewer if the data is shorter), with the offset they start at.
    pub fn tail(&self, len: usize) -> Result<(u64, Vec<u8>), InspectError> {
        let start = self.size().saturating_sub(len as u64);
        Ok((start, self.read_up_to(start, len)?))
    }
}

/// Little-endian integer readers over byte slices that fail instead of panicking.
pub mod le {
    use super::InspectError;

    /// `u16` at `at`.
    pub fn u16(b: &[u8], at: usize) -> Result<u16, InspectError> {
        b.get(at..at.wrapping_add(2))
            .and_then(|s| s.try_into().ok())
            .map(u16::from_le_bytes)
            .ok_or(InspectError::Truncated("field"))
    }

    /// `u32` at `at`.
    pub fn u32(b: &[u8], at: usize) -> Result<u32, InspectError> {
        b.get(at..at.wrapping_add(4))
            .and_then(|s| s.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or(InspectError::Truncated("field"))
    }

    /// `u64` at `at`.
    pub fn u64(b: &[u8], at: usize) -> Result<u64, InspectError> {
        b.get(at..at.wrapping_add(8))
            .and_then(|s| s.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or(InspectError::Truncated("field"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_charged_and_stop_at_the_budget() {
        let data = vec![7u8; 100];
        let src = Bounded::from_bytes(&data, 50);
        assert_eq!(src.read_up_to(0, 30).unwrap().len(), 30);
        assert_eq!(src.spent(), 30);
        assert!(matches!(
            src.read_up_to(30, 30),
            Err(InspectError::Budget(50))
        ));
    }

    #[test]
    fn reads_inside_the_head_come_from_memory() {
        struct Counting<'d>(&'d [u8], std::cell::Cell<u32>);
        impl ReadAt for Counting<'_> {
            fn size(&self) -> u64 {
                self.0.len() as u64
            }
            fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
                self.1.set(self.1.get() + 1);
                (&self.0).read_at(offset, buf)
            }
        }
        let data: Vec<u8> = (0..=255).collect();
        let counting = Counting(&data, std::cell::Cell::new(0));
        let src = Bounded::with_head(&counting, 1000, &data[..100]);
        assert_eq!(src.read_up_to(10, 20).unwrap(), data[10..30].to_vec());
        assert_eq!(src.read_exact(0, 100, "x").unwrap(), data[..100].to_vec());
        assert_eq!(counting.1.get(), 0, "served from the head");
        assert_eq!(src.spent(), 120, "still charged to the budget");
        // Past the head the file is read.
        assert_eq!(src.read_up_to(90, 20).unwrap(), data[90..110].to_vec());
        assert_eq!(counting.1.get(), 1);
    }

    #[test]
    fn exact_reads_past_the_end_are_truncation_not_panics() {
        let data = [1u8, 2, 3];
        let src = Bounded::from_bytes(&data, 1000);
        assert!(matches!(
            src.read_exact(2, 5, "x"),
            Err(InspectError::Truncated("x"))
        ));
        assert!(matches!(
            src.read_exact(u64::MAX, 5, "x"),
            Err(InspectError::Truncated("x"))
        ));
        assert_eq!(src.read_up_to(10, 5).unwrap(), Vec::<u8>::new());
        assert_eq!(src.tail(2).unwrap(), (1, vec![2, 3]));
        assert!(le::u32(&data, 1).is_err());
        assert!(le::u16(&data, usize::MAX).is_err());
    }
}

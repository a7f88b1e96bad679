//! ZIP and OOXML inspection through the public `inspect` API, on archives made by the real tools
//! (Info-ZIP `zip` from the Debian package `zip`, 7-Zip from `p7zip-full`), by the `zip` crate
//! writer (OOXML packages, AES, Zip64), and from APPNOTE.TXT bytes where no tool writes the
//! structure (PKWARE strong encryption, encrypted central directories, lying flags, bombs).
//! Every encrypted case has a plain control built the same way.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use infoledger_agent::inspect::zip as inspect_zip;
use infoledger_agent::inspect::{inspect, Bounded, Inspection};
use infoledger_policies::{EncryptionStatus, LabelSource};
use proptest::prelude::*;
use zip::write::{FileOptions, SimpleFileOptions};
use zip::{AesMode, CompressionMethod, ZipWriter};

const BUDGET: u64 = 4 * 1024 * 1024;

const G1: &str = "3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d";
const G2: &str = "9a7c1f30-2b4d-4e8f-a1c2-5d6e7f809112";
const T1: &str = "0b1c2d3e-0000-4000-8000-000000000001";
const T2: &str = "0b1c2d3e-0000-4000-8000-000000000002";

fn run(bytes: &[u8], name: &str) -> Inspection {
    inspect(
        &Bounded::from_bytes(bytes, BUDGET),
        &bytes[..bytes.len().min(4096)],
        name,
    )
}

/// The readable central directory of an archive the test built.
fn directory(src: &Bounded<'_>) -> inspect_zip::Archive {
    match inspect_zip::read_directory(src).expect("directory") {
        inspect_zip::Directory::Readable(archive) => archive,
        other => panic!("directory not readable: {other:?}"),
    }
}

fn assert_verdict(i: &Inspection, status: EncryptionStatus, scheme: &str) {
    assert_eq!(i.encryption.status, status, "{i:#?}");
    assert_eq!(i.encryption.scheme.as_deref(), Some(scheme), "{i:#?}");
}

// ---------------------------------------------------------------------------------------------
// Real tools
// ---------------------------------------------------------------------------------------------

/// A fresh scratch directory under the target's test temp dir.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("inspect-zip-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Runs a tool in `dir`; a missing tool fails the test with the package that provides it.
fn tool(dir: &Path, program: &str, package: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{program}` ({e}): install the Debian package `{package}`")
        });
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes the sample files the tool fixtures archive.
fn sample_files(dir: &Path) {
    let mut report = String::new();
    for i in 0..200 {
        report.push_str(&format!("line {i}: quarterly figures, confidential\n"));
    }
    std::fs::write(dir.join("report.txt"), report).expect("write sample");
    std::fs::write(dir.join("notes.txt"), "short note\n").expect("write sample");
    std::fs::write(dir.join("public.txt"), "nothing secret here\n").expect("write sample");
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).expect("read archive")
}

/// `zip -e -P secret` (traditional PKWARE encryption) and its plain control.
fn info_zip_traditional() -> (Vec<u8>, Vec<u8>) {
    let dir = scratch("traditional");
    sample_files(&dir);
    tool(
        &dir,
        "zip",
        "zip",
        &[
            "-q",
            "-e",
            "-P",
            "secret",
            "enc.zip",
            "report.txt",
            "notes.txt",
        ],
    );
    tool(
        &dir,
        "zip",
        "zip",
        &["-q", "plain.zip", "report.txt", "notes.txt"],
    );
    (read(&dir, "enc.zip"), read(&dir, "plain.zip"))
}

/// `7z a -tzip -mem=<mode> -psecret` (WinZip AES) and its plain control.
fn seven_zip_aes(mode: &str) -> (Vec<u8>, Vec<u8>) {
    let dir = scratch(&format!("7z-{mode}"));
    sample_files(&dir);
    let em = format!("-mem={mode}");
    tool(
        &dir,
        "7z",
        "p7zip-full",
        &[
            "a",
            "-bd",
            "-tzip",
            &em,
            "-psecret",
            "enc.zip",
            "report.txt",
            "notes.txt",
        ],
    );
    tool(
        &dir,
        "7z",
        "p7zip-full",
        &["a", "-bd", "-tzip", "plain.zip", "report.txt", "notes.txt"],
    );
    (read(&dir, "enc.zip"), read(&dir, "plain.zip"))
}

/// `zip -e` for one file, then a plain file added with `zip`.
fn info_zip_partial() -> Vec<u8> {
    let dir = scratch("partial");
    sample_files(&dir);
    tool(
        &dir,
        "zip",
        "zip",
        &["-q", "-e", "-P", "secret", "mixed.zip", "report.txt"],
    );
    tool(&dir, "zip", "zip", &["-q", "mixed.zip", "public.txt"]);
    read(&dir, "mixed.zip")
}

/// `zip -fz` forces Zip64 records; with and without `-e`.
fn info_zip_zip64() -> (Vec<u8>, Vec<u8>) {
    let dir = scratch("zip64");
    sample_files(&dir);
    tool(
        &dir,
        "zip",
        "zip",
        &["-q", "-fz", "plain.zip", "report.txt", "notes.txt"],
    );
    tool(
        &dir,
        "zip",
        "zip",
        &[
            "-q",
            "-fz",
            "-e",
            "-P",
            "secret",
            "enc.zip",
            "report.txt",
            "notes.txt",
        ],
    );
    (read(&dir, "plain.zip"), read(&dir, "enc.zip"))
}

#[test]
fn traditional_encryption_from_info_zip_is_encrypted_and_its_control_plaintext() {
    let (enc, plain) = info_zip_traditional();
    let i = run(&enc, "backup.zip");
    assert_verdict(&i, EncryptionStatus::Encrypted, "zip-traditional");
    assert_eq!(
        i.encryption.detail.as_deref(),
        Some("2 of 2 entries encrypted")
    );
    assert_eq!(i.format, "zip");
    assert!(i.errors.is_empty(), "{:?}", i.errors);

    let i = run(&plain, "backup.zip");
    assert_verdict(&i, EncryptionStatus::Plaintext, "zip");
    assert!(i.errors.is_empty(), "{:?}", i.errors);
}

#[test]
fn aes_from_seven_zip_is_encrypted_with_mode_and_strength_and_its_control_plaintext() {
    for (mode, strength) in [("AES256", "AES-256"), ("AES128", "AES-128")] {
        let (enc, plain) = seven_zip_aes(mode);
        let i = run(&enc, "backup.zip");
        assert_verdict(&i, EncryptionStatus::Encrypted, "zip-aes");
        let detail = i.encryption.detail.clone().unwrap_or_default();
        assert!(detail.starts_with("2 of 2 entries encrypted"), "{detail}");
        assert!(
            detail.contains(strength) && detail.contains("AE-"),
            "{detail}"
        );
        assert!(i.errors.is_empty(), "{:?}", i.errors);

        let i = run(&plain, "backup.zip");
        assert_verdict(&i, EncryptionStatus::Plaintext, "zip");
    }
}

#[test]
fn an_encrypted_entry_next_to_a_plain_one_makes_the_archive_partial() {
    let i = run(&info_zip_partial(), "mixed.zip");
    assert_verdict(&i, EncryptionStatus::Partial, "zip-traditional");
    assert_eq!(
        i.encryption.detail.as_deref(),
        Some("1 of 2 entries encrypted")
    );
}

#[test]
fn zip64_archives_from_info_zip_are_read() {
    let (plain, enc) = info_zip_zip64();
    // `-fz` writes a Zip64 end record and locator and saturates the 32-bit directory offset.
    assert!(plain.windows(4).any(|w| w == b"PK\x06\x06"));
    assert!(plain.windows(4).any(|w| w == b"PK\x06\x07"));
    let src = Bounded::from_bytes(&plain, BUDGET);
    let archive = directory(&src);
    assert!(archive.zip64 && archive.complete);
    assert_eq!(archive.entries.len(), 2);
    assert_verdict(&run(&plain, "big.zip"), EncryptionStatus::Plaintext, "zip");
    assert_verdict(
        &run(&enc, "big.zip"),
        EncryptionStatus::Encrypted,
        "zip-traditional",
    );
}

// ---------------------------------------------------------------------------------------------
// The zip crate writer
// ---------------------------------------------------------------------------------------------

fn stored() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(CompressionMethod::Stored)
}

fn deflated() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(CompressionMethod::Deflated)
}

enum Item<'a> {
    File(&'a str, &'a [u8], FileOptions<'a, ()>),
    Dir(&'a str),
}

fn zip_of(items: Vec<Item<'_>>, zip64: bool) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    for item in items {
        match item {
            Item::File(name, data, options) => {
                w.start_file(name, options).expect("start file");
                w.write_all(data).expect("write entry");
            }
            Item::Dir(name) => w.add_directory(name, deflated()).expect("add directory"),
        }
    }
    if zip64 {
        // A Zip64 comment makes the writer emit the Zip64 end record and locator.
        w.set_zip64_comment(Some("zip64"));
    }
    w.finish().expect("finish zip").into_inner()
}

const TEXT: &[u8] = b"The quarterly figures are confidential until the announcement.\n";

#[test]
fn aes_on_some_entries_is_partial_and_directories_and_empty_files_do_not_count() {
    let aes = deflated().with_aes_encryption(AesMode::Aes256, "secret");
    let partial = zip_of(
        vec![
            Item::Dir("docs/"),
            Item::File("docs/a.txt", TEXT, aes),
            Item::File("docs/b.txt", TEXT, aes),
            Item::File("docs/c.txt", TEXT, deflated()),
            Item::File("docs/empty.txt", b"", deflated()),
        ],
        false,
    );
    let i = run(&partial, "docs.zip");
    assert_verdict(&i, EncryptionStatus::Partial, "zip-aes");
    let detail = i.encryption.detail.unwrap_or_default();
    assert!(detail.starts_with("2 of 3 entries encrypted"), "{detail}");
    assert!(detail.contains("AES-256"), "{detail}");

    // Only the empty file and the directory are plain: nothing readable is exposed.
    let aes128 = deflated().with_aes_encryption(AesMode::Aes128, "secret");
    let all = zip_of(
        vec![
            Item::Dir("docs/"),
            Item::File("docs/a.txt", TEXT, aes128),
            Item::File("docs/empty.txt", b"", deflated()),
        ],
        false,
    );
    let i = run(&all, "docs.zip");
    assert_verdict(&i, EncryptionStatus::Encrypted, "zip-aes");
    assert!(i.encryption.detail.unwrap_or_default().contains("AES-128"));

    let plain = zip_of(
        vec![
            Item::Dir("docs/"),
            Item::File("docs/a.txt", TEXT, deflated()),
            Item::File("docs/b.txt", TEXT, stored()),
        ],
        false,
    );
    assert_verdict(&run(&plain, "docs.zip"), EncryptionStatus::Plaintext, "zip");
}

#[test]
fn zip64_archives_from_the_zip_crate_are_read() {
    let big = deflated().large_file(true);
    let plain = zip_of(
        vec![
            Item::File("a.txt", TEXT, big),
            Item::File("b.txt", TEXT, big),
        ],
        true,
    );
    assert!(plain.windows(4).any(|w| w == b"PK\x06\x06"));
    assert_verdict(&run(&plain, "a.zip"), EncryptionStatus::Plaintext, "zip");
    let enc = zip_of(
        vec![Item::File(
            "a.txt",
            TEXT,
            big.with_aes_encryption(AesMode::Aes256, "pw"),
        )],
        true,
    );
    assert_verdict(&run(&enc, "a.zip"), EncryptionStatus::Encrypted, "zip-aes");
}

// ---------------------------------------------------------------------------------------------
// Bytes from APPNOTE.TXT
// ---------------------------------------------------------------------------------------------

fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).expect("deflate");
    enc.finish().expect("deflate")
}

/// One entry of a hand-built archive.
#[derive(Clone)]
struct Raw {
    name: Vec<u8>,
    version: u16,
    flags: u16,
    local_flags: u16,
    method: u16,
    crc: u32,
    usize: u32,
    data: Vec<u8>,
    extra: Vec<u8>,
}

impl Raw {
    /// A deflated plain entry.
    fn deflated(name: &str, content: &[u8]) -> Raw {
        Raw {
            name: name.as_bytes().to_vec(),
            version: 20,
            flags: 0,
            local_flags: 0,
            method: 8,
            crc: crc32(content),
            usize: content.len() as u32,
            data: deflate(content),
            extra: Vec::new(),
        }
    }
}

fn u16le(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn u32le(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn u64le(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn local_header(out: &mut Vec<u8>, e: &Raw) {
    u32le(out, 0x0403_4b50);
    u16le(out, e.version);
    u16le(out, e.local_flags);
    u16le(out, e.method);
    u32le(out, 0); // time, date
    u32le(out, e.crc);
    u32le(out, e.data.len() as u32);
    u32le(out, e.usize);
    u16le(out, e.name.len() as u16);
    u16le(out, e.extra.len() as u16);
    out.extend_from_slice(&e.name);
    out.extend_from_slice(&e.extra);
}

fn central_header(out: &mut Vec<u8>, e: &Raw, offset: u32) {
    u32le(out, 0x0201_4b50);
    u16le(out, 0x0300 | e.version);
    u16le(out, e.version);
    u16le(out, e.flags);
    u16le(out, e.method);
    u32le(out, 0);
    u32le(out, e.crc);
    u32le(out, e.data.len() as u32);
    u32le(out, e.usize);
    u16le(out, e.name.len() as u16);
    u16le(out, e.extra.len() as u16);
    u16le(out, 0); // comment
    u16le(out, 0); // disk
    u16le(out, 0); // internal attributes
    u32le(out, 0o100644 << 16);
    u32le(out, offset);
    out.extend_from_slice(&e.name);
    out.extend_from_slice(&e.extra);
}

/// Local headers with data, the central directory and the end record (APPNOTE 4.3.6).
fn raw_zip(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for e in entries {
        offsets.push(out.len() as u32);
        local_header(&mut out, e);
        out.extend_from_slice(&e.data);
    }
    let cd_start = out.len();
    for (e, &off) in entries.iter().zip(&offsets) {
        central_header(&mut out, e, off);
    }
    let cd_size = out.len() - cd_start;
    u32le(&mut out, 0x0605_4b50);
    u32le(&mut out, 0);
    u16le(&mut out, entries.len() as u16);
    u16le(&mut out, entries.len() as u16);
    u32le(&mut out, cd_size as u32);
    u32le(&mut out, cd_start as u32);
    u16le(&mut out, 0);
    out
}

/// A strong encryption decryption header (APPNOTE 7.2.4) for AES-256 with a password, followed
/// by `ciphertext`.
fn decryption_header(ciphertext: &[u8]) -> Vec<u8> {
    let mut rest = Vec::new();
    u16le(&mut rest, 3); // Format
    u16le(&mut rest, 0x6610); // AlgID: AES-256
    u16le(&mut rest, 256); // Bitlen
    u16le(&mut rest, 0x0001); // Flags: password required
    u16le(&mut rest, 32); // ErdSize
    rest.extend((0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(11)));
    u32le(&mut rest, 0); // Reserved1: no certificate recipients
    u16le(&mut rest, 20); // VSize
    rest.extend((0..16u8).map(|i| i.wrapping_mul(91).wrapping_add(3)));
    u32le(&mut rest, 0x1234_5678); // VCRC32
    let mut h = Vec::new();
    u16le(&mut h, 16); // IVSize
    h.extend((0..16u8).map(|i| i.wrapping_mul(13).wrapping_add(7)));
    u32le(&mut h, rest.len() as u32);
    h.extend_from_slice(&rest);
    h.extend_from_slice(ciphertext);
    h
}

/// Bytes that look like ciphertext (no structure, no compressible runs).
fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as u8
        })
        .collect()
}

/// An entry with PKWARE strong encryption: flag bits 0 and 6, extra field 0x0017 (4.5.12) and
/// the decryption header before the data (7.2.4).
fn strong_entry(name: &str) -> Raw {
    let mut extra = Vec::new();
    u16le(&mut extra, 0x0017);
    u16le(&mut extra, 8);
    u16le(&mut extra, 2); // Format
    u16le(&mut extra, 0x6610); // AlgID: AES-256
    u16le(&mut extra, 256); // Bitlen
    u16le(&mut extra, 0x0001); // Flags
    Raw {
        name: name.as_bytes().to_vec(),
        version: 51,
        flags: 0x41,
        local_flags: 0x41,
        method: 8,
        crc: crc32(TEXT),
        usize: TEXT.len() as u32,
        data: decryption_header(&noise(80, 1)),
        extra,
    }
}

#[test]
fn strong_encryption_is_encrypted_with_its_algorithm_and_its_control_plaintext() {
    let enc = raw_zip(&[strong_entry("a.txt"), strong_entry("b.txt")]);
    let i = run(&enc, "secure.zip");
    assert_verdict(&i, EncryptionStatus::Encrypted, "zip-strong");
    assert_eq!(
        i.encryption.detail.as_deref(),
        Some("2 of 2 entries encrypted; AES-256")
    );
    assert!(i.errors.is_empty(), "{:?}", i.errors);

    let mixed = raw_zip(&[strong_entry("a.txt"), Raw::deflated("b.txt", TEXT)]);
    assert_verdict(
        &run(&mixed, "secure.zip"),
        EncryptionStatus::Partial,
        "zip-strong",
    );

    let plain = raw_zip(&[Raw::deflated("a.txt", TEXT), Raw::deflated("b.txt", TEXT)]);
    let i = run(&plain, "secure.zip");
    assert_verdict(&i, EncryptionStatus::Plaintext, "zip");
    assert!(i.errors.is_empty(), "{:?}", i.errors);
}

/// How a hand-built encrypted central directory announces itself.
#[derive(Clone, Copy)]
struct DirectoryEncryption {
    /// A version 2 Zip64 end record with the algorithm (APPNOTE 7.3.4).
    zip64_v2: bool,
    /// An archive extra data record before the directory (4.3.11).
    extra_record: bool,
}

/// An archive whose central directory is encrypted (APPNOTE 7.3): masked local headers (bit 13,
/// sequential hex names), an archive decryption header, optionally an archive extra data record,
/// the encrypted directory, the Zip64 end record and locator, and an end record whose fields
/// are saturated.
fn encrypted_directory(how: DirectoryEncryption) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, name) in ["1", "2"].iter().enumerate() {
        let e = Raw {
            name: name.as_bytes().to_vec(),
            version: 62,
            flags: 0x2041,
            local_flags: 0x2041,
            method: 8,
            crc: 0,
            usize: 0,
            data: decryption_header(&noise(96, n as u32 + 7)),
            extra: Vec::new(),
        };
        local_header(&mut out, &e);
        out.extend_from_slice(&e.data);
    }
    let cd_start = out.len();
    out.extend_from_slice(&decryption_header(&[]));
    if how.extra_record {
        u32le(&mut out, 0x0806_4b50);
        u32le(&mut out, 12);
        u16le(&mut out, 0x0017);
        u16le(&mut out, 8);
        out.extend_from_slice(&[2, 0, 0x10, 0x66, 0, 1, 1, 0]);
    }
    out.extend_from_slice(&noise(160, 99));
    let cd_size = (out.len() - cd_start) as u64;
    let record_at = out.len() as u64;
    u32le(&mut out, 0x0606_4b50);
    let v2 = if how.zip64_v2 { 28 } else { 0 };
    u64le(&mut out, 44 + v2);
    u16le(&mut out, if how.zip64_v2 { 0x033E } else { 0x032D });
    u16le(&mut out, if how.zip64_v2 { 62 } else { 45 });
    u32le(&mut out, 0);
    u32le(&mut out, 0);
    u64le(&mut out, 2);
    u64le(&mut out, 2);
    u64le(&mut out, cd_size);
    u64le(&mut out, cd_start as u64);
    if how.zip64_v2 {
        u16le(&mut out, 8); // Method: deflated before encryption
        u64le(&mut out, 160); // Compressed size
        u64le(&mut out, 300); // Original size
        u16le(&mut out, 0x6610); // AlgId: AES-256
        u16le(&mut out, 256); // BitLen
        u16le(&mut out, 0x0001); // Flags
        u16le(&mut out, 0); // HashID
        u16le(&mut out, 0); // Hash length
    }
    u32le(&mut out, 0x0706_4b50);
    u32le(&mut out, 0);
    u64le(&mut out, record_at);
    u32le(&mut out, 1);
    u32le(&mut out, 0x0605_4b50);
    u32le(&mut out, 0);
    u16le(&mut out, 0xFFFF);
    u16le(&mut out, 0xFFFF);
    u32le(&mut out, 0xFFFF_FFFF);
    u32le(&mut out, 0xFFFF_FFFF);
    u16le(&mut out, 0);
    out
}

#[test]
fn an_encrypted_central_directory_is_encrypted_however_it_is_announced() {
    for (zip64_v2, extra_record) in [(true, true), (true, false), (false, true), (false, false)] {
        let how = DirectoryEncryption {
            zip64_v2,
            extra_record,
        };
        let i = run(&encrypted_directory(how), "vault.zip");
        assert_verdict(&i, EncryptionStatus::Encrypted, "zip-encrypted-directory");
        assert!(i.errors.is_empty(), "{:?}", i.errors);
        if zip64_v2 {
            assert!(i.encryption.detail.unwrap_or_default().contains("AES-256"));
        }
    }
    // Control: the same entries with readable headers and directory.
    let plain = raw_zip(&[Raw::deflated("1", TEXT), Raw::deflated("2", TEXT)]);
    assert_verdict(
        &run(&plain, "vault.zip"),
        EncryptionStatus::Plaintext,
        "zip",
    );
    // A directory that is neither readable nor announced as encrypted is an error, not a verdict.
    let mut damaged = plain.clone();
    let cd = find_central(&damaged, b"1");
    damaged[cd..cd + 4].copy_from_slice(b"XXXX");
    let i = run(&damaged, "vault.zip");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown);
    assert!(!i.errors.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Lying flags
// ---------------------------------------------------------------------------------------------

/// The offset of the central directory header of `name`.
fn find_central(zip: &[u8], name: &[u8]) -> usize {
    (0..zip.len().saturating_sub(46))
        .find(|&p| {
            zip[p..p + 4] == *b"PK\x01\x02"
                && usize::from(u16::from_le_bytes([zip[p + 28], zip[p + 29]])) == name.len()
                && zip.get(p + 46..p + 46 + name.len()) == Some(name)
        })
        .expect("central header of the entry")
}

/// The offset of the local header of the entry whose central header is at `cd`.
fn local_of(zip: &[u8], cd: usize) -> usize {
    u32::from_le_bytes([zip[cd + 42], zip[cd + 43], zip[cd + 44], zip[cd + 45]]) as usize
}

fn set_u16(zip: &mut [u8], at: usize, v: u16) {
    zip[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn get_u16(zip: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([zip[at], zip[at + 1]])
}

/// Sets (or clears) the encryption flag of an entry in the central and local headers.
fn flag_entry(zip: &mut [u8], name: &str, central: bool, local: bool) {
    let cd = find_central(zip, name.as_bytes());
    let lh = local_of(zip, cd);
    let set = |v: u16, on: bool| if on { v | 1 } else { v & !1 };
    let (c, l) = (get_u16(zip, cd + 8), get_u16(zip, lh + 6));
    set_u16(zip, cd + 8, set(c, central));
    set_u16(zip, lh + 6, set(l, local));
}

#[test]
fn an_encryption_flag_on_readable_data_is_exposed_as_a_lie() {
    let plain = raw_zip(&[
        Raw::deflated("a.txt", TEXT),
        Raw {
            method: 0,
            data: TEXT.to_vec(),
            ..Raw::deflated("b.txt", TEXT)
        },
        Raw {
            method: 0,
            data: b"tiny".to_vec(),
            crc: crc32(b"tiny"),
            usize: 4,
            ..Raw::deflated("c.txt", b"")
        },
    ]);
    assert_verdict(&run(&plain, "a.zip"), EncryptionStatus::Plaintext, "zip");

    // The flag set in both headers of every entry: the data still inflates to its CRC-32.
    let mut all = plain.clone();
    for name in ["a.txt", "b.txt", "c.txt"] {
        flag_entry(&mut all, name, true, true);
    }
    let i = run(&all, "a.zip");
    assert_verdict(&i, EncryptionStatus::Plaintext, "zip");
    assert_eq!(
        i.encryption.detail.as_deref(),
        Some("encryption flag on 3 of 3 entries contradicted by readable data")
    );
    assert!(
        i.errors
            .iter()
            .chain(&i.notes)
            .any(|e| e.contains("a.txt") && e.contains("readable")),
        "{:?}",
        i.errors
    );

    // Set in the central directory only.
    let mut central_only = plain.clone();
    flag_entry(&mut central_only, "a.txt", true, false);
    assert_verdict(
        &run(&central_only, "a.zip"),
        EncryptionStatus::Plaintext,
        "zip",
    );

    // Method 99 without the AES extra field: nothing to verify it with, so no verdict.
    let mut aes_claim = plain.clone();
    flag_entry(&mut aes_claim, "a.txt", true, true);
    let cd = find_central(&aes_claim, b"a.txt");
    let lh = local_of(&aes_claim, cd);
    set_u16(&mut aes_claim, cd + 10, 99);
    set_u16(&mut aes_claim, lh + 8, 99);
    let i = run(&aes_claim, "a.zip");
    assert_verdict(&i, EncryptionStatus::Unknown, "zip");
    assert!(
        i.errors
            .iter()
            .chain(&i.notes)
            .any(|e| e.contains("0x9901")),
        "{:?}",
        i.errors
    );
}

#[test]
fn a_local_header_that_disagrees_with_encrypted_data_leaves_the_verdict_unknown() {
    let (enc, _) = info_zip_traditional();
    let mut lying = enc.clone();
    // The local header claims the first entry is plain; its data is ciphertext.
    flag_entry(&mut lying, "report.txt", true, false);
    let i = run(&lying, "backup.zip");
    assert_verdict(&i, EncryptionStatus::Unknown, "zip");
    assert!(
        i.errors
            .iter()
            .chain(&i.notes)
            .any(|e| e.contains("local header")),
        "{:?}",
        i.errors
    );
    // Clearing the flag in both headers does not make ciphertext readable either: the entry
    // counts as plain (nothing contradicts it), so the archive is partial, not encrypted.
    let mut cleared = enc.clone();
    flag_entry(&mut cleared, "report.txt", false, false);
    assert_verdict(
        &run(&cleared, "backup.zip"),
        EncryptionStatus::Partial,
        "zip-traditional",
    );
}

// ---------------------------------------------------------------------------------------------
// OOXML packages
// ---------------------------------------------------------------------------------------------

const DOCX_MAIN: &str =
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml";
const XLSX_MAIN: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml";
const XLSM_MAIN: &str = "application/vnd.ms-excel.sheet.macroEnabled.main+xml";
const PPTX_MAIN: &str =
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml";

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Word,
    Excel(&'static str),
    PowerPoint,
}

/// What a test package holds.
#[derive(Clone)]
struct Doc {
    kind: Kind,
    custom: Option<String>,
    label_info: Option<String>,
    /// Target of the label-information relationship as written in `_rels/.rels`.
    label_target: &'static str,
    /// Part name the label-information part is stored under.
    label_part: &'static str,
}

impl Doc {
    fn word() -> Doc {
        Doc {
            kind: Kind::Word,
            custom: None,
            label_info: None,
            label_target: "docMetadata/LabelInfo.xml",
            label_part: "docMetadata/LabelInfo.xml",
        }
    }
    fn custom(mut self, props: &[(&str, &str, &str)]) -> Doc {
        self.custom = Some(custom_xml(props));
        self
    }
    fn labels(mut self, xml: String) -> Doc {
        self.label_info = Some(xml);
        self
    }
}

fn custom_xml(props: &[(&str, &str, &str)]) -> String {
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">"#,
    );
    for (pid, (name, kind, value)) in props.iter().enumerate() {
        xml.push_str(&format!(
            r#"<property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="{}" name="{name}"><vt:{kind}>{value}</vt:{kind}></property>"#,
            pid + 2
        ));
    }
    xml.push_str("</Properties>");
    xml
}

/// The `MSIP_Label_*` properties Office writes for a label (an exported file often has only
/// Enabled, Method and SiteId).
fn msip_props(guid: &str, tenant: &str, name: Option<&str>) -> Vec<(String, String, String)> {
    let mut p = vec![
        (
            format!("MSIP_Label_{guid}_Enabled"),
            "lpwstr".into(),
            "true".into(),
        ),
        (
            format!("MSIP_Label_{guid}_SetDate"),
            "lpwstr".into(),
            "2026-01-05T10:00:00Z".into(),
        ),
        (
            format!("MSIP_Label_{guid}_Method"),
            "lpwstr".into(),
            "Standard".into(),
        ),
        (
            format!("MSIP_Label_{guid}_SiteId"),
            "lpwstr".into(),
            tenant.into(),
        ),
        (
            format!("MSIP_Label_{guid}_ContentBits"),
            "lpwstr".into(),
            "0".into(),
        ),
    ];
    if let Some(n) = name {
        p.push((format!("MSIP_Label_{guid}_Name"), "lpwstr".into(), n.into()));
    }
    p
}

fn as_refs(p: &[(String, String, String)]) -> Vec<(&str, &str, &str)> {
    p.iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect()
}

fn label_info_xml(labels: &[(&str, &str, bool)]) -> String {
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="utf-8" standalone="yes"?><clbl:labelList xmlns:clbl="http://schemas.microsoft.com/office/2020/mipLabelMetadata">"#,
    );
    for (id, tenant, removed) in labels {
        xml.push_str(&format!(
            r#"<clbl:label id="{{{}}}" enabled="1" method="Privileged" siteId="{{{tenant}}}" contentBits="0" removed="{}" />"#,
            id.to_uppercase(),
            u8::from(*removed)
        ));
    }
    xml.push_str("</clbl:labelList>");
    xml
}

/// A minimal package that Office opens: content types, package relationships, core
/// properties, the main part (with the workbook's own relationships and a sheet for Excel),
/// and the custom properties and label-information parts when given.
fn ooxml(doc: &Doc) -> Vec<u8> {
    let (main_ct, main_part, main_xml) = match doc.kind {
        Kind::Word => (
            DOCX_MAIN,
            "word/document.xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Quarterly figures</w:t></w:r></w:p></w:body></w:document>"#,
        ),
        Kind::Excel(ct) => (
            ct,
            "xl/workbook.xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        ),
        Kind::PowerPoint => (
            PPTX_MAIN,
            "ppt/presentation.xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"><p:sldSz cx="9144000" cy="6858000"/><p:notesSz cx="6858000" cy="9144000"/></p:presentation>"#,
        ),
    };
    let mut types = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>"#,
    );
    types.push_str(&format!(
        r#"<Override PartName="/{main_part}" ContentType="{main_ct}"/><Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>"#
    ));
    let mut rels = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="{main_part}"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>"#
    );
    if doc.custom.is_some() {
        types.push_str(r#"<Override PartName="/docProps/custom.xml" ContentType="application/vnd.openxmlformats-officedocument.custom-properties+xml"/>"#);
        rels.push_str(r#"<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties" Target="docProps/custom.xml"/>"#);
    }
    if doc.label_info.is_some() {
        types.push_str(&format!(
            r#"<Override PartName="/{}" ContentType="application/vnd.ms-office.classificationlabels+xml"/>"#,
            doc.label_part
        ));
        rels.push_str(&format!(
            r#"<Relationship Id="rId4" Type="http://schemas.microsoft.com/office/2020/02/relationships/classificationlabels" Target="{}"/>"#,
            doc.label_target
        ));
    }
    types.push_str("</Types>");
    rels.push_str("</Relationships>");
    let core = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>infoledger tests</dc:creator></cp:coreProperties>"#;

    let mut items = vec![
        Item::File("[Content_Types].xml", types.as_bytes(), deflated()),
        Item::File("_rels/.rels", rels.as_bytes(), deflated()),
        Item::File("docProps/core.xml", core.as_bytes(), deflated()),
        Item::File(main_part, main_xml.as_bytes(), deflated()),
    ];
    let workbook_rels = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;
    let sheet = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData/></worksheet>"#;
    if matches!(doc.kind, Kind::Excel(_)) {
        items.push(Item::File(
            "xl/_rels/workbook.xml.rels",
            workbook_rels.as_bytes(),
            deflated(),
        ));
        items.push(Item::File(
            "xl/worksheets/sheet1.xml",
            sheet.as_bytes(),
            deflated(),
        ));
    }
    if let Some(custom) = &doc.custom {
        items.push(Item::File(
            "docProps/custom.xml",
            custom.as_bytes(),
            deflated(),
        ));
    }
    if let Some(labels) = &doc.label_info {
        items.push(Item::File(doc.label_part, labels.as_bytes(), deflated()));
    }
    zip_of(items, false)
}

fn word_labeled_both_ways() -> Doc {
    let props = msip_props(G2, T1, Some("Internal"));
    Doc::word()
        .custom(&as_refs(&props))
        .labels(label_info_xml(&[(G1, T1, false)]))
}

#[test]
fn a_plain_document_is_plaintext_ooxml_without_labels() {
    for (doc, name, format) in [
        (Doc::word(), "report.docx", "docx"),
        (
            Doc {
                kind: Kind::Excel(XLSX_MAIN),
                ..Doc::word()
            },
            "figures.xlsx",
            "xlsx",
        ),
        (
            Doc {
                kind: Kind::Excel(XLSM_MAIN),
                ..Doc::word()
            },
            "macros.xlsm",
            "xlsm",
        ),
        (
            Doc {
                kind: Kind::PowerPoint,
                ..Doc::word()
            },
            "deck.pptx",
            "pptx",
        ),
    ] {
        let i = run(&ooxml(&doc), name);
        assert_eq!(i.format, format);
        assert_verdict(&i, EncryptionStatus::Plaintext, "ooxml");
        assert!(i.labels.is_empty(), "{:?}", i.labels);
        assert!(i.errors.is_empty(), "{:?}", i.errors);
    }
    // The content type decides over the name; the name decides when the content type does not.
    assert_eq!(run(&ooxml(&Doc::word()), "renamed.xlsx").format, "docx");
    let mut unknown = ooxml(&Doc::word());
    let at = unknown
        .windows(DOCX_MAIN.len())
        .position(|w| w == DOCX_MAIN.as_bytes());
    // The content types part is deflated, so the type is not in the bytes as written.
    assert!(at.is_none());
    unknown = zip_of(
        vec![
            Item::File("[Content_Types].xml", br#"<Types><Override PartName="/x.xml" ContentType="application/x-unknown+xml"/></Types>"#, deflated()),
        ],
        false,
    );
    assert_eq!(run(&unknown, "template.dotx").format, "dotx");
    assert_eq!(run(&unknown, "package.bin").format, "ooxml");
}

#[test]
fn the_label_information_part_gives_labels_with_their_part() {
    let doc = Doc::word().labels(label_info_xml(&[(G1, T1, false)]));
    let i = run(&ooxml(&doc), "report.docx");
    assert_verdict(&i, EncryptionStatus::Plaintext, "ooxml");
    assert_eq!(i.labels.len(), 1, "{:?}", i.labels);
    let l = &i.labels[0];
    assert_eq!(l.source, LabelSource::LabelInfo);
    assert_eq!(l.id.as_deref(), Some(G1));
    assert_eq!(l.tenant.as_deref(), Some(T1));
    assert_eq!(l.method.as_deref(), Some("Privileged"));
    assert_eq!(l.enabled, Some(true));
    assert_eq!(l.detail.as_deref(), Some("docMetadata/LabelInfo.xml"));
    assert!(i.errors.is_empty(), "{:?}", i.errors);

    // An absolute target, and a part stored elsewhere: the relationship decides.
    let moved = Doc {
        label_target: "/customXml/mip/labels.xml",
        label_part: "customXml/mip/labels.xml",
        ..doc.clone()
    };
    let i = run(&ooxml(&moved), "report.docx");
    assert_eq!(i.labels.len(), 1, "{i:#?}");
    assert_eq!(
        i.labels[0].detail.as_deref(),
        Some("customXml/mip/labels.xml")
    );

    // A relationship to a missing part is reported, not fatal.
    let dangling = Doc {
        label_part: "docMetadata/Other.xml",
        ..doc
    };
    let i = run(&ooxml(&dangling), "report.docx");
    assert!(i.labels.is_empty());
    assert!(
        i.errors
            .iter()
            .chain(&i.notes)
            .any(|e| e.contains("missing")),
        "{:?}",
        i.errors
    );
}

#[test]
fn custom_properties_give_labels_without_a_name() {
    // Enabled, Method and SiteId only, in the case variants real files use.
    let props = [
        (format!("MSIP_Label_{G1}_Enabled"), "bool", "TRUE"),
        (format!("msip_label_{G1}_method"), "lpwstr", "Privileged"),
        (format!("MSIP_Label_{G1}_SiteId"), "lpwstr", T1),
    ];
    let props: Vec<(&str, &str, &str)> =
        props.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
    let doc = Doc {
        kind: Kind::Excel(XLSX_MAIN),
        ..Doc::word()
    }
    .custom(&props);
    let i = run(&ooxml(&doc), "figures.xlsx");
    assert_eq!(i.format, "xlsx");
    assert_eq!(i.labels.len(), 1, "{:?}", i.labels);
    let l = &i.labels[0];
    assert_eq!(l.source, LabelSource::CustomProperties);
    assert_eq!(l.id.as_deref(), Some(G1));
    assert_eq!(l.tenant.as_deref(), Some(T1));
    assert_eq!(l.method.as_deref(), Some("Privileged"));
    assert_eq!(l.enabled, Some(true));
    assert_eq!(l.name, None);
    assert_eq!(l.detail.as_deref(), Some("docProps/custom.xml"));

    let named = Doc::word().custom(&as_refs(&msip_props(G2, T2, Some("Confidential"))));
    let i = run(&ooxml(&named), "report.docx");
    assert_eq!(i.labels[0].name.as_deref(), Some("Confidential"));
    assert_eq!(
        i.labels[0].set_date.as_deref(),
        Some("2026-01-05T10:00:00Z")
    );
}

#[test]
fn the_label_information_part_wins_for_its_tenant() {
    let i = run(&ooxml(&word_labeled_both_ways()), "report.docx");
    assert_eq!(i.labels.len(), 1, "{:?}", i.labels);
    assert_eq!(i.labels[0].source, LabelSource::LabelInfo);
    assert_eq!(i.labels[0].id.as_deref(), Some(G1));
}

#[test]
fn two_tenants_label_one_document() {
    // The part speaks for one tenant; the properties of another tenant stay.
    let props = msip_props(G2, T2, Some("Partner Confidential"));
    let doc = Doc::word()
        .custom(&as_refs(&props))
        .labels(label_info_xml(&[(G1, T1, false)]));
    let i = run(&ooxml(&doc), "report.docx");
    let got: Vec<(LabelSource, Option<&str>, Option<&str>)> = i
        .labels
        .iter()
        .map(|l| (l.source, l.id.as_deref(), l.tenant.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (LabelSource::LabelInfo, Some(G1), Some(T1)),
            (LabelSource::CustomProperties, Some(G2), Some(T2)),
        ]
    );
    // Both tenants in the part.
    let doc = Doc::word().labels(label_info_xml(&[(G1, T1, false), (G2, T2, false)]));
    let i = run(&ooxml(&doc), "report.docx");
    let tenants: Vec<Option<&str>> = i.labels.iter().map(|l| l.tenant.as_deref()).collect();
    assert_eq!(tenants, vec![Some(T1), Some(T2)]);
}

#[test]
fn an_empty_label_list_or_a_removed_label_leaves_the_document_unlabeled() {
    let props = msip_props(G1, T1, Some("Confidential"));
    for list in [
        label_info_xml(&[]),
        r#"<?xml version="1.0" encoding="utf-8" standalone="yes"?><clbl:labelList xmlns:clbl="http://schemas.microsoft.com/office/2020/mipLabelMetadata" />"#.to_string(),
        label_info_xml(&[(G1, T1, true)]),
    ] {
        let doc = Doc::word().custom(&as_refs(&props)).labels(list.clone());
        let i = run(&ooxml(&doc), "report.docx");
        assert!(i.labels.is_empty(), "{list}: {:?}", i.labels);
        assert!(i.errors.is_empty(), "{:?}", i.errors);
    }
    // Control: without the part, the properties label the document.
    let i = run(&ooxml(&Doc::word().custom(&as_refs(&props))), "report.docx");
    assert_eq!(i.labels.len(), 1);
}

#[test]
fn legacy_and_vendor_properties_are_labels_too() {
    let doc = Doc {
        kind: Kind::PowerPoint,
        ..Doc::word()
    }
    .custom(&[
        ("Sensitivity", "lpwstr", "Highly Confidential"),
        ("bjDocumentSecurityLabel", "lpwstr", "SECRET"),
        ("Department", "lpwstr", "Finance"),
    ]);
    let i = run(&ooxml(&doc), "deck.pptx");
    assert_eq!(i.format, "pptx");
    let names: Vec<(LabelSource, Option<&str>)> = i
        .labels
        .iter()
        .map(|l| (l.source, l.name.as_deref()))
        .collect();
    assert_eq!(
        names,
        vec![
            (LabelSource::VendorProperty, Some("Highly Confidential")),
            (LabelSource::VendorProperty, Some("SECRET")),
        ]
    );
    assert!(i.labels[0]
        .detail
        .as_deref()
        .is_some_and(|d| d.starts_with("docProps/custom.xml")));
}

#[test]
fn entities_in_a_property_part_are_not_expanded() {
    let mut custom = String::from(
        r#"<?xml version="1.0"?><!DOCTYPE Properties [<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">"#,
    );
    for (n, prev) in ["b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f", "g"])
    {
        custom.push_str(&format!(
            r#"<!ENTITY {n} "{}">"#,
            format!("&{prev};").repeat(10)
        ));
    }
    custom.push_str(r#"]><Properties xmlns:vt="v"><property name="Sensitivity"><vt:lpwstr>Secret&h;</vt:lpwstr></property></Properties>"#);
    let doc = Doc {
        custom: Some(custom),
        ..Doc::word()
    };
    let started = Instant::now();
    let i = run(&ooxml(&doc), "laughs.docx");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(i.labels.len(), 1);
    assert_eq!(i.labels[0].name.as_deref(), Some("Secret"));
}

#[test]
fn a_package_with_encrypted_entries_is_judged_by_its_entries() {
    let aes = deflated().with_aes_encryption(AesMode::Aes256, "secret");
    let package = zip_of(
        vec![
            Item::File("[Content_Types].xml", b"<Types/>", aes),
            Item::File("word/document.xml", TEXT, aes),
        ],
        false,
    );
    let i = run(&package, "locked.docx");
    assert_eq!(i.format, "docx");
    assert_verdict(&i, EncryptionStatus::Encrypted, "zip-aes");
    assert!(
        i.errors
            .iter()
            .chain(&i.notes)
            .any(|e| e.contains("encrypted")),
        "{:?}",
        i.errors
    );
}

#[test]
fn labels_are_read_from_zip64_packages() {
    let doc = word_labeled_both_ways();
    let plain = ooxml(&doc);
    // Rebuild the same parts with Zip64 records.
    let src = Bounded::from_bytes(&plain, BUDGET);
    let archive = directory(&src);
    let parts: Vec<(String, Vec<u8>)> = archive
        .entries
        .iter()
        .map(|e| {
            let data = inspect_zip::read_entry(&src, &archive, e, 1 << 20).expect("part");
            (e.name.clone(), data)
        })
        .collect();
    let big = deflated().large_file(true);
    let z64 = zip_of(
        parts
            .iter()
            .map(|(n, d)| Item::File(n.as_str(), d.as_slice(), big))
            .collect(),
        true,
    );
    let i = run(&z64, "report.docx");
    assert_verdict(&i, EncryptionStatus::Plaintext, "ooxml");
    assert_eq!(i.labels.len(), 1);
    assert_eq!(i.labels[0].id.as_deref(), Some(G1));
}

// ---------------------------------------------------------------------------------------------
// Bombs
// ---------------------------------------------------------------------------------------------

/// Raw deflate data of `mib` MiB of spaces, built without compressing them all: one
/// sync-flushed (non-final, byte-aligned) chunk repeated, then an empty final block. The
/// repeated chunk's back-references only reach spaces, so the stream is valid.
fn deflate_bomb(mib: usize) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&vec![b' '; 1 << 20]).expect("deflate");
    enc.flush().expect("sync flush");
    let chunk = enc.get_ref().clone();
    let mut out = Vec::with_capacity(chunk.len() * mib + 2);
    for _ in 0..mib {
        out.extend_from_slice(&chunk);
    }
    out.extend_from_slice(&[0x03, 0x00]); // final fixed-Huffman block holding only end-of-block
    out
}

/// A labeled package whose custom properties part is a deflate bomb.
fn bomb_package(declared: u32) -> Vec<u8> {
    let plain = ooxml(&word_labeled_both_ways());
    let src = Bounded::from_bytes(&plain, BUDGET);
    let archive = directory(&src);
    let mut raws: Vec<Raw> = archive
        .entries
        .iter()
        .map(|e| {
            let data = inspect_zip::read_entry(&src, &archive, e, 1 << 20).expect("part");
            Raw::deflated(&e.name, &data)
        })
        .collect();
    for r in &mut raws {
        if r.name == b"docProps/custom.xml" {
            r.data = deflate_bomb(200);
            r.usize = declared;
        }
    }
    raw_zip(&raws)
}

#[test]
fn a_deflate_bomb_part_is_refused_and_the_rest_still_read() {
    // Sanity: the bomb really inflates far beyond the cap.
    let bomb = deflate_bomb(200);
    assert!(bomb.len() < 400_000, "{}", bomb.len());
    let mut inflated = Vec::new();
    flate2::read::DeflateDecoder::new(bomb.as_slice())
        .take(3 << 20)
        .read_to_end(&mut inflated)
        .expect("inflate");
    assert_eq!(inflated.len(), 3 << 20);

    // Declared honestly (200 MiB, clamped to 32 bits): refused before inflating anything.
    // Declared as 600 bytes: inflation stops at the declared size.
    for (declared, why) in [
        (200u32 << 20, "larger than"),
        (600, "past its declared size"),
    ] {
        let started = Instant::now();
        let i = run(&bomb_package(declared), "bomb.docx");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(
            i.errors
                .iter()
                .chain(&i.notes)
                .any(|e| e.contains("docProps/custom.xml") && e.contains(why)),
            "{:?}",
            i.errors
        );
        // The label-information part is still read.
        assert_eq!(i.labels.len(), 1, "{:?}", i.labels);
        assert_verdict(&i, EncryptionStatus::Plaintext, "ooxml");
    }
}

#[test]
fn extraction_refuses_oversized_high_ratio_and_encrypted_entries() {
    let spaces = vec![b' '; 900 * 1024];
    let aes = deflated().with_aes_encryption(AesMode::Aes256, "pw");
    let bytes = zip_of(
        vec![
            Item::File("spaces.xml", &spaces, deflated()),
            Item::File("big.xml", &spaces, stored()),
            Item::File("small.xml", b"<a>ok</a>", deflated()),
            Item::File("secret.xml", b"<a>no</a>", aes),
        ],
        false,
    );
    let src = Bounded::from_bytes(&bytes, BUDGET);
    let archive = directory(&src);
    let entry = |n: &str| archive.find(n).expect("entry");
    let err = |n: &str, cap: usize| {
        inspect_zip::read_entry(&src, &archive, entry(n), cap)
            .expect_err(n)
            .to_string()
    };
    assert!(err("spaces.xml", 1 << 20).contains("expands more than 100:1"));
    assert!(err("big.xml", 64 * 1024).contains("larger than 65536 bytes"));
    assert!(err("secret.xml", 1 << 20).contains("is encrypted"));
    assert_eq!(
        inspect_zip::read_entry(&src, &archive, entry("small.xml"), 1 << 20).unwrap(),
        b"<a>ok</a>"
    );
    // Stored data is not a ratio problem, and part names match case-insensitively.
    assert_eq!(
        inspect_zip::read_entry(&src, &archive, entry("BIG.XML"), 1 << 20)
            .unwrap()
            .len(),
        spaces.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Robustness
// ---------------------------------------------------------------------------------------------

fn fixtures() -> Vec<(&'static str, Vec<u8>)> {
    let (trad, trad_plain) = info_zip_traditional();
    let (aes, _) = seven_zip_aes("AES256");
    let (z64, z64_enc) = info_zip_zip64();
    let mut lying = raw_zip(&[Raw::deflated("a.txt", TEXT), Raw::deflated("b.txt", TEXT)]);
    flag_entry(&mut lying, "a.txt", true, false);
    vec![
        ("labeled.docx", ooxml(&word_labeled_both_ways())),
        (
            "moved.xlsx",
            ooxml(&Doc {
                kind: Kind::Excel(XLSX_MAIN),
                label_target: "/customXml/../docMetadata/./LabelInfo.xml",
                ..word_labeled_both_ways()
            }),
        ),
        ("trad.zip", trad),
        ("plain.zip", trad_plain),
        ("aes.zip", aes),
        ("partial.zip", info_zip_partial()),
        ("z64.zip", z64),
        ("z64enc.zip", z64_enc),
        (
            "strong.zip",
            raw_zip(&[strong_entry("a"), Raw::deflated("b", TEXT)]),
        ),
        (
            "encdir.zip",
            encrypted_directory(DirectoryEncryption {
                zip64_v2: true,
                extra_record: true,
            }),
        ),
        ("lying.zip", lying),
        ("bomb.docx", bomb_package(600)),
    ]
}

/// Inspects `bytes` and checks that it took bounded time (a panic fails the test by itself).
fn survive(bytes: &[u8], name: &str) {
    let started = Instant::now();
    let i = run(bytes, name);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{name}: {} bytes took {:?}",
        bytes.len(),
        started.elapsed()
    );
    // Whatever the damage, the verdict is one of the four and says what decided it.
    if i.encryption.status != EncryptionStatus::Unknown {
        assert!(i.encryption.scheme.is_some(), "{i:#?}");
    }
}

#[test]
fn truncated_and_bit_flipped_fixtures_never_panic() {
    let started = Instant::now();
    for (name, bytes) in fixtures() {
        let n = bytes.len();
        // Prefixes at many lengths (every length near the end, where the directory is) and
        // suffixes (which shift every offset).
        let step = (n / 200).max(1);
        let mut cuts: Vec<usize> = (0..n).step_by(step).collect();
        cuts.extend(n.saturating_sub(400)..n);
        for cut in cuts {
            survive(&bytes[..cut], name);
            survive(&bytes[n - cut..], name);
        }
        // One flipped bit at many positions, every position in the last 600 bytes.
        let step = (n / 600).max(1);
        let mut positions: Vec<usize> = (0..n).step_by(step).collect();
        positions.extend(n.saturating_sub(600)..n);
        for (k, pos) in positions.into_iter().enumerate() {
            let mut flipped = bytes.clone();
            flipped[pos] ^= 1 << (k % 8);
            survive(&flipped, name);
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "robustness run took {:?}",
        started.elapsed()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_shaped_like_a_zip_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = b"PK\x03\x04".to_vec();
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(b"PK\x05\x06");
        bytes.extend_from_slice(&tail);
        survive(&bytes, "random.docx");
        survive(&body, "random.zip");
    }

    #[test]
    fn random_edits_of_a_labeled_package_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
    ) {
        let mut bytes = ooxml(&word_labeled_both_ways());
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        survive(&bytes, "edited.docx");
    }
}

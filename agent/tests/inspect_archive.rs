//! Encryption verdicts for 7z, RAR 5 and RAR 4 archives through the public inspection API.
//!
//! 7z fixtures are made by the real 7-Zip (Debian package `p7zip-full`); the tests fail, naming
//! the package, when it is missing. RAR archives cannot be made with free tools, so they are built
//! byte by byte from rarlab's format descriptions (with real CRCs) and, where 7-Zip can list them,
//! cross-checked with `7z l -slt`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use infoledger_agent::inspect::{inspect, Bounded, Inspection};
use infoledger_policies::EncryptionStatus;
use proptest::prelude::*;

const BUDGET: u64 = 4 * 1024 * 1024;

fn inspect_bytes(bytes: &[u8], name: &str) -> Inspection {
    inspect(
        &Bounded::from_bytes(bytes, BUDGET),
        &bytes[..bytes.len().min(4096)],
        name,
    )
}

fn assert_verdict(i: &Inspection, status: EncryptionStatus, scheme: &str, detail: Option<&str>) {
    assert_eq!(i.encryption.status, status, "{i:?}");
    assert_eq!(i.encryption.scheme.as_deref(), Some(scheme), "{i:?}");
    if let Some(d) = detail {
        assert_eq!(i.encryption.detail.as_deref(), Some(d), "{i:?}");
    }
    assert!(i.errors.is_empty(), "unexpected errors: {i:?}");
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

// ---------------------------------------------------------------------------------------------
// 7z fixtures from the real tool
// ---------------------------------------------------------------------------------------------

/// The 7-Zip command line program: `7z` (p7zip-full) or `7zz` (7zip).
fn seven_zip() -> &'static str {
    static FOUND: OnceLock<&'static str> = OnceLock::new();
    FOUND.get_or_init(|| {
        ["7z", "7zz", "7za"]
            .into_iter()
            .find(|p| {
                Command::new(p)
                    .arg("i")
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .unwrap_or_else(|| {
                panic!(
                    "7-Zip is needed to build the 7z fixtures: \
                     install the Debian package p7zip-full (apt-get install -y p7zip-full)"
                )
            })
    })
}

fn run_7z(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(seven_zip())
        .current_dir(dir)
        .args(args)
        .arg("-bd")
        .output()
        .expect("run 7-Zip");
    assert!(
        out.status.success(),
        "7z {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs 7-Zip and returns (success, stdout + stderr), for listings that may fail.
fn try_7z(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(seven_zip())
        .current_dir(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run 7-Zip");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn work_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("inspect_archive")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create fixture dir");
    dir
}

/// A next header's bytes, located by the signature header.
fn next_header(archive: &[u8]) -> &[u8] {
    let offset = u64::from_le_bytes(archive[12..20].try_into().expect("8 bytes")) as usize;
    let size = u64::from_le_bytes(archive[20..28].try_into().expect("8 bytes")) as usize;
    &archive[32 + offset..32 + offset + size]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

const K_HEADER: u8 = 0x01;
const K_ENCODED_HEADER: u8 = 0x17;
/// Coder flags 0x23 (three-byte id with properties) and the LZMA id 03 01 01.
const LZMA_CODER: &[u8] = &[0x23, 0x03, 0x01, 0x01];
const AES_CODER_ID: &[u8] = &[0x06, 0xF1, 0x07, 0x01];

struct SevenZFixtures {
    plain: Vec<u8>,
    encrypted_names_visible: Vec<u8>,
    headers_encrypted: Vec<u8>,
    stored_header_plain: Vec<u8>,
    stored_header_encrypted: Vec<u8>,
    multi_folder_plain: Vec<u8>,
    multi_folder_encrypted: Vec<u8>,
    partial: Vec<u8>,
    partial_listing: String,
    multi_folder_listing: String,
    empty: Vec<u8>,
    only_empty_file: Vec<u8>,
}

fn sevenz_fixtures() -> &'static SevenZFixtures {
    static FIXTURES: OnceLock<SevenZFixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = work_dir("7z");
        std::fs::write(dir.join("a.txt"), "CONFIDENTIAL: ACME customer list\n")
            .expect("write a.txt");
        std::fs::write(dir.join("b.txt"), "meeting notes\n").expect("write b.txt");
        let log: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(dir.join("c.log"), log).expect("write c.log");
        std::fs::write(dir.join("zero.txt"), "").expect("write zero.txt");
        std::fs::create_dir_all(dir.join("nothing")).expect("create empty dir");
        let files = ["a.txt", "b.txt", "c.log"];
        let make = |name: &str, opts: &[&str], inputs: &[&str]| -> Vec<u8> {
            let mut args = vec!["a", name];
            args.extend_from_slice(opts);
            args.extend_from_slice(inputs);
            run_7z(&dir, &args);
            std::fs::read(dir.join(name)).expect("read the archive 7-Zip wrote")
        };
        // Partial: an encrypted folder first, then a plain one added by updating the archive.
        make("partial.7z", &["-psecret"], &["a.txt"]);
        let partial = make("partial.7z", &[], &["c.log"]);
        let partial_listing = run_7z(&dir, &["l", "-slt", "partial.7z"]);
        let multi_folder_plain = make("multi.7z", &["-ms=e"], &files);
        let multi_folder_listing = run_7z(&dir, &["l", "-slt", "multi.7z"]);
        SevenZFixtures {
            plain: make("plain.7z", &[], &files),
            encrypted_names_visible: make("enc.7z", &["-psecret", "-mhe=off"], &files),
            headers_encrypted: make("henc.7z", &["-psecret", "-mhe=on"], &files),
            stored_header_plain: make("raw.7z", &["-mhc=off"], &files),
            stored_header_encrypted: make("rawenc.7z", &["-mhc=off", "-psecret"], &files),
            multi_folder_plain,
            multi_folder_encrypted: make("multienc.7z", &["-ms=e", "-psecret"], &files),
            partial,
            partial_listing,
            multi_folder_listing,
            // 7-Zip's own wildcard matches nothing here: an archive without entries.
            empty: make("empty.7z", &[], &["nothing/*"]),
            only_empty_file: make("zero.7z", &[], &["zero.txt"]),
        }
    })
}

#[test]
fn sevenz_plain_archive_with_lzma_compressed_header_is_plaintext() {
    let f = sevenz_fixtures();
    // The fixture really exercises kEncodedHeader with an LZMA coder.
    let header = next_header(&f.plain);
    assert_eq!(header[0], K_ENCODED_HEADER);
    assert!(contains(header, LZMA_CODER));
    assert!(!contains(header, AES_CODER_ID));
    let i = inspect_bytes(&f.plain, "plain.7z");
    assert_eq!(i.format, "7z");
    assert_verdict(&i, EncryptionStatus::Plaintext, "7z", None);
}

#[test]
fn sevenz_content_encrypted_with_visible_names_is_encrypted() {
    let f = sevenz_fixtures();
    // Only compressed, not encrypted: the AES coder sits in the decoded header's folder list.
    let header = next_header(&f.encrypted_names_visible);
    assert_eq!(header[0], K_ENCODED_HEADER);
    assert!(contains(header, LZMA_CODER));
    assert!(!contains(header, AES_CODER_ID));
    let i = inspect_bytes(&f.encrypted_names_visible, "enc.7z");
    assert_verdict(
        &i,
        EncryptionStatus::Encrypted,
        "7z-aes",
        Some("1 folder encrypted, file names visible"),
    );
}

#[test]
fn sevenz_encrypted_headers_are_encrypted() {
    let f = sevenz_fixtures();
    let header = next_header(&f.headers_encrypted);
    assert_eq!(header[0], K_ENCODED_HEADER);
    assert!(contains(header, AES_CODER_ID));
    let i = inspect_bytes(&f.headers_encrypted, "henc.7z");
    assert_verdict(
        &i,
        EncryptionStatus::Encrypted,
        "7z-aes",
        Some("headers encrypted"),
    );
}

#[test]
fn sevenz_stored_header_is_read_directly() {
    let f = sevenz_fixtures();
    assert_eq!(next_header(&f.stored_header_plain)[0], K_HEADER);
    assert_eq!(next_header(&f.stored_header_encrypted)[0], K_HEADER);
    let plain = inspect_bytes(&f.stored_header_plain, "raw.7z");
    assert_verdict(&plain, EncryptionStatus::Plaintext, "7z", None);
    let enc = inspect_bytes(&f.stored_header_encrypted, "rawenc.7z");
    assert_verdict(
        &enc,
        EncryptionStatus::Encrypted,
        "7z-aes",
        Some("1 folder encrypted, file names visible"),
    );
}

#[test]
fn sevenz_multi_folder_archives_count_every_folder() {
    let f = sevenz_fixtures();
    assert!(
        f.multi_folder_listing.contains("Blocks = 2"),
        "{}",
        f.multi_folder_listing
    );
    let plain = inspect_bytes(&f.multi_folder_plain, "multi.7z");
    assert_verdict(&plain, EncryptionStatus::Plaintext, "7z", None);
    let enc = inspect_bytes(&f.multi_folder_encrypted, "multienc.7z");
    assert_verdict(
        &enc,
        EncryptionStatus::Encrypted,
        "7z-aes",
        Some("2 folders encrypted, file names visible"),
    );
}

#[test]
fn sevenz_with_one_plain_and_one_encrypted_folder_is_partial() {
    let f = sevenz_fixtures();
    let listing = &f.partial_listing;
    assert!(listing.contains("Blocks = 2"), "{listing}");
    expect_entries(listing, &[("c.log", false), ("a.txt", true)]);
    let i = inspect_bytes(&f.partial, "partial.7z");
    assert_verdict(
        &i,
        EncryptionStatus::Partial,
        "7z-aes",
        Some("1 of 2 folders encrypted"),
    );
}

#[test]
fn sevenz_empty_archives_are_plaintext() {
    let f = sevenz_fixtures();
    assert_eq!(f.empty.len(), 32, "7-Zip writes only the signature header");
    let empty = inspect_bytes(&f.empty, "empty.7z");
    assert_verdict(
        &empty,
        EncryptionStatus::Plaintext,
        "7z",
        Some("empty archive"),
    );
    let zero = inspect_bytes(&f.only_empty_file, "zero.7z");
    assert_verdict(
        &zero,
        EncryptionStatus::Plaintext,
        "7z",
        Some("no stored data"),
    );
}

#[test]
fn sevenz_malformed_archives_are_errors_not_verdicts() {
    let f = sevenz_fixtures();
    // Truncated inside the next header.
    let cut = &f.plain[..f.plain.len() - 3];
    let i = inspect_bytes(cut, "cut.7z");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:?}");
    assert!(!i.errors.is_empty(), "{i:?}");
    // A next-header offset past the end of the file (start header CRC kept valid).
    let mut far = f.plain.clone();
    far[12..20].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let crc = crc32(&far[12..32]);
    far[8..12].copy_from_slice(&crc.to_le_bytes());
    let i = inspect_bytes(&far, "far.7z");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:?}");
    assert!(
        i.errors
            .iter()
            .chain(&i.notes)
            .any(|e| e.contains("next header")),
        "{i:?}"
    );
    // A corrupted next header is noticed by its CRC.
    let mut flipped = f.stored_header_plain.clone();
    let last = flipped.len() - 2;
    flipped[last] ^= 0x40;
    let i = inspect_bytes(&flipped, "flipped.7z");
    assert!(
        i.errors
            .iter()
            .chain(&i.notes)
            .any(|e| e.contains("crc mismatch")),
        "{i:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// RAR 5 archives built from "RAR 5.0 archive format"
// ---------------------------------------------------------------------------------------------

const RAR5_SIGNATURE: &[u8] = b"Rar!\x1A\x07\x01\x00";

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

/// A general archive block: CRC32 of (header size, header), header size, header, data area.
/// `header` runs from the header type to the end of the extra area.
fn rar5_block(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut covered = vint(header.len() as u64);
    covered.extend_from_slice(header);
    let mut out = crc32(&covered).to_le_bytes().to_vec();
    out.extend(covered);
    out.extend_from_slice(data);
    out
}

fn rar5_main() -> Vec<u8> {
    // Type 1, no header flags, archive flags 0.
    rar5_block(&[1, 0, 0], &[])
}

fn rar5_end() -> Vec<u8> {
    // Type 5, no header flags, end-of-archive flags 0 (last volume).
    rar5_block(&[5, 0, 0], &[])
}

/// A stored file; encrypted files carry the file encryption record (extra type 0x01) and their
/// data area is ciphertext padded to the AES block size.
fn rar5_file(name: &str, content: &[u8], encrypted: bool, directory: bool) -> Vec<u8> {
    let mut extra = Vec::new();
    if encrypted {
        let mut record = vint(0x01); // record type: file encryption
        record.extend(vint(0)); // version 0: AES-256
        record.extend(vint(0x0001)); // password check data present
        record.push(15); // KDF count (log2)
        record.extend_from_slice(&[0x5A; 16]); // salt
        record.extend_from_slice(&[0xA5; 16]); // IV
        record.extend_from_slice(&[0x3C; 12]); // check value
        extra.extend(vint(record.len() as u64));
        extra.extend(record);
    }
    let data: Vec<u8> = if directory {
        Vec::new()
    } else if encrypted {
        let padded = content.len().div_ceil(16).max(1) * 16;
        (0..padded).map(|i| (i * 151 % 251) as u8).collect()
    } else {
        content.to_vec()
    };
    let mut header = vint(2); // type: file header
    let mut flags = 0u64;
    if !extra.is_empty() {
        flags |= 0x0001;
    }
    if !data.is_empty() {
        flags |= 0x0002;
    }
    header.extend(vint(flags));
    if !extra.is_empty() {
        header.extend(vint(extra.len() as u64));
    }
    if !data.is_empty() {
        header.extend(vint(data.len() as u64));
    }
    let file_flags = if directory { 0x0001 } else { 0x0004 }; // directory, or CRC32 present
    header.extend(vint(file_flags));
    header.extend(vint(if directory { 0 } else { content.len() as u64 }));
    header.extend(vint(if directory { 0o40755 } else { 0o100644 })); // attributes
    if !directory {
        header.extend_from_slice(&crc32(content).to_le_bytes());
    }
    header.extend(vint(0)); // compression: version 0, method 0 (store)
    header.extend(vint(1)); // host OS: Unix
    header.extend(vint(name.len() as u64));
    header.extend_from_slice(name.as_bytes());
    header.extend(extra);
    rar5_block(&header, &data)
}

/// The archive encryption header (type 4); everything after it is encrypted.
fn rar5_encryption_header() -> Vec<u8> {
    let mut header = vec![4, 0]; // type 4, no header flags
    header.extend(vint(0)); // encryption version: AES-256
    header.extend(vint(0x0001)); // password check data present
    header.push(15); // KDF count
    header.extend_from_slice(&[0x11; 16]); // salt
    header.extend_from_slice(&[0x22; 12]); // check value
    rar5_block(&header, &[])
}

fn rar5_archive(files: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let mut out = RAR5_SIGNATURE.to_vec();
    out.extend(rar5_main());
    out.extend(rar5_file("docs", b"", false, true));
    for (name, content, encrypted) in files {
        out.extend(rar5_file(name, content, *encrypted, false));
    }
    out.extend(rar5_end());
    out
}

struct RarFixtures {
    rar5_plain: Vec<u8>,
    rar5_encrypted: Vec<u8>,
    rar5_partial: Vec<u8>,
    rar5_headers_encrypted: Vec<u8>,
    rar4_plain: Vec<u8>,
    rar4_encrypted: Vec<u8>,
    rar4_partial: Vec<u8>,
    rar4_headers_encrypted: Vec<u8>,
}

const SECRET: &[u8] = b"CONFIDENTIAL: ACME customer list\n";
const NOTES: &[u8] = b"meeting notes\n";

fn rar_fixtures() -> &'static RarFixtures {
    static FIXTURES: OnceLock<RarFixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let mut rar5_headers_encrypted = RAR5_SIGNATURE.to_vec();
        rar5_headers_encrypted.extend(rar5_encryption_header());
        // Encrypted headers: a 16-byte IV, then AES blocks; opaque bytes to a reader.
        rar5_headers_encrypted.extend((0..96u32).map(|i| (i * 37 % 256) as u8));
        let mut rar4_headers_encrypted = RAR4_SIGNATURE.to_vec();
        rar4_headers_encrypted.extend(rar4_main(0x0080));
        // Salt, then encrypted blocks.
        rar4_headers_encrypted.extend((0..72u32).map(|i| (i * 53 % 256) as u8));
        RarFixtures {
            rar5_plain: rar5_archive(&[("docs/a.txt", SECRET, false), ("b.txt", NOTES, false)]),
            rar5_encrypted: rar5_archive(&[("docs/a.txt", SECRET, true), ("b.txt", NOTES, true)]),
            rar5_partial: rar5_archive(&[
                ("docs/a.txt", SECRET, true),
                ("b.txt", NOTES, false),
                ("c.txt", NOTES, false),
            ]),
            rar5_headers_encrypted,
            rar4_plain: rar4_archive(&[("a.txt", SECRET, false), ("b.txt", NOTES, false)]),
            rar4_encrypted: rar4_archive(&[("a.txt", SECRET, true), ("b.txt", NOTES, true)]),
            rar4_partial: rar4_archive(&[("a.txt", SECRET, true), ("b.txt", NOTES, false)]),
            rar4_headers_encrypted,
        }
    })
}

/// The entries of a `7z l -slt` listing (after its `----------` line) as (path, encrypted).
fn listed_entries(listing: &str) -> Vec<(String, bool)> {
    let Some((_, entries)) = listing.split_once("----------") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in entries.lines() {
        if let Some(path) = line.strip_prefix("Path = ") {
            out.push((path.to_string(), false));
        } else if let Some(flag) = line.strip_prefix("Encrypted = ") {
            if let Some(last) = out.last_mut() {
                last.1 = flag == "+";
            }
        }
    }
    out
}

fn expect_entries(listing: &str, expected: &[(&str, bool)]) {
    let expected: Vec<(String, bool)> = expected.iter().map(|(p, e)| (p.to_string(), *e)).collect();
    assert_eq!(listed_entries(listing), expected, "{listing}");
}

/// Writes a RAR fixture where 7-Zip can read it and returns its `7z l -slt` listing.
fn list_with_7z(name: &str, bytes: &[u8]) -> (bool, String) {
    let dir = work_dir(&format!("rar-{name}"));
    std::fs::write(dir.join(name), bytes).expect("write the RAR fixture");
    try_7z(&dir, &["l", "-slt", "-pwrong", name])
}

#[test]
fn rar5_plain_archive_is_plaintext() {
    let f = rar_fixtures();
    let (ok, listing) = list_with_7z("plain.rar", &f.rar5_plain);
    assert!(ok, "7-Zip rejects the RAR5 fixture: {listing}");
    expect_entries(
        &listing,
        &[("docs", false), ("docs/a.txt", false), ("b.txt", false)],
    );
    let i = inspect_bytes(&f.rar5_plain, "plain.rar");
    assert_eq!(i.format, "rar5");
    assert_verdict(&i, EncryptionStatus::Plaintext, "rar5", None);
}

#[test]
fn rar5_files_with_encryption_records_are_encrypted() {
    let f = rar_fixtures();
    let (ok, listing) = list_with_7z("enc.rar", &f.rar5_encrypted);
    assert!(ok, "7-Zip rejects the RAR5 fixture: {listing}");
    expect_entries(
        &listing,
        &[("docs", false), ("docs/a.txt", true), ("b.txt", true)],
    );
    let i = inspect_bytes(&f.rar5_encrypted, "enc.rar");
    assert_verdict(
        &i,
        EncryptionStatus::Encrypted,
        "rar5-aes",
        Some("2 files encrypted, file names visible"),
    );
}

#[test]
fn rar5_with_some_encrypted_files_is_partial() {
    let f = rar_fixtures();
    let (ok, listing) = list_with_7z("part.rar", &f.rar5_partial);
    assert!(ok, "7-Zip rejects the RAR5 fixture: {listing}");
    expect_entries(
        &listing,
        &[
            ("docs", false),
            ("docs/a.txt", true),
            ("b.txt", false),
            ("c.txt", false),
        ],
    );
    let i = inspect_bytes(&f.rar5_partial, "part.rar");
    assert_verdict(
        &i,
        EncryptionStatus::Partial,
        "rar5-aes",
        Some("1 of 3 files encrypted"),
    );
}

#[test]
fn rar5_archive_encryption_header_means_encrypted_headers() {
    let f = rar_fixtures();
    // 7-Zip recognises the archive but cannot open it without the password.
    let (ok, listing) = list_with_7z("henc.rar", &f.rar5_headers_encrypted);
    assert!(!ok, "{listing}");
    assert!(
        listing.contains("Cannot open encrypted archive"),
        "{listing}"
    );
    let i = inspect_bytes(&f.rar5_headers_encrypted, "henc.rar");
    assert_verdict(
        &i,
        EncryptionStatus::Encrypted,
        "rar5-aes",
        Some("headers encrypted"),
    );
}

#[test]
fn rar5_malformed_archives_are_errors_or_unknown() {
    let f = rar_fixtures();
    // A header size vint that never ends.
    let mut endless_vint = RAR5_SIGNATURE.to_vec();
    endless_vint.extend_from_slice(&[0, 0, 0, 0]);
    endless_vint.extend_from_slice(&[0xFF; 32]);
    let i = inspect_bytes(&endless_vint, "vint.rar");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:?}");
    assert!(!i.errors.is_empty(), "{i:?}");
    // A vint inside a header that never ends (valid CRC, so the parser reaches it).
    let mut bad_field = RAR5_SIGNATURE.to_vec();
    bad_field.extend(rar5_block(&[0xFF; 12], &[]));
    let i = inspect_bytes(&bad_field, "field.rar");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:?}");
    assert!(
        i.errors.iter().chain(&i.notes).any(|e| e.contains("vint")),
        "{i:?}"
    );
    // Truncated in the last file's data: the walk cannot know what follows.
    let mut cut = rar5_archive(&[("a.txt", SECRET, true)]);
    cut.truncate(cut.len() - 20);
    let i = inspect_bytes(&cut, "cut.rar");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:?}");
    assert!(!i.notes.is_empty(), "{i:?}");
    // An endless chain of unknown blocks (type 9, "skip if unknown") and no end header: the
    // walk ends at its block bound or the read budget, quickly and without a verdict.
    let mut chain = RAR5_SIGNATURE.to_vec();
    chain.extend(rar5_main());
    let filler = rar5_block(&[9, 0x04], &[]);
    for _ in 0..250_000 {
        chain.extend_from_slice(&filler);
    }
    let started = Instant::now();
    let i = inspect_bytes(&chain, "chain.rar");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:?}");
    assert!(
        i.errors
            .iter()
            .chain(&i.notes)
            .any(|e| e.contains("walk stopped")),
        "{i:?}"
    );
    // A corrupted header is noted by its CRC while the verdict still stands.
    let mut flipped = f.rar5_plain.clone();
    let name_at = flipped
        .windows(5)
        .position(|w| w == b"b.txt")
        .expect("name in fixture");
    flipped[name_at] = b'x';
    let i = inspect_bytes(&flipped, "flipped.rar");
    assert_eq!(i.encryption.status, EncryptionStatus::Plaintext, "{i:?}");
    assert!(
        i.errors
            .iter()
            .chain(&i.notes)
            .any(|e| e.contains("crc mismatch")),
        "{i:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// RAR 1.5–4 archives built from the RAR technote
// ---------------------------------------------------------------------------------------------

const RAR4_SIGNATURE: &[u8] = b"Rar!\x1A\x07\x00";

/// A block: HEAD_CRC (low 16 bits of the CRC32 of the rest of the header), HEAD_TYPE,
/// HEAD_FLAGS, HEAD_SIZE, then the type's fields.
fn rar4_block(kind: u8, flags: u16, fields: &[u8]) -> Vec<u8> {
    let mut header = vec![kind];
    header.extend_from_slice(&flags.to_le_bytes());
    header.extend_from_slice(&((7 + fields.len()) as u16).to_le_bytes());
    header.extend_from_slice(fields);
    let mut out = ((crc32(&header) & 0xFFFF) as u16).to_le_bytes().to_vec();
    out.extend(header);
    out
}

fn rar4_main(flags: u16) -> Vec<u8> {
    // RESERVED1 (2 bytes), RESERVED2 (4 bytes).
    rar4_block(0x73, flags, &[0; 6])
}

/// A stored file (METHOD 0x30); encrypted ones set LHD_PASSWORD and carry an 8-byte salt.
fn rar4_file(name: &str, content: &[u8], encrypted: bool) -> Vec<u8> {
    let data: Vec<u8> = if encrypted {
        let padded = content.len().div_ceil(16) * 16;
        (0..padded).map(|i| (i * 97 % 251) as u8).collect()
    } else {
        content.to_vec()
    };
    let mut flags = 0x8000u16; // LONG_BLOCK: PACK_SIZE follows
    if encrypted {
        flags |= 0x0004 | 0x0400; // password, salt present
    }
    let mut fields = Vec::new();
    fields.extend_from_slice(&(data.len() as u32).to_le_bytes()); // PACK_SIZE
    fields.extend_from_slice(&(content.len() as u32).to_le_bytes()); // UNP_SIZE
    fields.push(3); // HOST_OS: Unix
    fields.extend_from_slice(&crc32(content).to_le_bytes()); // FILE_CRC
    fields.extend_from_slice(&0x5A21_6000u32.to_le_bytes()); // FTIME (DOS)
    fields.push(29); // UNP_VER
    fields.push(0x30); // METHOD: store
    fields.extend_from_slice(&(name.len() as u16).to_le_bytes()); // NAME_SIZE
    fields.extend_from_slice(&0o100644u32.to_le_bytes()); // ATTR
    fields.extend_from_slice(name.as_bytes());
    if encrypted {
        fields.extend_from_slice(&[0x77; 8]); // SALT
    }
    let mut out = rar4_block(0x74, flags, &fields);
    out.extend(data);
    out
}

fn rar4_archive(files: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let mut out = RAR4_SIGNATURE.to_vec();
    out.extend(rar4_main(0));
    for (name, content, encrypted) in files {
        out.extend(rar4_file(name, content, *encrypted));
    }
    out.extend(rar4_block(0x7B, 0x4000, &[]));
    out
}

#[test]
fn rar4_plain_archive_is_plaintext() {
    let f = rar_fixtures();
    let (ok, listing) = list_with_7z("plain4.rar", &f.rar4_plain);
    assert!(ok, "7-Zip rejects the RAR4 fixture: {listing}");
    expect_entries(&listing, &[("a.txt", false), ("b.txt", false)]);
    let i = inspect_bytes(&f.rar4_plain, "plain4.rar");
    assert_eq!(i.format, "rar4");
    assert_verdict(&i, EncryptionStatus::Plaintext, "rar4", None);
}

#[test]
fn rar4_password_flags_decide_per_file() {
    let f = rar_fixtures();
    let (ok, listing) = list_with_7z("enc4.rar", &f.rar4_encrypted);
    assert!(ok, "7-Zip rejects the RAR4 fixture: {listing}");
    expect_entries(&listing, &[("a.txt", true), ("b.txt", true)]);
    let i = inspect_bytes(&f.rar4_encrypted, "enc4.rar");
    assert_verdict(
        &i,
        EncryptionStatus::Encrypted,
        "rar4",
        Some("2 files encrypted, file names visible"),
    );
    let (ok, listing) = list_with_7z("part4.rar", &f.rar4_partial);
    assert!(ok, "7-Zip rejects the RAR4 fixture: {listing}");
    expect_entries(&listing, &[("a.txt", true), ("b.txt", false)]);
    let i = inspect_bytes(&f.rar4_partial, "part4.rar");
    assert_verdict(
        &i,
        EncryptionStatus::Partial,
        "rar4",
        Some("1 of 2 files encrypted"),
    );
}

#[test]
fn rar4_encrypted_block_headers_are_encrypted() {
    let f = rar_fixtures();
    let (ok, listing) = list_with_7z("henc4.rar", &f.rar4_headers_encrypted);
    assert!(!ok, "{listing}");
    assert!(
        listing.contains("Cannot open encrypted archive"),
        "{listing}"
    );
    let i = inspect_bytes(&f.rar4_headers_encrypted, "henc4.rar");
    assert_verdict(
        &i,
        EncryptionStatus::Encrypted,
        "rar4",
        Some("headers encrypted"),
    );
}

#[test]
fn rar4_malformed_archives_are_errors_or_unknown() {
    let f = rar_fixtures();
    // A header size below the base header.
    let mut tiny = RAR4_SIGNATURE.to_vec();
    tiny.extend_from_slice(&[0, 0, 0x73, 0, 0, 3, 0]);
    let i = inspect_bytes(&tiny, "tiny.rar");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:?}");
    assert!(!i.errors.is_empty(), "{i:?}");
    // Truncated inside a file's data area.
    let cut = &f.rar4_plain[..f.rar4_plain.len() - 12];
    let i = inspect_bytes(cut, "cut4.rar");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:?}");
    assert!(!i.notes.is_empty(), "{i:?}");
}

// ---------------------------------------------------------------------------------------------
// Robustness: truncations, bit flips and random bytes never panic and finish quickly
// ---------------------------------------------------------------------------------------------

fn all_fixtures() -> Vec<(&'static str, &'static [u8])> {
    let s = sevenz_fixtures();
    let r = rar_fixtures();
    vec![
        ("plain.7z", &s.plain),
        ("enc.7z", &s.encrypted_names_visible),
        ("henc.7z", &s.headers_encrypted),
        ("raw.7z", &s.stored_header_plain),
        ("rawenc.7z", &s.stored_header_encrypted),
        ("multi.7z", &s.multi_folder_plain),
        ("multienc.7z", &s.multi_folder_encrypted),
        ("partial.7z", &s.partial),
        ("empty.7z", &s.empty),
        ("zero.7z", &s.only_empty_file),
        ("plain.rar", &r.rar5_plain),
        ("enc.rar", &r.rar5_encrypted),
        ("part.rar", &r.rar5_partial),
        ("henc.rar", &r.rar5_headers_encrypted),
        ("plain4.rar", &r.rar4_plain),
        ("enc4.rar", &r.rar4_encrypted),
        ("part4.rar", &r.rar4_partial),
        ("henc4.rar", &r.rar4_headers_encrypted),
    ]
    .into_iter()
    .map(|(n, b)| (n, b.as_slice()))
    .collect()
}

fn inspect_timed(bytes: &[u8], name: &str) -> Inspection {
    let started = Instant::now();
    let i = inspect_bytes(bytes, name);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{name}: {} bytes took {:?}",
        bytes.len(),
        started.elapsed()
    );
    i
}

#[test]
fn truncated_archives_never_panic_nor_claim_more_than_they_hold() {
    for (name, bytes) in all_fixtures() {
        let full = inspect_bytes(bytes, name).encryption.status;
        for len in 0..bytes.len() {
            let i = inspect_timed(&bytes[..len], name);
            // A cut archive can lose its verdict but never become more encrypted.
            if full == EncryptionStatus::Plaintext {
                assert_ne!(
                    i.encryption.status,
                    EncryptionStatus::Encrypted,
                    "{name}[..{len}]"
                );
            }
        }
    }
}

#[test]
fn bit_flipped_archives_never_panic() {
    for (name, bytes) in all_fixtures() {
        for at in 0..bytes.len() {
            let mut flipped = bytes.to_vec();
            flipped[at] ^= 1 << (at % 8);
            inspect_timed(&flipped, name);
            flipped[at] ^= 0xFF;
            inspect_timed(&flipped, name);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_after_a_signature_never_panic(
        which in 0usize..3,
        body in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let (magic, name): (&[u8], &str) = [
            (b"7z\xBC\xAF\x27\x1C\x00\x04".as_slice(), "r.7z"),
            (RAR5_SIGNATURE, "r.rar"),
            (RAR4_SIGNATURE, "r4.rar"),
        ][which];
        let mut bytes = magic.to_vec();
        bytes.extend(body);
        inspect_timed(&bytes, name);
    }

    #[test]
    fn random_edits_of_fixtures_never_panic(
        which in 0usize..18,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let fixtures = all_fixtures();
        let (name, bytes) = fixtures[which % fixtures.len()];
        let mut bytes = bytes.to_vec();
        if !bytes.is_empty() {
            for (at, value) in edits {
                let at = at.index(bytes.len());
                bytes[at] = value;
            }
        }
        inspect_timed(&bytes, name);
    }
}

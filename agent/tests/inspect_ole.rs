//! OLE compound files through the public inspection API: legacy Word, Excel and PowerPoint
//! documents, password-encrypted and IRM-protected OOXML, labels in custom properties and in the
//! LabelInfo stream, compound files of unknown kind, and corrupt containers.
//!
//! Agile-encrypted OOXML is made by the real `msoffcrypto-tool` (PyPI package
//! `msoffcrypto-tool`), which also cross-checks the legacy fixtures (`msoffcrypto-tool -t`) and
//! parses the Standard `EncryptionInfo` built here. `gsf props` (Debian package `libgsf-bin`)
//! reads back the property set bytes. No free tool writes encrypted .doc/.xls/.ppt, Standard
//! encryption or IRM, so those fixtures are built byte by byte from [MS-DOC], [MS-XLS], [MS-PPT],
//! [MS-OFFCRYPTO] and [MS-OLEPS] and stored with the `cfb` crate's writer. A missing tool fails
//! the test with the name of the package to install.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::io::{Cursor, Write};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use infoledger_agent::inspect::{inspect, Bounded, Inspection};
use infoledger_policies::{EncryptionStatus, LabelSource};
use proptest::prelude::*;

const BUDGET: u64 = 4 * 1024 * 1024;
const LABEL: &str = "3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d";
const LABEL2: &str = "9a7c1f30-2b4d-4e8f-a1c2-5d6e7f809112";
const TENANT: &str = "0b1c2d3e-0000-4000-8000-000000000001";
const TENANT2: &str = "0b1c2d3e-0000-4000-8000-000000000002";
const IRM_TRANSFORM: &str = "{C73DFACD-061F-43B0-8B64-0C620D2A8B50}";
const PASSWORD_TRANSFORM: &str = "{FF9A3F03-56EF-4613-BDD5-5A41C1D07246}";

fn inspect_bytes(bytes: &[u8], name: &str) -> Inspection {
    inspect(
        &Bounded::from_bytes(bytes, BUDGET),
        &bytes[..bytes.len().min(4096)],
        name,
    )
}

fn assert_verdict(i: &Inspection, status: EncryptionStatus, scheme: &str) {
    assert_eq!(i.encryption.status, status, "{i:#?}");
    assert_eq!(i.encryption.scheme.as_deref(), Some(scheme), "{i:#?}");
}

/// Inspection finished without errors and had nothing to remark.
fn clean(i: &Inspection) -> bool {
    i.errors.is_empty() && i.notes.is_empty()
}

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inspect_ole");
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// Runs a tool, failing with the package to install when it is missing.
fn run_tool(program: &str, package: &str, args: &[&str]) -> Output {
    match Command::new(program).args(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`{program}` not found: install {package}")
        }
        Err(e) => panic!("running {program}: {e}"),
    }
}

const MSOFFCRYPTO: &str = "the PyPI package msoffcrypto-tool (`pip install msoffcrypto-tool`)";

/// `msoffcrypto-tool -t`: whether the tool considers the file encrypted.
fn msoffcrypto_says_encrypted(bytes: &[u8], name: &str) -> bool {
    let path = tmp(name);
    std::fs::write(&path, bytes).expect("write fixture");
    let out = run_tool(
        "msoffcrypto-tool",
        MSOFFCRYPTO,
        &["-t", path.to_str().expect("utf-8 path")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return true;
    }
    assert!(
        stderr.contains("not encrypted"),
        "msoffcrypto-tool could not parse {name}: {stderr}"
    );
    false
}

// ---------------------------------------------------------------------------------------------
// Byte builders
// ---------------------------------------------------------------------------------------------

fn u16le(v: u16) -> [u8; 2] {
    v.to_le_bytes()
}

fn u32le(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

/// Deterministic bytes that look random (ciphertext, salts).
fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn pad4(v: &mut Vec<u8>) {
    while v.len() % 4 != 0 {
        v.push(0);
    }
}

/// A compound file (version 3) with these streams; storages are created as needed.
fn ole(streams: &[(&str, Vec<u8>)]) -> Vec<u8> {
    ole_version(cfb::Version::V3, streams)
}

fn ole_version(version: cfb::Version, streams: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut comp = cfb::CompoundFile::create_with_version(version, Cursor::new(Vec::new()))
        .expect("create compound file");
    for (path, data) in streams {
        if let Some((parent, _)) = path.rsplit_once('/') {
            comp.create_storage_all(parent).expect("create storage");
        }
        let mut stream = comp.create_stream(path).expect("create stream");
        stream.write_all(data).expect("write stream");
    }
    comp.flush().expect("flush");
    comp.into_inner().into_inner()
}

// [MS-OFFCRYPTO] 2.3.2 EncryptionHeader and 2.3.3 EncryptionVerifier, for RC4 CryptoAPI
// (2.3.5.1) and Standard encryption (2.3.4.5).
fn encryption_header(flags: u32, alg: u32, key_bits: u32, provider: u32, csp: &str) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend(u32le(flags));
    h.extend(u32le(0)); // SizeExtra
    h.extend(u32le(alg));
    h.extend(u32le(0x8004)); // AlgIDHash: SHA-1
    h.extend(u32le(key_bits));
    h.extend(u32le(provider));
    h.extend(u32le(0));
    h.extend(u32le(0));
    h.extend(utf16(csp));
    h.extend([0, 0]);
    h
}

fn encryption_verifier(hash_len: usize, seed: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(u32le(16));
    v.extend(noise(16, seed)); // Salt
    v.extend(noise(16, seed + 1)); // EncryptedVerifier
    v.extend(u32le(20)); // VerifierHashSize
    v.extend(noise(hash_len, seed + 2));
    v
}

/// An RC4 CryptoAPI encryption header ([MS-OFFCRYPTO] 2.3.5.1), version `major`.2.
fn cryptoapi_header(major: u16) -> Vec<u8> {
    let header = encryption_header(
        0x04,
        0x6801,
        128,
        0x01,
        "Microsoft Enhanced Cryptographic Provider v1.0",
    );
    let mut b = Vec::new();
    b.extend(u16le(major));
    b.extend(u16le(2));
    b.extend(u32le(0x04));
    b.extend(u32le(header.len() as u32));
    b.extend(header);
    b.extend(encryption_verifier(20, 7));
    b
}

/// An RC4 encryption header ([MS-OFFCRYPTO] 2.3.6.1): version 1.1, salt, verifier, hash.
fn rc4_header() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(u16le(1));
    b.extend(u16le(1));
    b.extend(noise(48, 11));
    b
}

// [MS-DOC] 2.5.2 FibBase: wIdent, nFib, unused, lid, pnNext, flags (fEncrypted 0x0100,
// fWhichTblStm 0x0200, fObfuscated 0x8000), nFibBack, lKey, envr, …; the rest of the stream is
// filler so that it lives in regular sectors.
fn word_document(flags: u16, lkey: u32) -> Vec<u8> {
    let mut w = Vec::new();
    w.extend(u16le(0xA5EC));
    w.extend(u16le(0x00C1));
    w.extend(u16le(0));
    w.extend(u16le(0x0409));
    w.extend(u16le(0));
    w.extend(u16le(flags));
    w.extend(u16le(0x00BF));
    w.extend(u32le(lkey));
    w.extend([0, 0]);
    w.resize(32, 0);
    w.extend(noise(4608 - 32, 5));
    w
}

fn doc(
    flags: u16,
    lkey: u32,
    table: Option<(&str, Vec<u8>)>,
    extra: &[(&str, Vec<u8>)],
) -> Vec<u8> {
    let mut streams = vec![("WordDocument", word_document(flags, lkey))];
    if let Some((name, header)) = table {
        let mut t = header;
        t.extend(noise(600, 9));
        streams.push((name, t));
    }
    streams.extend(extra.iter().map(|(n, b)| (*n, b.clone())));
    ole(&streams)
}

// [MS-XLS] 2.4.21 BOF, 2.4.117 FilePass, 2.4.28 BoundSheet8 and the records around them.
fn biff(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend(u16le(kind));
    r.extend(u16le(body.len() as u16));
    r.extend(body);
    r
}

fn bof(version: u16, dt: u16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(u16le(version));
    b.extend(u16le(dt));
    b.extend(u16le(0x0DBB)); // rupBuild
    b.extend(u16le(0x07CC)); // rupYear
    b.extend(u32le(0x0000_0001));
    b.extend(u32le(0x0000_0006));
    biff(0x0809, &b)
}

fn workbook(filepass: Option<Vec<u8>>) -> Vec<u8> {
    let mut globals = Vec::new();
    globals.extend(bof(0x0600, 0x0005));
    let encrypted = filepass.is_some();
    if let Some(body) = filepass {
        globals.extend(biff(0x002F, &body));
    }
    globals.extend(biff(0x00E1, &u16le(0x04B0))); // InterfaceHdr
    globals.extend(biff(0x00C1, &[0, 0])); // Mms
    globals.extend(biff(0x00E2, &[])); // InterfaceEnd
    let mut user = vec![4, 0, 0];
    user.extend(b"test");
    user.resize(112, b' ');
    // After FilePass, record bodies are encrypted; noise stands in for the ciphertext.
    let scramble = |b: Vec<u8>, seed| {
        if encrypted {
            noise(b.len(), seed)
        } else {
            b
        }
    };
    globals.extend(biff(0x005C, &scramble(user, 21))); // WriteAccess
    globals.extend(biff(0x0042, &scramble(u16le(0x04B0).to_vec(), 22))); // CodePage
    let sheet_name = [6, 0, b'S', b'h', b'e', b'e', b't', b'1'];
    let mut bound = Vec::new();
    let sheet_offset_at = globals.len() + 4;
    bound.extend(u32le(0)); // lbPlyPos, patched below
    bound.extend([0, 0]);
    bound.extend(sheet_name);
    globals.extend(biff(0x0085, &bound));
    globals.extend(biff(0x000A, &[]));
    let sheet_offset = globals.len() as u32;
    globals[sheet_offset_at..sheet_offset_at + 4].copy_from_slice(&u32le(sheet_offset));
    globals.extend(bof(0x0600, 0x0010));
    globals.extend(biff(0x000A, &[]));
    globals
}

fn filepass_xor() -> Vec<u8> {
    let mut b = u16le(0).to_vec();
    b.extend(u16le(0x1234)); // key
    b.extend(u16le(0xABCD)); // verificationBytes
    b
}

fn filepass_rc4() -> Vec<u8> {
    let mut b = u16le(1).to_vec();
    b.extend(rc4_header());
    b
}

fn filepass_cryptoapi() -> Vec<u8> {
    let mut b = u16le(1).to_vec();
    b.extend(cryptoapi_header(4));
    b
}

fn xls(filepass: Option<Vec<u8>>) -> Vec<u8> {
    ole(&[("Workbook", workbook(filepass))])
}

// [MS-PPT] 2.3.2 CurrentUserAtom, 2.3.3 UserEditAtom, 2.3.4 PersistDirectoryAtom,
// 2.3.7 CryptSession10Container.
fn record_header(ver_instance: u16, kind: u16, len: usize) -> Vec<u8> {
    let mut h = u16le(ver_instance).to_vec();
    h.extend(u16le(kind));
    h.extend(u32le(len as u32));
    h
}

fn current_user(token: u32, edit_offset: u32) -> Vec<u8> {
    let name = b"test";
    let mut body = Vec::new();
    body.extend(u32le(0x14));
    body.extend(u32le(token));
    body.extend(u32le(edit_offset));
    body.extend(u16le(name.len() as u16));
    body.extend(u16le(0x03F4)); // docFileVersion
    body.extend([3, 0]); // majorVersion, minorVersion
    body.extend(u16le(0));
    body.extend(name);
    body.extend(u32le(0x0000_0008)); // relVersion
    body.extend(utf16("test"));
    let mut cu = record_header(0, 0x0FF6, body.len());
    cu.extend(body);
    cu
}

/// The Current User and PowerPoint Document streams of a presentation, encrypted or not.
fn ppt_streams(token: u32, with_crypt_session: bool) -> Vec<(&'static str, Vec<u8>)> {
    let mut doc = Vec::new();
    // DocumentContainer (persist id 1): a stand-in body.
    let body = noise(3000, 31);
    doc.extend(record_header(0x000F, 0x03E8, body.len()));
    doc.extend(body);
    let crypt_offset = doc.len() as u32;
    if with_crypt_session {
        let info = cryptoapi_header(4);
        doc.extend(record_header(0x000F, 0x2F14, info.len()));
        doc.extend(info);
    }
    let dir_offset = doc.len() as u32;
    let mut entries = Vec::new();
    let count: u32 = if with_crypt_session { 2 } else { 1 };
    entries.extend(u32le(1 | (count << 20)));
    entries.extend(u32le(0));
    if with_crypt_session {
        entries.extend(u32le(crypt_offset));
    }
    doc.extend(record_header(0, 0x1772, entries.len()));
    doc.extend(entries);
    let edit_offset = doc.len() as u32;
    let mut edit = Vec::new();
    edit.extend(u32le(0x100)); // lastSlideIdRef
    edit.extend(u16le(0)); // version
    edit.extend([0, 3]); // minorVersion, majorVersion
    edit.extend(u32le(0)); // offsetLastEdit
    edit.extend(u32le(dir_offset));
    edit.extend(u32le(1)); // docPersistIdRef
    edit.extend(u32le(count + 1)); // persistIdSeed
    edit.extend(u16le(1)); // lastView
    edit.extend(u16le(0));
    if with_crypt_session {
        edit.extend(u32le(2)); // encryptSessionPersistIdRef
    }
    doc.extend(record_header(0, 0x0FF5, edit.len()));
    doc.extend(edit);
    vec![
        ("Current User", current_user(token, edit_offset)),
        ("PowerPoint Document", doc),
    ]
}

const TOKEN_PLAIN: u32 = 0xE391_C05F;
const TOKEN_ENCRYPTED: u32 = 0xF3D1_C4DF;

// [MS-OFFCRYPTO] 2.1 data spaces.
fn lp_p4(s: &str) -> Vec<u8> {
    let u = utf16(s);
    let mut v = u32le(u.len() as u32).to_vec();
    v.extend(u);
    pad4(&mut v);
    v
}

fn utf8_lp_p4(s: &str) -> Vec<u8> {
    let mut v = u32le(s.len() as u32).to_vec();
    v.extend(s.as_bytes());
    pad4(&mut v);
    v
}

fn version_1_0() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(u16le(1));
    v.extend(u16le(0));
    v
}

/// 2.1.5 DataSpaceVersionInfo.
fn data_space_version() -> Vec<u8> {
    let mut v = lp_p4("Microsoft.Container.DataSpaces");
    for _ in 0..3 {
        v.extend(version_1_0());
    }
    v
}

/// 2.1.6 DataSpaceMap with one entry: a stream protected by a data space.
fn data_space_map(stream: &str, space: &str) -> Vec<u8> {
    let mut entry = Vec::new();
    entry.extend(u32le(1)); // ReferenceComponentCount
    entry.extend(u32le(0)); // stream
    entry.extend(lp_p4(stream));
    entry.extend(lp_p4(space));
    let mut map = u32le(8).to_vec();
    map.extend(u32le(1));
    map.extend(u32le(entry.len() as u32 + 4));
    map.extend(entry);
    map
}

/// 2.1.7 DataSpaceDefinition referencing one transform.
fn data_space_definition(transform: &str) -> Vec<u8> {
    let mut d = u32le(8).to_vec();
    d.extend(u32le(1));
    d.extend(lp_p4(transform));
    d
}

/// 2.1.8 TransformInfoHeader.
fn transform_info_header(id: &str, name: &str) -> Vec<u8> {
    let id = lp_p4(id);
    let mut t = u32le(8 + id.len() as u32).to_vec();
    t.extend(u32le(1));
    t.extend(id);
    t.extend(lp_p4(name));
    for _ in 0..3 {
        t.extend(version_1_0());
    }
    t
}

/// 2.2.6 IRMDSTransformInfo: header, extensibility header, the publishing license.
fn irm_primary() -> Vec<u8> {
    let mut p = transform_info_header(IRM_TRANSFORM, "Microsoft.Metadata.DRMTransform");
    p.extend(u32le(4));
    p.extend(utf8_lp_p4(
        "<XrML version=\"1.2\"><BODY type=\"Microsoft Rights Label\"><ISSUEDTIME>2026-01-05T10:00</ISSUEDTIME></BODY></XrML>",
    ));
    p
}

/// 2.3.4.3 EncryptionTransformInfo after the header, for password encryption.
fn password_primary() -> Vec<u8> {
    let mut p = transform_info_header(
        PASSWORD_TRANSFORM,
        "Microsoft.Container.EncryptionTransform",
    );
    p.extend(u32le(0)); // EncryptionName: empty UTF-8-LP-P4
    p.extend(u32le(0));
    p.extend(u32le(0));
    p.extend(u32le(4));
    p
}

/// The `\x06DataSpaces` storage protecting `stream` with one data space and transform.
fn data_spaces(
    stream: &str,
    space: &str,
    transform: &str,
    primary: Vec<u8>,
) -> Vec<(String, Vec<u8>)> {
    vec![
        ("\u{6}DataSpaces/Version".into(), data_space_version()),
        (
            "\u{6}DataSpaces/DataSpaceMap".into(),
            data_space_map(stream, space),
        ),
        (
            format!("\u{6}DataSpaces/DataSpaceInfo/{space}"),
            data_space_definition(transform),
        ),
        (
            format!("\u{6}DataSpaces/TransformInfo/{transform}/\u{6}Primary"),
            primary,
        ),
    ]
}

fn encrypted_package(seed: u32) -> Vec<u8> {
    let mut p = 5000u64.to_le_bytes().to_vec();
    p.extend(noise(5008, seed));
    p
}

/// A Standard EncryptionInfo stream ([MS-OFFCRYPTO] 2.3.4.5): version 4.2, AES-128.
fn standard_encryption_info() -> Vec<u8> {
    let header = encryption_header(
        0x24,
        0x660E,
        128,
        0x18,
        "Microsoft Enhanced RSA and AES Cryptographic Provider",
    );
    let mut b = Vec::new();
    b.extend(u16le(4));
    b.extend(u16le(2));
    b.extend(u32le(0x24));
    b.extend(u32le(header.len() as u32));
    b.extend(header);
    b.extend(encryption_verifier(32, 41));
    b
}

fn standard_encrypted_docx() -> Vec<u8> {
    let mut streams: Vec<(String, Vec<u8>)> = data_spaces(
        "EncryptedPackage",
        "StrongEncryptionDataSpace",
        "StrongEncryptionTransform",
        password_primary(),
    );
    streams.push(("EncryptionInfo".into(), standard_encryption_info()));
    streams.push(("EncryptedPackage".into(), encrypted_package(3)));
    ole_owned(&streams)
}

fn ole_owned(streams: &[(String, Vec<u8>)]) -> Vec<u8> {
    let borrowed: Vec<(&str, Vec<u8>)> = streams
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    ole(&borrowed)
}

fn label_info_xml(labels: &[(&str, &str)]) -> String {
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="utf-8" standalone="yes"?><clbl:labelList xmlns:clbl="http://schemas.microsoft.com/office/2020/mipLabelMetadata">"#,
    );
    for (id, tenant) in labels {
        xml.push_str(&format!(
            r#"<clbl:label id="{{{id}}}" enabled="1" method="Privileged" siteId="{{{tenant}}}" contentBits="8" removed="0" />"#
        ));
    }
    xml.push_str("</clbl:labelList>");
    xml
}

/// An IRM-protected OOXML document: DRM data space over `EncryptedPackage`, with extra streams.
fn irm_docx(extra: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut streams = data_spaces(
        "EncryptedPackage",
        "DRMEncryptedDataSpace",
        "DRMEncryptedTransform",
        irm_primary(),
    );
    streams.push((
        "\u{6}DataSpaces/TransformInfo/DRMEncryptedTransform/EUL-ETRHA1143ZLUDD412YTI3M3CTZ".into(),
        noise(700, 17),
    ));
    streams.push(("EncryptedPackage".into(), encrypted_package(4)));
    streams.extend(extra.iter().cloned());
    ole_owned(&streams)
}

// [MS-OLEPS] 2.21 PropertySetStream with two sections: DocumentSummaryInformation (empty here)
// and the user-defined properties with their dictionary (2.17) and CodePage property.
enum Value<'a> {
    /// VT_LPSTR, bytes in the section's code page.
    Lpstr(&'a [u8]),
    /// VT_LPWSTR.
    Lpwstr(&'a str),
    Bool(bool),
    I4(i32),
}

fn typed_value(v: &Value<'_>, code_page: u16) -> Vec<u8> {
    let mut b = Vec::new();
    match v {
        Value::Lpstr(bytes) => {
            b.extend([0x1E, 0, 0, 0]);
            let mut chars = if code_page == 1200 {
                // CP_WINUNICODE: a CodePageString holds UTF-16 (the bytes are ASCII here).
                bytes.iter().flat_map(|&c| [c, 0]).collect::<Vec<u8>>()
            } else {
                bytes.to_vec()
            };
            chars.extend(if code_page == 1200 {
                &[0, 0][..]
            } else {
                &[0][..]
            });
            b.extend(u32le(chars.len() as u32));
            b.extend(chars);
        }
        Value::Lpwstr(s) => {
            b.extend([0x1F, 0, 0, 0]);
            let mut u = utf16(s);
            u.extend([0, 0]);
            b.extend(u32le(u.len() as u32 / 2));
            b.extend(u);
        }
        Value::Bool(x) => {
            b.extend([0x0B, 0, 0, 0]);
            b.extend(if *x { [0xFF, 0xFF] } else { [0, 0] });
        }
        Value::I4(n) => {
            b.extend([0x03, 0, 0, 0]);
            b.extend(n.to_le_bytes());
        }
    }
    pad4(&mut b);
    b
}

fn document_summary_information(code_page: u16, props: &[(&str, Value<'_>)]) -> Vec<u8> {
    let mut values: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut cp = vec![0x02, 0x00, 0, 0];
    cp.extend(u16le(code_page));
    cp.extend([0, 0]);
    values.push((1, cp));
    let mut dict = u32le(props.len() as u32).to_vec();
    for (i, (name, _)) in props.iter().enumerate() {
        dict.extend(u32le(i as u32 + 2));
        if code_page == 1200 {
            let mut n = utf16(name);
            n.extend([0, 0]);
            dict.extend(u32le(n.len() as u32 / 2));
            dict.extend(n);
            pad4(&mut dict);
        } else {
            dict.extend(u32le(name.len() as u32 + 1));
            dict.extend(name.as_bytes());
            dict.push(0);
        }
    }
    pad4(&mut dict);
    values.push((0, dict));
    for (i, (_, v)) in props.iter().enumerate() {
        values.push((i as u32 + 2, typed_value(v, code_page)));
    }
    let mut table = Vec::new();
    let mut body: Vec<u8> = Vec::new();
    let mut offset = 8 + 8 * values.len();
    for (id, v) in &values {
        table.extend(u32le(*id));
        table.extend(u32le(offset as u32));
        offset += v.len();
        body.extend(v);
    }
    let mut user = u32le(offset as u32).to_vec();
    user.extend(u32le(values.len() as u32));
    user.extend(table);
    user.extend(body);

    // The first section: DocumentSummaryInformation with only its CodePage property.
    let mut first = Vec::new();
    first.extend(u32le(24));
    first.extend(u32le(1));
    first.extend(u32le(1));
    first.extend(u32le(16));
    first.extend([0x02, 0x00, 0, 0]);
    first.extend(u16le(code_page));
    first.extend([0, 0]);

    let mut out = Vec::new();
    out.extend(u16le(0xFFFE));
    out.extend(u16le(0));
    out.extend(u32le(0x0002_0A00)); // SystemIdentifier: Windows
    out.extend([0u8; 16]);
    out.extend(u32le(2));
    let doc_summary = [
        0x02, 0xD5, 0xCD, 0xD5, 0x9C, 0x2E, 0x1B, 0x10, 0x93, 0x97, 0x08, 0x00, 0x2B, 0x2C, 0xF9,
        0xAE,
    ];
    let user_defined = [
        0x05, 0xD5, 0xCD, 0xD5, 0x9C, 0x2E, 0x1B, 0x10, 0x93, 0x97, 0x08, 0x00, 0x2B, 0x2C, 0xF9,
        0xAE,
    ];
    let first_at = 28 + 2 * 20;
    out.extend(doc_summary);
    out.extend(u32le(first_at as u32));
    out.extend(user_defined);
    out.extend(u32le((first_at + first.len()) as u32));
    out.extend(first);
    out.extend(user);
    out
}

/// MSIP properties for one label, as legacy Office writes them (strings, the name in 1252).
fn msip_properties(code_page: u16) -> Vec<u8> {
    let k = |field: &str| format!("MSIP_Label_{LABEL}_{field}");
    let names = [
        k("Enabled"),
        k("SiteId"),
        k("Method"),
        k("Name"),
        k("SetDate"),
        k("ContentBits"),
    ];
    let name_value: &[u8] = if code_page == 1200 {
        b"Vertraulich"
    } else {
        b"Vertraulich \x96 F\xFCr Kunden"
    };
    document_summary_information(
        code_page,
        &[
            (&names[0], Value::Lpstr(b"True")),
            (&names[1], Value::Lpwstr(TENANT)),
            (&names[2], Value::Lpstr(b"Privileged")),
            (&names[3], Value::Lpstr(name_value)),
            (&names[4], Value::Lpwstr("2026-01-05T10:00:00Z")),
            (&names[5], Value::Lpstr(b"0")),
            ("Sensitivity", Value::Lpstr(b"Internal")),
            ("Reviewed", Value::Bool(true)),
            ("Revision", Value::I4(3)),
        ],
    )
}

fn docx_zip() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let parts: [(&str, &str); 3] = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#,
        ),
        (
            "word/document.xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Quarterly figures</w:t></w:r></w:p></w:body></w:document>"#,
        ),
    ];
    for (name, text) in parts {
        zip.start_file(name, options).expect("zip entry");
        zip.write_all(text.as_bytes()).expect("zip write");
    }
    zip.finish().expect("zip finish").into_inner()
}

/// A docx encrypted by msoffcrypto-tool (Agile encryption), made once per test run.
fn agile_docx() -> &'static [u8] {
    static DOCX: OnceLock<Vec<u8>> = OnceLock::new();
    DOCX.get_or_init(|| {
        let plain = tmp("plain.docx");
        let out = tmp("agile.docx");
        std::fs::write(&plain, docx_zip()).expect("write docx");
        let result = run_tool(
            "msoffcrypto-tool",
            MSOFFCRYPTO,
            &[
                "-e",
                "-p",
                "Correct-Horse-7",
                plain.to_str().expect("utf-8"),
                out.to_str().expect("utf-8"),
            ],
        );
        assert!(
            result.status.success(),
            "msoffcrypto-tool -e failed: {}",
            String::from_utf8_lossy(&result.stderr)
        );
        std::fs::read(&out).expect("read encrypted docx")
    })
}

/// What msoffcrypto (the Python library of msoffcrypto-tool) parses an encrypted OOXML file as.
fn msoffcrypto_ooxml_type(bytes: &[u8], name: &str) -> String {
    let path = tmp(name);
    std::fs::write(&path, bytes).expect("write fixture");
    let out = run_tool(
        "python3",
        "python3 with the PyPI package msoffcrypto-tool",
        &[
            "-c",
            "import sys, msoffcrypto\nf = msoffcrypto.OfficeFile(open(sys.argv[1], 'rb'))\nprint(f.type)",
            path.to_str().expect("utf-8"),
        ],
    );
    assert!(
        out.status.success(),
        "msoffcrypto could not parse {name} ({MSOFFCRYPTO} needed): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

// ---------------------------------------------------------------------------------------------
// Password-encrypted and IRM-protected OOXML
// ---------------------------------------------------------------------------------------------

#[test]
fn agile_encrypted_docx_made_by_msoffcrypto_tool_is_ooxml_agile() {
    let bytes = agile_docx();
    assert_eq!(msoffcrypto_ooxml_type(bytes, "agile-check.docx"), "agile");
    let i = inspect_bytes(bytes, "Quarterly report.docx");
    assert_verdict(&i, EncryptionStatus::Encrypted, "ooxml-agile");
    assert_eq!(i.format, "ooxml-encrypted");
    assert_eq!(
        i.encryption.detail.as_deref(),
        Some("AES-256, password"),
        "{i:#?}"
    );
    assert!(clean(&i), "{i:#?}");
    // Its data spaces are the password-encryption transform's, not IRM.
    assert!(bytes.windows(12).any(|w| w == &utf16("StrongE")[..12]));

    // The plain control: the same document before encryption is a ZIP with readable content.
    let plain = docx_zip();
    let p = inspect_bytes(&plain, "Quarterly report.docx");
    assert_eq!(p.encryption.status, EncryptionStatus::Plaintext, "{p:#?}");
    assert_ne!(p.format, "ooxml-encrypted");
}

#[test]
fn standard_encryption_info_built_from_the_spec_is_ooxml_standard() {
    let bytes = standard_encrypted_docx();
    assert_eq!(msoffcrypto_ooxml_type(&bytes, "standard.docx"), "standard");
    let i = inspect_bytes(&bytes, "budget.xlsx");
    assert_verdict(&i, EncryptionStatus::Encrypted, "ooxml-standard");
    assert_eq!(i.encryption.detail.as_deref(), Some("AES-128"));
    assert_eq!(i.format, "ooxml-encrypted");
    assert!(clean(&i), "{i:#?}");

    // Without EncryptionInfo the package cannot be judged: no guess.
    let mut streams = data_spaces(
        "EncryptedPackage",
        "StrongEncryptionDataSpace",
        "StrongEncryptionTransform",
        password_primary(),
    );
    streams.push(("EncryptedPackage".into(), encrypted_package(3)));
    let i = inspect_bytes(&ole_owned(&streams), "budget.xlsx");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:#?}");
    assert!(!i.notes.is_empty(), "{i:#?}");
}

#[test]
fn irm_protected_docx_is_encrypted_and_its_label_info_stream_gives_the_label() {
    let xml = label_info_xml(&[(LABEL, TENANT)]);
    let bytes = irm_docx(&[(
        "\u{6}DataSpaces/TransformInfo/LabelInfo".into(),
        xml.into_bytes(),
    )]);
    let i = inspect_bytes(&bytes, "contract.docx");
    assert_verdict(&i, EncryptionStatus::Encrypted, "irm");
    assert_eq!(i.format, "ooxml-encrypted");
    assert_eq!(
        i.encryption.detail.as_deref(),
        Some("stream EncryptedPackage protected by data space DRMEncryptedDataSpace with the IRM transform")
    );
    assert!(clean(&i), "{i:#?}");
    assert_eq!(i.labels.len(), 1, "{i:#?}");
    let label = &i.labels[0];
    assert_eq!(label.source, LabelSource::LabelInfo);
    assert_eq!(label.id.as_deref(), Some(LABEL));
    assert_eq!(label.tenant.as_deref(), Some(TENANT));
    assert_eq!(label.method.as_deref(), Some("Privileged"));
    assert_eq!(label.enabled, Some(true));
}

#[test]
fn data_spaces_alone_do_not_make_a_file_irm_protected() {
    // The same layout with the password transform id and no EncryptionInfo: not IRM, unknown.
    let mut streams = data_spaces(
        "EncryptedPackage",
        "DRMEncryptedDataSpace",
        "DRMEncryptedTransform",
        password_primary(),
    );
    streams.push(("EncryptedPackage".into(), encrypted_package(4)));
    let i = inspect_bytes(&ole_owned(&streams), "contract.docx");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:#?}");
    // And a document with only a Version stream in its data spaces stays what its streams say.
    let bytes = doc(
        0,
        0,
        None,
        &[("\u{6}DataSpaces/Version", data_space_version())],
    );
    let i = inspect_bytes(&bytes, "memo.doc");
    assert_verdict(&i, EncryptionStatus::Plaintext, "doc");
}

#[test]
fn irm_protected_binary_documents_keep_their_format() {
    // [MS-OFFCRYPTO] 2.2.10/2.2.11: binary documents keep placeholder streams and put the
    // protected content in \x09DRMContent under the \x09DRMDataSpace.
    let mut protection = data_spaces(
        "\u{9}DRMContent",
        "\u{9}DRMDataSpace",
        "\u{9}DRMTransform",
        irm_primary(),
    );
    protection.push(("\u{9}DRMContent".into(), noise(6000, 8)));
    // This writer puts a length prefix before the label XML; it is accepted too.
    let xml = label_info_xml(&[(LABEL2, TENANT2)]);
    let mut prefixed = u32le(xml.len() as u32).to_vec();
    prefixed.extend(xml.as_bytes());
    protection.push(("\u{6}DataSpaces/TransformInfo/LabelInfo".into(), prefixed));
    let mut streams: Vec<(String, Vec<u8>)> =
        vec![("WordDocument".into(), word_document(0x0200, 0))];
    streams.push(("1Table".into(), noise(500, 2)));
    streams.extend(protection.clone());
    let i = inspect_bytes(&ole_owned(&streams), "memo.doc");
    assert_verdict(&i, EncryptionStatus::Encrypted, "irm");
    assert_eq!(i.format, "doc");
    assert_eq!(i.labels.len(), 1, "{i:#?}");
    assert_eq!(i.labels[0].id.as_deref(), Some(LABEL2));

    let mut streams: Vec<(String, Vec<u8>)> = vec![("Workbook".into(), workbook(None))];
    streams.extend(protection);
    let i = inspect_bytes(&ole_owned(&streams), "sheet.xls");
    assert_verdict(&i, EncryptionStatus::Encrypted, "irm");
    assert_eq!(i.format, "xls");

    // The plain control: the same Word streams without the DRM data space.
    let i = inspect_bytes(
        &doc(0x0200, 0, Some(("1Table", noise(64, 1))), &[]),
        "memo.doc",
    );
    assert_verdict(&i, EncryptionStatus::Plaintext, "doc");
    assert!(i.labels.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Legacy binary formats
// ---------------------------------------------------------------------------------------------

#[test]
fn word_fib_flags_decide_the_doc_verdict() {
    let cryptoapi = cryptoapi_header(4);
    let cases: Vec<(&str, Vec<u8>, EncryptionStatus, &str)> = vec![
        (
            "plain",
            doc(0x0200, 0, Some(("1Table", noise(64, 1))), &[]),
            EncryptionStatus::Plaintext,
            "doc",
        ),
        (
            "obfuscated-bit-alone",
            doc(0x8200, 0, Some(("1Table", noise(64, 1))), &[]),
            EncryptionStatus::Plaintext,
            "doc",
        ),
        (
            "xor",
            doc(0x8300, 0xC0DE, Some(("1Table", noise(64, 1))), &[]),
            EncryptionStatus::Encrypted,
            "doc-xor",
        ),
        (
            "rc4",
            doc(0x0300, 52, Some(("1Table", rc4_header())), &[]),
            EncryptionStatus::Encrypted,
            "doc-rc4",
        ),
        (
            "cryptoapi",
            doc(
                0x0100,
                cryptoapi.len() as u32,
                Some(("0Table", cryptoapi.clone())),
                &[],
            ),
            EncryptionStatus::Encrypted,
            "doc-cryptoapi",
        ),
    ];
    for (what, bytes, status, scheme) in cases {
        let i = inspect_bytes(&bytes, &format!("{what}.doc"));
        assert_verdict(&i, status, scheme);
        assert_eq!(i.format, "doc", "{what}");
        assert!(clean(&i), "{what}: {i:#?}");
        assert_eq!(
            msoffcrypto_says_encrypted(&bytes, &format!("{what}.doc")),
            status == EncryptionStatus::Encrypted,
            "msoffcrypto-tool disagrees on {what}"
        );
    }
}

#[test]
fn excel_filepass_records_decide_the_xls_verdict() {
    let cases: Vec<(&str, Vec<u8>, EncryptionStatus, &str)> = vec![
        ("plain", xls(None), EncryptionStatus::Plaintext, "xls"),
        (
            "xor",
            xls(Some(filepass_xor())),
            EncryptionStatus::Encrypted,
            "xls-xor",
        ),
        (
            "rc4",
            xls(Some(filepass_rc4())),
            EncryptionStatus::Encrypted,
            "xls-rc4",
        ),
        (
            "cryptoapi",
            xls(Some(filepass_cryptoapi())),
            EncryptionStatus::Encrypted,
            "xls-cryptoapi",
        ),
    ];
    for (what, bytes, status, scheme) in cases {
        let i = inspect_bytes(&bytes, &format!("{what}.xls"));
        assert_verdict(&i, status, scheme);
        assert_eq!(i.format, "xls", "{what}");
        assert!(clean(&i), "{what}: {i:#?}");
        assert_eq!(
            msoffcrypto_says_encrypted(&bytes, &format!("{what}.xls")),
            status == EncryptionStatus::Encrypted,
            "msoffcrypto-tool disagrees on {what}"
        );
    }
    // BIFF5 (Excel 5/95) keeps its workbook in `Book` and knows only XOR obfuscation.
    let mut book = bof(0x0500, 0x0005);
    book.extend(biff(0x002F, &[0x34, 0x12, 0xCD, 0xAB]));
    book.extend(biff(0x000A, &[]));
    let i = inspect_bytes(&ole(&[("Book", book)]), "old.xls");
    assert_verdict(&i, EncryptionStatus::Encrypted, "xls-xor");
}

#[test]
fn powerpoint_current_user_token_decides_the_ppt_verdict() {
    let plain = ole(&ppt_streams(TOKEN_PLAIN, false));
    let i = inspect_bytes(&plain, "deck.ppt");
    assert_verdict(&i, EncryptionStatus::Plaintext, "ppt");
    assert_eq!(i.format, "ppt");
    assert!(clean(&i), "{i:#?}");
    assert!(!msoffcrypto_says_encrypted(&plain, "plain.ppt"));

    let encrypted = ole(&ppt_streams(TOKEN_ENCRYPTED, true));
    let i = inspect_bytes(&encrypted, "deck.ppt");
    assert_verdict(&i, EncryptionStatus::Encrypted, "ppt-cryptoapi");
    assert_eq!(
        i.encryption.detail.as_deref(),
        Some("CryptSession10Container with RC4 CryptoAPI header 4.2")
    );
    assert!(clean(&i), "{i:#?}");
    assert!(msoffcrypto_says_encrypted(&encrypted, "encrypted.ppt"));

    // The token alone still decides when the container cannot be found.
    let token_only = ole(&ppt_streams(TOKEN_ENCRYPTED, false));
    let i = inspect_bytes(&token_only, "deck.ppt");
    assert_verdict(&i, EncryptionStatus::Encrypted, "ppt-cryptoapi");

    // An unknown token is not guessed at.
    let odd = ole(&ppt_streams(0x1234_5678, false));
    let i = inspect_bytes(&odd, "deck.ppt");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:#?}");
    assert!(!i.notes.is_empty(), "{i:#?}");
}

// ---------------------------------------------------------------------------------------------
// Labels from user-defined properties
// ---------------------------------------------------------------------------------------------

#[test]
fn msip_custom_properties_are_read_from_document_summary_information() {
    for code_page in [1252u16, 1200] {
        let dsi = msip_properties(code_page);
        let bytes = doc(
            0x0200,
            0,
            Some(("1Table", noise(64, 1))),
            &[("\u{5}DocumentSummaryInformation", dsi.clone())],
        );
        let i = inspect_bytes(&bytes, "labelled.doc");
        assert_verdict(&i, EncryptionStatus::Plaintext, "doc");
        assert!(clean(&i), "{i:#?}");
        assert_eq!(i.labels.len(), 2, "{i:#?}");
        let mip = &i.labels[0];
        assert_eq!(mip.source, LabelSource::CustomProperties);
        assert_eq!(mip.id.as_deref(), Some(LABEL));
        assert_eq!(mip.tenant.as_deref(), Some(TENANT));
        assert_eq!(mip.enabled, Some(true));
        assert_eq!(mip.method.as_deref(), Some("Privileged"));
        assert_eq!(mip.set_date.as_deref(), Some("2026-01-05T10:00:00Z"));
        let expected_name = if code_page == 1200 {
            "Vertraulich"
        } else {
            "Vertraulich – Für Kunden"
        };
        assert_eq!(mip.name.as_deref(), Some(expected_name));
        assert_eq!(i.labels[1].source, LabelSource::VendorProperty);
        assert_eq!(i.labels[1].name.as_deref(), Some("Internal"));

        // libgsf reads the same property set back: names, values and the code page.
        let path = tmp(&format!("labelled-{code_page}.doc"));
        std::fs::write(&path, &bytes).expect("write fixture");
        let site = format!("MSIP_Label_{LABEL}_SiteId");
        let name = format!("MSIP_Label_{LABEL}_Name");
        let out = run_tool(
            "gsf",
            "the Debian package libgsf-bin",
            &[
                "props",
                path.to_str().expect("utf-8"),
                &site,
                &name,
                "Sensitivity",
                "Reviewed",
                "Revision",
            ],
        );
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "gsf props failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = format!(
            "{site}: \t= \"{TENANT}\"\n{name}: \t= \"{}\"\nSensitivity: \t= \"Internal\"\nReviewed: \t= TRUE\nRevision: \t= 3\n",
            gsf_escape(expected_name)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    }
}

/// A string as `gsf props` prints it (GLib's `g_strescape`: non-ASCII bytes in octal).
fn gsf_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'"' => "\\\"".to_string(),
            b'\\' => "\\\\".to_string(),
            0x20..=0x7E => char::from(b).to_string(),
            _ => format!("\\{b:03o}"),
        })
        .collect()
}

#[test]
fn non_ascii_property_names_are_not_labels_and_do_not_panic() {
    // A four-byte character where the `MSIP_Label_` prefix ends (found by the rewrite test).
    let odd = format!("MSIP_Labe\u{242EE}_{LABEL}_Name");
    let umlaut = format!("MSIP_Läbel_{LABEL}_Enabled");
    let dsi = document_summary_information(
        1200,
        &[
            (&odd, Value::Lpwstr("Secret")),
            (&umlaut, Value::Lpwstr("true")),
            ("Vertraulichkeitsstufe", Value::Lpwstr("hoch")),
        ],
    );
    let bytes = doc(
        0x0200,
        0,
        Some(("1Table", noise(64, 1))),
        &[("\u{5}DocumentSummaryInformation", dsi)],
    );
    let i = inspect_bytes(&bytes, "odd.doc");
    assert!(i.labels.is_empty(), "{i:#?}");
    assert_verdict(&i, EncryptionStatus::Plaintext, "doc");
    assert!(clean(&i), "{i:#?}");
}

#[test]
fn label_info_wins_over_custom_properties_for_its_tenant() {
    let k = |id: &str, field: &str| format!("MSIP_Label_{id}_{field}");
    let (a, b, c, d) = (
        k(LABEL2, "Enabled"),
        k(LABEL2, "SiteId"),
        k("5f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b", "Enabled"),
        k("5f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b", "SiteId"),
    );
    let dsi = document_summary_information(
        1252,
        &[
            (&a, Value::Lpstr(b"true")),
            (&b, Value::Lpstr(TENANT.as_bytes())),
            (&c, Value::Lpstr(b"true")),
            (&d, Value::Lpstr(TENANT2.as_bytes())),
        ],
    );
    let bytes = irm_docx(&[
        (
            "\u{6}DataSpaces/TransformInfo/LabelInfo".into(),
            label_info_xml(&[(LABEL, TENANT)]).into_bytes(),
        ),
        ("\u{5}DocumentSummaryInformation".into(), dsi),
    ]);
    let i = inspect_bytes(&bytes, "merged.docx");
    let found: Vec<(LabelSource, Option<&str>, Option<&str>)> = i
        .labels
        .iter()
        .map(|l| (l.source, l.id.as_deref(), l.tenant.as_deref()))
        .collect();
    assert_eq!(
        found,
        vec![
            (LabelSource::LabelInfo, Some(LABEL), Some(TENANT)),
            (
                LabelSource::CustomProperties,
                Some("5f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b"),
                Some(TENANT2)
            ),
        ],
        "{i:#?}"
    );

    // An empty label list in the LabelInfo stream removes the labels.
    let bytes = irm_docx(&[(
        "\u{6}DataSpaces/TransformInfo/LabelInfo".into(),
        label_info_xml(&[]).into_bytes(),
    )]);
    let i = inspect_bytes(&bytes, "unlabelled.docx");
    assert!(i.labels.is_empty(), "{i:#?}");
    assert_verdict(&i, EncryptionStatus::Encrypted, "irm");
}

// ---------------------------------------------------------------------------------------------
// Compound files that are not Office documents
// ---------------------------------------------------------------------------------------------

#[test]
fn ole_files_of_unknown_kind_are_unknown_not_encrypted() {
    let msg = ole(&[
        ("__properties_version1.0", noise(96, 1)),
        ("__substg1.0_0037001F", utf16("Quarterly numbers")),
        ("__substg1.0_1000001F", utf16("See attachment.")),
        ("__nameid_version1.0/__substg1.0_00020102", noise(32, 2)),
    ]);
    let thumbs = ole(&[
        ("Catalog", noise(200, 3)),
        ("1", noise(900, 4)),
        ("2", noise(900, 5)),
    ]);
    let random = ole_version(
        cfb::Version::V4,
        &[("Data", noise(9000, 6)), ("Meta/Info", noise(40, 7))],
    );
    let cases = [
        (msg, "mail.msg", "msg"),
        (thumbs, "Thumbs.db", "cfb"),
        (random, "blob.bin", "cfb"),
    ];
    for (bytes, name, format) in cases {
        let i = inspect_bytes(&bytes, name);
        assert_eq!(
            i.encryption.status,
            EncryptionStatus::Unknown,
            "{name}: {i:#?}"
        );
        assert_eq!(i.format, format, "{name}");
        assert!(!i.notes.is_empty(), "{name}: the reason is noted");
        assert!(i.errors.is_empty(), "{name}: {i:#?}");
        assert!(i.labels.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Corrupt compound files
// ---------------------------------------------------------------------------------------------

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn set32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Byte offset of the directory entry called `name` (version 3 file, directory in its first
/// sector), and of the FAT entry of `sector`.
fn directory_entry(b: &[u8], name: &str) -> usize {
    let dir = (le32(b, 48) as usize + 1) * 512;
    (0..4)
        .map(|i| dir + 128 * i)
        .find(|&at| {
            let len = u16::from_le_bytes([b[at + 64], b[at + 65]]) as usize;
            b[at..at + len.saturating_sub(2)] == utf16(name)[..]
        })
        .expect("directory entry")
}

fn fat_entry(b: &[u8], sector: u32) -> usize {
    (le32(b, 76) as usize + 1) * 512 + 4 * sector as usize
}

fn corrupt_base() -> Vec<u8> {
    doc(
        0x0200,
        0,
        Some(("1Table", noise(64, 1))),
        &[("\u{5}DocumentSummaryInformation", msip_properties(1252))],
    )
}

#[test]
fn corrupt_compound_files_end_in_errors_or_unknown() {
    let base = corrupt_base();
    assert_verdict(
        &inspect_bytes(&base, "base.doc"),
        EncryptionStatus::Plaintext,
        "doc",
    );
    let word = directory_entry(&base, "WordDocument");
    let start = le32(&base, word + 116);
    // Each corruption, and the reason inspection must give for stopping.
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();

    let mut fat_loop = base.clone();
    let at = fat_entry(&fat_loop, start);
    set32(&mut fat_loop, at, start);
    cases.push((
        "FAT chain loop in WordDocument",
        fat_loop,
        "sector chain loops",
    ));

    let mut dir_loop = base.clone();
    let dir = le32(&dir_loop, 48);
    let at = fat_entry(&dir_loop, dir);
    set32(&mut dir_loop, at, dir);
    cases.push((
        "FAT chain loop in the directory",
        dir_loop,
        "sector chain loops",
    ));

    let mut out_of_range = base.clone();
    set32(&mut out_of_range, word + 116, 0x00FF_FFF0);
    cases.push((
        "sector index out of range",
        out_of_range,
        "sector index out of range",
    ));

    let mut cycle = base.clone();
    let root_child = le32(&cycle, (le32(&cycle, 48) as usize + 1) * 512 + 76);
    let child_at = (le32(&cycle, 48) as usize + 1) * 512 + 128 * root_child as usize;
    set32(&mut cycle, child_at + 72, root_child);
    cases.push(("directory cycle", cycle, "directory has a cycle"));

    let mut huge = base.clone();
    set32(&mut huge, word + 120, 0xFFFF_FFF0);
    cases.push((
        "huge declared stream size",
        huge,
        "stream larger than the file",
    ));

    let mut fat_size = base.clone();
    set32(&mut fat_size, 44, 0x7FFF_FFFF);
    cases.push((
        "FAT larger than the file",
        fat_size,
        "compound file FAT size",
    ));

    for (what, bytes, reason) in cases {
        let started = Instant::now();
        let i = inspect_bytes(&bytes, "broken.doc");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{what} took too long"
        );
        assert_eq!(
            i.encryption.status,
            EncryptionStatus::Unknown,
            "{what}: {i:#?}"
        );
        assert!(
            i.errors.iter().chain(&i.notes).any(|e| e.contains(reason)),
            "{what}: expected \"{reason}\" in {:?} or {:?}",
            i.errors,
            i.notes
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Robustness: truncation, bit flips and random bytes never panic and stay fast
// ---------------------------------------------------------------------------------------------

fn fixtures() -> &'static [(String, Vec<u8>)] {
    static ALL: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    ALL.get_or_init(|| {
        vec![
            ("agile.docx".into(), agile_docx().to_vec()),
            ("standard.docx".into(), standard_encrypted_docx()),
            (
                "irm.docx".into(),
                irm_docx(&[(
                    "\u{6}DataSpaces/TransformInfo/LabelInfo".into(),
                    label_info_xml(&[(LABEL, TENANT)]).into_bytes(),
                )]),
            ),
            ("labelled.doc".into(), corrupt_base()),
            (
                "rc4.doc".into(),
                doc(0x0300, 52, Some(("1Table", rc4_header())), &[]),
            ),
            ("cryptoapi.xls".into(), xls(Some(filepass_cryptoapi()))),
            ("plain.xls".into(), xls(None)),
            (
                "encrypted.ppt".into(),
                ole(&ppt_streams(TOKEN_ENCRYPTED, true)),
            ),
            (
                "v4.doc".into(),
                ole_version(
                    cfb::Version::V4,
                    &[
                        ("WordDocument", word_document(0x8300, 1)),
                        ("\u{5}DocumentSummaryInformation", msip_properties(1200)),
                    ],
                ),
            ),
        ]
    })
}

fn inspect_timed(bytes: &[u8], what: &str) {
    let started = Instant::now();
    let _ = inspect_bytes(bytes, "fuzz.doc");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{what}: inspection took {:?}",
        started.elapsed()
    );
}

#[test]
fn truncated_fixtures_never_panic() {
    for (name, bytes) in fixtures() {
        let step = (bytes.len() / 150).max(1);
        let mut cut = 0;
        while cut < bytes.len() {
            inspect_timed(&bytes[..cut], &format!("{name} cut at {cut}"));
            cut += step;
        }
        for cut in [511, 512, 513, 1023, 1024, 1536, 4096, 4097] {
            if cut < bytes.len() {
                inspect_timed(&bytes[..cut], &format!("{name} cut at {cut}"));
            }
        }
    }
}

#[test]
fn bit_flipped_fixtures_never_panic() {
    for (name, bytes) in fixtures() {
        let mut flipped = bytes.clone();
        // Every header byte, and positions spread over the rest (directory, FAT, streams).
        let positions = (0..512)
            .step_by(3)
            .chain((512..bytes.len()).step_by((bytes.len() / 400).max(1)));
        for pos in positions {
            let bit = 1u8 << (pos % 8);
            flipped[pos] ^= bit;
            inspect_timed(&flipped, &format!("{name} bit {bit} at {pos}"));
            flipped[pos] ^= bit;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_behind_the_signature_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..6000),
    ) {
        let mut bytes = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        bytes.extend(body);
        inspect_timed(&bytes, "random");
    }

    #[test]
    fn random_rewrites_of_fixtures_never_panic(
        which in 0usize..9,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..24),
    ) {
        let (name, original) = &fixtures()[which % fixtures().len()];
        let mut bytes = original.clone();
        for (index, value) in edits {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        inspect_timed(&bytes, name);
    }

    #[test]
    fn random_header_fields_never_panic(
        fields in proptest::collection::vec((0usize..128, any::<u32>()), 1..8),
    ) {
        // Rewrite 32-bit header fields (counts, sector numbers, DIFAT) of a real file.
        let mut bytes = fixtures()[3].1.clone();
        for (slot, value) in fields {
            let at = 24 + 4 * (slot % 122);
            bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
        }
        inspect_timed(&bytes, "header fields");
    }
}

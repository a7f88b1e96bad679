//! PDF inspection on real files: a labeled PDF written by hand from ISO 32000 (objects, a
//! computed cross-reference table, an Info dictionary and XMP with `MSIP_Label_*` keys), turned
//! by qpdf (Debian package `qpdf`) into normalised, object-stream, encrypted and re-checked
//! copies; incremental updates, a Purview-style PDF 2.0 wrapper (ISO 32000-2 7.6.7), a
//! public-key encryption dictionary and malformed files built by hand. Every encrypted case has
//! a plain control. qpdf also validates the hand-written fixtures (`qpdf --check`) and is the
//! oracle for "opens without a password" (`qpdf --requires-password`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use infoledger_agent::inspect::{inspect, Bounded, Inspection};
use infoledger_policies::{DetectedLabel, EncryptionStatus, LabelSource};
use proptest::prelude::*;

const LABEL: &str = "3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d";
const TENANT: &str = "0b1c2d3e-0000-4000-8000-000000000001";
const LABEL_2: &str = "9a7c1f30-2b4d-4e8f-a1c2-5d6e7f809112";
const TENANT_2: &str = "0b1c2d3e-0000-4000-8000-000000000002";

fn inspect_bytes(bytes: &[u8]) -> Inspection {
    inspect(
        &Bounded::from_bytes(bytes, 4 * 1024 * 1024),
        &bytes[..bytes.len().min(4096)],
        "name.pdf",
    )
}

// ---- fixtures written by hand ----

/// A stream object's text: its dictionary entries, /Length and the data.
fn stream(entries: &str, data: &[u8]) -> Vec<u8> {
    let mut out = format!("<<{entries} /Length {}>>\nstream\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\nendstream");
    out
}

/// A PDF string in hexadecimal UTF-16BE with a byte-order mark.
fn utf16_hex(s: &str) -> String {
    let mut out = String::from("<FEFF");
    for unit in s.encode_utf16() {
        out.push_str(&format!("{unit:04X}"));
    }
    out.push('>');
    out
}

/// A file: header, objects 1..=n, a cross-reference table with 20-byte entries, the trailer.
fn assemble(version: &str, objects: &[Vec<u8>], trailer: &str) -> Vec<u8> {
    let mut out = format!("%PDF-{version}\n%\u{e2}\u{e3}\n").into_bytes();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} {trailer} >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

const ID: &str = "/ID [<6e6f6e2d72616e646f6d2d69642d3031><6e6f6e2d72616e646f6d2d69642d3031>]";

/// An XMP packet as Office writes label metadata: `pdfx:` elements with Enabled, Method and
/// SiteId only.
fn xmp_packet(properties: &str) -> Vec<u8> {
    format!(
        r#"<?xpacket begin="﻿" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/" xmlns:pdfx="http://ns.adobe.com/pdfx/1.3/">
   <pdf:Producer>infoledger tests</pdf:Producer>
{properties}
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"#
    )
    .into_bytes()
}

fn pdfx_label(label: &str, tenant: &str) -> String {
    format!(
        "   <pdfx:MSIP_Label_{label}_Enabled>true</pdfx:MSIP_Label_{label}_Enabled>\n   \
         <pdfx:MSIP_Label_{label}_Method>Standard</pdfx:MSIP_Label_{label}_Method>\n   \
         <pdfx:MSIP_Label_{label}_SiteId>{tenant}</pdfx:MSIP_Label_{label}_SiteId>"
    )
}

/// The objects of a one-page document whose catalog points at an XMP stream (object 5); the
/// Info dictionary (object 6) is given.
fn labeled_objects(info: &str, xmp: Vec<u8>) -> Vec<Vec<u8>> {
    vec![
        b"<< /Type /Catalog /Pages 2 0 R /Metadata 5 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << >> >>"
            .to_vec(),
        stream("", b"0 0 m 100 100 l S"),
        stream("/Type /Metadata /Subtype /XML", &xmp),
        info.as_bytes().to_vec(),
    ]
}

fn labeled_info(label: &str, tenant: &str) -> String {
    // Values as Office writes them: literal strings, the tenant as UTF-16BE text.
    format!(
        "<< /Title (Quarterly \\(draft\\) report) /Producer (infoledger tests) \
         /MSIP_Label_{label}_Enabled (true) /MSIP_Label_{label}_Method (Standard) \
         /MSIP_Label_{label}_SiteId {} >>",
        utf16_hex(tenant)
    )
}

/// The labeled document: one label in both the Info dictionary and XMP.
fn labeled_pdf() -> Vec<u8> {
    assemble(
        "1.7",
        &labeled_objects(
            &labeled_info(LABEL, TENANT),
            xmp_packet(&pdfx_label(LABEL, TENANT)),
        ),
        &format!("/Root 1 0 R /Info 6 0 R {ID}"),
    )
}

/// The same document without any label.
fn unlabeled_pdf() -> Vec<u8> {
    assemble(
        "1.7",
        &labeled_objects("<< /Title (Plain) >>", xmp_packet("")),
        &format!("/Root 1 0 R /Info 6 0 R {ID}"),
    )
}

/// `base` with an incremental update (ISO 32000-1 7.5.6) appended: `objects` as (number,
/// body), a table with one subsection per object, and a trailer with /Prev.
fn append_update(
    base: &[u8],
    objects: &[(u32, Vec<u8>)],
    trailer: &str,
    prev: Option<usize>,
) -> Vec<u8> {
    let prev = prev.unwrap_or_else(|| startxref_of(base));
    let mut out = base.to_vec();
    let mut offsets = Vec::new();
    for (num, body) in objects {
        offsets.push((*num, out.len()));
        out.extend_from_slice(format!("{num} 0 obj\n").as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(b"xref\n0 1\n0000000000 65535 f \n");
    for (num, off) in offsets {
        out.extend_from_slice(format!("{num} 1\n{off:010} 00000 n \n").as_bytes());
    }
    let size = objects.iter().map(|(n, _)| n + 1).max().unwrap_or(1).max(7);
    out.extend_from_slice(
        format!("trailer\n<< /Size {size} {trailer} /Prev {prev} >>\nstartxref\n{xref}\n%%EOF\n")
            .as_bytes(),
    );
    out
}

fn startxref_of(pdf: &[u8]) -> usize {
    let at = pdf
        .windows(9)
        .rposition(|w| w == b"startxref")
        .expect("startxref");
    String::from_utf8_lossy(&pdf[at + 9..])
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("startxref offset")
}

/// A Purview-style unencrypted wrapper document (ISO 32000-2 7.6.7): PDF 2.0, a cover page,
/// the encrypted document as an embedded file whose specification has /AFRelationship
/// /EncryptedPayload and an encrypted payload dictionary (Table 28), listed in the catalog's
/// /AF array and embedded-file name tree, and a hidden collection view pointing at it.
/// `payload_spec` replaces the file specification's relationship entries; `in_af` lists it in
/// the catalog's /AF.
fn wrapper_pdf(payload_spec: &str, in_af: bool) -> Vec<u8> {
    let name = "Microsoft IRMServices Protection.pdf";
    let af = if in_af { "/AF [6 0 R]" } else { "" };
    let payload: Vec<u8> = (0..2048u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let objects = vec![
        format!(
            "<< /Type /Catalog /Pages 2 0 R {af} /Collection << /Type /Collection /View /H /D ({name}) >> \
             /Names << /EmbeddedFiles << /Names [({name}) 6 0 R] >> >> >>"
        )
        .into_bytes(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << >> >>"
            .to_vec(),
        stream("", b"0 0 m 612 792 l S"),
        stream(
            &format!("/Type /EmbeddedFile /Subtype /application#2Fpdf /Params << /Size {} >>", payload.len()),
            &payload,
        ),
        format!(
            "<< /Type /Filespec /F ({name}) /UF {} /Desc (This document is protected) \
             /EF << /F 5 0 R /UF 5 0 R >> {payload_spec} >>",
            utf16_hex(name)
        )
        .into_bytes(),
        labeled_info(LABEL, TENANT).into_bytes(),
    ];
    assemble("2.0", &objects, &format!("/Root 1 0 R /Info 7 0 R {ID}"))
}

const EP_SPEC: &str = "/AFRelationship /EncryptedPayload \
     /EP << /Type /EncryptedPayload /Subtype /MicrosoftIRMServices /Version (2) >>";

// ---- qpdf ----

fn workdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("inspect-pdf")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir under CARGO_TARGET_TMPDIR")
}

fn run_qpdf(args: &[&str]) -> Output {
    match Command::new("qpdf").args(args).output() {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run qpdf ({e}); these tests need the Debian package `qpdf`: apt-get install -y qpdf"
        ),
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(bytes))
        .expect("write fixture");
    path
}

/// `qpdf ARGS in.pdf out.pdf`, which must succeed without warnings.
fn qpdf(input: &[u8], args: &[&str]) -> Vec<u8> {
    let dir = workdir();
    let src = write(dir.path(), "in.pdf", input);
    let dst = dir.path().join("out.pdf");
    let mut all: Vec<&str> = args.to_vec();
    all.push(path_str(&src));
    all.push(path_str(&dst));
    let out = run_qpdf(&all);
    assert!(
        out.status.success(),
        "qpdf {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&dst).expect("qpdf output")
}

/// `qpdf --check`: the hand-written file is a valid PDF, without warnings.
fn assert_qpdf_accepts(pdf: &[u8]) {
    let dir = workdir();
    let path = write(dir.path(), "check.pdf", pdf);
    let out = run_qpdf(&["--check", path_str(&path)]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !text.contains("WARNING"),
        "qpdf --check: {text}"
    );
}

/// qpdf's own answer to "does it open without a password": `--requires-password` exits 3 when
/// the (empty) password supplied opens it, 0 when another password is needed.
fn qpdf_opens_without_password(pdf: &[u8]) -> bool {
    let dir = workdir();
    let path = write(dir.path(), "enc.pdf", pdf);
    match run_qpdf(&["--requires-password", path_str(&path)])
        .status
        .code()
    {
        Some(3) => true,
        Some(0) => false,
        other => panic!("qpdf --requires-password exited with {other:?}"),
    }
}

// ---- assertions ----

/// Nothing went wrong and nothing needed remarking.
fn assert_clean(i: &Inspection) {
    assert!(i.errors.is_empty(), "errors: {:?}", i.errors);
    assert!(i.notes.is_empty(), "notes: {:?}", i.notes);
}

fn assert_verdict(i: &Inspection, status: EncryptionStatus, scheme: &str) {
    assert_eq!(i.encryption.status, status, "{i:#?}");
    assert_eq!(i.encryption.scheme.as_deref(), Some(scheme), "{i:#?}");
}

fn label<'a>(i: &'a Inspection, id: &str) -> &'a DetectedLabel {
    i.labels
        .iter()
        .find(|l| l.id.as_deref() == Some(id))
        .unwrap_or_else(|| panic!("no label {id} in {i:#?}"))
}

/// The label Office writes, read from the Info dictionary with its tenant and flags.
fn assert_office_label(i: &Inspection) {
    let mip: Vec<&DetectedLabel> = i.labels.iter().filter(|l| l.id.is_some()).collect();
    assert_eq!(mip.len(), 1, "one label, reported once: {i:#?}");
    let l = mip[0];
    assert_eq!(l.source, LabelSource::PdfInfo);
    assert_eq!(l.id.as_deref(), Some(LABEL));
    assert_eq!(l.tenant.as_deref(), Some(TENANT));
    assert_eq!(l.enabled, Some(true));
    assert_eq!(l.method.as_deref(), Some("Standard"));
    assert_eq!(l.name, None, "Office exports carry no name");
}

// ---- plain documents ----

#[test]
fn hand_written_fixtures_are_valid_pdf() {
    assert_qpdf_accepts(&labeled_pdf());
    assert_qpdf_accepts(&unlabeled_pdf());
    assert_qpdf_accepts(&wrapper_pdf(EP_SPEC, true));
    assert_qpdf_accepts(&incremental_update());
    assert_qpdf_accepts(&object_stream_pdf(2));
}

#[test]
fn labeled_pdf_is_plaintext_and_its_label_is_reported_once() {
    let i = inspect_bytes(&labeled_pdf());
    assert_eq!(i.format, "pdf");
    assert_verdict(&i, EncryptionStatus::Plaintext, "pdf");
    assert_clean(&i);
    assert_office_label(&i);

    let plain = inspect_bytes(&unlabeled_pdf());
    assert_verdict(&plain, EncryptionStatus::Plaintext, "pdf");
    assert!(plain.labels.is_empty(), "{plain:#?}");
}

#[test]
fn labels_only_in_xmp_are_found_in_element_and_attribute_form() {
    let xmp = format!(
        "{}\n  </rdf:Description>\n  <rdf:Description rdf:about=\"\" xmlns:msip=\"urn:example\" \
         msip:MSIP_Label_{LABEL_2}_Enabled=\"True\" msip:MSIP_Label_{LABEL_2}_SiteId=\"{TENANT_2}\">",
        pdfx_label(LABEL, TENANT)
    );
    let pdf = assemble(
        "1.7",
        &labeled_objects("<< /Title (x) >>", xmp_packet(&xmp)),
        &format!("/Root 1 0 R /Info 6 0 R {ID}"),
    );
    assert_qpdf_accepts(&pdf);
    let i = inspect_bytes(&pdf);
    assert_verdict(&i, EncryptionStatus::Plaintext, "pdf");
    assert_eq!(i.labels.len(), 2, "{i:#?}");
    let a = label(&i, LABEL);
    assert_eq!(a.source, LabelSource::PdfXmp);
    assert_eq!(a.tenant.as_deref(), Some(TENANT));
    let b = label(&i, LABEL_2);
    assert_eq!(b.source, LabelSource::PdfXmp);
    assert_eq!(b.tenant.as_deref(), Some(TENANT_2));
    assert_eq!(b.enabled, Some(true));
}

#[test]
fn flate_compressed_xmp_is_read() {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&xmp_packet(&pdfx_label(LABEL_2, TENANT_2)))
        .expect("deflate");
    let packed = z.finish().expect("deflate");
    let mut objects = labeled_objects(&labeled_info(LABEL, TENANT), Vec::new());
    objects[4] = stream(
        "/Type /Metadata /Subtype /XML /Filter /FlateDecode",
        &packed,
    );
    let pdf = assemble("1.7", &objects, &format!("/Root 1 0 R /Info 6 0 R {ID}"));
    assert_qpdf_accepts(&pdf);
    let i = inspect_bytes(&pdf);
    assert_eq!(label(&i, LABEL).source, LabelSource::PdfInfo);
    assert_eq!(label(&i, LABEL_2).source, LabelSource::PdfXmp);
}

#[test]
fn qpdf_normalised_copy_reads_the_same() {
    let norm = qpdf(&labeled_pdf(), &[]);
    let i = inspect_bytes(&norm);
    assert_verdict(&i, EncryptionStatus::Plaintext, "pdf");
    assert_clean(&i);
    assert_office_label(&i);
}

#[test]
fn object_streams_and_a_cross_reference_stream_are_followed() {
    let packed = qpdf(&labeled_pdf(), &["--object-streams=generate"]);
    let text = String::from_utf8_lossy(&packed);
    assert!(
        text.contains("/XRef") && text.contains("/ObjStm"),
        "qpdf wrote no xref/object stream"
    );
    assert!(
        !text.contains("/MSIP_Label_"),
        "the Info dictionary should sit in a compressed object stream"
    );
    let i = inspect_bytes(&packed);
    assert_verdict(&i, EncryptionStatus::Plaintext, "pdf");
    assert_clean(&i);
    assert_office_label(&i);

    let plain = inspect_bytes(&qpdf(&unlabeled_pdf(), &["--object-streams=generate"]));
    assert_verdict(&plain, EncryptionStatus::Plaintext, "pdf");
    assert!(plain.labels.is_empty());
}

#[test]
fn linearized_copies_are_followed_from_the_first_page_section() {
    let linear = qpdf(&labeled_pdf(), &["--linearize"]);
    assert!(String::from_utf8_lossy(&linear[..1024]).contains("/Linearized"));
    let i = inspect_bytes(&linear);
    assert_verdict(&i, EncryptionStatus::Plaintext, "pdf");
    assert_clean(&i);
    assert_office_label(&i);
    let enc = qpdf(
        &labeled_pdf(),
        &["--linearize", "--encrypt", "u", "owner", "256", "--"],
    );
    assert_verdict(
        &inspect_bytes(&enc),
        EncryptionStatus::Encrypted,
        "pdf-standard-aes-256",
    );
}

// ---- encryption ----

struct Case {
    args: &'static [&'static str],
    scheme: &'static str,
}

const ENCRYPTED: &[Case] = &[
    Case {
        args: &[
            "--allow-weak-crypto",
            "--encrypt",
            "user",
            "owner",
            "40",
            "--",
        ],
        scheme: "pdf-standard-rc4-40",
    },
    Case {
        args: &["--allow-weak-crypto", "--encrypt", "", "owner", "40", "--"],
        scheme: "pdf-standard-rc4-40",
    },
    Case {
        args: &[
            "--allow-weak-crypto",
            "--encrypt",
            "user",
            "owner",
            "128",
            "--use-aes=n",
            "--",
        ],
        scheme: "pdf-standard-rc4-128",
    },
    Case {
        args: &[
            "--allow-weak-crypto",
            "--encrypt",
            "",
            "owner",
            "128",
            "--use-aes=n",
            "--",
        ],
        scheme: "pdf-standard-rc4-128",
    },
    Case {
        args: &["--encrypt", "user", "owner", "128", "--use-aes=y", "--"],
        scheme: "pdf-standard-aes-128",
    },
    Case {
        args: &["--encrypt", "", "owner", "128", "--use-aes=y", "--"],
        scheme: "pdf-standard-aes-128",
    },
    Case {
        args: &["--encrypt", "user", "owner", "256", "--"],
        scheme: "pdf-standard-aes-256",
    },
    Case {
        args: &["--encrypt", "", "owner", "256", "--"],
        scheme: "pdf-standard-aes-256",
    },
    Case {
        args: &["--encrypt", "user", "owner", "256", "--force-R5", "--"],
        scheme: "pdf-standard-aes-256",
    },
    Case {
        args: &["--encrypt", "", "owner", "256", "--force-R5", "--"],
        scheme: "pdf-standard-aes-256",
    },
];

#[test]
fn qpdf_encrypted_copies_name_their_scheme_and_whether_they_open_without_a_password() {
    let base = labeled_pdf();
    assert_verdict(&inspect_bytes(&base), EncryptionStatus::Plaintext, "pdf");
    for case in ENCRYPTED {
        let enc = qpdf(&base, case.args);
        let i = inspect_bytes(&enc);
        assert_verdict(&i, EncryptionStatus::Encrypted, case.scheme);
        let detail = i.encryption.detail.clone().unwrap_or_default();
        let empty_password = qpdf_opens_without_password(&enc);
        assert_eq!(
            empty_password,
            case.args.contains(&""),
            "{:?}: qpdf disagrees with the fixture",
            case.args
        );
        if empty_password {
            assert!(
                detail.contains("opens without a password"),
                "{:?}: {detail}",
                case.args
            );
        } else {
            assert!(
                detail.contains("a user password is needed"),
                "{:?}: {detail}",
                case.args
            );
        }
        // The Info values are encrypted; the key still names the label.
        let l = label(&i, LABEL);
        assert_eq!(l.source, LabelSource::PdfInfo);
        assert_eq!(l.tenant, None, "{l:?}");
        assert!(
            i.notes
                .iter()
                .any(|e| e.contains("XMP metadata is encrypted")),
            "{:?}",
            i.notes
        );
    }
}

#[test]
fn cleartext_metadata_of_an_encrypted_file_supplies_the_label_fields() {
    let enc = qpdf(
        &labeled_pdf(),
        &[
            "--encrypt",
            "user",
            "owner",
            "256",
            "--cleartext-metadata",
            "--",
        ],
    );
    let i = inspect_bytes(&enc);
    assert_verdict(&i, EncryptionStatus::Encrypted, "pdf-standard-aes-256");
    assert_clean(&i);
    let l = label(&i, LABEL);
    assert_eq!(i.labels.len(), 1, "{i:#?}");
    assert_eq!(l.source, LabelSource::PdfInfo);
    assert_eq!(l.tenant.as_deref(), Some(TENANT), "filled in from XMP");
    assert_eq!(l.enabled, Some(true));
}

#[test]
fn encrypted_object_streams_still_give_the_verdict() {
    let enc = qpdf(
        &labeled_pdf(),
        &[
            "--object-streams=generate",
            "--encrypt",
            "",
            "owner",
            "256",
            "--",
        ],
    );
    let i = inspect_bytes(&enc);
    assert_verdict(&i, EncryptionStatus::Encrypted, "pdf-standard-aes-256");
    assert!(i
        .encryption
        .detail
        .unwrap_or_default()
        .contains("opens without a password"));
    let plain = inspect_bytes(&qpdf(&labeled_pdf(), &["--object-streams=generate"]));
    assert_verdict(&plain, EncryptionStatus::Plaintext, "pdf");
}

#[test]
fn public_key_encryption_is_pdf_pubsec() {
    // An encryption dictionary of the public-key handler (ISO 32000-1 7.6.4, Table 23) with a
    // placeholder PKCS#7 recipient; qpdf cannot write these.
    let mut objects = labeled_objects(&labeled_info(LABEL, TENANT), xmp_packet(""));
    objects.push(
        b"<< /Filter /Adobe.PubSec /SubFilter /adbe.pkcs7.s5 /V 4 /Length 128 \
          /CF << /DefaultCryptFilter << /CFM /AESV2 /Recipients [<3082010a02820101>] >> >> \
          /StmF /DefaultCryptFilter /StrF /DefaultCryptFilter >>"
            .to_vec(),
    );
    let pdf = assemble(
        "1.7",
        &objects,
        &format!("/Root 1 0 R /Info 6 0 R /Encrypt 7 0 R {ID}"),
    );
    let i = inspect_bytes(&pdf);
    assert_verdict(&i, EncryptionStatus::Encrypted, "pdf-pubsec");
    let detail = i.encryption.detail.unwrap_or_default();
    assert!(
        detail.contains("adbe.pkcs7.s5") && detail.contains("aes-128"),
        "{detail}"
    );
    // Control: the same file without /Encrypt.
    let plain = assemble("1.7", &objects, &format!("/Root 1 0 R /Info 6 0 R {ID}"));
    assert_verdict(&inspect_bytes(&plain), EncryptionStatus::Plaintext, "pdf");
}

// ---- Purview-protected wrappers ----

#[test]
fn purview_wrapper_is_encrypted_without_encrypt() {
    let wrapper = wrapper_pdf(EP_SPEC, true);
    assert!(!String::from_utf8_lossy(&wrapper).contains("/Encrypt "));
    let i = inspect_bytes(&wrapper);
    assert_verdict(&i, EncryptionStatus::Encrypted, "pdf-encrypted-payload");
    let detail = i.encryption.detail.clone().unwrap_or_default();
    assert!(
        detail.contains("MicrosoftIRMServices") && detail.contains("version 2"),
        "{detail}"
    );
    assert_clean(&i);
    // The wrapper's own Info dictionary still carries the label.
    assert_eq!(label(&i, LABEL).source, LabelSource::PdfInfo);

    // The payload listed only in the embedded-file tree is found too.
    let tree_only = inspect_bytes(&wrapper_pdf(EP_SPEC, false));
    assert_verdict(
        &tree_only,
        EncryptionStatus::Encrypted,
        "pdf-encrypted-payload",
    );
    // And with everything moved into object streams by qpdf.
    let packed = inspect_bytes(&qpdf(&wrapper, &["--object-streams=generate"]));
    assert_verdict(
        &packed,
        EncryptionStatus::Encrypted,
        "pdf-encrypted-payload",
    );

    // Control: the same file with an ordinary attachment is plaintext.
    let attachment = wrapper_pdf("/AFRelationship /Data", true);
    assert_qpdf_accepts(&attachment);
    assert_verdict(
        &inspect_bytes(&attachment),
        EncryptionStatus::Plaintext,
        "pdf",
    );
}

// ---- incremental updates ----

/// The labeled document updated incrementally: a new Info dictionary (object 7) with another
/// label; the catalog and its XMP are unchanged.
fn incremental_update() -> Vec<u8> {
    append_update(
        &labeled_pdf(),
        &[(7, labeled_info(LABEL_2, TENANT_2).into_bytes())],
        &format!("/Root 1 0 R /Info 7 0 R {ID}"),
        None,
    )
}

#[test]
fn incremental_updates_are_followed_and_the_newest_info_wins() {
    let i = inspect_bytes(&incremental_update());
    assert_verdict(&i, EncryptionStatus::Plaintext, "pdf");
    assert_clean(&i);
    let info = label(&i, LABEL_2);
    assert_eq!(info.source, LabelSource::PdfInfo);
    assert_eq!(info.tenant.as_deref(), Some(TENANT_2));
    // The old Info's label is gone; XMP (unchanged) still names the first one.
    assert_eq!(label(&i, LABEL).source, LabelSource::PdfXmp);
    assert_eq!(i.labels.len(), 2, "{i:#?}");

    // An update whose trailer forgot /Root still finds the catalog in the older trailer.
    let careless = append_update(
        &labeled_pdf(),
        &[(7, b"<< /Title (x) >>".to_vec())],
        "/Info 7 0 R",
        None,
    );
    assert_verdict(
        &inspect_bytes(&careless),
        EncryptionStatus::Plaintext,
        "pdf",
    );
}

#[test]
fn a_prev_loop_ends_with_a_note_and_no_guess() {
    let base = labeled_pdf();
    // The update's table sits at the same offset whatever its trailer says, so a first build
    // tells where it is and the second points /Prev back at it.
    let probe = append_update(
        &base,
        &[(7, b"<< >>".to_vec())],
        "/Root 1 0 R /Info 6 0 R",
        None,
    );
    let own = startxref_of(&probe);
    let looped = append_update(
        &base,
        &[(7, b"<< >>".to_vec())],
        "/Root 1 0 R /Info 6 0 R",
        Some(own),
    );
    assert_eq!(startxref_of(&looped), own);
    let start = Instant::now();
    let i = inspect_bytes(&looped);
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(i.notes.iter().any(|e| e.contains("loops")), "{:?}", i.notes);
    // The original section (and with it the catalog) is unreachable: no plaintext guess.
    assert_ne!(i.encryption.status, EncryptionStatus::Plaintext, "{i:#?}");
}

// ---- hand-built cross-reference and object streams ----

/// A PDF 1.5 whose catalog (2) and Info (3) live in an object stream (1) claiming `n` objects,
/// indexed by a Flate-compressed cross-reference stream (5) without predictor.
fn object_stream_pdf(n: u64) -> Vec<u8> {
    let catalog = "<< /Type /Catalog /Pages 4 0 R >>";
    let info = labeled_info(LABEL, TENANT);
    let header = format!("2 0 3 {} ", catalog.len() + 1);
    let body = format!("{header}{catalog} {info}");
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(body.as_bytes()).expect("deflate");
    let packed = z.finish().expect("deflate");

    let mut out = b"%PDF-1.5\n".to_vec();
    let objstm_at = out.len();
    out.extend_from_slice(b"1 0 obj\n");
    out.extend_from_slice(&stream(
        &format!(
            "/Type /ObjStm /N {n} /First {} /Filter /FlateDecode",
            header.len()
        ),
        &packed,
    ));
    out.extend_from_slice(b"\nendobj\n");
    let pages_at = out.len();
    out.extend_from_slice(b"4 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n");
    let xref_at = out.len();
    let rows: Vec<[u8; 5]> = vec![
        [0, 0, 0, 0xff, 0xff],
        [1, 0, objstm_at as u8, 0, 0],
        [2, 0, 1, 0, 0],
        [2, 0, 1, 0, 1],
        [1, (pages_at >> 8) as u8, pages_at as u8, 0, 0],
        [1, (xref_at >> 8) as u8, xref_at as u8, 0, 0],
    ];
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&rows.concat()).expect("deflate");
    let table = z.finish().expect("deflate");
    out.extend_from_slice(b"5 0 obj\n");
    out.extend_from_slice(&stream(
        &format!(
            "/Type /XRef /Size 6 /W [1 2 2] /Root 2 0 R /Info 3 0 R {ID} /Filter /FlateDecode"
        ),
        &table,
    ));
    out.extend_from_slice(format!("\nendobj\nstartxref\n{xref_at}\n%%EOF\n").as_bytes());
    out
}

#[test]
fn hand_built_object_and_cross_reference_streams_are_read() {
    let i = inspect_bytes(&object_stream_pdf(2));
    assert_verdict(&i, EncryptionStatus::Plaintext, "pdf");
    assert_clean(&i);
    assert_office_label(&i);
}

#[test]
fn an_object_stream_claiming_a_huge_n_costs_nothing_extra() {
    let start = Instant::now();
    let i = inspect_bytes(&object_stream_pdf(4_000_000_000));
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_verdict(&i, EncryptionStatus::Plaintext, "pdf");
    assert_office_label(&i);
}

#[test]
fn an_absurd_xref_stream_width_is_unknown_not_plaintext() {
    // Same length, so every offset stays right and only the widths are absurd.
    let mut pdf = object_stream_pdf(2);
    let at = pdf
        .windows(10)
        .position(|w| w == b"/W [1 2 2]")
        .expect("/W");
    pdf[at..at + 10].copy_from_slice(b"/W[1 99 2]");
    let i = inspect_bytes(&pdf);
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:#?}");
    assert!(i.errors.iter().any(|e| e.contains("/W")), "{:?}", i.errors);
}

#[test]
fn a_deeply_nested_dictionary_is_refused_without_overflow() {
    let deep = format!(
        "<< /Title (x) /Deep {}1{} >>",
        "<< /A ".repeat(5000),
        " >>".repeat(5000)
    );
    let pdf = assemble(
        "1.7",
        &labeled_objects(&deep, xmp_packet(&pdfx_label(LABEL, TENANT))),
        &format!("/Root 1 0 R /Info 6 0 R {ID}"),
    );
    let i = inspect_bytes(&pdf);
    // The catalog is fine, so the verdict stands; the Info dictionary is reported unreadable.
    assert_verdict(&i, EncryptionStatus::Plaintext, "pdf");
    assert!(
        i.notes.iter().any(|e| e.contains("nested")),
        "{:?}",
        i.notes
    );
    assert_eq!(label(&i, LABEL).source, LabelSource::PdfXmp);
}

// ---- broken files ----

#[test]
fn a_file_cut_before_its_startxref_is_unknown_never_plaintext() {
    let pdf = labeled_pdf();
    let cut_inside_startxref = |b: &[u8]| {
        let at = b
            .windows(9)
            .rposition(|w| w == b"startxref")
            .expect("startxref");
        b[..at + 5].to_vec()
    };
    let cut = &cut_inside_startxref(&pdf);
    let i = inspect_bytes(cut);
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:#?}");
    assert!(
        i.notes.iter().any(|e| e.contains("linear scan")),
        "{:?}",
        i.notes
    );
    // The linear scan still finds the label through the trailer's /Info.
    assert_eq!(label(&i, LABEL).source, LabelSource::PdfInfo);

    let enc = qpdf(&pdf, &["--encrypt", "user", "owner", "256", "--"]);
    let i = inspect_bytes(&cut_inside_startxref(&enc));
    assert_verdict(&i, EncryptionStatus::Encrypted, "pdf-standard-aes-256");
    assert!(i
        .encryption
        .detail
        .unwrap_or_default()
        .contains("linear scan"));
}

#[test]
fn junk_after_eof_is_tolerated() {
    let mut pdf = labeled_pdf();
    pdf.extend(std::iter::repeat_n(b'\0', 20_000));
    let i = inspect_bytes(&pdf);
    assert_verdict(&i, EncryptionStatus::Plaintext, "pdf");
    assert_office_label(&i);
}

// ---- robustness ----

fn robustness_fixtures() -> Vec<(&'static str, Vec<u8>)> {
    let base = labeled_pdf();
    vec![
        ("labeled", base.clone()),
        ("normalised", qpdf(&base, &[])),
        (
            "object-streams",
            qpdf(&base, &["--object-streams=generate"]),
        ),
        (
            "rc4-40",
            qpdf(
                &base,
                &["--allow-weak-crypto", "--encrypt", "", "owner", "40", "--"],
            ),
        ),
        (
            "aes-128",
            qpdf(
                &base,
                &["--encrypt", "u", "owner", "128", "--use-aes=y", "--"],
            ),
        ),
        ("wrapper", wrapper_pdf(EP_SPEC, true)),
        ("update", incremental_update()),
        ("linearized", qpdf(&base, &["--linearize"])),
        ("hand-streams", object_stream_pdf(2)),
    ]
}

/// Inspects `bytes` and checks it took bounded time (in a debug build).
fn inspect_bounded(what: &str, bytes: &[u8]) {
    let start = Instant::now();
    let _ = inspect_bytes(bytes);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{what} took {:?}",
        start.elapsed()
    );
}

#[test]
fn truncated_and_bit_flipped_fixtures_never_panic() {
    for (name, pdf) in robustness_fixtures() {
        let step = (pdf.len() / 60).max(1);
        for len in (0..pdf.len()).step_by(step).chain([pdf.len() - 1]) {
            inspect_bounded(&format!("{name} cut at {len}"), &pdf[..len]);
        }
        for (k, pos) in (0..pdf.len()).step_by(step).enumerate() {
            let mut flipped = pdf.clone();
            flipped[pos] ^= 1 << (k % 8);
            inspect_bounded(&format!("{name} flipped at {pos}"), &flipped);
            // Digits and delimiters break offsets and structure more than bit flips do.
            let mut replaced = pdf.clone();
            replaced[pos] = b"0<>[]()/9 "[k % 10];
            inspect_bounded(&format!("{name} byte replaced at {pos}"), &replaced);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_after_a_pdf_header_never_panic(body in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut pdf = b"%PDF-1.7\n".to_vec();
        pdf.extend(body);
        inspect_bounded("random", &pdf);
    }

    #[test]
    fn random_pdf_tokens_never_panic(tokens in proptest::collection::vec(
        prop_oneof![
            Just("<<"), Just(">>"), Just("["), Just("]"), Just("/Type"), Just("/XRef"), Just("/W"),
            Just("/Prev"), Just("/Encrypt"), Just("/ObjStm"), Just("/N"), Just("/First"),
            Just("/Length"), Just("stream\n"), Just("endstream"), Just("obj"), Just("endobj"),
            Just("xref\n"), Just("trailer"), Just("startxref\n"), Just("0"), Just("1"), Just("9"),
            Just("0 R"), Just("1 0 R"), Just("(s)"), Just("<00>"), Just("\n"), Just(" "),
        ],
        0..400,
    )) {
        let pdf = format!("%PDF-1.7\n{}", tokens.concat());
        inspect_bounded("tokens", pdf.as_bytes());
    }
}

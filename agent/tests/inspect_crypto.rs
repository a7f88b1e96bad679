//! Encryption verdicts for OpenPGP, age, LUKS, Purview .pfile, SOPS / Ansible Vault text and
//! e-mail (S/MIME, PGP/MIME, rpmsg, msip_labels) through the public inspection API.
//!
//! Fixtures come from the real tools where Debian has them — `gpg` (gnupg), `age` (age),
//! `cryptsetup` (cryptsetup-bin), `openssl` (openssl) — and the tests fail naming the package
//! when a tool is missing. Formats without a free tool (SOPS, Ansible Vault inline values, the
//! RMS .pfile header, an rpmsg mail, PGP/MIME framing) are written from their documented text or
//! byte layouts here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine;
use infoledger_agent::inspect::{crypto, inspect, Bounded, Inspection};
use infoledger_policies::{EncryptionStatus, LabelSource};
use proptest::prelude::*;

const BUDGET: u64 = 4 * 1024 * 1024;

fn run(bytes: &[u8], name: &str) -> Inspection {
    inspect(
        &Bounded::from_bytes(bytes, BUDGET),
        &bytes[..bytes.len().min(4096)],
        name,
    )
}

fn assert_verdict(i: &Inspection, status: EncryptionStatus, scheme: &str) {
    assert_eq!(i.encryption.status, status, "{i:#?}");
    assert_eq!(i.encryption.scheme.as_deref(), Some(scheme), "{i:#?}");
    assert!(i.errors.is_empty(), "unexpected errors: {i:#?}");
}

fn detail(i: &Inspection) -> &str {
    i.encryption.detail.as_deref().unwrap_or("")
}

/// Runs a tool, failing with the Debian package to install when it is missing.
fn tool(program: &str, package: &str, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "`{program}` is needed to build the fixtures ({e}): \
             install the Debian package {package} (apt-get install -y {package})"
        )
    });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Short: gpg-agent's socket path must stay under the Unix socket length limit.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ic{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    })
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

const PLAIN: &str = "Quarterly numbers: revenue 1.2M, margin 14%.\nDo not share.\n";

// ---------------------------------------------------------------------------------------------
// OpenPGP fixtures from GnuPG
// ---------------------------------------------------------------------------------------------

struct Pgp {
    pk_bin: Vec<u8>,
    pk_asc: Vec<u8>,
    sym_bin: Vec<u8>,
    sym_asc: Vec<u8>,
    sign_encrypt: Vec<u8>,
    signed_bin: Vec<u8>,
    signed_asc: Vec<u8>,
    signed_bzip2: Vec<u8>,
    stored: Vec<u8>,
    clearsigned: Vec<u8>,
    detached_bin: Vec<u8>,
    detached_asc: Vec<u8>,
    pubkey_bin: Vec<u8>,
    pubkey_asc: Vec<u8>,
}

fn pgp() -> &'static Pgp {
    static FIXTURES: OnceLock<Pgp> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = scratch().join("p");
        std::fs::create_dir_all(&dir).expect("create pgp dir");
        let home = dir.join("g");
        std::fs::create_dir_all(&home).expect("create GNUPGHOME");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700))
                .expect("chmod GNUPGHOME");
        }
        let plain = dir.join("plain.txt");
        std::fs::write(&plain, PLAIN).expect("write plaintext");
        let env = [("GNUPGHOME", home.as_path())];
        let gpg = |args: &[&str]| {
            let mut all = vec!["--batch", "--yes", "--no-tty", "--trust-model", "always"];
            all.extend_from_slice(args);
            tool("gpg", "gnupg", &all, &env)
        };
        let out = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let input = plain.to_string_lossy().into_owned();
        let key = ["--pinentry-mode", "loopback", "--passphrase", ""];
        let with_key = |extra: &[&str]| {
            let mut a = key.to_vec();
            a.extend_from_slice(extra);
            gpg(&a);
        };
        with_key(&[
            "--quick-gen-key",
            "Fixture <fixture@example.com>",
            "future-default",
            "default",
            "never",
        ]);
        let r = ["-r", "fixture@example.com"];
        gpg(&[&r[..], &["-o", &out("pk.gpg"), "-e", &input]].concat());
        gpg(&[&r[..], &["-a", "-o", &out("pk.asc"), "-e", &input]].concat());
        let sym = ["--pinentry-mode", "loopback", "--passphrase", "x"];
        gpg(&[&sym[..], &["-o", &out("sym.gpg"), "--symmetric", &input]].concat());
        gpg(&[
            &sym[..],
            &["-a", "-o", &out("sym.asc"), "--symmetric", &input],
        ]
        .concat());
        with_key(&[&r[..], &["-o", &out("se.gpg"), "-s", "-e", &input]].concat());
        with_key(&["-o", &out("signed.gpg"), "--sign", &input]);
        with_key(&["-a", "-o", &out("signed.asc"), "--sign", &input]);
        with_key(&[
            "--compress-algo",
            "bzip2",
            "-o",
            &out("signed-bz2.gpg"),
            "--sign",
            &input,
        ]);
        gpg(&["-o", &out("stored.gpg"), "--store", &input]);
        with_key(&["-o", &out("clear.asc"), "--clearsign", &input]);
        with_key(&["-o", &out("det.sig"), "--detach-sign", &input]);
        with_key(&["-a", "-o", &out("det.asc"), "--detach-sign", &input]);
        gpg(&["-o", &out("pub.gpg"), "--export", "fixture@example.com"]);
        gpg(&[
            "-a",
            "-o",
            &out("pub.asc"),
            "--export",
            "fixture@example.com",
        ]);
        tool("gpgconf", "gnupg", &["--kill", "gpg-agent"], &env);
        let f = |name: &str| read(&dir.join(name));
        Pgp {
            pk_bin: f("pk.gpg"),
            pk_asc: f("pk.asc"),
            sym_bin: f("sym.gpg"),
            sym_asc: f("sym.asc"),
            sign_encrypt: f("se.gpg"),
            signed_bin: f("signed.gpg"),
            signed_asc: f("signed.asc"),
            signed_bzip2: f("signed-bz2.gpg"),
            stored: f("stored.gpg"),
            clearsigned: f("clear.asc"),
            detached_bin: f("det.sig"),
            detached_asc: f("det.asc"),
            pubkey_bin: f("pub.gpg"),
            pubkey_asc: f("pub.asc"),
        }
    })
}

#[test]
fn gpg_public_key_encryption_is_encrypted_binary_and_armored() {
    let p = pgp();
    for (bytes, name) in [(&p.pk_bin, "report.gpg"), (&p.pk_asc, "report.asc")] {
        let i = run(bytes, name);
        assert_verdict(&i, EncryptionStatus::Encrypted, "openpgp");
        assert!(detail(&i).starts_with("public-key, 1 recipient"), "{i:?}");
    }
    let i = run(&p.sign_encrypt, "report.pgp");
    assert_verdict(&i, EncryptionStatus::Encrypted, "openpgp");
    assert!(detail(&i).contains("public-key"), "{i:?}");
}

#[test]
fn gpg_symmetric_encryption_is_encrypted_binary_and_armored() {
    let p = pgp();
    for (bytes, name) in [(&p.sym_bin, "report.gpg"), (&p.sym_asc, "report.txt.asc")] {
        let i = run(bytes, name);
        assert_verdict(&i, EncryptionStatus::Encrypted, "openpgp");
        assert!(detail(&i).starts_with("passphrase"), "{i:?}");
    }
}

#[test]
fn gpg_signed_only_messages_are_plaintext() {
    let p = pgp();
    for (bytes, name) in [(&p.signed_bin, "report.gpg"), (&p.signed_asc, "report.asc")] {
        let i = run(bytes, name);
        assert_verdict(&i, EncryptionStatus::Plaintext, "openpgp-signed");
        assert_eq!(detail(&i), "compressed signed message", "{i:?}");
    }
    let i = run(&p.clearsigned, "report.asc");
    assert_verdict(&i, EncryptionStatus::Plaintext, "openpgp-cleartext-signed");
    for (bytes, name) in [
        (&p.detached_bin, "report.sig"),
        (&p.detached_asc, "report.asc"),
    ] {
        let i = run(bytes, name);
        assert_verdict(&i, EncryptionStatus::Plaintext, "openpgp-signed");
        assert_eq!(detail(&i), "signature", "{i:?}");
    }
    let i = run(&p.stored, "report.gpg");
    assert_verdict(&i, EncryptionStatus::Plaintext, "openpgp-literal");
}

#[test]
fn gpg_bzip2_compression_is_not_guessed() {
    // BZip2 is not decompressed, so what the compressed packet holds stays unknown.
    let i = run(&pgp().signed_bzip2, "report.gpg");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:?}");
    assert!(i.notes.iter().any(|e| e.contains("algorithm 3")), "{i:?}");
}

#[test]
fn gpg_exported_keys_are_plaintext_keys() {
    let p = pgp();
    for (bytes, name) in [(&p.pubkey_bin, "key.gpg"), (&p.pubkey_asc, "key.asc")] {
        let i = run(bytes, name);
        assert_verdict(&i, EncryptionStatus::Plaintext, "openpgp-key");
        assert_eq!(detail(&i), "public key");
    }
}

#[test]
fn malformed_openpgp_is_an_error_or_unknown() {
    let p = pgp();
    // Armor cut in the middle of the base64: the session key packet is still there.
    let cut = &p.pk_asc[..p.pk_asc.len() / 2];
    let i = run(cut, "report.asc");
    assert_ne!(i.encryption.status, EncryptionStatus::Plaintext, "{i:?}");
    // Bad base64.
    let text = String::from_utf8_lossy(&p.sym_asc).replacen("\n\n", "\n\n*!*", 1);
    let i = run(text.as_bytes(), "report.asc");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:?}");
    assert!(i.errors.iter().any(|e| e.contains("base64")), "{i:?}");
    // A compressed packet whose partial-length chain never ends: 1-byte chunks to the end.
    let mut chain = vec![0xC8, 0xE0, 0x00];
    for _ in 0..1_000_000 {
        chain.extend_from_slice(&[0xE0, 0x00]);
    }
    let start = Instant::now();
    let i = run(&chain, "chain.gpg");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:?}");
    let armored = format!(
        "-----BEGIN PGP MESSAGE-----\n\n{}\n-----END PGP MESSAGE-----\n",
        base64::engine::general_purpose::STANDARD.encode(&chain[..300_000])
    );
    let i = run(armored.as_bytes(), "chain.asc");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

// ---------------------------------------------------------------------------------------------
// age fixtures from age
// ---------------------------------------------------------------------------------------------

struct Age {
    binary: Vec<u8>,
    armored: Vec<u8>,
    two_recipients: Vec<u8>,
}

fn age() -> &'static Age {
    static FIXTURES: OnceLock<Age> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = scratch().join("a");
        std::fs::create_dir_all(&dir).expect("create age dir");
        let plain = dir.join("plain.txt");
        std::fs::write(&plain, PLAIN).expect("write plaintext");
        let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
        let mut recipients = Vec::new();
        for k in ["k1.txt", "k2.txt"] {
            let _ = std::fs::remove_file(dir.join(k));
            tool("age-keygen", "age", &["-o", &p(k)], &[]);
            let out = tool("age-keygen", "age", &["-y", &p(k)], &[]);
            recipients.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        let input = plain.to_string_lossy().into_owned();
        let r1 = recipients[0].as_str();
        let r2 = recipients[1].as_str();
        tool("age", "age", &["-r", r1, "-o", &p("a.age"), &input], &[]);
        tool(
            "age",
            "age",
            &["-a", "-r", r1, "-o", &p("a.asc"), &input],
            &[],
        );
        tool(
            "age",
            "age",
            &["-r", r1, "-r", r2, "-o", &p("b.age"), &input],
            &[],
        );
        Age {
            binary: read(&dir.join("a.age")),
            armored: read(&dir.join("a.asc")),
            two_recipients: read(&dir.join("b.age")),
        }
    })
}

fn age_direct(bytes: &[u8]) -> infoledger_agent::inspect::Evidence {
    crypto::inspect_age(&Bounded::from_bytes(bytes, BUDGET)).expect("valid age header")
}

#[test]
fn age_files_are_encrypted_binary_and_armored() {
    let a = age();
    for (bytes, name) in [(&a.binary, "secret.age"), (&a.armored, "secret.age.asc")] {
        assert_verdict(&run(bytes, name), EncryptionStatus::Encrypted, "age");
        let ev = age_direct(bytes);
        let v = ev.encryption.expect("verdict");
        assert_eq!(v.status, EncryptionStatus::Encrypted);
        assert_eq!(v.detail.as_deref(), Some("1 recipient: X25519"));
    }
    let v = age_direct(&a.two_recipients).encryption.expect("verdict");
    assert_eq!(v.detail.as_deref(), Some("2 recipients: X25519"));
}

#[test]
fn age_headers_that_are_not_age_are_rejected() {
    let a = age();
    let mut broken = a.binary.clone();
    // Replace the stanza arrow: the header no longer parses.
    let at = broken.iter().position(|&c| c == b'>').expect("stanza");
    broken[at] = b'#';
    assert!(crypto::inspect_age(&Bounded::from_bytes(&broken, BUDGET)).is_err());
    assert!(crypto::inspect_age(&Bounded::from_bytes(PLAIN.as_bytes(), BUDGET)).is_err());
    let cut = &a.binary[..30];
    assert!(crypto::inspect_age(&Bounded::from_bytes(cut, BUDGET)).is_err());
}

// ---------------------------------------------------------------------------------------------
// LUKS fixtures from cryptsetup
// ---------------------------------------------------------------------------------------------

/// The first 64 KiB of a 4 MiB image formatted by cryptsetup (the headers live there).
fn luks(kind: &str) -> Vec<u8> {
    static L1: OnceLock<Vec<u8>> = OnceLock::new();
    static L2: OnceLock<Vec<u8>> = OnceLock::new();
    let cell = if kind == "luks1" { &L1 } else { &L2 };
    cell.get_or_init(|| {
        let dir = scratch().join("l");
        std::fs::create_dir_all(&dir).expect("create luks dir");
        let key = dir.join("key");
        std::fs::write(&key, "fixture-key").expect("write key file");
        let img = dir.join(format!("{kind}.img"));
        let f = std::fs::File::create(&img).expect("create image");
        f.set_len(4 * 1024 * 1024).expect("size image");
        drop(f);
        let img_s = img.to_string_lossy().into_owned();
        let key_s = key.to_string_lossy().into_owned();
        // Forced low PBKDF iterations keep luksFormat from benchmarking for seconds.
        let mut args = vec![
            "luksFormat",
            "--type",
            kind,
            "--batch-mode",
            "--key-file",
            &key_s,
            "--pbkdf-force-iterations",
            "1000",
        ];
        if kind == "luks2" {
            args.extend_from_slice(&[
                "--pbkdf",
                "pbkdf2",
                "--luks2-metadata-size",
                "16k",
                "--luks2-keyslots-size",
                "256k",
            ]);
        }
        args.push(&img_s);
        tool("cryptsetup", "cryptsetup-bin", &args, &[]);
        let mut bytes = read(&img);
        bytes.truncate(64 * 1024);
        bytes
    })
    .clone()
}

#[test]
fn luks_volumes_are_encrypted() {
    let i = run(&luks("luks1"), "disk.img");
    assert_verdict(&i, EncryptionStatus::Encrypted, "luks1");
    assert!(detail(&i).starts_with("aes-xts-plain64"), "{i:?}");
    let i = run(&luks("luks2"), "disk.img");
    assert_verdict(&i, EncryptionStatus::Encrypted, "luks2");
    assert!(detail(&i).starts_with("aes-xts-plain64"), "{i:?}");
}

#[test]
fn luks_with_the_null_cipher_is_plaintext() {
    // cryptsetup needs device-mapper to format with cipher_null, which a sandbox may lack, so
    // the real LUKS1 header gets the null cipher written into its cipher fields (LUKS1 spec
    // offsets 8 and 40).
    let mut h = luks("luks1");
    h[8..72].fill(0);
    h[8..19].copy_from_slice(b"cipher_null");
    h[40..43].copy_from_slice(b"ecb");
    assert_verdict(&run(&h, "disk.img"), EncryptionStatus::Plaintext, "luks1");
    // A plain disk image is not called encrypted.
    let plain = vec![0u8; 64 * 1024];
    assert_eq!(
        run(&plain, "disk.img").encryption.status,
        EncryptionStatus::Unknown
    );
}

#[test]
fn luks_headers_with_garbage_are_errors_or_unknown() {
    let mut h = luks("luks1");
    h[8..40].fill(0xEE);
    let i = run(&h, "disk.img");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown);
    assert!(!i.errors.is_empty());
    let mut h = luks("luks2");
    h[4096..4200].fill(b'#');
    let i = run(&h, "disk.img");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown);
    assert!(i.notes.iter().any(|e| e.contains("json")), "{i:?}");
    let mut h = luks("luks2");
    h[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
    assert!(!run(&h, "disk.img").errors.is_empty());
    let mut h = luks("luks1");
    h[6..8].copy_from_slice(&7u16.to_be_bytes());
    assert_eq!(
        run(&h, "disk.img").encryption.status,
        EncryptionStatus::Unknown
    );
}

// ---------------------------------------------------------------------------------------------
// Purview .pfile from the RMS SDK layout
// ---------------------------------------------------------------------------------------------

/// A PFile as Microsoft's RMS SDK (`PfileHeaderWriter`, version 3.0) writes it: preamble, version,
/// cleartext redirection text, offsets header, extension, publishing license, encrypted content.
fn pfile(ext: &str) -> Vec<u8> {
    let redirect = "\r\n\r\n\r\nThis file uses Microsoft Information Protection solutions.\r\n\
                    Open it using an application that supports protected files.\r\n";
    let license = "\u{feff}<?xml version=\"1.0\"?><XrML version=\"1.2\"><BODY type=\"Microsoft Rights Label\"/></XrML>";
    let content = [0xA7u8; 4096];
    let mut f = b".pfile".to_vec();
    f.extend_from_slice(&3u32.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&(redirect.len() as u32).to_le_bytes());
    f.extend_from_slice(redirect.as_bytes());
    let ext_offset = f.len() as u32 + 40;
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
    f.extend_from_slice(license.as_bytes());
    f.extend_from_slice(&content);
    f
}

#[test]
fn pfiles_with_an_rms_header_are_encrypted() {
    let i = run(&pfile(".csv"), "export.csv.pfile");
    assert_verdict(&i, EncryptionStatus::Encrypted, "pfile");
    assert!(detail(&i).contains("original extension .csv"), "{i:?}");
}

#[test]
fn pfiles_without_the_header_are_not_judged() {
    let i = run(PLAIN.as_bytes(), "notes.pfile");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:?}");
    assert!(!i.notes.is_empty(), "a note says why: {i:?}");
    let mut f = pfile(".csv");
    f.truncate(150);
    assert_eq!(
        run(&f, "x.pfile").encryption.status,
        EncryptionStatus::Unknown
    );
}

// ---------------------------------------------------------------------------------------------
// Text: SOPS, Ansible Vault inline values, embedded armor
// ---------------------------------------------------------------------------------------------

fn enc(data: &str, kind: &str) -> String {
    format!("ENC[AES256_GCM,data:{data},iv:3v1oLkC5Y3XmU4Jf2m0o9Zl8QWw5w2KxR0V4zH3uS6I=,tag:h0Ecyf4C7tYB5lE6pPjXvw==,type:{kind}]")
}

/// A SOPS YAML file as `sops -e` writes it (sops 3.x: values replaced, metadata appended).
fn sops_yaml(clear_port: bool) -> String {
    let port = if clear_port {
        "5432".to_string()
    } else {
        enc("sA==", "int")
    };
    format!(
        "database:\n    user: {}\n    password: {}\n    port_unencrypted: {port}\n    hosts:\n        - {}\n        - {}\n#{}\nsops:\n    kms: []\n    age:\n        - recipient: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n          enc: |\n            -----BEGIN AGE ENCRYPTED FILE-----\n            YWdlLWVuY3J5cHRpb24ub3JnL3YxCg==\n            -----END AGE ENCRYPTED FILE-----\n    lastmodified: \"2025-03-01T10:00:00Z\"\n    mac: {}\n    unencrypted_suffix: _unencrypted\n    version: 3.9.4\n",
        enc("YWRtaW4=", "str"),
        enc("c2VjcmV0", "str"),
        enc("ZGIx", "str"),
        enc("ZGIy", "str"),
        enc("Y29tbWVudA==", "comment"),
        enc("bWFj", "str"),
    )
}

#[test]
fn sops_yaml_fully_encrypted_and_partly_in_clear() {
    let i = run(sops_yaml(false).as_bytes(), "secrets.enc.yaml");
    assert_verdict(&i, EncryptionStatus::Encrypted, "sops");
    assert_eq!(detail(&i), "5 values encrypted");
    let i = run(sops_yaml(true).as_bytes(), "secrets.enc.yaml");
    assert_verdict(&i, EncryptionStatus::Partial, "sops");
    assert_eq!(detail(&i), "4 of 5 values encrypted");
}

#[test]
fn sops_json_dotenv_and_ini() {
    let json = serde_json::json!({
        "api_key": enc("a2V5", "str"),
        "retries": enc("Mw==", "int"),
        "nested": {"list": [enc("eA==", "str"), enc("eQ==", "str")]},
        "sops": {"kms": null, "lastmodified": "2025-03-01T10:00:00Z",
                 "mac": enc("bWFj", "str"), "version": "3.9.4"}
    });
    let i = run(json.to_string().as_bytes(), "secrets.json");
    assert_verdict(&i, EncryptionStatus::Encrypted, "sops");
    assert_eq!(detail(&i), "4 values encrypted");
    let mut partial = json.clone();
    partial["retries"] = serde_json::json!(3);
    let i = run(
        serde_json::to_string_pretty(&partial).unwrap().as_bytes(),
        "secrets.json",
    );
    assert_verdict(&i, EncryptionStatus::Partial, "sops");
    assert_eq!(detail(&i), "3 of 4 values encrypted");

    let env = format!(
        "DB_PASSWORD={}\nAPI_TOKEN={}\nsops_lastmodified=2025-03-01T10:00:00Z\nsops_mac={}\nsops_version=3.9.4\n",
        enc("cGFzcw==", "str"),
        enc("dG9r", "str"),
        enc("bWFj", "str")
    );
    let i = run(env.as_bytes(), "prod.env");
    assert_verdict(&i, EncryptionStatus::Encrypted, "sops");
    let env_partial = format!("LOG_LEVEL=debug\n{env}");
    let i = run(env_partial.as_bytes(), "prod.env");
    assert_verdict(&i, EncryptionStatus::Partial, "sops");
    assert_eq!(detail(&i), "2 of 3 values encrypted");

    let ini = format!(
        "[db]\npassword = {}\nhost = {}\n\n[sops]\nlastmodified = 2025-03-01T10:00:00Z\nmac = {}\nversion = 3.9.4\n",
        enc("cA==", "str"),
        enc("aA==", "str"),
        enc("bWFj", "str")
    );
    let i = run(ini.as_bytes(), "app.ini");
    assert_verdict(&i, EncryptionStatus::Encrypted, "sops");
}

#[test]
fn enc_values_without_sops_metadata_are_not_judged() {
    let text = format!("password: {}\n", enc("cA==", "str"));
    let i = run(text.as_bytes(), "vars.yml");
    assert_eq!(i.encryption.status, EncryptionStatus::Unknown, "{i:?}");
    assert!(i.notes.iter().any(|n| n.contains("sops metadata")), "{i:?}");
}

/// Inline values as `ansible-vault encrypt_string` prints them.
const ANSIBLE_INLINE: &str = "---
db_user: app
db_password: !vault |
          $ANSIBLE_VAULT;1.1;AES256
          62313365396662343061393464336163383764373764613633653634306231386433626436623361
          6134333665353966363534333632666535333761666131620a663537646436643839616531643561
          63396265333966386166373632626539326166353965363262633030333630313338646335303630
          3438626666666137650a353638643435666633633964366338633066623234616432373231333331
          6564
api_token: !vault |
          $ANSIBLE_VAULT;1.2;AES256;prod
          30613233633461343837653833666333643061636561303338373661313838333565653635353162
          3263363434623733343538653462613064333634333464660a663633623939393439316636633863
          61636237636537333938306331383836353265663964396337346661303263346462633362656362
          3166396230663633390a363362626132336461373936353566313138633439386162393434376662
          3964
timeout: 30
";

#[test]
fn ansible_vault_inline_values_are_partial() {
    let i = run(ANSIBLE_INLINE.as_bytes(), "group_vars/all.yml");
    assert_verdict(&i, EncryptionStatus::Partial, "ansible-vault-inline");
    assert_eq!(detail(&i), "2 values encrypted");
    let plain = "---\ndb_user: app\ndb_password: hunter2\ntimeout: 30\n";
    assert_verdict(
        &run(plain.as_bytes(), "all.yml"),
        EncryptionStatus::Plaintext,
        "text",
    );
}

#[test]
fn armored_blocks_in_plain_text_are_partial() {
    let p = pgp();
    let a = age();
    let doc = format!(
        "# Runbook\n\nThe recovery key is below.\n\n{}\nAnd the backup code:\n\n{}\nThat is all.\n",
        String::from_utf8_lossy(&p.pk_asc),
        String::from_utf8_lossy(&a.armored)
    );
    let i = run(doc.as_bytes(), "runbook.md");
    assert_verdict(&i, EncryptionStatus::Partial, "openpgp-inline");
    assert_eq!(detail(&i), "1 openpgp message, 1 age file", "{i:?}");
    // A signed-only armored message embedded in text is not encryption.
    let doc = format!(
        "Release notes\n\n{}\n",
        String::from_utf8_lossy(&p.signed_asc)
    );
    assert_verdict(
        &run(doc.as_bytes(), "notes.md"),
        EncryptionStatus::Plaintext,
        "text",
    );
    let doc = format!("Backup\n\n{}\n", String::from_utf8_lossy(&a.armored));
    assert_verdict(
        &run(doc.as_bytes(), "notes.md"),
        EncryptionStatus::Partial,
        "age-inline",
    );
}

#[test]
fn text_beyond_the_cap_is_noted() {
    // A SOPS file longer than the cap: the metadata is found in the tail, the values counted
    // are those in the first MiB, and a note says so.
    let item = format!("    - {}\n", enc("eA==", "str"));
    let mut big = format!("items:\n{}", item.repeat(14_000));
    big.push_str(&sops_yaml(false));
    assert!(big.len() > 1024 * 1024);
    let i = run(big.as_bytes(), "big.yaml");
    assert_verdict(&i, EncryptionStatus::Encrypted, "sops");
    assert!(
        i.notes.iter().any(|e| e.contains("first 1024 KiB")),
        "{i:?}"
    );
    // Plain text beyond the cap stays plaintext.
    let plain = "line of plain text\n".repeat(70_000);
    let i = run(plain.as_bytes(), "big.txt");
    assert_verdict(&i, EncryptionStatus::Plaintext, "text");
}

// ---------------------------------------------------------------------------------------------
// E-mail: S/MIME from openssl, PGP/MIME, rpmsg, labels
// ---------------------------------------------------------------------------------------------

const LABEL_ID: &str = "3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d";
const TENANT: &str = "0b1c2d3e-0000-4000-8000-000000000001";

fn msip_header() -> String {
    format!(
        "msip_labels: MSIP_Label_{LABEL_ID}_Enabled=True;\r\n MSIP_Label_{LABEL_ID}_SiteId={TENANT};\r\n MSIP_Label_{LABEL_ID}_SetDate=2025-03-01T10:00:00Z;\r\n\tMSIP_Label_{LABEL_ID}_Name=Confidential;\r\n MSIP_Label_{LABEL_ID}_Method=Privileged\r\n"
    )
}

fn assert_label(i: &Inspection) {
    assert_eq!(i.labels.len(), 1, "{i:#?}");
    let l = &i.labels[0];
    assert_eq!(l.source, LabelSource::EmailHeader);
    assert_eq!(l.id.as_deref(), Some(LABEL_ID));
    assert_eq!(l.tenant.as_deref(), Some(TENANT));
    assert_eq!(l.name.as_deref(), Some("Confidential"));
    assert_eq!(l.method.as_deref(), Some("Privileged"));
}

struct Smime {
    enveloped: Vec<u8>,
    signed_clear: Vec<u8>,
    signed_opaque: Vec<u8>,
}

fn smime() -> &'static Smime {
    static FIXTURES: OnceLock<Smime> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = scratch().join("s");
        std::fs::create_dir_all(&dir).expect("create smime dir");
        let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
        std::fs::write(
            dir.join("msg.txt"),
            format!("Content-Type: text/plain\r\n\r\n{PLAIN}"),
        )
        .expect("write message");
        let openssl = |args: &[&str]| tool("openssl", "openssl", args, &[]);
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &p("k.pem"),
            "-out",
            &p("c.pem"),
            "-subj",
            "/CN=fixture",
            "-days",
            "2",
        ]);
        let common = [
            "-from",
            "alice@example.com",
            "-to",
            "bob@example.com",
            "-subject",
            "Quarterly numbers",
        ];
        openssl(
            &[
                &[
                    "smime",
                    "-encrypt",
                    "-aes256",
                    "-in",
                    &p("msg.txt"),
                    "-out",
                    &p("enc.eml"),
                ][..],
                &common,
                &[&p("c.pem")],
            ]
            .concat(),
        );
        openssl(
            &[
                &[
                    "smime",
                    "-sign",
                    "-in",
                    &p("msg.txt"),
                    "-signer",
                    &p("c.pem"),
                    "-inkey",
                    &p("k.pem"),
                    "-out",
                    &p("sig.eml"),
                ][..],
                &common,
            ]
            .concat(),
        );
        openssl(
            &[
                &[
                    "smime",
                    "-sign",
                    "-nodetach",
                    "-in",
                    &p("msg.txt"),
                    "-signer",
                    &p("c.pem"),
                    "-inkey",
                    &p("k.pem"),
                    "-out",
                    &p("opaque.eml"),
                ][..],
                &common,
            ]
            .concat(),
        );
        Smime {
            enveloped: read(&dir.join("enc.eml")),
            signed_clear: read(&dir.join("sig.eml")),
            signed_opaque: read(&dir.join("opaque.eml")),
        }
    })
}

fn with_label(mail: &[u8]) -> Vec<u8> {
    let mut out = msip_header().into_bytes();
    out.extend_from_slice(mail);
    out
}

#[test]
fn smime_enveloped_mail_is_encrypted_and_keeps_its_label() {
    let i = run(&with_label(&smime().enveloped), "mail.eml");
    assert_verdict(&i, EncryptionStatus::Encrypted, "smime");
    assert_eq!(detail(&i), "enveloped-data");
    assert_eq!(i.format, "eml");
    assert_label(&i);
    // Without smime-type the CMS content type in the body still decides.
    let stripped =
        String::from_utf8_lossy(&smime().enveloped).replace(" smime-type=enveloped-data;", "");
    assert!(
        !stripped.contains("smime-type"),
        "openssl output changed shape"
    );
    let i = run(stripped.as_bytes(), "mail.eml");
    assert_verdict(&i, EncryptionStatus::Encrypted, "smime");
}

#[test]
fn smime_signed_mail_is_plaintext() {
    let s = smime();
    let i = run(&with_label(&s.signed_clear), "mail.eml");
    assert_verdict(&i, EncryptionStatus::Plaintext, "smime-signed");
    assert_label(&i);
    let i = run(&s.signed_opaque, "mail.eml");
    assert_verdict(&i, EncryptionStatus::Plaintext, "smime-signed");
}

#[test]
fn pgp_mime_mail_is_encrypted() {
    // RFC 3156 §4 framing around a real gpg message.
    let body = String::from_utf8_lossy(&pgp().pk_asc).into_owned();
    let mail = format!(
        "From: alice@example.com\r\nTo: bob@example.com\r\nSubject: numbers\r\nMIME-Version: 1.0\r\n{}Content-Type: multipart/encrypted; boundary=\"b1\";\r\n protocol=\"application/pgp-encrypted\"\r\n\r\n--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--b1\r\nContent-Type: application/octet-stream\r\n\r\n{body}\r\n--b1--\r\n",
        msip_header()
    );
    let i = run(mail.as_bytes(), "mail.eml");
    assert_verdict(&i, EncryptionStatus::Encrypted, "pgp-mime");
    assert_label(&i);
    // Inline PGP in a text/plain mail: the message is readable, one block is not.
    let inline = format!(
        "From: alice@example.com\r\nTo: bob@example.com\r\nSubject: numbers\r\n\r\nHi Bob,\r\n\r\n{body}\r\n"
    );
    assert_verdict(
        &run(inline.as_bytes(), "mail.eml"),
        EncryptionStatus::Partial,
        "pgp-inline",
    );
}

#[test]
fn purview_protected_mail_is_encrypted() {
    // The shape Outlook sends for a protected message: a readable explanation and an rpmsg
    // attachment (MS-OXORMMS), here with its Content-Class header removed so the part decides.
    let mail = format!(
        "From: alice@example.com\r\nTo: bob@example.com\r\nSubject: numbers\r\n{}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nThis message is protected.\r\n--b1\r\nContent-Type: application/x-microsoft-rpmsg-message;\r\n\tname=\"message.rpmsg\"\r\nContent-Disposition: attachment; filename=\"message.rpmsg\"\r\nContent-Transfer-Encoding: base64\r\n\r\ndHZ2dHZ2\r\n--b1--\r\n",
        msip_header()
    );
    let i = run(mail.as_bytes(), "mail.eml");
    assert_verdict(&i, EncryptionStatus::Encrypted, "rpmsg");
    assert_label(&i);
    let with_class = mail.replacen(
        "MIME-Version",
        "Content-Class: rpmsg.message\r\nMIME-Version",
        1,
    );
    assert_verdict(
        &run(with_class.as_bytes(), "mail.eml"),
        EncryptionStatus::Encrypted,
        "rpmsg",
    );
}

#[test]
fn plain_mail_is_plaintext_with_its_label() {
    let mail = format!(
        "From: alice@example.com\r\nTo: bob@example.com\r\nSubject: numbers\r\n{}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{PLAIN}",
        msip_header()
    );
    let i = run(mail.as_bytes(), "mail.eml");
    assert_verdict(&i, EncryptionStatus::Plaintext, "email");
    assert_label(&i);
    let unlabeled = "From: a@example.com\nTo: b@example.com\nSubject: hi\n\nhello\n";
    let i = run(unlabeled.as_bytes(), "mail.eml");
    assert_verdict(&i, EncryptionStatus::Plaintext, "email");
    assert!(i.labels.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Robustness: truncation, bit flips, random bytes
// ---------------------------------------------------------------------------------------------

fn all_fixtures() -> Vec<(Vec<u8>, &'static str)> {
    let p = pgp();
    let a = age();
    let s = smime();
    vec![
        (p.pk_bin.clone(), "a.gpg"),
        (p.pk_asc.clone(), "a.asc"),
        (p.sym_bin.clone(), "a.gpg"),
        (p.signed_bin.clone(), "a.gpg"),
        (p.signed_asc.clone(), "a.asc"),
        (p.clearsigned.clone(), "a.asc"),
        (p.detached_bin.clone(), "a.sig"),
        (p.pubkey_bin.clone(), "a.gpg"),
        (a.binary.clone(), "a.age"),
        (a.armored.clone(), "a.age"),
        (luks("luks1")[..4096].to_vec(), "disk.img"),
        (luks("luks2")[..16384].to_vec(), "disk.img"),
        (pfile(".docx"), "a.pfile"),
        (sops_yaml(true).into_bytes(), "s.yaml"),
        (ANSIBLE_INLINE.as_bytes().to_vec(), "v.yml"),
        (with_label(&s.enveloped), "m.eml"),
        (s.signed_clear.clone(), "m.eml"),
    ]
}

/// Feeds `bytes` through inspection: it must return, quickly, without panicking.
fn survive(bytes: &[u8], name: &str) {
    let start = Instant::now();
    let _ = run(bytes, name);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{name}: {} bytes took {:?}",
        bytes.len(),
        start.elapsed()
    );
}

#[test]
fn truncated_fixtures_never_panic() {
    for (bytes, name) in all_fixtures() {
        let step = (bytes.len() / 300).max(1);
        for len in (0..bytes.len()).step_by(step).chain(0..bytes.len().min(64)) {
            survive(&bytes[..len], name);
        }
    }
}

#[test]
fn bit_flipped_fixtures_never_panic() {
    for (bytes, name) in all_fixtures() {
        let step = (bytes.len() / 400).max(1);
        let mut copy = bytes.clone();
        for pos in (0..bytes.len()).step_by(step) {
            for bit in [0x01u8, 0x80] {
                copy[pos] ^= bit;
                survive(&copy, name);
                copy[pos] ^= bit;
            }
        }
    }
}

const PREFIXES: &[&[u8]] = &[
    b"",
    b"-----BEGIN PGP MESSAGE-----\n\n",
    b"-----BEGIN PGP SIGNATURE-----\nVersion: x\n\n",
    b"-----BEGIN AGE ENCRYPTED FILE-----\n",
    b"age-encryption.org/v1\n-> X25519 ",
    b"LUKS\xBA\xBE\x00\x01",
    b"LUKS\xBA\xBE\x00\x02",
    b".pfile\x03\x00\x00\x00\x00\x00\x00\x00",
    b"From: a@example.com\nContent-Type: application/pkcs7-mime\nContent-Transfer-Encoding: base64\n\n",
    b"sops:\n    mac: x\n",
    b"\xC8\xE0",
    b"\x85",
];

const NAMES: &[&str] = &[
    "a.gpg", "a.asc", "a.age", "disk.img", "a.pfile", "m.eml", "s.yaml", "s.json",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(
        prefix in 0..PREFIXES.len(),
        name in 0..NAMES.len(),
        body in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = PREFIXES[prefix].to_vec();
        bytes.extend_from_slice(&body);
        survive(&bytes, NAMES[name]);
        let _ = crypto::inspect_age(&Bounded::from_bytes(&bytes, BUDGET));
    }

    #[test]
    fn random_text_never_panics(
        text in "[a-z:\\- |!$\\[\\]=,\\n ]{0,600}",
        name in 0..NAMES.len(),
    ) {
        survive(text.as_bytes(), NAMES[name]);
    }
}

//! Fuzzes the OpenPGP, age, LUKS, `.pfile` and text (SOPS, Ansible Vault) inspectors; the first
//! byte picks the parser.
#![no_main]

use infoledger_agent::inspect::{crypto, Bounded, HEAD_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let src = Bounded::from_bytes(bytes, 4 * 1024 * 1024);
    let head = &bytes[..bytes.len().min(HEAD_BYTES)];
    let _ = match pick % 6 {
        0 => crypto::inspect_pgp_binary(&src),
        1 => crypto::inspect_pgp_armored(head, &src),
        2 => crypto::inspect_age(&src),
        3 => crypto::inspect_luks(&src),
        4 => crypto::inspect_pfile(&src),
        _ => crypto::inspect_text(&src, "fuzz.yaml"),
    };
});

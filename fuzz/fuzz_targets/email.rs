//! Fuzzes the e-mail inspector: header unfolding, `msip_labels`, MIME types and S/MIME bodies.
#![no_main]

use infoledger_agent::inspect::{email, Bounded};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = Bounded::from_bytes(data, 4 * 1024 * 1024);
    let _ = email::inspect_email(&src);
});

//! Fuzzes the ZIP and OOXML inspector directly (central directory, extraction, label parts).
#![no_main]

use infoledger_agent::inspect::{zip, Bounded};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = Bounded::from_bytes(data, 4 * 1024 * 1024);
    let _ = zip::inspect_zip(&src, "fuzz.docx");
});

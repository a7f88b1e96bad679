//! Fuzzes the PDF reader: cross-reference tables and streams, object streams, dictionaries.
#![no_main]

use infoledger_agent::inspect::{pdf, Bounded};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = Bounded::from_bytes(data, 4 * 1024 * 1024);
    let _ = pdf::inspect_pdf(&src);
});

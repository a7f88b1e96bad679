//! Fuzzes the OLE compound-file reader and the Office interpretation on top of it.
#![no_main]

use infoledger_agent::inspect::{office, Bounded};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = Bounded::from_bytes(data, 4 * 1024 * 1024);
    let _ = office::inspect_ole(&src);
});

//! Fuzzes the 7z, RAR5 and RAR4 inspectors; the first byte picks the parser.
#![no_main]

use infoledger_agent::inspect::{archive, Bounded};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let src = Bounded::from_bytes(bytes, 4 * 1024 * 1024);
    let _ = match pick % 3 {
        0 => archive::inspect_7z(&src),
        1 => archive::inspect_rar5(&src),
        _ => archive::inspect_rar4(&src),
    };
});

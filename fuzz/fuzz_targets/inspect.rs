//! Fuzzes the whole inspection dispatcher: any bytes under any name must give a verdict or an
//! error, never a panic, within the read budget.
#![no_main]

use infoledger_agent::inspect::{inspect, Bounded, HEAD_BYTES};
use libfuzzer_sys::fuzz_target;

/// Names steer the sniffer for formats recognised by extension as well as by magic bytes.
const NAMES: &[&str] = &[
    "a.docx", "a.xlsx", "a.doc", "a.xls", "a.ppt", "a.pdf", "a.7z", "a.rar", "a.zip", "a.gpg",
    "a.asc", "a.age", "a.pfile", "a.eml", "a.yaml", "a.json", "a.env", "a.txt", "a",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let name = NAMES[usize::from(pick) % NAMES.len()];
    let src = Bounded::from_bytes(bytes, 4 * 1024 * 1024);
    let head = &bytes[..bytes.len().min(HEAD_BYTES)];
    let _ = inspect(&src, head, name);
});

//! Fuzzes the Purview label metadata parsers: label-information XML, `msip_labels` header values
//! and `MSIP_Label_*` property names.
#![no_main]

use infoledger_agent::inspect::msip;
use infoledger_policies::LabelSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = msip::parse_label_info(data, LabelSource::LabelInfo);
    let text = String::from_utf8_lossy(data);
    let _ = msip::labels_from_header(&text);
    let pairs: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    let _ = msip::labels_from_properties(pairs, LabelSource::CustomProperties);
});

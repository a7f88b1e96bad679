//! Microsoft Purview (MIP) label metadata shared by every format that carries it: the
//! `MSIP_Label_<guid>_<Field>` property family (OOXML and OLE custom properties, PDF Info and XMP,
//! the e-mail `msip_labels` header), the label-information XML part, legacy vendor properties,
//! and the precedence between them.

use infoledger_policies::{DetectedLabel, LabelSource};
use quick_xml::events::Event;

use super::InspectError;

/// Namespace of the OOXML label-information part.
pub const LABEL_INFO_NS: &str = "http://schemas.microsoft.com/office/2020/mipLabelMetadata";
/// Relationship type that points from `_rels/.rels` to the label-information part.
pub const LABEL_INFO_REL: &str =
    "http://schemas.microsoft.com/office/2020/02/relationships/classificationlabels";

/// Largest label-information part or property set parsed, in bytes.
pub const MAX_LABEL_XML: usize = 1024 * 1024;

/// Longest label field kept (names, tenants, methods, dates); longer values are cut.
const MAX_FIELD: usize = 256;

/// A label field from a file, cut to [`MAX_FIELD`] bytes at a character boundary.
fn cap_field(v: &str) -> String {
    let mut end = v.len().min(MAX_FIELD);
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    v[..end].to_string()
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Splits `MSIP_Label_<guid>_<Field>` into the GUID (lowercase, braces removed) and the field.
fn split_msip_key(key: &str) -> Option<(String, &str)> {
    let prefix = "msip_label_";
    // `get` rather than slicing: a multi-byte character may straddle the prefix's end.
    let rest = match (key.get(..prefix.len()), key.get(prefix.len()..)) {
        (Some(p), Some(rest)) if p.eq_ignore_ascii_case(prefix) && !rest.is_empty() => rest,
        _ => return None,
    };
    let (guid, field) = rest.split_once('_')?;
    let guid = guid
        .trim_matches(|c| c == '{' || c == '}')
        .to_ascii_lowercase();
    let is_guid = guid.len() == 36
        && guid.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    (is_guid && !field.is_empty()).then_some((guid, field))
}

/// Collects labels from name/value properties.
///
/// `MSIP_Label_<guid>_*` properties are grouped per label id; the legacy `Sensitivity` property
/// and Boldon James `bjDocumentSecurityLabel` become name-only labels with source
/// [`LabelSource::VendorProperty`]. Property names match case-insensitively.
pub fn labels_from_properties<'a, I>(props: I, source: LabelSource) -> Vec<DetectedLabel>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut labels: Vec<DetectedLabel> = Vec::new();
    for (key, value) in props {
        let key = key.trim();
        let value = value.trim();
        if let Some((guid, field)) = split_msip_key(key) {
            let idx = match labels
                .iter()
                .position(|l| l.source == source && l.id.as_deref() == Some(guid.as_str()))
            {
                Some(i) => i,
                None => {
                    labels.push(DetectedLabel {
                        id: Some(guid.clone()),
                        ..DetectedLabel::new(source)
                    });
                    labels.len() - 1
                }
            };
            let label = &mut labels[idx];
            let text = (!value.is_empty()).then(|| cap_field(value));
            match field.to_ascii_lowercase().as_str() {
                "enabled" => label.enabled = parse_bool(value),
                "siteid" => {
                    label.tenant = text.map(|t| {
                        t.trim_matches(|c| c == '{' || c == '}')
                            .to_ascii_lowercase()
                    })
                }
                "name" => label.name = text,
                "method" => label.method = text,
                "setdate" => label.set_date = text,
                _ => {}
            }
        } else if (key.eq_ignore_ascii_case("Sensitivity")
            || key.eq_ignore_ascii_case("bjDocumentSecurityLabel"))
            && !value.is_empty()
            && value.len() <= 256
        {
            labels.push(DetectedLabel {
                name: Some(value.to_string()),
                detail: Some(format!("property {key}")),
                ..DetectedLabel::new(LabelSource::VendorProperty)
            });
        }
    }
    labels
}

/// The content of a label-information part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelInfo {
    /// Labels in force (entries marked `removed="1"` are left out).
    pub labels: Vec<DetectedLabel>,
    /// Every tenant (`siteId`) the part speaks for, removed entries included.
    pub tenants: Vec<String>,
}

fn attr_value(a: &quick_xml::events::attributes::Attribute<'_>) -> String {
    cap_field(&String::from_utf8_lossy(&a.value))
}

/// Parses a label-information part (`<clbl:labelList><clbl:label id= enabled= method= siteId=
/// removed= …/></clbl:labelList>`), at most [`MAX_LABEL_XML`] bytes.
pub fn parse_label_info(xml: &[u8], source: LabelSource) -> Result<LabelInfo, InspectError> {
    if xml.len() > MAX_LABEL_XML {
        return Err(InspectError::malformed(
            "label-information part larger than 1 MiB",
        ));
    }
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut info = LabelInfo::default();
    let mut saw_list = false;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| InspectError::malformed(format!("label-information XML: {e}")))?;
        match event {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                b"labelList" => saw_list = true,
                b"label" => {
                    let mut label = DetectedLabel::new(source);
                    let mut removed = false;
                    for a in e.attributes().with_checks(false).flatten() {
                        let v = attr_value(&a);
                        match a.key.local_name().as_ref() {
                            b"id" => {
                                label.id = Some(
                                    v.trim_matches(|c| c == '{' || c == '}')
                                        .to_ascii_lowercase(),
                                )
                            }
                            b"enabled" => label.enabled = parse_bool(&v),
                            b"method" => label.method = Some(v),
                            b"siteId" => {
                                label.tenant = Some(
                                    v.trim_matches(|c| c == '{' || c == '}')
                                        .to_ascii_lowercase(),
                                )
                            }
                            b"removed" => removed = parse_bool(&v) == Some(true),
                            _ => {}
                        }
                    }
                    if let Some(t) = &label.tenant {
                        if !info.tenants.contains(t) {
                            info.tenants.push(t.clone());
                        }
                    }
                    if !removed && label.id.is_some() {
                        info.labels.push(label);
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !saw_list {
        return Err(InspectError::malformed(
            "label-information part without a labelList",
        ));
    }
    Ok(info)
}

/// Combines a label-information part with labels from custom properties.
///
/// The part wins for the tenants it lists; an empty part (no label at all) means the labels
/// were removed, so property labels of any MIP tenant are dropped too. Vendor properties are
/// kept either way.
pub fn merge(label_info: Option<LabelInfo>, properties: Vec<DetectedLabel>) -> Vec<DetectedLabel> {
    let Some(info) = label_info else {
        return properties;
    };
    let removed_all = info.labels.is_empty();
    let mut out = info.labels;
    for p in properties {
        let mip = p.id.is_some();
        let covered = match &p.tenant {
            Some(t) => info.tenants.contains(t),
            None => true,
        };
        if !mip || (!removed_all && !covered) {
            out.push(p);
        }
    }
    out
}

/// Parses the value of an e-mail `msip_labels` header (already unfolded):
/// `MSIP_Label_<guid>_Enabled=True; MSIP_Label_<guid>_SiteId=…; …`.
pub fn labels_from_header(value: &str) -> Vec<DetectedLabel> {
    let pairs: Vec<(&str, &str)> = value
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    labels_from_properties(pairs, LabelSource::EmailHeader)
}

#[cfg(test)]
mod tests {
    use super::*;

    const G1: &str = "3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d";
    const T1: &str = "0b1c2d3e-0000-4000-8000-000000000001";
    const T2: &str = "0b1c2d3e-0000-4000-8000-000000000002";

    #[test]
    fn msip_properties_group_by_label_id_whatever_the_case() {
        let props = [
            (format!("MSIP_Label_{G1}_Enabled"), "TRUE".to_string()),
            (
                format!("msip_label_{}_SiteId", G1.to_uppercase()),
                format!("{{{T1}}}"),
            ),
            (format!("MSIP_Label_{G1}_Method"), "Privileged".to_string()),
            (
                format!("MSIP_Label_{G1}_SetDate"),
                "2026-01-05T10:00:00Z".to_string(),
            ),
            (format!("MSIP_Label_{G1}_ContentBits"), "0".to_string()),
            ("Sensitivity".to_string(), "Confidential".to_string()),
            (
                "MSIP_Label_nonsense_Enabled".to_string(),
                "true".to_string(),
            ),
            ("Author".to_string(), "x".to_string()),
        ];
        let labels = labels_from_properties(
            props.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            LabelSource::CustomProperties,
        );
        assert_eq!(labels.len(), 2, "{labels:#?}");
        let mip = &labels[0];
        assert_eq!(mip.id.as_deref(), Some(G1));
        assert_eq!(mip.tenant.as_deref(), Some(T1));
        assert_eq!(mip.enabled, Some(true));
        assert_eq!(mip.method.as_deref(), Some("Privileged"));
        assert_eq!(mip.set_date.as_deref(), Some("2026-01-05T10:00:00Z"));
        assert_eq!(mip.name, None);
        assert_eq!(labels[1].source, LabelSource::VendorProperty);
        assert_eq!(labels[1].name.as_deref(), Some("Confidential"));
    }

    fn label_info_xml(labels: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="utf-8" standalone="yes"?><clbl:labelList xmlns:clbl="{LABEL_INFO_NS}">{labels}</clbl:labelList>"#
        )
    }

    #[test]
    fn label_info_lists_labels_and_tenants_and_drops_removed_ones() {
        let xml = label_info_xml(&format!(
            r#"<clbl:label id="{{{}}}" enabled="1" method="Standard" siteId="{{{T1}}}" contentBits="0" removed="0" /><clbl:label id="{{9a7c1f30-2b4d-4e8f-a1c2-5d6e7f809112}}" enabled="1" method="Standard" siteId="{{{T2}}}" removed="1" />"#,
            G1.to_uppercase()
        ));
        let info = parse_label_info(xml.as_bytes(), LabelSource::LabelInfo).unwrap();
        assert_eq!(info.labels.len(), 1);
        assert_eq!(info.labels[0].id.as_deref(), Some(G1));
        assert_eq!(info.labels[0].tenant.as_deref(), Some(T1));
        assert_eq!(info.labels[0].enabled, Some(true));
        assert_eq!(info.tenants, vec![T1.to_string(), T2.to_string()]);
    }

    #[test]
    fn label_info_wins_for_its_tenants_and_an_empty_list_removes_all() {
        let prop = |tenant: &str| DetectedLabel {
            id: Some("5f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b".into()),
            tenant: Some(tenant.into()),
            ..DetectedLabel::new(LabelSource::CustomProperties)
        };
        let vendor = DetectedLabel {
            name: Some("Internal".into()),
            ..DetectedLabel::new(LabelSource::VendorProperty)
        };
        let info = LabelInfo {
            labels: vec![DetectedLabel {
                id: Some(G1.into()),
                tenant: Some(T1.into()),
                ..DetectedLabel::new(LabelSource::LabelInfo)
            }],
            tenants: vec![T1.into()],
        };
        let merged = merge(Some(info), vec![prop(T1), prop(T2), vendor.clone()]);
        let sources: Vec<(LabelSource, Option<&str>)> = merged
            .iter()
            .map(|l| (l.source, l.tenant.as_deref()))
            .collect();
        assert_eq!(
            sources,
            vec![
                (LabelSource::LabelInfo, Some(T1)),
                (LabelSource::CustomProperties, Some(T2)),
                (LabelSource::VendorProperty, None),
            ]
        );
        let emptied = merge(Some(LabelInfo::default()), vec![prop(T1), prop(T2), vendor]);
        assert_eq!(emptied.len(), 1);
        assert_eq!(emptied[0].source, LabelSource::VendorProperty);
        assert_eq!(merge(None, vec![prop(T1)]).len(), 1);
    }

    #[test]
    fn malformed_label_info_is_an_error_not_a_panic() {
        for bad in ["", "<a>", "<clbl:labelList", "not xml at all", "<x/>"] {
            assert!(
                parse_label_info(bad.as_bytes(), LabelSource::LabelInfo).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn long_values_are_cut_at_a_character_boundary() {
        let long = "é".repeat(300);
        let key = format!("MSIP_Label_{G1}_Name");
        let labels = labels_from_properties([(key.as_str(), long.as_str())], LabelSource::PdfInfo);
        let name = labels[0].name.as_deref().unwrap();
        assert_eq!(name.len(), 256);
        assert!(name.chars().all(|c| c == 'é'));
    }

    #[test]
    fn non_ascii_keys_never_panic() {
        for key in [
            "MSIP_Labe\u{242EE}_x",
            "é",
            "MSIP_Label_",
            "MSIP_Label_é_Enabled",
            "MSIP_Label_{}_",
        ] {
            assert!(
                labels_from_properties([(key, "true")], LabelSource::PdfInfo).is_empty(),
                "{key}"
            );
        }
    }

    #[test]
    fn email_header_values_parse_like_properties() {
        let header = format!(
            "MSIP_Label_{G1}_Enabled=True; MSIP_Label_{G1}_SiteId={T1};  MSIP_Label_{G1}_Name=Confidential; MSIP_Label_{G1}_ContentBits=0"
        );
        let labels = labels_from_header(&header);
        assert_eq!(labels.len(), 1);
        assert_eq!(labels[0].source, LabelSource::EmailHeader);
        assert_eq!(labels[0].name.as_deref(), Some("Confidential"));
        assert_eq!(labels[0].tenant.as_deref(), Some(T1));
    }
}

//! Real-format documents for tests and the demo: OOXML packages with Purview label metadata and
//! PDFs with label keys, written with a ZIP writer and a PDF writer that computes its
//! cross-reference table, so the files are what Office and PDF readers accept.

use std::io::{Cursor, Write};

use anyhow::{Context, Result};

/// Namespace of the MIP label-information part.
pub const LABEL_INFO_NS: &str = "http://schemas.microsoft.com/office/2020/mipLabelMetadata";

/// A label as Purview writes it: label id and tenant (site) id, both GUIDs without braces.
#[derive(Debug, Clone, Copy)]
pub struct MipLabel<'a> {
    /// The label's GUID.
    pub id: &'a str,
    /// The tenant's GUID.
    pub tenant: &'a str,
}

/// Which Office application a package is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfficeKind {
    /// Word (.docx)
    Word,
    /// Excel (.xlsx)
    Excel,
}

/// An OOXML package whose label sits in the label-information part (`docMetadata/LabelInfo.xml`)
/// and, if `custom_properties` is true, also in `MSIP_Label_*` custom properties (as Office
/// writes both for compatibility).
pub fn office_document(
    kind: OfficeKind,
    label: Option<MipLabel<'_>>,
    custom_properties: bool,
) -> Result<Vec<u8>> {
    let (main_part, main_type, main_xml) = match kind {
        OfficeKind::Word => (
            "word/document.xml",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Quarterly figures</w:t></w:r></w:p></w:body></w:document>"#,
        ),
        OfficeKind::Excel => (
            "xl/workbook.xml",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheets/></workbook>"#,
        ),
    };
    let mut rels = format!(
        r#"<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="{main_part}"/>"#
    );
    let mut overrides = format!(r#"<Override PartName="/{main_part}" ContentType="{main_type}"/>"#);
    let mut parts: Vec<(String, String)> = vec![(main_part.to_string(), main_xml.to_string())];
    if let Some(l) = label {
        rels.push_str(r#"<Relationship Id="rId2" Type="http://schemas.microsoft.com/office/2020/02/relationships/classificationlabels" Target="docMetadata/LabelInfo.xml"/>"#);
        parts.push((
            "docMetadata/LabelInfo.xml".to_string(),
            format!(
                r#"<?xml version="1.0" encoding="utf-8" standalone="yes"?><clbl:labelList xmlns:clbl="{LABEL_INFO_NS}"><clbl:label id="{{{}}}" enabled="1" method="Standard" siteId="{{{}}}" removed="0" /></clbl:labelList>"#,
                l.id, l.tenant
            ),
        ));
        if custom_properties {
            rels.push_str(r#"<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties" Target="docProps/custom.xml"/>"#);
            overrides.push_str(r#"<Override PartName="/docProps/custom.xml" ContentType="application/vnd.openxmlformats-officedocument.custom-properties+xml"/>"#);
            let prop = |pid: u32, field: &str, value: &str| {
                format!(
                    r#"<property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="{pid}" name="MSIP_Label_{}_{field}"><vt:lpwstr>{value}</vt:lpwstr></property>"#,
                    l.id
                )
            };
            parts.push((
                "docProps/custom.xml".to_string(),
                format!(
                    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">{}{}{}</Properties>"#,
                    prop(2, "Enabled", "true"),
                    prop(3, "Method", "Standard"),
                    prop(4, "SiteId", l.tenant),
                ),
            ));
        }
    }
    parts.insert(
        0,
        (
            "[Content_Types].xml".to_string(),
            format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>{overrides}</Types>"#
            ),
        ),
    );
    parts.insert(
        1,
        (
            "_rels/.rels".to_string(),
            format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>"#
            ),
        ),
    );
    let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, text) in parts {
        z.start_file(name.as_str(), opts).context("zip entry")?;
        z.write_all(text.as_bytes()).context("zip write")?;
    }
    Ok(z.finish().context("zip finish")?.into_inner())
}

/// A one-page PDF 1.7 whose Info dictionary carries the label as Office exports it: only
/// `Enabled`, `Method` and `SiteId` keys (no name), with a correct cross-reference table.
pub fn labeled_pdf(label: Option<MipLabel<'_>>) -> Vec<u8> {
    let content = "BT /F1 12 Tf 72 720 Td (Quarterly figures) Tj ET\n";
    let info = match label {
        Some(l) => format!(
            "<< /Title (Forecast) /MSIP_Label_{id}_Enabled (true) /MSIP_Label_{id}_Method (Standard) /MSIP_Label_{id}_SiteId ({tenant}) >>",
            id = l.id,
            tenant = l.tenant
        ),
        None => "<< /Title (Forecast) >>".to_string(),
    };
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>".to_string(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
        info,
    ];
    let mut out = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

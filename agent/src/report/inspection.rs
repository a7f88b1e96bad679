//! Rendering `inspect` results: everything inspection saw in each file, as text or JSON.

use std::io::{self, Write};
use std::path::PathBuf;

use infoledger_policies::{FileFacts, Policy, Principal};
use serde::Serialize;

/// One inspected file.
#[derive(Debug, Clone)]
pub struct InspectedFile {
    /// The path as resolved.
    pub path: PathBuf,
    /// The facts, when the file could be read.
    pub facts: Option<FileFacts>,
    /// The detected format.
    pub format: Option<String>,
    /// Problems: unreadable file, malformed structures.
    pub errors: Vec<String>,
    /// Remarks that did not stop inspection.
    pub notes: Vec<String>,
}

#[derive(Serialize)]
struct JsonLabel<'a> {
    source: &'a str,
    id: Option<&'a str>,
    tenant: Option<&'a str>,
    name: Option<&'a str>,
    method: Option<&'a str>,
    set_date: Option<&'a str>,
    enabled: Option<bool>,
    detail: Option<&'a str>,
    /// The policy label it maps to.
    mapped: &'a str,
    /// True when no alias matched and the policy's `unknown_label` was assumed.
    assumed: bool,
}

#[derive(Serialize)]
struct JsonEncryption<'a> {
    verdict: &'a str,
    scheme: Option<&'a str>,
    detail: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonFile<'a> {
    path: String,
    format: Option<&'a str>,
    labels: Vec<JsonLabel<'a>>,
    /// The asset the file names through `user.infoledger.asset`.
    asset: Option<&'a str>,
    encryption: Option<JsonEncryption<'a>>,
    owner: Option<String>,
    group: Option<String>,
    mode: Option<String>,
    size: Option<u64>,
    errors: &'a [String],
    notes: &'a [String],
}

fn principal(p: &Principal) -> String {
    p.name.clone().unwrap_or_else(|| p.id.to_string())
}

fn json_file<'a>(f: &'a InspectedFile, policy: &'a Policy) -> JsonFile<'a> {
    let facts = f.facts.as_ref();
    JsonFile {
        path: f.path.to_string_lossy().into_owned(),
        format: f.format.as_deref(),
        labels: facts
            .map(|facts| {
                facts
                    .labels
                    .iter()
                    .map(|l| {
                        let r = policy.resolve(l);
                        JsonLabel {
                            source: l.source.as_str(),
                            id: l.id.as_deref(),
                            tenant: l.tenant.as_deref(),
                            name: l.name.as_deref(),
                            method: l.method.as_deref(),
                            set_date: l.set_date.as_deref(),
                            enabled: l.enabled,
                            detail: l.detail.as_deref(),
                            mapped: &policy.label(r.level).name,
                            assumed: !r.mapped,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
        asset: facts.and_then(|f| f.asset_hint.as_deref()),
        encryption: facts.map(|facts| JsonEncryption {
            verdict: facts.encryption.status.as_str(),
            scheme: facts.encryption.scheme.as_deref(),
            detail: facts.encryption.detail.as_deref(),
        }),
        owner: facts.map(|f| principal(&f.owner)),
        group: facts.map(|f| principal(&f.group)),
        mode: facts.map(|f| format!("{:04o}", f.mode)),
        size: facts.map(|f| f.size),
        errors: &f.errors,
        notes: &f.notes,
    }
}

/// Writes the files as one JSON array.
pub fn write_json(files: &[InspectedFile], policy: &Policy, out: &mut dyn Write) -> io::Result<()> {
    let docs: Vec<JsonFile<'_>> = files.iter().map(|f| json_file(f, policy)).collect();
    serde_json::to_writer_pretty(&mut *out, &docs)?;
    writeln!(out)
}

/// Writes one block per file for people.
pub fn write_text(files: &[InspectedFile], policy: &Policy, out: &mut dyn Write) -> io::Result<()> {
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        let j = json_file(f, policy);
        writeln!(out, "{}", j.path)?;
        if let Some(format) = j.format {
            writeln!(out, "  format:     {format}")?;
        }
        if let (Some(owner), Some(group), Some(mode)) = (&j.owner, &j.group, &j.mode) {
            writeln!(out, "  owner:      {owner}:{group}, mode {mode}")?;
        }
        if let Some(asset) = j.asset {
            writeln!(out, "  asset:      {asset} (user.infoledger.asset)")?;
        }
        if j.labels.is_empty() && f.facts.is_some() {
            writeln!(out, "  labels:     none")?;
        }
        for l in &j.labels {
            let mut parts = Vec::new();
            if let Some(id) = l.id {
                parts.push(format!("id {id}"));
            }
            if let Some(name) = l.name {
                parts.push(format!("name \"{name}\""));
            }
            if let Some(t) = l.tenant {
                parts.push(format!("tenant {t}"));
            }
            if let Some(m) = l.method {
                parts.push(format!("method {m}"));
            }
            if let Some(d) = l.set_date {
                parts.push(format!("set {d}"));
            }
            if l.enabled == Some(false) {
                parts.push("disabled".to_string());
            }
            if let Some(d) = l.detail {
                parts.push(d.to_string());
            }
            let assumed = if l.assumed {
                " (no alias matched: rules.unknown_label)"
            } else {
                ""
            };
            writeln!(
                out,
                "  label:      {}{assumed} from {}: {}",
                l.mapped,
                l.source,
                parts.join(", ")
            )?;
        }
        if let Some(e) = &j.encryption {
            let mut line = format!("  encryption: {}", e.verdict);
            if let Some(s) = e.scheme {
                line.push_str(&format!(" ({s})"));
            }
            if let Some(d) = e.detail {
                line.push_str(&format!(": {d}"));
            }
            writeln!(out, "{line}")?;
        }
        for e in &f.errors {
            writeln!(out, "  error:      {e}")?;
        }
        for n in &f.notes {
            writeln!(out, "  note:       {n}")?;
        }
    }
    Ok(())
}

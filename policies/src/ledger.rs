//! The information-management ledger: the inventory of confidential assets, read from TOML or
//! CSV and validated against the policy's labels.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::diag::{Diagnostic, LoadError, Reporter};
use crate::glob::{self, PathGlobs};
use crate::policy::{check_path_glob, EncryptionRequirement, Level, Policy};
use crate::tomlread::{self, Located, TableReader};

/// Someone allowed to access an asset's files.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Member {
    /// `user:<name>`
    User(String),
    /// `group:<name>`
    Group(String),
}

impl Member {
    /// Parses `user:<name>` or `group:<name>`.
    pub fn parse(s: &str) -> Result<Member, String> {
        let (kind, name) = s.split_once(':').ok_or_else(|| {
            format!("member `{s}` must be written `user:<name>` or `group:<name>`")
        })?;
        let valid = !name.is_empty()
            && name.len() <= 256
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '$' | '\\'))
            && !name.starts_with('-');
        if !valid {
            return Err(format!(
                "member `{s}`: `{name}` is not a valid user or group name"
            ));
        }
        match kind {
            "user" => Ok(Member::User(name.to_string())),
            "group" => Ok(Member::Group(name.to_string())),
            other => Err(format!(
                "member `{s}`: unknown kind `{other}`; expected `user:` or `group:`"
            )),
        }
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Member::User(n) => write!(f, "user:{n}"),
            Member::Group(n) => write!(f, "group:{n}"),
        }
    }
}

/// One ledger entry: a confidential information asset.
#[derive(Debug, Clone)]
pub struct Asset {
    /// Unique id (`ACME-2026`).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Owning department.
    pub department: String,
    /// Who administers it (an e-mail address or account).
    pub administrator: String,
    /// Its label.
    pub label: Level,
    /// Globs where its files may live.
    pub locations: PathGlobs,
    /// Hostnames allowed to hold it (globs); `None` means any host.
    pub hosts: Option<PathGlobs>,
    /// Users and groups allowed access.
    pub members: Vec<Member>,
    /// Explicit encryption requirement; `None` takes the label's.
    pub encryption: Option<EncryptionRequirement>,
    /// Last day (inclusive, UTC) on which access is allowed.
    pub access_until: Option<NaiveDate>,
    /// Who may see it, in words.
    pub disclosure: Option<String>,
}

impl Asset {
    /// Whether `path` lies in one of the asset's locations.
    pub fn contains(&self, path: &Path) -> bool {
        self.locations.is_match(path)
    }

    /// Whether the asset may be held on `host`.
    pub fn allows_host(&self, host: &str) -> bool {
        self.hosts.as_ref().is_none_or(|h| h.is_match_str(host))
    }

    /// Whether its files must be encrypted, given the policy's label rules.
    pub fn requires_encryption(&self, policy: &Policy) -> bool {
        self.encryption
            .unwrap_or(policy.label(self.label).encryption)
            == EncryptionRequirement::Required
    }
}

/// The set of assets.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    assets: Vec<Asset>,
    source: PathBuf,
    /// Every asset's locations in one set, so finding a file's asset is one match, not one per
    /// asset; `owners[i]` is (asset index, literal-prefix length) of pattern `i`.
    all_locations: PathGlobs,
    owners: Vec<(usize, usize)>,
}

impl Ledger {
    fn new(assets: Vec<Asset>, source: PathBuf) -> Ledger {
        let mut patterns = Vec::new();
        let mut owners = Vec::new();
        for (i, a) in assets.iter().enumerate() {
            for p in a.locations.patterns() {
                owners.push((i, glob::literal_prefix(p).len()));
                patterns.push(p.clone());
            }
        }
        // The patterns were validated when the assets were built, so this cannot fail; if it
        // somehow did, falling back to per-asset matching keeps the answer right.
        let all_locations = PathGlobs::new(patterns).unwrap_or_default();
        if all_locations.patterns().len() != owners.len() {
            owners.clear();
        }
        Ledger {
            assets,
            source,
            all_locations,
            owners,
        }
    }
}

const TOP_KEYS: &[&str] = &["asset"];
/// The columns of a ledger, in TOML keys and CSV header names alike.
pub const ASSET_KEYS: &[&str] = &[
    "id",
    "name",
    "department",
    "administrator",
    "label",
    "locations",
    "hosts",
    "members",
    "encryption",
    "access_until",
    "disclosure",
];

/// An asset as written, before validation against the policy.
struct RawAsset {
    span: std::ops::Range<usize>,
    id: Option<Located<String>>,
    name: Option<Located<String>>,
    department: Option<Located<String>>,
    administrator: Option<Located<String>>,
    label: Option<Located<String>>,
    /// `None` when the key is missing or unusable (already reported).
    locations: Option<Vec<Located<String>>>,
    hosts: Option<Vec<Located<String>>>,
    members: Vec<Located<String>>,
    encryption: Option<Located<String>>,
    access_until: Option<Located<String>>,
    disclosure: Option<Located<String>>,
}

impl Ledger {
    /// Parses and validates a TOML ledger against `policy`; `origin` names the file.
    pub fn from_toml(
        text: &str,
        origin: &Path,
        policy: &Policy,
    ) -> Result<(Ledger, Vec<Diagnostic>), LoadError> {
        let mut rep = Reporter::new(origin, text);
        let mut raws = Vec::new();
        if let Some(doc) = tomlread::parse(text, &mut rep) {
            let top = TableReader::new(
                &doc.value,
                doc.span.clone(),
                "the ledger",
                TOP_KEYS,
                &mut rep,
            );
            for (table, span) in top.table_array("asset", &mut rep) {
                let t = TableReader::new(table, span.clone(), "[[asset]]", ASSET_KEYS, &mut rep);
                let list =
                    |rep: &mut Reporter<'_>, key| t.optional_str_list(key, rep).map(|l| l.value);
                raws.push(RawAsset {
                    span: t.span(),
                    id: t.required_str("id", &mut rep),
                    name: t.required_str("name", &mut rep),
                    department: t.required_str("department", &mut rep),
                    administrator: t.required_str("administrator", &mut rep),
                    label: t.required_str("label", &mut rep),
                    locations: t.required_str_list("locations", &mut rep).map(|l| l.value),
                    hosts: list(&mut rep, "hosts"),
                    members: list(&mut rep, "members").unwrap_or_default(),
                    encryption: t.optional_str("encryption", &mut rep),
                    access_until: t.optional_str_or_date("access_until", &mut rep),
                    disclosure: t.optional_str("disclosure", &mut rep),
                });
            }
        }
        let ledger = validate(raws, origin, policy, &mut rep);
        let warnings = rep.finish()?;
        Ok((ledger, warnings))
    }

    /// Parses and validates a CSV ledger with a header row naming the same columns as the TOML
    /// keys; list columns (`locations`, `hosts`, `members`) separate items with `;`.
    ///
    /// Columns are reported by their 1-based field number.
    pub fn from_csv(
        text: &str,
        origin: &Path,
        policy: &Policy,
    ) -> Result<(Ledger, Vec<Diagnostic>), LoadError> {
        let mut rep = Reporter::new(origin, text);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut columns: HashMap<&'static str, usize> = HashMap::new();
        match reader.headers() {
            Ok(headers) => {
                for (i, h) in headers.iter().enumerate() {
                    match ASSET_KEYS.iter().find(|k| **k == h) {
                        Some(k) => {
                            if columns.insert(k, i).is_some() {
                                rep.error_at(1, i + 1, format!("column `{h}` appears twice"));
                            }
                        }
                        None => rep.error_at(
                            1,
                            i + 1,
                            format!("unknown column `{h}`; expected: {}", ASSET_KEYS.join(", ")),
                        ),
                    }
                }
                for required in [
                    "id",
                    "name",
                    "department",
                    "administrator",
                    "label",
                    "locations",
                ] {
                    if !columns.contains_key(required) {
                        rep.error_at(1, 1, format!("missing required column `{required}`"));
                    }
                }
            }
            Err(e) => rep.error_at(1, 1, format!("invalid CSV header: {e}")),
        }
        let mut raws = Vec::new();
        let mut lines = LineCounter::new(text);
        if !rep.has_errors() {
            for record in reader.records() {
                let record = match record {
                    Ok(r) => r,
                    Err(e) => {
                        let line = e.position().map_or(1, |p| lines.line_at(p.byte()));
                        rep.error_at(line, 1, format!("invalid CSV: {e}"));
                        continue;
                    }
                };
                let line = record.position().map_or(1, |p| lines.line_at(p.byte()));
                // Fake spans are not used for CSV: positions are carried as line and column.
                let cell = |key: &str| -> Option<Located<String>> {
                    let col = *columns.get(key)?;
                    let v = record.get(col)?.to_string();
                    (!v.is_empty()).then(|| Located {
                        value: v,
                        span: encode_pos(line, col + 1),
                    })
                };
                let list = |key: &str| -> Option<Vec<Located<String>>> {
                    cell(key).map(|c| {
                        c.value
                            .split(';')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(|s| Located {
                                value: s.to_string(),
                                span: c.span.clone(),
                            })
                            .collect()
                    })
                };
                let required = |rep: &mut Reporter<'_>, key: &str| {
                    let c = cell(key);
                    if c.is_none() {
                        let col = columns.get(key).map_or(1, |c| c + 1);
                        rep.error_at(line, col, format!("asset is missing a value for `{key}`"));
                    }
                    c
                };
                let locations = list("locations");
                if locations.is_none() {
                    let col = columns.get("locations").map_or(1, |c| c + 1);
                    rep.error_at(line, col, "asset is missing a value for `locations`");
                }
                raws.push(RawAsset {
                    span: encode_pos(line, 1),
                    id: required(&mut rep, "id"),
                    name: required(&mut rep, "name"),
                    department: required(&mut rep, "department"),
                    administrator: required(&mut rep, "administrator"),
                    label: required(&mut rep, "label"),
                    locations,
                    hosts: list("hosts"),
                    members: list("members").unwrap_or_default(),
                    encryption: cell("encryption"),
                    access_until: cell("access_until"),
                    disclosure: cell("disclosure"),
                });
            }
        }
        let mut csv_rep = CsvReporter { inner: &mut rep };
        let ledger = validate(raws, origin, policy, &mut csv_rep);
        let warnings = rep.finish()?;
        Ok((ledger, warnings))
    }

    /// Every asset, in ledger order.
    pub fn assets(&self) -> &[Asset] {
        &self.assets
    }

    /// The asset with this id.
    pub fn get(&self, id: &str) -> Option<&Asset> {
        self.assets.iter().find(|a| a.id == id)
    }

    /// The asset whose locations hold `path`; with nested assets, the most specific location
    /// wins (then the earlier asset).
    pub fn asset_at(&self, path: &Path) -> Option<&Asset> {
        if !self.owners.is_empty() {
            // Highest specificity wins; among equals, the earlier asset.
            return self
                .all_locations
                .match_indices(path)
                .into_iter()
                .filter_map(|i| self.owners.get(i).copied())
                .min_by_key(|(asset, specificity)| (std::cmp::Reverse(*specificity), *asset))
                .and_then(|(asset, _)| self.assets.get(asset));
        }
        let mut best: Option<(&Asset, usize)> = None;
        for a in &self.assets {
            if let Some(p) = a.locations.most_specific_match(path) {
                let specificity = glob::literal_prefix(p).len();
                if best.is_none_or(|(_, s)| specificity > s) {
                    best = Some((a, specificity));
                }
            }
        }
        best.map(|(a, _)| a)
    }

    /// The file the ledger was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }
}

/// Finds the line a CSV record starts on from its byte offset.
///
/// The csv crate's own line numbers lag by one after a `\r\n` terminator (the `\n` is counted
/// with the next record), and spreadsheets export CRLF files, so lines are counted here.
struct LineCounter<'t> {
    bytes: &'t [u8],
    /// Offset up to which newlines have been counted, and the line at that offset.
    pos: usize,
    line: usize,
}

impl<'t> LineCounter<'t> {
    fn new(text: &'t str) -> Self {
        LineCounter {
            bytes: text.as_bytes(),
            pos: 0,
            line: 1,
        }
    }

    /// The 1-based line of the record at `byte`; records are visited in order, so counting
    /// continues from the previous one.
    fn line_at(&mut self, byte: u64) -> usize {
        let mut start = usize::try_from(byte).map_or(self.bytes.len(), |b| b.min(self.bytes.len()));
        // The offset may point at the line break that ended the previous record.
        while matches!(self.bytes.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        if start < self.pos {
            self.pos = 0;
            self.line = 1;
        }
        self.line += self.bytes[self.pos..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        self.pos = start;
        self.line
    }
}

/// CSV positions travel in the span as `line << 20 | col` so the shared validation can report them.
fn encode_pos(line: usize, col: usize) -> std::ops::Range<usize> {
    let v = (line << 20) | (col & 0xFFFFF);
    v..v
}

/// Adapts span-based reporting to CSV line/column positions.
struct CsvReporter<'r, 'a> {
    inner: &'r mut Reporter<'a>,
}

trait Report {
    fn error(&mut self, span: std::ops::Range<usize>, message: String);
    fn warning(&mut self, span: std::ops::Range<usize>, message: String);
}

impl Report for Reporter<'_> {
    fn error(&mut self, span: std::ops::Range<usize>, message: String) {
        Reporter::error(self, span, message);
    }
    fn warning(&mut self, span: std::ops::Range<usize>, message: String) {
        Reporter::warning(self, span, message);
    }
}

impl Report for CsvReporter<'_, '_> {
    fn error(&mut self, span: std::ops::Range<usize>, message: String) {
        self.inner
            .error_at(span.start >> 20, span.start & 0xFFFFF, message);
    }
    fn warning(&mut self, span: std::ops::Range<usize>, message: String) {
        self.inner
            .warning_at(span.start >> 20, span.start & 0xFFFFF, message);
    }
}

fn validate(raws: Vec<RawAsset>, origin: &Path, policy: &Policy, rep: &mut dyn Report) -> Ledger {
    let mut assets = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    // Which asset claims each exact location glob, to report ambiguous duplicates.
    let mut claimed: HashMap<String, (String, std::ops::Range<usize>)> = HashMap::new();
    for (index, raw) in raws.into_iter().enumerate() {
        let mut ok = true;
        let id = raw.id.map(|id| {
            let valid = !id.value.is_empty()
                && id.value.len() <= 128
                && id
                    .value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
            if !valid {
                rep.error(
                    id.span.clone(),
                    format!(
                        "asset id `{}` must be 1 to 128 characters of letters, digits, `-`, `_`, `.` or `:`",
                        id.value
                    ),
                );
                ok = false;
            }
            if let Some(prev) = ids.get(&id.value) {
                rep.error(
                    id.span.clone(),
                    format!(
                        "duplicate asset id `{}` (first used by asset #{})",
                        id.value,
                        prev + 1
                    ),
                );
                ok = false;
            } else {
                ids.insert(id.value.clone(), index);
            }
            id.value
        });
        let label = raw.label.and_then(|l| match policy.label_named(&l.value) {
            Some(label) => Some(label.level),
            None => {
                let names: Vec<&str> = policy.labels().iter().map(|x| x.name.as_str()).collect();
                rep.error(
                    l.span,
                    format!(
                        "unknown label `{}`; the policy defines: {}",
                        l.value,
                        names.join(", ")
                    ),
                );
                None
            }
        });
        let listed = raw.locations.is_some();
        let mut locations = Vec::new();
        for g in raw.locations.unwrap_or_default() {
            if check_glob(&g, "locations", rep) {
                if let Some(id) = &id {
                    if let Some((other, _)) = claimed.get(&g.value) {
                        if other != id {
                            rep.error(
                                g.span.clone(),
                                format!(
                                    "location `{}` is also claimed by asset `{other}`; a file there would belong to both",
                                    g.value
                                ),
                            );
                            ok = false;
                        }
                    } else {
                        claimed.insert(g.value.clone(), (id.clone(), g.span.clone()));
                    }
                }
                locations.push(g);
            } else {
                ok = false;
            }
        }
        if raw.hosts.as_ref().is_some_and(Vec::is_empty) {
            rep.error(
                raw.span.clone(),
                "`hosts` is empty, so no host could hold the asset; omit `hosts` to allow any host"
                    .to_string(),
            );
            ok = false;
        }
        let hosts = raw.hosts.map(|hs| {
            let mut good = Vec::new();
            for h in hs {
                match glob::compile(&h.value) {
                    Ok(_) if !h.value.is_empty() && !h.value.contains('/') => good.push(h.value),
                    Ok(_) => {
                        rep.error(h.span, format!("`{}` is not a hostname pattern", h.value));
                        ok = false;
                    }
                    Err(e) => {
                        rep.error(h.span, format!("invalid host glob `{}`: {e}", h.value));
                        ok = false;
                    }
                }
            }
            PathGlobs::hostnames(good).unwrap_or_default()
        });
        let mut members = Vec::new();
        for m in raw.members {
            match Member::parse(&m.value) {
                Ok(member) => members.push(member),
                Err(e) => {
                    rep.error(m.span, e);
                    ok = false;
                }
            }
        }
        let encryption = raw.encryption.and_then(|e| {
            EncryptionRequirement::parse(&e.value)
                .map_err(|m| {
                    rep.error(e.span.clone(), m);
                    ok = false;
                })
                .ok()
        });
        let access_until = raw.access_until.and_then(|d| {
            NaiveDate::parse_from_str(d.value.trim(), "%Y-%m-%d")
                .map_err(|e| {
                    rep.error(
                        d.span.clone(),
                        format!(
                            "invalid date `{}` for `access_until`: {e}; expected YYYY-MM-DD",
                            d.value
                        ),
                    );
                    ok = false;
                })
                .ok()
        });
        // A missing `locations` was reported by the reader; an empty list is reported here.
        if listed && locations.is_empty() && ok {
            rep.error(
                raw.span.clone(),
                "asset has no locations; list the globs where its files may live".to_string(),
            );
        }
        let (Some(id), Some(name), Some(department), Some(administrator), Some(label)) =
            (id, raw.name, raw.department, raw.administrator, label)
        else {
            continue;
        };
        let location_patterns: Vec<String> = locations.into_iter().map(|l| l.value).collect();
        assets.push(Asset {
            id,
            name: name.value,
            department: department.value,
            administrator: administrator.value,
            label,
            locations: PathGlobs::new(location_patterns).unwrap_or_default(),
            hosts,
            members,
            encryption,
            access_until,
            disclosure: raw.disclosure.map(|d| d.value),
        });
    }
    report_nesting(&assets, &claimed, rep);
    Ledger::new(assets, origin.to_path_buf())
}

fn check_glob(g: &Located<String>, key: &str, rep: &mut dyn Report) -> bool {
    // Reuse the policy's checks through a scratch reporter so both files speak alike.
    let mut scratch = Reporter::new(Path::new(""), "");
    let good = check_path_glob(g, key, &mut scratch);
    for d in scratch.diagnostics {
        rep.error(g.span.clone(), d.message);
    }
    good
}

/// Reports locations of different assets that can hold the same file: allowed (the more
/// specific location wins), but worth a warning, since it is often a mistake.
///
/// Glob intersection is decided by example: for two patterns whose literal prefixes are
/// compatible (every path a glob matches starts with its literal prefix, so otherwise they are
/// disjoint), sample paths are built by filling each pattern's wildcards with the other's literal
/// components, and a sample both match proves the overlap.
fn report_nesting(
    assets: &[Asset],
    claimed: &HashMap<String, (String, std::ops::Range<usize>)>,
    rep: &mut dyn Report,
) {
    let mut locations = Vec::new();
    for (index, asset) in assets.iter().enumerate() {
        for pattern in asset.locations.patterns() {
            if let Ok(glob) = glob::compile(pattern) {
                locations.push((index, pattern.as_str(), glob.compile_matcher()));
            }
        }
    }
    for (i, (a, p, pm)) in locations.iter().enumerate() {
        for (b, q, qm) in &locations[i + 1..] {
            if a == b || p == q {
                continue;
            }
            let (pp, qp) = (glob::literal_prefix(p), glob::literal_prefix(q));
            if !(pp.starts_with(qp) || qp.starts_with(pp)) {
                continue;
            }
            let Some(sample) = [merged_sample(p, q), merged_sample(q, p)]
                .into_iter()
                .find(|s| pm.is_match(s) && qm.is_match(s))
            else {
                continue;
            };
            let (first, second) = (&assets[*a], &assets[*b]);
            let (inner, inner_pattern, outer, outer_pattern, why) = if pp.len() > qp.len() {
                (first, *p, second, *q, "the more specific location")
            } else if qp.len() > pp.len() {
                (second, *q, first, *p, "the more specific location")
            } else {
                (
                    first,
                    *p,
                    second,
                    *q,
                    "the earlier asset: neither location is more specific",
                )
            };
            let span = claimed
                .get(if inner.id == first.id { *p } else { *q })
                .map_or(0..0, |(_, s)| s.clone());
            rep.warning(
                span,
                format!(
                    "location `{inner_pattern}` of asset `{}` overlaps `{outer_pattern}` of asset `{}` (both hold e.g. {sample}); files there belong to `{}` ({why})",
                    inner.id, outer.id, inner.id
                ),
            );
        }
    }
}

/// A concrete path for `pattern`, with its wildcard components filled from `other`'s literal
/// components at the same depth (and `**` from the rest of `other`).
fn merged_sample(pattern: &str, other: &str) -> String {
    let p: Vec<&str> = pattern.split('/').collect();
    let q: Vec<&str> = other.split('/').collect();
    let is_literal = |c: &str| !c.contains(['*', '?', '[', '{', '\\']);
    let fill = |c: &str| -> String {
        if c.contains(['[', '{', '\\']) {
            "x".to_string()
        } else {
            c.replace(['*', '?'], "x")
        }
    };
    let mut out: Vec<String> = Vec::new();
    for (i, comp) in p.iter().enumerate() {
        if *comp == "**" {
            for rest in q.iter().skip(i) {
                if *rest != "**" {
                    out.push(if is_literal(rest) {
                        rest.to_string()
                    } else {
                        fill(rest)
                    });
                }
            }
            out.push("infoledger-sample".to_string());
            break;
        }
        if is_literal(comp) {
            out.push(comp.to_string());
        } else {
            match q.get(i) {
                Some(other) if is_literal(other) && !other.is_empty() => {
                    out.push(other.to_string())
                }
                _ => out.push(fill(comp)),
            }
        }
    }
    out.join("/")
}

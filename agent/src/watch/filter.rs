//! Which directories under the watch roots get a watch: all of them (`complete`), or only those
//! where a file the ledger or policy names can appear (`interesting`).
//!
//! # The per-directory rule
//!
//! The *interesting* locations are every asset's `locations`, every label's `locations` and the
//! policy's `rules.forbidden` globs. In the `interesting` scope a directory `D` under a root is
//! watched when some interesting glob can match a path *below* `D`: `D` is, contains or lies
//! under an interesting location. Ancestors of a location are watched too (`/srv` for
//! `/srv/projects/acme/**`), because that is where the location's own directory would appear
//! if it were created or moved in. The test runs over path components: a glob is split at `/`
//! into literal components, wildcard components (`*.d`, `proj-?`) and `**`, and `D`'s
//! components are fed to that small automaton; `D` is watched while some state still expects
//! more components. A directory that fails the test has no interesting path anywhere below it,
//! so its subtree is not entered at all — that is what keeps the count of watches low.
//!
//! A glob that starts with `**` (`**/Downloads/**`) can match below *every* directory, so it
//! makes every directory interesting; write `/home/*/Downloads/**` to let the rule narrow.
//!
//! # Rules that apply everywhere
//!
//! Some rules of the policy judge a file wherever it lies, so no set of locations holds every
//! file that can become a violation:
//!
//! - `rules.unregistered_from`: a file labeled at or above it that no asset covers (the policy
//!   model has no way to switch this rule off, so every bundle has it);
//! - a label with `encryption = "required"`: such a file is `unencrypted` anywhere;
//! - a label with `locations`: such a file is `misplaced` anywhere outside them;
//! - the `user.infoledger.asset` attribute: a file naming an asset is `misplaced` anywhere
//!   outside that asset's locations.
//!
//! So the `complete` scope is the default: it watches every directory under the roots (less
//! the excluded ones), and every rule gets an immediate answer. The `interesting` scope is an
//! operator's explicit choice for hosts whose roots hold more directories than the kernel
//! allows watches: violations of the rules above outside the interesting locations are then
//! found by the periodic rescans instead (scanning is the truth, watching the accelerator).
//! [`WatchFilter::everywhere_rules`] lists them for the log and health reports.

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use infoledger_policies::{Bundle, EncryptionRequirement};
use serde::{Deserialize, Serialize};

use crate::scan::{Excludes, ScanSetupError};

/// Which directories under the roots are watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchScope {
    /// Every directory under the roots except the excluded ones.
    #[default]
    Complete,
    /// Only directories where an asset location, a label location or a forbidden location can
    /// match (see the module documentation); other directories are covered by rescans.
    Interesting,
}

/// Why a filter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// An exclude glob is invalid.
    #[error(transparent)]
    Exclude(#[from] ScanSetupError),
}

/// One component of a location glob.
#[derive(Debug, Clone)]
enum Segment {
    /// `**`: any number of components, including none.
    AnyDepth,
    /// A component without wildcards.
    Literal(String),
    /// A component with wildcards, matched on its own.
    Pattern(GlobMatcher),
}

impl Segment {
    fn matches(&self, component: &OsStr) -> bool {
        match self {
            Segment::AnyDepth => true,
            Segment::Literal(l) => OsStr::new(l) == component,
            Segment::Pattern(m) => m.is_match(component),
        }
    }
}

/// A location glob as a sequence of component matchers.
#[derive(Debug, Clone)]
struct Location {
    segments: Vec<Segment>,
}

/// Splits a glob at `/` outside `{…}` and `[…]`; `None` at the first component whose braces
/// hold a `/` (it spans components and is not split further).
fn split_components(pattern: &str) -> Vec<Option<&str>> {
    let mut parts = Vec::new();
    let (mut braces, mut bracket, mut escaped) = (0usize, false, false);
    let mut start = 0;
    let mut spans_components = false;
    for (i, c) in pattern.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '[' if !bracket => bracket = true,
            ']' if bracket => bracket = false,
            '{' if !bracket => braces += 1,
            '}' if !bracket && braces > 0 => braces -= 1,
            '/' if braces > 0 || bracket => spans_components = true,
            '/' => {
                parts.push((!spans_components).then(|| &pattern[start..i]));
                spans_components = false;
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push((!spans_components).then(|| &pattern[start..]));
    parts
}

impl Location {
    /// Compiles a policy or ledger glob; `None` for a pattern that can never match an absolute
    /// path (validation rejects those, so this is belt and braces).
    fn new(pattern: &str) -> Option<Location> {
        let rest = if let Some(rest) = pattern.strip_prefix('/') {
            rest
        } else if pattern.starts_with("**") {
            pattern
        } else {
            return None;
        };
        let mut segments = Vec::new();
        for part in split_components(rest) {
            let seg = match part {
                // A component whose braces hold a `/` could match any number of components:
                // everything from here on is treated as `**`, which may watch more, never less.
                None => {
                    segments.push(Segment::AnyDepth);
                    break;
                }
                Some("") => continue,
                Some("**") => Segment::AnyDepth,
                Some(p) if !p.contains(['*', '?', '[', '{', '\\']) => {
                    Segment::Literal(p.to_string())
                }
                Some(p) => match GlobBuilder::new(p)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                {
                    Ok(g) => Segment::Pattern(g.compile_matcher()),
                    // Loading validated every glob; should one still fail here, watching more
                    // is the safe answer.
                    Err(_) => {
                        segments.push(Segment::AnyDepth);
                        break;
                    }
                },
            };
            segments.push(seg);
        }
        Some(Location { segments })
    }

    /// Adds `state` and every state reachable from it without consuming a component.
    fn close(&self, state: usize, states: &mut Vec<usize>) {
        let mut s = state;
        loop {
            if states.contains(&s) {
                return;
            }
            states.push(s);
            match self.segments.get(s) {
                Some(Segment::AnyDepth) => s += 1,
                _ => return,
            }
        }
    }

    /// Whether some path strictly below `dir` can match: after consuming `dir`'s components a
    /// state that still expects a component is alive.
    fn can_match_below(&self, dir: &Path) -> bool {
        let mut states = Vec::new();
        self.close(0, &mut states);
        for component in dir.components() {
            let name = match component {
                Component::Normal(n) => n,
                Component::RootDir | Component::CurDir => continue,
                // Roots are canonical; anything else is not a path we can reason about.
                Component::ParentDir | Component::Prefix(_) => return true,
            };
            let mut next = Vec::new();
            for &s in &states {
                match self.segments.get(s) {
                    Some(Segment::AnyDepth) => self.close(s, &mut next),
                    Some(seg) if seg.matches(name) => self.close(s + 1, &mut next),
                    _ => {}
                }
            }
            if next.is_empty() {
                return false;
            }
            states = next;
        }
        states.iter().any(|&s| s < self.segments.len())
    }
}

/// Decides which directories to watch and which changes to report.
#[derive(Debug)]
pub struct WatchFilter {
    scope: WatchScope,
    locations: Vec<Location>,
    patterns: Vec<String>,
    everywhere: Vec<String>,
    excludes: Excludes,
}

impl WatchFilter {
    /// A filter for `bundle`: `scope` chooses between watching everything and watching only
    /// interesting directories; `exclude` globs (as `scan --exclude` takes them) are never
    /// watched or reported.
    pub fn new(
        bundle: &Bundle,
        scope: WatchScope,
        exclude: &[String],
    ) -> Result<Self, FilterError> {
        let mut patterns: Vec<String> = Vec::new();
        for asset in bundle.ledger.assets() {
            patterns.extend(asset.locations.patterns().iter().cloned());
        }
        for label in bundle.policy.labels() {
            patterns.extend(label.locations.patterns().iter().cloned());
        }
        patterns.extend(bundle.policy.rules.forbidden.patterns().iter().cloned());
        patterns.sort();
        patterns.dedup();
        let locations = patterns.iter().filter_map(|p| Location::new(p)).collect();
        Ok(WatchFilter {
            scope,
            locations,
            patterns,
            everywhere: everywhere_rules(bundle),
            excludes: Excludes::new(exclude)?,
        })
    }

    /// A filter that watches every directory not excluded, whatever the bundle says.
    pub fn complete(exclude: &[String]) -> Result<Self, FilterError> {
        Ok(WatchFilter {
            scope: WatchScope::Complete,
            locations: Vec::new(),
            patterns: Vec::new(),
            everywhere: Vec::new(),
            excludes: Excludes::new(exclude)?,
        })
    }

    /// The scope this filter applies.
    pub fn scope(&self) -> WatchScope {
        self.scope
    }

    /// The interesting location globs (asset, label and forbidden locations), sorted.
    pub fn interesting_patterns(&self) -> &[String] {
        &self.patterns
    }

    /// The bundle's rules that judge a file wherever it lies, in words: in the `interesting`
    /// scope, their violations outside interesting locations are found by rescans only.
    pub fn everywhere_rules(&self) -> &[String] {
        &self.everywhere
    }

    /// Whether `path` is left out by an exclude glob.
    pub fn excluded(&self, path: &Path) -> bool {
        self.excludes.excluded(path)
    }

    /// Whether a watch root gets a watch: like `scan`, roots themselves are never excluded, but
    /// the scope applies to them too.
    pub fn watches_root(&self, root: &Path) -> bool {
        match self.scope {
            WatchScope::Complete => true,
            WatchScope::Interesting => self.locations.iter().any(|l| l.can_match_below(root)),
        }
    }

    /// Whether the directory `dir` (under a root) gets a watch. A directory that does not is
    /// not entered either: no directory below it would get one.
    pub fn watches_dir(&self, dir: &Path) -> bool {
        if self.excludes.excluded(dir) {
            return false;
        }
        match self.scope {
            WatchScope::Complete => true,
            WatchScope::Interesting => self.locations.iter().any(|l| l.can_match_below(dir)),
        }
    }
}

/// The bundle's rules that apply to files wherever they lie (see the module documentation).
fn everywhere_rules(bundle: &Bundle) -> Vec<String> {
    let policy = &bundle.policy;
    let mut rules = Vec::new();
    let from = &policy.label(policy.rules.unregistered_from).name;
    rules.push(format!(
        "rules.unregistered_from = {from}: a file labeled {from} or above is a violation wherever no asset covers it"
    ));
    for label in policy.labels() {
        if label.encryption == EncryptionRequirement::Required {
            rules.push(format!(
                "label {}: encryption required: an unencrypted {} file is a violation anywhere",
                label.name, label.name
            ));
        }
        if !label.locations.is_empty() {
            rules.push(format!(
                "label {}: locations: a {} file is misplaced anywhere outside {}",
                label.name,
                label.name,
                label.locations.patterns().join(", ")
            ));
        }
    }
    if !bundle.ledger.assets().is_empty() {
        rules.push(
            "user.infoledger.asset attributes: a file naming an asset is misplaced anywhere outside the asset's locations"
                .to_string(),
        );
    }
    rules
}

/// Canonical roots, with the ones that cannot be resolved returned apart (they are reported
/// as unwatched and left to rescans).
pub(crate) fn canonical_roots(roots: &[PathBuf]) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut ok = Vec::new();
    let mut missing = Vec::new();
    for r in roots {
        match std::fs::canonicalize(r) {
            Ok(p) if !ok.contains(&p) => ok.push(p),
            Ok(_) => {}
            Err(e) => missing.push((r.clone(), e.to_string())),
        }
    }
    (ok, missing)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn below(pattern: &str, dir: &str) -> bool {
        Location::new(pattern)
            .unwrap()
            .can_match_below(Path::new(dir))
    }

    #[test]
    fn ancestors_and_descendants_of_a_location_are_interesting_and_siblings_are_not() {
        let p = "/srv/projects/acme/**";
        for dir in [
            "/",
            "/srv",
            "/srv/projects",
            "/srv/projects/acme",
            "/srv/projects/acme/a/b",
        ] {
            assert!(below(p, dir), "{dir}");
        }
        for dir in [
            "/home",
            "/srv/other",
            "/srv/projects/globex",
            "/srv/projects/acmex",
        ] {
            assert!(!below(p, dir), "{dir}");
        }
    }

    #[test]
    fn a_single_star_component_matches_one_level_only() {
        let p = "/home/*/Downloads/**";
        assert!(below(p, "/home"));
        assert!(below(p, "/home/bob"));
        assert!(below(p, "/home/bob/Downloads"));
        assert!(below(p, "/home/bob/Downloads/x/y"));
        assert!(!below(p, "/home/bob/src"));
        assert!(!below(p, "/home/bob/src/Downloads"));
    }

    #[test]
    fn a_location_of_files_in_one_directory_does_not_reach_its_subdirectories() {
        let p = "/srv/reports/*.pdf";
        assert!(below(p, "/srv/reports"));
        assert!(!below(p, "/srv/reports/2026"));
    }

    #[test]
    fn a_leading_double_star_makes_every_directory_interesting() {
        let p = "**/Downloads/**";
        for dir in ["/", "/home/bob", "/srv/projects/x/y/z"] {
            assert!(below(p, dir), "{dir}");
        }
    }

    #[test]
    fn wildcard_components_and_braces() {
        assert!(below("/srv/proj-?/data/**", "/srv/proj-a/data"));
        assert!(!below("/srv/proj-?/data/**", "/srv/proj-ab"));
        assert!(below("/srv/{acme,globex}/**", "/srv/globex/x"));
        assert!(!below("/srv/{acme,globex}/**", "/srv/initech"));
        // Braces holding a `/` span components: from there on anything goes.
        assert!(below("/srv/{a/b,c}/**", "/srv/zzz/yyy"));
        assert!(!below("/srv/{a/b,c}/**", "/home"));
    }

    #[test]
    fn components_split_outside_braces_and_brackets() {
        assert_eq!(
            split_components("a/{b,c}/[x/]/d"),
            vec![Some("a"), Some("{b,c}"), None, Some("d")]
        );
        assert_eq!(split_components("a\\/b/c"), vec![Some("a\\/b"), Some("c")]);
    }

    #[test]
    fn relative_patterns_never_match() {
        assert!(Location::new("srv/x/**").is_none());
    }

    fn bundle(policy_extra: &str, ledger: &str) -> Bundle {
        let policy = format!(
            "[[label]]\nname = \"public\"\n[[label]]\nname = \"confidential\"\n{policy_extra}\n[rules]\nforbidden = [\"/home/*/Downloads/**\"]\n"
        );
        Bundle::from_texts(&policy, Path::new("p.toml"), ledger, Path::new("l.toml"))
            .unwrap()
            .0
    }

    const LEDGER: &str = r#"
[[asset]]
id = "A"
name = "a"
department = "d"
administrator = "x"
label = "confidential"
locations = ["/srv/projects/acme/**"]
"#;

    #[test]
    fn interesting_scope_watches_roots_intersected_with_locations() {
        let b = bundle("", LEDGER);
        let f = WatchFilter::new(&b, WatchScope::Interesting, &[".git".to_string()]).unwrap();
        assert_eq!(
            f.interesting_patterns(),
            ["/home/*/Downloads/**", "/srv/projects/acme/**"]
        );
        assert!(f.watches_dir(Path::new("/srv/projects")));
        assert!(f.watches_dir(Path::new("/srv/projects/acme/x")));
        assert!(!f.watches_dir(Path::new("/srv/projects/acme/.git")));
        assert!(!f.watches_dir(Path::new("/srv/projects/globex")));
        assert!(f.watches_dir(Path::new("/home/bob/Downloads")));
        assert!(!f.watches_dir(Path::new("/home/bob/src")));
        let all = WatchFilter::new(&b, WatchScope::Complete, &[".git".to_string()]).unwrap();
        assert!(all.watches_dir(Path::new("/home/bob/src")));
        assert!(!all.watches_dir(Path::new("/home/bob/src/.git")));
    }

    #[test]
    fn everywhere_rules_name_what_forces_complete_coverage() {
        let b = bundle(
            "encryption = \"required\"\nlocations = [\"/srv/**\"]",
            LEDGER,
        );
        let f = WatchFilter::new(&b, WatchScope::Complete, &[]).unwrap();
        assert_eq!(
            f.everywhere_rules(),
            [
                "rules.unregistered_from = confidential: a file labeled confidential or above is a violation wherever no asset covers it",
                "label confidential: encryption required: an unencrypted confidential file is a violation anywhere",
                "label confidential: locations: a confidential file is misplaced anywhere outside /srv/**",
                "user.infoledger.asset attributes: a file naming an asset is misplaced anywhere outside the asset's locations",
            ]
        );
    }
}

//! Path globs as the policy and ledger use them: `*` stays within one path component, `**` spans
//! any number of them, and each pattern knows how specific it is.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::path::Path;

/// A compiled list of patterns that remembers which pattern matched.
#[derive(Debug, Clone)]
pub struct PathGlobs {
    patterns: Vec<String>,
    set: GlobSet,
}

impl Default for PathGlobs {
    fn default() -> Self {
        PathGlobs {
            patterns: Vec::new(),
            set: GlobSet::empty(),
        }
    }
}

/// Compiles one pattern the way every infoledger glob is compiled.
pub(crate) fn compile(pattern: &str) -> Result<globset::Glob, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| e.kind().to_string())
}

impl PathGlobs {
    /// Builds the set; patterns are assumed valid (checked with [`compile`] while loading).
    pub(crate) fn new(patterns: Vec<String>) -> Result<Self, String> {
        let mut builder = GlobSetBuilder::new();
        for p in &patterns {
            builder.add(compile(p)?);
        }
        let set = builder.build().map_err(|e| e.to_string())?;
        Ok(PathGlobs { patterns, set })
    }

    /// Builds a set of hostname patterns, which match case-insensitively as hostnames do
    /// (RFC 4343): `build-*` holds `Build-01`.
    pub(crate) fn hostnames(patterns: Vec<String>) -> Result<Self, String> {
        let mut builder = GlobSetBuilder::new();
        for p in &patterns {
            let glob = GlobBuilder::new(p)
                .literal_separator(true)
                .backslash_escape(true)
                .case_insensitive(true)
                .build()
                .map_err(|e| e.kind().to_string())?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|e| e.to_string())?;
        Ok(PathGlobs { patterns, set })
    }

    /// The patterns, in the order they were written.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The first pattern (in written order) that matches `path`.
    pub fn first_match(&self, path: &Path) -> Option<&str> {
        self.set
            .matches(path)
            .into_iter()
            .min()
            .map(|i| self.patterns[i].as_str())
    }

    /// The most specific matching pattern (longest literal prefix), if any.
    pub fn most_specific_match(&self, path: &Path) -> Option<&str> {
        self.set
            .matches(path)
            .into_iter()
            .map(|i| self.patterns[i].as_str())
            .max_by_key(|p| literal_prefix(p).len())
    }

    /// Indices (in written order) of every pattern matching `path`.
    pub fn match_indices(&self, path: &Path) -> Vec<usize> {
        self.set.matches(path)
    }

    /// Whether any pattern matches `path`.
    pub fn is_match(&self, path: &Path) -> bool {
        self.set.is_match(path)
    }

    /// Hostname matching: the same patterns, applied to a plain string.
    pub fn is_match_str(&self, s: &str) -> bool {
        self.set.is_match(s)
    }
}

/// The part of a pattern before its first wildcard: what a matching path must start with.
pub fn literal_prefix(pattern: &str) -> &str {
    let end = pattern
        .find(['*', '?', '[', '{', '\\'])
        .unwrap_or(pattern.len());
    &pattern[..end]
}

/// The directory a developer can move a file into to satisfy `pattern`, for fix hints:
/// `/srv/projects/acme/**` gives `/srv/projects/acme/`.
pub fn suggested_dir(pattern: &str) -> String {
    let prefix = literal_prefix(pattern);
    match prefix.rfind('/') {
        Some(i) => prefix[..=i].to_string(),
        None => prefix.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(p: &[&str]) -> PathGlobs {
        PathGlobs::new(p.iter().map(|s| s.to_string()).collect()).unwrap()
    }

    #[test]
    fn double_star_matches_at_any_depth_and_single_star_in_one_component() {
        let g = globs(&["**/Downloads/**", "/tmp/**", "/srv/*/x"]);
        assert!(g.is_match(Path::new("/home/bob/Downloads/a.xlsx")));
        assert!(g.is_match(Path::new("/home/bob/Downloads/sub/dir/a.xlsx")));
        assert!(g.is_match(Path::new("/tmp/a")));
        assert!(g.is_match(Path::new("/srv/a/x")));
        assert!(!g.is_match(Path::new("/srv/a/b/x")));
        assert!(!g.is_match(Path::new("/home/bob/Downloadsx/a")));
        assert!(!g.is_match(Path::new("/var/tmp/a")));
    }

    #[test]
    fn most_specific_prefers_the_longer_literal_prefix() {
        let g = globs(&["/srv/projects/**", "/srv/projects/acme/**"]);
        assert_eq!(
            g.most_specific_match(Path::new("/srv/projects/acme/a")),
            Some("/srv/projects/acme/**")
        );
        assert_eq!(
            g.most_specific_match(Path::new("/srv/projects/b/a")),
            Some("/srv/projects/**")
        );
    }

    #[test]
    fn suggested_dir_is_the_literal_directory() {
        assert_eq!(
            suggested_dir("/srv/projects/acme/**"),
            "/srv/projects/acme/"
        );
        assert_eq!(suggested_dir("/srv/p*/x"), "/srv/");
        assert_eq!(suggested_dir("**/x"), "");
    }
}

//! Reading typed values out of a parsed TOML document while keeping every value's position, so
//! that one pass reports all problems of a file with their line and column.
//!
//! serde's derive stops at the first error; an information manager fixing a ledger of two hundred
//! assets wants all of them at once, so the policy and ledger readers walk the span-preserving
//! tree of the `toml` crate themselves.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use crate::diag::Reporter;

/// A value with the byte range it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located<T> {
    pub(crate) value: T,
    pub(crate) span: Range<usize>,
}

/// Parses a document; a syntax error is reported and yields `None`.
pub(crate) fn parse<'i>(text: &'i str, rep: &mut Reporter<'_>) -> Option<Located<DeTable<'i>>> {
    let (table, errors) = DeTable::parse_recoverable(text);
    if errors.is_empty() {
        let span = table.span();
        return Some(Located {
            value: table.into_inner(),
            span,
        });
    }
    for e in errors {
        let span = e.span().unwrap_or(0..0);
        rep.error(span, format!("invalid TOML: {}", first_line(e.message())));
    }
    None
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

/// A TOML table being read: remembers which keys were consumed so unknown keys can be reported.
pub(crate) struct TableReader<'t, 'i> {
    table: &'t DeTable<'i>,
    span: Range<usize>,
    what: &'static str,
    known: &'static [&'static str],
}

impl<'t, 'i> TableReader<'t, 'i> {
    /// Starts reading `table` (described as `what` in messages), reporting keys not in `known`.
    pub(crate) fn new(
        table: &'t DeTable<'i>,
        span: Range<usize>,
        what: &'static str,
        known: &'static [&'static str],
        rep: &mut Reporter<'_>,
    ) -> Self {
        for (key, _) in table.iter() {
            let name: &str = key.get_ref().as_ref();
            if !known.contains(&name) {
                let hint = closest(name, known)
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                rep.error(
                    key.span(),
                    format!(
                        "unknown key `{name}` in {what}{hint}; expected one of: {}",
                        known.join(", ")
                    ),
                );
            }
        }
        TableReader {
            table,
            span,
            what,
            known,
        }
    }

    pub(crate) fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    fn get(&self, key: &str) -> Option<(&'t DeValue<'i>, Range<usize>)> {
        debug_assert!(self.known.contains(&key), "key {key} must be declared");
        self.table
            .iter()
            .find(|(k, _)| AsRef::<str>::as_ref(k.get_ref()) == key)
            .map(|(_, v)| (v.get_ref(), v.span()))
    }

    /// A required string; a missing key is reported at the table.
    pub(crate) fn required_str(
        &self,
        key: &'static str,
        rep: &mut Reporter<'_>,
    ) -> Option<Located<String>> {
        match self.get(key) {
            None => {
                rep.error(
                    self.span(),
                    format!("{} is missing the required key `{key}`", self.what),
                );
                None
            }
            Some(_) => self.optional_str(key, rep),
        }
    }

    pub(crate) fn optional_str(
        &self,
        key: &'static str,
        rep: &mut Reporter<'_>,
    ) -> Option<Located<String>> {
        let (value, span) = self.get(key)?;
        match value {
            DeValue::String(s) => Some(Located {
                value: s.to_string(),
                span,
            }),
            other => {
                rep.error(
                    span,
                    format!("`{key}` must be a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// A string, or a TOML local date (`2026-12-31` without quotes) rendered as text.
    pub(crate) fn optional_str_or_date(
        &self,
        key: &'static str,
        rep: &mut Reporter<'_>,
    ) -> Option<Located<String>> {
        let (value, span) = self.get(key)?;
        match value {
            DeValue::Datetime(d) => Some(Located {
                value: d.to_string(),
                span,
            }),
            _ => self.optional_str(key, rep),
        }
    }

    pub(crate) fn optional_bool(&self, key: &'static str, rep: &mut Reporter<'_>) -> Option<bool> {
        let (value, span) = self.get(key)?;
        match value {
            DeValue::Boolean(b) => Some(*b),
            other => {
                rep.error(
                    span,
                    format!("`{key}` must be true or false, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// A required list of strings; a missing key is reported at the table, a mistyped one once.
    pub(crate) fn required_str_list(
        &self,
        key: &'static str,
        rep: &mut Reporter<'_>,
    ) -> Option<Located<Vec<Located<String>>>> {
        if self.get(key).is_none() {
            rep.error(
                self.span(),
                format!("{} is missing the required key `{key}`", self.what),
            );
            return None;
        }
        self.optional_str_list(key, rep)
    }

    /// A list of strings; a single string is accepted as a list of one.
    pub(crate) fn optional_str_list(
        &self,
        key: &'static str,
        rep: &mut Reporter<'_>,
    ) -> Option<Located<Vec<Located<String>>>> {
        let (value, span) = self.get(key)?;
        match value {
            DeValue::String(s) => Some(Located {
                value: vec![Located {
                    value: s.to_string(),
                    span: span.clone(),
                }],
                span,
            }),
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => out.push(Located {
                            value: s.to_string(),
                            span: item.span(),
                        }),
                        other => rep.error(
                            item.span(),
                            format!(
                                "`{key}` must be a list of strings, found {} in it",
                                type_name(other)
                            ),
                        ),
                    }
                }
                Some(Located { value: out, span })
            }
            other => {
                rep.error(
                    span,
                    format!(
                        "`{key}` must be a list of strings, found {}",
                        type_name(other)
                    ),
                );
                None
            }
        }
    }

    /// A sub-table (`[rules]`).
    pub(crate) fn optional_table(
        &self,
        key: &'static str,
        rep: &mut Reporter<'_>,
    ) -> Option<(&'t DeTable<'i>, Range<usize>)> {
        let (value, span) = self.get(key)?;
        match value {
            DeValue::Table(t) => Some((t, span)),
            other => {
                rep.error(
                    span,
                    format!("`{key}` must be a table, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// An array of tables (`[[label]]`).
    pub(crate) fn table_array(
        &self,
        key: &'static str,
        rep: &mut Reporter<'_>,
    ) -> Vec<(&'t DeTable<'i>, Range<usize>)> {
        let Some((value, span)) = self.get(key) else {
            return Vec::new();
        };
        match value {
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::Table(t) => out.push((t, item.span())),
                        other => rep.error(
                            item.span(),
                            format!(
                                "`{key}` entries must be tables ([[{key}]]), found {}",
                                type_name(other)
                            ),
                        ),
                    }
                }
                out
            }
            other => {
                rep.error(
                    span,
                    format!(
                        "`{key}` must be an array of tables ([[{key}]]), found {}",
                        type_name(other)
                    ),
                );
                Vec::new()
            }
        }
    }
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date/time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The known key closest to a misspelt one, if it is close enough to be a likely typo.
fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_key() {
        assert_eq!(closest("lables", &["label", "locations"]), Some("label"));
        assert_eq!(closest("aliasses", &["aliases", "name"]), Some("aliases"));
        assert_eq!(closest("zzz", &["aliases", "name"]), None);
    }
}

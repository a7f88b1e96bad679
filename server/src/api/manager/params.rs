//! Query strings of the manager API: strict parsing into filters, orders and page sizes.
//!
//! Every parameter an endpoint does not know is refused, a single-valued parameter given twice
//! is refused, and every message names the parameter, so a client's mistake is never mistaken
//! for "no filter".

use super::super::AppError;
use crate::store::{Sort, ViolationFilter};
use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use std::fmt::Display;
use std::str::FromStr;

/// The longest value accepted for a text parameter, in characters.
const MAX_VALUE_CHARS: usize = 1000;

/// The filter parameters of violation lists and exports.
pub(super) const FILTERS: [&str; 8] = [
    "status",
    "department",
    "severity",
    "kind",
    "asset",
    "host",
    "label",
    "q",
];

/// A parsed query string, checked against the parameters an endpoint accepts.
#[derive(Debug)]
pub(super) struct Params {
    pairs: Vec<(String, String)>,
}

/// The extractor's result, as handlers receive it.
pub(super) type RawQuery = Result<Query<Vec<(String, String)>>, QueryRejection>;

fn invalid(name: &str, problem: impl Display) -> AppError {
    AppError::InvalidQuery(format!("invalid `{name}`: {problem}"))
}

impl Params {
    /// The query's pairs; refused if any name is not in `allowed`.
    pub(super) fn new(query: RawQuery, allowed: &[&str]) -> Result<Params, AppError> {
        let Query(pairs) = query.map_err(|e| {
            AppError::InvalidQuery(format!("cannot read the query string: {}", e.body_text()))
        })?;
        if let Some((name, _)) = pairs
            .iter()
            .find(|(name, _)| !allowed.contains(&name.as_str()))
        {
            let expected = if allowed.is_empty() {
                "this endpoint takes no query parameters".to_owned()
            } else {
                format!("expected one of: {}", allowed.join(", "))
            };
            return Err(AppError::InvalidQuery(format!(
                "unknown query parameter `{name}`; {expected}"
            )));
        }
        Ok(Params { pairs })
    }

    /// The value of a single-valued parameter: absent is `None`; given twice or empty is an
    /// error.
    pub(super) fn one(&self, name: &str) -> Result<Option<&str>, AppError> {
        let mut values = self
            .pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        let value = values.next();
        if values.next().is_some() {
            return Err(invalid(name, "given more than once"));
        }
        match value {
            Some(v) if v.trim().is_empty() => Err(invalid(name, "must not be empty")),
            Some(v) if v.chars().count() > MAX_VALUE_CHARS => Err(invalid(
                name,
                format_args!("must be at most {MAX_VALUE_CHARS} characters"),
            )),
            other => Ok(other),
        }
    }

    /// A single-valued parameter parsed with `FromStr`.
    pub(super) fn parsed<T>(&self, name: &str) -> Result<Option<T>, AppError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.one(name)?
            .map(|v| v.parse::<T>().map_err(|e| invalid(name, e)))
            .transpose()
    }

    /// A whole number in `range`, or `default` when absent.
    pub(super) fn number(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<u64>,
        default: u64,
    ) -> Result<u64, AppError> {
        let Some(text) = self.one(name)? else {
            return Ok(default);
        };
        text.parse::<u64>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                invalid(
                    name,
                    format_args!(
                        "`{text}` is not a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                )
            })
    }

    /// A multi-valued parameter: repeated (`status=open&status=acknowledged`) or comma-separated
    /// (`status=open,acknowledged`), each value parsed; duplicates are dropped.
    pub(super) fn list<T>(&self, name: &str) -> Result<Vec<T>, AppError>
    where
        T: FromStr<Err = String> + PartialEq,
    {
        let mut values = Vec::new();
        for (_, value) in self.pairs.iter().filter(|(n, _)| n == name) {
            for part in value.split(',') {
                let part = part.trim();
                if part.is_empty() {
                    return Err(invalid(name, "empty value in the list"));
                }
                let parsed = part.parse::<T>().map_err(|e| invalid(name, e))?;
                if !values.contains(&parsed) {
                    values.push(parsed);
                }
            }
        }
        Ok(values)
    }

    /// The violation filter from [`FILTERS`].
    pub(super) fn filter(&self) -> Result<ViolationFilter, AppError> {
        let text = |name| self.one(name).map(|v| v.map(str::to_owned));
        Ok(ViolationFilter {
            statuses: self.list("status")?,
            department: text("department")?,
            severities: self.list("severity")?,
            kinds: self.list("kind")?,
            asset: text("asset")?,
            host: text("host")?,
            label: text("label")?,
            path_contains: text("q")?,
        })
    }

    /// The order from `sort` and `order`; newest first by default.
    pub(super) fn sort(&self) -> Result<Sort, AppError> {
        let default = Sort::default();
        Ok(Sort {
            key: self.parsed("sort")?.unwrap_or(default.key),
            order: self.parsed("order")?.unwrap_or(default.order),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SortKey, SortOrder, ViolationStatus};
    use infoledger_policies::Severity;

    fn params(pairs: &[(&str, &str)], allowed: &[&str]) -> Result<Params, AppError> {
        let pairs = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Params::new(Ok(Query(pairs)), allowed)
    }

    fn message(result: Result<impl std::fmt::Debug, AppError>) -> String {
        match result {
            Err(AppError::InvalidQuery(m)) => m,
            other => panic!("expected invalid_query, got {other:?}"),
        }
    }

    #[test]
    fn lists_take_repeats_and_commas() {
        let p = params(
            &[
                ("status", "open, acknowledged"),
                ("status", "open"),
                ("severity", "high"),
            ],
            &FILTERS,
        )
        .unwrap();
        let filter = p.filter().unwrap();
        assert_eq!(
            filter.statuses,
            [ViolationStatus::Open, ViolationStatus::Acknowledged]
        );
        assert_eq!(filter.severities, [Severity::High]);
        assert!(filter.kinds.is_empty());
    }

    #[test]
    fn mistakes_name_the_parameter() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![("stauts", "open")], "unknown query parameter `stauts`"),
            (
                vec![("status", "closed")],
                "invalid `status`: unknown violation status `closed`",
            ),
            (vec![("status", "open,")], "invalid `status`: empty value"),
            (
                vec![("host", "a"), ("host", "b")],
                "invalid `host`: given more than once",
            ),
            (vec![("q", " ")], "invalid `q`: must not be empty"),
            (vec![("kind", "lost")], "invalid `kind`"),
        ];
        for (pairs, want) in cases {
            let got = params(&pairs, &FILTERS).and_then(|p| p.filter());
            let got = message(got);
            assert!(got.starts_with(want), "{pairs:?}: {got}");
        }
        let p = params(&[("sort", "size"), ("order", "up")], &["sort", "order"]).unwrap();
        assert!(message(p.sort()).starts_with("invalid `sort`"));
        let p = params(&[("order", "up")], &["sort", "order"]).unwrap();
        assert!(message(p.sort()).starts_with("invalid `order`"));
        let p = params(&[("limit", "0")], &["limit"]).unwrap();
        assert!(message(p.number("limit", 1..=500, 50)).starts_with("invalid `limit`"));
        let p = params(&[("limit", "501")], &["limit"]).unwrap();
        assert!(message(p.number("limit", 1..=500, 50)).contains("from 1 to 500"));
        assert!(message(params(&[("x", "1")], &[])).contains("takes no query parameters"));
    }

    #[test]
    fn defaults_apply_when_absent() {
        let p = params(&[], &["sort", "order", "limit"]).unwrap();
        assert_eq!(
            p.sort().unwrap(),
            Sort {
                key: SortKey::OpenedAt,
                order: SortOrder::Desc
            }
        );
        assert_eq!(p.number("limit", 1..=500, 50).unwrap(), 50);
        let p = params(
            &[("sort", "severity"), ("order", "asc")],
            &["sort", "order"],
        )
        .unwrap();
        assert_eq!(
            p.sort().unwrap(),
            Sort {
                key: SortKey::Severity,
                order: SortOrder::Asc
            }
        );
    }
}

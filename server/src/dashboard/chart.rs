//! The trend chart's geometry: unresolved violations per day and severity as SVG polylines, with
//! a rounded scale. Pure arithmetic over the store's points; the template draws it.

use super::view::SEVERITIES;
use crate::store::overview::TrendPoint;
use crate::store::SeverityCounts;
use infoledger_policies::Severity;

/// The drawing area, in SVG user units.
const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 26.0;

/// One severity's line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    /// The severity (also the line's CSS class).
    pub(crate) severity: &'static str,
    /// `x,y x,y …` for the polyline.
    pub(crate) points: String,
    /// The value on the last day.
    pub(crate) last: u64,
}

/// A labelled position on an axis.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tick {
    /// Where (x for the time axis, y for the count axis).
    pub(crate) at: String,
    /// What it says.
    pub(crate) label: String,
    /// How the label aligns with its position (`start`, `middle`, `end`), so the first and
    /// last dates stay inside the drawing.
    pub(crate) anchor: &'static str,
}

/// The whole chart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TrendChart {
    pub(crate) width: String,
    pub(crate) height: String,
    /// The plot's edges, for the axes.
    pub(crate) left: String,
    pub(crate) right: String,
    pub(crate) top: String,
    pub(crate) bottom: String,
    /// Most urgent first.
    pub(crate) series: Vec<Series>,
    pub(crate) y_ticks: Vec<Tick>,
    pub(crate) x_ticks: Vec<Tick>,
    /// The days shown.
    pub(crate) days: usize,
}

fn value(counts: &SeverityCounts, severity: Severity) -> u64 {
    match severity {
        Severity::Info => counts.info,
        Severity::Low => counts.low,
        Severity::Medium => counts.medium,
        Severity::High => counts.high,
        Severity::Critical => counts.critical,
    }
}

/// The smallest of 1, 2, 5, 10, 20, 50, … that is at least `raw`.
fn nice_step(raw: f64) -> u64 {
    let mut magnitude = 1u64;
    loop {
        for factor in [1, 2, 5] {
            let step = factor * magnitude;
            if step as f64 >= raw {
                return step;
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

fn coordinate(v: f64) -> String {
    format!("{v:.1}")
}

/// The chart of `points` (oldest first).
pub(crate) fn trend(points: &[TrendPoint]) -> TrendChart {
    let peak = points
        .iter()
        .flat_map(|p| SEVERITIES.iter().map(|s| value(&p.unresolved, *s)))
        .max()
        .unwrap_or(0)
        .max(1);
    // Four steps of a round size cover the peak.
    let step = nice_step(peak as f64 / 4.0);
    let top_value = (step * peak.div_ceil(step)) as f64;
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let x = |i: usize| -> f64 {
        if points.len() <= 1 {
            LEFT + plot_width / 2.0
        } else {
            LEFT + plot_width * i as f64 / (points.len() - 1) as f64
        }
    };
    let y = |v: u64| -> f64 { TOP + plot_height * (1.0 - v as f64 / top_value) };
    let series = SEVERITIES
        .iter()
        .map(|&severity| {
            let points_text = points
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    format!(
                        "{},{}",
                        coordinate(x(i)),
                        coordinate(y(value(&p.unresolved, severity)))
                    )
                })
                .collect::<Vec<_>>()
                .join(" ");
            Series {
                severity: severity.as_str(),
                points: points_text,
                last: points.last().map_or(0, |p| value(&p.unresolved, severity)),
            }
        })
        .collect();
    let y_ticks = (0..=top_value as u64 / step)
        .map(|k| Tick {
            at: coordinate(y(k * step)),
            label: (k * step).to_string(),
            anchor: "end",
        })
        .collect();
    let last = points.len().saturating_sub(1);
    let mut x_indexes = vec![0, points.len() / 2, last];
    x_indexes.dedup();
    let x_ticks = x_indexes
        .into_iter()
        .filter_map(|i| {
            points.get(i).map(|p| Tick {
                at: coordinate(x(i)),
                label: p.day.format("%b %d").to_string(),
                anchor: match i {
                    _ if points.len() == 1 => "middle",
                    0 => "start",
                    i if i == last => "end",
                    _ => "middle",
                },
            })
        })
        .collect();
    TrendChart {
        width: coordinate(WIDTH),
        height: coordinate(HEIGHT),
        left: coordinate(LEFT),
        right: coordinate(WIDTH - RIGHT),
        top: coordinate(TOP),
        bottom: coordinate(HEIGHT - BOTTOM),
        series,
        y_ticks,
        x_ticks,
        days: points.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn point(day: u32, high: u64, low: u64) -> TrendPoint {
        TrendPoint {
            day: NaiveDate::from_ymd_opt(2026, 3, day).unwrap(),
            unresolved: SeverityCounts {
                high,
                low,
                ..SeverityCounts::default()
            },
        }
    }

    #[test]
    fn steps_are_round() {
        let steps: Vec<u64> = [0.2, 1.0, 1.5, 3.0, 7.0, 12.0, 260.0]
            .into_iter()
            .map(nice_step)
            .collect();
        assert_eq!(steps, [1, 1, 2, 5, 10, 20, 500]);
    }

    #[test]
    fn lines_span_the_plot_and_scale_to_a_round_top() {
        let chart = trend(&[point(1, 0, 3), point(2, 7, 3), point(3, 14, 0)]);
        // Peak 14 → step 5 → top 15: ticks 0, 5, 10, 15.
        let labels: Vec<&str> = chart.y_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "5", "10", "15"]);
        assert_eq!(chart.y_ticks[0].at, "194.0");
        assert_eq!(chart.y_ticks[3].at, "10.0");
        let high = chart.series.iter().find(|s| s.severity == "high").unwrap();
        // x from 44 to 748; y of 0 at the bottom (194), of 15 at the top (10).
        assert_eq!(high.points, "44.0,194.0 396.0,108.1 748.0,22.3");
        assert_eq!(high.last, 14);
        let labels: Vec<&str> = chart.x_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["Mar 01", "Mar 02", "Mar 03"]);
        let anchors: Vec<&str> = chart.x_ticks.iter().map(|t| t.anchor).collect();
        assert_eq!(anchors, ["start", "middle", "end"]);
        assert_eq!(chart.series.len(), 5);
        assert_eq!(chart.series[0].severity, "critical");
    }

    #[test]
    fn an_empty_or_flat_trend_still_draws() {
        let chart = trend(&[]);
        assert!(chart.series.iter().all(|s| s.points.is_empty()));
        let chart = trend(&[point(1, 0, 0)]);
        let labels: Vec<&str> = chart.y_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "1"]);
        assert_eq!(chart.series[1].points, "396.0,194.0");
    }
}

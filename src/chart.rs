//! The equity chart as inline SVG, computed on the server (no JavaScript).

use rust_decimal::{Decimal, prelude::ToPrimitive};
use time::Date;

use crate::money::money;

/// Drawing area, in SVG user units.
pub const WIDTH: f64 = 720.0;
/// Drawing area height.
pub const HEIGHT: f64 = 200.0;
const PAD_LEFT: f64 = 8.0;
const PAD_TOP: f64 = 10.0;
const PAD_BOTTOM: f64 = 10.0;

/// Everything the template needs to draw and describe the chart.
#[derive(Debug, Clone)]
pub struct Chart {
    pub line: String,
    pub area: String,
    pub baseline_y: String,
    pub first_label: String,
    pub last_label: String,
    pub high: String,
    pub low: String,
    pub start: String,
    pub end: String,
    pub change: String,
    pub points: usize,
}

/// Builds the chart; `None` with fewer than two points.
pub fn build(series: &[(Date, Decimal)]) -> Option<Chart> {
    if series.len() < 2 {
        return None;
    }
    let values: Vec<f64> = series
        .iter()
        .map(|(_, v)| v.to_f64().unwrap_or(0.0))
        .collect();
    let (min, max) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let span = if (max - min).abs() < f64::EPSILON {
        1.0
    } else {
        max - min
    };
    let plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM;
    let step = (WIDTH - 2.0 * PAD_LEFT) / (values.len() - 1) as f64;
    let coords: Vec<(f64, f64)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                PAD_LEFT + i as f64 * step,
                PAD_TOP + (1.0 - (v - min) / span) * plot_h,
            )
        })
        .collect();
    let line = coords
        .iter()
        .enumerate()
        .map(|(i, (x, y))| format!("{}{x:.1},{y:.1}", if i == 0 { "M" } else { "L" }))
        .collect::<Vec<_>>()
        .join(" ");
    let baseline = PAD_TOP + plot_h;
    let (first_x, last_x) = (coords[0].0, coords[coords.len() - 1].0);
    let area = format!("{line} L{last_x:.1},{baseline:.1} L{first_x:.1},{baseline:.1} Z");
    let first = series[0].1;
    let last = series[series.len() - 1].1;
    let high = series.iter().map(|(_, v)| *v).max().unwrap_or(last);
    let low = series.iter().map(|(_, v)| *v).min().unwrap_or(last);
    Some(Chart {
        line,
        area,
        baseline_y: format!("{baseline:.1}"),
        first_label: series[0].0.to_string(),
        last_label: series[series.len() - 1].0.to_string(),
        high: money(high),
        low: money(low),
        start: money(first),
        end: money(last),
        change: crate::money::signed_money(last - first),
        points: series.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rising_series_draws_left_to_right_and_describes_itself() {
        let day = |d: u8| {
            time::macros::date!(2026 - 11 - 01)
                .replace_day(d)
                .expect("day")
        };
        let series = [
            (day(1), Decimal::from(100)),
            (day(2), Decimal::from(150)),
            (day(3), Decimal::from(120)),
        ];
        let chart = build(&series).expect("chart");
        assert!(chart.line.starts_with("M8.0,"));
        assert_eq!(chart.line.matches('L').count(), 2);
        assert_eq!(chart.high, "$150.00");
        assert_eq!(chart.low, "$100.00");
        assert_eq!(chart.change, "+$20.00");
        assert_eq!(chart.first_label, "2026-11-01");
        assert!(build(&series[..1]).is_none());
    }
}

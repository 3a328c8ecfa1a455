//! Bar charts drawn as SVG by the page itself: no chart library and
//! nothing from a CDN (the CSP allows neither, and the site works
//! offline). The drawing scales to its container's width, so a chart
//! stays readable on a phone; each bar tells its period and value on
//! hover, and the chart as a whole is described for screen readers.

use leptos::prelude::*;

use super::views::Chart;

/// The drawing's own units; the SVG scales them to the page.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 180.0;
/// Room left of the bars for the scale, and under them for the labels.
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;
/// Period labels written under the bars, at most.
const LABELS: usize = 8;

/// One chart: a bar per period, oldest on the left, with the highest value
/// as its scale.
#[component]
pub fn BarChart(
    /// The chart to draw.
    chart: Chart,
) -> impl IntoView {
    let Chart { title, bars } = chart;
    let highest = bars.iter().map(|bar| bar.value).max().unwrap_or(0);
    let total: u64 = bars.iter().map(|bar| bar.value).sum();
    let scale = highest.max(1) as f64;
    let slot = (WIDTH - LEFT) / bars.len().max(1) as f64;
    let tall = HEIGHT - BOTTOM - TOP;
    let label_every = bars.len().div_ceil(LABELS).max(1);
    let drawn = bars
        .iter()
        .enumerate()
        .map(|(i, bar)| {
            let height = bar.value as f64 / scale * tall;
            let x = LEFT + i as f64 * slot;
            let label = (i % label_every == 0).then(|| {
                view! { <text x=format!("{x:.1}") y=format!("{:.1}", HEIGHT - 5.0)>{bar.label.clone()}</text> }
            });
            view! {
                <rect
                    class="bar"
                    x=format!("{:.1}", x + slot * 0.1)
                    y=format!("{:.1}", TOP + tall - height)
                    width=format!("{:.1}", slot * 0.8)
                    height=format!("{height:.1}")
                    data-value=bar.value
                >
                    <title>{format!("{}: {}", bar.label, bar.value)}</title>
                </rect>
                {label}
            }
        })
        .collect_view();
    let described = format!("{title}: {total} in all, at most {highest} in one period");
    view! {
        <figure class="chart">
            <figcaption>{title}</figcaption>
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=described>
                <text x="0" y=format!("{:.1}", TOP + 10.0)>{highest}</text>
                <text x="0" y=format!("{:.1}", HEIGHT - BOTTOM)>"0"</text>
                <line
                    class="axis"
                    x1=LEFT
                    x2=WIDTH
                    y1=format!("{:.1}", HEIGHT - BOTTOM)
                    y2=format!("{:.1}", HEIGHT - BOTTOM)
                />
                {drawn}
            </svg>
        </figure>
    }
}

//! Plots of a run and of a batch, drawn with plotters as SVG and as PNG (rendered in
//! memory, with the DejaVu Sans font embedded: no system library or font is needed), and
//! the self-contained `report.html` that shows them with the summary table.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use restake_core::Results;
use restake_core::stats::{FAN_LEVELS, MetricId};

use crate::{ReportError, contribution_label};

/// Width and height of every plot, in pixels.
pub const PLOT_SIZE: (u32, u32) = (960, 540);

/// DejaVu Sans 2.37 (Bitstream Vera licence, `fonts/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the embedded font is a valid TrueType font"));
    });
}

fn plot_error(e: impl std::fmt::Display) -> ReportError {
    ReportError::Plot(e.to_string())
}

/// Draws `chart` on a backend-generic area: the plotters API is the same for SVG and
/// bitmap, so each chart is one generic function, instantiated for both.
pub trait Chart {
    /// File stem (`loss_distribution` gives `.svg` and `.png`).
    fn stem(&self) -> &'static str;
    /// Draws the chart.
    ///
    /// # Errors
    /// A plotters error, as text.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static;
}

/// The chart as SVG text and as PNG bytes.
///
/// # Errors
/// [`ReportError::Plot`] when drawing or encoding fails.
pub fn render<C: Chart>(chart: &C) -> Result<(String, Vec<u8>), ReportError> {
    register_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, PLOT_SIZE).into_drawing_area();
        chart.draw(&root).map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    let (w, h) = PLOT_SIZE;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, PLOT_SIZE).into_drawing_area();
        chart.draw(&root).map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(plot_error)?;
        writer.write_image_data(&rgb).map_err(plot_error)?;
    }
    Ok((svg, png_bytes))
}

fn font(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().into()
}

/// A white area with a caption and the plots' margins, `y_label_width` pixels left for
/// the y labels.
fn frame<'a, 'b, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    caption: &str,
    caption_size: u32,
    y_label_width: u32,
) -> Result<ChartBuilder<'a, 'b, DB>, String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(caption, font(caption_size))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(y_label_width);
    Ok(builder)
}

/// Grid, tick labels and axis descriptions.
fn mesh<DB, X, Y, XT, YT>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
) -> Result<(), String>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = XT> + ValueFormatter<XT>,
    Y: Ranged<ValueType = YT> + ValueFormatter<YT>,
{
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(font(16))
        .axis_desc_style(font(18))
        .draw()
        .map_err(|e| e.to_string())
}

/// The legend of the labelled series, upper left.
fn legend<'a, DB, X, Y>(chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(font(16))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// A chart with a linear x axis and a logarithmic y axis.
type LogChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, LogCoord<f64>>>;

/// A histogram on a log scale of probability: `bins` are `(lower, upper, probability)`
/// over `x`, drawn in `color`. Returns the chart, for more series, and the probability
/// at the bottom of the axis.
fn log_histogram<'a, DB>(
    root: &'a DrawingArea<DB, Shift>,
    caption: &str,
    x_desc: &str,
    x: std::ops::Range<f64>,
    bins: &[(f64, f64, f64)],
    color: RGBAColor,
) -> Result<(LogChart<'a, DB>, f64), String>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let p_min = bins.iter().map(|b| b.2).fold(1.0, f64::min).max(1e-9) / 2.0;
    let mut chart = frame(root, caption, 24, 110)?
        .build_cartesian_2d(x, (p_min..1.0).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("paths in the bin (%, log scale)")
        .y_label_formatter(&|p| percent_tick(*p))
        .label_style(font(16))
        .axis_desc_style(font(18))
        .draw()
        .map_err(|e| e.to_string())?;
    // Each bar a little narrower than its bin, so that neighbours stand apart.
    chart
        .draw_series(bins.iter().map(|(lo, hi, p)| {
            let gap = 0.08 * (hi - lo);
            Rectangle::new([(*lo + gap, p_min), (*hi - gap, *p)], color.filled())
        }))
        .map_err(|e| e.to_string())?;
    Ok((chart, p_min))
}

/// A tick of a probability axis as a percent with the digits its size needs: `1e-6`
/// is `0.0001%`, `0.1` is `10%` (log axes put ticks at such round values; a value is
/// first rounded to two significant digits, so float noise never shows).
pub fn percent_tick(p: f64) -> String {
    let x = 100.0 * p;
    if !(x > 0.0 && x.is_finite()) {
        return "0%".into();
    }
    let rounded: f64 = format!("{x:.1e}").parse().unwrap_or(x);
    let decimals = (-(rounded.log10().floor()) as i32 + 1).max(0) as usize;
    let text = format!("{rounded:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}%")
}

/// The bins of a histogram with paths, as `(lower, upper, probability)` in per cent.
fn percent_bins(bins: &[restake_core::stats::Bin], total: u64) -> Vec<(f64, f64, f64)> {
    bins.iter()
        .filter(|b| b.paths > 0)
        .map(|b| {
            (
                100.0 * b.lower,
                100.0 * b.upper,
                b.paths as f64 / total as f64,
            )
        })
        .collect()
}

/// Loss distribution: the probability of each bin of the slashing loss (per cent of
/// principal), on a log scale, with the share of paths without loss in the title.
pub struct LossDistribution<'a>(pub &'a Results, pub &'a str);

impl Chart for LossDistribution<'_> {
    fn stem(&self) -> &'static str {
        "loss_distribution"
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let h = &self.0.loss_distribution;
        let zero = h.bins[0].paths as f64 / h.total as f64;
        let x_max = h.bins.last().map_or(1.0, |b| 100.0 * b.upper).max(1e-6);
        let caption = format!(
            "{}: slashing loss ({:.2}% of paths lose nothing)",
            self.1,
            100.0 * zero
        );
        log_histogram(
            root,
            &caption,
            "slashing loss (% of principal)",
            0.0..x_max,
            &percent_bins(&h.bins[1..], h.total),
            RED.mix(0.6),
        )?;
        Ok(())
    }
}

/// Return distribution: the probability of each bin of the net return (per cent), with
/// the 99% VaR and ES marked (as returns, `-VaR` and `-ES`).
pub struct ReturnDistribution<'a>(pub &'a Results, pub &'a str);

impl Chart for ReturnDistribution<'_> {
    fn stem(&self) -> &'static str {
        "return_distribution"
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let r = self.0;
        let h = &r.return_distribution;
        let metric = |id: MetricId| r.metric(id).map_or(0.0, |e| e.value);
        let (var, es) = (
            -100.0 * metric(MetricId::Var(9900)),
            -100.0 * metric(MetricId::Es(9900)),
        );
        let x0 = (100.0 * h.bins[0].lower).min(es);
        let x1 = 100.0 * h.bins.last().map_or(0.0, |b| b.upper);
        let (mut chart, p_min) = log_histogram(
            root,
            &format!("{}: net return over the horizon", self.1),
            "net return (% of principal)",
            x0..x1.max(x0 + 1e-6),
            &percent_bins(&h.bins, h.total),
            BLUE.mix(0.5),
        )?;
        for (x, label, color) in [
            (var, format!("-VaR 99 = {var:.2}%"), RED),
            (es, format!("-ES 99 = {es:.2}%"), BLACK),
        ] {
            chart
                .draw_series(LineSeries::new(
                    [(x, p_min), (x, 1.0)],
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        }
        legend(&mut chart)
    }
}

/// Fan chart: the quantiles of the position's value `V(t)/P` over time, bands from the
/// 1st to the 99th, 5th to 95th and 25th to 75th percentile, and the median.
pub struct FanChart<'a>(pub &'a Results, pub &'a str);

impl Chart for FanChart<'_> {
    fn stem(&self) -> &'static str {
        "fan_chart"
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let rows = &self.0.fan_chart;
        let mut points = vec![(0.0, [1.0; 7])];
        points.extend(rows.iter().map(|r| (r.day, r.values)));
        let lo = points.iter().map(|p| p.1[0]).fold(f64::INFINITY, f64::min);
        let hi = points
            .iter()
            .map(|p| p.1[6])
            .fold(f64::NEG_INFINITY, f64::max);
        let pad = (hi - lo).max(1e-6) * 0.05;
        let days = points.last().map_or(1.0, |p| p.0);
        let caption = format!("{}: value of the position over time", self.1);
        let mut chart = frame(root, &caption, 24, 80)?
            .build_cartesian_2d(0.0..days, (lo - pad)..(hi + pad))
            .map_err(|e| e.to_string())?;
        mesh(&mut chart, "day", "value / principal")?;
        debug_assert_eq!(FAN_LEVELS.len(), 7);
        for (a, b, alpha, label) in [
            (0, 6, 0.15, "1st to 99th percentile"),
            (1, 5, 0.25, "5th to 95th percentile"),
            (2, 4, 0.4, "25th to 75th percentile"),
        ] {
            let mut band: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.1[b])).collect();
            band.extend(points.iter().rev().map(|p| (p.0, p.1[a])));
            chart
                .draw_series(std::iter::once(Polygon::new(
                    band,
                    BLUE.mix(alpha).filled(),
                )))
                .map_err(|e| e.to_string())?
                .label(label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 20, y + 5)], BLUE.mix(alpha).filled())
                });
        }
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.0, p.1[3])),
                BLACK.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label("median")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
        legend(&mut chart)
    }
}

/// A bar of [`bars`]: its label, its value, and optionally its 95% interval.
type Bar = (String, f64, Option<(f64, f64)>);

/// Horizontal bars: one labelled value per row, sorted as given, each with its 95%
/// interval as an error bar where one is given; bars stand apart by a white border.
fn bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    caption: &str,
    x_desc: &str,
    rows: &[Bar],
    label_width: u32,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let n = rows.len().max(1);
    let ends = rows
        .iter()
        .flat_map(|r| [r.1, r.2.map_or(r.1, |c| c.0), r.2.map_or(r.1, |c| c.1)]);
    let lo = ends.clone().fold(0.0, f64::min);
    let hi = ends.fold(0.0, f64::max);
    let pad = (hi - lo).max(1e-9) * 0.05;
    let mut chart = frame(root, caption, 20, label_width)?
        .build_cartesian_2d((lo - pad)..(hi + pad), (0..n).into_segmented())
        .map_err(|e| e.to_string())?;
    let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(x_desc)
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .label_style(font(15))
        .axis_desc_style(font(18))
        .draw()
        .map_err(|e| e.to_string())?;
    // Opaque fills (the grid does not show through), and a white line along every
    // boundary between rows, so that neighbouring bars stand apart.
    let (loss, gain) = (RGBColor(235, 110, 110), RGBColor(110, 190, 120));
    // A quarter of a row's height (caption, margins and axis take about 110 pixels).
    let row_pixels = root.dim_in_pixel().1.saturating_sub(110) / n as u32;
    let separator = (row_pixels / 4).clamp(2, 8);
    chart
        .draw_series(rows.iter().enumerate().map(|(i, (_, v, _))| {
            let color = if *v >= 0.0 { loss } else { gain };
            Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(i)),
                    (*v, SegmentValue::Exact(i + 1)),
                ],
                color.filled(),
            )
        }))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series((0..=n).map(|i| {
            PathElement::new(
                [
                    (lo - pad, SegmentValue::Exact(i)),
                    (hi + pad, SegmentValue::Exact(i)),
                ],
                WHITE.stroke_width(separator),
            )
        }))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(rows.iter().enumerate().filter_map(|(i, (_, v, ci))| {
            ci.map(|(a, b)| {
                ErrorBar::new_horizontal(
                    SegmentValue::CenterOf(i),
                    a,
                    *v,
                    b,
                    BLACK.stroke_width(2),
                    12,
                )
            })
        }))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Risk contributions: each source's share of ES 99 in ETH (income as a negative
/// loss), the largest in size first, at most 15.
pub struct Contributions<'a>(pub &'a Results, pub &'a str);

impl Chart for Contributions<'_> {
    fn stem(&self) -> &'static str {
        "contributions"
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let mut rows: Vec<Bar> = self
            .0
            .contributions
            .iter()
            .filter(|c| c.es_contribution_eth[2] != 0.0)
            .map(|c| (contribution_label(c), c.es_contribution_eth[2], None))
            .collect();
        rows.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        rows.truncate(15);
        bars(
            root,
            &format!("{}: where the 99% expected shortfall comes from", self.1),
            "contribution to ES 99 (ETH; income negative)",
            &rows,
            400,
        )
    }
}

/// A batch's comparison: ES 99 and P(underperform) of each scenario, in per cent, each
/// with its 95% interval.
pub struct Comparison<'a>(pub &'a [(&'a str, &'a Results)]);

impl Chart for Comparison<'_> {
    fn stem(&self) -> &'static str {
        "comparison"
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let (top, bottom) = root.split_vertically(PLOT_SIZE.1 / 2);
        for (area, metric, title) in [
            (
                &top,
                MetricId::Es(9900),
                "99% expected shortfall (% of principal)",
            ),
            (
                &bottom,
                MetricId::ProbUnderperform,
                "probability of doing worse than plain staking (%)",
            ),
        ] {
            let rows: Vec<Bar> = self
                .0
                .iter()
                .map(|(name, r)| {
                    let e = r.metric(metric);
                    (
                        name.to_string(),
                        100.0 * e.map_or(0.0, |e| e.value),
                        e.map(|e| (100.0 * e.ci_low, 100.0 * e.ci_high)),
                    )
                })
                .collect();
            bars(
                area,
                &format!("{title}, with 95% intervals"),
                "",
                &rows,
                200,
            )?;
        }
        Ok(())
    }
}

/// A sweep of one parameter: above, VaR 99 and ES 99 against it; below, P(loss) and,
/// for a levered scenario, P(liquidation) (else P(underperform)); all in per cent with
/// their 95% intervals.
pub struct Sweep<'a> {
    /// The swept parameter's field path.
    pub parameter: &'a str,
    /// The grid: each value and its statistics, in grid order.
    pub points: &'a [(f64, &'a Results)],
}

impl Chart for Sweep<'_> {
    fn stem(&self) -> &'static str {
        "sweep"
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let levered = self
            .points
            .first()
            .is_some_and(|(_, r)| r.metric(MetricId::ProbLiquidation).is_some());
        let second = if levered {
            (MetricId::ProbLiquidation, "P(liquidation)")
        } else {
            (MetricId::ProbUnderperform, "P(underperform)")
        };
        let (top, bottom) = root.split_vertically(PLOT_SIZE.1 / 2);
        let panels = [
            (
                &top,
                "loss of principal at 99%, with 95% intervals",
                [
                    (MetricId::Var(9900), "VaR 99"),
                    (MetricId::Es(9900), "ES 99"),
                ],
            ),
            (
                &bottom,
                "probabilities, with 95% intervals",
                [(MetricId::ProbLoss, "P(loss)"), second],
            ),
        ];
        let xs = self.points.iter().map(|(x, _)| *x);
        let (x_lo, x_hi) = (
            xs.clone().fold(f64::INFINITY, f64::min),
            xs.fold(f64::NEG_INFINITY, f64::max),
        );
        let x_pad = ((x_hi - x_lo) * 0.04).max(1e-9);
        for (area, caption, series) in panels {
            let pct = |id: MetricId, (_, r): &(f64, &Results)| {
                r.metric(id)
                    .map(|e| (100.0 * e.ci_low, 100.0 * e.value, 100.0 * e.ci_high))
            };
            let ends = series
                .iter()
                .flat_map(|(id, _)| self.points.iter().filter_map(move |p| pct(*id, p)))
                .flat_map(|(a, _, b)| [a, b]);
            let lo = ends.clone().fold(0.0, f64::min);
            let hi = ends.fold(0.0, f64::max).max(lo + 1e-9);
            let mut chart = frame(area, caption, 20, 70)?
                .build_cartesian_2d((x_lo - x_pad)..(x_hi + x_pad), lo..(hi * 1.05))
                .map_err(|e| e.to_string())?;
            mesh(&mut chart, self.parameter, "%")?;
            for ((id, label), color) in series
                .iter()
                .zip([RGBColor(200, 60, 60), RGBColor(50, 90, 180)])
            {
                let line: Vec<(f64, f64)> = self
                    .points
                    .iter()
                    .filter_map(|p| pct(*id, p).map(|(_, v, _)| (p.0, v)))
                    .collect();
                chart
                    .draw_series(LineSeries::new(line, color.stroke_width(3)))
                    .map_err(|e| e.to_string())?
                    .label(*label)
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], color.stroke_width(3))
                    });
                chart
                    .draw_series(self.points.iter().filter_map(|p| {
                        pct(*id, p).map(|(a, v, b)| {
                            ErrorBar::new_vertical(p.0, a, v, b, color.stroke_width(2), 10)
                        })
                    }))
                    .map_err(|e| e.to_string())?;
            }
            legend(&mut chart)?;
        }
        Ok(())
    }
}

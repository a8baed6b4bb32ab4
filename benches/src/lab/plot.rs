//! The run's plots, each as PNG and SVG (`plotters`): the percentile distribution per rate (x
//! to 99.999 %, log-scaled as HdrHistogram's plotter does), latency over time, throughput over
//! time. Text is drawn with `ab_glyph` from a TrueType font found at run time (DejaVu Sans or
//! Liberation Sans, or `--font`), so the build needs no fontconfig.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;

/// What the plots need of one step.
#[derive(Debug)]
pub struct PlotStep<'a> {
    pub rate: f64,
    pub corrected: &'a Histogram<u64>,
    /// Seconds since the run started at which the step started.
    pub start_s: f64,
    /// Per second: (p50 ns, p99 ns, max ns, answered, sent).
    pub slots: Vec<(u64, u64, u64, u64, u64)>,
}

const FONT_CANDIDATES: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Registers a font once; `Err` says why no plot can have text.
pub fn init_font(explicit: Option<&Path>) -> Result<PathBuf, String> {
    static FONT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let candidates: Vec<PathBuf> = explicit
            .map(|p| vec![p.to_path_buf()])
            .unwrap_or_else(|| FONT_CANDIDATES.iter().map(PathBuf::from).collect());
        for p in candidates {
            if let Ok(bytes) = std::fs::read(&p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(p);
                }
            }
        }
        Err("no TrueType font found (install fonts-dejavu-core or pass --font)".into())
    })
    .clone()
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("plot: {e:?}")
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn us_label(v: &f64) -> String {
    if *v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn pct_label(x: &f64) -> String {
    match x.round() as i64 {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        3 => "99.9%".into(),
        4 => "99.99%".into(),
        5 => "99.999%".into(),
        _ => String::new(),
    }
}

/// `(x, latency µs)` of a histogram's percentile curve, x = log10(1 / (1 - q)) up to 5.
pub fn percentile_curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut pts = Vec::new();
    if h.is_empty() {
        return pts;
    }
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        if q >= 0.99999 {
            break;
        }
        pts.push((
            (1.0 / (1.0 - q)).log10(),
            v.value_iterated_to() as f64 / 1e3,
        ));
    }
    pts.push((5.0, h.value_at_quantile(0.99999) as f64 / 1e3));
    pts
}

fn draw_percentiles<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    steps: &[PlotStep],
    title: &str,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let curves: Vec<(String, Vec<(f64, f64)>)> = steps
        .iter()
        .map(|s| {
            (
                format!("{:.0} orders/s", s.rate),
                percentile_curve(s.corrected),
            )
        })
        .collect();
    let ymax = curves
        .iter()
        .flat_map(|c| c.1.iter().map(|p| p.1))
        .fold(1.0f64, f64::max)
        * 1.5;
    let ymin = curves
        .iter()
        .flat_map(|c| c.1.iter().map(|p| p.1))
        .fold(f64::MAX, f64::min)
        .clamp(0.01, ymax / 10.0)
        / 1.5;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .margin_right(40)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..5f64, (ymin..ymax).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(6)
        .x_label_formatter(&pct_label)
        .x_desc("percentile")
        .y_desc("latency (µs, from intended send)")
        .y_label_formatter(&us_label)
        .draw()
        .map_err(err)?;
    for (k, (name, pts)) in curves.into_iter().enumerate() {
        let c = COLORS[k % COLORS.len()];
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

fn draw_latency_time<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    steps: &[PlotStep],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let mut series: [Vec<(f64, f64)>; 3] = Default::default();
    for s in steps {
        for (i, sl) in s.slots.iter().enumerate() {
            if sl.3 == 0 {
                continue;
            }
            let t = s.start_s + i as f64 + 0.5;
            series[0].push((t, sl.0 as f64 / 1e3));
            series[1].push((t, sl.1 as f64 / 1e3));
            series[2].push((t, sl.2 as f64 / 1e3));
        }
    }
    let tmax = steps
        .last()
        .map_or(1.0, |s| s.start_s + s.slots.len() as f64)
        .max(1.0);
    let ymax = series[2].iter().map(|p| p.1).fold(1.0, f64::max) * 1.5;
    let ymin = series[0]
        .iter()
        .map(|p| p.1)
        .fold(f64::MAX, f64::min)
        .clamp(0.01, ymax / 10.0)
        / 1.5;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "latency over time (per second, from intended send)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..tmax, (ymin..ymax).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds since start (steps back to back)")
        .y_desc("latency (µs)")
        .y_label_formatter(&us_label)
        .draw()
        .map_err(err)?;
    for (k, name) in ["p50", "p99", "max"].iter().enumerate() {
        let c = COLORS[k];
        chart
            .draw_series(LineSeries::new(series[k].clone(), c.stroke_width(2)))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

fn draw_throughput_time<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    steps: &[PlotStep],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let mut achieved = Vec::new();
    let mut target = Vec::new();
    for s in steps {
        for (i, sl) in s.slots.iter().enumerate() {
            let t = s.start_s + i as f64;
            achieved.push((t + 0.5, sl.3 as f64));
            target.push((t, s.rate));
            target.push((t + 1.0, s.rate));
        }
    }
    let tmax = steps
        .last()
        .map_or(1.0, |s| s.start_s + s.slots.len() as f64)
        .max(1.0);
    let ymax = achieved
        .iter()
        .chain(target.iter())
        .map(|p| p.1)
        .fold(1.0, f64::max)
        * 1.2;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "throughput over time (answers per second)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..tmax, 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds since start (steps back to back)")
        .y_desc("orders/s")
        .y_label_formatter(&|v| format!("{:.0}k", v / 1e3))
        .draw()
        .map_err(err)?;
    for (k, (name, pts)) in [("target", target), ("achieved", achieved)]
        .into_iter()
        .enumerate()
    {
        let c = COLORS[k];
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// Writes `percentiles`, `latency-over-time` and `throughput-over-time` as `.png` and `.svg`
/// into `dir`; returns the files written.
pub fn write_all(dir: &Path, steps: &[PlotStep], title: &str) -> Result<Vec<PathBuf>, String> {
    const W: u32 = 1100;
    const H: u32 = 650;
    let mut files = Vec::new();
    let p = |n: &str| dir.join(n);
    {
        let f = p("percentiles.png");
        draw_percentiles(
            BitMapBackend::new(&f, (W, H)).into_drawing_area(),
            steps,
            title,
        )?;
        files.push(f);
        let f = p("percentiles.svg");
        draw_percentiles(
            SVGBackend::new(&f, (W, H)).into_drawing_area(),
            steps,
            title,
        )?;
        files.push(f);
    }
    {
        let f = p("latency-over-time.png");
        draw_latency_time(BitMapBackend::new(&f, (W, H)).into_drawing_area(), steps)?;
        files.push(f);
        let f = p("latency-over-time.svg");
        draw_latency_time(SVGBackend::new(&f, (W, H)).into_drawing_area(), steps)?;
        files.push(f);
    }
    {
        let f = p("throughput-over-time.png");
        draw_throughput_time(BitMapBackend::new(&f, (W, H)).into_drawing_area(), steps)?;
        files.push(f);
        let f = p("throughput-over-time.svg");
        draw_throughput_time(SVGBackend::new(&f, (W, H)).into_drawing_area(), steps)?;
        files.push(f);
    }
    Ok(files)
}

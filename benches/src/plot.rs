//! PNG plots with plotters: line charts of any series, with optional log axes.
//!
//! Log axes are drawn by plotting log10 of the values on a linear axis and labelling ticks with
//! the original values, which keeps every chart the same Rust type. Text uses DejaVu Sans from
//! the `dejavu` crate through plotters' ab_glyph feature, so no system font is needed.

use std::{path::Path, sync::Once};

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use crate::{hist::parse_cdf, report::num, suite::si, wal, workload::Fields};

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend name (a system name picks its colour).
    pub name: String,
    /// (x, y) points in data units.
    pub points: Vec<(f64, f64)>,
}

/// One chart.
#[derive(Clone, Debug)]
pub struct Panel {
    /// Caption.
    pub title: String,
    /// X axis description.
    pub x_label: String,
    /// Y axis description.
    pub y_label: String,
    /// Log-scaled x axis.
    pub x_log: bool,
    /// Log-scaled y axis.
    pub y_log: bool,
    /// The lines.
    pub series: Vec<Series>,
}

const FONT: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

fn colour(name: &str) -> RGBColor {
    const PALETTE: &[RGBColor] = &[
        RGBColor(214, 39, 40),   // walrus
        RGBColor(255, 127, 14),  // walrus-uring
        RGBColor(148, 103, 189), // walrus-mmap
        RGBColor(31, 119, 180),  // walrus-0.2.0
        RGBColor(44, 160, 44),   // raft-engine
        RGBColor(140, 86, 75),   // okaywal
        RGBColor(127, 127, 127), // rocksdb
    ];
    let i = wal::ALL_SYSTEMS
        .iter()
        .position(|s| *s == name)
        .unwrap_or(name.len());
    PALETTE[i % PALETTE.len()]
}

fn axis(v: f64, log: bool) -> f64 {
    if log { v.max(1e-9).log10() } else { v }
}

fn tick_label(v: f64, log: bool) -> String {
    let v = if log { 10f64.powf(v) } else { v };
    if v.abs() >= 1000.0 {
        si(v)
    } else if v.abs() >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    (lo - pad, hi + pad)
}

/// Draws `panels` side by side into a PNG at `path`.
pub fn draw(path: &Path, panels: &[Panel]) -> Result<()> {
    register_font();
    let (w, h) = (760 * panels.len().max(1) as u32, 540u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (area, panel) in areas.iter().zip(panels) {
            draw_panel(area, panel).map_err(|e| anyhow!("{e:?}"))?;
        }
        root.present().map_err(|e| anyhow!("{e:?}"))?;
    }
    let file = std::fs::File::create(path)?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&buf)?;
    Ok(())
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

fn draw_panel(
    area: &Area<'_>,
    panel: &Panel,
) -> Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>> {
    let points = || panel.series.iter().flat_map(|s| s.points.iter());
    let (x0, x1) = bounds(points().map(|p| axis(p.0, panel.x_log)));
    let (y0, y1) = bounds(points().map(|p| axis(p.1, panel.y_log)));
    let y0 = if panel.y_log { y0 } else { y0.min(0.0) };
    // Headroom above the lines for the legend box in the upper left.
    let y1 = y1 + (y1 - y0) * 0.4;
    // Integer x values (threads) get one tick each and no fractional labels.
    let integer_x = !panel.x_log && points().all(|p| p.0.fract() == 0.0) && (x1 - x0) <= 64.0;
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let (xl, yl) = (panel.x_log, panel.y_log);
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .x_labels(if integer_x {
            (x1 - x0).ceil() as usize + 1
        } else {
            10
        })
        .x_label_formatter(&|v| {
            if integer_x {
                if (v - v.round()).abs() < 1e-6 {
                    format!("{}", v.round())
                } else {
                    String::new()
                }
            } else {
                tick_label(*v, xl)
            }
        })
        .y_label_formatter(&|v| tick_label(*v, yl))
        .draw()?;
    for s in &panel.series {
        let c = colour(&s.name);
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|&(x, y)| (axis(x, xl), axis(y, yl)))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], c.stroke_width(3)));
        if pts.len() <= 12 {
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}

fn field<'a>(row: &'a Fields, key: &str) -> &'a str {
    row.get(key).map_or("", String::as_str)
}

/// Systems in the order they first appear.
fn systems(rows: &[&Fields]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows {
        let s = field(r, "system");
        if s != "disk" && !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    out
}

/// Throughput against threads, one line per system, for rows of one kind.
pub fn threads_panel(title: &str, rows: &[&Fields], y_key: &str, y_label: &str) -> Panel {
    let series = systems(rows)
        .into_iter()
        .map(|s| {
            let mut points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| field(r, "system") == s && !r.contains_key("error"))
                .filter_map(|r| Some((num(r, "threads")?, num(r, y_key)?)))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series { name: s, points }
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    Panel {
        title: title.to_owned(),
        x_label: "threads".into(),
        y_label: y_label.to_owned(),
        x_log: false,
        y_log: true,
        series,
    }
}

/// A value against the data written before it (`fill_bytes`, in GiB on a log axis), one line
/// per system: how a cost grows with the data set.
pub fn size_panel(title: &str, rows: &[&Fields], y_key: &str, y_label: &str) -> Panel {
    let series = systems(rows)
        .into_iter()
        .map(|s| {
            let mut points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| field(r, "system") == s && !r.contains_key("error"))
                .filter_map(|r| Some((num(r, "fill_bytes")? / (1u64 << 30) as f64, num(r, y_key)?)))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series { name: s, points }
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    Panel {
        title: title.to_owned(),
        x_label: "data written (GiB, log)".into(),
        y_label: y_label.to_owned(),
        x_log: true,
        y_log: true,
        series,
    }
}

/// Latency CDF (from each row's `cdf` field), one line per system.
pub fn cdf_panel(title: &str, rows: &[&Fields]) -> Panel {
    let series = rows
        .iter()
        .filter(|r| !r.contains_key("error"))
        .filter_map(|r| {
            let points: Vec<(f64, f64)> = parse_cdf(r.get("cdf")?)
                .into_iter()
                .map(|(q, ns)| ((ns as f64 / 1e3).max(0.01), q))
                .collect();
            Some(Series {
                name: field(r, "system").to_owned(),
                points,
            })
        })
        .collect();
    Panel {
        title: title.to_owned(),
        x_label: "latency (us, log)".into(),
        y_label: "fraction of operations".into(),
        x_log: true,
        y_log: false,
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.png");
        let panel = Panel {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            x_log: false,
            y_log: true,
            series: vec![Series {
                name: "walrus".into(),
                points: vec![(1.0, 10.0), (2.0, 1000.0)],
            }],
        };
        draw(&path, &[panel.clone(), panel]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }
}

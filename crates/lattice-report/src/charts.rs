//! The SVG plots (plotters): the drawing frame shared by every chart, ROC, reliability and
//! lift of a binary classifier, the churn model's coefficients, the send-time heatmap; and
//! the `<figure>` that puts one in the page.

use std::fmt::Write as _;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use lattice_models::metrics::BinaryMetrics;
use lattice_models::score::Models;
use lattice_models::sendtime::{Channel, top3_hours_of_week};

use crate::format::*;

/// How many of the churn model's coefficients the bar chart shows.
pub(crate) const TOP_COEFFICIENTS: usize = 15;
/// Width of the full-width plots, in pixels; the small ones are a third of the page.
pub(crate) const WIDE: u32 = 1100;
pub(crate) const SMALL: (u32, u32) = (360, 340);

pub(crate) const FONT: &str = "sans-serif";
pub(crate) const INK: RGBColor = RGBColor(36, 41, 47);
pub(crate) const MUTED: RGBColor = RGBColor(110, 119, 129);
pub(crate) const GRID: RGBColor = RGBColor(225, 228, 232);
pub(crate) const BLUE_: RGBColor = RGBColor(31, 119, 180);
pub(crate) const RED_: RGBColor = RGBColor(214, 39, 40);
pub(crate) const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

pub(crate) fn figure(h: &mut String, svg: &str, caption: &str) {
    let _ = write!(
        h,
        "<figure>\n{svg}<figcaption>{caption}</figcaption>\n</figure>\n"
    );
}

pub(crate) type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws into an SVG string of `size` pixels; a drawing error becomes a note in the page.
pub(crate) fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> DrawResult,
) -> String {
    let mut buf = String::new();
    let res = {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        let res = root
            .fill(&WHITE)
            .map_err(Into::into)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Into::into));
        drop(root);
        res
    };
    match res {
        Ok(()) => buf,
        Err(e) => format!(
            "<p class=\"note\">The plot could not be drawn: {}</p>\n",
            escape(&e.to_string())
        ),
    }
}

pub(crate) fn text(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().color(&INK)
}

pub(crate) fn caption(size: u32) -> TextStyle<'static> {
    (FONT, size, FontStyle::Bold).into_font().color(&INK)
}

pub(crate) fn no_data(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    message: &str,
) -> DrawResult {
    let (w, h) = area.dim_in_pixel();
    let centre = Pos::new(HPos::Center, VPos::Center);
    area.draw(&Text::new(
        title.to_string(),
        (w as i32 / 2, 20),
        caption(16).pos(centre),
    ))?;
    area.draw(&Text::new(
        message.to_string(),
        (w as i32 / 2, h as i32 / 2),
        text(14).color(&MUTED).pos(centre),
    ))?;
    Ok(())
}

/// A titled chart over [0, 1] × [0, 1] with its grid and axis labels drawn: the frame of the
/// ROC and reliability plots.
pub(crate) fn unit_square<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
) -> Result<
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    Box<dyn std::error::Error>,
> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, caption(16))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
    chart
        .configure_mesh()
        .light_line_style(GRID.mix(0.6))
        .bold_line_style(GRID)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|v| format!("{v:.1}"))
        .y_label_formatter(&|v| format!("{v:.1}"))
        .label_style(text(12))
        .axis_desc_style(text(13))
        .draw()?;
    Ok(chart)
}

pub(crate) fn roc_svg(m: &BinaryMetrics) -> String {
    svg(SMALL, |root| {
        let title = format!("ROC curve (AUC {})", opt(m.auc, 3));
        if m.roc.is_empty() {
            return no_data(root, &title, "no ROC points (one class only)");
        }
        let mut chart = unit_square(root, &title, "false positive rate", "true positive rate")?;
        chart.draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            5,
            4,
            MUTED.stroke_width(1),
        ))?;
        chart
            .draw_series(LineSeries::new(
                m.roc
                    .iter()
                    .copied()
                    .filter(|(x, y)| x.is_finite() && y.is_finite()),
                BLUE_.stroke_width(2),
            ))?
            .label("churn model")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE_.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(GRID)
            .label_font(text(12))
            .draw()?;
        Ok(())
    })
}

pub(crate) fn reliability_svg(m: &BinaryMetrics) -> String {
    svg(SMALL, |root| {
        let title = format!("Reliability (ECE {})", num(m.ece, 3));
        let bins: Vec<(f64, f64, usize)> = m
            .reliability
            .iter()
            .filter(|b| b.mean_predicted.is_finite() && b.observed_rate.is_finite())
            .map(|b| (b.mean_predicted, b.observed_rate, b.count))
            .collect();
        if bins.is_empty() {
            return no_data(root, &title, "no predictions");
        }
        let mut chart = unit_square(
            root,
            &title,
            "mean predicted probability",
            "observed churn rate",
        )?;
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                5,
                4,
                MUTED.stroke_width(1),
            ))?
            .label("perfect calibration")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], MUTED.stroke_width(1)));
        chart
            .draw_series(LineSeries::new(
                bins.iter().map(|&(x, y, _)| (x, y)),
                BLUE_.stroke_width(2),
            ))?
            .label("churn model")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE_.stroke_width(2)));
        let biggest = bins.iter().map(|b| b.2).max().unwrap_or(1).max(1) as f64;
        chart.draw_series(bins.iter().map(|&(x, y, n)| {
            let r = 2.5 + 6.0 * (n as f64 / biggest).sqrt();
            Circle::new((x, y), r.round() as i32, BLUE_.mix(0.55).filled())
        }))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(GRID)
            .label_font(text(12))
            .draw()?;
        Ok(())
    })
}

pub(crate) fn lift_svg(m: &BinaryMetrics) -> String {
    svg(SMALL, |root| {
        let title = format!("Lift by decile (top {})", num(m.top_decile_lift, 2));
        let lifts: Vec<(i32, f64)> = m
            .deciles
            .iter()
            .filter(|d| d.lift.is_finite())
            .map(|d| (d.decile as i32, d.lift))
            .collect();
        if lifts.is_empty() {
            return no_data(root, &title, "no deciles");
        }
        let top = lifts.iter().map(|d| d.1).fold(1.0, f64::max) * 1.15;
        let last = lifts.iter().map(|d| d.0).max().unwrap_or(10);
        let mut chart = ChartBuilder::on(root)
            .caption(&title, caption(16))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(52)
            .build_cartesian_2d((1..last).into_segmented(), 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(GRID.mix(0.6))
            .bold_line_style(GRID)
            .x_desc("score decile (1 = highest risk)")
            .y_desc("lift over base rate")
            .x_labels(lifts.len())
            .y_labels(6)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(d) => d.to_string(),
                _ => String::new(),
            })
            .y_label_formatter(&|v| format!("{v:.1}"))
            .label_style(text(12))
            .axis_desc_style(text(13))
            .draw()?;
        chart.draw_series(lifts.iter().map(|&(d, lift)| {
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(d), 0.0),
                    (SegmentValue::Exact(d + 1), lift),
                ],
                BLUE_.mix(0.8).filled(),
            );
            bar.set_margin(0, 0, 4, 4);
            bar
        }))?;
        chart.draw_series(DashedLineSeries::new(
            [(SegmentValue::Exact(1), 1.0), (SegmentValue::Last, 1.0)],
            5,
            4,
            RED_.stroke_width(1),
        ))?;
        chart.draw_series(std::iter::once(
            EmptyElement::at((SegmentValue::Last, 1.0))
                + Text::new(
                    "base rate",
                    (-4, -3),
                    text(11)
                        .color(&RED_)
                        .pos(Pos::new(HPos::Right, VPos::Bottom)),
                ),
        ))?;
        let label = text(11).pos(Pos::new(HPos::Center, VPos::Bottom));
        chart.draw_series(lifts.iter().map(|&(d, lift)| {
            EmptyElement::at((SegmentValue::CenterOf(d), lift))
                + Text::new(num(lift, 2), (0, -3), label.clone())
        }))?;
        Ok(())
    })
}

/// The churn model's strongest coefficients on the calibrated log-odds scale, strongest first.
pub(crate) fn top_coefficients(models: &Models, n: usize) -> Vec<(String, f64)> {
    let churn = &models.fitted.churn;
    let mut c: Vec<(String, f64)> = churn
        .features
        .iter()
        .zip(&churn.weights)
        .map(|(f, w)| (f.clone(), w * churn.calibration.slope()))
        .filter(|(_, v)| v.is_finite())
        .collect();
    c.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
    c.truncate(n);
    c
}

pub(crate) fn coefficients_svg(models: &Models) -> String {
    let coefs = top_coefficients(models, TOP_COEFFICIENTS);
    let rows = coefs.len().max(1) as u32;
    svg((WIDE, 90 + 26 * rows), |root| {
        let title = format!("Churn model: top {} coefficients by size", coefs.len());
        if coefs.is_empty() {
            return no_data(root, &title, "no coefficients");
        }
        let longest = coefs
            .iter()
            .map(|c| c.0.chars().count())
            .max()
            .unwrap_or(10) as u32;
        let extent = coefs.iter().map(|c| c.1.abs()).fold(0.0, f64::max);
        let extent = if extent > 0.0 { extent * 1.2 } else { 1.0 };
        let n = coefs.len() as i32;
        let mut chart = ChartBuilder::on(root)
            .caption(&title, caption(16))
            .margin(12)
            .margin_right(24)
            .x_label_area_size(44)
            .y_label_area_size((24 + 7 * longest).min(360))
            .build_cartesian_2d(-extent..extent, (0..n - 1).into_segmented())?;
        // Row 0 at the bottom: the strongest coefficient goes to the top row.
        let name_of = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(r) if (0..n).contains(r) => {
                coefs[(n - 1 - r) as usize].0.clone()
            }
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(GRID.mix(0.6))
            .bold_line_style(GRID)
            .x_desc("change in churn log-odds per +1 SD of the feature")
            .x_labels(9)
            .y_labels(coefs.len())
            .x_label_formatter(&|v| {
                if v.abs() < 1e-9 {
                    "0".into()
                } else {
                    format!("{v:+.2}")
                }
            })
            .y_label_formatter(&name_of)
            .label_style(text(12))
            .axis_desc_style(text(13))
            .draw()?;
        chart.draw_series(coefs.iter().enumerate().map(|(i, (_, v))| {
            let r = n - 1 - i as i32;
            let colour = if *v >= 0.0 { RED_ } else { BLUE_ };
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(r)),
                    (*v, SegmentValue::Exact(r + 1)),
                ],
                colour.mix(0.8).filled(),
            );
            bar.set_margin(4, 4, 0, 0);
            bar
        }))?;
        chart.draw_series(LineSeries::new(
            [(0.0, SegmentValue::Exact(0)), (0.0, SegmentValue::Last)],
            INK.stroke_width(1),
        ))?;
        chart.draw_series(coefs.iter().enumerate().map(|(i, (_, v))| {
            let r = n - 1 - i as i32;
            let (h, dx) = if *v >= 0.0 {
                (HPos::Left, 4)
            } else {
                (HPos::Right, -4)
            };
            EmptyElement::at((*v, SegmentValue::CenterOf(r)))
                + Text::new(
                    format!("{v:+.3}"),
                    (dx, 0),
                    text(11).color(&MUTED).pos(Pos::new(h, VPos::Center)),
                )
        }))?;
        Ok(())
    })
}

/// A perceptually ordered colour ramp (viridis, 5 stops) at `t` in [0, 1].
pub(crate) fn ramp(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 5] = [
        (68, 1, 84),
        (59, 82, 139),
        (33, 145, 140),
        (94, 201, 98),
        (253, 231, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

pub(crate) fn heatmap_svg(models: &Models) -> String {
    let st = &models.send_time;
    let profile = st.population(Channel::Any);
    let events = st.population_events(Channel::Any);
    svg((WIDE, 340), |root| {
        let title = format!(
            "Population send-time profile, all channels ({} engagements)",
            count(events)
        );
        let (chart_area, legend_area) = root.split_horizontally(WIDE - 110);
        // Relative to an even spread over the week: 1 = an average hour.
        let rel: Vec<f64> = profile.iter().map(|p| p * profile.len() as f64).collect();
        let lo = rel.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rel.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = if hi > lo { hi - lo } else { 1.0 };
        let mut chart = ChartBuilder::on(&chart_area)
            .caption(&title, caption(16))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(48)
            .build_cartesian_2d((0..23).into_segmented(), (0..6).into_segmented())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("local hour of day")
            .x_labels(24)
            .y_labels(7)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(h) => format!("{h:02}"),
                _ => String::new(),
            })
            // Row 0 at the bottom: Monday goes to the top row.
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(r) if (0..7).contains(r) => DAYS[(6 - r) as usize].into(),
                _ => String::new(),
            })
            .label_style(text(12))
            .axis_desc_style(text(13))
            .draw()?;
        let cell = |how: usize| {
            let (day, hour) = ((how / 24) as i32, (how % 24) as i32);
            let row = 6 - day;
            [
                (SegmentValue::Exact(hour), SegmentValue::Exact(row)),
                (SegmentValue::Exact(hour + 1), SegmentValue::Exact(row + 1)),
            ]
        };
        chart.draw_series(rel.iter().enumerate().map(|(how, v)| {
            let mut r = Rectangle::new(cell(how), ramp((v - lo) / span).filled());
            r.set_margin(1, 0, 1, 0);
            r
        }))?;
        chart.draw_series(
            top3_hours_of_week(profile)
                .iter()
                .map(|&(how, _)| Rectangle::new(cell(usize::from(how)), INK.stroke_width(2))),
        )?;

        // Colour legend: a vertical ramp with its end values.
        let (top, bottom, x0) = (60, 260, 14);
        legend_area.draw(&Text::new(
            "× even spread",
            (x0 - 6, top - 22),
            text(12).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        let steps = 50;
        for s in 0..steps {
            let y0 = bottom - (bottom - top) * (s + 1) / steps;
            let y1 = bottom - (bottom - top) * s / steps;
            let t = f64::from(s) / f64::from(steps - 1);
            legend_area.draw(&Rectangle::new([(x0, y0), (x0 + 18, y1)], ramp(t).filled()))?;
        }
        let side = text(12).pos(Pos::new(HPos::Left, VPos::Center));
        for (y, v) in [
            (top, hi),
            ((top + bottom) / 2, (lo + hi) / 2.0),
            (bottom, lo),
        ] {
            legend_area.draw(&Text::new(format!("{v:.2}"), (x0 + 24, y), side.clone()))?;
        }
        Ok(())
    })
}

//! The report as Markdown and as a self-contained HTML page, both rendered from one list of blocks
//! (headings, paragraphs, lists, tables, figures), so the two always say the same thing.
//!
//! Markdown shows the PNG plots (rendered everywhere) with a link to the SVG; HTML inlines the SVG
//! files, so the page needs nothing beside it. Inline text may use `code` and **bold**.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use rlscale_core::SimTime;

use super::analysis::{Divergence, ReplicaHours, Timing};
use super::verdict::Outcome;
use super::{ObjectReport, ShadowReport};
use crate::report;

enum Block {
    H(u8, String),
    P(String),
    List(Vec<String>),
    Table {
        head: Vec<String>,
        right: Vec<bool>,
        rows: Vec<Vec<String>>,
    },
    Figure {
        png: String,
        svg: String,
        caption: String,
    },
}

fn num(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "–".into()
    }
}

fn time(t: f64) -> String {
    SimTime(t).rfc3339()
}

fn duration(s: f64) -> String {
    super::verdict::human_duration(s)
}

fn table(head: &[&str], right: &[bool], rows: Vec<Vec<String>>) -> Block {
    Block::Table {
        head: head.iter().map(|s| s.to_string()).collect(),
        right: right.to_vec(),
        rows,
    }
}

/// A Markdown table (as `report::markdown` writes it) as a block; numeric columns right-aligned;
/// columns whose heading contains one of `drop` left out.
fn parse_table(md: &str, drop: &[&str]) -> Block {
    let cells = |l: &str| -> Vec<String> {
        l.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let mut lines = md.lines().filter(|l| l.starts_with('|'));
    let head = lines.next().map(cells).unwrap_or_default();
    let right = lines
        .next()
        .map(|l| cells(l).iter().map(|c| c.ends_with(':')).collect())
        .unwrap_or_default();
    let keep: Vec<bool> = head
        .iter()
        .map(|h| !drop.iter().any(|d| h.contains(d)))
        .collect();
    let pick = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c)
            .collect()
    };
    let pick_bool = |v: Vec<bool>| -> Vec<bool> {
        v.into_iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c)
            .collect()
    };
    Block::Table {
        head: pick(head.clone()),
        right: pick_bool(right),
        rows: lines.map(|l| pick(cells(l))).collect(),
    }
}

fn counts(m: &BTreeMap<String, usize>, total: usize) -> String {
    let mut v: Vec<(&String, &usize)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(k, n)| {
            format!(
                "`{k}` {n} ({:.0} %)",
                100.0 * **n as f64 / total.max(1) as f64
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn divergence_row(label: &str, d: &Divergence) -> Vec<String> {
    vec![
        label.to_string(),
        d.compared.to_string(),
        num(d.outside_band_pct, 1),
        num(d.differ_pct, 1),
        d.higher.to_string(),
        d.lower.to_string(),
        num(d.mean_delta, 2),
        num(d.mean_abs_delta, 2),
        if d.compared == 0 {
            "–".into()
        } else {
            d.max_abs_delta.to_string()
        },
    ]
}

fn timing_row(label: &str, t: &Timing) -> Vec<String> {
    let dir = match t.direction {
        super::Direction::Up => "up",
        super::Direction::Down => "down",
    };
    vec![
        label.to_string(),
        dir.into(),
        t.changes.to_string(),
        t.earlier.to_string(),
        t.same.to_string(),
        t.later.to_string(),
        t.already.to_string(),
        t.never.to_string(),
        num(t.lead_median_s, 0),
        num(t.lead_p90_s, 0),
        num(t.lag_median_s, 0),
        num(t.lag_p90_s, 0),
    ]
}

fn hours_row(label: &str, h: &ReplicaHours) -> Vec<String> {
    vec![
        label.to_string(),
        if h.hours > 0.0 {
            duration(h.hours * 3600.0)
        } else {
            "–".into()
        },
        num(h.ours_replica_h, 3),
        num(h.theirs_replica_h, 3),
        num(h.ours_gpu_h, 3),
        num(h.theirs_gpu_h, 3),
        num(h.ours_usd, 2),
        num(h.theirs_usd, 2),
    ]
}

/// "12 / 3" of the earlier and later up-moves of `t`.
fn earlier_later(t: &Timing) -> String {
    format!("{} / {}", t.earlier, t.later)
}

fn summary_row(o: &ObjectReport) -> Vec<String> {
    let (gh, slo) = match &o.replay {
        Some(r) => {
            let get = |label: &str, f: &dyn Fn(&report::Row) -> f64, d: usize| {
                r.rows
                    .iter()
                    .find(|row| row.policy == label)
                    .map_or("–".into(), |row| num(f(row), d))
            };
            (
                format!(
                    "{} / {}",
                    get(&r.ours, &|x| x.gpu_hours.mean, 3),
                    get(&r.hpa, &|x| x.gpu_hours.mean, 3)
                ),
                format!(
                    "{} / {}",
                    get(&r.ours, &|x| x.slo_attainment_pct.mean, 2),
                    get(&r.hpa, &|x| x.slo_attainment_pct.mean, 2)
                ),
            )
        }
        None => ("–".into(), "–".into()),
    };
    vec![
        format!("{}/{}", o.namespace, o.name),
        o.decisions.to_string(),
        time(o.window.0),
        time(o.window.1),
        o.verdict
            .as_ref()
            .map_or("–".into(), |v| outcome_words(v.outcome).to_string()),
        num(o.vs_hpa.outside_band_pct, 1),
        num(o.vs_recomputed.outside_band_pct, 1),
        earlier_later(&o.timing_recomputed[0]),
        format!(
            "{} / {}",
            num(o.hours_vs_recomputed.ours_replica_h, 3),
            num(o.hours_vs_recomputed.theirs_replica_h, 3)
        ),
        gh,
        slo,
    ]
}

const CANNOT_KNOW: [&str; 5] = [
    "**Arrivals.** The log holds the 1-minute arrival rate at each decision, not the requests. The replay draws Poisson arrivals at that rate (placed at the middle of its minute), so bursts shorter than a minute and the real request sizes are lost; the sizes come from the profile's distribution. The ± spread and the confidence intervals are the simulator's randomness across seeds (arrivals, request sizes, cold starts) for this one workload: they do not cover the error of the simulator or of the profile.",
    "**Demand vs completions.** With the controller's default queries the arrival rate is vLLM's completion rate (`vllm:request_success_total`): while the real fleet was saturated it understates the demand, and the replay inherits that. Point `arrivalRate1m` at a gateway's request counter to avoid it.",
    "**Profile.** The service profile is the operator's declared one (cold start, capacity per replica, price, SLO latency), laid over a shipped profile's throughput knee, cold-start phases and request sizes (see the assumptions). If the declared capacity or cold start is wrong, both policies' numbers move together: the comparison is sturdier than the absolute GPU-hours and SLO attainment.",
    "**The HPA.** The replayed HPA is rlscale's HPA law with its defaults (Pods metric `vllm:num_requests_running` at an average of 32 per pod, tolerance 0.1, 300 s scale-down stabilization) and the same bounds: the law behind `hpa_recomputed_replicas`, not the cluster's HPA object, whose metric, target and `behavior` the log does not hold. The divergence section shows how far the recomputed HPA was from the actual one.",
    "**Start and cluster.** The replay starts with the first decision's replicas all ready, never runs out of GPUs, and sees Prometheus without noise or delay; the real cluster may have had none of these.",
];

fn summary_table(r: &ShadowReport) -> Block {
    table(
        &[
            "object",
            "decisions",
            "from",
            "to",
            "verdict",
            "ours outside the band of the HPA (actual) %",
            "… of the HPA (recomputed) %",
            "scale-ups: ours earlier / later than recomputed HPA",
            "recommended replica-h: ours / recomputed HPA",
            "replay GPU-h: ours / HPA",
            "replay SLO %: ours / HPA",
        ],
        &[
            false, true, false, false, false, true, true, true, true, true, true,
        ],
        r.objects.iter().map(summary_row).collect(),
    )
}

/// "±1 replica / ±10 % band %": the divergence column's heading.
fn band_heading(d: &Divergence) -> String {
    format!(
        "outside ±{} replica(s) or ±{} % %",
        d.band_replicas, d.band_pct
    )
}

fn outcome_words(o: Outcome) -> &'static str {
    match o {
        Outcome::SwitchToActive => "switch to Active",
        Outcome::StayInShadow => "stay in Shadow",
        Outcome::NotEnoughData => "not enough data",
        Outcome::Undecided => "undecided",
    }
}

/// The verdict section: one headline, checks table and warnings per object.
fn verdict_blocks(r: &ShadowReport, b: &mut Vec<Block>) {
    b.push(Block::H(2, "Verdict".into()));
    for o in &r.objects {
        let Some(v) = &o.verdict else { continue };
        b.push(Block::P(format!(
            "**{}/{}: {}**",
            o.namespace, o.name, v.headline
        )));
        b.push(table(
            &["check", "result", "measured", "threshold"],
            &[false, false, false, false],
            v.checks
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        match c.passed {
                            Some(true) => "✓ pass".into(),
                            Some(false) => "✗ fail".into(),
                            None => "– not checked".into(),
                        },
                        c.measured.clone(),
                        c.threshold.clone(),
                    ]
                })
                .collect(),
        ));
        if !v.warnings.is_empty() {
            b.push(Block::List(
                v.warnings
                    .iter()
                    .map(|w| format!("**Warning.** {w}"))
                    .collect(),
            ));
        }
    }
    b.push(Block::P("Every threshold is a flag of `rlscale shadow-report` (`--help` lists them). Divergence counts a decision only when ours is outside the tolerance band around the HPA's recommendation.".into()));
}

fn blocks(r: &ShadowReport) -> Vec<Block> {
    let mut b = Vec::new();
    b.push(Block::H(1, "Shadow report".into()));
    let window = match (r.since, r.until) {
        (None, None) => "the whole log".to_string(),
        (s, u) => format!(
            "decisions from {} to {}",
            s.map_or("the start".into(), time),
            u.map_or("the end".into(), time)
        ),
    };
    b.push(Block::P(format!(
        "From `{}` ({} lines; {window}), {} object(s) in shadow mode. **Ours** is the controller's recommendation (`desired_replicas`); **HPA (actual)** is the `status.desiredReplicas` of the HPA the controller found for the same workload; **HPA (recomputed)** is rlscale's HPA law with its default settings on the same metrics. Times are UTC.",
        r.log.display(),
        r.lines,
        r.objects.len()
    )));
    verdict_blocks(r, &mut b);
    if !r.notes.is_empty() {
        b.push(Block::List(r.notes.clone()));
    }
    b.push(Block::H(2, "Summary".into()));
    b.push(summary_table(r));
    for o in &r.objects {
        object_blocks(o, &mut b);
    }
    b
}

fn object_blocks(o: &ObjectReport, b: &mut Vec<Block>) {
    let obj = format!("{}/{}", o.namespace, o.name);
    b.push(Block::H(2, obj.clone()));
    b.push(Block::P(format!(
        "{} shadow decisions (lines {}–{}) from {} to {} ({}), every {} s, bounds [{}, {}], model {}{}. Who decided: {}. Why: {}.{}",
        o.decisions,
        o.lines.0,
        o.lines.1,
        time(o.window.0),
        time(o.window.1),
        duration(o.window.1 - o.window.0),
        o.interval_s,
        o.bounds.0,
        o.bounds.1,
        o.model
            .as_deref()
            .map_or("none (the fallback law decides)".to_string(), |m| format!("`{m}`")),
        o.config_line
            .map_or(String::new(), |l| format!(" (config line {l})")),
        counts(&o.sources, o.decisions),
        counts(&o.reasons, o.decisions),
        if o.missing_metrics > 0 {
            format!(
                " {} decision(s) were made with a failed Prometheus query.",
                o.missing_metrics
            )
        } else {
            String::new()
        }
    )));
    if !o.notes.is_empty() {
        b.push(Block::List(o.notes.clone()));
    }
    let fig = |b: &mut Vec<Block>, suffix: &str, caption: String| {
        let png = o
            .plots
            .iter()
            .find(|p| p.to_string_lossy().ends_with(&format!("-{suffix}.png")));
        let svg = o
            .plots
            .iter()
            .find(|p| p.to_string_lossy().ends_with(&format!("-{suffix}.svg")));
        if let (Some(png), Some(svg)) = (png, svg) {
            b.push(Block::Figure {
                png: png.to_string_lossy().replace('\\', "/"),
                svg: svg.to_string_lossy().replace('\\', "/"),
                caption,
            });
        }
    };

    b.push(Block::H(3, "1. Divergence".into()));
    fig(
        b,
        "divergence",
        "Top: the observed arrival rate (1 minute). Bottom: the three recommendations at each decision, and the replicas the arrival rate needs at the declared capacity (dashed). Hours since the first decision; an unknown HPA value is skipped and the line holds its last value.".into(),
    );
    b.push(table(
        &[
            "ours compared with",
            "decisions compared",
            &band_heading(&o.vs_hpa),
            "differ at all %",
            "ours higher",
            "ours lower",
            "mean Δ (ours − HPA)",
            "mean |Δ|",
            "max |Δ|",
        ],
        &[false, true, true, true, true, true, true, true, true],
        vec![
            divergence_row("HPA (actual)", &o.vs_hpa),
            divergence_row("HPA (recomputed)", &o.vs_recomputed),
        ],
    ));

    b.push(Block::H(3, "2. Earlier or later".into()));
    b.push(Block::P("For each change of the HPA's recommendation, when did ours reach the same level (at least the new level on a scale-up, at most on a scale-down)? **Earlier**: ours got there first, by the lead in seconds (looking back no further than the HPA's last move the other way). **Same**: at the same decision. **Later**: ours followed, by the lag. **Already**: ours was at that level since before the HPA's last move the other way (a difference of level, not of timing). **Never**: ours did not get there before the HPA moved back or the log ended. Quantiles by nearest rank.".into()));
    b.push(table(
        &[
            "HPA",
            "moves",
            "HPA changes",
            "ours earlier",
            "same",
            "ours later",
            "already",
            "never",
            "median lead s",
            "p90 lead s",
            "median lag s",
            "p90 lag s",
        ],
        &[
            false, false, true, true, true, true, true, true, true, true, true, true,
        ],
        vec![
            timing_row("actual", &o.timing_hpa[0]),
            timing_row("actual", &o.timing_hpa[1]),
            timing_row("recomputed", &o.timing_recomputed[0]),
            timing_row("recomputed", &o.timing_recomputed[1]),
        ],
    ));
    b.push(Block::P("Replicas as recommended (not as run), each decision held until the next one, over the decisions where the HPA's value is known; GPU-hours and dollars from the logged profile.".into()));
    b.push(table(
        &[
            "ours compared with",
            "time covered",
            "ours replica-h",
            "HPA replica-h",
            "ours GPU-h",
            "HPA GPU-h",
            "ours $",
            "HPA $",
        ],
        &[false, true, true, true, true, true, true, true],
        vec![
            hours_row("HPA (actual)", &o.hours_vs_hpa),
            hours_row("HPA (recomputed)", &o.hours_vs_recomputed),
        ],
    ));

    b.push(Block::H(3, "3. Counterfactual replay".into()));
    let Some(r) = &o.replay else {
        b.push(Block::P(format!(
            "Not run: {}.",
            o.replay_skipped
                .as_deref()
                .unwrap_or("--no-replay was given")
        )));
        return;
    };
    b.push(Block::P(format!(
        "The observed arrival rates replayed in the simulator ({} steps of {} s) under **{}** (the runtime with the logged configuration{}) and **{}**, over {} seed(s) ({}); the same seed gives both policies the same requests. Mean ± sample standard deviation over seeds; ✗ marks a missed SLO target. The scenario is `{}`: `rlscale simulate --scenario {} --policy hpa --seed {}` replays the HPA's run.",
        r.steps,
        o.interval_s,
        r.ours,
        r.model
            .as_ref()
            .map_or(String::new(), |m| format!(" and `{}`", m.display())),
        r.hpa,
        r.seeds.len(),
        r.seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        r.scenario,
        r.scenario_file.to_string_lossy().replace('\\', "/"),
        r.seeds[0],
    )));
    // The gap to the oracle's bound means nothing to this reader (there is no oracle of a cluster).
    b.push(parse_table(&report::markdown(&r.rows), &["oracle"]));
    b.push(Block::P("Ours minus the HPA, paired by seed, with a 95 % confidence interval of the mean (Student's t over seeds):".into()));
    b.push(table(
        &["metric", "ours", "HPA", "ours − HPA", "95 % CI"],
        &[false, true, true, true, true],
        r.diffs
            .iter()
            .map(|d| {
                let digits = if d.metric.starts_with("SLO attainment") {
                    2
                } else if d.metric.starts_with("SLO violations") {
                    0
                } else {
                    3
                };
                vec![
                    d.metric.clone(),
                    num(d.ours_mean, digits),
                    num(d.hpa_mean, digits),
                    format!("{} ± {}", num(d.mean, digits), num(d.sd, digits)),
                    if d.ci95.0.is_finite() {
                        format!("{} to {}", num(d.ci95.0, digits), num(d.ci95.1, digits))
                    } else {
                        "– (one seed)".into()
                    },
                ]
            })
            .collect(),
    ));
    if let (Some(g), Some(s)) = (r.diffs.first(), r.diffs.get(2)) {
        let rel = if g.hpa_mean > 0.0 {
            format!("{:+.1} %, ", 100.0 * g.mean / g.hpa_mean)
        } else {
            String::new()
        };
        let ci = |d: &super::PairedDiff, digits: usize| {
            if d.ci95.0.is_finite() {
                format!(
                    "95 % CI {} to {}",
                    num(d.ci95.0, digits),
                    num(d.ci95.1, digits)
                )
            } else {
                "one seed: no interval".into()
            }
        };
        let apart = |d: &super::PairedDiff| d.ci95.0 > 0.0 || d.ci95.1 < 0.0;
        let verdict = match (apart(g), apart(s)) {
            (true, true) => "Both differences are larger than the seed-to-seed noise.",
            (true, false) => {
                "The GPU-hours differ beyond the seed-to-seed noise; the SLO attainment does not."
            }
            (false, true) => {
                "The SLO attainment differs beyond the seed-to-seed noise; the GPU-hours do not."
            }
            (false, false) => {
                "Neither difference is larger than the seed-to-seed noise: the replay cannot tell the two apart."
            }
        };
        b.push(Block::P(format!(
            "**In one sentence:** in this replay ours would have used {} GPU-hours against the HPA's {} ({rel}{}), at {} % SLO attainment against {} % ({:+.2} points, {}). {verdict}",
            num(g.ours_mean, 3),
            num(g.hpa_mean, 3),
            ci(g, 3),
            num(s.ours_mean, 2),
            num(s.hpa_mean, 2),
            s.mean,
            ci(s, 2),
        )));
    }
    fig(
        b,
        "replay",
        format!(
            "The replayed workload (top) and each policy's replica target (bottom), seed {}.",
            r.seeds[0]
        ),
    );
    fig(
        b,
        "replay-cost-vs-slo",
        "GPU cost against SLO attainment, one point per seed and policy: the spread across seeds."
            .into(),
    );
    b.push(Block::H(4, "What the replay assumes".into()));
    b.push(Block::List(r.assumptions.clone()));
    b.push(Block::H(4, "What the replay cannot know".into()));
    b.push(Block::List(
        CANNOT_KNOW.iter().map(|s| s.to_string()).collect(),
    ));
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The report as Markdown (plots as PNG images with a link to the SVG).
pub fn markdown(r: &ShadowReport) -> String {
    let mut out = String::new();
    for block in blocks(r) {
        md_block(&mut out, block);
    }
    out
}

/// The verdict and the summary table, as Markdown (what the command prints).
pub fn summary_markdown(r: &ShadowReport) -> String {
    let mut out = String::new();
    let mut b = Vec::new();
    verdict_blocks(r, &mut b);
    for block in b {
        md_block(&mut out, block);
    }
    md_block(&mut out, summary_table(r));
    out
}

fn md_block(out: &mut String, block: Block) {
    match block {
        Block::H(level, text) => {
            let _ = writeln!(out, "{} {text}\n", "#".repeat(usize::from(level)));
        }
        Block::P(text) => {
            let _ = writeln!(out, "{text}\n");
        }
        Block::List(items) => {
            for i in items {
                let _ = writeln!(out, "- {i}");
            }
            out.push('\n');
        }
        Block::Table { head, right, rows } => {
            let _ = writeln!(
                out,
                "| {} |",
                head.iter()
                    .map(|h| md_cell(h))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
            let _ = writeln!(
                out,
                "|{}|",
                (0..head.len())
                    .map(|i| if right.get(i).copied().unwrap_or(false) {
                        "---:"
                    } else {
                        "---"
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            );
            for row in rows {
                let _ = writeln!(
                    out,
                    "| {} |",
                    row.iter()
                        .map(|c| md_cell(c))
                        .collect::<Vec<_>>()
                        .join(" | ")
                );
            }
            out.push('\n');
        }
        Block::Figure { png, svg, caption } => {
            let _ = writeln!(out, "![{caption}]({png})\n\n{caption} ([SVG]({svg}))\n");
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Escape, then `code` and **bold** (markers must pair up; an odd one is left as written).
fn inline(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in escape(s).split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            for (j, p) in part.split("**").enumerate() {
                if j % 2 == 1 {
                    let _ = write!(out, "<strong>{p}</strong>");
                } else {
                    out.push_str(p);
                }
            }
        }
    }
    out
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1240px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:0.25em 0.6em}
th{background:#f3f3f3}
td.r,th.r{text-align:right}
code{background:#f3f3f3;padding:0 0.2em;border-radius:3px}
figure{margin:1em 0}
figure svg{max-width:100%;height:auto}
figcaption{color:#555;font-size:0.9em}";

/// The report as one HTML page; the SVG plots (read from `dir`, the report folder) are inlined.
pub fn html(r: &ShadowReport, dir: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Shadow report: {}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>",
        escape(&r.log.display().to_string())
    );
    for block in blocks(r) {
        match block {
            Block::H(level, text) => {
                let _ = writeln!(out, "<h{level}>{}</h{level}>", inline(&text));
            }
            Block::P(text) => {
                let _ = writeln!(out, "<p>{}</p>", inline(&text));
            }
            Block::List(items) => {
                out.push_str("<ul>\n");
                for i in items {
                    let _ = writeln!(out, "<li>{}</li>", inline(&i));
                }
                out.push_str("</ul>\n");
            }
            Block::Table { head, right, rows } => {
                let class = |i: usize| {
                    if right.get(i).copied().unwrap_or(false) {
                        " class=\"r\""
                    } else {
                        ""
                    }
                };
                out.push_str("<table>\n<thead><tr>");
                for (i, h) in head.iter().enumerate() {
                    let _ = write!(out, "<th{}>{}</th>", class(i), inline(h));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for row in rows {
                    out.push_str("<tr>");
                    for (i, c) in row.iter().enumerate() {
                        let _ = write!(out, "<td{}>{}</td>", class(i), inline(c));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table>\n");
            }
            Block::Figure { svg, caption, .. } => {
                out.push_str("<figure>\n");
                match std::fs::read_to_string(dir.join(&svg)) {
                    Ok(text) => {
                        // Drop an XML declaration or doctype before the element.
                        let start = text.find("<svg").unwrap_or(0);
                        out.push_str(text[start..].trim_end());
                        out.push('\n');
                    }
                    Err(_) => {
                        let _ = writeln!(out, "<p>(plot {} missing)</p>", escape(&svg));
                    }
                }
                let _ = writeln!(
                    out,
                    "<figcaption>{}</figcaption>\n</figure>",
                    inline(&caption)
                );
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markup_is_escaped_then_formatted() {
        assert_eq!(
            inline("a <b> & `x<y>` **bold**"),
            "a &lt;b&gt; &amp; <code>x&lt;y&gt;</code> <strong>bold</strong>"
        );
        assert_eq!(md_cell("a|b"), "a\\|b");
    }

    #[test]
    fn evaluate_tables_parse_into_blocks() {
        let md = "| a | b |\n|---|---:|\n| x | 1 |\n| y | 2 |\n";
        match parse_table(md, &[]) {
            Block::Table { head, right, rows } => {
                assert_eq!(head, vec!["a", "b"]);
                assert_eq!(right, vec![false, true]);
                assert_eq!(rows, vec![vec!["x", "1"], vec!["y", "2"]]);
            }
            _ => panic!("not a table"),
        }
        match parse_table(md, &["b"]) {
            Block::Table { head, right, rows } => {
                assert_eq!(head, vec!["a"]);
                assert_eq!(right, vec![false]);
                assert_eq!(rows, vec![vec!["x"], vec!["y"]]);
            }
            _ => panic!("not a table"),
        }
    }

    #[test]
    fn durations_pick_a_unit() {
        assert_eq!(duration(45.0), "45 s");
        assert_eq!(duration(600.0), "10.0 min");
        assert_eq!(duration(36_000.0), "10.0 h");
        assert_eq!(duration(3.0 * 86_400.0), "3.0 days");
    }
}

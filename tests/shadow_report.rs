//! `rlscale shadow-report` on a decision log recorded from the controller in shadow mode
//! (`tests/data/shadow-decisions.jsonl`; `tests/data/README.md` says how it was made): the report's
//! files, its numbers against the log, valid plots, a reproducible replay, and bad input.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{rlscale, tempdir, text};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/shadow-decisions.jsonl")
}

fn report(out: &Path, extra: &[&str]) -> (String, String) {
    let log = fixture();
    let mut args = vec![
        "shadow-report",
        "--log",
        log.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = rlscale(&args);
    let (stdout, stderr) = text(&o);
    assert!(
        o.status.success(),
        "{args:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    (stdout, stderr)
}

/// Per object (`namespace/name`): the decision lines of the fixture, as JSON.
fn decisions() -> Vec<(String, Vec<Value>)> {
    let text = std::fs::read_to_string(fixture()).unwrap();
    let mut by: Vec<(String, Vec<Value>)> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["kind"] != "decision" || v["mode"] != "Shadow" {
            continue;
        }
        let key = format!(
            "{}/{}",
            v["namespace"].as_str().unwrap(),
            v["name"].as_str().unwrap()
        );
        match by.iter_mut().find(|(k, _)| *k == key) {
            Some((_, ds)) => ds.push(v),
            None => by.push((key, vec![v])),
        }
    }
    by.sort_by(|a, b| a.0.cmp(&b.0));
    by
}

/// `(compared, outside the ±1 replica / ±10 % band %, differ at all %)` of `desired_replicas`
/// against `field`, as the report formats them.
fn divergence(ds: &[Value], field: &str) -> (usize, String, String) {
    let known: Vec<(f64, f64)> = ds
        .iter()
        .filter(|d| d[field].is_u64())
        .map(|d| {
            (
                d["desired_replicas"].as_f64().unwrap(),
                d[field].as_f64().unwrap(),
            )
        })
        .collect();
    let pct = |n: usize| {
        if known.is_empty() {
            "–".to_string()
        } else {
            format!("{:.1}", 100.0 * n as f64 / known.len() as f64)
        }
    };
    let differ = known.iter().filter(|(o, t)| o != t).count();
    let outside = known
        .iter()
        .filter(|(o, t)| (o - t).abs() > 1.0 && (o - t).abs() > 0.1 * t)
        .count();
    (known.len(), pct(outside), pct(differ))
}

/// The Markdown section of `object` (from its `## ` heading to the next one).
fn section<'a>(md: &'a str, object: &str) -> &'a str {
    let start = md
        .find(&format!("\n## {object}\n"))
        .unwrap_or_else(|| panic!("no section for {object}:\n{md}"));
    let rest = &md[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 4);
    &rest[..end]
}

fn assert_png(path: &Path) {
    let b = std::fs::read(path).unwrap();
    assert!(
        b.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&b[12..16], b"IHDR", "{}", path.display());
    let w = u32::from_be_bytes(b[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(b[20..24].try_into().unwrap());
    assert!(w >= 600 && h >= 300, "{}: {w}x{h}", path.display());
    assert!(
        b.len() > 10_000,
        "{}: {} bytes, nothing drawn?",
        path.display(),
        b.len()
    );
}

fn assert_svg(path: &Path) {
    let s = std::fs::read_to_string(path).unwrap();
    let t = s.trim();
    let start = t
        .find("<svg")
        .unwrap_or_else(|| panic!("{}: no <svg", path.display()));
    assert!(
        t[..start].trim().is_empty() || t.starts_with("<?xml"),
        "{}",
        path.display()
    );
    assert!(t.ends_with("</svg>"), "{}", path.display());
    assert!(
        t.contains("xmlns=\"http://www.w3.org/2000/svg\""),
        "{}",
        path.display()
    );
    // Every element it opens it closes: the counts of `<name` and `</name>` or `/>` balance.
    let opens = t.matches('<').count() - t.matches("</").count() - t.matches("<?").count();
    let closes = t.matches("</").count() + t.matches("/>").count();
    assert_eq!(opens, closes, "{}: unbalanced tags", path.display());
}

#[test]
fn the_report_on_a_recorded_shadow_log() {
    let out = tempdir("shadow-report");
    let started = std::time::Instant::now();
    let (stdout, _) = report(&out, &["--model", "models/default.json", "--seeds", "3"]);
    let wall = started.elapsed().as_secs_f64();
    for f in ["report.md", "report.html", "report.json"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let by = decisions();
    assert!(by.len() >= 2, "the fixture has two objects");
    assert_eq!(json["objects"].as_array().unwrap().len(), by.len());

    for (k, (object, ds)) in by.iter().enumerate() {
        // The summary row: the object and its count of shadow decisions (also printed on stdout).
        let row = format!("| {object} | {} |", ds.len());
        assert!(md.contains(&row), "no `{row}` in\n{md}");
        assert!(stdout.contains(&row), "{stdout}");
        // The divergence table, recomputed from the log.
        let sec = section(&md, object);
        for (label, field) in [
            ("HPA (actual)", "hpa_desired_replicas"),
            ("HPA (recomputed)", "hpa_recomputed_replicas"),
        ] {
            let (n, band, pct) = divergence(ds, field);
            let want = format!("| {label} | {n} | {band} | {pct} |");
            assert!(sec.contains(&want), "no `{want}` in\n{sec}");
        }
        let o = &json["objects"][k];
        assert_eq!(o["decisions"], ds.len());
        // A 3-minute log: the verdict says so, in minutes, on stdout and first in the report.
        assert_eq!(
            o["verdict"]["outcome"], "not_enough_data",
            "{}",
            o["verdict"]
        );
        let headline = format!("**{object}: not enough data to decide: the log covers 3.");
        assert!(stdout.contains(&headline), "no `{headline}` in\n{stdout}");
        assert!(md.find(&headline).unwrap() < md.find("## Summary").unwrap());
        assert!(
            headline.len() < 200 && md.contains(" min (needs 24.0 h)"),
            "{md}"
        );
        let first = ds.first().unwrap()["time"].as_f64().unwrap();
        assert_eq!(o["window"][0].as_f64().unwrap(), first);

        // The replay: finite numbers, GPU-hours > 0, both policies on every seed.
        let runs = o["replay"]["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 2 * 3);
        for r in runs {
            let s = &r["summary"];
            let gh = s["gpu_hours"].as_f64().unwrap();
            assert!(gh.is_finite() && gh > 0.0, "{s}");
            assert!(s["cost_usd"].as_f64().unwrap() > 0.0, "{s}");
            let slo = s["slo_attainment_pct"].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&slo), "{s}");
            assert!(s["arrivals"].as_u64().unwrap() > 0, "{s}");
        }
        for d in o["replay"]["diffs"].as_array().unwrap() {
            assert!(d["mean"].as_f64().unwrap().is_finite(), "{d}");
            assert!(d["ci95"][0].as_f64().unwrap().is_finite(), "{d}");
        }
        assert!(sec.contains("What the replay cannot know"), "{sec}");
        assert!(
            !sec.contains("oracle"),
            "no gap to an oracle bound here:\n{sec}"
        );
        assert!(sec.contains("95 % CI"), "{sec}");

        // The plots exist and are valid images; the HTML inlines the SVGs.
        let plots = o["plots"].as_array().unwrap();
        assert_eq!(plots.len(), 6, "{plots:?}");
        for p in plots {
            let p = out.join(p.as_str().unwrap());
            match p.extension().and_then(|e| e.to_str()) {
                Some("png") => assert_png(&p),
                Some("svg") => assert_svg(&p),
                other => panic!("{other:?}"),
            }
        }
        // The replayed scenario is on disk.
        let sc = out.join(o["replay"]["scenario_file"].as_str().unwrap());
        assert!(sc.is_file(), "{}", sc.display());
        assert!(sc.with_file_name("workload.csv").is_file());
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert_eq!(
        html.matches("<svg").count(),
        3 * by.len(),
        "every plot inlined"
    );
    assert!(!html.contains("<img"), "self-contained");
    assert!(!md.contains("NaN") && !html.contains("NaN"));

    // The same seeds give the same numbers.
    let again = tempdir("shadow-report-again");
    report(&again, &["--model", "models/default.json", "--seeds", "3"]);
    let json2: Value =
        serde_json::from_str(&std::fs::read_to_string(again.join("report.json")).unwrap()).unwrap();
    for k in 0..by.len() {
        assert_eq!(
            json["objects"][k]["replay"]["runs"], json2["objects"][k]["replay"]["runs"],
            "same seeds, different numbers"
        );
    }
    eprintln!("shadow-report on the fixture: {wall:.1} s");
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&again);
}

#[test]
fn the_verdict_thresholds_are_flags() {
    // With the coverage lowered to what the fixture holds, the log is enough; its replay misses the
    // SLO for both policies (the fake server ran 15× faster than the controller's clock), so the
    // verdict is "undecided" with the warning, not "switch".
    let out = tempdir("shadow-report-verdict");
    let (stdout, _) = report(
        &out,
        &[
            "--model",
            "models/default.json",
            "--seeds",
            "2",
            "--object",
            "default/web",
            "--min-coverage",
            "2m",
            "--min-traffic-range",
            "1",
        ],
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let v = &json["objects"][0]["verdict"];
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks[0]["name"], "enough data");
    assert_eq!(checks[0]["passed"], true, "{v}");
    let slo = checks
        .iter()
        .find(|c| c["name"] == "SLO in the replay")
        .unwrap();
    assert_eq!(slo["passed"], false, "{v}");
    assert_eq!(v["outcome"], "undecided", "{v}");
    assert!(stdout.contains("it is not credible"), "{stdout}");
    assert!(
        stdout.contains("at least 2.0 min and a range of at least 1.00×"),
        "{stdout}"
    );
    // A threshold out of its range is refused with the flag and the value.
    let o = rlscale(&[
        "shadow-report",
        "--log",
        fixture().to_str().unwrap(),
        "--no-replay",
        "--max-fallback-pct",
        "-3",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--max-fallback-pct -3"), "{stderr}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_model_that_is_not_on_this_machine_is_asked_for() {
    // The fixture names /models/default.json, the path inside a controller's container.
    let out = tempdir("shadow-report-nomodel");
    let log = fixture();
    let o = rlscale(&[
        "shadow-report",
        "--log",
        log.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "/models/default.json named in the log (line 1) does not exist on this machine"
        ) && stderr.contains("--model PATH"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Without the replay the rest of the report stands.
    let (_, stderr) = report(&out, &["--no-replay", "--object", "default/web"]);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("Not run: --no-replay was given."),
        "{md}\n{stderr}"
    );
    assert!(!md.contains("default/web-cautious"), "--object");
    let _ = std::fs::remove_dir_all(&out);
}

fn assert_exit_2(log: &Path, extra: &[&str], wants: &[&str]) {
    let out = tempdir("shadow-report-bad");
    let mut args = vec![
        "shadow-report",
        "--log",
        log.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-replay",
    ];
    args.extend_from_slice(extra);
    let o = rlscale(&args);
    let (stdout, stderr) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{args:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for w in wants {
        assert!(
            stderr.contains(w),
            "{args:?}: stderr should contain `{w}`:\n{stderr}"
        );
    }
    assert!(!out.join("report.md").exists(), "no report from bad input");
    let _ = std::fs::remove_dir_all(&out);
}

/// The fixture with line `n` (1-based) changed by `f`.
fn edited(name: &str, n: usize, f: impl Fn(&str) -> String) -> PathBuf {
    let text = std::fs::read_to_string(fixture()).unwrap();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| if i + 1 == n { f(l) } else { l.to_string() })
        .collect();
    let path = tempdir("shadow-report-edit").join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn bad_input_exits_2_naming_the_line_and_field() {
    // A truncated line (a controller killed mid-write, then restarted).
    let p = edited("truncated.jsonl", 10, |l| l[..l.len() / 2].to_string());
    assert_exit_2(
        &p,
        &[],
        &[
            "truncated.jsonl:10: the line ends before its JSON object does",
            "truncated?",
        ],
    );
    // A wrong type.
    let p = edited("types.jsonl", 20, |l| {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["kind"], "decision");
        l.replacen(
            &format!("\"desired_replicas\":{}", v["desired_replicas"]),
            "\"desired_replicas\":\"many\"",
            1,
        )
    });
    assert_exit_2(
        &p,
        &[],
        &["types.jsonl:20: field `desired_replicas`: invalid type: string \"many\", expected u32"],
    );
    let p = edited("snapshot.jsonl", 30, |l| {
        l.replacen("\"ready_replicas\":", "\"ready_replicas\":-", 1)
    });
    assert_exit_2(
        &p,
        &[],
        &["snapshot.jsonl:30: field `snapshot.ready_replicas`: invalid value: integer"],
    );
    // Empty, missing, or nothing in the window.
    let empty = tempdir("shadow-report-empty").join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    assert_exit_2(&empty, &[], &["empty.jsonl: the log is empty"]);
    assert_exit_2(
        Path::new("/nonexistent/decisions.jsonl"),
        &[],
        &["cannot read"],
    );
    let log = fixture();
    assert_exit_2(
        &log,
        &["--since", "2100-01-01T00:00:00Z"],
        &[
            "no shadow-mode decisions between 2100-01-01T00:00:00Z and the end",
            "default/web:",
        ],
    );
    assert_exit_2(
        &log,
        &["--until", "last tuesday"],
        &["--until: `last tuesday` is neither"],
    );
    assert_exit_2(
        &log,
        &["--object", "default/nope"],
        &["--object default/nope: no such object"],
    );
}

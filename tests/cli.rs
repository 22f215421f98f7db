//! The command line as users run it: help, listing, `simulate` on every scenario, output files, and clear
//! errors with exit code 2 for bad input (never a panic).

use crate::util::{needs_user_trace, rlscale, scenario_ids, stand_in_trace, tempdir, text};

fn assert_bad_input(args: &[&str], wants: &[&str]) {
    let out = rlscale(args);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?} should exit 2\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    for w in wants {
        assert!(
            stderr.contains(w),
            "{args:?}: stderr should contain `{w}`:\n{stderr}"
        );
    }
}

#[test]
fn help_names_the_subcommands_and_flags() {
    let (stdout, _) = text(&rlscale(&["--help"]));
    for w in ["scenarios", "simulate", "bench", "evaluate", "tune"] {
        assert!(stdout.contains(w), "{stdout}");
    }
    let (stdout, _) = text(&rlscale(&["simulate", "--help"]));
    for w in [
        "--scenario",
        "--policy",
        "--seed",
        "--out",
        "--trace",
        "static:N",
    ] {
        assert!(stdout.contains(w), "simulate --help lacks {w}:\n{stdout}");
    }
}

#[test]
fn scenarios_lists_every_file_with_its_profile() {
    let out = rlscale(&["scenarios"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for id in scenario_ids() {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("{id} missing"));
        assert!(
            line.contains("llm-8b-l4") || line.contains("llm-70b-h100x2"),
            "{line}"
        );
    }
}

#[test]
fn simulate_runs_on_every_scenario() {
    let trace = stand_in_trace();
    for id in scenario_ids() {
        let mut args = vec![
            "simulate",
            "--scenario",
            id.as_str(),
            "--steps",
            "240",
            "--json",
        ];
        let trace_s = trace.display().to_string();
        if needs_user_trace(&id) {
            assert_bad_input(&args, &["--trace PATH", "get it from"]);
            args.extend(["--trace", trace_s.as_str()]);
        }
        let out = rlscale(&args);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{id}: {stderr}");
        if needs_user_trace(&id) {
            // The scenario's own multiplier is said, never silently applied.
            assert!(
                stderr.contains(&format!("{id}: the rates of "))
                    && stderr.contains("are played ×")
                    && stderr.contains("arrivals.rate_scale = "),
                "{id}: {stderr}"
            );
        }
        let s: serde_json::Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{id}: {e}: {stdout}"));
        assert_eq!(s["scenario"], id.as_str());
        assert_eq!(s["steps"], 240);
        assert!(
            s["arrivals"].as_u64().unwrap() > 0,
            "{id}: no arrivals in an hour: {s}"
        );
        assert!(
            s["gpu_hours"].as_f64().unwrap() > 0.0 || id.starts_with("sparse"),
            "{id}: {s}"
        );
        let att = s["slo_attainment_pct"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&att), "{id}: {att}");
        // The objective the evaluation ranks by: cost + penalty × violations.
        let want = s["cost_usd"].as_f64().unwrap()
            + s["penalty_usd_per_violation"].as_f64().unwrap()
                * s["slo_violations"].as_f64().unwrap();
        let got = s["objective_usd"].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-9 * want.max(1.0),
            "{id}: {got} vs {want}"
        );
    }
}

#[test]
fn out_writes_a_timeline_and_a_summary_that_agree() {
    let dir = tempdir("simulate-out");
    let d = dir.display().to_string();
    let out = rlscale(&[
        "simulate",
        "--scenario",
        "flash-crowd-8b-l4-v1",
        "--policy",
        "static:30",
        "--seed",
        "5",
        "--steps",
        "400",
        "--out",
        &d,
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("GPU-hours") && stdout.contains("SLO attainment") && stdout.contains("p99"),
        "{stdout}"
    );
    let timeline = std::fs::read_to_string(dir.join("timeline.csv")).unwrap();
    let lines: Vec<&str> = timeline.lines().collect();
    assert_eq!(lines.len(), 401, "header + one row per step");
    assert!(lines[0].starts_with("step,t_s,"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    // The timeline's per-step columns add up to the summary's totals.
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let sum = |name: &str| -> f64 {
        lines[1..]
            .iter()
            .map(|l| l.split(',').nth(col(name)).unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!(
        sum("arrivals") as u64,
        summary["arrivals"].as_u64().unwrap()
    );
    assert_eq!(sum("dropped") as u64, summary["dropped"].as_u64().unwrap());
    assert_eq!(
        sum("slo_violations") as u64,
        summary["slo_violations"].as_u64().unwrap()
    );
    let cost = summary["cost_usd"].as_f64().unwrap();
    assert!((sum("cost_usd") - cost).abs() < 1e-3 * cost.max(1.0));
    // static:30 for 100 minutes on one L4 each: 30 × 100/60 GPU-hours.
    assert!(
        (summary["gpu_hours"].as_f64().unwrap() - 50.0).abs() < 1e-6,
        "{summary}"
    );
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn same_seed_same_summary_different_seed_different_summary() {
    let run = |seed: &str| {
        text(&rlscale(&[
            "simulate",
            "--scenario",
            "bursty-70b-h100x2-v1",
            "--seed",
            seed,
            "--steps",
            "200",
            "--json",
        ]))
        .0
    };
    let a = run("9");
    assert_eq!(a, run("9"));
    assert_ne!(a, run("10"));
}

#[test]
fn bad_input_is_a_clear_error_with_exit_code_2() {
    // Issue 21: a rate the simulator cannot hold in memory is refused before anything is allocated,
    // and no temporary file is left behind (it used to grow ~200 MB/s until the allocator aborted).
    let out_dir = tempdir("huge-rate");
    let out_s = out_dir.display().to_string();
    assert_bad_input(
        &[
            "simulate",
            "--scenario",
            "diurnal-8b-l4-v1",
            "--rate-scale",
            "1e6",
            "--steps",
            "4",
            "--out",
            &out_s,
        ],
        &["--rate-scale", "at most 10000 req/s"],
    );
    let left: Vec<_> = std::fs::read_dir(&out_dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    assert_bad_input(
        &["simulate", "--scenario", "diurnal-8b-l4"],
        &[
            "no scenario `diurnal-8b-l4`",
            "did you mean",
            "diurnal-8b-l4-v1",
        ],
    );
    assert_bad_input(
        &[
            "simulate",
            "--scenario",
            "steady-8b-l4-v1",
            "--policy",
            "hpa2",
        ],
        &["unknown policy `hpa2`"],
    );
    assert_bad_input(
        &[
            "simulate",
            "--scenario",
            "steady-8b-l4-v1",
            "--policy",
            "static:500",
        ],
        &["static:500", "[1, 40]"],
    );
    assert_bad_input(
        &["simulate", "--scenario", "steady-8b-l4-v1", "--steps", "0"],
        &["--steps"],
    );
    assert_bad_input(
        &[
            "evaluate",
            "--scenarios",
            "steady-8b-l4-v1",
            "--seed-base",
            "18446744073709551615",
            "--seeds",
            "2",
        ],
        &["--seed-base 18446744073709551615", "--seeds 2"],
    );
    assert_bad_input(
        &[
            "evaluate",
            "--scenarios",
            "steady-8b-l4-v1",
            "--policies",
            "hpa,hpa",
        ],
        &["`hpa` is listed twice"],
    );

    let dir = tempdir("bad-input");
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    let envs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("envs");
    let p = "llm-8b-l4.toml";
    std::fs::copy(envs.join("profiles").join(p), dir.join("profiles").join(p)).unwrap();
    let good = std::fs::read_to_string(envs.join("steady-8b-l4-v1.toml")).unwrap();

    // An unknown field names the file and the field.
    let f = dir.join("typo-v1.toml");
    std::fs::write(
        &f,
        good.replace(
            "id = \"steady-8b-l4-v1\"",
            "id = \"typo-v1\"\nmax_episode_step = 3",
        ),
    )
    .unwrap();
    assert_bad_input(
        &["simulate", "--scenario", &f.display().to_string()],
        &["typo-v1.toml", "max_episode_step"],
    );

    // A bad value names the file, the field and the value.
    let f = dir.join("bounds-v1.toml");
    let text_ = good
        .replace("id = \"steady-8b-l4-v1\"", "id = \"bounds-v1\"")
        .replacen("initial = ", "initial = 9999 #", 1);
    std::fs::write(&f, text_).unwrap();
    assert_bad_input(
        &["simulate", "--scenario", &f.display().to_string()],
        &["bounds-v1.toml", "replicas.initial", "9999"],
    );

    // A malformed trace names the file, line and field.
    let csv = dir.join("broken.csv");
    std::fs::write(&csv, "t_s,rps\n0,1\n10,2\n20,oops\n").unwrap();
    assert_bad_input(
        &[
            "simulate",
            "--scenario",
            "servegen-reason-8b-l4-v1",
            "--trace",
            &csv.display().to_string(),
        ],
        &["broken.csv:4", "field `rps`", "`oops` is not a number"],
    );
    // A missing trace file names the path.
    assert_bad_input(
        &[
            "simulate",
            "--scenario",
            "nasa-http-8b-l4-v1",
            "--trace",
            "/nonexistent/nasa.csv",
        ],
        &["/nonexistent/nasa.csv"],
    );
    // An unknown profile lists those that exist.
    let f = dir.join("prof-v1.toml");
    std::fs::write(
        &f,
        good.replace("id = \"steady-8b-l4-v1\"", "id = \"prof-v1\"")
            .replace("profile = \"llm-8b-l4\"", "profile = \"llm-9b\""),
    )
    .unwrap();
    assert_bad_input(
        &["simulate", "--scenario", &f.display().to_string()],
        &["prof-v1.toml", "profile", "llm-9b", "llm-8b-l4"],
    );
}

#[test]
fn evaluate_writes_table_csv_json_and_plots() {
    let dir = tempdir("evaluate");
    let out = dir.join("out");
    let o = out.display().to_string();
    let run = rlscale(&[
        "evaluate",
        "--policies",
        "hpa,kpa,static:20,oracle",
        "--scenarios",
        "steady-8b-l4-v1,flash-crowd-*",
        "--seeds",
        "2",
        "--steps",
        "120",
        "--out",
        &o,
    ]);
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stderr}");
    // The table: a header and 3 scenarios × 4 policies.
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 1 + 3 * 4, "{stdout}");
    assert!(rows[0].contains("gap to oracle bound %"), "{stdout}");
    for sc in [
        "steady-8b-l4-v1",
        "flash-crowd-8b-l4-v1",
        "flash-crowd-70b-h100x2-v1",
    ] {
        for p in ["hpa", "kpa", "static:20", "oracle"] {
            assert!(
                rows.iter()
                    .any(|r| r.starts_with(&format!("| {sc} | {p} |"))),
                "no row {sc}/{p}:\n{stdout}"
            );
        }
    }
    // CSV: one line per episode plus the header; the summary CSV one per row.
    let runs = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    assert_eq!(runs.lines().count(), 1 + 3 * 4 * 2);
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 1 + 3 * 4);
    assert_eq!(
        std::fs::read_to_string(out.join("summary.md")).unwrap(),
        stdout
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 24);
    assert_eq!(json["rows"].as_array().unwrap().len(), 12);
    // Every objective is at or above the oracle's bound.
    for r in json["runs"].as_array().unwrap() {
        let (obj, bound) = (
            r["objective_usd"].as_f64().unwrap(),
            r["bound"]["objective_usd"].as_f64().unwrap(),
        );
        assert!(obj >= bound && bound > 0.0, "{r}");
    }
    // Plots: a timeline and a scatter per scenario, PNG and SVG.
    for sc in ["steady-8b-l4-v1", "flash-crowd-70b-h100x2-v1"] {
        for kind in ["timeline", "cost-vs-slo"] {
            let png = std::fs::read(out.join(format!("plots/{sc}-{kind}.png"))).unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
            let svg = std::fs::read_to_string(out.join(format!("plots/{sc}-{kind}.svg"))).unwrap();
            assert!(
                svg.contains("<svg") && svg.contains("oracle"),
                "{sc} {kind}"
            );
        }
    }
    // Same seeds, same numbers.
    let o2 = dir.join("again").display().to_string();
    let again = rlscale(&[
        "evaluate",
        "--policies",
        "hpa,kpa,static:20,oracle",
        "--scenarios",
        "steady-8b-l4-v1,flash-crowd-*",
        "--seeds",
        "2",
        "--steps",
        "120",
        "--no-plots",
        "--out",
        &o2,
    ]);
    assert_eq!(text(&again).0, stdout);
}

#[test]
fn tune_writes_a_named_baseline_that_evaluate_uses() {
    let dir = tempdir("tune");
    let configs = dir.join("configs");
    let c = configs.display().to_string();
    let run = rlscale(&[
        "tune",
        "--baseline",
        "kpa",
        "--scenarios",
        "steady-8b-l4-v1",
        "--steps",
        "160",
        "--grid",
        "10,40,100",
        "--score-seeds",
        "201",
        "--configs",
        &c,
    ]);
    let (_, stderr) = text(&run);
    assert!(run.status.success(), "{stderr}");
    let toml_text = std::fs::read_to_string(configs.join("kpa-tuned.toml")).unwrap();
    let file: toml::Value = toml::from_str(&toml_text).unwrap();
    assert_eq!(file["base"]["law"].as_str(), Some("kpa"));
    assert_eq!(file["knob"].as_str(), Some("kpa.target"));
    let entry = &file["scenarios"]["steady-8b-l4-v1"];
    let value = entry["value"].as_float().unwrap();
    assert!([10.0, 40.0, 100.0].contains(&value), "{toml_text}");
    assert_eq!(entry["grid"].as_array().unwrap().len(), 3);
    // The scoring window starts half an episode later.
    assert!(entry["score_window"]["offset_s"].as_float().unwrap() > 0.0);
    // The chosen value is the cheapest feasible one on the training window.
    let grid = entry["grid"].as_array().unwrap();
    let feasible: Vec<&toml::Value> = grid
        .iter()
        .filter(|g| g["feasible"].as_bool().unwrap())
        .collect();
    let key = if feasible.is_empty() {
        "slo_attainment_pct"
    } else {
        "cost_usd"
    };
    let pool: Vec<&toml::Value> = if feasible.is_empty() {
        grid.iter().collect()
    } else {
        feasible
    };
    let f = |g: &&toml::Value| g[key].as_float().unwrap();
    // The cheapest feasible value, else the one with the best attainment.
    let best = if key == "cost_usd" {
        pool.iter().min_by(|a, b| f(a).total_cmp(&f(b)))
    } else {
        pool.iter().max_by(|a, b| f(a).total_cmp(&f(b)))
    };
    assert_eq!(
        best.unwrap()["value"].as_float(),
        Some(value),
        "{toml_text}"
    );
    assert_eq!(
        entry["feasible"].as_bool(),
        Some(key == "cost_usd"),
        "{toml_text}"
    );

    // Tuning again starts from the file's own base, edited by hand: a slow stable window changes
    // every grid point's cost, and the edit is kept.
    let edited = toml_text.replace("stable_window_s = 60.0", "stable_window_s = 600.0");
    assert_ne!(edited, toml_text);
    std::fs::write(configs.join("kpa-tuned.toml"), &edited).unwrap();
    let rerun = rlscale(&[
        "tune",
        "--baseline",
        "kpa",
        "--scenario",
        "steady-8b-l4-v1",
        "--steps",
        "160",
        "--grid",
        "10,40,100",
        "--score-seeds",
        "201",
        "--configs",
        &c,
    ]);
    assert!(rerun.status.success(), "{}", text(&rerun).1);
    let text2 = std::fs::read_to_string(configs.join("kpa-tuned.toml")).unwrap();
    let file2: toml::Value = toml::from_str(&text2).unwrap();
    assert_eq!(file2["base"]["stable_window_s"].as_float(), Some(600.0));
    let costs = |v: &toml::Value| -> Vec<f64> {
        v["scenarios"]["steady-8b-l4-v1"]["grid"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["cost_usd"].as_float().unwrap())
            .collect()
    };
    assert_ne!(costs(&file), costs(&file2), "tuned with the edited base");

    let out = dir.join("out").display().to_string();
    let ev = rlscale(&[
        "evaluate",
        "--policies",
        "kpa-tuned",
        "--scenarios",
        "steady-8b-l4-v1",
        "--seeds",
        "1",
        "--steps",
        "60",
        "--no-plots",
        "--configs",
        &c,
        "--out",
        &out,
    ]);
    let (stdout, stderr) = text(&ev);
    assert!(ev.status.success(), "{stderr}");
    assert!(
        stdout.contains("| steady-8b-l4-v1 | kpa-tuned |"),
        "{stdout}"
    );
    // A scenario the file has no value for is a clear error.
    assert_bad_input(
        &[
            "evaluate",
            "--policies",
            "kpa-tuned",
            "--scenarios",
            "bursty-8b-l4-v1",
            "--steps",
            "60",
            "--configs",
            &c,
            "--out",
            &out,
        ],
        &[
            "kpa-tuned.toml",
            "bursty-8b-l4-v1",
            "rlscale tune --baseline kpa",
        ],
    );
    // A corrupt tuned file names the file and the field.
    std::fs::write(
        configs.join("broken-tuned.toml"),
        toml_text.replace("law = \"kpa\"", "law = \"kpa\"\ntargt = 3"),
    )
    .unwrap();
    assert_bad_input(
        &[
            "evaluate",
            "--policies",
            "broken-tuned",
            "--scenarios",
            "steady-8b-l4-v1",
            "--configs",
            &c,
        ],
        &["broken-tuned.toml", "targt"],
    );
}

#[test]
fn evaluate_and_tune_refuse_bad_input() {
    assert_bad_input(
        &[
            "evaluate",
            "--policies",
            "hpa,nope",
            "--scenarios",
            "steady-*",
        ],
        &["unknown policy `nope`", "nope.toml"],
    );
    assert_bad_input(
        &["evaluate", "--policies", "hpa", "--scenarios", "zzz-*"],
        &["`zzz-*` matches no scenario"],
    );
    assert_bad_input(
        &["evaluate", "--policies", "hpa", "--seeds", "0"],
        &["--seeds"],
    );
    assert_bad_input(
        &[
            "evaluate",
            "--policies",
            "model:models/x.json",
            "--scenarios",
            "steady-*",
        ],
        &["model:models/x.json", "cannot read the model file"],
    );
    assert_bad_input(
        &[
            "tune",
            "--baseline",
            "hpa3",
            "--scenario",
            "steady-8b-l4-v1",
        ],
        &["--baseline `hpa3`", "kpa"],
    );
    assert_bad_input(
        &[
            "tune",
            "--baseline",
            "kpa",
            "--scenario",
            "steady-8b-l4-v1",
            "--grid",
            "10,-1",
        ],
        &["--grid value -1", "kpa.target"],
    );
}

/// `--guardrails` sets the runtime's guardrails of the `model:` policies (here: no scale-down
/// stabilization) and leaves the bare network alone; a bad file exits 2 naming the file and field.
#[test]
fn evaluate_scores_a_model_under_the_guardrails_given() {
    let dir = tempdir("evaluate-guardrails");
    let rails = dir.join("rails.toml");
    std::fs::write(&rails, "scale_down_stabilization_s = 0.0\n").unwrap();
    let rows = |extra: &[&str], out: &str| -> Vec<(String, String)> {
        let out = dir.join(out);
        let mut args = vec![
            "evaluate",
            "--policies",
            "model:models/default.json,model-only:models/default.json",
            "--scenarios",
            "diurnal-8b-l4-v1",
            "--seeds",
            "1",
            "--seed-base",
            "1001",
            "--steps",
            "480",
            "--no-plots",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = rlscale(&args);
        assert!(o.status.success(), "{}", text(&o).1);
        let csv = std::fs::read_to_string(out.join("runs.csv")).unwrap();
        let mut lines = csv.lines();
        let head: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
        let (p, g) = (col("policy"), col("gpu_hours"));
        lines
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[p].to_string(), f[g].to_string())
            })
            .collect()
    };
    let default = rows(&[], "default");
    let without = rows(&["--guardrails", rails.to_str().unwrap()], "without");
    assert_eq!(default.len(), 2, "{default:?}");
    let gpu = |rows: &[(String, String)], policy: &str| {
        rows.iter().find(|r| r.0 == policy).unwrap().1.clone()
    };
    assert_ne!(
        gpu(&default, "model:models/default.json"),
        gpu(&without, "model:models/default.json"),
        "the stabilization window changed nothing"
    );
    assert_eq!(
        gpu(&default, "model-only:models/default.json"),
        gpu(&without, "model-only:models/default.json"),
        "the bare network has no guardrails to change"
    );

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "stabilization_s = 0.0\n").unwrap();
    let b = bad.to_str().unwrap();
    assert_bad_input(
        &["evaluate", "--policies", "hpa", "--guardrails", b],
        &["bad.toml", "stabilization_s"],
    );
    std::fs::write(&bad, "scale_down_stabilization_s = -1.0\n").unwrap();
    assert_bad_input(
        &["evaluate", "--policies", "hpa", "--guardrails", b],
        &["bad.toml", "scale_down_stabilization_s"],
    );
}

#[test]
fn evaluate_takes_a_user_trace_for_unshipped_scenarios_only() {
    let trace = stand_in_trace();
    let t = trace.display().to_string();
    let dir = tempdir("evaluate-trace");
    let o = dir.display().to_string();
    let run = rlscale(&[
        "evaluate",
        "--policies",
        "static,oracle",
        "--scenarios",
        "nasa-*,steady-8b-l4-v1",
        "--trace",
        &t,
        "--seeds",
        "1",
        "--steps",
        "60",
        "--no-plots",
        "--out",
        &o,
    ]);
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stderr}");
    for sc in [
        "nasa-http-8b-l4-v1",
        "nasa-http-70b-h100x2-v1",
        "steady-8b-l4-v1",
    ] {
        assert!(stdout.contains(&format!("| {sc} | oracle |")), "{stdout}");
    }
    // Without the trace, the glob skips them and says why; nothing else is left to run.
    let out = rlscale(&["evaluate", "--policies", "static", "--scenarios", "nasa-*"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("skipped nasa-http-8b-l4-v1") && stderr.contains("--trace"),
        "{stderr}"
    );
    assert!(stderr.contains("selects no runnable scenario"), "{stderr}");
}

#[test]
fn train_writes_a_run_that_resumes_and_exports_a_model() {
    let dir = tempdir("train");
    let runs = dir.join("runs").display().to_string();
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/ppo.toml");
    let exported = dir.join("models/tiny.json");
    let out = rlscale(&[
        "train",
        "--config",
        &config.display().to_string(),
        "--total-timesteps",
        "4096",
        "--runs",
        &runs,
        "--export",
        &exported.display().to_string(),
    ]);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let run: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(run.len(), 1);
    let run = &run[0];
    let name = run.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("mix18__default__1__"), "{name}");
    let lines = |p: &std::path::Path| std::fs::read_to_string(p.join("metrics.jsonl")).unwrap();
    let first = lines(run);
    assert_eq!(
        first.lines().count(),
        2,
        "two iterations of 8 envs × 256 steps"
    );
    let m: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(m["global_step"], 2048);
    assert!(m["losses/value_loss"].as_f64().unwrap().is_finite());
    assert!(m["charts/SPS"].as_f64().unwrap() > 0.0);

    // TensorBoard's event file holds the same scalars, per global step (TFRecord framing: u64 length,
    // u32 CRC, the Event protobuf, u32 CRC).
    let events: Vec<_> = std::fs::read_dir(run)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    let bytes = std::fs::read(&events[0]).unwrap();
    let mut scalars = Vec::new();
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        let data = &bytes[at + 12..at + 12 + len];
        at += 12 + len + 4;
        let ev: tensorboard_proto::event::Event =
            protobuf::Message::parse_from_bytes(data).unwrap();
        for v in ev.get_summary().get_value() {
            scalars.push((v.get_tag().to_string(), ev.get_step(), v.get_simple_value()));
        }
    }
    assert_eq!(at, bytes.len(), "whole records");
    let vl: Vec<_> = scalars
        .iter()
        .filter(|s| s.0 == "losses/value_loss")
        .collect();
    assert_eq!(vl.len(), 2, "{scalars:?}");
    assert_eq!((vl[0].1, vl[1].1), (2048, 4096));
    assert!((f64::from(vl[0].2) - m["losses/value_loss"].as_f64().unwrap()).abs() < 1e-3);
    assert!(scalars.iter().any(|s| s.0 == "charts/SPS"));

    // The exported model names its schema and carries weights of the right shapes.
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&exported).unwrap()).unwrap();
    assert_eq!(model["format"], "rlscale-model");
    assert_eq!(model["feature_names"].as_array().unwrap().len(), 22);
    let actor = model["actor"].as_array().unwrap();
    assert_eq!(actor[0]["d_in"], 22);
    assert_eq!(actor.last().unwrap()["d_out"], 8);
    assert_eq!(model["provenance"]["global_step"], 4096);

    // The exported file itself is what evaluate plays.
    let spec = format!("model:{}", exported.display());
    let ev = rlscale(&[
        "evaluate",
        "--policies",
        &format!("{spec},hpa"),
        "--scenarios",
        "steady-8b-l4-v1",
        "--seeds",
        "1",
        "--steps",
        "120",
        "--no-plots",
        "--out",
        &dir.join("eval").display().to_string(),
    ]);
    let (table, stderr) = text(&ev);
    assert!(ev.status.success(), "{stderr}");
    assert!(
        table.contains(&format!("| steady-8b-l4-v1 | {spec} |")),
        "{table}"
    );

    // Iterations done after the last checkpoint (a crash) are redone on resume, and logged once.
    let crashed_row = first
        .lines()
        .last()
        .unwrap()
        .replace("\"iteration\":2", "\"iteration\":3");
    assert_ne!(crashed_row, first.lines().last().unwrap());
    std::fs::write(run.join("metrics.jsonl"), format!("{first}{crashed_row}\n")).unwrap();

    // Resuming extends the same run from its checkpoint.
    let resumed = rlscale(&[
        "train",
        "--resume",
        &run.display().to_string(),
        "--total-timesteps",
        "8192",
    ]);
    let (_, stderr) = text(&resumed);
    assert!(resumed.status.success(), "{stderr}");
    assert!(stderr.contains("resuming"), "{stderr}");
    let all = lines(run);
    assert_eq!(all.lines().count(), 4);
    assert!(all.starts_with(&first), "earlier metrics are kept");
    let last: serde_json::Value = serde_json::from_str(all.lines().last().unwrap()).unwrap();
    assert_eq!(last["iteration"], 4);
    assert_eq!(last["global_step"], 8192);
    let iterations: Vec<u64> = all
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["iteration"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(iterations, [1, 2, 3, 4]);
    // The longer length is now the run's own: config.toml says so.
    let saved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(saved.contains("total_timesteps = 8192"), "{saved}");
    // Fewer steps than done is refused, and the run's files are left as they were.
    assert_bad_input(
        &[
            "train",
            "--resume",
            &run.display().to_string(),
            "--total-timesteps",
            "4096",
        ],
        &["--total-timesteps 4096", "already done 8192 steps"],
    );
    assert_eq!(
        std::fs::read_to_string(run.join("config.toml")).unwrap(),
        saved
    );
    assert_eq!(lines(run), all);

    // A folder with no checkpoint is refused, not silently started afresh.
    let empty = dir.join("runs/empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::copy(run.join("config.toml"), empty.join("config.toml")).unwrap();
    let out = rlscale(&["train", "--resume", &empty.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let (_, stderr) = text(&out);
    assert!(stderr.contains("no checkpoint"), "{stderr}");

    // A typo in the config names the file and the field, exit code 2.
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[ppo]\ngama = 0.9\n").unwrap();
    let out = rlscale(&["train", "--config", &bad.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("gama"),
        "{stderr}"
    );
}

/// Fine-tuning (issue 20, item 2): `--init` starts a run from an exported model; a model of another
/// feature schema or action table than the config's is refused before any run folder exists.
#[test]
fn train_init_fine_tunes_an_exported_model_and_refuses_a_mismatch() {
    let dir = tempdir("train-init");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = repo.join("models/default.json").display().to_string();
    let runs = dir.join("runs");
    let runs_s = runs.display().to_string();
    for (config, wants) in [
        (
            "configs/ppo-v2.toml",
            &["default.json", "feature schema 1", "obs_schema = 2"][..],
        ),
        (
            "configs/ppo-ratchet.toml",
            &["default.json", "action table", "Delta"][..],
        ),
    ] {
        let cfg = repo.join(config).display().to_string();
        assert_bad_input(
            &[
                "train", "--config", &cfg, "--init", &shipped, "--runs", &runs_s,
            ],
            wants,
        );
    }
    assert!(!runs.exists(), "a refused --init left a run folder");

    let exported = dir.join("tuned.json");
    let run = train_into(
        &repo.join("configs/ppo.toml"),
        &runs,
        &[
            "--init",
            &shipped,
            "--total-timesteps",
            "2048",
            "--export",
            &exported.display().to_string(),
        ],
    );
    let saved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        saved.contains("init = ") && saved.contains("default.json"),
        "{saved}"
    );
    let tuned: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&exported).unwrap()).unwrap();
    assert_eq!(tuned["obs_schema_version"], 1);
    // A resumed run continues from its checkpoint: --init there is refused.
    assert_bad_input(
        &[
            "train",
            "--resume",
            &run.display().to_string(),
            "--init",
            &shipped,
        ],
        &["--init", "resumed run"],
    );
}

/// `rlscale train --config cfg --runs runs [extra...]`, which must succeed; its (only) run folder.
fn train_into(cfg: &std::path::Path, runs: &std::path::Path, extra: &[&str]) -> std::path::PathBuf {
    let (cfg, runs) = (cfg.display().to_string(), runs.display().to_string());
    let mut args = vec!["train", "--config", &cfg, "--runs", &runs];
    args.extend_from_slice(extra);
    let out = rlscale(&args);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let mut folders = std::fs::read_dir(&runs).unwrap();
    let run = folders.next().unwrap().unwrap().path();
    assert!(folders.next().is_none(), "one run folder in {runs}");
    run
}

#[test]
fn train_validates_on_held_out_episodes_and_keeps_the_best() {
    let dir = tempdir("train-validation");
    let envs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("envs");
    let cfg = dir.join("small.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"exp_name = "small"
[ppo]
num_envs = 2
num_steps = 64
num_minibatches = 2
total_timesteps = 384
norm_obs = true
norm_reward = true
[validation]
every = 1
steps = 60
seeds = [1001]
scenarios = ["{steady}"]
[[mix]]
scenario = "{bursty}"
steps = 100
"#,
            steady = envs.join("steady-8b-l4-v1.toml").display(),
            bursty = envs.join("bursty-8b-l4-v1.toml").display(),
        ),
    )
    .unwrap();
    // A run too short for one validation says so, and its model file says why it has none.
    let short = dir.join("short.toml");
    std::fs::write(
        &short,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("every = 1\n", "every = 10\n"),
    )
    .unwrap();
    let (short_s, short_runs) = (
        short.display().to_string(),
        dir.join("runs-short").display().to_string(),
    );
    let out = rlscale(&["train", "--config", &short_s, "--runs", &short_runs]);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("this run has 3 iteration(s), fewer than validation.every = 10"),
        "{stderr}"
    );
    let short_run = std::fs::read_dir(&short_runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(!short_run.join("best").exists());
    let out = rlscale(&[
        "model",
        "inspect",
        &short_run.join("model.json").display().to_string(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(
            "validation     none: the run stopped at iteration 3, before its first validation (validation.every = 10 iterations)"
        ),
        "{stdout}"
    );

    let run = train_into(&cfg, &dir.join("runs"), &[]);
    assert!(
        run.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("bursty-8b-l4-v1__small__1__")
    );
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let objectives: Vec<f64> = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| v["charts/validation_objective_vs_hpa"].as_f64().unwrap())
        .collect();
    assert_eq!(objectives.len(), 3, "validated every iteration");
    let best: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("best/best.json")).unwrap())
            .unwrap();
    let min = objectives.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(
        best["objective_vs_hpa"].as_f64(),
        Some(min),
        "the best is the lowest objective relative to default HPA's"
    );
    assert!(best["hpa"]["objective_usd"].as_f64().unwrap() > 0.0);
    // The reference scores are computed once and kept for resumes.
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("validation_reference.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(reference["hpa"][0], best["hpa"]["objective_usd"]);
    assert_eq!(reference["bounds"].as_array().unwrap().len(), 1);
    // The best model is a loadable model file.
    let spec = format!("model:{}", run.join("best/model.json").display());
    let ev = rlscale(&[
        "simulate",
        "--scenario",
        "steady-8b-l4-v1",
        "--policy",
        &spec,
        "--steps",
        "30",
    ]);
    assert!(ev.status.success(), "{}", text(&ev).1);
}

/// `model inspect --json` of a model file (which must succeed), after the bare network has played 40
/// steps of steady-8b-l4 with it.
fn inspect_and_play(model: &std::path::Path) -> serde_json::Value {
    let m = model.display().to_string();
    let out = rlscale(&[
        "simulate",
        "--scenario",
        "steady-8b-l4-v1",
        "--policy",
        &format!("model-only:{m}"),
        "--steps",
        "40",
        "--seed",
        "1001",
    ]);
    assert!(out.status.success(), "{}", text(&out).1);
    let out = rlscale(&["model", "inspect", &m, "--json"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

/// `actions = "utilization"` trains on the demand-relative table: the exported file records it
/// (`actions`, not `action_deltas`), `model inspect` names it, and the runtime plays the file with it.
/// An unknown table name is refused with the file and the field, exit code 2. `actions = "table"`
/// takes an explicit table that may mix kinds, and a bad entry is refused by its index.
#[test]
fn train_with_the_utilization_table_exports_and_plays_it() {
    let dir = tempdir("train-utilization");
    let envs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("envs");
    let body = |actions: &str| {
        format!(
            r#"exp_name = "util"
actions = "{actions}"
utilizations = [0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6]
[ppo]
num_envs = 2
num_steps = 64
num_minibatches = 2
total_timesteps = 256
[[mix]]
scenario = "{steady}"
steps = 100
"#,
            steady = envs.join("steady-8b-l4-v1.toml").display(),
        )
    };
    let cfg = dir.join("util.toml");
    std::fs::write(&cfg, body("utilization")).unwrap();
    let run = train_into(&cfg, &dir.join("runs"), &[]);
    let model = run.join("model.json");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    assert!(file.get("action_deltas").is_none(), "{}", file["actions"]);
    let actions = file["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 8);
    assert_eq!(actions[3], serde_json::json!({"delta": 0}));
    assert_eq!(actions[0], serde_json::json!({"target_utilization": 0.95}));
    assert_eq!(actions[7], serde_json::json!({"target_utilization": 0.6}));
    let v = inspect_and_play(&model);
    assert_eq!(v["action_table"], "utilization");

    std::fs::write(&cfg, body("percent")).unwrap();
    let out = rlscale(&["train", "--config", &cfg.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("util.toml") && stderr.contains("actions = \"percent\""),
        "{stderr}"
    );
    for (bad, want) in [
        ("[0.9, 0.8]", "give 7 values"),
        (
            "[0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.0]",
            "action 7: target utilization 0",
        ),
    ] {
        let cfg_text = body("utilization").replace("[0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6]", bad);
        std::fs::write(&cfg, cfg_text).unwrap();
        let out = rlscale(&["train", "--config", &cfg.display().to_string()]);
        assert_eq!(out.status.code(), Some(2));
        let (_, stderr) = text(&out);
        assert!(
            stderr.contains("util.toml")
                && stderr.contains("utilizations")
                && stderr.contains(want),
            "{stderr}"
        );
    }

    // An explicit table may mix kinds: utilization levels plus a surge of +8 replicas.
    let mixed = r#"[{ target_utilization = 0.95 }, { target_utilization = 0.85 }, { target_utilization = 0.8 }, { delta = 0 }, { target_utilization = 0.75 }, { target_utilization = 0.7 }, { target_utilization = 0.6 }, { delta = 8 }]"#;
    let table_cfg = |table: &str| {
        body("table").replace(
            "utilizations = [0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6]",
            &format!("table = {table}"),
        )
    };
    std::fs::write(&cfg, table_cfg(mixed)).unwrap();
    let run = train_into(&cfg, &dir.join("runs-table"), &[]);
    let v = inspect_and_play(&run.join("model.json"));
    assert_eq!(v["action_table"], serde_json::Value::Null, "a mixed table");
    assert_eq!(v["actions"][7], serde_json::json!({"delta": 8}));
    assert_eq!(
        v["actions"][2],
        serde_json::json!({"target_utilization": 0.8})
    );
    for (text_, want) in [
        (
            table_cfg(&mixed.replace("{ delta = 8 }", "{ delta = 99 }")),
            "table[7]: delta 99",
        ),
        (
            table_cfg(&mixed.replace(", { delta = 8 }]", "]")),
            "table: the table has 7",
        ),
        (
            body("table").replace("utilizations = [0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6]", ""),
            "give the eight actions",
        ),
        (
            table_cfg(mixed).replace("actions = \"table\"", "actions = \"deltas\""),
            "table: only with actions = \"table\"",
        ),
    ] {
        std::fs::write(&cfg, text_).unwrap();
        let out = rlscale(&["train", "--config", &cfg.display().to_string()]);
        assert_eq!(out.status.code(), Some(2));
        let (_, stderr) = text(&out);
        assert!(
            stderr.contains("util.toml") && stderr.contains(want),
            "want {want:?}: {stderr}"
        );
    }
}

/// Ctrl-C saves a checkpoint and the run's model, and says how to resume; it does not export a
/// half-trained model to `--export`.
#[cfg(unix)]
#[test]
fn train_interrupted_saves_and_does_not_export() {
    let dir = tempdir("train-interrupt");
    let runs = dir.join("runs");
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/ppo.toml");
    let exported = dir.join("models/half.json");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_rlscale"))
        .args(["train", "--config"])
        .arg(&config)
        .arg("--runs")
        .arg(&runs)
        .arg("--export")
        .arg(&exported)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first iteration's metrics row, then press Ctrl-C.
    let start = std::time::Instant::now();
    let run = loop {
        assert!(
            start.elapsed().as_secs() < 300,
            "no iteration within 5 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
        let Some(run) = std::fs::read_dir(&runs)
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path())
        else {
            continue;
        };
        if std::fs::read_to_string(run.join("metrics.jsonl")).is_ok_and(|m| !m.is_empty()) {
            break run;
        }
    };
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted at iteration"), "{stderr}");
    assert!(stderr.contains("not exporting"), "{stderr}");
    assert!(!exported.exists(), "a half-trained model was exported");
    assert!(run.join("model.json").is_file());
    assert!(run.join("checkpoints/latest").is_file());
}

/// A one-layer model that always prefers `action`, written to `path`.
fn write_model(path: &std::path::Path, action: usize) {
    use rlscale_core::N_FEATURES;
    let mut m = rlscale_runtime::ModelFile::always(action);
    m.obs_norm.var = vec![100.0; N_FEATURES];
    m.feature_ranges.min = vec![-50.0; N_FEATURES];
    m.feature_ranges.max = vec![50.0; N_FEATURES];
    m.provenance = serde_json::json!({"seed": 7, "validation": {"best": {"iteration": 3, "objective_vs_hpa": 0.625, "objective_usd": 12.5, "slo_attainment_pct": 99.5, "cost_usd": 10.0, "hpa": {"objective_usd": 20.0}}}});
    m.save(path).unwrap();
}

#[test]
fn model_inspect_and_decide_explain_themselves() {
    let dir = tempdir("decide");
    let model = dir.join("m.json");
    write_model(&model, 4); // +1
    let m = model.display().to_string();
    let out = rlscale(&["model", "inspect", &m]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for want in [
        "rlscale-model v1",
        "feature schema v2 (25 features)",
        "25 → 8 (tanh)",
        "best at iteration 3: 0.625× default HPA's objective; objective $12.50, SLO 99.50 %",
        "default HPA $20.00",
    ] {
        assert!(stdout.contains(want), "`{want}` in:\n{stdout}");
    }
    // A corrupt or foreign file: exit 2 naming the file and the problem.
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&model)
            .unwrap()
            .replace("\"obs_schema_version\":2", "\"obs_schema_version\":9"),
    )
    .unwrap();
    assert_bad_input(
        &["model", "inspect", &bad.display().to_string()],
        &["bad.json", "schema"],
    );

    // decide: a sequence of snapshots through one runtime.
    let snap = |t: f64, queue: f64, starting: u32| {
        serde_json::json!({
            "time": t, "arrival_rate_1m": 12.0, "arrival_rate_5m": 10.0, "queue_depth": queue,
            "arrival_rate_peak_15m": 12.0, "arrival_rate_peak_1h": 14.0, "arrival_rate_1h": 10.0,
            "running": 120.0, "ready_replicas": 4, "starting_replicas": starting,
            "gpu_utilization": 0.9, "kv_cache_usage": 0.5,
            "latency_p50_s": 1.0, "latency_p95_s": 4.0, "latency_p99_s": 8.0,
            "profile": {"cold_start_s": 135.0, "capacity_rps": 3.0, "gpus_per_replica": 1,
                        "usd_per_gpu_hour": 0.8, "slo_latency_s": 10.0}
        })
        .to_string()
    };
    let snaps = dir.join("snaps.jsonl");
    std::fs::write(
        &snaps,
        [
            snap(1.7e9, 40.0, 0),
            snap(1.7e9 + 15.0, -5.0, 0),
            snap(1.7e9 + 30.0, 40.0, 0),
        ]
        .join("\n"),
    )
    .unwrap();
    let s = snaps.display().to_string();
    let out = rlscale(&["decide", "--model", &m, "--snapshot", &s, "--json"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["decision"]["replicas"], 5);
    assert_eq!(rows[0]["decision"]["source"], "model");
    assert_eq!(
        rows[1]["decision"]["replicas"], 5,
        "held on a negative queue"
    );
    assert_eq!(rows[1]["decision"]["reason"], "invalid_input");
    assert_eq!(rows[1]["chain"][0]["field"], "queue_depth");
    assert_eq!(
        rows[2]["decision"]["replicas"], 6,
        "the target carries over"
    );
    // The controller's decision log is a snapshot source too (issue 21): config lines are skipped,
    // and a metric whose query failed (logged as null) is missing, so the runtime holds naming it.
    let mut failed: serde_json::Value = serde_json::from_str(&snap(1.7e9, 40.0, 0)).unwrap();
    failed["arrival_rate_1m"] = serde_json::Value::Null;
    let line = |s: serde_json::Value| {
        serde_json::json!({"kind": "decision", "time": 1.7e9, "snapshot": s}).to_string()
    };
    let log = dir.join("decisions.jsonl");
    std::fs::write(
        &log,
        [
            serde_json::json!({"kind": "config", "time": 1.7e9}).to_string(),
            line(serde_json::from_str(&snap(1.7e9, 40.0, 0)).unwrap()),
            line(failed),
        ]
        .join("\n"),
    )
    .unwrap();
    let l = log.display().to_string();
    let out = rlscale(&["decide", "--model", &m, "--snapshot", &l, "--json"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert_eq!(rows[0]["decision"]["source"], "model");
    assert_eq!(rows[1]["decision"]["reason"], "invalid_input");
    assert_eq!(rows[1]["chain"][0]["field"], "arrival_rate_1m");
    std::fs::write(&log, r#"{"kind": "decisoin", "snapshot": {}}"#).unwrap();
    assert_bad_input(
        &["decide", "--model", &m, "--snapshot", &l],
        &["decisions.jsonl", "line 1", "unknown kind"],
    );
    // Text output, stale metrics, no model.
    let out = rlscale(&["decide", "--snapshot", &s, "--now", "1700000100"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert!(stdout.contains("[fallback / stale_metrics]"), "{stdout}");
    assert!(stdout.contains("snapshot age 100.0 s"), "{stdout}");
    let one = dir.join("one.json");
    std::fs::write(&one, snap(1.7e9, 40.0, 0)).unwrap();
    let out = rlscale(&["decide", "--snapshot", &one.display().to_string()]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("model: not loaded (no --model given) → fallback law"),
        "{stdout}"
    );
    assert!(stdout.contains("fallback: hpa"), "{stdout}");
    // Bad runtime config and bad snapshot lines are exit 2, naming file, line and field.
    let cfg = dir.join("rt.toml");
    std::fs::write(
        &cfg,
        "min_replicas = 1\nmax_replicas = 8\n[guardrails]\nmax_step_down = 0\n",
    )
    .unwrap();
    assert_bad_input(
        &[
            "decide",
            "--snapshot",
            &s,
            "--config",
            &cfg.display().to_string(),
        ],
        &["rt.toml", "guardrails.max_step_down = 0"],
    );
    std::fs::write(
        &snaps,
        format!("{}\n{{\"time\": 1}}\n", snap(1.7e9, 1.0, 0)),
    )
    .unwrap();
    assert_bad_input(&["decide", "--snapshot", &s], &["snaps.jsonl", "line 2"]);
}

/// A short `rlscale train` measurably lowers the held-out objective from the untrained network's, and
/// the exported file is what evaluate plays.
#[test]
fn train_learns_on_the_simulator_and_exports_a_model_that_evaluates() {
    let dir = tempdir("train-learns");
    let envs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("envs");
    let cfg = dir.join("learn.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"exp_name = "learn"
checkpoint_every = 100
[ppo]
num_envs = 4
num_steps = 128
num_minibatches = 4
update_epochs = 4
total_timesteps = 20480
ent_coef = 0.0
norm_obs = true
norm_reward = true
[validation]
every = 8
steps = 240
seeds = [1001, 1002]
scenarios = ["{steady}"]
[[mix]]
scenario = "{steady}"
steps = 240
max_offset_s = 36000.0
rate_scale = [0.7, 1.4]
"#,
            steady = envs.join("steady-8b-l4-v1.toml").display(),
        ),
    )
    .unwrap();
    let exported = dir.join("learned.json");
    let run = train_into(
        &cfg,
        &dir.join("runs"),
        &["--export", &exported.display().to_string()],
    );
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("validation_reference.json")).unwrap(),
    )
    .unwrap();
    let untrained = reference["untrained"][0].as_f64().unwrap();
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let last = metrics
        .lines()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["charts/validation_objective_usd"]
                .as_f64()
        })
        .unwrap();
    // The untrained reference is the bare network's (the runtime would hand its out-of-range inputs
    // to the fallback law). Compare like with like: the bare trained network, on the same episodes.
    let bare = |name: &str, path: &std::path::Path| {
        let out_dir = dir.join(name);
        let ev = rlscale(&[
            "evaluate",
            "--policies",
            &format!("model-only:{}", path.display()),
            "--scenarios",
            "steady-8b-l4-v1",
            "--seeds",
            "2",
            "--seed-base",
            "1001",
            "--steps",
            "240",
            "--no-plots",
            "--out",
            &out_dir.display().to_string(),
        ]);
        assert!(ev.status.success(), "{}", text(&ev).1);
        let csv = std::fs::read_to_string(out_dir.join("summary.csv")).unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let col = header
            .iter()
            .position(|h| *h == "objective_usd_mean")
            .unwrap();
        csv.lines()
            .nth(1)
            .unwrap()
            .split(',')
            .nth(col)
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    let trained = bare("eval-bare", &exported);
    assert!(
        (trained - untrained).abs() > 0.0 && trained < 0.7 * untrained,
        "bare network: validation objective ${untrained:.2} untrained → ${trained:.2} after 20k steps"
    );
    // The runtime path's validation score improved over the run too.
    assert!(last.is_finite());
    // The exported model loads and evaluates on the same held-out episodes.
    let ev = rlscale(&[
        "evaluate",
        "--policies",
        &format!("model:{}", exported.display()),
        "--scenarios",
        "steady-8b-l4-v1",
        "--seeds",
        "1",
        "--seed-base",
        "1001",
        "--steps",
        "240",
        "--no-plots",
        "--out",
        &dir.join("eval").display().to_string(),
    ]);
    assert!(ev.status.success(), "{}", text(&ev).1);
}

/// The shipped model loads through the runtime's loader, matches the feature schema, and plays an
/// episode through the whole runtime path.
#[test]
fn the_shipped_model_loads_and_plays() {
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default.json");
    let m = model.display().to_string();
    let out = rlscale(&["model", "inspect", &m, "--json"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["features"].as_array().unwrap().len(), 22);
    assert!(v["provenance"]["global_step"].as_u64().unwrap() > 1_000_000);
    assert!(v["validation"]["best"]["objective_usd"].as_f64().is_some());
    let dir = tempdir("shipped");
    let out = rlscale(&[
        "simulate",
        "--scenario",
        "diurnal-8b-l4-v1",
        "--policy",
        &format!("model:{m}"),
        "--steps",
        "240",
        "--seed",
        "1001",
        "--out",
        &dir.display().to_string(),
    ]);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let timeline = std::fs::read_to_string(dir.join("timeline.csv")).unwrap();
    // Every decision names its source; on in-distribution traffic most are the model's.
    let rows: Vec<&str> = timeline.lines().skip(1).collect();
    assert_eq!(rows.len(), 240);
    let by_model = rows
        .iter()
        .filter(|r| {
            let src = r.split(',').rev().nth(1).unwrap();
            src == "model" || src == "guardrail"
        })
        .count();
    assert!(by_model > 120, "{by_model} of 240 decisions by the model");
}

#[test]
fn evaluate_warns_when_a_tuned_value_was_infeasible_where_it_was_fitted() {
    // configs/baselines/apa-tuned.toml: azure-code-2023-70b's entry says `feasible = false`.
    let dir = tempdir("evaluate-infeasible");
    let d = dir.display().to_string();
    let out = rlscale(&[
        "evaluate",
        "--policies",
        "apa-tuned,hpa",
        "--scenarios",
        "azure-code-2023-70b-h100x2-v1",
        "--seeds",
        "1",
        "--steps",
        "20",
        "--no-plots",
        "--out",
        &d,
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: apa-tuned on azure-code-2023-70b-h100x2-v1:")
            && stderr.contains("feasible = false in"),
        "{stderr}"
    );
    assert!(!stderr.contains("warning: hpa "), "{stderr}");
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        md.contains("| azure-code-2023-70b-h100x2-v1 | apa-tuned † |"),
        "{md}"
    );
    assert!(
        md.contains("| azure-code-2023-70b-h100x2-v1 | hpa |"),
        "{md}"
    );
    assert_eq!(md, stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's `decide` example is what the command prints on the shipped example file.
#[test]
fn the_readme_decide_example_is_true() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let cmd =
        "$ rlscale decide --model models/default.json --snapshot tests/data/snapshots.jsonl\n";
    let start = readme
        .find(cmd)
        .expect("the README shows the decide example")
        + cmd.len();
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let out = rlscale(&[
        "decide",
        "--model",
        &repo.join("models/default.json").display().to_string(),
        "--snapshot",
        &repo
            .join("tests/data/snapshots.jsonl")
            .display()
            .to_string(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, block, "update the README's decide example");
}

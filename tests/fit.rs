//! `rlscale fit` end to end on a trace: the contenders, the report, the manifest, a resumed second
//! run, and bad input refused with nothing written.

use std::path::Path;

use crate::util::{rlscale, tempdir, text};

/// A `t_s,rps` trace of `hours` hours at one row a minute: a base rate with a burst every hour.
fn trace(dir: &Path, name: &str, hours: u32) -> String {
    let mut s = String::from("t_s,rps\n");
    for m in 0..hours * 60 {
        let burst = if m % 60 >= 40 && m % 60 < 48 {
            30.0
        } else {
            0.0
        };
        s.push_str(&format!("{},{:.2}\n", m * 60, 20.0 + burst));
    }
    let p = dir.join(name);
    std::fs::write(&p, s).unwrap();
    p.display().to_string()
}

fn exit_2_and_nothing_written(args: &[&str], out: &Path, wants: &str) {
    let o = rlscale(args);
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}\n{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(wants),
        "stderr should say `{wants}`:\n{stderr}"
    );
    assert!(!out.exists(), "{args:?} left {}", out.display());
}

#[test]
fn fit_compares_every_contender_writes_a_report_and_resumes() {
    let dir = tempdir("fit");
    let csv = trace(&dir, "four-hours.csv", 4);
    let out = dir.join("fit");
    let out_s = out.display().to_string();
    let args = [
        "fit",
        "--trace",
        &csv,
        "--profile",
        "llm-8b-l4",
        "--out",
        &out_s,
        "--laws",
        "hpa,static",
        "--fine-tune-steps",
        "4096",
        "--budget",
        "5m",
    ];
    let o = rlscale(&args);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Recommendation: "), "{stdout}");

    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let names: Vec<&str> = results["contenders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for want in [
        "hpa",
        "hpa-tuned",
        "static-tuned",
        "model:generic",
        "model:fine-tuned",
        "oracle",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert_eq!(names.len(), 6, "{names:?}");
    // Four hours: fitted on the first two, scored on the last two, with other seeds.
    assert_eq!(results["fit_window"]["offset_s"], 0.0);
    assert_eq!(results["score_window"]["offset_s"], 7200.0);
    assert_eq!(
        results["score_window"]["seeds"],
        serde_json::json!([201, 202])
    );
    assert_eq!(results["whole_days"], false);
    // The winner is deployable and the cheapest of those at the SLO.
    let winner = results["winner"].as_str().unwrap();
    assert_ne!(winner, "oracle");
    let contenders = results["contenders"].as_array().unwrap();
    let w = contenders.iter().find(|c| c["name"] == winner).unwrap();
    if w["meets_slo"] == true {
        for c in contenders {
            if c["meets_slo"] == true && c["kind"] != "hindsight" {
                assert!(
                    w["objective_usd"].as_f64() <= c["objective_usd"].as_f64(),
                    "{winner} is not the cheapest at the SLO: {c}"
                );
            }
        }
    }
    let rec = results["recommendation"].as_str().unwrap();
    assert!(rec.contains(winner) && rec.contains("default HPA"), "{rec}");

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| model:fine-tuned |"), "{md}");
    assert!(
        md.trim_end().ends_with("**"),
        "the report ends with the recommendation"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 2, "both plots are inlined");
    assert!(!html.contains("src=\""), "self-contained: no linked files");
    assert!(out.join("plots/worst-hour.png").is_file());
    // The fine-tuned model loads, and the manifest is an RLAutoscaler the controller accepts.
    rlscale_runtime::ModelFile::load(&out.join("model.json")).unwrap();
    let yaml = std::fs::read_to_string(out.join("rlautoscaler.yaml")).unwrap();
    let rla: rlscale_controller::RLAutoscaler = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(rla.spec.mode, rlscale_controller::crd::Mode::Shadow);
    assert!(rla.spec.max_replicas >= 1);
    // Each tuned rule is a baseline file evaluate reads.
    for law in ["hpa", "static"] {
        let f = out.join("baselines").join(format!("{law}-tuned.toml"));
        rlscale_eval::policies::NamedBaseline::read(&f).unwrap();
    }

    // The same command again resumes: every stage is read back, nothing is trained again.
    let o = rlscale(&args);
    let (stdout2, stderr2) = text(&o);
    assert!(o.status.success(), "{stderr2}");
    assert!(stderr2.contains("resuming the fit"), "{stderr2}");
    assert!(stderr2.contains("fine-tuning: done before"), "{stderr2}");
    assert_eq!(
        std::fs::read_dir(out.join("train")).unwrap().count(),
        1,
        "one fine-tuning run"
    );
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(again["contenders"], results["contenders"]);
    assert_eq!(stdout2, stdout);

    // Other arguments in the same folder are refused, and the fit in it is kept.
    let mut other = args.to_vec();
    other[8] = "hpa";
    let o = rlscale(&other);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("holds a fit with other arguments"));
    assert!(out.join("results.json").is_file());
}

#[test]
fn fit_refuses_bad_input_with_exit_2_and_no_outputs() {
    let dir = tempdir("fit-bad");
    let out = dir.join("out");
    let out_s = out.display().to_string();
    let short = trace(&dir, "one-hour.csv", 1);
    let gaps = dir.join("gaps.csv");
    std::fs::write(&gaps, "t_s,rps\n0,\n60,\n120,\n").unwrap();
    let gaps = gaps.display().to_string();
    let fine = trace(&dir, "four-hours.csv", 4);
    for (trace, profile, wants) in [
        (
            short.as_str(),
            "llm-8b-l4",
            "a fitting and a scoring window of at least 1 h",
        ),
        (
            gaps.as_str(),
            "llm-8b-l4",
            "every one of the 3 rows is a gap",
        ),
        (fine.as_str(), "llm-1t-tpu", "not a profile in"),
    ] {
        exit_2_and_nothing_written(
            &[
                "fit",
                "--trace",
                trace,
                "--profile",
                profile,
                "--out",
                &out_s,
            ],
            &out,
            wants,
        );
    }
    exit_2_and_nothing_written(
        &["fit", "--scenario", "no-such-scenario", "--out", &out_s],
        &out,
        "no-such-scenario",
    );
    exit_2_and_nothing_written(
        &[
            "fit",
            "--scenario",
            "steady-8b-l4-v1",
            "--out",
            &out_s,
            "--budget",
            "10s",
        ],
        &out,
        "--budget",
    );
}

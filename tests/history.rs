//! `rlscale history` round trip: a fake server plays a known rate series (60 req/s, then 120 req/s),
//! a real Prometheus (Debian's package) scrapes it, and `rlscale history` pulls the controller's
//! default arrival-rate query back. Wherever the true 1-minute rate is flat, every row is within 2 %
//! of it; a pull in many small requests gives the same file as a pull in one.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use rlscale_controller::crd::{Field, Queries};
use rlscale_controller::prom::Prometheus;
use rlscale_testenv::TestApiServer;
use rlscale_testenv::prometheus::PrometheusProcess;
use serde_json::json;

use crate::e2e::{fake_envs, repo, runtime, spawn_fake_server, tail, vllm_deployment};
use crate::util::{rlscale, text};

/// Simulated seconds per wall second: the fake server ticks 4 times per second, so a one-second
/// scrape never sees the counter move by one whole tick more or less than its share.
const SPEEDUP: f64 = 60.0;
/// Wall seconds at the first rate.
const LOW_WALL_S: f64 = 90.0;

fn scenario() -> String {
    let switch = LOW_WALL_S * SPEEDUP;
    format!(
        r#"
id = "history-step-v1"
description = "60 req/s, then 120 req/s"
profile = "llm-8b-l4"
max_episode_steps = 1000000
control_interval_s = 15.0
start_time = "2024-05-06T09:00:00Z"

[replicas]
min = 1
max = 100
initial = 80

[arrivals]
kind = "piecewise"
interpolation = "linear"
points = [[0.0, 60.0], [{switch}, 60.0], [{}, 120.0], [100000000.0, 120.0]]
"#,
        switch + 1.0
    )
}

fn rows(path: &Path) -> Vec<(f64, Option<f64>)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("t_s,rps"));
    lines
        .map(|l| {
            let (t, r) = l.split_once(',').unwrap();
            (t.parse().unwrap(), r.parse().ok())
        })
        .collect()
}

#[test]
fn a_known_rate_series_round_trips_through_a_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let api = rt.block_on(TestApiServer::start()).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig, "default").unwrap();
    rt.block_on(async {
        let client = kube::Client::try_from(kube::Config::new(api.url().parse().unwrap())).unwrap();
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": "serving"}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        Api::<Deployment>::namespaced(client, "serving")
            .create(
                &PostParams::default(),
                &vllm_deployment("serving", "llm", 80),
            )
            .await
            .unwrap();
    });
    let envs = fake_envs(dir.path(), &[("history-step-v1", scenario().as_str())]);
    let started = Instant::now();
    let (fake, addr) = spawn_fake_server(
        "fake-server",
        &envs,
        "history-step-v1",
        kubeconfig.to_str().unwrap(),
        Some("serving"),
        "llm",
        SPEEDUP,
    );
    let prometheus = PrometheusProcess::start_for_test(std::slice::from_ref(&addr));
    // Wait until the 1-minute rate has held the second rate for 16 s (eight polls 2 s apart), so
    // that the last rows' windows lie wholly in it however long the processes took to start.
    let until = Duration::from_secs_f64(LOW_WALL_S + 60.0);
    std::thread::sleep(until.saturating_sub(started.elapsed()));
    let query = Queries::default()
        .resolved("serving", "llm")
        .remove(&Field::ArrivalRate1m)
        .unwrap();
    let prom = Prometheus::new(
        reqwest::Client::new(),
        &prometheus.url,
        Duration::from_secs(5),
    );
    let mut held = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while held < 8 {
        assert!(
            Instant::now() < deadline,
            "the rate never held 120 req/s\n--- fake-server\n{}\n--- prometheus\n{}",
            tail(&fake.log()),
            tail(&prometheus.log())
        );
        let v = rt.block_on(prom.query(&query)).ok().flatten();
        held = if v.is_some_and(|v| (v / 120.0 - 1.0).abs() < 0.02) {
            held + 1
        } else {
            0
        };
        std::thread::sleep(Duration::from_secs(2));
    }

    // A few seconds back, so that both pulls see the same samples.
    let end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        .floor()
        - 3.0;
    let start = end - 240.0;
    let pull = |out: &Path, extra: &[&str]| {
        let (s, e) = (start.to_string(), end.to_string());
        let mut args = vec![
            "history",
            "--prometheus",
            &prometheus.url,
            "--object",
            "serving/llm",
            "--start",
            &s,
            "--end",
            &e,
            "--step",
            "2s",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = rlscale(&args);
        let (stdout, stderr) = text(&o);
        assert!(
            o.status.success(),
            "{stdout}{stderr}\n--- fake-server\n{}\n--- prometheus\n{}",
            tail(&fake.log()),
            tail(&prometheus.log())
        );
        stderr
    };
    let one = dir.path().join("one.csv");
    let said = pull(&one, &[]);
    assert!(said.contains("rows of 2 s"), "{said}");
    let many = dir.path().join("many.csv");
    pull(&many, &["--points-per-request", "17"]);
    assert_eq!(
        std::fs::read_to_string(&one).unwrap(),
        std::fs::read_to_string(&many).unwrap(),
        "a pull in requests of 17 points differs from one in a single request"
    );

    let got = rows(&one);
    // From the first sample on: about 140-200 s of data at 2 s (the leading rows before the fake
    // server answered are cut, not written as zeros).
    assert!(
        (70..=100).contains(&got.len()),
        "{} rows: {got:?}",
        got.len()
    );
    let all: Vec<f64> = got
        .iter()
        .map(|(t, r)| r.unwrap_or_else(|| panic!("a gap at t = {t} s: {got:?}")))
        .collect();
    // The first minute's rows come from windows the counter's history does not yet fill
    // (`rate()` extrapolates them); from then on each row's window is a whole minute.
    let values = &all[30..];
    let near = |v: f64, want: f64| (v / want - 1.0).abs() <= 0.02;
    // Each row is the low rate, the high one, or on the way between them (one minute after the
    // switch, as `rate(...[1m])` moves), in that order.
    let phase = |v: f64| {
        if near(v, 60.0) {
            0
        } else if near(v, 120.0) {
            2
        } else {
            1
        }
    };
    let phases: Vec<u8> = values.iter().map(|&v| phase(v)).collect();
    assert!(
        phases.windows(2).all(|w| w[0] <= w[1]),
        "not low, then between, then high: {values:?}"
    );
    let low = phases.iter().filter(|&&p| p == 0).count();
    let between = phases.iter().filter(|&&p| p == 1).count();
    let high = phases.iter().filter(|&&p| p == 2).count();
    // The low rate fills the rows from the first whole window to the switch (about 14), the ramp one
    // 1-minute window (30 rows of 2 s, give or take the scrape phase), the high rate the last ≈ 15 s.
    assert!(low >= 8, "{low} rows at 60 req/s: {values:?}");
    assert!(
        (24..=33).contains(&between),
        "{between} rows between the rates (a 1-minute window is 30): {values:?}"
    );
    assert!(high >= 4, "{high} rows at 120 req/s: {values:?}");
    drop(api);
}

/// From the controller's decision log: a loadable trace; bad input exits 2 and writes nothing.
#[test]
fn a_decision_log_becomes_a_trace_and_bad_input_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = repo().join("tests/data/shadow-decisions.jsonl");
    let out = dir.path().join("web.csv");
    let o = rlscale(&[
        "history",
        "--decision-log",
        log.to_str().unwrap(),
        "--object",
        "default/web",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("rows of 15 s"), "{stderr}");
    let trace = rlscale_sim::Trace::load(&out).unwrap();
    assert_eq!(trace.interval_s, 15.0);
    assert!(trace.rps.iter().all(|r| r.is_finite() && *r > 0.0));

    for (args, says) in [
        (
            vec!["--decision-log", log.to_str().unwrap()],
            "pick one with --object",
        ),
        (
            vec![
                "--decision-log",
                log.to_str().unwrap(),
                "--object",
                "default/none",
            ],
            "no decisions of --object default/none",
        ),
        (
            vec!["--prometheus", "http://127.0.0.1:9", "--object", "nope"],
            "expected NAMESPACE/NAME",
        ),
        (
            vec![
                "--prometheus",
                "http://127.0.0.1:9",
                "--object",
                "a/b",
                "--since",
                "1h",
                "--step",
                "0s",
            ],
            "--step must be more than 0 s",
        ),
    ] {
        let bad = dir.path().join("bad.csv");
        let mut full = vec!["history", "--out", bad.to_str().unwrap()];
        full.extend(args);
        let o = rlscale(&full);
        let (_, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{full:?}: {stderr}");
        assert!(stderr.contains(says), "{full:?}: {stderr}");
        assert!(!bad.exists(), "{full:?} wrote {}", bad.display());
    }
}

/// A pulled trace trains on its own (`train --trace --profile`): the scenario is written under
/// runs/workloads/ and the run's mixture is that one workload; an unknown profile exits 2 and
/// creates nothing.
#[test]
fn a_pulled_trace_trains_as_one_workload() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("web.csv");
    let o = rlscale(&[
        "history",
        "--decision-log",
        repo()
            .join("tests/data/shadow-decisions.jsonl")
            .to_str()
            .unwrap(),
        "--object",
        "default/web",
        "--out",
        trace.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let runs = dir.path().join("runs");
    let config = repo().join("configs/ppo.toml");
    let base = [
        "train",
        "--config",
        config.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
        "--runs",
        runs.to_str().unwrap(),
        "--total-timesteps",
        "2048",
    ];
    let mut bad = base.to_vec();
    bad.extend(["--profile", "llm-1t-b200"]);
    let o = rlscale(&bad);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a profile in"), "{stderr}");
    assert!(stderr.contains("llm-8b-l4"), "{stderr}");
    assert!(!runs.exists(), "a refused run created {}", runs.display());

    let mut good = base.to_vec();
    good.extend(["--profile", "llm-8b-l4", "--init", "models/default.json"]);
    let o = rlscale(&good);
    let (_, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("one workload, workload-web-llm-8b-l4-v1"),
        "{stderr}"
    );
    let scenario = runs.join("workloads/workload-web-llm-8b-l4-v1/workload-web-llm-8b-l4-v1.toml");
    assert!(scenario.is_file(), "{stderr}");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("workload-web")
        })
        .unwrap();
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert_eq!(cfg.matches("[[mix]]").count(), 1, "{cfg}");
    assert!(cfg.contains("workload-web-llm-8b-l4-v1.toml"), "{cfg}");
}

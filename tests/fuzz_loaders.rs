//! A seeded fuzz of the scenario and trace loaders with the overrides users pass (issue 21, item 3):
//! `--rate-scale`, `--steps`, a trace's `offset_s`, the trace's own rates, on every kind of arrival
//! process. Each case is `rlscale simulate` in its own process under a memory limit (`prlimit --as`)
//! and a wall-clock limit, so a hang or a blow-up is a finding (the test fails and prints the case),
//! not a stuck CI job. A case passes when the run finishes with exit code 0 and a summary, or is
//! refused with exit code 2 and a one-line error, and leaves no temporary file behind.
//!
//! The cases come from ChaCha8 with a fixed seed, so a failure reproduces. `RLSCALE_FUZZ_CASES=N`
//! runs more of them (the default keeps CI short); `RLSCALE_FUZZ_SEED=S` draws another set.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::util::tempdir;

/// Address space a case may use (the simulator needs well under 200 MB at the bounded rates).
const MEMORY_LIMIT_BYTES: u64 = 2 << 30;
/// Wall time a case may take: the longest is a 2,000-step day at the highest accepted rate.
const TIME_LIMIT: Duration = Duration::from_secs(60);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A value for `--rate-scale`: the edges (0, tiny, huge, negative, not a number) as often as the
/// ordinary range.
fn rate_scale(rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..14) {
        0 => "0".into(),
        1 => format!("{:e}", 10f64.powf(rng.random_range(-15.0..-3.0))),
        2 => format!("{:e}", 10f64.powf(rng.random_range(3.0..15.0))),
        3 => "-1".into(),
        4 => ["nan", "inf", "-inf", "1e400"][rng.random_range(0..4)].into(),
        _ => format!("{:.6}", 10f64.powf(rng.random_range(-3.0..2.5))),
    }
}

/// A value for `--steps`: ordinary short runs, and the edges of the accepted range and beyond.
fn steps(rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..14) {
        0 => "0".into(),
        1 => "2102401".into(),
        2 => u64::MAX.to_string(),
        3 => "1".into(),
        _ => rng.random_range(2..2_000u64).to_string(),
    }
}

/// A trace offset: in range, far beyond the trace, negative, or not a number.
fn offset(rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..6) {
        0 => "-60.0".into(),
        1 => "1e300".into(),
        2 => "nan".into(),
        _ => format!("{:.1}", rng.random_range(0.0..2.0e6)),
    }
}

/// A trace CSV of `rows` rows at 60 s: ordinary rates, and in one trace of three some zero, huge
/// or malformed ones.
fn trace(rng: &mut ChaCha8Rng, path: &Path) {
    let rows = rng.random_range(1..400);
    let odd = if rng.random_bool(1.0 / 3.0) { 4 } else { 0 };
    let mut text = String::from("t_s,rps\n");
    for i in 0..rows {
        let rps = match rng.random_range(0..40) + 4 - odd {
            0 => "0".to_string(),
            1 => "1e15".to_string(),
            2 => "-3".to_string(),
            3 => "NaN".to_string(),
            _ => format!("{:.3}", rng.random_range(0.0..50.0)),
        };
        text.push_str(&format!("{},{rps}\n", i * 60));
    }
    std::fs::write(path, text).unwrap();
}

/// Every shipped scenario id.
fn scenario_ids() -> Vec<String> {
    let envs = Path::new(env!("CARGO_MANIFEST_DIR")).join("envs");
    let mut ids: Vec<String> = std::fs::read_dir(envs)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension().is_some_and(|x| x == "toml"))
                .then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
        })
        .collect();
    ids.sort();
    ids
}

/// Run `args` under the limits; `(exit code, stdout, stderr, wall)`, or a finding.
fn run_limited(args: &[String]) -> Result<(i32, String, String, Duration), String> {
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--as={MEMORY_LIMIT_BYTES}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_rlscale"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("prlimit: {e}"))?;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            let out = child.wait_with_output().map_err(|e| e.to_string())?;
            let code = status.code().unwrap_or(-1);
            return Ok((
                code,
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
                started.elapsed(),
            ));
        }
        if started.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no exit within {TIME_LIMIT:?} (a hang)"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_loaders_with_any_override_finish_or_refuse() {
    let cases = env_u64("RLSCALE_FUZZ_CASES", 40);
    let seed = env_u64("RLSCALE_FUZZ_SEED", 21);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ids = scenario_ids();
    let dir = tempdir("fuzz-loaders");
    // The scenario copies find their profile in profiles/ beside them, as in envs/.
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("envs/profiles");
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    for f in std::fs::read_dir(&profiles).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.join("profiles").join(f.file_name().unwrap())).unwrap();
    }
    let (mut finished, mut refused) = (0, 0);
    let mut findings = Vec::new();
    for case in 0..cases {
        let id = ids[rng.random_range(0..ids.len())].clone();
        let out_dir = dir.join(format!("case-{case}"));
        let mut args: Vec<String> = vec![
            "simulate".into(),
            "--scenario".into(),
            id.clone(),
            "--json".into(),
            "--out".into(),
            out_dir.display().to_string(),
        ];
        let source = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("envs/{id}.toml")),
        )
        .unwrap();
        let is_trace = source.contains("kind = \"trace\"");
        if is_trace {
            // A trace of its own, and for half the cases a copy of the scenario with another offset.
            let t = dir.join(format!("case-{case}.csv"));
            trace(&mut rng, &t);
            args.extend(["--trace".into(), t.display().to_string()]);
            if rng.random_bool(0.5) {
                let off = offset(&mut rng);
                let text: String = source
                    .lines()
                    .map(|l| {
                        if l.starts_with("offset_s") {
                            format!("offset_s = {off}")
                        } else {
                            l.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                let copy = dir.join(format!("case-{case}.toml"));
                std::fs::write(&copy, text).unwrap();
                args[2] = copy.display().to_string();
            }
        }
        if rng.random_bool(0.8) {
            args.extend(["--rate-scale".into(), rate_scale(&mut rng)]);
        }
        args.extend(["--steps".into(), steps(&mut rng)]);
        // A run that is accepted plays at most 2,000 steps, so every accepted case is short.
        if let Some(i) = args.iter().position(|a| a == "--steps")
            && args[i + 1]
                .parse::<u64>()
                .is_ok_and(|n| n > 2_000 && n <= 2_102_400)
        {
            args[i + 1] = "2000".into();
        }
        let shown = args.join(" ");
        match run_limited(&args) {
            Err(finding) => findings.push(format!("case {case}: rlscale {shown}: {finding}")),
            Ok((code, stdout, stderr, wall)) => {
                let leftovers: Vec<String> = std::fs::read_dir(&out_dir)
                    .map(|d| {
                        d.filter_map(|e| {
                            let n = e.unwrap().file_name().to_string_lossy().into_owned();
                            n.contains(".tmp").then_some(n)
                        })
                        .collect()
                    })
                    .unwrap_or_default();
                if !leftovers.is_empty() {
                    findings.push(format!(
                        "case {case}: rlscale {shown}: left {leftovers:?} behind"
                    ));
                }
                match code {
                    0 => {
                        let ok = serde_json::from_str::<serde_json::Value>(&stdout)
                            .ok()
                            .is_some_and(|s| s["gpu_hours"].as_f64().is_some_and(f64::is_finite));
                        if ok {
                            finished += 1;
                        } else {
                            findings.push(format!(
                                "case {case}: rlscale {shown}: exit 0 without a finite summary: {stdout}"
                            ));
                        }
                    }
                    2 => {
                        let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
                        let one_line = lines.iter().filter(|l| l.starts_with("error:")).count()
                            == 1
                            && !stderr.contains("panicked")
                            && !stderr.contains("backtrace");
                        if one_line {
                            refused += 1;
                        } else {
                            findings.push(format!(
                                "case {case}: rlscale {shown}: exit 2 without a one-line error: {stderr}"
                            ));
                        }
                    }
                    other => findings.push(format!(
                        "case {case}: rlscale {shown}: exit {other} after {wall:?}: {stderr}"
                    )),
                }
            }
        }
    }
    eprintln!("fuzz (seed {seed}): {cases} cases, {finished} finished, {refused} refused");
    assert!(findings.is_empty(), "findings:\n{}", findings.join("\n"));
    // The draw covers both outcomes, so the harness is not passing vacuously.
    assert!(
        finished > 0 && refused > 0,
        "{finished} finished, {refused} refused"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

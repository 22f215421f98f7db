//! The slim `rlscale-controller` binary, the one the image runs: it takes the flags
//! `deploy/deployment.yaml` gives it, and bad input exits with code 2 and names what was wrong.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rlscale-controller"))
}

/// The Deployment's container args, read from the manifest.
fn manifest_args() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/deployment.yaml");
    let text = std::fs::read_to_string(path).expect("deploy/deployment.yaml");
    let d: serde_json::Value = serde_yaml::from_str(&text).expect("YAML");
    d["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_string())
        .collect()
}

#[test]
fn it_takes_the_manifests_flags_and_names_a_missing_kubeconfig() {
    let args = manifest_args();
    assert!(args.contains(&"--leader-elect".to_string()), "{args:?}");
    let out = bin()
        .args(&args)
        .args(["--kubeconfig", "/nonexistent/kubeconfig"])
        .env("POD_NAMESPACE", "rlscale-system")
        .output()
        .expect("run rlscale-controller");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Past argument parsing (the flags are all known), stopped at the kubeconfig, as bad input.
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/kubeconfig"), "{stderr}");
}

#[test]
fn bad_flags_exit_with_a_usage_error() {
    let out = bin().arg("--lease-duration").arg("soon").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("\"soon\" is not a duration"), "{stderr}");

    let out = bin()
        .args(["--reconcile-timeout", "0s", "--kubeconfig", "/x"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--reconcile-timeout must be > 0"),
        "{stderr}"
    );
}

#[test]
fn help_and_version_name_the_binary() {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--leader-elect",
        "--metrics-addr",
        "--decision-log",
        "--kubeconfig",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    let out = bin().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("rlscale-controller "));
}

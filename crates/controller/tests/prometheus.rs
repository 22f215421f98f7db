//! The Prometheus client against a real Prometheus (Debian's package), started on a loopback port.

use rlscale_testenv::prometheus::{PrometheusProcess, free_port};

use std::time::Duration;

use rlscale_controller::prom::{PromError, Prometheus};

fn client(url: &str, timeout_ms: u64) -> Prometheus {
    Prometheus::new(
        reqwest::Client::new(),
        url,
        Duration::from_millis(timeout_ms),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_answers_every_shape_of_result() {
    let p = PrometheusProcess::start(&[]).unwrap();
    let prom = client(&p.url, 5000);

    // One series.
    assert_eq!(prom.query("vector(3.25)").await.unwrap(), Some(3.25));
    // A scalar.
    assert_eq!(prom.query("scalar(vector(2))").await.unwrap(), Some(2.0));
    // Empty: a filter that drops the only sample.
    assert_eq!(prom.query("vector(1) > 2").await.unwrap(), None);
    // NaN, as histogram_quantile returns with no requests.
    let nan = prom.query("vector(0) / vector(0)").await.unwrap().unwrap();
    assert!(nan.is_nan(), "{nan}");
    // +Inf.
    assert_eq!(
        prom.query("vector(1) / vector(0)").await.unwrap(),
        Some(f64::INFINITY)
    );
    // Several series.
    let two = r#"label_replace(vector(1), "pod", "a", "", "") or label_replace(vector(2), "pod", "b", "", "")"#;
    match prom.query(two).await {
        Err(PromError::SeveralSeries { n: 2, .. }) => {}
        other => panic!("expected SeveralSeries, got {other:?}"),
    }
    // A PromQL syntax error: Prometheus says bad_data.
    match prom.query("sum(").await {
        Err(PromError::Query {
            error_type, error, ..
        }) => {
            assert_eq!(error_type, "bad_data");
            assert!(!error.is_empty());
        }
        other => panic!("expected a Query error, got {other:?}"),
    }
    // A range vector is not an instant value.
    let e = prom.query("prometheus_build_info[1m]").await.unwrap_err();
    assert_eq!(e.label(), "prometheus_malformed", "{e}");
    // A wrong base path: HTTP 404 without a Prometheus body.
    let wrong = client(&format!("{}/nothing-here", p.url), 5000);
    match wrong.query("vector(1)").await {
        Err(PromError::Http { status: 404, .. }) => {}
        other => panic!("expected HTTP 404, got {other:?}"),
    }
}

#[tokio::test]
async fn unreachable_and_slow_servers_are_errors_not_hangs() {
    // Nothing listens on this port.
    let port = free_port().unwrap();
    let e = client(&format!("http://127.0.0.1:{port}"), 2000)
        .query("vector(1)")
        .await
        .unwrap_err();
    assert_eq!(e.label(), "prometheus_unreachable", "{e}");
    assert!(e.to_string().contains(&port.to_string()), "{e}");

    // A server that accepts the connection and never answers.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let start = std::time::Instant::now();
    let e = client(&format!("http://{addr}"), 300)
        .query("vector(1)")
        .await
        .unwrap_err();
    assert!(matches!(e, PromError::Timeout { .. }), "{e:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    hold.abort();
}

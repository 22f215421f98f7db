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
    let p = PrometheusProcess::start_for_test(&[]);
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

/// The default queries select the target's own pods only. Pods of `llm-shadow` are named `llm-…`
/// too (issue 18, bug 1: a prefix selector scaled `llm` on `llm-shadow`'s queue); neither they nor
/// another Deployment `llm-2`'s nor another namespace's count for `llm`. A StatefulSet's pods
/// (`<name>-<ordinal>`) are its own too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_queries_select_only_the_targets_own_pods() {
    use rlscale_controller::crd::{Field, Queries};
    let series = [
        ("serving", "llm-7d4b9c8f5-x2k9q", 1),
        ("serving", "llm-7d4b9c8f5-bq4zt", 2),
        ("serving", "llm-shadow-5f6c7b8d9-k2m4p", 100),
        ("serving", "llm-shadow-5f6c7b8d9-zz9xw", 200),
        ("serving", "llm-2-6b8d5c7f4-hq2rt", 1000),
        ("other", "llm-7d4b9c8f5-x2k9q", 10000),
        ("serving", "db-0", 4),
        ("serving", "db-1", 5),
        ("serving", "db-backup-0", 50_000),
    ];
    let text: String = series
        .iter()
        .map(|(ns, pod, v)| {
            format!("vllm:num_requests_waiting{{namespace=\"{ns}\",pod=\"{pod}\"}} {v}\n")
        })
        .collect();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let t = text.clone();
            async move { t }
        }),
    );
    let serve = tokio::spawn(async move { axum::serve(l, app).await });
    let p = PrometheusProcess::start_for_test(std::slice::from_ref(&addr));
    let prom = client(&p.url, 5000);
    let t = std::time::Instant::now();
    while prom
        .query("sum(vllm:num_requests_waiting)")
        .await
        .ok()
        .flatten()
        != Some(61_312.0)
    {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "Prometheus did not scrape the series:\n{}",
            p.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let queue = |ns: &str, target: &str| {
        Queries::default().resolved(ns, target)[&Field::QueueDepth].clone()
    };
    for (ns, target, want) in [
        ("serving", "llm", 3.0),
        ("serving", "llm-shadow", 300.0),
        ("serving", "llm-2", 1000.0),
        ("other", "llm", 10000.0),
        ("serving", "db", 9.0),
        ("serving", "db-backup", 50_000.0),
    ] {
        let q = queue(ns, target);
        assert_eq!(
            prom.query(&q).await.unwrap(),
            Some(want),
            "{ns}/{target}: {q}"
        );
    }
    // The hour-scale windows of feature schema 2 are subqueries over the 1-minute rate: the real
    // Prometheus parses and runs each default (no series yet: an empty result, not an error), and
    // refuses a malformed subquery, so this check can fail.
    let all = Queries::default().resolved("serving", "llm");
    for f in [
        Field::ArrivalRatePeak15m,
        Field::ArrivalRatePeak1h,
        Field::ArrivalRate1h,
    ] {
        let q = &all[&f];
        assert!(q.contains(&all[&Field::ArrivalRate1m]), "{q}");
        if let Err(e) = prom.query(q).await {
            panic!("{q}: {e}");
        }
    }
    assert!(
        prom.query("max_over_time((sum(up))[15m:15s)")
            .await
            .is_err()
    );
    serve.abort();
}

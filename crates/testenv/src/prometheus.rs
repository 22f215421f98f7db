//! A real Prometheus (Debian's `prometheus` package) on a loopback port, with a temporary TSDB and a
//! generated config that scrapes the given targets every second, for tests and `rlscale dev-cluster`.
//! It is the binary run directly, not the system service; it is killed on drop.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound, then released).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running Prometheus server.
#[derive(Debug)]
pub struct PrometheusProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    dir: tempfile::TempDir,
}

impl PrometheusProcess {
    /// Start on a free port, scraping `targets` (`host:port`, path `/metrics`) every second with
    /// `honor_labels` (the targets set their own `namespace` and `pod` labels).
    ///
    /// A probed free port can be taken by another process before Prometheus binds it; then Prometheus
    /// exits with "address already in use" and this tries another port (up to 5 times).
    pub fn start(targets: &[String]) -> std::io::Result<PrometheusProcess> {
        let mut tries = 0;
        loop {
            match Self::start_on(free_port()?, targets) {
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 4 => tries += 1,
                other => return other,
            }
        }
    }

    /// [`PrometheusProcess::start`] for a test: on failure the test fails with the one line that says
    /// what to install (`scripts/test` installs it), not an `unwrap` of an I/O error.
    #[track_caller]
    pub fn start_for_test(targets: &[String]) -> PrometheusProcess {
        match Self::start(targets) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    /// Start on `port`. The binary is `$RLSCALE_PROMETHEUS`, else `prometheus` on the PATH.
    pub fn start_on(port: u16, targets: &[String]) -> std::io::Result<PrometheusProcess> {
        let bin = std::env::var("RLSCALE_PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
        let dir = tempfile::tempdir()?;
        let targets = targets
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: serving\n    honor_labels: true\n    static_configs:\n      - targets: [{targets}]\n"
        );
        let cfg_path = dir.path().join("prometheus.yml");
        std::fs::File::create(&cfg_path)?.write_all(config.as_bytes())?;
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", cfg_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot start {bin:?} ({e}): install Debian's prometheus package (`apt-get install prometheus`, or run the tests with `scripts/test`, which installs it) or set RLSCALE_PROMETHEUS to its path"
                    ),
                )
            })?;
        let mut p = PrometheusProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        p.wait_ready(Duration::from_secs(30))?;
        Ok(p)
    }

    fn wait_ready(&mut self, within: Duration) -> std::io::Result<()> {
        let deadline = Instant::now() + within;
        let addr = self.url.trim_start_matches("http://").to_string();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = self.log();
                let kind = if log.contains("address already in use") {
                    std::io::ErrorKind::AddrInUse
                } else {
                    std::io::ErrorKind::Other
                };
                return Err(std::io::Error::new(
                    kind,
                    format!("Prometheus exited ({status}) before it was ready; its log:\n{log}"),
                ));
            }
            if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"GET /-/ready HTTP/1.0\r\n\r\n");
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                if buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200") {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "Prometheus did not become ready in {within:?}; its log:\n{}",
                self.log()
            ),
        ))
    }

    /// What Prometheus logged (warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Its temporary folder (config, TSDB, log).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for PrometheusProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port someone else holds: Prometheus exits at once, and the error says the address is in use
    /// (so `start` moves to another port) instead of waiting 30 s for a readiness that never comes.
    #[test]
    fn a_taken_port_is_reported_at_once_as_address_in_use() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let t0 = Instant::now();
        let Err(e) = PrometheusProcess::start_on(port, &[]) else {
            panic!("port {port} is taken, yet Prometheus started on it");
        };
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
        assert!(t0.elapsed() < Duration::from_secs(25), "{:?}", t0.elapsed());
        // And `start` finds a free one.
        let p = PrometheusProcess::start(&[]).unwrap();
        assert_ne!(p.url, format!("http://127.0.0.1:{port}"));
    }
}

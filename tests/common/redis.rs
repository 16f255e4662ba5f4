//! A redis-server of the test's own, for the tests of the redis tag provider and of the
//! outreach state on Redis (included with `#[path]` by the test files that need it).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A redis-server of the test's own on a free loopback port, in a temp dir; killed on drop.
/// `None` (after a loud message) when redis-server is not installed, except under CI.
pub struct Redis {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Option<Redis> {
        if Command::new("redis-server").arg("--version").output().is_err() {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is not installed, and CI must run the redis provider tests (.ci/run installs it)"
            );
            eprintln!("\n\n*** SKIP: redis-server is not installed; the redis provider test did not run ***\n\n");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let redis = Redis { child, url: format!("redis://127.0.0.1:{port}/"), _dir: dir };
        for _ in 0..1500 {
            if let Ok(mut c) = redis::Client::open(redis.url.as_str()).unwrap().get_connection() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return Some(redis);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {port}");
    }

    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str()).unwrap().get_connection().unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

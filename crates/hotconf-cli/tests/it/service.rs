//! A running `hotconf run` for end-to-end tests: the real binary, its JSON log lines, and a small
//! HTTP client for its admin endpoint. Every wait has a deadline; nothing sleeps and hopes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver};
use serde_json::Value;

/// How long any awaited event may take. Generous: CI machines are slow and shared.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub struct Service {
    child: Child,
    pub admin: SocketAddr,
    logs: Receiver<Value>,
    /// Every log line seen so far, raw, to grep for secrets.
    pub raw: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Service {
    /// Starts `hotconf run` on `config` with a fresh snapshot store, a 50 ms poll interval, JSON
    /// logs and the admin endpoint on a free loopback port; waits for `watcher.started`.
    pub fn start(config: &Path, snapshots: &Path, env: &[(&str, &str)]) -> Service {
        Self::try_start(config, snapshots, env, 50).expect("service started")
    }

    /// Like `start`, polling every `interval_ms`; `Err` with the exit code and its output (stderr,
    /// then the JSON log lines) when it exits first.
    pub fn try_start(
        config: &Path,
        snapshots: &Path,
        env: &[(&str, &str)],
        interval_ms: u64,
    ) -> Result<Service, (i32, String)> {
        Self::try_start_with(config, snapshots, env, interval_ms, &[])
    }

    /// Like `start`, with more `hotconf run` options.
    pub fn start_with_args(config: &Path, snapshots: &Path, env: &[(&str, &str)], args: &[&str]) -> Service {
        Self::try_start_with(config, snapshots, env, 50, args).expect("service started")
    }

    /// Like `try_start`, with `extra` arguments after the others.
    pub fn try_start_with(
        config: &Path,
        snapshots: &Path,
        env: &[(&str, &str)],
        interval_ms: u64,
        extra: &[&str],
    ) -> Result<Service, (i32, String)> {
        Self::try_start_limited(config, snapshots, env, interval_ms, extra, None)
    }

    /// Like `try_start_with`, the process's limit on open files (soft and hard) set to `nofile`
    /// before it runs, as `prlimit --nofile=N:N` does.
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every unix
    pub fn try_start_limited(
        config: &Path,
        snapshots: &Path,
        env: &[(&str, &str)],
        interval_ms: u64,
        extra: &[&str],
        nofile: Option<u64>,
    ) -> Result<Service, (i32, String)> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotconf"));
        if let Some(n) = nofile {
            use std::os::unix::process::CommandExt as _;
            // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let limit = libc::rlimit { rlim_cur: n as libc::rlim_t, rlim_max: n as libc::rlim_t };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        cmd.args(["run", "--config", config.to_str().unwrap(), "--snapshots", snapshots.to_str().unwrap()])
            .args(["--interval-ms", &interval_ms.to_string(), "--admin-addr", "127.0.0.1:0", "--log-format", "json"])
            .args(extra)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn hotconf");
        let stdout = child.stdout.take().unwrap();
        let (tx, logs) = unbounded();
        let raw = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let raw2 = std::sync::Arc::clone(&raw);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                raw2.lock().unwrap().push_str(&line);
                raw2.lock().unwrap().push('\n');
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        let mut service = Service { child, admin: "127.0.0.1:1".parse().unwrap(), logs, raw };
        let deadline = Instant::now() + DEADLINE;
        loop {
            match service.logs.recv_timeout(Duration::from_millis(100)) {
                Ok(v) if v["event"] == "watcher.started" => {
                    service.admin = v["admin_addr"].as_str().unwrap().parse().unwrap();
                    return Ok(service);
                }
                Ok(_) => {}
                Err(_) => {
                    if let Some(status) = service.child.try_wait().unwrap() {
                        let mut output = String::new();
                        service.child.stderr.take().unwrap().read_to_string(&mut output).unwrap();
                        // Then the JSON log lines, once the reader has seen the pipe close.
                        while let Err(crossbeam_channel::RecvTimeoutError::Timeout) | Ok(_) =
                            service.logs.recv_deadline(deadline)
                        {
                            assert!(Instant::now() < deadline, "hotconf's stdout never closed");
                        }
                        output.push_str(&service.raw.lock().unwrap());
                        return Err((status.code().unwrap_or(-1), output));
                    }
                    assert!(Instant::now() < deadline, "hotconf run did not start in time");
                }
            }
        }
    }

    /// Waits for the next log event named `event` (skipping others) and returns it.
    pub fn wait_for(&self, event: &str) -> Value {
        self.wait_until(|v| v["event"] == event)
    }

    /// Waits for the next log line matching `pred`.
    pub fn wait_until(&self, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.logs.recv_timeout(left) {
                Ok(v) if pred(&v) => return v,
                Ok(_) => {}
                Err(_) => {
                    panic!("no matching log event within {DEADLINE:?}; log so far:\n{}", self.raw.lock().unwrap())
                }
            }
        }
    }

    /// `METHOD path` against the admin endpoint: (status, body).
    pub fn http(&self, method: &str, path: &str) -> (u16, String) {
        http(self.admin, method, path, None)
    }

    pub fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.http("GET", path);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. "TERM", "HUP").
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status().unwrap();
        assert!(ok.success());
    }

    /// Sends SIGTERM and waits for the exit: (code, stdout, stderr).
    pub fn stop_with_stderr(mut self) -> (Option<i32>, String, String) {
        let mut stderr = self.child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let (code, stdout) = self.stop();
        (code, stdout, reader.join().unwrap())
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn stop(mut self) -> (Option<i32>, String) {
        self.signal("TERM");
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = self.raw.lock().unwrap().clone();
                return (status.code(), log);
            }
            assert!(Instant::now() < deadline, "hotconf run did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Every JSON line any test saw has the documented shape of its event.
        if !std::thread::panicking() {
            let log = self.raw.lock().unwrap().clone();
            if let Err(e) = crate::log_schema::check_json_log(&log) {
                panic!("{e}\nlog:\n{log}");
            }
        }
    }
}

/// A `diff` log field (an array of changes) as lines a person reads: `rate_limits.local.rpm: 600 → 900`.
pub fn diff_text(line: &Value) -> String {
    let changes = line["diff"].as_array().unwrap_or_else(|| panic!("diff is not an array: {line}"));
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    changes
        .iter()
        .map(|c| {
            let stem = c["file"].as_str().unwrap().trim_end_matches(".yaml").trim_end_matches(".yml");
            let at = format!("{stem}.{}", c["path"].as_str().unwrap());
            match c["change"].as_str().unwrap() {
                "modified" => format!("{at}: {} → {}", text(&c["old"]), text(&c["new"])),
                "added" => format!("{at}: added {}", text(&c["value"])),
                other => format!("{at}: {other}"),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A one-shot HTTP/1.1 request: (status, body).
pub fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect admin");
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "{method} {path} HTTP/1.1\r\nhost: test\r\n{auth}content-length: 0\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// Replaces the first `from` in `dir/file` with `to`, atomically (see [`write_atomic`]); `from`
/// must be there.
pub fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    write_atomic(&path, &text.replacen(from, to, 1));
}

/// Writes `content` to `path` atomically (temp file + rename), as editors and deploy tools do.
pub fn write_atomic(path: &Path, content: &str) {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// `hotconf run --log-format text` on `config` with a fresh store, its stdout lines as they come;
/// killed on drop if the test ends before it stops it.
pub struct TextService {
    child: Child,
    lines: Receiver<String>,
    /// Every line seen so far, for failure messages.
    pub seen: Vec<String>,
}

impl TextService {
    /// Starts it with the admin endpoint at `admin_addr` (`off`, or an `IP:PORT`).
    pub fn start(config: &Path, snapshots: &Path, admin_addr: &str) -> TextService {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hotconf"))
            .args(["run", "--config", config.to_str().unwrap(), "--snapshots", snapshots.to_str().unwrap()])
            .args(["--interval-ms", "50", "--admin-addr", admin_addr, "--log-format", "text"])
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn hotconf");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        TextService { child, lines, seen: Vec::new() }
    }

    /// The next line for which `wanted` holds, within DEADLINE; panics with every line seen.
    pub fn wait_line(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let line = self
                .lines
                .recv_deadline(deadline)
                .unwrap_or_else(|_| panic!("no {what} within {DEADLINE:?}:\n{}", self.seen.join("\n")));
            self.seen.push(line.clone());
            if wanted(&line) {
                return line;
            }
        }
    }

    /// Sends SIGTERM and waits for the exit; whether it exited 0.
    pub fn stop(mut self) -> bool {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        self.child.wait().unwrap().success()
    }
}

impl Drop for TextService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback HTTP listener standing in for Slack: answers 200 and hands over each body.
pub fn fake_slack() -> (u16, Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, posts) = crossbeam_channel::unbounded::<String>();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut len, mut line) = (0, String::new());
            while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                line.clear();
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            let _ = tx.send(String::from_utf8(body).unwrap());
        }
    });
    (port, posts)
}

/// Waits until one of the service's threads whose name starts with `thread` is blocked in the
/// kernel at a wait channel containing `wchan` (as `/proc/PID/task/TID/wchan` shows it).
pub fn wait_for_thread_blocked(service: &Service, thread: &str, wchan: &str) {
    let deadline = Instant::now() + DEADLINE;
    let tasks = format!("/proc/{}/task", service.pid());
    loop {
        let blocked = std::fs::read_dir(&tasks).into_iter().flatten().flatten().any(|task| {
            let read = |f: &str| std::fs::read_to_string(task.path().join(f)).unwrap_or_default();
            read("comm").starts_with(thread) && read("wchan").contains(wchan)
        });
        if blocked {
            return;
        }
        assert!(Instant::now() < deadline, "no thread {thread}* blocked in {wchan} within {DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

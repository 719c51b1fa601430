//! `restore --wait`: asks the running service, through its admin endpoint (`GET /status`), until
//! a version's content is running, the service rejects it, or the timeout passes. Compares content
//! (the bundle hash), not numbers: the service stores a restore as a new version.
//!
//! The client is a one-request HTTP/1.1 GET on a std `TcpStream`; connecting, writing and every
//! read are bounded by the time left, and the response by [`MAX_RESPONSE_BYTES`].

use std::io::{IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::Exit;

/// The largest `/status` answer read (it holds the last attempt's diagnostics).
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// The longest one request may take, within the overall timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How often `/status` is asked.
const POLL: Duration = Duration::from_millis(100);

/// Where to ask, and for how long.
#[derive(Debug, Clone)]
pub struct WaitFor {
    /// The overall bound.
    pub timeout: Duration,
    /// The admin endpoint.
    pub admin: SocketAddr,
    /// The bearer token, when the service needs one.
    pub token: Option<String>,
}

/// What the service said before the files were written: the last attempt's time, so a rejection
/// seen later is known to be of the new content.
#[derive(Debug, Clone, Copy)]
pub struct Baseline {
    last_attempt_at: Option<f64>,
    started_unix: f64,
}

impl WaitFor {
    /// Asks once, quickly, before anything is written; an unreachable service is no error yet.
    pub fn baseline(&self) -> Baseline {
        let started_unix = unix_now();
        let last_attempt_at = match self.status(Instant::now() + REQUEST_TIMEOUT) {
            Ok(Reply { status: 200, json: Some(json) }) => json["last_attempt"]["at_unix"].as_f64(),
            _ => None,
        };
        Baseline { last_attempt_at, started_unix }
    }

    /// Waits until the service runs `bundle_hash` (version `version`'s content).
    pub fn until_running(&self, version: u64, bundle_hash: &str, baseline: Baseline) -> Exit {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let tty = std::io::stderr().is_terminal();
        let mut last_seen = String::from("no answer yet");
        loop {
            let now_seen = match self.status(deadline.min(Instant::now() + REQUEST_TIMEOUT)) {
                Ok(Reply { status: 200, json: Some(json) }) => {
                    let running = json["running_version"].as_u64().unwrap_or(0);
                    if json["bundle_hash"].as_str() == Some(bundle_hash) {
                        println!(
                            "the service at {} runs version {version}'s content (as version {running})",
                            self.admin
                        );
                        return Exit::Ok;
                    }
                    let attempt = &json["last_attempt"];
                    // Rejected: the attempt judged this very content (the service says which); a
                    // service that does not say is judged by the time of its attempt.
                    let ours = match attempt["bundle_hash"].as_str() {
                        Some(judged) => judged == bundle_hash,
                        None => baseline.is_newer(attempt["at_unix"].as_f64()),
                    };
                    if attempt["result"] == "rejected" && ours {
                        report_rejection(version, running, attempt);
                        return Exit::Invalid;
                    }
                    match attempt["result"].as_str() {
                        _ if json["pinned"].is_u64() => format!(
                            "the service runs version {running}, pinned live until the files change or a manual reload \
                             (POST /reload)"
                        ),
                        Some("failed") => format!(
                            "the service runs version {running}; its last attempt failed ({}), it retries",
                            attempt["error"].as_str().unwrap_or("?")
                        ),
                        _ => format!("the service runs version {running}"),
                    }
                }
                Ok(Reply { status: status @ (401 | 403), .. }) => {
                    eprintln!("error: the admin endpoint {} answered {status} to GET /status", self.admin);
                    eprintln!("  help: set the admin token in the variable named by --admin-token-env (default HOTCONF_ADMIN_TOKEN)");
                    return Exit::Failure;
                }
                Ok(Reply { status, .. }) => format!("GET /status answered {status}"),
                Err(e) => format!("the admin endpoint {} is unreachable ({e})", self.admin),
            };
            if tty && now_seen != last_seen {
                eprintln!("waiting for version {version}: {now_seen} ({:.1}s)", started.elapsed().as_secs_f64());
            }
            last_seen = now_seen;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                eprintln!(
                    "error: timed out after {:?} waiting for the service at {} to run version {version}: {last_seen}",
                    self.timeout, self.admin
                );
                eprintln!("  help: the files are written; `hotconf history` and GET /status show what happened");
                return Exit::Failure;
            }
            std::thread::sleep(POLL.min(left));
        }
    }

    /// `GET /status`, every step bounded by `deadline`.
    fn status(&self, deadline: Instant) -> std::io::Result<Reply> {
        let left = || {
            let d = deadline.saturating_duration_since(Instant::now());
            if d.is_zero() {
                Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"))
            } else {
                Ok(d)
            }
        };
        let mut stream = TcpStream::connect_timeout(&self.admin, left()?)?;
        stream.set_write_timeout(Some(left()?))?;
        let auth = self.token.as_deref().map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
        let host = self.admin;
        stream
            .write_all(format!("GET /status HTTP/1.1\r\nhost: {host}\r\n{auth}connection: close\r\n\r\n").as_bytes())?;
        let mut response = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            stream.set_read_timeout(Some(left()?))?;
            let n = match stream.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buf[..n]);
            if response.len() > MAX_RESPONSE_BYTES {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "the answer is too large"));
            }
        }
        parse_response(&response)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP/1.1 answer"))
    }
}

impl Baseline {
    /// Whether an attempt made at `at_unix` came after the files were written.
    fn is_newer(&self, at_unix: Option<f64>) -> bool {
        match (at_unix, self.last_attempt_at) {
            (None, _) => false,
            (Some(at), Some(before)) => at > before,
            // Nothing known from before: trust the clocks, with a second of slack.
            (Some(at), None) => at >= self.started_unix - 1.0,
        }
    }
}

fn report_rejection(version: u64, running: u64, attempt: &Value) {
    for d in attempt["diagnostics"].as_array().into_iter().flatten() {
        let at = match (d["line"].as_u64(), d["column"].as_u64()) {
            (Some(l), Some(c)) => format!(":{l}:{c}"),
            _ => String::new(),
        };
        let path = d["path"].as_str().map(|p| format!("{p}: ")).unwrap_or_default();
        let (file, message) = (d["file"].as_str().unwrap_or("?"), d["message"].as_str().unwrap_or("?"));
        let line = format!("{file}{at}: {path}{message}");
        eprintln!("{}", crate::escape::visible(&line));
    }
    eprintln!("error: the service rejected version {version}'s content; it keeps running version {running}");
    eprintln!("  help: the service checks its own environment; `hotconf validate` on its host shows the same problems");
}

struct Reply {
    status: u16,
    json: Option<Value>,
}

/// Status code and JSON body of a whole HTTP/1.1 response (content-length, chunked, or to EOF).
fn parse_response(raw: &[u8]) -> Option<Reply> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let body = if chunked { dechunk(body)? } else { body.to_vec() };
    Some(Reply { status, json: serde_json::from_slice(&body).ok() })
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{\"a\": 1}\n").unwrap();
        assert_eq!((r.status, r.json.unwrap()["a"].as_u64()), (200, Some(1)));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n5\r\n\": 2}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.json.unwrap()["a"].as_u64(), Some(2));
        assert_eq!(parse_response(b"HTTP/1.1 401 Unauthorized\r\n\r\n").unwrap().status, 401);
        assert!(parse_response(b"garbage").is_none());
    }
}

//! The admin endpoint's body cap through the real binary, on raw TCP: the cap counts the bytes
//! read whatever the framing (chunked included), a body past it is refused with `413` before
//! the rest is read and the connection closed, and a body must arrive whole within the head
//! timeout again or get `408`; a handler never runs for a refused body.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::service::{Service, DEADLINE};
use crate::support::config_copy;

/// The server's cap on a request body.
const CAP: usize = 64 * 1024;

/// A connection that has sent `POST path` with a chunked body to come.
fn post_chunked(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect admin");
    stream.set_write_timeout(Some(DEADLINE)).unwrap();
    write!(stream, "POST {path} HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n").unwrap();
    stream
}

/// One chunk of `n` bytes, framed.
fn chunk(n: usize) -> Vec<u8> {
    let mut c = format!("{n:x}\r\n").into_bytes();
    c.extend(std::iter::repeat_n(b'a', n));
    c.extend_from_slice(b"\r\n");
    c
}

/// The response status and whole text, read until the server closes the connection (EOF, or a
/// reset after the response when the server left the body unread). Panics if the server keeps
/// the connection open past DEADLINE.
fn read_until_closed(stream: &mut TcpStream) -> (u16, String) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("the server kept the connection open ({e}); read so far: {response:?}"),
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

/// Whether the server has answered or closed, without blocking.
fn server_answered(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    let answered = match stream.peek(&mut buf) {
        Ok(_) => true,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).unwrap();
    answered
}

/// What started the service's last attempt since it started (`None`: no reload has run).
fn last_trigger(s: &Service) -> Option<String> {
    s.get_json("/status")["last_attempt"]["trigger"].as_str().map(str::to_owned)
}

#[test]
fn a_chunked_body_of_2_mib_is_413_and_the_service_still_answers() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[]);
    let started = Instant::now();
    let mut stream = post_chunked(s.admin, "/reload");
    // 256 chunks of 8 KiB; the server stops reading past 64 KiB, so a write may fail once it has
    // answered and closed (what the kernel's buffers took before that is all it ever reads).
    let piece = chunk(8 * 1024);
    for _ in 0..256 {
        if stream.write_all(&piece).is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let (status, response) = read_until_closed(&mut stream);
    assert_eq!(status, 413, "{response}");
    assert!(response.contains("request body too large"), "{response}");
    assert!(started.elapsed() < DEADLINE, "413 took {:?}", started.elapsed());
    // The handler never ran, and the service answers as before.
    assert_eq!(s.http("GET", "/healthz"), (200, "ok\n".to_owned()));
    assert_eq!(last_trigger(&s), None, "a reload ran for a refused body");
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_chunked_body_past_the_cap_sent_slowly_is_413_once_the_cap_is_passed_and_closed() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[]);
    let started = Instant::now();
    let mut stream = post_chunked(s.admin, "/reload");
    // 1 KiB every 20 ms, up to 100 KiB, until the server answers.
    let piece = chunk(1024);
    let mut sent = 0;
    while sent < 100 * 1024 && !server_answered(&mut stream) {
        if stream.write_all(&piece).is_err() {
            break;
        }
        sent += 1024;
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, response) = read_until_closed(&mut stream);
    assert_eq!(status, 413, "after {sent} bytes in {:?}: {response}", started.elapsed());
    // Answered once the cap was passed, before the rest was sent (so never read), and well
    // within the body deadline (5 s by default; a 408 would mean it waited for the whole body).
    assert!(sent > CAP, "413 after only {sent} bytes");
    assert!(sent < 100 * 1024, "no answer until all {sent} bytes were sent");
    assert!(started.elapsed() < DEADLINE, "413 took {:?}", started.elapsed());
    assert_eq!(s.http("GET", "/healthz").0, 200);
    assert_eq!(last_trigger(&s), None, "a reload ran for a refused body");
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_body_dripping_under_the_cap_is_408_at_the_body_deadline_and_closed() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let timeout = Duration::from_millis(500);
    let s = Service::start_with_args(config.path(), store.path(), &[], &["--admin-head-timeout-ms", "500"]);
    let mut stream = post_chunked(s.admin, "/reload");
    let head_sent = Instant::now();
    // One byte every 50 ms: each read makes progress, but the body as a whole must be in within
    // the deadline.
    let piece = chunk(1);
    while !server_answered(&mut stream) {
        assert!(head_sent.elapsed() < DEADLINE, "no answer to a dripping body within {DEADLINE:?}");
        if stream.write_all(&piece).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, response) = read_until_closed(&mut stream);
    let after = head_sent.elapsed();
    assert_eq!(status, 408, "{response}");
    assert!(response.contains("request body not received in time"), "{response}");
    assert!(after >= timeout - Duration::from_millis(100), "closed early: {after:?}");
    assert!(after < timeout + Duration::from_secs(2), "closed late: {after:?}");
    assert_eq!(last_trigger(&s), None, "a reload ran for a refused body");
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_small_chunked_body_is_read_and_the_request_served() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[]);
    let mut stream = post_chunked(s.admin, "/reload");
    stream.write_all(&chunk(60)).unwrap();
    stream.write_all(&chunk(40)).unwrap();
    stream.write_all(b"0\r\n\r\n").unwrap();
    let (status, response) = read_until_closed(&mut stream);
    assert_eq!(status, 200, "{response}");
    assert_eq!(last_trigger(&s).as_deref(), Some("manual"));
    // A body with a Content-Length under the cap is read as well.
    let mut stream = TcpStream::connect_timeout(&s.admin, Duration::from_secs(5)).unwrap();
    let body = "x".repeat(100);
    write!(stream, "POST /reload HTTP/1.1\r\nhost: test\r\ncontent-length: {}\r\n\r\n{body}", body.len()).unwrap();
    let (status, response) = read_until_closed(&mut stream);
    assert_eq!(status, 200, "{response}");
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
}

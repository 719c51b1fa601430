//! The admin endpoint's HTTP server: hyper's HTTP/1.1 server on a current-thread tokio runtime
//! confined to one named thread (`hotconf-admin`). The reload pipeline never sees the runtime.
//!
//! Hardened for a hostile network: a request head must arrive whole within [`Limits::head_timeout`]
//! (hyper's `header_read_timeout`, a whole-head deadline, not a per-read one), so a client
//! dripping a byte a second is closed; its body, whatever the framing (`Content-Length` or
//! chunked), is read and counted before any handler runs: past [`MAX_BODY_BYTES`] read it gets
//! `413` without the rest being read, and a body not whole within the same timeout again (counted
//! from the end of the head) gets `408`; either way the connection is closed. Idle and slow
//! connections cost a task each, never a thread, so 1,000 of them do not delay `/healthz`; open
//! connections are capped at
//! [`Limits::max_connections`], and a new connection past the cap evicts the oldest one that has no
//! request in flight (a request is in flight once its body is in and its handler runs), so an
//! attacker holding connections, or dripping bodies, cannot starve new ones. The cap is kept
//! [`FD_RESERVE`] below the soft limit on open files ([`Limits::within_fd_limit`]), so held
//! connections never take the descriptors the poller and the store need; a failed `accept` (out
//! of descriptors all the same) backs off, 10 ms doubling to 1 s, and a burst of them is one log line.
//!
//! `GET`/`HEAD` handlers run on the runtime thread and must never block; other methods (a
//! reload, a pin, which wait on the reloader) run on a small blocking pool.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::oneshot;

/// How long a client has to send a whole request head (request line and headers), by default.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head accepted; larger ones get `431`.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Largest request body accepted, counted as its bytes are read whatever the framing (bodies are
/// read and dropped, never kept); a body past it gets `413` and the connection is closed unread.
const MAX_BODY_BYTES: u64 = 64 * 1024;
/// Open connections at most, by default; past it, the oldest idle one is closed for the new one.
pub const MAX_CONNECTIONS: usize = 1024;
/// File descriptors the admin server leaves to the rest of the process (the poller's reads, the
/// store's commit, the alerts' socket, the runtime's own): its connections stop this far below
/// the soft limit on open files.
pub const FD_RESERVE: u64 = 64;
/// The first pause after a failed `accept` (out of descriptors, say), doubled per failure in a row.
const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(10);
/// The longest pause after failed `accept`s.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// A burst of failed `accept`s that lasts is still logged this often.
const ACCEPT_BURST_LOG_EVERY: Duration = Duration::from_secs(60);
/// Pending connections the kernel queues before `accept` (capped by `net.core.somaxconn`).
#[cfg(unix)]
const LISTEN_BACKLOG: libc::c_int = 4096;
/// Threads running blocking handlers (a reload, a pin) at once.
const BLOCKING_THREADS: usize = 4;
/// How long the server's shutdown waits for handlers still running.
const SHUTDOWN_WAIT: Duration = Duration::from_millis(300);

/// A parsed request.
#[derive(Debug)]
pub struct Request {
    /// The method (`HEAD` arrives as `HEAD`; the router serves it like `GET`).
    pub method: Method,
    /// The path's segments, each percent-decoded.
    pub segments: Vec<String>,
    /// The raw query string.
    pub query: String,
    /// The `Authorization` header.
    pub authorization: Option<String>,
}

/// A response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Extra headers (`Allow`, `Retry-After`).
    pub headers: Vec<(hyper::header::HeaderName, String)>,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self { status, content_type: "text/plain; charset=utf-8", body: body.into(), headers: Vec::new() }
    }

    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self { status, content_type: "application/json", body: format!("{body}\n"), headers: Vec::new() }
    }

    pub fn error(status: u16, message: &str) -> Self {
        Self::json(status, &serde_json::json!({ "error": message }))
    }

    /// `405` naming the methods `allow`ed.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self::error(405, "method not allowed").with_header(ALLOW, allow)
    }

    /// Adds a `Retry-After` header of whole seconds, rounded up.
    pub fn with_retry_after(self, after: Duration) -> Self {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        self.with_header(RETRY_AFTER, &secs.max(1).to_string())
    }

    fn with_header(mut self, name: hyper::header::HeaderName, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

/// The server's bounds against slow and numerous clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client has to send a whole request head; then as long again for its whole body.
    pub head_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { head_timeout: HEAD_TIMEOUT, max_connections: MAX_CONNECTIONS }
    }
}

impl Limits {
    /// These limits with the connection cap lowered to leave [`FD_RESERVE`] descriptors below the
    /// process's soft limit on open files (`soft_limit`, `None` when unknown), so held admin
    /// connections can never take the descriptors a reload needs.
    #[must_use]
    pub fn within_fd_limit(mut self, soft_limit: Option<u64>) -> Self {
        if let Some(limit) = soft_limit {
            let budget = usize::try_from(limit.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
            self.max_connections = self.max_connections.min(budget).max(1);
        }
        self
    }
}

/// A bound admin address that serves nothing yet: `hotconf run` binds before it stores or
/// applies anything, so a taken port changes nothing.
pub struct Bound {
    listener: TcpListener,
}

impl Bound {
    /// Binds `addr`.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        // std listens with a backlog of 128: a burst of reconnecting clients (an attacker's
        // connections all cut at the head deadline at once) would overflow it, and a probe's
        // SYN dropped there waits a second for its retransmit. Linux lets `listen` raise it.
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd as _;
            // SAFETY: `listen` on a socket we own and keep open; no memory is passed.
            if unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Self { listener })
    }

    /// Serves every request with `handler`.
    pub fn serve<H>(self, limits: Limits, handler: H) -> io::Result<Server>
    where
        H: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        Server::start_on(self.listener, limits, Arc::new(handler))
    }
}

/// The admin server: one thread running the runtime. Dropping it stops the server and joins the
/// thread within [`SHUTDOWN_WAIT`] plus a scheduling margin.
pub struct Server {
    addr: SocketAddr,
    max_connections: usize,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

impl Server {
    fn start_on(listener: TcpListener, limits: Limits, handler: Handler) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(BLOCKING_THREADS)
            .thread_name("hotconf-admin-blocking")
            .build()?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new().name("hotconf-admin".into()).spawn(move || {
            let accepted = runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                accept_loop(listener, limits, handler, stopped).await;
                Ok::<_, io::Error>(())
            });
            if let Err(e) = accepted {
                tracing::error!(event = "admin.error", error = %e, "the admin endpoint stopped");
            }
            // Connection tasks are dropped; a reload still waited on is abandoned.
            runtime.shutdown_timeout(SHUTDOWN_WAIT);
        })?;
        Ok(Self { addr, max_connections: limits.max_connections, stop: Some(stop), thread: Some(thread) })
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The connection cap in force.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The open connections, oldest first: whether each has a request in flight, and the sender
/// whose drop closes it.
#[derive(Default)]
struct Connections {
    next: u64,
    open: BTreeMap<u64, (Arc<AtomicBool>, oneshot::Sender<()>)>,
}

impl Connections {
    /// Closes the oldest connection with no request in flight; false if all are busy.
    fn evict_oldest_idle(&mut self) -> bool {
        let oldest = self.open.iter().find(|(_, (busy, _))| !busy.load(Ordering::Relaxed)).map(|(id, _)| *id);
        match oldest {
            Some(id) => {
                self.open.remove(&id);
                true
            }
            None => false,
        }
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    limits: Limits,
    handler: Handler,
    mut stopped: oneshot::Receiver<()>,
) {
    // Only the runtime's one thread touches it; the lock is never contended.
    let connections = Arc::new(Mutex::new(Connections::default()));
    let mut failures = AcceptFailures::default();
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                failures.ended();
                stream
            }
            Err(e) => {
                // Out of file descriptors (or a transient error): make room, back off, and log
                // the burst once, not each failure.
                lock(&connections).evict_oldest_idle();
                let pause = failures.failed(&e);
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = tokio::time::sleep(pause) => {}
                }
                continue;
            }
        };
        let (busy, closed) = (Arc::new(AtomicBool::new(false)), oneshot::channel::<()>());
        let (id, evicted) = {
            let mut c = lock(&connections);
            let full = c.open.len() >= limits.max_connections.max(1);
            if full && !c.evict_oldest_idle() {
                // Every connection is mid-request: refuse this one rather than cut one short.
                continue;
            }
            let id = c.next;
            c.next += 1;
            c.open.insert(id, (Arc::clone(&busy), closed.0));
            (id, full)
        };
        if evicted {
            // Let the evicted connection's task close its descriptor before the next accept, so
            // a flood of new connections never holds more than the cap.
            tokio::task::yield_now().await;
        }
        let _ = stream.set_nodelay(true);
        let (handler, connections) = (Arc::clone(&handler), Arc::clone(&connections));
        tokio::spawn(async move {
            serve_connection(stream, limits.head_timeout, handler, busy, closed.1).await;
            lock(&connections).open.remove(&id);
        });
    }
}

/// A burst of failed `accept`s: counted, paused after with a doubling backoff, and logged once as
/// one `admin.accept_error` line when it ends (and every [`ACCEPT_BURST_LOG_EVERY`] while it lasts).
#[derive(Default)]
struct AcceptFailures {
    /// The failures since the burst (or its last line) began, when it began, the last error.
    burst: Option<(u64, std::time::Instant, String)>,
    pause: Duration,
}

impl AcceptFailures {
    /// Counts a failure; returns how long to pause before the next `accept`.
    fn failed(&mut self, error: &io::Error) -> Duration {
        let now = std::time::Instant::now();
        let (count, since, last) = self.burst.get_or_insert_with(|| (0, now, String::new()));
        *count += 1;
        *last = error.to_string();
        if now.duration_since(*since) >= ACCEPT_BURST_LOG_EVERY {
            self.log();
        }
        self.pause = if self.pause.is_zero() { ACCEPT_BACKOFF_FIRST } else { (self.pause * 2).min(ACCEPT_BACKOFF_MAX) };
        self.pause
    }

    /// A connection was accepted: the burst, if any, is over.
    fn ended(&mut self) {
        if self.burst.is_some() {
            self.log();
        }
        self.pause = Duration::ZERO;
    }

    fn log(&mut self) {
        if let Some((count, since, error)) = self.burst.take() {
            tracing::warn!(
                event = "admin.accept_error",
                count,
                duration_ms = since.elapsed().as_millis() as u64,
                error = %error,
                "connections could not be accepted (the last error given)"
            );
        }
    }
}

fn lock(c: &Mutex<Connections>) -> std::sync::MutexGuard<'_, Connections> {
    c.lock().unwrap_or_else(|e| e.into_inner())
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    head_timeout: Duration,
    handler: Handler,
    busy: Arc<AtomicBool>,
    evicted: oneshot::Receiver<()>,
) {
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let (handler, busy) = (Arc::clone(&handler), Arc::clone(&busy));
        async move {
            let response = respond(request, head_timeout, handler, &busy).await;
            busy.store(false, Ordering::Relaxed);
            Ok::<_, Infallible>(response)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        // One request per connection, as before (clients read to EOF); a scrape every few
        // seconds gains nothing from keep-alive.
        .keep_alive(false)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_header_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        _ = evicted => {}
    }
}

/// Reads the body (bounded in size and time), then runs the handler, marking the connection
/// `busy` (not to be evicted) only while the handler runs.
async fn respond(
    request: hyper::Request<Incoming>,
    body_timeout: Duration,
    handler: Handler,
    busy: &AtomicBool,
) -> hyper::Response<Full<Bytes>> {
    let (head, body) = request.into_parts();
    let parsed = match parse(&head) {
        Ok(parsed) => read_body(body, body_timeout).await.map(|()| parsed),
        Err(r) => Err(r),
    };
    busy.store(true, Ordering::Relaxed);
    let response = match parsed {
        Err(r) => r,
        Ok(parsed) if matches!(parsed.method, Method::GET | Method::HEAD) => {
            // Never blocks: served on the runtime thread.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&parsed)))
                .unwrap_or_else(|_| Response::error(500, "internal error"))
        }
        Ok(parsed) => tokio::task::spawn_blocking(move || handler(&parsed))
            .await
            .unwrap_or_else(|_| Response::error(500, "internal error")),
    };
    encode(response)
}

/// Reads and drops the body, counting its bytes as they arrive, whatever the framing: `413` as
/// soon as more than [`MAX_BODY_BYTES`] have been read (the rest is never read), `408` unless it
/// is whole within `timeout`, `400` for a malformed one (a bad chunk, a body cut short). No body
/// is kept: no handler needs one.
async fn read_body(mut body: Incoming, timeout: Duration) -> Result<(), Response> {
    let read = async {
        let mut read: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| Response::error(400, "malformed or incomplete request body"))?;
            read += frame.data_ref().map_or(0, |data| data.len() as u64);
            if read > MAX_BODY_BYTES {
                return Err(Response::error(413, "request body too large"));
            }
        }
        Ok(())
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| Err(Response::error(408, "request body not received in time")))
}

fn parse(request: &hyper::http::request::Parts) -> Result<Request, Response> {
    // A declared length past the cap is refused before a byte of the body is read.
    let length = request.headers.get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
    if length.and_then(|l| l.parse::<u64>().ok()).is_some_and(|l| l > MAX_BODY_BYTES) {
        return Err(Response::error(413, "request body too large"));
    }
    let path = request.uri.path();
    if !path.starts_with('/') {
        return Err(Response::error(400, "the request target must be a path"));
    }
    let segments = path[1..]
        .split('/')
        .map(percent_decode)
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Response::error(400, "malformed percent-encoding in the path"))?;
    let authorization =
        request.headers.get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    Ok(Request {
        method: request.method.clone(),
        segments,
        query: request.uri.query().unwrap_or("").to_owned(),
        authorization,
    })
}

fn encode(r: Response) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(r.body)));
    *response.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(r.content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (name, value) in r.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

/// Decodes `%XX` escapes; `None` for a malformed escape or a result that is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The value of `key` in a query string, percent-decoded.
pub fn query_param(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| percent_decode(k).as_deref() == Some(key))
        .map(|(_, v)| percent_decode(v).unwrap_or_else(|| v.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_accepts_back_off_from_10_ms_doubling_to_1_s_and_start_over_after_a_success() {
        let mut failures = AcceptFailures::default();
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let pauses: Vec<u64> = (0..9).map(|_| failures.failed(&emfile).as_millis() as u64).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert_eq!(failures.burst.as_ref().map(|b| b.0), Some(9), "one burst, counted");
        failures.ended();
        assert!(failures.burst.is_none(), "logged and over");
        assert_eq!(failures.failed(&emfile), ACCEPT_BACKOFF_FIRST);
    }

    #[test]
    fn the_connection_cap_leaves_a_reserve_below_the_file_limit() {
        let limits = Limits::default();
        assert_eq!(limits.within_fd_limit(Some(1024)).max_connections, 960);
        assert_eq!(limits.within_fd_limit(Some(1 << 20)).max_connections, MAX_CONNECTIONS);
        assert_eq!(limits.within_fd_limit(None).max_connections, MAX_CONNECTIONS);
        assert_eq!(limits.within_fd_limit(Some(10)).max_connections, 1);
    }

    #[test]
    fn percent_decoding() {
        let cases = [
            ("mary", Some("mary")),
            ("m%61ry", Some("mary")),
            ("a%2Fb", Some("a/b")),
            ("%C3%BC", Some("ü")),
            ("%", None),
            ("%4", None),
            ("%zz", None),
            ("%FF", None),
        ];
        for (input, expected) in cases {
            assert_eq!(percent_decode(input).as_deref(), expected, "{input}");
        }
    }
}

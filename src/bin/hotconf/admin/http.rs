//! A minimal HTTP/1.1 server for the admin endpoints: one request per connection, bounded sizes
//! and timeouts, so a malformed, oversized or slow client gets an error and never a crash.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

/// Largest request head (request line and headers) accepted.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Largest request body accepted (bodies are read and ignored).
const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long a client has to send its request, and to read the response.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more wait in a short queue, then get 503.
const WORKERS: usize = 4;

/// A parsed request.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
}

/// A response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self { status, content_type: "text/plain; charset=utf-8", body: body.into() }
    }

    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self { status, content_type: "application/json", body: format!("{body}\n") }
    }

    pub fn error(status: u16, message: &str) -> Self {
        Self::json(status, &serde_json::json!({ "error": message }))
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// The admin server: an accept thread and a few workers. Dropping it stops and joins them.
pub struct Server {
    addr: SocketAddr,
    stop: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

/// A bound admin address that serves nothing yet: `hotconf run` binds before it stores or
/// applies anything, so a taken port changes nothing.
pub struct Bound {
    listener: TcpListener,
}

impl Bound {
    /// Binds `addr`.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self { listener: TcpListener::bind(addr)? })
    }

    /// Serves every request with `handler`.
    pub fn serve<H>(self, handler: H) -> io::Result<Server>
    where
        H: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        Server::start_on(self.listener, handler)
    }
}

impl Server {
    /// Serves every request on `listener` with `handler`.
    fn start_on<H>(listener: TcpListener, handler: H) -> io::Result<Self>
    where
        H: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        let addr = listener.local_addr()?;
        let handler = std::sync::Arc::new(handler);
        let (conn_tx, conn_rx): (Sender<TcpStream>, Receiver<TcpStream>) = bounded(16);
        let (stop_tx, stop_rx) = bounded::<()>(0);
        let mut threads = Vec::new();
        for i in 0..WORKERS {
            let rx = conn_rx.clone();
            let handler = std::sync::Arc::clone(&handler);
            threads.push(std::thread::Builder::new().name(format!("hotconf-admin-{i}")).spawn(move || {
                for stream in rx {
                    serve(stream, &*handler);
                }
            })?);
        }
        threads.push(std::thread::Builder::new().name("hotconf-admin".into()).spawn(move || {
            for stream in listener.incoming() {
                if matches!(stop_rx.try_recv(), Err(crossbeam_channel::TryRecvError::Disconnected)) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                if let Err(TrySendError::Full(mut stream)) = conn_tx.try_send(stream) {
                    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
                    let _ = write_response(&mut stream, &Response::error(503, "admin server busy"));
                }
            }
        })?);
        Ok(Self { addr, stop: Some(stop_tx), threads })
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.take();
        // Wake the blocking accept so it sees the stop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn serve(mut stream: TcpStream, handler: &dyn Fn(&Request) -> Response) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let response = match read_request(&stream) {
        Ok(request) => match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&request))) {
            Ok(r) => r,
            Err(_) => Response::error(500, "internal error"),
        },
        Err(r) => r,
    };
    if write_response(&mut stream, &response).is_ok() {
        // Close gracefully: closing with unread input would reset the connection and could
        // discard the response before the client reads it.
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let _ = io::copy(&mut (&stream).take(MAX_BODY_BYTES as u64), &mut io::sink());
    }
}

fn read_request(stream: &TcpStream) -> Result<Request, Response> {
    let mut reader = BufReader::new(stream.take((MAX_HEAD_BYTES + MAX_BODY_BYTES) as u64 + 1));
    let mut head_len = 0;
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return Err(Response::error(400, "incomplete request")),
            Ok(n) => head_len += n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(Response::error(408, "request timed out"))
            }
            Err(_) => return Err(Response::error(400, "malformed request")),
        }
        if head_len > MAX_HEAD_BYTES {
            return Err(Response::error(431, "request head too large"));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            if lines.is_empty() {
                continue;
            }
            break;
        }
        lines.push(line);
    }
    let mut parts = lines[0].split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Response::error(400, "malformed request line"));
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err(Response::error(400, "malformed request line"));
    }
    let mut authorization = None;
    let mut content_length = 0usize;
    for header in &lines[1..] {
        let Some((name, value)) = header.split_once(':') else {
            return Err(Response::error(400, "malformed header"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().map_err(|_| Response::error(400, "bad content-length"))?;
        } else if name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Response::error(400, "chunked bodies are not accepted"));
        }
    }
    if content_length > MAX_BODY_BYTES {
        return Err(Response::error(413, "request body too large"));
    }
    let mut body = vec![0; content_length];
    if reader.read_exact(&mut body).is_err() {
        return Err(Response::error(400, "incomplete body"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Request { method: method.to_owned(), path: path.to_owned(), query: query.to_owned(), authorization })
}

fn write_response(stream: &mut TcpStream, r: &Response) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\ncache-control: no-store\r\n\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(r.body.as_bytes())?;
    stream.flush()
}

/// The value of `key` in a query string (no percent-decoding needed for our parameters).
pub fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v)
}

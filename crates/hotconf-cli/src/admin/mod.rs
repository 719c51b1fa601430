//! The admin endpoint of `hotconf run`: health, metrics, status, the effective config, manual
//! reload and pin (`/rollback/N`, its old name, still answers), and a window onto the live components (route and acquire).

mod http;

use std::net::SocketAddr;
use std::sync::Arc;

use hotconf::{AttemptOutcome, FailureCause, Live};
use hotconf_gateway::components::{Decision, GatewayView};
use hotconf_gateway::GatewayConfig;

use crate::observe::Metrics;
use serde_json::json;

use http::{query_param, Request, Response};
pub use http::{Bound, Limits, Server, HEAD_TIMEOUT, MAX_CONNECTIONS};
use hyper::Method;

/// The default admin address: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9477";

/// What the handlers read.
pub struct Admin {
    /// The running pipeline: its status, reloads and pins, and the gateway's view.
    pub live: Arc<Live<GatewayConfig>>,
    pub metrics: Arc<Metrics>,
    /// When set, every endpoint but `/healthz` and `/metrics` requires `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

/// Binds the admin address; nothing is served until [`start`].
pub fn bind(addr: SocketAddr) -> std::io::Result<Bound> {
    Bound::bind(addr)
}

/// Serves the admin endpoint on an address bound by [`bind`].
pub fn start(bound: Bound, limits: Limits, admin: Admin) -> std::io::Result<Server> {
    bound.serve(limits, move |request| admin.handle(request))
}

/// The admin routes, by path; each serves the methods its [`Route::allow`] names.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Healthz,
    Readyz,
    Metrics,
    Status,
    Config,
    Reload,
    Pin(&'a str),
    Agent(&'a str),
    Acquire(&'a str),
}

impl<'a> Route<'a> {
    /// The route of a percent-decoded path, or `None` (404).
    fn of(segments: &'a [String]) -> Option<Self> {
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        Some(match segments.as_slice() {
            ["healthz"] => Route::Healthz,
            ["readyz"] => Route::Readyz,
            ["metrics"] => Route::Metrics,
            ["status"] => Route::Status,
            ["config"] => Route::Config,
            ["reload"] => Route::Reload,
            ["pin", n] | ["rollback", n] => Route::Pin(n),
            ["route", agent] => Route::Agent(agent),
            ["acquire", provider] => Route::Acquire(provider),
            _ => return None,
        })
    }

    /// The methods served, as the `Allow` header lists them.
    fn allow(&self) -> &'static str {
        match self {
            Route::Reload | Route::Pin(_) | Route::Acquire(_) => "POST",
            _ => "GET, HEAD",
        }
    }

    fn allows(&self, method: &Method) -> bool {
        match self.allow() {
            "POST" => method == Method::POST,
            _ => method == Method::GET || method == Method::HEAD,
        }
    }
}

impl Admin {
    fn handle(&self, r: &Request) -> Response {
        let route = Route::of(&r.segments);
        // Probes and scrapes need no token (the shipped scrape config and a kubelet send none, and
        // neither reveals a value or changes anything); every other endpoint does, when one is set.
        if !matches!(route, Some(Route::Healthz | Route::Readyz | Route::Metrics)) && !self.authorized(r) {
            return Response::error(401, "missing or wrong bearer token");
        }
        let Some(route) = route else { return Response::error(404, "not found") };
        if !route.allows(&r.method) {
            return Response::method_not_allowed(route.allow());
        }
        match route {
            Route::Healthz => self.healthz(),
            Route::Readyz => match self.view() {
                Some(view) => Response::text(200, format!("ready: version {}\n", view.version())),
                None => Response::text(503, "not ready: no config applied yet\n"),
            },
            Route::Metrics => Response {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: {
                    let status = self.live.status();
                    self.metrics.last_successful_scan(status.last_successful_scan);
                    self.metrics.stalled(&status.stalled);
                    let mut body = self.metrics.render();
                    crate::observe::metrics::render_process(&mut body);
                    body
                },
                headers: Vec::new(),
            },
            Route::Status => Response::json(200, &json!(*self.live.status())),
            Route::Config => match self.view() {
                Some(view) => {
                    Response::json(200, &json!({ "version": view.version(), "config": **view.publication().config() }))
                }
                None => Response::error(503, "no config applied yet"),
            },
            Route::Reload => outcome(self.live.reload()),
            Route::Pin(n) => match n.parse::<u64>() {
                Ok(version) => outcome(self.live.pin(version)),
                Err(_) => Response::error(400, "the version must be a whole number"),
            },
            Route::Agent(agent) => {
                let Some(view) = self.view() else { return Response::error(503, "no config applied yet") };
                match view.routes().route(agent) {
                    Some(providers) => Response::json(
                        200,
                        &json!({ "agent": agent, "version": view.version(), "providers": providers }),
                    ),
                    None => Response::error(404, "unknown agent"),
                }
            }
            Route::Acquire(provider) => self.acquire(provider, &r.query),
        }
    }

    /// `POST /acquire/P?tokens=N`: `200` with what is left, or `429` saying when to retry (a
    /// `Retry-After` header and `retry_after` seconds), or that it can never succeed (more
    /// tokens than the provider's per-minute budget).
    fn acquire(&self, provider: &str, query: &str) -> Response {
        let tokens = match query_param(query, "tokens").map(|t| t.parse::<u64>()) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => return Response::error(400, "tokens must be a whole number"),
        };
        let Some(view) = self.view() else { return Response::error(503, "no config applied yet") };
        if view.providers().get(provider).is_none() {
            return Response::error(404, "unknown provider");
        }
        let decision = view.acquire(provider, tokens);
        let mut body = json!({ "provider": provider, "version": view.version(), "tokens": tokens });
        if let (Some(obj), serde_json::Value::Object(d)) = (body.as_object_mut(), json!(decision)) {
            obj.extend(d);
        }
        let limit = view.limiters().get(provider).map(|(_, limit)| *limit);
        if let Some(limit) = &limit {
            body["limits"] = json!(limit);
        }
        match decision {
            Decision::Denied { retry_after: Some(after) } => {
                body["can_never_succeed"] = json!(false);
                Response::json(429, &body).with_retry_after(after)
            }
            Decision::Denied { retry_after: None } => {
                let per_minute = limit.map(|l| l.tokens_per_minute.get()).unwrap_or(0);
                body.as_object_mut().map(|o| o.remove("retry_after"));
                body["can_never_succeed"] = json!(true);
                body["error"] = json!(format!(
                    "the request asks for {tokens} tokens, more than the {per_minute} tokens per minute \
                     the provider allows: it can never succeed, do not retry"
                ));
                Response::json(429, &body)
            }
            Decision::Allowed { .. } | Decision::Unlimited => Response::json(200, &body),
        }
    }

    /// `GET /healthz`: 503 when the poller or the reloader stopped making progress (a heartbeat
    /// past its allowance), else 200; either way a line per stalled thread and per polling fault
    /// present now (a fault alone is not a failed probe: restarting would not fix a mount).
    fn healthz(&self) -> Response {
        let status = self.live.status();
        let mut body = String::new();
        for thread in &status.stalled {
            let age = status.heartbeat_age_seconds.get(thread).copied().unwrap_or_default();
            body.push_str(&format!("stalled: {thread} (no progress for {age:.1} s)\n"));
        }
        for (kind, paths) in &status.faults {
            for path in paths {
                body.push_str(&format!("fault: {kind} {}\n", crate::escape::visible(path)));
            }
        }
        if status.stalled.is_empty() {
            Response::text(200, format!("ok\n{body}"))
        } else {
            Response::text(503, body)
        }
    }

    /// The gateway's view of the live version (its components' parts are always attached).
    fn view(&self) -> Option<GatewayView> {
        GatewayView::of(&self.live)
    }

    fn authorized(&self, r: &Request) -> bool {
        let Some(token) = &self.token else { return true };
        let given = r.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
        // Compare in constant time for equal lengths.
        given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

fn outcome(o: AttemptOutcome) -> Response {
    let status = match &o {
        AttemptOutcome::Failed { failure } if failure.cause == FailureCause::NoAnswer => {
            return Response::error(504, "the reloader did not answer in time")
        }
        AttemptOutcome::Applied { .. } | AttemptOutcome::Unchanged { .. } => 200,
        AttemptOutcome::Rejected { .. } => 422,
        AttemptOutcome::Failed { .. } => 409,
        AttemptOutcome::NotFound { .. } => 404,
        _ => 500,
    };
    Response::json(status, &json!(o))
}

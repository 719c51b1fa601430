//! The admin endpoint of `hotconf run`: health, metrics, status, the effective config, manual
//! reload and rollback, and a window onto the live components (route and acquire).

mod http;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hotconf::components::gateway::Gateway;
use hotconf::reload::metrics::Metrics;
use hotconf::reload::{AttemptOutcome, ReloaderHandle};
use serde_json::json;

use http::{query_param, Request, Response};
pub use http::{Bound, Server};

/// The default admin address: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9477";

/// What the handlers read.
pub struct Admin {
    pub gateway: Gateway,
    pub metrics: Arc<Metrics>,
    pub reloader: Arc<ReloaderHandle>,
    /// When set, every endpoint but `/healthz` requires `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

/// How long `POST /reload` and `POST /rollback/N` wait for the outcome.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// Binds the admin address; nothing is served until [`start`].
pub fn bind(addr: SocketAddr) -> std::io::Result<Bound> {
    Bound::bind(addr)
}

/// Serves the admin endpoint on an address bound by [`bind`].
pub fn start(bound: Bound, admin: Admin) -> std::io::Result<Server> {
    bound.serve(move |request| admin.handle(request))
}

impl Admin {
    fn handle(&self, r: &Request) -> Response {
        let segments: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        if segments != ["healthz"] && !self.authorized(r) {
            return Response::error(401, "missing or wrong bearer token");
        }
        match (r.method.as_str(), segments.as_slice()) {
            ("GET", ["healthz"]) => Response::text(200, "ok\n"),
            ("GET", ["metrics"]) => Response {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: self.metrics.render(),
            },
            ("GET", ["status"]) => Response::json(200, &json!(*self.reloader.status())),
            ("GET", ["config"]) => match self.gateway.view() {
                Some(view) => {
                    Response::json(200, &json!({ "version": view.version(), "config": **view.publication.config() }))
                }
                None => Response::error(503, "no config applied yet"),
            },
            ("POST", ["reload"]) => outcome(self.reloader.reload(COMMAND_TIMEOUT)),
            ("POST", ["rollback", n]) => match n.parse::<u64>() {
                Ok(version) => outcome(self.reloader.pin(version, COMMAND_TIMEOUT)),
                Err(_) => Response::error(400, "the version must be a whole number"),
            },
            ("GET", ["route", agent]) => {
                let Some(view) = self.gateway.view() else { return Response::error(503, "no config applied yet") };
                match view.routes.route(agent) {
                    Some(providers) => Response::json(
                        200,
                        &json!({ "agent": agent, "version": view.version(), "providers": providers }),
                    ),
                    None => Response::error(404, "unknown agent"),
                }
            }
            ("POST", ["acquire", provider]) => {
                let tokens = match query_param(&r.query, "tokens").map(str::parse::<u64>) {
                    None => 0,
                    Some(Ok(n)) => n,
                    Some(Err(_)) => return Response::error(400, "tokens must be a whole number"),
                };
                let Some(view) = self.gateway.view() else { return Response::error(503, "no config applied yet") };
                if view.providers.get(provider).is_none() {
                    return Response::error(404, "unknown provider");
                }
                let decision = view.acquire(provider, tokens);
                let mut body = json!({ "provider": provider, "version": view.version(), "tokens": tokens });
                if let (Some(obj), serde_json::Value::Object(d)) = (body.as_object_mut(), json!(decision)) {
                    obj.extend(d);
                }
                if let Some((_, limit)) = view.limiters.get(provider) {
                    body["limits"] = json!(limit);
                }
                Response::json(200, &body)
            }
            (_, ["healthz" | "metrics" | "status" | "config" | "reload"])
            | (_, ["rollback" | "route" | "acquire", _]) => Response::error(405, "method not allowed"),
            _ => Response::error(404, "not found"),
        }
    }

    fn authorized(&self, r: &Request) -> bool {
        let Some(token) = &self.token else { return true };
        let given = r.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
        // Compare in constant time for equal lengths.
        given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

fn outcome(outcome: Option<AttemptOutcome>) -> Response {
    match outcome {
        None => Response::error(504, "the reloader did not answer in time"),
        Some(o) => {
            let status = match &o {
                AttemptOutcome::Applied { .. } | AttemptOutcome::Unchanged { .. } => 200,
                AttemptOutcome::Rejected { .. } => 422,
                AttemptOutcome::Failed { .. } => 409,
            };
            Response::json(status, &json!(o))
        }
    }
}

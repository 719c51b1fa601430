//! The gateway's live components through the runtime: values change on apply, budgets survive,
//! and no reader ever sees a mix of two versions, even during 1,000 reloads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotconf::publish::{Publication, Sink};
use hotconf::{MapEnv, SourceFile, Sources};
use hotconf_gateway::components::{Decision, GatewayRuntime};
use hotconf_gateway::validate_config;
use hotconf_gateway::GatewayConfig;

use crate::support::CANARY;

/// A config whose every value encodes `n`, so a reader can tell which version it saw.
fn config(n: u64) -> Arc<GatewayConfig> {
    let (primary, fallback) = if n.is_multiple_of(2) { ("a", "b") } else { ("b", "a") };
    let sources = Sources::from_files([
        SourceFile::new(
            "providers.yaml",
            format!(
                "a:\n  model: model-{n}\n  base_url: http://127.0.0.1:1/{n}\n  api_key_env: A_KEY\nb:\n  model: model-{n}\n  base_url: http://127.0.0.1:2/{n}\n"
            ),
        ),
        SourceFile::new(
            "rate_limits.yaml",
            format!("a:\n  rpm: {}\n  burst: {}\n  tokens_per_minute: 1000000\n", 1000 + n, 1000 + n),
        ),
        SourceFile::new("agent_chains.yaml", format!("mary:\n  primary: {primary}\n  fallbacks: [{fallback}]\n")),
    ]);
    let valid = validate_config(sources, &MapEnv::new().with("A_KEY", CANARY)).unwrap();
    Arc::new(valid.into_parts().0)
}

fn publication(n: u64) -> Arc<Publication<GatewayConfig>> {
    Arc::new(Publication::new(n, blake3::hash(&n.to_le_bytes()), config(n)))
}

fn runtime() -> GatewayRuntime {
    GatewayRuntime::spawn(Arc::new(MapEnv::new().with("A_KEY", CANARY))).unwrap()
}

#[test]
fn apply_changes_every_component_and_keeps_limiter_budget() {
    let mut rt = runtime();
    let gateway = rt.gateway();
    assert!(gateway.view().is_none());
    rt.apply(publication(2)).unwrap();
    let v2 = gateway.view().unwrap();
    assert_eq!(v2.version(), 2);
    assert_eq!(v2.routes.route("mary").unwrap().iter().map(|p| p.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(v2.providers.get("a").unwrap().model, "model-2");
    assert_eq!(v2.providers.get("a").unwrap().api_key.as_ref().unwrap().expose(), CANARY);
    assert!(!format!("{:?}", v2.providers).contains(CANARY));
    for _ in 0..10 {
        assert!(matches!(v2.acquire("a", 1), Decision::Allowed { .. }));
    }
    let Decision::Allowed { remaining_requests, .. } = v2.acquire("a", 1) else { panic!() };
    assert_eq!(remaining_requests, 1002 - 11);

    rt.apply(publication(3)).unwrap();
    let v3 = gateway.view().unwrap();
    assert_eq!(v3.version(), 3);
    assert_eq!(v3.routes.route("mary").unwrap().iter().map(|p| p.as_str()).collect::<Vec<_>>(), ["b", "a"]);
    assert_eq!(v3.providers.get("b").unwrap().base_url, "http://127.0.0.1:2/3");
    // Same bucket, budget kept (not reset to the new burst of 1003).
    let Decision::Allowed { remaining_requests, .. } = v3.acquire("a", 1) else { panic!() };
    assert!(remaining_requests <= 1002 - 11, "budget was reset: {remaining_requests}");
    assert_eq!(
        rt.applied_versions(),
        vec![("rate_limiter", Some(3)), ("orchestrator", Some(3)), ("provider_factory", Some(3))]
    );
    // The old view is still whole for a request that holds it.
    assert_eq!(v2.providers.get("a").unwrap().model, "model-2");
}

#[test]
fn no_reader_sees_a_mix_of_versions_during_1000_reloads() {
    let mut rt = runtime();
    rt.apply(publication(0)).unwrap();
    let gateway = rt.gateway();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let gateway = gateway.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut seen = 0u64;
                let mut versions = std::collections::BTreeSet::new();
                while !stop.load(Ordering::Relaxed) {
                    let view = gateway.view().unwrap();
                    let n = view.version();
                    let route: Vec<&str> = view.routes.route("mary").unwrap().iter().map(|p| p.as_str()).collect();
                    let expected = if n.is_multiple_of(2) { ["a", "b"] } else { ["b", "a"] };
                    assert_eq!(route, expected, "route of v{n}");
                    assert_eq!(view.providers.get("b").unwrap().model, format!("model-{n}"));
                    let (_, limit) = view.limiters.get("a").unwrap();
                    assert_eq!(u64::from(limit.rpm.get()), 1000 + n);
                    assert!(!matches!(view.acquire("a", 1), Decision::Unlimited));
                    versions.insert(n);
                    seen += 1;
                }
                (seen, versions.len())
            })
        })
        .collect();
    let start = Instant::now();
    for n in 1..=1000 {
        rt.apply(publication(n)).unwrap();
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let (seen, distinct) = r.join().expect("a reader saw a torn version");
        assert!(seen > 0 && distinct > 1, "readers must overlap reloads: {seen} reads, {distinct} versions");
    }
    assert_eq!(gateway.view().unwrap().version(), 1000);
    assert!(elapsed < Duration::from_secs(60));
}

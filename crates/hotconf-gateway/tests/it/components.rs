//! The gateway's live components through the pipeline `hotconf run` builds: values change on
//! apply, budgets survive, and no reader ever sees a mix of two versions, even during 1,000
//! reloads.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotconf::{Live, MapEnv};
use hotconf_gateway::components::{pipeline, Decision, GatewayView};
use hotconf_gateway::GatewayConfig;

use crate::support::CANARY;

/// The files of a config whose every value encodes `n`, so a reader can tell which version it saw.
fn write_config(dir: &Path, n: u64) {
    let (primary, fallback) = if n.is_multiple_of(2) { ("a", "b") } else { ("b", "a") };
    let files = [
        (
            "providers.yaml",
            format!(
                "a:\n  model: model-{n}\n  base_url: http://127.0.0.1:1/{n}\n  api_key_env: A_KEY\nb:\n  model: model-{n}\n  base_url: http://127.0.0.1:2/{n}\n"
            ),
        ),
        ("rate_limits.yaml", format!("a:\n  rpm: {}\n  burst: {}\n  tokens_per_minute: 1000000\n", 1000 + n, 1000 + n)),
        ("agent_chains.yaml", format!("mary:\n  primary: {primary}\n  fallbacks: [{fallback}]\n")),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// The gateway's pipeline, as `hotconf run` builds it, on a directory holding version `n` (polled
/// hourly: only `reload` applies, so a test decides when versions change).
fn start(n: u64) -> (tempfile::TempDir, Live<GatewayConfig>) {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), n);
    let live = pipeline(dir.path(), Arc::new(MapEnv::new().with("A_KEY", CANARY)))
        .with_interval(Duration::from_secs(3600))
        .start()
        .unwrap();
    (dir, live)
}

/// Writes version `n` and applies it.
fn apply(dir: &Path, live: &Live<GatewayConfig>, n: u64) {
    write_config(dir, n);
    assert!(live.reload().is_applied(), "version with n = {n}");
}

#[test]
fn apply_changes_every_component_and_keeps_limiter_budget() {
    let (dir, live) = start(2);
    let v2 = GatewayView::of(&live).unwrap();
    assert_eq!(v2.version(), 1);
    assert_eq!(v2.routes().route("mary").unwrap().iter().map(|p| p.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(v2.providers().get("a").unwrap().model, "model-2");
    assert_eq!(v2.providers().get("a").unwrap().api_key.as_ref().unwrap().expose(), CANARY);
    assert!(!format!("{:?}", v2.providers()).contains(CANARY));
    for _ in 0..10 {
        assert!(matches!(v2.acquire("a", 1), Decision::Allowed { .. }));
    }
    let Decision::Allowed { remaining_requests, .. } = v2.acquire("a", 1) else { panic!() };
    assert_eq!(remaining_requests, 1002 - 11);

    apply(dir.path(), &live, 3);
    let v3 = GatewayView::of(&live).unwrap();
    assert_eq!(v3.version(), 2);
    assert_eq!(v3.routes().route("mary").unwrap().iter().map(|p| p.as_str()).collect::<Vec<_>>(), ["b", "a"]);
    assert_eq!(v3.providers().get("b").unwrap().base_url, "http://127.0.0.1:2/3");
    // Same bucket, budget kept (not reset to the new burst of 1003).
    let Decision::Allowed { remaining_requests, .. } = v3.acquire("a", 1) else { panic!() };
    assert!(remaining_requests <= 1002 - 11, "budget was reset: {remaining_requests}");
    let components: Vec<_> = live.status().components.iter().map(|c| (c.name, c.applied_version)).collect();
    assert_eq!(components, [("rate_limiter", Some(2)), ("orchestrator", Some(2)), ("provider_factory", Some(2))]);
    // The old view is still whole for a request that holds it.
    assert_eq!(v2.providers().get("a").unwrap().model, "model-2");
}

#[test]
fn no_reader_sees_a_mix_of_versions_during_1000_reloads() {
    let (dir, live) = start(0);
    let live = Arc::new(live);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let live = Arc::clone(&live);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut seen = 0u64;
                let mut versions = std::collections::BTreeSet::new();
                while !stop.load(Ordering::Relaxed) {
                    let view = GatewayView::of(&live).unwrap();
                    // Version v holds the files written for n = v - 1.
                    let n = view.version() - 1;
                    let route: Vec<&str> = view.routes().route("mary").unwrap().iter().map(|p| p.as_str()).collect();
                    let expected = if n.is_multiple_of(2) { ["a", "b"] } else { ["b", "a"] };
                    assert_eq!(route, expected, "route of v{n}");
                    assert_eq!(view.providers().get("b").unwrap().model, format!("model-{n}"));
                    let (_, limit) = view.limiters().get("a").unwrap();
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
        apply(dir.path(), &live, n);
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let (seen, distinct) = r.join().expect("a reader saw a torn version");
        assert!(seen > 0 && distinct > 1, "readers must overlap reloads: {seen} reads, {distinct} versions");
    }
    assert_eq!(GatewayView::of(&live).unwrap().version(), 1001);
    assert!(elapsed < Duration::from_secs(60));
}

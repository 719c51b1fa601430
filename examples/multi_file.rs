//! A config of several files with a cross-file rule: `cargo run --example multi_file`, then edit
//! the files in `examples/multi/`.
//!
//! The directory is read as one mapping from file stem to document, so `Gateway`'s fields are the
//! files: `deny_unknown_fields` refuses any other file, `Option` makes `limits.yaml` optional.
use std::collections::BTreeMap;

use hotconf::{Hotconf, Live, Problem, StartError};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    pub providers: BTreeMap<String, Provider>,
    pub routes: BTreeMap<String, Vec<String>>,
    pub limits: Option<BTreeMap<String, std::num::NonZeroU32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub base_url: String,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Rules serde cannot express: every route names an enabled provider defined in `providers.yaml`.
pub fn check(gateway: &Gateway, cx: &mut hotconf::Problems<'_>) {
    for (route, chain) in &gateway.routes {
        for (i, name) in chain.iter().enumerate() {
            let problem = match gateway.providers.get(name) {
                None => Problem::new("unknown-provider", format!("unknown provider `{name}`"))
                    .with_help("define it in providers.yaml"),
                Some(p) if !p.enabled => Problem::new("disabled-provider", format!("provider `{name}` is disabled")),
                Some(_) => continue,
            };
            cx.report(&format!("routes.{route}[{i}]"), problem);
        }
    }
}

pub fn start(dir: &str) -> Result<Live<Gateway>, StartError> {
    Hotconf::<Gateway>::dir(dir).with_check(check).start()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let live = start("examples/multi")?;
    println!("v{}: {:?}", live.version(), live.get().routes);
    for event in live.events() {
        match event {
            hotconf::ReloadEvent::Rejected { diagnostics, .. } => eprintln!("rejected, still running:\n{diagnostics}"),
            other => println!("{other:?}"),
        }
    }
    Ok(())
}

//! A one-file config, hot-reloaded: `cargo run --example one_file`, then edit
//! `examples/config/app.yaml` and watch the events.
use hotconf::{Hotconf, Live, StartError};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub greeting: String,
    pub workers: std::num::NonZeroU32,
}

pub fn start(path: &str) -> Result<Live<App>, StartError> {
    Hotconf::<App>::file(path).start()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let live = start("examples/config/app.yaml")?;
    println!("v{}: {} ({} workers)", live.version(), live.get().greeting, live.get().workers);
    for event in live.events() {
        match event {
            hotconf::ReloadEvent::Rejected { diagnostics, .. } => eprintln!("rejected, still running:\n{diagnostics}"),
            other => println!("{other:?}; now {:?}", live.get()),
        }
    }
    Ok(())
}

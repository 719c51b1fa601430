//! A one-file config, hot-reloaded: `cargo run --example one_file [PATH]` (default
//! `examples/config/app.yaml`), then edit the file: an applied edit prints the new value, a
//! rejected one is logged with every problem and kept out.
use hotconf::Hotconf;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct App {
    pub greeting: String,
    pub workers: std::num::NonZeroU32,
    /// `250ms`, `5s`, `2m`: any `Duration` field takes human text.
    pub timeout: Option<std::time::Duration>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Any `tracing` subscriber shows a rejected edit with every problem and its help.
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).init();
    let path = std::env::args().nth(1).unwrap_or_else(|| "examples/config/app.yaml".to_owned());
    let live = Hotconf::<App>::file(&path).start()?; // a bad file: `main` prints every problem
    println!("v{}: {} ({} workers)", live.version(), live.read().greeting, live.read().workers);
    // The events-driven way: react to each outcome (here, print it).
    for event in live.events() {
        println!("{event}");
    }
    Ok(())
}

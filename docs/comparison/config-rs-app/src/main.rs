// config-rs-app: load service.yaml + APP__ env overrides once, print ok.
// --- glue starts at the first `use` ---
use config::{Config, Environment, File};
use serde::Deserialize;
use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    // Harness, not counted: print the error's Display too (returning it prints its Debug).
    run().inspect_err(|e| eprintln!("display: {e}"))
}

fn run() -> Result<(), Box<dyn Error>> {
    let cfg: Service = Config::builder()
        .add_source(File::with_name("service.yaml"))
        .add_source(Environment::with_prefix("APP").separator("__"))
        .build()
        .and_then(|c| c.try_deserialize())?;
    println!("ok"); // --- glue ends at the first read of the value (next line) ---
    println!("{cfg:?}");
    Ok(())
}

// --- serde types (identical in all three programs, not counted) ---
#[derive(Debug, Deserialize)]
struct Service {
    server: Server,
    features: Features,
    db: Db,
    shutdown_timeout: std::time::Duration,
    log_level: Level,
}
#[derive(Debug, Deserialize)]
struct Server {
    host: String,
    port: u16,
    workers: u32,
}
#[derive(Debug, Deserialize)]
struct Features {
    dark_mode: bool,
    beta: bool,
}
#[derive(Debug, Deserialize)]
struct Db {
    url: String,
    pool: Pool,
}
#[derive(Debug, Deserialize)]
struct Pool {
    min: u32,
    max: u32,
}
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    Debug,
    Info,
    Warn,
}

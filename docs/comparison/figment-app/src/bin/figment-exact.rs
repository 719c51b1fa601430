// figment-exact: figment-app with Yaml::file_exact (no parent-directory search; errors on a missing file).
// --- glue starts at the first `use` ---
use figment::{
    Figment,
    providers::{Env, Format, Yaml},
};
use serde::Deserialize;
use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    // Harness, not counted: print the error's Display too (returning it prints its Debug).
    run().inspect_err(|e| eprintln!("display: {e}"))
}

fn run() -> Result<(), Box<dyn Error>> {
    let cfg: Service = Figment::new()
        .merge(Yaml::file_exact("service.yaml"))
        .merge(Env::prefixed("APP_").split("__"))
        .extract()?;
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

//! A service with its own components: each builds its part of every version on its own thread
//! and acknowledges it; a version goes live only once all did (within the ack timeout), otherwise
//! nothing changes. `cargo run --example components`, then edit `examples/config/app.yaml`.
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use hotconf::{Component, Publication};
use hotconf::{Hotconf, Live, StartError};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub greeting: String,
    pub workers: std::num::NonZeroU32,
}

/// A worker pool resized to each version's `workers`.
#[derive(Debug, Default)]
pub struct Pool {
    pub size: Arc<AtomicU32>,
}

impl Component<App> for Pool {
    type Part = u32;

    fn name(&self) -> &'static str {
        "pool"
    }

    fn build(&mut self, publication: &Publication<App>) -> u32 {
        let size = publication.config().workers.get();
        self.size.store(size, Ordering::Release);
        println!("pool: v{} resized to {size}", publication.version());
        size
    }
}

pub fn start(path: &str, pool: Pool) -> Result<Live<App>, StartError> {
    Hotconf::<App>::file(path).with_component(pool).start()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::default();
    let size = Arc::clone(&pool.size);
    let live = start("examples/config/app.yaml", pool)?;
    println!("v{}: {} workers in the pool", live.version(), size.load(Ordering::Acquire));
    for event in live.events() {
        println!("{event:?}; status: {:?}", live.status().components);
    }
    Ok(())
}

//! Integration tests, built into one binary (see ARCHITECTURE.md, "Tests").

mod cli_snapshot;
mod cli_validate;
mod components;
mod snapshot_store;
mod support;
mod validate;
mod watch;

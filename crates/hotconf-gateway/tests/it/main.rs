//! The gateway's integration tests: its schema's rules, table-driven and snapshotted, and its
//! components on their threads.

mod components;
mod support;
mod validate;

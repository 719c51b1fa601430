//! `hotconf history` benchmark: what verifying every version's file hashes costs on a full store
//! (50 versions of the shipped config's three files), in the library and through the real binary
//! (with a cold page cache only if run after `echo 3 > /proc/sys/vm/drop_caches`). Prints figures.
//!
//! Run with `cargo bench --bench history`.

use std::process::Command;
use std::time::{Duration, Instant};

use hotconf::store::{SnapshotStore, StoreConfig};
use hotconf::Origin;
use hotconf::{SourceFile, Sources};

const VERSIONS: u64 = 50;
const RUNS: usize = 200;
const BINARY_RUNS: usize = 30;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time(runs: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let shipped = Sources::read_dir(&config, Sources::DEFAULT_MAX_FILE_BYTES).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path(), StoreConfig::default()).unwrap();
    for n in 0..VERSIONS {
        let files = shipped.files().iter().map(|f| {
            let mut bytes = f.bytes().unwrap().to_vec();
            bytes.extend(format!("# edit {n}\n").as_bytes());
            SourceFile::new(f.name(), bytes)
        });
        store.commit(&Sources::from_files(files), Origin::Change).unwrap();
    }
    let bytes: u64 = store.list().unwrap().iter().flat_map(|m| &m.files).map(|f| f.size).sum();
    println!("store: {VERSIONS} versions, {} files, {bytes} bytes of config", VERSIONS * 3);

    let listed = time(RUNS, || assert_eq!(store.entries().unwrap().len(), VERSIONS as usize));
    let verified = time(RUNS, || assert_eq!(store.verified_entries().unwrap().len(), VERSIONS as usize));
    println!("entries (manifests only):        median {listed:>10.2?}");
    println!("verified_entries (every hash):   median {verified:>10.2?}  (+{:.2?})", verified.saturating_sub(listed));

    let exe = env!("CARGO_BIN_EXE_hotconf");
    let snapshots = dir.path().to_str().unwrap();
    let run = || {
        let out = Command::new(exe).args(["history", "--snapshots", snapshots]).output().unwrap();
        assert!(out.status.success());
    };
    run();
    println!("`hotconf history` (real binary): median {:>10.2?} over {BINARY_RUNS} runs", time(BINARY_RUNS, run));
}

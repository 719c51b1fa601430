//! `hotconf schema --write DIR` through the real binary on hostile names: a FIFO or a symlink
//! already at a schema's name is replaced by a regular file, never waited on or followed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::hotconf;

/// How long `schema --write` may take before the test kills it and fails (it takes milliseconds).
const WRITE_DEADLINE: Duration = Duration::from_secs(5);

/// What `hotconf schema STEM` prints.
fn printed(stem: &str) -> String {
    let out = hotconf(&["schema", stem], &[]);
    assert!(out.status.success(), "hotconf schema {stem}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[cfg(unix)]
#[test]
fn schema_write_replaces_a_fifo_and_a_symlink_at_the_names_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let precious = outside.path().join("precious.txt");
    std::fs::write(&precious, "precious").unwrap();
    let fifo = dir.path().join("rate_limits.schema.json");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let link = dir.path().join("providers.schema.json");
    std::os::unix::fs::symlink(&precious, &link).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_hotconf"))
        .args(["schema", "--write", dir.path().to_str().unwrap()])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hotconf");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > WRITE_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hotconf schema --write still running after {WRITE_DEADLINE:?} (waiting on the FIFO?)");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");

    // The symlink was replaced, not followed.
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious");
    for stem in ["agent_chains", "providers", "rate_limits"] {
        let path = dir.path().join(format!("{stem}.schema.json"));
        let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
        assert!(kind.is_file(), "{} is {kind:?}, not a regular file", path.display());
        assert!(
            std::fs::read_to_string(&path).unwrap() == printed(stem),
            "{} differs from `hotconf schema {stem}`",
            path.display()
        );
        assert!(stderr.contains(&format!("wrote {}", path.display())), "{stderr}");
    }
    // Nothing but the three schemas: no temporary file left behind.
    let mut names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["agent_chains.schema.json", "providers.schema.json", "rate_limits.schema.json"]);
}

#[cfg(unix)]
#[test]
fn schema_write_refuses_a_directory_at_a_name_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("providers.schema.json")).unwrap();
    let out = hotconf(&["schema", "--write", dir.path().to_str().unwrap()], &[]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("cannot write") && stderr.contains("providers.schema.json"), "{stderr}");
    // The schema written before it stays; no temporary file is left, and the directory is intact.
    let mut names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["agent_chains.schema.json", "providers.schema.json"]);
    assert!(dir.path().join("providers.schema.json").is_dir());
}

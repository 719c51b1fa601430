//! `cargo bench --bench parse`: validation time of the worst inputs we can construct at the 1 MiB
//! size cap, each written as one of the gateway's files next to the shipped other two. Target:
//! every one refused (or accepted) in under 100 ms, i.e. cost linear in the input's size.
//!
//! `cargo bench --bench parse -- WORDS` runs only the inputs whose name holds `WORDS` (to profile
//! one family: `perf record target/release/deps/parse-… WORDS`).

use std::time::{Duration, Instant};

use hotconf::{MapEnv, SourceFile, Sources};
use hotconf_gateway::validate_config;

const CAP: usize = 1024 * 1024;
/// The bundle's caps (`validate_with`): bytes and files together.
const BUNDLE_BYTES: usize = 2 * 1024 * 1024;
const BUNDLE_FILES: usize = 1_024;

/// `unit` repeated to fill the cap (leaving room for `tail`), then `tail`.
fn fill(head: &str, unit: &str, tail_unit: &str) -> String {
    let n = (CAP - head.len()) / (unit.len() + tail_unit.len());
    format!("{head}{}{}", unit.repeat(n), tail_unit.repeat(n))
}

fn lines(head: &str, line: impl Fn(usize) -> String) -> String {
    let mut text = head.to_owned();
    for i in 0.. {
        let l = line(i);
        if text.len() + l.len() > CAP {
            break;
        }
        text.push_str(&l);
    }
    text
}

fn count(n: usize, line: impl Fn(usize) -> String) -> String {
    (0..n).map(line).collect()
}

fn cases() -> Vec<(&'static str, &'static str, String)> {
    let rl = "rate_limits.yaml";
    let ac = "agent_chains.yaml";
    let block_levels = {
        let mut text = String::new();
        for i in 0.. {
            let l = format!("{}k:\n", " ".repeat(i));
            if text.len() + l.len() > CAP {
                break;
            }
            text.push_str(&l);
        }
        text
    };
    let big_anchor = {
        let anchored = format!("a: &a [{}x]\n", "x,".repeat(200_000));
        let rest = CAP - anchored.len() - 10;
        format!("{anchored}b: [{}*a]\n", "*a,".repeat(rest / 3 - 1))
    };
    vec![
        ("flow maps {a: ×N }×N", rl, fill("", "{a: ", "}")),
        ("flow lists [×N ]×N", rl, fill("", "[", "]")),
        ("flow maps after a key", rl, fill("local: ", "{a: ", "}")),
        ("block mappings, one level a line", rl, block_levels),
        ("compact sequences - - - …", rl, format!("{}x\n", "- ".repeat(CAP / 2 - 2))),
        ("mixed block then flow", rl, format!("a:\n  b:\n    - c: {}", fill("", "[{x: ", "}]").split_at(CAP - 20).0)),
        ("unclosed flow [ ×N", rl, "[".repeat(CAP)),
        (
            "billion laughs",
            ac,
            "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n".to_owned(),
        ),
        ("many aliases of a big anchor", ac, big_anchor),
        ("many aliases of a scalar", ac, format!("a: &a x\nb: [{}*a]\n", "*a, ".repeat(CAP / 4 - 10))),
        ("long double-quoted scalar", rl, format!("local: \"{}\"\n", "x".repeat(CAP - 20))),
        ("long plain scalar", rl, format!("local: {}\n", "x".repeat(CAP - 20))),
        ("long block scalar", rl, format!("local: |\n{}", "  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n".repeat(CAP / 46))),
        ("long key", rl, format!("{}: 1\n", "k".repeat(CAP - 10))),
        ("long unknown key under a provider", rl, format!("local:\n  rpm: 1\n  burst: 1\n  tokens_per_minute: 1\n  {}: 1\n", "k".repeat(CAP - 100))),
        ("many providers with limits, unknown", rl, lines("", |i| format!("p{i}: {{rpm: 1, burst: 1, tokens_per_minute: 1}}\n"))),
        ("many block providers, unknown", rl, lines("", |i| format!("p{i}:\n  rpm: 0\n  burst: 1\n  tokens_per_minute: 1\n"))),
        ("many unknown keys", rl, lines("local:\n  rpm: 1\n  burst: 1\n  tokens_per_minute: 1\n", |i| format!("  k{i}: 1\n"))),
        ("many duplicate keys", rl, lines("", |_| "local: 1\n".to_owned())),
        ("many duplicate keys, deep in the file", rl, lines("", |i| format!("k{i}: 1\n"))[..CAP - 20].rsplit_once('\n').unwrap().0.to_owned() + "\nk0: 2\n"),
        ("many documents", rl, lines("", |_| "---\na: 1\n".to_owned())),
        ("many empty documents", rl, "---\n".repeat(CAP / 4)),
        ("long line of commas", rl, format!("a: [{}]\n", ",".repeat(CAP - 10))),
        ("long flow list", rl, format!("a: [{}x]\n", "x,".repeat(CAP / 2 - 10))),
        ("many chains of unknown providers", ac, lines("", |i| format!("a{i}: {{primary: p{i}, fallbacks: [q{i}]}}\n"))),
        ("many chains, one unknown provider each", ac, lines("", |i| format!("a{i}:\n  primary: p{i}\n"))),
        ("comments only", rl, lines("", |_| "# {[{[{[ comment ]}]}]\n".to_owned())),
        // The same shapes just under the node cap: parsed, judged and every diagnostic rendered.
        ("under the node cap: unknown providers", rl, count(6_200, |i| format!("p{i}: {{rpm: 1, burst: 1, tokens_per_minute: 1}}\n"))),
        ("under the node cap: unknown keys", rl, "local:\n  rpm: 1\n  burst: 1\n  tokens_per_minute: 1\n".to_owned() + &count(24_900, |i| format!("  k{i}: 1\n"))),
        ("under the node cap: bad values", rl, count(12_400, |i| format!("p{i}:\n  rpm: 0\n"))),
        ("under the node cap: unknown chain members", ac, count(7_000, |i| format!("a{i}: {{primary: p{i}, fallbacks: [q{i}]}}\n"))),
        ("under the node cap: long flow list", rl, format!("a: [{}x]\n", "x,".repeat(49_990))),
        ("under the node cap: aliases of a scalar", ac, format!("a: &a x\nb: [{}*a]\n", "*a, ".repeat(49_990))),
        ("under the node cap: duplicate key at the end", rl, count(24_900, |i| format!("k{i}: 1\n")) + "k0: 2\n"),
        // Each problem raised inside a value ends a deserialization pass (the next pass answers it
        // with a stand-in): problems placed after everything else make each pass walk the file.
        (
            "under the node cap: bad values after valid ones",
            rl,
            count(5_800, |i| format!("v{i}: {{rpm: 1, burst: 1, tokens_per_minute: 1}}\n"))
                + &count(300, |i| format!("p{i}: {{rpm: 0, burst: 1, tokens_per_minute: 1}}\n")),
        ),
        // A value whose stand-in fails too (an empty name) still ends a pass: such problems after
        // valid content, as many as the passes' budget of visits allows.
        (
            "under the node cap: empty names after valid ones",
            ac,
            count(11_000, |i| format!("v{i}: {{primary: local}}\n"))
                + &count(300, |i| format!("p{i}: {{primary: \"\"}}\n")),
        ),
        ("under the node cap: long scalars", rl, count(24_000, |i| format!("k{i}: {}\n", "x".repeat(30)))),
    ]
}

/// The CPU time this thread has run, from `/proc/thread-self/schedstat` (Linux): beside the
/// wall time, what validating cost when other work shares the cores.
fn cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(stat.split_whitespace().next()?.parse().ok()?))
}

/// Milliseconds of CPU between two readings, or `-`.
fn cpu_ms(start: Option<Duration>, end: Option<Duration>) -> String {
    match (start, end) {
        (Some(s), Some(e)) => format!("{:.1}", (e - s).as_secs_f64() * 1000.0),
        _ => "-".to_owned(),
    }
}

/// The words an input's name must hold to run (all inputs without any), from the command line
/// (cargo passes `--bench` first).
fn filter() -> String {
    std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect::<Vec<_>>().join(" ")
}

fn main() {
    let filter = filter();
    let shipped = |name: &str| {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config").join(name))
            .expect("the shipped config")
    };
    let mut worst = Duration::ZERO;
    println!(
        "{:<42} {:>9} {:>9} {:>7} {:>9} {:>7}  first diagnostic",
        "input (1 MiB cap)", "bytes", "ms", "cpu ms", "parser ms", "diags"
    );
    for (what, file, text) in cases().into_iter().filter(|(what, ..)| what.contains(&filter)) {
        assert!(text.len() <= CAP, "{what}: {} bytes", text.len());
        let mut files: Vec<SourceFile> = ["rate_limits.yaml", "agent_chains.yaml", "providers.yaml"]
            .iter()
            .filter(|n| **n != file)
            .map(|n| SourceFile::new(*n, shipped(n)))
            .collect();
        files.push(SourceFile::new(file, text.as_bytes()));
        let sources = Sources::from_files(files);
        let (started, cpu_started) = (Instant::now(), cpu());
        let outcome = validate_config(sources, &MapEnv::new());
        let rendered = match &outcome {
            Ok(_) => ("accepted".to_owned(), 0),
            Err(d) => (d.as_slice()[0].to_string().lines().next().unwrap_or("").chars().take(90).collect(), d.len()),
        };
        // Rendering is part of what a person waits for.
        let _ = outcome.as_ref().err().map(ToString::to_string);
        let took = started.elapsed();
        let cpu_took = cpu_ms(cpu_started, cpu());
        worst = worst.max(took);
        // The YAML parser alone on the same text, when the pre-scan lets it run: the floor.
        let parser = if hotconf::testing::prescan(&text).is_ok() {
            let started = Instant::now();
            let _ = yaml_serde::from_str::<yaml_serde::Value>(&text);
            format!("{:.1}", started.elapsed().as_secs_f64() * 1000.0)
        } else {
            "-".to_owned()
        };
        println!(
            "{what:<42} {:>9} {:>9.1} {cpu_took:>7} {parser:>9} {:>7}  {}",
            text.len(),
            took.as_secs_f64() * 1000.0,
            rendered.1,
            rendered.0
        );
    }
    println!("worst: {:.1} ms (target: < 100 ms)", worst.as_secs_f64() * 1000.0);
    bundles(&filter);
}

/// Cross-file families: every file under its caps, the cost in the rules that join them (a chain
/// naming providers, limits for providers): many names, long names, names a typo apart, many
/// references. Prints each and the slowest.
fn bundles(filter: &str) {
    // A provider name `width` characters long, the `i`th: all of one length and a typo apart.
    let name = |prefix: &str, i: usize, width: usize| format!("{prefix}{:0>w$}", i, w = width - prefix.len());
    let providers = |n: usize, width: usize| {
        count(n, |i| format!("{}:\n  model: m\n  base_url: http://127.0.0.1:1\n", name("p", i, width)))
    };
    let chains = |n: usize, width: usize| {
        // Each chain's primary and fallback: unknown, one edit from a provider.
        count(n / 2, |i| {
            format!("a{i}: {{primary: {}, fallbacks: [{}]}}\n", name("q", i, width), name("q", i + n, width))
        })
    };
    // Rate limits for the one provider `p0000000` (a valid entry), for the families that leave
    // that file alone.
    let limits = || "p0000000: {rpm: 1, burst: 1, tokens_per_minute: 1}\n".to_owned();
    let gateway = |providers: String, chains: String, limits: String| {
        vec![
            ("providers.yaml".to_owned(), providers),
            ("agent_chains.yaml".to_owned(), chains),
            ("rate_limits.yaml".to_owned(), limits),
        ]
    };
    // A file of long plain scalars just under the 1 MiB file cap: the parser's slowest bytes that
    // hold few nodes (the node cap bounds the rest).
    let long_scalars = |key: &str| format!("{key}: {}\n", "x".repeat(CAP - key.len() - 4));
    let families: Vec<(String, Vec<(String, String)>)> = vec![
        (
            "2,000 providers × 2,000 unknown chain entries".into(),
            gateway(providers(2_000, 8), chains(2_000, 8), limits()),
        ),
        (
            "8,000 providers × 8,000 unknown chain entries".into(),
            gateway(providers(8_000, 8), chains(8_000, 8), limits()),
        ),
        // The most references the node cap allows: one chain of 45,000 unknown fallbacks.
        (
            "8,000 providers × 45,000 unknown fallbacks in one chain".into(),
            gateway(
                providers(8_000, 8),
                format!(
                    "a: {{primary: {}, fallbacks: [{}]}}\n",
                    name("q", 0, 8),
                    (1..45_000).map(|i| name("q", i, 8)).collect::<Vec<_>>().join(", ")
                ),
                limits(),
            ),
        ),
        (
            "long names: 2,000 × 2,000 of 64 characters".into(),
            gateway(providers(2_000, 64), chains(2_000, 64), limits()),
        ),
        (
            "many agents, one unknown provider each".into(),
            gateway(
                providers(100, 8),
                count(20_000, |i| format!("a{i}: {{primary: {}}}\n", name("q", i % 50, 8))),
                limits(),
            ),
        ),
        // Just under the bundle's 50,000-node cap: the most the caps let the cross-file rule judge.
        (
            "under the bundle cap: 6,000 providers × 19,000 unknown fallbacks".into(),
            gateway(
                providers(6_000, 8),
                format!(
                    "a: {{primary: {}, fallbacks: [{}]}}\n",
                    name("q", 0, 8),
                    (1..19_000).map(|i| name("q", i, 8)).collect::<Vec<_>>().join(", ")
                ),
                limits(),
            ),
        ),
        (
            "under the bundle cap: 3,000 × 3,000 names of 64 characters".into(),
            gateway(providers(3_000, 64), chains(6_000, 64), limits()),
        ),
        // Problems of both kinds at once: values that failed (unknown keys, each a path the
        // cross-file rule must not judge) and the rule's own problems, each asked about them.
        (
            "under the bundle cap: 12,000 unknown keys × 6,000 unknown chain entries".into(),
            gateway(
                providers(1, 8),
                chains(6_000, 8),
                "p0000000:\n  rpm: 1\n  burst: 1\n  tokens_per_minute: 1\n".to_owned()
                    + &count(12_000, |i| format!("  k{i}: 1\n")),
            ),
        ),
        // At the bundle's byte cap: every file just under the file cap, all parsed (an unknown
        // file is refused by name after it parsed).
        (
            "at the bundle byte cap: 1 MiB files of long scalars".into(),
            (0..)
                .map(|i| (format!("f{i}.yaml"), long_scalars("k")))
                .scan(0, |bytes, (n, t)| {
                    *bytes += t.len();
                    (*bytes <= BUNDLE_BYTES).then_some((n, t))
                })
                .collect(),
        ),
        // At the bundle's file cap: that many small files, each an unexpected config file.
        (
            "at the bundle file cap: small unexpected files".into(),
            (0..BUNDLE_FILES).map(|i| (format!("f{i}.yaml"), "rpm: 1\n".to_owned())).collect(),
        ),
    ];
    println!("\n{:<52} {:>9} {:>9} {:>7} {:>7}", "bundle (cross-file rules)", "bytes", "ms", "cpu ms", "diags");
    let mut worst = (Duration::ZERO, String::new());
    for (what, files) in families.into_iter().filter(|(what, ..)| what.contains(filter)) {
        let bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
        let sources = Sources::from_files(files.into_iter().map(|(n, t)| SourceFile::new(n, t)));
        let (started, cpu_started) = (Instant::now(), cpu());
        let outcome = validate_config(sources, &MapEnv::new());
        let _ = outcome.as_ref().err().map(ToString::to_string);
        let took = started.elapsed();
        let cpu_took = cpu_ms(cpu_started, cpu());
        let diags = outcome.as_ref().err().map_or(0, |d| d.len());
        println!("{what:<52} {bytes:>9} {:>9.1} {cpu_took:>7} {diags:>7}", took.as_secs_f64() * 1000.0);
        if took > worst.0 {
            worst = (took, what);
        }
    }
    println!("slowest bundle: {} ({:.1} ms; target: < 100 ms)", worst.1, worst.0.as_secs_f64() * 1000.0);
}

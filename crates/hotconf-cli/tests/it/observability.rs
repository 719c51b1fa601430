//! What a log pipeline and Prometheus see from the real binary: logfmt text that parses, JSON
//! with list fields as arrays, a refused or failed start reported once, and metrics with every
//! family sampled from the start, including when the running version was applied.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::service::{edit, http, Service, TextService};
use crate::support::{config_copy, hotconf};

/// Parses one logfmt line `ts=TIME level=LEVEL event=NAME message=… key=value …` (values bare,
/// or quoted with `\"`, `\\`, `\n`, `\r`, `\t`, `\u{…}` escapes); `Err` says what does not parse.
fn parse_logfmt(line: &str) -> Result<(String, BTreeMap<String, String>), String> {
    let mut rest = line;
    let mut order = Vec::new();
    let mut fields = BTreeMap::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').ok_or_else(|| format!("no `=` in {rest:?}"))?;
        if key.is_empty() || key.contains([' ', '"']) {
            return Err(format!("bad key {key:?}"));
        }
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next().ok_or("unterminated quote")? {
                    (i, '"') => break i + 1,
                    (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                        'n' => value.push('\n'),
                        'r' => value.push('\r'),
                        't' => value.push('\t'),
                        'u' => {
                            let hex: String = chars.by_ref().map(|(_, c)| c).take_while(|c| *c != '}').collect();
                            let code =
                                u32::from_str_radix(hex.trim_start_matches('{'), 16).map_err(|e| e.to_string())?;
                            value.push(char::from_u32(code).ok_or("bad code point")?);
                        }
                        c @ ('"' | '\\') => value.push(c),
                        c => return Err(format!("unknown escape \\{c}")),
                    },
                    (_, c) => value.push(c),
                }
            };
            (value, &quoted[end..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        if !after.is_empty() && !after.starts_with(' ') {
            return Err(format!("junk after {key}'s value: {after:?}"));
        }
        if fields.insert(key.to_owned(), value).is_some() {
            return Err(format!("{key} twice"));
        }
        order.push(key.to_owned());
        rest = after.trim_start_matches(' ');
    }
    if order.len() < 4 || order[..4] != ["ts", "level", "event", "message"] {
        return Err(format!("the line does not start with ts, level, event, message: {order:?}"));
    }
    Ok((fields["level"].clone(), fields))
}

#[test]
fn text_logs_are_logfmt_that_parses_with_spaces_quotes_and_structured_diffs() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let mut service = TextService::start(config.path(), store.path(), "127.0.0.1:0");
    let mut wait_for = |event: &str| -> BTreeMap<String, String> {
        let line = service.wait_line(event, |line| {
            let (_, fields) = parse_logfmt(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            fields.get("event").map(String::as_str) == Some(event)
        });
        parse_logfmt(&line).unwrap().1
    };
    let started = wait_for("watcher.started");
    let admin = started["admin_addr"].parse().unwrap();
    edit(config.path(), "rate_limits.yaml", "rpm: 600\n  burst: 20", "rpm: 650\n  burst: 25");
    assert_eq!(wait_for("reload.applied")["version"], "2");
    let (code, body) = http(admin, "POST", "/pin/1", None);
    assert_eq!(code, 200, "{body}");
    let applied = wait_for("reload.applied");
    assert_eq!(applied["origin"], "pin of v1");
    // A list field reads as its items joined by commas.
    assert_eq!(applied["files"], "agent_chains.yaml,providers.yaml,rate_limits.yaml");
    // The diff: its changes as JSON text, whole again once parsed.
    let diff: Value = serde_json::from_str(&applied["diff"]).unwrap_or_else(|e| panic!("{e}: {applied:?}"));
    let diff = crate::service::diff_text(&json!({ "diff": diff }));
    assert!(diff.contains("rate_limits.local.rpm: 650 → 600"), "{applied:?}");
    assert!(diff.contains("rate_limits.local.burst: 25 → 20"), "{applied:?}");
    assert!(service.stop());
}

#[test]
fn json_logs_write_list_fields_as_arrays() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[]);
    // Two files in one change (written before the poller sees two identical ticks).
    let limits = std::fs::read_to_string(config.path().join("rate_limits.yaml")).unwrap();
    let providers = std::fs::read_to_string(config.path().join("providers.yaml")).unwrap();
    std::fs::write(config.path().join("rate_limits.yaml"), limits.replacen("rpm: 600", "rpm: 650", 1)).unwrap();
    std::fs::write(config.path().join("providers.yaml"), providers.replacen("max_retries: 1", "max_retries: 2", 1))
        .unwrap();
    let applied = s.wait_until(|v| v["event"] == "reload.applied" && v["version"] == 2);
    let files = applied["files"].as_array().unwrap_or_else(|| panic!("files is not an array: {applied}"));
    assert!(files.contains(&json!("rate_limits.yaml")), "{applied}");
    assert!(applied["version"].is_u64(), "numbers stay numbers: {applied}");
    assert_eq!(applied["message"], "config applied");
    assert_eq!(applied["bundle_hash"].as_str().map(str::len), Some(64), "{applied}");
    // The diff as an array of changes, as the audit log has it.
    let diff = applied["diff"].as_array().unwrap_or_else(|| panic!("diff is not an array: {applied}"));
    assert!(
        diff.contains(
            &json!({"file": "rate_limits.yaml", "path": "local.rpm", "change": "modified", "old": 600, "new": 650})
        ),
        "{applied}"
    );
    // A rejected edit: one `reload.diagnostic` line per problem, positions left out when unknown,
    // then one `reload.rejected` summary.
    std::fs::write(config.path().join("extra.yaml"), "a: 1\n").unwrap();
    let diagnostic = s.wait_for("reload.diagnostic");
    assert_eq!(
        (&diagnostic["code"], &diagnostic["version"], diagnostic.get("line")),
        (&json!("unexpected-file"), &json!(2), None),
        "{diagnostic}"
    );
    let rejected = s.wait_for("reload.rejected");
    assert_eq!((&rejected["problems"], &rejected["version"]), (&json!(1), &json!(2)), "{rejected}");
    assert_eq!(rejected["bundle_hash"].as_str().map(str::len), Some(64), "{rejected}");
    s.stop();
}

#[test]
fn a_fatal_error_is_printed_once_as_text_or_as_one_json_event() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let (c, st) = (config.path().to_str().unwrap(), store.path().to_str().unwrap());
    let args = ["run", "--config", c, "--snapshots", st, "--admin-addr", &addr, "--log-format"];
    let text = hotconf(&[&args[..], &["text"]].concat(), &[]);
    let (stdout, stderr) = (String::from_utf8(text.stdout).unwrap(), String::from_utf8(text.stderr).unwrap());
    assert_eq!(text.status.code(), Some(3), "{stderr}");
    assert_eq!(stdout, "", "nothing on stdout besides the one line on stderr");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(&format!("error: binding the admin endpoint {addr}: ")), "{stderr}");

    let json_run = hotconf(&[&args[..], &["json"]].concat(), &[]);
    let (stdout, stderr) = (String::from_utf8(json_run.stdout).unwrap(), String::from_utf8(json_run.stderr).unwrap());
    assert_eq!(json_run.status.code(), Some(3), "{stdout}");
    assert_eq!(stderr, "", "nothing on stderr besides the one JSON event");
    let events: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 1, "{stdout}");
    crate::log_schema::check_json_log(&stdout).unwrap();
    assert_eq!((&events[0]["event"], &events[0]["level"]), (&json!("fatal"), &json!("ERROR")));
    assert!(events[0]["error"].as_str().unwrap().starts_with(&format!("binding the admin endpoint {addr}: ")));
    drop(taken);
}

/// The samples of `family` in an exposition: (labels, value).
fn samples<'a>(text: &'a str, family: &str) -> Vec<(&'a str, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name_labels, value) = l.rsplit_once(' ')?;
            let (name, labels) = name_labels.split_once('{').unwrap_or((name_labels, ""));
            (name == family).then(|| (labels.trim_end_matches('}'), value.parse().unwrap()))
        })
        .collect()
}

#[test]
fn metrics_have_every_family_from_the_start_and_the_time_the_running_version_was_applied() {
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[]);
    let (code, text) = s.http("GET", "/metrics");
    assert_eq!(code, 200);
    let families: Vec<&str> =
        text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).map(|f| f.split(' ').next().unwrap()).collect();
    assert!(families.len() >= 12, "{text}");
    for family in &families {
        let has_sample = text.lines().any(|l| !l.starts_with('#') && l.starts_with(family));
        assert!(has_sample, "{family} has no sample before anything happened:\n{text}");
    }
    // Zero-valued counters for each known label value.
    let polls = samples(&text, "hotconf_poll_errors_total");
    for kind in ["unreadable", "vanished", "dir_missing", "too_large", "timeout", "io"] {
        assert!(polls.contains(&(&*format!("kind=\"{kind}\""), 0.0)), "{kind}: {polls:?}");
    }
    let acks = samples(&text, "hotconf_component_ack_timeouts_total");
    assert_eq!(acks.len(), 3, "one per gateway component: {acks:?}");
    assert!(acks.iter().all(|(_, v)| *v == 0.0), "{acks:?}");
    assert_eq!(samples(&text, "hotconf_alerts_total").len(), 3);
    // When the running version was applied; a fleet compares it with the version and hash.
    let applied_at = samples(&text, "hotconf_config_running_version_applied_timestamp_seconds")[0].1;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    assert!(before - 1.0 <= applied_at && applied_at <= now, "{before} ≤ {applied_at} ≤ {now}");
    let hash = s.get_json("/status")["bundle_hash"].as_str().unwrap().to_owned();
    assert_eq!(samples(&text, "hotconf_config_info"), vec![(&*format!("hash=\"{hash}\""), 1.0)]);

    edit(config.path(), "rate_limits.yaml", "rpm: 600", "rpm: 650");
    assert_eq!(s.wait_for("reload.applied")["version"], 2);
    let (_, text) = s.http("GET", "/metrics");
    assert_eq!(samples(&text, "hotconf_config_running_version")[0].1, 2.0);
    let reapplied = samples(&text, "hotconf_config_running_version_applied_timestamp_seconds")[0].1;
    assert!(reapplied >= applied_at, "{reapplied} < {applied_at}");
    assert_eq!(samples(&text, "hotconf_config_in_sync"), vec![("", 1.0)]);
    let durations = samples(&text, "hotconf_config_reload_duration_seconds_count");
    assert_eq!(
        durations,
        vec![("result=\"applied\"", 2.0), ("result=\"rejected\"", 0.0), ("result=\"failed\"", 0.0)],
        "the startup and the edit, by result"
    );

    // A rejected edit: the directory no longer holds what runs, until it is fixed.
    edit(config.path(), "rate_limits.yaml", "rpm: 650", "rpm: -1");
    s.wait_for("reload.rejected");
    let (_, text) = s.http("GET", "/metrics");
    assert_eq!(samples(&text, "hotconf_config_in_sync"), vec![("", 0.0)], "while a change is rejected");
    assert_eq!(samples(&text, "hotconf_config_reload_duration_seconds_count")[1], ("result=\"rejected\"", 1.0));
    edit(config.path(), "rate_limits.yaml", "rpm: -1", "rpm: 650");
    s.wait_for("reload.recovered");
    let (_, text) = s.http("GET", "/metrics");
    assert_eq!(samples(&text, "hotconf_config_in_sync"), vec![("", 1.0)], "reverted to what runs");
    s.stop();
}

/// The names of `hotconf_…` metrics a deploy/ file queries (histogram series folded into their family).
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for (i, _) in text.match_indices("hotconf_") {
        if text[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '/') {
            continue;
        }
        let name: String = text[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        // The histogram's series belong to its family.
        let histogram = "hotconf_config_reload_duration_seconds";
        let family = if name.starts_with(histogram) { histogram.to_owned() } else { name };
        names.insert(family);
    }
    names
}

#[test]
fn deploy_files_query_only_metrics_the_binary_exports_and_ship_a_valid_config() {
    let deploy = crate::support::workspace_root().join("deploy");
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[]);
    let (_, exposition) = s.http("GET", "/metrics");
    let exported: Vec<&str> = exposition.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();
    s.stop();
    // deploy/exported-metrics.txt, which deploy/check.sh checks every rule, rule test and
    // dashboard query against, is this very list: a real run's families.
    let listed = std::fs::read_to_string(deploy.join("exported-metrics.txt")).unwrap();
    let listed: Vec<&str> = listed.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let mut sorted = exported.clone();
    sorted.sort_unstable();
    assert_eq!(
        listed, sorted,
        "deploy/exported-metrics.txt differs from the families /metrics exports; regenerate it from a real run"
    );
    let mut queried = 0;
    for file in
        ["prometheus/hotconf-alerts.yaml", "prometheus/hotconf-alerts.test.yaml", "grafana/hotconf-dashboard.json"]
    {
        let text = std::fs::read_to_string(deploy.join(file)).unwrap();
        if file.ends_with(".json") {
            serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        for name in metric_names(&text) {
            assert!(exported.contains(&name.as_str()), "{file} queries {name}, which /metrics does not export");
            queried += 1;
        }
    }
    assert!(queried >= 10, "only {queried} metric names found in deploy/");

    // The Kubernetes example's ConfigMap holds a config that validates, and its args exist.
    let manifests = std::fs::read_to_string(deploy.join("kubernetes/hotconf.yaml")).unwrap();
    let docs: Vec<Value> =
        yaml_serde::Deserializer::from_str(&manifests).map(|d| serde::Deserialize::deserialize(d).unwrap()).collect();
    let config_map = docs.iter().find(|d| d["kind"] == "ConfigMap").expect("a ConfigMap");
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in config_map["data"].as_object().unwrap() {
        std::fs::write(dir.path().join(name), content.as_str().unwrap()).unwrap();
    }
    let out = hotconf(&["validate", "--config", dir.path().to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    // History survives the pod: the store (--snapshots) is on a claim of the StatefulSet's, not
    // on a volume of the pod's; no service account token; voluntary disruptions are budgeted.
    let set = docs.iter().find(|d| d["kind"] == "StatefulSet").expect("a StatefulSet");
    let pod = &set["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert!(pod["topologySpreadConstraints"].as_array().is_some_and(|c| !c.is_empty()));
    assert!(docs.iter().any(|d| d["kind"] == "PodDisruptionBudget"), "a PodDisruptionBudget");
    let store_mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/var/lib/hotconf")
        .expect("the store's mount");
    let claims = set["spec"]["volumeClaimTemplates"].as_array().expect("volumeClaimTemplates");
    assert!(claims.iter().any(|c| c["metadata"]["name"] == store_mount["name"]), "the store is not on a claim");
    assert!(pod["volumes"].as_array().unwrap().iter().all(|v| v["name"] != store_mount["name"]));
    let args: Vec<&str> =
        pod["containers"][0]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(args.contains(&"--snapshots=/var/lib/hotconf/snapshots"), "the store is not under the claim's mount");
    let help = String::from_utf8(hotconf(&["run", "--help"], &[]).stdout).unwrap();
    for flag in args.iter().skip(1) {
        let name = flag.split('=').next().unwrap();
        assert!(help.contains(&format!("{name} ")) || help.contains(&format!("{name}\n")), "{name} is not an option");
    }
}

#!/usr/bin/env bash
# Checks what deploy/ ships, offline: the Prometheus alerting rules (promtool check rules),
# the rules' unit tests (promtool test rules), every PromQL expression of the Grafana dashboard
# (parsed by promtool as recording rules), the dashboard's JSON, and the Kubernetes manifests
# against the Kubernetes schemas (kubernetes-validate, which ships them). Run by .ci/run.
#
# Not here nor in .ci/run, as they take minutes and a release build: the end-to-end checks
# e2e-prometheus.sh (HotconfPollFault fires and clears in a real Prometheus) and e2e-fd-limit.sh
# (the admin endpoint under `ulimit -n 1024` with 1,100 held connections), run by hand.
#
# Needs: promtool (Debian: prometheus), python3, and kubernetes-validate (pip) on PATH or in
# $KUBERNETES_VALIDATE.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== promtool check rules"
# (prometheus/prometheus.yml is not given to `promtool check config`: Debian's build leaves out
# Kubernetes service discovery, so it rejects `kubernetes_sd_configs`.)
promtool check rules prometheus/hotconf-alerts.yaml
echo "== promtool test rules"
(cd prometheus && promtool test rules hotconf-alerts.test.yaml)

echo "== Grafana dashboard"
python3 - grafana/hotconf-dashboard.json "$tmp/dashboard-exprs.yaml" <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
for key in ("uid", "title", "panels", "templating", "schemaVersion"):
    assert key in dashboard, f"dashboard has no {key}"
ids = [p["id"] for p in dashboard["panels"]]
assert len(ids) == len(set(ids)), f"panel ids repeat: {ids}"
rules = []
for panel in dashboard["panels"]:
    assert panel.get("title") and panel.get("gridPos"), f"panel {panel['id']} lacks a title or gridPos"
    assert panel.get("targets"), f"panel {panel['title']!r} has no query"
    for t in panel["targets"]:
        expr = t["expr"]
        for var, value in (("$__rate_interval", "5m"), ("$job", "hotconf"), ("$instance", ".*")):
            expr = expr.replace(var, value)
        assert "$" not in expr, f"unknown variable in {t['expr']!r}"
        rules.append({"record": f"dashboard:panel{panel['id']}:{t['refId']}", "expr": expr})
json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
print(f"{sys.argv[1]}: {len(dashboard['panels'])} panels, {len(rules)} queries")
PY
# Every panel's query parses as PromQL.
promtool check rules "$tmp/dashboard-exprs.yaml" >/dev/null

echo "== metric names"
# Every hotconf_* and process_* name the rules, their tests and the dashboard use is one the binary
# exports: exported-metrics.txt, a real run's families (crates/hotconf-cli/tests/it/observability.rs
# fails when it differs from one). A histogram's _bucket/_sum/_count series belong to its family.
python3 - exported-metrics.txt prometheus/hotconf-alerts.yaml prometheus/hotconf-alerts.test.yaml \
  grafana/hotconf-dashboard.json <<'PY'
import re, sys
exported = {l.strip() for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")}
bad = []
for path in sys.argv[2:]:
    text = open(path).read()
    for m in re.finditer(r"(?<![A-Za-z0-9_/-])((?:hotconf|process)_[A-Za-z0-9_]+)", text):
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in exported and family not in exported:
            bad.append(f"{path}: {name}")
if bad:
    sys.exit("metric names the binary does not export (see exported-metrics.txt):\n  " + "\n  ".join(sorted(set(bad))))
print(f"every metric name is exported ({len(exported)} families)")
PY

echo "== Kubernetes manifests"
"${KUBERNETES_VALIDATE:-kubernetes-validate}" --strict kubernetes/*.yaml

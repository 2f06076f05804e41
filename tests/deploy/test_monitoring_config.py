"""Monitoring config: Prometheus rules and config pass promtool (and the rules' unit tests),
the Grafana board is valid and queries only metrics the API exports, and the compose
monitoring profile wires Prometheus, the pipeline textfile and Grafana together."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from forecasting_assets.contracts import PIPELINE_METRICS_FILE

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
GRAFANA = REPO / "deploy" / "grafana"
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "le", "inf", "nan",
}  # fmt: skip


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    return subprocess.run(
        [binary, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "args",
    [("check", "rules", "alerts.yml"), ("test", "rules", "alerts_test.yml"),
     ("check", "config", "prometheus.yml")],
    ids=["check-rules", "test-rules", "check-config"],
)  # fmt: skip
def test_promtool_accepts_rules_and_config(args: tuple[str, ...]) -> None:
    proc = promtool(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_alert_rules_cover_the_four_conditions() -> None:
    rules = {
        r["alert"]: r["expr"]
        for g in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
        for r in g["rules"]
    }
    assert "> 0.2" in rules["ForecastingApiLatencyP99High"]  # seconds: 200 ms
    assert "> 0.05" in rules["ForecastingApiErrorRateHigh"]
    assert "> 0.10" in rules["ForecastingAccuracyDegraded"]
    assert "forecasting_pipeline_drift_status" in rules["ForecastingDriftDetected"]


def api_metric_names() -> set[str]:
    """Every sample name the API's registry exposes (counters as _total, histograms' series)."""
    from forecasting_api.observability import Metrics

    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
        "summary": ("", "_sum", "_count", "_created"),
    }
    return {
        family.name + suffix
        for family in Metrics().registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }


def metrics_in(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (labels, functions and keywords removed)."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr))
    return {n for n in names if n.lower() not in PROMQL_WORDS}


def dashboard(name: str = "forecasting_api") -> dict:
    return json.loads((GRAFANA / "dashboards" / f"{name}.json").read_text())


def queried_metrics(board: dict) -> set[str]:
    return {
        name
        for panel in board["panels"]
        for target in panel["targets"]
        for name in metrics_in(target["expr"])
    }


def test_dashboard_queries_only_metrics_the_api_exports() -> None:
    board = dashboard()
    exported = api_metric_names()
    queried = queried_metrics(board)
    assert queried, "the board queries nothing"
    assert queried <= exported, f"not exported by the API: {sorted(queried - exported)}"
    titles = " ".join(p["title"].lower() for p in board["panels"])
    for topic in ("rate", "p99", "status", "source", "model version", "reloads"):
        assert topic in titles, topic


def test_pipeline_dashboard_queries_only_the_textfile_metrics() -> None:
    from forecasting_assets.monitoring.prometheus import pipeline_metrics

    report = {
        "status": "alert",
        "generated_at": "2026-06-01T02:30:00+00:00",
        "feature_drift": {"status": "alert", "alert_features": 3},
        "features": [{"name": "sales_lag_28", "psi": 0.3, "status": "alert"}],
        "prediction_drift": {"status": "ok", "vs_recent_actuals": {"psi": 0.01},
                             "vs_previous_forecast": {"psi": 0.02}},
        "realized_accuracy": {"model_version": "3", "realized_wrmsse": 0.6, "backtest_wrmsse": 0.5,
                              "degradation": 0.2, "threshold": 0.1, "days_with_actuals": 28,
                              "status": "alert"},
    }  # fmt: skip
    written = {s.name for family in pipeline_metrics(report).collect() for s in family.samples}
    queried = queried_metrics(dashboard("forecasting_pipeline"))
    assert queried and queried <= written, sorted(queried - written)
    rules = (PROMETHEUS / "alerts.yml").read_text()
    assert {"forecasting_pipeline_accuracy_degradation", "forecasting_pipeline_drift_status"} <= (
        metrics_in(rules) & written
    )


def test_metric_extraction_sees_through_promql() -> None:
    expr = 'histogram_quantile(0.99, sum by (le) (rate(x_bucket{status=~"5.."}[5m]))) / y_total'
    assert metrics_in(expr) == {"x_bucket", "y_total"}


def test_dashboard_uses_the_provisioned_data_source() -> None:
    source = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    (ds,) = source["datasources"]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    for name in ("forecasting_api", "forecasting_pipeline"):
        board = dashboard(name)
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == ds["uid"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == ds["uid"]
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "forecasting.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_compose_monitoring_profile_wires_prometheus_textfile_and_grafana() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    for name in ("prometheus", "pipeline-metrics", "grafana"):
        assert services[name]["profiles"] == ["monitoring"], name
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    grafana_mounts = services["grafana"]["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana_mounts
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana_mounts
    # node-exporter reads the drift asset's textfile from the shared data volume.
    command = services["pipeline-metrics"]["command"]
    assert "--collector.textfile.directory=/data/exports" in command
    assert PIPELINE_METRICS_FILE.endswith(".prom")  # the textfile collector reads *.prom
    assert "./data:/data:ro" in services["pipeline-metrics"]["volumes"]
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = {
        t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]
    }
    assert targets == {"api:8000", "pipeline-metrics:9100"}

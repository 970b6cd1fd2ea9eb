"""The Grafana dashboard and the Prometheus alert rules query only metrics paddock exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.metrics import METRICS, series_names

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "paddock.json"
RULES = DEPLOY / "prometheus" / "rules.yaml"

_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "group_left", "group_right"})
# Pieces of PromQL that hold no metric names: strings, Grafana variables, label matchers, ranges,
# and the label lists of by/without/on/ignoring/group_left/group_right.
_STRIP = (
    re.compile(r'"(?:[^"\\]|\\.)*"'),
    re.compile(r"\$\{[^}]*\}|\$\w+"),
    re.compile(r"\{[^}]*\}"),
    re.compile(r"\[[^\]]*\]"),
    re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"),
)
_IDENT = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric (series) names an expression selects; functions and keywords are left out."""
    for pattern in _STRIP:
        expr = pattern.sub(" ", expr)
    return {name for name, call in _IDENT.findall(expr) if not call and name.lower() not in _KEYWORDS}


def test_metric_names_parser() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, model) (rate(paddock_e2e_seconds_bucket{model=~"$model"}'
        "[$__rate_interval]))) / on(model) group_left sum(paddock_jobs_total) > 1e-9 and vector(0)"
    )
    assert metric_names(expr) == {"paddock_e2e_seconds_bucket", "paddock_jobs_total"}


def test_series_names_cover_histogram_suffixes() -> None:
    names = series_names()
    assert {"paddock_e2e_seconds_bucket", "paddock_e2e_seconds_sum", "paddock_e2e_seconds_count"} <= names
    assert "paddock_e2e_seconds" not in names  # a histogram has no bare series
    assert "paddock_jobs_total" in names and "paddock_queue_depth" in names
    assert len(METRICS) >= 16


def walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from walk_panels(panel.get("panels", []))


def dashboard() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return body


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in walk_panels(dashboard()["panels"]) for t in p.get("targets", [])]


def rule_exprs() -> list[str]:
    doc = yaml.safe_load(RULES.read_text())
    return [str(rule["expr"]) for group in doc["groups"] for rule in group["rules"]]


def test_dashboard_shape() -> None:
    body = dashboard()
    assert body["title"] and body["uid"] and 36 <= body["schemaVersion"] <= 41
    graphs = [p for p in walk_panels(body["panels"]) if p["type"] != "row"]
    assert len(graphs) >= 10
    ids = [p["id"] for p in walk_panels(body["panels"])]
    assert len(ids) == len(set(ids))
    for panel in graphs:
        assert panel["title"] and panel["targets"], panel.get("title")
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
    used = set().union(*(metric_names(e) for e in dashboard_exprs()))
    wanted = {
        "paddock_queue_depth",
        "paddock_jobs_running",
        "paddock_jobs_total",
        "paddock_gpu_seconds_total",
    }
    wanted |= {f"{m}_bucket" for m in ("paddock_queue_wait_seconds", "paddock_e2e_seconds")}
    wanted |= {"paddock_step_duration_seconds_bucket", "paddock_http_request_duration_seconds_bucket"}
    assert wanted <= used


def test_rules_shape() -> None:
    doc = yaml.safe_load(RULES.read_text())
    rules = [rule for group in doc["groups"] for rule in group["rules"]]
    assert {
        "PaddockQueueGrowing",
        "PaddockNoWorkers",
        "PaddockJobFailureRatioHigh",
        "PaddockQueueWaitHigh",
    } <= {r["alert"] for r in rules}
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]


@pytest.mark.parametrize("source", ["dashboard", "rules"])
def test_every_expr_uses_only_exported_metrics(source: str) -> None:
    exprs = dashboard_exprs() if source == "dashboard" else rule_exprs()
    exported = series_names()
    assert exprs
    for expr in exprs:
        names = metric_names(expr)
        assert names, expr
        assert names <= exported, f"{sorted(names - exported)} in {expr}"

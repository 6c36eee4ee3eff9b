"""The proxy's Prometheus metrics (``prometheus_client``), on a registry of their own per app.

Every label value comes from a fixed set: a route is its template (an unknown path is ``other``), a stage a
known stage name, an action/status one of the verdict's literals. A client choosing random paths, models
or error bodies therefore cannot create new series, and no label ever holds request text.
"""

from __future__ import annotations

from typing import Any, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

ROUTES = ("/v1/chat/completions", "/v1/guard/check", "/v1/models", "/healthz", "/readyz", "/metrics")
METHODS = ("GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH")
STAGES = ("emotion", "beliefs", "truth", "stance", "reask", "revise", "total")
ACTIONS = ("pass", "annotate", "revise", "block")
STATUSES = ("ok", "error", "timeout", "unsupported_input")
UPSTREAM_ERRORS = ("timeout", "connection", "too_large", "malformed", "http_4xx", "http_429", "http_5xx",
                   "http_503", "too_long_to_check")
REJECTIONS = ("body_too_large", "bad_json", "bad_request", "text_too_long", "unauthorised")
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


def bounded(value: Any, allowed: Iterable[str], other: str = "other") -> str:
    """``value`` when it is one of ``allowed``, else ``other``: the one rule that keeps label sets finite."""
    return value if isinstance(value, str) and value in allowed else other


def route_of(path: str) -> str:
    """The route template of a raw path (never the raw path: it is unbounded and may hold text)."""
    return path if path in ROUTES else "other"


def code_class(status: int) -> str:
    """A status code as a label: the code itself for the ones the proxy answers, else its class ("4xx")."""
    return str(status) if status in (200, 400, 401, 404, 405, 413, 422, 429, 500, 502, 503, 504) else f"{status // 100}xx"


class ProxyMetrics:
    """Counters, gauges and per-stage latency histograms of one proxy app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("guardrail_requests", "HTTP requests by route template, method and status code",
                                ("route", "method", "code"), registry=r)
        self.request_seconds = Histogram("guardrail_request_seconds", "Request latency by route template", ("route",),
                                         buckets=_LATENCY_BUCKETS, registry=r)
        self.verdicts = Counter("guardrail_verdicts", "Verdicts by action and status (one per checked draft)",
                                ("action", "status"), registry=r)
        self.checked_drafts = Counter("guardrail_checked_drafts", "Drafts checked, by part (content, tool_call)",
                                      ("part",), registry=r)
        self.upstream_errors = Counter("guardrail_upstream_errors", "Upstream failures by kind", ("kind",), registry=r)
        self.rejections = Counter("guardrail_rejected_requests", "Requests refused before the upstream, by reason",
                                  ("reason",), registry=r)
        self.check_seconds = Histogram("guardrail_check_seconds", "Seconds per guard check call, queueing included",
                                       buckets=_LATENCY_BUCKETS, registry=r)
        self.stage_seconds = Histogram("guardrail_stage_seconds", "Seconds per guard stage (from the verdict's timings)",
                                       ("stage",), buckets=_LATENCY_BUCKETS, registry=r)
        self.upstream_seconds = Histogram("guardrail_upstream_seconds", "Seconds waiting for the upstream",
                                          buckets=_LATENCY_BUCKETS, registry=r)
        self.audit_records = Counter("guardrail_audit_records", "Audit records written", registry=r)
        self.in_flight = Gauge("guardrail_in_flight", "Requests being handled", registry=r)
        for action in ACTIONS:  # so dashboards see zeros rather than missing series
            for status in STATUSES:
                self.verdicts.labels(action, status)

    def request(self, path: str, method: str, status: int, seconds: float) -> str:
        route = route_of(path)
        self.requests.labels(route, bounded(method, METHODS), code_class(status)).inc()
        self.request_seconds.labels(route).observe(seconds)
        return route

    def verdict(self, verdict: Any, part: str) -> None:
        self.verdicts.labels(bounded(verdict.action, ACTIONS), bounded(verdict.status, STATUSES)).inc()
        self.checked_drafts.labels(bounded(part, ("content", "tool_call"))).inc()
        for stage, ms in (verdict.timings_ms or {}).items():
            if isinstance(ms, (int, float)) and ms >= 0:
                self.stage_seconds.labels(bounded(stage, STAGES)).observe(ms / 1000.0)

    def upstream_error(self, kind: str) -> None:
        self.upstream_errors.labels(bounded(kind, UPSTREAM_ERRORS)).inc()

    def rejected(self, reason: str) -> None:
        self.rejections.labels(bounded(reason, REJECTIONS)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

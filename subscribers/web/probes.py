"""GET /healthz, /readyz and /metrics: for load balancers, systemd or Kubernetes probes, and
Prometheus.

/healthz says the process answers (no database: a slow database must not get healthy
workers killed). /readyz says whether it can serve: the database answers and its schema is
at the revision this code expects; 503 with a JSON reason otherwise. Web workers never
run migrations (`newsletter db upgrade` is the deploy step), so a worker started before
the upgrade reports it here instead of racing another one. /metrics: the store's gauges
(newsletter.ops.metrics), the same from any worker.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from newsletter.ops.health import as_json, readiness
from subscribers.web.state import state

bp = Blueprint("probes", __name__)
METRICS = "newsletter.metrics"  # app.extensions key: the registry create_app made


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(ok=True)


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    report = as_json(readiness(state().read_sessions.kw["bind"]))
    return jsonify(report), 200 if report["ok"] else 503


@bp.get("/metrics")
def metrics() -> Response:
    body = generate_latest(current_app.extensions[METRICS])
    return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

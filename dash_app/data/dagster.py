"""The Dagster GraphQL API for the dashboard: sensors' last ticks and asset checks' results."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx


@dataclass(frozen=True)
class SensorRun:
    location: str
    name: str
    status: str  # RUNNING / STOPPED
    last_tick_status: str | None
    last_tick_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class CheckResult:
    asset: str
    check: str
    status: str | None  # SUCCEEDED / FAILED / ... ; None = never executed
    executed_at: datetime | None
    severity: str | None
    description: str | None


@dataclass(frozen=True)
class DagsterStatus:
    reachable: bool
    error: str | None = None
    sensors: list[SensorRun] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)


DAGSTER_QUERY = """
query DashboardPipelineStatus {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection {
      nodes {
        name
        location { name }
        sensors {
          name
          sensorState {
            status
            ticks(limit: 1) { status timestamp error { message } skipReason }
          }
        }
        assetNodes {
          assetKey { path }
          assetChecksOrError {
            __typename
            ... on AssetChecks {
              checks {
                name
                executionForLatestMaterialization {
                  status
                  timestamp
                  evaluation { severity description }
                }
              }
            }
          }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""


def _ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def parse_dagster_status(payload: dict[str, Any]) -> DagsterStatus:
    """DagsterStatus from a GraphQL response of DAGSTER_QUERY (pure; tested without a server)."""
    if payload.get("errors"):
        return DagsterStatus(True, "; ".join(e.get("message", "?") for e in payload["errors"]))
    repos = payload.get("data", {}).get("repositoriesOrError", {})
    if repos.get("__typename") != "RepositoryConnection":
        return DagsterStatus(True, repos.get("message", "Dagster returned no repositories"))
    sensors, checks = [], []
    for repo in repos["nodes"]:
        location = repo["location"]["name"]
        for sensor in repo["sensors"]:
            state = sensor["sensorState"]
            tick = state["ticks"][0] if state["ticks"] else None
            error = tick and (tick.get("error") or {}).get("message")
            sensors.append(
                SensorRun(
                    location,
                    sensor["name"],
                    state["status"],
                    tick and tick["status"],
                    _ts(tick and tick["timestamp"]),
                    error or (tick and tick.get("skipReason")),
                )
            )
        for node in repo["assetNodes"]:
            found = node["assetChecksOrError"]
            if found.get("__typename") != "AssetChecks":
                continue
            for check in found["checks"]:
                run = check["executionForLatestMaterialization"] or {}
                evaluation = run.get("evaluation") or {}
                checks.append(
                    CheckResult(
                        "/".join(node["assetKey"]["path"]),
                        check["name"],
                        run.get("status"),
                        _ts(run.get("timestamp")),
                        evaluation.get("severity"),
                        evaluation.get("description"),
                    )
                )
    sensors.sort(key=lambda s: (s.location, s.name))
    checks.sort(key=lambda c: (c.asset, c.check))
    return DagsterStatus(True, None, sensors, checks)


def dagster_status(url: str, timeout_s: float) -> DagsterStatus:
    """Sensors' last ticks and asset checks' latest results; unreachable → reachable=False."""
    try:
        response = httpx.post(url, json={"query": DAGSTER_QUERY}, timeout=timeout_s)
        response.raise_for_status()
        return parse_dagster_status(response.json())
    except (httpx.HTTPError, ValueError) as exc:
        return DagsterStatus(False, f"Dagster unreachable at {url}: {exc}")


MATERIALIZED_QUERY = """
query MaterializedThrough($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    __typename
    ... on AssetNode {
      assetPartitionStatuses {
        __typename
        ... on TimePartitionStatuses { ranges { endKey status } }
      }
    }
  }
}
"""


def parse_materialized_through(payload: dict[str, Any]) -> date | None:
    """The newest materialized partition key (a session date) of a time-partitioned asset."""
    node = (payload.get("data") or {}).get("assetNodeOrError") or {}
    statuses = node.get("assetPartitionStatuses") or {}
    ends = [
        r["endKey"]
        for r in statuses.get("ranges") or []
        if r.get("status") == "MATERIALIZED" and r.get("endKey")
    ]
    return max((date.fromisoformat(e[:10]) for e in ends), default=None)


def materialized_through(url: str, path: list[str], timeout_s: float) -> date | None:
    """How far a partitioned asset has been materialized; None when unknown or unreachable."""
    try:
        response = httpx.post(
            url,
            json={"query": MATERIALIZED_QUERY, "variables": {"key": {"path": path}}},
            timeout=timeout_s,
        )
        response.raise_for_status()
        return parse_materialized_through(response.json())
    except (httpx.HTTPError, ValueError):
        return None

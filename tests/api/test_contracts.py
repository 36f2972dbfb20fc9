"""The API's contracts: the shared search vectors, the report schema's rules, the route table's shape."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.contracts import api, report, search

VECTORS = json.loads((Path(search.__file__).parent / "search_vectors.json").read_text())


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: repr(v["query"]))
def test_search_vector(vector: dict) -> None:
    if vector.get("error"):
        with pytest.raises(search.SearchError):
            search.parse(vector["query"])
        return
    parsed = search.parse(vector["query"])
    assert parsed.to_json() == vector["ast"]
    assert [n["id"] for n in VECTORS["nodes"] if parsed.matches(n)] == vector["matches"]


def test_vectors_cover_every_term_kind_and_error() -> None:
    kinds = {t["type"] for v in VECTORS["vectors"] for t in v.get("ast", {}).get("terms", [])}
    assert kinds == {"word", "field", "compare"}
    assert any(v.get("error") for v in VECTORS["vectors"])
    assert any(t.get("negate") for v in VECTORS["vectors"] for t in v.get("ast", {}).get("terms", []))


def _full(**extra: object) -> dict:
    return {"schema_version": report.SCHEMA_VERSION, "probe_id": "node-1", "seq": 1, "timestamp": 1.7e9,
            "host": {"hostname": "node-1"}, **extra}


def test_report_parses_full_and_delta_and_ignores_unknown_fields() -> None:
    full = report.parse_report(_full(processes=[{"pid": 1, "name": "init", "future_field": 1}]))
    assert isinstance(full, report.FullReport) and full.processes[0].pid == 1
    delta = report.parse_report(_full(kind="delta", base_seq=0, removed_processes=[7]))
    assert isinstance(delta, report.DeltaReport) and delta.removed_processes == [7]


@pytest.mark.parametrize(("raw", "where"), [
    ([], "report"),
    (_full(schema_version=report.SCHEMA_VERSION + 1), "schema_version"),
    (_full(schema_version="1"), "schema_version"),
    (_full(kind="partial"), "kind"),
    (_full(kind="delta"), "base_seq"),
    (_full(processes=[{"pid": 0, "name": "x"}]), "processes.0.pid"),
    (_full(connections=[{"state": "listen", "local_ip": "10.0.0.1", "local_port": 70000}]),
     "connections.0.local_port"),
])
def test_bad_reports_name_the_field(raw: object, where: str) -> None:
    with pytest.raises(report.ReportError, match=f"^{where}"):
        report.parse_report(raw)


def test_previous_version_is_upgraded_before_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    # The mechanism a version bump uses: version 2 renames host.hostname to host.name, say.
    monkeypatch.setattr(report, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(report, "ACCEPTED_SCHEMA_VERSIONS", (2, 1))
    seen: list[int] = []

    def upgrade(raw: dict) -> dict:
        seen.append(raw["schema_version"])
        return {**raw, "probe_id": raw["probe_id"].upper()}

    monkeypatch.setattr(report, "UPGRADES", {1: upgrade})
    parsed = report.parse_report(_full(schema_version=1))
    assert seen == [1] and parsed.probe_id == "NODE-1" and parsed.schema_version == 2


def test_report_limits_are_enforced() -> None:
    too_many = [{"pid": i + 1, "name": "p"} for i in range(report.MAX_PROCESSES + 1)]
    with pytest.raises(report.ReportError, match="^processes"):
        report.parse_report(_full(processes=too_many))


def test_route_table_is_consistent() -> None:
    keys = [(r.method, r.path) for r in api.ROUTES]
    assert len(keys) == len(set(keys))
    assert all(r.path.startswith(api.API_PREFIX) for r in api.ROUTES)
    assert {r.access for r in api.ROUTES} <= {"public", *(x.value for x in api.Role), *api.SCOPES}
    # Every write except ingest is audited; ingest is too frequent to audit (it is counted in metrics).
    for r in api.ROUTES:
        if r.method in ("POST", "PUT", "PATCH", "DELETE") and r.access != api.SCOPE_REPORT_WRITE:
            assert r.mutating, r
    assert api.Role.ADMIN.allows(api.Role.OPERATOR) and not api.Role.VIEWER.allows(api.Role.OPERATOR)

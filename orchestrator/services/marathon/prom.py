"""Reading metrics from Prometheus (`GET /api/v1/query`). Prometheus is a dependency, not the system under test:
any error, an empty result or NaN is reported as missing (None) with its reason, and the autoscaler holds."""
from __future__ import annotations

import math
from typing import Any

import httpx


class PrometheusSource:
    def __init__(self, url: str, *, timeout: float = 5.0, bearer_token: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout, headers=headers, transport=transport)
        self._cache: dict[str, tuple[list[dict[str, Any]] | None, str]] = {}

    def close(self) -> None:
        self._http.close()

    def new_cycle(self) -> None:
        """Forget cached answers: one query is asked at most once per cycle."""
        self._cache.clear()

    def _vector(self, query: str) -> tuple[list[dict[str, Any]] | None, str]:
        if query in self._cache:
            return self._cache[query]
        try:
            response = self._http.get(self.url + "/api/v1/query", params={"query": query})
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            result: tuple[list[dict[str, Any]] | None, str] = (None, f"prometheus-unreachable: {type(exc).__name__}")
        else:
            if response.status_code != 200 or body.get("status") != "success":
                result = (None, f"prometheus-error: HTTP {response.status_code} {body.get('error', '')}"[:200])
            else:
                data = body.get("data", {})
                if data.get("resultType") == "scalar":
                    result = ([{"metric": {}, "value": data.get("result")}], "")
                else:
                    result = (list(data.get("result") or []), "")
        self._cache[query] = result
        return result

    def value(self, query: str) -> tuple[float | None, str]:
        """One number, or (None, reason): unreachable, error, empty result, several series, NaN/Inf."""
        series, reason = self._vector(query)
        if series is None:
            return None, reason
        if not series:
            return None, "metrics-empty"
        if len(series) > 1:
            return None, f"metrics-ambiguous: {len(series)} series"
        number = _number(series[0])
        if number is None:
            return None, "metrics-nan"
        return number, ""

    def by_label(self, query: str, label: str) -> tuple[dict[str, float] | None, str]:
        """{label value: number} (NaN series dropped), or (None, reason)."""
        series, reason = self._vector(query)
        if series is None:
            return None, reason
        out = {}
        for item in series:
            key = item.get("metric", {}).get(label)
            number = _number(item)
            if key is not None and number is not None:
                out[str(key)] = number
        return out, ""


def _number(item: dict[str, Any]) -> float | None:
    try:
        number = float(item["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None

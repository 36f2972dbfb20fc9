"""Pod metadata of this node from the Kubernetes API: one list, then one watch, `fieldSelector=spec.nodeName`.

Only this node's pods are listed and watched, so a probe's cost does not grow with the cluster (Scope
#2329). RBAC cannot restrict a read to one node's pods: the probe's ClusterRole allows get/list/watch on
pods and nothing else (docs/probe.md, security). Metadata only (name, namespace, uid, labels) is kept.
A broken watch is re-established with bounded backoff; a 410 Gone (history compacted) relists.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import httpx

from orchestrator.services.probe.collector import PodMeta

log = logging.getLogger("orchestrator.probe.kube")
SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class PodWatcher:
    def __init__(self, base_url: str, node: str, token: str | None = None, verify: str | bool = True,
                 max_backoff: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url, self.node, self.max_backoff = base_url.rstrip("/"), node, max_backoff
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.base_url, headers=headers, verify=verify, transport=transport,
                                 timeout=httpx.Timeout(10.0, read=330.0))
        self.pods: dict[str, PodMeta] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.synced = threading.Event()
        self.errors = 0
        self.thread: threading.Thread | None = None

    @classmethod
    def in_cluster(cls, node: str) -> PodWatcher:
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            from orchestrator.errors import InputError
            raise InputError("--kubernetes: KUBERNETES_SERVICE_HOST is not set (not running in a pod)")
        token = (SA_DIR / "token").read_text().strip()
        host = f"[{host}]" if ":" in host else host
        return cls(f"https://{host}:{port}", node, token, verify=str(SA_DIR / "ca.crt"))

    def lookup(self, pod_uid: str) -> PodMeta | None:
        with self.lock:
            return self.pods.get(pod_uid)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="probe-pod-watch", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.http.close()  # unblocks a pending watch read
        if self.thread:
            self.thread.join(timeout=5)

    def _params(self) -> dict[str, str]:
        return {"fieldSelector": f"spec.nodeName={self.node}"}

    def list_once(self) -> str:
        response = self.http.get("/api/v1/pods", params=self._params())
        response.raise_for_status()
        body = response.json()
        pods = {}
        for item in body.get("items") or []:
            meta = _meta(item)
            if meta:
                pods[meta[0]] = meta[1]
        with self.lock:
            self.pods = pods
        self.synced.set()
        return str((body.get("metadata") or {}).get("resourceVersion", ""))

    def watch_once(self, resource_version: str) -> str | None:
        """Follow one watch stream; returns the last resourceVersion, or None when a relist is needed."""
        params = {**self._params(), "watch": "1", "resourceVersion": resource_version,
                  "allowWatchBookmarks": "true"}
        with self.http.stream("GET", "/api/v1/pods", params=params) as response:
            if response.status_code == 410:
                return None
            response.raise_for_status()
            for line in response.iter_lines():
                if self.stopping.is_set():
                    return resource_version
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    return None if obj.get("code") == 410 else resource_version
                resource_version = str((obj.get("metadata") or {}).get("resourceVersion", resource_version))
                if kind == "BOOKMARK":
                    continue
                meta = _meta(obj)
                if not meta:
                    continue
                with self.lock:
                    if kind == "DELETED":
                        self.pods.pop(meta[0], None)
                    else:
                        self.pods[meta[0]] = meta[1]
        return resource_version

    def _loop(self) -> None:
        backoff = 1.0
        version: str | None = None
        while not self.stopping.is_set():
            try:
                if version is None:
                    version = self.list_once()
                version = self.watch_once(version)
                backoff = 1.0
            except (httpx.HTTPError, ValueError) as exc:
                if self.stopping.is_set():
                    return
                self.errors += 1
                log.warning("pod watch failed (%s); retrying in %.0f s", type(exc).__name__, backoff)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                version = None


def _meta(obj: dict[str, Any]) -> tuple[str, PodMeta] | None:
    metadata = obj.get("metadata") or {}
    uid, name = metadata.get("uid"), metadata.get("name")
    if not uid or not name:
        return None
    labels = {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()}
    return str(uid), PodMeta(str(name), str(metadata.get("namespace", "")), labels)

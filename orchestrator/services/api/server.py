"""Wiring: from a config file (or the demo) to a running uvicorn server."""
from __future__ import annotations

import asyncio
import sys
from typing import Any

from orchestrator.errors import InputError
from orchestrator.services.api import gc_policy
from orchestrator.services.api.app import ApiState, create_app
from orchestrator.services.api.audit import AuditLog
from orchestrator.services.api.auth import LoginLimiter
from orchestrator.services.api.config import ApiConfig, Reloading, SigningKeys, load_config, load_keys, load_zk_auth
from orchestrator.services.api.marathon_ops import (
    MemoryPolicyStore,
    PolicyStore,
    ScalerPolicyStore,
    connect_in_background,
)
from orchestrator.services.api.status import StatusService, zk_tls

WS_MAX_MESSAGE_BYTES = 64 * 1024


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InputError(f"--listen {value!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def state_from_config(config_path: str, reload_every: float = 1.0) -> ApiState:
    """The API's state from its config file; both files are re-read at most every `reload_every` s."""
    config = Reloading(config_path, load_config, every=reload_every)
    first = config.value
    tls = zk_tls(first)  # unusable TLS files are bad input at start (exit 2), not a status error later
    keys: Reloading[SigningKeys] = Reloading(first.signing_key_file, load_keys, every=reload_every)
    marathon = None
    if first.marathon.urls:
        from orchestrator.clients.marathon import MarathonClient, load_basic_auth

        auth = load_basic_auth(first.marathon.credentials_file) if first.marathon.credentials_file else None
        marathon = MarathonClient(first.marathon.urls, auth=auth, timeout=5.0, retries=1)
    policies: PolicyStore = MemoryPolicyStore()
    if first.autoscaler.znode or first.autoscaler.directory:
        from orchestrator.services.marathon.store import PolicyStore as ScalerStore
        from orchestrator.services.marathon.store import open_store

        zk = None
        if first.autoscaler.znode:
            if not first.zookeeper.servers:
                raise InputError(f"{config_path}: autoscaler.znode needs zookeeper.servers")
            zk = connect_in_background(",".join(first.zookeeper.servers),
                                       load_zk_auth(first.autoscaler.credentials_file), tls)
        # owner=False: the API never creates the scaler's documents (the scaler does, with their ACLs).
        store = open_store(directory=first.autoscaler.directory, zk=zk,
                           path=first.autoscaler.znode or "/orchestrator/marathon-scaler", owner=False)
        policies = ScalerPolicyStore(ScalerStore(store), zk)
    return _state(config, keys, first, marathon, policies)


def _state(config: Reloading[ApiConfig], keys: Reloading[SigningKeys], first: ApiConfig, marathon: Any,
           policies: PolicyStore) -> ApiState:
    limits = first.login_limits
    state = ApiState(config=config, keys=keys, audit=AuditLog(first.audit_window),
                     limiter=LoginLimiter(limits.per_account, limits.per_source, limits.window_seconds),
                     marathon=marathon, policies=policies)
    state.status = StatusService(first, marathon, first.status_cache_seconds)
    return state


def serve(state: ApiState, host: str, port: int, ui_dir: str | None, banner: list[str] | None = None) -> None:
    import uvicorn

    app = create_app(state, ui_dir=ui_dir)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            ws_max_size=WS_MAX_MESSAGE_BYTES, ws="websockets-sansio", lifespan="on",
                            timeout_graceful_shutdown=5, server_header=False)
    server = uvicorn.Server(config)

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if server.started:
            bound = server.servers[0].sockets[0].getsockname()
            print(f"orchestrator api: listening on http://{bound[0]}:{bound[1]}", flush=True)
            for line in banner or []:
                print(line, flush=True)
        collector = asyncio.get_running_loop().create_task(gc_policy.run())   # see gc_policy.py
        try:
            await task
        finally:
            collector.cancel()

    asyncio.run(main())
    if not server.started:
        raise InputError(f"--listen {host}:{port}: could not bind (in use or not an address of this host)")
    sys.stdout.flush()

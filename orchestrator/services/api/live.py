"""The `/api/v1/ws` endpoint: first-message authentication, subscriptions, token renewal (contracts/ws.py)."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import TYPE_CHECKING

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from orchestrator.contracts import ws as proto
from orchestrator.contracts.api import GROUP_BY, Role
from orchestrator.contracts.search import SearchError
from orchestrator.services.api.auth import Principal, TokenError, verify
from orchestrator.services.api.hub import Subscriber

if TYPE_CHECKING:
    from orchestrator.services.api.app import ApiState


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def _message(text: str) -> proto.AuthMessage | proto.SubscribeMessage | proto.UnsubscribeMessage:
    if len(text.encode()) > proto.MAX_MESSAGE_BYTES:
        raise _Close(proto.CLOSE_POLICY, "message too big")
    try:
        return proto.CLIENT_MESSAGE.validate_json(text)
    except ValidationError:
        raise _Close(proto.CLOSE_POLICY, "not a valid message (auth, subscribe or unsubscribe)") from None


def _authenticate(state: ApiState, websocket: WebSocket, token: str) -> Principal:
    try:
        principal = verify(token, state.keys.get(), state.config.get(), kinds=("access", "api"),
                           revoked=state.revoked)
    except TokenError as exc:
        client = websocket.client
        state.audit.record(actor="anonymous", role=None, action="auth WEBSOCKET /api/v1/ws", target=None,
                           outcome="denied", request_id=uuid.uuid4().hex[:16],
                           source=client.host if client else "unknown", detail=str(exc))
        expired = "expired" in str(exc)
        raise _Close(proto.CLOSE_TOKEN_EXPIRED if expired else proto.CLOSE_UNAUTHENTICATED, str(exc)) from None
    if principal.scope is not None or principal.role is None or not principal.role.allows(Role.VIEWER):
        raise _Close(proto.CLOSE_FORBIDDEN, "this token may not read the topology")
    return principal


async def websocket_endpoint(websocket: WebSocket, state: ApiState) -> None:
    await websocket.accept()
    sub = Subscriber()
    writer: asyncio.Task[None] | None = None
    assert state.hub is not None
    hub = state.hub
    try:
        try:
            first = await asyncio.wait_for(websocket.receive_text(), proto.AUTH_TIMEOUT_SECONDS)
        except TimeoutError:
            raise _Close(proto.CLOSE_AUTH_TIMEOUT, "no auth message within 5 s") from None
        msg = _message(first)
        if not isinstance(msg, proto.AuthMessage):
            raise _Close(proto.CLOSE_UNAUTHENTICATED, "the first message must be auth")
        principal = _authenticate(state, websocket, msg.token)
        await websocket.send_text(proto.ReadyMessage(account=principal.account, role=principal.role,
                                                     expires_at=principal.expires_at).model_dump_json())

        async def write() -> None:
            while True:
                text = await sub.queue.get()
                if text is None:   # fell too far behind: close, the client re-subscribes
                    await websocket.close(proto.CLOSE_OVERLOADED, "too slow: reconnect")
                    return
                await websocket.send_text(text)

        writer = asyncio.get_running_loop().create_task(write())
        while True:
            remaining = principal.expires_at - time.time()
            if remaining <= 0:
                raise _Close(proto.CLOSE_TOKEN_EXPIRED, "token expired: log in or refresh, then reconnect")
            receive = asyncio.ensure_future(websocket.receive_text())
            done, _ = await asyncio.wait({receive, writer}, timeout=remaining,
                                         return_when=asyncio.FIRST_COMPLETED)
            if writer in done:
                receive.cancel()
                return
            if receive not in done:
                receive.cancel()
                continue   # the loop closes with CLOSE_TOKEN_EXPIRED
            msg = _message(receive.result())
            if isinstance(msg, proto.AuthMessage):
                principal = _authenticate(state, websocket, msg.token)
                await websocket.send_text(proto.ReadyMessage(account=principal.account, role=principal.role,
                                                             expires_at=principal.expires_at).model_dump_json())
            elif isinstance(msg, proto.SubscribeMessage):
                if msg.group_by is not None and msg.group_by not in GROUP_BY[msg.view]:
                    sub.offer(json.dumps({"type": "error", "reason": f"group_by: {msg.view} cannot be grouped "
                                                                     f"by {msg.group_by!r}"}))
                    continue
                try:
                    sub.offer(hub.subscribe(sub, msg.view, msg.filter, msg.group_by))
                except SearchError as exc:
                    sub.offer(json.dumps({"type": "error", "reason": f"filter: {exc}"}))
            else:
                hub.unsubscribe(sub)
    except _Close as close:
        if websocket.application_state == WebSocketState.CONNECTED:
            await websocket.close(close.code, close.reason)
    except WebSocketDisconnect:
        pass
    finally:
        hub.unsubscribe(sub)
        if writer is not None:
            writer.cancel()

"""The live-topology WebSocket protocol at `/api/v1/ws` (docs/api.md "WebSocket").

Browsers cannot set headers on a WebSocket, so the token travels in the first message:

    client -> {"type": "auth", "token": "<access token>"}            within AUTH_TIMEOUT_SECONDS
    server -> {"type": "ready", "account": "...", "role": "...", "expires_at": 1.7e9}
    client -> {"type": "subscribe", "view": "containers", "filter": "cpu>80", "group_by": "host"}
    server -> {"type": "snapshot", "seq": 0, "view": ..., "nodes": [...], "edges": [...], ...}
    server -> {"type": "delta", "seq": 1, "add": [...], "update": [...], "remove": ["id", ...],
               "edges_add": [...], "edges_remove": [...]}                         at most one per tick
    client -> {"type": "auth", "token": "<renewed token>"}   any time: renews the session before expiry

The server renders each distinct (view, filter, group_by) once per TICK_SECONDS and sends the same delta to
every subscriber of it (Weave Scope rendered per connection). `seq` increases by one per delta of a
subscription; a client that sees a gap re-subscribes and gets a new snapshot. A tick with no change sends
nothing. A new `subscribe` replaces the previous subscription (one per connection).

Close codes: the connection is closed with one of CLOSE_* and a reason; `{"type": "error"}` messages are
for problems that do not end the session (an unknown view, a bad filter).
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from orchestrator.contracts.api import MAX_SEARCH_CHARS, Edge, Node, View

WS_PATH = "/api/v1/ws"
AUTH_TIMEOUT_SECONDS = 5.0
TICK_SECONDS = 1.0
MAX_MESSAGE_BYTES = 64 * 1024        # client messages; larger ones close the connection
MAX_CONNECTIONS = 1000               # per replica

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008                  # message too big, not JSON, or unknown type
CLOSE_OVERLOADED = 1013              # too many connections: retry later
CLOSE_AUTH_TIMEOUT = 4000            # no valid auth message within AUTH_TIMEOUT_SECONDS
CLOSE_UNAUTHENTICATED = 4001         # bad, tampered or revoked token
CLOSE_TOKEN_EXPIRED = 4002           # the token expired and was not renewed: log in or refresh, reconnect
CLOSE_FORBIDDEN = 4003               # the token's role or scope may not read the topology (e.g. a probe token)


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuthMessage(_Msg):
    type: Literal["auth"]
    token: Annotated[str, Field(min_length=1, max_length=4096)]


class SubscribeMessage(_Msg):
    type: Literal["subscribe"]
    view: View
    filter: Annotated[str, Field(max_length=MAX_SEARCH_CHARS)] = ""
    group_by: str | None = None


class UnsubscribeMessage(_Msg):
    type: Literal["unsubscribe"]


ClientMessage = Annotated[AuthMessage | SubscribeMessage | UnsubscribeMessage, Field(discriminator="type")]
CLIENT_MESSAGE: TypeAdapter[AuthMessage | SubscribeMessage | UnsubscribeMessage] = TypeAdapter(ClientMessage)


class ReadyMessage(BaseModel):
    type: Literal["ready"] = "ready"
    account: str
    role: str | None
    expires_at: float


class SnapshotMessage(BaseModel):
    type: Literal["snapshot"] = "snapshot"
    seq: int
    view: View
    filter: str
    group_by: str | None
    generated_at: float
    nodes: list[Node]
    edges: list[Edge]
    total_nodes: int


class DeltaMessage(BaseModel):
    type: Literal["delta"] = "delta"
    seq: int
    generated_at: float
    add: list[Node] = Field(default_factory=list)
    update: list[Node] = Field(default_factory=list)     # full node, replaces the previous one
    remove: list[str] = Field(default_factory=list)      # node ids
    edges_add: list[Edge] = Field(default_factory=list)
    edges_remove: list[Edge] = Field(default_factory=list)
    total_nodes: int


class ErrorMessage(BaseModel):
    type: Literal["error"] = "error"
    reason: str

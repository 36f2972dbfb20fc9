"""Passwords (argon2id), signed tokens (HS256 with a key id) and the login rate limiter.

Token kinds (claim `typ`):
- `access`: from login or refresh, ≤ 15 min, carries the account; its role is re-read from the config at
  every request, so demoting or removing an account takes effect within a second, not at expiry.
- `refresh`: from login, ≤ 12 h, only accepted by `POST /refresh`; logout revokes it (in this replica's
  memory) and `revoked_tokens` in the config revokes it everywhere.
- `api`: from `orchestrator api token`, for automation and probes, with an optional `scope` that limits it to
  that scope's routes; revoked through `revoked_tokens` by its id (`jti`).
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from orchestrator.contracts.api import (
    ACCESS_TOKEN_TTL_SECONDS,
    MAX_API_TOKEN_TTL_SECONDS,
    REFRESH_TOKEN_TTL_SECONDS,
    SCOPES,
    Role,
)
from orchestrator.services.api.config import ApiConfig, SigningKeys

ISSUER = "orchestrator-api"
ALGORITHM = "HS256"
TokenKind = Literal["access", "refresh", "api"]

# argon2id with the library's defaults (RFC 9106 "second recommended" profile: t=3, m=64 MiB, p=4).
_HASHER = PasswordHasher()
# Verifying against this when the account does not exist keeps the timing of an unknown name the same
# as a wrong password (no account enumeration by timing).
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_login(config: ApiConfig, account: str, password: str) -> Role | None:
    entry = config.account(account)
    if entry is None:
        verify_password(_DUMMY_HASH, password)
        return None
    return entry.role if verify_password(entry.password_hash, password) else None


class TokenError(Exception):
    """401: the token is missing, malformed, tampered, expired, revoked or of the wrong kind."""


@dataclass(frozen=True)
class Principal:
    account: str
    role: Role | None           # None for a scoped token
    scope: str | None
    token_id: str
    kind: TokenKind
    expires_at: float


def issue(keys: SigningKeys, *, account: str, kind: TokenKind, ttl: float, role: Role | None = None,
          scope: str | None = None, now: float | None = None) -> tuple[str, str, float]:
    """Returns (token, token id, expiry)."""
    limit = {"access": ACCESS_TOKEN_TTL_SECONDS, "refresh": REFRESH_TOKEN_TTL_SECONDS,
             "api": MAX_API_TOKEN_TTL_SECONDS}[kind]
    if not 0 < ttl <= limit:
        raise ValueError(f"a {kind} token lives at most {limit} s, asked {ttl:g} s")
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r} (known: {', '.join(SCOPES)})")
    issued = time.time() if now is None else now
    jti = f"{kind[:3]}-{secrets.token_hex(8)}"
    claims: dict[str, Any] = {"iss": ISSUER, "sub": account, "typ": kind, "jti": jti,
                              "iat": int(issued), "exp": int(issued + ttl)}
    if role is not None:
        claims["role"] = role.value
    if scope is not None:
        claims["scope"] = scope
    token = jwt.encode(claims, keys.keys[keys.current], algorithm=ALGORITHM, headers={"kid": keys.current})
    return token, jti, float(claims["exp"])


def verify(token: str, keys: SigningKeys, config: ApiConfig, *, kinds: tuple[TokenKind, ...],
           revoked: set[str] | frozenset[str] = frozenset(), now: float | None = None) -> Principal:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenError("malformed token") from None
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM or not isinstance(kid, str) or kid not in keys.keys:
        raise TokenError("token signed with an unknown key")
    try:
        claims = jwt.decode(token, keys.keys[kid], algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": ["exp", "iat", "sub", "jti", "typ"]})
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired") from None
    except jwt.PyJWTError:
        raise TokenError("invalid token") from None
    if now is not None and claims["exp"] <= now:
        raise TokenError("token expired")
    kind = claims["typ"]
    if kind not in kinds:
        raise TokenError(f"a {kind} token cannot be used here")
    jti = str(claims["jti"])
    if jti in config.revoked_tokens or jti in revoked:
        raise TokenError("token revoked")
    account = config.account(str(claims["sub"]))
    if account is None:
        raise TokenError("the token's account no longer exists")
    scope = claims.get("scope")
    if scope is not None and scope not in SCOPES:
        raise TokenError("token with an unknown scope")
    # The account's current role, never more than the token was issued with.
    role: Role | None = None
    if scope is None:
        issued_role = Role(claims["role"]) if claims.get("role") in {r.value for r in Role} else account.role
        role = issued_role if account.role.allows(issued_role) else account.role
    return Principal(account=account.name, role=role, scope=scope, token_id=jti, kind=kind,
                     expires_at=float(claims["exp"]))


class LoginLimiter:
    """Failed logins per account and per source address in a sliding window (per replica, bounded)."""

    MAX_KEYS = 100_000

    def __init__(self, per_account: int, per_source: int, window: float) -> None:
        self.per_account, self.per_source, self.window = per_account, per_source, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def retry_after(self, account: str, source: str, now: float | None = None) -> float:
        """0 when a login attempt may proceed, else the seconds until it may."""
        now = time.monotonic() if now is None else now
        with self._lock:
            waits = []
            for key, limit in ((f"a:{account}", self.per_account), (f"s:{source}", self.per_source)):
                q = self._recent(key, now)
                if len(q) >= limit:
                    waits.append(q[len(q) - limit] + self.window - now)
            return max(waits, default=0.0)

    def failed(self, account: str, source: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._failures) >= self.MAX_KEYS:  # a flood of names: forget the oldest keys
                for key in list(self._failures)[: self.MAX_KEYS // 10]:
                    del self._failures[key]
            for key in (f"a:{account}", f"s:{source}"):
                self._failures.setdefault(key, deque(maxlen=1000)).append(now)

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._failures.pop(f"a:{account}", None)

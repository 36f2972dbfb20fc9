"""`orchestrator api serve | hash-password | token`."""
from __future__ import annotations

import argparse
import getpass
import re
import sys

from orchestrator.errors import InputError

_TTL = re.compile(r"^([0-9]+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(value: str) -> int:
    m = _TTL.match(value.strip())
    if not m or int(m.group(1)) <= 0:
        raise InputError(f"--ttl {value!r}: expected a positive duration such as 90s, 15m, 1h or 30d")
    return int(m.group(1)) * _UNITS[m.group(2)]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    api = subparsers.add_parser("api", help="the orchestrator API: serve it, hash a password, issue a token")
    sub = api.add_subparsers(dest="api_command", metavar="ACTION", required=True)

    serve = sub.add_parser("serve", help="serve the API (and the web UI's files when ui_dir exists)")
    serve.add_argument("--config", help="the API's YAML config file (accounts, signing_key_file, targets); "
                                        "optional with --demo-topology")
    serve.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT to listen on (default 127.0.0.1:8080)")
    serve.add_argument("--demo-topology", metavar="HOSTS[:CPH]",
                       help="serve a synthetic changing topology of HOSTS hosts with CPH containers each (default "
                            "10), a built-in fake Marathon and random logins printed at start")
    serve.add_argument("--demo-seed", type=int, default=1, help="seed of the demo topology (default 1)")
    serve.add_argument("--ui-dir", help="directory of the built web UI (overrides the config's ui_dir; "
                                        "default ui/dist when it exists)")
    serve.set_defaults(func=_serve)

    hp = sub.add_parser("hash-password", help="read a password on stdin, print its argon2id hash for the config")
    hp.set_defaults(func=_hash_password)

    token = sub.add_parser("token", help="print a signed API token for automation or a probe")
    token.add_argument("--config", required=True, help="the API's YAML config file (the account and the key file)")
    token.add_argument("--account", required=True, help="the account the token acts for")
    token.add_argument("--ttl", default="1h", help="lifetime, e.g. 15m, 1h, 30d (default 1h, at most 366d)")
    token.add_argument("--scope", help="limit the token to one scope, e.g. report:write for probes")
    token.set_defaults(func=_token)


def _serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from orchestrator.services.api.server import parse_listen, serve, state_from_config

    host, port = parse_listen(args.listen)
    ui_dir = args.ui_dir
    if args.demo_topology:
        from orchestrator.services.api.demo import demo_state, parse_demo

        hosts, per_host = parse_demo(args.demo_topology)
        if ui_dir is None and Path("ui/dist").is_dir():
            ui_dir = "ui/dist"
        state, banner, fake = demo_state(hosts, per_host, args.demo_seed, ui_dir)
        try:
            serve(state, host, port, ui_dir, banner)
        finally:
            fake.stop()
        return 0
    if not args.config:
        raise InputError("--config is required (or --demo-topology for a demo)")
    state = state_from_config(args.config)
    serve(state, host, port, ui_dir or state.config.value.ui_dir)
    return 0


def _hash_password(args: argparse.Namespace) -> int:
    from orchestrator.services.api.auth import hash_password

    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    if len(password) < 12:
        raise InputError("the password is shorter than 12 characters")
    print(hash_password(password))
    return 0


def _token(args: argparse.Namespace) -> int:
    from orchestrator.services.api.auth import issue
    from orchestrator.services.api.config import load_config, load_keys

    config = load_config(args.config)
    account = config.account(args.account)
    if account is None:
        raise InputError(f"{args.config}: accounts: no account named {args.account!r}")
    ttl = parse_ttl(args.ttl)
    try:
        token, jti, expires = issue(load_keys(config.signing_key_file), account=account.name, kind="api",
                                    role=None if args.scope else account.role, scope=args.scope, ttl=ttl)
    except ValueError as exc:
        raise InputError(f"--ttl/--scope: {exc}") from None
    print(token)
    print(f"token id {jti} (revoke: add it to revoked_tokens), expires at unix {expires:.0f}", file=sys.stderr)
    return 0

"""`orchestrator diff-trees --stack S --head DIR [--base DIR]`: the diff of two rendered trees.

What the PR comment runs (.github/workflows/pr-comment.yml): the pull request only supplies its rendered
tree (`orchestrator render --out`, run with the PR's code and no secrets); the base branch's checkout
renders its own tree and classifies the changes with *its* diff engine, so a PR that edits the diff
engine cannot make the comment say "no changes".

The head tree is untrusted data: only `<tier>/manifests.yaml` files and `stack-outputs.json` are read,
each through the strict YAML reader (size, alias and depth limits), and anything else in the directory
(symbolic links, other files, a malformed object) is refused with exit 2. No `--base`: the stack does not
exist on the base side, every object is new.

Exit codes as `orchestrator diff`: 0 no changes, 3 changes, 4 dangerous changes, 2 a tree is unreadable.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError

# A render of ours holds a few dozen objects per tier; anything far larger is not one.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_FILES = 200
_TIER = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_ALLOWED_TOP = {"stack-outputs.json", ".orchestrator-render"}


def register(sub: argparse._SubParsersAction) -> None:
    from orchestrator.toolchain.commands import stack_name

    p = sub.add_parser("diff-trees", help="diff two rendered trees (the PR comment: base engine, PR's tree)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stack", required=True, type=stack_name, help="stack name (labels the output)")
    p.add_argument("--head", required=True, type=Path, metavar="DIR",
                   help="the changed side's rendered tree (`orchestrator render --out DIR`), untrusted")
    p.add_argument("--base", type=Path, metavar="DIR",
                   help="the base side's rendered tree; omit when the stack does not exist on the base side")
    p.add_argument("--base-label", default="base", help="how the output names the base side (e.g. main@abc123)")
    p.add_argument("--head-label", default="pull request", help="how the output names the changed side")
    p.add_argument("--format", choices=("text", "markdown"), default="text",
                   help="text (terminal) or markdown (a PR comment)")
    p.set_defaults(func=cmd_diff_trees)


def read_tree(directory: Path, option: str) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """`{tier: [manifest, ...]}` and the stack outputs of a rendered tree; InputError naming the file."""
    from orchestrator.strict_yaml import read_text

    if directory.is_symlink() or not directory.is_dir():
        raise InputError(f"{option} {directory}: not a directory")
    manifests: dict[str, list[dict[str, Any]]] = {}
    outputs: dict[str, Any] = {}
    entries = sorted(directory.rglob("*"))
    if len(entries) > MAX_FILES:
        raise InputError(f"{option} {directory}: {len(entries)} entries; a rendered tree has far fewer")
    for path in entries:
        rel = path.relative_to(directory).as_posix()
        if path.is_symlink():
            raise InputError(f"{option} {directory}: {rel} is a symbolic link; refusing the tree")
        if path.is_dir():
            if "/" in rel or not _TIER.match(rel):
                raise InputError(f"{option} {directory}: unexpected directory {rel}")
            continue
        if rel in _ALLOWED_TOP and rel != "stack-outputs.json":
            continue
        if rel == "stack-outputs.json":
            text = read_text(path, f"{option} {rel}", MAX_FILE_BYTES)
            try:
                outputs = json.loads(text)
            except (json.JSONDecodeError, RecursionError):
                raise InputError(f"{option} {directory}: {rel} is not JSON") from None
            if not isinstance(outputs, dict):
                raise InputError(f"{option} {directory}: {rel} must be a JSON object")
            continue
        tier, _, name = rel.partition("/")
        if name != "manifests.yaml" or not _TIER.match(tier):
            raise InputError(f"{option} {directory}: unexpected file {rel} (a render holds <tier>/manifests.yaml)")
        docs = _load_all(read_text(path, f"{option} {rel}", MAX_FILE_BYTES), f"{option} {rel}")
        objects = []
        for i, doc in enumerate(docs):
            if doc is None:
                continue
            meta = doc.get("metadata") if isinstance(doc, dict) else None
            if not (isinstance(doc, dict) and isinstance(doc.get("kind"), str) and isinstance(meta, dict)
                    and isinstance(meta.get("name"), str)):
                raise InputError(f"{option} {directory}: {rel} document {i + 1} is not a Kubernetes object "
                                 "(kind and metadata.name)")
            objects.append(doc)
        manifests[tier] = objects
    return manifests, outputs


def _load_all(text: str, source: str) -> list[Any]:
    """Every document of a multi-document YAML text, each under the strict reader's limits (aliases,
    depth, expanded size); errors are one line naming the file (YamlError, exit 2)."""
    from orchestrator import strict_yaml

    # A document separator at column 0 cannot sit inside a block scalar of a manifest (their content is
    # indented): splitting first gives each document the strict reader's own limits.
    return [strict_yaml.loads(part, source) for part in re.split(r"^---[ \t]*$", text, flags=re.M)]


def cmd_diff_trees(args: argparse.Namespace) -> int:
    from orchestrator.toolchain.diff import compare, format_markdown, format_text

    head, head_outputs = read_tree(args.head, "--head")
    base, base_outputs = read_tree(args.base, "--base") if args.base is not None else ({}, {})
    base_label = args.base_label if args.base is not None else f"{args.base_label} (no such stack)"
    diff = compare(args.stack, base, head, base_label, args.head_label, base_outputs, head_outputs)
    sys.stdout.write(format_markdown(diff) if args.format == "markdown" else format_text(diff))
    return int(diff.exit_code)

"""What every render check shares: the error a check raises when it cannot run, and the helpers that
name objects and match selectors. Its own module so that `checks` and `argo_validate` both import it
instead of each other (they formed an import cycle)."""
from __future__ import annotations

from typing import Any


class CheckError(Exception):
    """A check could not run (a tool or an input is missing); distinct from a problem it found."""


def ref(doc: dict[str, Any]) -> str:
    """`Kind namespace/name` of a manifest, for messages."""
    meta = doc.get("metadata", {})
    ns = meta.get("namespace")
    return f"{doc.get('kind')} {ns + '/' if ns else ''}{meta.get('name')}"


def subset(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels) selects `labels`."""
    return all(labels.get(k) == v for k, v in selector.items())

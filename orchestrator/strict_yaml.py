"""The one YAML reader for files a user hands us (stack files, service config files).

PyYAML's `safe_load` is safe against code execution but not against mistakes or small hostile inputs:
duplicate keys silently keep the last value (`production: true` then `production: false`), a 551-byte
alias bomb expands to gigabytes, and deep nesting ends in a RecursionError. This loader reads a bounded
number of bytes, decodes strict UTF-8, refuses duplicate keys (naming the key and both lines), allows
only a few aliases, bounds nesting depth and the size of the expanded document, and turns every failure
into one `YamlError` line that names the file (exit code 2 through `cli.main`).

Stdlib and PyYAML only: services and the toolchain both use it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from orchestrator.errors import InputError

MAX_BYTES = 1024 * 1024       # stack and config files are a few kilobytes
MAX_ALIASES = 16              # anchors are rare in config; a bomb needs many aliases
MAX_DEPTH = 64                # our deepest setting is about 5 levels
MAX_NODES = 100_000           # scalars + collections after alias expansion
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlError(InputError):
    """A file is not acceptable YAML; the message names the file (and the line when there is one)."""


def _line(node_or_mark: Any) -> int:
    mark = getattr(node_or_mark, "start_mark", node_or_mark)
    return int(getattr(mark, "line", -1)) + 1


def _loader_class(source: str, max_aliases: int, max_depth: int) -> type[yaml.SafeLoader]:
    class StrictLoader(yaml.SafeLoader):
        _aliases = 0
        _depth = 0

        def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # noqa: N803 (PyYAML's name)
            # The scanner looks ahead across open brackets (quadratic in their number): stop early.
            if self.flow_level >= max_depth:
                raise YamlError(f"{source}: line {self.line + 1}: nested deeper than {max_depth} levels")
            super().fetch_flow_collection_start(TokenClass)  # type: ignore[misc]

        def compose_node(self, parent: Node | None, index: Any) -> Node | None:  # type: ignore[override]
            if self.check_event(yaml.AliasEvent):
                self._aliases += 1
                if self._aliases > max_aliases:
                    raise YamlError(f"{source}: line {_line(self.peek_event())}: more than {max_aliases} "
                                    "aliases (*name): refusing a document that may expand without bound")
            self._depth += 1
            if self._depth > max_depth:
                raise YamlError(f"{source}: line {_line(self.peek_event())}: nested deeper than {max_depth} levels")
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue  # `<<: *base` merges: the merged keys may be overridden, as YAML says
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    raise YamlError(f"{source}: line {_line(key_node)}: a mapping key must be a scalar") from None
                if first is not None:
                    raise YamlError(f"{source}: line {_line(key_node)}: duplicate key {key!r} (first on line {first})")
                seen[key] = _line(key_node)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def _expanded_size(root: Node, source: str, max_nodes: int) -> int:
    """Node count of the document with every alias expanded; refuses cycles and sizes above max_nodes.
    Iterative (no recursion) and memoised by node identity, so the bomb is measured, not expanded."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            children = _children(node)
            total = 1 + sum(size[id(c)] for c in children)
            if total > max_nodes:
                raise YamlError(f"{source}: line {_line(node)}: expands to more than {max_nodes} values "
                                "(aliases): refusing it")
            size[key] = total
            continue
        if key in size:
            continue
        if key in on_path:
            raise YamlError(f"{source}: line {_line(node)}: an alias refers to its own parent (a recursive structure)")
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise YamlError(f"{source}: line {_line(child)}: an alias refers to its own parent "
                                "(a recursive structure)")
            if id(child) not in size:
                stack.append((child, False))
    return size[id(root)]


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def read_text(path: Path, source: str | None = None, max_bytes: int = MAX_BYTES) -> str:
    """The file's text: at most max_bytes, strict UTF-8 (a BOM is allowed). Errors name the file."""
    source = source or str(path)
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except IsADirectoryError:
        raise YamlError(f"{source}: is a directory, not a file") from None
    except OSError as exc:
        raise YamlError(f"{source}: cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise YamlError(f"{source}: larger than {max_bytes} bytes: refusing to read it")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise YamlError(f"{source}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})") from None


def loads(text: str, source: str, *, max_aliases: int = MAX_ALIASES, max_depth: int = MAX_DEPTH,
          max_nodes: int = MAX_NODES) -> Any:
    """Parse one YAML document strictly. An empty document is None."""
    loader: yaml.SafeLoader | None = None
    try:
        loader = _loader_class(source, max_aliases, max_depth)(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, source, max_nodes)
        return loader.construct_document(node)
    except YamlError:
        raise
    except yaml.MarkedYAMLError as exc:
        where = f"line {_line(exc.problem_mark)}: " if exc.problem_mark is not None else ""
        raise YamlError(f"{source}: {where}not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise YamlError(f"{source}: not valid YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") \
            from None
    except (ValueError, OverflowError) as exc:
        # e.g. an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise YamlError(f"{source}: a value cannot be read: {str(exc).splitlines()[0][:200]}") from None
    except RecursionError:
        raise YamlError(f"{source}: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_file(path: Path, source: str | None = None, **limits: Any) -> Any:
    """Read and parse one YAML file strictly (see the module doc)."""
    source = source or str(path)
    max_bytes = limits.pop("max_bytes", MAX_BYTES)
    return loads(read_text(path, source, max_bytes), source, **limits)


def load_mapping(path: Path, source: str | None = None, **limits: Any) -> dict[str, Any]:
    """A YAML file whose top level must be a mapping (an empty file is an empty mapping)."""
    source = source or str(path)
    doc = load_file(path, source, **limits)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise YamlError(f"{source}: the top level must be a mapping of keys to values (got {_kind(doc)})")
    return doc


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"

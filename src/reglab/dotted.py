"""Dotted keys on nested configs: ``{"a": {"b": 1}}`` ↔ ``"a.b"`` (the one copy).

Plain mappings (a resolved config, a summary, ``multirun.yaml``) and OmegaConf
``DictConfig``\\ s alike. :func:`leaves` walks a ``DictConfig`` through its nodes,
unresolved, so that an interpolation only Hydra's runtime resolves never raises: its
leaves are those nodes (one that is None, missing or an interpolation is a leaf too).
Lists are values, never walked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from omegaconf import DictConfig

#: What :func:`get` returns for a missing key when asked to (``default=MISSING``).
MISSING: Any = object()


def _children(tree: Any) -> list[tuple[str, Any]] | None:
    """The (key, child) pairs of a mapping, or None for a leaf."""
    if isinstance(tree, DictConfig):
        if tree._is_none() or tree._is_missing() or tree._is_interpolation():
            return None
        return [(str(k), tree._get_node(k)) for k in tree]
    if isinstance(tree, Mapping):
        return [(str(k), v) for k, v in tree.items()]
    return None


def leaves(tree: Any, prefix: str = "", keep_empty: bool = False) -> Iterator[tuple[str, Any]]:
    """``(dotted key, value)`` of every leaf of ``tree``, whose own key is ``prefix``.

    An empty mapping is a leaf with ``keep_empty`` (the root too where ``prefix`` names it),
    else it has no leaves; a root that is no mapping is one leaf, ``(prefix, tree)``.
    """
    children = _children(tree)
    if children is None:
        yield prefix, tree
        return
    if not children:
        if keep_empty and prefix:
            yield prefix, tree
        return
    for key, child in children:
        yield from leaves(child, f"{prefix}.{key}" if prefix else key, keep_empty)


def flatten(tree: Any, keep_empty: bool = False) -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [2]}`` → ``{"a.b": 1, "c": [2]}`` (None: ``{}``)."""
    return dict(leaves(tree or {}, "", keep_empty))


def get(tree: Any, dotted: str, default: Any = None) -> Any:
    """``tree["a"]["b"]`` for ``"a.b"``; ``default`` where a key is missing (or a node on
    the way is no mapping)."""
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def node(cfg: DictConfig, dotted: str) -> Any:
    """The unresolved node of ``cfg`` at ``dotted`` (``""``: ``cfg``; None if absent)."""
    found: Any = cfg
    for part in dotted.split(".") if dotted else ():
        found = found._get_node(part) if isinstance(found, DictConfig) else None
    return found


def put(tree: MutableMapping[str, Any], dotted: str, value: Any) -> None:
    """``tree["a"]["b"] = value`` for ``"a.b"``, making (or replacing by) dicts on the way."""
    *parents, last = dotted.split(".")
    node = tree
    for part in parents:
        child = node.get(part)
        if not isinstance(child, MutableMapping):
            child = node[part] = {}
        node = child
    node[last] = value


def pop(tree: Any, dotted: str, default: Any = None) -> Any:
    """Remove ``"a.b"`` from ``tree`` and return its value (``default`` if absent)."""
    parent, _, last = dotted.rpartition(".")
    node = get(tree, parent) if parent else tree
    if isinstance(node, MutableMapping) and last in node:
        return node.pop(last)
    return default

"""The built-in task kinds, and a registry that holds them."""

from __future__ import annotations

from taskflow.domain.registry import Registry, TaskKind
from taskflow.kinds.document import DOCUMENT_REQUEST, PRODUCT_DOCUMENT_REQUEST

__all__ = ["BUILTIN_KINDS", "default_registry"]

BUILTIN_KINDS: tuple[TaskKind, ...] = (DOCUMENT_REQUEST, PRODUCT_DOCUMENT_REQUEST)


def default_registry(*extra: TaskKind) -> Registry:
    """Return a new registry with every built-in kind, plus `extra` kinds of the host's own."""
    return Registry((*BUILTIN_KINDS, *extra))

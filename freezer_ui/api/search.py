"""Document search shared by the transports (no Django here: the remote transport uses it too).

``search`` is what ``BaseTransport.list`` accepts: ``None``, free text, or freezer-api's
structured ``{"match": [{key: value}], "match_not": [{key: value}]}``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from freezer_ui.api.transports.base import Search


def _scalars(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _scalars(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def search_text(doc: Any) -> str:
    """Lower-cased text of every value of ``doc``, one per line, for free-text search."""
    return "\n".join(_scalars(doc)).lower()


def _found_recursively(doc: Any, keys: set[str]) -> dict[str, Any]:
    # freezer-api's structured search: the value of each wanted key anywhere in the document
    # (the last one found wins, as in its get_recursively).
    found: dict[str, Any] = {}
    if isinstance(doc, Mapping):
        for key, value in doc.items():
            if key in keys:
                found[key] = value
            elif isinstance(value, Mapping | list):
                found.update(_found_recursively(value, keys))
    elif isinstance(doc, list):
        for item in doc:
            if isinstance(item, Mapping):
                found.update(_found_recursively(item, keys))
    return found


def matches(doc: Mapping[str, Any], search: Search) -> bool:
    """Whether ``doc`` is selected by ``search`` (see ``transports.base.Search``)."""
    if not search:
        return True
    if isinstance(search, str):
        needle = search.strip().lower()
        return not needle or needle in search_text(doc)
    match = list(search.get("match") or [])
    match_not = list(search.get("match_not") or [])
    keys = {key for term in match + match_not for key in term}
    found = _found_recursively(doc, keys)
    return all(found.get(k) == v for term in match for k, v in term.items()) and not any(
        found.get(k) == v for term in match_not for k, v in term.items()
    )

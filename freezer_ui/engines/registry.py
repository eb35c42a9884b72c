"""The engine registry: one readable name -> class table, plus the ``freezer_ui.engines``
entry-point group for third-party engines. Unknown and duplicate names fail loudly."""

from __future__ import annotations

from importlib.metadata import entry_points

from freezer_ui.engines.base import DuplicateEngine, Engine, UnknownEngine
from freezer_ui.engines.tar import TarEngine

ENTRY_POINT_GROUP = "freezer_ui.engines"

ENGINE_TABLE: dict[str, type[Engine]] = {
    TarEngine.name: TarEngine,
}


def _from_entry_points() -> dict[str, type[Engine]]:
    found: dict[str, type[Engine]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in ENGINE_TABLE or ep.name in found:
            raise DuplicateEngine(f"engine name {ep.name!r} is registered twice ({ep.value})")
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Engine)):
            raise TypeError(f"entry point {ep.name}={ep.value} is not an Engine subclass")
        found[ep.name] = cls
    return found


def engine_names() -> list[str]:
    """Every available engine name, built-in first."""
    return [*ENGINE_TABLE, *_from_entry_points()]


def get_engine(name: str) -> type[Engine]:
    """Return the engine class registered as ``name``; raise :class:`UnknownEngine` otherwise."""
    if name in ENGINE_TABLE:
        return ENGINE_TABLE[name]
    extra = _from_entry_points()
    if name in extra:
        return extra[name]
    known = ", ".join(sorted([*ENGINE_TABLE, *extra]))
    raise UnknownEngine(f"unknown engine {name!r} (known: {known})")

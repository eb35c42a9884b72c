from __future__ import annotations

import pytest

from freezer_ui.engines import registry
from freezer_ui.engines.base import DuplicateEngine, Engine, UnknownEngine
from freezer_ui.engines.tar import TarEngine


def test_tar_is_registered() -> None:
    assert registry.get_engine("tar") is TarEngine
    assert "tar" in registry.engine_names()
    assert issubclass(TarEngine, Engine)


def test_unknown_engine_fails_loudly() -> None:
    with pytest.raises(UnknownEngine, match="'nope'.*known: .*tar"):
        registry.get_engine("nope")


class _EP:
    def __init__(self, name: str, obj: object) -> None:
        self.name, self.value, self._obj = name, f"thirdparty:{name}", obj

    def load(self) -> object:
        return self._obj


class Other(TarEngine):
    name = "other"


def test_entry_point_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "entry_points", lambda group: [_EP("other", Other)])
    assert registry.get_engine("other") is Other


def test_entry_point_cannot_shadow_builtin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "entry_points", lambda group: [_EP("tar", Other)])
    with pytest.raises(DuplicateEngine):
        registry.get_engine("nope")


def test_entry_point_must_be_an_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "entry_points", lambda group: [_EP("x", object)])
    with pytest.raises(TypeError):
        registry.get_engine("x")

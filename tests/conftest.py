"""Suite-wide fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openstack_dashboard.test.test_data import exceptions as horizon_test_exceptions

# Horizon's test data replaces __init__ and __str__ of real client exception classes
# (swiftclient's ClientException, keystoneauth's, ...) on the classes themselves, for every
# later test in the process, whenever a dashboard test loads it.  The libraries raise those
# exceptions with their own arguments, so after any dashboard test the swift storage tests
# failed with a TypeError from the stub, or read a stub's message.  Every class Horizon stubs
# is recorded with its real methods and put back after each test; dashboard tests stub again
# in their own setUp, as Horizon expects.
_REAL: dict[type, dict[str, Any]] = {}
_stub = horizon_test_exceptions.create_stubbed_exception


def _recording_stub(cls: type, status_code: int = 500) -> Any:
    if cls not in _REAL:
        _REAL[cls] = {k: cls.__dict__.get(k) for k in ("__init__", "__str__", "silence_logging")}
    return _stub(cls, status_code)


horizon_test_exceptions.create_stubbed_exception = _recording_stub


@pytest.fixture(autouse=True)
def _real_client_exceptions() -> Iterator[None]:
    yield
    for cls, real in _REAL.items():
        for name, value in real.items():
            if value is None:
                if name in cls.__dict__:
                    delattr(cls, name)
            else:
                setattr(cls, name, value)

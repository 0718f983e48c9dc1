"""Fixtures of the client unit tests: the scriptable STOMP responder and the stub schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from unit.client.client_fakes import FakeServer, StubSchema, stub_schema


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    yield fake
    fake.close()


@pytest.fixture
def schema() -> StubSchema:
    return stub_schema()

"""Fixtures for out-of-process I/O tests: pools on real helpers, and FIFOs that hang on demand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from virthost.storage.oop import OutOfProcessIO

from .support import Fifo


@pytest.fixture
def make_fifo(tmp_path: Path) -> Iterator[Callable[[str], Fifo]]:
    fifos: list[Fifo] = []

    def make(name: str) -> Fifo:
        fifo = Fifo(tmp_path / name)
        fifos.append(fifo)
        return fifo

    yield make
    for fifo in fifos:
        fifo.close()


@pytest.fixture
def make_oop() -> Iterator[Callable[..., OutOfProcessIO]]:
    pools: list[OutOfProcessIO] = []

    def make(name: str = "test", **kwargs: float) -> OutOfProcessIO:
        pool = OutOfProcessIO(name, **kwargs)  # type: ignore[arg-type]
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


@pytest.fixture
def oop(make_oop: Callable[..., OutOfProcessIO]) -> OutOfProcessIO:
    return make_oop("test", timeout=30.0)

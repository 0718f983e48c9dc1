"""Fixtures for the hook tests: a hooks directory, a runner, and places to look for evidence."""

from __future__ import annotations

from pathlib import Path

import pytest

from virthost.common.commands import CommandRunner
from virthost.hooks import HookRunner


@pytest.fixture
def hooks_dir(tmp_path: Path) -> Path:
    return tmp_path / "hooks"


@pytest.fixture
def tmp_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir()
    return path


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    """Where test scripts leave evidence of what they saw."""
    path = tmp_path / "marks"
    path.mkdir()
    return path


@pytest.fixture
def hook_runner(hooks_dir: Path, tmp_dir: Path) -> HookRunner:
    return HookRunner(hooks_dir, CommandRunner(term_grace=0.1), timeout=10, tmp_dir=tmp_dir)

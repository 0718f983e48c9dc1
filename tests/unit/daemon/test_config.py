"""Configuration: defaults, strict loading, and the rendered default file."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from virthost.common.errors import InvalidConfiguration
from virthost.daemon import config


def test_defaults_match_vdsm_contract() -> None:
    c = config.Config()
    assert c.rpc.port == 54321
    assert c.rpc.tls is True
    assert c.rpc.request_queues == ["jms.topic.vdsm_requests", "jms.topic.vdsm_irs_requests"]
    assert c.rpc.event_queue == "jms.queue.events"


def test_load_overrides_and_converts(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[rpc]\nport = 1234\nworker_timeout = 5\n[daemon]\nuser = ""\n')
    c = config.load(path)
    assert (c.rpc.port, c.rpc.worker_timeout, c.daemon.user) == (1234, 5.0, "")
    assert isinstance(c.rpc.worker_timeout, float)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[nope]\nx = 1\n", "unknown section"),
        ("[rpc]\nprot = 1\n", "unknown option"),
        ('[rpc]\nport = "54321"\n', "expected int"),
        ("[rpc]\ntls = 1\n", "expected bool"),
        ("[rpc]\nport = true\n", "expected int"),
        ("[rpc]\nrequest_queues = [1]\n", "list of strings"),
        ("[rpc\n", "c.toml"),
    ],
)
def test_bad_files_are_refused(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(InvalidConfiguration, match=problem):
        config.load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfiguration, match="cannot read"):
        config.load(tmp_path / "absent.toml")


def test_rendered_default_documents_every_option_and_parses() -> None:
    text = config.render_default()
    uncommented = "\n".join(
        line[1:] if line.startswith("#") and " = " in line and not line.startswith("# ") else line
        for line in text.splitlines()
    )
    parsed = tomllib.loads(uncommented)
    assert config.from_mapping(parsed) == config.Config()
    for section in ("daemon", "rpc", "pki", "supervisor", "libvirt", "sampling"):
        assert f"[{section}]" in text


def test_print_default_config_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "virthost.daemon.main", "--print-default-config"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out == config.render_default()


def test_docs_show_the_default_configuration() -> None:
    from virthost.daemon import configdoc

    docs = Path(__file__).parents[3] / "docs" / "configuration.md"
    assert config.render_default() in configdoc.render_markdown()
    assert docs.read_text() == configdoc.render_markdown(), "run 'make docs'"

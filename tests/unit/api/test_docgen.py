"""docs/api.md is generated from the schema and kept up to date; --check catches staleness."""

from __future__ import annotations

from pathlib import Path

import pytest

from virthost.api import docgen
from virthost.api.schema import Schema

DOCS = Path(__file__).resolve().parents[3] / "docs" / "api.md"


def test_docs_api_md_is_up_to_date() -> None:
    expected = docgen.render_markdown(Schema.default())
    assert DOCS.read_text(encoding="utf-8") == expected, (
        f"docs/api.md is stale; regenerate with: {docgen.REGENERATE}"
    )


def test_rendering_covers_every_verb_type_and_event() -> None:
    schema = Schema.default()
    text = docgen.render_markdown(schema)
    for verbs in schema.namespaces.values():
        for verb in verbs.values():
            assert f"\n### {verb.method}\n" in text
    for name in schema.types:
        assert f'<a id="type-{name.lower()}"></a>\n### {name}\n' in text
    for event in schema.events:
        assert f"### `{event.name}`" in text


def test_rendering_of_one_verb() -> None:
    text = docgen.render_markdown(Schema.default())
    section = text.split("\n### Host.setLogLevel\n", 1)[1].split("\n### ", 1)[0]
    assert "| `level` | [LogLevel](#type-loglevel) | *required* |" in section
    assert '| `name` | `string` | `""` |' in section
    ping = text.split("\n### Host.ping\n", 1)[1].split("\n### ", 1)[0]
    assert "**Deprecated.**" in ping and "Fast" in ping
    stats = text.split("\n### VM.getStats\n", 1)[1].split("\n### ", 1)[0]
    assert "Returns list of [VmStats](#type-vmstats)" in stats


def test_main_prints_the_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert docgen.main([]) == 0
    assert capsys.readouterr().out == docgen.render_markdown(Schema.default())


def test_main_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fresh = tmp_path / "fresh.md"
    fresh.write_text(docgen.render_markdown(Schema.default()), encoding="utf-8")
    assert docgen.main(["--check", str(fresh)]) == 0
    stale = tmp_path / "stale.md"
    stale.write_text(fresh.read_text(encoding="utf-8") + "edited by hand\n", encoding="utf-8")
    assert docgen.main(["--check", str(stale)]) == 1
    assert "stale" in capsys.readouterr().err
    assert docgen.main(["--check", str(tmp_path / "missing.md")]) == 1

"""The data file: scripts see the XML or JSON, may rewrite it, and it is private."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unit.hooks.hook_scripts import VM_ID, XML, add_hook, assert_no_leftovers
from virthost.common import errors
from virthost.hooks import (
    AFTER_GET_ALL_VM_STATS,
    BEFORE_VM_START,
    HookRunner,
)

POINT = BEFORE_VM_START


def test_rewrite_is_seen_by_the_next_script_and_returned(
    hooks_dir: Path, hook_runner: HookRunner, marks: Path, tmp_dir: Path
) -> None:
    add_hook(
        hooks_dir,
        POINT,
        "10_rewrite",
        "echo '<domain><name>new</name></domain>' > \"$_hook_domxml\"",
    )
    add_hook(hooks_dir, POINT, "20_observe", f'cat "$_hook_domxml" > {marks}/seen')

    result = hook_runner.run_domxml(POINT, XML)

    assert result == "<domain><name>new</name></domain>\n"
    assert (marks / "seen").read_text() == result
    assert_no_leftovers(tmp_dir)


def test_first_script_sees_the_given_xml_in_a_private_file(
    hooks_dir: Path, hook_runner: HookRunner, marks: Path
) -> None:
    add_hook(
        hooks_dir,
        POINT,
        "10_look",
        f'cat "$_hook_domxml" > {marks}/xml; stat -c %a "$_hook_domxml" > {marks}/mode;'
        f' stat -c %a "$(dirname "$_hook_domxml")" > {marks}/dirmode;'
        f' echo "$_hook_domxml" > {marks}/path',
    )

    assert hook_runner.run_domxml(POINT, XML) == XML

    assert (marks / "xml").read_text() == XML
    assert (marks / "mode").read_text().strip() == "600"
    assert (marks / "dirmode").read_text().strip() == "700"
    assert not Path((marks / "path").read_text().strip()).exists()


def test_json_round_trip(hooks_dir: Path, hook_runner: HookRunner, tmp_dir: Path) -> None:
    stats = [{"vmId": VM_ID, "cpuUser": "1.5", "status": "Up"}]
    add_hook(
        hooks_dir,
        AFTER_GET_ALL_VM_STATS,
        "10_fake",
        'sed \'s/"Up"/"Paused"/\' "$_hook_json" > "$_hook_json.new"\n'
        'mv "$_hook_json.new" "$_hook_json"',
    )

    result = hook_runner.run_json(AFTER_GET_ALL_VM_STATS, stats)

    assert result == [{"vmId": VM_ID, "cpuUser": "1.5", "status": "Paused"}]
    assert stats[0]["status"] == "Up"
    assert_no_leftovers(tmp_dir)


def test_json_script_sees_the_data_as_json(
    hooks_dir: Path, hook_runner: HookRunner, marks: Path
) -> None:
    add_hook(hooks_dir, AFTER_GET_ALL_VM_STATS, "10_look", f'cp "$_hook_json" {marks}/json')

    assert hook_runner.run_json(AFTER_GET_ALL_VM_STATS, {"a": [1, 2]}) == {"a": [1, 2]}

    assert json.loads((marks / "json").read_text()) == {"a": [1, 2]}


def test_invalid_json_left_by_a_script_is_an_error_naming_it(
    hooks_dir: Path, hook_runner: HookRunner, marks: Path, tmp_dir: Path
) -> None:
    add_hook(hooks_dir, AFTER_GET_ALL_VM_STATS, "10_break", 'echo "{not json" > "$_hook_json"')
    add_hook(hooks_dir, AFTER_GET_ALL_VM_STATS, "20_later", f"touch {marks}/later")

    with pytest.raises(errors.HookError, match="10_break"):
        hook_runner.run_json(AFTER_GET_ALL_VM_STATS, {"a": 1})

    assert not (marks / "later").exists()
    assert_no_leftovers(tmp_dir)


def test_deleted_data_file_is_an_error(
    hooks_dir: Path, hook_runner: HookRunner, tmp_dir: Path
) -> None:
    add_hook(hooks_dir, POINT, "10_delete", 'rm "$_hook_domxml"')

    with pytest.raises(errors.HookError, match="10_delete"):
        hook_runner.run_domxml(POINT, XML)
    assert_no_leftovers(tmp_dir)

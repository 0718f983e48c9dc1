"""Reading the kernel's state: which routes and rules the applier looks at."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from virthost.network.netlink.routing import source_table_id
from virthost.network.netlink.state import MAIN_TABLE, Route, Rule, read_state

OWNED = source_table_id("blue")
LOCAL_TABLE = 255


@dataclass
class Message:
    """A pyroute2 message double: header fields and attributes."""

    header: dict[str, Any]
    attrs: dict[str, Any] = field(default_factory=dict)

    def get_attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def __getitem__(self, key: str) -> Any:
        return self.header[key]


def route(table: int, dst_len: int, **attrs: Any) -> Message:
    header = {"family": socket.AF_INET, "dst_len": dst_len, "table": min(table, 252)}
    return Message(header, {"RTA_TABLE": table, **attrs})


def rule(table: int, src_len: int = 0, dst_len: int = 0, **attrs: Any) -> Message:
    header = {
        "family": socket.AF_INET,
        "src_len": src_len,
        "dst_len": dst_len,
        "table": min(table, 252),
    }
    return Message(header, {"FRA_TABLE": table, **attrs})


@dataclass
class Reader:
    routes: list[Message]
    rules: list[Message]

    def get_links(self) -> Iterable[Message]:
        header = {"index": 2, "flags": 1}
        return [Message(header, {"IFLA_IFNAME": "blue", "IFLA_MTU": 1500})]

    def get_addr(self) -> Iterable[Message]:
        return []

    def get_routes(self) -> Iterable[Message]:
        return self.routes

    def get_rules(self) -> Iterable[Message]:
        return self.rules


def test_routes_of_main_and_source_tables_are_read_others_ignored() -> None:
    reader = Reader(
        routes=[
            route(MAIN_TABLE, 0, RTA_GATEWAY="10.0.0.1", RTA_OIF=2),
            route(OWNED, 0, RTA_GATEWAY="10.0.0.254", RTA_OIF=2),
            route(OWNED, 24, RTA_DST="10.0.0.0", RTA_OIF=2, RTA_PREFSRC="10.0.0.2"),
            route(LOCAL_TABLE, 32, RTA_DST="10.0.0.2", RTA_OIF=2),
            route(100, 0, RTA_GATEWAY="10.0.0.9", RTA_OIF=2),
        ],
        rules=[],
    )
    state = read_state(reader)
    assert state.routes == (
        Route(4, "default", "10.0.0.1", "blue"),
        Route(4, "default", "10.0.0.254", "blue", table=OWNED),
        Route(4, "10.0.0.0/24", None, "blue", table=OWNED, source="10.0.0.2"),
    )
    assert state.default_routes(4) == [Route(4, "default", "10.0.0.1", "blue")]
    assert [r.dst for r in state.table_routes(OWNED)] == ["default", "10.0.0.0/24"]


def test_rules_to_source_tables_are_read_with_their_selectors() -> None:
    reader = Reader(
        routes=[],
        rules=[
            rule(LOCAL_TABLE, FRA_PRIORITY=None),
            rule(OWNED, src_len=24, FRA_SRC="10.0.0.0", FRA_PRIORITY=32000),
            rule(OWNED, dst_len=24, FRA_DST="10.0.0.0", FRA_PRIORITY=32000, FRA_IIFNAME="blue"),
            rule(MAIN_TABLE, FRA_PRIORITY=32766),
        ],
    )
    state = read_state(reader)
    assert state.rules == (
        Rule(4, 32000, OWNED, src="10.0.0.0/24"),
        Rule(4, 32000, OWNED, dst="10.0.0.0/24", iif="blue"),
    )
    assert state.rules_to(OWNED) == list(state.rules)
    assert state.to_dict()["rules"][0] == {
        "family": 4,
        "priority": 32000,
        "table": OWNED,
        "src": "10.0.0.0/24",
        "dst": None,
        "iif": None,
        "oif": None,
    }
    assert state.to_dict()["routes"] == []

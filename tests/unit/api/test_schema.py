"""The API schema: VDSM's verb list and parameter names, defaults, validation, load checks."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from virthost.api.schema import MISSING, Schema, Verb
from virthost.common import errors

REFERENCE = Path(__file__).resolve().parents[3].parent / "shared/reference/vdsm-contract.md"
VM_ID = "5e0c4b2a-8f1d-4c3e-9a7b-0d2f6e1c3b4a"
SD_ID = "9d1f2c3b-4a5e-4f60-8b7c-1a2b3c4d5e6f"


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema.default()


def verb(schema: Schema, method: str) -> Verb:
    return schema.get_verb(method)


def param_names(schema: Schema, method: str) -> list[str]:
    return [p.name for p in verb(schema, method).params]


# --- the verb list ---------------------------------------------------------------------------


def test_namespaces_and_verb_counts_match_vdsm(schema: Schema) -> None:
    counts = {ns: len(verbs) for ns, verbs in schema.namespaces.items()}
    assert counts == {
        "Host": 52,
        "VM": 60,
        "StorageDomain": 16,
        "StoragePool": 23,
        "Image": 11,
        "Volume": 13,
        "Task": 5,
        "SDM": 10,
        "Lease": 6,
    }
    assert sum(counts.values()) == 196


@pytest.mark.parametrize(
    ("method", "names"),
    [
        ("Host.getVMList", ["fullStatus", "vmList", "onlyUUID"]),
        ("Host.fenceNode", ["addr", "port", "agent", "username", "password", "action",
                            "secure", "options", "policy"]),
        ("Host.setLogLevel", ["level", "name"]),
        ("Host.getDeviceList", ["storageType", "guids", "checkStatus", "refresh"]),
        ("Host.ping2", []),
        ("VM.shutdown", ["vmID", "delay", "message", "reboot", "timeout", "force"]),
        ("VM.snapshot", ["vmID", "snapDrives", "snapMemory", "frozen", "jobUUID", "timeout",
                         "freeze_timeout"]),
        ("VM.migrationCreate", ["vmID", "params", "incomingLimit"]),
        ("StorageDomain.create", ["storagedomainID", "domainType", "typeArgs", "name",
                                  "domainClass", "version", "blockSize", "maxHosts"]),
        ("StoragePool.connect", ["storagepoolID", "hostID", "scsiKey", "masterSdUUID",
                                 "masterVersion", "domainDict"]),
        ("StoragePool.spmStart", ["storagepoolID", "prevID", "prevLver", "enableScsiFencing",
                                  "maxHostID", "domVersion"]),
        ("Image.prepare", ["storagepoolID", "storagedomainID", "imageID", "volumeID",
                           "allowIllegal"]),
        ("Volume.create", ["volumeID", "storagepoolID", "storagedomainID", "imageID", "size",
                           "volFormat", "preallocate", "diskType", "desc", "srcImgUUID",
                           "srcVolUUID", "initialSize", "addBitmaps", "legal", "sequence",
                           "bitmap"]),
        ("Task.getStatus", ["taskID"]),
        ("SDM.copy_data", ["job_id", "source", "destination", "copy_bitmaps"]),
        ("Lease.fence", ["lease", "metadata"]),
    ],
)  # fmt: skip
def test_param_names_match_vdsm(schema: Schema, method: str, names: list[str]) -> None:
    assert param_names(schema, method) == names


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared/reference not beside the project")
def test_every_verb_matches_the_reference_listing(schema: Schema) -> None:
    listed = {}
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        m = re.match(
            r"- (?:★ )?`(\w+)\.(\w+)`\(([^)]*)\) — .*?(\*\(deprecated\)\* )?\[since ([\d.]+)\]",
            line,
        )
        if m and m[1] in schema.namespaces:
            names = [a.strip() for a in m[3].split(",") if a.strip()]
            listed[f"{m[1]}.{m[2]}"] = (names, bool(m[4]), m[5])
    ours = {v.method: v for verbs in schema.namespaces.values() for v in verbs.values()}
    assert set(listed) == set(ours)
    for method, (names, deprecated, since) in listed.items():
        assert (param_names(schema, method), ours[method].deprecated, ours[method].since) == (
            names,
            deprecated,
            since,
        ), method


def test_only_memory_reading_verbs_are_fast(schema: Schema) -> None:
    fast = {v.method for verbs in schema.namespaces.values() for v in verbs.values() if v.fast}
    assert fast == {
        "Host.ping",
        "Host.ping2",
        "Host.echo",
        "Host.confirmConnectivity",
        "Host.getStats",
        "Host.getAllVmStats",
        "VM.getStats",
    }


def test_verb_records(schema: Schema) -> None:
    ping = verb(schema, "Host.ping")
    assert ping.deprecated and ping.method == "Host.ping" and ping.returns == "none"
    echo = verb(schema, "Host.echo")
    assert (echo.since, echo.returns, echo.deprecated) == ("4.4", "string", False)
    assert echo.params[0].required and echo.params[0].type == "string"
    assert verb(schema, "VM.getStats").returns == "[VmStats]"
    assert hash(verb(schema, "Host.getVMList"))  # records with list defaults stay hashable


def test_events(schema: Schema) -> None:
    assert [e.name for e in schema.events] == [
        "|virt|VM_status|<vmId>",
        "|virt|VM_migration_status|<vmId>",
        "|net|host_conn|no_id",
        "|jobs|status|<jobId>",
    ]
    assert all(e.doc and e.params_doc for e in schema.events)


def test_default_is_cached(schema: Schema) -> None:
    assert Schema.default() is schema


# --- lookup and defaults ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["Host.nope", "Nope.ping", "Host", "", "host.ping2"])
def test_unknown_method(schema: Schema, method: str) -> None:
    with pytest.raises(errors.MethodNotFound) as exc:
        schema.get_verb(method)
    assert exc.value.code == -32601
    assert method in str(exc.value)


@pytest.mark.parametrize(
    ("method", "given", "expected"),
    [
        ("Host.getVMList", {}, {"fullStatus": False, "vmList": [], "onlyUUID": False}),
        ("Host.setLogLevel", {"level": "DEBUG"}, {"level": "DEBUG", "name": ""}),
        ("VM.destroy", {"vmID": VM_ID}, {"vmID": VM_ID, "gracefulAttempts": 1}),
        (
            "VM.shutdown",
            {"vmID": VM_ID},
            {"vmID": VM_ID, "delay": None, "message": None, "reboot": False,
             "timeout": None, "force": False},
        ),
        ("Host.echo", {"message": "hi"}, {"message": "hi"}),
        ("Host.ping2", None, {}),
    ],
)  # fmt: skip
def test_defaults_are_filled(
    schema: Schema, method: str, given: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    assert schema.validate_params(verb(schema, method), given) == expected


def test_mutable_defaults_are_copies(schema: Schema) -> None:
    v = verb(schema, "Host.getVMList")
    first = schema.validate_params(v, {})
    first["vmList"].append(VM_ID)
    assert schema.validate_params(v, {})["vmList"] == []
    assert v.params[1].default == []


def test_positional_params_map_in_declaration_order(schema: Schema) -> None:
    v = verb(schema, "VM.shutdown")
    got = schema.validate_params(v, [VM_ID, "30", "bye", True])
    assert got == {"vmID": VM_ID, "delay": "30", "message": "bye", "reboot": True,
                   "timeout": None, "force": False}  # fmt: skip
    with pytest.raises(errors.InvalidParams) as exc:
        schema.validate_params(verb(schema, "Host.echo"), ["a", "b"])
    assert "at most 1" in str(exc.value)


# --- validation errors name the parameter ----------------------------------------------------


def invalid(schema: Schema, method: str, params: Any) -> errors.InvalidParams:
    with pytest.raises(errors.InvalidParams) as exc:
        schema.validate_params(verb(schema, method), params)
    assert exc.value.code == -32602
    return exc.value


@pytest.mark.parametrize(
    ("method", "params", "where", "words"),
    [
        ("Host.echo", {}, "message", "required"),
        ("Host.echo", {"message": 5}, "message", "expected string"),
        ("Host.echo", {"message": None}, "message", "null"),
        ("Host.echo", {"message": "x", "extra": 1}, "extra", "unknown"),
        ("Host.setLogLevel", {"level": "LOUD"}, "level", "not one of"),
        ("Host.getVMList", {"fullStatus": "yes"}, "fullStatus", "expected boolean"),
        ("Host.getVMList", {"vmList": [VM_ID, "nope"]}, "vmList[1]", "not a UUID"),
        ("Host.getVMList", {"vmList": VM_ID}, "vmList", "list of UUID"),
        ("VM.getStats", {"vmID": "5e0c4b2a"}, "vmID", "not a UUID"),
        ("VM.destroy", {"vmID": VM_ID, "gracefulAttempts": True}, "gracefulAttempts", "boolean"),
        ("VM.destroy", {"vmID": VM_ID, "gracefulAttempts": -1}, "gracefulAttempts", "UIntOrS"),
        ("VM.destroy", {"vmID": VM_ID, "gracefulAttempts": "two"}, "gracefulAttempts", "string"),
        ("VM.start_backup", {"vmID": VM_ID, "config": {"backup_id": VM_ID}},
         "config.disks", "missing"),
        ("VM.start_backup",
         {"vmID": VM_ID, "config": {"backup_id": VM_ID, "disks": [{"sd_id": "x"}]}},
         "config.disks[0].sd_id", "not a UUID"),
        ("VM.create", {"vmID": VM_ID, "vmParams": "<domain/>"}, "vmParams", "an object"),
        ("StoragePool.connect",
         {"storagepoolID": SD_ID, "hostID": 1, "scsiKey": "k", "masterSdUUID": SD_ID,
          "masterVersion": 1, "domainDict": {"bad-key": "active"}},
         "domainDict['bad-key']", "not a UUID"),
        ("StorageDomain.create",
         {"storagedomainID": SD_ID, "domainType": "TAPE", "typeArgs": "", "name": "n",
          "domainClass": 1}, "domainType", "not one of"),
        ("Host.ping2", "oops", "params", "object or array"),
    ],
)  # fmt: skip
def test_invalid_params_are_named(
    schema: Schema, method: str, params: Any, where: str, words: str
) -> None:
    err = invalid(schema, method, params)
    assert err.param == where
    assert words in str(err)


def test_vdsm_client_leniency(schema: Schema) -> None:
    destroy = verb(schema, "VM.destroy")
    for attempts in (3, "3", " 3 "):
        schema.validate_params(destroy, {"vmID": VM_ID, "gracefulAttempts": attempts})
    spm = verb(schema, "StoragePool.spmStart")
    got = schema.validate_params(
        spm, {"storagepoolID": SD_ID, "prevID": -1, "prevLver": "-1", "enableScsiFencing": "false"}
    )
    assert got["maxHostID"] == 250 and got["domVersion"] is None
    # records accept keys they do not declare, and null for optional properties
    backup = {"backup_id": VM_ID, "disks": [], "from_checkpoint_id": None, "future": 1}
    schema.validate_params(verb(schema, "VM.start_backup"), {"vmID": VM_ID, "config": backup})
    # null is fine where the default is null
    schema.validate_params(verb(schema, "VM.shutdown"), {"vmID": VM_ID, "delay": None})


def test_check_type_primitives(schema: Schema) -> None:
    schema.check_type("float", 3, "x")
    schema.check_type("float", 2.5, "x")
    schema.check_type("any", None, "x")
    schema.check_type("[[int]]", [[1], []], "x")
    for expr, value in [("float", True), ("int", 1.0), ("uint", -1), ("object", []),
                        ("[int]", [1, "2"]), ("string", None)]:  # fmt: skip
        with pytest.raises(errors.InvalidParams) as exc:
            schema.check_type(expr, value, "where")
        assert exc.value.param.startswith("where")


def test_every_template_validates(schema: Schema) -> None:
    for verbs in schema.namespaces.values():
        for v in verbs.values():
            template = schema.template(v)
            assert list(template) == [p.name for p in v.params]
            schema.validate_params(v, template)


def test_template_shows_records(schema: Schema) -> None:
    template = schema.template(verb(schema, "Lease.create"))
    assert template == {
        "lease": {
            "sd_id": "00000000-0000-0000-0000-000000000000",
            "lease_id": "00000000-0000-0000-0000-000000000000",
        },
        "metadata": None,
    }
    assert schema.template(verb(schema, "Host.getVMList"))["fullStatus"] is False


# --- the schema file is checked when loaded --------------------------------------------------

GOOD = """
types:
  UUID: {kind: string, format: uuid, doc: An id.}
verbs:
  Host.ping2: {doc: Ping., since: "4.2"}
  VM.destroy:
    doc: Stop it.
    since: "3.1"
    params:
      - {name: vmID, type: UUID, doc: The VM.}
      - {name: gracefulAttempts, type: uint, default: 1, doc: Tries.}
events:
  - {name: "|x|y|z", doc: Something., params: "{}"}
"""


def load_text(tmp_path: Path, text: str) -> Schema:
    path = tmp_path / "api.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return Schema.load(path)


def test_load_minimal_file(tmp_path: Path) -> None:
    s = load_text(tmp_path, GOOD)
    assert list(s.namespaces) == ["Host", "VM"]
    assert s.get_verb("VM.destroy").params[1].default == 1
    assert s.get_verb("VM.destroy").params[0].default is MISSING


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("type: UUID, doc: The VM.", "type: UUDI, doc: The VM.", "unknown type 'UUDI'"),
        ("default: 1, doc: Tries.", "default: -1, doc: Tries.", "does not fit uint"),
        ("default: 1, doc: Tries.", "default: 1, dcc: Tries.", "unknown key(s) dcc"),
        ('since: "3.1"', "since: 3.1", "quoted version"),
        ("doc: Stop it.", "doc: ''", "doc must be"),
        ("kind: string, format: uuid", "kind: enum, values: [on, off]", "strings or integers"),
        ("kind: string, format: uuid", "kind: text", "kind must be"),
        ("format: uuid", "pattern: '[0-9]+'", "needs an example"),
        ("Host.ping2:", "ping2:", "Namespace.verb"),
        ("type: uint, default", "type: '[uint', default", "malformed"),
    ],
)
def test_load_rejects_mistakes(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in GOOD
    with pytest.raises(ValueError) as exc:
        load_text(tmp_path, GOOD.replace(old, new, 1))
    assert message in str(exc.value)
    assert "api.yml" in str(exc.value)


def test_load_rejects_union_cycles(tmp_path: Path) -> None:
    text = GOOD.replace(
        "types:\n", "types:\n  A: {kind: union, of: [B, int], doc: a.}\n"
        "  B: {kind: union, of: [A, int], doc: b.}\n"
    )  # fmt: skip
    with pytest.raises(ValueError, match="refers to itself"):
        load_text(tmp_path, text)

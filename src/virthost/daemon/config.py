"""The daemon's configuration: typed sections, each option documented with its default.

The file is TOML (``/etc/virthost/virthostd.toml`` on a real host). Every option has a default
here, so an empty file is a valid configuration; unknown sections or options and values of the
wrong type are refused at start-up with a clear message rather than ignored, because a typo in a
configuration file that silently does nothing is worse than a daemon that does not start.

``virthostd --print-default-config`` renders this module as a commented TOML file, so the
documentation of each option lives in exactly one place.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from virthost.common.errors import InvalidConfiguration


def option(default: Any, doc: str) -> Any:
    """A config field with its documentation; lists get a fresh copy per instance."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass
class DaemonSection:
    """Process-wide settings of virthostd."""

    user: str = option(
        "virthost",
        "Unprivileged user the daemon switches to when started as root "
        '(groups kvm and libvirt). "" keeps the starting user.',
    )
    state_dir: str = option("/var/lib/virthost", "Host-local state (host id, saved configs).")
    run_dir: str = option("/run/virthost", "Runtime files (sockets, pid files).")
    log_file: str = option("", 'Log file; "" logs to standard error.')
    log_level: str = option("INFO", "Initial level of the root logger (DEBUG, INFO, WARNING...).")
    health_interval: float = option(
        300.0, "Seconds between health lines (RSS, threads, CPU, connections) in the log."
    )
    shutdown_timeout: float = option(
        10.0, "Seconds a graceful stop waits for running API calls before exiting."
    )


@dataclass
class RpcSection:
    """The API endpoint: JSON-RPC over STOMP (and over HTTP POST) on one port."""

    address: str = option("::", 'Listen address; "::" is dual stack, "0.0.0.0" IPv4 only.')
    port: int = option(54321, "Listen port (VDSM's management port).")
    tls: bool = option(
        True, "Require mutual TLS. false serves plain TCP: for development only, never on a host."
    )
    handshake_timeout: float = option(10.0, "Seconds a client has to finish the TLS handshake.")
    http_enable: bool = option(True, "Also answer JSON-RPC over HTTP POST and GET /metrics.")
    max_frame_size: int = option(
        16 * 1024 * 1024, "Largest STOMP frame or HTTP body accepted, in bytes."
    )
    max_write_buffer: int = option(
        64 * 1024 * 1024,
        "Bytes queued for a client that does not read before its connection is closed.",
    )
    worker_threads: int = option(8, "Threads running API calls.")
    tasks_per_worker: int = option(10, "Queued calls per worker before calls are refused (1100).")
    worker_timeout: float = option(
        60.0, "Seconds after which a call still running is logged and its worker replaced."
    )
    max_workers: int = option(32, "Bound on worker threads, including replaced stuck ones.")
    request_queues: list[str] = option(
        ["jms.topic.vdsm_requests", "jms.topic.vdsm_irs_requests"],
        "STOMP destinations that carry JSON-RPC requests.",
    )
    event_queue: str = option("jms.queue.events", "STOMP destination of event notifications.")
    slow_call_threshold: float = option(1.0, "Calls slower than this many seconds are logged.")


@dataclass
class PkiSection:
    """Certificates for mutual TLS."""

    ca_file: str = option(
        "/etc/pki/virthost/certs/cacert.pem", "CA that signs the certificates of clients."
    )
    cert_file: str = option("/etc/pki/virthost/certs/hostcert.pem", "This host's certificate.")
    key_file: str = option("/etc/pki/virthost/keys/hostkey.pem", "This host's private key.")


@dataclass
class SupervisorSection:
    """The privileged helper (virthost-supervisor, running as root)."""

    socket: str = option("/run/virthost/supervisor.sock", "Unix socket of the supervisor.")
    timeout: float = option(30.0, "Seconds a privileged operation may take.")
    allowed_users: list[str] = option(
        ["virthost"], "Users (besides root) whose processes may call the supervisor."
    )


@dataclass
class LibvirtSection:
    """The hypervisor connection."""

    uri: str = option("qemu:///system", "libvirt connection URI.")
    timeout: float = option(
        30.0,
        "Seconds a libvirt call (or a host inventory such as Host.getCapabilities) may take "
        "before the caller gets an error; the stuck worker is replaced.",
    )


@dataclass
class VirtSection:
    """Virtual machines."""

    domain_type: str = option(
        "auto",
        'How guests run: "kvm", "qemu" (TCG emulation: an engine\'s kvm domain is run as qemu), '
        'or "auto" (kvm when /dev/kvm is usable by the daemon, else qemu).',
    )
    tcg_cache_mib: int = option(16, "TCG translation cache per guest under qemu, in MiB.")
    max_parallel_creations: int = option(4, "VMs started in parallel; more wait their turn.")
    guest_wait_timeout: float = option(
        60.0, "Seconds a booting VM stays Powering up without a guest agent before it is Up."
    )
    user_shutdown_timeout: float = option(
        30.0, "Seconds each graceful shutdown method (agent, then ACPI) gets by default."
    )
    destroy_timeout: float = option(60.0, "Seconds VM.destroy may take.")
    vm_sample_interval: float = option(15.0, "Seconds between bulk VM statistics samples.")
    qga_polling_period: float = option(5.0, "Seconds between guest agent polls of a VM.")
    qga_command_timeout: float = option(5.0, "Seconds one guest agent poll may take.")
    hooks_dir: str = option(
        "/usr/libexec/virthost/hooks", "Directory of hook points (before_vm_start/...)."
    )
    hook_timeout: float = option(30.0, "Seconds one hook script may run.")


@dataclass
class StorageSection:
    """Storage domains and their connections."""

    repository: str = option(
        "/rhev/data-center",
        "Root of the image repository; storage connections are mounted under <repository>/mnt.",
    )
    mount_timeout: float = option(120.0, "Seconds a mount or unmount may take.")
    nfs_mount_options: str = option("soft,nosharecache", "Options added to every NFS mount.")
    domain_check_interval: float = option(
        10.0, "Seconds between the health checks (metadata reads) of each monitored domain."
    )
    sanlock_io_timeout: int = option(
        10,
        "sanlock I/O timeout in seconds for this host's lockspaces; joining one takes about "
        "2x this, a lost host is declared dead after about 8x.",
    )
    task_workers: int = option(10, "Threads running storage tasks (VDSM's thread_pool_size).")
    max_tasks: int = option(500, "Storage tasks that may exist at once (queued or kept).")
    resource_timeout: float = option(
        120.0, "Seconds a storage operation waits for a locked domain or image."
    )
    spm_watchdog_interval: float = option(
        20.0, "Seconds between checks that this host still holds the SPM lease it believes in."
    )
    job_workers: int = option(10, "Threads running host jobs (SDM.copy_data and the like).")
    job_autodelete_delay: float = option(
        3600.0, "Seconds a finished host job stays visible in Host.getJobs."
    )


@dataclass
class SamplingSection:
    """Periodic sampling."""

    host_stats_interval: float = option(15.0, "Seconds between host statistics samples.")
    periodic_workers: int = option(4, "Threads running periodic operations.")
    periodic_tasks_per_worker: int = option(100, "Queued periodic runs per worker.")
    periodic_max_workers: int = option(30, "Bound on periodic threads incl. replaced stuck ones.")


@dataclass
class Config:
    daemon: DaemonSection = field(default_factory=DaemonSection)
    rpc: RpcSection = field(default_factory=RpcSection)
    pki: PkiSection = field(default_factory=PkiSection)
    supervisor: SupervisorSection = field(default_factory=SupervisorSection)
    libvirt: LibvirtSection = field(default_factory=LibvirtSection)
    virt: VirtSection = field(default_factory=VirtSection)
    storage: StorageSection = field(default_factory=StorageSection)
    sampling: SamplingSection = field(default_factory=SamplingSection)


_SCALARS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list[str]": (list,),
}


def _check_value(section: str, name: str, type_name: str, value: Any) -> Any:
    accepted = _SCALARS[type_name]
    wrong_bool = isinstance(value, bool) and bool not in accepted
    if not isinstance(value, accepted) or wrong_bool:
        raise InvalidConfiguration(f"[{section}] {name}: expected {type_name}, got {value!r}")
    checked: Any = value
    if type_name == "list[str]" and not all(isinstance(item, str) for item in checked):
        raise InvalidConfiguration(f"[{section}] {name}: expected a list of strings")
    if type_name == "float":
        return float(checked)
    return checked


def from_mapping(data: dict[str, Any]) -> Config:
    """Build a Config from parsed TOML, refusing unknown keys and wrong types."""
    config = Config()
    sections = {f.name: f for f in dataclasses.fields(config)}
    for section_name, values in data.items():
        if section_name not in sections:
            raise InvalidConfiguration(f"unknown section [{section_name}]")
        if not isinstance(values, dict):
            raise InvalidConfiguration(f"[{section_name}] must be a table")
        section = getattr(config, section_name)
        fields = {f.name: f for f in dataclasses.fields(section)}
        for name, value in values.items():
            if name not in fields:
                raise InvalidConfiguration(f"[{section_name}] unknown option {name!r}")
            type_name = str(fields[name].type)
            setattr(section, name, _check_value(section_name, name, type_name, value))
    return config


def load(path: Path | None) -> Config:
    """Read the TOML file at ``path`` (None: all defaults)."""
    if path is None:
        return Config()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise InvalidConfiguration(f"cannot read {path}: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise InvalidConfiguration(f"{path}: {e}") from e
    return from_mapping(data)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def render_default() -> str:
    """The default configuration as a commented TOML document."""
    config = Config()
    lines = [
        "# virthostd configuration. Every option is shown with its default value.",
        "# Uncomment and change what you need; unknown options are refused at start-up.",
    ]
    for section_field in dataclasses.fields(config):
        section = getattr(config, section_field.name)
        doc = (type(section).__doc__ or "").strip()
        lines += ["", f"# {doc}", f"[{section_field.name}]"]
        for f in dataclasses.fields(section):
            lines.append(f"# {f.metadata['doc']}")
            lines.append(f"#{f.name} = {toml_value(getattr(section, f.name))}")
    return "\n".join(lines) + "\n"

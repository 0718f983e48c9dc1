"""The daemon's object graph: what is built, in which order it starts and stops.

Nothing here does work of its own; it wires the infrastructure (scheduler, executors,
supervisor proxy, libvirt connection, events bus) to the services and the API, so that each
of those receives what it needs as arguments and can be tested on its own.
"""

from __future__ import annotations

import gc
import logging
import ssl
import threading
from pathlib import Path

from virthost.api.dispatch import Bridge
from virthost.api.host import HostApi
from virthost.api.schema import Schema
from virthost.api.vm import VmApi
from virthost.common.commands import CommandRunner
from virthost.common.executor import Executor
from virthost.common.periodic import PeriodicOperation
from virthost.common.resources import ResourceManager
from virthost.common.scheduler import Scheduler
from virthost.daemon import hostid
from virthost.daemon.config import Config
from virthost.daemon.health import HealthMonitor
from virthost.daemon.storage_graph import StorageGraph
from virthost.hooks import HookRunner
from virthost.host.service import HostService
from virthost.host.stats import VmSummary
from virthost.network.host import SupervisedNetwork
from virthost.network.linkevents import LinkEvents
from virthost.network.persistence import NetConfigStore
from virthost.network.service import NetworkService
from virthost.rpc.events import EventBus
from virthost.rpc.jsonrpc import JsonRpcServer
from virthost.rpc.server import RpcServer
from virthost.supervisor.client import SupervisorProxy
from virthost.virt import eventloop
from virthost.virt.connection import LibvirtConnection
from virthost.virt.guestagent import GuestAgentPoller
from virthost.virt.livemerge import registry_runner
from virthost.virt.recovery import recover_with_retries
from virthost.virt.service import VirtService, VirtSettings, resolve_domain_type
from virthost.virt.storagedrives import StorageDrives

log = logging.getLogger("virthost.daemon")


class Daemon:
    def __init__(self, config: Config, ssl_context: ssl.SSLContext | None) -> None:
        self.config = config
        rpc = config.rpc
        sampling = config.sampling
        self.scheduler = Scheduler("scheduler")
        self.rpc_executor = Executor(
            "jsonrpc",
            workers=rpc.worker_threads,
            max_tasks=rpc.worker_threads * rpc.tasks_per_worker,
            scheduler=self.scheduler,
            max_workers=rpc.max_workers,
        )
        self.periodic_executor = Executor(
            "periodic",
            workers=sampling.periodic_workers,
            max_tasks=sampling.periodic_workers * sampling.periodic_tasks_per_worker,
            scheduler=self.scheduler,
            max_workers=sampling.periodic_max_workers,
        )
        # Calls that may hang (libvirt, later guest agents): callers wait time-boxed.
        self.blocking_executor = Executor(
            "blocking", workers=4, max_tasks=200, scheduler=self.scheduler, max_workers=32
        )
        self.runner = CommandRunner()
        self.resources = ResourceManager()
        self.events = EventBus()
        self.supervisor = SupervisorProxy(config.supervisor.socket, config.supervisor.timeout)
        self.libvirt = LibvirtConnection(
            config.libvirt.uri, self.blocking_executor, config.libvirt.timeout
        )
        self.host_id = hostid.load_or_create(Path(config.daemon.state_dir), self._firmware_uuid)
        virt = config.virt
        self.creation_executor = Executor(
            "vmcreate",
            workers=virt.max_parallel_creations,
            max_tasks=1000,
            scheduler=self.scheduler,
            max_workers=virt.max_parallel_creations * 2,
        )
        self.hooks = HookRunner(Path(virt.hooks_dir), self.runner, virt.hook_timeout)
        self.storage = StorageGraph(
            config,
            self.scheduler,
            self.periodic_executor,
            self.events,
            self.runner,
            self.resources,
            self.supervisor,
        )
        self.virt = VirtService(
            self.libvirt,
            self.events,
            self.scheduler,
            self.creation_executor,
            self.blocking_executor,
            VirtSettings(
                domain_type=resolve_domain_type(virt.domain_type),
                tcg_cache_mib=virt.tcg_cache_mib,
                guest_wait_timeout=virt.guest_wait_timeout,
                user_shutdown_timeout=virt.user_shutdown_timeout,
                destroy_timeout=virt.destroy_timeout,
            ),
            self.hooks,
            drives=StorageDrives(
                self.storage.images, self.storage.pools, config.storage.repository
            ),
            run_job=registry_runner(self.storage.jobs),
        )
        self.guest_agent = GuestAgentPoller(
            self.libvirt, self.virt.vms, self.periodic_executor, virt.qga_command_timeout
        )
        self.host = HostService(
            host_id=self.host_id,
            libvirt=self.libvirt,
            runner=self.runner,
            supervisor=self.supervisor,
            blocking=self.blocking_executor,
            timeout=config.libvirt.timeout,
            vm_summary=self._vm_summary,
            storage_domains=lambda: self.storage.monitor.report(),
        )
        self.link_events = LinkEvents(self.events.publish)
        supervised = SupervisedNetwork(self.supervisor)
        self.network = NetworkService(
            NetConfigStore(Path(config.daemon.state_dir)),
            supervised.apply,
            supervised.host_nics,
            lambda: self.host.last_connectivity_confirmation,
            hooks=self.hooks,
        )
        self.bridge = Bridge(
            Schema.default(),
            {
                "Host": HostApi(
                    self.host,
                    self.virt,
                    self.storage.monitor,
                    self.storage.host_storage(),
                    self.network,
                ),
                "VM": VmApi(self.virt),
                **self.storage.namespaces(),
            },
        )
        self.jsonrpc = JsonRpcServer(
            self.bridge,
            self.rpc_executor,
            worker_timeout=rpc.worker_timeout,
            slow_call_threshold=rpc.slow_call_threshold,
        )
        self.server = RpcServer(
            self.jsonrpc,
            address=rpc.address,
            port=rpc.port,
            ssl_context=ssl_context,
            handshake_timeout=rpc.handshake_timeout,
            request_queues=tuple(rpc.request_queues),
            event_queue=rpc.event_queue,
            max_frame_size=rpc.max_frame_size,
            max_write_buffer=rpc.max_write_buffer,
            http_enable=rpc.http_enable,
            metrics=self._metrics,
        )
        self.events.add_listener(self.server.publish_event)
        self.health = HealthMonitor(self._health_figures)
        self._periodic = [
            PeriodicOperation(
                "host-stats",
                self.host.sample_stats,
                sampling.host_stats_interval,
                self.scheduler,
                self.periodic_executor,
                exclusive=True,
            ),
            PeriodicOperation(
                "vm-stats",
                self.virt.sampler.sample,
                virt.vm_sample_interval,
                self.scheduler,
                self.periodic_executor,
                exclusive=True,
            ),
            PeriodicOperation(
                "guest-agent",
                self.guest_agent.poll_all,
                virt.qga_polling_period,
                self.scheduler,
                self.periodic_executor,
                exclusive=True,
            ),
            PeriodicOperation(
                "libvirt-connection",
                self._keep_libvirt_connected,
                5.0,
                self.scheduler,
                self.periodic_executor,
                exclusive=True,
                first_delay=5.0,
            ),
            PeriodicOperation(
                "health",
                self.health.check,
                config.daemon.health_interval,
                self.scheduler,
                self.periodic_executor,
                exclusive=True,
                first_delay=config.daemon.health_interval,
            ),
        ]

    def _firmware_uuid(self) -> str | None:
        info = self.supervisor.call("hardware_info", timeout=10.0)
        value = info.get("systemUUID") if isinstance(info, dict) else None
        return str(value) if value else None

    def _metrics(self) -> dict[str, float]:
        return {
            "virthost_rpc_workers": self.rpc_executor.worker_count,
            "virthost_rpc_queue": self.rpc_executor.queue_size,
            "virthost_rpc_workers_discarded_total": self.rpc_executor.discarded_count,
            "virthost_periodic_queue": self.periodic_executor.queue_size,
            "virthost_ready": 1.0 if self.bridge.ready else 0.0,
        }

    def _health_figures(self) -> dict[str, float]:
        return {
            "connections": float(len(self.server.connections)),
            "rpc_queue": float(self.rpc_executor.queue_size),
            "calls": float(self.jsonrpc.calls_served),
        }

    def _executors(self) -> tuple[Executor, ...]:
        return (
            self.rpc_executor,
            self.periodic_executor,
            self.blocking_executor,
            self.creation_executor,
        )

    def _keep_libvirt_connected(self) -> None:
        """Reopen the connection after libvirtd restarted, so events flow again."""
        self.libvirt.ensure_connected()

    def _vm_summary(self) -> VmSummary:
        count, active = self.virt.counts()
        return VmSummary(count=count, active=active)

    def start(self) -> None:
        self.hooks.run_plain("before_virthost_start")
        eventloop.start()  # before the first libvirt connection is opened
        self.scheduler.start()
        for executor in self._executors():
            executor.start()
        self.host.sample_stats()
        self.storage.start()
        self.link_events.start()
        self.server.start()  # answers 99 until the VMs are recovered
        self._recovery = threading.Thread(target=self._recover, name="recovery", daemon=True)
        self._recovery.start()

    def _recover(self) -> None:
        try:
            self.network.restore_at_start()
        except Exception:
            log.exception("Cannot restore the safe network configuration")
        recovered = recover_with_retries(self.virt, self.libvirt)
        for op in self._periodic:
            op.start()
        # What start-up built lives as long as the daemon: keep the collector off it.
        gc.freeze()
        self.bridge.set_ready()
        log.info(
            "ready: %d VMs recovered, %d verbs implemented",
            recovered,
            len(self.bridge.implemented()),
        )

    def stop(self) -> None:
        log.info("stopping")
        self.bridge.set_ready(False)
        self.server.stop()
        for op in self._periodic:
            op.stop()
        for executor in self._executors():
            executor.stop(wait=False)
        self.scheduler.stop()
        self.libvirt.close()
        self.link_events.stop()
        self.storage.stop()
        self.supervisor.close()
        self.hooks.run_plain("after_virthost_stop")
        log.info("stopped")

"""virthost: a host virtualization agent speaking VDSM's JSON-RPC/STOMP API."""

__version__ = "0.1.0"

"""Host networks as the engine configures them with Host.setupNetworks.

The desired state (:mod:`.model`) is what the engine asks for in canonical form; requests are
parsed and canonicalized in :mod:`.canonical`, combined with the running configuration by
:func:`.model.merge`, and checked against the host in :mod:`.validation` before anything changes.
Errors carry VDSM's network codes (:mod:`.errors`).
"""

from virthost.network.canonical import bond_to_wire, network_to_wire, normalize_bond_options
from virthost.network.errors import (
    BadAddress,
    BadBonding,
    BadBridge,
    BadNetworkParameters,
    BadNic,
    BadVlan,
    BondInUse,
    InterfaceUpFailed,
    LostConnection,
    NetworkError,
    NicInUse,
    OvsConnectionError,
)
from virthost.network.model import (
    DEFAULT_MTU,
    BondAttrs,
    NetConfig,
    NetworkAttrs,
    SetupOptions,
    SetupRequest,
    merge,
    request_between,
    vlan_device_name,
)
from virthost.network.validation import (
    HostNics,
    kernel_supports_bonding,
    kernel_supports_vlan,
    nic_mtus,
    validate,
)

__all__ = [
    "DEFAULT_MTU",
    "BadAddress",
    "BadBonding",
    "BadBridge",
    "BadNetworkParameters",
    "BadNic",
    "BadVlan",
    "BondAttrs",
    "BondInUse",
    "HostNics",
    "InterfaceUpFailed",
    "LostConnection",
    "NetConfig",
    "NetworkAttrs",
    "NetworkError",
    "NicInUse",
    "OvsConnectionError",
    "SetupOptions",
    "SetupRequest",
    "bond_to_wire",
    "kernel_supports_bonding",
    "kernel_supports_vlan",
    "merge",
    "network_to_wire",
    "nic_mtus",
    "normalize_bond_options",
    "request_between",
    "validate",
    "vlan_device_name",
]

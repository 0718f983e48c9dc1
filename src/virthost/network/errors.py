"""VDSM's network error codes (21-32, and 10 for a failed connectivity check).

::

    VirtHostError
     +-- NetworkError                  base of this module (never raised itself)
          +-- LostConnection        10  no client confirmed connectivity in time: rolled back
          +-- BadNetworkParameters  21  malformed or contradictory attributes or options
          +-- BadAddress            22  an IP address, netmask, prefix or gateway is wrong
          +-- BadNic                23  a nic does not exist or its name is not a device name
          +-- NicInUse              24  a nic is already taken (another network, a bond)
          +-- BadBonding            25  a bond's slaves, options or name are wrong
          +-- BadVlan               26  VLAN id out of range, no 802.1q in the kernel...
          +-- BadBridge             27  bad network (bridge) name, removing a missing network
          +-- InterfaceUpFailed     29  a device could not be brought up
          +-- BondInUse             31  removing a bond a network still uses
          +-- OvsConnectionError    32  Open vSwitch unreachable (we only offer legacy bridges)

Every error names what it is about in its detail text (``network 'blue': ...``) and in its
``context`` (``network=``, ``nic=``, ``bond=`` keys), so the engine's user sees which entry of
the request was refused.
"""

from __future__ import annotations

from virthost.common.errors import VirtHostError


class NetworkError(VirtHostError):
    """Base of the network configuration errors."""


class LostConnection(NetworkError):
    code = 10
    message = "Connectivity check failed"


class BadNetworkParameters(NetworkError):
    code = 21
    message = "Bad network parameters"


class BadAddress(NetworkError):
    code = 22
    message = "Bad address"


class BadNic(NetworkError):
    code = 23
    message = "Bad nic"


class NicInUse(NetworkError):
    code = 24
    message = "Nic already in use"


class BadBonding(NetworkError):
    code = 25
    message = "Bad bonding"


class BadVlan(NetworkError):
    code = 26
    message = "Bad vlan"


class BadBridge(NetworkError):
    code = 27
    message = "Bad bridge"


class InterfaceUpFailed(NetworkError):
    code = 29
    message = "Failed to bring interface up"


class BondInUse(NetworkError):
    code = 31
    message = "Bond in use"


class OvsConnectionError(NetworkError):
    code = 32
    message = "Open vSwitch connection failed"

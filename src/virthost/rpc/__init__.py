"""virthost.rpc."""

"""virthost.rpc.stomp."""

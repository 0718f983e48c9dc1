"""virthost.host."""

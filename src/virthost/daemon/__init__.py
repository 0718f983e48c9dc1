"""virthost.daemon."""

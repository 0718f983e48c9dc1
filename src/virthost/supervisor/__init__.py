"""virthost.supervisor."""

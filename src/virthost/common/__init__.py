"""virthost.common."""

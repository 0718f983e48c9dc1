"""virthost.api."""

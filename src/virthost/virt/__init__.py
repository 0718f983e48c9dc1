"""virthost.virt."""

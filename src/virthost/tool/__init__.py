"""``virthost-tool``: administrative commands run by root on the host, without the daemon."""

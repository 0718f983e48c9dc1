"""Renders docs/configuration.md from the configuration's own documentation.

venv/bin/python -m virthost.daemon.configdoc > docs/configuration.md
venv/bin/python -m virthost.daemon.configdoc --check docs/configuration.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from virthost.daemon.config import render_default

INTRO = """\
# Configuration

virthostd and virthost-supervisor read one TOML file, given with `--config FILE`
(`/etc/virthost/virthostd.toml` on a host installed with `make install`). Every option has a
default, so an empty file is valid. Unknown sections, unknown options and values of the wrong
type stop the daemon at start-up with a message naming the option: a typo must not be
silently ignored.

`virthostd --print-default-config` prints the file below: every option, documented, with its
default value.

Things worth knowing:

- `[rpc] tls = false` serves the API over plain TCP. It exists for development only; a host
  managed by an engine always uses mutual TLS.
- `[daemon] user` is the user the daemon switches to after start-up when started as root. It
  must be in the `kvm` and `libvirt` groups (`make install` and `make run` create it so).
- `[supervisor] allowed_users` lists who (besides root) may call the privileged helper; the
  socket is also owned by the group of the first of them, mode 0660.
- `Host.setLogLevel` changes a logger's level at run time (not persisted); `[daemon] log_level`
  is the level at start-up.

## The default configuration

"""


def render_markdown() -> str:
    return INTRO + "```toml\n" + render_default() + "```\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "--check":
        if Path(args[1]).read_text() != render_markdown():
            print(f"{args[1]} is stale: run 'make docs'", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(render_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

# virthost: the two commands are `make run` and `make test` (see README.md).
VENV   := venv
PY     := $(VENV)/bin/python
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
UNITDIR ?= /etc/systemd/system

.PHONY: all deps libvirt run test unit lint typecheck docs docs-check bench install clean

all: test

deps:
	bash scripts/install-deps.sh

libvirt: deps
	bash scripts/start-libvirt.sh

## Install what is needed and run the daemon (with its supervisor) in the foreground.
run: libvirt
	bash scripts/run-dev.sh

## Install what is needed and run the whole test suite, type checks and lint.
test: libvirt
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(PY) -m virthost.api.docgen --check docs/api.md
	$(PY) -m virthost.daemon.configdoc --check docs/configuration.md
	$(PY) -m pytest -q -p no:cacheprovider tests

unit: deps
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

lint: deps
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: deps
	$(VENV)/bin/mypy

docs: deps
	$(PY) -m virthost.api.docgen > docs/api.md
	$(PY) -m virthost.daemon.configdoc > docs/configuration.md

bench: libvirt
	$(PY) bench/rpc.py
	$(PY) bench/vm.py
	$(PY) bench/storage.py
	$(PY) bench/network.py

## For real hosts: the package, the systemd units and the default configuration.
install: deps
	install -d $(DESTDIR)$(SYSCONFDIR)/virthost $(DESTDIR)$(UNITDIR)
	[ -e $(DESTDIR)$(SYSCONFDIR)/virthost/virthostd.toml ] || \
		$(PY) -m virthost.daemon.main --print-default-config > $(DESTDIR)$(SYSCONFDIR)/virthost/virthostd.toml
	install -m 0644 data/systemd/virthostd.service data/systemd/virthost-supervisor.service $(DESTDIR)$(UNITDIR)/
	install -d $(DESTDIR)$(PREFIX)/lib/virthost
	/usr/bin/python3 -m venv --system-site-packages $(DESTDIR)$(PREFIX)/lib/virthost/venv
	$(DESTDIR)$(PREFIX)/lib/virthost/venv/bin/pip install -q .
	install -d $(DESTDIR)$(PREFIX)/bin
	for t in virthostd virthost-supervisor virthost-client virthost-pki; do \
		ln -sf $(PREFIX)/lib/virthost/venv/bin/$$t $(DESTDIR)$(PREFIX)/bin/$$t; done

clean:
	rm -rf var build src/*.egg-info .mypy_cache .ruff_cache

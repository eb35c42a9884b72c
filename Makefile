# freezer-ui developer entry points.  `make demo` and `make test` are the README's two commands.
# Both are self-contained on a fresh Debian 12 machine: they install what they need (apt + pip).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml setup.py | sha1sum | cut -c1-12)

.PHONY: demo test lint unit browser screenshots bench venv swift-venv system-deps clean

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(PIP) install -q -e '.[test,demo]' 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) -c 'import horizon, keystone, freezer_ui, selenium, pytest_django'
	touch $@

venv: $(STAMP)

# The real OpenStack Swift the swift storage tests run against (tests/storage/swiftaio.py), in its
# own venv: Swift pins eventlet and friends that must not leak into the project's venv.
SWIFT_VENV  := .venv-swift
SWIFT_STAMP := $(SWIFT_VENV)/.installed-swift-2.38.3-ksm-13.0.1
$(SWIFT_STAMP):
	$(PYTHON) -m venv $(SWIFT_VENV)
	$(SWIFT_VENV)/bin/pip install -q swift==2.38.3 keystonemiddleware==13.0.1 2>&1 | grep -v '^WARNING: Location' || true
	$(SWIFT_VENV)/bin/python -c 'import swift.proxy.server, keystonemiddleware.auth_token'
	touch $@

swift-venv: $(SWIFT_STAMP)

# Debian packages the tests and demo drive for real (sudo when not root).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-deps:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
	    || ! command -v mkfs.btrfs >/dev/null || ! test -x /usr/sbin/sshd \
	    || ! command -v ssh-keygen >/dev/null; then \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium chromium-driver btrfs-progs openssh-server openssh-client >/dev/null; \
	fi

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check freezer_ui tests enabled bench demo manage.py

# The whole suite, browser tests included: headless Chromium against a real Keystone.  A missing
# Chromium fails them (tests/browser/conftest.py), it never skips them.
test: system-deps venv swift-venv lint
	$(VENV)/bin/pytest -p no:cacheprovider

unit: venv swift-venv
	$(VENV)/bin/pytest -p no:cacheprovider -m "not browser"

browser: system-deps venv
	$(VENV)/bin/pytest -p no:cacheprovider -m browser tests/browser

# Refresh docs/screenshots/*.png from the browser tests (a plain run writes them to /tmp).
screenshots: system-deps venv
	UPDATE_SCREENSHOTS=1 $(VENV)/bin/pytest -p no:cacheprovider -m browser tests/browser

demo: venv
	$(PY) -m demo.run

bench: venv
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) $(SWIFT_VENV) build dist *.egg-info .state

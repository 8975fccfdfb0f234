# simplephone: install, test, lint, benchmark.
#
# `make test` is the suite as CI runs it: the Debian peers (Kamailio, baresip,
# PulseAudio, Xvfb...), the Python package, then pytest. The apt step is
# skipped when every package is already installed, so it is quick on a
# developer's machine. Python comes from PATH (`PYTHON=...` to override); CI
# puts a virtualenv first on PATH.

PYTHON ?= python3
PYTEST_ARGS ?= -q

# Debian 12 packages the suite needs. libasound2-dev must be there before
# `pip install` (pyalsaaudio builds against it). sipp is packaged as sip-tester.
APT_PACKAGES := kamailio kamailio-presence-modules kamailio-sqlite-modules \
	kamailio-xml-modules sqlite3 baresip sip-tester pulseaudio libasound2-plugins \
	libasound2-dev espeak-ng sox xvfb fonts-dejavu-core x11-apps imagemagick xdotool

# Refresh the package lists once: not when they are less than an hour old.
APT_LISTS_FRESH = find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 | grep -q .

.PHONY: install install-peers demo test lint bench clean

install-peers:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed$$' \
			|| missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then \
		echo "install-peers: all Debian packages are installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "install-peers: installing$$missing"; \
		{ $(APT_LISTS_FRESH) || apt-get update; } && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	else \
		echo "install-peers: missing Debian packages:$$missing" >&2; \
		echo "install-peers: as root, run:" >&2; \
		echo "  apt-get update && apt-get install -y --no-install-recommends$$missing" >&2; \
		exit 1; \
	fi

install:
	@if command -v dpkg-query >/dev/null && ! dpkg-query -W -f='$${Status}\n' libasound2-dev 2>/dev/null \
			| grep -q '^install ok installed$$'; then \
		echo "install: libasound2-dev is missing (pyalsaaudio builds against it): make install-peers" >&2; \
		exit 1; \
	fi
	$(PYTHON) -m pip install -e '.[dev]'

demo: install
	phone demo

# Sub-makes keep the order (peers, then the package, then pytest) under -j.
test:
	$(MAKE) install-peers
	$(MAKE) install
	$(PYTHON) -m pytest $(PYTEST_ARGS)

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

bench:
	@set -e; found=0; \
	for script in bench/*.py; do \
		[ -e "$$script" ] || continue; \
		found=1; echo "== $$script"; $(PYTHON) "$$script"; \
	done; \
	[ $$found = 1 ] || echo "bench: no bench/*.py yet"

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache *.egg-info
	find . -path ./.git -prune -o -path ./.venv -prune -o -name __pycache__ -type d -prune \
		-exec rm -rf {} +

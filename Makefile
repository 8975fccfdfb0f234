# simplephone: install, test, lint, benchmark.
#
# `make test` is the suite as CI runs it: the Debian peers (Kamailio, baresip,
# PulseAudio, Xvfb...), the Python package, then pytest. The apt step is
# skipped when every package is already installed, so it is quick on a
# developer's machine.

# Everything Python lives in a virtualenv (.venv), which Debian's PEP 668
# Python requires; `BASE_PYTHON` is the interpreter it is made from.
BASE_PYTHON ?= python3
# PJSUA2=source: pjsua2 built from pjproject's source as on the SD image
# (image/pjproject/build.sh; PJPROJECT_SRC=path for a local copy), in a venv
# of its own, instead of the x86_64 pjsua2-python wheel.
PJSUA2 ?= wheel
ifeq ($(PJSUA2),source)
VENV ?= .venv-pjsource
else
VENV ?= .venv
endif
PYTHON := $(VENV)/bin/python
PYTEST_ARGS ?= -q

# Debian packages the phone itself needs to build and run (`make demo`):
# pyalsaaudio builds against libasound2-dev.
BASE_PACKAGES := make gcc python3-dev python3-venv libasound2-dev fonts-dejavu-core

# What image/pjproject/build.sh needs to build pjproject.
PJPROJECT_PACKAGES := $(shell cat image/pjproject/build-deps)

# Debian 12 packages the suite needs on top. sipp is packaged as sip-tester.
APT_PACKAGES := $(BASE_PACKAGES) kamailio kamailio-presence-modules kamailio-sqlite-modules \
	kamailio-xml-modules kamailio-tls-modules sqlite3 baresip sip-tester pulseaudio libasound2-plugins \
	libasound2-dev espeak-ng sox xvfb fonts-dejavu-core x11-apps imagemagick xdotool

# Refresh the package lists once: not when they are less than an hour old.
APT_LISTS_FRESH = find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 | grep -q .

.PHONY: install install-base install-pjproject install-peers demo emulator test lint bench stress clean image image-test image-test-arm64 install-image-test

# apt_install PACKAGES: install what is missing (as root), else say the apt line and fail.
define apt_install
	@missing=""; \
	for p in $(1); do \
		dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed$$' \
			|| missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then \
		echo "$@: all Debian packages are installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "$@: installing$$missing"; \
		{ $(APT_LISTS_FRESH) || apt-get update; } && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	else \
		echo "$@: missing Debian packages:$$missing" >&2; \
		echo "$@: as root, run:" >&2; \
		echo "  apt-get update && apt-get install -y --no-install-recommends$$missing" >&2; \
		exit 1; \
	fi
endef

install-base:
	$(call apt_install,$(BASE_PACKAGES))

install-peers:
	$(call apt_install,$(APT_PACKAGES))

$(VENV)/bin/python:
	$(BASE_PYTHON) -m venv $(VENV)

install-pjproject:
	$(call apt_install,$(PJPROJECT_PACKAGES))

ifeq ($(PJSUA2),source)
# pjproject is built once per venv (about 10 minutes here); the wheel is left out.
install: install-base install-pjproject $(VENV)/bin/python
	$(PYTHON) -c 'import pjsua2' 2>/dev/null || \
		nice image/pjproject/build.sh --venv $(VENV) $(if $(PJPROJECT_SRC),--src $(PJPROJECT_SRC))
	$(PYTHON) -m pip install -q --no-deps -e .
	$(PYTHON) image/pjproject/requirements.py dev > $(VENV)/simplephone-requirements.txt
	$(PYTHON) -m pip install -q -r $(VENV)/simplephone-requirements.txt
else
install: install-base $(VENV)/bin/python
	$(PYTHON) -m pip install -q -e '.[dev]'
endif

demo: install
	$(VENV)/bin/phone demo

# The phone in a window with Bob and Carol to call (pygame from PyPI, in the
# dev extra); sound through the desktop's ALSA default (SOUND=none: without).
SOUND ?= default
emulator: install
	$(VENV)/bin/phone emulator --demo --sound $(SOUND)

# Sub-makes keep the order (peers, then the package, then pytest) under -j.
test:
	$(MAKE) install-peers
	$(MAKE) install
	$(PYTHON) -m pytest $(PYTEST_ARGS)

lint: install
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

bench: install
	@set -e; found=0; \
	for script in bench/*.py; do \
		[ -e "$$script" ] && [ "$$script" != bench/common.py ] || continue; \
		found=1; echo "== $$script"; $(PYTHON) "$$script"; \
	done; \
	[ $$found = 1 ] || echo "bench: no bench/*.py yet"

# Outside the suite (minutes, a loaded machine): 200 starts and stops of the
# audio bridge with its echo canceller, and 200 calls between two phones, with
# a CPU hog per core; fails on any crash. Figures go to bench/README.md.
stress:
	$(MAKE) install-peers
	$(MAKE) install
	$(PYTHON) -m tests.stress.audio_and_calls

# The SD image (image/README.md), as root: `make image` is the Pi's (arm64:
# Debian's packages configured under qemu-user, pjproject cross-compiled by
# the host's aarch64 toolchain), IMAGE_ARCH=amd64 its twin. Build trees and images go to
# IMAGE_BUILD_DIR. `make image-test` builds the amd64 twin (kept while its
# inputs are unchanged) and boots it under qemu with Kamailio on the host.
IMAGE_ARCH ?= arm64
IMAGE_BUILD_DIR ?= build/image
IMAGE_PACKAGES := git mmdebstrap qemu-user-static mtools dosfstools fdisk e2fsprogs xz-utils
IMAGE_TEST_PACKAGES := $(IMAGE_PACKAGES) qemu-system-x86 kamailio kamailio-presence-modules \
	kamailio-sqlite-modules kamailio-xml-modules kamailio-tls-modules sqlite3

image:
	$(call apt_install,$(IMAGE_PACKAGES) $(if $(filter arm64,$(IMAGE_ARCH)),crossbuild-essential-arm64 swig pkg-config))
	image/build.sh --arch $(IMAGE_ARCH) --out $(IMAGE_BUILD_DIR)

image-test:
	$(MAKE) install-image-test
	$(MAKE) install
	IMAGE_TEST=1 IMAGE_BUILD_DIR=$(abspath $(IMAGE_BUILD_DIR)) $(PYTHON) -m pytest -s $(PYTEST_ARGS) tests/image

install-image-test:
	$(call apt_install,$(IMAGE_TEST_PACKAGES))

# Opt-in, never in CI: the Pi's image (arm64) booted under qemu-system-aarch64
# (tests/image/test_boot_arm64.py); IMAGE_ARM64_IMG=path boots a given image.
image-test-arm64:
	$(call apt_install,$(IMAGE_TEST_PACKAGES) qemu-system-arm crossbuild-essential-arm64 swig pkg-config)
	$(MAKE) install
	IMAGE_TEST=arm64 IMAGE_BUILD_DIR=$(abspath $(IMAGE_BUILD_DIR)) $(PYTHON) -m pytest -s $(PYTEST_ARGS) tests/image

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache *.egg-info
	find . -path ./.git -prune -o -path ./.venv -prune -o -name __pycache__ -type d -prune \
		-exec rm -rf {} +

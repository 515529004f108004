# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: demo test lint typecheck pytest clean ui ui-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'uv==0.13.8'

# Packages are installed by uv (about 4 times faster than pip here: 42 s instead of 170 s for the test extra,
# the same versions) with pip's own configuration of this machine handed over: its indexes, find-links and
# constraints (a constraint keeps the CPU torch that lies on disk), and pip's choice among indexes
# (unsafe-best-match: the best version from any index, as pip does). If uv fails, pip does the install.
# --compile-bytecode, as pip does: uv compiles nothing by default, and where PYTHONDONTWRITEBYTECODE is set
# (this machine) every process, each Ray worker among them, then compiled Ray, MLflow and torch at import:
# the whole test suite took twice as long.
pipconf = $(shell $(PYTHON) -m pip config get global.$(1) 2>/dev/null)
UV_INSTALL = $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python --index-strategy unsafe-best-match \
	$(foreach u,$(call pipconf,index-url),--index-url $(u)) \
	$(foreach u,$(call pipconf,extra-index-url),--extra-index-url $(u)) \
	$(foreach u,$(call pipconf,find-links) $(PIP_FIND_LINKS),--find-links $(u)) \
	$(foreach u,$(call pipconf,constraint) $(PIP_CONSTRAINT),--constraint $(u))
INSTALL = $(UV_INSTALL) $(1) || $(BIN)/python -m pip install --quiet $(1)

# An editable install compiles none of the project's modules, and machines that set PYTHONDONTWRITEBYTECODE
# never cache them: every process (each Ray worker among them) would compile them again at import. So the
# install compiles them once, as pip does for a regular install; a module edited later is compiled in memory.
COMPILE := $(BIN)/python -m compileall -q engine nodes typesys serve cluster examples bench

# The demo trains, registers and serves a model: it needs the ML extra (MLflow, scikit-learn, CPU torch).
$(STAMP): $(BIN)/python pyproject.toml
	$(call INSTALL,-e '.[ml]')
	$(COMPILE)
	touch $(STAMP)

$(TEST_STAMP): $(BIN)/python pyproject.toml
	$(call INSTALL,-e '.[test]')
	$(COMPILE)
	touch $(STAMP) $(TEST_STAMP)

# The web UI (docs/guides/web-ui.md): the bundle in serve/ui/dist is built from serve/ui/web with the committed
# lock file (npm ci, only when the lock file changed) when it is missing or older than its sources; the Python
# package ships it. Built, not committed. ui-test runs the front end's unit tests (vitest).
UI_WEB := serve/ui/web
UI_BUNDLE := serve/ui/dist/index.html
UI_MODULES := $(UI_WEB)/node_modules/.installed
UI_SOURCES := $(shell find $(UI_WEB)/src -type f 2>/dev/null) $(addprefix $(UI_WEB)/,index.html package.json tsconfig.json vite.config.ts)

$(UI_MODULES): $(UI_WEB)/package-lock.json $(UI_WEB)/package.json
	cd $(UI_WEB) && npm ci --no-audit --no-fund --prefer-offline --loglevel=error
	touch $(UI_MODULES)

$(UI_BUNDLE): $(UI_MODULES) $(UI_SOURCES)
	cd $(UI_WEB) && npm run --silent build
	touch $(UI_BUNDLE)

ui: $(UI_BUNDLE)

ui-test: $(UI_MODULES)
	cd $(UI_WEB) && npx vitest run --reporter=dot

demo: $(STAMP) ui
	$(BIN)/python -m examples.demo

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

# The sandbox of untrusted plugins' nodes runs them in bubblewrap (Debian package `bubblewrap`,
# docs/guides/sandbox.md); its tests need it.
# Two test processes (pytest-xdist), a test file to one of them at a time so module fixtures are made once;
# much of a test's time is waiting (servers starting, Ray workers, sleeps), which the other process fills.
# Files holding slow tests are handed out first (tests/conftest.py; without --no-loadscope-reorder xdist would
# order files by their number of tests instead) so both end together. PYTEST_WORKERS=0 runs them in one process.
# A test process that crashes fails its test and its file goes on in a new process; the scheduler that does this
# without hanging the run (pytest-xdist 3.8.0's own can) is tests/xdist_scheduling.py.
PYTEST_WORKERS ?= 2
pytest: $(TEST_STAMP) ui
	@command -v bwrap >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq bubblewrap)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: lint typecheck ui-test pytest

clean:
	rm -rf $(VENV) .rayweave .mypy_cache .pytest_cache .ruff_cache

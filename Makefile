# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: demo test install install-dev bench bench-feast bench-pit bench-online bench-materialize bench-server bench-stream typecheck clean

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	touch $@

$(VENV)/.installed: $(VENV)/.created pyproject.toml
	$(PIP) install --quiet -e .
	touch $@

# the dev install adds the out-of-tree example backend, which the conformance suites run too
# (docs/backends.md)
PLUGIN := tests/plugins/skewless_dictstore

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml $(PLUGIN)/pyproject.toml
	$(PIP) install --quiet -e ".[dev]"
	$(PIP) install --quiet -e $(PLUGIN)
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## demo: create a virtualenv, install skewless, run the quickstart end to end on embedded defaults
demo: install
	$(PY) examples/quickstart.py

## test: install the dev dependencies and run the whole suite
test: install-dev
	$(PY) -m mypy src/skewless
	$(PY) -m pytest -q

typecheck: install-dev
	$(PY) -m mypy src/skewless

## bench: skewless and the raw limit side by side, every metric (SCALE=S|M|L: 1M/10M/100M rows)
SCALE ?= S
BENCH_ARGS ?=
FEAST_VENV := bench/.venv-feast

bench: install-dev
	$(PY) bench/compare.py --skip-feast --scale $(SCALE) $(BENCH_ARGS)

## bench-feast: the same with Feast 0.67 interleaved, from its own venv (never imported into .venv)
$(FEAST_VENV)/.installed: bench/feast/requirements.txt bench/feast/constraints.txt
	test -x $(FEAST_VENV)/bin/python || $(PYTHON) -m venv $(FEAST_VENV)
	$(FEAST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FEAST_VENV)/bin/python -m pip install --quiet -r bench/feast/requirements.txt -c bench/feast/constraints.txt
	touch $@

bench-feast: install-dev $(FEAST_VENV)/.installed
	$(PY) bench/compare.py --scale $(SCALE) $(BENCH_ARGS)

bench-pit: install-dev
	$(PY) bench/pit.py

bench-online: install-dev
	$(PY) bench/online.py

bench-materialize: install-dev
	$(PY) bench/materialize.py

bench-server: install-dev
	$(PY) bench/server.py

bench-stream: install-dev
	$(PY) bench/stream.py

clean:
	rm -rf $(VENV) demo_repo .pytest_cache .hypothesis

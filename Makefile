# Closeloop: `make demo` runs the console with simulated history; `make test` runs every check CI runs.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# Local runs are development runs; production sets DEBUG=0 and a SECRET_KEY (see README).
export DEBUG ?= 1

.PHONY: install demo test lint bench-correlate bench-exceptions bench-lineage bench-dashboards bench-map bench-slas bench-reconcile bench-ingest bench-soak clean
# Benchmarks run on PostgreSQL, in a database of their own that each run rebuilds.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/closeloop_bench

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed-runtime

# The demo needs the runtime dependencies only: without the test tools (Playwright, schemathesis, hypothesis...) and
# pip's own upgrade, a first install takes about two thirds of the time. A venv made by `make install` serves as is.
$(VENV)/.installed-runtime: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e .
	touch $@

install: $(VENV)/.installed

# One process: set up, serve once the first day of history is in, store the rest in the background, then run the
# periodic jobs and print the URL and the logins. The demo sends no e-mail (escalations notify in the console).
demo: export EMAIL_BACKEND = django.core.mail.backends.dummy.EmailBackend
demo: $(VENV)/.installed-runtime
	$(PY) manage.py serve_demo --setup --history-days 21 --seed 7 $(DEMO_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

test: lint
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) -m pytest -n 2

bench-correlate: install
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) tests/bench/correlate.py $(BENCH_ARGS)

bench-exceptions: install
	DATABASE_URL=$(BENCH_DATABASE_URL)_exceptions $(PY) tests/bench/exceptions.py $(BENCH_ARGS)

bench-lineage: install
	DATABASE_URL=$(BENCH_DATABASE_URL)_lineage $(PY) tests/bench/lineage.py $(BENCH_ARGS)

bench-dashboards: install
	DATABASE_URL=$(BENCH_DATABASE_URL)_dashboards $(PY) tests/bench/dashboards.py $(BENCH_ARGS)

# The default reconciliation rules over 1,000,000 events (BENCH_ARGS="--events 100000" for a quick run).
bench-reconcile: install
	DATABASE_URL=$(BENCH_DATABASE_URL)_reconcile $(PY) tests/bench/reconcile.py $(BENCH_ARGS)

# The integration map: /map/ and /api/v1/interfaces/ over 1,000,000 events (BENCH_ARGS="--events 20000" for less).
bench-map: install
	DATABASE_URL=$(BENCH_DATABASE_URL)_map $(PY) tests/bench/map.py $(BENCH_ARGS)

bench-slas: install
	DATABASE_URL=$(BENCH_DATABASE_URL)_slas $(PY) tests/bench/slas.py $(BENCH_ARGS)

bench-ingest: install
	$(PY) manage.py collectstatic --noinput -v0
	DATABASE_URL=$(BENCH_DATABASE_URL)_ingest $(PY) tests/bench/ingest.py $(BENCH_ARGS)

# The whole pipeline under a sustained mixed load (10 minutes by default; BENCH_ARGS="--seconds 60" for less).
bench-soak: install
	$(PY) manage.py collectstatic --noinput -v0
	DATABASE_URL=$(BENCH_DATABASE_URL)_soak $(PY) tests/bench/soak.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles closeloop.sqlite3*

# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DEBUG ?= true

.PHONY: install install-runtime run admin test lint format bench bench-api bench-pipeline bench-console soak clean

# Two stamps: `make run` needs only requirements.txt; tests, lint, benches and CI's audit need
# requirements-dev.txt on top.
$(BIN)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(BIN)/.dev: $(BIN)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install-runtime: $(BIN)/.runtime

install: $(BIN)/.dev

run: install-runtime
	bash scripts/run-local.sh

# The first admin login, on the database `make run` uses (asks for a name and a password).
admin: install-runtime
	$(BIN)/python manage.py createsuperuser

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Every benchmark: one table of figures against their baselines and a plot, in bench/README.md
# (BENCH_ARGS=--quick: a smoke check of a few minutes that records nothing). wrk is installed
# with apt-get when missing.
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# POST /notifications/sms against the same-work view under gunicorn on PostgreSQL + Redis (bench/README.md).
bench-api: install
	$(BIN)/python bench/api_create.py $(BENCH_ARGS)

# Delivery throughput against a no-op Django Q task, and latency at 50/s, on PostgreSQL + Redis
# with the fake providers (bench/README.md).
bench-pipeline: install
	$(BIN)/python bench/pipeline_throughput.py $(BENCH_ARGS)

# Every console page timed with 1,000,000 notifications, receipts and send attempts on
# PostgreSQL (bench/README.md).
bench-console: install
	$(BIN)/python bench/console_lists.py $(BENCH_ARGS)

# Fault soak on PostgreSQL + Redis: 5,000 notifications through provider outages, a SIGKILLed
# qcluster and a web restart; checks nothing was lost or sent twice (docs/delivery.md, Soak).
soak: install
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* run/

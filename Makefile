# make run   - set up and serve the demo shop with trained recommendations (SQLite, eager Celery)
# make test  - set up and run the whole test suite
# make bench - run the benchmarks (writes bench/results/*.json)
# make test-oscar - the app inside a real django-oscar shop (its own .venv-oscar), docs/oscar.md
# make test-clients - API clients generated from /api/schema/ (Python and TypeScript) type-check
#                     and run the mobile flow against a live server, docs/serving.md
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1:8000

VENV_OSCAR := .venv-oscar
PY_OSCAR := $(VENV_OSCAR)/bin/python
OSCAR_SHOP := DJANGO_SETTINGS_MODULE=tests.oscar.settings

VENV_CLIENTS := .venv-clients
NODE_CLIENTS := tests/clients/node_modules

.PHONY: run test test-oscar test-clients bench lint setup demo-data clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

setup: $(VENV)/.installed

# The local demo runs with DEBUG on (and its built-in key); a deployment sets its own
# environment instead (docs/operations.md).
demo-data run: export DJANGO_DEBUG ?= 1

demo-data: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py shop_load_online_retail --if-empty
	$(PY) manage.py recommendations_train --if-none

run: demo-data
	$(PY) manage.py runserver $(HOST)

test: setup
	$(PY) -m pytest

$(VENV_OSCAR)/.installed: requirements.txt requirements-oscar.txt
	test -x $(PY_OSCAR) || $(PYTHON) -m venv $(VENV_OSCAR)
	$(PY_OSCAR) -m pip install --quiet --upgrade pip
	$(PY_OSCAR) -m pip install --quiet -r requirements.txt -r requirements-oscar.txt
	touch $@

# The Oscar shop of tests/oscar: its system checks pass, the app's migrations apply after
# Oscar's, then the tests (views, checkout, training, carousels, API) run against it.
test-oscar: $(VENV_OSCAR)/.installed
	$(OSCAR_SHOP) $(PY_OSCAR) -m django check --fail-level WARNING
	$(OSCAR_SHOP) $(PY_OSCAR) -m django migrate --noinput -v 0
	$(PY_OSCAR) -m pytest -c tests/oscar/pytest.ini tests/oscar

$(VENV_CLIENTS)/.installed: requirements-clients.txt
	test -x $(VENV_CLIENTS)/bin/python || $(PYTHON) -m venv $(VENV_CLIENTS)
	$(VENV_CLIENTS)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_CLIENTS)/bin/python -m pip install --quiet -r requirements-clients.txt
	touch $@

$(NODE_CLIENTS)/.installed: tests/clients/package.json tests/clients/package-lock.json
	cd tests/clients && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The generators in their own environments; the live server and the generated client run
# in .venv (httpx is in requirements.txt).
test-clients: setup $(VENV_CLIENTS)/.installed $(NODE_CLIENTS)/.installed
	CLIENTS_BIN=$(CURDIR)/$(VENV_CLIENTS)/bin $(PY) -m pytest -c tests/clients/pytest.ini tests/clients

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) $(VENV_OSCAR) $(VENV_CLIENTS) $(NODE_CLIENTS) db.sqlite3 var

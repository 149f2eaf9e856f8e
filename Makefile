# make run   - set up and serve the demo shop with trained recommendations (SQLite, eager Celery)
# make test  - set up and run the whole test suite
# make bench - run the benchmarks (writes bench/results/*.json)
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1:8000

.PHONY: run test bench lint setup demo-data clean

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

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) db.sqlite3 var

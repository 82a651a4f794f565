# The commands CI and developers run. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install web-assets browser lint typecheck migrations-check pytest services bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Build the demo city (Xiamen) on embedded SQLite and serve it on http://127.0.0.1:8000
demo: install web-assets
	$(BIN)/cityloop demo

## Leaflet, leaflet.heat, ECharts and htmx from npm (pinned in package-lock.json), served by the app
web-assets:
	bash scripts/install_web_assets.sh

## Debian's chromium and a CJK font for the page tests (Playwright never downloads a browser)
browser:
	bash scripts/install_browser.sh

## The whole test suite: lint, types, migrations, and pytest on SQLite and PostgreSQL
test: install web-assets browser services lint typecheck migrations-check pytest

services:
	bash scripts/services.sh

lint: install
	$(BIN)/ruff check src tests bench scripts

typecheck: install
	$(BIN)/mypy

migrations-check: install
	bash scripts/check_migrations.sh

pytest: install
	$(BIN)/pytest -q -m "not slow"

bench: install
	$(BIN)/python bench/bench_locate.py
	$(BIN)/python bench/bench_loop.py
	$(BIN)/python bench/bench_documents.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

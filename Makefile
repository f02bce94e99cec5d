# The everyday commands; see README.md. Every target runs inside .venv, which the first one
# creates (and refreshes when requirements.txt or pyproject.toml change).
PYTHON ?= python3
PROFILE ?= quick
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The book shows `cache_dir = None`; nbval re-executes it with this cache, so it trains nothing.
export LATENT_NOTES_CACHE ?= $(CURDIR)/.cache/checkpoints

.PHONY: book test check unit lint sync serve publish clean

book: $(STAMP)  ## execute the chapters with $(PROFILE) and render the book into _build/html
	$(PY) -m latent_notes.book.build --profile $(PROFILE)

test: book  ## unit and book tiers, and nbval over the executed chapters (the cache is warm)
	$(PY) -m pytest tests _build/src/book --nbval-lax -p no:cacheprovider -m "not integration" --durations=15

check: book  ## the integration tier: builds and training runs in subprocesses
	$(PY) -m pytest tests -p no:cacheprovider -m integration --durations=0

unit: $(STAMP)  ## the fast tier only: no book needed
	$(PY) -m pytest tests -p no:cacheprovider -m "not book and not integration"

lint: $(STAMP)  ## ruff (pyflakes, pycodestyle, import order, bugbear) and the workflow's schema
	$(PY) -m ruff check latent_notes tests scripts book
	$(PY) -m check_jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

sync: $(STAMP)  ## regenerate the committed book/*.ipynb (for Colab and papermill) from book/*.py
	$(PY) -m jupytext --sync book/[0-9]*.py

PORT ?= 8000
serve:  ## serve the built book on http://127.0.0.1:$(PORT) (the explorers need http, not file://)
	@test -f _build/html/index.html || { echo "make: no built book in _build/html: run make book first" >&2; exit 1; }
	@echo "The book: http://127.0.0.1:$(PORT)/  (Ctrl-C stops the server)"
	$(PY) -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

publish: $(STAMP)  ## the standard book (MNIST from $$LATENT_NOTES_DATA) and its weights
	$(PY) -m latent_notes.book.build --profile standard $(if $(DATA_ROOT),--data-root $(DATA_ROOT))
	$(PY) -m latent_notes.store.weights export --profile standard _build/weights/

clean:
	rm -rf _build

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3,10))' \
	  2>/dev/null || { echo "make: setting up .venv needs Python 3.10 or newer with \
	its venv module, and '$(PYTHON)' is not that (missing, too old, or without venv). Install one \
	(Debian/Ubuntu: apt-get install python3 python3-venv; Fedora: dnf install python3; macOS: \
	brew install python3), or name it: make book PYTHON=/path/to/python3.12." >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -r requirements.txt -e .
	$(PY) -m ipykernel install --sys-prefix --name python3
	touch $@

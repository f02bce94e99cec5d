# The everyday commands; see README.md.
PYTHON ?= python
PROFILE ?= quick

.PHONY: book test unit notebooks sync clean

book:  ## execute the chapters with $(PROFILE) and render the book into _build/html
	$(PYTHON) -m latent_notes.build --profile $(PROFILE)

test: book  ## the whole suite: unit tests, book checks, and nbval over the executed chapters
	$(PYTHON) -m pytest tests _build/src/book --nbval-lax -p no:cacheprovider

unit:  ## the fast tier only
	$(PYTHON) -m pytest tests -m "not book"

sync:  ## regenerate the committed book/*.ipynb (for Colab and papermill) from book/*.py
	$(PYTHON) -m jupytext --sync book/[0-9]*.py

clean:
	rm -rf _build

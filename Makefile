# The two commands of the kit:
#   make repro   install (once) and regenerate every table and figure with `dvc repro`
#   make test    install (once) and run the tests: pytest + nbval over every notebook
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install repro test bench clean-scratch

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

repro: install
	$(BIN)/dvc repro

test: install
	$(BIN)/python -m pytest tests
	$(BIN)/python -m pytest --nbval-lax notebooks

bench: install
	$(BIN)/python -m benchmarks

clean-scratch:
	rm -rf .scratch

# The two commands of the kit:
#   make repro   install (once) and regenerate every table and figure with `dvc repro`
#   make test    install (once) and run the tests: pytest + nbval over every notebook
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Stage commands call `python`: the venv's, whether or not it is activated.
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Idle OpenMP threads sleep instead of spinning: on a shared or busy CPU spinning made training
# steps up to 16x slower (measured); on an idle machine it costs nothing measurable.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install repro repro-paper test bench

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

# Settings are checked before DVC removes any stage output; a stage's user error is one line,
# printed again after DVC's summary so it is the last thing on screen.
repro: install
	python -m pngan.params check
	rm -f .dvc/tmp/stage-errors
	PNGAN_ERROR_FILE=$(CURDIR)/.dvc/tmp/stage-errors dvc repro || { cat .dvc/tmp/stage-errors >&2 2>/dev/null; exit 2; }
	python -m pngan.stages.tables --sync-readme

# Paper scale (a GPU job): configs/paper.yaml applied as a DVC experiment named `paper`.
repro-paper: install
	python -m pngan.params check
	eval dvc exp run -n paper "$$(python -m pngan.params flags configs/paper.yaml)"

test: install
	python -m pytest tests
	python -m pytest --nbval-lax notebooks

bench: install
	python -m benchmarks

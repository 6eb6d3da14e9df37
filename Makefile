# Two commands do all the set-up on a fresh clone (python3 >= 3.10 and make are enough):
#   make serve   build the site with every tutorial executed (quick profile) and serve it
#   make test    lint, unit tests, strict site build that executes every tutorial
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Checkpoints, downloads, result records and executed notebooks stay inside the clone,
# so a fresh clone starts from an empty cache and its test time is honest.
export MECHINTERP_CACHE ?= $(CURDIR)/.cache/mechinterp
export MECHINTERP_PROFILE ?= quick
# One thread per process: on a small shared machine torch's default was 5-100x slower.
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export HF_HUB_OFFLINE ?= 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PYTHONDONTWRITEBYTECODE := 1
export NO_MKDOCS_2_WARNING := 1

.PHONY: help venv lint test test-full test-unit test-tutorials test-nbmake test-browser docs serve bench mutation tutorials siit-models symbiote-seeds transfer-study toy-models bench-page gpt2-acceptance clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "mechinterp needs Python 3.10 or newer"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing mechinterp and its dependencies into $(VENV) (a few minutes the first time)"
	$(BIN)/python -m pip install --progress-bar off -q -e ".[dev,docs]" 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@touch $@

venv: $(STAMP)  ## create the virtual environment in .venv

lint: $(STAMP)  ## ruff, workflow checks (actionlint, zizmor), tutorial notebooks in sync
	$(BIN)/ruff check src tests tutorials benchmarks tools
	$(BIN)/actionlint .github/workflows/*.yml
	$(BIN)/zizmor --offline --quiet .github/workflows
	$(BIN)/python tools/sync_tutorials.py --check

test-full: $(STAMP)  ## every tutorial on the full profile, on the CPU, with the shipped MNIST subset (long; not part of make test)
	$(BIN)/python tools/test_full.py

test-unit: $(STAMP)  ## unit and integration tests
	$(BIN)/pytest -n 2 tests/

test-tutorials: $(STAMP)  ## execute every tutorial notebook, two at a time (slowest listed)
	$(BIN)/pytest --nbmake -n 2 tutorials/ --durations=0 -p no:cacheprovider

test-nbmake: $(STAMP)  ## the notebook-test path readers use, on the quickest tutorial
	$(BIN)/pytest --nbmake tutorials/looking_inside_a_cnn.ipynb -p no:cacheprovider

docs: $(STAMP)  ## build the site strictly: executes every tutorial whose inputs changed, fails on any cell error
	@# compiled once here, so that no notebook kernel compiles the package again (where
	@# PYTHONDONTWRITEBYTECODE is set, imports never write the bytecode themselves)
	$(BIN)/python -m compileall -q src
	$(BIN)/mkdocs build --strict

test-browser: $(STAMP)  ## open the built site in headless Chromium: images, links, console, requests, search
	@test -f site/index.html || { echo "no built site in site/: run 'make docs' first"; exit 1; }
	@if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null \
	    && ! command -v google-chrome >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Chromium (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "Chromium is missing: install it (Debian: sudo apt-get install chromium), then rerun"; \
	    exit 1; \
	  fi; \
	fi
	$(BIN)/python tools/browser_check.py

# The site build executes every tutorial exactly as nbmake does (nbclient, from tutorials/,
# a cell error fails it), so CI runs each tutorial once instead of twice.
test: lint test-unit docs test-browser test-nbmake  ## everything CI runs

serve: $(STAMP)  ## build and serve the site on http://127.0.0.1:8000
	@$(BIN)/python -c 'import json; s = json.load(open("tools/tutorial_seconds.json")); \
	  print(f"The first build executes {len(s)} tutorials: about {sum(s.values()) / 120:.0f} minutes on a 2-core machine" \
	        " (one line per tutorial as it starts and ends); later builds rerun only what changed.")'
	@$(BIN)/python -m compileall -q src
	$(BIN)/mkdocs serve -a 127.0.0.1:8000

bench: $(STAMP)  ## speed benchmarks (ratios against references measured in the same run)
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_training.py --eval
	$(BIN)/python benchmarks/bench_sae_free.py
	$(BIN)/python benchmarks/bench_patching.py
	$(BIN)/python benchmarks/bench_acdc.py

mutation: $(STAMP)  ## mutation testing of the metric modules on one core (about 13 minutes): a score per module, then overall
	$(BIN)/python tools/mutation.py --max-children 1

bench-page: $(STAMP)  ## rerun the patching and ACDC benchmarks and rewrite docs/performance.md (about 15 minutes)
	$(BIN)/python benchmarks/bench_patching.py --json > docs/performance/patching.jsonl
	$(BIN)/python benchmarks/bench_acdc.py --json > docs/performance/acdc.jsonl
	$(BIN)/python tools/performance_page.py

siit-models: $(STAMP)  ## retrain the SIIT benchmark models that ship in src/mechinterp/siit/weights (about three hours of one CPU core)
	$(BIN)/python -c 'from mechinterp.siit import ship_models; print(*ship_models(), sep="\n")'

toy-models: $(STAMP)  ## retrain the toy models that ship with the package (about 7 minutes: three seeds)
	$(BIN)/python -m mechinterp.toyworld.models --ship

transfer-study: $(STAMP)  ## rerun every transfer page with every seed computed and store the runs of the active profile (quick: ~15 min)
	rm -rf .cache/transfer-study
	cd tutorials && { echo transfer_leaderboard.py; echo transfer_variants.py; \
	  ls transfer_*.py | grep -v -e transfer_leaderboard -e transfer_variants; } \
	  | MECHINTERP_CACHE=$(CURDIR)/.cache/transfer-study MECHINTERP_SEEDS_LIVE=1 \
	    MECHINTERP_PROGRESS=0 MPLBACKEND=Agg xargs -P 2 -I{} ../$(BIN)/python {} > /dev/null
	$(BIN)/python -m mechinterp.transfer.study --from-cache .cache/transfer-study

symbiote-seeds: $(STAMP)  ## recompute the stored SymbioteNet seed study of the active profile and data source (quick: about 55 minutes on two cores)
	$(BIN)/python -m mechinterp.symbiote.seeds --condition normal --condition polysemantic & first=$$!; \
	  $(BIN)/python -m mechinterp.symbiote.seeds --condition mixed --condition narrow; \
	  wait $$first

gpt2-acceptance: $(STAMP)  ## GPT-2 small: top IOI heads against Wang et al., and a ROME edit (needs its weights; the GPU site build)
	$(BIN)/python tools/gpt2_ioi_acceptance.py

tutorials: $(STAMP)  ## regenerate tutorials/*.ipynb from the jupytext scripts
	$(BIN)/python tools/sync_tutorials.py

clean:  ## remove the build outputs and the local cache (keeps .venv)
	rm -rf site .cache

# Two commands do all set-up on a fresh machine (see README):
#   make demo   create .venv, install mlptrain, download MNIST, train 3 epochs, evaluate
#   make test   create .venv, install mlptrain with its test and dask extras, run the test suite
# Docs: make docs (build the MkDocs site into site/, strict), make docs-gen (regenerate the generated pages).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EPOCHS ?= 3
DEMO_RUN ?= runs/demo
# The demo keeps MNIST in the repository's data/, not in the per-user cache (~/.cache/mlptrain).
DEMO_DATA ?= data

.PHONY: demo test lint docs docs-gen bench bench-accuracy bench-drift ab clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever pyproject.toml or the install line changes; the stamp file records the last install.
$(VENV)/.installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dask]'
	touch $@

demo: $(VENV)/.installed
	rm -rf $(DEMO_RUN)
	MLPTRAIN_DATA_DIR=$(DEMO_DATA) $(BIN)/mlptrain fit --epochs $(EPOCHS) --out $(DEMO_RUN)
	MLPTRAIN_DATA_DIR=$(DEMO_DATA) $(BIN)/mlptrain eval $(DEMO_RUN)

test: $(VENV)/.installed
	$(BIN)/python -m pytest

# Trains the shipped best configs, the candidates and a few plain ones, 14 entries (about two hours on
# 2 cores: the 13 rows of benchmarks/RESULTS.md took 93 minutes together, and fashion-augment-candidate-ls,
# an 80-epoch run like fashion-augment, takes about 21 more); writes benchmarks/RESULTS.md. One entry:
# python benchmarks/accuracy.py --only NAME. DATA_ROOT holds mnist/ and fashion-mnist/ (.gz files).
DATA_ROOT ?= ../shared/data
bench-accuracy: $(VENV)/.installed
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python benchmarks/accuracy.py --data-root $(DATA_ROOT)

# In-process A/B of the training step, this tree against a git revision (3-10 seconds):
#   make ab REV=HEAD~1 HIDDEN=800,800
REV ?= HEAD
HIDDEN ?= 256,256
ab: $(VENV)/.installed
	$(BIN)/python benchmarks/ab.py $(REV) --hidden $(HIDDEN) --data $(DATA_ROOT)/fashion-mnist

# Epoch-time drift over a long run of each shipped best config, and the subnormal floats left in the
# optimizer state (docs/numerics.md; 60 epochs of each take about 20 minutes on 2 idle cores):
#   make bench-drift DRIFT_EPOCHS=6 DRIFT_THREADS=1
DRIFT_EPOCHS ?= 60
DRIFT_THREADS ?= 2
bench-drift: $(VENV)/.installed
	$(BIN)/python benchmarks/drift.py --data-root $(DATA_ROOT) --epochs $(DRIFT_EPOCHS) --threads $(DRIFT_THREADS)

# Speed against PyTorch, scikit-learn, naive NumPy and the GEMM floor (about 25 minutes);
# the references live in their own venv (.bench), never in mlptrain's dependencies.
bench:
	test -x .bench/bin/python || $(PYTHON) -m venv .bench
	.bench/bin/python -m pip install --quiet -e . -r benchmarks/requirements.txt
	.bench/bin/python benchmarks/speed.py --data $(DATA_ROOT)/fashion-mnist

lint: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet ruff
	$(BIN)/ruff check mlptrain tests scripts benchmarks

# The generated docs (docs/cli.md, the marked tables, and the console blocks marked <!-- docs-gen: console … -->,
# made by running their commands; those on real MNIST need DATA_ROOT/mnist, and the ones that train take
# minutes: DOCS_GEN_FLAGS=--no-slow leaves them); tests/test_docs.py fails when the committed ones are stale.
DOCS_GEN_FLAGS ?=
docs-gen: $(VENV)/.installed
	MLPTRAIN_SHARED_DATA=$(abspath $(DATA_ROOT)) $(BIN)/python scripts/gen_docs.py $(DOCS_GEN_FLAGS)

# The docs site into site/ with the docs extra (MkDocs); --strict: a broken link or missing page fails.
$(VENV)/.docs-installed: pyproject.toml | $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@

docs: $(VENV)/.docs-installed
	MLPTRAIN_SHARED_DATA=$(abspath $(DATA_ROOT)) $(BIN)/python scripts/gen_docs.py --check
	$(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache site

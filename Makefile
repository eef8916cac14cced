# Set-up contract: a fresh machine with Python 3.11 and pip. `make demo` and `make test` do the rest.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := core vqvae choice2vec arc detector vizwatch
STAMP := $(VENV)/.installed
# torch/torchvision wheels lie on this machine's disk; pip finds them (uv would download GBs)
PINS := torch==2.14.1 torchvision==0.29.1
PYTEST_WORKERS ?= 2

.PHONY: install browser-deps demo s3-demo test test-fast lint bench clean

$(STAMP): $(foreach p,$(PACKAGES),packages/$(p)/pyproject.toml) requirements-dev.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(PINS) -r requirements-dev.txt \
		-e 'packages/core[torch,jax,tensorboard,s3,mlflow,plot]' $(foreach p,$(filter-out core,$(PACKAGES)),-e packages/$(p)) 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium + ChromeDriver for tests/arc/test_browser.py (installed when we are root and
# they are missing; otherwise that test skips and says why)
browser-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium and chromium-driver for the browser test"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
			|| echo "could not install chromium: tests/arc/test_browser.py will skip"; \
	else echo "chromium not installed and not root: tests/arc/test_browser.py will skip"; fi

demo: install
	$(BIN)/core example-train --root demo_runs/example
	$(BIN)/vizwatch train --dataset digits --classes 10 --epochs 40 --focal-gamma 0 --visualize-training --viz-every 10 \
		--viz-root demo_runs/training_feature_visualizations --root demo_runs/vizwatch
	$(BIN)/vizwatch animate $$(ls -d demo_runs/training_feature_visualizations/run_* | tail -1)
	test -f demo_runs/datasets/demo_1k.h5 || $(BIN)/spinlock generate-dataset --samples 1000 --output demo_runs/datasets/demo_1k.h5
	$(BIN)/spinlock train-vqvae --config configs/vqvae/quick.json --input demo_runs/datasets/demo_1k.h5 \
		--output demo_runs/vqvae/quick_1k --epochs 30
	$(BIN)/c2v train --config configs/choice2vec/quick.yaml --epochs 1000 --checkpoint-every 500 \
		--set data.participants=16 --set data.cluster_trials=1000 \
		--output-dir demo_runs/choice2vec/training_checkpoints_$$(date +%Y-%m-%d_%H-%M-%S)
	$(BIN)/arc train --config configs/arc/selection.yaml --set epochs=1 --set batches_per_epoch=60 \
		--checkpoint-dir demo_runs/arc/checkpoints --save-as demo_$$(date +%Y%m%d_%H%M%S)
	$(BIN)/detector train --profile quick --dataset-size 200 --epochs 1 --classifier-steps 50 --image-size 128 \
		--root $(CURDIR)/demo_runs/detector
	@echo "each run drew its curves:"; find demo_runs -name metrics.png | sort
	$(BIN)/core list-checkpoints demo_runs

# object-storage roots against a local S3 server (moto, on 127.0.0.1): no cloud account needed
s3-demo: install
	$(BIN)/python scripts/s3_demo.py

test: install browser-deps
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test-fast: install browser-deps
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check packages tests bench scripts
	for p in $(PACKAGES); do (cd packages/$$p && ../../$(BIN)/deptry src) || exit 1; done
	$(BIN)/python -m pytest -q tests/core/test_layering.py

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) demo_runs bench_out .pytest_cache

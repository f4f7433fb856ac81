# Two commands work on a fresh machine with only Python 3.11 and make:
#   make demo   -- set up .venv if needed, then compile and run the built-in model
#   make test   -- set up .venv if needed, then run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BACKEND ?= interpreter

.PHONY: demo test conformance bench clean FORCE

# The extras installed: `test`, and `torch` when its pinned CPU wheel installs offline here
# (from the index a looser spec pulls a multi-GB CUDA build). The choice is written to
# $(EXTRAS_FILE), which the stamp depends on, so an existing .venv picks up a wheel that
# appears later. TORCH_OK is worked out once per make run, and only by targets that need it.
comma := ,
TORCH_PIN := $(shell sed -n 's/^torch = \["\(.*\)"\]$$/\1/p' pyproject.toml)
PIP_PYTHON = $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
TORCH_OK = $(eval TORCH_OK := $(shell $(PIP_PYTHON) -m pip install -q --disable-pip-version-check \
	--dry-run --no-index --no-deps '$(TORCH_PIN)' >/dev/null 2>&1 && echo yes))$(TORCH_OK)
EXTRAS = test$(if $(TORCH_OK),$(comma)torch)
EXTRAS_FILE := $(VENV)/.extras

$(EXTRAS_FILE): FORCE
	@mkdir -p $(VENV)
	@echo '$(EXTRAS)' | cmp -s - $@ || echo '$(EXTRAS)' > $@

$(STAMP): pyproject.toml $(EXTRAS_FILE)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[$$(cat $(EXTRAS_FILE))]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m kiln.demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 tests

conformance: $(STAMP)
	$(BIN)/python -m kiln.frontends.onnx.conformance --backend $(BACKEND)

# kiln vs ONNX Runtime, PyTorch eager and torch.compile (docs/performance.md); the PyTorch
# columns need the torch extra, which setup installs when its wheel is on this machine's disk.
bench: $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[bench]'
	@grep -q torch $(EXTRAS_FILE) || echo "bench: no local wheel for $(TORCH_PIN); the PyTorch columns will read n/a"
	$(BIN)/python -m benchmarks.bench $(BENCH_ARGS)

clean:
	rm -rf build .pytest_cache .hypothesis

# Two commands work on a fresh machine with only Python 3.11 and make:
#   make demo   -- set up .venv if needed, then compile and run the built-in model
#   make test   -- set up .venv if needed, then run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BACKEND ?= interpreter

.PHONY: demo test conformance bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m kiln.demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 tests

conformance: $(STAMP)
	$(BIN)/python -m kiln.frontends.onnx.conformance --backend $(BACKEND)

# kiln vs ONNX Runtime and PyTorch eager (docs/performance.md). The torch extra is installed only
# when its pinned CPU wheel is on this machine's disk: from the index it would be a CUDA build.
TORCH_PIN := $(shell sed -n 's/^torch = \["\(.*\)"\]$$/\1/p' pyproject.toml)
bench: $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[bench]'
	@if $(BIN)/python -m pip install -q --disable-pip-version-check --dry-run --no-index --no-deps '$(TORCH_PIN)' >/dev/null 2>&1; \
	then $(BIN)/python -m pip install -q --disable-pip-version-check -e '.[torch]'; \
	else echo "bench: no local wheel for $(TORCH_PIN); the PyTorch column will read n/a"; fi
	$(BIN)/python -m benchmarks.bench $(BENCH_ARGS)

clean:
	rm -rf build .pytest_cache .hypothesis

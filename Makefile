# Two set-up commands, each enough on a fresh machine:  make demo  (the main job)  and  make test.
# make demo installs what the demo needs (torch's CPU build, rnnlab and its dependencies); make test adds the
# test, notebook, ONNX, TensorBoard, sktime and statsforecast extras and builds the C++ engine before the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench install browser clean

$(BIN)/rnnlab: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0        # the CPU build; a bare `torch` would pull a CUDA build
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.extras: $(BIN)/rnnlab
	$(BIN)/pip install -q -e ".[dev,onnx,tensorboard,sktime,stats]"
	$(BIN)/python -c "from rnnlab.nn import fast; fast.main()"
	touch $@

install: $(VENV)/.extras

demo: $(BIN)/rnnlab
	$(BIN)/rnnlab demo

# rnnlab view's browser tests drive Debian's chromium: installed here where apt-get can (as root)
browser:
	@if [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
	      >/dev/null 2>&1 || echo "make: could not install chromium; the browser tests will say so"; \
	  else echo "make: no /usr/bin/chromedriver: apt-get install chromium chromium-driver for the browser tests"; fi; \
	fi

test: install browser
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/layers.py

clean:
	rm -rf $(VENV) runs

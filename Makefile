# Two commands a user needs: `make train` and `make test`. Both create .venv first; run the
# tools from it as .venv/bin/distdl, or `source .venv/bin/activate` once per shell.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: train test bench install clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 'setuptools>=77'
	$(PY) -m pip install --quiet -e '.[mpi,test,plot]'
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(VENV)/bin/distdlrun -np 2 digits_mlp

test: $(STAMP)
	$(PY) -m pytest tests

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/allreduce.py -n 2
	$(PY) benchmarks/scaling.py --model mlp -n 2
	$(PY) benchmarks/scaling.py --model cnn -n 2
	$(PY) benchmarks/hotspots.py
	$(PY) benchmarks/conv.py
	$(PY) benchmarks/scaling_model.py --ranks 2,8,64,512
	-$(PY) benchmarks/plot.py

clean:
	rm -rf $(VENV) build dist *.egg-info

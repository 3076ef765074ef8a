# Two commands a user needs: `make train` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: train test bench install clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[mpi,test]'
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(VENV)/bin/distdlrun -np 2 configs/digits_mlp.toml

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
	rm -rf $(VENV) build *.egg-info

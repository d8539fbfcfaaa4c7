# meshfield: the two quick-start commands are `make demo` and `make test`.
# Both create the virtual environment themselves. MPI comes from the `mpich`
# wheel unless a system MPI (an `mpicc` on PATH) is present.

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
OUT     ?= out
RANKS   ?= 2

# Prefer the venv's mpiexec (from the mpich wheel); fall back to the system one.
MPIEXEC = $(shell test -x $(VENV)/bin/mpiexec && echo $(VENV)/bin/mpiexec || command -v mpiexec)
# The MPI tests start 4 ranks; Open MPI refuses more ranks than cores unless told
# (MPICH oversubscribes by itself).
MPIFLAGS ?= $(shell $(MPIEXEC) --version 2>/dev/null | grep -qi 'open mpi' && echo --oversubscribe)

.PHONY: venv demo test test-serial test-mpi bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	if command -v mpicc >/dev/null 2>&1; then \
	    echo "meshfield: using the system MPI ($$(command -v mpicc))"; \
	else \
	    $(PY) -m pip install -q mpich; \
	fi
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# NEST is the peer of the `peer` tests (run by `make test`); a platform without a
# NEST wheel still gets a working meshfield, and those tests then skip.
$(VENV)/.peer: $(STAMP)
	$(PY) -m pip install -q nest-simulator || echo "meshfield: nest-simulator not installable here; peer tests will skip"
	touch $@

demo: $(STAMP)
	mkdir -p $(OUT)
	$(MPIEXEC) $(MPIFLAGS) -n $(RANKS) $(VENV)/bin/meshfield run --overwrite -o $(OUT)/demo.h5
	$(VENV)/bin/meshfield plot $(OUT)/demo.h5 -o $(OUT)/demo.png
	@echo "demo: wrote $(OUT)/demo.h5 and $(OUT)/demo.png"

test: $(STAMP) $(VENV)/.peer
	$(MAKE) --no-print-directory test-serial test-mpi

# The NEST peer tests that inspect NEST's state run in a process of their own (NEST
# and numba's threading layer must not share one); all other NEST calls are
# isolated in subprocesses by meshfield.peers.nest.
test-serial: $(STAMP)
	$(PY) -m pytest -m "not mpi" -q tests --ignore=tests/test_peer_nest.py
	$(PY) -m pytest -q tests/test_peer_nest.py

# A rank that stops while the others wait in an exchange hangs the job: the time
# limit (about 15 times what the suite takes) turns such a regression into a quick
# failure instead of a CI run that waits for its own limit.
MPI_TEST_LIMIT ?= 900
TIMEOUT = $(shell command -v timeout >/dev/null && echo timeout --kill-after=30 $(MPI_TEST_LIMIT))

test-mpi: $(STAMP)
	$(TIMEOUT) $(MPIEXEC) $(MPIFLAGS) -n 2 $(PY) -m pytest -m mpi -q tests
	$(TIMEOUT) $(MPIEXEC) $(MPIFLAGS) -n 4 $(PY) -m pytest -m mpi -q tests

bench: $(STAMP)
	$(PY) drivers/bench_meso.py --json $(OUT)/bench_meso.json

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info

# Two commands matter: `make demo` and `make test`. Each builds its own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean docs compiled

$(BIN)/socialcredit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# An editable install is not byte-compiled, and with PYTHONDONTWRITEBYTECODE set (as on this
# machine) Python would compile the package's sources again in every process: 0.1-0.2 s a command.
# compileall writes what is missing or stale, as a regular install would have.
compiled: $(BIN)/socialcredit
	@$(BIN)/python -m compileall -q src >/dev/null

demo: compiled
	rm -f demo.db demo.db.key demo.db.subjects demo.db-wal demo.db-shm
	$(BIN)/socialcredit --db sqlite:///demo.db demo --seed 7

# One pytest worker per core (at most 4): the suite's tests are independent (each its own
# database, port and PostgreSQL schema), and half its time is spent waiting on fsync and servers.
test: compiled
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4

bench: compiled
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_check.py
	$(BIN)/python bench/bench_trust.py
	$(BIN)/python bench/bench_proofs.py
	$(BIN)/python bench/bench_batch.py
	$(BIN)/python bench/bench_command.py
	$(BIN)/python bench/bench_spark.py
	$(BIN)/python bench/bench_http.py   # needs wrk: apt-get install -y wrk

docs: $(BIN)/socialcredit
	$(BIN)/python docs/generate_cli_docs.py
	$(BIN)/python docs/generate_packs_doc.py
	$(BIN)/python docs/generate_policy_docs.py

clean:
	rm -rf $(VENV) demo.db demo.db.key demo.db.subjects demo.db-wal demo.db-shm

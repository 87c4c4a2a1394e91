# Two commands matter: `make demo` and `make test`. Each builds its own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean docs

$(BIN)/socialcredit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/socialcredit
	rm -f demo.db demo.db.key demo.db-wal demo.db-shm
	$(BIN)/socialcredit --db sqlite:///demo.db demo --seed 7

test: $(BIN)/socialcredit
	$(BIN)/python -m pytest -q

bench: $(BIN)/socialcredit
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
	rm -rf $(VENV) demo.db demo.db.key demo.db-wal demo.db-shm

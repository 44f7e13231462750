# The same CPU environment as `make setup`, with `mmfs` as the entrypoint.
# GPU: the pinned torch 2.9.1 wheels from PyPI are CUDA builds, so the same image uses a GPU when
# run with `docker run --gpus all ...` on a host with the NVIDIA container toolkit.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libgl1 libglib2.0-0 wordnet-base wordnet-sense-index \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home mmfs
WORKDIR /opt/mmfs
COPY pyproject.toml README.md ./
COPY mmfs ./mmfs
RUN pip install --upgrade "pip>=24" && pip install ".[ray,beam]" \
    && python -m mmfs.transforms.nltk_data   # NLTK data into <prefix>/share/nltk_data, offline
USER mmfs
WORKDIR /work
ENTRYPOINT ["mmfs"]
CMD ["--help"]

# The same environment as `make setup` (without the dev tools), with `mmfs` as the entrypoint.
#
# The base is a build argument: `python:3.11-slim` by default, or any Debian 12 image (Python 3.11 is
# then installed from Debian), e.g. the local base `make docker-test` makes where no registry is
# reachable. GPU: the pinned torch 2.9.1 wheels from PyPI are CUDA builds, so the same image uses a GPU
# when run with `docker run --gpus all ...` on a host with the NVIDIA container toolkit.
#
#   docker build -t mmfs:latest .                                  # python:3.11-slim
#   podman build --build-arg BASE=localhost/debian:bookworm -t mmfs:latest .
#   docker build --build-arg EXTRAS= -t mmfs:slim .                # without Ray and Beam
#
# Two stages: the builder has the compilers (webrtcvad builds from source) and pip; the runtime
# stage gets only the virtual environment, so no compiler, header or pip cache is shipped.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
ARG EXTRAS=ray,beam
# PIP_CERT (a CA bundle mounted into the build) only where PyPI sits behind an intercepting proxy
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
# gcc and headers for webrtcvad; WordNet for the NLTK data; Python itself on a bare Debian base
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev wordnet-base wordnet-sense-index \
    && if ! command -v python3 >/dev/null; then \
         apt-get install -y --no-install-recommends python3 python3-venv python3-dev ca-certificates; \
       fi \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mmfs ./mmfs
# not editable: the package is copied into the venv, so /src is not needed at run time.
# rapidocr and facenet are installed without their declared deps, as in the Makefile (pyproject says why)
RUN pip install --upgrade "pip>=24" \
    && pip install ".${EXTRAS:+[$EXTRAS]}" \
    && pip install --no-deps "rapidocr-onnxruntime==1.4.4" "facenet-pytorch==2.6.0" \
    && python -m mmfs.transforms.text.nltk_data /opt/venv/share/nltk_data

FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
# a bare Debian base needs Python 3.11 at the same path the build stage's venv links to
RUN if ! command -v python3 >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends python3 \
      && rm -rf /var/lib/apt/lists/*; \
    fi
COPY --from=build /opt/venv /opt/venv
# nothing is downloaded at run time; caches go to /tmp so the root filesystem can be read-only
ENV PATH=/opt/venv/bin:$PATH HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    NUMBA_CACHE_DIR=/tmp/numba-cache MPLCONFIGDIR=/tmp/matplotlib
RUN useradd --create-home --uid 10001 mmfs && mkdir /work && chown mmfs:mmfs /work
USER mmfs
WORKDIR /work
ENTRYPOINT ["mmfs"]
CMD ["--help"]

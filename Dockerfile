# syntax=docker/dockerfile:1.7
# paddock images (ray_serve.md §4.5): two targets from one file.
#
#   docker build --target api    -t paddock-api:0.1.0 .     # the facade: slim, no torch, no ray
#   docker build --target worker -t paddock-worker:0.1.0 .  # GPU workers, Ray head and Ray workers
#
# Weights are never baked in: mount them (a PVC or hostPath) at /models and point PADDOCK_MODELS
# at a registry file naming checkpoints under it (README "Real weights", helm/values.yaml).

ARG API_BASE=python:3.11-slim
# Ray 2.60 on Python 3.11 with the CUDA user-space pieces; the same image runs the RayService head
# and its GPU workers, so their Ray and Python versions always match.
ARG WORKER_BASE=rayproject/ray:2.60.0-py311-gpu

# ---------------------------------------------------------------------------------------------
# api: `paddock api`. Only the base dependencies of pyproject.toml (`pip install .`).
# ---------------------------------------------------------------------------------------------
FROM ${API_BASE} AS api

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PADDOCK_HOST=0.0.0.0 \
    PADDOCK_PORT=8000 \
    PADDOCK_DATA_DIR=/var/lib/paddock \
    PADDOCK_STORAGE_URL=file:///var/lib/paddock

# uid 1000 / gid 100, the same as the worker image's `ray` user, so both can share a file:// volume.
RUN useradd --uid 1000 --gid 100 --create-home --shell /usr/sbin/nologin paddock \
    && install -d -o 1000 -g 100 /var/lib/paddock

WORKDIR /app
# The build needs pyproject.toml, README.md (the package's readme) and the packages it lists.
COPY pyproject.toml README.md ./
COPY server ./server
COPY model ./model
COPY benchmarks ./benchmarks
RUN pip install . \
    && python -c "import importlib.util as u; assert u.find_spec('torch') is None and u.find_spec('ray') is None" \
    && rm -rf /app/build

USER 1000:100
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import urllib.request as r; r.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["paddock"]
CMD ["api"]

# ---------------------------------------------------------------------------------------------
# worker: `paddock worker`, or `ray start` under KubeRay (the RayService overrides the command).
# ---------------------------------------------------------------------------------------------
FROM ${WORKER_BASE} AS worker

# The PyTorch index for the CUDA build of torch. The wheel carries its own CUDA runtime
# (nvidia-* wheels), so the node's driver, not the base image, must support it; pick the
# variant published for torch 2.13.0 that your driver supports (cu126, cu128, ...).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAY_USAGE_STATS_ENABLED=0 \
    PADDOCK_DATA_DIR=/var/lib/paddock \
    PADDOCK_STORAGE_URL=file:///var/lib/paddock \
    HF_HUB_OFFLINE=1

# The base image runs as the non-root user `ray` (uid 1000); switch to root only to make folders.
USER root
RUN install -d -o 1000 -g 100 /var/lib/paddock /models /app
USER 1000:100

WORKDIR /app
# torch first, pinned and from the CUDA index, so the extras below never resolve another build.
RUN pip install "torch==2.13.0" --index-url "${TORCH_INDEX_URL}"
COPY --chown=1000:100 pyproject.toml README.md ./
COPY --chown=1000:100 server ./server
COPY --chown=1000:100 model ./model
COPY --chown=1000:100 benchmarks ./benchmarks
RUN pip install ".[worker,ray]" \
    && python -c "import torch, ray; assert torch.__version__.startswith('2.13.0'), torch.__version__" \
    && rm -rf /app/build

# Weights are mounted here read-only at run time (never baked into the image).
VOLUME ["/models"]
EXPOSE 9464
ENTRYPOINT ["paddock"]
CMD ["worker"]

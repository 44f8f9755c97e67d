# The Data Debugger service (API + dashboard). Used by docker-compose.yml next to a Qdrant server.
# Its `base` stage (the package installed, a user, /data) is shared with trainer.Dockerfile and api.Dockerfile:
#   docker build --target base -t data-debugger-base .     (`make train-docker` / `make api-docker` do it)
FROM python:3.11-slim AS base

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
WORKDIR /app

# CPU-only torch first, pinned, from PyTorch's CPU index (the default index would pull the CUDA build).
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md constraints.txt ./
COPY service service
COPY embeddings embeddings
COPY dashboard dashboard
# The versions last tested (constraints.txt), as `make install` uses them.
RUN pip install -c constraints.txt .

RUN useradd --create-home debugger && mkdir /data && chown debugger /data
USER debugger
# Stores, models, caches (the numba cache too) and reports: one volume.
ENV DATA_DEBUGGER_HOME=/data
VOLUME /data

FROM base AS service
EXPOSE 8000 5006
CMD ["data-debugger", "serve", "--host", "0.0.0.0"]

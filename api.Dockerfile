# `make api` in a container: the prediction API alone on 4002, serving the models in the volume at /data.
#   make api-docker        (after make train-docker; untested here: no Docker engine)
ARG BASE=data-debugger-base
FROM ${BASE}

EXPOSE 4002
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4002/health')"]
CMD ["data-debugger", "model-server", "--dataset", "humanloop", "--host", "0.0.0.0", "--port", "4002", "--require-model"]

# Connectors Service: slim Python, non-root (numeric uid), health-checked.
# The base image is a build argument, so a registry mirror can stand in where Docker Hub is not reachable:
#   docker build --build-arg PYTHON_IMAGE=mirror.example.internal/python:3.11-slim --build-arg BUILD_SHA="$(git rev-parse --short HEAD)" .
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ARG BUILD_SHA=dev
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HOST=0.0.0.0 \
    PORT=8090 \
    BUILD_SHA=${BUILD_SHA}

WORKDIR /app
COPY requirements.txt .
# A PyPI mirror, when there is one (pip reads PIP_INDEX_URL); unset, pip uses PyPI.
ARG PIP_INDEX_URL
RUN pip install --no-cache-dir -r requirements.txt

# The service's modules and packages; .dockerignore keeps tests, docs, the benchmark and local state out.
COPY . .

# data/ holds the embedded SQLite store of connections (mount a volume there, or set DATABASE_URL).
RUN useradd --system --uid 10001 --no-create-home connectors \
    && mkdir -p /app/data && chown 10001 /app/data
VOLUME ["/app/data"]
USER 10001

EXPOSE 8090
# Exec form (no shell): the probe script reads PORT itself.
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8090') + '/health', timeout=2)"]

# `docker run -p 8090:8090 -e ZENDESK_SUBDOMAIN=... connectors:latest`; add `-e SANDBOX=true` for the emulators.
CMD ["python", "server.py"]

# Connectors Service: slim Python, non-root, health-checked.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HOST=0.0.0.0 \
    PORT=8090

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY *.py ./
COPY connectors/ connectors/
COPY sandbox/ sandbox/

RUN useradd --system --uid 10001 --no-create-home connectors
USER connectors

EXPOSE 8090
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD python -c "import os,urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"8090\")}/health', timeout=2)" || exit 1

# `docker run -p 8090:8090 -e ZENDESK_SUBDOMAIN=... connectors:latest`; add `-e SANDBOX=true` for the emulators.
CMD ["python", "server.py"]

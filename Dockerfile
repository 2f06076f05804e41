# One image for every service (Dagster code location, webserver, daemon, API, dashboard):
# they share the code and the pinned dependencies; docker-compose picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    FORECASTING_HOME=/data \
    M5_RAW_DIR=/data/raw \
    DAGSTER_HOME=/opt/dagster/home

# Debian's security updates replace these versions quickly: pinning them breaks rebuilds.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY forecasting_assets ./forecasting_assets
COPY forecasting_api ./forecasting_api
COPY dashboard ./dashboard
# The "scaleout" extra (dagster-celery, dagster-k8s, redis) serves the scale-out location and
# Celery workers; pip only warns if the extra is not declared. Versions come from pyproject.toml.
# hadolint ignore=DL3013
RUN pip install ".[scaleout]" \
    && useradd --create-home --uid 1000 app \
    && mkdir -p /data "$DAGSTER_HOME" \
    && chown -R app /data "$DAGSTER_HOME"

COPY deploy/dagster.docker.yaml /opt/dagster/home/dagster.yaml
COPY deploy/workspace.docker.yaml /opt/dagster/home/workspace.yaml
COPY deploy/celery.yaml ./deploy/celery.yaml

USER 1000:1000
EXPOSE 3000 4000 8000 8501
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "forecasting_assets.definitions"]

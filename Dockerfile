# The ContactPulse worker and simulator image (used by docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY processors ./processors
COPY simulation ./simulation
COPY stream ./stream
COPY sinks ./sinks
COPY deploy ./deploy
# Editable so that deploy/ (migrations, config) is found beside the packages.
RUN pip install -e .
RUN useradd --system --home /var/lib/contactpulse contactpulse \
    && mkdir -p /var/lib/contactpulse && chown contactpulse /var/lib/contactpulse
USER contactpulse
ENV CONTACTPULSE_DATA_DIR=/var/lib/contactpulse
CMD ["contactpulse", "worker"]

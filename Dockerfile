# syntax=docker/dockerfile:1
# DocuElevate's one image; the role (api, worker, beat, migrate) is the container's command.
#   docker build -t docuelevate --build-arg TESSERACT_LANGUAGES="eng deu fra" .
# Three stages: the stylesheet (Node), the Python packages (a virtualenv), and the runtime,
# which gets neither Node nor pip's caches.

# --- The stylesheet: Tailwind CSS compiled at build time, never from a CDN at run time. ---
FROM node:20-bookworm-slim AS css
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tailwind.config.js ./
# Tailwind keeps only the classes it finds in the templates and scripts.
COPY templates/ templates/
COPY static/ static/
RUN npm run build:css

# --- The Python packages, in a virtualenv copied whole into the runtime. ---
FROM python:3.11-slim-bookworm AS python
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements/base.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

# --- The runtime. ---
FROM python:3.11-slim-bookworm AS runtime
# Tesseract languages, as Debian names them (tesseract-ocr-<name>: "fra", "chi-sim");
# TESSERACT_LANGUAGE (at run time) chooses among those installed, e.g. "eng+deu+fra".
# French (tesseract-ocr-fra) is always installed, so TESSERACT_LANGUAGE=eng+deu+fra works as is.
ARG TESSERACT_LANGUAGES="eng deu"
# The user's ids, to match the owner of a bind-mounted /workdir on the host. USER is
# numeric so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
ARG APP_UID=1000
ARG APP_GID=1000
# Shown on /status: the image tag or commit.
ARG BUILD=""

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# The pipeline's system programs: the same Debian packages scripts/install-system-packages.sh
# installs for `make run` (scripts/tests/test_image.py keeps the two lists equal). That
# script also installs test tools, so it is not called here. postgresql-client is
# bookworm's 15, the supported PostgreSQL, for manage.py backup/restore. Besides those:
# the chosen OCR languages, metric-compatible fonts for office documents, and tini as PID 1
# to reap the processes LibreOffice and OCR leave behind.
# Versions are not pinned: bookworm's security updates replace them, and a pin to a
# superseded version would break the build.
# hadolint ignore=DL3008
RUN read -r -a languages <<< "$TESSERACT_LANGUAGES" \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        tesseract-ocr tesseract-ocr-osd tesseract-ocr-fra "${languages[@]/#/tesseract-ocr-}" \
        ghostscript qpdf poppler-utils unpaper pngquant zip libmagic1 \
        libreoffice-writer-nogui fonts-dejavu-core fonts-liberation2 \
        postgresql-client tini \
    && rm -rf /var/lib/apt/lists/* \
    && test -x /usr/lib/postgresql/15/bin/pg_dump \
    && for language in "${languages[@]}"; do tesseract --list-langs | grep -qx "${language//-/_}"; done

RUN groupadd --system --gid "$APP_GID" docuelevate \
    && useradd --system --uid "$APP_UID" --gid docuelevate --create-home \
        --home-dir /home/docuelevate --shell /usr/sbin/nologin docuelevate \
    && mkdir /workdir \
    && chown docuelevate:docuelevate /workdir

# OMP_THREAD_LIMIT=1: tesseract's own threads slow it down; parallelism comes from pages
# and workers. HOME must be writable for LibreOffice's profile.
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WORKDIR=/workdir \
    HOME=/home/docuelevate \
    OMP_THREAD_LIMIT=1 \
    BUILD=$BUILD

COPY --from=python /opt/venv /opt/venv

# The project root is the working directory: gunicorn reads gunicorn.conf.py from there.
# The code stays owned by root, so the application cannot change it.
WORKDIR /app
COPY . .
COPY --from=css /build/static/css/app.css static/css/app.css
# whitenoise serves the collected, hashed and compressed files. The settings need a
# WORKDIR and (outside debug) a secret only to load; neither is kept in the image.
RUN rm -rf static/src \
    && DEBUG=true WORKDIR=/tmp/collectstatic python manage.py collectstatic --noinput --verbosity 0 \
    && rm -rf /tmp/collectstatic \
    && chmod 0755 docker/entrypoint.sh

USER ${APP_UID}:${APP_GID}
VOLUME ["/workdir"]
EXPOSE 8000

# The live probe touches neither the database nor Redis, so a database outage does not
# get the web containers restarted. Worker and beat containers serve no HTTP: compose
# and Helm replace this check for them.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/diagnostic/healthz/live' % os.environ.get('PORT', '8000'), timeout=4)"]

ENTRYPOINT ["tini", "--", "/app/docker/entrypoint.sh"]
CMD ["api"]

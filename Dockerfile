# syncd: the daemon (`syncd run`) in a small image.
#   docker build -t syncd .
#   docker run -d -p 8787:8787 -v syncd-data:/data -v "$PWD/syncd.toml:/config/syncd.toml:ro" \
#     -e TRELLO_API_KEY -e TRELLO_TOKEN -e TRELLO_API_SECRET -e FIGMA_TOKEN \
#     -e FIGMA_WEBHOOK_PASSCODE -e SYNCD_ADMIN_TOKEN -e SYNCD_OIDC_CLIENT_SECRET \
#     -e SYNCD_SESSION_SECRET -e SYNCD_DIGEST_URLS -e SYNCD_SERVER_PUBLIC_URL syncd
# Secrets come from the environment only; the store lives on the /data volume. The image
# listens on 0.0.0.0, so the dashboard needs a login ([auth]) or SYNCD_ADMIN_TOKEN (else 403).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY syncd ./syncd
COPY adapters ./adapters
COPY state ./state
RUN pip install --no-cache-dir .

RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin syncd \
    && mkdir -p /data /config \
    && chown syncd:syncd /data
USER syncd
WORKDIR /data

ENV SYNCD_CONFIG=/config/syncd.toml \
    SYNCD_STORE_URL=sqlite:////data/syncd.db \
    SYNCD_SERVER_HOST=0.0.0.0 \
    SYNCD_SERVER_PORT=8787 \
    SYNCD_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8787

# No curl in slim images: ask /healthz with the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/healthz' % os.environ.get('SYNCD_SERVER_PORT', '8787'); sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]

CMD ["syncd", "run"]

# browser-service: the HTTP API (and /mcp) with Debian's Chromium, as a non-root user.
#
#   podman build -t browser-service .          # or: docker build -t browser-service .
#   podman run --rm -p 8000:8000 -e BROWSER_SERVICE_API_KEYS=change-me browser-service
#
# Configuration is by environment only (README.md, "Configuration"). The service listens on
# 0.0.0.0, so it refuses to start without BROWSER_SERVICE_API_KEYS; behind a proxy that does the
# authentication, run it with `serve --insecure` instead. BASE is any Debian bookworm image: CI,
# which reaches no registry, passes one it imported from a debootstrap (scripts/container-smoke).
ARG BASE=debian:bookworm-slim

# --- runtime: Chromium, fonts, Python, tini; no compiler, no apt lists ----------------------------
FROM ${BASE} AS runtime
# Fonts matter for screenshots and layout, not for text. Add fonts-noto-cjk (~90 MB) for CJK pages.
ARG FONTS="fonts-liberation fonts-noto-core"
ARG DEBIAN_FRONTEND=noninteractive
# Packages without their manuals, docs (copyrights kept) and translations, as debian:*-slim does;
# libatomic1 is needed by Playwright's driver (node). No apt lists or caches are left behind.
RUN printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
        'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
        'path-exclude /usr/share/lintian/*' > /etc/dpkg/dpkg.cfg.d/browser-service-slim \
 && apt-get update \
 && apt-get install -y --no-install-recommends chromium libatomic1 python3 tini ca-certificates ${FONTS} \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/log/apt /var/log/dpkg.log \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /home/browser \
        --shell /usr/sbin/nologin browser \
 && install -d -o browser -g browser /var/lib/browser-service

# --- build: a virtualenv with the package and its dependencies (wheels only: no compiler) --------
# On the runtime stage, so the venv's Python is exactly the one it will run on.
FROM runtime AS build
ARG DEBIAN_FRONTEND=noninteractive
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# A CA bundle for pip behind a TLS-intercepting proxy (the CI machine's); unset elsewhere.
ARG PIP_CERT
# Debian's pip (23.0) fails to resolve trafilatura's lxml extras: a current pip for the build only.
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -q --upgrade pip
# Dependencies first, from pyproject.toml alone, so a change of the code reuses this layer.
COPY pyproject.toml ./
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt
COPY README.md ./
COPY browser_service ./browser_service
COPY extractors ./extractors
# Installed, not editable; pip and setuptools are not needed at run time.
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps . \
 && /opt/venv/bin/pip uninstall -y -q pip setuptools

# --- the image: the runtime stage plus the virtualenv ---------------------------------------------
FROM runtime
COPY --from=build /opt/venv /opt/venv
COPY scripts/container-healthcheck /usr/local/bin/browser-service-healthcheck

# Chromium is started with --disable-dev-shm-usage (browser_service/chromium.py), so the default
# 64 MB /dev/shm of a container is enough; a bigger one (--shm-size=1g) does no harm.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BROWSER_SERVICE_HOST=0.0.0.0 \
    BROWSER_SERVICE_PORT=8000 \
    BROWSER_SERVICE_CHROMIUM_PATH=/usr/bin/chromium \
    BROWSER_SERVICE_CACHE_DIR=/var/lib/browser-service/cache

USER 10001:10001
WORKDIR /var/lib/browser-service
EXPOSE 8000
# /readyz (a canary render through the pool) where the service has it, else /v1/health with the
# first API key: see scripts/container-healthcheck.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["/opt/venv/bin/python", "/usr/local/bin/browser-service-healthcheck"]
# tini as PID 1: forwards SIGTERM to serve (which drains, BROWSER_SERVICE_SHUTDOWN_GRACE_S) and
# reaps Chromium's processes.
ENTRYPOINT ["/usr/bin/tini", "--", "browser-service"]
CMD ["serve"]

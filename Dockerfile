# StatusBridge: multi-stage build. The final image has no compiler and no pip, runs as a non-root
# user (or any uid in group 0), and keeps its state under /data (mount a volume; the root
# filesystem can be read-only).
#
# No `# syntax=` line: it would make BuildKit fetch a frontend image from a registry. RUN --mount
# is part of the stable syntax that Docker's built-in frontend (23.0 and later) and buildah parse.
#
# A private index reaches pip in the build stage only, never a layer of the final image:
#   --secret id=pip,src=pip.conf            (credentials: a pip.conf, mounted for one RUN)
#   --build-arg PIP_INDEX_URL=https://…      (an index without credentials)
# CI builds this on a Debian bookworm base made with debootstrap (README: "Building and testing
# the image"); the default BASE is the official Python image.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
WORKDIR /src
COPY pyproject.toml README.md requirements/runtime.lock ./
COPY bridge ./bridge
# A virtualenv, so PEP 668 (an "externally managed" Debian Python) never applies; --without-pip
# because Debian's python3 has no ensurepip: the base's own pip installs into it. The runtime
# dependencies are the lock's exact versions, hash-checked (the versions CI tested); only the app's
# own wheel is built here.
RUN --mount=type=secret,id=pip,target=/etc/pip.conf \
    python -m venv --without-pip /opt/build \
    && python -m pip --python /opt/build/bin/python install --no-cache-dir pip==24.3.1 \
    && /opt/build/bin/pip download --no-cache-dir --require-hashes --no-deps --only-binary=:all: \
        --dest /wheels -r runtime.lock \
    && /opt/build/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && cp runtime.lock /wheels/

FROM ${BASE}
ARG UID=10001
# scripts/image-build passes pyproject.toml's version (the one place it is written) and the commit.
ARG VERSION=unknown
ARG REVISION=unknown
ARG SOURCE=https://github.com/statusbridge/statusbridge
LABEL org.opencontainers.image.title="StatusBridge" \
      org.opencontainers.image.description="Keeps an incident.io status page truthful from alert webhooks" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STATUSBRIDGE_HOST=0.0.0.0 \
    STATUSBRIDGE_STORE_URL=sqlite:////data/statusbridge.db \
    STATUSBRIDGE_RULES_PATH=/etc/statusbridge/rules
# The wheels are bind-mounted from the build stage, so no layer of this image holds them. The app
# goes into its own virtualenv (no pip in it); /data belongs to group 0 and is group-writable, so
# an arbitrary uid in group 0 (OpenShift's restricted SCC) can write its state there.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv --without-pip /opt/statusbridge \
    && python -m pip --python /opt/statusbridge/bin/python install --no-cache-dir --no-index \
        --require-hashes --no-deps --find-links /wheels -r /wheels/runtime.lock \
    && python -m pip --python /opt/statusbridge/bin/python install --no-cache-dir --no-index \
        --no-deps /wheels/statusbridge-*.whl \
    && useradd --system --uid "${UID}" --gid 0 --home-dir /data --shell /usr/sbin/nologin statusbridge \
    && mkdir -p /data /etc/statusbridge/rules \
    && chown "${UID}:0" /data \
    && chmod 0770 /data
COPY rules/example.yaml /etc/statusbridge/rules/example.yaml
# After the install: there, `python` must still be the base's interpreter, which has pip.
ENV PATH=/opt/statusbridge/bin:${PATH}
USER ${UID}
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["statusbridge"]
CMD ["serve"]

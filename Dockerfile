# syntax=docker/dockerfile:1
# StatusBridge: multi-stage build. The final image has no compiler, runs as a non-root user, and
# keeps its state under /data (mount a volume; the root filesystem can be read-only).
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
WORKDIR /src
# Wheels for the app and its dependencies, built where build tools may exist.
COPY pyproject.toml README.md ./
COPY bridge ./bridge
RUN pip install --no-cache-dir --upgrade pip==24.3.1 \
    && pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${BASE}
ARG UID=10001
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STATUSBRIDGE_HOST=0.0.0.0 \
    STATUSBRIDGE_STORE_URL=sqlite:////data/statusbridge.db \
    STATUSBRIDGE_RULES_PATH=/etc/statusbridge/rules
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid "${UID}" --home-dir /data --shell /usr/sbin/nologin statusbridge \
    && mkdir -p /data /etc/statusbridge/rules \
    && chown statusbridge /data
COPY rules/example.yaml /etc/statusbridge/rules/example.yaml
USER ${UID}
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["statusbridge"]
CMD ["serve"]

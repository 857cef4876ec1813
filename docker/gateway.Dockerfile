# syntax=docker/dockerfile:1
# The gateway (FastAPI) and the one-shot migration job (`medchat db upgrade`): the core
# package and its base dependencies only, no torch. Build from the repository root:
#   docker build -f docker/gateway.Dockerfile -t disc-medchat/gateway:0.1.0 .

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY services ./services
COPY trainer ./trainer
# No extras: the base dependencies are the gateway's and the core's, at the versions of
# requirements.lock. The check fails the build if anything pulled torch in (the gateway
# renders prompts with tokenizers alone).
RUN pip install --no-cache-dir -c requirements.lock . \
    && if pip show torch >/dev/null 2>&1; then echo "torch must not be in the gateway image" >&2; exit 1; fi

FROM python:3.11.11-slim-bookworm
RUN groupadd --system --gid 10001 medchat \
    && useradd --system --uid 10001 --gid medchat --create-home --home-dir /home/medchat \
       --shell /usr/sbin/nologin medchat \
    && install -d -o medchat -g medchat /app /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["medchat", "serve", "--host", "0.0.0.0", "--port", "8000"]

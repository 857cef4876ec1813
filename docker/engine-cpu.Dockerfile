# syntax=docker/dockerfile:1
# A CPU inference engine for machines without a GPU (compose profile `cpu`, the k8s dev
# overlay): `transformers serve`, OpenAI-compatible, with a small model mounted at /model.
#   docker build -f docker/engine-cpu.Dockerfile -t disc-medchat/engine-cpu:0.1.0 .

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.lock /tmp/requirements.lock
# The CPU build of torch from PyTorch's own index (PyPI's Linux wheel is the CUDA one), then
# transformers at the version of requirements.lock.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir -c /tmp/requirements.lock "transformers[serving]" protobuf

FROM python:3.11.11-slim-bookworm
RUN groupadd --system --gid 10001 engine \
    && useradd --system --uid 10001 --gid engine --create-home --home-dir /home/engine \
       --shell /usr/sbin/nologin engine
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/v1/models', timeout=4)"]
CMD ["transformers", "serve", "/model", "--host", "0.0.0.0", "--port", "8080", "--device", "cpu"]

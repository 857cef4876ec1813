# syntax=docker/dockerfile:1
# DISC-MedLLM's inference engine (compose profile `vllm`, k8s base): the official vLLM
# OpenAI-compatible image plus this repository's Baichuan plugin (engines/vllm_baichuan).
# vLLM removed Baichuan-7B/13B after v0.23.0 (vllm-project/vllm PR #46362); the plugin puts
# both back through vLLM's `vllm.general_plugins` entry point (docs/deploy.md).
#   docker build -f docker/engine-vllm.Dockerfile -t disc-medchat/engine-vllm:0.1.0 .

# The plugin as a wheel (pure Python, no dependencies of its own): built here so that no
# build tooling lands in the engine image.
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY engines/vllm_baichuan /src/vllm_baichuan
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels /src/vllm_baichuan

FROM vllm/vllm-openai:v0.32.0
COPY requirements.lock /tmp/requirements.lock
COPY --from=build /wheels /tmp/wheels
# --no-deps: vLLM, torch (CUDA) and transformers stay exactly as the image ships them (the
# plugin declares none); the lock constrains the one package installed, which it leaves free.
RUN python3 -m pip install --no-cache-dir --no-deps -c /tmp/requirements.lock /tmp/wheels/*.whl \
    && python3 -c "from importlib.metadata import entry_points; assert 'baichuan' in {e.name for e in entry_points(group='vllm.general_plugins')}" \
    && rm -rf /tmp/wheels /tmp/requirements.lock \
    && groupadd --system --gid 10001 engine \
    && useradd --system --uid 10001 --gid engine --create-home --home-dir /home/engine \
       --shell /usr/sbin/nologin engine
# vLLM, Triton and FlashInfer keep compile caches under $HOME/.cache.
ENV HOME=/home/engine \
    HF_HUB_OFFLINE=1 \
    VLLM_NO_USAGE_STATS=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=600s --retries=5 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"]
# The official image's CLI (`vllm serve MODEL ...`); compose and k8s pass the arguments.
ENTRYPOINT ["vllm", "serve"]
CMD ["/model", "--host", "0.0.0.0", "--port", "8080"]

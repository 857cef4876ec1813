# syntax=docker/dockerfile:1
# The Celery worker and the trainer it launches: CUDA, torch, DeepSpeed, the train extra.
# The devel image is used at run time too: DeepSpeed compiles its fused ops (Adam, ZeRO
# offload) on first use with nvcc and a C++ compiler. Build from the repository root:
#   docker build -f docker/worker.Dockerfile -t disc-medchat/worker:0.1.0 .

FROM nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04 AS build
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The base image tag is the pin: Ubuntu replaces package versions with security updates,
# so exact apt pins would break the build within weeks.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first and pinned (the project's version); PyPI's Linux wheel is the CUDA build
# with its CUDA runtime libraries.
RUN pip install --no-cache-dir torch==2.13.0
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY services ./services
COPY trainer ./trainer
# The train extra at the versions of requirements.lock (which leaves torch to the line above).
# DeepSpeed, a source package, builds against that torch (no isolated build fetching another).
RUN pip install --no-cache-dir -c requirements.lock setuptools \
    && DS_BUILD_OPS=0 pip install --no-cache-dir --no-build-isolation -c requirements.lock ".[train]"

FROM nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04
ENV DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 g++ \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 medchat \
    && useradd --system --uid 10001 --gid medchat --create-home --home-dir /home/medchat \
       --shell /usr/sbin/nologin medchat \
    && install -d -o medchat -g medchat /app /data
COPY --from=build /opt/venv /opt/venv
# The trainer's configs (MEDCHAT_DEEPSPEED_CONFIG defaults to trainer/configs/..., relative
# to the working directory).
COPY --chown=medchat:medchat trainer /app/trainer
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=15s --start-period=30s --retries=3 \
    CMD ["/bin/sh", "-c", "celery -A services.worker.celery_app inspect ping -d celery@$HOSTNAME --timeout 10"]
# solo pool: one job at a time, run in the worker process, so the trainer dies with it.
CMD ["celery", "-A", "services.worker.celery_app", "worker", "-Q", "validate,train", "--pool", "solo", "--loglevel", "INFO"]

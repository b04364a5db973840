# denoise-vc training image: `docker run ... IMAGE train ...`, `... IMAGE tune ...`, `... IMAGE denoise ...`
# The base image's CUDA build of torch is kept: a constraints file pins it while the package installs.
ARG BASE_IMAGE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

# --- builder: compile the C extensions (pesq, pyworld) into wheels -------------------------------
FROM ${BASE_IMAGE} AS builder
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc g++ \
    && rm -rf /var/lib/apt/lists/*
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels "pesq==0.0.4" "pyworld==0.3.5"

# --- runtime ----------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAY_USAGE_STATS_ENABLED=0 \
    MPLBACKEND=Agg
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsndfile1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /wheels /wheels
WORKDIR /opt/denoise-vc
COPY pyproject.toml README.md ./
COPY denoise_vc ./denoise_vc
COPY models ./models
COPY solvers ./solvers
COPY configs ./configs
# The constraints file holds the base image's torch version, so installing never replaces it.
RUN python -c "import torch; print('torch==' + torch.__version__)" > /opt/constraints.txt \
    && pip install --no-cache-dir -c /opt/constraints.txt /wheels/*.whl ".[neptune]" \
    && rm -rf /wheels
RUN useradd --create-home --uid 1000 denoise \
    && mkdir -p /data /runs \
    && chown denoise:denoise /data /runs
USER 1000:1000
WORKDIR /runs
ENTRYPOINT ["denoise-vc"]
CMD ["--help"]

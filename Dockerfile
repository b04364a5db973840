# denoise-vc training image: `docker run ... IMAGE train ...`, `... IMAGE tune ...`, `... IMAGE denoise ...`
# Every package is pinned by .ci/constraints.txt, frozen from the environment the test suite passed in
# (.ci/freeze-constraints), torch included: the image runs the torch version the suite ran on, as its CUDA
# build from PyPI (it brings its own CUDA libraries; the host needs only the NVIDIA driver).
ARG BASE_IMAGE=python:3.11.7-slim-bookworm

# --- builder: compile the C extensions (pesq, pyworld) into wheels -------------------------------
FROM ${BASE_IMAGE} AS builder
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc g++ \
    && rm -rf /var/lib/apt/lists/*
COPY .ci/constraints.txt /opt/constraints.txt
RUN pip install --no-cache-dir -c /opt/constraints.txt numpy cython setuptools wheel \
    && pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels -c /opt/constraints.txt pesq pyworld

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
COPY .ci/constraints.txt /opt/constraints.txt
WORKDIR /opt/denoise-vc
COPY pyproject.toml README.md ./
COPY denoise_vc ./denoise_vc
COPY models ./models
COPY solvers ./solvers
COPY configs ./configs
RUN pip install --no-cache-dir -c /opt/constraints.txt torch==2.13.0 \
    && pip install --no-cache-dir -c /opt/constraints.txt /wheels/*.whl ".[neptune]" \
    && rm -rf /wheels
RUN useradd --create-home --uid 1000 denoise \
    && mkdir -p /data /runs \
    && chown denoise:denoise /data /runs
USER 1000:1000
WORKDIR /runs
ENTRYPOINT ["denoise-vc"]
CMD ["--help"]

#!/usr/bin/env bash
# On the GPU machine, from the checkout with .whl beside it (benchmarks/gpu_bundle.sh): install the bundle into
# SITE, then the GPU check and scale.py's GPU rows, each capped in time, logs and JSON into OUTDIR.
#   bash benchmarks/gpu_run.sh OUTDIR [gpu_check.py args...]      (SITE=/tmp/site CHECK_S=330 SCALE_S=150)
set -uo pipefail
export PYTHONUNBUFFERED=1
out=$(realpath "$1"); shift
site=${SITE:-/tmp/site}
py=${PY:-python3}
repo=$(cd "$(dirname "$0")/.." && pwd)
started=$(date +%s)
mkdir -p "$site" "$out"
"$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$repo"/.whl/*.whl \
    && tar -xJf "$repo/.whl/ray.tar.xz" -C "$site" || exit 3
export PYTHONPATH=$site
# Ray workers put the driver's working directory on sys.path: run outside the checkout, whose denoise_vc/ lacks
# the models/solvers/configs that only an install maps into the namespace
cd /tmp
"$py" -c "import denoise_vc.cli, ray.train.torch, pyworld, pesq, torch; print('torch', torch.__version__, torch.cuda.is_available())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
timeout "${CHECK_S:-330}" "$py" "$repo/benchmarks/gpu_check.py" --out "$out/gpu_check.json" "$@" 2>&1 | tee "$out/gpu_check.log"
timeout "${SCALE_S:-150}" "$py" "$repo/benchmarks/scale.py" --gpu-only 2>&1 | tee "$out/scale.log"
echo "total $(( $(date +%s) - started )) s"

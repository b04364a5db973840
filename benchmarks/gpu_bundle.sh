#!/usr/bin/env bash
# Packs what gpu_check.py and scale.py need on a bare GPU machine with no network whose python3 (3.12) already
# has torch: the package's own wheel and the cp312 wheels of its dependencies (Ray re-packed without its Java
# jars, dashboard build, rllib and serve, 79 MB -> ~25 MB), into ./.whl (ignored). pesq, pyworld and pysptk ship
# no cp312 wheels: they are built here with a local python3.12. Copy or carry .whl with the checkout, then run
# `bash benchmarks/gpu_run.sh OUTDIR` there. NOTE.md (session 20) has the device run this was made for.
set -euo pipefail
cd "$(dirname "$0")/.."
py312=${PY312:-python3.12}
dest=.whl
rm -rf "$dest" && mkdir -p "$dest"
pin() { grep -i "^$1==" .ci/constraints.txt | head -1; }
download() {  # download DEST SPEC...
    local into=$1
    shift
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$into" "$@"
}
# what the device image (torch, numpy, scipy, pandas, pyarrow, numba, scikit-learn, aiohttp, ...) lacks
for name in hydra-core omegaconf librosa soundfile soxr audioread pooch platformdirs PyWavelets pystoi \
    tensorboardX jsonschema jsonschema-specifications referencing rpds-py cffi pycparser decorator \
    pydantic pydantic_core annotated-types typing-inspection setuptools; do
    download "$dest" "$(pin "$name")"
done
python3 -m pip wheel -q --no-deps -w "$dest" "$(pin antlr4-python3-runtime)"
"$py312" -m pip wheel -q --no-deps -w "$dest" "$(pin pesq)" "$(pin pyworld)" "$(pin pysptk)"
python3 -m pip wheel -q --no-deps --no-build-isolation -w "$dest" .
ray=$(pin ray)
tmp=$(mktemp -d)
download "$tmp" "$ray"
(cd "$tmp" && unzip -q ray-*.whl && rm ray-*.whl && rm -rf ray/jars ray/dashboard/client/build ray/rllib ray/serve \
    && tar -cf - ray ray-*.dist-info | xz -9 -T0 > ray.tar.xz)
mv "$tmp/ray.tar.xz" "$dest/" && rm -rf "$tmp"
du -sh "$dest"

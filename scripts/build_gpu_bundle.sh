#!/usr/bin/env bash
# The bundle an offline GPU machine needs to run reglab (make gpu-bundle): into .whl/
# (git-ignored), wheels of what that machine's Python lacks (hydra-core, omegaconf,
# antlr4-python3-runtime built from its sdist, the Hydra joblib and submitit launchers,
# submitit, joblib, cloudpickle) and of reglab itself, each pinned to the version installed
# here, plus MNIST's four files gzipped (.whl/MNIST/raw/*.gz). scripts/gpu_check.sh installs
# them there with --no-index --no-deps. torch, torchvision and pytorch-lightning are that
# machine's own (gpu_check.sh stops if its Lightning is older than pyproject.toml allows).
# Needs PyPI here; the result must stay < 60 MB.
#   PY=.venv/bin/python REGLAB_DATA_DIR=../shared/data bash scripts/build_gpu_bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${REGLAB_DATA_DIR:-../shared/data}
BUNDLE=.whl
MAX_MB=60
PACKAGES=(hydra-core omegaconf antlr4-python3-runtime hydra-joblib-launcher
          hydra-submitit-launcher submitit joblib cloudpickle)
MNIST=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte
       t10k-labels-idx1-ubyte)

die() { echo "build_gpu_bundle: $*" >&2; exit 1; }

mkdir -p "$BUNDLE/MNIST/raw"
rm -f "$BUNDLE"/*.whl "$BUNDLE"/MNIST/raw/*.gz  # one version of each, or pip refuses all
pins=()
for name in "${PACKAGES[@]}"; do
    v=$("$PY" -c "from importlib.metadata import version; print(version('$name'))") \
        || die "$name is not installed in $PY's environment (make install)"
    pins+=("$name==$v")
done
echo "wheels: ${pins[*]} and reglab (this checkout)"
# pip wheel takes a published wheel as it is and builds one from an sdist (antlr4)
"$PY" -m pip wheel --quiet --no-deps --wheel-dir "$BUNDLE" "${pins[@]}"
"$PY" -m pip wheel --quiet --no-deps --wheel-dir "$BUNDLE" .
for whl in "$BUNDLE"/*.whl; do  # the GPU machine's Python is another version: pure wheels only
    case "$whl" in *-none-any.whl) ;; *) die "$whl is not a pure-Python wheel" ;; esac
done

for f in "${MNIST[@]}"; do
    if [[ -f "$DATA/MNIST/raw/$f" ]]; then
        gzip -9 -c "$DATA/MNIST/raw/$f" >"$BUNDLE/MNIST/raw/$f.gz"
    elif [[ -f "$DATA/MNIST/raw/$f.gz" ]]; then
        cp "$DATA/MNIST/raw/$f.gz" "$BUNDLE/MNIST/raw/"
    else
        die "MNIST file $f not found under $DATA/MNIST/raw (set REGLAB_DATA_DIR)"
    fi
done

{
    echo "built $(date -u +%FT%TZ) from $(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
        "($(git status --porcelain 2>/dev/null | wc -l) uncommitted changes)"
    (cd "$BUNDLE" && ls -1 ./*.whl MNIST/raw/*.gz)
} >"$BUNDLE/MANIFEST.txt"
ls -l "$BUNDLE"/*.whl "$BUNDLE"/MNIST/raw/*.gz | awk '{printf "%10d  %s\n", $5, $NF}'
kb=$(du -sk "$BUNDLE" | cut -f1)
echo "bundle: $BUNDLE, $((kb / 1024)) MB (limit $MAX_MB MB)"
((kb < MAX_MB * 1024)) || die "$BUNDLE is $((kb / 1024)) MB, over $MAX_MB MB"

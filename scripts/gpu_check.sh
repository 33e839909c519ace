#!/usr/bin/env bash
# reglab's GPU check: one command, run from the repository root on a GPU machine with no
# network, in at most 6 minutes on one H200. Needs the bundle of `make gpu-bundle` in .whl/
# and a python3 with torch (CUDA), torchvision, pytorch-lightning, pandas, matplotlib, rich.
#   bash scripts/gpu_check.sh          # figures into $OUT (default ./gpu_out)
# 1. a venv (--system-site-packages) with .whl/*.whl installed (--no-index --no-deps); the
#    working tree's src/ comes first on PYTHONPATH (reglab reads conf/ through src/reglab/conf);
#    versions printed (torch and that python's own pytorch-lightning on a line of their own);
#    within 30 s, one line and exit 1 if reglab, hydra, omegaconf or CUDA is missing, or if
#    its pytorch-lightning is older than pyproject.toml's lower bound;
# 2. MNIST gunzipped from .whl/MNIST/raw into a temporary REGLAB_DATA_DIR;
# 3. (a) the tests that use CUDA (tests/unit/test_models_stack.py -k cuda), and bench.py's arithmetic;
#    (b) scripts/bench.py --device cuda --only members fig9a: per-member step cost of stacks
#        through Lightning's Trainer, bytes per step against the floor at the measured
#        bandwidth, the Fig. 9a stack;
#    (c) a paper-scale slice of Fig. 9a through the CLI: all 30 members, launcher=stacked,
#        trainer=gpu, trainer.max_steps=$FIG9A_STEPS (2000), and the projected time of 10^6.
# Each part has its own time limit (all together within BUDGET_S = 360 s) and writes its
# JSON into $OUT when it ends: versions.json, bench_cuda.json (also as it goes),
# fig9a_slice.json, gpu_check.json (every part's exit status and seconds); logs beside them.
# PYTHON picks the interpreter (default python3), FIG9A_STEPS the slice's updates.
# PLUMBING_ONLY=1 goes on without CUDA (to check this script on a CPU machine).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/gpu_out}
PYTHON=${PYTHON:-python3}
FIG9A_STEPS=${FIG9A_STEPS:-2000}
BUDGET_S=${BUDGET_S:-360}
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/reglab-gpu.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
VENV=$WORK/venv
PY=$VENV/bin/python
T0=$(date +%s)
PARTS=()

now() { echo $(($(date +%s) - T0)); }
say() { echo "gpu_check [$(now) s] $*"; }
fail() { echo "gpu_check: FAILED after $(now) s: $*" >&2; exit 1; }
limit() { # seconds a part may take: its own cap ($1), keeping $2 s of the budget for later
    local left=$((BUDGET_S - $(now) - ${2:-0}))
    ((left < $1)) && echo $((left > 10 ? left : 10)) || echo "$1"
}
FAILED=()
part() { # name, exit status, seconds → gpu_check.json, rewritten after every part
    PARTS+=("\"$1\": {\"rc\": $2, \"seconds\": $3}")
    (($2 == 0)) || FAILED+=("$1 (exit $2)")
    (IFS=,; echo "{${PARTS[*]}, \"total_s\": $(now)}") >"$OUT/gpu_check.json"
}

# 1. the environment -----------------------------------------------------------------------
compgen -G ".whl/*.whl" >/dev/null || fail "no wheels in .whl/ (make gpu-bundle; carry .whl)"
# this python's own Lightning (not from the bundle): at least pyproject.toml's lower bound
lightning=$("$PYTHON" - "$ROOT/pyproject.toml" 2>&1 <<'PYTHON'
import importlib.metadata as meta, re, sys
bound = re.search(r'"pytorch-lightning\s*>=\s*([0-9][0-9.]*)', open(sys.argv[1]).read())
def version(dist):
    try:
        return meta.version(dist)
    except meta.PackageNotFoundError:
        return None
def release(v):
    return tuple(int(x) for x in re.findall(r"\d+", v.split("+")[0])[:3])
have, torch = version("pytorch-lightning"), version("torch")
need = bound.group(1) if bound else None
print(f"pytorch-lightning {have or 'missing'} (pyproject.toml: >={need or '?'}), "
      f"torch {torch or 'missing'}, python {sys.version.split()[0]} ({sys.executable})")
if have and need and release(have) < release(need):
    sys.exit(f"pytorch-lightning {have} of {sys.executable} is older than pyproject.toml's "
             f"lower bound {need}: install pytorch-lightning>={need} there")
PYTHON
) || fail "$(tail -n 1 <<<"$lightning")"
say "$lightning"
"$PYTHON" -m venv --without-pip --system-site-packages "$VENV" >"$WORK/venv.log" 2>&1 \
    || fail "$PYTHON -m venv: $(tail -n 1 "$WORK/venv.log")"
# a venv made from a venv sees the base interpreter's packages, not that venv's: add them
"$PYTHON" -c 'import site, sys
if sys.prefix != sys.base_prefix: print("\n".join(site.getsitepackages()))' \
    >"$("$PY" -c 'import site; print(site.getsitepackages()[0])')/outer-venv.pth"
"$PY" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check \
    .whl/*.whl >"$WORK/pip.log" 2>&1 || fail "pip install .whl/*.whl: $(tail -n 1 "$WORK/pip.log")"
export PYTHONPATH=$ROOT/src${PYTHONPATH:+:$PYTHONPATH}  # this tree's reglab and conf/ (a link)
export PYTHONUNBUFFERED=1 WANDB_MODE=offline HYDRA_FULL_ERROR=1
"$PY" - >"$OUT/versions.json" 2>"$WORK/check.log" <<'PYTHON'
import importlib, importlib.metadata as meta, json, sys
found, missing = {"python": sys.version.split()[0]}, []
for name in ("torch", "hydra", "omegaconf", "submitit", "joblib", "reglab"):  # light but torch
    try:
        module = importlib.import_module(name)
        found[name] = getattr(module, "__version__", None) or module.__file__
    except Exception as error:
        missing.append(f"{name} ({type(error).__name__}: {error})")
for dist in ("torchvision", "pytorch-lightning", "rich", "pandas"):  # not imported: slow
    try:
        found[dist] = meta.version(dist)
    except meta.PackageNotFoundError:
        missing.append(f"{dist} (not installed)")
problem = "cannot import " + "; ".join(missing) if missing else None
if "torch" in found:
    import torch
    if torch.cuda.is_available():
        found["gpu"] = torch.cuda.get_device_name(0)
    else:
        problem = "; ".join(filter(None, [problem, (
            f"no CUDA device: torch {torch.__version__} (CUDA {torch.version.cuda}) says "
            "torch.cuda.is_available() is False")]))
print(json.dumps(found))
print("versions: " + ", ".join(f"{k} {v}" for k, v in found.items()), file=sys.stderr)
sys.exit(problem)
PYTHON
rc=$?
say "$(grep '^versions' "$WORK/check.log")"
if ((rc != 0)); then  # PLUMBING_ONLY=1 goes on without CUDA: checks this script's glue
    [[ ${PLUMBING_ONLY:-0} == 1 ]] && grep -q "no CUDA device" "$WORK/check.log" \
        && ! grep -q "cannot import" "$WORK/check.log" || fail "$(tail -n 1 "$WORK/check.log")"
    say "PLUMBING_ONLY=1: going on without CUDA; the GPU parts will fail"
fi
part setup 0 "$(now)"

# 2. MNIST ---------------------------------------------------------------------------------
if compgen -G ".whl/MNIST/raw/*.gz" >/dev/null; then
    mkdir -p "$WORK/data/MNIST/raw"
    for gz in .whl/MNIST/raw/*.gz; do
        gunzip -c "$gz" >"$WORK/data/MNIST/raw/$(basename "$gz" .gz)" || fail "gunzip $gz"
    done
    export REGLAB_DATA_DIR=$WORK/data
fi
[[ -f "${REGLAB_DATA_DIR:-/nonexistent}/MNIST/raw/train-images-idx3-ubyte" ]] \
    || fail "no MNIST: neither .whl/MNIST/raw/*.gz nor \$REGLAB_DATA_DIR/MNIST/raw"
say "MNIST in $REGLAB_DATA_DIR"

# 3a. tests ----------------------------------------------------------------------------------
start=$(now)
timeout "$(limit 45 280)" "$PY" -m pytest -q -p no:cacheprovider \
    tests/unit/test_models_stack.py tests/e2e/test_bench.py \
    -k "cuda or (test_bench and not smoke and not records)" >"$OUT/tests.log" 2>&1
rc=$?
tail -n 3 "$OUT/tests.log"
part tests "$rc" $(($(now) - start))

# 3b. the benchmark on the GPU ---------------------------------------------------------------
start=$(now)
say "bench.py --device cuda --only members fig9a"
timeout "$(limit 170 100)" "$PY" scripts/bench.py --device cuda --only members fig9a \
    --console file --json-out "$OUT/bench_cuda.json" >"$OUT/bench_cuda.log" 2>&1
rc=$?
grep -v '^{' "$OUT/bench_cuda.log" | tail -n 45
part bench "$rc" $(($(now) - start))

# 3c. a paper-scale slice of Fig. 9a through the CLI -----------------------------------------
start=$(now)
say "Fig. 9a slice: 30 members, trainer.max_steps=$FIG9A_STEPS"
t=$(date +%s.%N)
REGLAB_LOG_DIR=$WORK/logs timeout "$(limit 150 5)" "$PY" -m reglab.train -m \
    experiment=dropout_rate_fixed_n scale=paper launcher=stacked trainer=gpu \
    "trainer.max_steps=$FIG9A_STEPS" >"$OUT/fig9a_slice.log" 2>&1
rc=$?
wall=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
tail -n 4 "$OUT/fig9a_slice.log"
"$PY" scripts/bench_gpu.py "$WORK/logs" "$OUT" "$FIG9A_STEPS" "$wall" "$rc"
part fig9a_slice "$rc" $(($(now) - start))
((${#FAILED[@]} == 0)) || fail "${FAILED[*]}; logs and figures in $OUT"
say "done; figures in $OUT"

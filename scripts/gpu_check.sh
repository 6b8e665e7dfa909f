#!/usr/bin/env bash
# The one prepared GPU check (issue 14, item 4): CUDA parity tests and the GPU benchmarks on one
# NVIDIA GPU, within 8 minutes, writing everything as it goes under $OUT (default ./gpu-out):
#
#   log.txt         everything below, in order, with each step's exit code and seconds
#   pytest.log      (b) python -m pytest tests/ops with SPIKEFLOW_TEST_DEVICE=cuda
#   neurons.json    (c) benchmarks/neurons.py --device cuda --dtype float32 bfloat16
#   train_step.json (d) benchmarks/train_step.py --device cuda --precision fp32 amp
#   epoch.json      (e) benchmarks/epoch.py (one PLIF Fashion-MNIST epoch, spikeflow vs SpikingJelly)
#   ddp.log         (f) torchrun --nproc_per_node=1 of the default job, 1 epoch (NCCL)
#   train_tests.log (g) the CUDA-only training tests (tests/train/test_gpu_path.py -k test_cuda_)
#   gpu_table.md    (h) the Markdown table assembled from the above (scripts/gpu_table.py)
#
# Steps: (a) nvidia-smi + versions; carried wheels (.whl/*.whl: spikingjelly, loguru) are installed
# into /tmp/site without touching the machine's torch; spikeflow is imported from src/ (PYTHONPATH,
# no pip install); then (b)-(h). Each step has its own timeout and the whole script a time budget
# (GPU_CHECK_BUDGET seconds, default 470); a failing or timed-out step does not stop the others.
#
# Environment: OUT (output folder), PYTHON (default python3), GPU_CHECK_DATA (Fashion-MNIST folder,
# default .gpu/fashion-mnist, else /usr/share/datasets/fashion-mnist), GPU_CHECK_DRY=1 (CPU dry run:
# every step with --device cpu and tiny sizes, pytest only collects; proves the script, the JSON
# and the table), GPU_CHECK_BUDGET. Tests read SPIKEFLOW_TEST_DEVICE (cpu, the default: Triton
# kernels under TRITON_INTERPRET=1 on CPU tensors; cuda: the same tests compiled and run on the GPU).
#
# On the device machine (carry .whl and .gpu):  bash scripts/gpu_check.sh   (or make gpu-check)
# Here:                                          GPU_CHECK_DRY=1 bash scripts/gpu_check.sh
set -u -o pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-out}
mkdir -p "$OUT"
LOG=$OUT/log.txt
: >"$LOG"
DRY=${GPU_CHECK_DRY:-0}
BUDGET=${GPU_CHECK_BUDGET:-470}
SCALE=1  # step limits x SCALE: the CPU dry run is slower than the GPU (shared cores, bf16 on CPU)
[ "$DRY" = 1 ] && SCALE=3 && BUDGET=${GPU_CHECK_BUDGET:-1200}
START=$SECONDS
export PYTHONUNBUFFERED=1
if [ -z "${PYTHON:-}" ] && [ "$DRY" = 1 ] && [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; fi
PY=${PYTHON:-python3}
SITE=/tmp/site
[ "$DRY" = 1 ] && SITE=/tmp/site-dry
DATA=${GPU_CHECK_DATA:-$ROOT/.gpu/fashion-mnist}
[ -f "$DATA/train-images-idx3-ubyte.gz" ] || DATA=/usr/share/datasets/fashion-mnist
RUNS=$(mktemp -d /tmp/gpu-check-runs.XXXXXX)
STATUS=()
FAILED=0

say() { echo "$*" | tee -a "$LOG"; }

# step NAME LIMIT_S EXTRA_LOG|- CMD...: run CMD under `timeout`, output to log.txt (and EXTRA_LOG)
step() {
    local name=$1 limit=$(($2 * SCALE)) extra=$3 left rc t0
    shift 3
    left=$((BUDGET - (SECONDS - START) - 10))
    if [ "$left" -lt 15 ]; then
        say "=== [$name] skipped: the time budget (${BUDGET}s) is spent"
        STATUS+=("$name: skipped (budget)"); FAILED=$((FAILED + 1)); return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    say "=== [$name] $(date +%T) limit ${limit}s: $*"
    t0=$SECONDS
    if [ "$extra" = - ]; then
        timeout -k 5 "$limit" "$@" 2>&1 | tee -a "$LOG"
    else
        timeout -k 5 "$limit" "$@" 2>&1 | tee -a "$LOG" "$extra"
    fi
    rc=${PIPESTATUS[0]}
    local note=""
    [ "$rc" = 124 ] || [ "$rc" = 137 ] && note=" (timed out)"
    say "=== [$name] rc=$rc$note in $((SECONDS - t0))s"
    STATUS+=("$name: rc=$rc$note $((SECONDS - t0))s")
    [ "$rc" = 0 ] || FAILED=$((FAILED + 1))
}

say "gpu_check: $(date -u +%FT%TZ) dry=$DRY out=$OUT python=$PY data=$DATA budget=${BUDGET}s"

# (a) the machine and the versions
env_info() {
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv
    else
        echo "nvidia-smi: not found"
    fi
    "$PY" - <<'EOF'
import importlib, importlib.metadata, platform, sys
print("python", platform.python_version(), sys.executable)
for name in ("torch", "triton", "numba", "numpy", "spikingjelly", "loguru", "spikeflow"):
    try:
        mod = importlib.import_module(name)
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = getattr(mod, "__version__", "?")
        print(f"{name:13s} {version:24s} {getattr(mod, '__file__', '')}")
    except Exception as err:  # noqa: BLE001
        print(f"{name:13s} NOT IMPORTABLE: {type(err).__name__}: {err}")
import torch
print("cuda available:", torch.cuda.is_available(), "| torch.version.cuda:", torch.version.cuda)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"device 0: {p.name}, cc {p.major}.{p.minor}, {p.multi_processor_count} SMs, "
          f"{p.total_memory / 2**30:.1f} GiB; NCCL {torch.cuda.nccl.version()}")
EOF
}

install_wheels() {
    if ! ls .whl/*.whl >/dev/null 2>&1; then
        echo "no carried wheels in .whl/ (SpikingJelly comparisons are skipped if it is missing)"
        return 0
    fi
    ls -l .whl/
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" .whl/*.whl
}

export PY SITE
export -f env_info install_wheels
step wheels 60 - bash -c install_wheels
export PYTHONPATH="$SITE:$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
step env 30 - bash -c env_info

# (b) CUDA parity tests (in the dry run: collection only, on CPU)
if [ "$DRY" = 1 ]; then
    step pytest 120 "$OUT/pytest.log" env SPIKEFLOW_TEST_DEVICE=cpu \
        "$PY" -m pytest -q --co -p no:cacheprovider tests/ops
else
    XDIST=""
    "$PY" -c "import xdist" 2>/dev/null && XDIST="-n 8"
    # shellcheck disable=SC2086
    step pytest 75 "$OUT/pytest.log" env SPIKEFLOW_TEST_DEVICE=cuda \
        "$PY" -m pytest -q -rfE --maxfail=20 -p no:cacheprovider $XDIST tests/ops
fi

if [ "$DRY" = 1 ]; then
    DEV=(--mode gpu --device cpu)
    NEURONS=(--steps 4 --batch 2 --neurons 4096 --rep-ms 20)
    STEPS=(--batch 1 --repeats 1 --warmup 1)
    EPOCH=(--device cpu --max-steps 2 --max-eval 64 --mini)
    DDP_DEVICE=cpu
else
    DEV=(--device cuda)
    NEURONS=()
    STEPS=()
    EPOCH=(--device cuda --timeout 120)
    DDP_DEVICE=cuda
fi

# (c) neurons fwd+bwd: LIF, PLIF, T=32, 16 x 65,536, float32 and bfloat16, + traffic floor
step neurons 75 - "$PY" benchmarks/neurons.py "${DEV[@]}" "${NEURONS[@]}" \
    --dtype float32 bfloat16 --json "$OUT/neurons.json"

# (d) training steps: conv net (T=10, B=64) and the PLIF F-MNIST net, float32 and bf16 autocast
step train_step 90 - "$PY" benchmarks/train_step.py "${DEV[@]}" "${STEPS[@]}" \
    --nets conv plif_fmnist --precision fp32 amp --json "$OUT/train_step.json"

# (e) one PLIF Fashion-MNIST epoch: spikeflow train vs the SpikingJelly hand loop
step epoch 170 - "$PY" benchmarks/epoch.py "${EPOCH[@]}" --data-root "$DATA" \
    --out "$RUNS/epoch" --json "$OUT/epoch.json"

# (f) DDP: the default job under torchrun, one process, one epoch (NCCL on CUDA)
step ddp 60 "$OUT/ddp.log" "$PY" -m torch.distributed.run --standalone --nproc_per_node=1 \
    -m spikeflow train --quiet --set train.epochs=1 train.device=$DDP_DEVICE --out "$RUNS/ddp"

# (g) the CUDA-only training tests: device loader and prefetch, no host synchronisation in an
# epoch, CUDA graphs = eager, bf16 + data on the GPU by default, compiled SNN = eager
if [ "$DRY" = 1 ]; then
    step train_tests 60 "$OUT/train_tests.log" "$PY" -m pytest -q --co -p no:cacheprovider \
        tests/train/test_gpu_path.py -k test_cuda_
else
    step train_tests 120 "$OUT/train_tests.log" "$PY" -m pytest -q -rfE -p no:cacheprovider \
        tests/train/test_gpu_path.py -k test_cuda_
fi

# (h) the table
step table 20 - "$PY" scripts/gpu_table.py "$OUT"

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=memory.used,clocks.sm,temperature.gpu \
    --format=csv 2>&1 | tee -a "$LOG"
say "=== summary ($((SECONDS - START))s of ${BUDGET}s):"
for s in "${STATUS[@]}"; do say "  $s"; done
say "outputs: $(cd "$OUT" && ls | tr '\n' ' ')"
[ "$FAILED" = 0 ]

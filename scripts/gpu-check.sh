#!/usr/bin/env bash
# The prepared GPU check, sized for a short loan of one GPU (at most 9 minutes of work once the machine is up).
#
# From the checkout on the development machine, with the device tool:
#   cp -r ../shared/data .data            # .data/ is git-ignored; the device machine cannot see ../shared
#   run  command="bash scripts/gpu-check.sh"  carry=[".data"]  timeout_s=570
# Then copy what comes back: $OUT/bench/*.json and *.png go to results/bench/ (commit them); the logs say
# whether the CUDA equivalence tests passed and how long the real fused ablation took.
#
# Steps, most important first, each with its own time limit so that one slow step cannot use up the loan:
#   1. the equivalence tests on CUDA: fused and population engines, every rung, against the reference loop;
#   2. `repro bench --engines fused,population --estimate`: reference loop and both engines, same run, same GPU;
#   3. `repro ablate --all --seeds 16 --engine fused`, timed: the measured figure for the 60 s target;
#   4. `repro report --check` on those runs: every configuration against the committed CPU study.
set -uo pipefail
OUT="${OUT:-/tmp/gpu-check}"
mkdir -p "$OUT"
export REPRO_DATA_DIR="${REPRO_DATA_DIR:-$PWD/.data}" PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$OUT/gpu.txt"
pip install -q --no-deps -e . 2>&1 | tail -2
step() {  # step NAME SECONDS COMMAND...: run with a limit, log to $OUT/NAME.log, note exit status and time
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  echo "$name: exit ${PIPESTATUS[0]}, $((SECONDS - t0)) s" | tee -a "$OUT/gpu.txt"
}
step test-cuda 150 python3 -m pytest -q -k cuda tests/test_fused.py tests/test_engine.py
step bench 240 python3 -m repro.cli bench --device cuda --engines fused,population --estimate --results-dir "$OUT"
step ablate-fused 150 python3 -m repro.cli ablate --all --seeds 16 --engine fused --device cuda --results-dir "$OUT/ablate"
step check 60 python3 -m repro.cli report --check --no-figures --results-dir "$OUT/ablate"

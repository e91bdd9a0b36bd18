#!/usr/bin/env bash
# The prepared GPU check, sized for one command of at most 10 minutes on an H100 (its steps' limits add up to
# 9 minutes; each usually ends well before its limit).
#
# From the checkout on the development machine, with the device tool:
#   cp -r ../shared/data .data            # .data/ is git-ignored; the device machine cannot see ../shared
#   run  command="bash scripts/gpu-check.sh"  carry=[".data"]  timeout_s=600
# The script installs the checkout (`pip install --no-deps -e .`: the machine's torch and Triton are used).
# Then copy what comes back: $OUT/bench/*.json and *.png go to results/bench/ (commit them); gpu.txt has each
# step's exit status and time, and the logs say whether the CUDA tests passed, what the real binary uses
# (kernel-check.json) and how long the real fused ablations took.
#
# Steps, most important first, each with its own time limit so that one slow step cannot use up the loan:
#   1. kernel-check: the binary a launch runs (the JIT's options and 16-byte pointer alignment): registers,
#      stack and spilled bytes, shared memory, barriers; and each (architecture, optimizer) path alone;
#   2. test-cuda: every fused test on CUDA (the fused tests are parametrized by device: mixed configurations
#      in one launch, member independence, padding, grouped launches, state, SDLM and fc40 against the reference
#      loop, and a launch of more members than the GPU has SMs, so a second wave), and every engine's
#      equivalence tests on CUDA;
#   3. bench: `repro bench --engines fused,population --estimate`: reference loop and both engines, same run,
#      same GPU; the fused rows give the kernel's time by CUDA events beside the wall time;
#   4. ablate: `repro ablate --all --seeds 16 --engine fused` (224 members, more than the 132 SMs), then the
#      faithful ladder with its fc40 extra (SDLM in both nets), each timed: the measured figures for the 60 s target;
#   5. check: `repro report --check` on those runs: every configuration against the committed CPU study.
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
step kernel-check 45 python3 scripts/kernel_check.py --arch 90 --paths --json "$OUT/kernel-check.json"
step test-cuda 150 python3 -m pytest -q -p no:cacheprovider -m "slow or not slow" -k cuda tests/test_fused.py tests/test_engine.py
step bench 150 python3 -m repro.cli bench --device cuda --engines fused,population --estimate --results-dir "$OUT"
FAITHFUL_RUNGS=$(python3 -c "from repro.jobs.ladder import DEFAULT_LADDER_DIR as d, load_rungs, extra_rungs
print(','.join(r.name for r in load_rungs(d / 'faithful') + extra_rungs(d / 'faithful')))")
step ablate 150 bash -c "time python3 -m repro.cli ablate --all --seeds 16 --engine fused --device cuda \
  --results-dir '$OUT/ablate' && time python3 -m repro.cli ablate --dataset usps --seeds 16 --engine fused --device cuda \
  --ladder-dir ablations/faithful --rungs '$FAITHFUL_RUNGS' --results-dir '$OUT/ablate'"
step check 45 python3 -m repro.cli report --check --no-figures --results-dir "$OUT/ablate"

#!/usr/bin/env bash
# The GPU measurement run behind bench/README.md's GPU table: random models of the published
# shapes (no download), audiocraft's decode and the static decoder side by side in one run.
#
#   bash bench/gpu_run.sh [OUTDIR]        # default bench/results/gpu
#
# 1. stereo-chord-large, 30 s song: greedy check (500 steps), then a remix with each decoder;
# 2. stereo-chord, 30 s and 3 min songs: the same (the default model; the 3-minute remix).
# The static decoder runs first so that a run cut short still has its figures. Each part's log
# is written as it goes; the GPU, driver and the last lines of each log are printed at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/gpu}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee "$out/gpu.txt"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu.txt"
common=(--random-real-size --decoder static --decoder audiocraft --check-greedy 500 --quiet)
"$PY" bench/gpu_smoke.py "${common[@]}" --version stereo-chord-large --duration 30 \
    > "$out/stereo-chord-large.log" 2>&1
echo "stereo-chord-large: exit $?"
"$PY" bench/gpu_smoke.py "${common[@]}" --version stereo-chord --duration 30 180 \
    > "$out/stereo-chord.log" 2>&1
echo "stereo-chord: exit $?"
for log in "$out"/stereo-chord-large.log "$out"/stereo-chord.log; do
    echo "== $log"
    grep -E "^(greedy check|Summary|measured memory|version|stereo|static/)" "$log" || tail -20 "$log"
done

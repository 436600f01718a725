#!/usr/bin/env bash
# Issue 10: CUDA numbers on the lent accelerator machine (see tools/gpu_check.py).
# Run from the repo root there: bash tools/gpu_check.sh   (writes $OUT/gpu_check.json)
# Here (no GPU): bash tools/gpu_check.sh --quick           (a CPU dry run of the script)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || command -v python3 )}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "nvidia-smi: not available"
exec timeout 300 "$PY" tools/gpu_check.py --out "${OUT:-out}" "$@"

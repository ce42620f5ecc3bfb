"""Benchmarks: each module prints figures and ratios (`python -m bench.<name>`)."""

# The model the request benches run when not told otherwise: the one their figures in
# docs/performance.md, docs/capacity.md and docs/api.md measured, so a rerun compares like
# with like.
BENCH_MODEL = "digits-rbvae"

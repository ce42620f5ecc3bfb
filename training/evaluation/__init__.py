"""Evaluation of trained models: the paper's Table-1 probes, and transfer/sample fidelity
measured by an evaluation-only oracle network. `python -m training evaluate --checkpoint PATH`."""

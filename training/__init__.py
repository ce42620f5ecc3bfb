"""Training: prepared data sources (`training.data`) and the command line (`python -m training`)."""

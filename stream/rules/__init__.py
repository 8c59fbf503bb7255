"""Threshold rules: the file (`model`) and the edge-triggered evaluator (`evaluator`)."""

"""Stages 7-8 and the run: options, per-target work, parallel workers, the Report."""

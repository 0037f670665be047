"""Stages 4-5, emit and rewrite: FGI code for a surrogate, call sites edited in one place."""

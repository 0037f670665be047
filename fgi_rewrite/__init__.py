"""fgi-rewrite: turn surrogate-gradient autograd.Functions into forward gradient injection."""

__version__ = "0.1.0"

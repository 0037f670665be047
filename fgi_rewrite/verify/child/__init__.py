"""The verification subprocess: the only code that imports torch (run as scripts by path)."""

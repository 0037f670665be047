"""Stage 6, verify: prove each rewrite in a subprocess before anything is written."""

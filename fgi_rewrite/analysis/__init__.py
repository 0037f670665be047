"""Stage 3, analyze: prove a Function is an elementwise surrogate and extract f and g."""

"""Stage 1-2, discover and index: which files, what they say, what names resolve to."""

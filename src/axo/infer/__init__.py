"""After training: generation (and, next, merging, evaluation and serving)."""

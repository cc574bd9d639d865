"""Training: trainer construction, callbacks (metrics, provenance, progress) and run outputs."""

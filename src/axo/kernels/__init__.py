"""Speed kernels for axo's training path (each switchable from the config; see docs/TRAINING.md)."""

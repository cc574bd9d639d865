"""Loading base models and tokenizers, quantization, adapters and kernel choices."""

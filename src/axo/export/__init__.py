"""Exporting a trained run for other runtimes: GGUF for llama.cpp and Ollama (`axo export`), through llama.cpp's own
converter and quantizer."""

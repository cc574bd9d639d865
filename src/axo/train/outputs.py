"""What a run leaves in `output_dir` besides the weights: the resolved config, a model card, provenance."""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from axo import __version__
from axo.config.redact import redact
from axo.config.schema import AxoConfig

LIBRARIES = ("torch", "transformers", "peft", "accelerate", "datasets", "tokenizers", "safetensors", "bitsandbytes",
             "liger-kernel", "deepspeed")


def _versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _git_commit(directory: Path) -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _hardware() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpu_count": __import__("os").cpu_count()}
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def resolved_config_dict(cfg: AxoConfig) -> dict[str, Any]:
    return redact(cfg.model_dump(mode="json", by_alias=True, exclude_none=True))


def write_config(cfg: AxoConfig, output_dir: Path) -> None:
    (output_dir / "axo_config.yml").write_text(yaml.safe_dump(resolved_config_dict(cfg), sort_keys=False))


def write_provenance(output_dir: Path, payload: dict[str, Any]) -> None:
    record = {"axo_version": __version__, "libraries": _versions(), "hardware": _hardware(),
              "git_commit": _git_commit(Path.cwd()), **payload}
    (output_dir / "provenance.json").write_text(json.dumps(record, indent=2, default=str))


def write_model_card(cfg: AxoConfig, output_dir: Path, summary: dict[str, Any]) -> None:
    config_text = yaml.safe_dump(resolved_config_dict(cfg), sort_keys=False)
    kind = f"{cfg.adapter.upper()} adapter" if cfg.adapter else "full fine-tune"
    lines = [
        "---", f"base_model: {cfg.base_model}", "library_name: " + ("peft" if cfg.adapter else "transformers"),
        "tags: [axo, fine-tuned]", "---", "", f"# {Path(cfg.output_dir).name}", "",
        f"A {kind} of `{cfg.base_model}`, trained with axo {__version__}.", "",
        f"- steps: {summary.get('steps')}", f"- final train loss: {summary.get('train_loss')}",
        f"- final eval loss: {summary.get('eval_loss')}", f"- trained tokens: {summary.get('trained_tokens')}", "",
        "## Load it", "",
    ]
    if cfg.adapter:
        lines += ["```python", "from peft import AutoPeftModelForCausalLM",
                  f"model = AutoPeftModelForCausalLM.from_pretrained({str(output_dir)!r})", "```"]
    else:
        lines += ["```python", "from transformers import AutoModelForCausalLM",
                  f"model = AutoModelForCausalLM.from_pretrained({str(output_dir)!r})", "```"]
    lines += ["", "## Training config (secrets redacted)", "", "```yaml", config_text.rstrip(), "```", ""]
    (output_dir / "README.md").write_text("\n".join(lines))


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

"""What a run leaves in `output_dir` besides the weights: the resolved config, a model card, provenance."""

from __future__ import annotations

import json
import platform
import shlex
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
    (output_dir / "provenance.json").write_text(json.dumps(redact(record), indent=2, default=str))


def _call(function: str, source: str, options: dict[str, Any]) -> str:
    """`function('source', key=value, ...)` as Python source, leaving out options that are off."""
    return f"{function}({', '.join([repr(source)] + [f'{k}={v!r}' for k, v in options.items() if v])})"


def _load_code(cfg: AxoConfig, output_dir: Path, base_model_path: str | None, embeddings_resized: bool) -> list[str]:
    """Python that loads the trained model and its tokenizer from any working directory on this machine.

    The run directory and a local base (`base_model_path`, as the run resolved it) are written as absolute
    paths; a hub base keeps its id and revision. An adapter is attached to its base with peft's
    `PeftModel.from_pretrained`, the base loaded as training loaded it: a GGUF file through its folder and
    `gguf_file=` (transformers cannot open the file's own path), a classifier with its `num_labels`, the
    embeddings grown to the tokenizer when the run added tokens (the adapter holds their rows).
    """
    from axo.models.loader import model_source_kwargs

    run = str(output_dir.resolve())
    model_class = ("AutoModelForSequenceClassification" if cfg.num_labels is not None
                   else cfg.model_type or "AutoModelForCausalLM")
    head = [f"from transformers import AutoTokenizer, {model_class}", "",
            f"tokenizer = AutoTokenizer.from_pretrained({run!r})"]
    if not cfg.adapter:
        return head + ["model = " + _call(f"{model_class}.from_pretrained", run,
                                          {"trust_remote_code": cfg.trust_remote_code})]
    source, options = model_source_kwargs(cfg.model_copy(update={"base_model": base_model_path or cfg.base_model}))
    lines = ["from peft import PeftModel", *head,
             "base = " + _call(f"{model_class}.from_pretrained", source, {**options, "num_labels": cfg.num_labels})]
    if embeddings_resized:
        lines.append("base.resize_token_embeddings(len(tokenizer))  # the run added tokens")
    return lines + [f"model = PeftModel.from_pretrained(base, {run!r})"]


def write_model_card(cfg: AxoConfig, output_dir: Path, summary: dict[str, Any]) -> None:
    """README.md in the run directory: what was trained, the final numbers, code that loads it (`_load_code`,
    from the summary's `base_model_path` and `embeddings_resized`) and the resolved config."""
    config_text = yaml.safe_dump(resolved_config_dict(cfg), sort_keys=False)
    kind = f"{cfg.adapter.upper()} adapter" if cfg.adapter else "full fine-tune"
    code = _load_code(cfg, output_dir, summary.get("base_model_path"), bool(summary.get("embeddings_resized")))
    lines = [
        "---", f"base_model: {cfg.base_model}", "library_name: " + ("peft" if cfg.adapter else "transformers"),
        "tags: [axo, fine-tuned]", "---", "", f"# {Path(cfg.output_dir).name}", "",
        f"A {kind} of `{cfg.base_model}`, trained with axo {__version__}.", "",
        f"- method: {_method(summary)}", f"- steps: {summary.get('steps')}", f"- final train loss: {summary.get('train_loss')}",
        f"- final eval loss: {summary.get('eval_loss')}", f"- trained tokens: {summary.get('trained_tokens')}",
        f"- engine: {summary.get('engine')}", "",
        "## Load it", "", "```python", *code, "```", "",
        f"or generate with axo: `axo inference {shlex.quote(str(output_dir.resolve()))}`.", "",
        "## Training config (secrets redacted)", "", "```yaml", config_text.rstrip(), "```", "",
    ]
    (output_dir / "README.md").write_text("\n".join(lines))


_METHOD_SETTINGS = ("beta", "loss_type", "loss_weights", "label_smoothing", "simpo_gamma", "cpo_alpha",
                    "desirable_weight", "undesirable_weight", "center_rewards_coefficient")


def _method(summary: dict[str, Any]) -> str:
    """The training method and its settings, as the model card names them: "DPO (beta 0.1)"."""
    settings = ", ".join(f"{key} {summary[key]}" for key in _METHOD_SETTINGS if summary.get(key) is not None)
    method = summary.get("method", "SFT")
    return f"{method} ({settings})" if settings else method


RUN_STATE = "axo_run.json"  # whether the folder holds a finished run; written first and last, atomically


def mark_run(output_dir: Path, state: str, **fields: Any) -> None:
    """Record the run folder's state in RUN_STATE: "training" when a run starts writing into it (so a folder
    whose run failed, or that holds an earlier run's weights while a new one trains, is never taken for a
    trained result) and "finished" after the final save. Written through a temporary file and a rename: a
    reader sees the old state or the new one, never half a file."""
    record = {"state": state, "axo_version": __version__, **fields}
    temporary = output_dir / f".{RUN_STATE}.partial"
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    temporary.replace(output_dir / RUN_STATE)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

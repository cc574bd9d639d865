"""The hand-off to vLLM (`axo serve --engine vllm`): the `vllm serve` command that serves a run's base
model and adapters under the names axo's own server uses, with the run's chat template.

vLLM's defaults would refuse or misserve a typical run without a word of ours: adapters above rank 16 are
refused (`--max-lora-rank` defaults to 16), only one adapter can be in a batch (`--max-loras` 1), the base
is named after its path rather than `base`, and the chat template is the base model's, not the one the run
trained with. Adapters that carry whole trained modules (`modules_to_save`, e.g. resized embeddings) are not
loaded by vLLM's LoRA support at all: those are refused here with the way out (merge first).
"""

from __future__ import annotations

import json
from pathlib import Path

from axo.config.problems import ConfigError, Kind, Problem, Severity

# The --max-lora-rank values vLLM accepts (LoRAConfig's `possible_max_ranks`, vLLM 0.6 onwards)
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def _error(message: str, hint: str) -> ConfigError:
    return ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, "--engine", message, hint)])


def adapter_rank(adapter_dir: Path) -> int:
    """The largest LoRA rank in an adapter folder (its `r` and every `rank_pattern` value).

    Raises:
        ConfigError: the adapter is not LoRA, or it trains whole modules (`modules_to_save`): vLLM's LoRA support
            loads neither.
    """
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    kind = config.get("peft_type", "LORA")
    if kind != "LORA":
        from axo.infer.merge import prompt_learning

        merge = ("Serve it with `--engine hf` (its virtual tokens cannot be merged into the base)."
                 if prompt_learning(config) else "Merge it into the base first (`axo merge` on its run) and serve "
                 "the merged folder with vLLM, or serve it with `--engine hf`.")
        raise _error(f"the adapter in {adapter_dir} is {kind}; vLLM serves LoRA adapters only.", merge)
    if config.get("modules_to_save"):
        raise _error(f"the adapter in {adapter_dir} also trains whole modules ({', '.join(config['modules_to_save'])}),"
                     " which vLLM's LoRA support does not load.",
                     f"Merge it first (`axo merge-lora {adapter_dir}`) and serve the merged folder with vLLM.")
    return max([int(config["r"]), *map(int, (config.get("rank_pattern") or {}).values())])


def vllm_command(base_model: str, adapters: dict[str, Path], host: str, port: int, *, base_name: str = "base",
                 chat_template: Path | None = None) -> list[str]:
    """The `vllm serve` command for `base_model` (served as `base_name`) and `adapters` (LoRA modules by
    name), with `--max-lora-rank` and `--max-loras` large enough for them and the run's chat template. The
    API key is not on it: vLLM reads `VLLM_API_KEY`, which the caller sets (argv is visible to every user)."""
    command = ["vllm", "serve", base_model, "--host", host, "--port", str(port), "--served-model-name", base_name]
    if adapters:
        rank = max(adapter_rank(path) for path in adapters.values())
        allowed = [r for r in VLLM_LORA_RANKS if r >= rank]
        if not allowed:
            raise _error(f"an adapter has rank {rank}; vLLM serves LoRA ranks up to {VLLM_LORA_RANKS[-1]}.",
                         "Merge it first (`axo merge-lora`) and serve the merged folder.")
        command += ["--enable-lora", "--max-lora-rank", str(allowed[0]), "--max-loras", str(len(adapters)),
                    "--lora-modules", *[f"{name}={path}" for name, path in adapters.items()]]
    if chat_template is not None and chat_template.is_file():
        command += ["--chat-template", str(chat_template)]
    return command

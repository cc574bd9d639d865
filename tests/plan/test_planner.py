"""The planner's arithmetic against the real thing on tiny models: parameter and optimizer bytes exactly, the
activations autograd saves within the stated bound, the recompute choice for a budget, and `axo plan`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from train_helpers import tiny_lora_config
from typer.testing import CliRunner

from axo.cli.main import app
from axo.config.hardware import CPU_ONLY
from axo.config.load import load_config
from axo.models.setup import model_for_training
from axo.models.tokenizer import load_tokenizer
from axo.plan import configured_recompute, plan_run
from axo.plan.choose import resolve_setup
from axo.plan.gpus import GPUS, find_gpu
from axo.plan.memory import (
    PIECE_BYTES,
    Recompute,
    activation_bytes,
    estimate,
    host_bytes,
    optimizer_bytes,
    pinned_bytes,
)
from axo.plan.shapes import model_shape

runner = CliRunner()


def _config(tmp_path: Path, model_dir: Path, extra: str):
    text = tiny_lora_config(tmp_path, model_dir, "run", extra)
    if "adapter: none" in extra:
        text = text.replace("adapter: lora\n", "").replace("adapter: none\n", "")
    (tmp_path / "c.yml").write_text(text)
    return load_config(tmp_path / "c.yml").require()


@pytest.fixture(params=["lora", "full"])
def real_run(request, tmp_path: Path, tiny_llama_dir: Path):
    extra = "bf16: true\nlora_dropout: 0.0\n" + ("adapter: none\nlearning_rate: 1e-5\n" if request.param == "full" else "")
    cfg = _config(tmp_path, tiny_llama_dir, extra)
    model, _ = model_for_training(cfg, load_tokenizer(cfg), CPU_ONLY, say=lambda _: None)
    return cfg, model


def test_parameter_bytes_are_exactly_the_real_models(real_run):
    cfg, model = real_run
    shape = model_shape(cfg)
    trainable = [p for p in model.parameters() if p.requires_grad]
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert shape.trainable.count == sum(p.numel() for p in trainable)
    assert shape.trainable.bytes == sum(p.numel() * p.element_size() for p in trainable)
    assert shape.trainable_tensors == len(trainable)
    assert shape.frozen_linear.bytes + shape.frozen_other.bytes == sum(p.numel() * p.element_size() for p in frozen)
    assert shape.total_params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("optimizer", ["adamw_torch", "adamw_torch_fused", "sgd"])
def test_optimizer_bytes_are_exactly_what_the_optimizer_keeps(real_run, optimizer, tmp_path: Path):
    from transformers import Trainer, TrainingArguments

    cfg, model = real_run
    arguments = TrainingArguments(output_dir=str(tmp_path / "o"), optim=optimizer, report_to=[])
    optimizer_class, options = Trainer.get_optimizer_cls_and_kwargs(arguments, model)
    if optimizer == "sgd":
        options["momentum"] = 0.9  # transformers' sgd has none; with momentum torch keeps one buffer per weight
    trainable = [p for p in model.parameters() if p.requires_grad]
    step = optimizer_class(trainable, **options)
    for parameter in trainable:
        parameter.grad = torch.ones_like(parameter)
    step.step()
    kept = sum(t.numel() * t.element_size() for state in step.state.values() for t in state.values()
               if torch.is_tensor(t))
    assert kept == optimizer_bytes(model_shape(cfg), optimizer)


class SavedTensors:
    """Bytes autograd saves for backward inside the decoder layers and the final norm (each storage once;
    weights, which are not activations, left out)."""

    def __init__(self, model):
        self.weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.sizes: dict[int, int] = {}
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)
        decoder = model.get_base_model().model if hasattr(model, "get_base_model") else model.model
        self.handles = []
        for module in [*decoder.layers, decoder.norm]:
            self.handles.append(module.register_forward_pre_hook(lambda *a: self.hooks.__enter__()))
            self.handles.append(module.register_forward_hook(lambda *a: self.hooks.__exit__(None, None, None)))

    def pack(self, tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self.weights:
            self.sizes[storage.data_ptr()] = storage.nbytes()
        return tensor

    @property
    def total(self) -> int:
        return sum(self.sizes.values())


def _one_step(real_run, row_tokens: int):
    """(shape, setup, saved tensors, first_norm) of one training step on rows of `row_tokens` tokens.
    `first_norm`: with an adapter the first layer's input is the frozen embedding's output, so its first norm
    saves nothing the planner counts."""
    cfg, model = real_run
    shape = model_shape(cfg)
    saved = SavedTensors(model)
    ids = torch.randint(5, 200, (cfg.micro_batch_size, row_tokens))
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    setup = replace(resolve_setup(cfg, shape, has_cuda=False), tokens=ids.numel())
    return shape, setup, saved, (4 * shape.hidden * ids.numel() if cfg.adapter else 0)


def test_activation_bytes_within_five_percent_of_what_autograd_saves(real_run):
    shape, setup, saved, first_norm = _one_step(real_run, 64)
    predicted = activation_bytes(shape, setup, Recompute(shape.layers))
    assert abs(saved.total - (predicted - first_norm)) <= 0.05 * saved.total


def test_host_bytes_are_what_offloading_would_pin(real_run):
    """Offloaded with every layer recomputed (reentrant checkpointing, as `axo train` offloads), the forward pass
    saves each layer's input, the final norm's and the loss's tensors: each waits in pinned host memory, rounded
    as torch's caching host allocator rounds it (`pinned_bytes`). The prediction is within 1 % of those sizes
    (2 rows of 80 tokens: a layer input of 160 × 64 bf16 values is 20 KiB, pinned as 32 KiB)."""
    cfg, model = real_run
    shape = model_shape(cfg)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    model.enable_input_require_grads()
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    sizes: dict[int, int] = {}

    def pack(tensor):
        if tensor.untyped_storage().data_ptr() not in weights:
            sizes[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    ids = torch.randint(5, 200, (cfg.micro_batch_size, 80))
    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    setup = replace(resolve_setup(cfg, shape, has_cuda=False), tokens=ids.numel())
    pinned = sum(pinned_bytes(size) for size in sizes.values())
    assert abs(host_bytes(shape, setup, Recompute(0, offload=True)) - pinned) <= 0.01 * pinned
    assert host_bytes(shape, setup, Recompute(0)) == 0  # nothing offloaded, nothing pinned


def test_offloaded_tensors_are_pinned_in_pieces_that_waste_little():
    """A 2.5 GiB layer input (327,680 tokens × 4096 bf16) pins exactly its size, not the 4 GiB a whole copy takes
    in torch's power-of-two blocks; a tensor never wastes a whole piece."""
    assert pinned_bytes(327_680 * 4096 * 2) == 327_680 * 4096 * 2
    assert pinned_bytes(PIECE_BYTES + 3) == PIECE_BYTES + 4
    assert all(0 <= pinned_bytes(n) - n < PIECE_BYTES for n in (1, 5 << 20, 3 * PIECE_BYTES - 1, 10**10 + 7))


def test_recompute_choice_follows_the_budget(tmp_path: Path, tiny_llama_dir: Path):
    cfg = _config(tmp_path, tiny_llama_dir, "bf16: true\ngradient_checkpointing: true\nsequence_len: 512\n")
    shape = model_shape(cfg)
    setup = resolve_setup(cfg, shape, has_cuda=True)
    peaks = [estimate(shape, setup, Recompute(kept)).peak for kept in range(1, shape.layers + 1)]
    assert peaks == sorted(peaks) and peaks[0] < peaks[-1]
    assert configured_recompute(cfg, shape, peaks[-1], setup)[0] == Recompute(shape.layers)
    assert configured_recompute(cfg, shape, peaks[-1] - 1, setup)[0] == Recompute(shape.layers - 1)
    offloaded, why = configured_recompute(cfg, shape, peaks[0] - 1, setup)
    assert offloaded == Recompute(0, offload=True) and "host memory" in why
    pinned = cfg.model_copy(update={"gradient_checkpointing_keep_layers": 0})
    assert configured_recompute(pinned, shape, peaks[-1], setup)[0] == Recompute(0)
    off = cfg.model_copy(update={"gradient_checkpointing": False})
    assert configured_recompute(off, shape, 0, setup)[0] == Recompute(shape.layers)


def test_plan_ranks_fitting_options_by_speed(tmp_path: Path, tiny_llama_dir: Path):
    cfg = _config(tmp_path, tiny_llama_dir, "bf16: true\ngradient_checkpointing: true\n")
    peaks = sorted(o.memory.peak for o in plan_run(cfg, GPUS["h200"]).options)
    plan = plan_run(cfg, GPUS["h200"], max_memory_gib=peaks[len(peaks) // 2] / 0.95 / 2**30)
    fitting = [o for o in plan.options if o.fits]
    assert 0 < len(fitting) < len(plan.options) and all(o.memory.peak <= plan.budget for o in fitting)
    assert [o.tokens_per_s for o in fitting] == sorted((o.tokens_per_s for o in fitting), reverse=True)
    assert plan.options[: len(fitting)] == fitting


def test_axo_plan_reads_the_data_plan_and_prices_the_run(tmp_path: Path, tiny_llama_dir: Path, workspace):
    _config(tmp_path, tiny_llama_dir, "bf16: true\ngradient_checkpointing: true\n")
    result = runner.invoke(app, ["plan", str(tmp_path / "c.yml"), "--gpu", "RTX 4090", "--price", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["gpu"] == "rtx4090" and plan["steps"] == 4 and plan["cost"] > 0
    assert plan["chosen"]["kept_layers"] == 2 and plan["chosen"]["fits"]
    assert any("estimate" in note for note in plan["notes"])


def test_axo_plan_names_the_known_gpus_for_an_unknown_one(tmp_path: Path, tiny_llama_dir: Path, workspace):
    _config(tmp_path, tiny_llama_dir, "")
    result = runner.invoke(app, ["plan", str(tmp_path / "c.yml"), "--gpu", "tpu-v5"])
    assert result.exit_code == 1
    assert "'tpu-v5' is not a GPU axo knows" in result.output and "rtx4090" in result.output


def test_gpu_names_as_users_write_them():
    assert find_gpu("NVIDIA H100").name == "h100"
    assert find_gpu("rtx_4090").name == find_gpu("4090").name == "rtx4090"
    assert find_gpu("A100").name == "a100-80gb"
    assert find_gpu("nonsense") is None


@pytest.mark.parametrize(("extra", "message"), [
    ("max_memory:\n  0: 20GiB\ngpu_memory_limit: 20\n", "both set the GPU memory cap"),
    ("gpu_memory_limit: lots\n", "is not a size"),
])
def test_memory_cap_mistakes_are_config_errors(tmp_path: Path, tiny_llama_dir: Path, extra: str, message: str):
    text = tiny_lora_config(tmp_path, tiny_llama_dir, "run", extra)
    (tmp_path / "c.yml").write_text(text)
    loaded = load_config(tmp_path / "c.yml")
    assert any(message in p.message for p in loaded.errors)


def test_an_out_of_memory_error_names_the_planners_smaller_options(tmp_path: Path, tiny_llama_dir: Path):
    from axo.train.run import _out_of_memory

    cfg = _config(tmp_path, tiny_llama_dir, "bf16: true\nsequence_len: 512\n")  # no recompute
    plan = plan_run(cfg, GPUS["h200"])
    problem = _out_of_memory(cfg, RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), plan).problems[0]
    assert "ran out of memory" in problem.message
    assert "recompute + liger kernels (predicted" in problem.hint and "`axo plan CONFIG` lists every option" in problem.hint
    starved = replace(plan, budget=1)  # nothing the planner knows fits: it says so, offers none
    hint = _out_of_memory(cfg, RuntimeError("CUDA out of memory"), starved).problems[0].hint
    assert "no choice the planner knows is predicted within 0.0 GiB" in hint and "(predicted" not in hint

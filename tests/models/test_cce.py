"""Cut Cross Entropy wiring (models/cce.py) on CPU: for every architecture it covers, the patched forward gives
the model's own loss and gradients when the kernel is replaced by a reference linear cross-entropy (the real
Triton kernel runs in tests/gpu/test_cce_gpu.py); a training run reproduces the plain run's losses; missing
package / GPU, unsupported models and conflicting keys are clear errors."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
import torch.nn.functional as F
from config_helpers import BASE, find, load
from train_helpers import tiny_lora_config

from axo.config.problems import ConfigError, Kind, Severity
from axo.models import cce

# Small enough to build every architecture in well under a second; logit transforms set to values that matter.
_SIZES = {"vocab_size": 97, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
          "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "max_position_embeddings": 64,
          "pad_token_id": 0}
_TRANSFORMS = {"gemma2": {"final_logit_softcapping": 2.0}, "gemma3_text": {"final_logit_softcapping": 2.0},
               "cohere": {"logit_scale": 0.5}, "granite": {"logits_scaling": 4.0}}


def reference_kernel(calls: list | None = None):
    """`linear_cross_entropy` in plain torch: the logits materialised, then transformers' shift + CE."""
    def kernel(e, c, targets, *, shift, softcap, reduction, ignore_index=-100):
        if calls is not None:
            calls.append(reduction)
        logits = (e @ c.T).float()
        if softcap is not None:
            logits = torch.tanh(logits / softcap) * softcap
        if shift:
            logits, targets = logits[..., :-1, :], targets[..., 1:]
        return F.cross_entropy(logits.flatten(0, -2), targets.flatten(), ignore_index=ignore_index, reduction=reduction)
    return kernel


def _model(model_type: str):
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.for_model(model_type, **_SIZES, **_TRANSFORMS.get(model_type, {}))
    return AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()


def _batch():
    ids = torch.randint(1, 97, (2, 12), generator=torch.Generator().manual_seed(1))
    labels = ids.clone()
    labels[0, :5] = -100  # a masked prompt
    return ids, labels


def _loss_and_grad(model, ids, labels, **kwargs):
    model.zero_grad()
    loss = model(input_ids=ids, labels=labels, **kwargs).loss
    loss.backward()
    return loss.item(), model.get_output_embeddings().weight.grad.clone()


@pytest.mark.parametrize("model_type", sorted(cce.ARCHITECTURES))
def test_cce_forward_gives_the_models_own_loss_and_gradients(model_type):
    ids, labels = _batch()
    model = _model(model_type)
    want_loss, want_grad = _loss_and_grad(model, ids, labels)
    calls: list = []
    assert cce.apply_cce(load(BASE + "cut_cross_entropy: true\n").require(), model, reference_kernel(calls))
    got_loss, got_grad = _loss_and_grad(model, ids, labels)
    assert calls == ["mean"]
    assert got_loss == pytest.approx(want_loss, rel=1e-5)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-4, atol=1e-6)
    # Gradient accumulation: the Trainer passes the label count of the whole step.
    items = torch.tensor(20)
    want = _loss_and_grad(_model(model_type), ids, labels, num_items_in_batch=items)[0]
    assert _loss_and_grad(model, ids, labels, num_items_in_batch=items)[0] == pytest.approx(want, rel=1e-5)
    assert calls[-1] == "sum"


def test_without_labels_the_original_forward_runs():
    ids, _ = _batch()
    model = _model("llama")
    want = model(input_ids=ids).logits
    cce.apply_cce(load(BASE + "cut_cross_entropy: true\n").require(), model, reference_kernel())
    torch.testing.assert_close(model(input_ids=ids).logits, want)
    assert model(ids, labels=ids).logits is None  # positional arguments bind as the original's


def test_off_or_unset_changes_nothing():
    model = _model("llama")
    assert not cce.apply_cce(load(BASE).require(), model)
    assert not cce.apply_cce(load(BASE + "cut_cross_entropy: false\n").require(), model)
    assert "forward" not in vars(model)


def test_unsupported_models_are_refused():
    from transformers import AutoConfig, AutoModelForSequenceClassification

    cfg = load(BASE + "cut_cross_entropy: true\n").require()
    model = _model("llama")
    model.config.model_type = "falcon"
    with pytest.raises(ConfigError, match="not wired for 'falcon'"):
        cce.apply_cce(cfg, model, reference_kernel())
    classifier = AutoModelForSequenceClassification.from_config(AutoConfig.for_model("llama", **_SIZES, num_labels=2))
    with pytest.raises(ConfigError, match="LlamaForSequenceClassification"):
        cce.apply_cce(cfg, classifier, reference_kernel())


def test_missing_package_or_gpu_is_a_clear_error(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "cut_cross_entropy" else real_find_spec(name, *a))
    with pytest.raises(ConfigError) as missing:
        cce.load_kernel()
    assert "pip install 'axo[cce]'" in missing.value.problems[0].hint
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "cut_cross_entropy" else real_find_spec(name, *a))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError) as no_gpu:
        cce.load_kernel()
    assert no_gpu.value.problems[0].kind == Kind.HARDWARE
    assert "--cut_cross_entropy false" in no_gpu.value.problems[0].hint


def test_conflicts_and_machine_warning():
    both = load(BASE + "cut_cross_entropy: true\nliger_fused_linear_cross_entropy: true\nliger_rms_norm: true\n")
    assert "only one cross-entropy kernel" in find(both, "cut_cross_entropy", Kind.CONFLICT).message
    assert load(BASE + "cut_cross_entropy: true\nliger_rms_norm: true\n").config is not None
    # Axolotl's one-loss-kernel check reads the raw keys, so the CCE plugin's default + a Liger loss passes
    # there: Liger's loss runs, with a warning.
    plugin = load(BASE + "plugins:\n  - axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin\n"
                  "liger_fused_linear_cross_entropy: true\n")
    assert plugin.config is not None and plugin.config.cut_cross_entropy
    assert "Liger's runs" in find(plugin, "cut_cross_entropy", Kind.CONFLICT, Severity.WARNING).message
    assert not cce.apply_cce(plugin.config, _model("llama"), reference_kernel())
    fsdp = load(BASE + "cut_cross_entropy: true\nfsdp_version: 2\nfsdp_config:\n  reshard_after_forward: true\n")
    assert "FSDP" in find(fsdp, "cut_cross_entropy", Kind.CONFLICT).message
    # The plugin's default under FSDP (8 of Axolotl's examples, which Axolotl accepts): the plain loss runs,
    # with a warning saying what is lost.
    plugin_fsdp = load(BASE + "plugins:\n  - axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin\n"
                       "fsdp_version: 2\nfsdp_config:\n  reshard_after_forward: true\n")
    assert plugin_fsdp.config is not None
    assert "plain loss runs" in find(plugin_fsdp, "cut_cross_entropy", Kind.CONFLICT, Severity.WARNING).message
    assert not cce.apply_cce(plugin_fsdp.config, _model("llama"), reference_kernel())
    on_cpu = load(BASE + "cut_cross_entropy: true\n")
    assert find(on_cpu, "cut_cross_entropy", Kind.HARDWARE, Severity.WARNING).hint.startswith("Remove")


def test_training_run_reproduces_the_plain_losses(tmp_path, tiny_llama_dir, monkeypatch):
    from axo.train.run import train

    calls: list = []
    monkeypatch.setattr(cce, "load_kernel", lambda: reference_kernel(calls))
    losses = {}
    for name, extra in (("plain", ""), ("cce", "cut_cross_entropy: true\n")):
        text = tiny_lora_config(tmp_path, tiny_llama_dir, name, extra + "gradient_accumulation_steps: 2\n",
                                steps="max_steps: 2")
        (tmp_path / f"{name}.yml").write_text(text)
        from axo.config.load import load_config

        train(load_config(tmp_path / f"{name}.yml").require(), progress=False)
        losses[name] = [json.loads(line)["loss"] for line in (tmp_path / name / "metrics.jsonl").read_text()
                        .splitlines() if "loss" in json.loads(line)]
    assert calls and set(calls) == {"sum"}  # the Trainer's num_items_in_batch reached the kernel
    assert len(losses["plain"]) == 2
    assert losses["cce"] == pytest.approx(losses["plain"], rel=1e-4)


def test_tf32_set_through_the_new_api_stays_readable_for_the_kernel():
    """transformers' `tf32=True` sets `torch.backends.fp32_precision`; the kernel reads the legacy getter."""
    before = torch.get_float32_matmul_precision(), torch.backends.fp32_precision
    try:
        torch.backends.fp32_precision = "tf32"
        with pytest.raises(RuntimeError):
            torch.get_float32_matmul_precision()  # what cut-cross-entropy 25.1.1 would hit
        cce._legacy_matmul_precision_readable()
        assert torch.get_float32_matmul_precision() == "high"
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"
    finally:
        torch.backends.fp32_precision = before[1]
        torch.set_float32_matmul_precision(before[0])
        assert torch.get_float32_matmul_precision() == before[0]

"""Cut Cross Entropy (Apple's `cut-cross-entropy` package) as the causal-LM loss: `cut_cross_entropy: true`.

Why a patch: CCE computes the loss from the last hidden states and the output head's weight without ever
materialising the [tokens x vocabulary] logits (for a Llama-3 vocabulary, 4k tokens of bf16 logits are 1 GiB,
plus transformers' float32 copy and its gradient). transformers' `*ForCausalLM.forward` always builds the logits
before calling `self.loss_function`, so the model instance's `forward` is replaced by one that runs the decoder,
then `cut_cross_entropy.linear_cross_entropy(hidden, lm_head.weight, labels, shift=True)`. A call without
`labels` (generation, inference, `axo evaluate`) goes to the original forward untouched, and the weights,
saving and loading are the model's own.

Written against cut-cross-entropy 25.1.1 and transformers 5.17-5.24. The package's transformers patch
(`cut_cross_entropy.transformers.cce_patch`) is not in the 25.1.1 wheel on PyPI (only in the git sources) and
rewrites whole model classes for transformers 4.x, so axo uses the package's public `linear_cross_entropy` and
only the architectures in `ARCHITECTURES`, whose forward is decoder -> `lm_head` -> `self.loss_function` with at
most the logit transform named there. The loss reproduces transformers' `ForCausalLMLoss`: the mean over label
tokens, or the sum divided by the Trainer's `num_items_in_batch` under gradient accumulation.
tests/models/test_cce.py compares it with each architecture's own loss, and tests/gpu/test_cce_gpu.py runs the
real kernel.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable
from typing import Any

from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.config.schema import AxoConfig

KEY = "cut_cross_entropy"
PACKAGE_VERSION = "25.1.1"  # the release this module was written and measured against

# model_type -> what its forward does to `lm_head(hidden)` before the loss (None: nothing).
ARCHITECTURES: dict[str, str | None] = {
    "llama": None, "mistral": None, "qwen2": None, "qwen3": None, "phi3": None, "gemma": None, "olmo2": None,
    "gemma2": "softcap", "gemma3_text": "softcap",  # tanh(logits / c) * c, c = final_logit_softcapping
    "cohere": "logit_scale",  # logits * model.logit_scale
    "granite": "logits_scaling",  # logits / config.logits_scaling
}


def _error(message: str, hint: str, kind: Kind = Kind.MISSING_RESOURCE) -> ConfigError:
    return ConfigError([Problem(Severity.ERROR, kind, KEY, message, hint)])


def load_kernel() -> Callable[..., Any]:
    """The package's `linear_cross_entropy`, or a ConfigError saying what is missing on this machine."""
    if importlib.util.find_spec("cut_cross_entropy") is None:
        raise _error("needs the cut-cross-entropy package, which is not installed.",
                     f"pip install 'axo[cce]' (cut-cross-entropy=={PACKAGE_VERSION}), or remove `{KEY}`.")
    import torch

    if not torch.cuda.is_available():
        # The package's only other implementation (`impl="torch_compile"`) builds the full logits: no saving.
        raise _error("runs Apple's cut-cross-entropy Triton kernel, which needs a CUDA GPU; this machine has none.",
                     f"Remove `{KEY}` (or pass --{KEY} false) to train here with the plain loss.", Kind.HARDWARE)
    try:
        from cut_cross_entropy import linear_cross_entropy
    except ImportError as exc:  # installed, but Triton is missing or cannot load
        raise _error(f"cannot load the cut-cross-entropy kernel on this machine ({exc}).",
                     f"It needs Triton with a CUDA GPU (pip install triton); or remove `{KEY}`.") from None
    return linear_cross_entropy


def _legacy_matmul_precision_readable() -> None:
    """cut-cross-entropy 25.1.1 reads `torch.get_float32_matmul_precision()` (the legacy API) at every kernel
    launch. torch >= 2.9 refuses that read once the new API switched CUDA matmuls to TF32 without the legacy
    setting (`torch.backends.fp32_precision = "tf32"`, which transformers' `tf32=True` does; measured with torch
    2.11 on an H200). Say the same thing through the legacy API: "high" means TF32 matmuls."""
    import torch

    try:
        torch.get_float32_matmul_precision()
    except RuntimeError:
        if torch.backends.cuda.matmul.fp32_precision != "tf32":
            raise
        torch.set_float32_matmul_precision("high")


def _logit_transform(model: Any) -> tuple[float, float | None]:
    """(factor the hidden states are multiplied by, softcap) equivalent to the architecture's logit transform."""
    transform = ARCHITECTURES[model.config.model_type]
    if transform == "softcap":
        return 1.0, model.config.final_logit_softcapping
    if transform == "logit_scale":  # (h * s) @ W.T == s * (h @ W.T)
        return float(model.logit_scale), None
    if transform == "logits_scaling":
        return 1.0 / float(model.config.logits_scaling), None
    return 1.0, None


def _cce_forward(model: Any, kernel: Callable[..., Any]) -> Callable[..., Any]:
    original = model.forward  # bound method of the class's forward
    signature = inspect.signature(original)
    scale, softcap = _logit_transform(model)
    decoder = getattr(model, model.base_model_prefix)

    def forward(*args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(*args, **kwargs).arguments
        extra = arguments.pop("kwargs", {})
        labels = arguments.pop("labels", None)
        if labels is None:
            return original(*args, **kwargs)
        arguments.pop("logits_to_keep", None)  # the loss covers every position, as the original's does
        num_items = extra.get("num_items_in_batch")
        outputs = decoder(**arguments, **extra)
        hidden = outputs[0] if scale == 1.0 else outputs[0] * scale
        weight = model.get_output_embeddings().weight
        if weight.dim() != 2 or weight.shape[1] != hidden.shape[-1]:
            raise _error("cannot read the output head's weight: the engine holds it partitioned (DeepSpeed "
                         "ZeRO-3 gathers it only inside the head's own forward).",
                         f"Remove `{KEY}`, or train with DDP / ZeRO-1/2.", Kind.CONFLICT)
        _legacy_matmul_precision_readable()
        loss = kernel(hidden, weight, labels.to(hidden.device), shift=True, softcap=softcap,
                      reduction="mean" if num_items is None else "sum")
        if num_items is not None:  # transformers' ForCausalLMLoss under gradient accumulation
            loss = loss / num_items
        from transformers.modeling_outputs import CausalLMOutputWithPast

        # No logits: not building them is the point. Trainer's evaluation asks for the loss only.
        return CausalLMOutputWithPast(loss=loss, logits=None, hidden_states=getattr(outputs, "hidden_states", None),
                                      attentions=getattr(outputs, "attentions", None))

    return forward


def apply_cce(cfg: AxoConfig, model: Any, kernel: Callable[..., Any] | None = None) -> bool:
    """Route `model`'s training loss through Cut Cross Entropy when `cut_cross_entropy` is on; True if it did.

    `kernel` replaces the package's `linear_cross_entropy` (tests on CPU pass a reference implementation).

    Raises:
        ConfigError: the package, Triton or a CUDA GPU is missing, or the model is not a supported causal LM.
    """
    if not getattr(cfg, KEY, None):
        return False
    if cfg.liger_fused_linear_cross_entropy or cfg.liger_cross_entropy:
        return False  # only with the CCE plugin's default (config/rules.py warns): Liger's loss runs
    if cfg.fsdp_version or cfg.fsdp_config:
        return False  # only with the CCE plugin's default under FSDP (config/rules.py warns): the plain loss runs
    model_type = getattr(model.config, "model_type", None)
    if not type(model).__name__.endswith("ForCausalLM"):
        raise _error(f"computes a language-modelling loss; this model is a {type(model).__name__}.",
                     f"Remove `{KEY}`.", Kind.CONFLICT)
    if model_type not in ARCHITECTURES:
        raise _error(f"is not wired for {model_type!r} models in axo; it covers {', '.join(sorted(ARCHITECTURES))}.",
                     f"Remove `{KEY}` (the plain loss runs), or use `liger_fused_linear_cross_entropy` if "
                     "liger-kernel supports this architecture.", Kind.CONFLICT)
    kernel = kernel if kernel is not None else load_kernel()
    if getattr(model, "_axo_cce", False):  # already routed (a model reused across runs)
        return True
    model.forward = _cce_forward(model, kernel)  # on the instance: other models in the process keep theirs
    model._axo_cce = True
    return True

"""Axolotl's `plugins:` list: each name is honoured or reported by name, never dropped in silence.

axo cannot load Axolotl plugins (they patch Axolotl's own trainer); what a plugin does is either built into axo
under the same keys (Liger: the `liger_*` keys; Cut Cross Entropy: `cut_cross_entropy`) or not available, and
then the warning says what the plugin would have done.
"""

from __future__ import annotations

from typing import Any

from axo.config.axolotl_keys import AXOLOTL_PLUGINS
from axo.config.problems import Kind, Problem, Severity

LIGER = "axolotl.integrations.liger.LigerPlugin"
CCE = "axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin"

# What each bundled plugin does in Axolotl (for the warning); Liger and CCE are honoured.
_WHAT = {
    "ContextParallelPlugin": "context parallelism (one long sequence split across GPUs)",
    "CutCrossEntropyPlugin": "Cut Cross Entropy (a loss that never materialises the full logits)",
    "CoreWeavePlugin": "launching the run on CoreWeave",
    "DenseMixerPlugin": "DenseMixer's gradient estimator for MoE routers",
    "DiffusionPlugin": "diffusion language-model training",
    "DiffusionDecisionPlugin": "diffusion decision-model training",
    "ExpertParallelPlugin": "expert parallelism for MoE models",
    "FlaSm120ShimPlugin": "flash-linear-attention kernels on SM120 GPUs",
    "GrokfastPlugin": "Grokfast gradient filtering",
    "HatcheryPlugin": "the Hatchery integration",
    "KDPlugin": "knowledge distillation from a teacher's logits",
    "KernelsPlugin": "MoE expert kernels (ScatterMoE, SonicMoE) and other hub kernels",
    "LMEvalPlugin": "lm-eval-harness benchmarks after training",
    "LLMCompressorPlugin": "sparse or quantized fine-tuning with LLM Compressor",
    "MixLoraPlugin": "MixLoRA (a mixture of LoRA experts)",
    "MoraPlugin": "MoRA (high-rank adapters)",
    "NebiusCompletionPlugin": "the Nebius completion integration",
    "NemoGymPlugin": "reinforcement learning in NeMo Gym environments",
    "SpectrumPlugin": "Spectrum (training only the layers with the best signal-to-noise ratio)",
    "SwanLabPlugin": "logging to SwanLab",
}


# Plugins that replace the training objective: without them axo would train something else (plain causal-LM
# fine-tuning), so they are errors, like `rl: grpo`; the others change how or what is logged, and are warnings.
METHOD_PLUGINS = frozenset({"DiffusionPlugin", "DiffusionDecisionPlugin", "KDPlugin", "NemoGymPlugin"})


def normalize(name: str) -> str:
    """Axolotl accepts entry-point spellings (`module:Class`) for the dotted name."""
    module, separator, cls = name.partition(":")
    return f"{module}.{cls}" if separator else name


def apply_plugins(data: dict[str, Any], schema_keys: set[str], locate) -> list[Problem]:
    """Map honoured plugins onto axo's keys (in `data`, in place) and report every other plugin by name."""
    plugins = data.get("plugins")
    if not isinstance(plugins, list):
        return []  # absent, or a wrong type that validation reports
    problems = []
    for index, raw in enumerate(plugins):
        if not isinstance(raw, str):
            continue
        name = normalize(raw)
        line, origin = locate(("plugins", index))
        where = f"plugins[{index}]"
        if name == LIGER:
            continue  # the liger_* keys are axo's own and read directly
        if name == CCE and "cut_cross_entropy" in schema_keys:
            if data.get("cut_cross_entropy") is None:  # the plugin's default; an explicit false stays false
                data["cut_cross_entropy"] = True
                if isinstance(getattr(locate, "renamed", None), dict):  # later findings point at the plugin's line
                    locate.renamed[("cut_cross_entropy",)] = ("plugins", index)
                problems.append(Problem(Severity.NOTE, Kind.DERIVED, where, f"`{raw}` turns on "
                                        "`cut_cross_entropy: true` (axo runs Cut Cross Entropy itself).", None,
                                        line, origin))
            continue
        cls = name.rsplit(".", 1)[-1]
        if name in AXOLOTL_PLUGINS and cls in METHOD_PLUGINS:
            problems.append(Problem(Severity.ERROR, Kind.UNSUPPORTED_KEY, where, f"plugin `{raw}` is {_WHAT[cls]}, "
                                    "a training method axo does not have; without it axo would train plain "
                                    "causal-LM fine-tuning instead.", "Train this config with Axolotl, or remove "
                                    "the plugin and its keys to fine-tune the usual way.", line, origin))
            continue
        if name in AXOLOTL_PLUGINS:
            what = _WHAT.get(cls, "its part of Axolotl")
            message = f"plugin `{raw}` is not available in axo: it would have added {what}; it is ignored."
            hint = "Remove it, or train this config with Axolotl if you need it."
        else:
            message = (f"plugin `{raw}` is not one of Axolotl 0.21's bundled plugins, and axo cannot load "
                       "Axolotl plugins; whatever it does will not happen.")
            hint = "Remove it from `plugins:`."
        problems.append(Problem(Severity.WARNING, Kind.UNSUPPORTED_KEY, where, message, hint, line, origin))
    return problems

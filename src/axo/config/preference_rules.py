"""Cross-key rules of preference tuning and reward models: method keys that do nothing with the chosen method
(or without one), settings TRL cannot run, and SFT-only speed keys the preference trainers do not use."""

from __future__ import annotations

from axo.config.problems import Kind, Severity
from axo.config.schema import AxoConfig

# key -> the methods it acts on ("reward" = reward_model)
_METHOD_KEYS: dict[str, frozenset[str]] = {
    "rl_beta": frozenset({"dpo", "ipo", "orpo", "simpo", "kto"}),
    "dpo_loss_type": frozenset({"dpo"}), "dpo_loss_weights": frozenset({"dpo"}),
    "dpo_label_smoothing": frozenset({"dpo"}), "rpo_alpha": frozenset({"dpo"}),
    "dpo_use_weighting": frozenset({"dpo", "ipo"}), "dpo_ld_alpha": frozenset({"dpo", "ipo"}),
    "dpo_padding_free": frozenset({"dpo", "ipo"}), "dpo_use_liger_kernel": frozenset({"dpo", "ipo"}),
    "precompute_ref_log_probs": frozenset({"dpo", "ipo", "kto"}),
    "orpo_alpha": frozenset({"orpo"}), "simpo_gamma": frozenset({"simpo"}), "cpo_alpha": frozenset({"simpo"}),
    "kto_desirable_weight": frozenset({"kto"}), "kto_undesirable_weight": frozenset({"kto"}),
    "max_prompt_len": frozenset({"dpo", "ipo", "orpo", "simpo", "kto", "reward"}),
    "center_rewards_coefficient": frozenset({"reward"}),
}
_PREFERENCE_FIELDS = ("field_chosen", "field_rejected")


def preference_findings(cfg: AxoConfig, user_set: set[str]) -> list:
    """Findings (config/rules.py `Finding`) for the preference keys of `cfg`."""
    from axo.config.rules import Finding

    found: list[Finding] = []
    method = "reward" if cfg.reward_model else cfg.rl
    if cfg.rl and cfg.reward_model:
        found.append(Finding("reward_model", f"and `rl: {cfg.rl}` are both set; a run trains one thing.",
                             "Keep `rl` to tune the policy, or `reward_model: true` to train a scorer."))
    for key, methods in _METHOD_KEYS.items():
        if key in user_set and getattr(cfg, key) is not None and method not in methods:
            now = f"`rl: {method}`" if method and method != "reward" else ("`reward_model: true`" if method else
                                                                             "no `rl:` (SFT)")
            users = ", ".join(sorted(m if m != "reward" else "reward_model" for m in methods))
            found.append(Finding(key, f"has no effect with {now}; it is read by: {users}.", "Remove it.",
                                 Severity.WARNING, Kind.CONFLICT))
    if cfg.dpo_padding_free and method in ("dpo", "ipo"):
        found.append(Finding("dpo_padding_free", "cannot run: TRL 1.15 has padding-free DPO disabled (it warns and "
                             "pads), so the memory you planned for would not be saved.", "Remove it."))
    if cfg.remove_unused_columns:
        found.append(Finding("remove_unused_columns", "has no effect: axo keeps the dataset columns its collators "
                             "and TRL's trainers read (dropping them would leave the trainer nothing to train on).",
                             "Remove it.", Severity.WARNING, Kind.CONFLICT))
    if cfg.rpo_alpha is not None and cfg.dpo_loss_type:
        found.append(Finding("rpo_alpha", "and `dpo_loss_type` both choose the DPO losses.",
                             "Keep one: `dpo_loss_type: [sigmoid, sft]` with `dpo_loss_weights: [1, α]` is RPO."))
    if cfg.dpo_loss_weights and len(cfg.dpo_loss_weights) != len(cfg.dpo_loss_type or ["sigmoid"]):
        found.append(Finding("dpo_loss_weights", f"has {len(cfg.dpo_loss_weights)} weights for "
                             f"{len(cfg.dpo_loss_type or ['sigmoid'])} losses in `dpo_loss_type`.",
                             "Give one weight per loss."))
    if cfg.trl:
        extra = sorted(set(cfg.trl) - {"beta"})
        if extra and method:
            found.append(Finding("trl", f"sets {', '.join(extra)}, which axo does not read (Axolotl's `trl:` block is "
                                 "for online RL; axo reads its `beta`).", "Remove them.", Severity.WARNING,
                                 Kind.UNSUPPORTED_KEY))
    if method and (cfg.sample_packing or cfg.batch_flattening):
        key = "sample_packing" if cfg.sample_packing else "batch_flattening"
        found.append(Finding(key, f"is for SFT; {'a reward model' if method == 'reward' else cfg.rl} trains on "
                             "padded chosen/rejected pairs (TRL packs no preference rows).", f"Set `{key}: false`."))
    if method:
        loss = [k for k in ("liger_fused_linear_cross_entropy", "liger_cross_entropy", "cut_cross_entropy")
                if getattr(cfg, k)]
        if loss:
            what = ("DPO/IPO/KTO compute log-probs in chunks without the full logits (TRL's fused LM head)"
                    if method in ("dpo", "ipo", "kto") else "the method's own loss runs")
            found.append(Finding(loss[0], f"applies to SFT's cross-entropy; under `{('rl: ' + method) if method != 'reward' else 'reward_model'}` "
                                 f"{what}, so it is not used.", "Remove it (the other liger_* kernels still run).",
                                 Severity.WARNING, Kind.CONFLICT))
    elif not method:
        for section in ("datasets", "test_datasets"):
            for index, entry in enumerate(getattr(cfg, section) or []):
                for name in _PREFERENCE_FIELDS:
                    if getattr(entry, name) is not None:
                        found.append(Finding(f"{section}[{index}].{name}", "is a field of preference datasets "
                                             "(chosen/rejected pairs), read only under `rl:` or `reward_model:`; "
                                             "this config trains SFT, so it is ignored.", "Remove it, or set `rl:`.",
                                             Severity.WARNING, Kind.CONFLICT))
    return found

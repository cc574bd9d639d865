"""Cross-key rules of sequence classification (`num_labels`, `problem_type`, `type: classification` datasets):
the head, the loss and the data must agree, or training would fail late or learn the wrong thing."""

from __future__ import annotations

from axo.config.schema import AxoConfig

SEQUENCE_CLASSES = ("ForSequenceClassification",)  # transformers' class names of a sequence-classification model


def is_sequence_class(model_type: str | None) -> bool:
    """Whether a `model_type` names a sequence-classification class (an architecture's or the Auto class)."""
    return bool(model_type) and model_type.endswith(SEQUENCE_CLASSES)


def _classification_entries(cfg: AxoConfig) -> tuple[list[str], list[str]]:
    """(keys of the dataset entries with `type: classification`, keys of the other entries)."""
    chosen, other = [], []
    for section in ("datasets", "test_datasets"):
        for index, entry in enumerate(getattr(cfg, section) or []):
            kind = entry.type.split(":", 1)[0] if isinstance(entry.type, str) else None
            (chosen if kind == "classification" else other).append(f"{section}[{index}].type")
    return chosen, other


def classification_findings(cfg: AxoConfig, user_set: set[str]) -> list:
    """Findings (config/rules.py `Finding`) for the sequence-classification keys of `cfg` (reward models,
    which are one-output scorers of their own mode, are left to the preference rules)."""
    from axo.config.rules import Finding

    found: list[Finding] = []
    if cfg.reward_model or cfg.rl:
        return found
    classified, other = _classification_entries(cfg)
    if cfg.num_labels is None:
        if classified:
            found.append(Finding(classified[0], "is `classification`, which trains a sequence classifier, but "
                                 "`num_labels` is not set.", "Add `num_labels: N` (the number of classes), or "
                                 "`num_labels: 1` with `problem_type: regression` for a numeric score."))
        if is_sequence_class(cfg.model_type):
            found.append(Finding("model_type", f"is `{cfg.model_type}`, a sequence classifier, but `num_labels` is "
                                 "not set.", "Add `num_labels: N` (the number of classes) and `type: "
                                 "classification` datasets, or use a causal-LM class such as AutoModelForCausalLM."))
        if cfg.problem_type is not None:
            found.append(Finding("problem_type", "is set without `num_labels`; it says what a classification head "
                                 "learns.", "Add `num_labels` (1 for `regression`), or remove `problem_type`."))
        return found
    if cfg.model_type and not is_sequence_class(cfg.model_type):
        found.append(Finding("model_type", f"is `{cfg.model_type}`, which has no classification head, while "
                             f"`num_labels: {cfg.num_labels}` asks for sequence classification.",
                             "Use AutoModelForSequenceClassification or the architecture's class (e.g. "
                             "BertForSequenceClassification), or remove `num_labels` to train a language model."))
    if cfg.problem_type == "regression" and cfg.num_labels != 1:
        found.append(Finding("num_labels", f"is {cfg.num_labels} with `problem_type: regression`; a regression head "
                             "gives each row one number.", "Set `num_labels: 1`."))
    if cfg.batch_flattening is True:
        found.append(Finding("batch_flattening", "flattens a micro-batch into one row for language modelling; a "
                             "sequence classifier reads one row per sample.", "Remove `batch_flattening`."))
    if other:
        found.append(Finding(other[0], "is not `classification`, while `num_labels` trains a sequence classifier "
                             "on rows of text and label.", "Use `type: classification` for every dataset, or "
                             "remove `num_labels` to train a language model."))
    return found

"""Cross-key rules of streamed pretraining (`pretraining_dataset:`), as Axolotl 0.21 validates them: a stream has
no length, so `max_steps` sets the run; evaluation cannot be split off a stream."""

from __future__ import annotations

from axo.config.problems import Kind, Severity
from axo.config.schema import AxoConfig

STREAMED_TYPES = ("pretrain", "completion")  # raw text either way: a stream of documents


def pretraining_findings(cfg: AxoConfig, user_set: set[str]) -> list:
    """Findings (config/rules.py `Finding`) for the streamed-pretraining keys of `cfg`."""
    from axo.config.rules import Finding

    found: list[Finding] = []
    if not cfg.pretraining_dataset:
        for key in ("pretrain_multipack_attn", "pretraining_sample_concatenation", "streaming_multipack_buffer_size",
                    "pretrain_multipack_buffer_size"):
            if key in user_set:
                found.append(Finding(key, "has no effect: it shapes the rows of a `pretraining_dataset` stream, and "
                                     "there is none.", "Remove it.", Severity.WARNING, Kind.CONFLICT))
        if cfg.streaming and cfg.datasets:
            found.append(Finding("streaming", "has no effect on `datasets:`: axo reads them in full (the same "
                                 "samples; Axolotl would stream them).", "Remove it, or give raw text as "
                                 "`pretraining_dataset:` to stream it.", Severity.WARNING, Kind.CONFLICT))
        return found
    if not cfg.max_steps:
        found.append(Finding("max_steps", "must be set with `pretraining_dataset`: a stream has no length, so the "
                             "trainer cannot know the number of steps or shape the learning-rate schedule without it "
                             "(Axolotl refuses it too).", "Add `max_steps: N`."))
    if cfg.val_set_size:
        found.append(Finding("val_set_size", "cannot split evaluation rows off a `pretraining_dataset` stream "
                             "(Axolotl refuses it too).", "Set `val_set_size: 0`."))
    if cfg.test_datasets:
        found.append(Finding("test_datasets", "are not evaluated with `pretraining_dataset` in axo yet (Axolotl "
                             "evaluates them tokenized in full).", "Remove `test_datasets`, or evaluate the saved "
                             "model with `axo evaluate`."))
    if cfg.datasets:
        found.append(Finding("datasets", "are not read when `pretraining_dataset` is set (the stream is the training "
                             "data, as in Axolotl).", "Remove `datasets:`, or `pretraining_dataset:` to fine-tune "
                             "on them.", Severity.WARNING, Kind.CONFLICT))
    for index, entry in enumerate(cfg.pretraining_dataset):
        if (entry.type or "pretrain") not in STREAMED_TYPES:
            found.append(Finding(f"pretraining_dataset[{index}].type", f"`{entry.type}` cannot be streamed by axo; "
                                 "a pretraining stream is raw text (`type: pretrain`).", "Set `type: pretrain` (the "
                                 "`text_column` is tokenized as it is), or give formatted data as `datasets:`."))
        if entry.trust_remote_code:
            found.append(Finding(f"pretraining_dataset[{index}].trust_remote_code", f"is true: the loading script of "
                                 f"dataset {entry.path!r} will run on this machine, with your permissions.",
                                 "Keep it only for a script you have read or whose author you trust.",
                                 Severity.WARNING, Kind.REMOTE_CODE))
    if len(cfg.pretraining_dataset) > 1:
        found.append(Finding("pretraining_dataset", f"has {len(cfg.pretraining_dataset)} entries; only the first "
                             "is streamed (as in Axolotl).", "Keep one entry.", Severity.WARNING, Kind.CONFLICT))
    if cfg.group_by_length:
        found.append(Finding("group_by_length", "has no effect on a stream: rows come in the stream's (shuffled) "
                             "order.", "Remove it.", Severity.WARNING, Kind.CONFLICT))
    return found

"""Streamed (continued) pretraining (`pretraining_dataset:`): raw text read as a stream, tokenized and packed
while training runs (data/streaming.py), trained by axo's Trainer for `max_steps` steps. Nothing is cached and
there is no evaluation split (a stream cannot be split; Axolotl refuses `val_set_size` too)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from axo.config.schema import AxoConfig
from axo.train.modes.base import (
    PreparedSplits,
    TrainerData,
    TrainerParts,
    TrainingMode,
    register_mode,
)


class PlannedRows:
    """What the recipe sizes the run by: `len` is the number of rows the run reads (max_steps × accumulation
    × micro-batches of rows); the trainer is handed `stream` itself, which has no length (the Trainer then
    iterates it and stops at max_steps)."""

    def __init__(self, stream: Any, rows: int):
        self.stream, self.rows = stream, rows

    def __len__(self) -> int:
        return self.rows


def rows_per_step(cfg: AxoConfig) -> int:
    """Stream rows one optimizer step reads in one process: a packed row is a whole micro-batch."""
    per_batch = 1 if cfg.sample_packing else cfg.micro_batch_size
    return per_batch * (cfg.gradient_accumulation_steps or 1)


@register_mode
class PretrainingMode(TrainingMode):
    name = "pretraining"
    plans_memory = True

    @classmethod
    def selects(cls, cfg: AxoConfig) -> bool:
        # as Axolotl: a pretraining stream is the training data whenever it is set (`datasets:` are not read)
        return bool(cfg.pretraining_dataset) and not cfg.rl and not cfg.reward_model

    def _stream(self, tokenizer: Any, config_dir: Path | None) -> Any:
        from axo.data.streaming import PretrainingStream

        return PretrainingStream(self.cfg, tokenizer, config_dir)

    def prepare(self, tokenizer: Any, config_dir: Path | None, *, force: bool = False) -> PreparedSplits:
        """Open the stream and read its first document, so a wrong path or text column fails now, not at the
        first step. Nothing is cached (`force` has nothing to redo)."""
        from axo.data.streaming import stream_layout

        cfg = self.cfg
        stream = self._stream(tokenizer, config_dir)
        first = next(stream.documents(), None)
        entry = cfg.pretraining_dataset[0]
        if first is None:
            from axo.data.errors import data_error

            raise data_error("the stream holds no documents" + (f" after skipping {entry.skip}" if entry.skip else "")
                             + ".", origin=entry.path, key="pretraining_dataset[0].path",
                             hint="Check the path, `split`, `data_files` and `skip`.")
        layout = stream_layout(cfg)
        settings = {"dataset": entry.model_dump(), "layout": layout.name, "row_len": layout.row_len,
                    "buffer": stream.buffer, "shuffle": cfg.shuffle_merged_datasets, "seed": cfg.seed,
                    "sequence_len": cfg.sequence_len}
        fingerprint = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
        meta = {"datasets": [{"path": entry.path, "name": entry.name, "split": entry.split,
                              "text_column": entry.text_column, "streamed": True}], **settings}
        return PreparedSplits(cfg.max_steps * rows_per_step(cfg) if cfg.max_steps else 0, 0, Path(entry.path),
                              fingerprint, False, meta, payload=stream)

    def trainer_data(self, prepared: PreparedSplits, tokenizer: Any) -> TrainerData:
        stream = prepared.payload
        layout = stream.layout
        data = TrainerData(PlannedRows(stream, prepared.train_rows), None)
        data.notes.append(f"streaming {prepared.meta['datasets'][0]['path']}: rows of {layout.row_len} tokens "
                          f"({layout.name}), shuffle buffer {stream.buffer:,} documents; {self.cfg.max_steps} steps")
        return data

    def method_arguments(self) -> dict[str, Any]:
        # a packed row is one micro-batch of micro_batch_size × sequence_len tokens; the stream sets the order
        out: dict[str, Any] = {"max_steps": self.cfg.max_steps, "train_sampling_strategy": "sequential"}
        if self.cfg.sample_packing:
            out["per_device_train_batch_size"] = 1
        return out

    def show(self, console: Any, prepared: PreparedSplits, tokenizer: Any, samples: int) -> None:
        from itertools import islice

        from rich.markup import escape

        from axo.data.formats.base import IGNORE_INDEX

        stream = prepared.payload
        layout = stream.layout
        console.print(f"[bold]streamed pretraining[/]: {prepared.meta['datasets'][0]['path']} "
                      f"(column `{stream.entry.text_column}`), {layout.name}, rows of {layout.row_len} tokens; "
                      "streams are not cached: `axo train` reads and packs the stream again while it trains.",
                      highlight=False)
        for number, row in enumerate(islice(stream.rows(), max(samples, 3))):
            ids, labels, positions = row["input_ids"], row["labels"], row["position_ids"]
            starts = [i for i, p in enumerate(positions) if p == 0] + [len(ids)]
            blocks = [starts[i + 1] - starts[i] for i in range(len(starts) - 1)]
            trained = sum(label != IGNORE_INDEX for label in labels)
            last = slice(starts[-2], len(ids))
            padding = (len(blocks) > 1 and all(t == stream.pad_id for t in ids[last])
                       and all(label == IGNORE_INDEX for label in labels[last])) and len(ids) - starts[-2]
            console.print(f"row {number}: {len(ids)} tokens, {trained} trained, blocks {blocks}"
                          + (f" (last is padding: {padding})" if padding else ""), highlight=False)
            if number < samples:
                console.print(escape(tokenizer.decode(ids[:starts[-2]] if padding else ids)), soft_wrap=True,
                              highlight=False)

    def build_trainer(self, parts: TrainerParts) -> Any:
        from axo.data.streaming import StreamCollator
        from axo.train.trainer import AxoTrainer

        return AxoTrainer(model=parts.model, args=parts.arguments, data_collator=StreamCollator(),
                          train_dataset=parts.data.train.stream, eval_dataset=None,
                          processing_class=parts.tokenizer, callbacks=parts.callbacks, optimizers=parts.optimizers,
                          offload_activations=parts.offload_activations)

    def describe(self) -> dict[str, Any]:
        from axo.data.streaming import stream_layout

        return {"method": "pretraining (streamed)", "layout": stream_layout(self.cfg).name}

"""Streamed pretraining data: raw text read as a stream (`datasets.load_dataset(..., streaming=True)`, for Hub ids
and local files alike), tokenized and packed into fixed-size rows while training runs. Nothing is cached.

Each document becomes its tokens (with the tokenizer's BOS) followed by EOS. Rows are laid out as the config
says (`StreamLayout`):

- `sample_packing` with `pretrain_multipack_attn` (Axolotl's default): rows of micro_batch_size × sequence_len
  tokens, one row per micro-batch. Documents longer than `sequence_len` are cut into pieces of at most
  `sequence_len`; the pieces of each buffer of `streaming_multipack_buffer_size` documents are bin-packed into
  rows (best fit decreasing, data/packing.py) whose `position_ids` restart at 0 for each piece, so attention
  never crosses a document (transformers builds the block-diagonal mask), and the first label of each piece is
  masked, as axo's packed SFT rows. The unused end of a row is padding: its own block, labels masked.
- `sample_packing` without it: plain concatenation, documents run on across rows of micro_batch_size ×
  sequence_len tokens and attend to each other.
- no `sample_packing`: rows of `sequence_len`, micro_batch_size of them per batch: concatenated as above when
  `pretraining_sample_concatenation`, else one document per row (truncated to `sequence_len`, EOS kept, padded).

The documents are shuffled with a buffer of `streaming_multipack_buffer_size` and `seed` (`datasets`' buffered
shuffle) when `shuffle_merged_datasets` (default); every new pass over the stream reshuffles (seed + pass).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from axo.config.schema import AxoConfig
from axo.config.schema.pretraining import PretrainingDataset
from axo.data.errors import data_error, describe
from axo.data.formats.base import IGNORE_INDEX
from axo.data.packing import best_fit_decreasing

_BUILDERS = {".jsonl": "json", ".json": "json", ".txt": "text", ".csv": "csv", ".parquet": "parquet",
             ".arrow": "arrow"}
_TOKENIZE_BATCH = 1_000  # documents tokenized per call (the fast tokenizers work in parallel on a batch)


@dataclass(frozen=True)
class StreamLayout:
    """How documents become rows: `row_len` tokens each; `isolate`: packed, documents kept apart;
    `concatenate`: documents run on across rows; neither: one document per row."""

    row_len: int
    piece_len: int
    isolate: bool
    concatenate: bool

    @property
    def name(self) -> str:
        if self.isolate:
            return "packed, documents kept apart"
        return "concatenated" if self.concatenate else "one document per row"


def stream_layout(cfg: AxoConfig) -> StreamLayout:
    """The row layout `cfg` asks for (module docstring)."""
    if cfg.sample_packing:
        capacity = cfg.micro_batch_size * cfg.sequence_len
        return StreamLayout(capacity, cfg.sequence_len, bool(cfg.pretrain_multipack_attn),
                            not cfg.pretrain_multipack_attn)
    return StreamLayout(cfg.sequence_len, cfg.sequence_len, False, bool(cfg.pretraining_sample_concatenation))


def open_documents(entry: PretrainingDataset, config_dir: Path | None) -> tuple[Any, str]:
    """The entry's documents as a `datasets.IterableDataset`, and the name errors give it (the local file or
    the Hub id). Local files load through `datasets`' builder for their suffix; folders and Hub ids as named.

    Raises:
        DataError: when the stream cannot be opened (missing file, unknown id or split, unreachable Hub).
    """
    import datasets

    from axo.config.paths import resolve_local_path
    from axo.models import hub

    datasets.disable_progress_bars()
    local = resolve_local_path(entry.path, config_dir)
    kwargs: dict[str, Any] = {"split": entry.split, "streaming": True}
    if entry.trust_remote_code:
        kwargs["trust_remote_code"] = True
    if local is not None and local.is_file():
        builder = _BUILDERS.get(local.suffix.lower())
        if builder is None:
            raise data_error(f"cannot stream a {local.suffix or 'suffix-less'} file.", origin=str(local), key="path",
                             hint=f"Use one of {', '.join(sorted(_BUILDERS))}.")
        where, args = str(local), (builder,)
        kwargs["data_files"] = str(local)
    else:
        where = str(local) if local is not None else entry.path
        if local is None:
            repo = hub.hub_repo(entry.path, config_dir)
            if repo is None:
                raise data_error("is neither a local file or folder nor a Hugging Face Hub dataset id.",
                                 origin=entry.path, key="pretraining_dataset[0].path",
                                 hint="Give an existing path (relative to the working directory or the config) "
                                      "or an `org/name` id.")
            hub.require([hub.HubRef("pretraining_dataset[0].path", "dataset", repo[0], None)])
        args = (where,)
        kwargs.update(name=entry.name, data_files=entry.data_files)
    try:
        stream = datasets.load_dataset(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types (missing file, config, split; network)
        raise data_error(f"cannot stream the dataset: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                         origin=where, key="pretraining_dataset[0].path",
                         hint="Check the path (or Hub id), `name`, `split` and `data_files`.") from None
    return stream, where


def document_text(row: dict[str, Any], column: str, origin: str, number: int) -> str:
    """The text of one streamed row (`number` 1-based in the stream), or a DataError naming file, row and field."""
    if column not in row:
        raise data_error(f"row {number} has no `{column}` column (it has: {', '.join(map(str, row)) or 'none'}).",
                         origin=origin, line=number, key=column,
                         hint="Set the entry's `text_column` to the column holding the text.")
    text = row[column]
    if text is None:  # `datasets` gives a row without the field a null (the columns are the union of all rows')
        others = [name for name, value in row.items() if value is not None and name != column]
        raise data_error(f"row {number} has no `{column}` (missing or null; it has: {', '.join(others) or 'none'}).",
                         origin=origin, line=number, key=column,
                         hint="Give every row its document under the entry's `text_column`.")
    if not isinstance(text, str):
        raise data_error(f"row {number}: `{column}` must be text, found {describe(text)}.", origin=origin,
                         line=number, key=column, hint="Give every row its document as a string.")
    return text


def _pieces(ids: list[int], length: int) -> list[list[int]]:
    return [ids[start:start + length] for start in range(0, len(ids), length)] or [[]]


def _padded(row: dict[str, list[int]], length: int, pad_id: int) -> dict[str, list[int]]:
    """`row` filled to `length` with a padding block of its own (positions from 0, labels masked)."""
    missing = length - len(row["input_ids"])
    row["input_ids"] += [pad_id] * missing
    row["labels"] += [IGNORE_INDEX] * missing
    row["position_ids"] += list(range(missing))
    return row


def isolated_rows(documents: list[list[int]], layout: StreamLayout, pad_id: int,
                  rng: random.Random) -> list[dict[str, list[int]]]:
    """Rows of `layout.row_len` tokens holding the documents' pieces, each piece its own block (positions
    restart, first label masked), bin-packed best fit decreasing and returned in a shuffled order."""
    pieces = [piece for ids in documents for piece in _pieces(ids, layout.piece_len) if piece]
    bins = best_fit_decreasing([len(p) for p in pieces], list(range(len(pieces))), layout.row_len)
    rng.shuffle(bins)  # longest first is not a training order
    rows = []
    for members in bins:
        row: dict[str, list[int]] = {"input_ids": [], "labels": [], "position_ids": []}
        for index in members:
            piece = pieces[index]
            row["input_ids"] += piece
            row["labels"] += [IGNORE_INDEX, *piece[1:]]
            row["position_ids"] += range(len(piece))
        rows.append(_padded(row, layout.row_len, pad_id))
    return rows


class ConcatenatedRows:
    """Documents run on into rows of exactly `length` tokens (one causal block, every label trained); the
    remainder waits for the next documents, and `finish` pads the last partial row."""

    def __init__(self, length: int, pad_id: int):
        self.length, self.pad_id, self.pending = length, pad_id, []

    def add(self, ids: list[int]) -> list[dict[str, list[int]]]:
        self.pending += ids
        rows = []
        while len(self.pending) >= self.length:
            chunk, self.pending = self.pending[:self.length], self.pending[self.length:]
            rows.append({"input_ids": chunk, "labels": list(chunk), "position_ids": list(range(self.length))})
        return rows

    def finish(self) -> list[dict[str, list[int]]]:
        if not self.pending:
            return []
        chunk, self.pending = self.pending, []
        row = {"input_ids": chunk, "labels": list(chunk), "position_ids": list(range(len(chunk)))}
        return [_padded(row, self.length, self.pad_id)]


def single_row(ids: list[int], layout: StreamLayout, eos_id: int, pad_id: int) -> dict[str, list[int]]:
    """One document in a row of `layout.row_len`: truncated (its EOS kept at the end), then padded."""
    if len(ids) > layout.row_len:
        ids = ids[:layout.row_len - 1] + [eos_id]
    row = {"input_ids": list(ids), "labels": list(ids), "position_ids": list(range(len(ids)))}
    return _padded(row, layout.row_len, pad_id)


def _token_ids(tokenizer: Any) -> tuple[int, int]:
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    if eos is None:
        raise data_error("the tokenizer has no EOS token, which separates streamed documents.",
                         key="special_tokens.eos_token", hint="Set `special_tokens: {eos_token: ...}`.")
    return eos, eos if pad is None else pad


try:  # torch is a core dependency; the guard keeps this module importable for config-only tools
    from torch.utils.data import IterableDataset as _TorchIterable
except ImportError:  # pragma: no cover
    _TorchIterable = object  # type: ignore[assignment,misc]


class PretrainingStream(_TorchIterable):  # type: ignore[misc,valid-type]
    """The rows of `cfg.pretraining_dataset[0]`, laid out by `stream_layout(cfg)`: each a dict of `input_ids`,
    `labels` and `position_ids` of exactly `layout.row_len` tokens. A new iteration streams from the start with
    the next shuffle seed (seed + pass). No `len`: a stream's length is unknown (the run stops at max_steps)."""

    def __init__(self, cfg: AxoConfig, tokenizer: Any, config_dir: Path | None = None):
        self.cfg, self.tokenizer, self.config_dir = cfg, tokenizer, config_dir
        self.entry = cfg.pretraining_dataset[0]
        self.layout = stream_layout(cfg)
        self.buffer = cfg.stream_buffer_size()
        self.eos_id, self.pad_id = _token_ids(tokenizer)
        self.passes = 0

    def documents(self, seed_offset: int = 0) -> Iterator[tuple[int, str]]:
        """(row number in the source, text) in training order: skipped, then shuffled through the buffer."""
        stream, where = open_documents(self.entry, self.config_dir)
        skip = self.entry.skip or 0
        numbered = iter(stream)
        if skip:
            numbered = islice(numbered, skip, None)
        rows = ((skip + index + 1, row) for index, row in enumerate(numbered))
        if self.cfg.shuffle_merged_datasets:
            rows = _buffered_shuffle(rows, self.buffer, random.Random(self.cfg.seed + seed_offset))
        for number, row in rows:
            yield number, document_text(row, self.entry.text_column, where, number)

    def token_documents(self, seed_offset: int = 0) -> Iterator[list[int]]:
        """Each document's ids: the tokenizer's (BOS included) then EOS."""
        texts = self.documents(seed_offset)
        while batch := [text for _, text in islice(texts, _TOKENIZE_BATCH)]:
            for ids in self.tokenizer(batch, add_special_tokens=True, verbose=False)["input_ids"]:
                yield [*ids, self.eos_id]

    def rows(self, seed_offset: int = 0) -> Iterator[dict[str, list[int]]]:
        """The laid-out rows of one pass over the stream."""
        documents = self.token_documents(seed_offset)
        layout = self.layout
        if layout.isolate:
            rng = random.Random(self.cfg.seed + seed_offset + 1_000_003)
            while group := list(islice(documents, self.buffer)):
                yield from isolated_rows(group, layout, self.pad_id, rng)
        elif layout.concatenate:
            joined = ConcatenatedRows(layout.row_len, self.pad_id)
            for ids in documents:
                yield from joined.add(ids)
            yield from joined.finish()
        else:
            for ids in documents:
                yield single_row(ids, layout, self.eos_id, self.pad_id)

    def __iter__(self) -> Iterator[dict[str, list[int]]]:
        offset, self.passes = self.passes, self.passes + 1
        return self.rows(offset)


def _buffered_shuffle(items: Iterator[Any], size: int, rng: random.Random) -> Iterator[Any]:
    """A stream shuffle with a buffer of `size` items (as `datasets`' IterableDataset.shuffle): each item read
    replaces a random one of the buffer, which is yielded; the buffer is emptied in random order at the end."""
    buffer: list[Any] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        at = rng.randrange(size)
        yield buffer[at]
        buffer[at] = item
    rng.shuffle(buffer)
    yield from buffer


class StreamCollator:
    """Stacks rows of equal length (the stream lays them out exactly) into tensors."""

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        return {key: torch.tensor([list(f[key]) for f in features], dtype=torch.long) for key in features[0]}

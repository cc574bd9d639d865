"""The nested YAML of the Rust port axolotl-rs, translated to axo's flat (Axolotl) keys.

Two nested shapes are in use: ``model: {name, dtype}`` + ``adapter: {type, rank, alpha, target_modules}``
+ ``training: {epochs, batch_size, learning_rate, gradient_accumulation}``, and the tzervas/axolotl-rs one
with ``base_model`` + ``lora: {r, alpha, dropout, target_modules}`` + ``quantization: {bits, quant_type,
double_quant}`` + ``training: {..., gradient_accumulation_steps, lr_scheduler, warmup_ratio, ...}``. Both
share ``dataset: {path, format, ...}``. Keys left out take axolotl-rs's defaults (not Axolotl's), since that
is the tool the file was written for; each default applied is reported as a note.
"""

from __future__ import annotations

from typing import Any

from axo.config.problems import Kind, Problem, Severity
from axo.config.schema.names import did_you_mean
from axo.config.yaml_io import KeyPath, format_key_path

# section -> nested key -> flat key. Special translations are handled in code and map to None here.
SECTIONS: dict[str, dict[str, str | None]] = {
    "model": {"name": "base_model", "dtype": None, "revision": "revision_of_model",
              "tokenizer": "tokenizer_config", "trust_remote_code": "trust_remote_code"},
    "dataset": {"path": None, "format": None, "input_field": None, "output_field": None, "split": None,
                "max_length": "sequence_len", "val_split": "val_set_size"},
    "training": {"epochs": "num_epochs", "batch_size": "micro_batch_size", "learning_rate": "learning_rate",
                 "gradient_accumulation": "gradient_accumulation_steps",
                 "gradient_accumulation_steps": "gradient_accumulation_steps", "lr_scheduler": "lr_scheduler",
                 "warmup_ratio": "warmup_ratio", "warmup_steps": "warmup_steps", "weight_decay": "weight_decay",
                 "max_grad_norm": "max_grad_norm", "save_steps": "save_steps", "logging_steps": "logging_steps",
                 "gradient_checkpointing": "gradient_checkpointing", "max_steps": "max_steps",
                 "mixed_precision": None},
    "adapter": {"type": None, "rank": "lora_r", "r": "lora_r", "alpha": "lora_alpha", "dropout": "lora_dropout",
                "target_modules": "lora_target_modules"},
    "lora": {"r": "lora_r", "rank": "lora_r", "alpha": "lora_alpha", "dropout": "lora_dropout",
             "target_modules": "lora_target_modules"},
    "quantization": {"bits": None, "quant_type": "bnb_4bit_quant_type", "double_quant": "bnb_4bit_use_double_quant",
                     "block_size": None},
}

# axolotl-rs's defaults for what a nested file leaves out (tzervas/axolotl-rs src/config.rs).
RS_DEFAULTS: dict[str, Any] = {
    "adapter": "lora",
    "lora_r": 64,
    "lora_alpha": 16,
    "lora_dropout": 0.05,
    "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "num_epochs": 3,
    "micro_batch_size": 4,
    "gradient_accumulation_steps": 4,
    "learning_rate": 2e-4,
    "lr_scheduler": "cosine",
    "warmup_ratio": 0.03,
    "max_grad_norm": 1.0,
    "save_steps": 500,
    "logging_steps": 10,
    "sequence_len": 2048,
    "output_dir": "./outputs",
    "seed": 42,
}

_DTYPES = {"bfloat16": (True, False), "bf16": (True, False), "float16": (False, True), "fp16": (False, True),
           "half": (False, True), "float32": (False, False), "fp32": (False, False), "auto": ("auto", None)}
_FORMATS = {"alpaca": "alpaca", "sharegpt": "sharegpt", "completion": "completion", "chat": "chat_template",
            "chat_template": "chat_template", "custom": None}


def is_nested(data: dict[str, Any]) -> bool:
    """True when `data` is written in an axolotl-rs nested shape rather than Axolotl's flat keys.

    Both nested shapes have a `dataset:` or `model:` section; a flat Axolotl file has neither (a stray
    `training:` mapping in a flat file is reported as an unknown key instead of switching modes).
    """
    return isinstance(data.get("dataset"), dict) or isinstance(data.get("model"), dict)


class _Translation:
    def __init__(self, origin: str, lines: dict[KeyPath, int]):
        self.origin = origin
        self.lines = lines
        self.flat: dict[str, Any] = {}
        self.sources: dict[KeyPath, KeyPath] = {}  # flat path -> nested path it came from
        self.problems: list[Problem] = []

    def put(self, flat_key: str | KeyPath, value: Any, source: KeyPath) -> None:
        path = (flat_key,) if isinstance(flat_key, str) else flat_key
        if len(path) == 1:
            previous = self.sources.get(path)
            if path[0] in self.flat and previous != source and self.flat[path[0]] != value:
                self.problem(Severity.ERROR, Kind.CONFLICT, source,
                             f"sets `{path[0]}` to {value!r}, but `{format_key_path(previous or path)}` sets it to "
                             f"{self.flat[path[0]]!r}.", "Keep one of them.")
                return
            self.flat[path[0]] = value
        self.sources[path] = source

    def problem(self, severity: Severity, kind: Kind, source: KeyPath, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(severity, kind, format_key_path(source), message, hint,
                                     self.lines.get(source), self.origin))


def _model(t: _Translation, section: dict[str, Any]) -> None:
    dtype = section.get("dtype")
    if dtype is None:
        return
    if str(dtype).lower() not in _DTYPES:
        t.problem(Severity.ERROR, Kind.TYPE, ("model", "dtype"), f"unknown dtype {dtype!r}.",
                  f"Use one of: {', '.join(_DTYPES)}.")
        return
    bf16, fp16 = _DTYPES[str(dtype).lower()]
    t.put("bf16", bf16, ("model", "dtype"))
    if fp16 is not None:
        t.put("fp16", fp16, ("model", "dtype"))


def _dataset(t: _Translation, section: dict[str, Any]) -> None:
    entry: dict[str, Any] = {}
    if "path" in section:
        entry["path"] = section["path"]
    if "split" in section:
        entry["split"] = section["split"]
    fmt = str(section.get("format", "alpaca")).lower()
    if fmt not in _FORMATS:
        t.problem(Severity.ERROR, Kind.TYPE, ("dataset", "format"), f"unknown dataset format {fmt!r}.",
                  f"Use one of: {', '.join(_FORMATS)}.")
        return
    fields = {k: section[k] for k in ("input_field", "output_field") if k in section}
    if fmt == "custom" or (fmt == "alpaca" and fields not in ({}, {"input_field": "instruction", "output_field": "output"})):
        entry["type"] = {"field_instruction": fields.get("input_field", "instruction"),
                         "field_output": fields.get("output_field", "output")}
    else:
        entry["type"] = _FORMATS[fmt]
    if "datasets" in t.flat:
        t.problem(Severity.ERROR, Kind.CONFLICT, ("dataset",), "and a flat `datasets:` list are both given.",
                  "Keep one of them.")
        return
    t.flat["datasets"] = [entry]
    for key in entry:
        t.sources[("datasets", 0, key)] = ("dataset", "format" if key == "type" else key)
    t.sources[("datasets", 0)] = ("dataset",)
    t.sources[("datasets",)] = ("dataset",)


def _adapter(t: _Translation, section: dict[str, Any]) -> None:
    path: KeyPath = ("adapter",)
    kind = section.get("type")
    if kind is None:
        return
    kind = str(kind).lower()
    if kind in ("none", "full"):
        t.put("adapter", None, (*path, "type"))
    elif kind in ("lora", "qlora"):
        t.put("adapter", kind, (*path, "type"))
    else:
        t.problem(Severity.ERROR, Kind.TYPE, (*path, "type"), f"unknown adapter type {kind!r}.",
                  "Use lora, qlora or none.")


def _quantization(t: _Translation, section: dict[str, Any]) -> None:
    bits = section.get("bits", 4)
    if bits in (4, 8):
        t.put(f"load_in_{bits}bit", True, ("quantization", "bits"))
    else:
        t.problem(Severity.ERROR, Kind.TYPE, ("quantization", "bits"), f"{bits!r} bits is not supported.", "Use 4 or 8.")
    if "block_size" in section and section["block_size"] != 64:
        t.problem(Severity.WARNING, Kind.UNSUPPORTED_KEY, ("quantization", "block_size"),
                  "is not configurable in bitsandbytes (its NF4 block size is 64); it is ignored.")


def _training(t: _Translation, section: dict[str, Any]) -> None:
    if "mixed_precision" in section and "bf16" not in t.flat:
        t.put("bf16", "auto" if section["mixed_precision"] else False, ("training", "mixed_precision"))


_SPECIAL = {"model": _model, "dataset": _dataset, "training": _training, "quantization": _quantization,
            "adapter": _adapter}


def translate_nested(data: dict[str, Any], origin: str, lines: dict[KeyPath, int]) -> tuple[dict[str, Any], dict[KeyPath, KeyPath], list[Problem]]:
    """Translate a nested axolotl-rs config to flat keys.

    Returns:
        The flat data, a map from each flat key path to the nested path it came from (for line numbers),
        and the problems found (unknown nested keys, bad values, defaults applied).
    """
    t = _Translation(origin, lines)
    # Flat keys first, so that a nested key saying something else is reported as a conflict.
    ordered = sorted(data.items(), key=lambda item: item[0] in SECTIONS and isinstance(item[1], dict))
    for name, value in ordered:
        if name not in SECTIONS or not isinstance(value, dict):
            t.put(name, value, (name,))  # a flat key (base_model, output_dir, seed, …) passes through
            continue
        known = SECTIONS[name]
        for key, item in value.items():
            if key not in known:
                t.problem(Severity.WARNING, Kind.UNKNOWN_KEY, (name, key),
                          f"unknown key in the axolotl-rs `{name}` section{did_you_mean(str(key), known)}; it is ignored.")
            elif known[key] is not None:
                t.put(known[key], item, (name, key))
        special = _SPECIAL.get(name)
        if special is not None:
            special(t, value)
    if t.flat.get("adapter") == "qlora" and not t.flat.get("load_in_8bit"):
        t.flat.setdefault("load_in_4bit", True)
    for key, default in RS_DEFAULTS.items():
        if key not in t.flat and not (key.startswith("lora_") and "adapter" in t.flat and t.flat["adapter"] is None):
            t.flat[key] = default
            t.problems.append(Problem(Severity.NOTE, Kind.DERIVED, key, f"= {default!r} (axolotl-rs default).",
                                      origin=origin))
    return t.flat, t.sources, t.problems

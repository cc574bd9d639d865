"""`axo export RUN --format gguf`: merge the run's adapter (streaming, as `axo merge-lora`), convert the merged model
with llama.cpp's converter, quantize with llama.cpp's quantizer (export/llama_cpp.py), check that the file carries
the run's chat template and end-of-sequence token, and record the export in the run's provenance and model card.

Everything that can fail early is checked before the merge (quantization type, quantizer installed, architecture
known to the converter, tokenizer files, the converter's reading of the tokenizer, disk space); the merged model
and the f16 intermediate live in a scratch folder beside the output, and the GGUF appears under its name only when
complete.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from axo.config.problems import Kind
from axo.export import llama_cpp
from axo.export.llama_cpp import QUANT_TYPES, QUANTIZER_TYPES, Tools, error
from axo.infer.run_dir import Run, open_run
from axo.storage import hash_file

_VOCABULARY_FILES = ("tokenizer.json", "tokenizer.model")  # one of them holds the vocabulary


@dataclass
class ExportReport:
    path: Path
    quant: str
    size: int
    sha256: str
    seconds: float
    converter: str
    chat_template: bool  # the GGUF carries the run's chat template
    eos_token: str
    modelfile: Path | None = None
    ollama_create: str | None = None  # the command that makes an Ollama model of the file


def export_gguf(target: str | Path, *, quant: str = "f16", output: Path | None = None, ollama: bool = False,
                llama_cpp_dir: Path | None = None, say=print) -> ExportReport:
    """Write the run's model as one GGUF file; see the module docstring."""
    from axo.export.ollama import write_modelfile

    quant = quant.lower()
    if quant not in QUANT_TYPES:
        raise error(f"{quant} is not a GGUF type axo exports", "One of: " + ", ".join(QUANT_TYPES) + ".", "--quant",
                    Kind.TYPE)
    if quant in QUANTIZER_TYPES and (problem := llama_cpp.quantizer_problem()):
        raise error(f"--quant {quant} needs llama.cpp's quantizer, from the llama-cpp-python package, which {problem}",
                    f"CMAKE_ARGS=\"-DLLAVA_BUILD=OFF\" {llama_cpp.INSTALL_RUNTIME} (or `pip install 'axo[llama-cpp]'`; "
                    "builds llama.cpp once: ~4 min on 2 cores), or export one of "
                    f"{', '.join(llama_cpp.CONVERTER_TYPES)}, which need no build.", "--quant")
    run = open_run(target, command="export")
    _check_model_kind(run)
    output = (Path(output) if output else run.output_dir / "gguf" / f"model-{quant}.gguf").resolve()
    _check_output(output)
    tools = llama_cpp.find_tools(llama_cpp_dir)
    model_source = _model_folder(run)
    _check_architecture(tools, model_source)
    _check_tokenizer_files(run)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run.output_dir)  # the run's: what the GGUF must carry
    made_folder = not output.parent.exists()
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        _check_disk(run, model_source, output, quant)
        started = time.perf_counter()
        carried = _convert(run, tokenizer, tools, model_source, output, quant, say)
    except BaseException:
        if made_folder and not any(output.parent.iterdir()):
            output.parent.rmdir()  # a failed export leaves nothing, not even its folder
        raise
    seconds = round(time.perf_counter() - started, 1)
    report = ExportReport(output, quant, output.stat().st_size, _sha256(output), seconds, tools.source, *carried)
    if ollama:
        report.modelfile, report.ollama_create = write_modelfile(run, report, tokenizer)
    _record(run, report)
    return report


def _convert(run: Run, tokenizer: Any, tools: Tools, model_source: Path | None, output: Path, quant: str,
             say) -> tuple[bool, str]:
    """The vocabulary check, the merge, the conversion (and quantization) into `output`, complete or absent."""
    with tempfile.TemporaryDirectory(prefix=".axo-export-", dir=output.parent) as scratch_name:
        scratch = Path(scratch_name)
        if model_source is not None:  # the converter reads the tokenizer first: a tokenizer it cannot read fails now
            say("checking the tokenizer with llama.cpp's converter")
            llama_cpp.convert(tools, _vocab_folder(run, model_source, scratch), scratch / "vocab.gguf", "f16",
                              vocab_only=True, source=run.output_dir)
            _check_carried(scratch / "vocab.gguf", run, tokenizer)  # the template and EOS, before the long work
        merged = _merged_model(run, scratch, say)
        partial = output.with_name(output.name + ".partial")
        converted = scratch / "model-f16.gguf" if quant in QUANTIZER_TYPES else partial
        say(f"converting {merged} with llama.cpp's converter ({tools.source})")
        try:
            llama_cpp.convert(tools, merged, converted, "f16" if quant in QUANTIZER_TYPES else quant)
            if quant in QUANTIZER_TYPES:
                say(f"quantizing to {quant} with llama.cpp's quantizer")
                llama_cpp.quantize(converted, partial, quant)
            carried = _check_carried(partial, run, tokenizer)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(output)
    return carried


def _check_output(output: Path) -> None:
    if output.is_dir():
        raise error(f"-o {output} is a folder", "Give the GGUF file's path, e.g. -o model.gguf.", "-o", Kind.CONFLICT)
    if "{" in output.name or "}" in output.name:  # the converter would fill them in as a name template
        raise error(f"-o {output}: a file name with braces", "Name the file without `{` and `}`.", "-o",
                    Kind.CONFLICT)


def _check_model_kind(run: Run) -> None:
    from axo.infer.classify import is_classifier

    if is_classifier(run):
        raise error("a sequence classifier cannot be exported to GGUF: llama.cpp runs language models",
                    "Serve it with `axo serve`, or export a causal language model run.", "--format", Kind.CONFLICT)


def _model_folder(run: Run) -> Path | None:
    """The HF folder whose config.json names the architecture: the run (full fine-tune), the base folder, or for a
    Hub base the folder its config.json is cached in (fetched when not cached); None for a GGUF base or a Hub base
    that cannot be reached (the merge then fetches it, or says why it cannot)."""
    if not run.is_adapter:
        return run.output_dir
    base = Path(run.base_model)
    if (base / "config.json").is_file():
        return base
    if base.suffix.lower() == ".gguf" or base.exists():
        return None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(run.base_model, "config.json")).parent
    except Exception:  # offline, unknown or gated: merge_lora reports it with its own advice
        return None


def _check_architecture(tools: Tools, folder: Path | None) -> None:
    if folder is None:
        return
    names = json.loads((folder / "config.json").read_text()).get("architectures") or []
    if not names:
        raise error(f"{folder / 'config.json'} names no architecture (its `architectures` list is missing or empty); "
                    "llama.cpp's converter picks its code by that name", "Add the model class, e.g. "
                    '`"architectures": ["LlamaForCausalLM"]`, as transformers writes it when it saves a model.',
                    "base_model", Kind.CONFLICT)
    supported = llama_cpp.supported_architectures(tools)
    if names[0] not in supported:
        raise error(f"llama.cpp's converter ({tools.source}) does not support the architecture {names[0]} of "
                    f"{folder}.", f"It supports {len(supported)} architectures (`python {tools.converter} "
                    "--print-supported-models` lists them); a newer llama.cpp checkout may support this one: "
                    "--llama-cpp DIR.", "base_model", Kind.CONFLICT)


def _check_tokenizer_files(run: Run) -> None:
    if not any((run.output_dir / name).is_file() for name in _VOCABULARY_FILES):
        raise error(f"{run.output_dir} has no tokenizer file ({' or '.join(_VOCABULARY_FILES)}); the GGUF must carry "
                    "the tokenizer the run trained with", "Re-save the run's tokenizer into the run folder (`axo "
                    "train` writes it at the end of training).", "tokenizer_config")


_BYTES_PER_PARAMETER = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 1.07}  # the quantizer's types: at most 0.7


def _check_disk(run: Run, folder: Path | None, output: Path, quant: str) -> None:
    """The merged model (adapter runs), the f16 intermediate (the quantizer's types) and the GGUF must fit the
    output's disk. Sizes come from the weights on disk and their dtype; a base whose weights are not here yet (a Hub
    base not in the cache) is not checked."""
    weights = sum(f.stat().st_size for f in folder.glob("model*.safetensors")) if folder else 0
    if not weights:
        return
    dtype = json.loads((folder / "config.json").read_text())
    stored = 4.0 if str(dtype.get("dtype") or dtype.get("torch_dtype")) == "float32" else 2.0
    parameters = weights / stored
    need = (weights if run.is_adapter else 0) + parameters * (2.0 if quant in QUANTIZER_TYPES else 0) \
        + parameters * _BYTES_PER_PARAMETER.get(quant, 0.7)
    free = shutil.disk_usage(output.parent).free
    if need > free:
        parts = ["the merged model"] * run.is_adapter + ["the f16 intermediate"] * (quant in QUANTIZER_TYPES)
        raise error(f"exporting needs about {need / 2**30:.2f} GiB on the disk of {output.parent} "
                    f"({', '.join(parts + ['the GGUF'])}), and {free / 2**30:.2f} GiB are free",
                    "Free space there, or write elsewhere with -o.", "-o")


def _vocab_folder(run: Run, model_folder: Path, scratch: Path) -> Path:
    """The architecture's config.json beside the run's tokenizer files: what the converter reads first. A run that
    added tokens saved resized embeddings with its adapter; their row count is the vocabulary size (as the merge
    writes it), or the converter would refuse the new token ids."""
    from safetensors import safe_open

    from axo.infer.merge import TOKENIZER_FILES

    folder = scratch / "vocab"
    folder.mkdir()
    config = json.loads((model_folder / "config.json").read_text())
    weights = run.output_dir / "adapter_model.safetensors"
    if run.is_adapter and weights.is_file():
        with safe_open(weights, "pt") as handle:
            rows = [handle.get_slice(name).get_shape()[0] for name in handle.keys()
                    if name.endswith(("embed_tokens.weight", "lm_head.weight"))]
        if rows:
            config["vocab_size"] = int(rows[0])
    (folder / "config.json").write_text(json.dumps(config))
    for name in TOKENIZER_FILES:
        if (run.output_dir / name).is_file():
            shutil.copy(run.output_dir / name, folder / name)
    return folder


def _merged_model(run: Run, scratch: Path, say) -> Path:
    """A folder holding the run's full model: the run itself (full fine-tune), else the merge of its adapter."""
    if not run.is_adapter:
        return run.output_dir
    from axo.infer.merge import merge_lora

    say("merging the adapter into its base model")
    report = merge_lora(run.output_dir, output=scratch / "merged")
    return report.output_dir


def _field(reader, key: str):
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def _check_carried(path: Path, run: Run, tokenizer: Any) -> tuple[bool, str]:
    """The GGUF's chat template and EOS are the run's tokenizer's (so llama.cpp formats and stops as the run
    trained); raise otherwise. Returns (carries a chat template, the EOS token's text)."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    template, eos_id = _field(reader, "tokenizer.chat_template"), _field(reader, "tokenizer.ggml.eos_token_id")
    expected = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    if expected is not None and template != expected:
        raise error(f"the converted GGUF's chat template differs from the run's ({run.output_dir})",
                    "Report this: the converter read another template file than the run's.", "chat_template",
                    Kind.CONFLICT)
    if tokenizer.eos_token_id is not None and eos_id != tokenizer.eos_token_id:
        raise error(f"the converted GGUF ends sequences with token {eos_id}, the run with {tokenizer.eos_token_id} "
                    f"({tokenizer.eos_token!r})", "Report this: the converter read another EOS than the run's "
                    "tokenizer_config.json.", "eos_token", Kind.CONFLICT)
    return expected is not None, tokenizer.eos_token or ""


def _sha256(path: Path) -> str:
    return hash_file(path, hashlib.sha256()).hexdigest()


def _record(run: Run, report: ExportReport) -> None:
    """The export in the run's provenance.json (`exports`) and model card (README.md, "Exports")."""
    entry = {"format": "gguf", "quant": report.quant, "file": str(report.path), "bytes": report.size,
             "sha256": report.sha256, "converter": report.converter, "seconds": report.seconds,
             "chat_template": report.chat_template, "eos_token": report.eos_token,
             "modelfile": str(report.modelfile) if report.modelfile else None,
             "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    provenance = run.output_dir / "provenance.json"
    record = json.loads(provenance.read_text()) if provenance.is_file() else {}
    record["exports"] = [e for e in record.get("exports", []) if e.get("file") != entry["file"]] + [entry]
    provenance.write_text(json.dumps(record, indent=2))
    card = run.output_dir / "README.md"
    text = card.read_text() if card.is_file() else ""
    head, _, rest = text.partition("\n## Exports\n")
    _, heading, tail = rest.partition("\n## ")  # the sections after this one stay
    lines = [f"- `{Path(e['file']).name}`: GGUF {e['quant']}, {e['bytes'] / 2**20:.1f} MiB, sha256 `{e['sha256']}`, "
             f"converted by {e['converter']} on {e['date']}" for e in record["exports"]]
    card.write_text(head.rstrip("\n") + "\n\n## Exports\n\n" + "\n".join(lines) + "\n"
                    + ("\n## " + tail if heading else ""))

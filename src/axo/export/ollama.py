"""`axo export --ollama`: a Modelfile beside the GGUF, with the run's prompt format, stop tokens and generation
defaults, and the `ollama create` line that uses it.

Ollama's TEMPLATE is a Go template, not Jinja. axo writes one for the chat formats whose shape it knows (ChatML,
Llama 3, Alpaca), found by rendering the run's own Jinja template with transformers; for any other template it writes none and says
so, and Ollama falls back to its own reading of the chat template embedded in the GGUF.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from axo.export.gguf import ExportReport
    from axo.infer.run_dir import Run

_PROBE = [{"role": "user", "content": "USER-TEXT"}]

# name -> (a rendering of [user] with the generation prompt, after any BOS and default system turn; Go template;
# stop tokens). Ollama passes system messages both as .System and in .Messages: the loop skips them.
_FORMATS = {
    "chatml": ("<|im_start|>user\nUSER-TEXT<|im_end|>\n<|im_start|>assistant\n", (
        '{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}'
        '{{- range .Messages }}{{ if ne .Role "system" }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n'
        '{{ end }}{{ end }}<|im_start|>assistant\n'), ["<|im_end|>", "<|im_start|>"]),
    "llama3": (("<|start_header_id|>user<|end_header_id|>\n\nUSER-TEXT<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n"), (
        '{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}'
        '{{- range .Messages }}{{ if ne .Role "system" }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n'
        '{{ .Content }}<|eot_id|>{{ end }}{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n'),
        ["<|eot_id|>", "<|start_header_id|>"]),
    "alpaca": ("### Instruction:\nUSER-TEXT\n\n### Response:\n", (
        '{{ if .System }}{{ .System }}\n\n{{ end }}### Instruction:\n{{ .Prompt }}\n\n### Response:\n'),
        ["### Instruction:"]),
}
# Hugging Face generation_config.json keys -> Ollama PARAMETER names.
_PARAMETERS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k",
               "repetition_penalty": "repeat_penalty"}


def chat_format(tokenizer: Any, template: str | None = None) -> tuple[str, str, list[str], str | None] | None:
    """(name, Go template, stop tokens, default system text or None) when the chat template (`template`, else the
    tokenizer's own), rendered by transformers for one user message, is exactly a known format's after a BOS and a
    default system turn; None for any other template, or one that does not render."""
    template = template or (tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None)
    if not template:
        return None
    try:
        rendered = tokenizer.apply_chat_template(_PROBE, chat_template=template, tokenize=False,
                                                 add_generation_prompt=True)
    except Exception:  # a template that needs more than one user message's variables: left to Ollama's own reading
        return None
    bos = tokenizer.bos_token or ""
    for name, (turns, go_template, stops) in _FORMATS.items():
        if not rendered.endswith(turns):
            continue
        before = rendered[: -len(turns)]  # a BOS, and a system turn the template adds when the messages have none
        system = re.fullmatch(r"<\|im_start\|>system\n(.*)<\|im_end\|>\n", before, flags=re.DOTALL)
        if before in ("", bos) or system:
            return name, go_template, stops, system.group(1) if system else None
    return None


def write_modelfile(run: Run, report: ExportReport, tokenizer: Any) -> tuple[Path, str]:
    """`<gguf name>.Modelfile` beside the GGUF (one per exported file); returns its path and the `ollama create`
    line that uses it."""
    found = chat_format(tokenizer)
    name = re.sub(r"[^a-z0-9._-]+", "-", run.output_dir.name.lower()).strip("-") or "axo-model"
    path = report.path.with_name(report.path.stem + ".Modelfile")
    create = f"ollama create {name} -f {path}"
    lines = [f"# Written by `axo export --ollama` for {run.output_dir} ({report.quant}). Create the model with:",
             f"#   {create}", f"FROM ./{report.path.name}"]
    stops = [report.eos_token] if report.eos_token else []
    if found:
        format_name, go_template, format_stops, system = found
        lines += [f"# prompt format: {format_name} (read from the run's chat template)",
                  f'TEMPLATE """{go_template}"""']
        if system:
            lines.append(f'SYSTEM """{system}"""')
        stops += [s for s in format_stops if s not in stops]
    else:
        lines.append("# no TEMPLATE: the run's chat template has a shape axo cannot write as an Ollama template; "
                     "Ollama reads the one embedded in the GGUF")
    lines += [f'PARAMETER stop "{stop}"' for stop in stops]
    # The run's sampling defaults: its own generation_config.json (a full fine-tune), else its base model's.
    found_files = [folder / "generation_config.json" for folder in (run.output_dir, Path(run.base_model))]
    generation = next((path for path in found_files if path.is_file()), None)
    settings = json.loads(generation.read_text()) if generation else {}
    lines += [f"PARAMETER {ollama} {settings[key]}" for key, ollama in _PARAMETERS.items()
              if settings.get(key) is not None and settings.get("do_sample", True)]
    path.write_text("\n".join(lines) + "\n")
    return path, create

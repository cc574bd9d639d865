"""Weight files that cannot be read whole, found before a model or adapter loads and reported as damaged
files (a cut-short download or copy), not as the loader's traceback. The check itself is
`axo.storage.safetensors_problem` (safetensors' own header and length check; no tensor is read)."""

from __future__ import annotations

from pathlib import Path

from axo.config.problems import ConfigError, Kind, Problem, Severity

REDOWNLOAD = ("Download or copy the model again (for a Hub model, delete its folder from the Hugging Face cache so "
              "it is fetched again).")


def check_weight_files(folder: Path, key: str, what: str, hint: str) -> None:
    """Raise a ConfigError naming the first damaged `*.safetensors` file directly in `folder` (a model or
    adapter folder); a folder of readable files, or a path that is not a folder, passes. `what` names the
    files in the message ("model weights", "adapter"); `hint` says how to get them again."""
    from axo.storage import safetensors_problem

    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.safetensors")):
        problem = safetensors_problem(path)
        if problem is not None:
            raise ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, key,
                                       f"the {what} in {folder} cannot be read: {problem}; it was cut short or "
                                       "corrupted, e.g. by an interrupted download or copy.", hint)])

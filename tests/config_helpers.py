"""Small helpers shared by the config tests."""

from __future__ import annotations

from axo.config.hardware import Hardware
from axo.config.load import LoadedConfig, resolve_config
from axo.config.problems import Kind, Problem, Severity

H100 = Hardware(cuda_devices=1, compute_capability=(9, 0))
V100 = Hardware(cuda_devices=1, compute_capability=(7, 0))
CPU = Hardware()

BASE = "base_model: ./m\nlearning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n"


def load(text: str, **kwargs) -> LoadedConfig:
    kwargs.setdefault("hardware", CPU)
    return resolve_config(text, origin="cfg.yml", **kwargs)


def find(loaded: LoadedConfig, key: str, kind: Kind | None = None, severity: Severity | None = None) -> Problem:
    """The one problem about `key` (of `kind`/`severity` if given); fails listing all problems otherwise.

    Without `kind`, "not implemented yet" warnings are passed over: nearly every key has one today.
    """
    matches = [p for p in loaded.problems if p.key == key
               and (p.kind is kind if kind is not None else p.kind is not Kind.NOT_IMPLEMENTED)
               and (severity is None or p.severity is severity)]
    assert len(matches) == 1, f"expected one problem for {key!r} ({kind}), got: " + "\n".join(
        p.render() for p in loaded.problems)
    return matches[0]


def kinds(loaded: LoadedConfig, severity: Severity) -> set[Kind]:
    return {p.kind for p in loaded.problems if p.severity is severity}

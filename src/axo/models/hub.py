"""Hugging Face Hub ids a config names: told apart from local paths, loaded from the local Hugging Face cache
when it holds them, and refused at once when it does not and the Hub cannot be asked.

Without this, a machine that cannot reach the Hub spends about 50 s in huggingface_hub's retries (five
"Retrying in Ns" lines per file, huggingface_hub 2.4) before transformers reports the failure, and a model
that *is* cached takes as long to load. So, before anything is loaded (:func:`require`):

- when everything a command loads is in the local cache, the process switches to offline mode and reads it
  from there without a single request to the Hub;
- an id that is not cached is refused at once when `HF_HUB_OFFLINE` is set, or when one short probe of the
  Hub endpoint (`HF_ENDPOINT`, default https://huggingface.co) gets no answer within PROBE_TIMEOUT_S.

A cached id is used as cached even when the Hub is reachable: a run does not change because a repo moved on
(download again to take a newer revision).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from axo.config.paths import looks_like_hub_id, resolve_local_path
from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.config.schema import AxoConfig, DatasetConfig

PROBE_TIMEOUT_S = 2.5

# Files a loader needs, as groups of alternatives: every group must have one of its files in the cache.
_MODEL_CONFIG = (("config.json",),)
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
_PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
_TOKENIZER = (("tokenizer_config.json", "tokenizer.json"),)
_ADAPTER = (("adapter_config.json",), ("adapter_model.safetensors", "adapter_model.bin"))

# What to point the key at instead, for the error message.
_LOCAL_FORM = {"model": "a local model folder or .gguf file", "model config": "a local model folder",
               "tokenizer": "a local folder holding the tokenizer files", "adapter": "a local adapter folder",
               "dataset": "a local data file or folder"}


@dataclass(frozen=True)
class HubRef:
    """One thing a command will load from the Hub.

    Attributes:
        key: the config key that names it (`base_model`, `tokenizer_config`, a dataset entry's `path`).
        what: model, model config, tokenizer, adapter or dataset.
        repo_id: the Hub repository (`org/name`).
        revision: the branch, tag or commit; None for the default branch.
        files: for a model repo, the files the loader needs, as groups of alternatives.
    """

    key: str
    what: str
    repo_id: str
    revision: str | None = None
    files: tuple[tuple[str, ...], ...] = ()

    @property
    def repo_type(self) -> str:
        return "dataset" if self.what == "dataset" else "model"


def hub_repo(value: str | None, config_dir: Path | None = None) -> tuple[str, str | None] | None:
    """(repo id, GGUF file in it or None) when `value` names a Hub repo, None for a local path or no value.

    A value is local when it exists (config/paths.py `resolve_local_path`: the working directory, then
    `config_dir`). Model loaders pass `config_dir=None`: from_pretrained looks in the working directory
    only. `org/name/file.gguf` that is not local is a GGUF file in the Hub repo `org/name`, as the loader
    reads it (models/loader.py `model_source_kwargs`).
    """
    if not value or resolve_local_path(value, config_dir) is not None:
        return None
    if value.lower().endswith(".gguf"):
        repo, _, name = value.rpartition("/")
        return (repo, name) if looks_like_hub_id(repo) else None
    return (value, None) if looks_like_hub_id(value) else None


def _model_repo_ref(key: str, what: str, value: str | None, revision: str | None,
                    files: tuple[tuple[str, ...], ...]) -> HubRef | None:
    repo = hub_repo(value)
    if repo is None:
        return None
    repo_id, gguf = repo
    return HubRef(key, what, repo_id, revision, ((gguf,),) if gguf else files)


def model_ref(cfg: AxoConfig) -> HubRef | None:
    """The base model's weights (and config), when `base_model` is a Hub id."""
    weights = _WEIGHTS + (_PICKLE_WEIGHTS if cfg.load_pickle_weights else ())
    return _model_repo_ref("base_model", "model", cfg.base_model, cfg.revision_of_model, _MODEL_CONFIG + (weights,))


def model_config_ref(cfg: AxoConfig) -> HubRef | None:
    """The model config loaders read (`base_model_config` when it differs from `base_model`)."""
    if cfg.base_model_config in (None, cfg.base_model):
        return _model_repo_ref("base_model", "model config", cfg.base_model, cfg.revision_of_model, _MODEL_CONFIG)
    return _model_repo_ref("base_model_config", "model config", cfg.base_model_config, None, _MODEL_CONFIG)


def tokenizer_ref(cfg: AxoConfig) -> HubRef | None:
    """The tokenizer (`tokenizer_config`, by default the base model's own, at its revision)."""
    if cfg.tokenizer_config in (None, cfg.base_model):
        return _model_repo_ref("base_model", "tokenizer", cfg.base_model, cfg.revision_of_model, _TOKENIZER)
    return _model_repo_ref("tokenizer_config", "tokenizer", cfg.tokenizer_config, None, _TOKENIZER)


def adapter_ref(cfg: AxoConfig) -> HubRef | None:
    """The LoRA adapter to continue from (`lora_model_dir`), when it is a Hub id."""
    return _model_repo_ref("lora_model_dir", "adapter", cfg.lora_model_dir, None, _ADAPTER)


def training_refs(cfg: AxoConfig) -> list[HubRef]:
    """Every Hub id `axo train` loads whatever the data cache holds: model, its config, tokenizer, adapter.

    Datasets are left out: a prepared-data cache can make them unnecessary, so they are checked when read
    (data/sources.py).
    """
    refs = (model_ref(cfg), tokenizer_ref(cfg), model_config_ref(cfg), adapter_ref(cfg) if cfg.adapter else None)
    return [ref for ref in refs if ref is not None]


def dataset_ref(entry: DatasetConfig, key: str, config_dir: Path | None) -> HubRef | None:
    """The Hub dataset a `datasets:` entry names, when its path is not local."""
    repo = hub_repo(entry.path, config_dir)
    if repo is None or repo[1] is not None:
        return None
    return HubRef(key, "dataset", repo[0], entry.revision)


def in_cache(ref: HubRef) -> bool:
    """True when the local Hugging Face cache holds everything the loader needs for `ref`."""
    if ref.repo_type == "dataset":
        return _dataset_in_cache(ref)
    return all(any(_file_in_cache(ref, name) for name in group) for group in ref.files)


def _file_in_cache(ref: HubRef, name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(ref.repo_id, name, revision=ref.revision, repo_type=ref.repo_type)
    if not isinstance(path, str):  # None (unknown) or a marker for "known not to exist"
        return False
    if name.endswith(".index.json"):  # sharded weights: every shard must be there too
        shards = set(json.loads(Path(path).read_text()).get("weight_map", {}).values())
        return all(_file_in_cache(ref, shard) for shard in shards)
    return True


def _dataset_in_cache(ref: HubRef) -> bool:
    # Where `datasets` (5.2, load.py `CachedDatasetModuleFactory`) finds a Hub dataset it prepared before:
    # HF_DATASETS_CACHE/<org>___<snake_case name>/<config>/<version>/<hash>/. Offline, it loads the newest copy
    # from there, whatever its revision (so `revision:` is not checked either).
    import datasets.config
    from datasets.naming import camelcase_to_snakecase

    namespace, name = ref.repo_id.split("/")
    root = Path(datasets.config.HF_DATASETS_CACHE) / f"{namespace}___{camelcase_to_snakecase(name)}"
    return any(path.is_dir() for path in root.glob("*/*/*"))


def _hub_offline(ref: HubRef) -> bool:
    from huggingface_hub import constants

    if ref.repo_type == "dataset":
        import datasets.config

        return bool(datasets.config.HF_HUB_OFFLINE)  # also set by HF_DATASETS_OFFLINE
    return bool(constants.HF_HUB_OFFLINE)


@functools.lru_cache(maxsize=None)
def _probe(endpoint: str) -> str | None:
    """None when `endpoint` answers an HTTP request (any status) within PROBE_TIMEOUT_S, else why not.
    Asked once per endpoint and process: every loader of a run shares the answer."""
    from huggingface_hub.utils import get_session

    try:
        # huggingface_hub's own client, so proxies and certificates are those its downloads will use; a
        # single request, without the retries of its download path
        get_session().head(endpoint, timeout=PROBE_TIMEOUT_S, follow_redirects=False)
    except Exception as exc:  # noqa: BLE001 - whatever stops it (DNS, refused, TLS, timeout) means "unreachable"
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def _unusable(ref: HubRef) -> str | None:
    """Why the Hub cannot be asked for `ref` here (offline mode, or no answer), or None when it can."""
    from huggingface_hub import constants

    if _hub_offline(ref):
        return "HF_HUB_OFFLINE is set, so the Hugging Face Hub is not asked"
    failure = _probe(constants.ENDPOINT)
    if failure is not None:
        return f"the Hugging Face Hub ({constants.ENDPOINT}) cannot be reached from this machine ({failure})"
    return None


def _cache_folder(ref: HubRef) -> str:
    from huggingface_hub import constants

    if ref.repo_type == "dataset":
        import datasets.config

        return str(datasets.config.HF_DATASETS_CACHE)
    return str(constants.HF_HUB_CACHE)


def _unavailable(ref: HubRef, reason: str, others: list[HubRef]) -> ConfigError:
    also = f" (nor of {', '.join(repr(o.repo_id) + ' for `' + o.key + '`' for o in others)})" if others else ""
    message = (f"the {ref.what} {ref.repo_id!r} is a Hugging Face Hub id, and {reason}; the local Hugging Face "
               f"cache ({_cache_folder(ref)}) has no complete copy of it{also}.")
    if ref.repo_type == "dataset":  # offline, `datasets` reads its own prepared copy, not what `hf download` fetches
        elsewhere = ("or run `axo preprocess` where the Hub is reachable and bring its `dataset_prepared_path` "
                     "folder here (prepared data needs no dataset); a copy in the local `datasets` cache is used "
                     "when present.")
    else:
        elsewhere = (f"or copy {ref.repo_id!r} into this machine's Hugging Face cache (`hf download {ref.repo_id}` "
                     "where the Hub is reachable): a cached copy is used without asking the Hub.")
    hint = f"Point `{ref.key}` at {_LOCAL_FORM[ref.what]}, {elsewhere}"
    return ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, ref.key, message, hint)])


class _OfflineMode:
    """Offline mode for this process, switched on by axo when everything a command loads is cached.

    The libraries read it at call time: huggingface_hub 2.4 and transformers from `constants.HF_HUB_OFFLINE`,
    datasets 5.2 from `config.HF_HUB_OFFLINE` (both set from the `HF_HUB_OFFLINE` environment variable when
    imported), peft 0.21 from the environment variable itself. Passing `local_files_only` is not enough:
    transformers 5.24 still asks the Hub for an `adapter_config.json` (with retries) and peft asks for
    `config.json` when it saves. This class is axo's only change to another library's state;
    tests/models/test_hub.py fails (retries, or a slow run) if these switches stop taking effect.
    """

    def __init__(self) -> None:
        self.switched = False  # axo switched it on (the user's own HF_HUB_OFFLINE is never switched off)

    def on(self) -> None:
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            return
        constants.HF_HUB_OFFLINE = True
        os.environ["HF_HUB_OFFLINE"] = "1"
        self._set_datasets(True)  # a later `import datasets` reads the huggingface_hub flag itself
        self.switched = True

    def off(self) -> None:
        """Undo axo's own switch, for a command that must download after all."""
        if not self.switched:
            return
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = False
        os.environ.pop("HF_HUB_OFFLINE", None)  # unset before: axo switches only when offline mode was off
        self._set_datasets(os.environ.get("HF_DATASETS_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"))
        self.switched = False

    @staticmethod
    def _set_datasets(value: bool) -> None:
        config = sys.modules.get("datasets.config")
        if config is not None:
            config.HF_HUB_OFFLINE = value


OFFLINE = _OfflineMode()


def require(refs: Iterable[HubRef | None]) -> None:
    """Make each of `refs` (None entries are local paths, skipped) loadable without waiting on the network.

    When all are in the local cache, the process switches to offline mode: they load from the cache with no
    request to the Hub, so no retries where it is unreachable. Otherwise the Hub is probed (once per process)
    and must answer, unless `HF_HUB_OFFLINE` is set, in which case every one must be cached.

    Raises:
        ConfigError: one problem naming the first ref that is neither cached nor loadable, why (offline
            mode, or the Hub does not answer), the others in the same state, and how to use a local copy.
    """
    refs = [ref for ref in refs if ref is not None]
    missing = [ref for ref in refs if not in_cache(ref)]
    if not missing:
        if refs:
            OFFLINE.on()
        return
    OFFLINE.off()  # something must come from the Hub: an earlier switch of axo's no longer holds
    blocked: dict[tuple[str, str], tuple[HubRef, str]] = {}
    for ref in missing:
        if (ref.key, ref.repo_id) not in blocked:
            reason = _unusable(ref)
            if reason is not None:
                blocked[ref.key, ref.repo_id] = (ref, reason)
    if blocked:
        (first, reason), *others = blocked.values()
        raise _unavailable(first, reason, [ref for ref, _ in others])


def cache_hint(ref: HubRef | None) -> str:
    """Words to add to a failure to load `ref` when it was read from the cache in offline mode."""
    from huggingface_hub import constants

    if ref is None or not constants.HF_HUB_OFFLINE:
        return ""
    return (" (It was read from the local Hugging Face cache, which may hold only part of it: download it again "
            "where the Hub is reachable.)")

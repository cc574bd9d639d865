"""Hub ids without internet: a cached id loads from the cache without asking the Hub; one that is not cached
is refused at once, with one line that says what to do, instead of ~50 s of "Retrying in Ns".

No test sends traffic off this machine: "unreachable" is a closed loopback port (`HF_ENDPOINT`), a "hung" Hub
is a loopback socket that never answers, a "reachable" one a loopback HTTP server, and each test has its own
Hugging Face cache (`HF_HOME`) laid out as huggingface_hub and datasets write it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from config_helpers import CPU
from train_helpers import tiny_lora_config

from axo.config.load import resolve_config
from axo.config.problems import ConfigError
from axo.models import hub

CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens there, the connection is refused at once
COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "tiny-org/tiny-llama"


def put_in_hub_cache(cache: Path, repo_id: str, source: Path, names: list[str] | None = None,
                     revision: str = "main") -> Path:
    """Copy `names` (default: every file) of `source` into `cache` as huggingface_hub lays out a download:
    models--org--name/snapshots/<commit>/<file> and refs/<revision> holding the commit."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    for name in names or [f.name for f in source.iterdir()]:
        shutil.copy(source / name, snapshot / name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / revision).write_text(COMMIT)
    return snapshot


def put_in_datasets_cache(cache: Path, repo_id: str, rows: list[dict], build: Path) -> None:
    """A Hub dataset as `datasets` keeps it after a first load: <org>___<name>/<config>/<version>/<commit>/
    with dataset_info.json and <name>-<split>.arrow (built here from local rows with datasets' json builder)."""
    import datasets

    build.mkdir(parents=True, exist_ok=True)
    (build / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    datasets.load_dataset("json", data_files=str(build / "rows.jsonl"), split="train", cache_dir=str(build / "cache"))
    [built] = [p for p in (build / "cache").glob("json/*/*/*") if p.is_dir()]
    org, name = repo_id.split("/")
    target = cache / f"{org}___{name}" / "default" / "0.0.0" / COMMIT
    target.mkdir(parents=True)
    shutil.copy(built / "dataset_info.json", target / "dataset_info.json")
    shutil.copy(built / "json-train.arrow", target / f"{name}-train.arrow")


# ---- telling ids from paths, and what "cached" means ----

def test_hub_ids_are_told_apart_from_local_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "local-model").mkdir(parents=True)
    (tmp_path / "configs" / "org" / "data").mkdir(parents=True)
    assert hub.hub_repo("org/local-model") is None  # exists here: a local folder, as from_pretrained sees it
    assert hub.hub_repo("org/remote-model") == ("org/remote-model", None)
    assert hub.hub_repo("org/remote-model/model.Q4_K_M.gguf") == ("org/remote-model", "model.Q4_K_M.gguf")
    assert hub.hub_repo("./no-such-model") is None and hub.hub_repo("missing.gguf") is None
    assert hub.hub_repo("a/b/c") is None and hub.hub_repo(None) is None
    assert hub.hub_repo("org/data", tmp_path / "configs") is None  # datasets are also found beside the config
    assert hub.hub_repo("org/data") == ("org/data", None)


@pytest.fixture
def hub_home(tmp_path, monkeypatch):
    """An empty Hugging Face cache and a closed Hub endpoint for this process; everything restored after."""
    import datasets.config
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "ENDPOINT", CLOSED)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # records the variable's state, so a value axo sets is undone after
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(hub.OFFLINE, "switched", False)
    return tmp_path / "hub"


def _cfg(text: str):
    return resolve_config("learning_rate: 1e-4\ndatasets:\n  - path: d.jsonl\n    type: alpaca\n" + text,
                          hardware=CPU).require()


def test_a_model_is_cached_only_with_its_config_and_every_weight_shard(hub_home, tiny_llama_dir):
    cfg = _cfg(f"base_model: {REPO}\n")
    put_in_hub_cache(hub_home, REPO, tiny_llama_dir, ["tokenizer.json", "tokenizer_config.json"])
    assert hub.in_cache(hub.tokenizer_ref(cfg)) and not hub.in_cache(hub.model_ref(cfg))
    snapshot = put_in_hub_cache(hub_home, REPO, tiny_llama_dir, ["config.json"])
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (snapshot / "model.safetensors.index.json").write_text(json.dumps(index))
    (snapshot / "model-00001-of-00002.safetensors").write_bytes(b"")
    assert not hub.in_cache(hub.model_ref(cfg))  # one shard missing
    (snapshot / "model-00002-of-00002.safetensors").write_bytes(b"")
    assert hub.in_cache(hub.model_ref(cfg))
    pinned = _cfg(f"base_model: {REPO}\nrevision_of_model: v2\n")
    assert not hub.in_cache(hub.model_ref(pinned))  # the cache knows `main`, not `v2`


def test_a_dataset_is_cached_when_datasets_has_prepared_it(hub_home, tmp_path):
    from axo.config.schema import DatasetConfig

    entry = DatasetConfig(path="tiny-org/tips", type="alpaca")
    ref = hub.dataset_ref(entry, "path", None)
    assert not hub.in_cache(ref)
    put_in_datasets_cache(tmp_path / "datasets", "tiny-org/tips", [{"instruction": "a", "output": "b"}],
                          tmp_path / "build")
    assert hub.in_cache(ref)


# ---- deciding once: offline from the cache, or one probe ----

def test_everything_cached_switches_the_process_offline_until_something_must_be_downloaded(hub_home, tiny_llama_dir):
    from huggingface_hub import constants

    put_in_hub_cache(hub_home, REPO, tiny_llama_dir)
    hub.require(hub.training_refs(_cfg(f"base_model: {REPO}\n")))
    assert constants.HF_HUB_OFFLINE is True and os.environ["HF_HUB_OFFLINE"] == "1"
    with pytest.raises(ConfigError) as refused:
        hub.require([hub.model_ref(_cfg("base_model: tiny-org/not-cached\n"))])
    # axo's own switch is not the user's HF_HUB_OFFLINE: the reason given is the Hub that does not answer
    assert "cannot be reached from this machine" in refused.value.problems[0].message
    assert constants.HF_HUB_OFFLINE is False and "HF_HUB_OFFLINE" not in os.environ


def test_the_users_offline_mode_is_named_and_kept(hub_home, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError) as refused:
        hub.require(hub.training_refs(_cfg("base_model: tiny-org/not-cached\n")))
    [problem] = refused.value.problems
    assert problem.key == "base_model"
    assert problem.message == ("the model 'tiny-org/not-cached' is a Hugging Face Hub id, and HF_HUB_OFFLINE is set, "
                               "so the Hugging Face Hub is not asked; the local Hugging Face cache "
                               f"({hub_home}) has no complete copy of it.")
    assert problem.hint.startswith("Point `base_model` at a local model folder or .gguf file, or copy")
    assert constants.HF_HUB_OFFLINE is True


class _CountingHub(BaseHTTPRequestHandler):
    requests = 0

    def do_HEAD(self):  # noqa: N802 - http.server's name
        type(self).requests += 1
        self.send_response(404)  # any answer means "reachable"
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def answering_hub(monkeypatch):
    from huggingface_hub import constants

    _CountingHub.requests = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CountingHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    yield _CountingHub
    server.shutdown()
    server.server_close()


def test_a_hub_that_answers_is_asked_once_and_only_for_what_is_not_cached(hub_home, answering_hub, tiny_llama_dir):
    from huggingface_hub import constants

    put_in_hub_cache(hub_home, REPO, tiny_llama_dir)
    hub.require(hub.training_refs(_cfg(f"base_model: {REPO}\n")))
    hub.require([None])
    assert answering_hub.requests == 0  # all cached, or local: no probe
    was_offline = hub.OFFLINE.switched
    hub.require(hub.training_refs(_cfg("base_model: tiny-org/not-cached\n")))
    hub.require([hub.tokenizer_ref(_cfg("base_model: tiny-org/other\n"))])
    assert answering_hub.requests == 1 and was_offline is True
    assert constants.HF_HUB_OFFLINE is False  # these will be downloaded


def test_a_hub_that_never_answers_is_given_up_after_the_probe_timeout(hub_home, monkeypatch):
    from huggingface_hub import constants

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # connections are queued and never answered
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
    started = time.perf_counter()
    with pytest.raises(ConfigError) as refused:
        hub.require([hub.model_ref(_cfg("base_model: tiny-org/not-cached\n"))])
    elapsed = time.perf_counter() - started
    silent.close()
    assert hub.PROBE_TIMEOUT_S - 0.5 < elapsed < hub.PROBE_TIMEOUT_S + 2.5
    assert "cannot be reached from this machine" in refused.value.problems[0].message


# ---- through the real commands, with the environment a user would set ----

def _axo(*args: str, cwd: Path, hf_home: Path, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "axo", *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={**clean, "HF_HOME": str(hf_home), "HF_ENDPOINT": CLOSED, **env})
    return done, time.perf_counter() - started


def _one_error(done: subprocess.CompletedProcess) -> str:
    """The single `error:` line of a failed command that neither retried nor printed a traceback."""
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Retrying" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def test_preprocess_with_hf_hub_offline_and_nothing_cached_fails_at_once(tmp_path):
    (tmp_path / "cfg.yml").write_text(tiny_lora_config(tmp_path, "tiny-org/not-cached", "run"))
    done, elapsed = _axo("preprocess", "cfg.yml", cwd=tmp_path, hf_home=tmp_path / "hf", HF_HUB_OFFLINE="1")
    error = _one_error(done)
    assert error.startswith("error: base_model: the tokenizer 'tiny-org/not-cached' is a Hugging Face Hub id, and "
                            "HF_HUB_OFFLINE is set")
    assert "Point `base_model` at a local folder holding the tokenizer files" in error
    assert "a cached copy is used without asking the Hub" in error
    assert elapsed < 15, elapsed  # was ~50 s of retries when the Hub is unreachable


def test_train_with_an_unreachable_hub_fails_before_any_data_work(tmp_path):
    (tmp_path / "cfg.yml").write_text(tiny_lora_config(tmp_path, "tiny-org/not-cached", "run"))
    done, elapsed = _axo("train", "cfg.yml", cwd=tmp_path, hf_home=tmp_path / "hf")
    error = _one_error(done)
    assert error.startswith("error: base_model: the model 'tiny-org/not-cached' is a Hugging Face Hub id, and the "
                            f"Hugging Face Hub ({CLOSED}) cannot be reached from this machine")
    assert "Point `base_model` at a local model folder or .gguf file" in error
    assert not (tmp_path / "prepared").exists()  # refused in preflight, before the data is touched
    assert elapsed < 45, elapsed  # importing the training stack takes ~10 s on a loaded 2-core machine


def test_a_cached_hub_model_trains_and_generates_without_asking_the_hub(tmp_path, tiny_llama_dir):
    put_in_hub_cache(tmp_path / "hf" / "hub", REPO, tiny_llama_dir)
    (tmp_path / "cfg.yml").write_text(tiny_lora_config(tmp_path, REPO, "run", steps="max_steps: 1"))
    trained, _ = _axo("train", "cfg.yml", cwd=tmp_path, hf_home=tmp_path / "hf")
    assert trained.returncode == 0, trained.stderr
    assert "Retrying" not in trained.stderr and "error" not in trained.stderr.lower(), trained.stderr
    assert "done: 1 steps" in trained.stdout and (tmp_path / "run" / "adapter_model.safetensors").is_file()
    (tmp_path / "q.jsonl").write_text(json.dumps({"instruction": "Tip 1?"}) + "\n")
    generated, _ = _axo("inference", "run", "-i", "q.jsonl", "-o", "out.jsonl", "--max-new-tokens", "2",
                        cwd=tmp_path, hf_home=tmp_path / "hf")
    assert generated.returncode == 0 and "Retrying" not in generated.stderr, generated.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 1


def test_inference_on_a_run_whose_hub_base_is_not_cached_fails_at_once(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "axo_config.yml").write_text(tiny_lora_config(tmp_path, "tiny-org/not-cached", "run"))
    (run / "axo_run.json").write_text('{"state": "finished"}')  # a finished run (only its base matters here)
    (tmp_path / "q.jsonl").write_text(json.dumps({"instruction": "Tip 1?"}) + "\n")
    done, elapsed = _axo("inference", "run", "-i", "q.jsonl", "-o", "out.jsonl", cwd=tmp_path, hf_home=tmp_path / "hf")
    error = _one_error(done)
    assert error.startswith("error: base_model: the model 'tiny-org/not-cached' is a Hugging Face Hub id")
    assert not (tmp_path / "out.jsonl").exists() and elapsed < 15, elapsed


def test_a_hub_dataset_reads_from_the_datasets_cache_and_an_uncached_one_fails_at_once(tmp_path, tiny_llama_dir):
    rows = [{"instruction": f"Tip {i}?", "input": "", "output": f"Drink water {i}."} for i in range(4)]
    put_in_datasets_cache(tmp_path / "hf" / "datasets", "tiny-org/tips", rows, tmp_path / "build")
    config = (f"base_model: {tiny_llama_dir}\nlearning_rate: 1e-4\ndataset_prepared_path: prepared\n"
              "datasets:\n  - path: tiny-org/{name}\n    type: alpaca\n")
    (tmp_path / "cached.yml").write_text(config.replace("{name}", "tips"))
    (tmp_path / "missing.yml").write_text(config.replace("{name}", "not-cached"))
    read, _ = _axo("preprocess", "cached.yml", cwd=tmp_path, hf_home=tmp_path / "hf")
    assert read.returncode == 0 and "Retrying" not in read.stderr, read.stderr
    assert "train: 4 samples" in read.stdout
    done, elapsed = _axo("preprocess", "missing.yml", cwd=tmp_path, hf_home=tmp_path / "hf")
    error = _one_error(done)
    assert error.startswith("error: path: the dataset 'tiny-org/not-cached' is a Hugging Face Hub id, and the "
                            f"Hugging Face Hub ({CLOSED}) cannot be reached")
    assert "run `axo preprocess` where the Hub is reachable" in error and elapsed < 15, elapsed

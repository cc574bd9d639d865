"""The prepared-data cache: reused when nothing changed, rebuilt when anything that changes tokens did,
and never left half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from config_helpers import load

from axo.data.cache import bundled_templates_digest, load_prepared, remove_partial_folders, save_prepared
from axo.data.formats.base import Sample
from axo.data.prepare import prepare_data

ROWS = [{"instruction": f"Give tip number {i}.", "input": "", "output": f"Tip {i}: drink water."} for i in range(12)]


@pytest.fixture
def workspace(tmp_path: Path, tiny_tokenizer_dir: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    with (tmp_path / "data.jsonl").open("w") as handle:
        for row in ROWS:
            handle.write(json.dumps(row) + "\n")
    (tmp_path / "cfg.yml").write_text(
        f"base_model: {tiny_tokenizer_dir}\nlearning_rate: 1e-4\ndataset_prepared_path: prepared\n"
        "val_set_size: 0.25\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n")
    return tmp_path


def _prepare(workspace: Path, extra: str = ""):
    from axo.models.tokenizer import load_tokenizer

    cfg = load((workspace / "cfg.yml").read_text() + extra).require()
    return prepare_data(cfg, load_tokenizer(cfg), config_dir=workspace)


def test_unchanged_run_reuses_the_cache(workspace):
    first = _prepare(workspace)
    second = _prepare(workspace)
    assert not first.from_cache and second.from_cache
    assert second.fingerprint == first.fingerprint
    assert [s.input_ids for s in second.train] == [s.input_ids for s in first.train]
    assert [s.labels for s in second.eval] == [s.labels for s in first.eval]
    assert len(first.train) == 9 and len(first.eval) == 3  # ceil(0.25 * 12) held out


def test_editing_one_line_of_the_data_prepares_again(workspace):
    first = _prepare(workspace)
    lines = (workspace / "data.jsonl").read_text().splitlines()
    lines[5] = json.dumps({"instruction": "Changed.", "input": "", "output": "New answer."})
    (workspace / "data.jsonl").write_text("\n".join(lines) + "\n")
    second = _prepare(workspace)
    assert not second.from_cache and second.fingerprint != first.fingerprint


@pytest.mark.parametrize("extra", ["sequence_len: 64\n", "train_on_inputs: true\n", "seed: 7\n",
                                   "special_tokens:\n  pad_token: <unk>\n"])
def test_settings_that_change_tokens_change_the_fingerprint(workspace, extra):
    assert _prepare(workspace).fingerprint != _prepare(workspace, extra).fingerprint


def test_settings_that_do_not_change_tokens_keep_the_cache(workspace):
    first = _prepare(workspace)
    assert _prepare(workspace, "learning_rate: 5e-5\nnum_epochs: 3\n").fingerprint == first.fingerprint


def test_upgrading_axo_prepares_again(workspace, monkeypatch):
    first = _prepare(workspace)
    monkeypatch.setattr("axo.data.cache.__version__", "99.0.0")
    assert _prepare(workspace).fingerprint != first.fingerprint


def test_editing_a_bundled_chat_template_changes_the_fingerprint(tmp_path):
    import shutil
    from importlib import resources

    copy = tmp_path / "templates"
    shutil.copytree(str(resources.files("axo.data.chat_templates")), copy)
    assert bundled_templates_digest(copy) == bundled_templates_digest()
    (copy / "chatml.jinja").write_text((copy / "chatml.jinja").read_text().replace("<|im_end|>", "<|end|>"))
    assert bundled_templates_digest(copy) != bundled_templates_digest()


def test_a_changed_tokenizer_file_prepares_again(workspace, tmp_path_factory, tiny_tokenizer_dir):
    import shutil

    copy = tmp_path_factory.mktemp("tok-copy")
    for file in Path(tiny_tokenizer_dir).iterdir():
        shutil.copy(file, copy)
    text = (workspace / "cfg.yml").read_text().replace(str(tiny_tokenizer_dir), str(copy))
    (workspace / "cfg.yml").write_text(text)
    first = _prepare(workspace)
    config = json.loads((copy / "tokenizer_config.json").read_text())
    config["model_max_length"] = 1024
    (copy / "tokenizer_config.json").write_text(json.dumps(config))
    assert _prepare(workspace).fingerprint != first.fingerprint


def test_a_half_written_cache_is_never_loaded_and_is_cleaned_up(tmp_path):
    root = tmp_path / "prepared"
    partial = root / ".abc.999999999.xyz.partial"  # a staging folder of a process that no longer runs
    partial.mkdir(parents=True)
    (partial / "train.arrow").write_bytes(b"half")
    assert load_prepared(root / "abc") is None
    assert remove_partial_folders(root) == [partial] and not partial.exists()


def test_saved_splits_round_trip_and_load_in_datasets(tmp_path):
    samples = [Sample([1, 2, 3], [-100, 2, 3], 0), Sample([4, 5], [4, 5], 1)]
    folder = save_prepared(tmp_path, "key", {"train": samples, "eval": []}, {"splits": ["train", "eval"]})
    splits, meta = load_prepared(folder)
    assert [(s.input_ids, s.labels) for s in splits["train"]] == [([1, 2, 3], [-100, 2, 3]), ([4, 5], [4, 5])]
    assert not list(tmp_path.glob(".*.partial"))
    import datasets

    dataset = datasets.Dataset.from_file(str(folder / "train.arrow"))
    assert dataset[0]["labels"] == [-100, 2, 3]


def test_a_truncated_arrow_file_is_treated_as_missing(tmp_path):
    folder = save_prepared(tmp_path, "key", {"train": [Sample([1, 2], [1, 2], 0)], "eval": []}, {"splits": ["train", "eval"]})
    data = (folder / "train.arrow").read_bytes()
    (folder / "train.arrow").write_bytes(data[: len(data) // 2])
    assert load_prepared(folder) is None

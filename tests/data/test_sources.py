"""Reading local dataset files: formats, line numbers in errors, split slices and shards."""

from __future__ import annotations

import json

import pytest

from axo.data.errors import DataError
from axo.data.sources import read_rows


@pytest.fixture
def entry_for(make_cfg):
    """entry_for(path, extra_yaml_lines) -> the typed DatasetConfig of a one-dataset config."""

    def make(path, extra: str = ""):
        body = f"datasets:\n  - path: {path}\n    type: completion\n"
        body += "".join(f"    {line}\n" for line in extra.splitlines() if line)
        return make_cfg(body).datasets[0]

    return make


def _texts(rows):
    return [row["text"] for row in rows.rows]


def test_jsonl_rows_and_line_numbers(tmp_path, entry_for):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": "b"}\n   \n{"text": "c"}\n', encoding="utf-8")
    rows = read_rows(entry_for(path))
    assert _texts(rows) == ["a", "b", "c"]
    assert [rows.where(i) for i in range(3)] == [(str(path), 1), (str(path), 3), (str(path), 5)]


def test_malformed_jsonl_line(tmp_path, entry_for):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a"}\n{"text": "b"}\n\n{"text": "c",}\n{"text": "d"}\n', encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_rows(entry_for(path))
    (problem,) = caught.value.problems
    assert problem.origin == str(path)
    assert problem.line == 4
    assert "line 4" in problem.message
    assert f"{path}:4" in str(caught.value)


def test_jsonl_line_that_is_not_an_object(tmp_path, entry_for):
    path = tmp_path / "list.jsonl"
    path.write_text('{"text": "a"}\n["text", "b"]\n', encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_rows(entry_for(path))
    (problem,) = caught.value.problems
    assert (problem.origin, problem.line) == (str(path), 2)
    assert "list" in problem.message


def test_csv(tmp_path, entry_for):
    path = tmp_path / "d.csv"
    path.write_text('text,label\nhello,1\n"a, quoted, value",2\n', encoding="utf-8")
    rows = read_rows(entry_for(path))
    assert rows.rows == [{"text": "hello", "label": "1"}, {"text": "a, quoted, value", "label": "2"}]
    assert [rows.where(i)[1] for i in range(2)] == [2, 3]


def test_csv_with_too_many_columns(tmp_path, entry_for):
    path = tmp_path / "d.csv"
    path.write_text("text\nhello\nx,y\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_rows(entry_for(path))
    assert (caught.value.problems[0].origin, caught.value.problems[0].line) == (str(path), 3)


def test_parquet(tmp_path, entry_for):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["a", "b", "c"], "n": [1, 2, 3]}), path)
    rows = read_rows(entry_for(path))
    assert rows.rows == [{"text": "a", "n": 1}, {"text": "b", "n": 2}, {"text": "c", "n": 3}]
    assert rows.where(2) == (str(path), 3)


def test_json_list(tmp_path, entry_for):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"text": "a"}, {"text": "b"}], indent=2), encoding="utf-8")
    rows = read_rows(entry_for(path))
    assert _texts(rows) == ["a", "b"]
    assert rows.where(1) == (str(path), 2)


def test_json_object_with_field(tmp_path, entry_for):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"version": 1, "data": [{"text": "a"}, {"text": "b"}]}), encoding="utf-8")
    assert _texts(read_rows(entry_for(path, "field: data"))) == ["a", "b"]


def test_json_object_without_field_names_the_list_keys(tmp_path, entry_for):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"version": 1, "data": [{"text": "a"}]}), encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_rows(entry_for(path))
    (problem,) = caught.value.problems
    assert problem.origin == str(path)
    assert "data" in problem.hint and "field" in problem.hint


def test_json_file_holding_json_lines(tmp_path, entry_for):
    path = tmp_path / "d.json"
    path.write_text('{"text": "a"}\n{"text": "b"}\n', encoding="utf-8")
    assert _texts(read_rows(entry_for(path))) == ["a", "b"]


def test_folder_of_files(tmp_path, entry_for):
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.jsonl").write_text('{"text": "a1"}\n{"text": "a2"}\n', encoding="utf-8")
    (folder / "b.json").write_text(json.dumps([{"text": "b1"}]), encoding="utf-8")
    (folder / "sub" / "c.jsonl").write_text('\n{"text": "c1"}\n', encoding="utf-8")
    (folder / "README.md").write_text("not data", encoding="utf-8")
    rows = read_rows(entry_for(folder))
    assert _texts(rows) == ["a1", "a2", "b1", "c1"]
    assert rows.where(1) == (str(folder / "a.jsonl"), 2)
    assert rows.where(2) == (str(folder / "b.json"), 1)
    assert rows.where(3) == (str(folder / "sub" / "c.jsonl"), 2)


def test_folder_with_one_file_names_the_file_in_errors(tmp_path, entry_for):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "only.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n', encoding="utf-8")
    rows = read_rows(entry_for(folder))
    assert rows.where(1) == (str(folder / "only.jsonl"), 2)


def test_folder_with_data_files(tmp_path, entry_for):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"text": "a"}\n', encoding="utf-8")
    (folder / "b.jsonl").write_text('{"text": "b"}\n', encoding="utf-8")
    assert _texts(read_rows(entry_for(folder, "data_files: b.jsonl"))) == ["b"]
    with pytest.raises(DataError):
        read_rows(entry_for(folder, "data_files: [missing.jsonl]"))


def test_empty_folder(tmp_path, entry_for):
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(DataError) as caught:
        read_rows(entry_for(folder))
    assert caught.value.problems[0].origin == str(folder)


def test_missing_path(tmp_path, entry_for):
    with pytest.raises(DataError) as caught:
        read_rows(entry_for(tmp_path / "nope.jsonl"))
    assert caught.value.problems[0].key == "path"


def _ten(tmp_path):
    path = tmp_path / "ten.jsonl"
    path.write_text("".join(json.dumps({"text": str(i)}) + "\n" for i in range(10)), encoding="utf-8")
    return path


@pytest.mark.parametrize("split, expected", [
    ("train[:2]", ["0", "1"]),
    ("train[50%:]", ["5", "6", "7", "8", "9"]),
    ("train[10%:30%]", ["1", "2"]),
    ("train[-3:]", ["7", "8", "9"]),
    ("train[7:]", ["7", "8", "9"]),
    ("train", [str(i) for i in range(10)]),
])
def test_split_slices(tmp_path, entry_for, split, expected):
    path = _ten(tmp_path)
    rows = read_rows(entry_for(path, f"split: '{split}'"))
    assert _texts(rows) == expected
    # the line numbers follow the rows
    assert [rows.where(i)[1] for i in range(len(expected))] == [int(t) + 1 for t in expected]


@pytest.mark.parametrize("split", ["test", "train[a:b]"])
def test_bad_splits(tmp_path, entry_for, split):
    with pytest.raises(DataError) as caught:
        read_rows(entry_for(_ten(tmp_path), f"split: '{split}'"))
    assert caught.value.problems[0].key == "split"


# Contiguous shards of the seed-42 permutation of rows 0-9, [5, 6, 0, 7, 3, 2, 4, 9, 1, 8] (as Axolotl 0.21).
@pytest.mark.parametrize("shards, index, expected", [
    (3, 0, ["5", "6", "0", "7"]),
    (3, 1, ["3", "2", "4"]),
    (3, 2, ["9", "1", "8"]),
    (2, None, ["5", "6", "0", "7", "3"]),
])
def test_shards(tmp_path, entry_for, shards, index, expected):
    extra = f"shards: {shards}\n" + (f"shards_idx: {index}\n" if index is not None else "")
    assert _texts(read_rows(entry_for(_ten(tmp_path), extra))) == expected


def test_shards_match_axolotls_shuffled_contiguous_shard(tmp_path, entry_for):
    import datasets

    rows = [{"text": str(i)} for i in range(11)]
    path = tmp_path / "eleven.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    full = datasets.Dataset.from_list(rows)
    for seed in (42, 7):
        for index in range(4):  # Axolotl 0.21: dataset.shuffle(seed=seed).shard(num_shards, index)
            ours = _texts(read_rows(entry_for(path, f"shards: 4\nshards_idx: {index}"), seed=seed))
            assert ours == full.shuffle(seed=seed).shard(4, index, contiguous=True)["text"]


def test_shards_after_split(tmp_path, entry_for):
    import datasets

    six = datasets.Dataset.from_list([{"text": str(i)} for i in range(6)]).shuffle(seed=42).shard(2, 1)["text"]
    assert _texts(read_rows(entry_for(_ten(tmp_path), "split: 'train[:6]'\nshards: 2\nshards_idx: 1"))) == six


def test_shards_idx_out_of_range(tmp_path, entry_for):
    with pytest.raises(DataError) as caught:
        read_rows(entry_for(_ten(tmp_path), "shards: 2\nshards_idx: 2"))
    assert caught.value.problems[0].key == "shards_idx"


def test_folder_finds_upper_case_suffixes(tmp_path, entry_for):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "A.JSONL").write_text('{"text": "a"}\n', encoding="utf-8")
    (folder / "b.jsonl").write_text('{"text": "b"}\n', encoding="utf-8")
    assert _texts(read_rows(entry_for(folder))) == ["a", "b"]

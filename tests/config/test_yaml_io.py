"""Safe YAML reading: limits, line numbers and clear errors for unreadable files."""

from __future__ import annotations

import pytest

from axo.config.problems import ConfigError, Kind
from axo.config.yaml_io import MAX_EXPANDED_NODES, parse_yaml_text, read_yaml_file


def test_records_line_of_every_key_including_nested_ones():
    doc = parse_yaml_text("base_model: m\ndatasets:\n  - path: a.jsonl\n    type: alpaca\n", "cfg.yml")
    assert doc.lines[("base_model",)] == 1
    assert doc.lines[("datasets", 0, "type")] == 4
    assert doc.line_of(("datasets", 0, "type", "deeper")) == 4


def test_alias_bomb_is_refused():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefgh":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"
    with pytest.raises(ConfigError) as info:
        parse_yaml_text(bomb, "bomb.yml")
    assert "alias" in info.value.problems[0].message or f"{MAX_EXPANDED_NODES:,}" in info.value.problems[0].message


def test_a_few_aliases_are_fine():
    doc = parse_yaml_text("common: &c [q_proj, v_proj]\nlora_target_modules: *c\n", "cfg.yml")
    assert doc.data["lora_target_modules"] == ["q_proj", "v_proj"]


def test_duplicate_key_is_a_warning_naming_both_lines():
    doc = parse_yaml_text("learning_rate: 1e-4\nseed: 1\nlearning_rate: 2e-4\n", "cfg.yml")
    [problem] = doc.problems
    assert problem.key == "learning_rate" and "lines 1 and 3" in problem.message
    assert doc.data["learning_rate"] == "2e-4"


def test_syntax_error_names_line_and_column():
    with pytest.raises(ConfigError) as info:
        parse_yaml_text("base_model: m\ndatasets:\n  - path: a\n   type: alpaca\n", "cfg.yml")
    problem = info.value.problems[0]
    assert problem.kind is Kind.SYNTAX and problem.line == 4 and "column" in problem.message


@pytest.mark.parametrize("text, fragment", [("", "empty"), ("- a\n- b\n", "mapping"), ("just text", "mapping")])
def test_non_mapping_documents_are_refused(text, fragment):
    with pytest.raises(ConfigError) as info:
        parse_yaml_text(text, "cfg.yml")
    assert fragment in info.value.problems[0].message


def test_python_tags_are_refused():
    with pytest.raises(ConfigError):
        parse_yaml_text("x: !!python/object/apply:os.system ['true']\n", "cfg.yml")


def test_missing_file_and_directory_and_binary(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        read_yaml_file(tmp_path / "nope.yml")
    with pytest.raises(ConfigError, match="directory"):
        read_yaml_file(tmp_path)
    binary = tmp_path / "b.yml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="UTF-8"):
        read_yaml_file(binary)


def test_oversized_file_is_refused(tmp_path):
    big = tmp_path / "big.yml"
    big.write_text("# " + "x" * (5 * 1024 * 1024) + "\nbase_model: m\n")
    with pytest.raises(ConfigError, match="MiB"):
        read_yaml_file(big)


def test_a_nul_byte_is_a_clear_error_with_its_line():
    with pytest.raises(ConfigError) as info:
        parse_yaml_text("base_model: m\nseed: 1\x00\n", "cfg.yml")
    [problem] = info.value.problems
    assert problem.line == 2 and "a NUL byte at column 8" in problem.message and "UTF-8" in problem.hint


def test_a_huge_plain_config_is_too_large_not_an_alias_bomb(monkeypatch):
    from axo.config import yaml_io

    monkeypatch.setattr(yaml_io, "MAX_EXPANDED_NODES", 100)  # the real limit takes seconds of pure-Python YAML
    flow = "{" + ", ".join(f"k{i}: {i}" for i in range(60)) + "}\n"  # one line (under MAX_LINES), no aliases
    with pytest.raises(ConfigError) as info:
        parse_yaml_text(flow, "big.yml")
    message = info.value.problems[0].message
    assert "too large" in message and "alias" not in message


def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.yml")
    with pytest.raises(ConfigError) as info:
        read_yaml_file(tmp_path / "pipe.yml")  # reading it would block forever
    assert "is a named pipe (FIFO), not a config file" in info.value.problems[0].message


def test_a_stream_given_on_purpose_is_read():
    import os

    read, write = os.pipe()
    os.write(write, b"base_model: m\n")
    os.close(write)
    try:
        assert read_yaml_file(f"/dev/fd/{read}").data == {"base_model": "m"}  # as bash's <(...) passes it
    finally:
        os.close(read)

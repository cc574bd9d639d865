"""The meta-learning mode end to end on the tiny Llama: one meta-update of `axo train` equals the outer SGD step on
the mean of the tasks' meta-gradients computed by hand; the run writes a standard PEFT adapter and its run files;
task rows are checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file
from train.meta_helpers import hand_loss, sgd_adapted
from transformers import AutoModelForCausalLM, AutoTokenizer

from axo.config.load import resolve_config
from axo.data.errors import DataError
from axo.data.meta import prepare_tasks
from axo.train.meta_learning import adapter_weights
from axo.train.meta_trainer import TaskCollator
from axo.train.run import train

OUTER_LR, INNER_LR, INNER_STEPS = 1.0, 0.5, 2


def _task(number: int, *, support: int = 3, query: int = 2) -> dict:
    rows = [{"instruction": "Answer as the examples do.", "input": f"item {i}", "output": f"{'ab'[number % 2]}{i}"}
            for i in range(support + query)]
    return {"task_id": f"task-{number}", "support_set": rows[:support], "query_set": rows[support:]}


def _write(path: Path, tasks: list) -> Path:
    path.write_text("".join(json.dumps(task) + "\n" for task in tasks))
    return path


def _config(folder: Path, model_dir: Path, extra: str = "") -> str:
    return (f"base_model: {model_dir}\nadapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_modules: [q_proj, v_proj]\n"
            f"learning_rate: {OUTER_LR}\noptimizer: sgd\nlr_scheduler: constant\nweight_decay: 0.0\nmax_grad_norm: 0\n"
            f"datasets:\n  - path: {folder / 'tasks.jsonl'}\n    type: alpaca\nmicro_batch_size: 2\nmax_steps: 1\n"
            f"logging_steps: 1\nseed: 3\nsequence_len: 128\noutput_dir: {folder / 'run'}\n"
            f"dataset_prepared_path: {folder / 'prepared'}\n"
            f"meta_learning:\n  algorithm: fomaml\n  inner_lr: {INNER_LR}\n  inner_steps: {INNER_STEPS}\n"
            f"  tasks_per_step: 4\n{extra}")


@pytest.fixture(scope="module")
def meta_run(tmp_path_factory, tiny_llama_dir):
    """One meta-update over all four tasks (2 micro-batches of 2), from a known non-zero adapter."""
    folder = tmp_path_factory.mktemp("meta")
    _write(folder / "tasks.jsonl", [_task(n) for n in range(4)])
    torch.manual_seed(0)
    start = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama_dir),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    start.save_pretrained(folder / "start")
    cfg = resolve_config(_config(folder, tiny_llama_dir, f"lora_model_dir: {folder / 'start'}\n")).require()
    result = train(cfg, progress=False)
    return folder, cfg, result


def test_one_meta_update_is_the_outer_step_on_the_mean_task_gradient(meta_run, tiny_llama_dir):
    folder, cfg, result = meta_run
    assert result.steps == 1 and cfg.gradient_accumulation_steps == 2  # derived from tasks_per_step 4
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    tasks = prepare_tasks(cfg, tokenizer).train
    assert len(tasks) == 4
    start = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama_dir), folder / "start",
                                      is_trainable=True)
    collate = TaskCollator(tokenizer, reptile=False)
    mean = {name: torch.zeros_like(param) for name, param in adapter_weights(start).items()}
    for task in tasks:
        batches = collate.task(task)
        adapted = sgd_adapted(start, batches["support"], INNER_STEPS, INNER_LR)
        hand_loss(adapted, batches["query"]).backward()
        for name, param in adapter_weights(adapted).items():
            mean[name] += param.grad / len(tasks)
    trained = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama_dir), result.output_dir)
    after = {name.replace(".default", ""): p for name, p in trained.named_parameters() if "lora_" in name}
    assert len(after) == len(mean)
    for name, param in adapter_weights(start).items():
        expected = param.detach() - OUTER_LR * mean[name]
        torch.testing.assert_close(after[name.replace(".default", "")], expected, atol=1e-6, rtol=0)
    assert max(float(grad.abs().max()) for grad in mean.values()) > 1e-2  # the update is far above the tolerance


def test_a_meta_run_writes_the_run_files(meta_run):
    _, _, result = meta_run
    out = result.output_dir
    assert {"adapter_model.safetensors", "adapter_config.json", "provenance.json", "README.md", "metrics.jsonl",
            "axo_run.json"} <= {p.name for p in out.iterdir()}
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["method"] == "meta-learning" and provenance["algorithm"] == "first-order MAML"
    assert provenance["inner_steps"] == INNER_STEPS and provenance["tasks_per_step"] == 4
    step = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert step["step"] == 1 and step["loss"] > 0
    # 4 tasks × 5 rows; trained tokens are the answers' tokens (each task counted once per meta-update)
    assert step["trained_tokens"] > 0 and step["tokens_seen"] > step["trained_tokens"]
    assert "meta-learning" in (out / "README.md").read_text()


def test_support_in_context_asks_each_query_after_the_support_rows(meta_run, tiny_llama_dir):
    _, cfg, _ = meta_run
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    task = prepare_tasks(cfg, tokenizer).train[0]
    batches = TaskCollator(tokenizer, reptile=True, support_in_context=True).task(task)
    support = task["support"]
    context = support[0]["input_ids"] + [i for row in support[1:] for i in row["input_ids"][1:]]  # one BOS
    assert support[0]["input_ids"][0] == tokenizer.bos_token_id
    for index, row in enumerate(task["query"]):
        width = int(batches["query"]["attention_mask"][index].sum())
        assert batches["query"]["input_ids"][index, :width].tolist() == context + row["input_ids"][1:]
        assert batches["query"]["labels"][index, :width].tolist() == [-100] * len(context) + row["labels"][1:]
    assert torch.equal(batches["all"]["input_ids"][len(support):, :batches["query"]["input_ids"].shape[1]],
                       batches["query"]["input_ids"])  # Reptile's inner steps see the same query rows
    assert torch.equal(batches["support"]["input_ids"], TaskCollator(tokenizer, False).task(task)["support"]["input_ids"])


def test_support_in_context_refuses_a_task_too_long_for_sequence_len(tmp_path, tiny_llama_dir):
    long_task = _task(1, support=3)
    for row in long_task["support_set"]:
        row["input"] = "word " * 20  # each support row fits alone; the three before a query do not
    _write(tmp_path / "tasks.jsonl", [_task(0), long_task])
    config = _config(tmp_path, tiny_llama_dir, "  support_in_context: true\n").replace("sequence_len: 128", "sequence_len: 320")
    cfg = resolve_config(config).require()
    with pytest.raises(DataError) as caught:
        prepare_tasks(cfg, AutoTokenizer.from_pretrained(tiny_llama_dir))
    problem = caught.value.problems[0]
    assert "task 'task-1': a query row after its 3 support rows is" in problem.message
    assert "more than sequence_len 320" in problem.message and problem.line == 2 and problem.key == "sequence_len"


@pytest.mark.parametrize(("task", "message"), [
    ({"task_id": "t", "query_set": [{"instruction": "q", "output": "a"}]}, "has no support rows ('support_set' is missing"),
    ({"task_id": "t", "support_set": [{"instruction": "q", "output": "a"}], "query_set": []}, "has no query rows"),
    ({"task_id": "t", "support_set": ["just text"], "query_set": [{"instruction": "q", "output": "a"}]},
     "support_set[0] is a string"),
    ({"task_id": "t", "support_set": [{"instruction": "word " * 120, "output": "a"}],
      "query_set": [{"instruction": "q", "output": "a"}]}, "a support row is"),
])
def test_bad_task_rows_name_the_row_and_field(tmp_path, tiny_llama_dir, task, message):
    _write(tmp_path / "tasks.jsonl", [_task(0), task])
    cfg = resolve_config(_config(tmp_path, tiny_llama_dir)).require()
    with pytest.raises(DataError) as caught:
        prepare_tasks(cfg, AutoTokenizer.from_pretrained(tiny_llama_dir))
    problem = caught.value.problems[0]
    assert message in problem.message and problem.line == 2 and problem.origin.endswith("tasks.jsonl")


def test_the_plans_phase_7_config_trains_with_meta_learning_added(tmp_path, tiny_llama_dir, monkeypatch):
    """The plan's meta-adapter config (QLoRA, r 48, 4 × 4 tasks, MAML) through `axo train`, with only the model, the
    data and the CUDA-only parts (4-bit, paged 8-bit AdamW) swapped; its eval split is the adapted query loss."""
    from typer.testing import CliRunner

    from axo.cli.main import app

    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "tasks.jsonl", [_task(n, support=2, query=2) for n in range(20)])
    config = Path(__file__).resolve().parents[1] / "fixtures" / "plan_configs" / "meta-adapter-qlora.yml"
    args = ["train", str(config), "--base_model", str(tiny_llama_dir), "--adapter", "lora", "--load_in_4bit", "false",
            "--optimizer", "adamw_torch", "--model_type", "AutoModelForCausalLM", "--datasets.0.path",
            str(tmp_path / "tasks.jsonl"), "--max_steps", "1", "--sequence_len", "256", "--save_strategy", "no",
            "--output_dir", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "meta-learning (MAML): 18 tasks, 16 per meta-update, 3 inner steps at lr 0.0001" in result.output
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert provenance["algorithm"] == "MAML" and provenance["steps"] == 1 and provenance["eval_rows"] == 2
    assert provenance["eval_loss"] > 0
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama_dir), tmp_path / "out")


def test_a_stopped_meta_run_resumes_to_the_uninterrupted_adapter(tmp_path, tiny_llama_dir):
    """Stopped after its checkpoint at meta-update 2 and resumed to 4 (AdamW state, scheduler, RNG and the task
    order restored by the normal checkpointing), a Reptile run ends with the adapter of a run that never stopped."""
    _write(tmp_path / "tasks.jsonl", [_task(n) for n in range(8)])

    def run(name: str, steps: int, resume: bool = False):
        text = (_config(tmp_path, tiny_llama_dir).replace("optimizer: sgd", "optimizer: adamw_torch")
                .replace("algorithm: fomaml", "algorithm: reptile").replace("tasks_per_step: 4", "tasks_per_step: 2")
                .replace("max_steps: 1", f"max_steps: {steps}").replace(f"output_dir: {tmp_path / 'run'}",
                                                                        f"output_dir: {tmp_path / name}"))
        cfg = resolve_config(text + "save_strategy: steps\nsave_steps: 2\n").require()
        return train(cfg, progress=False, resume=resume)

    straight = run("straight", 4).output_dir
    run("stopped", 2)
    assert (tmp_path / "stopped" / "checkpoint-2" / "adapter_model.safetensors").is_file()
    result = run("stopped", 4, resume=True)
    assert [m["step"] for m in result.metrics if "loss" in m] == [3, 4]  # it went on from step 2
    resumed = result.output_dir
    expected, got = (load_file(folder / "adapter_model.safetensors") for folder in (straight, resumed))
    assert got.keys() == expected.keys() and len(expected) > 0
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=1e-6, rtol=0)
    stopped_at_2 = load_file(tmp_path / "stopped" / "checkpoint-2" / "adapter_model.safetensors")
    assert any(not torch.equal(stopped_at_2[name], expected[name]) for name in expected)  # steps 3-4 moved it

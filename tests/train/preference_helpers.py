"""Builders for the preference parity tests: axo's trainer through the recipe's own pieces, TRL's plain trainer
on the same text rows, and one batch from each trainer's own collator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from config_helpers import CPU, load

PAIRS = [{"system": "Be brief.", "question": f"What is {i} plus {i}?", "chosen": f"It is {2 * i}.",
          "rejected": f"Maybe {i + 1}, or {i + 7}."} for i in range(4)]
KTO_ROWS = [{"system": "Be brief.", "question": f"What is {i} plus {i}?",
             "completion": f"It is {2 * i}." if i % 2 == 0 else f"Maybe {i + 1}.", "label": i % 2 == 0}
            for i in range(4)]
ARGILLA = [{side: [{"role": "user", "content": row["question"]}, {"role": "assistant", "content": row[side]}]
            for side in ("chosen", "rejected")} for row in PAIRS]

# Each method's own keys (Axolotl's names) and the TRL config they stand for: non-defaults, so a key axo
# dropped or mapped wrongly changes the loss.
METHOD_KEYS = {
    "dpo": ("rl_beta: 0.2\n", {"beta": 0.2}),
    "ipo": ("rl_beta: 0.3\n", {"beta": 0.3, "loss_type": ["ipo"]}),
    "orpo": ("orpo_alpha: 0.3\n", {"beta": 0.3}),
    "simpo": ("rl_beta: 2.5\nsimpo_gamma: 0.7\ncpo_alpha: 0.4\n",
              {"beta": 2.5, "loss_type": "simpo", "simpo_gamma": 0.7, "cpo_alpha": 0.4}),
    "kto": ("rl_beta: 0.2\nkto_desirable_weight: 1.5\nkto_undesirable_weight: 0.5\n",
            {"beta": 0.2, "desirable_weight": 1.5, "undesirable_weight": 0.5,
             "train_sampling_strategy": "sequential"}),
}
LORA = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.05}
SEQUENCE_LEN = 64


def write_rows(folder: Path) -> None:
    """pairs.jsonl (chatml.intel pairs) and kto.jsonl (chatml.intel completions with labels) in `folder`."""
    for name, rows in (("pairs.jsonl", PAIRS), ("kto.jsonl", KTO_ROWS), ("argilla.jsonl", ARGILLA)):
        (folder / name).write_text("".join(json.dumps(row) + "\n" for row in rows))


def config_text(folder: Path, model_dir: Path, method: str, name: str, *, micro_batch: int = 4,
                accumulation: int = 1, steps: int = 1, extra: str = "") -> str:
    """A LoRA `rl: method` config over folder's rows (written by `write_rows`), fp32 on CPU; ORPO reads
    argilla-style conversations (`chat_template.argilla`, its type in Axolotl's ORPO example)."""
    orpo = ("argilla.jsonl", "chat_template.argilla\nchat_template: chatml")
    data, kind = {"kto": ("kto.jsonl", "chatml.intel"), "orpo": orpo}.get(method, ("pairs.jsonl", "chatml.intel"))
    return (f"base_model: {model_dir}\nrl: {method}\n{METHOD_KEYS[method][0]}adapter: lora\nlora_r: {LORA['r']}\n"
            f"lora_alpha: {LORA['lora_alpha']}\nlora_dropout: {LORA['lora_dropout']}\nlora_target_linear: true\n"
            f"learning_rate: 1e-2\nmicro_batch_size: {micro_batch}\ngradient_accumulation_steps: {accumulation}\n"
            f"max_steps: {steps}\nsequence_len: {SEQUENCE_LEN}\nseed: 1\nlogging_steps: 1\nsave_strategy: 'no'\n"
            f"output_dir: {folder / name}\ndataset_prepared_path: {folder / 'prepared'}\n"
            f"datasets:\n  - path: {folder / data}\n    type: {kind}\n{extra}")


def axo_trainer(folder: Path, model_dir: Path, method: str) -> Any:
    """axo's trainer for `method`, built as train/run.py builds it: mode.prepare -> trainer_data ->
    training_arguments(the mode's class and arguments) -> model_for_training (adapter, fused LoRA) ->
    mode.build_trainer."""
    from axo.models.setup import model_for_training
    from axo.models.tokenizer import load_tokenizer
    from axo.train.arguments import training_arguments
    from axo.train.modes import TrainerParts, mode_for

    cfg = load(config_text(folder, model_dir, method, f"axo-{method}")).require()
    tokenizer = load_tokenizer(cfg)
    mode = mode_for(cfg)
    data = mode.trainer_data(mode.prepare(tokenizer, None), tokenizer)
    arguments = training_arguments(cfg, len(data.train), data.eval is not None, CPU,
                                   arguments_class=mode.arguments_class(), method=mode.method_arguments())
    model, _ = model_for_training(cfg, tokenizer, CPU, say=lambda _: None, loss_kernels=mode.loss_kernels)
    return mode.build_trainer(TrainerParts(model=model, tokenizer=tokenizer, arguments=arguments, data=data,
                                           callbacks=[], optimizers=(None, None), offload_activations=False))


def trl_trainer(folder: Path, model_dir: Path, method: str, rows: Any, tokenizer: Any) -> Any:
    """TRL's own trainer for `method` on the same text `rows`: the base loaded by transformers, LoRA from a
    `peft_config` (as Axolotl passes it), the method's arguments written out here, TRL's defaults otherwise."""
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM

    if method in ("dpo", "ipo"):
        from trl import DPOConfig as Config
        from trl import DPOTrainer as Trainer
    elif method == "kto":
        from trl import KTOConfig as Config
        from trl import KTOTrainer as Trainer
    elif method == "orpo":
        from trl.experimental.orpo import ORPOConfig as Config
        from trl.experimental.orpo import ORPOTrainer as Trainer
    else:
        from trl.experimental.cpo import CPOConfig as Config
        from trl.experimental.cpo import CPOTrainer as Trainer
    args = Config(output_dir=str(folder / f"trl-{method}"), per_device_train_batch_size=4, max_length=SEQUENCE_LEN,
                  seed=1, report_to=[], use_cpu=True, **METHOD_KEYS[method][1])
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    lora = LoraConfig(**LORA, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                              "down_proj"], task_type="CAUSAL_LM")
    return Trainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer, peft_config=lora)


def lora_parameters(model: Any) -> dict[str, torch.nn.Parameter]:
    """The "default" adapter's LoRA weights by name (peft's names are the same for both trainers' models)."""
    return {name: p for name, p in model.named_parameters() if ".lora_" in name and ".default." in name}


def set_same_adapter(axo_model: Any, trl_model: Any, seed: int = 0) -> None:
    """Give axo's adapter a non-zero lora_B (so the policy differs from the reference) and copy every LoRA
    weight into TRL's model: both then train the same adapter."""
    generator = torch.Generator().manual_seed(seed)
    theirs = lora_parameters(trl_model)
    with torch.no_grad():
        for name, parameter in lora_parameters(axo_model).items():
            if ".lora_B." in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
            theirs[name].copy_(parameter)


def first_batch(trainer: Any) -> dict[str, Any]:
    """The trainer's first batch as its own collator builds it from its own (TRL-tokenized) dataset."""
    dataset = trainer.train_dataset
    return trainer.data_collator([dataset[i] for i in range(len(dataset))])


def loss_and_grads(trainer: Any, batch: dict[str, Any]) -> tuple[float, dict[str, torch.Tensor]]:
    """trainer.compute_loss on `batch` in training mode, then backward: (loss, LoRA gradients by name)."""
    model = trainer.model
    model.train()
    model.zero_grad()
    loss = trainer.compute_loss(model, batch)
    loss.backward()
    return loss.item(), {name: p.grad.detach().clone() for name, p in lora_parameters(model).items()}


def completion_logps(model: Any, batch: dict[str, Any]) -> torch.Tensor:
    """Summed log-probs of the completion tokens of `batch` (input_ids, attention_mask, completion_mask) under a
    plain transformers model: the reference log-probs, computed without TRL."""
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    targets = batch["input_ids"][:, 1:]
    per_token = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (per_token * batch["completion_mask"][:, 1:]).sum(dim=1)

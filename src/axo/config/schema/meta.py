"""Meta-learning (`meta_learning:`), axo's own section: MAML, first-order MAML and Reptile over a LoRA adapter, on
task-structured rows (train/modes/meta.py, train/meta_learning.py). Axolotl has no such keys."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from axo.config.schema.base import Section

MetaAlgorithm = Literal["maml", "fomaml", "reptile"]


class MetaLearning(Section):
    """How a meta-adapter is trained: each task adapts a copy of the adapter on its support rows (the inner loop),
    and the adapted copy's result moves the shared adapter (the outer step, the normal optimizer)."""

    algorithm: MetaAlgorithm = Field(
        "fomaml", description="`maml`: second-order MAML, backpropagating through the inner steps (memory grows with "
        "`inner_steps`); `fomaml`: first-order MAML (the query-loss gradient at the adapted weights); `reptile`: "
        "the adapted weights' distance from the shared ones, with the inner steps run on support and query rows.",
    )
    inner_lr: float = Field(1e-4, gt=0, description="Learning rate of the inner loop's plain SGD steps on a task.")
    inner_steps: int = Field(3, ge=1, description="SGD steps on a task's support rows before its query rows are "
                             "scored (also the adaptation `axo evaluate --tasks` runs).")
    tasks_per_step: int | None = Field(
        None, ge=1, description="Tasks per meta-update. Default micro_batch_size × gradient_accumulation_steps (tasks "
        "per micro-batch × micro-batches); when set alone, gradient_accumulation_steps is derived from it.",
    )
    support_field: str = Field("support_set", description="The task row's list of support rows (adapted on).")
    query_field: str = Field("query_set", description="The task row's list of query rows (scored after adapting).")
    task_id_field: str = Field("task_id", description="The task row's identifier (reported by evaluation; optional "
                               "in a row).")
    task_type: str | None = Field(
        None, description="The prompt format of the rows inside a task (`alpaca`, `chat_template`, `completion`, …, "
        "with their masking). Default: the dataset entry's `type:`.",
    )
    support_in_context: bool = Field(
        False, description="Also place the task's support rows before each query row (prompt and answer, as "
        "trained; the loss on the query's answer only), in training and in `axo evaluate --tasks`: the adapted "
        "weights and the examples in context together, as in-context tuning combined with MAML (Chen et al., ACL "
        "2022). Every query row with all its task's support rows must fit `sequence_len`.",
    )
    first_order_after: int | None = Field(
        None, ge=0, description="With `algorithm: maml`: differentiate through the first N inner steps only; later "
        "steps are first-order, which caps the memory the inner graph holds (0 = first-order MAML).",
    )


class MetaLearningSection(Section):
    meta_learning: MetaLearning | None = Field(
        None, description="Train a meta-adapter on task-structured rows (`{task_id, support_set: [rows], query_set: "
        "[rows]}`): MAML, first-order MAML or Reptile over the adapter's weights. The result is a standard PEFT "
        "adapter; `axo evaluate RUN --tasks FILE --shots 1,3,5` measures its few-shot adaptation.",
    )

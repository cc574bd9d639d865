"""Experiment trackers and multi-GPU engines."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from axo.config.schema.base import Section


class LoggingSection(Section):
    wandb_project: str | None = Field(None, description="Weights & Biases project; setting it turns W&B logging on.")
    wandb_entity: str | None = Field(None, description="W&B team or user.")
    wandb_name: str | None = Field(None, description="W&B run display name.")
    wandb_run_name: str | None = Field(None, description="W&B run display name (older spelling of `wandb_name`).")
    wandb_run_id: str | None = Field(None, description="W&B run id, to continue a run.")
    wandb_mode: Literal["online", "offline", "disabled"] | None = Field(None, description="W&B mode.")
    wandb_watch: Literal["gradients", "parameters", "all", "false"] | None = Field(None, description="What W&B watches.")
    wandb_log_model: Literal["checkpoint", "end", "false"] | None = Field(
        None, description="Upload the model to W&B: at each `checkpoint`, at the `end`, or `false`.",
    )
    use_tensorboard: bool = Field(False, description="Write TensorBoard event files under `output_dir/runs`.")
    use_mlflow: bool = Field(False, description="Log to MLflow (also on when `mlflow_experiment_name` is set, as in Axolotl).")
    mlflow_tracking_uri: str | None = Field(None, description="MLflow tracking URI, e.g. `file:./mlruns`.")
    mlflow_experiment_name: str | None = Field(None, description="MLflow experiment name.")
    mlflow_run_name: str | None = Field(None, description="MLflow run name.")
    hub_model_id: str | None = Field(None, description="Push the result to this Hugging Face hub repo.")
    hf_token: str | None = Field(None, description="Hugging Face token (prefer the HF_TOKEN environment variable).")

    @field_validator("wandb_log_model", "wandb_watch", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: Any, info: ValidationInfo) -> Any:
        # Users write `wandb_log_model: false` (a YAML boolean); W&B's settings are strings.
        if value is False:
            return "false"
        if value is True:
            return "end" if info.field_name == "wandb_log_model" else "gradients"
        return value


class DistributedSection(Section):
    deepspeed: str | dict[str, Any] | None = Field(None, description="DeepSpeed config: a JSON file path or an inline mapping.")
    fsdp_version: Literal[1, 2] | None = Field(None, description="FSDP version; 2 is recommended.")
    fsdp_config: dict[str, Any] | None = Field(None, description="FSDP options (auto-wrap policy, offload, state dict type, …).")
    ddp_timeout: int | None = Field(None, ge=1, description="Seconds before a collective operation times out.")
    ddp_find_unused_parameters: bool | None = Field(None, description="DDP: search for unused parameters each step.")

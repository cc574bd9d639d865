"""The config's closed vocabularies and status table stay in step with the schema and the libraries."""

from __future__ import annotations

from axo.config.keys import user_keys
from axo.config.schema import AxoConfig
from axo.config.schema.names import AXOLOTL_OPTIMIZERS, LR_SCHEDULERS, OPTIMIZERS
from axo.config.support import NOT_IMPLEMENTED


def test_every_not_implemented_key_is_a_schema_field():
    assert set(NOT_IMPLEMENTED) <= set(AxoConfig.model_fields)


def test_every_field_has_a_description():
    missing = [name for name, info in AxoConfig.model_fields.items() if not info.description]
    assert not missing


def test_model_config_is_spelled_as_in_axolotl():
    assert user_keys(AxoConfig)["model_config"] == "overrides_of_model_config"


def test_optimizer_names_are_transformers_names():
    from transformers.training_args import OptimizerNames

    # Axolotl's own names (AXOLOTL_OPTIMIZERS) are built by train/optimizers.py, not by transformers
    assert OPTIMIZERS - AXOLOTL_OPTIMIZERS <= {o.value for o in OptimizerNames}


def test_scheduler_names_are_transformers_names_plus_axolotls():
    from transformers.trainer_utils import SchedulerType

    assert LR_SCHEDULERS - {"one_cycle", "rex"} <= {s.value for s in SchedulerType}

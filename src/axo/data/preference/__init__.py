"""Preference data (DPO, IPO, ORPO, SimPO, KTO, reward models) read as Axolotl 0.21 reads it.

Importing the package registers every `type:` strategy; `prepare_preference` (prepare.py) reads, transforms,
filters, merges, splits and caches a config's preference datasets.
"""

from axo.data.preference import (  # noqa: F401  (each module registers its types)
    bradley_terry,
    chat_template,
    chatml,
    llama3,
    passthrough,
    user_defined,
    zephyr,
)
from axo.data.preference.base import (  # noqa: F401
    KTO_METHODS,
    PAIR_METHODS,
    PreferenceFormat,
    preference_format_for,
    register_preference_format,
    registered_preference_formats,
)

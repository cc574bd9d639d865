"""`chatml.*` preference types: ChatML turns (`<|im_start|>role\\n…<|im_end|>\\n`), shapes in `fixed.py`."""

from axo.data.preference.fixed import CHATML, register_family

register_family("chatml", CHATML)

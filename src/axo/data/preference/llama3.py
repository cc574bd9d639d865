"""`llama3.*` preference types: Llama 3 header turns (`<|start_header_id|>role<|end_header_id|>\\n\\n…<|eot_id|>`),
shapes in `fixed.py`. No `<|begin_of_text|>`: the tokenizer adds its BOS when TRL tokenizes the prompt."""

from axo.data.preference.fixed import LLAMA3, register_family

register_family("llama3", LLAMA3)

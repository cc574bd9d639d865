"""Load the tokenizer a config names, with Axolotl's adjustments (special tokens, extra tokens, pad)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.config.schema import AxoConfig

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def _error(key: str, message: str, hint: str) -> ConfigError:
    return ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, key, message, hint)])


def load_tokenizer(cfg: AxoConfig) -> PreTrainedTokenizerBase:
    """The tokenizer of `cfg.tokenizer_config` (default: the base model), ready for data preparation.

    Applies `special_tokens` and `tokens` (added to the vocabulary when missing), as Axolotl does uses the
    EOS token for padding when the tokenizer has no pad token, and sets the config's `chat_template` (a
    bundled name, `jinja` or a file) as the tokenizer's template.

    A Hub id is read from the local Hugging Face cache when it is there (models/hub.py).

    Raises:
        ConfigError: when the tokenizer cannot be found or loaded, or is a Hub id that is neither cached nor
            reachable (at once, without retries).
    """
    import transformers
    from transformers import PreTrainedTokenizerBase

    from axo.models import hub
    from axo.models.loader import model_source_kwargs, remote_code_hint

    source = cfg.tokenizer_config or cfg.base_model
    kwargs: dict = {"use_fast": cfg.tokenizer_use_fast, "trust_remote_code": cfg.trust_remote_code}
    if source == cfg.base_model:  # the model's own tokenizer: same place, same GGUF file or revision
        source, location = model_source_kwargs(cfg)
        kwargs.update(location)
    ref = hub.tokenizer_ref(cfg)
    hub.require([ref])
    if cfg.tokenizer_legacy is not None:
        kwargs["legacy"] = cfg.tokenizer_legacy
    tokenizer_class = getattr(transformers, cfg.tokenizer_type or "AutoTokenizer", None)
    # `AutoModel` has from_pretrained too, and would load a model where a tokenizer belongs
    if not (tokenizer_class is transformers.AutoTokenizer or (isinstance(tokenizer_class, type)
                                                              and issubclass(tokenizer_class, PreTrainedTokenizerBase))):
        raise _error("tokenizer_type", f"{cfg.tokenizer_type!r} is not a transformers tokenizer class.",
                     "Use AutoTokenizer, or a class such as LlamaTokenizer.")
    try:
        tokenizer = tokenizer_class.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise _error("tokenizer_config" if cfg.tokenizer_config not in (None, cfg.base_model) else "base_model",
                     f"cannot load a tokenizer from {source!r}: {str(exc).splitlines()[0]}",
                     remote_code_hint(cfg, exc) or "Point `base_model` (or `tokenizer_config`) at a model folder "
                     "with tokenizer files (tokenizer.json, or the vocabulary files of its tokenizer class), or a hub "
                     "id reachable from this machine." + hub.cache_hint(ref)) from None
    if cfg.special_tokens is not None:
        special = cfg.special_tokens.model_dump(exclude_none=True)
        extra = special.pop("additional_special_tokens", None)
        if special:
            tokenizer.add_special_tokens(special)
        if extra:
            tokenizer.add_special_tokens({"additional_special_tokens": extra}, replace_extra_special_tokens=False)
    if cfg.tokens:
        tokenizer.add_tokens(list(cfg.tokens))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if cfg.chat_template not in (None, "tokenizer_default"):
        from axo.data.chat_templates import resolve_chat_template

        # As Axolotl does: the template the run trains with becomes the tokenizer's own, so the tokenizer
        # saved in the run folder (and a merged model, vLLM, `axo inference`) formats prompts the same way.
        tokenizer.chat_template = resolve_chat_template(cfg.chat_template, cfg.chat_template_jinja, tokenizer)
    return tokenizer

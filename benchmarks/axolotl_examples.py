"""How many of Axolotl's own example configs `axo validate` accepts, against Axolotl 0.21's validator.

Two Pythons take part: Axolotl's (the oracle, `../shared/axolotl/install.sh` puts it in ~/.venvs/axolotl-0.21)
runs the `oracle` and `keys` steps; axo's runs `measure`, which starts the oracle itself.

    # 1. the examples, from a git checkout or mirror of axolotl-ai-cloud/axolotl, at a recorded commit
    python benchmarks/axolotl_examples.py extract --repo GITDIR --commit COMMIT --to /tmp/axolotl-examples
    # 2. both validators over every example; writes JSON and prints the markdown table for docs/CONFIG.md
    .venv/bin/python benchmarks/axolotl_examples.py measure --examples /tmp/axolotl-examples \
        --axolotl-python ~/.venvs/axolotl-0.21/bin/python --out benchmarks/results/axolotl-examples.json
    # the key names of src/axo/config/axolotl_keys.py (prints the module)
    ~/.venvs/axolotl-0.21/bin/python benchmarks/axolotl_examples.py keys

Axolotl's verdict is `prepare_plugins` + `validate_config` (no capabilities: what any machine accepts). axo's is
`load_config` as `axo validate` runs it, on a machine with one H200 (hardware warnings are never errors anyway).
A refusal's reason is the first error's key and message, grouped into families by `_family`.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import importlib.util
import inspect
import json
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "AXOLOTL_DO_NOT_TRACK": "1", "DO_NOT_TRACK": "1", "WANDB_MODE": "disabled"}


def extract(repo: str, commit: str, to: Path) -> None:
    """Write every examples/**/*.y(a)ml of `commit` under `to`, keeping the relative paths."""
    names = subprocess.run(["git", "--git-dir", repo, "ls-tree", "-r", "--name-only", commit, "examples"],
                           check=True, capture_output=True, text=True).stdout.split()
    for name in names:
        if name.endswith((".yml", ".yaml")):
            target = to / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(subprocess.run(["git", "--git-dir", repo, "show", f"{commit}:{name}"],
                                              check=True, capture_output=True).stdout)
    (to / "COMMIT").write_text(commit + "\n")


def _configs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".yml", ".yaml"))


def oracle(root: Path) -> None:
    """(Axolotl's Python) print {relative path: null when accepted, else the error's first line} as JSON."""
    import yaml
    from axolotl.integrations.base import PluginManager
    from axolotl.utils.config import prepare_plugins, validate_config
    from axolotl.utils.dict import DictDefault

    verdicts = {}
    for path in _configs(root):
        PluginManager.get_instance().plugins.clear()  # one config's plugins must not widen the next one's schema
        try:
            cfg = DictDefault(yaml.safe_load(path.read_text()))
            prepare_plugins(cfg)
            validate_config(cfg)
            verdicts[str(path.relative_to(root))] = None
        except Exception as exc:  # noqa: BLE001 - any refusal counts; its first line is the reason
            verdicts[str(path.relative_to(root))] = (f"{type(exc).__name__}: " + (str(exc).strip().splitlines()
                                                                                   or [""])[0])[:300]
    print(json.dumps(verdicts))


def _family(key: str, message: str) -> str:
    """A refusal's feature family, for the table."""
    text = f"{key} {message}"
    plugin = re.search(r"plugin `[\w.]*?(\w+)` is .*a training method axo does not have", message)
    if plugin:
        return f"a training method axo lacks ({plugin.group(1)})"
    for words, family in (
        (("process-reward-model",), "process reward models (not in axo)"),
        (("preference tuning", "reward-model", "reward model"), "preference tuning / reward models"),
        (("reinforcement learning",), "online RL: GRPO, GDPO, EBFT (not in axo)"),
        (("pretraining_dataset",), "streamed pretraining data"),
        (("cut_cross_entropy",), "Cut Cross Entropy under FSDP"),
        (("chat template",), "chat template not bundled"), (("optimizer",), "optimizer"),
        (("attn_implementation",), "attention backend"),
    ):
        if any(word in text for word in words):
            return family
    return f"{key}: {message[:90]}"


def _method_warning(problems) -> str | None:
    """A warning saying the config asks for a training method axo lacks (a plugin's or a key's), if any."""
    for problem in problems:
        text = problem.message
        if problem.severity.value == "warning" and ("a training method axo does not have" in text or (
                problem.key.startswith("plugins[") and "training" in text)):
            plugin = re.search(r"plugin `[\w.]*?(\w+)`", text)
            return plugin.group(1) if plugin else problem.key
    return None


def measure(root: Path, axolotl_python: str, out: Path | None) -> dict:
    from axo.config.hardware import Hardware
    from axo.config.load import load_config

    env = {**os.environ, **OFFLINE}
    verdicts = json.loads(subprocess.run([axolotl_python, __file__, "oracle", str(root)], env=env, check=True,
                                         capture_output=True, text=True, cwd="/tmp").stdout.splitlines()[-1])
    h200 = Hardware(cuda_devices=1, compute_capability=(9, 0))
    rows = {}
    for name, axolotl_error in verdicts.items():
        loaded = load_config(root / name, hardware=h200)
        first = loaded.errors[0] if loaded.errors else None
        family = None if first is None else _family(first.key, first.message)
        method = _method_warning(loaded.problems)
        if family and family.startswith(f"{first.key}: ") and method:  # refused for a detail of a method axo lacks
            family = f"a training method axo lacks ({method})"
        rows[name] = {"axolotl": axolotl_error, "axo": None if first is None else f"{first.key}: {first.message}",
                      "family": family}
    accepted = [n for n, r in rows.items() if r["axolotl"] is None]
    both = [n for n in accepted if rows[n]["axo"] is None]
    result = {"commit": (root / "COMMIT").read_text().strip() if (root / "COMMIT").exists() else None,
              "configs": len(rows), "axolotl_accepts": len(accepted), "axo_accepts_of_those": len(both),
              "refused_by_family": collections.Counter(rows[n]["family"] for n in accepted if rows[n]["axo"]),
              "rows": rows}
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result


def table(result: dict) -> str:
    share = 100 * result["axo_accepts_of_those"] / max(result["axolotl_accepts"], 1)
    lines = [f"| Axolotl `examples/` at `{result['commit']}` | configs |", "|---|---:|",
             f"| all | {result['configs']} |", f"| accepted by Axolotl 0.21.0 | {result['axolotl_accepts']} |",
             f"| … of those, accepted by `axo validate` | **{result['axo_accepts_of_those']} ({share:.1f}%)** |"]
    for family, count in sorted(result["refused_by_family"].items(), key=lambda item: -item[1]):
        lines.append(f"| … refused by axo: {family} | {count} |")
    return "\n".join(lines)


def keys() -> None:
    """(Axolotl's Python) print the names of src/axo/config/axolotl_keys.py: the top-level keys of Axolotl's
    input schema merged with every bundled plugin's arguments, the dataset-entry keys of every dataset kind,
    the bundled plugin class names, and the dataset `type`s of its preference/reward strategies."""
    from axolotl.integrations import base
    from axolotl.utils.schemas import datasets
    from axolotl.utils.schemas.config import AxolotlInputConfig

    def names(model) -> set[str]:
        return {n for name, info in model.model_fields.items() for n in (name, info.alias) if n}

    top, plugins = names(AxolotlInputConfig), {}
    package = importlib.import_module("axolotl.integrations")
    broken: list[str] = []  # packages whose __init__ does not import here; walk_packages skips their modules
    for module in pkgutil.walk_packages(package.__path__, "axolotl.integrations.", onerror=broken.append):
        try:
            loaded = importlib.import_module(module.name)
        except Exception:  # noqa: BLE001 - a plugin whose optional dependency is missing here: read its args
            top |= _unimportable_plugin(module.name, plugins, names)
            continue
        for cls_name, cls in inspect.getmembers(loaded, inspect.isclass):
            if issubclass(cls, base.BasePlugin) and cls is not base.BasePlugin and cls.__module__ == module.name:
                dotted = f"{module.name.rsplit('.plugin', 1)[0].rsplit('.plugins', 1)[0]}.{cls_name}"
                args = cls().get_input_args()
                fields = names(_import(args)) if args else set()
                plugins[dotted] = sorted(fields)
                top |= fields
    for name in broken:
        for candidate in (f"{name}.plugin", name):
            if _source(candidate).is_file():
                top |= _unimportable_plugin(candidate, plugins, names)
    entry = set().union(*(names(getattr(datasets, kind)) for kind in (
        "SFTDataset", "DPODataset", "KTODataset", "StepwiseSupervisedDataset", "PretrainingDataset")))
    print(json.dumps({"keys": sorted(top), "dataset_keys": sorted(entry), "plugins": plugins,
                      "preference_types": sorted(_preference_types())}))


def _unimportable_plugin(name: str, plugins: dict, names) -> set[str]:
    """A plugin module that does not import here (e.g. llm_compressor without llmcompressor): its class name
    from the source text, its keys from the package's `args` module (pydantic only)."""
    found = re.findall(r"^class (\w+)\(BasePlugin\)", _source(name).read_text(), re.MULTILINE)
    if not found:
        return set()
    package = name.rsplit(".", 1)[0] if name.endswith(".plugin") else name
    args = _load_file(f"{package}.args")
    # The class get_input_args names ("axolotl.integrations.x.XArgs"), read from the source as well.
    wanted = re.findall(r'return "axolotl\.integrations\.[\w.]*?(\w+Args)"', _source(name).read_text())
    fields = set().union(*(names(getattr(args, cls)) for cls in wanted))
    plugins[f"{package}.{found[0]}"] = sorted(fields)
    return fields


def _source(dotted: str) -> Path:
    """The file of an axolotl module, found without importing it (or its package's __init__)."""
    path = Path(importlib.util.find_spec("axolotl").origin).parent.joinpath(*dotted.split(".")[1:])
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _load_file(dotted: str):
    """Import one module from its file without importing its package's __init__ (which may fail here)."""
    spec = importlib.util.spec_from_file_location(dotted, _source(dotted))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _import(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _preference_types() -> set[str]:
    """`type:` values Axolotl resolves in its dpo/kto/orpo strategy packages (`module.function`), its reward-model
    ones (`bradley_terry.module`) and the process-reward one."""
    found = {"stepwise_supervised"}
    reward = importlib.import_module("axolotl.prompt_strategies.bradley_terry")  # `type: bradley_terry.<module>`
    found |= {f"bradley_terry.{module.name}" for module in pkgutil.iter_modules(reward.__path__)}
    for kind in ("dpo", "kto", "orpo"):
        package = importlib.import_module(f"axolotl.prompt_strategies.{kind}")
        for module in pkgutil.iter_modules(package.__path__):
            loaded = importlib.import_module(f"{package.__name__}.{module.name}")
            for name, fn in inspect.getmembers(loaded, inspect.isfunction):
                if fn.__module__ == loaded.__name__ and not name.startswith("_"):
                    found.add(f"{module.name}.{name}")
    return found


def render_keys(names_json: Path, target: Path) -> None:
    """Write src/axo/config/axolotl_keys.py from the JSON `keys` printed."""
    import textwrap

    data = json.loads(names_json.read_text())

    def names(values) -> str:
        return textwrap.fill(", ".join(f'"{v}"' for v in values) + ",", 116, initial_indent="    ",
                             subsequent_indent="    ", break_long_words=False, break_on_hyphens=False)

    plugins = "\n".join(f'    "{name}": (\n    {names(keys)}\n    ),' if keys else f'    "{name}": (),'
                         for name, keys in sorted(data["plugins"].items()))
    target.write_text(f'''"""Names Axolotl 0.21.0 defines, as data: generated, do not edit by hand.

Produced with Axolotl 0.21.0 installed by ../shared/axolotl/install.sh:
    ~/.venvs/axolotl-0.21/bin/python benchmarks/axolotl_examples.py keys > /tmp/axkeys.json
    .venv/bin/python benchmarks/axolotl_examples.py render-keys /tmp/axkeys.json src/axo/config/axolotl_keys.py
Used only to tell "a real Axolotl option axo does not support" apart from "a typo" (config/keys.py); the
tiers that say what ignoring a key costs are hand-written in config/key_tiers.py.
"""

from __future__ import annotations

# Top-level keys: AxolotlInputConfig's fields and aliases, plus every bundled plugin's arguments.
AXOLOTL_KEYS: frozenset[str] = frozenset({{
{names(data["keys"])}
}})

# Keys of dataset entries (SFT, DPO, KTO, stepwise-supervised and pretraining datasets).
AXOLOTL_DATASET_KEYS: frozenset[str] = frozenset({{
{names(data["dataset_keys"])}
}})

# Bundled plugins (the name written under `plugins:`) and the keys each one adds.
AXOLOTL_PLUGINS: dict[str, tuple[str, ...]] = {{
{plugins}
}}

# Dataset `type`s of Axolotl's preference (dpo/kto/orpo) and reward (bradley_terry, stepwise) strategies.
PREFERENCE_DATASET_TYPES: frozenset[str] = frozenset({{
{names(data["preference_types"])}
}})
''')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract")
    ex.add_argument("--repo", required=True)
    ex.add_argument("--commit", required=True)
    ex.add_argument("--to", type=Path, required=True)
    sub.add_parser("oracle").add_argument("root", type=Path)
    sub.add_parser("keys")
    render = sub.add_parser("render-keys")
    render.add_argument("names_json", type=Path)
    render.add_argument("target", type=Path)
    me = sub.add_parser("measure")
    me.add_argument("--examples", type=Path, required=True)
    me.add_argument("--axolotl-python", default=str(Path.home() / ".venvs/axolotl-0.21/bin/python"))
    me.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.command == "extract":
        extract(args.repo, args.commit, args.to)
    elif args.command == "oracle":
        oracle(args.root)
    elif args.command == "keys":
        keys()
    elif args.command == "render-keys":
        render_keys(args.names_json, args.target)
    else:
        print(table(measure(args.examples, args.axolotl_python, args.out)))


if __name__ == "__main__":
    sys.exit(main())

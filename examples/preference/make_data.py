"""Write the preference example's pairs: the quickstart's customer messages, each with the right team (chosen)
and a wrong team (rejected) as the assistant's one-word answer.

    python examples/preference/make_data.py          # rewrites train.jsonl and held_out.jsonl beside this file
    python examples/preference/make_data.py DIR      # writes them into DIR instead

The messages come from the quickstart's templates and slots (examples/quickstart/make_data.py). As there, each
template is used on one side only, so the held-out pairs are scored on messages whose wording the model never
trained on. Unlike the quickstart, every team is equally common and is rejected about as often as it is chosen:
a model that just raised one team's word everywhere would gain nothing. Rows are in Axolotl's
`chat_template.default` shape: `messages` (the user turn), `chosen` and `rejected` (assistant messages).
The output is deterministic (a fixed seed) and is committed.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAIN_PER_TEAM, HELD_OUT_PER_TEAM = 50, 20  # 200 training pairs, 80 held out


def _quickstart():
    """The quickstart's make_data module (templates, slots, the question), loaded from its file."""
    spec = importlib.util.spec_from_file_location("quickstart_make_data",
                                                  HERE.parent / "quickstart" / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def messages_for(quickstart, templates: dict[str, list[str]], per_team: int,
                 rng: random.Random) -> list[tuple[str, str]]:
    """`per_team` distinct (message, team) rows for every team, shuffled."""
    rows: dict[str, str] = {}
    for team in quickstart.TEAMS:
        target = len(rows) + per_team
        while len(rows) < target:
            rows.setdefault(quickstart.fill(rng.choice(templates[team]), rng), team)
    shuffled = list(rows.items())
    rng.shuffle(shuffled)
    return shuffled


def pairs(quickstart, rows: list[tuple[str, str]]) -> list[dict]:
    """One pair per message; the wrong team cycles through the other three in turn, per right team, so each
    team is rejected about as often as it is chosen."""
    turns = {team: 0 for team in quickstart.TEAMS}
    out = []
    for message, team in rows:
        wrong = [t for t in quickstart.TEAMS if t != team]
        rejected = wrong[turns[team] % len(wrong)]
        turns[team] += 1
        out.append({"messages": quickstart.conversation(message),
                    "chosen": {"role": "assistant", "content": team},
                    "rejected": {"role": "assistant", "content": rejected}})
    return out


def main(folder: Path = HERE) -> None:
    quickstart = _quickstart()
    rng = random.Random(2026)
    train_templates, held_out_templates = {}, {}
    for team, templates in quickstart.TEMPLATES.items():
        order = templates[:]
        rng.shuffle(order)
        cut = quickstart.HELD_OUT_TEMPLATES
        held_out_templates[team], train_templates[team] = order[:cut], order[cut:]
    for name, templates, per_team in (("train.jsonl", train_templates, TRAIN_PER_TEAM),
                                      ("held_out.jsonl", held_out_templates, HELD_OUT_PER_TEAM)):
        with (folder / name).open("w") as handle:
            for row in pairs(quickstart, messages_for(quickstart, templates, per_team, rng)):
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)

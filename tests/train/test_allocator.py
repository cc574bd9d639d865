"""The CUDA allocator setting axo's CLI chooses: expandable segments unless the user set torch's variable."""

from __future__ import annotations

import os
import subprocess
import sys

from axo.train.allocator import DEFAULT, choose_allocator


def test_the_users_setting_wins_and_an_unset_one_becomes_expandable_segments():
    assert choose_allocator(environ := {}) == DEFAULT and environ == {"PYTORCH_ALLOC_CONF": DEFAULT}  # torch 2.13
    for name in ("PYTORCH_ALLOC_CONF", "PYTORCH_CUDA_ALLOC_CONF"):
        mine = {name: "max_split_size_mb:128"}
        assert choose_allocator(mine) == "max_split_size_mb:128" and mine == {name: "max_split_size_mb:128"}


def test_the_cli_sets_it_before_any_command_runs():
    script = ("import os, sys\nsys.argv = ['axo', '--version']\nfrom axo.cli.main import main\ntry:\n    main()\n"
              "except SystemExit:\n    pass\nprint(os.environ.get('PYTORCH_ALLOC_CONF'), 'torch' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTORCH_ALLOC_CONF", "PYTORCH_CUDA_ALLOC_CONF")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == f"{DEFAULT} False"  # set, and torch not imported yet to have read it

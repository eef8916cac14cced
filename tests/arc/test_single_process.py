"""Under torchrun, `arc-serve` and `arc pretrain` say in one line that they run in one process
(two copies would race on the same checkpoint folder instead of training together)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def test_arc_serve_and_arc_pretrain_refuse_several_ranks(tmp_path):
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "0"}
    for command in (["arc", "pretrain", "--checkpoint-dir", str(tmp_path / "ck")], ["arc-serve", "--checkpoint-dir", str(tmp_path / "ck")]):
        result = subprocess.run([str(BIN / command[0]), *command[1:]], capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "runs in one process" in lines[0] and "without torchrun" in lines[0], result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "ck").exists()

"""Every command a README names exists and explains itself: `<command> --help` exits 0 for each.

Commands are read from the READMEs (code blocks, tables, inline code), so a README that names a
command that is gone, or a command whose help breaks, fails here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
READMES = [ROOT / "README.md", *sorted((ROOT / "packages").glob("*/README.md"))]
COMMAND = re.compile(r"(?:^|`|\$ )(core|spinlock|c2v|arc|detector|vizwatch) ([a-z][a-z-]*[a-z])\b", re.M)
MODULES = {"spinlock": "spinlock_vqvae.cli", "c2v": "choice2vec.cli", "arc": "arc_comm.cli", "detector": "bongard_detector.cli",
           "vizwatch": "vizwatch.cli"}  # fmt: skip


def _named() -> list[tuple[str, str]]:
    found = set()
    for readme in READMES:
        found |= set(COMMAND.findall(readme.read_text(encoding="utf-8")))
    return sorted(found)


def _group(program: str):
    if program == "core":
        from trainer_core.cli import build_cli

        return build_cli()
    return __import__(MODULES[program], fromlist=["cli"]).cli


def test_the_readmes_name_every_package_command():
    named = {p for p, _ in _named()}
    assert named >= {"core", *MODULES}, named


@pytest.mark.parametrize("program, command", _named())
def test_every_command_a_readme_names_has_help(program, command):
    result = CliRunner().invoke(_group(program), [command, "--help"])
    assert result.exit_code == 0, f"{program} {command} --help: {result.output}"
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_arc_serve_has_help():
    serve = Path(sys.executable).with_name("arc-serve")
    result = subprocess.run([str(serve), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--allowed-host" in result.stdout and "--checkpoint-dir" in result.stdout

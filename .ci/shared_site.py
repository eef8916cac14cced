"""Give the running (tox) environment the project's third-party packages without a copy of them.

torch and its kin are about 6 GB: one install, in the project's .venv (made by `make install`),
serves every tox env. This links every entry of .venv's site-packages except the monorepo's own
distributions into .tox/shared-site/ and puts that folder on the environment's path (a .pth
file), so `tox -e vqvae` has torch, numpy, pytest... but only the packages tox installs itself
(trainer-core and vqvae, editable), exactly as a user installing vqvae alone would.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OURS = ("trainer_core", "spinlock_vqvae", "choice2vec", "arc_comm", "bongard_detector", "vizwatch")


def main() -> None:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    source = ROOT / ".venv" / "lib" / version / "site-packages"
    if not source.is_dir():
        sys.exit(f"error: {source} is missing: run `make install` first (tox envs share its third-party packages)")
    shared = ROOT / ".tox" / "shared-site"
    if shared.exists():
        shutil.rmtree(shared)
    shared.mkdir(parents=True)
    for entry in source.iterdir():
        if any(name in entry.name for name in OURS) or entry.suffix == ".pth":
            continue
        (shared / entry.name).symlink_to(entry)
    Path(sysconfig.get_paths()["purelib"], "_shared_site.pth").write_text(f"{shared}\n")


if __name__ == "__main__":
    main()

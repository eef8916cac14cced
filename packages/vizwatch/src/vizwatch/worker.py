"""`python -m vizwatch.worker RUN METHOD SEED CLASS_NAMES_JSON TOTAL_EPOCHS_JSON`: the frame painter
process. Reads one .npz path per stdin line (``END <status>`` closes the run), draws the frame,
deletes the .npz and prints one line per frame done."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str]) -> int:
    from threadpoolctl import threadpool_limits

    from vizwatch.watcher import FramePainter

    threadpool_limits(1)
    run, method, seed, class_names, total_epochs = argv
    painter = FramePainter(Path(run), method, int(seed), json.loads(class_names), json.loads(total_epochs))
    for line in sys.stdin:
        line = line.strip()
        if line.startswith("END"):
            painter.close(line[4:] or "completed")
            return 0
        try:
            with np.load(line, allow_pickle=False) as data:
                item = {k: data[k] for k in data.files}
            item["epoch"] = int(item["epoch"])
            item["metrics"] = json.loads(str(item["metrics"]))
            painter.paint(item)
            os.unlink(line)
        except Exception as exc:  # noqa: BLE001 - a bad frame must not stop the others, nor training
            print(f"warning: vizwatch could not draw {line}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        print("done", flush=True)
    painter.close("interrupted")  # the trainer went away without saying how it ended
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Summarise a py-spy "raw" (collapsed stacks) recording: where the broker spends its time.

    python bench/broker_profile.py /tmp/prof/luxnode.collapsed
"""

import re
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``file.py:func``: one row per function, not per line."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    return f"{Path(match['file']).name}:{match['func']}"


def summary(path: Path, top: int = 20) -> str:
    own, inclusive = Counter(), Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [frame_name(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n
    if not total:
        return f"{path}: no samples"
    rows = [f"py-spy: {total} samples", f"{'self %':>7} {'total %':>8}  function"]
    for name, n in own.most_common(top):
        rows.append(f"{100 * n / total:7.1f} {100 * inclusive[name] / total:8.1f}  {name}")
    rows.append("heaviest by inclusive time:")
    for name, n in inclusive.most_common(top):
        rows.append(f"{100 * own[name] / total:7.1f} {100 * n / total:8.1f}  {name}")
    return "\n".join(rows)


if __name__ == "__main__":
    print(summary(Path(sys.argv[1])))

"""Print the count tables of the judge corpus for README.md (run after copying the writers' files)."""

import collections
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    import sys

    sys.path.insert(0, str(HERE.parents[2]))
    from training.judge import read_items, split

    for path in sorted(HERE.glob("*.jsonl")):
        rows = [json.loads(x) for x in path.open() if x.strip()]
        labels = collections.Counter(str(r["label"]) for r in rows)
        tasks = collections.Counter(r.get("task", "conversation") for r in rows)
        print(f"| {path.name} | {len(rows)} | {dict(sorted(tasks.items()))} | {dict(sorted(labels.items()))} |")
    train, dev = split(read_items(HERE))
    for name, part in (("train", train), ("dev", dev)):
        print(f"| {name} | {len(part)} items | {len({i['group'] for i in part})} groups | "
              f"{dict(sorted(collections.Counter(i['task'] for i in part).items()))} | "
              f"{dict(sorted(collections.Counter(i['label'] for i in part).items()))} |")


if __name__ == "__main__":
    main()

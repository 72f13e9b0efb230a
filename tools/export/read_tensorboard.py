"""Reads TensorBoard event files with the `tensorboard` package and prints their scalars as JSON:
{tag: [[step, value], ...]}.   python tools/export/read_tensorboard.py DIR"""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main() -> None:
    acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
    acc.Reload()
    out = {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()

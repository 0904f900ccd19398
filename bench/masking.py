"""Masking secrets in a large output: the prefix-tree pattern against one alternation of literals.

    .venv/bin/python bench/masking.py [--secrets 3000] [--megabytes 5]

Both patterns mask the same values (each secret in every form redact.printed_forms gives) in the
same text; the ratio is the alternation's time over the tree's, measured in the same run.
"""

from __future__ import annotations

import argparse
import random
import re
import string
import time

from pytest_notebooks.redact import Redactor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=3000)
    parser.add_argument("--megabytes", type=float, default=5.0)
    args = parser.parse_args()
    rng = random.Random(1)  # noqa: S311 -- fake secrets for a benchmark
    environ = {
        f"S_{n}_TOKEN": "".join(rng.choice(string.ascii_letters) for _ in range(24)) for n in range(args.secrets)
    }
    redactor = Redactor.from_environ(environ)
    alternation = re.compile("|".join(re.escape(value) for value in redactor.values))
    size = int(args.megabytes * 1_000_000)
    texts = {
        "random letters": "".join(rng.choice(string.ascii_letters + " \n") for _ in range(size)),
        "log lines": ("2026-12-07 INFO rows=12345 region=fr\n" * (size // 37 + 1))[:size],
    }
    for name, text in texts.items():
        start = time.perf_counter()
        tree = redactor.text(text)
        middle = time.perf_counter()
        flat = alternation.sub("***", text)
        end = time.perf_counter()
        assert tree == flat
        print(
            f"{name}, {args.megabytes:g} MB, {len(redactor.values)} values: prefix tree {middle - start:.2f} s, "
            f"alternation {end - middle:.2f} s, ratio {(end - middle) / (middle - start):.1f}x"
        )


if __name__ == "__main__":
    main()

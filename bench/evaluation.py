"""How long the program takes to evaluate under mocks, per stack, against the bare import of
the SDKs it uses. Each sample is a fresh interpreter, so import caches do not flatter either.

    .venv/bin/python bench/evaluation.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPORTS = "import pulumi, pulumi_docker, pulumi_postgresql, pulumi_random, yaml"
EVALUATE = "from tests.harness import run_program; run_program({stack!r})"


def sample(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per case")
    runs = parser.parse_args().runs
    cases = {"bare SDK import": IMPORTS}
    for stack in ("dev", "prod"):
        cases[f"evaluate {stack}"] = EVALUATE.format(stack=stack)
    medians: dict[str, float] = {}
    for label, code in cases.items():
        times = []
        for i in range(runs):
            times.append(sample(code))
            print(f"\r{label}: run {i + 1}/{runs}, last {times[-1]:.3f}s", end="", flush=True)
        medians[label] = statistics.median(times)
        print(f"\r{label}: median {medians[label]:.3f}s "
              f"(min {min(times):.3f}s, max {max(times):.3f}s, {runs} runs)")
    base = medians["bare SDK import"]
    print("\nsummary (median wall time, fresh interpreter each run)")
    for label, value in medians.items():
        print(f"  {label:<16} {value:7.3f}s  {value / base:5.2f}x bare import")


if __name__ == "__main__":
    main()

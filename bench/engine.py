"""`pulumi preview` wall time of the engine tests' program (the connectors and the SQL
processors, devtools/engine_program.py) against the same preview of an empty inline program,
with the real CLI (scripts/fetch-pulumi), in one run. What the ratio isolates is the program's
own cost under the engine: evaluating the components, starting the dynamic provider host
(a Python process that unpickles the providers) and checking eight resources; the empty
program pays only for the CLI, the Automation API and the engine's plugin start-up.

Each sample previews a new stack (every resource is a create: preview calls no server, so
the endpoints are placeholders); the two programs alternate, so drift on the machine hits
both alike.

    .venv/bin/python bench/engine.py [--runs N]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.engine import Engine, cli_missing, pinned_version
from devtools.engine_program import PipelineTargets, pipeline_program

PLACEHOLDERS = PipelineTargets(
    connect_url="http://127.0.0.1:9", mqtt_url="tcp://127.0.0.1:9", mqtt_username="bench",
    mqtt_password=secrets.token_urlsafe(16), hq_url="http://127.0.0.1:9",
    lenses_username="bench", lenses_password=secrets.token_urlsafe(16))


def empty_program() -> None:
    """Registers nothing but the stack."""


def preview_seconds(engine: Engine, stack_name: str, program) -> tuple[float, dict]:
    stack = engine.stack(stack_name, program)
    started = time.perf_counter()
    result = stack.preview()
    elapsed = time.perf_counter() - started
    stack.workspace.remove_stack(stack_name)
    return elapsed, result.change_summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="previews per program")
    runs = parser.parse_args().runs
    missing = cli_missing()
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    programs = {"empty": empty_program, "pipeline": pipeline_program(PLACEHOLDERS)}
    samples: dict[str, list[float]] = {name: [] for name in programs}
    with tempfile.TemporaryDirectory(prefix="health-pipeline-bench-engine-") as root:
        engine = Engine(Path(root))
        for run in range(runs):
            for name, program in programs.items():
                seconds, summary = preview_seconds(engine, f"{name}-{run}", program)
                samples[name].append(seconds)
                print(f"{name}: run {run + 1}/{runs} {seconds:.2f}s {summary}", file=sys.stderr,
                      flush=True)
    empty = statistics.median(samples["empty"])
    pipeline = statistics.median(samples["pipeline"])
    print(f"summary: `pulumi preview` of a new stack, Pulumi CLI {pinned_version()}, "
          f"median of {runs}")
    print(f"  empty inline program      {empty:6.2f}s  1.00x")
    print(f"  engine tests' program     {pipeline:6.2f}s  {pipeline / empty:5.2f}x empty "
          "(2 components, 1 connector, 4 processors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

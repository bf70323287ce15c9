"""How long the program takes to evaluate under mocks, per stack, against the bare import of
the SDKs it uses. Each sample is a fresh interpreter, so import caches do not flatter either.

Per sample: `cold` is the first evaluation in the interpreter (imports, and the mock engine
generating the 4096-bit RSA key the tls provider would make); `warm` is a second evaluation
in the same interpreter with a fresh engine state, i.e. the program's own work.

    .venv/bin/python bench/evaluation.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SDKS = ("pulumi", "pulumi_docker", "pulumi_postgresql", "pulumi_random", "pulumi_kafka",
        "pulumi_snowflake", "pulumi_tls", "yaml", "cryptography.hazmat.primitives.serialization")
PROBE = """
import json, time
t0 = time.perf_counter()
{body}
print(json.dumps(result))
"""
IMPORT_BODY = "import " + ", ".join(SDKS) + "\nresult = {'import': time.perf_counter() - t0}"
EVALUATE_BODY = """from devtools.harness import State, run_program
t1 = time.perf_counter(); run_program({stack!r}, state=State())
t2 = time.perf_counter(); run_program({stack!r}, state=State())
t3 = time.perf_counter()
result = {{'cold': t2 - t0, 'warm': t3 - t2}}"""


def sample(body: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(body=body)], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per case")
    runs = parser.parse_args().runs
    cases = {"bare SDK import": IMPORT_BODY}
    cases |= {f"evaluate {s}": EVALUATE_BODY.format(stack=s) for s in ("dev", "prod")}
    medians: dict[str, float] = {}
    for label, body in cases.items():
        samples = []
        for i in range(runs):
            samples.append(sample(body))
            print(f"{label}: run {i + 1}/{runs} {samples[-1]}", file=sys.stderr, flush=True)
        for metric in samples[0]:
            values = [s[metric] for s in samples]
            medians[f"{label} ({metric})"] = statistics.median(values)
    base = medians["bare SDK import (import)"]
    print(f"summary: median wall time over {runs} fresh interpreters each")
    for label, value in medians.items():
        print(f"  {label:<24} {value:7.3f}s  {value / base:5.2f}x bare import")


if __name__ == "__main__":
    main()

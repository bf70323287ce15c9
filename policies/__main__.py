"""Entry point the Pulumi CLI runs for `--policy-pack policies`: serves the guardrails."""

import sys
from pathlib import Path

from pulumi_policy import PolicyPack

# The CLI runs this file from policies/; the rules are imported as the tests import them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policies.guardrails import POLICIES

PolicyPack(name="health-pipeline-guardrails", policies=POLICIES)

"""health-pipeline's policy pack (Pulumi CrossGuard). The policies live in `guardrails`, which
starts nothing; `__main__` serves them to the Pulumi CLI."""

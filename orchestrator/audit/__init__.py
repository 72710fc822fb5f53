"""Baseline checks: facts in, findings out. Read-only."""

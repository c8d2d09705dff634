"""Test-time verification strategies (baseline, ORM, PRM, PARM, PARM++) and their traces.

`strategies` holds `Verifier` and `VerifyConfig`, `trace` what a run reports; the package itself
imports nothing, so the CLI can read the strategy names without loading torch."""

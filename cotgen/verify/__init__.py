"""Test-time verification strategies (baseline, ORM, PRM, PARM, PARM++) and their traces.

`config` holds the strategy names and `VerifyConfig` (no torch), `strategies` the `Verifier`,
`trace` what a run reports."""

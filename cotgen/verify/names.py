"""Strategy names, importable without torch (the CLI's argument parser needs them)."""

STRATEGIES = ("baseline", "orm", "prm", "parm", "parm++")

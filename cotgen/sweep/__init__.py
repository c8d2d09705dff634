"""A test-time scaling sweep's pure parts, importable without Ray: its config (`config`), what it
runs (`plan`), how one unit of work becomes result rows (`work`), its progress lines (`progress`)
and where rows and images go (`store`). `cotgen.distributed` runs them on Ray; `in_process` runs
them unit by unit here (the reference the Ray sweep is checked against)."""

"""The Ray layer: test-time scaling sweeps on Ray Data (`pipeline`) over generator and judge actors
(`actors`). It holds no algorithm of its own: what a sweep runs (`plan`), how one unit of work becomes
result rows (`work`) and where rows and images go (`store`) are plain Python, importable without Ray."""

"""What every training recipe shares: logging (`log`), the schedule (`schedule`), the command line
(`recipe`) and model-card pieces (`cards`)."""

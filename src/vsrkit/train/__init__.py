"""Training: configs, losses, optimiser and schedule, EMA, the loop, checkpoints and distributed runs."""

"""Training: datasets, losses, stage-1/stage-2/swap/personalization loops."""

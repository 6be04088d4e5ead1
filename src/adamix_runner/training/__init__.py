"""Training: the explicit loop on Accelerate, its losses, and resumable checkpoints."""

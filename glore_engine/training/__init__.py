"""Training on accelerate: SFT (student, refiners) and reward-model training share one loop."""

"""Data the reward models and refiners learn from: ORM samples, SORM rollout labels, refinement pairs."""

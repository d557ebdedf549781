"""Evaluation: student accuracy, reward-model metrics (T1), refinement and end-to-end tables (T2, T3)."""

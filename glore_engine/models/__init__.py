"""Causal LMs (student, refiners) and reward models (ORM, SORM), with checkpoint cards."""

from .causal_lm import ARCH_PRESETS, count_parameters, create_policy, load_causal_lm, save_causal_lm
from .checkpoint import Card, check_role, read_card

__all__ = [
    "ARCH_PRESETS",
    "Card",
    "check_role",
    "count_parameters",
    "create_policy",
    "load_causal_lm",
    "read_card",
    "save_causal_lm",
]

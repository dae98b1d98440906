"""The validate stage: static L1 checks (static.py) and the L3 score (score.py) of each candidate."""

from __future__ import annotations

from .score import score_candidate
from .static import run_static_checks

__all__ = ["run_static_checks", "score_candidate"]

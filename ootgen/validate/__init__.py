"""The validate stage: static L1 check families (markdown, cstructure, names, assembly, addresses) behind one
compiled CheckPolicy (policy.py), driven by static.py, and the L3 score (score.py) of each candidate."""

from __future__ import annotations

from . import cstructure
from .policy import CheckPolicy, compile_policy
from .score import score_candidate
from .static import run_static_checks

__all__ = ["CheckPolicy", "compile_policy", "cstructure", "run_static_checks", "score_candidate"]

"""Robustness conditions (image degradations registered by stable id) and the study's metrics.

Importing the package registers every condition family::

    from robustness.registry import get, list_conditions
    from robustness.apply import apply_condition
"""

from __future__ import annotations

from robustness import compression, filters, memes, screenshots  # noqa: F401  (register)

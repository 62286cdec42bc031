"""Studies as files: ``python -m robustness.study run STUDY.yaml``.

A study file (``schema``) declares image sets, conditions, models, metrics and the real sets to
average over; ``runner`` queues the jobs the store still needs and waits for them; ``results``
computes the study's tables by its protocol; ``report`` writes them (with ``tables``,
``figures``, ``html``). ``roger.yaml`` reproduces the shipped robustness study from its scores
in ``roger-study/``.
"""

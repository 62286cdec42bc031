"""Background jobs: the worker, its job kinds and the executors they map work onto.

Layer: below ``dashboard`` (pages enqueue through ``dashboard.jobqueue``), above ``db``,
``robustness`` and ``spai``. See ``jobs.worker`` for the process and docs/architecture.md.
"""

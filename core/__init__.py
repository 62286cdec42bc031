"""The lowest layer: what every other package may import and which imports none of them.

The capped image decoder (``core.imageio``) and its limits (``core.limits``), files written whole
or not at all (``core.atomic``), and one-line user errors for every command line
(``core.cli_errors``). Nothing here imports ``spai``, ``robustness``, ``db``, ``jobs`` or
``dashboard``; ``tests/test_layers.py`` checks it.
"""

"""Graded exercises: write a piece of the autograd engine, then run ``python exercises/grade.py``.

See exercises/README.md. The task files (01_mul_exp.py, ...) are loaded by path, not imported.
"""

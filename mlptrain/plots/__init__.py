"""PNG plots: of one run (curves, health, confusion), of several runs overlaid, of a sweep.

matplotlib is imported here only, lazily (``common.pyplot``), with the Agg backend.

May import: ``sweep``, ``runs``, ``train``, ``nn``, ``data``, ``config``, and the foundation.
"""

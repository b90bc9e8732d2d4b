"""PNG plots: of one run (curves, health, filters, augmented images, confusion), of several runs overlaid,
of a sweep, of the tuning tools.

matplotlib is imported here only, lazily (``common.pyplot``), with the Agg backend.

May import: ``sweep``, ``runs``, ``train``, ``nn``, ``data``, ``config``, and the foundation.
"""

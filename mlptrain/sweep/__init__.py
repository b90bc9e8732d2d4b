"""Sweeps: a spec expanded into trials, run on local processes or Dask, results gathered over seeds.

``spec`` validates a sweep spec and expands its grid into named trials;
``trial`` is one trial in a worker; ``executors`` run trials on a local
process pool or a Dask cluster; ``execute`` keeps the sweep directory and its
results current; ``results`` writes and reads them; ``summary`` gathers them
over seeds (mean, sample std, t interval) into ``summary.csv`` and ``summary.md``;
``grow`` decides whether a spec only adds trials to an existing sweep.

May import: ``experiment``, ``runs``, ``train``, ``nn``, ``data``, ``config``, and the foundation.
"""

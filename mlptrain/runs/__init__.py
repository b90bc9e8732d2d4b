"""The run directory: its files (config, metrics, weights, checkpoints, summary), its owner, reading a run back.

``files`` writes and reads every file of a run directory atomically and checks
what it reads; ``lock`` gives a run (or sweep) directory one owning process at
a time; ``extend`` and ``resume`` continue a run in place; ``report`` loads a
whole run (finished or not) as a ``RunRecord`` and formats it for ``mlptrain
inspect``; ``table`` lists the runs under some directories (``mlptrain runs``)
and ``compare`` puts runs side by side; ``replace`` is ``--overwrite``;
``tensorboard`` writes a run's TensorBoard events.

May import: ``train``, ``nn``, ``data``, ``config``, ``configfile``, and the foundation.
"""

"""The maths: activations, initializers, the network's one forward/backward core, BLAS, optimizers, schedules.

Pure functions on NumPy arrays, batch-major ``(n, features)``; state lives
only in the optimizers. ``activations``, ``initializers``, ``optimizers`` and
``schedules`` are tables keyed by name: the config, the CLI choices, the docs
and the parametrized tests all read them. ``network`` is the one core that
training, evaluation, diagnostics and gradient checks share.

May import: numpy, ``mlptrain.errors``. Never click, never the terminal.
"""

"""Training: the loop (``trainer``), its loss (``objective``), its batches (``batches``) and its health checks.

``trainer.Trainer`` runs epochs through the one core in ``nn.network``, with
the optimizer, schedule, dropout, max-norm and early stopping the config asks
for; ``objective`` turns the config's loss options into the loss each step
minimises (the gradient check checks the same one); ``batches`` serves its
minibatches, augmented (``data.augment``) when the config says so;
``progress`` is the plain-data part of its state;
``diagnostics`` checks the net at init and after each epoch and raises coded
warnings, ``datacheck`` checks the training images; ``causes`` decides from
the evidence which cause of the vocabulary in ``advice`` explains them, and
``advice`` says what to do about it. Nothing here writes files or prints:
``experiment`` does the run directory, the CLI the terminal.

May import: ``nn``, ``data``, ``config``, and the foundation (``errors``, ``fsutil``, ``threads``).
"""

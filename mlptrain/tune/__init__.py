"""Before training: a dry run, an init-scale scan, a learning-rate range test and a gradient check.

Each answers one "what should I set?" question cheaply, through the same core
(``nn.network``), trainer step (``train.trainer``) and init check
(``train.diagnostics``) that training uses: ``dryrun`` (build everything, check
the init, take one step), ``initscan`` (the init check's gain product over a
grid of uniform scales and the table's initializers), ``lrfind`` (Smith's LR
range test) and ``gradcheck`` (backprop against central differences in float64).
Nothing here writes files or prints: the CLI does both.

May import: ``train``, ``nn``, ``data``, ``config``, and the foundation (``errors``, ``fsutil``, ``threads``).
"""

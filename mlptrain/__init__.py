"""mlptrain: train multilayer perceptrons on MNIST-family data with nothing but NumPy.

The parts, bottom to top; each may import only the parts below it
(``tests/test_layout.py`` checks this on every import statement):

    errors, fsutil, threads   the foundation: domain errors, atomic writes, BLAS thread limits and the CPU model
    nn, data                  the maths (one forward/backward core) and the data pipeline; independent
    config                    the training config: one table of keys, validated
    configfile                config files (strict YAML, shipped configs) and resolve_config, the one way in
    train                     the training loop and its health diagnostics
    tune                      before training: dry run, init-scale scan, LR range test, gradient check
    runs                      the run directory: files, weights, checkpoints, reading a run back
    infer                     a trained net at work: predict on images and arrays, export to ONNX
    experiment                the glue of fit and eval: a run from config to summary.json
    sweep                     grids of runs on local processes or Dask
    plots                     PNGs of runs and sweeps (matplotlib, lazily)
    cli                       the Click commands: the only part that knows the terminal
"""

__version__ = "0.1.0"

"""mlptrain: train multilayer perceptrons on MNIST-family data with nothing but NumPy."""

__version__ = "0.1.0"

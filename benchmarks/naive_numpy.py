#!/usr/bin/env python3
"""A straightforward NumPy MLP trainer, written the way the original question wrote it.

This is the "before" picture for benchmarks/speed.py, not part of mlptrain:
the whole training set is turned into floats once, with the bias handled as
an extra column of ones appended to the input (``np.hstack``) and to every
hidden layer's activations, each weight matrix carrying the bias as its last
row. A per-minibatch Python loop does forward, backward (the textbook
sigmoid-network code with the derivative swapped for ReLU's) and SGD with
momentum. float64 by default, as NumPy gives you unless you ask; ``--dtype
float32`` for the fairer comparison.

Same maths as torch_ref.py and mlptrain's defaults: ReLU hidden layers,
softmax cross-entropy averaged over the minibatch, ``v = mu v - lr g; W += v``,
He-normal weights and zero biases, reshuffled every epoch, last partial batch
kept, and no input-layer ``dX`` (nobody computes it).

    python benchmarks/naive_numpy.py --data ../shared/data/fashion-mnist --hidden 256,256 --epochs 2

``train_epoch_seconds(images_uint8, labels, hidden, batch, dtype, seed)`` times
one epoch of the training loop (shuffle, batch gather, forward, backward,
update); converting the data to floats and drawing the weights are not timed.
"""

from __future__ import annotations

import argparse
import gzip
import os
import struct
import time

import numpy as np


def relu(z):
    return np.maximum(z, 0)


def relu_prime(a):
    """Derivative of ReLU from its output (the sigmoid code used ``a * (1 - a)`` here)."""
    return (a > 0).astype(a.dtype)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def add_bias_column(a):
    """Append a column of ones, so that ``a @ W`` includes the bias row of ``W``."""
    return np.hstack([a, np.ones((a.shape[0], 1), dtype=a.dtype)])


class NaiveMLP:
    """Weights ``W[l]`` of shape ``(sizes[l] + 1, sizes[l+1])``; the last row is the bias."""

    def __init__(self, sizes, dtype=np.float64, seed=0, lr=0.05, momentum=0.9):
        self.sizes, self.dtype, self.lr, self.momentum = list(sizes), np.dtype(dtype), lr, momentum
        self.rng = np.random.default_rng(seed)
        self.W = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            w = self.rng.standard_normal((fan_in + 1, fan_out)) * np.sqrt(2.0 / fan_in)
            w[-1] = 0.0  # bias row
            self.W.append(w.astype(self.dtype))
        self.V = [np.zeros_like(w) for w in self.W]

    def prepare(self, images_uint8, labels):
        """The whole training set as floats with the ones column, and one-hot targets."""
        X = add_bias_column(images_uint8.reshape(len(images_uint8), -1).astype(self.dtype) / 255.0)
        Y = np.zeros((len(labels), self.sizes[-1]), dtype=self.dtype)
        Y[np.arange(len(labels)), labels] = 1.0
        return X, Y

    def feedforward(self, x):
        """Activations of every layer (hidden ones with their ones column) and the output probabilities."""
        activations = [x]
        a = x
        for w in self.W[:-1]:
            a = add_bias_column(relu(np.dot(a, w)))
            activations.append(a)
        return activations, softmax(np.dot(a, self.W[-1]))

    def backprop(self, x, y):
        """Gradients of the mean cross-entropy with respect to every ``W`` (bias rows included)."""
        activations, output = self.feedforward(x)
        delta = (output - y) / len(x)  # softmax + cross-entropy
        grads = [None] * len(self.W)
        for layer in range(len(self.W) - 1, -1, -1):
            grads[layer] = np.dot(activations[layer].T, delta)
            if layer > 0:
                delta = np.dot(delta, self.W[layer].T)[:, :-1] * relu_prime(activations[layer][:, :-1])
        return grads

    def train_epoch(self, X, Y, batch):
        """One pass over the data in a fresh random order, SGD with momentum after every minibatch."""
        perm = self.rng.permutation(len(X))
        for start in range(0, len(X), batch):
            idx = perm[start:start + batch]
            grads = self.backprop(X[idx], Y[idx])
            for w, v, g in zip(self.W, self.V, grads):
                v *= self.momentum
                v -= self.lr * g
                w += v

    def accuracy(self, images_uint8, labels):
        X, _ = self.prepare(images_uint8, labels)
        _, output = self.feedforward(X)
        return float(np.mean(output.argmax(axis=1) == labels))


def train_epoch_seconds(images_uint8, labels, hidden, batch=128, dtype=np.float64, seed=0, epochs=1,
                        lr=0.05, momentum=0.9):
    """Wall seconds of the training loop of one epoch (with ``epochs`` > 1: a list, one per epoch).

    The float conversion of the data and the weight init happen before the clock starts.
    """
    n_classes = int(labels.max()) + 1
    net = NaiveMLP([images_uint8.reshape(len(images_uint8), -1).shape[1], *hidden, n_classes],
                   dtype, seed, lr, momentum)
    X, Y = net.prepare(images_uint8, labels)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        net.train_epoch(X, Y, batch)
        times.append(time.perf_counter() - t0)
    return times[0] if epochs == 1 else times


def read_idx(path):
    """An IDX file (gzipped or raw) of unsigned bytes as an array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_split(directory, split):
    """``(images (n, 784) uint8, labels (n,) uint8)`` of ``split`` (``train`` or ``t10k``)."""
    arrays = []
    for kind in ("images-idx3", "labels-idx1"):
        stem = os.path.join(directory, f"{split}-{kind}-ubyte")
        arrays.append(read_idx(stem + ".gz" if os.path.exists(stem + ".gz") else stem))
    images, labels = arrays
    return images.reshape(len(images), -1), labels


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                  "shared", "data", "fashion-mnist"))
    p.add_argument("--hidden", default="256,256")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    hidden = [int(h) for h in args.hidden.split(",") if h]
    images, labels = load_split(args.data, "train")
    test_images, test_labels = load_split(args.data, "t10k")
    net = NaiveMLP([images.shape[1], *hidden, int(labels.max()) + 1], args.dtype, args.seed)
    X, Y = net.prepare(images, labels)
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        net.train_epoch(X, Y, args.batch)
        seconds = time.perf_counter() - t0
        print(f"epoch {epoch}: {seconds:.2f} s, test accuracy {net.accuracy(test_images, test_labels):.4f}")


if __name__ == "__main__":
    main()

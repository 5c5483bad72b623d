"""Writes a logdir of a 12-layer tanh MLP whose gradient vanishes towards the inputs.

The layers start with small weights (stddev 0.05 at width 64), so each tanh layer passes back
about 0.4 of the gradient it gets: the first layer's gradient is some five orders of magnitude
below the last one's, and it stays so while `model.fit` trains. `GradFlowCallback` logs every
other batch. The heatmap of the layers view (issue 17) shows it as a band that fades to the
left; tests/test_browser_heatmap.py and the screenshots in docs/ use it. `write_torch` writes the
same MLP in PyTorch at its default init, the run the heatmap is compared with.

Usage: python tests/scripts/vanishing_mlp.py LOGDIR [--batches 120]
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tb_gradflow.keras import GradFlowCallback  # noqa: E402

DEPTH = 12
WIDTH = 64


def vanishing_mlp(seed: int = 0) -> keras.Model:
    """Twelve Dense+tanh layers named layer_01 ... layer_12, then a linear head."""
    keras.utils.set_random_seed(seed)
    init = keras.initializers.RandomNormal(stddev=0.05, seed=seed)
    inputs = keras.Input((16,), name="features")
    h = inputs
    for i in range(1, DEPTH + 1):
        h = keras.layers.Dense(WIDTH, activation="tanh", kernel_initializer=init, name=f"layer_{i:02d}")(h)
    outputs = keras.layers.Dense(1, name="head")(h)
    return keras.Model(inputs, outputs, name="vanishing")


def write(logdir: str, batches: int = 120, every: int = 2) -> None:
    """Trains the MLP for `batches` batches of 32, logging every `every`-th, into LOGDIR/train."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batches * 32, 16)).astype("float32")
    y = np.sin(x[:, :1] * 2).astype("float32")
    model = vanishing_mlp()
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    callback = GradFlowCallback(logdir, data=(x[:32], y[:32]), every_n_steps=every)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[callback], shuffle=False)


def write_torch(run_dir: str, steps: int = 20, every: int = 2) -> None:
    """The same twelve tanh layers in PyTorch (modules layer_01 ... layer_12, head) at PyTorch's
    default init, trained with SGD for `steps` steps, each `every`-th a `tb_gradflow.torch`
    training step logged into RUN_DIR: the gradient fades through depth far less, a run to
    compare the Keras one with (issue 17's heatmap in Compare)."""
    from collections import OrderedDict

    import torch
    import torch.nn.functional as F
    from torch import nn

    import tb_gradflow.torch as gt

    torch.manual_seed(0)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    width = 16
    for i in range(1, DEPTH + 1):
        layers[f"layer_{i:02d}"] = nn.Linear(width, WIDTH)
        layers[f"tanh_{i:02d}"] = nn.Tanh()
        width = WIDTH
    layers["head"] = nn.Linear(WIDTH, 1)
    model = nn.Sequential(layers)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(32, 16)).astype("float32"))
    y = torch.sin(x[:, :1] * 2)

    def loss_fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(model(x), y)

    for step in range(steps):
        if step % every == 0:
            gt.gradflow(run_dir, "gradflow", loss_fn, x, y, step=step, optimizer=optimizer, strict=True)
        else:
            optimizer.zero_grad()
            loss_fn(x, y).backward()
            optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logdir")
    parser.add_argument("--batches", type=int, default=120)
    args = parser.parse_args()
    write(args.logdir, args.batches)


if __name__ == "__main__":
    main()

"""A data provider over a local logdir, for reading without a TensorBoard server (the CLI)."""
from __future__ import annotations

import os

from tensorboard.backend.event_processing import data_provider as tb_data_provider
from tensorboard.backend.event_processing import plugin_event_multiplexer

from tb_gradflow.format import metadata


class LogdirError(Exception):
    """The logdir does not exist or is not a directory."""


def local_provider(logdir: str) -> tb_data_provider.MultiplexerDataProvider:
    """A data provider over a logdir on disk, for commands that run without a TensorBoard."""
    if not os.path.exists(logdir):
        raise LogdirError(f"logdir {logdir!r} does not exist")
    if not os.path.isdir(logdir):
        raise LogdirError(f"logdir {logdir!r} is not a directory")
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance={metadata.PLUGIN_NAME: 0},  # 0: keep every step
    )
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    return tb_data_provider.MultiplexerDataProvider(multiplexer, logdir)

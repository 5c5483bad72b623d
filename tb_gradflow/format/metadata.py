"""Summary metadata of gradflow data: what tells TensorBoard and our reader what a tag holds.

Two kinds of tags per summary name NAME:
- NAME: DATA_CLASS_TENSOR, one scalar string tensor per step holding a serialized `Step`
  (a few KB, so TensorBoard's tensor sampling applies to it);
- NAME/_graph/GRAPH_ID: DATA_CLASS_BLOB_SEQUENCE, one blob holding a serialized `Graph`. One tag
  per graph version means blob-sequence sampling can never drop a graph that steps refer to.
"""
from __future__ import annotations

from tensorboard.compat.proto import summary_pb2

from tb_gradflow.proto import gradflow_pb2

PLUGIN_NAME = "gradflow"
# 2: states packed in 2 bits and op norms log-quantized in the Step (a third of version 1's size).
FORMAT_VERSION = 2
# Versions this reader understands: the Graph is the same, the Step is told apart by its fields.
READABLE_VERSIONS = (1, 2)
GRAPH_TAG_INFIX = "/_graph/"


class FormatError(ValueError):
    """Gradflow data that this version cannot read."""


def graph_tag(name: str, graph_id: str) -> str:
    """The tag of a graph summary: it lives beside its steps' tag so that readers find it."""
    return f"{name}{GRAPH_TAG_INFIX}{graph_id}"


def _metadata(plugin_data: gradflow_pb2.PluginData, data_class: int, description: str):
    metadata = summary_pb2.SummaryMetadata(
        summary_description=description,
        data_class=data_class,
    )
    metadata.plugin_data.plugin_name = PLUGIN_NAME
    metadata.plugin_data.content = plugin_data.SerializeToString()
    return metadata


def step_metadata(name: str, description: str = "") -> summary_pb2.SummaryMetadata:
    """Metadata of a step summary; the version lets readers refuse a format they do not know."""
    data = gradflow_pb2.PluginData(version=FORMAT_VERSION, kind=gradflow_pb2.PluginData.STEP, name=name)
    return _metadata(data, summary_pb2.DATA_CLASS_TENSOR, description)


def graph_metadata(name: str, graph_id: str) -> summary_pb2.SummaryMetadata:
    """Metadata of a graph summary, written once per trace and found by its id."""
    data = gradflow_pb2.PluginData(
        version=FORMAT_VERSION, kind=gradflow_pb2.PluginData.GRAPH, name=name, graph_id=graph_id
    )
    return _metadata(data, summary_pb2.DATA_CLASS_BLOB_SEQUENCE, "")


def parse_plugin_data(content: bytes) -> gradflow_pb2.PluginData:
    """Decodes plugin_data.content; raises FormatError for data we must not guess at."""
    data = gradflow_pb2.PluginData()
    try:
        data.ParseFromString(content)
    except Exception as e:  # protobuf raises DecodeError, or others from the C++ backend
        raise FormatError(f"unreadable gradflow metadata: {e}") from e
    if data.version not in READABLE_VERSIONS:
        raise FormatError(
            f"gradflow format version {data.version}; this tb_gradflow reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))} (a newer tb_gradflow wrote it?)"
        )
    if data.kind not in (gradflow_pb2.PluginData.STEP, gradflow_pb2.PluginData.GRAPH):
        raise FormatError(f"unknown gradflow record kind {data.kind}")
    return data

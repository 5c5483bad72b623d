"""The gradflow TensorBoard plugin: the "Gradient Flow" tab's JSON routes and static files.

Reads only through `context.data_provider`, with the request's context and experiment id, so it
works over the Python loader, the Rust data server and remote providers alike. Logdir content is
untrusted: what cannot be read is skipped with a warning naming run and tag, and every bad
request gets a JSON `{"error": ...}` with a 400 or 404.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from tb_gradflow.format import metadata
from tb_gradflow.plugin import params, static_files, views
from tb_gradflow.reading.cache import DEFAULT_BUDGET_BYTES, CachedSeries, ListingCache, SeriesCache
from tb_gradflow.reading.reader import GradflowReader, data_scope

logger = logging.getLogger("tb_gradflow")

_JSON = "application/json"
_STATIC_ROUTE = "/static/"
Route = Callable[[wrappers.Request], str]


class _WarnOnce:
    """Logs each distinct warning once: listings run at every request, a bad tag stays bad."""

    _LIMIT_CHARS = 4 << 20  # run and tag names come from the logdir: bound by size, not count

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._chars = 0

    def __call__(self, message: str) -> None:
        with self._lock:
            if message in self._seen:
                return
            if self._chars + len(message) > self._LIMIT_CHARS:
                self._seen.clear()
                self._chars = 0
            self._seen.add(message)
            self._chars += len(message)
        logger.warning("tb_gradflow: %s", message)


CACHE_ENV = "TB_GRADFLOW_CACHE_MB"
# The most one read of a non-Python data provider may return; lowered by tests and benchmarks to
# make a run "too large" cheaply.
READ_BUDGET_ENV = "TB_GRADFLOW_READ_BUDGET_BYTES"


def read_budget_bytes() -> int:
    """`TB_GRADFLOW_READ_BUDGET_BYTES` when set to a positive integer, else the reader's 224 MiB."""
    value = os.environ.get(READ_BUDGET_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else GradflowReader.read_budget_bytes


def cache_budget_bytes() -> int:
    """The decoded-series budget: `TB_GRADFLOW_CACHE_MB` when set to a positive integer."""
    value = os.environ.get(CACHE_ENV, "")
    if value.isdigit() and int(value) > 0:
        return int(value) << 20
    if value:
        logger.warning("tb_gradflow: %s=%r is not a positive number of MB; using the default", CACHE_ENV, value)
    return DEFAULT_BUDGET_BYTES


class GradflowPlugin(base_plugin.TBPlugin):
    """The Gradient Flow tab's server side: JSON routes over the data provider, and the bundle."""
    plugin_name = metadata.PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext):
        self._provider = context.data_provider
        self._multiplexer = getattr(context, "multiplexer", None)  # Python loader only
        self._cache = SeriesCache(cache_budget_bytes())
        self._listings = ListingCache()
        self._warn = _WarnOnce()
        self._local_logdir = getattr(context, "logdir", None) or None
        self._read_budget = read_budget_bytes()

    def get_plugin_apps(self) -> dict[str, Any]:
        """The routes TensorBoard serves under this plugin's prefix."""
        return {
            "/index.js": self._serve_index,
            _STATIC_ROUTE + "*": self._serve_static,
            "/runs": _json_route(self._runs),
            "/graph": _json_route(self._graph),
            "/history": _json_route(self._history),
            "/diagnosis": _json_route(self._diagnosis),
            "/graph_groups": _json_route(self._graph_groups),
            "/notices": _json_route(self._notices),
            "/layers": _json_route(self._layers),
        }

    def is_active(self) -> bool:
        """Never active by itself: `data_plugin_names` lets TensorBoard activate the tab on data."""
        return False  # data_plugin_names() activates the tab when gradflow data exists

    def data_plugin_names(self) -> tuple[str, ...]:
        """The plugin name in summary metadata that marks data as this tab's."""
        return (metadata.PLUGIN_NAME,)

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        """Tells TensorBoard to load the tab as an ES module from this plugin."""
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="Gradient Flow")

    # JSON routes

    def _reader(self, request: wrappers.Request) -> tuple[GradflowReader, str, Any]:
        """A reader for the request's experiment, and the cache scope of what it reads."""
        experiment = plugin_util.experiment_id(request.environ)
        ctx = plugin_util.context(request.environ)
        reader = GradflowReader(self._provider, experiment, warn=self._warn, multiplexer=self._multiplexer,
                                local_logdir=self._local_logdir)
        reader.read_budget_bytes = self._read_budget
        return reader, data_scope(self._provider, experiment), ctx

    def _read_all(self, request: wrappers.Request) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str]]]:
        """Every listed series that is readable, and the (run, tag) pairs listed but not."""
        reader, scope, ctx = self._reader(request)
        listing = self._listings.get(reader, scope, ctx)
        self._cache.retain(scope, listing)
        readable: dict[str, dict[str, Any]] = {}
        unreadable: list[tuple[str, str]] = []
        for run, tags in listing.items():
            for tag, info in tags.items():
                series = self._cache.get(reader, scope, run, tag, info, ctx).series
                if series is not None:
                    readable.setdefault(run, {})[tag] = series
                else:
                    unreadable.append((run, tag))
        return readable, unreadable

    def _runs(self, request: wrappers.Request) -> str:
        return views.runs_json(self._read_all(request)[0])

    def _notices(self, request: wrappers.Request) -> str:
        readable, unreadable = self._read_all(request)
        return views.notices_json(readable, unreadable, fast_loader=type(self._provider).__name__ == "GrpcDataProvider")

    def _lookup(self, request: wrappers.Request) -> tuple[str, str, CachedSeries]:
        """The run and tag a request names, and their series; 404 when the listing lacks them."""
        args = request.args.to_dict(flat=False)
        run, tag = params.required(args, "run"), params.required(args, "tag")
        reader, scope, ctx = self._reader(request)
        if scope == "":
            tags = self._listings.get(reader, scope, ctx).get(run)
        else:
            tags = reader.list(ctx, run=run).get(run)
        if tags is None:
            raise params.not_found(f"no gradflow data for run {run!r}")
        if tag not in tags:
            raise params.not_found(f"no gradflow tag {tag!r} in run {run!r}")
        return run, tag, self._cache.get(reader, scope, run, tag, tags[tag], ctx)

    def _graph(self, request: wrappers.Request) -> str:
        step = params.step(request.args.to_dict(flat=False))
        run, tag, cached = self._lookup(request)
        return views.graph_json(run, tag, cached, step)

    def _graph_groups(self, request: wrappers.Request) -> str:
        args = request.args.to_dict(flat=False)
        step, group = params.step(args), params.group(args)
        run, tag, cached = self._lookup(request)
        return views.graph_groups_json(run, tag, cached, step, group)

    def _history(self, request: wrappers.Request) -> str:
        kind, name = params.history_subject(request.args.to_dict(flat=False))
        run, tag, cached = self._lookup(request)
        return views.history_json(run, tag, cached, kind, name)

    def _diagnosis(self, request: wrappers.Request) -> str:
        step = params.step(request.args.to_dict(flat=False))
        _, _, cached = self._lookup(request)
        return views.diagnosis_view(cached, step)

    def _layers(self, request: wrappers.Request) -> str:
        columns = params.columns(request.args.to_dict(flat=False))
        run, tag, cached = self._lookup(request)
        return views.layers_view(run, tag, cached, columns)

    # Static files

    # Static methods: werkzeug's `application` is typed (and meant) for a function of the request.
    @staticmethod
    @wrappers.Request.application
    def _serve_index(request: wrappers.Request) -> wrappers.Response:
        return _serve_file(request, "index.js")

    @staticmethod
    @wrappers.Request.application
    def _serve_static(request: wrappers.Request) -> wrappers.Response:
        _, _, relative = request.path.partition(f"/data/plugin/{metadata.PLUGIN_NAME}{_STATIC_ROUTE}")
        return _serve_file(request, relative)


def _error(request: wrappers.Request, code: int, message: str) -> wrappers.Response:
    return http_util.Respond(request, {"error": message}, _JSON, code=code)


def _json_route(route: Route) -> Callable:
    """A WSGI app answering `route(request)` as JSON, and request errors as JSON 400/404."""

    @wrappers.Request.application
    def app(request: wrappers.Request) -> wrappers.Response:
        try:
            return http_util.Respond(request, route(request), _JSON)
        except params.RequestError as e:
            return _error(request, e.code, e.message)
        except errors.PublicError as e:  # the data provider's own 4xx (unknown experiment, ...)
            return _error(request, e.http_code, str(e))

    return app


def _serve_file(request: wrappers.Request, relative: str) -> wrappers.Response:
    found = static_files.resolve(relative)
    if found is None:
        return _error(request, 404, "no such file")
    path, content_type = found
    with open(path, "rb") as f:
        content = f.read()
    return http_util.Respond(request, content, content_type)


class GradflowLoader(base_plugin.TBLoader):
    """Loads the plugin; by default keeps every logged step of ours instead of a sample.

    TensorBoard keeps 10 samples per tag of a third-party plugin (Python loader) or 100 (Rust
    loader). `--samples_per_plugin gradflow=N` from the user wins; otherwise we set 0, which both
    loaders read as "keep all" (TensorBoard passes it to the Rust data server as `all`).
    """

    def fix_flags(self, flags: Any) -> None:
        """Keeps every gradflow step: TensorBoard would otherwise sample them down."""
        samples = getattr(flags, "samples_per_plugin", None)
        if isinstance(samples, dict):
            samples.setdefault(metadata.PLUGIN_NAME, 0)

    def load(self, context: base_plugin.TBContext) -> GradflowPlugin | None:
        """The plugin, or None without a data provider (the tab then stays away, with a warning)."""
        if context.data_provider is None:
            logger.warning("tb_gradflow: no data provider; the Gradient Flow tab is disabled")
            return None
        return GradflowPlugin(context)

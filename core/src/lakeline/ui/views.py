"""The UI's pages: overview, artifacts (list, folders, one artifact, download), runs,
transforms (labels, features, schemas, collections: `record_views`). Handlers are sync
(Starlette runs them in its thread pool) and only read."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from lakeline.errors import DoesNotExist, LakelineError, QueryError
from lakeline.models import Artifact, Collection, Run, Transform
from lakeline.ui import notes, queries
from lakeline.ui.server import HERE, SECURITY_HEADERS

if TYPE_CHECKING:
    from lakeline.lineage.graph_types import Node
    from lakeline.ui.server import Pages

_UID = re.compile(r"^[0-9A-Za-z]{12}(?:[0-9A-Za-z]{4})?$")
_RUN_UID = re.compile(r"^[0-9A-Za-z]{16}$")
LINEAGE_LIMIT = 400  # nodes drawn at most; a bigger graph asks for a smaller depth
DEPTHS = ("1", "2", "3", "5", "10", "all")


def _link(node: Node) -> str:
    return f"/{'artifacts' if node.type == 'artifact' else 'runs'}/{node.uid}"


def _int(value: str | None, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise QueryError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def find_artifact(uid: str) -> Artifact:
    """The artifact with this uid, or the latest version of this stem; 404 otherwise."""
    if not _UID.match(uid):
        raise DoesNotExist(f"{uid!r} is not an artifact uid")
    if len(uid) == 16:
        found = Artifact.filter(uid=uid).first()
    else:
        found = Artifact.filter(stem=uid, is_latest=True).first()
    if found is None:
        raise DoesNotExist(f"no artifact with uid {uid!r} in this instance")
    return found


def _find(model: type[Run] | type[Transform], uid: str) -> Any:
    what = model.__name__.lower()
    if not _UID.match(uid) or (model is Run and not _RUN_UID.match(uid)):
        raise DoesNotExist(f"{uid!r} is not a {what} uid")
    found: Run | Transform | None
    if len(uid) == 12:
        found = Transform.filter(stem=uid, is_latest=True).first()
    else:
        found = model.filter(uid=uid).first()
    if found is None:
        raise DoesNotExist(f"no {what} with uid {uid!r} in this instance")
    return found


class Views:
    """Route handlers sharing the page renderer and the overview's count cache."""

    def __init__(self, pages: Pages, lineage_limit: int | None = None) -> None:
        self.pages = pages
        self.counts = queries.Counts()
        self.lineage_limit = lineage_limit or LINEAGE_LIMIT

    # -- overview -------------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        from lakeline.instance import current

        instance = current()
        counts = self.counts.get()
        recent_runs = Run.filter().order_by("-id").limit(10).all()
        failed = Run.filter(status="errored").order_by("-id").limit(10).all()
        recent = Artifact.filter().order_by("-id").limit(10).all()
        collections = Collection.filter().order_by("-id").limit(10).all()
        return self.pages.render(
            request,
            "overview.html",
            counts=counts,
            counted_at=datetime.fromtimestamp(self.counts.counted_at or 0, UTC),
            storages=instance.storages(),
            default_storage=instance.storage.uid,
            recent_runs=queries.runs_with_transforms(recent_runs),
            failed_runs=queries.runs_with_transforms(failed),
            recent_artifacts=recent,
            recent_collections=collections,
            dialect=instance.dialect,
        )

    # -- artifacts ------------------------------------------------------------------------------

    def artifacts(self, request: Request) -> Response:
        params = list(request.query_params.multi_items())
        options = dict(params)
        search = options.get("q", "").strip()
        sort = options.get("sort", "key") or "key"
        view = options.get("view", "list")
        context: dict[str, Any] = {
            "search": search,
            "sort": sort,
            "sorts": list(queries.SORTS),
            "lookups": [(k, v) for k, v in params if k not in queries.RESERVED],
            "view": view,
            "error": None,
            "page": None,
            "folder": None,
        }
        try:
            lookups = notes.typed_lookups(queries.parse_lookups(params))
            if view == "folders":
                if lookups or search:
                    raise QueryError("the folder view takes no lookups or search: use the list")
                context["folder"] = queries.folder(
                    options.get("prefix", ""), options.get("after") or None
                )
            else:
                context["page"] = queries.artifact_page(
                    lookups,
                    sort=sort,
                    after=options.get("after") or None,
                    limit=_int(options.get("limit"), "limit", queries.PAGE_SIZE),
                    search=search or None,
                    page=_int(options.get("page"), "page", 1),
                )
        except QueryError as exc:
            context["error"] = str(exc)
            return self.pages.render(request, "artifacts.html", 400, **context)
        context["next_url"] = self._next_url(params, context)
        return self.pages.render(request, "artifacts.html", **context)

    @staticmethod
    def _next_url(params: list[tuple[str, str]], context: dict[str, Any]) -> str | None:
        kept = [(k, v) for k, v in params if k not in ("after", "page")]
        if context["folder"] is not None:
            more = context["folder"].more
            return f"/artifacts?{urlencode([*kept, ('after', more)])}" if more else None
        page = context["page"]
        if page.next_cursor is None:
            return None
        name = "page" if page.ranked else "after"
        return f"/artifacts?{urlencode([*kept, (name, page.next_cursor)])}"

    def by_key(self, request: Request) -> Response:
        key = request.path_params["key"]
        found = Artifact.filter(key=key).first()
        if found is None:
            raise DoesNotExist(f"no artifact with key {key!r} in this instance")
        return RedirectResponse(f"/artifacts/{found.uid}", status_code=303)

    def artifact(self, request: Request) -> Response:
        from lakeline.instance import current
        from lakeline.ui.preview import preview

        artifact = find_artifact(request.path_params["uid"])
        versions = Artifact.filter(stem=artifact.stem, is_latest=None).order_by("uid").all()
        run = transform = None
        if artifact.run_id is not None:
            run = Run.filter(id=artifact.run_id).first()
            if run is not None:
                transform = Transform.filter(id=run.transform_id).first()
        storage = current().storage_by_id(artifact.storage_id)
        lineage = self._lineage(request, artifact)
        return self.pages.render(
            request,
            "artifact.html",
            artifact=artifact,
            versions=versions,
            run=run,
            transform=transform,
            storage=storage,
            location=storage.root.rstrip("/") + "/" + artifact.store_key,
            creator=queries.creators([artifact]).get(artifact.created_by_id or -1, ""),
            used_by=queries.used_by(artifact),
            notes=notes.artifact_notes(artifact),
            preview=preview(artifact),
            lineage=lineage,
            depths=DEPTHS,
        )

    def _lineage(self, request: Request, node: Artifact | Run) -> dict[str, Any]:
        from lakeline.lineage.graph import lineage
        from lakeline.lineage.render_svg import to_svg

        direction = request.query_params.get("direction", "both")
        depth_text = request.query_params.get("depth", "1")
        result: dict[str, Any] = {"direction": direction, "depth": depth_text, "svg": None}
        if direction not in ("upstream", "downstream", "both"):
            result["error"] = f"direction must be upstream, downstream or both, not {direction!r}"
            return result
        if depth_text != "all" and not (depth_text.isdigit() and 0 <= int(depth_text) <= 50):
            result["error"] = f"depth must be a number from 0 to 50 or 'all', not {depth_text!r}"
            return result
        depth = None if depth_text == "all" else int(depth_text)
        graph = lineage(node, direction, depth)
        result["counts"] = (len(graph.artifacts), len(graph.runs))
        if len(graph.nodes) > self.lineage_limit:
            result["error"] = (
                f"{len(graph.nodes)} nodes are too many to draw (at most {self.lineage_limit}): "
                "choose a smaller depth or one direction"
            )
            return result
        result["svg"] = to_svg(graph, link=_link)
        return result

    def download(self, request: Request) -> Response:
        from lakeline.ui.preview import download_name, open_bytes

        artifact = find_artifact(request.path_params["uid"])
        try:
            chunks, size = open_bytes(artifact)
        except (LakelineError, OSError) as exc:
            return self.pages.error(request, 404, "No bytes to download", str(exc))
        name = download_name(artifact)
        headers = {
            "content-disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
            "x-content-type-options": "nosniff",
            "content-security-policy": "sandbox; default-src 'none'",
            "cache-control": "no-store",
        }
        if size is not None:
            headers["content-length"] = str(size)
        return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)

    # -- runs and transforms --------------------------------------------------------------------

    def runs(self, request: Request) -> Response:
        status = request.query_params.get("status") or None
        query = Run.filter(status=status) if status else Run.filter()
        before = request.query_params.get("before")
        try:
            if before:
                query = query.filter(id__lt=_int(before, "before", 0))
        except QueryError as exc:
            return self.pages.error(request, 400, "Bad request", str(exc))
        rows = query.order_by("-id").limit(queries.PAGE_SIZE + 1).all()
        more = len(rows) > queries.PAGE_SIZE
        rows = rows[: queries.PAGE_SIZE]
        next_url = None
        if more:
            kept = [(k, v) for k, v in request.query_params.multi_items() if k != "before"]
            next_url = f"/runs?{urlencode([*kept, ('before', str(rows[-1].id))])}"
        return self.pages.render(
            request,
            "runs.html",
            runs=queries.runs_with_transforms(rows),
            status=status or "",
            next_url=next_url,
        )

    def run(self, request: Request) -> Response:
        run: Run = _find(Run, request.path_params["uid"])
        details = queries.run_details(run)
        return self.pages.render(
            request,
            "run.html",
            run=run,
            details=details,
            source=highlight(details.transform),
            stale=run.stale,
            lineage=self._lineage(request, run),
            depths=DEPTHS,
        )

    def report(self, request: Request) -> Response:
        from lakeline.ui.preview import open_bytes

        run: Run = _find(Run, request.path_params["uid"])
        if run.report_id is None:
            raise DoesNotExist(f"run {run.uid} has no report")
        report = Artifact.filter(id=run.report_id).first()
        if report is None:
            raise DoesNotExist(f"the report of run {run.uid} is gone")
        try:
            chunks, _ = open_bytes(report)
        except (LakelineError, OSError) as exc:
            return self.pages.error(request, 404, "No report", str(exc))
        body = b"".join(chunks)
        media = "text/html" if report.suffix.lower() in (".html", ".htm") else "text/plain"
        # sandbox: the report runs no script and gets an opaque origin (no cookies, no API)
        headers = {
            **SECURITY_HEADERS,
            "content-security-policy": "sandbox; style-src 'unsafe-inline' data:; img-src data:",
        }
        return Response(body, media_type=f"{media}; charset=utf-8", headers=headers)

    def transform(self, request: Request) -> Response:
        transform: Transform = _find(Transform, request.path_params["uid"])
        versions = Transform.filter(stem=transform.stem, is_latest=None).order_by("uid").all()
        runs = Run.filter(transform_id=transform.id).order_by("-id").limit(100).all()
        children = Transform.filter(parent_id=transform.id).order_by("key").limit(200).all()
        parent = None
        if transform.parent_id is not None:
            parent = Transform.filter(id=transform.parent_id, is_latest=None).first()
        return self.pages.render(
            request,
            "transform.html",
            transform=transform,
            versions=versions,
            runs=runs,
            children=children,
            parent=parent,
            source=highlight(transform),
        )

    def stylesheet(self, request: Request) -> Response:
        css = (HERE / "static" / "style.css").read_text()
        try:
            from pygments.formatters import HtmlFormatter

            css += "\n" + HtmlFormatter(style="friendly").get_style_defs(".highlight")
        except ImportError:
            pass
        return Response(css, media_type="text/css", headers={"cache-control": "max-age=300"})


def highlight(transform: Transform) -> str | None:
    """The transform's source as highlighted HTML (pygments escapes it), or None: the
    template then shows it escaped in a plain `pre`."""
    if not transform.source_code:
        return None
    try:
        from pygments import highlight as render
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import get_lexer_for_filename
        from pygments.lexers.special import TextLexer
        from pygments.util import ClassNotFound
    except ImportError:
        return None
    name = transform.key.rsplit("/", 1)[-1].split(":", 1)[0]
    if transform.kind in ("function", "rule", "script") and "." not in name:
        name += ".py"
    try:
        lexer = get_lexer_for_filename(name, stripnl=False)
    except ClassNotFound:
        lexer = TextLexer(stripnl=False)
    return str(render(transform.source_code, lexer, HtmlFormatter(linenos="table")))

"""The UI's pages of labels, features, schemas and collections (handlers are sync and only
read, as in `views`)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from lakeline.errors import QueryError
from lakeline.models import Collection, Feature, Run, Schema, Transform, ULabel
from lakeline.ui import notes, queries

if TYPE_CHECKING:
    from lakeline.ui.server import Pages


def _int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise QueryError(f"{name} must be a whole number, got {value!r}")
    return int(value)


class RecordViews:
    """Label, feature, schema and collection pages."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    def labels(self, request: Request) -> Response:
        return self._registry(request, ULabel, "labels")

    def features(self, request: Request) -> Response:
        return self._registry(request, Feature, "features")

    def _registry(
        self, request: Request, model: type[ULabel] | type[Feature], path: str
    ) -> Response:
        search = request.query_params.get("q", "").strip()
        try:
            page = notes.registry_page(model, search or None, request.query_params.get("after"))
        except QueryError as exc:
            return self.pages.error(request, 400, "Bad request", str(exc))
        next_url = None
        if page.next_cursor is not None:
            next_url = f"/{path}?" + urlencode([("after", page.next_cursor)])
        return self.pages.render(
            request, "registry.html", page=page, path=path, query=search, next_url=next_url
        )

    def label(self, request: Request) -> Response:
        label: ULabel = notes.find(ULabel, request.path_params["uid"])
        page = notes.label_page(label)
        return self.pages.render(request, "label.html", page=page, label=label)

    def feature(self, request: Request) -> Response:
        feature: Feature = notes.find(Feature, request.path_params["uid"])
        page = notes.feature_page(feature)
        return self.pages.render(request, "feature.html", page=page, feature=feature)

    def schema(self, request: Request) -> Response:
        schema: Schema = notes.find(Schema, request.path_params["uid"])
        page = notes.schema_page(schema)
        return self.pages.render(request, "schema.html", page=page, schema=schema)

    def collections(self, request: Request) -> Response:
        try:
            before = _int(request, "before")
        except QueryError as exc:
            return self.pages.error(request, 400, "Bad request", str(exc))
        query = Collection.filter()
        if before is not None:
            query = query.filter(id__lt=before)
        rows = query.order_by("-id").limit(queries.PAGE_SIZE + 1).all()
        shown = rows[: queries.PAGE_SIZE]
        next_url = None
        if len(rows) > queries.PAGE_SIZE:
            next_url = "/collections?" + urlencode([("before", str(shown[-1].id))])
        return self.pages.render(
            request,
            "collections.html",
            collections=shown,
            sizes=notes.member_counts(shown),
            creators=queries.creators(shown),
            next_url=next_url,
        )

    def collection(self, request: Request) -> Response:
        collection = notes.find_collection(request.path_params["uid"])
        try:
            after = _int(request, "after")
        except QueryError as exc:
            return self.pages.error(request, 400, "Bad request", str(exc))
        page = notes.collection_page(collection, after)
        run = transform = None
        if collection.run_id is not None:
            run = Run.filter(id=collection.run_id).first()
            if run is not None:
                transform = Transform.filter(id=run.transform_id, is_latest=None).first()
        next_url = None
        if page.next_after is not None:
            next_url = f"/collections/{collection.uid}?after={page.next_after}"
        return self.pages.render(
            request,
            "collection.html",
            page=page,
            collection=collection,
            run=run,
            transform=transform,
            creator=queries.creators([collection]).get(collection.created_by_id or -1, ""),
            next_url=next_url,
        )

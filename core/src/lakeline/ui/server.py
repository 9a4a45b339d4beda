"""The Starlette application of `lakeline ui`: routes, security rules, error pages, serving.

Rules (docs/architecture.md, "The web UI"):
- read-only: every route is GET/HEAD and reads; nothing writes, deletes or runs;
- bound to a loopback address, requests must name a loopback host (no DNS rebinding);
  any other bind needs a token: `?token=` once (then a cookie), a cookie, or
  `Authorization: Bearer`, compared in constant time; anything else is 401;
- every value is escaped (Jinja2 autoescape); a strict Content-Security-Policy allows no
  script at all; downloads are attachments (`nosniff`), run reports render sandboxed;
- a database that goes away gives 503 pages, and the next request after it is back works.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from lakeline.errors import DatabaseError, DoesNotExist, LakelineError

COOKIE = "lakeline_ui_token"
HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """Whether binding `host` serves this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def environment() -> Environment:
    """The template environment: autoescape on for every template."""
    from lakeline.ui import filters

    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(filters.FILTERS)
    return env


class Pages:
    """Renders templates into responses with the security headers."""

    def __init__(self, instance_name: str) -> None:
        self.env = environment()
        self.instance_name = instance_name

    def render(self, request: Request, name: str, code: int = 200, **context: Any) -> Response:
        template = self.env.get_template(name)
        html = template.render({"request": request, "instance_name": self.instance_name, **context})
        return HTMLResponse(html, status_code=code, headers=SECURITY_HEADERS)

    def error(
        self, request: Request, code: int, title: str, message: str, **context: Any
    ) -> Response:
        return self.render(request, "error.html", code, title=title, message=message, **context)


class TokenGate:
    """ASGI middleware: every request must carry the token (query once, then the cookie)."""

    def __init__(self, app: ASGIApp, token: str, pages: Pages) -> None:
        self.app = app
        self.token = token.encode()
        self.pages = pages

    def _ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = dict(query).get("token")
        if given is not None:
            if not self._ok(given):
                await self._refuse(request, scope, receive, send, "wrong token")
                return
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            path = "/" + request.url.path.lstrip("/")  # never `//host`: no open redirect
            target = path + (f"?{rest}" if rest else "")
            response: Response = RedirectResponse(target, status_code=303)
            response.set_cookie(COOKIE, given, httponly=True, samesite="strict", path="/")
            await response(scope, receive, send)
            return
        auth = request.headers.get("authorization", "")
        bearer = auth[7:] if auth.lower().startswith("bearer ") else None
        cookie = request.cookies.get(COOKIE)
        if self._ok(bearer) or self._ok(cookie):
            await self.app(scope, receive, send)
            return
        reason = "wrong token" if bearer is not None or cookie is not None else "token needed"
        await self._refuse(request, scope, receive, send, reason)

    async def _refuse(
        self, request: Request, scope: Scope, receive: Receive, send: Send, reason: str
    ) -> None:
        response = self.pages.error(
            request,
            401,
            "Unauthorized",
            f"{reason}: open the address `lakeline ui` printed (it ends in ?token=...), "
            "or send the token as `Authorization: Bearer`",
            instance_name="",  # nothing about the instance before the token
            anonymous=True,
        )
        response.headers["www-authenticate"] = "Bearer"
        await response(scope, receive, send)


def _database_error(exc: BaseException) -> bool:
    import sys

    if isinstance(exc, DatabaseError):
        return True
    sa_exc = sys.modules.get("sqlalchemy.exc")
    return sa_exc is not None and isinstance(exc, sa_exc.DBAPIError)


def create_app(
    instance_name: str,
    *,
    token: str | None = None,
    host: str = "127.0.0.1",
    lineage_limit: int | None = None,
) -> Starlette:
    """The UI application for the connected instance (`lakeline.connect` was called).

    `token`: required unless `host` is a loopback address. `host`: the address the server is
    bound to; for a loopback bind only loopback Host headers are served.
    """
    from lakeline.ui import record_views, views

    if token is None and not is_loopback(host):
        raise LakelineError(f"serving on {host} needs a token (--token-file)")
    pages = Pages(instance_name)
    handlers = views.Views(pages, lineage_limit=lineage_limit)
    records = record_views.RecordViews(pages)

    async def not_found(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and exc.status_code != 404:
            title = "Method not allowed" if exc.status_code == 405 else "Error"
            message = (
                "this catalog is read-only: only GET requests are served"
                if exc.status_code == 405
                else str(exc.detail)
            )
            response = pages.error(request, exc.status_code, title, message)
            if exc.status_code == 405:
                response.headers["allow"] = "GET, HEAD"
            return response
        message = str(exc) if isinstance(exc, DoesNotExist) else f"no page at {request.url.path}"
        return pages.error(request, 404, "Not found", message)

    async def server_error(request: Request, exc: Exception) -> Response:
        if _database_error(exc):
            first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
            return pages.error(
                request,
                503,
                "Catalog unavailable",
                f"the catalog database cannot be read right now ({first}); "
                "reload this page when it is back",
            )
        if isinstance(exc, LakelineError):
            return pages.error(request, 400, "Error", str(exc))
        return pages.error(request, 500, "Internal error", f"{type(exc).__name__}: {exc}")

    async def errors(request: Request, exc: Exception) -> Response:
        return await server_error(request, exc)

    exception_handlers: dict[Any, Any] = {
        HTTPException: not_found,
        DoesNotExist: not_found,
        LakelineError: errors,
        Exception: server_error,
    }
    from sqlalchemy.exc import DBAPIError

    exception_handlers[DBAPIError] = errors
    middleware: list[Middleware] = []
    if is_loopback(host):
        names = sorted({*LOOPBACK_NAMES, host})
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=names))
    if token is not None:
        middleware.append(Middleware(TokenGate, token=token, pages=pages))
    routes = [
        Route("/", handlers.overview, name="overview"),
        Route("/artifacts", handlers.artifacts, name="artifacts"),
        Route("/artifacts/{uid}", handlers.artifact, name="artifact"),
        Route("/artifacts/{uid}/download", handlers.download, name="download"),
        Route("/key/{key:path}", handlers.by_key, name="by_key"),
        Route("/runs", handlers.runs, name="runs"),
        Route("/runs/{uid}", handlers.run, name="run"),
        Route("/runs/{uid}/report", handlers.report, name="report"),
        Route("/transforms/{uid}", handlers.transform, name="transform"),
        Route("/labels", records.labels, name="labels"),
        Route("/labels/{uid}", records.label, name="label"),
        Route("/features", records.features, name="features"),
        Route("/features/{uid}", records.feature, name="feature"),
        Route("/schemas/{uid}", records.schema, name="schema"),
        Route("/collections", records.collections, name="collections"),
        Route("/collections/{uid}", records.collection, name="collection"),
        Route("/static/style.css", handlers.stylesheet, name="style"),
    ]
    return Starlette(routes=routes, middleware=middleware, exception_handlers=exception_handlers)


def read_token(path: str) -> tuple[str, bool]:
    """The token in `path`, made (random, mode 0600) when the file does not exist.

    Returns (token, created). An empty or unreadable file is an error naming it.
    """
    import os
    import secrets

    file = Path(path).expanduser()
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(token + "\n")
        return token, True
    try:
        token = file.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise LakelineError(f"cannot read the token file {file}: {exc}") from exc
    if len(token) < 16 or any(c.isspace() for c in token):
        raise LakelineError(
            f"the token file {file} must hold one token of at least 16 characters, no spaces"
        )
    return token, False


def serve(app: Starlette, host: str, port: int) -> None:
    """Serve `app` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)

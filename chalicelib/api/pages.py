"""Public pages served by the API itself: the dashboard at `/` and the API docs at `/api/docs`.

The files ship in the package (`chalicelib/web/`); Swagger UI's assets come from the
`swagger-ui-py` package, so nothing is fetched from the network at build or run time.
"""
from __future__ import annotations

import mimetypes
from functools import cache
from pathlib import Path

from chalice import Response

from ..domain.errors import NotFound
from .common import api
from .errors import error_response

# HTML, scripts and styles: kept out of the OpenAPI document, which describes the JSON API.
PATHS = ("/", "/ui/{name}", "/api/docs", "/api/docs/{name}")
WEB_DIR = Path(__file__).resolve().parents[1] / "web"
# Only what the docs page loads: the package also ships editors and source maps.
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")
_TEXT_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
               ".svg": "image/svg+xml"}


def base_path() -> str:
    """The stage prefix the browser sees (`/v1` behind API Gateway, `` locally)."""
    context = api.current_request.context or {}
    stage = context.get("stage")
    return f"/{stage}" if stage and context.get("path", "").startswith(f"/{stage}/") else ""


def public_url() -> str:
    """The API's base URL as the caller reached it (the OpenAPI `servers` entry)."""
    headers = api.current_request.headers
    proto = headers.get("x-forwarded-proto", "http")
    return f"{proto}://{headers.get('host', 'localhost')}{base_path()}"


@cache
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _file(path: Path, **replacements: str) -> Response:
    text = _read(path)
    for key, value in replacements.items():
        text = text.replace("{{" + key + "}}", value)
    content_type = _TEXT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
    return Response(text, status_code=200, headers={
        "Content-Type": f"{content_type}; charset=utf-8",
        "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


def _not_found(name: str) -> Response:
    return error_response(NotFound(f"no file {name}"))


@api.route("/", methods=["GET"])
def dashboard() -> Response:
    """GET / : the runs dashboard (a single page; data comes from the API with the token)."""
    return _file(WEB_DIR / "index.html", base=base_path() + "/")


@api.route("/ui/{name}", methods=["GET"])
def dashboard_file(name: str) -> Response:
    """GET /ui/{name}: one of the dashboard's scripts or styles."""
    path = WEB_DIR / name
    if "/" in name or name.startswith(".") or path.suffix not in (".js", ".css", ".svg") \
            or not path.is_file():
        return _not_found(name)
    return _file(path)


@api.route("/api/docs", methods=["GET"])
def docs_page() -> Response:
    """GET /api/docs: Swagger UI over /api/openapi.json, with "try it out" and bearer auth."""
    return _file(WEB_DIR / "docs.html", base=base_path())


@api.route("/api/docs/{name}", methods=["GET"])
def docs_file(name: str) -> Response:
    """GET /api/docs/{name}: Swagger UI's script and styles from the swagger-ui-py package."""
    if name == "docs.js":
        return _file(WEB_DIR / "docs.js")
    if name not in SWAGGER_FILES:
        return _not_found(name)
    return _file(_swagger_dir() / name)


def _swagger_dir() -> Path:
    import swagger_ui  # noqa: PLC0415 - only the docs page needs it

    return Path(swagger_ui.__file__).resolve().parent / "static"

"""The pages the API serves itself: the dashboard's files and the API docs (Swagger UI from a
package, no network); unknown paths answer 404 in the error envelope on the local server."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
from chalice.config import Config
from chalice.test import Client

from app import app
from chalicelib.local.gateway import local_server


@pytest.fixture(scope="module")
def client():
    with Client(app) as test_client:
        yield test_client


def test_docs_page_loads_swagger_ui_from_the_app_itself(client):
    page = client.http.get("/api/docs")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.body.decode()
    assert 'src="/api/docs/swagger-ui-bundle.js"' in html
    assert 'data-spec="/api/openapi.json"' in html
    assert "//cdn" not in html and "https://" not in html
    for name, kind in (("swagger-ui-bundle.js", "text/javascript"),
                       ("swagger-ui.css", "text/css"), ("docs.js", "text/javascript")):
        asset = client.http.get(f"/api/docs/{name}")
        assert asset.status_code == 200, name
        assert asset.headers["Content-Type"].startswith(kind)
    bundle = client.http.get("/api/docs/swagger-ui-bundle.js").body
    assert len(bundle) > 500_000 and b"SwaggerUIBundle" in bundle


def test_docs_serve_only_the_swagger_assets_they_need(client):
    for name in ("swagger-editor.js", "..%2F__init__.py", "LICENSE"):
        answer = client.http.get(f"/api/docs/{name}")
        assert answer.status_code == 404
        assert answer.json_body["code"] == "NOT_FOUND"


def test_openapi_document_names_the_server_it_was_fetched_from(client):
    document = client.http.get("/api/openapi.json", headers={"Host": "runs.example:8000"})
    assert document.json_body["servers"] == [{"url": "http://runs.example:8000"}]
    staged = client.http.get("/api/openapi.json",
                             headers={"Host": "abc.execute-api.test", "X-Forwarded-Proto": "https"})
    assert staged.json_body["servers"][0]["url"] == "https://abc.execute-api.test"
    security = document.json_body["components"]["securitySchemes"]["bearer"]
    assert security == {"type": "http", "scheme": "bearer"}


def test_dashboard_page_and_files_are_served(client):
    page = client.http.get("/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<base href="/">' in page.body.decode()
    script = client.http.get("/ui/app.js")
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    for name in ("index.html", "..", ".hidden.js", "missing.js"):
        assert client.http.get(f"/ui/{name}").status_code == 404


@pytest.fixture
def local_url():
    server = local_server(app, Config.create(), "127.0.0.1", 0)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server.server_address[:2]
    yield f"http://{host}:{port}"
    server.shutdown()
    thread.join(timeout=5)


def _get(url: str, **headers: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, {}
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("path", ["/nope", "/api/automations/runs/x/y/z", "/api/docs/a/b"])
def test_unknown_paths_answer_404_in_the_error_envelope(local_url, path):
    for headers in ({}, {"Authorization": "Bearer rt_x"}):
        status, body = _get(local_url + path, **headers)
        assert status == 404
        assert body == {"success": False, "code": "NOT_FOUND",
                        "message": f"no route for GET {path}", "details": []}


def test_known_public_paths_still_answer_on_the_local_server(local_url):
    assert _get(local_url + "/api/docs")[0] == 200
    assert _get(local_url + "/api/openapi.json")[0] == 200

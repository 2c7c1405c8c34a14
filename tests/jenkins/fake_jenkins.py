"""A fake Jenkins: the ONE fake in graysteps' tests (real Jenkins cannot be installed here).

It speaks the parts of the REST API that python-jenkins and `graysteps jobs sync` use, the way Jenkins does:
- every request needs HTTP basic auth with a user's API token (anonymous: 403, wrong token: 401);
- every response carries `X-Jenkins: <version>`; `GET /` and `/api/json` answer, `/me/api/json` is whoami;
- `GET /crumbIssuer/api/json` issues a crumb; a POST without it gets 403 "No valid crumb";
- `POST [/job/F]*/createItem?name=N` with a config.xml body creates a job, with form `mode=...Folder` a folder;
  an existing name is 400 with `X-Error`, a missing parent folder 404;
- `GET|POST [/job/F]*/job/N/config.xml` reads or replaces a config (GET answers with Jenkins' XML 1.1 header
  and plugin attributes, as XStream writes them); `[/job/F]*/job/N/api/json` is the job info; unknown: 404.
Every request is logged in `requests` as (method, path) for the tests.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit
from xml.etree import ElementTree as ET

VERSION = "2.479.3"
FOLDER_CLASS = "com.cloudbees.hudson.plugins.folder.Folder"
JOB_CLASS = "org.jenkinsci.plugins.workflow.job.WorkflowJob"
FOLDER_XML = f"<{FOLDER_CLASS}><description/><properties/></{FOLDER_CLASS}>"
NAME = re.compile(r"[^/\\:?*\"<>|;&%@#!\s]+")


@dataclass
class Item:
    kind: str  # "job" | "folder"
    config: str
    children: dict[str, "Item"] = field(default_factory=dict)


class FakeJenkins:
    def __init__(self, users: dict[str, str]):
        self.users = users
        self.root = Item("folder", FOLDER_XML)
        self.crumb = secrets.token_hex(16)
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeJenkins":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def item(self, full_name: str) -> Item | None:
        node = self.root
        for part in full_name.split("/"):
            node = node.children.get(part) if node.kind == "folder" else None
            if node is None:
                return None
        return node

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] == "POST"]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: str = "", content_type="text/plain;charset=utf-8", headers=()):
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("X-Jenkins", VERSION)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _user(self) -> str | None:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return None
                user, _, token = base64.b64decode(header[6:]).decode("utf-8").partition(":")
                return user if fake.users.get(user) == token else ""

            def _route(self, method: str) -> None:
                url = urlsplit(self.path)
                fake.requests.append((method, url.path))
                user = self._user()
                if user is None:
                    return self._send(403, "Authentication required", headers=[("X-You-Are-Authenticated-As", "anonymous")])
                if user == "":
                    return self._send(401, "Invalid password/token for user")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if method == "POST" and self.headers.get("Jenkins-Crumb") != fake.crumb:
                    return self._send(403, "No valid crumb was included in the request")
                parts = [unquote(p) for p in url.path.strip("/").split("/") if p]
                folder, parent_path = fake.root, []
                while len(parts) >= 2 and parts[0] == "job":
                    child = folder.children.get(parts[1]) if folder.kind == "folder" else None
                    if child is None:
                        return self._send(404, "Not Found")
                    folder, parent_path, parts = child, parent_path + [parts[1]], parts[2:]
                with fake.lock:
                    return self._act(method, parts, folder, parent_path, parse_qs(url.query), body, user)

            def _act(self, method, action, item: Item, path: list[str], query, body: bytes, user: str):
                if method == "GET" and action in ([], ["api", "json"]):
                    if not path:
                        jobs = [{"name": n, "_class": JOB_CLASS if i.kind == "job" else FOLDER_CLASS} for n, i in item.children.items()]
                        return self._json({"_class": "hudson.model.Hudson", "jobs": jobs})
                    return self._json(self._info(item, path))
                if method == "GET" and action == ["me", "api", "json"] and not path:
                    return self._json({"_class": "hudson.model.User", "id": user, "fullName": user})
                if method == "GET" and action == ["crumbIssuer", "api", "json"] and not path:
                    return self._json({"_class": "hudson.security.csrf.DefaultCrumbIssuer", "crumb": fake.crumb,
                                       "crumbRequestField": "Jenkins-Crumb"})
                if method == "POST" and action == ["createItem"] and item.kind == "folder":
                    return self._create(item, query, body)
                if action == ["config.xml"] and path:
                    if method == "GET":
                        return self._send(200, _as_jenkins_saves_it(item.config), "application/xml")
                    try:
                        ET.fromstring(body)
                    except ET.ParseError as e:
                        return self._send(500, f"java.io.IOException: Unable to read config.xml: {e}")
                    item.config = body.decode("utf-8")
                    return self._send(200)
                return self._send(404, "Not Found")

            def _create(self, folder: Item, query, body: bytes):
                name = (query.get("name") or [""])[0]
                form = parse_qs(body.decode("utf-8")) if self.headers.get("Content-Type", "").startswith(
                    "application/x-www-form-urlencoded") else {}
                if not NAME.fullmatch(name):
                    return self._send(400, "Bad name", headers=[("X-Error", f"'{name}' is an unsafe character")])
                if name in folder.children:
                    return self._send(400, "Bad request", headers=[("X-Error", f"A job already exists with the name '{name}'")])
                if form.get("mode") == [FOLDER_CLASS]:
                    folder.children[name] = Item("folder", FOLDER_XML)
                    return self._send(200)
                try:
                    ET.fromstring(body)
                except ET.ParseError as e:
                    return self._send(500, f"java.io.IOException: Unable to read config.xml: {e}")
                folder.children[name] = Item("job", body.decode("utf-8"))
                return self._send(200)

            def _info(self, item: Item, path: list[str]) -> dict:
                url = fake.url + "".join(f"job/{p}/" for p in path)
                info = {"_class": JOB_CLASS if item.kind == "job" else FOLDER_CLASS, "name": path[-1],
                        "fullName": "/".join(path), "url": url}
                if item.kind == "folder":
                    info["jobs"] = [{"name": n} for n in item.children]
                else:
                    info.update(buildable=True, builds=[], lastBuild=None, nextBuildNumber=1)
                return info

            def _json(self, data: dict):
                return self._send(200, json.dumps(data), "application/json;charset=utf-8")

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

        return Handler


def _as_jenkins_saves_it(config: str) -> str:
    """Jenkins re-serialises a config with XStream: XML 1.1 header, plugin="name@version" attributes."""
    body = re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", config)
    body = re.sub(r"^<flow-definition(?=[\s>])", '<flow-definition plugin="workflow-job@1436.vfa_244484591f"', body)
    body = body.replace('class="org.jenkinsci.plugins.workflow.cps.CpsScmFlowDefinition"',
                        'class="org.jenkinsci.plugins.workflow.cps.CpsScmFlowDefinition" plugin="workflow-cps@3996.va_f5c1799f978"')
    return "<?xml version='1.1' encoding='UTF-8'?>\n" + body

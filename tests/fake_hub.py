"""A tiny fake of the Hugging Face Hub's HTTP API, enough for huggingface_hub's create_repo + upload_folder.

The real huggingface_hub client reaches it through HF_ENDPOINT. It records every request and keeps the
files of each commit (all uploads are answered as "regular", so contents arrive inline, base64).
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, authorization header
        self.repos: list[dict] = []
        self.files: dict[str, bytes] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(hub) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _reply(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                hub.requests.append(("GET", self.path, self.headers.get("authorization")))
                self._reply(404, {"error": "not in the fake"})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                hub.requests.append(("POST", self.path, self.headers.get("authorization")))
                if self.path == "/api/repos/create":
                    repo = json.loads(body)
                    hub.repos.append(repo)
                    self._reply(200, {"url": f"{hub.url}/datasets/{repo.get('organization')}/{repo['name']}"})
                elif self.path == "/api/validate-yaml":
                    self._reply(200, {"errors": [], "warnings": []})
                elif "/preupload/" in self.path:
                    files = json.loads(body)["files"]
                    self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                                for f in files]})
                elif "/commit/" in self.path:
                    for line in body.decode().splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            hub.files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    repo = self.path.split("/commit/")[0].removeprefix("/api/datasets/")
                    self._reply(200, {"commitUrl": f"{hub.url}/datasets/{repo}/commit/{'0' * 40}", "commitOid": "0" * 40})
                else:
                    self._reply(404, {"error": "not in the fake"})

        return Handler

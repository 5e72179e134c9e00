"""The channel guide's (docs/ARCHITECTURE.md, Examples) "File Download via HTTP Endpoint" example (Python tab), as written:
`files::download` answers ``GET /files/:filename`` through the engine's HTTP port, with the
status and headers set first and the file streamed through the response's writer.

Run it against a running engine (default ws://localhost:49134; set III_URL otherwise),
serving the files of III_FILES_DIR (default /data/reports):

    iii &
    python examples/python/http_download.py                # serve until Ctrl-C or stdin ends
    curl -O http://localhost:3111/files/quarterly-report.pdf

    python examples/python/http_download.py report.pdf     # serve, fetch it once, exit

With a file name it fetches that file itself through the engine's HTTP port (III_HTTP_URL,
default http://localhost:3111) and prints the status, content type, size and sha256 of the
body as one JSON line. Serving, it prints ``READY`` once the engine has the route.
"""

import hashlib
import json
import os
import sys
import urllib.request

from iii import register_worker
from iii.utils import http
from iii.types import HttpRequest, HttpResponse

FILES_DIR = os.environ.get("III_FILES_DIR", "/data/reports")

iii = register_worker(os.environ.get("III_URL", "ws://localhost:49134"))


@http
async def download_file(req: HttpRequest, response: HttpResponse):
    filename = req.path_params.get("filename")
    file_path = f"{FILES_DIR}/{filename}"

    # Not in the guide: a missing file is a 404, not a failed function (a 500). (The engine
    # refuses a filename of "." or ".." or with a slash: the name is one entry of FILES_DIR.)
    if not os.path.isfile(file_path):
        await response.status(404)
        await response.writer.close_async()
        return

    with open(file_path, "rb") as f:
        await response.status(200)
        await response.headers({"content-type": "application/pdf"})
        await response.writer.write(f.read())
        await response.writer.close_async()

iii.register_function("files::download", download_file)

iii.register_trigger({
    "type": "http",
    "function_id": "files::download",
    "config": {"api_path": "/files/:filename", "http_method": "GET"},
})


def fetch(filename: str) -> dict:
    base = os.environ.get("III_HTTP_URL", "http://localhost:3111")
    with urllib.request.urlopen(f"{base}/files/{filename}", timeout=30) as resp:
        body = resp.read()
        return {
            "status": resp.status,
            "content_type": resp.headers.get("content-type"),
            "bytes": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }


def main(argv) -> None:
    iii.ready()
    if argv:
        print(json.dumps(fetch(argv[0])), flush=True)
    else:
        print("READY", flush=True)
        sys.stdin.read()
    iii.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])

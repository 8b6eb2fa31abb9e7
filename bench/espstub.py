"""A local stand-in for Mailgun's sending API, for the `esp_batch` benchmark.

`POST /v3/<domain>/messages` takes a form (urlencoded or multipart) as Mailgun does (basic auth user
`api`, repeated `to` fields, `recipient-variables` for a batch) and answers as Mailgun
does: 200 and `{"id": "<…@domain>", "message": "Queued. Thank you."}`; 401 without
credentials, 400 without a `to`. `GET /stats` answers the calls and recipients seen.

`--delay SECONDS` answers each API call that long after it arrived, as a real ESP
takes 100 to 300 ms (calls are served concurrently, a thread each).

    python -m bench.espstub --port 8025 [--delay 0.15]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = re.compile(r"^/v3/([^/]+)/messages$")
TO_FIELD = re.compile(rb'name="to"\r\n')
STATS = {"calls": 0, "recipients": 0, "bytes": 0}
_lock = threading.Lock()
_ids = itertools.count(1)


class Handler(BaseHTTPRequestHandler):
    delay = 0.0  # seconds before each API call is answered
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' session expects
    # Headers and body go out in two writes; with Nagle on, the body waits for the
    # client's delayed ACK, 40 ms a call, which no real ESP adds.
    disable_nagle_algorithm = True

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/stats":
            with _lock:
                self._answer(200, dict(STATS))
        else:
            self._answer(404, {"message": "not found"})

    def do_POST(self) -> None:
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        match = PATH.match(self.path)
        if not match:
            self._answer(404, {"message": "not found"})
            return
        if not (self.headers.get("Authorization") or "").startswith("Basic "):
            self._answer(401, {"message": "Invalid private key"})
            return
        if (self.headers.get("Content-Type") or "").startswith("multipart/form-data"):
            recipients = len(TO_FIELD.findall(body))
        else:
            # counted, not parsed: a batch form is hundreds of KB and the stand-in must
            # not be what is measured
            recipients = body.count(b"&to=") + body.startswith(b"to=")
        if not recipients:
            self._answer(400, {"message": "'to' parameter is missing"})
            return
        with _lock:
            STATS["calls"] += 1
            STATS["recipients"] += recipients
            STATS["bytes"] += length
            n = next(_ids)
        wait = self.delay - (time.monotonic() - arrived)
        if wait > 0:
            time.sleep(wait)
        self._answer(200, {"id": f"<bench.{n}@{match.group(1)}>", "message": "Queued. Thank you."})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # every worker's connections at once


def stats(port: int, host: str = "127.0.0.1") -> dict[str, int]:
    from urllib.request import urlopen

    with urlopen(f"http://{host}:{port}/stats", timeout=10) as response:
        return json.load(response)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    Handler.delay = args.delay
    server = Server((args.host, args.port), Handler)
    print(f"ESP stand-in listening on {args.host}:{args.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()

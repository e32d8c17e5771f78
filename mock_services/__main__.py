"""`python -m mock_services --port N [--fail N]`.

Answers 200 `OK` to every method and path, prints the method, path and JSON
body, and keeps them; `GET /_received` returns what was kept as a JSON list
and `DELETE /_received` forgets it. With `--fail N` the first N requests
(other than /_received) get 503.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorder:
    """Thread-safe memory of the requests received."""

    def __init__(self, fail_first: int):
        self._lock = threading.Lock()
        self._received: list[dict] = []
        self._failures_left = fail_first

    def record(self, entry: dict) -> bool:
        """Keep the request; returns False when it must be answered with 503."""
        with self._lock:
            if self._failures_left > 0:
                self._failures_left -= 1
                entry["answered"] = 503
                self._received.append(entry)
                return False
            entry["answered"] = 200
            self._received.append(entry)
            return True

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        with self._lock:
            self._received.clear()


def make_handler(recorder: Recorder):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.path == "/_received":
                if self.command == "GET":
                    payload = json.dumps(recorder.snapshot()).encode()
                    return self._reply(200, payload, "application/json")
                if self.command == "DELETE":
                    recorder.clear()
                    return self._reply(200, b"OK")
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            headers = {k: v for k, v in self.headers.items() if k.lower().startswith("x-")}
            entry = {"method": self.command, "path": self.path, "body": body, "headers": headers}
            accepted = recorder.record(entry)
            print(f"{self.command} {self.path}", flush=True)
            print(json.dumps(body, indent=2, ensure_ascii=False), flush=True)
            if accepted:
                self._reply(200, b"OK")
            else:
                self._reply(503, b"Service Unavailable")

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, format, *args):  # noqa: A002 - silence default access log
            return

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mock_services", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--fail", type=int, default=0, help="answer 503 to the first N requests")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(Recorder(args.fail)))
    server.daemon_threads = True
    print(f"mock service listening on {args.host}:{args.port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

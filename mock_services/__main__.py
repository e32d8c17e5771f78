"""`python -m mock_services --port N [--fail N] [--fail-every K] [--hang N] [--delay S]`.

Answers 200 `OK` to every method and path, prints the method, path and JSON
body, and keeps them; `GET /_received` returns what was kept as a JSON list
and `DELETE /_received` forgets it. Faults, for tests (requests other than
/_received): `--fail N` answers 503 to the first N, `--fail-every K` to every
K-th, `--hang N` keeps the first N waiting `--hang-seconds` before answering, and
`--delay S` makes every answer take S seconds (a slow downstream, for benchmarks).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorder:
    """Thread-safe memory of the requests received."""

    def __init__(self, fail_first: int = 0, fail_every: int = 0, hang_first: int = 0):
        self._lock = threading.Lock()
        self._received: list[dict] = []
        self._failures_left = fail_first
        self._fail_every = fail_every
        self._hangs_left = hang_first
        self._count = 0

    def record(self, entry: dict) -> tuple[int, bool]:
        """Keep the request; returns the status to answer and whether to hang first."""
        with self._lock:
            self._count += 1
            hang = self._hangs_left > 0
            self._hangs_left -= hang
            if self._failures_left > 0:
                self._failures_left -= 1
                status = 503
            elif self._fail_every and self._count % self._fail_every == 0:
                status = 503
            else:
                status = 200
            entry["answered"] = status
            self._received.append(entry)
            return status, hang

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        with self._lock:
            self._received.clear()


def make_handler(recorder: Recorder, hang_seconds: float = 3600.0, delay: float = 0.0):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as separate writes: without TCP_NODELAY every answer
        # on a kept-alive connection waits ~40 ms for the client's delayed ACK.
        disable_nagle_algorithm = True

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
            headers = {
                k.lower(): v
                for k, v in self.headers.items()
                if k.lower().startswith(("x-", "webhook-"))
            }
            entry = {
                "method": self.command,
                "path": self.path,
                "body": body,
                "raw": raw.decode("utf-8", "replace"),
                "headers": headers,
            }
            status, hang = recorder.record(entry)
            print(f"{self.command} {self.path}", flush=True)
            print(json.dumps(body, indent=2, ensure_ascii=False), flush=True)
            if hang:
                time.sleep(hang_seconds)
            elif delay:
                time.sleep(delay)
            if status == 200:
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
    parser.add_argument("--fail-every", type=int, default=0, help="answer 503 to every K-th")
    parser.add_argument("--hang", type=int, default=0, help="keep the first N waiting")
    parser.add_argument("--hang-seconds", type=float, default=3600.0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds every answer takes")
    args = parser.parse_args(argv)
    recorder = Recorder(args.fail, args.fail_every, args.hang)
    server = ThreadingHTTPServer(
        (args.host, args.port), make_handler(recorder, args.hang_seconds, args.delay)
    )
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

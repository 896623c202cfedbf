"""A real S3 API on 127.0.0.1 for tests and examples: moto's server behind a counting proxy.

moto's server cannot count what a client asked of it, so clients talk to :class:`CountingProxy`,
a plain HTTP reverse proxy that forwards every request to moto unchanged and logs its method,
path, Range header, status and the body bytes it sent back.  Uploads go straight to moto
(:meth:`S3TestServer.put`), so the log holds only what the code under test did.
"""

from __future__ import annotations

import http.client
import http.server
import threading
from dataclasses import dataclass, field
from typing import Any

from tests.runtime.conftest import Logged  # one record of a request answered, as the http tests log them

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "expect"}
CREDENTIALS = {"key": "testing", "secret": "testing"}
REGION = "us-east-1"


@dataclass
class CountingProxy:
    """Forwards to ``upstream`` (host, port); ``log`` lists every request answered."""

    upstream: tuple[str, int]
    log: list[Logged] = field(default_factory=list)
    server: Any = None

    def start(self) -> str:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    self.send_response(response.status)
                    for k, v in response.getheaders():
                        if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                            self.send_header(k, v)
                    if self.command == "HEAD":
                        self.send_header("Content-Length", response.getheader("Content-Length", "0"))
                    else:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()
                sent = 0 if self.command == "HEAD" else len(data)
                proxy.log.append(Logged(self.command, self.path, self.headers.get("Range"), response.status, sent))

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward  # noqa: N815 - http.server's names

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def for_key(self, bucket: str, key: str) -> list[Logged]:
        """Requests that named the object ``bucket/key`` (or listed under it)."""
        path = f"/{bucket}/{key}"
        return [r for r in self.log if r.path.split("?", 1)[0] == path or (r.path.startswith(f"/{bucket}?") and f"prefix={key}" in r.path)]

    def bytes_for(self, bucket: str, key: str) -> int:
        return sum(r.sent for r in self.for_key(bucket, key))


class S3TestServer:
    """moto (S3 only) on 127.0.0.1 plus a :class:`CountingProxy` in front of it.

    ``endpoint`` is the proxy's URL; :meth:`storage_options` are s3fs's options for it (fixed
    test credentials, one attempt per request so failures are quick)."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.moto_endpoint = f"http://{host}:{port}"
        self.proxy = CountingProxy((host, port))
        self.endpoint = self.proxy.start()
        import boto3

        self.client = boto3.client(
            "s3", endpoint_url=self.moto_endpoint, region_name=REGION,
            aws_access_key_id=CREDENTIALS["key"], aws_secret_access_key=CREDENTIALS["secret"],
        )

    def storage_options(self, endpoint: str | None = None, **extra: Any) -> dict[str, Any]:
        return {
            **CREDENTIALS,
            "client_kwargs": {"endpoint_url": endpoint or self.endpoint, "region_name": REGION},
            "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2, "read_timeout": 30},
            **extra,
        }

    def env(self) -> dict[str, str]:
        """The same settings as environment variables (what a CLI or a worker process reads)."""
        return {
            "AWS_ACCESS_KEY_ID": CREDENTIALS["key"], "AWS_SECRET_ACCESS_KEY": CREDENTIALS["secret"],
            "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL_S3": self.endpoint, "AWS_EC2_METADATA_DISABLED": "true",
        }

    def bucket(self, name: str) -> str:
        self.client.create_bucket(Bucket=name)
        return name

    def put(self, bucket: str, key: str, data: bytes) -> str:
        self.client.put_object(Bucket=bucket, Key=key, Body=data)
        return f"s3://{bucket}/{key}"

    def stop(self) -> None:
        self.proxy.stop()
        self._moto.stop()

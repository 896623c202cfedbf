"""Constants shared by the generator and the harness."""

#: The harness serves carton_conformance/cases/ over HTTP on this loopback port while it runs cases that
#: require the ``fetch`` feature; LINKS URLs in those cases point here (like JSON-Schema-Test-Suite's
#: http://localhost:1234/ remotes).
LOOPBACK_PORT = 48630
LOOPBACK_BASE = f"http://127.0.0.1:{LOOPBACK_PORT}/"
#: A file FILE is served with the status and headers of FILE + HTTP_SUFFIX when that JSON file exists.
HTTP_SUFFIX = ".http.json"

__all__ = ["HTTP_SUFFIX", "LOOPBACK_BASE", "LOOPBACK_PORT"]

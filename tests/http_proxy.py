"""A forward HTTP proxy for tests: absolute-URI requests and CONNECT tunnels.

Records what it was asked (``requests``: method, target, headers) so a test
can prove which traffic went through it and which credentials it saw.
"""
import http.client
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class ForwardProxy(object):
    def __init__(self):
        self.requests = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_CONNECT(self):
                proxy.requests.append(("CONNECT", self.path, dict(self.headers.items())))
                host, _, port = self.path.rpartition(":")
                upstream = socket.create_connection((host, int(port)), timeout=10)
                self.send_response(200, "Connection established")
                self.end_headers()
                self.wfile.flush()
                self.close_connection = True
                _pipe(self.connection, upstream)

            def _forward(self):
                proxy.requests.append((self.command, self.path, dict(self.headers.items())))
                target = urlsplit(self.path)
                if not target.scheme:
                    self.send_error(400, "absolute URI required")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = dict((k, v) for k, v in self.headers.items()
                               if k.lower() not in ("proxy-authorization", "proxy-connection",
                                                    "connection"))
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
                path = target.path + ("?" + target.query if target.query else "")
                conn.request(self.command, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status, resp.reason)
                for key, value in resp.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def seen(self, method=None):
        return [r for r in self.requests if method is None or r[0] == method]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def _pipe(a, b, idle=10.0):
    """Copy bytes both ways until either side closes (or ``idle`` seconds)."""
    try:
        while True:
            ready, _, _ = select.select([a, b], [], [], idle)
            if not ready:
                return
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                (b if sock is a else a).sendall(data)
    except OSError:
        return
    finally:
        b.close()

"""gunicorn pieces: a worker that stops listening at once on SIGTERM, and a logger
that skips the access log (the app writes its own request log).

DrainingThreadWorker
--------------------

Stock gthread, on SIGTERM, stops polling its listening socket but keeps it open
until its in-flight requests finish. Meanwhile the kernel keeps completing new
connections into the socket's queue, and they are reset when the worker exits: a
request the client already sent is lost, and a load balancer cannot safely retry it.

This worker, once stopping, accepts what the kernel had already queued (those are
served like any other request) and closes its listening socket at once, so later
connection attempts are refused, which any client or load balancer can retry.

QuietAccessLogger
-----------------
gunicorn builds an access-log entry for every request (a dict of all request and
response headers and the WSGI environ) whenever a ``logconfig_dict`` is set, even with
``accesslog`` off and no handler on ``gunicorn.access``. gunicorn.conf.py sets one (to
write gunicorn's own messages as JSON), and building those entries cost ~10 % of a
worker's time under load (py-spy, bench/README.md). The app's JSON request log already
has one line per request, so this logger does nothing for access.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger
from gunicorn.workers.gthread import TConn, ThreadWorker


class QuietAccessLogger(Logger):
    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None


class DrainingThreadWorker(ThreadWorker):
    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if enabled or self.alive:
            return
        for listener in self.sockets:
            while True:
                try:
                    client_sock, client_addr = listener.accept()
                except OSError:  # EAGAIN: queue empty (or the socket is already gone)
                    break
                self.nr_conns += 1
                client_sock.setblocking(True)
                self.enqueue_req(TConn(self.cfg, client_sock, client_addr, listener.getsockname()))
            listener.close()

"""gunicorn worker: gthread that stops listening as soon as it is told to stop.

Stock gthread, on SIGTERM, stops polling its listening socket but keeps it open
until its in-flight requests finish. Meanwhile the kernel keeps completing new
connections into the socket's queue, and they are reset when the worker exits: a
request the client already sent is lost, and a load balancer cannot safely retry it.

This worker, once stopping, accepts what the kernel had already queued (those are
served like any other request) and closes its listening socket at once, so later
connection attempts are refused, which any client or load balancer can retry.
"""

from __future__ import annotations

from gunicorn.workers.gthread import TConn, ThreadWorker


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

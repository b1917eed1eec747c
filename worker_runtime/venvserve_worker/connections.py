"""The worker's connections: one poll thread, a bounded pool of request threads.

An idle keep-alive connection costs a file descriptor, not a thread: the poll
thread (the main thread) watches every idle connection with ``selectors`` and
hands one to the pool only once a whole request head has arrived. A pool
thread checks the head with the app (the token, before any body byte is
read), reads the body, calls the app, writes the answer, and gives the
connection back to the poll thread. A head that trickles in slower than
``head_timeout``, a connection that sends nothing for as long, and a served
connection idle past ``idle_timeout`` are closed.

SIGTERM keeps its default meaning, exit now: the gateway drains a worker
(waits for its requests) before it signals, and signals without draining
when it means to stop a hung one.
"""

import collections
import selectors
import socket
import threading
import time

from .http11 import HTTPError, Limits, Request, encode_response, error_response, head_end, parse_head

# The gateway opens up to max_concurrency + 2 connections at once, in bursts.
LISTEN_BACKLOG = 1024
RECV_BYTES = 256 * 1024
LINGER_S = 1.0
ACCEPT_BACKOFF_S = 0.05
LINGER_BYTES = 1024 * 1024


class Connection:
    __slots__ = ("sock", "buf", "since", "served")

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.since = time.monotonic()  # when it last became idle, or its head began
        self.served = False  # a request was answered on it: it is the gateway's pooled connection

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Server:
    """Serves ``app`` on a listening socket until ``stop()`` (or the process ends).

    ``app.check(head)`` answers None or a (status, payload) refusal before the
    body is read; ``app(request)`` answers (status, payload).
    """

    def __init__(self, sock, app, threads=3, limits=None, idle_timeout=3600.0, head_timeout=30.0,
                 body_timeout=60.0):
        self.sock = sock
        self.app = app
        self.limits = limits or Limits()
        self.idle_timeout = idle_timeout
        self.head_timeout = head_timeout
        self.body_timeout = body_timeout
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.returned = collections.deque()  # connections the pool hands back (deque ops are atomic)
        self.ready = collections.deque()  # connections with a whole head, for the pool
        self.cond = threading.Condition()
        self.busy = 0  # connections in the pool's hands: the exit waits for them
        self.stopping = False
        self.closed = False  # set once the last request is answered: the pool threads end
        self.threads = [threading.Thread(target=self._pool_loop, name="request-%d" % i, daemon=True)
                        for i in range(max(1, threads))]

    @property
    def address(self):
        return self.sock.getsockname()

    # -- the poll thread ----------------------------------------------------------

    def serve_forever(self):
        for thread in self.threads:
            thread.start()
        self.sock.setblocking(False)
        self.selector.register(self.sock, selectors.EVENT_READ, None)
        self.selector.register(self.wake_r, selectors.EVENT_READ, None)
        while not self.stopping:
            for key, _ in self.selector.select(timeout=self._next_deadline()):
                if key.fileobj is self.sock:
                    self._accept()
                elif key.fileobj is self.wake_r:
                    self._drain_wakeups()
                else:
                    self._readable(key.data)
            self._take_back()
            self._close_expired()
        self._finish()

    def stop(self):
        """Stop accepting; serve_forever returns once the requests in hand are answered."""
        self.stopping = True
        self._wake()

    def _accept(self):
        while True:
            try:
                sock, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # out of descriptors: the backlog keeps the rest waiting, and a
                time.sleep(ACCEPT_BACKOFF_S)  # short pause keeps the poll from spinning on it
                return
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, Connection(sock))

    def _readable(self, conn):
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        if not conn.buf:
            conn.since = time.monotonic()  # a head began: the head timeout runs from here
        conn.buf += data
        try:
            complete = head_end(conn.buf, self.limits) is not None
        except HTTPError:
            complete = True  # the pool thread answers the refusal
        if complete:
            self.selector.unregister(conn.sock)
            self._hand_over(conn)

    def _hand_over(self, conn):
        with self.cond:
            self.busy += 1
            self.ready.append(conn)
            self.cond.notify()

    def _take_back(self):
        while self.returned:
            conn = self.returned.popleft()
            if self.stopping:
                conn.close()
                continue
            conn.since = time.monotonic()
            self.selector.register(conn.sock, selectors.EVENT_READ, conn)

    def _close_expired(self):
        now = time.monotonic()
        for key in list(self.selector.get_map().values()):
            conn = key.data
            if conn is None:
                continue
            # A connection that never sent a request gets as long as a slow head; one the
            # gateway keeps in its pool, the long idle timeout (closing it races its next use).
            limit = self.idle_timeout if conn.served and not conn.buf else self.head_timeout
            if now - conn.since > limit:
                self._drop(conn)

    def _next_deadline(self):
        return min(self.head_timeout, self.idle_timeout, 5.0)

    def _drop(self, conn):
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.close()

    def _wake(self):
        try:
            self.wake_w.send(b"\0")
        except OSError:
            pass

    def _drain_wakeups(self):
        try:
            while self.wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError, OSError):
            pass

    def _finish(self):
        """Close the listener and idle connections, then wait for the requests in hand."""
        for key in list(self.selector.get_map().values()):
            if key.data is not None:
                key.data.close()
        self.selector.close()
        self.sock.close()
        with self.cond:
            while self.busy:
                self.cond.wait()
            self.closed = True
            self.cond.notify_all()

    # -- pool threads ----------------------------------------------------------------

    def _pool_loop(self):
        while True:
            with self.cond:
                while not self.ready and not self.closed:
                    self.cond.wait()
                if not self.ready:
                    return
                conn = self.ready.popleft()
            keep = False
            try:
                keep = self._serve(conn)
            except Exception:  # a bug here must cost one connection, never a pool thread
                import traceback

                traceback.print_exc()
            if keep:
                self.returned.append(conn)
                self._wake()
            else:
                conn.close()
            with self.cond:
                self.busy -= 1
                self.cond.notify_all()

    def _serve(self, conn):
        """Answer the requests whose heads are in the buffer; True to keep the connection."""
        conn.sock.settimeout(self.body_timeout)
        while True:
            try:
                end = head_end(conn.buf, self.limits)
                if end is None:
                    conn.sock.setblocking(False)
                    return True  # the next head has not come yet: back to the poll thread
                head = parse_head(bytes(conn.buf[:end]), self.limits)
            except HTTPError as exc:
                return self._refuse(conn, error_response(exc))
            refused = self.app.check(head)
            if refused is not None:
                return self._refuse(conn, encode_response(refused[0], refused[1], close=True))
            body = self._read_body(conn, end, head.length)
            if body is None:
                return False  # the body ended short or stalled: no request at all
            del conn.buf[:end + head.length]
            status, payload = self.app(Request(head.method, head.path, head.headers, body))
            close = self.stopping or not head.keep_alive
            try:
                conn.sock.sendall(encode_response(status, payload, close))
            except OSError:
                return False
            conn.served = True
            if close:
                return False

    def _read_body(self, conn, end, length):
        while len(conn.buf) < end + length:
            try:
                data = conn.sock.recv(min(RECV_BYTES, end + length - len(conn.buf)))
            except OSError:  # socket.timeout included
                return None
            if not data:
                return None
            conn.buf += data
        return bytes(conn.buf[end:end + length])

    @staticmethod
    def _refuse(conn, response):
        """Answer, then close gently: a close with unread input sends a TCP reset, which can
        destroy the answer before the client reads it, so what is still arriving is read and
        dropped for a moment (at most LINGER_BYTES, never the whole body)."""
        try:
            conn.sock.sendall(response)
            conn.sock.shutdown(socket.SHUT_WR)
            conn.sock.settimeout(LINGER_S)
            left = LINGER_BYTES
            while left > 0:
                data = conn.sock.recv(min(left, RECV_BYTES))
                if not data:
                    break
                left -= len(data)
        except OSError:
            pass
        return False


def listen_unix(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(LISTEN_BACKLOG)
    return sock


def listen_tcp(host, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    return sock

"""Run the app under uvicorn, with a drain on SIGTERM that ends in exit status 0.

uvicorn re-raises the signal it caught once it has shut down, so a clean,
fully drained stop would look like a kill (-15) to a process manager.
Here a SIGTERM or SIGINT that completed the graceful shutdown exits 0.
"""

import contextlib
import signal
import threading

import uvicorn

from .settings import Settings


class Server(uvicorn.Server):
    on_listen = None  # called with the server once its sockets listen (the CLI's banner)

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.on_listen is not None:
            self.on_listen(self)

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def run(app, settings: Settings, on_listen=None) -> None:
    from .api.protocol import guarded_protocol  # header size and read timeouts (431, 408)

    protocol = guarded_protocol(settings.max_header_kb * 1024, settings.header_timeout_s)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                            access_log=False, timeout_graceful_shutdown=int(settings.stop_grace_s),
                            server_header=False, http=protocol, ws="none")
    server = Server(config)
    server.on_listen = on_listen
    server.run()

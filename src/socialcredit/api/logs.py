"""The service's log lines: `LEVEL:` padded as uvicorn's own lines, then the message.

uvicorn's formatter copies each record to colour it; the access log writes a line per request,
so its lines are made directly (the same text as uvicorn's, without colour).
"""

from __future__ import annotations

import logging


class LineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = record.levelname
        text = f"{level}:{' ' * (8 - len(level))} {record.getMessage()}"
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        elif record.exc_text:
            text = f"{text}\n{record.exc_text}"
        return text


class TurnHandler(logging.StreamHandler):
    """A StreamHandler that, on an event loop's thread, writes the lines of one turn of the loop
    together (one write and flush a turn, not one a request); elsewhere it writes at once.

    A line waits at most until the loop's next turn; what a killed process had not written of
    its last turn is lost, as with any buffered log (the audit log, in the database, is the record).
    """

    def __init__(self, stream=None):
        super().__init__(stream)
        self._pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            import asyncio

            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            super().emit(record)
            return
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - as logging does: report, never raise
            self.handleError(record)
            return
        pending = self._pending
        pending.append(line)
        if len(pending) == 1:
            loop.call_soon(self._write)

    def _write(self) -> None:
        with self.lock:
            lines, self._pending = self._pending, []
            if not lines:
                return
            try:
                self.stream.write(self.terminator.join(lines) + self.terminator)
                self.stream.flush()
            except Exception:  # noqa: BLE001
                pass

    def flush(self) -> None:
        self._write()
        super().flush()

    def close(self) -> None:
        self._write()
        super().close()

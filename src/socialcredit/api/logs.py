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

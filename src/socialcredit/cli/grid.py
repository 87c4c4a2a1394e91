"""Tables of plain-text cells laid out to the terminal's width (80 columns included)."""

from __future__ import annotations

from .app import escape as _escape
from .app import out


class Grid:
    """A table of plain-text cells (policy text such as `[as reported]` is not Rich markup).

    Cells are laid out to the console's width: names in the `whole` columns (event types,
    services) stay on one line and other cells wrap between words while there is room for
    that; on a narrower console long words fold. Nothing is ever cut off with an ellipsis.
    """

    def __init__(self, title: str, *columns: str, caption: str | None = None):
        self.title, self.columns, self.caption = title, columns, caption
        self.rows: list[tuple[str, ...]] = []

    def row(self, *cells: str) -> None:
        self.rows.append(cells)

    def print(self, *whole: str) -> None:
        from rich.table import Table  # only commands that print a table pay for it
        from rich.text import Text

        table = Table(title=_escape(self.title), title_justify="left", expand=False,
                      caption=_escape(self.caption) if self.caption else None, caption_justify="left")
        widths = self._widths(whole)
        for i, name in enumerate(self.columns):
            table.add_column(name, overflow="fold", width=widths[i] if widths else None)
        for cells in self.rows:
            table.add_row(*(Text(cell) for cell in cells))
        out.print(table)

    def _widths(self, whole: tuple[str, ...]) -> list[int] | None:
        """Column widths, or None to let Rich fold cells wherever it needs to."""
        room = out.width - (3 * len(self.columns) + 1)  # a border and two spaces per column
        texts = [[name, *(row[i] for row in self.rows)] for i, name in enumerate(self.columns)]
        natural = [max(len(line) for text in column for line in text.splitlines() or [""]) for column in texts]
        if sum(natural) <= room:
            return None
        longest_word = [max(len(word) for text in column for word in text.split() or [""]) for column in texts]
        # Keep as many `whole` columns (most important first) as fit; then words unbroken if possible.
        for keep in (whole[:k] for k in range(len(whole), 0, -1)):
            for smallest in (
                [n if name in keep else w for name, n, w in zip(self.columns, natural, longest_word)],
                [n if name in keep else min(n, max(5, *map(len, name.split()))) for name, n in zip(self.columns, natural)],
            ):
                spare = room - sum(smallest)
                if spare >= 0:
                    wanted = [n - s for n, s in zip(natural, smallest)]
                    total = sum(wanted) or 1
                    return [s + spare * want // total for s, want in zip(smallest, wanted)]
        return None


def print_blocks(blocks) -> None:
    """A policy description (`policy.describe`) on the terminal."""
    from ..policy.describe import Grid as GridBlock, Heading

    for block in blocks:
        if isinstance(block, Heading):
            out.print(f"[bold]{_escape(block.text)}[/]", highlight=False)
        elif isinstance(block, GridBlock):
            grid = Grid(block.title, *block.columns, caption=block.caption)
            grid.rows = list(block.rows)
            grid.print(*block.keep_whole)
        else:
            out.print(_escape(block.text), highlight=False)

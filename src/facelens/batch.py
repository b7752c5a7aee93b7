"""Deprecated shim: many images as plain dicts, for callers not yet moved to :class:`facelens.engine.FaceAnalyzer`.

``run_batch`` is ``FaceAnalyzer(...).run(sources)`` with each result flattened to the old ``BatchItem``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from facelens.engine import FaceAnalyzer, default_workers


@dataclass(frozen=True)
class BatchItem:
    index: int
    source: str
    faces: list[dict[str, Any]]
    error: str | None


def run_batch(
    sources: Sequence[str],
    embed: bool = True,
    workers: int | None = None,
    largest_only: bool = False,
    on_item: Callable[[BatchItem], None] | None = None,
    **pipeline_options: Any,
) -> Iterator[BatchItem]:
    """Yield one :class:`BatchItem` per source, in input order."""
    engine = FaceAnalyzer(tasks=("embed",) if embed else ("detect",), workers=workers or default_workers(),
                          select="largest" if largest_only else None, **pipeline_options)
    for index, result in enumerate(engine.run([str(s) for s in sources])):
        item = BatchItem(index, result.source, result.faces.to_list(with_embedding=embed), result.error)
        if on_item:
            on_item(item)
        yield item

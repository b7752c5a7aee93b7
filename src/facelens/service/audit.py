"""Audit log: one JSON line per enrol/delete/identify (who = key id, when, action, gallery, person, outcome).

Probe images are not kept unless ``Settings.audit_images`` names a folder; then the record names the file.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger("facelens.audit")


class AuditLog:
    def __init__(self, path: Path | None, images_dir: str | Path | None = None) -> None:
        self.path = path
        self.images_dir = Path(images_dir).expanduser() if images_dir else None
        self._lock = threading.Lock()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.images_dir is not None:
            self.images_dir.mkdir(parents=True, exist_ok=True)

    def keep_image(self, data: bytes, extension: str) -> str | None:
        """Store a probe image when the settings ask for it; returns its file name (None when not kept)."""
        if self.images_dir is None:
            return None
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.{extension}"
        (self.images_dir / name).write_bytes(data)
        return name

    def record(self, who: str, action: str, gallery: str | None = None, person: str | None = None,
               **fields: Any) -> dict[str, Any]:
        entry = {"time": round(time.time(), 3), "who": who, "action": action, "gallery": gallery, "person": person}
        entry.update({k: v for k, v in fields.items() if v is not None})
        line = json.dumps(entry, default=str)
        log.info("%s", line)
        if self.path is not None:
            with self._lock, open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        return entry

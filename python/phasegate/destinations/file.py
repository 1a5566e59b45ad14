"""Writes each batch to one file (JSONL, CSV or Parquet). The file name is derived from the
batch's record ids and written atomically, so a batch resent after a crash replaces its own
file instead of duplicating it. A delete record is written like any other (kind "delete",
the customer key and its identifiers): whoever reads the files carries out the erasure."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from phasegate.destinations.base import BatchResult, Capabilities, Destination, Record
from phasegate.destinations.configs import FileDestinationConfig
from phasegate.errors import PermanentError


class FileDestination(Destination):
    type = "file"
    capabilities = Capabilities(max_batch_records=100_000, dedupes_by_record_id=True, supports_delete=True)

    def __init__(self, config: FileDestinationConfig):
        self.root = Path(config.path)
        self.format = config.format

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PermanentError(f"cannot create output directory {self.root}: {exc}") from exc
        if not os.access(self.root, os.W_OK):
            raise PermanentError(f"output directory {self.root} is not writable")

    def batch_path(self, sync_name: str, records: list[Record]) -> Path:
        digest = hashlib.sha256("\n".join(r.record_id for r in records).encode()).hexdigest()[:20]
        return self.root / sync_name / f"batch-{digest}.{self.format}"

    def write_batch(self, sync_name: str, records: list[Record]) -> BatchResult:
        path = self.batch_path(sync_name, records)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [{"record_id": r.record_id, "kind": r.kind, "key": r.key, **r.payload} for r in records]
        tmp = path.with_suffix(path.suffix + ".tmp")
        if self.format == "jsonl":
            with tmp.open("w") as fh:
                for row in rows:
                    fh.write(json.dumps(row, default=str, sort_keys=True) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        else:
            import pandas as pd

            frame = pd.DataFrame(rows).astype(object).where(lambda f: f.notna(), None)
            if self.format == "csv":
                frame.to_csv(tmp, index=False)
            else:
                frame.astype(str).to_parquet(tmp, index=False)
        os.replace(tmp, path)
        return BatchResult(accepted=[r.record_id for r in records])

"""Finished slides kept as parts beside the submission, so a killed run resumes where it stopped.

A run over many slides (`hubkit.inference.cluster`) writes each finished slide's row to
``.<submission name>.parts/<id>.json`` beside the submission, and a ``manifest.json`` that says
what made them: hubkit's version, the format, the prediction settings that change a result
(`PredictConfig.fingerprint`), each model's name and weights sha256, and the ids. A rerun with the
same manifest skips the slides that have a part; a rerun with anything else is refused, naming
what changed (``fresh=True`` / ``--fresh`` deletes the parts and starts over), so a submission is
never stitched from two different runs.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import hubkit
from hubkit._io import atomic_write, read_json
from hubkit.errors import SubmissionError
from hubkit.formats.base import check_id
from hubkit.models.card import ModelCard

__all__ = ["Manifest", "PartStore", "parts_dir"]

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Manifest:
    """What made a run's parts; two runs may share parts only when their manifests are equal."""

    hubkit: str
    format: str
    config: str
    models: tuple[tuple[str, str], ...]
    ids: tuple[str, ...]

    @classmethod
    def of(cls, fmt_name: str, config_fingerprint: str, cards: Sequence[ModelCard], ids: Sequence[str]) -> "Manifest":
        return cls(hubkit.__version__, fmt_name, config_fingerprint,
                   tuple((c.name, c.sha256) for c in cards), tuple(ids))

    def differences(self, other: "Manifest") -> list[str]:
        """The fields in which ``other`` differs, by name."""
        return [k for k, v in asdict(self).items() if v != asdict(other)[k]]


def parts_dir(out_csv) -> Path:
    """Where the parts of a submission live: a hidden folder beside it."""
    out_csv = Path(out_csv)
    return out_csv.parent / f".{out_csv.name}.parts"


class PartStore:
    """The parts of one submission.

    Args:
        out_csv: the submission the parts belong to.
        manifest: what this run is.
        fresh: delete any parts already there instead of resuming from them.

    Raises:
        SubmissionError: parts made by a run with another manifest (the message names what
            differs and how to start over), or an unreadable manifest or part.
    """

    def __init__(self, out_csv, manifest: Manifest, fresh: bool = False):
        self.folder = parts_dir(out_csv)
        self.manifest = manifest
        if fresh and self.folder.exists():
            shutil.rmtree(self.folder)
        found = self._read_manifest()
        if found is not None and found != manifest:
            raise SubmissionError(
                f"{self.folder}: parts of an earlier run with another {', '.join(manifest.differences(found))}; "
                "rerun with --fresh (fresh=True) to discard them, or restore that run's settings to resume it")
        if found is None:
            with atomic_write(self.folder / MANIFEST) as f:
                f.write(json.dumps(asdict(manifest), indent=1))

    def _read_manifest(self):
        path = self.folder / MANIFEST
        if not path.is_file():
            return None
        doc = _read(path, "parts manifest")
        try:
            return Manifest(**{k: _tuples(v) for k, v in doc.items()})
        except (AttributeError, TypeError) as err:
            raise SubmissionError(f"{path}: unreadable parts manifest ({type(err).__name__}); "
                                  "rerun with --fresh to discard the parts") from None

    def rows(self) -> dict[str, dict[str, str]]:
        """``{id: row}`` of every finished slide of this run's ids."""
        done = {}
        for slide_id in self.manifest.ids:
            path = self.folder / f"{slide_id}.json"
            if path.is_file():
                row = _read(path, "part")
                if not (isinstance(row, dict) and all(isinstance(v, str) for v in row.values())):
                    raise SubmissionError(f"{path}: a part is an object of strings; rerun with --fresh")
                done[slide_id] = row
        return done

    def add(self, slide_id: str, row: dict[str, str]) -> None:
        """Keep a finished slide's row (atomically: a killed run leaves whole parts only)."""
        check_id(slide_id, self.folder)
        with atomic_write(self.folder / f"{slide_id}.json") as f:
            f.write(json.dumps(row))


def _read(path: Path, what: str):
    """A JSON file of the parts folder, or a `SubmissionError` naming it."""
    return read_json(path, SubmissionError, what, hint="; rerun with --fresh to discard the parts")


def _tuples(value):
    """JSON lists back to the manifest's tuples."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value

"""py3langid's model, unpacked once into a cache folder and memory-mapped from there.

The bundled model is LZMA-compressed: loading it costs every crawl process about three seconds of
CPU and some 80 MB of private memory (plus as much again while it is unpacked), for a model of
which a crawl touches a few pages. Unpacked to .npy files, restricted to the languages we detect,
it opens instantly and its pages are shared by every process on the machine (and only the pages
actually read count). Any problem with the cache falls back to py3langid's own loader.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

_FORMAT = 1


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "border-news-monitor"


def load_identifier(languages: tuple[str, ...]):
    """A py3langid LanguageIdentifier restricted to `languages` (norm_probs=True)."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    model = Path(MODEL_DIR) / MODEL_FILE
    try:
        folder = _cached(model, languages)
        return _open(folder, LanguageIdentifier)
    except (OSError, ValueError, KeyError) as exc:
        log.debug("language model cache unusable (%s); loading the packed model", exc)
    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    known = set(ident.nb_classes)
    ident.set_languages([lang for lang in languages if lang in known] or None)
    return ident


def _cached(model: Path, languages: tuple[str, ...]) -> Path:
    stat = model.stat()
    tag = json.dumps([_FORMAT, str(model), stat.st_size, stat.st_mtime_ns, sorted(set(languages))])
    folder = cache_root() / f"langid-{hashlib.sha1(tag.encode()).hexdigest()[:16]}"
    if (folder / "done").exists():
        return folder
    _build(model, languages, folder)
    return folder


def _build(model: Path, languages: tuple[str, ...], folder: Path) -> None:
    import numpy as np
    from py3langid.modelio import load_model

    ptc, pc, classes, nextmove, row, output = load_model(model)
    wanted = set(languages)
    keep = [i for i, c in enumerate(classes) if c in wanted] or list(range(len(classes)))
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        np.save(work / "ptc.npy", np.ascontiguousarray(np.asarray(ptc)[:, keep]))
        np.save(work / "pc.npy", np.asarray(pc)[keep])
        np.save(work / "nextmove.npy", np.frombuffer(nextmove, dtype=np.dtype(nextmove.typecode)))
        np.save(work / "row.npy", np.frombuffer(row, dtype=np.dtype(row.typecode)))
        np.save(work / "output.npy", np.asarray(output, dtype=np.int32))
        (work / "classes.json").write_text(json.dumps([classes[i] for i in keep]))
        (work / "done").write_text("ok")
        try:
            os.rename(work, folder)  # atomic; another process may have won the race
        except OSError:
            if not (folder / "done").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _open(folder: Path, identifier_class):
    import numpy as np

    def load(name: str, mmap: bool = True):
        # np.asarray: a plain ndarray view of the map (np.memmap's Python-level indexing is slow)
        return np.asarray(np.load(folder / name, mmap_mode="r" if mmap else None,
                                  allow_pickle=False))

    classes = json.loads((folder / "classes.json").read_text())
    return identifier_class(
        load("ptc.npy"),
        load("pc.npy", mmap=False),
        classes,
        # indexed once per byte of text: a memoryview gives plain ints; only visited pages load
        memoryview(load("nextmove.npy")),
        load("output.npy", mmap=False).tolist(),
        norm_probs=True,
        tk_row=load("row.npy", mmap=False).tolist(),
    )

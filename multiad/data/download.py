"""Fetching the real datasets (for users with internet; never run by the tests).

* MVTec AD: the official archive ``mvtec_anomaly_detection.tar.xz`` (~4.9 GB), streamed with
  a progress bar, resumable (HTTP Range), checked against its SHA-256 and extracted with
  path-traversal protection.
* MVTec LOCO AD: the official archive ``mvtec_loco_anomaly_detection.tar.xz`` (~5 GB),
  fetched and checked the same way.
* BMAD: the official copy is a Google Drive folder (needs a browser); a zip mirror on
  Hugging Face (``code-dev05/BMAD``) can be fetched directly. :func:`bmad_instructions`
  says how to get either.

``python -m multiad.data.download mvtec --root data/mvtec`` /
``python -m multiad.data.download mvtec_loco --root data/mvtec_loco`` /
``python -m multiad.data.download bmad --root data/bmad``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import stat
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from ..atomic import write_json
from .errors import DataError
from .mvtec import MVTEC_CATEGORIES
from .mvtec_loco import LOCO_CATEGORIES

MVTEC_URL = ("https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f282/download/"
             "420938113-1629952094/mvtec_anomaly_detection.tar.xz")
MVTEC_SHA256 = "cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d"
MVTEC_PAGE = "https://www.mvtec.com/company/research/datasets/mvtec-ad"
# The direct link and SHA-256 of the official release, as pinned by anomalib.
LOCO_URL = ("https://www.mydrive.ch/shares/48237/1b9106ccdfbb09a0c414bd49fe44a14a/download/"
            "430647091-1646842701/mvtec_loco_anomaly_detection.tar.xz")
LOCO_SHA256 = "9e7c84dba550fd2e59d8e9e231c929c45ba737b6b6a6d3814100f54d63aae687"
LOCO_PAGE = "https://www.mvtec.com/company/research/datasets/mvtec-loco"
BMAD_DRIVE = "https://drive.google.com/drive/folders/1La5H_3tqWioPmGN04DM1vdl3rbcBez62"
BMAD_HF_URL = "https://huggingface.co/datasets/code-dev05/BMAD/resolve/main/bmad.zip"
BMAD_HF_SHA256 = "df655def31f3f638a91c567550de54d6e45a74b2368f666c13a6a3052c063165"
MARKER = ".multiad_download.json"
_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _refuse_if_offline(url: str) -> None:
    """With ``MULTIAD_OFFLINE=1`` only local URLs (file://, localhost) may be fetched."""
    if os.environ.get("MULTIAD_OFFLINE", "0") in ("", "0"):
        return
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme != "file" and parsed.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise DataError(f"Not downloading {url}: MULTIAD_OFFLINE is set. Unset it, or fetch "
                        "the file by hand.")


def download_file(url: str, dest: str | Path, *, sha256: str | None = None,
                  progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part`` if present), verify, rename.

    The file appears at ``dest`` only when complete and, with ``sha256``, verified.
    """
    dest = Path(dest)
    if dest.is_file() and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    _refuse_if_offline(url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "multiad-download/1"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # range not satisfiable: the part is already complete
            response = None
        else:
            raise DataError(f"Download of {url} failed: HTTP {exc.code} {exc.reason}. "
                            "Check the URL or download it by hand into "
                            f"{dest}.") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(f"Download of {url} failed: {exc}. Check your connection; rerun to "
                        f"resume from {part}.") from exc
    if response is not None:
        with response:
            resumed = have and getattr(response, "status", 200) == 206
            if not resumed:
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            with open(part, "ab" if resumed else "wb") as out, \
                    tqdm(total=total, initial=have, unit="B", unit_scale=True,
                         desc=dest.name, disable=not progress) as bar:
                try:
                    for block in iter(lambda: response.read(_CHUNK), b""):
                        out.write(block)
                        bar.update(len(block))
                except OSError as exc:
                    raise DataError(f"Download of {url} interrupted: {exc}. Rerun to resume "
                                    f"from {part}.") from exc
                out.flush()
                os.fsync(out.fileno())
    if sha256 is not None:
        digest = sha256_file(part)
        if digest != sha256:
            part.unlink()
            raise DataError(f"Checksum mismatch for {url}: got sha256 {digest}, expected "
                            f"{sha256}. The partial file was deleted; download again, or "
                            "fetch the file by hand if the source changed.")
    os.replace(part, dest)
    return dest


def _check_member_name(name: str, archive: Path) -> PurePosixPath:
    rel = PurePosixPath(name.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or (rel.parts and ":" in rel.parts[0]):
        raise DataError(f"Unsafe path '{name}' in archive {archive} (absolute or leaving the "
                        "target folder). Refusing to extract; the archive is not trustworthy.")
    return rel


def safe_extract(archive: str | Path, dest: str | Path) -> list[Path]:
    """Extract a tar (any compression) or zip archive into ``dest`` without path traversal.

    Only regular files and folders are allowed (links, devices and absolute or ``..``
    paths raise :class:`DataError`). Everything is extracted into a staging folder first
    and moved into ``dest`` only when the whole archive extracted cleanly. Returns the
    top-level paths created in ``dest``.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, stage)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, stage)
        else:
            raise DataError(f"{archive} is neither a tar nor a zip archive (truncated "
                            "download?). Delete it and download again.")
        created = []
        for item in sorted(stage.iterdir()):
            target = dest / item.name
            if target.exists():
                _merge(item, target)
            else:
                os.replace(item, target)
            created.append(target)
        return created
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _merge(src: Path, dst: Path) -> None:
    """Move ``src`` into an existing ``dst`` folder, file by file (files overwrite)."""
    if not (src.is_dir() and dst.is_dir()):
        os.replace(src, dst)
        return
    for item in src.iterdir():
        target = dst / item.name
        if target.exists() and item.is_dir():
            _merge(item, target)
        else:
            os.replace(item, target)


def _extract_tar(archive: Path, stage: Path) -> None:
    # Stream mode ("r|*"): each member is extracted while it is current, so a compressed
    # multi-GB archive is decompressed exactly once (random access would rewind it).
    try:
        with tarfile.open(archive, "r|*") as tf:
            for member in tf:
                _check_member_name(member.name, archive)
                if not (member.isfile() or member.isdir()):
                    raise DataError(f"Archive {archive} contains '{member.name}', which is a "
                                    "link or special file. Refusing to extract.")
                member.mode = (member.mode | 0o600) & 0o755
                if hasattr(tarfile, "data_filter"):
                    tf.extract(member, stage, filter="data")
                else:  # Python without extraction filters; names were checked above
                    tf.extract(member, stage)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"Cannot extract {archive}: {exc}. The archive is damaged or "
                        "truncated; delete it and download again.") from exc


def _extract_zip(archive: Path, stage: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                _check_member_name(info.filename, archive)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise DataError(f"Archive {archive} contains the link '{info.filename}'. "
                                    "Refusing to extract.")
            for info in infos:
                zf.extract(info, stage)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DataError(f"Cannot extract {archive}: {exc}. The archive is damaged or "
                        "truncated; delete it and download again.") from exc


def find_mvtec_root(folder: str | Path) -> Path | None:
    """The folder holding all 15 MVTec AD category folders (``folder`` or one level down)."""
    folder = Path(folder)
    for cand in (folder, *sorted(p for p in folder.glob("*") if p.is_dir())):
        if all((cand / c / "train").is_dir() for c in MVTEC_CATEGORIES):
            return cand
    return None


def _download_archive(root: Path, *, dataset: str, title: str, archive_name: str, url: str,
                      sha256: str | None, find: Callable[[Path], Path | None], n: int,
                      page: str, keep_archive: bool, progress: bool) -> Path:
    """Download, verify and extract one archive of ``n`` category folders into ``root``
    (nothing when ``find`` already sees them); record where the data came from."""
    found = find(root)
    if found is not None:
        return found
    archive = download_file(url, root / archive_name, sha256=sha256, progress=progress)
    safe_extract(archive, root)
    found = find(root)
    if found is None:
        raise DataError(f"After extracting {archive} the {n} {title} category folders are "
                        f"not all in {root}. Delete {root} and retry, or download from "
                        f"{page} by hand.")
    write_json(root / MARKER, {"dataset": dataset, "url": url, "sha256": sha256,
                               "root": str(found)})
    if not keep_archive:
        archive.unlink()
    return found


def download_mvtec(root: str | Path, *, url: str = MVTEC_URL, sha256: str | None = MVTEC_SHA256,
                   keep_archive: bool = False, progress: bool = True) -> Path:
    """Download, verify and extract MVTec AD into ``root``; return the dataset root.

    Skips everything when ``root`` already holds the 15 categories. The MVTec AD licence
    (CC BY-NC-SA 4.0) applies to the data.
    """
    return _download_archive(Path(root).expanduser(), dataset="mvtec", title="MVTec AD",
                             archive_name="mvtec_anomaly_detection.tar.xz", url=url,
                             sha256=sha256, find=find_mvtec_root, n=15, page=MVTEC_PAGE,
                             keep_archive=keep_archive, progress=progress)


def find_loco_root(folder: str | Path) -> Path | None:
    """The folder holding the 5 MVTec LOCO AD category folders (``folder`` or one level
    down)."""
    folder = Path(folder)
    for cand in (folder, *sorted(p for p in folder.glob("*") if p.is_dir())):
        if all((cand / c / "train").is_dir() for c in LOCO_CATEGORIES):
            return cand
    return None


def download_mvtec_loco(root: str | Path, *, url: str = LOCO_URL,
                        sha256: str | None = LOCO_SHA256, keep_archive: bool = False,
                        progress: bool = True) -> Path:
    """Download, verify and extract MVTec LOCO AD into ``root``; return the dataset root.

    Skips everything when ``root`` already holds the 5 categories. The MVTec LOCO AD
    licence (CC BY-NC-SA 4.0) applies to the data.
    """
    return _download_archive(Path(root).expanduser(), dataset="mvtec_loco",
                             title="MVTec LOCO AD",
                             archive_name="mvtec_loco_anomaly_detection.tar.xz", url=url,
                             sha256=sha256, find=find_loco_root, n=5, page=LOCO_PAGE,
                             keep_archive=keep_archive, progress=progress)


def bmad_instructions(root: str | Path = "data/bmad") -> str:
    """How to obtain the BMAD medical sets (Brain MRI, Liver CT, Retinal OCT/RESC)."""
    return f"""BMAD (Brain MRI, Liver CT, Retinal OCT) cannot be fetched from the official source
without a browser: Google Drive asks for confirmation on large files.

Option 1 - official copy (Google Drive, the BMAD authors):
  1. Open {BMAD_DRIVE}
  2. Download the Brain, Liver and RESC archives and unzip them into {root}/
  3. Check: python -m multiad.data.check --kind brain --root {root}
            (and --kind liver, --kind retina)

Option 2 - Hugging Face mirror used by anomalib (code-dev05/BMAD, all six BMAD sets in one
zip; its SHA-256 as pinned by anomalib is {BMAD_HF_SHA256}):
  python -m multiad.data.download bmad --root {root}
  or by hand: curl -L -C - -o bmad.zip {BMAD_HF_URL}
              unzip bmad.zip -d {root}

Every layout in circulation is accepted (BMAD README, BMAD scripts, the Liver and RESC
script layouts, and the MVFA repackaging with Brain_AD/, Liver_AD/, Retina_RESC_AD/); point
--root at the set's folder or any parent of it. The data is CC BY-NC-SA 4.0."""


def download_bmad(root: str | Path, *, url: str = BMAD_HF_URL,
                  sha256: str | None = BMAD_HF_SHA256, keep_archive: bool = False,
                  progress: bool = True) -> Path:
    """Fetch the BMAD zip from the Hugging Face mirror and extract it into ``root``."""
    root = Path(root).expanduser()
    archive = download_file(url, root / "bmad.zip", sha256=sha256, progress=progress)
    safe_extract(archive, root)
    write_json(root / MARKER, {"dataset": "bmad", "url": url, "sha256": sha256})
    if not keep_archive:
        archive.unlink()
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``mvtec`` / ``mvtec_loco`` / ``bmad`` / ``bmad-instructions``."""
    parser = argparse.ArgumentParser(prog="python -m multiad.data.download",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=("mvtec", "mvtec_loco", "bmad", "bmad-instructions"))
    parser.add_argument("--root", default=None, help="target folder")
    parser.add_argument("--keep-archive", action="store_true")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the SHA-256 check (if the source was re-packed)")
    args = parser.parse_args(argv)
    try:
        if args.dataset == "bmad-instructions":
            print(bmad_instructions(args.root or "data/bmad"))
        elif args.dataset == "mvtec":
            kwargs = {"sha256": None} if args.no_verify else {}
            path = download_mvtec(args.root or "data/mvtec", keep_archive=args.keep_archive,
                                  **kwargs)
            print(f"MVTec AD ready at {path}")
        elif args.dataset == "mvtec_loco":
            kwargs = {"sha256": None} if args.no_verify else {}
            path = download_mvtec_loco(args.root or "data/mvtec_loco",
                                       keep_archive=args.keep_archive, **kwargs)
            print(f"MVTec LOCO AD ready at {path}")
        else:
            kwargs = {"sha256": None} if args.no_verify else {}
            path = download_bmad(args.root or "data/bmad", keep_archive=args.keep_archive,
                                 **kwargs)
            print(f"BMAD extracted into {path}")
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.dataset == "bmad":
            print(bmad_instructions(args.root or "data/bmad"), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

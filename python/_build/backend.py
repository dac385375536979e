"""A minimal in-tree PEP 517 build backend: it writes the wheel with the standard library only, so
building needs no network and no build dependency (pip's isolated build environment stays empty).

Run as a script to build a platform wheel that carries the rfenv binary (what `make wheels` does):

    python3 python/_build/backend.py --out dist --binary bin/rfenv --plat manylinux2014_x86_64
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile
from typing import Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("rfenv", "rayfine_env")


def _project() -> Dict[str, str]:
    text = open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8").read()
    section = text.split("[project]", 1)[1]
    out = {}
    for key in ("name", "version", "description", "requires-python"):
        m = re.search(r'^%s\s*=\s*"([^"]*)"' % re.escape(key), section, re.M)
        if m:
            out[key] = m.group(1)
    return out


def _metadata() -> str:
    p = _project()
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    return ("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: %s\nRequires-Python: %s\n"
            "Classifier: Typing :: Typed\nDescription-Content-Type: text/markdown\n\n%s"
            % (p["name"], p["version"], p["description"], p["requires-python"], readme))


def _files() -> List[Tuple[str, str]]:
    """(path in the wheel, path on disk) of the packages' sources and markers."""
    out = []
    for pkg in PACKAGES:
        base = os.path.join(ROOT, pkg)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if d != "__pycache__" and d != "bin"]
            for f in sorted(filenames):
                if f.endswith(".py") or f == "py.typed":
                    full = os.path.join(dirpath, f)
                    out.append((os.path.relpath(full, ROOT).replace(os.sep, "/"), full))
    return out


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (path, digest, len(data))


def _write_wheel(out_dir: str, binary: Optional[str] = None, plat: str = "any") -> str:
    p = _project()
    name, version = p["name"], p["version"]
    tag = "py3-none-%s" % plat
    wheel_name = "%s-%s-%s.whl" % (name, version, tag)
    dist_info = "%s-%s.dist-info" % (name, version)
    records = []
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, wheel_name)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        def add(arcname: str, data: bytes, mode: int = 0o644) -> None:
            info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
            records.append(_record_line(arcname, data))

        for arc, full in _files():
            with open(full, "rb") as f:
                add(arc, f.read())
        if binary:
            with open(binary, "rb") as f:
                add("rfenv/bin/rfenv", f.read(), 0o755)
        add(dist_info + "/METADATA", _metadata().encode())
        purelib = "false" if binary else "true"
        add(dist_info + "/WHEEL", ("Wheel-Version: 1.0\nGenerator: rfenv-backend\nRoot-Is-Purelib: %s\nTag: %s\n"
                                   % (purelib, tag)).encode())
        add(dist_info + "/top_level.txt", ("\n".join(PACKAGES) + "\n").encode())
        record = dist_info + "/RECORD"
        z.writestr(zipfile.ZipInfo(record, date_time=(2020, 1, 1, 0, 0, 0)),
                   "\n".join(records + [record + ",,"]) + "\n")
    return wheel_name


# --- PEP 517 hooks ------------------------------------------------------------------------------

def get_requires_for_build_wheel(config_settings=None):  # type: ignore[no-untyped-def]
    return []


def get_requires_for_build_sdist(config_settings=None):  # type: ignore[no-untyped-def]
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):  # type: ignore[no-untyped-def]
    """A pure wheel; with RFENV_WHEEL_BINARY and RFENV_WHEEL_PLAT set, a platform wheel carrying it."""
    binary = os.environ.get("RFENV_WHEEL_BINARY") or None
    plat = os.environ.get("RFENV_WHEEL_PLAT") or "any"
    return _write_wheel(wheel_directory, binary, plat)


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):  # type: ignore[no-untyped-def]
    p = _project()
    d = os.path.join(metadata_directory, "%s-%s.dist-info" % (p["name"], p["version"]))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "METADATA"), "w", encoding="utf-8") as f:
        f.write(_metadata())
    return os.path.basename(d)


def build_sdist(sdist_directory, config_settings=None):  # type: ignore[no-untyped-def]
    p = _project()
    base = "%s-%s" % (p["name"], p["version"])
    path = os.path.join(sdist_directory, base + ".tar.gz")
    with tarfile.open(path, "w:gz") as t:
        for rel in ["pyproject.toml", "README.md", "_build/backend.py"] + [a for a, _ in _files()]:
            t.add(os.path.join(ROOT, rel), arcname=base + "/" + rel)
        info = tarfile.TarInfo(base + "/PKG-INFO")
        data = _metadata().encode()
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return os.path.basename(path)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="build an rfenv wheel")
    ap.add_argument("--out", required=True)
    ap.add_argument("--binary", help="the rfenv binary to carry (a platform wheel)")
    ap.add_argument("--plat", default="any", help="platform tag, e.g. manylinux2014_x86_64")
    a = ap.parse_args()
    print(os.path.join(a.out, _write_wheel(a.out, a.binary, a.plat)))

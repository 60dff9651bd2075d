"""The manifest: every model file the product needs, and the named groups of files models need.

``weights/manifest.json`` names each file (:class:`WeightSpec`): where it lives inside the cache
directory, its download URLs (mirrors, tried in order), its size and digests when known, and its
license. Named *groups* collect what one model needs (``musicgen-stereo-chord``, ``remix-default``).
:meth:`Manifest.resolve` turns file and group names into files; :mod:`remixer.weights.store` turns
a file into a verified local path.
"""
from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["WeightSpec", "Manifest", "UnknownWeightError", "DEFAULT_MANIFEST", "format_bytes"]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MANIFEST = REPO_ROOT / "weights" / "manifest.json"

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")
_HEX_RE = re.compile(r"[0-9a-f]+")


class UnknownWeightError(KeyError):
    """A name that is neither a file nor a group of the manifest."""

    def __str__(self) -> str:
        # KeyError would print the repr of the message, quotes and escaped newlines included.
        return str(self.args[0])


def format_bytes(size: int) -> str:
    """``84141911`` -> ``"84.1 MB"`` (decimal units, as the hosts show them)."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


@dataclass(frozen=True)
class WeightSpec:
    """One model file of the manifest.

    Attributes
    ----------
    name : str
        Stable identifier, e.g. ``"btc-model-large-voca"``.
    path : str
        POSIX path relative to the cache directory.
    urls : tuple of str
        Download URLs, tried in order (mirrors of the same bytes).
    license : str
        SPDX-style license of the weights.
    description : str
        What the file is and who reads it.
    size : int or None
        Exact size in bytes, when known.
    sha256 : str or None
        Full SHA-256 (lowercase hex), when known.
    sha256_prefix : str or None
        Leading hex digits of the SHA-256 when only those are published (torch hub file names).
    git_blob_sha1 : str or None
        Git blob id, ``sha1(b"blob <size>\\0" + content)``, for files published in git repos.
    approx_size : int or None
        About how many bytes the file has, when only an estimate is known (shown, never checked).
    size_source : str or None
        Where ``size`` or ``approx_size`` comes from, or why no size is known.
    """

    name: str
    path: str
    urls: tuple[str, ...]
    license: str
    description: str
    size: int | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None
    git_blob_sha1: str | None = None
    approx_size: int | None = None
    size_source: str | None = None

    @property
    def has_digest(self) -> bool:
        """Whether the manifest pins the content (not only the size) of this file."""
        return any((self.sha256, self.sha256_prefix, self.git_blob_sha1))

    @property
    def expected_size(self) -> int | None:
        """Bytes to expect: the exact size, else the estimate, else None (unknown)."""
        return self.size if self.size is not None else self.approx_size

    @property
    def size_text(self) -> str:
        """``"84.1 MB"``, ``"~12.2 MB"`` for an estimate, ``"unknown"``."""
        if self.size is not None:
            return format_bytes(self.size)
        return "unknown" if self.approx_size is None else "~" + format_bytes(self.approx_size)

    @classmethod
    def from_json(cls, entry: Any, source: str) -> WeightSpec:
        """Build a spec from one manifest entry, rejecting anything malformed with a ValueError."""
        if not isinstance(entry, dict):
            raise ValueError(f"{source}: every entry of 'files' must be an object, got {entry!r}")
        where = f"{source}: entry {entry.get('name', '?')!r}"
        unknown = set(entry) - {f.name for f in cls.__dataclass_fields__.values()}
        if unknown:
            raise ValueError(f"{where} has unknown keys {sorted(unknown)}")
        for key in ("name", "path", "license", "description"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise ValueError(f"{where} needs a non-empty string '{key}'")
        if not _NAME_RE.fullmatch(entry["name"]):
            raise ValueError(f"{where}: names use lowercase letters, digits, '.', '_' and '-'")
        rel = PurePosixPath(entry["path"])
        if rel.is_absolute() or ".." in rel.parts or "\\" in entry["path"]:
            raise ValueError(f"{where}: path {entry['path']!r} must be relative, without '..'")
        urls = entry.get("urls")
        if (not isinstance(urls, list) or not urls
                or not all(isinstance(u, str) and u.startswith(("https://", "http://")) for u in urls)):
            raise ValueError(f"{where} needs 'urls', a non-empty list of http(s) URLs")
        for key in ("size", "approx_size"):
            size = entry.get(key)
            if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
                raise ValueError(f"{where}: {key} must be a positive integer or null, got {size!r}")
        if entry.get("size") is not None and entry.get("approx_size") is not None:
            raise ValueError(f"{where}: give size (exact) or approx_size (an estimate), not both")
        if entry.get("size_source") is not None and not isinstance(entry["size_source"], str):
            raise ValueError(f"{where}: size_source must be text or null")
        for key, length in (("sha256", 64), ("sha256_prefix", None), ("git_blob_sha1", 40)):
            value = entry.get(key)
            if value is None:
                continue
            if (not isinstance(value, str) or not _HEX_RE.fullmatch(value)
                    or (length is not None and len(value) != length) or len(value) > 64):
                need = f"{length} lowercase hex digits" if length else "1 to 64 lowercase hex digits"
                raise ValueError(f"{where}: {key} must be {need} or null, got {value!r}")
        return cls(name=entry["name"], path=entry["path"], urls=tuple(urls), license=entry["license"],
                   description=entry["description"], size=entry.get("size"), sha256=entry.get("sha256"),
                   sha256_prefix=entry.get("sha256_prefix"), git_blob_sha1=entry.get("git_blob_sha1"),
                   approx_size=entry.get("approx_size"), size_source=entry.get("size_source"))


@dataclass(frozen=True)
class Manifest:
    """Every weight file of the product and the named groups of files that models need.

    A group may share its name with a file it contains (``musicgen-chord`` is both the LM file
    and everything that model needs); where a name could mean either, as on the command line,
    the group wins, which always includes the file.
    """

    files: tuple[WeightSpec, ...]
    groups: Mapping[str, tuple[str, ...]]
    group_descriptions: Mapping[str, str] = field(default_factory=dict)
    source: str = "<manifest>"

    def __post_init__(self) -> None:
        names = [spec.name for spec in self.files]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"{self.source}: duplicate file names {dupes}")
        paths = [spec.path for spec in self.files]
        dupes = sorted({p for p in paths if paths.count(p) > 1})
        if dupes:
            raise ValueError(f"{self.source}: several entries share the paths {dupes}")
        for group, members in self.groups.items():
            if not _NAME_RE.fullmatch(group):
                raise ValueError(f"{self.source}: bad group name {group!r}")
            missing = [m for m in members if m not in names]
            if missing or not members:
                raise ValueError(f"{self.source}: group {group!r} lists unknown files {missing}"
                                 if missing else f"{self.source}: group {group!r} is empty")
            if group in names and group not in members:
                raise ValueError(f"{self.source}: group {group!r} has a file's name but does not "
                                 "contain that file")

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Manifest:
        """Read a manifest file (default ``$REMIXER_WEIGHTS_MANIFEST``, else ``<repo>/weights/manifest.json``).

        The variable lets an image or a test serve other files (e.g. the tiny smoke-test weights,
        whose digests differ from the published ones) without editing the product's manifest.

        Raises
        ------
        ValueError
            If the file is missing, is not JSON, or any entry or group is malformed.
        """
        if path is None:
            path = os.environ.get("REMIXER_WEIGHTS_MANIFEST") or DEFAULT_MANIFEST
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"weights manifest {path} does not exist") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"weights manifest {path} is not valid JSON: {exc}") from None
        return cls.from_json(data, str(path))

    @classmethod
    def from_json(cls, data: Any, source: str = "<manifest>") -> Manifest:
        """Build a manifest from its parsed JSON: ``{"files": [...], "groups": {...}}``."""
        if not isinstance(data, dict) or not isinstance(data.get("files"), list):
            raise ValueError(f"{source}: a manifest is an object with a 'files' list")
        groups_json = data.get("groups", {})
        if not isinstance(groups_json, dict):
            raise ValueError(f"{source}: 'groups' must be an object")
        groups: dict[str, tuple[str, ...]] = {}
        descriptions: dict[str, str] = {}
        for name, group in groups_json.items():
            if not isinstance(group, dict) or not isinstance(group.get("files"), list):
                raise ValueError(f"{source}: group {name!r} must be an object with a 'files' list")
            groups[name] = tuple(group["files"])
            descriptions[name] = str(group.get("description", ""))
        files = tuple(WeightSpec.from_json(entry, source) for entry in data["files"])
        return cls(files=files, groups=groups, group_descriptions=descriptions, source=source)

    @property
    def names(self) -> list[str]:
        """File names in manifest order."""
        return [spec.name for spec in self.files]

    def get(self, name: str) -> WeightSpec:
        """The file called ``name``; :class:`UnknownWeightError` (a KeyError) lists valid names."""
        for spec in self.files:
            if spec.name == name:
                return spec
        raise self._unknown(name, "file")

    def group(self, name: str) -> list[WeightSpec]:
        """The files of group ``name``, in the group's order."""
        if name not in self.groups:
            raise self._unknown(name, "group")
        return [self.get(member) for member in self.groups[name]]

    def resolve(self, names: Iterable[str]) -> list[WeightSpec]:
        """Expand group and file names into unique files, first mention first."""
        out: dict[str, WeightSpec] = {}
        for name in names:
            if name in self.groups:
                specs = self.group(name)
            elif name in self.names:
                specs = [self.get(name)]
            else:
                raise self._unknown(name, "file or group")
            out.update((spec.name, spec) for spec in specs if spec.name not in out)
        return list(out.values())

    def cover(self, names: Iterable[str]) -> list[str]:
        """The fewest group and file names that mean exactly the files ``names``: whole groups
        first, the largest first, then the files left (for a fetch command a person can read)."""
        left = [name for name in self.names if name in set(names)]
        chosen = []
        for group, members in sorted(self.groups.items(), key=lambda item: -len(set(item[1]))):
            if len(set(members)) > 1 and set(members) <= set(left):
                chosen.append(group)
                left = [name for name in left if name not in members]
        return chosen + left

    def _unknown(self, name: str, kind: str) -> UnknownWeightError:
        pool = {"file": self.names, "group": list(self.groups)}.get(kind, [*self.groups, *self.names])
        close = difflib.get_close_matches(name, pool, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        return UnknownWeightError(
            f"unknown weight {kind} {name!r} in {self.source}.{hint}\n"
            f"files: {', '.join(self.names)}\ngroups: {', '.join(self.groups)}")


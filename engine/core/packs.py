"""Rule packs: a treaty as a folder of data under rules/ (its rules, registry, wording and cases).

A pack is a folder of rules/ that holds a ``pack.toml`` manifest. Its layout:

    rules/<name>/pack.toml       the manifest: name, rule files, obligations
    rules/<name>/*.toml          the rule files the manifest lists
    rules/<name>/wording.toml    meeting names, citation style, treaty-specific messages
    rules/<name>/registry/       the dated facts (treaty.toml and CSV files)
    rules/<name>/cases.csv       published cases the tests check the pack against

The engine finds packs by looking, never by a list in code: a second treaty is a second folder.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

MANIFEST = "pack.toml"
WORDING = "wording.toml"
CASES = "cases.csv"
REGISTRY = "registry"
#: Files of a pack folder that are not rule files.
NOT_RULES = frozenset({MANIFEST, WORDING})
DEFAULT = ("ccm",)


class PackError(ValueError):
    """A pack named in the settings does not exist, or a pack folder is malformed; one sentence."""


@dataclass(frozen=True)
class Pack:
    """One rule pack: its name and folder; the paths of its parts."""

    name: str
    directory: Path

    @property
    def registry(self) -> Path:
        return self.directory / REGISTRY

    @property
    def wording_file(self) -> Path:
        return self.directory / WORDING

    @property
    def cases(self) -> Path:
        return self.directory / CASES


def root() -> Path:
    """The packaged rules/ folder the packs are found in."""
    return Path(str(resources.files("rules")))


def discover(where: Path | None = None) -> dict[str, Pack]:
    """Every pack under ``where`` (rules/ by default): folders holding a pack.toml, by name."""
    base = Path(where) if where is not None else root()
    found = {}
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and (p / MANIFEST).is_file()):
        found[folder.name] = Pack(folder.name, folder)
    return found


def find(name: str, where: Path | None = None) -> Pack:
    """The pack called ``name``; raises :class:`PackError` naming the packs that exist."""
    packs = discover(where)
    if name in packs:
        _check_name(packs[name])
        return packs[name]
    base = Path(where) if where is not None else root()
    existing = ", ".join(packs) or "none"
    raise PackError(f"unknown rule pack {name!r}: no folder {name}/ with a {MANIFEST} under {base.name}/; "
                    f"the packs there are: {existing}")


def select(names: tuple[str, ...] | list[str], where: Path | None = None) -> tuple[Pack, ...]:
    """The packs ``[engine] pack`` names, in its order; raises :class:`PackError` on an unknown or repeated name."""
    if not names:
        raise PackError("[engine] pack is empty; name at least one rule pack, e.g. pack = [\"ccm\"]")
    repeated = sorted({n for n in names if list(names).count(n) > 1})
    if repeated:
        raise PackError(f"[engine] pack names {', '.join(repeated)} more than once")
    return tuple(find(name, where) for name in names)


def single(names: tuple[str, ...] | list[str], where: Path | None = None) -> Pack:
    """The first pack ``[engine] pack`` selects: the primary one, whose registry answers where one
    surface serves one treaty (``ccm parties``, the as-of range)."""
    return select(names, where)[0]


def pack_of(obligation_id: str) -> str:
    """The pack an obligation belongs to: ids are ``<pack>.<article>.<role>``."""
    return obligation_id.split(".", 1)[0]


def unselected_owner(obligation_id: str, selected: tuple[str, ...] | list[str]) -> str | None:
    """The pack an obligation id names when it is an existing pack outside ``selected`` (``ccm explain
    PARTY <pack>.<article>.<role>`` with the default selection): the id says which treaty is meant,
    as ``--treaty`` would. None for a selected pack, a title, or a name no folder carries."""
    name = pack_of(obligation_id)
    if "." not in obligation_id or name in selected:
        return None
    return name if name in discover() else None


def _check_name(pack: Pack) -> None:
    """The manifest's name must be the folder's: obligation ids and settings use it."""
    try:
        declared = tomllib.loads((pack.directory / MANIFEST).read_text(encoding="utf-8")).get("pack", {}).get("name")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise PackError(f"{pack.name}/{MANIFEST}: not valid TOML: {error}") from None
    if declared != pack.name:
        raise PackError(f"{pack.name}/{MANIFEST}: [pack] name is {declared!r}; it must be the folder's name {pack.name!r}")

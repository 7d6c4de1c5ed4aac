"""Aliases for class names, used by ``GroundTruthMatch(mode="synonyms")`` and
``FailureAttribution``.

Each map sends an alias to the class name it stands for. Both sides are normalised (case,
whitespace, punctuation, articles) before use, so ``"TV-monitor"`` and ``"tvmonitor"`` need no
entry of their own beyond their normalised forms.

* :data:`COCO_ALIASES` - the PASCAL VOC spellings of COCO classes and everyday words for them.
* :data:`IMAGENET_ALIASES` - WordNet synonyms of familiar ImageNet-1k classes (torchvision
  names each class by its first synonym only: ``tabby`` for "tabby, tabby cat").

These are curated lists, not the full WordNet; pass ``synonyms={...}`` for your own classes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    import duckdb

COCO_ALIASES: dict[str, str] = {
    "aeroplane": "airplane",
    "plane": "airplane",
    "motorbike": "motorcycle",
    "sofa": "couch",
    "tvmonitor": "tv",
    "tv monitor": "tv",
    "television": "tv",
    "diningtable": "dining table",
    "pottedplant": "potted plant",
    "houseplant": "potted plant",
    "mobile phone": "cell phone",
    "cellphone": "cell phone",
    "phone": "cell phone",
    "hair dryer": "hair drier",
    "ball": "sports ball",
    "people": "person",
    "man": "person",
    "woman": "person",
    "child": "person",
    "pedestrian": "person",
    "bike": "bicycle",
    "automobile": "car",
    "fire plug": "fire hydrant",
    "hydrant": "fire hydrant",
    "donut": "doughnut",
    "hotdog": "hot dog",
    "purse": "handbag",
    "monitor": "tv",
    "notebook": "laptop",
    "fridge": "refrigerator",
    "teddy": "teddy bear",
    "puppy": "dog",
    "kitten": "cat",
    "kitty": "cat",
    "ship": "boat",
}
"""COCO class names by alias (VOC spellings and common words)."""

IMAGENET_ALIASES: dict[str, str] = {
    "tabby cat": "tabby",
    "tinca tinca": "tench",
    "carassius auratus": "goldfish",
    "great white": "great white shark",
    "white shark": "great white shark",
    "man eater": "great white shark",
    "carcharodon carcharias": "great white shark",
    "rooster": "cock",
    "struthio camelus": "ostrich",
    "siamese": "Siamese cat",
    "persian": "Persian cat",
    "golden": "golden retriever",
    "labrador": "Labrador retriever",
    "lab": "Labrador retriever",
    "german shepherd dog": "German shepherd",
    "alsatian": "German shepherd",
    "police dog": "German shepherd",
    "husky": "Siberian husky",
    "panthera tigris": "tiger",
    "king of beasts": "lion",
    "panthera leo": "lion",
    "panda": "giant panda",
    "panda bear": "giant panda",
    "coon bear": "giant panda",
    "ailuropoda melanoleuca": "giant panda",
    "loxodonta africana": "African elephant",
    "tree toad": "tree frog",
    "rana catesbeiana": "bullfrog",
    "sport car": "sports car",
    "fire truck": "fire engine",
    "containership": "container ship",
    "container vessel": "container ship",
    "all terrain bike": "mountain bike",
    "off roader": "mountain bike",
    "cellular phone": "cellular telephone",
    "mobile phone": "cellular telephone",
    "laptop computer": "laptop",
    "notebook computer": "notebook",
    "television system": "television",
    "television receiver": "television",
    "pizza pie": "pizza",
}
"""ImageNet-1k class names (torchvision spelling) by WordNet synonym."""


def resolve_alias_chains(aliases: Mapping[str, str]) -> dict[str, str]:
    """Each alias sent to the end of its chain: the tables disagree on which name is the class
    (ImageNet's ``television receiver`` -> ``television``, COCO's ``television`` -> ``tv``),
    and an alias whose class is itself an alias must read as that alias reads, or
    ``television receiver`` and ``television`` would differ. A cycle ends at its smallest
    name. Every alias then maps to a name that is no alias of another (the map is
    idempotent)."""
    resolved: dict[str, str] = {}
    for alias in aliases:
        path: list[str] = []
        name = alias
        while name in aliases and name not in path and name not in resolved:
            path.append(name)
            name = aliases[name]
        if name in resolved:
            end = resolved[name]
        elif name in path:  # a cycle: from name round to the end of the path
            end = min(path[path.index(name):])
        else:
            end = name
        for step in path:
            resolved[step] = end
    return {alias: end for alias, end in resolved.items() if alias != end}


def alias_map(entries: Iterable[tuple[str, str, int]]) -> dict[str, str]:
    """The one alias lookup from ``(alias, canonical, priority)`` entries, both names already
    normalised: priority 0 is the user's ``synonyms``, 1, 2, ... the built-in tables in the
    order given. An alias takes the canonical of its smallest priority (the user's map
    overrides the tables). Where two built-in tables send one alias to different names
    (``mobile phone``: ImageNet's ``cellular telephone``, COCO's ``cell phone``), those names
    are one class: the later table's name becomes an alias of the earlier's. Chains then
    resolve (:func:`resolve_alias_chains`)."""
    targets: dict[str, list[tuple[int, str]]] = {}
    for alias, canonical, priority in entries:
        if alias and canonical:
            targets.setdefault(alias, []).append((priority, canonical))
    chosen = {alias: min(found)[1] for alias, found in targets.items()}
    for found in targets.values():
        built_in = sorted({(p, c) for p, c in found if p > 0})
        for _, other in built_in[1:]:
            if other != built_in[0][1] and other not in targets:
                chosen.setdefault(other, built_in[0][1])
    return resolve_alias_chains(chosen)


BUILTIN_ALIASES: dict[str, Mapping[str, str]] = {
    "imagenet": IMAGENET_ALIASES,
    "coco": COCO_ALIASES,
}
"""The built-in alias tables by the name an evaluator's ``aliases=`` option gives."""


def create_alias_table(con: duckdb.DuckDBPyConnection, table: str, *,
                       synonyms: Mapping[str, str], tables: Sequence[str], normalise: str,
                       alias_column: str) -> None:
    """The temporary table ``table`` (``alias_column``, ``canonical``): :func:`alias_map` of
    the user's ``synonyms`` and the :data:`BUILTIN_ALIASES` named in ``tables``, in that
    order, both names of every entry put through the SQL macro ``normalise`` first (the
    evaluators read the lookup in their own normal form)."""
    rows = [(alias, canonical, 0) for alias, canonical in synonyms.items()]
    for priority, name in enumerate(tables, start=1):
        rows += [(alias, canonical, priority)
                 for alias, canonical in BUILTIN_ALIASES[name].items()]
    raw = pa.table({"alias": [r[0] for r in rows], "canonical": [r[1] for r in rows],
                    "priority": [r[2] for r in rows]},
                   schema=pa.schema([("alias", pa.string()), ("canonical", pa.string()),
                                     ("priority", pa.int32())]))
    con.register(f"{table}_raw", raw)
    try:
        entries = con.execute(f"SELECT {normalise}(alias), {normalise}(canonical), priority "
                              f"FROM {table}_raw").fetchall()
    finally:
        con.unregister(f"{table}_raw")
    resolved = alias_map(entries)
    con.register(f"{table}_resolved", pa.table(
        {alias_column: list(resolved), "canonical": list(resolved.values())},
        schema=pa.schema([(alias_column, pa.string()), ("canonical", pa.string())])))
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {table}_resolved")
    finally:
        con.unregister(f"{table}_resolved")

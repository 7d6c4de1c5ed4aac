"""Dependencies point one way: no module imports from a layer above its own or takes another
module's private names (issue 25, part 2).

The layers, lowest first. A module may import from its own layer and from the layers its
layer lists under ``may import``; nothing else.

==============  ==========================================================  ===============
layer           what it holds                                               may import
==============  ==========================================================  ===============
foundation      attribute names (``conventions``), settings, optional-      --
                dependency checks, image hashing, label lists, progress,
                valid Unicode text
store           the store's shape and the way into it: the spec, schema,    foundation
                frozen migrations, materialised facts, the conversion of a
                span into the store's columns, the writer, spool and
                read-only queries
collectors      how spans reach the store and leave it: the span            store,
                processor and exporter, the OTLP receiver and decoder,      foundation
                ingest, OTLP import/export and replay, Parquet shards,
                data frames
sdk API         what runs inside agent code: ``configure``, rows,           collectors,
                encoder and LLM spans, instrumentations, training checks    store,
                                                                            foundation
evaluators      scoring over the store (they read ``pipeline_rows``)        store,
                                                                            foundation
library         what sits on top: datasets, cohorts, the regression diff,   all above
                the report, the demo, Ray, checkpoint pinning, and the
                package root ``vlmscope`` (the public surface)
cli             the ``vlmscope`` command                                    everything
==============  ==========================================================  ===============

Modules are placed by dotted-name prefix (the longest wins), so a module added later, or
split out of another (``store`` into ``store_cache``, ``_store_reader`` or a ``store/``
package), lands in its parent's layer without an edit here; a module no prefix covers fails
the test until it is placed. Private names (``_name``) of another module are never imported
or read as attributes; private *modules* (``pkg._impl``) are for their own package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import extension_modules, imports_of, package_modules, parse_python

FOUNDATION, STORE, COLLECTORS, SDK_API, EVALUATORS, LIBRARY, CLI = (
    "foundation", "store", "collectors", "sdk API", "evaluators", "library", "cli")

LAYERS: dict[str, tuple[str, ...]] = {
    FOUNDATION: ("vlmscope.conventions", "vlmscope.settings", "vlmscope._optional",
                 "vlmscope._version", "vlmscope.images", "vlmscope.labels",
                 "vlmscope.progress", "vlmscope.unicode_text"),
    STORE: ("vlmscope.collectors.spec", "vlmscope.collectors.schema",
            "vlmscope.collectors.migrations", "vlmscope.collectors.facts",
            "vlmscope.collectors.annotations", "vlmscope.collectors.convert",
            "vlmscope.collectors.normalize", "vlmscope.collectors._spans_native",
            "vlmscope.collectors.store", "vlmscope.collectors.spool",
            "vlmscope.collectors.query", "vlmscope.collectors._assembly",
            "vlmscope.collectors._assembly_native",
            "vlmscope.collectors._merge", "vlmscope.collectors._recent_spans",
            "vlmscope.collectors._store_files", "vlmscope.collectors.handover"),
    COLLECTORS: ("vlmscope.collectors",),
    SDK_API: ("vlmscope.tracing", "vlmscope.rows", "vlmscope.encoder", "vlmscope.llm",
              "vlmscope.generator", "vlmscope.torch_encoder", "vlmscope.encoder_families",
              "vlmscope.training"),
    EVALUATORS: ("vlmscope.evaluators",),
    LIBRARY: ("vlmscope.dataset", "vlmscope.cohorts", "vlmscope.regression",
              "vlmscope.report", "vlmscope.demo", "vlmscope.distributed",
              "vlmscope.pinning"),
    CLI: ("vlmscope.cli", "vlmscope.__main__"),
}
"""Which modules make up each layer, by dotted-name prefix."""

ROOT_PACKAGE = "vlmscope"
"""The package root (only the module itself, not everything under it): the public surface,
in the library layer."""

MAY_IMPORT: dict[str, set[str]] = {
    FOUNDATION: set(),
    STORE: {FOUNDATION},
    COLLECTORS: {STORE, FOUNDATION},
    SDK_API: {COLLECTORS, STORE, FOUNDATION},
    EVALUATORS: {STORE, FOUNDATION},
    LIBRARY: {SDK_API, EVALUATORS, COLLECTORS, STORE, FOUNDATION},
    CLI: {LIBRARY, SDK_API, EVALUATORS, COLLECTORS, STORE, FOUNDATION},
}
"""The layers each layer may import from, besides its own."""


def _covers(prefix: str, module: str) -> bool:
    """``prefix`` covers ``module`` itself, its submodules and the modules split out of it
    (``a.store`` covers ``a.store.x``, ``a.store_cache`` and ``a._store_reader``)."""
    if module == prefix or module.startswith(prefix + "."):
        return True
    parent, _, last = prefix.rpartition(".")
    head, _, tail = module.partition(parent + ".") if parent else ("", "", module)
    if head:
        return False
    first = tail.split(".")[0].lstrip("_")
    return first.startswith(last.lstrip("_") + "_")


def layer_of(module: str) -> str | None:
    """The layer ``module`` belongs to, or None when no prefix covers it."""
    if module == ROOT_PACKAGE:
        return LIBRARY
    best: tuple[int, str] | None = None
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if _covers(prefix, module) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), layer)
    return best[1] if best else None


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _may_use_private_module(importer: str, module: str) -> bool:
    """A private module ``pkg._impl`` (or anything under it) is for modules inside ``pkg``."""
    parts = module.split(".")
    for index, part in enumerate(parts):
        if _private(part):
            package = ".".join(parts[:index])
            if not (importer == package or importer.startswith(package + ".")):
                return False
    return True


def _problems(modules: dict[str, Path]) -> list[str]:
    problems: list[str] = []
    known = set(modules) | extension_modules()
    for importer, path in sorted(modules.items()):
        own = layer_of(importer)
        if own is None:
            problems.append(f"{importer}: in no layer; add its prefix to LAYERS in "
                            f"{Path(__file__).name}")
            continue
        module_names: dict[str, str] = {}  # local name -> vlmscope module it is bound to
        for imported in imports_of(path, importer):
            if not imported.module.startswith(ROOT_PACKAGE + ".") and \
                    imported.module != ROOT_PACKAGE:
                continue
            submodule = f"{imported.module}.{imported.name}" if imported.name else None
            if submodule in known:
                target, taken = submodule, None
            else:
                target, taken = imported.module, imported.name
            where = f"{importer} (line {imported.line})"
            if target not in known:
                problems.append(f"{where}: imports {target}, which is no module of the package")
                continue
            layer = layer_of(target)
            if layer is not None and layer != own and layer not in MAY_IMPORT[own]:
                problems.append(f"{where}: {own} imports {target} from the {layer} layer")
            if not _may_use_private_module(importer, target):
                problems.append(f"{where}: imports the private module {target}")
            if taken is not None and _private(taken) and target != importer:
                problems.append(f"{where}: imports the private name {taken} of {target}")
            if taken is None and (imported.name or "." not in imported.module
                                  or imported.bound != imported.module.split(".")[0]):
                module_names[imported.bound] = target
        problems.extend(_private_attributes(importer, path, module_names))
    return list(dict.fromkeys(problems))


def _private_attributes(importer: str, path: Path, module_names: dict[str, str]
                        ) -> list[str]:
    """Private attributes read from imported vlmscope modules (``convert._pop_vectors``)."""
    found = []
    for node in ast.walk(parse_python(path.read_text())):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in module_names and _private(node.attr)
                and module_names[node.value.id] != importer):
            found.append(f"{importer} (line {node.lineno}): reads the private name "
                         f"{node.attr} of {module_names[node.value.id]}")
    return found


def test_no_module_imports_from_a_layer_above_or_takes_private_names() -> None:
    problems = _problems(package_modules())
    assert not problems, "\n".join(problems)


def test_every_layer_is_placed_and_may_import_only_lower_layers() -> None:
    """The map itself is one-way: no two layers may import each other, and every layer
    named in MAY_IMPORT is defined."""
    assert set(MAY_IMPORT) == set(LAYERS)
    for layer, allowed in MAY_IMPORT.items():
        assert allowed <= set(LAYERS), layer
        for other in allowed:
            assert layer not in MAY_IMPORT[other], (layer, other)


def test_the_check_finds_an_import_from_a_layer_above(tmp_path: Path) -> None:
    """A collectors module that imports the sdk API, and one that takes a private name, are
    reported (the check above is not vacuous)."""
    bad = tmp_path / "bad.py"
    bad.write_text("from vlmscope.tracing import DEFAULT_MAX_QUEUE_SIZE\n"
                   "from vlmscope.collectors.convert import _private_helper\n"
                   "from vlmscope.collectors import convert\n"
                   "convert._another\n")
    modules = {**package_modules(), "vlmscope.collectors.bad": bad}
    problems = [p for p in _problems(modules) if p.startswith("vlmscope.collectors.bad")]
    assert any("collectors imports vlmscope.tracing from the sdk API layer" in p
               for p in problems), problems
    assert any("private name _private_helper" in p for p in problems), problems
    assert any("private name _another" in p for p in problems), problems


def test_modules_split_out_of_another_stay_in_its_layer() -> None:
    assert layer_of("vlmscope.collectors.store") == STORE
    assert layer_of("vlmscope.collectors._store_reader") == STORE
    assert layer_of("vlmscope.collectors.store_cache") == STORE
    assert layer_of("vlmscope.collectors.facts.merge") == STORE
    assert layer_of("vlmscope.collectors.storey") == COLLECTORS
    assert layer_of("vlmscope.collectors._receiver_pool") == COLLECTORS
    assert layer_of("vlmscope.training._checks") == SDK_API
    assert layer_of("vlmscope") == LIBRARY
    assert layer_of("vlmscope.newthing") is None


def test_write_connection_still_answers_from_the_evaluators_with_a_warning() -> None:
    """It was re-exported by ``vlmscope.evaluators``; its home is the store."""
    import vlmscope.evaluators
    from vlmscope.collectors.store import write_connection

    with pytest.warns(DeprecationWarning, match="vlmscope.collectors.store"):
        from vlmscope.evaluators import write_connection as old
    assert old is write_connection
    assert "write_connection" not in vlmscope.evaluators.__all__

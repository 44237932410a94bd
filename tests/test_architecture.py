"""No import circle anywhere in nudge_app or experiments, down to single modules.

The layers and the purity of `experiments` are import-linter's contracts (pyproject.toml,
run by `.ci/run`); its `acyclic_siblings` contract sees circles between siblings only.
This test sees every one, a package's `__init__` and its own modules included. Names
imported only for annotations (under `if TYPE_CHECKING:`) are not dependencies.
"""

from __future__ import annotations

import grimp
import pytest

PACKAGES = ("nudge_app", "experiments")


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)


def circles(graph) -> list[str]:
    """Each circle once, as `a -> b -> ... -> a`, through the shortest way back."""
    found: dict[frozenset, str] = {}
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                found.setdefault(frozenset(back), " -> ".join((importer, *back)))
    return sorted(found.values())


def test_no_module_imports_itself_back(graph):
    assert circles(graph) == []


def test_a_circle_is_found():
    """The check itself: a circle added to a real graph is reported."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    graph.add_import(importer="nudge_app.db", imported="nudge_app.models")
    assert "nudge_app.db -> nudge_app.models -> nudge_app.db" in circles(graph)

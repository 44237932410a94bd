"""The analysis engine: effects per arm, heterogeneous effects, multiplicity, from a frame
of one row per randomized participant (or from per-cell sums). Estimators are chosen from
the trial's design through the registry (registry.py)."""

# The names below are loaded on first use (PEP 562), so that importing one light module of
# the package (experiments.analysis.srm, say, in the web app's monitoring) does not load
# the engine, pandas and scipy.stats with it.
_SOURCES = {
    "CellStats": "cells",
    "grouped_stats": "cells",
    "AnalysisResult": "engine",
    "analyze": "engine",
    "homogeneity_wald": "heterogeneity",
    "blocked_difference_in_means": "means",
    "difference_in_means": "means",
    "effects_from_cells": "means",
    "adjust": "multiplicity",
    "benjamini_hochberg": "multiplicity",
    "holm": "multiplicity",
    "choose": "registry",
    "estimators": "registry",
    "register": "registry",
    "Effect": "results",
    "Heterogeneity": "results",
    "Interaction": "results",
    "Slope": "results",
    "SubgroupEffect": "results",
    "AnalysisInputError": "trial",
    "Design": "trial",
    "Trial": "trial",
}

__all__ = sorted(_SOURCES)


def __getattr__(name: str):
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{_SOURCES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SOURCES))

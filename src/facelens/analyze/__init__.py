"""Facial analysis: expression (models by name), blendshapes/action units, age/gender, quality, temporal
aggregation and custom heads."""

import sys
import types

from facelens.analyze.api import ALL_HEADS, HEADS, Analyzer, analyze
from facelens.analyze.expression import (
    DEFAULT_EXPRESSION_MODEL,
    ExpressionModel,
    expression_model_names,
    get_expression_model,
)
from facelens.analyze.heads import CustomHead, HeadResult
from facelens.analyze.quality import Quality, assess_quality
from facelens.result import ImageResult
from facelens.analyze.temporal import Episode, Summary, episodes, smooth, summarize

__all__ = [
    "ALL_HEADS",
    "DEFAULT_EXPRESSION_MODEL",
    "HEADS",
    "ExpressionModel",
    "Analyzer",
    "CustomHead",
    "Episode",
    "HeadResult",
    "Quality",
    "Summary",
    "analyze",
    "assess_quality",
    "episodes",
    "expression_model_names",
    "get_expression_model",
    "smooth",
    "summarize",
]


class _CallableModule(types.ModuleType):
    """Makes ``facelens.analyze(source, ...)`` work while ``facelens.analyze`` stays this subpackage: a function
    of that name in ``facelens/__init__.py`` would be replaced by the subpackage as soon as it is imported."""

    def __call__(self, *args, **kwargs) -> ImageResult:
        return analyze(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

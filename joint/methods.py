"""The compared methods, each a short recipe: a search space and the phases run after the shared float warm-up."""
from __future__ import annotations

from dataclasses import dataclass

from .search import SearchSpace


@dataclass(frozen=True)
class Method:
    """`space` None means the float model itself; `search` False means fixed precision (fine-tune only)."""

    space: SearchSpace | None
    search: bool
    label: str

    @property
    def phases(self) -> tuple[str, ...]:
        if self.space is None:
            return ()
        return ("search", "finetune") if self.search else ("finetune",)


METHODS: dict[str, Method] = {
    "joint": Method(SearchSpace((0, 2, 4, 8), (8,), "channel"), True, "Joint (proposed)"),
    "mixprec": Method(SearchSpace((2, 4, 8), (8,), "channel"), True, "MixPrec"),
    "edmips": Method(SearchSpace((2, 4, 8), (8,), "layer"), True, "EdMIPS"),
    "w8a8": Method(SearchSpace((8,), (8,)), False, "w8a8"),
    "w4a8": Method(SearchSpace((4,), (8,)), False, "w4a8"),
    "w2a8": Method(SearchSpace((2,), (8,)), False, "w2a8"),
    "float": Method(None, False, "FP warm-up"),
}
FIXED = ("w8a8", "w4a8", "w2a8")
SEARCHED = ("joint", "mixprec", "edmips")


def get(name: str) -> Method:
    """The method `name`, or a one-line error listing the known ones."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; allowed: {', '.join(METHODS)}")
    return METHODS[name]

"""The compared methods, each a short recipe: a search space and the phases run after the shared float warm-up."""
from __future__ import annotations

from dataclasses import dataclass

from .search import SearchSpace


@dataclass(frozen=True)
class Method:
    """A search space (None: a float model) and the phases that follow the shared warm-up."""

    space: SearchSpace | None
    phases: tuple[str, ...]
    label: str
    seeded: bool = False  # starts from a PIT-pruned float model (the sequential baseline)

    @property
    def searches(self) -> bool:
        """Whether the method has a lambda (an architecture search phase)."""
        return "search" in self.phases or "pit_search" in self.phases


MIXPREC = SearchSpace((2, 4, 8), (8,), "channel")
METHODS: dict[str, Method] = {
    "joint": Method(SearchSpace((0, 2, 4, 8), (8,), "channel"), ("search", "finetune"), "Joint (proposed)"),
    "mixprec": Method(MIXPREC, ("search", "finetune"), "MixPrec"),
    "edmips": Method(SearchSpace((2, 4, 8), (8,), "layer"), ("search", "finetune"), "EdMIPS"),
    "w8a8": Method(SearchSpace((8,), (8,)), ("finetune",), "w8a8"),
    "w4a8": Method(SearchSpace((4,), (8,)), ("finetune",), "w4a8"),
    "w2a8": Method(SearchSpace((2,), (8,)), ("finetune",), "w2a8"),
    "float": Method(None, (), "FP warm-up"),
    "pit": Method(None, ("pit_search", "pit_finetune"), "PIT"),
    "sequential": Method(MIXPREC, ("search", "finetune"), "PIT + MixPrec", seeded=True),
}
FIXED = ("w8a8", "w4a8", "w2a8")
SEARCHED = ("joint", "mixprec", "edmips")


def get(name: str) -> Method:
    """The method `name`, or a one-line error listing the known ones."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; allowed: {', '.join(METHODS)}")
    return METHODS[name]

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
        """Whether the method has a lambda: something to choose (precisions, PIT masks) in its search phase."""
        if "pit_search" in self.phases:
            return True
        space = self.space
        return "search" in self.phases and (len(space.weight_bits) > 1 or len(space.act_bits) > 1)


MIXPREC = SearchSpace((2, 4, 8), (8,), "channel")
METHODS: dict[str, Method] = {
    "joint": Method(SearchSpace((0, 2, 4, 8), (8,), "channel"), ("search", "finetune"), "Joint (proposed)"),
    "mixprec": Method(MIXPREC, ("search", "finetune"), "MixPrec"),
    "edmips": Method(SearchSpace((2, 4, 8), (8,), "layer"), ("search", "finetune"), "EdMIPS"),
    # fixed precision: the searched runs' phases at lambda 0 (nothing to choose), so the same training budget
    "w8a8": Method(SearchSpace((8,), (8,)), ("search", "finetune"), "w8a8"),
    "w4a8": Method(SearchSpace((4,), (8,)), ("search", "finetune"), "w4a8"),
    "w2a8": Method(SearchSpace((2,), (8,)), ("search", "finetune"), "w2a8"),
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

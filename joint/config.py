"""RunConfig: what identifies one run (benchmark, method, lambda, cost model, profile, seed), validated on
construction and named by a stable key."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, replace

from . import cost as cost_models
from . import data as datasets
from . import methods
from .profiles import Profile, effective_variant, get_profile, search_overrides
from .search import SearchSpace


# cost models every quantized record measures at the run's own activation precisions (NE16 at 8 bits, where it can)
RECORDED_COSTS = ("size", "bitops", "mpic")


@dataclass(frozen=True)
class RunConfig:
    """One run = one Pareto point: a method on a benchmark, at one lambda and cost model, with one seed."""

    benchmark: str
    method: str
    lam: float = 0.0
    cost: str = "size"
    profile: str = "quick"
    seed: int = 0
    pit_lam: float | None = None  # sequential only: the PIT lambda of the pruned seed it starts from
    act_bits: tuple[int, ...] | None = None  # activation precisions; None: the cost model's target (searches)
    variant: str | None = None  # a change of the profile's search phase (profiles.SEARCH_VARIANTS); None: as is

    def __post_init__(self):
        if self.benchmark not in datasets.LOADERS:
            raise ValueError(f"unknown benchmark {self.benchmark!r}; allowed: {', '.join(sorted(datasets.LOADERS))}")
        method = methods.get(self.method)
        profiled_search = get_profile(self.profile, self.benchmark).search
        if self.variant is not None:
            search_overrides(self.variant)  # one line for a bad name
            if method.space is None:
                quantized = ", ".join(m for m, spec in methods.METHODS.items() if spec.space is not None)
                raise ValueError(f"variant must be None for method {self.method!r}, which has no quantized search; "
                                 f"a variant applies to {quantized}")
            # what changes nothing is dropped: such a run is the one without it
            object.__setattr__(self, "variant", effective_variant(self.variant, method.searches,
                                                                  0 in method.space.weight_bits, profiled_search))
        cost_models.get(self.cost)
        if isinstance(self.lam, bool) or not isinstance(self.lam, (int, float)) or not 0 <= self.lam < math.inf:
            raise ValueError(f"lam must be a finite number >= 0; got {self.lam!r}")
        if self.lam and not method.searches:
            raise ValueError(f"lam must be 0 for method {self.method!r}, which does not search; got {self.lam!r}")
        if method.seeded != (self.pit_lam is not None):
            raise ValueError(f"pit_lam (the PIT lambda of the seed) is required for method 'sequential' and only for "
                             f"it; got pit_lam={self.pit_lam!r} with method {self.method!r}")
        if self.pit_lam is not None:
            if isinstance(self.pit_lam, bool) or not isinstance(self.pit_lam, (int, float)) or \
                    not 0 <= self.pit_lam < math.inf:
                raise ValueError(f"pit_lam must be a finite number >= 0; got {self.pit_lam!r}")
            object.__setattr__(self, "pit_lam", float(self.pit_lam))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0; got {self.seed!r}")
        object.__setattr__(self, "lam", float(self.lam))
        object.__setattr__(self, "act_bits", self._resolve_act_bits(method))

    def _resolve_act_bits(self, method: methods.Method) -> tuple[int, ...] | None:
        """The activation precision set this run uses, spelled out, so equal runs get equal keys."""
        if method.space is None:
            if self.act_bits is not None:
                raise ValueError(f"act_bits must be None for method {self.method!r}, which is not quantized; "
                                 f"got {self.act_bits!r}")
            return None
        if not method.searches:
            fixed = method.space.act_bits
            if self.act_bits is not None and tuple(sorted(self.act_bits)) != fixed:
                raise ValueError(f"act_bits of method {self.method!r} are fixed to {fixed}; got {self.act_bits!r}")
            return fixed
        if self.act_bits is None:
            return cost_models.search_act_bits(self.cost)
        bits = SearchSpace(act_bits=self.act_bits).act_bits
        target = cost_models.TARGET_ACT_BITS[self.cost]
        if target is not None and not set(bits) <= set(target):
            raise ValueError(f"act_bits {bits} are not all supported by cost model {self.cost!r}; allowed: "
                             f"a subset of {target}")
        for name in RECORDED_COSTS:  # checked now, not after the training that the record's metrics end
            allowed = cost_models.TARGET_ACT_BITS[name]
            if allowed is not None and not set(bits) <= set(allowed):
                raise ValueError(f"act_bits {bits} are not all supported by cost model {name!r}, which every record "
                                 f"measures; allowed: a subset of {allowed}")
        return bits

    def space(self) -> SearchSpace | None:
        """The search space of this run: its method's, with this run's activation precisions."""
        space = methods.get(self.method).space
        return None if space is None else replace(space, act_bits=self.act_bits)

    def label(self) -> str:
        """The run in a few words, for messages: method, lambda, cost model and what sets it apart."""
        extra = ([] if self.pit_lam is None else [f"pit_lam={self.pit_lam:g}"]) + \
            ([] if self.variant is None else [f"variant {self.variant}"])
        return f"{self.method} lam={self.lam:g} ({', '.join([self.cost, *extra])}) on {self.benchmark}"

    def seed_config(self) -> RunConfig:
        """The PIT run whose pruned model seeds this sequential run."""
        return RunConfig(self.benchmark, "pit", self.pit_lam, "size", self.profile, self.seed)

    @classmethod
    def of(cls, fields: dict) -> RunConfig:
        """The config a record stores (JSON lists back to tuples)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})

    def settings(self) -> Profile:
        """The profile this run trains with: its benchmark's, with the variant's search settings."""
        return get_profile(self.profile, self.benchmark, self.variant)

    def to_dict(self) -> dict:
        """The fields as a record stores them; no variant stored where there is none (records older than it)."""
        fields = asdict(self)
        if self.variant is None:
            del fields["variant"]
        return fields

    def key(self) -> str:
        """Stable name of the run's record: a hash of every field and of the profile's settings."""
        fields = {**self.to_dict(), "profile_settings": self.settings().fingerprint()}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

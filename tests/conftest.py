"""Suite-wide set-up shared by every test process and the processes the tests start."""
import os
from pathlib import Path

import pytest
from torch._inductor import config as inductor_config
from torch._inductor import cpu_vec_isa


def _vector_isas(trust_cpu_flags: bool) -> list[str]:
    """The vector instruction sets the compiler would use: probed by building and loading a test library (the
    default), or read off the CPU's flags alone."""
    cpu_vec_isa.valid_vec_isa_list.cache_clear()
    with inductor_config.patch({"cpp.vec_isa_ok": True if trust_cpu_flags else None}):
        return [str(isa) for isa in cpu_vec_isa.valid_vec_isa_list()]


def pytest_configure(config) -> None:
    """Let every process the tests start skip the compiler's probe of the vector instruction sets (ten Python
    start-ups, about 25 s per process on 2 cores) when the probe here finds what the CPU's flags say: the
    kernels and their sums are the same, only the start-up is shorter."""
    if "TORCHINDUCTOR_VEC_ISA_OK" not in os.environ and _vector_isas(False) == _vector_isas(True):
        os.environ["TORCHINDUCTOR_VEC_ISA_OK"] = "1"
    cpu_vec_isa.valid_vec_isa_list.cache_clear()


@pytest.fixture(scope="session")
def compiler_cache(tmp_path_factory) -> Path:
    """One on-disk compiler cache for the tests whose fresh processes compile the same quantizer kernels: the first
    compiles them, the others load them."""
    return tmp_path_factory.mktemp("compiler-cache")

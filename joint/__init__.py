"""Joint channel pruning and channel-wise mixed-precision search (Motetti et al., 2024), as a PyTorch library."""
from . import cost, data, models
from .arch import Arch, LayerArch
from .export import export, export_onnx
from .graph import ConversionError, searchable
from .search import SearchableNet, SearchSpace

__version__ = "0.1.0"
__all__ = ["Arch", "ConversionError", "LayerArch", "SearchSpace", "SearchableNet", "cost", "data", "export",
           "export_onnx", "models", "searchable"]

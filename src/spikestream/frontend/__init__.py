"""Front ends: PyTorch modules (``torch.fx``) to IR, and NIR files or graphs to and from IR."""

from spikestream.frontend._batchnorm import fold_batchnorm
from spikestream.frontend._nir import (
    EXTENSION_VERSION,
    NIR_READERS,
    NIR_WRITERS,
    NIRFormatError,
    UnsupportedNIRNodeError,
    extension_kinds,
    from_nir,
    load_nir,
    nir_reader,
    nir_writer,
    save_nir,
    supported_nir_nodes,
    to_nir,
)
from spikestream.frontend._torch import (
    FUNCTION_HANDLERS,
    MODULE_HANDLERS,
    from_torch,
    function_handler,
    module_handler,
    supported_functions,
    supported_modules,
)

__all__ = [
    "EXTENSION_VERSION",
    "FUNCTION_HANDLERS",
    "MODULE_HANDLERS",
    "NIR_READERS",
    "NIR_WRITERS",
    "NIRFormatError",
    "UnsupportedNIRNodeError",
    "extension_kinds",
    "fold_batchnorm",
    "from_nir",
    "from_torch",
    "function_handler",
    "load_nir",
    "module_handler",
    "nir_reader",
    "nir_writer",
    "save_nir",
    "supported_functions",
    "supported_modules",
    "supported_nir_nodes",
    "to_nir",
]

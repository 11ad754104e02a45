"""Parameter database: the PCM map and named parameters, from a file or from TMATS."""

from .loaders import frame_from_pcm_link, from_tmats, load_parameter_file, parse_parameter_mapping
from .model import (
    Calibration,
    ConfigError,
    Fragment,
    FrameFormat,
    Limits,
    Parameter,
    ParameterDatabase,
    Sfid,
)

__all__ = [
    "Calibration",
    "ConfigError",
    "Fragment",
    "FrameFormat",
    "Limits",
    "Parameter",
    "ParameterDatabase",
    "Sfid",
    "frame_from_pcm_link",
    "from_tmats",
    "load_parameter_file",
    "parse_parameter_mapping",
]

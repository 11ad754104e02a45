"""Parameter database: the mission's sources (PCM links, 1553 and ARINC-429 buses) and their named parameters,
from vehicle database files (TOML/YAML), ICD spreadsheets (CSV) or TMATS."""

from .bus import Parameter429, Parameter1553, WordBits
from .bus_tmats import buses_from_tmats
from .icd_csv import load_icd_csv, parse_icd_csv
from .loaders import frame_from_pcm_link, from_tmats, load_parameter_file, parse_parameter_mapping
from .mission import MissionDatabase, PcmSource, Source
from .mission_file import load_mission, load_mission_file, parse_mission_mapping
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
    "MissionDatabase",
    "Parameter",
    "Parameter1553",
    "Parameter429",
    "ParameterDatabase",
    "PcmSource",
    "Sfid",
    "Source",
    "WordBits",
    "buses_from_tmats",
    "frame_from_pcm_link",
    "from_tmats",
    "load_icd_csv",
    "load_mission",
    "load_mission_file",
    "load_parameter_file",
    "parse_icd_csv",
    "parse_mission_mapping",
    "parse_parameter_mapping",
]

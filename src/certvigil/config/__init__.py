"""certvigil's configuration: models, loading with located errors, target expansion."""

from __future__ import annotations

from certvigil.config.loading import LoadedConfig, detect_format, load_config, load_config_text
from certvigil.config.model import (
    AlertSettings,
    Config,
    EndpointSettings,
    LogFormat,
    LogLevel,
    LogSettings,
    Route,
    ScanSettings,
    SourceEntry,
    SourceKind,
    TargetEntry,
    TrustSettings,
    WildcardPolicy,
)
from certvigil.config.units import Threshold, parse_duration_s

__all__ = [
    "AlertSettings",
    "Config",
    "EndpointSettings",
    "LoadedConfig",
    "LogFormat",
    "LogLevel",
    "LogSettings",
    "Route",
    "ScanSettings",
    "SourceEntry",
    "SourceKind",
    "TargetEntry",
    "Threshold",
    "TrustSettings",
    "WildcardPolicy",
    "detect_format",
    "load_config",
    "load_config_text",
    "parse_duration_s",
]

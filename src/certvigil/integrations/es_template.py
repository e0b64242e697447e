"""The Elasticsearch index template and ILM policy for certvigil's ECS documents.

``contrib/elasticsearch/`` holds the same two documents as files (for people who
install them by hand, with Kibana's console or ``curl``); a test keeps them equal to
what :func:`index_template` and :func:`ilm_policy` build here, and another checks every
field a document carries against these mappings and against ECS's own definitions.
"""

from __future__ import annotations

from typing import Any

from certvigil.integrations.ecs import DEFAULT_INDEX_PREFIX, ECS_VERSION

_KEYWORD = {"type": "keyword", "ignore_above": 1024}
_DATE = {"type": "date"}
_LONG = {"type": "long"}
_BOOL = {"type": "boolean"}


def _keyword() -> dict[str, Any]:
    return dict(_KEYWORD)


def _x509() -> dict[str, Any]:
    name = {
        "properties": {"distinguished_name": _keyword(), "common_name": _keyword()},
    }
    return {
        "properties": {
            "alternative_names": _keyword(),
            "issuer": name,
            "subject": name,
            "not_after": dict(_DATE),
            "not_before": dict(_DATE),
            "public_key_algorithm": _keyword(),
            "public_key_curve": _keyword(),
            "public_key_size": dict(_LONG),
            "serial_number": _keyword(),
            "signature_algorithm": _keyword(),
            "version_number": _keyword(),
        }
    }


def mappings() -> dict[str, Any]:
    """The mappings: ECS types for ECS fields, certvigil's own under ``certvigil``."""
    return {
        "dynamic": False,
        "date_detection": False,
        "properties": {
            "@timestamp": dict(_DATE),
            "tags": _keyword(),
            "ecs": {"properties": {"version": _keyword()}},
            "event": {
                "properties": {
                    "kind": _keyword(),
                    "category": _keyword(),
                    "type": _keyword(),
                    "module": _keyword(),
                    "dataset": _keyword(),
                    "outcome": _keyword(),
                    "id": _keyword(),
                    "reason": _keyword(),
                }
            },
            "server": {
                "properties": {
                    "address": _keyword(),
                    "domain": _keyword(),
                    "ip": {"type": "ip"},
                    "port": dict(_LONG),
                }
            },
            "url": {"properties": {"domain": _keyword()}},
            "tls": {
                "properties": {
                    "established": dict(_BOOL),
                    "version": _keyword(),
                    "version_protocol": _keyword(),
                    "cipher": _keyword(),
                    "server": {
                        "properties": {
                            "hash": {"properties": {"sha256": _keyword(), "sha1": _keyword()}},
                            "subject": _keyword(),
                            "issuer": _keyword(),
                            "not_after": dict(_DATE),
                            "not_before": dict(_DATE),
                            "x509": _x509(),
                        }
                    },
                }
            },
            "certvigil": {
                "properties": {
                    "observation_id": dict(_LONG),
                    "endpoint": _keyword(),
                    "endpoints": _keyword(),
                    "sni": _keyword(),
                    "starttls": _keyword(),
                    "verdict": _keyword(),
                    "grade": _keyword(),
                    "days_left": dict(_LONG),
                    "trusted": dict(_BOOL),
                    "hostname_matches": dict(_BOOL),
                    "revocation": _keyword(),
                    "failure_kind": _keyword(),
                    "finding_codes": _keyword(),
                    "findings": {
                        "properties": {
                            "code": _keyword(),
                            "severity": _keyword(),
                            "message": {"type": "match_only_text"},
                        }
                    },
                }
            },
        },
    }


def index_template(prefix: str = DEFAULT_INDEX_PREFIX) -> dict[str, Any]:
    """The composable index template (``PUT _index_template/<prefix>``)."""
    return {
        "index_patterns": [f"{prefix}-observations-*", f"{prefix}-certificates-*"],
        "priority": 200,
        "_meta": {
            "description": "certvigil TLS observations and certificates, ECS fields",
            "ecs_version": ECS_VERSION,
        },
        "template": {
            "settings": {
                "index.lifecycle.name": prefix,
                "index.number_of_shards": 1,
                "index.codec": "best_compression",
            },
            "mappings": mappings(),
        },
    }


def ilm_policy() -> dict[str, Any]:
    """The ILM policy (``PUT _ilm/policy/<prefix>``).

    Indices are monthly (see ``integrations.ecs``), so no rollover: a month's index
    is merged down and made read-only after 45 days and deleted after 13 months,
    which keeps a year of history for "what did we serve last year" questions.
    """
    return {
        "policy": {
            "_meta": {"description": "certvigil monthly indices: a year of history"},
            "phases": {
                "hot": {"min_age": "0ms", "actions": {"set_priority": {"priority": 100}}},
                "warm": {
                    "min_age": "45d",
                    "actions": {
                        "forcemerge": {"max_num_segments": 1},
                        "readonly": {},
                        "set_priority": {"priority": 50},
                    },
                },
                "delete": {"min_age": "400d", "actions": {"delete": {}}},
            },
        }
    }

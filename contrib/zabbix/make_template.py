"""Writes the Zabbix 6.0 template, contrib/zabbix/certvigil_template.yaml.

Run ``python contrib/zabbix/make_template.py contrib/zabbix/certvigil_template.yaml``
after changing the items below; tests/integrations/test_zabbix.py checks the two agree.
UUIDs are derived from each element's name (shaped as UUIDv4, which Zabbix 6.0
requires), so regenerating changes only what changed.
"""

import hashlib
import sys

T = "certvigil TLS certificates"


def uid(name):
    h = bytearray(hashlib.sha256(("certvigil-zabbix:" + name).encode()).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x40
    h[8] = (h[8] & 0x3F) | 0x80
    return h.hex()


def q(s):  # single-quoted YAML scalar
    return "'" + s.replace("'", "''") + "'"


ARGS = '"{#TARGET}","{#SNI}","{#STARTTLS}"'
MASTER = (
    'certvigil["zabbix","get","{#TARGET}","json","--config","{$CERTVIGIL.CONFIG}",'
    '"--sni","{#SNI}","--starttls","{#STARTTLS}","--module","{$CERTVIGIL.MODULE}",'
    '"-t","{$CERTVIGIL.TIMEOUT}"]'
)
DISCOVERY = (
    'certvigil["zabbix","discover","--config","{$CERTVIGIL.CONFIG}",'
    '"--from","{$CERTVIGIL.DISCOVER.FROM}"]'
)


def key(field):
    return f"certvigil.{field}[{ARGS}]"


def ref(field):
    return f"/{T}/{key(field)}"


VALUEMAPS = {
    "certvigil yes/no": [("0", "No"), ("1", "Yes")],
    "certvigil check": [("0", "No"), ("1", "Yes"), ("2", "Not checked")],
    "certvigil chain": [("0", "Untrusted"), ("1", "Trusted")],
    "certvigil severity": [("0", "OK"), ("1", "Info"), ("2", "Warning"), ("3", "Critical")],
}

# field, name, value_type, units, valuemap, description, triggers
EXPIRED = ("{#TARGET}: TLS certificate has expired", f"last({ref('days_left')})<0")
D7 = (
    "{#TARGET}: TLS certificate expires in less than {$CERTVIGIL.EXPIRY.CRIT} days",
    f"last({ref('days_left')})<{{$CERTVIGIL.EXPIRY.CRIT}}",
)
D14 = (
    "{#TARGET}: TLS certificate expires in less than {$CERTVIGIL.EXPIRY.HIGH} days",
    f"last({ref('days_left')})<{{$CERTVIGIL.EXPIRY.HIGH}}",
)
D30 = (
    "{#TARGET}: TLS certificate expires in less than {$CERTVIGIL.EXPIRY.WARN} days",
    f"last({ref('days_left')})<{{$CERTVIGIL.EXPIRY.WARN}}",
)
ITEMS = [
    (
        "success",
        "probe success",
        "UNSIGNED",
        "",
        "certvigil yes/no",
        "1 when the handshake succeeded, the chain verified and the name matched.",
        [],
    ),
    (
        "days_left",
        "days left",
        "FLOAT",
        "days",
        None,
        "Whole days until the earliest certificate served expires (negative once expired).",
        [
            (EXPIRED, "DISASTER", None),
            (D7, "HIGH", EXPIRED),
            (D14, "AVERAGE", D7),
            (D30, "WARNING", D14),
        ],
    ),
    (
        "not_after",
        "leaf expiry",
        "UNSIGNED",
        "unixtime",
        None,
        "When the leaf certificate expires.",
        [],
    ),
    (
        "trusted",
        "chain trusted",
        "UNSIGNED",
        "",
        "certvigil chain",
        "Whether the served chain verifies to a trusted anchor.",
        [(("{#TARGET}: TLS chain is not trusted", f"last({ref('trusted')})=0"), "HIGH", None)],
    ),
    (
        "hostname_match",
        "name match",
        "UNSIGNED",
        "",
        "certvigil yes/no",
        "Whether the leaf covers the name checked.",
        [
            (
                (
                    "{#TARGET}: TLS certificate does not cover {#NAME}",
                    f"last({ref('hostname_match')})=0",
                ),
                "HIGH",
                None,
            )
        ],
    ),
    (
        "revoked",
        "revoked",
        "UNSIGNED",
        "",
        "certvigil check",
        "Whether a served certificate is revoked (modules revocation and deep).",
        [
            (
                ("{#TARGET}: TLS certificate is revoked", f"last({ref('revoked')})=1"),
                "DISASTER",
                None,
            )
        ],
    ),
    (
        "weak_protocol",
        "weak protocol accepted",
        "UNSIGNED",
        "",
        "certvigil check",
        "Whether SSLv2, SSLv3, TLS 1.0 or TLS 1.1 is accepted (module deep).",
        [
            (
                ("{#TARGET}: weak TLS protocol accepted", f"last({ref('weak_protocol')})=1"),
                "AVERAGE",
                None,
            )
        ],
    ),
    (
        "weak_protocols",
        "weak protocols",
        "CHAR",
        "",
        None,
        "The weak protocol versions accepted.",
        [],
    ),
    (
        "severity",
        "worst finding",
        "UNSIGNED",
        "",
        "certvigil severity",
        "The worst finding's severity.",
        [],
    ),
    ("grade", "grade", "CHAR", "", None, "The SSL Labs-style grade (module deep).", []),
    ("tls_version", "TLS version", "CHAR", "", None, "The protocol negotiated.", []),
    ("cipher", "cipher suite", "CHAR", "", None, "The cipher suite negotiated.", []),
    ("subject", "leaf subject", "CHAR", "", None, "The leaf certificate's subject.", []),
    ("issuer", "leaf issuer", "CHAR", "", None, "The leaf certificate's issuer.", []),
    (
        "fingerprint_sha256",
        "leaf SHA-256",
        "CHAR",
        "",
        None,
        "The leaf certificate's SHA-256 fingerprint.",
        [],
    ),
    (
        "problems",
        "problems",
        "TEXT",
        "",
        None,
        "The warning and critical findings, most severe first.",
        [],
    ),
    (
        "error_kind",
        "failure kind",
        "CHAR",
        "",
        None,
        "Why the endpoint could not be observed (empty when it was).",
        [
            (
                (
                    "{#TARGET}: certvigil cannot observe the endpoint",
                    f"length(last({ref('error_kind')}))>0",
                ),
                "WARNING",
                None,
            )
        ],
    ),
    ("error", "failure", "TEXT", "", None, "The failure's detail.", []),
    (
        "handshake_seconds",
        "handshake time",
        "FLOAT",
        "s",
        None,
        "How long the TLS handshake took.",
        [],
    ),
]

out = []
w = out.append
w("# A Zabbix 6.0 template for certvigil (docs/monitoring.md).")
w("# Needs the certvigil executable in Zabbix's ExternalScripts directory and")
w("# Timeout=30 in zabbix_server.conf (the deep module takes a few seconds).")
w("# One external check per endpoint (the JSON master item) feeds every other item.")
w("zabbix_export:")
w("  version: '6.0'")
w("  groups:")
w(f"    - uuid: {uid('group')}")
w("      name: Templates/Applications")
w("  templates:")
w(f"    - uuid: {uid('template')}")
w(f"      template: {q(T)}")
w(f"      name: {q(T)}")
w("      description: >-")
w("        TLS endpoints discovered from certvigil's configuration (or its store), each")
w("        scanned by one external check, certvigil zabbix get HOST:PORT json; dependent")
w("        items read its fields with JSONPath. See docs/monitoring.md.")
w("      groups:")
w("        - name: Templates/Applications")
w("      discovery_rules:")
w(f"        - uuid: {uid('discovery')}")
w("          name: 'TLS endpoints'")
w("          type: EXTERNAL")
w(f"          key: {q(DISCOVERY)}")
w("          delay: '{$CERTVIGIL.DISCOVER.INTERVAL}'")
w("          lifetime: 7d")
w(
    "          description: 'The endpoints certvigil knows: "
    "{#HOST}, {#PORT}, {#SNI}, {#STARTTLS}, {#TARGET}, {#TAGS}.'"
)
w("          item_prototypes:")
w(f"            - uuid: {uid('master')}")
w("              name: '{#TARGET}: certvigil state'")
w("              type: EXTERNAL")
w(f"              key: {q(MASTER)}")
w("              delay: '{$CERTVIGIL.INTERVAL}'")
w("              history: 7d")
w("              trends: '0'")
w("              value_type: TEXT")
w(
    "              description: 'The JSON document of certvigil zabbix get; "
    "the master item of the others.'"
)
w("              tags:")
w("                - tag: component")
w("                  value: tls")
w("                - tag: endpoint")
w("                  value: '{#TARGET}'")
w("                - tag: certvigil")
w("                  value: '{#TAGS}'")
triggers_by_name = {}
for field, name, vtype, units, vmap, desc, triggers in ITEMS:
    w(f"            - uuid: {uid('item:' + field)}")
    w(f"              name: {q('{#TARGET}: ' + name)}")
    w("              type: DEPENDENT")
    w(f"              key: {q(key(field))}")
    w("              delay: '0'")
    w("              history: 90d")
    if vtype in ("CHAR", "TEXT"):
        w("              trends: '0'")
    w(f"              value_type: {vtype}")
    if units:
        w(f"              units: {units}")
    w(f"              description: {q(desc)}")
    if vmap:
        w("              valuemap:")
        w(f"                name: {q(vmap)}")
    w("              preprocessing:")
    w("                - type: JSONPATH")
    w("                  parameters:")
    w(f"                    - $.{field}")
    w("                  error_handler: DISCARD_VALUE")
    if vtype in ("CHAR", "TEXT", "UNSIGNED"):
        w("                - type: DISCARD_UNCHANGED_HEARTBEAT")
        w("                  parameters:")
        w("                    - 1d")
    w("              master_item:")
    w(f"                key: {q(MASTER)}")
    w("              tags:")
    w("                - tag: component")
    w("                  value: tls")
    w("                - tag: endpoint")
    w("                  value: '{#TARGET}'")
    if triggers:
        w("              trigger_prototypes:")
        for (tname, expr), priority, dep in triggers:
            w(f"                - uuid: {uid('trigger:' + tname)}")
            w(f"                  expression: {q(expr)}")
            w(f"                  name: {q(tname)}")
            w(f"                  opdata: {q('{ITEM.LASTVALUE1}')}")
            w(f"                  priority: {priority}")
            if dep:
                w("                  dependencies:")
                w(f"                    - name: {q(dep[0])}")
                w(f"                      expression: {q(dep[1])}")
            w("                  tags:")
            scope = "availability" if "observe" in tname or "expire" in tname else "security"
            w("                    - tag: scope")
            w(f"                      value: {scope}")
w("      tags:")
w("        - tag: class")
w("          value: software")
w("        - tag: target")
w("          value: certvigil")
w("      macros:")
for macro, value, desc in [
    ("{$CERTVIGIL.CONFIG}", "/etc/certvigil/certvigil.yaml", "certvigil's configuration file."),
    (
        "{$CERTVIGIL.DISCOVER.FROM}",
        "config",
        "config: the configured endpoints; store: every endpoint in the store.",
    ),
    ("{$CERTVIGIL.DISCOVER.INTERVAL}", "1h", "How often endpoints are discovered."),
    ("{$CERTVIGIL.INTERVAL}", "1h", "How often each endpoint is scanned."),
    (
        "{$CERTVIGIL.MODULE}",
        "deep",
        "default, revocation or deep (revocation and weak protocols need deep).",
    ),
    ("{$CERTVIGIL.TIMEOUT}", "25", "Seconds one scan may take; keep below the server's Timeout."),
    ("{$CERTVIGIL.EXPIRY.WARN}", "30", "Days before expiry of the warning trigger."),
    ("{$CERTVIGIL.EXPIRY.HIGH}", "14", "Days before expiry of the average trigger."),
    ("{$CERTVIGIL.EXPIRY.CRIT}", "7", "Days before expiry of the high trigger."),
]:
    w(f"        - macro: {q(macro)}")
    w(f"          value: {q(value)}")
    w(f"          description: {q(desc)}")
w("      valuemaps:")
for name, mappings in VALUEMAPS.items():
    w(f"        - uuid: {uid('valuemap:' + name)}")
    w(f"          name: {q(name)}")
    w("          mappings:")
    for value, new in mappings:
        w(f"            - value: {q(value)}")
        w(f"              newvalue: {q(new)}")
text = "\n".join(out) + "\n"
if sys.argv[1:] in ([], ["-"]):
    sys.stdout.write(text)
else:
    with open(sys.argv[1], "w", encoding="utf-8") as target:
        target.write(text)

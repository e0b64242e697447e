"""The commented sample configuration that ``certvigil config init`` writes."""

from __future__ import annotations

SAMPLE_YAML = """\
# certvigil configuration (YAML; TOML and JSON files with the same keys work too).
# Check it with:  certvigil config check certvigil.yaml
# Durations take seconds or "90s", "15m", "1h", "1h30m", "1d".

# Where the inventory and history live: a SQLAlchemy URL, or a SQLite file path
# (relative to this file). Leave it out to use $CERTVIGIL_DATABASE_URL or the default
# (/var/lib/certvigil/certvigil.db as root, ~/.local/share/certvigil/ otherwise).
database_url: certvigil.db
# database_url: postgresql+psycopg://certvigil@db.internal/certvigil

scan:
  interval: 1h          # how often each endpoint is scanned
  jitter: 5m            # up to this much random delay, so scans do not run in step
  timeout: 5s           # connect, STARTTLS and handshake time-out of one probe
  deadline: 30s         # most one endpoint may take, retries included
  retry_timeouts: false # a time-out already waited the whole time-out: not retried
  concurrency: 32       # probes at the same time
  shutdown_grace: 30s   # on SIGTERM, how long running probes may take to finish
  allow_large_cidr: false  # true lets CIDR blocks larger than /16 through

# The trust store chains are judged against.
trust:
  public: true          # Mozilla's public roots
  system: false         # also the operating system's CA bundle
  ca_files: []          # extra anchors, e.g. [/etc/certvigil/internal-ca.pem]

# What the daemon checks on each endpoint, and how often. A check without an interval
# runs on every scan; one with an interval when it is due (plus up to its jitter, so a
# fleet is not probed all at once). protocols and grade share the same ~40 probe
# handshakes: when either is due both run. "false" switches a check off (not cert).
# On a fresh database every check is due, so the first run does them all.
checks:
  cert: {}                               # expiry, chain, trust, hostname: every scan
  revocation: {}                         # OCSP (staple first), CRL fallback: every scan
  protocols: {interval: 1d, jitter: 1h}  # protocols, cipher suites, groups, options
  grade: {interval: 1d, jitter: 1h}      # the SSL Labs-style grade

alerts:
  # Days before expiry (30 or "30d"), or a share of the certificate's lifetime ("20%").
  # {at: "3d", severity: critical} chooses the severity of one threshold.
  thresholds: [30, 14, 7, 1]
  # Apprise URLs (https://github.com/caronc/apprise/wiki): an alert goes to every route
  # whose min_severity it reaches and, when tags are given, whose tags it carries.
  routes: []
  # routes:
  #   - url: mailtos://user:password@mail.example.org?to=pki@example.org
  #     min_severity: warning
  #   - url: slack://TokenA/TokenB/TokenC/#pki-alerts
  #     min_severity: critical
  #     tags: [production]

logging:
  format: text          # text, or json for one JSON object per line
  level: info           # debug, info, warning or error
  # file: /var/log/certvigil.log   # default: stderr (the journal under systemd)

retention_days: 400     # observations older than this are deleted

# Endpoints. host is a name, an IP address or a CIDR block (every address in it).
targets:
  - host: www.example.org
    ports: [443, 8443]
    tags: [production]
  - host: mail.example.org
    starttls: smtp        # port defaults to 25 for smtp (imap 143, pop3 110, ...)
    thresholds: [21, 7]
  - host: 192.0.2.0/28
    port: 443
    interval: 6h
    checks: {protocols: 7d, grade: 7d}   # this block's own schedule
  - host: intranet.example.org
    sni: portal.example.org
    trust:                # this endpoint's own trust store
      public: false
      system: true        # e.g. or ca_files: [internal-ca.pem]

# More endpoints from files (paths relative to this file):
#   zone_file    a BIND zone file ($INCLUDE is followed); A, AAAA and CNAME names
#   octodns_csv  an OctoDNS CSV export (zone,type,record,...)
#   target_file  one host[:port] per line, # comments
# include/exclude are glob patterns on names; wildcards (*.apps.example.org) are
# scanned as wildcard-probe.apps.example.org ("wildcards: skip" drops them).
sources: []
# sources:
#   - type: zone_file
#     path: zones/db.example.org
#     exclude: ["*.dev.example.org", "localhost.*"]
#     ports: [443]
#     tags: [dns]
#   - type: octodns_csv
#     path: exports/example.com.csv
#     include: ["*.example.com"]
#     wildcard_label: star
"""
"""A sample that passes ``certvigil config check`` and explains every section."""

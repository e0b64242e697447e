"""What other monitoring systems read: Nagios/Icinga plugin output, Prometheus exposition.

The modules here are pure: they turn ``EndpointReport``s into the text each consumer
expects and never open a socket or read the clock. The commands that run them live in
``certvigil.cli`` (``check_cmd``, ``exporter_cmd``).
"""

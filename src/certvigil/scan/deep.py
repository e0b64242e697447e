"""The deep step of a scan: the protocol, cipher, option and HSTS probes of one endpoint.

The scanner starts :func:`probe_tls_config` as soon as the handshake has observed the
endpoint, so the probes run while the chain is completed over AIA and revocation is
checked; what they saw becomes the observation's ``tls_config``, judged with the rest
by ``analysis.judge.judge``. The probes go to the address the handshake reached, with
the scan's time-outs, each connection drawing a slot from the scan's per-address (and
per-subnet) limiter.
"""

from __future__ import annotations

from certvigil.observed.handshake import ProbeFailure, TlsObservation
from certvigil.observed.tls_config import TlsConfigObservation
from certvigil.probe.tls_config import ConnectionSlot, http_is_plausible, observe_tls_config


async def probe_tls_config(
    observation: TlsObservation,
    *,
    connect_timeout_s: float,
    handshake_timeout_s: float,
    max_connections: int,
    connection_slot: ConnectionSlot | None = None,
    starttls_timeout_s: float = 10.0,
) -> TlsConfigObservation | ProbeFailure:
    """Probe the protocols, suites and options of the endpoint ``observation`` reached.

    Args:
        observation: The endpoint's handshake (its target, address and ALPN).
        connect_timeout_s: Time-out of each TCP connect.
        handshake_timeout_s: Time-out for each server answer.
        max_connections: Connections open at once to the endpoint.
        connection_slot: Entered around each probe connection (the scan's limits).
        starttls_timeout_s: Limit on each probe connection's STARTTLS dialogue.

    Returns:
        What the probes saw, or why they could not run.
    """
    return await observe_tls_config(
        observation.target,
        address=observation.peer_address,
        connect_timeout_s=connect_timeout_s,
        handshake_timeout_s=handshake_timeout_s,
        max_connections=max_connections,
        check_http=http_is_plausible(observation.target.port, observation.alpn),
        connection_slot=connection_slot,
        starttls_timeout_s=starttls_timeout_s,
    )

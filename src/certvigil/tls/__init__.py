"""TLS protocol knowledge as pure code: the cipher-suite registry and the handshake codec."""

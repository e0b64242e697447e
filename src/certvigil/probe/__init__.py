"""Network edge: connect, handshake, capture what the server sent. No judgement here."""

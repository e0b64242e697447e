"""Pure judgement over recorded observations: no sockets, no database, no clock."""

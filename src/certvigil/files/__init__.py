"""Local files at the edge: trust stores and certificate files."""

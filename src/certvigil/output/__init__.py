"""Renderers for scan and certificate reports: rich table, streamed JSON document, CSV."""

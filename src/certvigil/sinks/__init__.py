"""Network sinks: where certvigil pushes documents to other systems (Elasticsearch/OpenSearch)."""

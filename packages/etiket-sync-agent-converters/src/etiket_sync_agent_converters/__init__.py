"""etiket-sync-agent-converters."""

"""Command-line interfaces: ``etiket-sync`` and the scaffold generators."""

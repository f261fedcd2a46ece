"""retrosim.evidence."""

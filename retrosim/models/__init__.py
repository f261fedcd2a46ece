"""retrosim.models."""

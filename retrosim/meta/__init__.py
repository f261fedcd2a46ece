"""retrosim.meta."""

"""retrosim.trials."""

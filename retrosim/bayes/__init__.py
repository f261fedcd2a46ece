"""retrosim.bayes."""

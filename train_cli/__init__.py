"""glore-train: every GLoRe stage from the terminal, each recorded as a run in the store."""

"""ASR fine-tuning and decoding helpers around ESPnet's ASR model with the chunk conformer."""

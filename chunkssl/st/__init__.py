"""Speech translation on the chunk conformer: sentencepiece models, offline and simultaneous decoding."""

"""Synthetic speech corpus made with espeak-ng: ctypes binding, prompt generator, Kaldi data-dir writer."""

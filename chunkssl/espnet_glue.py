"""Make ESPnet aware of chunkssl: import this module before building an ESPnet parser or model.

On import it registers the ``chunk_conformer`` encoder in ESPnet's ASR and ST tasks (so
``--encoder chunk_conformer`` and ``--init_param ssl.pth:encoder:encoder`` work there), the ``token``
frontend in the ASR task (``--frontend token``: Codec-ASR on tokenizer codes), the ``kaldi_fbank``
frontend in the ASR and ST tasks (``--frontend kaldi_fbank``: our fbank computed from raw audio in the
model), the ``audio_<rate>`` data type (``audio.scp`` of :mod:`chunkssl.audio_scp`), and the
``kaldiio_ark`` data type, which reads what kaldiio writes: Kaldi float matrices and also the
NPY-payload integer matrices of ``fsq_tokenize`` (ESPnet's own ``kaldi_ark`` reads only the former).
Registering twice is harmless.
"""

from __future__ import annotations

import kaldiio
from espnet2.tasks import asr, st
from espnet2.train import dataset

from chunkssl import audio_scp
from chunkssl.encoder import ChunkConformerEncoder
from chunkssl.frontend import KaldiFbankFrontend
from chunkssl.fsq.frontend import register_token_frontend

ENCODER_NAME = "chunk_conformer"
FRONTEND_NAME = "kaldi_fbank"


def _kaldiio_loader(path: str, max_cache_fd: int = 0):
    return kaldiio.load_scp(path, max_cache_fd=max_cache_fd)


def register() -> None:
    """Register the encoder and frontend choices and the ``kaldiio_ark``/``audio_<rate>`` data types (idempotent)."""
    register_token_frontend()
    for choices in (asr.encoder_choices, st.encoder_choices):
        choices.classes.setdefault(ENCODER_NAME, ChunkConformerEncoder)
    for choices in (asr.frontend_choices, st.frontend_choices):
        choices.classes.setdefault(FRONTEND_NAME, KaldiFbankFrontend)
    dataset.DATA_TYPES.setdefault(audio_scp.DATA_TYPE.pattern, dict(
        func=audio_scp.espnet_loader,
        kwargs=["loader_type"],
        help="audio.scp of chunkssl (utterance, start and end seconds, wav.scp entry), read as float32 "
             "audio at <rate> Hz, e.g. audio_16000.\n\n   utt_a 0 -1 /data/a.flac\n   utt_b 12.5 27 /data/b.flac",
    ))
    dataset.DATA_TYPES.setdefault("kaldiio_ark", dict(
        func=_kaldiio_loader,
        kwargs=["max_cache_fd"],
        help="Kaldi ark/scp read with kaldiio: float matrices and NPY-payload int matrices "
             "(FSQ codes).\n\n   utterance_id_A /some/where/codes.1.ark:123\n   ...",
    ))


register()

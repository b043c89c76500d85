"""ctypes binding to the libespeak-ng shipped in the ``espeakng-loader`` wheel: audio plus phoneme events.

Why a fresh library per utterance: espeak-ng keeps synthesis state in C statics that its API cannot
reset (the pitch-flutter index, automatic gain, breath resonators, echo buffer), so the same text
comes out with different samples depending on what was spoken before, even after
``espeak_Terminate``/``espeak_Initialize``. Each :func:`synthesize` call therefore loads a private
copy of the shared object, speaks one utterance and unloads it again (``dlclose``); with libc
``rand`` and espeak's own generator seeded, the samples then depend only on the request. The reload
costs a few milliseconds. The private copy (see :func:`_library_copy`) guarantees that no other
user of the wheel's library in this process keeps it loaded across our ``dlclose``.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import _ctypes
import numpy as np

# Values from espeak-ng's speak_lib.h (API revision 12).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_SSML = 0x10
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_PARAM_RATE = 1
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_BUFFER_MS = 500  # larger callback buffers mean fewer Python callbacks per utterance

RATE_MIN, RATE_MAX = 80, 450  # words per minute accepted by espeak
ENGLISH_LANGUAGES = ("en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc",
                     "en-gb-x-gbclan", "en-gb-x-gbcwmd")


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


class EspeakError(RuntimeError):
    """espeak-ng refused a request (unknown voice, failed initialisation, synthesis error)."""


@dataclass(frozen=True)
class PhonemeEvent:
    """One espeak phoneme event: its mnemonic (stress marks included) and start time in ms."""

    name: str
    start_ms: int


@dataclass(frozen=True)
class Synthesis:
    """Mono int16 samples at ``sample_rate`` and the phoneme events in time order."""

    samples: np.ndarray
    sample_rate: int
    events: list[PhonemeEvent]


def data_path() -> Path:
    """The wheel's espeak-ng-data directory (voices, dictionaries, phoneme tables)."""
    import espeakng_loader

    return Path(espeakng_loader.get_data_path())


def voice_variants() -> list[str]:
    """Names of the voice variants (``en+NAME``) present in the wheel's data."""
    vdir = data_path() / "voices" / "!v"
    return sorted(p.name for p in vdir.iterdir() if p.is_file())


def _library_copy() -> Path:
    """A copy of libespeak-ng only this module loads, so ``dlclose`` really unloads it.

    The copy sits in ``$CHUNKSSL_ESPEAK_CACHE`` (default: the temp dir) under a name derived from
    the original's size and mtime: it is made once (atomically) and shared by every process, so
    nothing needs cleaning up.
    """
    import espeakng_loader

    src = Path(espeakng_loader.get_library_path())
    st = src.stat()
    cache = Path(os.environ.get("CHUNKSSL_ESPEAK_CACHE") or tempfile.gettempdir())
    cache.mkdir(parents=True, exist_ok=True)
    dst = cache / f"chunkssl-libespeak-ng-{os.getuid()}-{st.st_size}-{st.st_mtime_ns}.so"
    if not dst.exists():
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return dst


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None)
    libc.srand.argtypes = [ctypes.c_uint]
    return libc


def _declare(lib: ctypes.CDLL) -> None:
    """Give ctypes the C signatures, so size_t and long arguments are passed at full width."""
    c_int, c_uint, c_void_p = ctypes.c_int, ctypes.c_uint, ctypes.c_void_p
    lib.espeak_Initialize.argtypes = [c_int, c_int, ctypes.c_char_p, c_int]
    lib.espeak_Initialize.restype = c_int
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [c_int, c_int, c_int]
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_Synth.argtypes = [c_void_p, ctypes.c_size_t, c_uint, c_int, c_uint, c_uint,
                                 ctypes.POINTER(c_uint), c_void_p]
    lib.espeak_Synth.restype = c_int
    lib.espeak_Terminate.restype = c_int


def _is_mapped(path: Path) -> bool:
    maps = Path("/proc/self/maps")
    return maps.exists() and str(path) in maps.read_text()


def synthesize(text: str, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50,
               ssml: bool = True, seed: int = 0) -> Synthesis:
    """Speak ``text`` with espeak-ng and return its samples and phoneme events.

    ``voice`` is an espeak voice name such as ``en-us+f3``; ``rate`` is in words per minute,
    ``pitch`` and ``pitch_range`` are espeak's 0-100 scales. The result depends only on the
    arguments (see the module docstring).
    """
    if not RATE_MIN <= rate <= RATE_MAX:
        raise ValueError(f"rate {rate} wpm is outside espeak's range {RATE_MIN}-{RATE_MAX}")
    lang, _, variant = voice.partition("+")
    if variant and not (data_path() / "voices" / "!v" / variant).is_file():
        raise EspeakError(f"voice variant {variant!r} is not in {data_path() / 'voices' / '!v'}; "
                          f"pick one of {', '.join(voice_variants())}")
    libpath = _library_copy()
    try:
        lib = ctypes.CDLL(str(libpath))
    except OSError as err:
        raise EspeakError(f"cannot load {libpath} ({err}); if that directory is mounted noexec, set "
                          f"CHUNKSSL_ESPEAK_CACHE to a directory that allows loading libraries") from None
    chunks: list[np.ndarray] = []
    events: list[PhonemeEvent] = []

    def on_audio(wav, num_samples, event_ptr) -> int:
        if wav and num_samples > 0:
            chunks.append(np.ctypeslib.as_array(wav, (num_samples,)).copy())
        i = 0
        while event_ptr[i].type != _EVENT_LIST_TERMINATED:
            ev = event_ptr[i]
            if ev.type == _EVENT_PHONEME:
                events.append(PhonemeEvent(ev.id.string.decode("utf-8", "replace"), ev.audio_position))
            i += 1
        return 0

    callback = _CALLBACK(on_audio)
    _declare(lib)
    initialized = False
    try:
        sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS,
                                            str(data_path()).encode(),
                                            _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT)
        if sample_rate <= 0:
            raise EspeakError(f"espeak_Initialize failed (returned {sample_rate}) with data at {data_path()}")
        initialized = True
        lib.espeak_SetSynthCallback(callback)
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EspeakError(f"espeak-ng has no voice {voice!r}; languages: {', '.join(ENGLISH_LANGUAGES)}")
        for param, value in ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range)):
            lib.espeak_SetParameter(param, int(value), 0)
        # Breath noise uses libc rand(), the Klatt voices espeak's own generator: seed both.
        _libc().srand(seed & 0xFFFFFFFF)
        lib.espeak_ng_SetRandSeed(seed)
        data = text.encode("utf-8") + b"\0"
        flags = _CHARS_UTF8 | (_SSML if ssml else 0)
        status = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, flags, None, None)
        if status != 0:
            raise EspeakError(f"espeak_Synth failed with status {status} for text {text!r}")
    finally:
        if initialized:
            lib.espeak_Terminate()
        handle = lib._handle
        del lib
        _ctypes.dlclose(handle)
    if _is_mapped(libpath):
        raise EspeakError(f"{libpath} stayed loaded after dlclose, so espeak state would leak "
                          f"between utterances and the output would not be reproducible")
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return Synthesis(samples=samples, sample_rate=int(sample_rate), events=events)

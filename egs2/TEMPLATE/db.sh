# Where the corpora live. Each is overridable from the environment, e.g. `FSDD=/data/fsdd ./run.sh`.
# The defaults point at the small copies in ../shared/data beside the repo; big corpora default to
# downloads/ inside the recipe, where their download stage puts them.
_chunkssl_root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
_shared=${CHUNKSSL_SHARED_DATA:-$_chunkssl_root/../shared/data}
FSDD=${FSDD:-$_shared/fsdd}
YESNO=${YESNO:-$_shared/yesno}
AN4=${AN4:-$_shared/mini_an4}
LIBRITRANS=${LIBRITRANS:-$_shared/libritrans}
LIBRISPEECH=${LIBRISPEECH:-downloads}
LIBRILIGHT=${LIBRILIGHT:-downloads}
MUST_C=${MUST_C:-downloads}
unset _chunkssl_root _shared

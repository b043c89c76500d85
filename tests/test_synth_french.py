"""Parallel synthetic corpus: French rules against hand-written translations, seeded pairs, ST data dirs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chunkssl.datadir import validate
from chunkssl.fileio import read_kv
from chunkssl.synth import french as fr
from chunkssl.synth.parallel import COLOURS, MAKERS, PLACES, SIZES, THINGS, generate_pairs
from chunkssl.synth.parallel_corpus import make_parallel_corpus

from conftest import REPO

NOUN = {en: noun for en, _, noun in THINGS} | {en: noun for en, noun in PLACES}
ADJ = dict(COLOURS + SIZES)

# (what is said, the French a translator writes), each checked against the rules by hand
RULES = [
    (fr.cardinal(0), "zéro"), (fr.cardinal(1), "un"), (fr.cardinal(16), "seize"), (fr.cardinal(17), "dix-sept"),
    (fr.cardinal(21), "vingt et un"), (fr.cardinal(22), "vingt-deux"), (fr.cardinal(61), "soixante et un"),
    (fr.cardinal(70), "soixante-dix"), (fr.cardinal(71), "soixante et onze"),
    (fr.cardinal(79), "soixante-dix-neuf"), (fr.cardinal(80), "quatre-vingts"),
    (fr.cardinal(81), "quatre-vingt-un"), (fr.cardinal(90), "quatre-vingt-dix"),
    (fr.cardinal(91), "quatre-vingt-onze"), (fr.cardinal(100), "cent"), (fr.cardinal(101), "cent un"),
    (fr.cardinal(200), "deux cents"), (fr.cardinal(280), "deux cent quatre-vingts"),
    (fr.cardinal(1000), "mille"), (fr.cardinal(1984), "mille neuf cent quatre-vingt-quatre"),
    (fr.cardinal(2005), "deux mille cinq"), (fr.cardinal(9200), "neuf mille deux cents"),
    (fr.cardinal(21, feminine=True), "vingt et une"), (fr.cardinal(81, feminine=True), "quatre-vingt-une"),
    (fr.cardinal(71, feminine=True), "soixante et onze"), (fr.digits([5, 0, 2]), "cinq zéro deux"),
    (fr.date(5, 1, 1984), "le premier mai mille neuf cent quatre-vingt-quatre"),
    (fr.date(3, 23), "le vingt-trois mars"), (fr.date(8, 31, 2000), "le trente et un août deux mille"),
    (fr.clock(1), "une heure"), (fr.clock(7, 0, "am"), "sept heures du matin"),
    (fr.clock(2, 21, "pm"), "deux heures vingt et une de l'après-midi"),
    (fr.clock(9, 5, "pm"), "neuf heures cinq du soir"), (fr.clock(12, 0, "pm"), "midi"),
    (fr.clock(12, 30, "am"), "minuit trente"), (fr.clock(12, 15), "douze heures quinze"),
    (fr.relative_time(3, "quarter", False), "trois heures moins le quart"),
    (fr.relative_time(3, "quarter", True), "trois heures et quart"),
    (fr.relative_time(1, "half", False), "douze heures et demie"),
    (fr.relative_time(6, "half", True), "six heures et demie"),
    (fr.elide(fr.noun_phrase("the", NOUN["TREE"], False)), "l'arbre"),
    (fr.elide(fr.noun_phrase("the", NOUN["TREE"], False, ADJ["OLD"])), "le vieil arbre"),
    (fr.elide(fr.noun_phrase("the", NOUN["HOUSE"], False, ADJ["OLD"])), "la vieille maison"),
    (fr.elide(fr.noun_phrase("the", NOUN["BIRD"], True, ADJ["NEW"])), "les nouveaux oiseaux"),
    (fr.elide(fr.noun_phrase("my", NOUN["SCHOOL"], False)), "mon école"),
    (fr.elide(fr.noun_phrase("my", NOUN["SCHOOL"], False, ADJ["SMALL"])), "ma petite école"),
    (fr.elide(fr.noun_phrase("this", NOUN["BIRD"], False)), "cet oiseau"),
    (fr.elide(fr.noun_phrase("this", NOUN["DOG"], False)), "ce chien"),
    (fr.elide(fr.noun_phrase("this", NOUN["CAR"], True, ADJ["WHITE"])), "ces voitures blanches"),
    (fr.elide(fr.noun_phrase("count", NOUN["CHAIR"], True, ADJ["GREEN"], count=21)), "vingt et une chaises vertes"),
    (fr.elide(fr.noun_phrase("count", NOUN["HORSE"], True, ADJ["BEAUTIFUL"], count=2)), "deux beaux chevaux"),
    (fr.clause(["je"], 0, "avoir", fr.noun_phrase("a", NOUN["KEY"], True, negated=True), negated=True),
     "je n'ai pas de clés"),
    (fr.clause(["je"], 0, "aimer", fr.noun_phrase("the", NOUN["CAT"], False)), "j'aime le chat"),
    (fr.clause(["nous"], 3, "aller", ["à"] + fr.noun_phrase("the", NOUN["PARK"], False)), "nous allons au parc"),
    (fr.clause(["ils"], 5, "aller", ["à"] + fr.noun_phrase("the", NOUN["HOSPITAL"], False), negated=True),
     "ils ne vont pas à l'hôpital"),
]

# English prompts of generate_pairs(20000, seed=7), translated by hand
SENTENCES = {
    "YOU LIKE MY OLD TREE": "vous aimez mon vieil arbre",
    "HE OPENS OUR NEW BIRD": "il ouvre notre nouvel oiseau",
    "SHE HAS SEVENTEEN BEAUTIFUL HORSES": "elle a dix-sept beaux chevaux",
    "THIS TREE IS OLD": "cet arbre est vieux",
    "SHE SEES THESE KEYS": "elle voit ces clés",
    "WE DO NOT BUY ANY CHAIRS": "nous n'achetons pas de chaises",
    "SHE DOES NOT WANT THIS HOUSE": "elle ne veut pas cette maison",
    "HE LOOKS FOR TWELVE TABLES": "il cherche douze tables",
    "HER SISTERS ARE TIRED": "ses sœurs sont fatiguées",
    "HER HOUSES ARE WHITE": "ses maisons sont blanches",
    "THEY GO TO THE HOSPITAL": "ils vont à l'hôpital",
    "ENTER SEVENTY ONE TIMES": "entrez soixante et onze fois",
    "REPEAT EIGHTY ONE TIMES": "répétez quatre-vingt-une fois",
    "STOP EIGHTY TIMES": "arrêtez quatre-vingts fois",
    "CANCEL TWENTY ONE TIMES": "annulez vingt et une fois",
    "EIGHTY ONE CEDAR ROAD": "quatre-vingt-un route Cedar",
    "SEVEN HUNDRED ONE CEDAR STREET": "sept cent un rue Cedar",
    "JULY FIRST": "le premier juillet",
    "AUGUST TWELFTH TWO THOUSAND": "le douze août deux mille",
    "HALF TO ONE": "douze heures et demie",
    "QUARTER TO FOUR": "quatre heures moins le quart",
    "TWELVE P M": "midi",
    "ONE A M": "une heure du matin",
}


def test_rules_match_hand_translations():
    wrong = [(got, want) for got, want in RULES if got != want]
    assert not wrong, wrong


def test_generated_pairs_match_hand_translations():
    table = {" ".join(p.en): p.fr for p in generate_pairs(20000, seed=7)}
    assert {en: table.get(en) for en in SENTENCES} == SENTENCES


def test_pairs_seeded_and_well_formed():
    pairs = generate_pairs(3000, seed=5)
    assert pairs == generate_pairs(3000, seed=5)
    assert pairs != generate_pairs(3000, seed=6)
    assert {p.kind for p in pairs} == set(MAKERS)
    translations: dict[tuple[str, ...], str] = {}
    for p in pairs:
        assert p.en and all(w.isupper() and w.isalpha() for w in p.en), p
        # no article A (it would be spelled as a letter): an A is a letter, of A M or a spelled word
        assert all(p.en[i + 1:i + 2] == ("M",) or p.kind == "spelled" for i, w in enumerate(p.en) if w == "A"), p
        assert p.fr and p.fr == p.fr.strip() and "  " not in p.fr, p
        # one English prompt, one translation
        assert translations.setdefault(p.en, p.fr) == p.fr, p


def test_bad_values_are_refused():
    for call in (lambda: fr.cardinal(10000), lambda: fr.date(13, 1), lambda: fr.clock(0),
                 lambda: fr.clock(3, 60), lambda: fr.relative_time(3, "third", True)):
        with pytest.raises(ValueError):
            call()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("st_synth")
    cmd = [sys.executable, "-m", "chunkssl.bin.make_synth_st_corpus", "--out", str(root / "a"), "--num-utts", "40",
           "--seed", "2", "--nj", "2"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    make_parallel_corpus(root / "b", 40, seed=2, log=lambda msg: None)
    return root


def test_st_data_dirs(corpus):
    pairs = {" ".join(p.en): p.fr for p in generate_pairs(40, seed=2)}
    spk = {}
    for split in ("train", "dev", "test"):
        d = corpus / "a" / split
        assert validate(d) == []
        text, en, target = (dict(read_kv(d / name)) for name in ("text", "text.en", "text.fr"))
        assert text == en and set(target) == set(text)
        assert all(pairs[text[u]] == target[u] for u in text)
        spk[split] = {v.split("-")[0] for _, v in read_kv(d / "utt2spk")}
        ids = [u for u, _ in read_kv(d / "text.fr")]
        assert ids == sorted(ids, key=str.encode)
    assert not spk["test"] & (spk["train"] | spk["dev"])  # unseen voice variants


def test_same_bytes_whatever_nj(corpus):
    a, b = corpus / "a", corpus / "b"
    for path in sorted(a.rglob("*")):
        if path.is_file() and path.name != "wav.scp":
            assert path.read_bytes() == (b / path.relative_to(a)).read_bytes(), path


def test_cli_print_and_refusals(tmp_path, corpus):
    done = subprocess.run([sys.executable, "-m", "chunkssl.bin.make_synth_st_corpus", "--print", "3", "--seed", "7"],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0
    assert [line.split("\t")[2] for line in done.stdout.splitlines()] == [p.fr for p in generate_pairs(3, 7)]
    other = subprocess.run([sys.executable, "-m", "chunkssl.bin.make_synth_st_corpus", "--out", str(corpus / "a"),
                            "--num-utts", "41", "--seed", "2"], cwd=REPO, capture_output=True, text=True)
    assert other.returncode == 2 and "remove" in other.stderr

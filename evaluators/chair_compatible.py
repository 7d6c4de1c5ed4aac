"""How the original CHAIR code reads a caption, reimplemented for ``chair_compatible=True``.

The reference (Rohrbach et al., 2018, ``utils/chair.py`` at commit 6e4d33c of
LisaAnne/Hallucination, with ``data/synonyms.txt``) lower-cases a caption, splits it into
words with NLTK's ``word_tokenize``, singularises every word with Pattern's ``singularize``,
merges listed two-word phrases, drops ``seat`` when a toilet is mentioned and keeps the words
that are exactly an entry of its synonym list. Nothing here imports NLTK or Pattern: this
module reproduces their behaviour (NLTK 3.10, Pattern 2.6/3.6) on caption text, quirks
included, because the point of the mode is to give the numbers published papers give.

Quirks reproduced, each with an example (``caption -> mentions``):

* **tokeniser** (:func:`reference_tokens`): a hyphenated word, a slash pair and
  ``word.word`` stay one token (``"a hot-dog stand"`` -> nothing; ``"a dog/cat bed"`` ->
  nothing); a full stop is split off only at the end of a sentence, so a word glued to a
  ``...``-less ``…`` stays unread (``"a dog… and a cat"`` -> cat); ``'s``, ``’`` and
  ``n't`` are split off (``"the zebra’s mane"`` -> zebra); markdown ``**`` is split off.
* **singulariser** (:func:`reference_singular`): any final ``s`` is stripped after the
  listed rules, so ``bus`` -> ``bu`` and ``minibus`` -> ``minibu`` are never found
  (``"a school bus"`` -> nothing; ``"two buses"`` -> bus), ``ties`` -> ``ty``,
  ``canoes`` -> ``cano``, ``glass`` -> ``glas`` (only ``wine glas`` is merged back);
  ``people`` -> ``person`` and ``women`` -> ``woman`` (irregular plurals by suffix).
* **two-word phrases** (:data:`DOUBLE_WORDS`): pairs are merged greedily from the left, two
  words at most, so ``stove top oven`` never matches and gives ``stove`` and ``oven``
  (``"a stove top oven"`` -> oven, oven); ``baby``/``adult`` + an animal word is the animal
  (``"a baby elephant"`` -> elephant, not a person); ``passenger jet``/``passenger train``
  is the vehicle; ``bow tie`` -> tie; ``toilet seat`` -> toilet; ``train track`` and
  ``home plate`` are merged but listed nowhere, so they hide their words (``"train tracks"``
  -> nothing).
* **toilet and seat**: when ``toilet`` and ``seat`` are both among the words, every ``seat``
  is dropped (``"a toilet next to a seat"`` -> toilet).
* **synonym list** (:data:`CHAIR_SYNONYMS`): two entries start with a space and never match
  (``" motor bike"``, ``" cheesecake"``), ``iPhone`` is mixed-case and never matches a
  lower-cased caption; a word is read as the first name of its line (``"a pitcher of
  lemonade"`` -> person, ``"an orange shirt"`` -> orange, ``"a goat"`` -> sheep).
* **every occurrence counts** (``"a dog chasing another dog"`` -> dog, dog) and negation is
  not read (``"no dog"`` -> dog).
"""

from __future__ import annotations

import re
from functools import lru_cache

CHAIR_SYNONYMS = "\n".join((
    "person, girl, boy, man, woman, kid, child, chef, baker, people, adult, rider, "
    "children, baby, worker, passenger, sister, biker, policeman, cop, officer, lady, "
    "cowboy, bride, groom, male, female, guy, traveler, mother, father, gentleman, "
    "pitcher, player, skier, snowboarder, skater, skateboarder, person, woman, guy, "
    "foreigner, child, gentleman, caller, offender, coworker, trespasser, patient, "
    "politician, soldier, grandchild, serviceman, walker, drinker, doctor, bicyclist, "
    "thief, buyer, teenager, student, camper, driver, solider, hunter, shopper, villager",
    "bicycle, bike, bicycle, bike, unicycle, minibike, trike",
    "car, automobile, van, minivan, sedan, suv, hatchback, cab, jeep, coupe, taxicab, "
    "limo, taxi",
    "motorcycle, scooter,  motor bike, motor cycle, motorbike, scooter, moped",
    "airplane, jetliner, plane, air plane, monoplane, aircraft, jet, jetliner, airbus, "
    "biplane, seaplane",
    "bus, minibus, trolley",
    "train, locomotive, tramway, caboose",
    "truck, pickup, lorry, hauler, firetruck",
    "boat, ship, liner, sailboat, motorboat, dinghy, powerboat, speedboat, canoe, skiff, "
    "yacht, kayak, catamaran, pontoon, houseboat, vessel, rowboat, trawler, ferryboat, "
    "watercraft, tugboat, schooner, barge, ferry, sailboard, paddleboat, lifeboat, "
    "freighter, steamboat, riverboat, battleship, steamship",
    "traffic light, street light, traffic signal, stop light, streetlight, stoplight",
    "fire hydrant, hydrant",
    "stop sign",
    "parking meter",
    "bench, pew",
    "bird, ostrich, owl, seagull, goose, duck, parakeet, falcon, robin, pelican, "
    "waterfowl, heron, hummingbird, mallard, finch, pigeon, sparrow, seabird, osprey, "
    "blackbird, fowl, shorebird, woodpecker, egret, chickadee, quail, bluebird, "
    "kingfisher, buzzard, willet, gull, swan, bluejay, flamingo, cormorant, parrot, loon, "
    "gosling, waterbird, pheasant, rooster, sandpiper, crow, raven, turkey, oriole, "
    "cowbird, warbler, magpie, peacock, cockatiel, lorikeet, puffin, vulture, condor, "
    "macaw, peafowl, cockatoo, songbird",
    "cat, kitten, feline, tabby",
    "dog, puppy, beagle, pup, chihuahua, schnauzer, dachshund, rottweiler, canine, "
    "pitbull, collie, pug, terrier, poodle, labrador, doggie, doberman, mutt, doggy, "
    "spaniel, bulldog, sheepdog, weimaraner, corgi, cocker, greyhound, retriever, brindle, "
    "hound, whippet, husky",
    "horse, colt, pony, racehorse, stallion, equine, mare, foal, palomino, mustang, "
    "clydesdale, bronc, bronco",
    "sheep, lamb, ram, lamb, goat, ewe",
    "cow, cattle, oxen, ox, calf, cattle, holstein, heifer, buffalo, bull, zebu, bison",
    "elephant",
    "bear, panda",
    "zebra",
    "giraffe",
    "backpack, knapsack",
    "umbrella",
    "handbag, wallet, purse, briefcase",
    "tie, bow, bow tie",
    "suitcase, suit case, luggage",
    "frisbee",
    "skis, ski",
    "snowboard",
    "sports ball, ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard, longboard, skimboard, shortboard, wakeboard",
    "tennis racket, racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife, pocketknife, knive",
    "spoon",
    "bowl, container",
    "banana",
    "apple",
    "sandwich, burger, sub, cheeseburger, hamburger",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut, doughnut, bagel",
    "cake,  cheesecake, cupcake, shortcake, coffeecake, pancake",
    "chair, seat, stool",
    "couch, sofa, recliner, futon, loveseat, settee, chesterfield",
    "potted plant, houseplant",
    "bed",
    "dining table, table, desk",
    "toilet, urinal, commode, toilet, lavatory, potty",
    "tv, monitor, televison, television",
    "laptop, computer, notebook, netbook, lenovo, macbook, laptop computer",
    "mouse",
    "remote",
    "keyboard",
    "cell phone, mobile phone, phone, cellphone, telephone, phon, smartphone, iPhone",
    "microwave",
    "oven, stovetop, stove, stove top oven",
    "toaster",
    "sink",
    "refrigerator, fridge, fridge, freezer",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear, teddybear",
    "hair drier, hairdryer",
    "toothbrush",
)) + "\n"
"""The reference's synonym list, one COCO class a line, entries separated by ``", "``, the
class name first; kept as it is published (doubled spaces and ``iPhone`` included)."""


def _synonym_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for line in CHAIR_SYNONYMS.splitlines():
        entries = line.strip().split(", ")
        for entry in entries:
            table[entry] = entries[0]  # a later line claims a word again: the last wins
    return table


SYNONYM_CLASSES: dict[str, str] = _synonym_table()
"""Every entry of :data:`CHAIR_SYNONYMS` -> its class (the first name on its line)."""

_PHRASES = ("motor bike", "motor cycle", "air plane", "traffic light", "street light",
            "traffic signal", "stop light", "fire hydrant", "stop sign", "parking meter",
            "suit case", "sports ball", "baseball bat", "baseball glove", "tennis racket",
            "wine glass", "hot dog", "cell phone", "mobile phone", "teddy bear", "hair drier",
            "potted plant", "bow tie", "laptop computer", "stove top oven", "home plate",
            "train track")
_ANIMALS = ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
            "giraffe", "animal", "cub")

DOUBLE_WORDS: dict[str, str] = {
    **{phrase: phrase for phrase in _PHRASES},
    **{f"{age} {animal}": animal for animal in _ANIMALS for age in ("baby", "adult")},
    "passenger jet": "jet", "passenger train": "train",
    "bow tie": "tie", "toilet seat": "toilet", "wine glas": "wine glass",
}
"""The reference's two-word table: a pair of (singularised) words -> the word it stands for.
``train track`` and ``home plate`` stand for themselves and are in no synonym line."""

# -- NLTK word_tokenize (Punkt sentences, then the improved Treebank tokeniser) ---------------

_CLOSERS = "\\]\\)}>\"'»”’"
# A full stop ends a sentence (Punkt) when whitespace, the end of the text or a non-word
# character follows it, possibly after closing quotes and brackets; the Treebank tokeniser
# then splits it off the word before it. "word.word" and "e.g.x" are left whole.
_SENTENCE_STOP = re.compile(rf"(?<=[^.])\.(?=[{_CLOSERS}]*(?:\s|$|[*:;@(\[{{!?]))")
_SPACED = re.compile(
    "|".join((
        r"[«“‘„»”’]", r"`+", '"', r"\.{2,}", r"[;@#$%&]", r"[\u2012-\u2015]", r"[?!*]",
        r"[\]\[(){}<>]", r"--", r"[:,](?!\d)",
    )))
_LEADING_QUOTE = re.compile(r"(?<!\w)'(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)")
_CLITIC = re.compile(r"(?<=[^' ])('s|'m|'d|'ll|'re|'ve|n't|')(?= )", re.IGNORECASE)


def reference_tokens(caption: str) -> list[str]:
    """The words of ``caption`` as ``nltk.word_tokenize(caption.lower())`` gives them, for
    the words CHAIR can read (punctuation tokens may differ in spelling, never in place).

    >>> reference_tokens("A dog's bowl, a hot-dog... and two cats.")
    ['a', 'dog', "'s", 'bowl', ',', 'a', 'hot-dog', '...', 'and', 'two', 'cats', '.']
    """
    text = _SENTENCE_STOP.sub(" . ", caption.lower())
    text = _LEADING_QUOTE.sub("' ", text)
    text = " " + _SPACED.sub(lambda m: f" {m.group(0)} ", text) + " "
    text = _CLITIC.sub(r" \1", " ".join(text.split()) + " ")
    return text.split()


# -- Pattern's singularize ------------------------------------------------------------------

_KEPT_WHOLE = (
    # Nouns left as they are; a word counts when one of them *ends with* it (Pattern's test),
    # so "s", "es" or "rice" -> "ice" ... are kept too.
    "bison", "bream", "breeches", "britches", "carp", "chassis", "christmas", "clippers", "cod",
    "contretemps", "corps", "debris", "diabetes", "djinn", "eland", "elk", "flounder",
    "gallows", "georgia", "graffiti", "headquarters", "herpes", "high-jinks", "homework",
    "innings", "jackanapes", "mackerel", "measles", "mews", "moose", "mumps", "news",
    "pincers", "pliers", "proceedings", "rabies", "salmon", "scissors", "series", "shears",
    "species", "swine", "swiss", "trout", "tuna", "whiting", "wildebeest",
    "advice", "bread", "butter", "cheese", "electricity", "equipment", "fruit", "furniture",
    "garbage", "gravel", "happiness", "information", "ketchup", "knowledge", "love",
    "luggage", "mathematics", "mayonnaise", "meat", "mustard", "progress", "research", "rice",
    "sand", "software", "understanding", "water",
)
_IE_NOUNS = (
    # "-ie" nouns whose plural only loses the s; "^pie" and "^tie" are listed with a literal
    # caret in Pattern, so they never match: "ties" -> "ty".
    "alergie", "auntie", "beanie", "birdie", "bogie", "bombie", "collie", "cookie", "cutie",
    "doggie", "eyrie", "freebie", "goonie", "groupie", "hankie", "hippie", "hoagie", "hottie",
    "indie", "junkie", "laddie", "laramie", "lingerie", "meanie", "newbie", "nightie", "oldie",
    "pixie", "quickie", "reverie", "rookie", "softie", "sortie", "stoolie", "sweetie",
    "techie", "toughie", "valkyrie", "veggie", "weenie", "yuppie", "zombie",
)
_IRREGULAR_ENDINGS = (
    # (plural ending, singular ending), tried in this order on the end of the word.
    ("atlantes", "atlas"), ("atlases", "atlas"), ("axes", "axe"), ("beeves", "beef"),
    ("brethren", "brother"), ("children", "child"), ("corpora", "corpus"),
    ("corpuses", "corpus"), ("ephemerides", "ephemeris"), ("feet", "foot"),
    ("ganglia", "ganglion"), ("geese", "goose"), ("genera", "genus"), ("genii", "genie"),
    ("graffiti", "graffito"), ("helves", "helve"), ("kine", "cow"), ("leaves", "leaf"),
    ("loaves", "loaf"), ("men", "man"), ("mongooses", "mongoose"), ("monies", "money"),
    ("moves", "move"), ("mythoi", "mythos"), ("numena", "numen"), ("occipita", "occiput"),
    ("octopodes", "octopus"), ("opera", "opus"), ("opuses", "opus"), ("our", "my"),
    ("oxen", "ox"), ("penes", "penis"), ("penises", "penis"), ("people", "person"),
    ("sexes", "sex"), ("soliloquies", "soliloquy"), ("teeth", "tooth"), ("testes", "testis"),
    ("trilbys", "trilby"), ("turves", "turf"), ("zoa", "zoon"),
)
_SUFFIX_RULES = tuple((re.compile(pattern), replacement) for pattern, replacement in (
    # The first rule whose pattern is found rewrites the word; the last strips any final s.
    (r"(.)ae$", r"\1a"), (r"(.)itis$", r"\1itis"), (r"(.)eaux$", r"\1eau"),
    (r"(quiz)zes$", r"\1"), (r"(matr)ices$", r"\1ix"), (r"(ap|vert|ind)ices$", r"\1ex"),
    (r"^(ox)en", r"\1"), (r"(alias|status)es$", r"\1"), (r"([octop|vir])i$", r"\1us"),
    (r"(cris|ax|test)es$", r"\1is"), (r"(shoe)s$", r"\1"), (r"(o)es$", r"\1"),
    (r"(bus)es$", r"\1"), (r"([m|l])ice$", r"\1ouse"), (r"(x|ch|ss|sh)es$", r"\1"),
    (r"(m)ovies$", r"\1ovie"), (r"(.)ombies$", r"\1ombie"), (r"(s)eries$", r"\1eries"),
    (r"([^aeiouy]|qu)ies$", r"\1y"), (r"([aeo]l)ves$", r"\1f"), (r"([^d]ea)ves$", r"\1f"),
    (r"arves$", "arf"), (r"erves$", "erve"), (r"([nlw]i)ves$", r"\1fe"),
    (r"([lr])ves$", r"\1f"), (r"([aeo])ves$", r"\1ve"), (r"(sive)s$", r"\1"),
    (r"(tive)s$", r"\1"), (r"(hive)s$", r"\1"), (r"([^f])ves$", r"\1fe"),
    (r"(^analy)ses$", r"\1sis"),
    (r"((a)naly|(b)a|(d)iagno|(p)arenthe|(p)rogno|(s)ynop|(t)he)ses$", None),
    (r"(.)opses$", r"\1opsis"), (r"(.)yses$", r"\1ysis"),
    (r"(h|d|r|o|n|b|cl|p)oses$", r"\1ose"),
    (r"(fruct|gluc|galact|lact|ket|malt|rib|sacchar|cellul)ose$", r"\1ose"),
    (r"(.)oses$", r"\1osis"), (r"([ti])a$", r"\1um"), (r"(n)ews$", r"\1ews"), (r"s$", ""),
))
_PREPOSITIONS = frozenset((
    "about", "above", "across", "after", "among", "around", "at", "athwart", "before",
    "behind", "below", "beneath", "beside", "besides", "between", "betwixt", "beyond", "but",
    "by", "during", "except", "for", "from", "in", "into", "near", "of", "off", "on", "onto",
    "out", "over", "since", "till", "to", "under", "until", "unto", "upon", "with",
))


@lru_cache(maxsize=65536)
def reference_singular(word: str) -> str:
    """``word`` (lower case) singularised as Pattern's ``singularize`` does it.

    >>> [reference_singular(w) for w in ("dogs", "bus", "buses", "ties", "people", "glass")]
    ['dog', 'bu', 'bus', 'ty', 'person', 'glas']
    """
    if "-" in word:
        head, _, rest = word.partition("-")
        if rest.split("-")[0] in _PREPOSITIONS:
            return reference_singular(head) + "-" + rest
    if word.endswith("'"):
        return reference_singular(word[:-1]) + "'s"
    if any(kept.endswith(word) for kept in _KEPT_WHOLE):
        return word
    if any(word.endswith(noun + "s") for noun in _IE_NOUNS):
        return word
    for plural, singular in _IRREGULAR_ENDINGS:
        if word.endswith(plural):
            return word[:-len(plural)] + singular
    for pattern, replacement in _SUFFIX_RULES:
        match = pattern.search(word)
        if match:
            if replacement is None:  # "theses" -> "thesis"; a matched "(a)" is kept twice
                return pattern.sub(lambda m: m.group(1) + (m.group(2) or "") + "sis", word)
            return pattern.sub(replacement, word, count=1)
    return word


def reference_words(caption: str) -> list[tuple[str, str]]:
    """Every object word the reference finds in ``caption``, in order with repeats, as
    ``(word, COCO class)``: ``word`` is the vocabulary form after singularising and merging.

    >>> reference_words("Two buses and a school bus near a baby elephant")
    [('bus', 'bus'), ('elephant', 'elephant')]
    """
    words = [reference_singular(token) for token in reference_tokens(caption)]
    merged: list[str] = []
    i = 0
    while i < len(words):
        pair = " ".join(words[i:i + 2])
        if pair in DOUBLE_WORDS:
            merged.append(DOUBLE_WORDS[pair])
            i += 2
        else:
            merged.append(words[i])
            i += 1
    if "toilet" in merged and "seat" in merged:
        merged = [word for word in merged if word != "seat"]
    return [(word, SYNONYM_CLASSES[word]) for word in merged if word in SYNONYM_CLASSES]


def reference_mentions(caption: str) -> list[str]:
    """The COCO class of every object word of ``caption`` (:func:`reference_words`)."""
    return [cls for _, cls in reference_words(caption)]

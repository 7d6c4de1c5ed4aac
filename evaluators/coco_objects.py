"""The 80 COCO object classes and the words captions use for them (vocabulary ``coco``).

:data:`COCO_OBJECTS` is every entry of the original CHAIR synonym list (Rohrbach et al., 2018;
:data:`vlmscope.evaluators.chair_compatible.CHAIR_SYNONYMS`, so the default mode reads the
words the published numbers read) except :data:`NOT_FROM_REFERENCE`, plus the words and
phrases of :data:`_EXTRA` that the reference's list lacks (people and vehicles it misses,
two-word names that must beat their parts: ``"toaster oven"`` is a toaster, ``"subway car"``
a train). Keys are the COCO class names. Plurals need no entry: the vocabulary adds the plural
and singular of every form (see :func:`vlmscope.evaluators.vocabulary.inflections`).

Bump :data:`COCO_OBJECTS_VERSION` whenever an entry changes: evaluation runs record it.
"""

from __future__ import annotations

from vlmscope.evaluators.chair_compatible import CHAIR_SYNONYMS

COCO_OBJECTS_VERSION = "coco-80/2026.2"
"""Version of :data:`COCO_OBJECTS`, stored in each run's configuration."""

_EXTRA: dict[str, tuple[str, ...]] = {
    "person": ("people", "man", "woman", "boy", "girl", "child", "kid", "baby", "guy", "lady",
               "gentleman", "player", "skier", "surfer", "skateboarder", "snowboarder",
               "pedestrian", "rider", "toddler", "teenager", "adult", "worker", "chef",
               "officer", "cowboy", "policeman", "tourist", "human", "passenger", "cyclist",
               "athlete", "spectator", "jockey", "farmer", "vendor", "commuter", "goalkeeper",
               "umpire", "waiter", "waitress", "fisherman", "surfer", "pilot", "referee"),
    "bicycle": ("bike", "mountain bike", "tricycle"),
    "car": ("automobile", "sedan", "taxi", "cab", "suv", "jeep", "minivan", "police car",
            "convertible", "race car", "sports car", "mini van"),
    "motorcycle": ("motorbike", "motor bike", "scooter", "moped", "dirt bike", "quad bike",
                   "motor scooter"),
    "airplane": ("plane", "aeroplane", "jet", "aircraft", "airliner", "jetliner", "sea plane",
                 "passenger jet", "passenger plane"),
    "bus": ("double decker", "school bus", "trolley", "minibus", "trolley bus"),
    "train": ("locomotive", "tram", "subway", "railcar", "freight train", "streetcar",
              "street car", "subway car", "train car", "railway car", "rail car", "tram car",
              "passenger train"),
    "truck": ("pickup", "pickup truck", "lorry", "semi", "fire truck", "dump truck",
              "fire engine", "tow truck"),
    "boat": ("ship", "sailboat", "yacht", "canoe", "kayak", "ferry", "barge", "raft",
             "gondola", "jet ski"),
    "traffic light": ("stop light", "stoplight", "traffic signal", "street light"),
    "fire hydrant": ("hydrant", "fire plug"),
    "stop sign": (),
    "parking meter": (),
    "bench": ("park bench",),
    "bird": ("pigeon", "seagull", "gull", "duck", "goose", "parrot", "sparrow", "eagle", "owl",
             "swan", "chicken", "hen", "rooster", "crow", "penguin"),
    "cat": ("kitten", "kitty", "tabby", "tabby cat", "feline"),
    "dog": ("puppy", "pup", "doggy", "hound", "terrier", "retriever", "poodle", "bulldog",
            "beagle", "labrador", "husky", "german shepherd", "chihuahua", "canine",
            "dalmatian"),
    "horse": ("pony", "stallion", "mare", "foal", "colt"),
    "sheep": ("lamb", "ram", "ewe"),
    "cow": ("cattle", "bull", "calf", "ox", "oxen", "steer", "heifer", "longhorn"),
    "elephant": (),
    "bear": ("grizzly", "polar bear", "black bear", "brown bear"),
    "zebra": (),
    "giraffe": (),
    "backpack": ("rucksack", "knapsack", "back pack"),
    "umbrella": ("parasol",),
    "handbag": ("purse", "hand bag", "pocketbook", "tote bag"),
    "tie": ("necktie", "bow tie"),
    "suitcase": ("luggage", "suit case"),
    "frisbee": ("flying disc",),
    "skis": ("ski",),
    "snowboard": (),
    "sports ball": ("ball", "baseball", "basketball", "football", "soccer ball",
                    "tennis ball", "volleyball"),
    "kite": (),
    "baseball bat": (),
    "baseball glove": ("baseball mitt",),
    "skateboard": ("skate board",),
    "surfboard": ("surf board", "longboard", "boogie board"),
    "tennis racket": ("racket", "racquet", "tennis racquet"),
    "bottle": ("flask",),
    "wine glass": ("wineglass", "glass of wine", "champagne glass"),
    "cup": ("mug", "coffee cup", "teacup"),
    "fork": (),
    "knife": ("knives",),
    "spoon": ("teaspoon", "tablespoon"),
    "bowl": (),
    "banana": (),
    "apple": (),
    "sandwich": ("burger", "hamburger", "sub", "wrap", "panini"),
    "orange": ("tangerine", "mandarin orange"),
    "broccoli": (),
    "carrot": (),
    "hot dog": ("hotdog",),
    "pizza": (),
    "donut": ("doughnut",),
    "cake": ("cupcake", "cheesecake", "muffin"),
    "chair": ("seat", "stool", "armchair"),
    "couch": ("sofa", "loveseat", "settee"),
    "potted plant": ("houseplant", "house plant", "plant pot"),
    "bed": ("crib",),
    "dining table": ("table", "dinner table", "desk", "kitchen table"),
    "toilet": ("urinal", "commode", "toilet seat"),
    "tv": ("television", "tv monitor", "tvmonitor", "tv set"),
    "laptop": ("notebook computer", "laptop computer"),
    "mouse": ("computer mouse",),
    "remote": ("remote control", "controller"),
    "keyboard": (),
    "cell phone": ("cellphone", "phone", "smartphone", "mobile phone", "telephone"),
    "microwave": ("microwave oven",),
    "toaster": ("toaster oven",),
    "oven": ("stove", "stove top oven"),
    "sink": (),
    "refrigerator": ("fridge", "freezer"),
    "book": ("novel", "paperback"),
    "clock": (),
    "vase": (),
    "scissors": (),
    "teddy bear": ("teddy", "teddybear", "stuffed animal", "stuffed bear", "stuffed toy"),
    "hair drier": ("hair dryer", "hairdryer", "blow dryer", "blowdryer"),
    "toothbrush": ("tooth brush",),
}
"""Words and phrases for each class beyond the reference's list."""

NOT_FROM_REFERENCE: dict[str, str] = {
    "pitcher": "as often a jug (\"a pitcher of lemonade\") as a baseball player",
    "bow": "a ribbon, an archer's bow or a ship's bow far more often than a bow tie "
           "(\"bow tie\" stays)",
    "container": "a box, jar or bin is no bowl",
    "computer": "a desktop computer is no laptop (\"laptop computer\" stays)",
    "notebook": "a paper notebook is no laptop (\"notebook computer\" stays)",
}
"""Entries of the reference's synonym list the default mode leaves out, with the reason."""


def _merged() -> dict[str, tuple[str, ...]]:
    reference: dict[str, list[str]] = {}
    for line in CHAIR_SYNONYMS.splitlines():
        names = [n.strip().lower() for n in line.split(",") if n.strip()]
        reference.setdefault(names[0], []).extend(names[1:])
    merged: dict[str, tuple[str, ...]] = {}
    for name in _EXTRA:
        words = [w for w in reference.get(name, []) if w not in NOT_FROM_REFERENCE]
        words += [w for w in _EXTRA[name] if w not in words]
        merged[name] = tuple(dict.fromkeys(w for w in words if w != name))
    return merged


COCO_OBJECTS: dict[str, tuple[str, ...]] = _merged()
"""COCO class name -> synonyms and phrases that name it in a caption."""

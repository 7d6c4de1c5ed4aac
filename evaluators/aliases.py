"""Aliases for class names, used by ``GroundTruthMatch(mode="synonyms")``.

Each map sends an alias to the class name it stands for. Both sides are normalised (case,
whitespace, punctuation, articles) before use, so ``"TV-monitor"`` and ``"tvmonitor"`` need no
entry of their own beyond their normalised forms.

* :data:`COCO_ALIASES` - the PASCAL VOC spellings of COCO classes and everyday words for them.
* :data:`IMAGENET_ALIASES` - WordNet synonyms of familiar ImageNet-1k classes (torchvision
  names each class by its first synonym only: ``tabby`` for "tabby, tabby cat").

These are curated lists, not the full WordNet; pass ``synonyms={...}`` for your own classes.
"""

from __future__ import annotations

COCO_ALIASES: dict[str, str] = {
    "aeroplane": "airplane",
    "plane": "airplane",
    "motorbike": "motorcycle",
    "sofa": "couch",
    "tvmonitor": "tv",
    "tv monitor": "tv",
    "television": "tv",
    "diningtable": "dining table",
    "pottedplant": "potted plant",
    "houseplant": "potted plant",
    "mobile phone": "cell phone",
    "cellphone": "cell phone",
    "phone": "cell phone",
    "hair dryer": "hair drier",
    "ball": "sports ball",
    "people": "person",
    "man": "person",
    "woman": "person",
    "child": "person",
    "pedestrian": "person",
    "bike": "bicycle",
    "automobile": "car",
    "fire plug": "fire hydrant",
    "hydrant": "fire hydrant",
    "donut": "doughnut",
    "hotdog": "hot dog",
    "purse": "handbag",
    "monitor": "tv",
    "notebook": "laptop",
    "fridge": "refrigerator",
    "teddy": "teddy bear",
    "puppy": "dog",
    "kitten": "cat",
    "kitty": "cat",
    "ship": "boat",
}
"""COCO class names by alias (VOC spellings and common words)."""

IMAGENET_ALIASES: dict[str, str] = {
    "tabby cat": "tabby",
    "tinca tinca": "tench",
    "carassius auratus": "goldfish",
    "great white": "great white shark",
    "white shark": "great white shark",
    "man eater": "great white shark",
    "carcharodon carcharias": "great white shark",
    "rooster": "cock",
    "struthio camelus": "ostrich",
    "siamese": "Siamese cat",
    "persian": "Persian cat",
    "golden": "golden retriever",
    "labrador": "Labrador retriever",
    "lab": "Labrador retriever",
    "german shepherd dog": "German shepherd",
    "alsatian": "German shepherd",
    "police dog": "German shepherd",
    "husky": "Siberian husky",
    "panthera tigris": "tiger",
    "king of beasts": "lion",
    "panthera leo": "lion",
    "panda": "giant panda",
    "panda bear": "giant panda",
    "coon bear": "giant panda",
    "ailuropoda melanoleuca": "giant panda",
    "loxodonta africana": "African elephant",
    "tree toad": "tree frog",
    "rana catesbeiana": "bullfrog",
    "sport car": "sports car",
    "fire truck": "fire engine",
    "containership": "container ship",
    "container vessel": "container ship",
    "all terrain bike": "mountain bike",
    "off roader": "mountain bike",
    "cellular phone": "cellular telephone",
    "mobile phone": "cellular telephone",
    "laptop computer": "laptop",
    "notebook computer": "notebook",
    "television system": "television",
    "television receiver": "television",
    "pizza pie": "pizza",
}
"""ImageNet-1k class names (torchvision spelling) by WordNet synonym."""

"""The embedded default data: synthetic product reviews in three domains, written by this module.

books is far from the other two; electronics and kitchen are close (both are reviews of devices: power, buttons,
warranty, returns). Reviews mix domain-specific aspects with sentiment phrases, negations, mixed opinions and a
little label noise, so a fine-tune beats chance clearly but not trivially. Regenerate with
`python -m tasks.sample_data data/sample` (deterministic: the same seed writes the same files).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pandas as pd

SHARED_DEVICE = {
    "aspects": ["power button", "cord", "warranty", "customer service", "plastic housing", "instruction manual",
                "design", "price", "packaging", "build quality"],
    "good": ["works exactly as described", "feels solid and well made", "was easy to set up",
             "has been reliable every single day", "is worth every penny"],
    "bad": ["stopped working after two weeks", "arrived broken", "feels cheap and flimsy",
            "died right after the warranty ran out", "is a waste of money", "had to be returned twice"],
}
DOMAINS: dict[str, dict[str, list[str]]] = {
    "books": {
        "items": ["novel", "memoir", "thriller", "biography", "mystery", "fantasy saga", "history book",
                  "short story collection", "self-help book", "science fiction novel", "romance", "textbook"],
        "aspects": ["plot", "characters", "writing style", "ending", "pacing", "dialogue", "prose", "narrator",
                    "world building", "research", "last chapter", "author's voice"],
        "good": ["kept me turning pages late into the night", "is beautifully written", "made me cry twice",
                 "is a gripping page-turner", "is full of memorable characters", "left me thinking for days",
                 "is the best thing this author has published", "reads like poetry"],
        "bad": ["is boring and predictable", "drags on for hundreds of pages", "is riddled with clichés",
                "has a plot full of holes", "was a chore to finish", "feels like a rushed first draft",
                "has flat, lifeless characters", "put me to sleep by chapter three"],
        "titles_good": ["A wonderful read", "Could not put it down", "Masterful storytelling", "Loved every page"],
        "titles_bad": ["Disappointing read", "Save your time", "Could not finish it", "Overrated and dull"],
        "extra": ["I read it in one weekend.", "My book club picked it this month.", "The hardcover edition is nice.",
                  "I had high hopes after the reviews.", "I have read all of her previous novels.",
                  "The audiobook narrator is different."],
    },
    "electronics": {
        "items": ["headphones", "bluetooth speaker", "laptop", "digital camera", "TV", "wireless router",
                  "phone charger", "keyboard", "computer mouse", "monitor", "tablet", "USB hub"],
        "aspects": ["battery life", "sound quality", "screen", "bluetooth connection", "charging port", "remote",
                    "firmware", "picture quality", "wifi range", "volume control", "speakers", "cable"],
        "good": ["sounds crisp and clear", "pairs instantly with my phone", "lasts all day on one charge",
                 "has a bright, sharp picture", "connects without any dropouts", "charges really fast"],
        "bad": ["keeps dropping the connection", "overheats after an hour", "drains in a couple of hours",
                "has a dead pixel in the corner", "crackles at high volume", "will not charge anymore"],
        "titles_good": ["Great gadget", "Excellent sound", "Best purchase this year", "Works perfectly"],
        "titles_bad": ["Junk electronics", "Stopped charging", "Do not buy", "Returned it"],
        "extra": ["I use it with my laptop at work.", "The firmware update took a while.",
                  "It replaced an older model.", "I bought it on sale.", "Setup took five minutes.",
                  "I compared it with two other brands."],
    },
    "kitchen": {
        "items": ["blender", "coffee maker", "toaster", "knife set", "frying pan", "electric kettle",
                  "stand mixer", "microwave", "food processor", "rice cooker", "cutting board", "slow cooker"],
        "aspects": ["motor", "blades", "lid", "handle", "heating element", "nonstick coating", "carafe",
                    "temperature control", "timer", "glass jar", "bowl", "cleanup"],
        "good": ["makes perfect smoothies", "brews a hot cup in minutes", "heats evenly every time",
                 "is a breeze to clean", "cuts through tomatoes like butter", "cooks rice perfectly"],
        "bad": ["leaks all over the counter", "burns everything on the bottom", "rusted after a few washes",
                "makes a horrible grinding noise", "scratched the first time I used it", "smells like burning plastic"],
        "titles_good": ["Great for the kitchen", "Love this appliance", "Perfect every morning", "Cooks like a dream"],
        "titles_bad": ["Kitchen disaster", "Broke quickly", "Not worth it", "Returned it"],
        "extra": ["I use it every morning.", "It fits nicely on my counter.", "It was a wedding gift.",
                  "My old one lasted ten years.", "I cook for a family of four.", "The dishwasher is fine for it."],
    },
}
DEVICE_DOMAINS = {"electronics", "kitchen"}
NEGATED = {"positive": ["not a disappointment at all", "not bad at all, honestly", "no regret whatsoever"],
           "negative": ["not worth the money", "not something I would recommend", "not what I expected, sadly"]}
NEUTRAL_TITLES = ["{item} review", "Honest opinion", "After three months", "My thoughts", "Mixed feelings",
                  "About this {item}"]
CLOSERS = {"positive": ["Highly recommended.", "Five stars from me.", "I would buy it again.", "A keeper."],
           "negative": ["Avoid it.", "One star.", "Very disappointed.", "I want my money back."]}


def generate_reviews(domain: str, n: int, seed: int = 0, noise: float = 0.03) -> pd.DataFrame:
    """`n` reviews of `domain`, half positive and half negative, with `noise` of them mislabelled."""
    rng = random.Random(f"{domain}-{seed}")
    rows = []
    for index in range(n):
        label = "positive" if index % 2 == 0 else "negative"
        title, text = _review(rng, domain, label)
        shown = label if rng.random() >= noise else ("negative" if label == "positive" else "positive")
        rating = rng.choice([4, 5]) if shown == "positive" else rng.choice([1, 2])
        rows.append({"review_id": f"{domain}-{index:04d}", "domain": domain, "asin": f"S{rng.randrange(10**8):08d}",
                     "title": title, "text": text, "rating": rating, "label": shown})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _review(rng: random.Random, domain: str, label: str) -> tuple[str, str]:
    vocab = DOMAINS[domain]
    polarity = "good" if label == "positive" else "bad"
    other = "bad" if polarity == "good" else "good"
    item = rng.choice(vocab["items"])
    sentences = [f"The {rng.choice(vocab['aspects'])} {rng.choice(vocab[polarity])}."]
    if domain in DEVICE_DOMAINS and rng.random() < 0.5:
        sentences.append(f"The {rng.choice(SHARED_DEVICE['aspects'])} {rng.choice(SHARED_DEVICE[polarity])}.")
    if rng.random() < 0.35:  # a mixed opinion: one aspect goes the other way
        sentences.append(f"Sadly the {rng.choice(vocab['aspects'])} {rng.choice(vocab[other])}."
                         if polarity == "good" else
                         f"To be fair, the {rng.choice(vocab['aspects'])} {rng.choice(vocab[other])}.")
    if rng.random() < 0.5:
        sentences.append(f"Overall this {item} is {rng.choice(NEGATED[label])}.")
    sentences.insert(rng.randrange(len(sentences) + 1), rng.choice(vocab["extra"]))
    if rng.random() < 0.6:
        sentences.append(rng.choice(CLOSERS[label]))
    title = rng.choice(vocab["titles_good" if label == "positive" else "titles_bad"])
    if rng.random() < 0.4:
        title = rng.choice(NEUTRAL_TITLES).format(item=item).capitalize()
    return title, " ".join(sentences)


def write_sample_data(directory: Path, n_per_domain: int = 400, seed: int = 0) -> list[Path]:
    """Write one CSV per domain under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for domain in DOMAINS:
        path = directory / f"{domain}.csv"
        generate_reviews(domain, n_per_domain, seed).to_csv(path, index=False)
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_sample_data(Path(sys.argv[1] if len(sys.argv) > 1 else "data/sample")):
        print(written_path)

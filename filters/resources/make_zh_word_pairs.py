"""Build zh_word_pairs.txt: the pairs of Han characters most often found inside Chinese words.

    python -m venv /tmp/zh && /tmp/zh/bin/pip install jieba==0.42.1 opencc-python-reimplemented==0.1.7
    /tmp/zh/bin/python filters/resources/make_zh_word_pairs.py

The words and their frequencies are jieba's dictionary (jieba/dict.txt, MIT licence): each
adjacent pair of Han characters inside a word scores the word's frequency. The top PAIRS pairs
are kept, in simplified and (through OpenCC's s2t table) traditional characters. Only the pairs
are written, one per line, most frequent first; word_salad reads them.
"""

from __future__ import annotations

import re
from collections import Counter
from importlib import resources
from pathlib import Path

PAIRS = 20_000
HAN = re.compile(r"^[\u3400-\u9fff\uf900-\ufaff]{2}$")


def main() -> None:
    import opencc

    counts: Counter[str] = Counter()
    with (resources.files("jieba") / "dict.txt").open(encoding="utf-8") as lines:
        for line in lines:
            word, frequency = line.split()[:2]
            for pair in (word[i : i + 2] for i in range(len(word) - 1)):
                if HAN.match(pair):
                    counts[pair] += int(frequency)
    top = [pair for pair, _ in counts.most_common(PAIRS)]
    to_traditional = opencc.OpenCC("s2t").convert
    pairs = list(dict.fromkeys([*top, *(to_traditional(pair) for pair in top)]))
    out = Path(__file__).with_name("zh_word_pairs.txt")
    out.write_text("\n".join(p for p in pairs if HAN.match(p)) + "\n", encoding="utf-8")
    print(f"{out}: {len(pairs)} pairs")


if __name__ == "__main__":
    main()

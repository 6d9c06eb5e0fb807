"""Write a corpus whose train split is the first K texts of each label (corpus order: the
texts zeroshot_textcat's examples_per_label = K takes), and whose dev and test are the
original ones (links), so that trained profiles can be compared with the zeroshot profile on
the same labelled texts.

    python benchmarks/zeroshot/subset.py banking77 8 bench-out/banking77-8shot
    hybridnlp train fast --corpus bench-out/banking77-8shot --output bench-out/banking77-8shot-fast
"""

import argparse
import json
from pathlib import Path

from hybridnlp.corpora import resolve_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("k", type=int)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    info = resolve_corpus(args.corpus)
    args.output.mkdir(parents=True, exist_ok=True)
    kept, seen = [], {}
    for line in Path(info.files["train"]).read_text(encoding="utf8").splitlines():
        record = json.loads(line)
        label = record["label"]
        if record["text"].strip() and seen.get(label, 0) < args.k:
            seen[label] = seen.get(label, 0) + 1
            kept.append(line)
    (args.output / "train.jsonl").write_text("\n".join(kept) + "\n", encoding="utf8")
    for split in ("dev", "test"):
        link = args.output / f"{split}.jsonl"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path(info.files[split]).resolve())
    print(f"{args.output}: {len(kept)} training texts, {len(seen)} labels")


if __name__ == "__main__":
    main()

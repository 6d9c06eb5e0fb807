"""How well a zeroshot pipeline's probabilities say how often it is right: expected
calibration error (15 equal-width confidence bins) and mean negative log-likelihood on a
split, at the pipeline's own scale (fitted on dev by the zeroshot profile) and at MiniLM's
training value, 20.

    python benchmarks/zeroshot/calibration.py bench-out/zeroshot/trec6-descriptions trec6
"""

import argparse

import numpy as np


def calibration(similarities: np.ndarray, gold: np.ndarray, scale: float, bins: int = 15):
    """(ECE, mean NLL, accuracy, mean confidence) of ``softmax(scale * similarities)``."""
    z = scale * similarities
    z = z - z.max(axis=1, keepdims=True)
    probs = np.exp(z)
    probs /= probs.sum(axis=1, keepdims=True)
    confidence, right = probs.max(axis=1), probs.argmax(axis=1) == gold
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        members = (confidence > low) & (confidence <= high)
        if members.any():
            ece += members.mean() * abs(right[members].mean() - confidence[members].mean())
    nll = float(-np.log(probs[np.arange(len(gold)), gold] + 1e-12).mean())
    return ece, nll, float(right.mean()), float(confidence.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline")
    parser.add_argument("corpus")
    parser.add_argument("--split", default="test")
    args = parser.parse_args()

    import spacy

    from hybridnlp.corpora import resolve_corpus

    nlp = spacy.load(args.pipeline)
    pipe = nlp.get_pipe("zeroshot_textcat")
    examples = resolve_corpus(args.corpus).examples(args.split, nlp)
    examples = [eg for eg in examples if max(eg.reference.cats, key=eg.reference.cats.get) in pipe.labels]
    docs = list(nlp.pipe([eg.reference.text for eg in examples], batch_size=128))
    similarities = pipe.similarities(docs)
    gold = np.array([pipe.labels.index(max(eg.reference.cats, key=eg.reference.cats.get)) for eg in examples])
    for name, scale in (("fitted on dev" if pipe.cfg["scale_fitted_on"] else "configured", pipe.cfg["scale"]),
                        ("MiniLM's 20", 20.0)):
        ece, nll, accuracy, confidence = calibration(similarities, gold, scale)
        print(f"{args.corpus}/{args.split} scale {scale:.1f} ({name}): ECE {ece:.3f}, NLL {nll:.3f}, "
              f"accuracy {accuracy:.3f}, mean confidence {confidence:.3f}")


if __name__ == "__main__":
    main()

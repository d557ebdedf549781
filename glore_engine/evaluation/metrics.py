"""Metric functions shared by the reward-model and pipeline evaluations (pure Python, tested alone)."""

from __future__ import annotations


def auc(scores: list[float], labels: list[bool]) -> float | None:
    """Area under the ROC curve (probability a positive outranks a negative; ties count half)."""
    pairs = sorted(zip(scores, labels), key=lambda x: x[0])
    n_pos = sum(1 for _, y in pairs if y)
    n_neg = len(pairs) - n_pos
    if not n_pos or not n_neg:
        return None
    rank_sum, i = 0.0, 0
    while i < len(pairs):  # average ranks over ties
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        avg_rank = (i + j + 1) / 2
        rank_sum += avg_rank * sum(1 for _, y in pairs[i:j] if y)
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def within_question_auc(groups: list[list[tuple[float, bool]]]) -> float | None:
    """Pairwise AUC over (correct, incorrect) pairs of samples of the same question, pooled over pairs."""
    wins = total = 0.0
    for group in groups:
        pos = [s for s, y in group if y]
        neg = [s for s, y in group if not y]
        for p in pos:
            for n in neg:
                wins += 1.0 if p > n else 0.5 if p == n else 0.0
                total += 1
    return wins / total if total else None


def best_of_n(groups: list[list[tuple[float, bool, int]]]) -> float:
    """Accuracy of picking each question's highest-scoring distinct sample (ties: more duplicates)."""
    if not groups:
        return 0.0
    hits = 0
    for group in groups:
        _, correct, _ = max(group, key=lambda x: (x[0], x[2]))
        hits += bool(correct)
    return hits / len(groups)


def random_pick(groups: list[list[tuple[float, bool, int]]]) -> float:
    """Expected accuracy of one random sample (duplicates counted), i.e. mean sample accuracy."""
    if not groups:
        return 0.0
    return sum(sum(c for _, y, c in g if y) / sum(c for _, _, c in g) for g in groups) / len(groups)


def predicted_first_error(step_scores: list[float], threshold: float = 0.5) -> int:
    """Index of the first step scored below threshold, or -1."""
    for i, s in enumerate(step_scores):
        if s < threshold:
            return i
    return -1


def processbench(predicted: list[int], gold: list[int]) -> dict:
    """ProcessBench: error-acc on wrong solutions (gold >= 0), correct-acc on right ones, harmonic mean.

    An accuracy over no solutions is undefined (None, printed "-"), and so is an F1 that needs it.
    """
    wrong = [(p, g) for p, g in zip(predicted, gold) if g >= 0]
    right = [(p, g) for p, g in zip(predicted, gold) if g < 0]
    error_acc = sum(p == g for p, g in wrong) / len(wrong) if wrong else None
    correct_acc = sum(p < 0 for p, _ in right) / len(right) if right else None
    f1 = None
    if error_acc is not None and correct_acc is not None:
        f1 = 2 * error_acc * correct_acc / (error_acc + correct_acc) if error_acc + correct_acc else 0.0
    return {"error_acc": error_acc, "correct_acc": correct_acc, "f1": f1, "n_wrong": len(wrong), "n_right": len(right)}


def fmt(value, pct: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{100 * value:.1f}" if pct else f"{value:.3f}"


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)

"""Pure rendering of GLoRe results: step tables, categories, diffs, verdicts and candidate cards.

No gradio here: every function takes plain data and returns HTML/Markdown text, so it is tested
without a server. The HTML is written for a gr.Markdown (latex_delimiters render $...$ inside it)
and therefore never contains a blank line (a blank line would end Markdown's HTML block).
"""

from __future__ import annotations

import difflib
import html
import re
from dataclasses import dataclass

from glore_engine.pipeline import first_below

DOUBT_MARGIN = 0.1  # a SORM score within this of the threshold is "doubtful", never "ok"

# Okabe-Ito colour-blind safe palette: blue = ok, orange = doubtful, vermillion = first error,
# grey = after the error. Each category also carries a text label and a symbol.
CATEGORIES = {
    "ok": {"label": "ok", "symbol": "✓", "colour": "#0072B2", "background": "#dcebf5"},
    "doubtful": {"label": "doubtful", "symbol": "?", "colour": "#A86F00", "background": "#fcefd2"},
    "first_error": {"label": "first error", "symbol": "✗", "colour": "#D55E00", "background": "#f9dccb"},
    "after_error": {"label": "after error", "symbol": "·", "colour": "#555555", "background": "#ececec"},
    "unscored": {"label": "no score", "symbol": "–", "colour": "#555555", "background": "#f6f6f6"},
}
KIND_TITLES = {"draft": "Draft", "global": "Global refinement", "local": "Local refinement"}
LATEX_DELIMITERS = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "$", "right": "$", "display": False},
    {"left": "\\(", "right": "\\)", "display": False},
    {"left": "\\[", "right": "\\]", "display": True},
]
# Maths: "$$...$$", or "$...$" opening on a non-space non-digit and closing on a non-space; every
# other "$" is money ("$5", "=$<<5+8=13>>13") and is shielded from KaTeX.
_MATH = re.compile(r"\$\$.+?\$\$|\$(?![\s\d$<])[^$\n]*?(?<![\s\\])\$(?!\d)")


@dataclass(frozen=True)
class StepRow:
    """One draft step as the Inspect view shows it."""

    index: int  # 0-based
    text: str
    sorm: float | None
    orm: float | None
    category: str


# ---- text -------------------------------------------------------------------------------------
def math_text(text: str) -> str:
    """HTML-escaped text that keeps $...$ maths for KaTeX; newlines become <br>.

    Money ("$5", "=$<<5+8=13>>13") must not pair up into maths: gradio finds maths spans in the
    source text and again in the DOM's text nodes, so such a "$" is written as an entity (absent
    from the source) inside a span of its own (a text node that can never hold a pair).
    """
    text = (text or "").replace("\r", "")
    out, pos = [], 0
    for match in _MATH.finditer(text):
        out.append(_plain(text[pos : match.start()]))
        out.append(html.escape(match.group(), quote=False))
        pos = match.end()
    out.append(_plain(text[pos:]))
    return "".join(out).replace("\n", "<br>")


MONEY = '<span class="glore-money">&#36;</span>'
# Markdown and autolink syntax in user text, as character references: CommonMark never reads a
# reference as syntax, so "![x](http://…)" shows as text instead of fetching an image.
_MARKDOWN_MARKS = {c: f"&#{ord(c)};" for c in "\\`*_{}[]()!|~:"}
_MARKDOWN_MARKS_RE = re.compile("|".join(map(re.escape, [*_MARKDOWN_MARKS, "www."])))


def _plain(text: str) -> str:
    """User text with no maths: HTML and Markdown marks escaped, every "$" shielded from KaTeX."""
    escaped = html.escape(text, quote=True)
    escaped = _MARKDOWN_MARKS_RE.sub(lambda m: _MARKDOWN_MARKS.get(m.group(), "www&#46;"), escaped)
    return escaped.replace("$", MONEY)


def plain_text(value) -> str:
    """Any user-supplied text (answer, gold, name, note, error message) as inert HTML/Markdown text."""
    if value is None:
        return ""
    return _plain(str(value).replace("\r", "")).replace("\n", "<br>")


def fmt_score(score: float | None) -> str:
    return "–" if score is None else f"{score:.2f}"


def correctness_label(correct: bool | None) -> str:
    if correct is None:
        return "correctness unknown (no gold answer)"
    return "✓ correct" if correct else "✗ wrong"


# ---- categories and step tables ---------------------------------------------------------------
def first_error(sorm_steps: list[float], threshold: float) -> int:
    """The SORM critique: first step whose score is below the threshold, -1 if none."""
    return first_below(sorm_steps, threshold)


def step_category(index: int, sorm: float | None, orm: float | None, threshold: float, first: int) -> str:
    """ok / doubtful / first_error / after_error / unscored for one step.

    Doubtful: the SORM passes the step but only just (within DOUBT_MARGIN), or the ORM is below
    the threshold. A step at or above the threshold is never shown as an error.
    """
    if sorm is None:
        return "unscored"
    if first >= 0 and index == first:
        return "first_error"
    if first >= 0 and index > first:
        return "after_error"
    if sorm < threshold + DOUBT_MARGIN or (orm is not None and orm < threshold):
        return "doubtful"
    return "ok"


def step_rows(steps: list[str], sorm_steps: list[float], orm_steps: list[float], threshold: float) -> list[StepRow]:
    """Rows of a draft at a threshold; missing scores are None (e.g. a stepless or unscored draft)."""
    first = first_error(sorm_steps, threshold)
    rows = []
    for i, text in enumerate(steps):
        sorm = sorm_steps[i] if i < len(sorm_steps) else None
        orm = orm_steps[i] if i < len(orm_steps) else None
        rows.append(StepRow(i, text, sorm, orm, step_category(i, sorm, orm, threshold, first)))
    return rows


def category_badge(category: str) -> str:
    c = CATEGORIES[category]
    return (
        f'<span class="glore-badge glore-{category}" style="color:{c["colour"]};font-weight:600">'
        f"{c['symbol']} {c['label']}</span>"
    )


# Step tables: every column but the step text keeps its content on one line and takes only the width
# that needs (1%), so a long step wraps inside its own column instead of squeezing the others until
# their headers break mid-word ("SO / RM").
NARROW = "white-space:nowrap;width:1%"
WIDE = "overflow-wrap:anywhere"


def header_row(names: list[str], wide: str = "step") -> str:
    """A table's header row: one line per header; the `wide` column takes the remaining width."""
    cells = "".join(
        f'<th class="glore-col-wide" style="{WIDE}">{n}</th>' if n == wide else f'<th style="{NARROW}">{n}</th>'
        for n in names
    )
    return f"<tr>{cells}</tr>"


def narrow_cell(content: str, style: str = "") -> str:
    return f'<td style="{NARROW}{";" + style if style else ""}">{content}</td>'


def wide_cell(content: str) -> str:
    return f'<td style="{WIDE}">{content}</td>'


def steps_table(rows: list[StepRow], extra_header: str = "", extra_cells: list[str] | None = None) -> str:
    """HTML table: step number, text, SORM, ORM, category (colour plus text label)."""
    if not rows:
        return '<div class="glore-empty"><em>The draft has no steps.</em></div>'
    head = header_row(["#", "step", "SORM", "ORM", "critique"] + ([extra_header] if extra_header else []))
    body = []
    for k, row in enumerate(rows):
        c = CATEGORIES[row.category]
        style = f"background:{c['background']};border-left:6px solid {c['colour']}"
        extra = narrow_cell(extra_cells[k]) if extra_cells is not None else ""
        body.append(
            f'<tr class="glore-step glore-{row.category}" data-category="{row.category}" style="{style}">'
            f"{narrow_cell(str(row.index + 1))}{wide_cell(math_text(row.text))}{narrow_cell(fmt_score(row.sorm))}"
            f"{narrow_cell(fmt_score(row.orm))}{narrow_cell(category_badge(row.category))}{extra}</tr>"
        )
    return f'<table class="glore-steps">{head}{"".join(body)}</table>'


def legend() -> str:
    items = " ".join(category_badge(k) for k in ("ok", "doubtful", "first_error", "after_error"))
    return (
        f'<div class="glore-legend">{items} <span style="color:#555">— doubtful: SORM within '
        f"{DOUBT_MARGIN:.1f} of the threshold, or ORM below it</span></div>"
    )


# ---- verdicts -----------------------------------------------------------------------------------
def when_text(orm_score: float | None, threshold: float) -> str:
    """The ORM's "when": refine if the draft's score is below the threshold."""
    if orm_score is None:
        return "**When:** the draft has no steps to score: refine."
    if orm_score < threshold:
        return f"**When:** the ORM gives the draft {orm_score:.2f} < {threshold:.2f}: **refine**."
    return f"**When:** the ORM gives the draft {orm_score:.2f} ≥ {threshold:.2f}: the draft can stand."


def where_text(sorm_steps: list[float], orm_steps: list[float], threshold: float) -> str:
    """The SORM's "where" at a threshold, with the ORM's rule beside it."""
    first = first_error(sorm_steps, threshold)
    if not sorm_steps:
        where = "**Where:** no step scores, so no step to mark."
    elif first < 0:
        where = f"**Where:** every step's SORM score is ≥ {threshold:.2f}: no error marked."
    else:
        where = f"**Where:** first error at **step {first + 1}** (SORM {sorm_steps[first]:.2f} < {threshold:.2f})."
    orm_first = first_error(orm_steps, threshold)
    if orm_steps:
        where += (
            f" The same rule on ORM scores marks step {orm_first + 1}."
            if orm_first >= 0
            else " The same rule on ORM scores marks no step."
        )
    return where


def local_note(marked_at_run: int, threshold_at_run: float, first_now: int, threshold_now: float) -> str:
    """Say when the slider moved the first error away from the step the local refiner started from."""
    if first_now == marked_at_run or abs(threshold_now - threshold_at_run) < 1e-9:
        return ""
    was = f"step {marked_at_run + 1}" if marked_at_run >= 0 else "no step"
    now = f"step {first_now + 1}" if first_now >= 0 else "no step"
    return (
        f"*The local refinement was made from {was} (threshold {threshold_at_run:.2f}); at "
        f"{threshold_now:.2f} the critique marks {now}. Run again to refine from there.*"
    )


def answer_line(answer: str | None, gold: str | None, correct: bool | None) -> str:
    ans = plain_text(answer) if answer is not None else "none"
    gold_part = f" · gold {plain_text(gold)}" if gold is not None else ""
    return f"answer **{ans}**{gold_part} · {correctness_label(correct)}"


# ---- diffs --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DiffRow:
    op: str  # "kept" (local: before the marked error) | "same" | "removed" | "added" | "changed"
    old: str
    new: str


def diff_steps(draft_steps: list[str], steps: list[str], kept: int = 0) -> list[DiffRow]:
    """Step-level diff of a candidate against the draft; its first `kept` steps are the draft's own."""
    kept = max(0, min(kept, len(draft_steps), len(steps)))
    rows = [DiffRow("kept", s, s) for s in steps[:kept]]
    old, new = draft_steps[kept:], steps[kept:]
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag == "equal":
            rows += [DiffRow("same", s, s) for s in old[i1:i2]]
        elif tag == "delete":
            rows += [DiffRow("removed", s, "") for s in old[i1:i2]]
        elif tag == "insert":
            rows += [DiffRow("added", "", s) for s in new[j1:j2]]
        else:
            pairs = list(zip(old[i1:i2], new[j1:j2]))
            rows += [DiffRow("changed", a, b) for a, b in pairs]
            rows += [DiffRow("removed", s, "") for s in old[i1 + len(pairs) : i2]]
            rows += [DiffRow("added", "", s) for s in new[j1 + len(pairs) : j2]]
    return rows


def inline_diff(old: str, new: str) -> str:
    """Word-level diff of two steps: removed words struck through, added words underlined."""
    a, b = re.split(r"(\s+)", old), re.split(r"(\s+)", new)
    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(math_text("".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(f'<del class="glore-del">{math_text("".join(a[i1:i2]))}</del>')
        if j2 > j1:
            out.append(f'<ins class="glore-ins">{math_text("".join(b[j1:j2]))}</ins>')
    return "".join(out)


DIFF_MARKS = {
    "kept": ("kept", "#0072B2"),
    "same": ("=", "#555555"),
    "removed": ("− removed", "#A86F00"),
    "added": ("+ added", "#0072B2"),
    "changed": ("~ changed", "#A86F00"),
}


def diff_html(rows: list[DiffRow]) -> str:
    """The diff as an HTML table with a text mark per row (not colour alone)."""
    if not rows:
        return "<div><em>No steps.</em></div>"
    body = []
    for row in rows:
        mark, colour = DIFF_MARKS[row.op]
        if row.op == "changed":
            text = inline_diff(row.old, row.new)
        elif row.op == "removed":
            text = f'<del class="glore-del">{math_text(row.old)}</del>'
        else:
            text = math_text(row.new)
        body.append(
            f'<tr class="glore-diff glore-diff-{row.op}"><td style="color:{colour};white-space:nowrap">'
            f"{mark}</td><td>{text}</td></tr>"
        )
    return f'<table class="glore-difftable">{"".join(body)}</table>'


# ---- candidate cards ----------------------------------------------------------------------------
def _card(title: str, lines: list[str], body: str, kind: str) -> str:
    info = "".join(f"<div>{line}</div>" for line in lines)
    return (
        f'<div class="glore-card glore-card-{kind}" data-kind="{kind}">'
        f'<h4 style="margin:0 0 .3em 0">{title}</h4>{_md_inline(info)}{body}</div>'
    )


def _md_inline(text: str) -> str:
    """The few Markdown marks used in card lines, as HTML (Markdown is not parsed in an HTML block)."""
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", text)


def candidate_card(candidate, draft, gold: str | None, first_error_at_run: int = -1) -> str:
    """A refinement (global or local) beside the draft: ORM score, answer, correctness, diff."""
    title = KIND_TITLES.get(candidate.kind, candidate.kind)
    lines = [
        f"ORM score **{candidate.orm_score:.2f}** (draft {draft.orm_score:.2f})",
        answer_line(candidate.answer, gold, candidate.correct),
    ]
    if candidate.kind == "local":
        if candidate.unchanged:
            lines.append("*No step below the threshold: the local refiner was not run, the draft stands.*")
        elif first_error_at_run < 0:  # nothing below the threshold: the pipeline starts at the weakest step
            lines.append(
                f"No step below the threshold: refined from the weakest step, {candidate.kept_steps + 1}; "
                f"{candidate.kept_steps} step(s) before it kept."
            )
        else:
            lines.append(
                f"Refined from the marked step {candidate.kept_steps + 1}; {candidate.kept_steps} step(s) before it kept."
            )
    rows = diff_steps(draft.steps, candidate.steps, candidate.kept_steps if candidate.kind == "local" else 0)
    return _card(title, lines, diff_html(rows), candidate.kind)


def rerank_card(result) -> str:
    """The ORM's pick among draft, global and local, and why (the three scores)."""
    chosen = result.chosen
    scores = ", ".join(
        f"{'<strong>' if c.kind == result.choice else ''}{c.kind} {c.orm_score:.2f}"
        f"{'</strong>' if c.kind == result.choice else ''}"
        for c in result.candidates
    )
    lines = [
        f"The ORM picks **{result.choice}**: the highest final-step score ({scores}).",
        answer_line(chosen.answer, result.gold, chosen.correct),
    ]
    if result.gold is not None:
        any_ok = any(c.correct for c in result.candidates)
        if any_ok and not chosen.correct:
            lines.append("*Reranker wrong: another candidate was correct.*")
    kept = chosen.kept_steps if chosen.kind == "local" else 0
    body = (
        diff_html(diff_steps(result.draft.steps, chosen.steps, kept))
        if chosen.kind != "draft"
        else "<div><em>The draft itself was chosen.</em></div>"
    )
    return _card(f"Reranked: {KIND_TITLES.get(result.choice, result.choice)}", lines, body, "rerank")


# ---- the whole Inspect view -------------------------------------------------------------------
def warning_box(warnings: list[str]) -> str:
    """Plain words, before the scores, on why they may mean little for this problem or draft."""
    if not warnings:
        return ""
    items = "".join(f"<li>{plain_text(w.replace('`', ''))}</li>" for w in warnings)
    return (
        '<div class="glore-warning" style="border-left:6px solid #D55E00;background:#fdf0e8;padding:.4em .8em">'
        "<strong>⚠️ Unreliable scores: outside what these models were trained on.</strong>"
        f'<ul style="margin:.2em 0">{items}</ul></div>'
    )


@dataclass(frozen=True)
class InspectView:
    """Everything the Inspect tab shows for one result at one threshold."""

    question: str
    draft_table: str
    verdict: str
    global_card: str
    local_card: str
    rerank_card: str
    first_error: int


def inspect_view(result, threshold: float | None = None) -> InspectView:
    """Render a GloreResult at a threshold (default: the one it ran with) without running any model."""
    threshold = result.threshold if threshold is None else threshold
    draft = result.draft
    rows = step_rows(draft.steps, draft.sorm_steps, draft.orm_steps, threshold)
    first = first_error(draft.sorm_steps, threshold)
    verdict = "\n\n".join(
        filter(
            None,
            [
                when_text(draft.orm_score if draft.orm_steps else None, threshold),
                where_text(draft.sorm_steps, draft.orm_steps, threshold),
                f"Draft: {answer_line(draft.answer, result.gold, draft.correct)}",
                local_note(result.first_error, result.threshold, first, threshold),
            ],
        )
    )
    warnings = list(getattr(result, "warnings", None) or [])
    if warnings:
        verdict = (
            "**The scores below are unreliable here, not a verdict** (see the warning above the steps).\n\n" + verdict
        )
    question = f'<div class="glore-question"><strong>Question.</strong> {math_text(result.question)}'
    if result.gold is not None:
        question += f"<br><strong>Gold answer:</strong> {plain_text(result.gold)}"
    question += "</div>"
    return InspectView(
        question=question,
        draft_table=warning_box(warnings) + legend() + steps_table(rows),
        verdict=verdict,
        global_card=candidate_card(result.global_refinement, draft, result.gold),
        local_card=candidate_card(result.local_refinement, draft, result.gold, result.first_error),
        rerank_card=rerank_card(result),
        first_error=first,
    )

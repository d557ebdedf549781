"""glore-train picks torch's threads at start (glore_engine/runtime.py); a bad GLORE_THREADS is one line."""

from __future__ import annotations


def test_bad_glore_threads_is_one_line(cli, tiny_family, monkeypatch):
    from glore_engine import runtime

    monkeypatch.setattr(runtime, "_THREADS", None)  # as in a fresh process
    monkeypatch.setenv("GLORE_THREADS", "0")
    result = cli("eval", "--family", tiny_family, "--limit", 1, code=1)
    assert "error: GLORE_THREADS must be a whole number of threads, 1 or more; got '0'" in result.output
    assert "Traceback" not in result.output and not cli.runs("eval")

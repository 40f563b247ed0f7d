from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from browser_service.budget import cut_point, page


def test_short_text_is_one_page() -> None:
    chunk, info = page("Hello world.", "markdown", 0, 100)
    assert chunk == "Hello world."
    assert (info.total_chars, info.start_index, info.next_start_index, info.truncated) == (12, 0, None, False)


def test_cut_at_paragraph_boundary() -> None:
    text = "A" * 60 + "\n\n" + "B" * 60
    chunk, info = page(text, "text", 0, 100)
    assert chunk == "A" * 60 + "\n\n"
    assert info.next_start_index == 62 and info.truncated


def test_cut_at_sentence_when_no_paragraph() -> None:
    text = "One sentence here. " * 10  # 190 chars, sentences every 19
    chunk, info = page(text, "text", 0, 100)
    assert chunk.endswith(". ") and len(chunk) == 95
    assert info.next_start_index == 95


def test_hard_cut_for_one_long_word() -> None:
    text = "x" * 250
    chunk, info = page(text, "text", 0, 100)
    assert chunk == "x" * 100 and info.next_start_index == 100


def test_start_past_end() -> None:
    chunk, info = page("abc", "text", 10, 100)
    assert chunk == "" and info.start_index == 3 and not info.truncated


@given(st.text(alphabet=st.sampled_from("ab .\n"), min_size=0, max_size=2000), st.integers(100, 400))
def test_pages_cover_the_text_in_order(text: str, size: int) -> None:
    """Following next_start_index visits every non-whitespace character once, in order, in bounded pages."""
    start, pieces = 0, []
    while True:
        chunk, info = page(text, "text", start, size)
        assert len(chunk) <= size
        pieces.append(chunk)
        if info.next_start_index is None:
            break
        assert info.next_start_index > start
        start = info.next_start_index
    assert "".join(pieces).split() == text.split() or "".join("".join(pieces).split()) == "".join(text.split())


def test_cut_point_prefers_latest_paragraph_in_second_half() -> None:
    text = "a" * 10 + "\n\n" + "b" * 50 + "\n\n" + "c" * 100
    assert cut_point(text, 0, 100) == 64

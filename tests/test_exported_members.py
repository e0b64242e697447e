"""The public API is what ``certvigil.__all__`` names, and every name there exists."""

import certvigil


def test_all_names_exist() -> None:
    """Every name in ``__all__`` is an attribute of the package."""
    missing = [name for name in certvigil.__all__ if not hasattr(certvigil, name)]
    assert missing == []


def test_all_is_sorted_and_unique() -> None:
    """``__all__`` has no duplicates and stays sorted, so additions are reviewed."""
    assert list(certvigil.__all__) == sorted(set(certvigil.__all__))
